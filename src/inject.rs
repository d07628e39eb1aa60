//! Putting the reload script into HTML pages: which responses get it, and where it goes.
//!
//! One same-origin tag, `<script src="/__reloadsup/livereload.js?port=&amp;path=__reloadsup/livereload" defer>`,
//! so the page's socket follows whatever origin the page came from. It goes before the
//! first real `</head>` within the first 64 KiB (not right after `<head>`: that could
//! push `<meta charset>` past the browser's 1024-byte sniffing window), else right after
//! the opening `<body>` tag, else at the end; comments and the contents of `<script>`
//! and `<style>` elements are skipped, so a `</head>` inside a script string does not
//! count; and a page that already loads `livereload.js` is left alone.

use hyper::header::{self, HeaderMap};

/// How far into a document the scanner looks for `</head>` or `<body>`.
pub const WINDOW: usize = 64 * 1024;

/// The tag, without a nonce.
pub const TAG: &str = "<script src=\"/__reloadsup/livereload.js?port=&amp;path=__reloadsup/livereload\" defer></script>";

/// Whether a request is a page navigation (not a `fetch` or an htmx fragment): the
/// browser says `Sec-Fetch-Dest: document` or `iframe`, or — without that header — the
/// client accepts `text/html`.
pub fn is_navigation(headers: &HeaderMap) -> bool {
    match headers.get("sec-fetch-dest").and_then(|v| v.to_str().ok()) {
        Some(dest) => dest.eq_ignore_ascii_case("document") || dest.eq_ignore_ascii_case("iframe"),
        None => headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html")),
    }
}

/// The tag, carrying `nonce` when the page's CSP requires one.
pub fn tag(nonce: Option<&str>) -> String {
    match nonce {
        Some(nonce) => TAG.replacen("<script ", &format!("<script nonce=\"{nonce}\" "), 1),
        None => TAG.to_string(),
    }
}

/// Where the tag goes in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// Insert at this byte offset.
    At(usize),
    /// Append at the end of the document.
    End,
    /// The page already loads a `livereload.js`: leave it alone.
    Skip,
}

/// Finds where the tag goes in `html`, looking at its first `WINDOW` bytes.
pub fn placement(html: &[u8]) -> Placement {
    let window = &html[..html.len().min(WINDOW)];
    if contains(window, b"livereload.js") {
        return Placement::Skip;
    }
    let mut body_end = None;
    let mut i = 0;
    while let Some(offset) = window[i..].iter().position(|&b| b == b'<') {
        let at = i + offset;
        let rest = &window[at..];
        if rest.starts_with(b"<!--") {
            match find(rest, b"-->") {
                Some(end) => i = at + end + 3,
                None => break,
            }
        } else if let Some(name) = raw_text_element(rest) {
            // Skip to the element's end tag: nothing inside counts.
            let close = format!("</{name}");
            match find_ci(&window[at + 1..], close.as_bytes()) {
                Some(end) => i = at + 1 + end + close.len(),
                None => break,
            }
        } else if starts_with_ci(rest, b"</head") && is_tag_end(rest.get(6)) {
            return Placement::At(at);
        } else if body_end.is_none() && starts_with_ci(rest, b"<body") && is_tag_end(rest.get(5)) {
            body_end = find(rest, b">").map(|end| at + end + 1);
            i = at + 1;
        } else {
            i = at + 1;
        }
    }
    body_end.map_or(Placement::End, Placement::At)
}

/// `html` with the tag put in its place.
pub fn into_page(html: &[u8], nonce: Option<&str>) -> Vec<u8> {
    let tag = tag(nonce);
    match placement(html) {
        Placement::Skip => html.to_vec(),
        Placement::At(at) => [&html[..at], tag.as_bytes(), &html[at..]].concat(),
        Placement::End => [html, tag.as_bytes()].concat(),
    }
}

/// `script` or `style` when `rest` opens one of those elements.
fn raw_text_element(rest: &[u8]) -> Option<&'static str> {
    ["script", "style"].into_iter().find(|name| {
        rest.len() > name.len() + 1
            && starts_with_ci(&rest[1..], name.as_bytes())
            && is_tag_end(rest.get(name.len() + 1))
    })
}

/// Whether a tag name ends here (`>`, whitespace, `/`, or the end of the window).
fn is_tag_end(next: Option<&u8>) -> bool {
    next.is_none_or(|b| matches!(b, b'>' | b'/' | b' ' | b'\t' | b'\n' | b'\r' | b'\x0c'))
}

fn starts_with_ci(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.len() >= needle.len() && haystack[..needle.len()].eq_ignore_ascii_case(needle)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn find_ci(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|w| w.eq_ignore_ascii_case(needle))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    find(haystack, needle).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn placed(html: &str) -> String {
        String::from_utf8(into_page(html.as_bytes(), None))
            .unwrap()
            .replace(TAG, "@")
    }

    #[test]
    fn placements() {
        let cases = [
            (
                "<html><head><title>t</title></head><body>x</body></html>",
                "<html><head><title>t</title>@</head><body>x</body></html>",
            ),
            (
                "<HTML><HEAD></HEAD><BODY></BODY>",
                "<HTML><HEAD>@</HEAD><BODY></BODY>",
            ),
            (
                "<body class=\"a\"><p>x</p></body>",
                "<body class=\"a\">@<p>x</p></body>",
            ),
            ("<p>fragment</p>", "<p>fragment</p>@"),
            (
                "<head><script>var s = '</head>';</script></head>",
                "<head><script>var s = '</head>';</script>@</head>",
            ),
            (
                "<head><!-- </head> --></head>",
                "<head><!-- </head> -->@</head>",
            ),
            (
                "<head><style>/* </head> */</style></head>",
                "<head><style>/* </head> */</style>@</head>",
            ),
            (
                "<body><script>document.write('</body>')</script></body>",
                "<body>@<script>document.write('</body>')</script></body>",
            ),
            (
                "<header></header><body></body>",
                "<header></header><body>@</body>",
            ),
            (
                "<head><script src=\"/livereload.js\"></script></head>",
                "<head><script src=\"/livereload.js\"></script></head>",
            ),
            ("<head></heading></head>", "<head></heading>@</head>"),
        ];
        for (html, expected) in cases {
            assert_eq!(placed(html), expected, "{html}");
        }
    }

    #[test]
    fn head_after_the_window() {
        let padding = "x".repeat(WINDOW);
        let late_head = format!("<html><body><p>{padding}</p></head>");
        assert!(placed(&late_head).starts_with("<html><body>@<p>"));
        let no_tags = format!("<p>{padding}</head>");
        assert!(placed(&no_tags).ends_with("</head>@"));
    }

    #[test]
    fn nonce_and_navigation() {
        assert!(tag(Some("abc")).starts_with("<script nonce=\"abc\" src="));
        let mut h = HeaderMap::new();
        assert!(!is_navigation(&h));
        h.insert(header::ACCEPT, "text/html,*/*".parse().unwrap());
        assert!(is_navigation(&h));
        h.insert("sec-fetch-dest", "empty".parse().unwrap());
        assert!(!is_navigation(&h), "fetch() of HTML is not a navigation");
        h.insert("sec-fetch-dest", "iframe".parse().unwrap());
        assert!(is_navigation(&h));
    }
}
