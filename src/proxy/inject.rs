//! Putting the reload client into documents: which exchanges qualify, the tag (with the
//! page's CSP nonce), and splicing it into the response as it streams.
//!
//! Only documents get the tag: a navigation request (`Sec-Fetch-Dest: document` or
//! `iframe`, or `empty` with `Sec-Fetch-Mode: navigate` and HTML accepted, from a
//! service worker; without those headers, an `Accept` that names `text/html`), answered
//! with HTML or XHTML in an ASCII-compatible charset, not as an attachment, with a status
//! whose body the browser shows: 2xx (not 204, 205 or 206), and 4xx and 5xx too, so a
//! framework's error page turns into the fixed page by itself at the next restart. A
//! `fetch` or htmx request for an HTML fragment sends `Sec-Fetch-Dest: empty` (in mode
//! `cors` or `same-origin`) and is left alone.
//!
//! The start of the document (after decoding) is read before the headers go out, so
//! the placement is known and `Content-Length` can be set right; everything after it
//! streams as it arrives. Reading stops at [`WINDOW`] bytes or the end, and also as
//! soon as the bytes in hand already fix the place and no more are waiting, so a page
//! that streams slowly (a log, a progress page) is not held back once its `</head>` or
//! `<body>` is through. A page that gives no place is not kept waiting either: once it
//! has begun (bytes other than blanks or a byte-order mark came; before that the
//! browser has nothing to show, and is kept waiting up to [`BLANK_HOLD_LIMIT`]), after
//! [`STALL`] without new bytes, or [`HOLD_LIMIT`] in all, the place is chosen from
//! what arrived (a `</head>` not yet seen means the end of the document, or before a
//! comment still open). Bytes that end inside a comment do not fix the place: the
//! comment may close, and a `</head>` follow, in the next ones.
//!
//! XHTML (`application/xhtml+xml`) is parsed as XML, so it gets the tag in XML form
//! (`defer="defer"`), and none at all when the place would be after the document's end,
//! where XML allows nothing more.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame};
use hyper::header::{
    ACCEPT_RANGES, CONTENT_DISPOSITION, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE, ETAG,
    HeaderMap, HeaderValue, X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Response, StatusCode};
use tokio::time::{Instant, timeout_at};

use super::body::{self, BoxError, ProxyBody, Spliced};
use super::decode::{Decoded, Encoding};
use super::page::{self, Asked};
use crate::inject::csp;
use crate::inject::{Placement, WINDOW, reloading_by_get, scan, tag, xml_tag};
use crate::report;

/// How long the window waits for more of a document before choosing from what it has.
const STALL: Duration = Duration::from_millis(100);

/// How long a page that shows nothing yet (no bytes, or blanks only) is held back at
/// most: it costs the browser nothing, but a server may send blanks to keep a tunnel's
/// first-byte timeout (30 s and more) from giving up on a slow page.
const BLANK_HOLD_LIMIT: Duration = Duration::from_secs(3);

/// How long a page that keeps sending bytes but no place for the tag (a streamed log
/// without `<head>` or `<body>`) is held back at most, counted from its first wait.
const HOLD_LIMIT: Duration = Duration::from_millis(500);

/// Whether a response is a document the tag may go into (whatever the request was).
pub fn is_document<B>(response: &Response<B>) -> bool {
    if !shown(response.status()) {
        return false;
    }
    let headers = response.headers();
    // Asked of every answer: most (assets) are told apart without parsing anything.
    let named = content_type(headers).is_some_and(|value| {
        let value = value.as_bytes();
        [&b"text/html"[..], b"application/xhtml+xml"]
            .iter()
            .any(|mime| {
                value
                    .get(..mime.len())
                    .is_some_and(|start| start.eq_ignore_ascii_case(mime))
            })
    });
    if !named {
        return false;
    }
    let html = media_type(headers).is_some_and(|(mime, wide)| {
        // The tag is ASCII: it cannot go into UTF-16 or UTF-32 as it is.
        matches!(mime.as_str(), "text/html" | "application/xhtml+xml") && !wide
    });
    html && !is_attachment(headers)
}

/// Whether an answer is to be saved rather than shown (`Content-Disposition:
/// attachment`).
fn is_attachment(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_DISPOSITION)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim_start()
                .to_ascii_lowercase()
                .starts_with("attachment")
        })
}

/// Says once per run that a page navigation was answered with plain text or JSON,
/// which a browser shows but which has no place for the reload script: such a tab
/// is never reloaded, with no word why (axum's hello world, a handler returning a
/// string, answers `text/plain`, and the status line counted the other tabs alone).
pub fn warn_if_shown_as_text<B>(response: &Response<B>) {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !shown(response.status()) || is_attachment(response.headers()) {
        return;
    }
    let Some((mime, _)) = media_type(response.headers()) else {
        return;
    };
    if !matches!(mime.as_str(), "text/plain" | "application/json")
        || WARNED.swap(true, Ordering::Relaxed)
    {
        return;
    }
    report::warn(format!(
        "a page opened through the proxy is `{mime}`, not HTML: it gets no reload script, \
         and a tab showing it is not reloaded (answer `text/html` to have it reloaded; \
         axum: `Html(…)`)"
    ));
}

/// An answer to a page navigation, shown as a page (see [`shown`]: error pages too), that
/// says no `Content-Type` at all, typed
/// `text/html` if its first bytes are a page to a browser (see
/// [`crate::inject::sniffs_as_html`]: Node's `res.end('<h1>Hello</h1>')`), so that it
/// gets the tag like any page; the browser reads it as HTML either way. Its first
/// bytes are read for that, as many as it takes to tell (waiting at most
/// [`HOLD_LIMIT`] in all), and passed on as they were. An answer that forbids sniffing
/// (`X-Content-Type-Options: nosniff`, shown as text then) and any other answer are
/// left as they are.
pub async fn typed_if_page(response: Response<ProxyBody>, asked: &Asked) -> Response<ProxyBody> {
    let headers = response.headers();
    let untyped = shown(response.status())
        && !headers.contains_key(CONTENT_TYPE)
        && !headers.contains_key(CONTENT_ENCODING)
        && !headers
            .get(X_CONTENT_TYPE_OPTIONS)
            .is_some_and(|v| v.as_bytes().trim_ascii().eq_ignore_ascii_case(b"nosniff"));
    if !untyped {
        return response;
    }
    let (mut parts, mut source) = response.into_parts();
    let deadline = Instant::now() + HOLD_LIMIT;
    let mut first = Vec::new();
    let mut ended = false;
    let mut trailers = None;
    let html = loop {
        if let Some(html) = crate::inject::sniffs_as_html(&first) {
            break html;
        }
        // Cancelling `frame()` loses nothing: a body hands over a frame only when it
        // is ready.
        match timeout_at(deadline, source.frame()).await {
            Ok(Some(Ok(frame))) => match frame.into_data() {
                Ok(data) => first.extend_from_slice(&data),
                Err(frame) => {
                    trailers = frame.into_trailers().ok();
                    ended = true;
                    break false;
                }
            },
            Ok(Some(Err(err))) => {
                return page::broken(&format!("the answer broke off: {err}"), asked);
            }
            Ok(None) => {
                ended = true;
                break false;
            }
            Err(_) => break false,
        }
    };
    if html {
        parts
            .headers
            .insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
    }
    let rest = (!ended).then_some(source);
    let body = Spliced::new(Bytes::from(first), rest, Bytes::new(), trailers);
    Response::from_parts(parts, body.boxed_unsync())
}

/// Whether a browser shows the body of an answer with `status` as a page: 2xx but
/// 204, 205 and 206, and error pages (4xx, 5xx).
fn shown(status: StatusCode) -> bool {
    (status.is_success()
        && status != StatusCode::NO_CONTENT
        && status != StatusCode::RESET_CONTENT
        && status != StatusCode::PARTIAL_CONTENT)
        || status.is_client_error()
        || status.is_server_error()
}

/// The media type of a response (lowercase, without parameters) and whether its charset
/// is a wide one (see [`is_wide`]).
fn media_type(headers: &HeaderMap) -> Option<(String, bool)> {
    let value = content_type(headers)?.to_str().ok()?.to_ascii_lowercase();
    let mut params = value.split(';').map(str::trim);
    let mime = params.next().unwrap_or_default().to_string();
    let wide = params.any(|p| {
        p.split_once('=').is_some_and(|(name, label)| {
            name.trim() == "charset" && is_wide(label.trim().trim_matches('"'))
        })
    });
    Some((mime, wide))
}

/// The `Content-Type` a browser goes by: the last, when a server sends several.
pub fn content_type(headers: &HeaderMap) -> Option<&hyper::header::HeaderValue> {
    headers.get_all(CONTENT_TYPE).iter().next_back()
}

/// Whether a charset label (lowercase) names UTF-16, by any of the labels browsers
/// know it by (the Encoding Standard's), or UTF-32.
fn is_wide(label: &str) -> bool {
    const UTF_16: [&str; 9] = [
        "csunicode",
        "iso-10646-ucs-2",
        "ucs-2",
        "unicode",
        "unicodefeff",
        "unicodefffe",
        "utf-16",
        "utf-16be",
        "utf-16le",
    ];
    let label = label.trim_matches(|c: char| c == '"' || c.is_ascii_whitespace());
    UTF_16.contains(&label) || label.starts_with("utf-32")
}

/// Says once per run that a page came in an encoding the proxy cannot decode (`br`,
/// `zstd`: a server sending files compressed ahead, whatever the request asked for), so
/// it has no reload tag: otherwise the page would just never reload, unexplained.
fn warn_undecodable(headers: &HeaderMap) {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    let coding = headers
        .get(CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?");
    crate::report::warn(format!(
        "a page came with `Content-Encoding: {coding}`, though the proxy asked for none: \
         it cannot be decoded here, so it has no reload script (the dev server ignores \
         `Accept-Encoding: identity`; only gzip and deflate are decoded)"
    ));
}

/// Whether a document is XHTML, parsed as XML: the tag has to be well-formed there, and
/// nothing may follow the root element.
fn is_xhtml(headers: &HeaderMap) -> bool {
    media_type(headers).is_some_and(|(mime, _)| mime == "application/xhtml+xml")
}

/// Injects the tag into a document response (one for which [`is_document`] holds, to
/// a navigation of a page at `host`, reached over `proto`). A HEAD response gets the
/// headers a GET would: decoded, `ETag` marked, and no `Content-Length`, since the
/// length of the body it stands for (decoded, injected into, or not) is not known
/// without that body.
///
/// A page still streaming when a restart cuts it off (`restarts`, the proxy's cut
/// signal) ends as a whole one, its tag at the end included: Chromium left a page cut
/// off mid-stream loading for good, so its deferred reload client never ran and the
/// tab stayed on the half page; ended, the page's client connects, learns that a change
/// came while it loaded, and reloads it.
pub async fn apply(
    response: Response<ProxyBody>,
    asked: &Asked,
    host: &str,
    proto: &str,
    restarts: tokio::sync::watch::Receiver<u64>,
) -> Response<ProxyBody> {
    let (mut parts, incoming) = response.into_parts();
    let decoding = match Encoding::of(&parts.headers) {
        Encoding::Identity => None,
        Encoding::Decodable(coding) => Some(coding),
        Encoding::Other => {
            warn_undecodable(&parts.headers);
            return Response::from_parts(parts, incoming);
        }
    };
    let mut source = incoming;
    if let Some(coding) = decoding {
        source = Decoded::new(source, coding).boxed_unsync();
        parts.headers.remove(CONTENT_ENCODING);
    }
    if asked.head_only() {
        parts.headers.remove(CONTENT_LENGTH);
        mark_changed(&mut parts.headers);
        csp::allow_client(&mut parts.headers, host, proto);
        return Response::from_parts(parts, body::empty());
    }
    let xhtml = is_xhtml(&parts.headers);
    let window = match read_window(&mut source, xhtml).await {
        Ok(window) => window,
        Err(err) => return page::broken(&format!("the document broke off: {err}"), asked),
    };
    let nonce =
        csp::nonce(&parts.headers).or_else(|| csp::meta_nonce(&window.bytes, window.placement));
    let mut tag = if xhtml {
        xml_tag(nonce.as_deref())
    } else {
        tag(nonce.as_deref())
    };
    if !asked.repeatable() {
        tag = reloading_by_get(&tag);
    }
    let placement = match window.placement {
        // After the root element an XML document may hold nothing more.
        Placement::End if xhtml => Placement::Skip,
        placement => placement,
    };
    let length = match (decoding, content_length(&parts.headers)) {
        (None, Some(length)) if placement == Placement::Skip => Some(length),
        (None, Some(length)) => Some(length + tag.len() as u64),
        // Decoded: unknown until the end (hyper counts a body that ended in the window).
        _ => None,
    };
    match length {
        Some(length) => {
            parts
                .headers
                .insert(CONTENT_LENGTH, HeaderValue::from(length));
        }
        None => {
            parts.headers.remove(CONTENT_LENGTH);
        }
    }
    if placement != Placement::Skip || decoding.is_some() {
        mark_changed(&mut parts.headers);
    }
    if placement != Placement::Skip {
        csp::allow_client(&mut parts.headers, host, proto);
    }
    let rest = (!window.complete).then(|| body::ending_quietly(source, restarts));
    let bytes = window.bytes;
    let body = match placement {
        Placement::At(at) => {
            let mut front = Vec::with_capacity(bytes.len() + tag.len());
            front.extend_from_slice(&bytes[..at]);
            front.extend_from_slice(tag.as_bytes());
            front.extend_from_slice(&bytes[at..]);
            Spliced::new(front.into(), rest, Bytes::new(), window.trailers)
        }
        Placement::End => Spliced::new(bytes.into(), rest, tag.into(), window.trailers),
        Placement::Skip => Spliced::new(bytes.into(), rest, Bytes::new(), window.trailers),
    };
    Response::from_parts(parts, body.boxed_unsync())
}

/// The start of a body, read until the tag's place is known (see the module's notes),
/// and that place.
struct Window {
    bytes: Vec<u8>,
    /// Where the tag goes in the document.
    placement: Placement,
    /// The body ended within the window.
    complete: bool,
    /// Its trailers, if it ended with some.
    trailers: Option<HeaderMap>,
}

impl Window {
    fn new(bytes: Vec<u8>, placement: Option<Placement>, complete: bool, xml: bool) -> Window {
        let placement = placement.unwrap_or_else(|| scan::place(&bytes, xml, complete));
        Window {
            bytes,
            placement,
            complete,
            trailers: None,
        }
    }
}

/// `xml`: the document is XHTML.
async fn read_window(source: &mut ProxyBody, xml: bool) -> Result<Window, BoxError> {
    let mut bytes = Vec::new();
    // Set when the page first makes us wait, once it shows something.
    let mut held_until: Option<Instant> = None;
    // Set when the page first makes us wait before it shows anything.
    let mut blank_until: Option<Instant> = None;
    while bytes.len() < WINDOW {
        let next = match ready_frame(source).await {
            Some(next) => next,
            None => {
                // Nothing more has come yet. The place is scanned for only here, where
                // the page would otherwise wait: a fast server's page is scanned once.
                if let Some(placement) = scan::settled(&bytes, xml) {
                    return Ok(Window::new(bytes, Some(placement), false, xml));
                }
                let now = Instant::now();
                let deadline = if shows_nothing(&bytes) {
                    // Nothing to show yet (a server that sends its answer's head, then
                    // renders): holding costs the browser nothing, and choosing now
                    // would put the tag at the end, or none into XHTML.
                    *blank_until.get_or_insert(now + BLANK_HOLD_LIMIT)
                } else {
                    (*held_until.get_or_insert(now + HOLD_LIMIT)).min(now + STALL)
                };
                // Cancelling `frame()` loses nothing: a body hands over a frame only
                // when it is ready.
                match timeout_at(deadline, source.frame()).await {
                    Ok(next) => next,
                    Err(_) => return Ok(Window::new(bytes, None, false, xml)),
                }
            }
        };
        let Some(frame) = next else {
            return Ok(Window::new(bytes, None, true, xml));
        };
        match frame?.into_data() {
            Ok(data) => bytes.extend_from_slice(&data),
            Err(frame) => {
                let mut window = Window::new(bytes, None, true, xml);
                window.trailers = frame.into_trailers().ok();
                return Ok(window);
            }
        }
    }
    Ok(Window::new(bytes, None, false, xml))
}

/// Whether a document's first bytes show nothing yet: none, blanks, a byte-order mark.
fn shows_nothing(bytes: &[u8]) -> bool {
    let text = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    text.iter().all(u8::is_ascii_whitespace)
}

/// The body's next frame (or its end) if one is ready now; `None` if it would wait.
async fn ready_frame(source: &mut ProxyBody) -> Option<Option<Result<Frame<Bytes>, BoxError>>> {
    std::future::poll_fn(|cx| match Pin::new(&mut *source).poll_frame(cx) {
        Poll::Ready(frame) => Poll::Ready(Some(frame)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// The `Content-Length`, if there is one valid value.
fn content_length(headers: &HeaderMap) -> Option<u64> {
    let mut values = headers.get_all(CONTENT_LENGTH).iter();
    let (first, second) = (values.next()?, values.next());
    if second.is_some() {
        return None;
    }
    first.to_str().ok()?.trim().parse().ok()
}

/// Marks a response whose bytes are no longer the origin's. Its `ETag` becomes a weak
/// one of its own (`"v1"` → `W/"v1-reloadsup"`): weak comparison would take a mere
/// `W/"v1"` for the origin's `"v1"`, and a copy with the tag and one without (a
/// `fetch`'s) would each revalidate the other. Ranges are no longer offered: a range
/// of the origin's bytes is not one of ours.
fn mark_changed(headers: &mut HeaderMap) {
    headers.remove(ACCEPT_RANGES);
    let Some(etag) = headers.get(ETAG) else {
        return;
    };
    let bytes = etag.as_bytes();
    let opaque = bytes.strip_prefix(b"W/").unwrap_or(bytes);
    if opaque.ends_with(ETAG_MARK) && bytes.starts_with(b"W/") {
        return;
    }
    let marked = match opaque {
        [b'"', inner @ .., b'"'] => {
            HeaderValue::from_bytes(&[b"W/\"", inner, ETAG_MARK].concat()).ok()
        }
        _ => None,
    };
    match marked {
        Some(marked) => headers.insert(ETAG, marked),
        // Not a quoted tag: no validator is better than a wrong one.
        None => headers.remove(ETAG),
    };
}

/// The end of an `ETag` that [`mark_changed`] gave its own.
const ETAG_MARK: &[u8] = b"-reloadsup\"";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inject::is_navigation;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn navigations_are_told_from_fetches() {
        let cases = [
            (vec![("sec-fetch-dest", "document")], true),
            (vec![("sec-fetch-dest", "iframe"), ("accept", "*/*")], true),
            (
                vec![("sec-fetch-dest", "empty"), ("accept", "text/html")],
                false,
            ),
            (
                vec![("sec-fetch-dest", "empty"), ("sec-fetch-mode", "cors")],
                false,
            ),
            (
                vec![
                    ("sec-fetch-dest", "empty"),
                    ("sec-fetch-mode", "navigate"),
                    ("accept", "text/html,application/xhtml+xml"),
                ],
                true,
            ),
            // Chromium's `<a download>`: the same two, and no `Accept`.
            (
                vec![("sec-fetch-dest", "empty"), ("sec-fetch-mode", "navigate")],
                false,
            ),
            (
                vec![("sec-fetch-dest", "script"), ("sec-fetch-mode", "navigate")],
                false,
            ),
            (vec![("sec-fetch-dest", "script")], false),
            (
                vec![("accept", "text/html,application/xhtml+xml;q=0.9")],
                true,
            ),
            (vec![("accept", "*/*")], false),
            (vec![], false),
        ];
        for (pairs, expected) in cases {
            assert_eq!(is_navigation(&headers(&pairs)), expected, "{pairs:?}");
        }
    }

    #[test]
    fn documents_are_told_from_other_responses() {
        let response = |status: u16, pairs: &[(&'static str, &'static str)]| {
            let mut response = Response::new(());
            *response.status_mut() = StatusCode::from_u16(status).expect("a status");
            *response.headers_mut() = headers(pairs);
            is_document(&response)
        };
        let html = ("content-type", "text/html; charset=utf-8");
        assert!(response(200, &[html]));
        assert!(response(200, &[("content-type", "Application/XHTML+XML")]));
        assert!(response(201, &[html]));
        assert!(!response(204, &[html]));
        assert!(!response(205, &[html]), "205 has no content");
        assert!(!response(206, &[html]));
        assert!(!response(304, &[html]));
        assert!(!response(302, &[html]));
        assert!(!response(103, &[html]));
        assert!(response(404, &[html]));
        assert!(response(500, &[html]));
        assert!(!response(200, &[]));
        assert!(!response(200, &[("content-type", "text/plain")]));
        for wide in [
            "UTF-16LE",
            "\"utf-16\"",
            "ucs-2",
            "Unicode",
            "unicodeFFFE",
            "utf-32",
        ] {
            let content_type = HeaderValue::try_from(format!("text/html; charset={wide}")).unwrap();
            let mut response = Response::new(());
            response.headers_mut().insert(CONTENT_TYPE, content_type);
            assert!(!is_document(&response), "{wide}");
        }
        assert!(response(
            200,
            &[("content-type", "text/html; charset=unicode-1-1-utf-8")]
        ));
        assert!(!response(
            200,
            &[("content-type", "text/html; charset = utf-16")]
        ));
        // Of several, the last is the one browsers go by.
        let plain = ("content-type", "text/plain");
        assert!(response(200, &[plain, html]));
        assert!(!response(200, &[html, plain]));
        assert!(!response(
            200,
            &[html, ("content-disposition", "attachment; filename=a.html")]
        ));
        assert!(response(200, &[html, ("content-disposition", "inline")]));
    }

    #[test]
    fn etags_are_marked_once_and_ranges_no_longer_offered() {
        let mut map = headers(&[("etag", "\"v1\""), ("accept-ranges", "bytes")]);
        mark_changed(&mut map);
        mark_changed(&mut map);
        assert_eq!(map[ETAG], "W/\"v1-reloadsup\"");
        assert!(!map.contains_key(ACCEPT_RANGES));
        let mut weak = headers(&[("etag", "W/\"v2\"")]);
        mark_changed(&mut weak);
        assert_eq!(weak[ETAG], "W/\"v2-reloadsup\"");
        let mut bare = headers(&[("etag", "v3")]);
        mark_changed(&mut bare);
        assert!(!bare.contains_key(ETAG));
    }
}
