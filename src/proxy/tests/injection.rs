//! The reload tag in pages fetched through the proxy: where it goes, the length
//! headers, compressed and streamed upstreams, and what is left alone.

use super::upstream::{
    self, COMMENT_SPLIT, CSP_META, EXISTING, NO_HEAD, NONCE, OPEN_COMMENT, PAGE, STALLED_HEAD,
    TRICKLE_LINE, TRICKY, Upstream, Wsgiref, XHTML, XHTML_BARE,
};
use super::{NAVIGATE, first_frame, navigate, proxy, send};
use crate::inject::{tag, xml_tag};

/// The tag without a nonce.
fn plain_tag() -> String {
    tag(None)
}

/// `doc` with the tag before `at`'s first occurrence.
fn before(doc: &str, at: &str) -> String {
    let i = doc.find(at).expect("the marker is in the document");
    format!("{}{}{}", &doc[..i], plain_tag(), &doc[i..])
}

#[test]
fn the_tag_goes_before_the_head_ends_with_a_content_length_to_match() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/page");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), before(PAGE, "</head>"));
    let length = PAGE.len() + plain_tag().len();
    assert_eq!(
        reply.header("content-length"),
        Some(length.to_string().as_str())
    );
}

#[test]
fn placement_without_a_head_late_head_tricky_and_existing_tag() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let addr = proxy.local_addr();

    let no_head = navigate(addr, "/nohead").text();
    assert_eq!(no_head, before(NO_HEAD, "<p>"));

    let late = navigate(addr, "/late");
    let page = upstream::late_page();
    assert_eq!(
        late.text(),
        format!("{page}{}", plain_tag()),
        "appended at the end"
    );
    let length = page.len() + plain_tag().len();
    assert_eq!(
        late.header("content-length"),
        Some(length.to_string().as_str())
    );

    let tricky = navigate(addr, "/tricky").text();
    assert_eq!(tricky, before(TRICKY, "</head><body>"));

    let existing = navigate(addr, "/existing");
    assert_eq!(existing.text(), EXISTING, "never twice");
    assert_eq!(
        existing.header("content-length"),
        Some(EXISTING.len().to_string().as_str())
    );
}

#[test]
fn xhtml_gets_the_tag_as_well_formed_xml_and_never_after_its_root() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let page = navigate(proxy.local_addr(), "/xhtml");
    let i = XHTML.find("</head>").expect("a head");
    let expected = format!("{}{}{}", &XHTML[..i], xml_tag(None), &XHTML[i..]);
    assert_eq!(page.text(), expected);
    assert!(xml_tag(None).contains(" defer=\"defer\""));
    let length = XHTML.len() + xml_tag(None).len();
    assert_eq!(
        page.header("content-length"),
        Some(length.to_string().as_str())
    );
    let bare = navigate(proxy.local_addr(), "/xhtml-bare");
    assert_eq!(
        bare.text(),
        XHTML_BARE,
        "nothing may follow the root element"
    );
}

#[test]
fn a_csp_nonce_goes_on_the_tag_and_etags_are_marked() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let csp = navigate(proxy.local_addr(), "/csp").text();
    let with_nonce = tag(Some(NONCE));
    assert!(with_nonce.contains(&format!("nonce=\"{NONCE}\"")));
    assert!(csp.contains(&format!("{with_nonce}</head>")), "{csp}");
    assert!(CSP_META.contains(&format!("'nonce-{NONCE}'")));
    let meta = navigate(proxy.local_addr(), "/csp-meta").text();
    assert!(
        meta.contains(&format!("{with_nonce}</head>")),
        "a policy in a <meta> counts too: {meta}"
    );
    // The tagged page has a validator of its own, and a cache keeps it apart from the
    // untagged one a `fetch` gets.
    let etag = navigate(proxy.local_addr(), "/etag");
    assert_eq!(etag.header("etag"), Some("W/\"v1-reloadsup\""));
    assert_eq!(
        etag.header("vary"),
        Some("Sec-Fetch-Dest, Sec-Fetch-Mode, Accept")
    );
    let fetched = send(
        proxy.local_addr(),
        "GET",
        "/etag",
        &[("sec-fetch-dest", "empty")],
        Vec::new(),
    );
    assert_eq!(fetched.header("etag"), Some("\"v1\""));
    assert_eq!(
        fetched.header("vary"),
        Some("Sec-Fetch-Dest, Sec-Fetch-Mode, Accept")
    );
}

#[test]
fn a_policy_that_blocks_connections_lets_the_reload_socket_through() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/csp-strict");
    let socket = format!(
        "ws://localhost:{}/__reloadsup/livereload",
        proxy.local_addr().port()
    );
    assert_eq!(
        reply.header("content-security-policy"),
        Some(
            format!("default-src 'none'; script-src 'nonce-{NONCE}'; connect-src {socket}")
                .as_str()
        )
    );
    assert_eq!(
        reply.header("content-security-policy-report-only"),
        Some(format!("connect-src https://api.test {socket}; report-uri /csp-report").as_str())
    );
    assert!(reply.text().contains(&tag(Some(NONCE))), "{}", reply.text());
}

#[test]
fn a_gzip_only_upstream_is_decoded_and_injected() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/gzip");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.text(), before(PAGE, "</head>"));
    // An unknown coding passes untouched.
    let brotli = navigate(proxy.local_addr(), "/brotli");
    assert_eq!(brotli.header("content-encoding"), Some("br"));
    assert_eq!(brotli.text(), "not really brotli");
}

#[test]
fn a_decoded_page_longer_than_the_window_streams_chunked() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/gzip-late");
    assert_eq!(reply.header("content-encoding"), None);
    assert_eq!(reply.header("content-length"), None);
    assert_eq!(reply.header("transfer-encoding"), Some("chunked"));
    assert_eq!(
        reply.text(),
        format!("{}{}", upstream::late_page(), plain_tag())
    );
}

#[test]
fn a_page_that_stalls_gets_its_head_with_the_tag_at_once() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let first = first_frame(proxy.local_addr(), "/stalled", &NAVIGATE);
    assert_eq!(first, before(STALLED_HEAD, "</head>"));
    // Compressed too: what the server flushed is decoded and passed on at once.
    let first = first_frame(proxy.local_addr(), "/gzip-stalled", &NAVIGATE);
    assert_eq!(first, before(STALLED_HEAD, "</head>"));
}

/// A page whose first bytes come late (a server that sends its answer's head, then
/// renders) is waited for: until then the browser has nothing to show either.
#[test]
fn a_page_whose_body_starts_late_gets_the_tag_in_its_head() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/late-start");
    assert_eq!(reply.text(), format!("\n{}", before(PAGE, "</head>")));
    let reply = navigate(proxy.local_addr(), "/late-bom");
    assert_eq!(reply.text(), format!("\u{feff}{}", before(PAGE, "</head>")));
}

/// A page that sends blanks and nothing else (a server keeping a tunnel's first-byte
/// timeout at bay while it renders) is passed on after a while all the same.
#[test]
fn a_page_of_blanks_alone_is_held_back_only_for_a_while() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let first = first_frame(proxy.local_addr(), "/heartbeat", &NAVIGATE);
    assert!(
        !first.is_empty() && first.iter().all(|&b| b == b' '),
        "{first:?}"
    );
}

#[test]
fn a_comment_left_open_by_the_first_bytes_is_waited_for() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/comment-split");
    assert_eq!(reply.text(), before(COMMENT_SPLIT, "</head>"));
}

/// A page that is all one comment left open after its first lines (a forgotten
/// `-->`, no doctype before it) gets the tag before that comment, where it runs, not
/// at the end, inside it.
#[test]
fn a_comment_left_open_at_the_top_of_a_page_gets_the_tag_before_it() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/open-comment");
    assert_eq!(reply.text(), before(OPEN_COMMENT, "<!-- left open"));
}

#[test]
fn a_page_that_streams_without_end_goes_out_once_its_head_is_through() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let first = first_frame(proxy.local_addr(), "/trickle", &NAVIGATE);
    assert_eq!(first, before(STALLED_HEAD, "</head>"));
}

#[test]
fn a_page_that_streams_without_a_place_for_the_tag_is_held_back_only_briefly() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let first = first_frame(proxy.local_addr(), "/trickle-bare", &NAVIGATE);
    let text = String::from_utf8_lossy(&first);
    assert!(text.starts_with(TRICKLE_LINE), "{text}");
    assert!(!text.contains("livereload.js"), "the tag waits for the end");
}

#[test]
fn error_pages_get_the_tag_too() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/error");
    assert_eq!(reply.status, 500);
    assert_eq!(reply.text(), before(PAGE, "</head>"));
}

#[test]
fn a_chunked_upstream_is_injected() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/chunked");
    let doc = "<html><head><title>c</title></head><body>chunks</body></html>";
    assert_eq!(reply.text(), before(doc, "</head>"));
    // Whether it ended before the place was known (length set) or not (chunked), the
    // framing is right.
    let length = reply.body.len().to_string();
    match reply.header("content-length") {
        Some(declared) => assert_eq!(declared, length),
        None => assert_eq!(reply.header("transfer-encoding"), Some("chunked")),
    }
}

#[test]
fn a_close_delimited_wsgiref_upstream_is_injected() {
    let server = Wsgiref::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/");
    assert_eq!(reply.status, 200);
    let doc = upstream::WSGI_PARTS.concat();
    assert_eq!(reply.text(), before(&doc, "</head>"));
    // Two requests on one keep-alive connection, though wsgiref closes after each.
    let again = super::exchange(
        proxy.local_addr(),
        vec![
            super::build(proxy.local_addr(), "GET", "/", &NAVIGATE, Vec::new()),
            super::build(proxy.local_addr(), "GET", "/", &NAVIGATE, Vec::new()),
        ],
    );
    assert!(again.iter().all(|r| r.text() == before(&doc, "</head>")));
}

#[test]
fn fetches_fragments_and_non_documents_are_left_alone() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let addr = proxy.local_addr();
    let fetch = [("sec-fetch-dest", "empty"), ("accept", "text/html")];
    assert_eq!(send(addr, "GET", "/page", &fetch, Vec::new()).text(), PAGE);
    // No Sec-Fetch-Dest and no text/html accepted: an old client's fetch.
    assert_eq!(
        send(addr, "GET", "/page", &[("accept", "*/*")], Vec::new()).text(),
        PAGE
    );
    let empty = navigate(addr, "/empty");
    assert_eq!(empty.status, 204);
    assert!(empty.body.is_empty());
    let json = navigate(addr, "/json");
    assert_eq!(json.text(), upstream::JSON);
}

#[test]
fn head_requests_get_the_headers_of_a_get_without_a_body_or_length() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = send(proxy.local_addr(), "HEAD", "/page", &NAVIGATE, Vec::new());
    assert_eq!(reply.status, 200);
    assert!(reply.body.is_empty());
    assert_eq!(reply.header("content-length"), None);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    // The headers a GET would get: the ETag marked, the coding gone.
    let etag = send(proxy.local_addr(), "HEAD", "/etag", &NAVIGATE, Vec::new());
    assert_eq!(etag.header("etag"), Some("W/\"v1-reloadsup\""));
    let gzip = send(proxy.local_addr(), "HEAD", "/gzip", &NAVIGATE, Vec::new());
    assert_eq!(gzip.status, 200);
    assert_eq!(gzip.header("content-encoding"), None);
}
