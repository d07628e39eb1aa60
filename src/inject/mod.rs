//! Putting the reload script into HTML pages: the tag, which requests count as page
//! navigations, and (in `scan`) where in a document the tag goes.
//!
//! One same-origin tag,
//! `<script src="/__reloadsup/livereload.js?port=&amp;path=__reloadsup/livereload" defer>`,
//! so the page's socket follows whatever origin the page came from (`port=` left blank
//! makes the client connect to the page's own origin; `&` is `&amp;` inside an
//! attribute). The proxy splices it into responses as they stream; `serve` puts it into
//! whole files with [`into_page`]. A page whose Content Security Policy allows scripts
//! by nonce gets the tag with that nonce (in `csp`).

pub mod csp;
pub mod scan;

use hyper::header::{ACCEPT, HeaderMap, HeaderName};

/// `Sec-Fetch-Dest`: what the browser will do with the answer.
const SEC_FETCH_DEST: HeaderName = HeaderName::from_static("sec-fetch-dest");
/// `Sec-Fetch-Mode`: `navigate` for a page load, also when a service worker passes it on.
const SEC_FETCH_MODE: HeaderName = HeaderName::from_static("sec-fetch-mode");

pub use scan::{Placement, WINDOW};

/// The tag, without a nonce.
const TAG: &str = r#"<script src="/__reloadsup/livereload.js?port=&amp;path=__reloadsup/livereload" defer></script>"#;

/// The tag to inject, carrying `nonce` when the page's policy asks for one.
pub fn tag(nonce: Option<&str>) -> String {
    match nonce {
        Some(nonce) => TAG.replacen(" defer>", &format!(" defer nonce=\"{nonce}\">"), 1),
        None => TAG.to_string(),
    }
}

/// Whether bytes a server sent without a `Content-Type` are a page to a browser: they
/// begin (after blanks) with one of the tags the WHATWG MIME Sniffing Standard lists for
/// HTML (`<!DOCTYPE HTML`, `<html`, `<h1`, `<p`, …, or a comment), in any case, each
/// followed by a blank or `>`. Node's `res.end('<h1>Hello</h1>')` is such a page.
/// `None` while the bytes so far could still begin either way (blanks, `<h`); only the
/// first [`SNIFF_LEN`] bytes count, as for browsers (a page after 2,000 blanks is text
/// to them).
pub fn sniffs_as_html(bytes: &[u8]) -> Option<bool> {
    const TAGS: [&[u8]; 16] = [
        b"<!DOCTYPE HTML",
        b"<HTML",
        b"<HEAD",
        b"<SCRIPT",
        b"<IFRAME",
        b"<H1",
        b"<DIV",
        b"<FONT",
        b"<TABLE",
        b"<A",
        b"<STYLE",
        b"<TITLE",
        b"<B",
        b"<BODY",
        b"<BR",
        b"<P",
    ];
    let blank = |b: &u8| matches!(b, b'\t' | b'\n' | b'\x0c' | b'\r' | b' ');
    let whole = bytes.len() >= SNIFF_LEN;
    let bytes = &bytes[..bytes.len().min(SNIFF_LEN)];
    let start = bytes.iter().position(|b| !blank(b)).unwrap_or(bytes.len());
    let rest = &bytes[start..];
    // Whether `rest` is all of `pattern` so far, in any case.
    let begins = |pattern: &[u8]| {
        let n = rest.len().min(pattern.len());
        rest[..n].eq_ignore_ascii_case(&pattern[..n])
    };
    if rest.len() >= 4 && begins(b"<!--") {
        return Some(true);
    }
    let mut undecided = rest.len() < 4 && begins(b"<!--");
    for tag in TAGS {
        if !begins(tag) {
            continue;
        }
        match rest.get(tag.len()) {
            Some(next) if blank(next) || *next == b'>' => return Some(true),
            Some(_) => {}
            None => undecided = true,
        }
    }
    if undecided && !whole {
        None
    } else {
        Some(false)
    }
}

/// How many first bytes of an untyped answer a browser sniffs (the MIME Sniffing
/// Standard's resource header).
pub const SNIFF_LEN: usize = 1445;

/// `tag` for a page that answered a POST (or another request that changes things): its
/// client reloads it with a GET of its URL (`reload=get`), where `location.reload()`
/// would send the form again (Chromium asks each time; headless, it resends silently).
pub fn reloading_by_get(tag: &str) -> String {
    tag.replacen(
        "path=__reloadsup/livereload\"",
        "path=__reloadsup/livereload&amp;reload=get\"",
        1,
    )
}

/// The tag as well-formed XML, for `application/xhtml+xml` documents: an XML parser
/// takes a bare `defer` for an error and shows an error page instead of the document.
pub fn xml_tag(nonce: Option<&str>) -> String {
    tag(nonce).replacen(" defer", " defer=\"defer\"", 1)
}

/// Whether a request is a page navigation (not a `fetch` or an htmx fragment): the
/// browser says `Sec-Fetch-Dest: document` or `iframe`, or `Sec-Fetch-Dest: empty` with
/// `Sec-Fetch-Mode: navigate` and an `Accept` naming `text/html` (a service worker's
/// `fetch(event.request)` of the page load it intercepted: a page a worker controlled
/// got no tag, and live reload stopped without a word; Chromium sends the same two for
/// an `<a download>`, but with no `Accept`, and a downloaded page keeps its bytes), or —
/// without those headers — the client accepts `text/html`.
pub fn is_navigation(headers: &HeaderMap) -> bool {
    let says = |name: &HeaderName, value: &str| {
        headers
            .get(name)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(value.as_bytes()))
    };
    let accepts_html = || {
        headers.get_all(ACCEPT).iter().any(|accept| {
            accept
                .as_bytes()
                .windows(b"text/html".len())
                .any(|w| w.eq_ignore_ascii_case(b"text/html"))
        })
    };
    match headers.get(SEC_FETCH_DEST) {
        Some(_) => {
            ["document", "iframe", "frame"]
                .iter()
                .any(|dest| says(&SEC_FETCH_DEST, dest))
                || (says(&SEC_FETCH_DEST, "empty")
                    && says(&SEC_FETCH_MODE, "navigate")
                    && accepts_html())
        }
        None => accepts_html(),
    }
}

/// A whole document with the tag put in its place (or unchanged if it already loads a
/// `livereload.js`). `xml` for XHTML: the tag in XML form, and none after the root
/// element, where XML allows nothing.
pub fn into_page(html: &[u8], xml: bool) -> Vec<u8> {
    let placement = scan::place(html, xml, true);
    let nonce = csp::meta_nonce(html, placement);
    let tag = if xml {
        xml_tag(nonce.as_deref())
    } else {
        tag(nonce.as_deref())
    };
    match placement {
        Placement::Skip => html.to_vec(),
        Placement::At(at) => [&html[..at], tag.as_bytes(), &html[at..]].concat(),
        Placement::End if xml => html.to_vec(),
        Placement::End => [html, tag.as_bytes()].concat(),
    }
}

/// Escapes text for HTML content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn untyped_bytes_are_a_page_when_a_browser_would_sniff_one() {
        for page in [
            &b"<h1>Hello</h1>"[..],
            b"\n  <!doctype html><html>",
            b"<HTML lang=en>",
            b"<!-- a comment -->",
            b"<p>text",
            b"<h1\tclass=x>",
        ] {
            assert_eq!(
                sniffs_as_html(page),
                Some(true),
                "{}",
                String::from_utf8_lossy(page)
            );
        }
        for other in [
            &b"{\"html\": \"<h1>\"}"[..],
            b"<hr>",
            b"<pre>",
            b"plain <h1>",
            b"\x00\x01<h1>",
        ] {
            assert_eq!(
                sniffs_as_html(other),
                Some(false),
                "{}",
                String::from_utf8_lossy(other)
            );
        }
        // Too few bytes to tell yet: the next may decide.
        for early in [&b""[..], b"  ", b"<", b"<h", b"<!DOCTYPE", b"<html", b"<!-"] {
            assert_eq!(
                sniffs_as_html(early),
                None,
                "{}",
                String::from_utf8_lossy(early)
            );
        }
        // Past the bytes a browser looks at, a tag no longer counts.
        let late = [" ".repeat(SNIFF_LEN).as_bytes(), b"<h1>late</h1>"].concat();
        assert_eq!(sniffs_as_html(&late), Some(false));
        assert_eq!(
            sniffs_as_html(" ".repeat(SNIFF_LEN).as_bytes()),
            Some(false)
        );
    }

    #[test]
    fn whole_pages() {
        let page = into_page(b"<head><title>t</title></head><body></body>", false);
        let expected = format!("<head><title>t</title>{TAG}</head><body></body>");
        assert_eq!(String::from_utf8(page).unwrap(), expected);
        assert_eq!(
            into_page(b"<p>x</p>", false),
            format!("<p>x</p>{TAG}").into_bytes()
        );
        let own = b"<head><script src=\"/livereload.js\"></script></head>";
        assert_eq!(into_page(own, false), own.to_vec());
        // XHTML: the tag in XML form, and nothing after the root element.
        let xhtml = into_page(b"<html><head></head></html>", true);
        let expected = format!("<html><head>{}</head></html>", xml_tag(None));
        assert_eq!(String::from_utf8(xhtml).unwrap(), expected);
        assert_eq!(into_page(b"<svg/>", true), b"<svg/>".to_vec());
        // A file that is one comment left open: before it, not inside it at the end.
        assert_eq!(
            into_page(b"<!-- open <p>x</p>", false),
            format!("{TAG}<!-- open <p>x</p>").into_bytes()
        );
    }

    #[test]
    fn nonce_and_navigation() {
        assert!(tag(Some("abc")).contains(" defer nonce=\"abc\">"));
        assert_eq!(
            xml_tag(Some("abc")),
            tag(Some("abc")).replace(" defer ", " defer=\"defer\" ")
        );
        let mut h = HeaderMap::new();
        assert!(!is_navigation(&h));
        h.insert(ACCEPT, "text/html,*/*".parse().unwrap());
        assert!(is_navigation(&h));
        h.insert("sec-fetch-dest", "empty".parse().unwrap());
        assert!(!is_navigation(&h), "fetch() of HTML is not a navigation");
        h.insert("sec-fetch-dest", "iframe".parse().unwrap());
        assert!(is_navigation(&h));
    }

    #[test]
    fn escaping() {
        assert_eq!(
            escape_html("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }
}
