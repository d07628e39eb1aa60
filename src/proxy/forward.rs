//! Forwarding one request to the dev server and its answer back: the headers each way,
//! `Location` rewriting, and the app's own WebSockets (any `Upgrade`), tunnelled.
//!
//! Headers: hop-by-hop ones are dropped both ways (`Connection` and those it names,
//! `Keep-Alive`, `Proxy-*`, `TE`, `Transfer-Encoding`, `Upgrade`), but a browser's
//! `TE: trailers` goes on as the proxy's own (it passes trailers back), and `Trailer`,
//! which declares them, is end to end (hyper sends only declared trailers); `Host` is
//! kept, since apps build links and redirects from it; `X-Forwarded-For` gets the
//! browser's address, and `X-Forwarded-Host`/`-Proto` are set unless a proxy in front
//! (a tunnel, an HTTPS terminator) already set them. A `Content-Length` beside a
//! `Transfer-Encoding` is dropped too: the coding frames the message, not the length.
//! `Via` gets this proxy's entry, unique to the process: a request that arrives with
//! it has come round (an upstream that leads back to the proxy) and gets a 508 at once
//! instead of being forwarded again, without end.
//! `Expect` is dropped: hyper answers the browser's `100-continue` itself when the body
//! is first read, which is once the dev server is connected, so a held upload waits
//! without being sent.

use std::net::SocketAddr;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::{
    ACCEPT_ENCODING, CACHE_CONTROL, CONNECTION, CONTENT_LENGTH, EXPECT, EXPIRES, HOST, HeaderMap,
    HeaderName, HeaderValue, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE, LOCATION, RANGE, TE,
    TRANSFER_ENCODING, UPGRADE, VARY,
};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;

use super::body::{self, ProxyBody};
use super::upload::{self, Sent};
use super::upstream::{GOODBYE, Unavailable, Upstream};
use super::{Context, inject, page, server};
use crate::host::{is_loopback, split_authority};
use crate::reload::http::is_protocol_path;
use crate::report;

/// `Keep-Alive`, which `http` has no constant for.
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// `X-Forwarded-For`: the browser's address, after any a proxy in front added.
const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
/// `X-Forwarded-Host`: the host the browser asked for.
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// `X-Forwarded-Proto`: the scheme the browser used.
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// `Via`: the proxies a request went through.
const VIA: HeaderName = HeaderName::from_static("via");

/// How many headers [`HOP_BY_HOP`] lists.
const HOP_COUNT: usize = 5;
/// Where `Transfer-Encoding` is in [`HOP_BY_HOP`].
const TRANSFER_ENCODING_AT: usize = 3;

/// Headers that concern one connection only, besides those `Connection` names;
/// `Connection` itself comes first.
static HOP_BY_HOP: [HeaderName; HOP_COUNT] =
    [CONNECTION, KEEP_ALIVE, TE, TRANSFER_ENCODING, UPGRADE];

/// The browser end of one connection, and the `X-Forwarded-For` value that names it,
/// made once per connection rather than once per request.
pub struct Peer {
    forwarded_for: HeaderValue,
}

impl Peer {
    /// The browser at `address`.
    pub fn new(address: SocketAddr) -> Peer {
        let forwarded_for = HeaderValue::try_from(address.ip().to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("unknown"));
        Peer { forwarded_for }
    }

    /// `X-Forwarded-For` for a request from this browser: its address, after any that
    /// proxies in front of us added (on one line or several).
    fn forwarded_for(&self, headers: &HeaderMap) -> HeaderValue {
        after_earlier(headers, &X_FORWARDED_FOR, &self.forwarded_for)
    }
}

/// This process's entry in `Via` (`1.1 reloadsup-PID-NANOS`), made once at start: the
/// time tells apart two proxies that had the same process id.
pub fn own_via() -> HeaderValue {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    HeaderValue::try_from(format!("1.1 reloadsup-{}-{nanos}", std::process::id()))
        .expect("digits and letters are a valid header value")
}

/// Whether the request already went through this proxy: one of its `Via` entries is
/// `own`.
fn came_back(headers: &HeaderMap, own: &HeaderValue) -> bool {
    let own = own.as_bytes();
    headers.get_all(VIA).iter().any(|value| {
        value
            .as_bytes()
            .split(|&b| b == b',')
            .any(|entry| entry.trim_ascii() == own)
    })
}

/// `Via` for the dev server: the entries proxies in front of us added, then ours.
fn via_with(headers: &HeaderMap, own: &HeaderValue) -> HeaderValue {
    after_earlier(headers, &VIA, own)
}

/// A list header (`Via`, `X-Forwarded-For`) for the dev server: the entries that
/// proxies in front of us added, on one line or several, then `own`.
fn after_earlier(headers: &HeaderMap, name: &HeaderName, own: &HeaderValue) -> HeaderValue {
    let earlier: Vec<&str> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let Some(own_text) = own.to_str().ok().filter(|_| !earlier.is_empty()) else {
        return own.clone();
    };
    HeaderValue::try_from(format!("{}, {own_text}", earlier.join(", ")))
        .unwrap_or_else(|_| own.clone())
}

/// Forwards `request` (whose `Host` is `host`, already checked) from the browser at
/// `peer`, and returns the dev server's answer, injected into if it is a document.
/// An answer that comes before the request's body went whole to the server says
/// `Connection: close` (see `upload`).
pub async fn forward(
    context: &Context,
    peer: &Peer,
    mut request: Request<Incoming>,
    host: &str,
) -> Response<ProxyBody> {
    if came_back(request.headers(), &context.via) {
        return page::plain(
            StatusCode::LOOP_DETECTED,
            &format!(
                "reloadsup: this request came back to the proxy that forwarded it: the \
                 upstream {} leads back to reloadsup itself; point it at the dev server",
                context.upstream.address()
            ),
        );
    }
    if let Some(coding) = unknown_coding(request.headers()) {
        // Its body arrives decoded of `chunked` alone, and would go on without the
        // other coding's name: the server would take the still-coded bytes for the body.
        return page::plain(
            StatusCode::NOT_IMPLEMENTED,
            &format!(
                "reloadsup: the request's body is sent with the transfer coding \
                 `{coding}`, which the proxy does not decode; send it without"
            ),
        );
    }
    let navigation = crate::inject::is_navigation(request.headers());
    let upgrade = upgrade_protocol(request.headers());
    let asking = Asking {
        asked: page::Asked::new(request.method()),
        navigation,
        // Taken before the request is passed on: the browser's side of a switched
        // protocol.
        browser_side: upgrade.is_some().then(|| hyper::upgrade::on(&mut request)),
        host,
        proto: forwarded_proto(request.headers()),
    };
    let for_hub = own_endpoint(&request, asking.browser_side.as_ref());
    let (outgoing, sent) = upstream_request(request, peer, host, navigation, upgrade, &context.via);
    let is_upgrade = asking.browser_side.is_some();
    let sending = context.upstream.send(outgoing, is_upgrade);
    let answered = if for_hub.is_some() && is_upgrade {
        unanswered_is_none(&context.upstream, sending).await
    } else {
        sending.await
    };
    if answered.is_err() && sent.broken() {
        // Not the server's fault: a 502 page blamed it.
        return page::plain(
            StatusCode::BAD_REQUEST,
            "reloadsup: the request's body was malformed or cut off before its end",
        );
    }
    if let Some(for_hub) = for_hub {
        // Nothing of the server's there: no server, no such file, no socket (the `ws`
        // library answers any upgrade it does not handle with 400).
        let none_there = match &answered {
            Err(_) => true,
            Ok(r) if is_upgrade => r.status() != StatusCode::SWITCHING_PROTOCOLS,
            Ok(r) => matches!(
                r.status(),
                StatusCode::NOT_FOUND
                    | StatusCode::METHOD_NOT_ALLOWED
                    | StatusCode::NOT_IMPLEMENTED
            ),
        };
        if none_there {
            return server::from_hub(context, for_hub, host);
        }
        if !is_upgrade && answered.as_ref().is_ok_and(is_script) {
            warn_own_client();
        }
    }
    let mut response = answer(context, asking, answered).await;
    if !sent.whole() && response.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The browser may still be sending its body, which is read and dropped; but
        // past the limit, or if it is cut off, the connection closes after this answer,
        // and a browser told `keep-alive` would lose its next request on it.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// For a request to one of the LiveReload protocol's own paths (`GET`/`HEAD`
/// `/livereload.js`, or the socket `/livereload`), a copy the hub can answer, its
/// `browser_side` included. Such a request goes to the dev server first: one with a
/// client of its own (Hugo, mkdocs, python-livereload) keeps it. Where the server has
/// nothing there (no server to ask; the script a 404, 405 or 501; the socket anything
/// but a switch of protocols), the hub answers: a page with a
/// hand-written `<script src="/livereload.js">` gets no tag of ours, having a client,
/// and the server's 404 left it with none, so it never reloaded.
fn own_endpoint(
    request: &Request<Incoming>,
    browser_side: Option<&OnUpgrade>,
) -> Option<Request<()>> {
    let asks = matches!(*request.method(), Method::GET | Method::HEAD);
    if !asks || !is_protocol_path(request.uri().path()) {
        return None;
    }
    let mut copy = Request::new(());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.version_mut() = request.version();
    *copy.headers_mut() = request.headers().clone();
    if let Some(side) = browser_side {
        copy.extensions_mut().insert(side.clone());
    }
    Some(copy)
}

/// Whether an answer is a script: a server that answers every path with its page (a
/// single-page app's fallback) serves no client at `/livereload.js`.
fn is_script(response: &Response<ProxyBody>) -> bool {
    response.status().is_success()
        && inject::content_type(response.headers()).is_some_and(|value| {
            let value = value.as_bytes().to_ascii_lowercase();
            memchr::memmem::find(&value, b"javascript").is_some()
        })
}

/// Says once per run that the dev server serves a `/livereload.js` of its own (Hugo's,
/// python-livereload's): a page that loads it gets no tag of ours (it has a client), and
/// that client, the server's, does not reload the page when reloadsup restarts the
/// server (it reconnects in silence), so such a page missed every restart's reload
/// with no word why.
fn warn_own_client() {
    static WARNED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if WARNED.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return;
    }
    report::warn(
        "the dev server serves a `/livereload.js` of its own: its pages get no reload \
         script of reloadsup's, and are not reloaded when reloadsup restarts the server; \
         turn the server's own live reload off (`hugo server --disableLiveReload`) for the \
         proxy to put its own in",
    );
}

/// How long the dev server has to answer an upgrade to the protocol's socket
/// (`/livereload`) before the hub takes it, from when the server is up: a server that
/// listens for upgrades on its own paths only (Vite's and Next.js's sockets) leaves one
/// to another path unanswered, and the page's client would wait for it as long as the
/// connection lasts.
const OWN_SOCKET_ANSWER_WITHIN: Duration = Duration::from_secs(1);

/// The dev server's answer to an upgrade to the protocol's socket, or no server there
/// when it gives none within [`OWN_SOCKET_ANSWER_WITHIN`] of being up. A request held
/// through a restart is not one left unanswered: python-livereload's own socket, asked
/// while its server took 2 s to start, went to the hub.
async fn unanswered_is_none(
    upstream: &Upstream,
    sending: impl Future<Output = Result<Response<ProxyBody>, Unavailable>>,
) -> Result<Response<ProxyBody>, Unavailable> {
    let mut sending = std::pin::pin!(sending);
    tokio::select! {
        answered = &mut sending => return answered,
        () = upstream.up() => {}
    }
    tokio::time::timeout(OWN_SOCKET_ANSWER_WITHIN, sending)
        .await
        .unwrap_or_else(|_| {
            Err(Unavailable::Malformed(
                "it left the upgrade unanswered".into(),
            ))
        })
}

/// What the handling of an answer needs to know of the request it answers.
struct Asking<'a> {
    asked: page::Asked,
    /// A page navigation: a document answering it gets the tag.
    navigation: bool,
    /// The browser's side of a protocol switch it asked for.
    browser_side: Option<OnUpgrade>,
    /// The `Host`, as checked.
    host: &'a str,
    /// The scheme the browser used.
    proto: &'static str,
}

/// The browser's answer, from the dev server's (`answered`) or the 502 page.
async fn answer(
    context: &Context,
    asking: Asking<'_>,
    answered: Result<Response<ProxyBody>, Unavailable>,
) -> Response<ProxyBody> {
    let Asking {
        asked,
        navigation,
        browser_side,
        host,
        proto,
    } = asking;
    let mut response = match answered {
        Ok(response) => response,
        Err(why) => return page::unavailable(&why, &asked),
    };
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        let Some(browser_side) = browser_side else {
            // Not asked for: what follows on the connection is no HTTP answer.
            let why = Unavailable::Malformed(
                "it switched protocols (101) though the request asked for no upgrade".into(),
            );
            return page::unavailable(&why, &asked);
        };
        return tunnel(response, browser_side, context.upstream.cut_signal());
    }
    strip_hop_by_hop(response.headers_mut());
    let status = response.status();
    revalidated(status, response.headers_mut());
    if response.headers().contains_key(LOCATION) {
        let proxy_origin = format!("{proto}://{host}");
        rewrite_location(
            response.headers_mut(),
            context.upstream.address(),
            &proxy_origin,
        );
    }
    *response.version_mut() = Version::HTTP_11;
    if navigation && !asked.head_only() {
        response = inject::typed_if_page(response, &asked).await;
    }
    if !inject::is_document(&response) {
        if navigation {
            inject::warn_if_shown_as_text(&response);
        }
        return quiet_event_stream(response, &context.upstream);
    }
    // The same URL is answered with the tag or without, as the request says: a cache
    // must not give one for the other.
    response.headers_mut().append(
        VARY,
        HeaderValue::from_static("Sec-Fetch-Dest, Sec-Fetch-Mode, Accept"),
    );
    if navigation {
        let restarts = context.upstream.cut_signal();
        inject::apply(response, &asked, host, proto, restarts).await
    } else {
        response
    }
}

/// An event stream (`text/event-stream`) framed by the connection or by chunks ends as
/// a whole answer where a restart cuts the dev server's side off (`upstream`'s cut
/// signal, taken here for event streams alone, says so): the browser's `EventSource` reconnects either way, and a cut-off
/// stream logged `net::ERR_INCOMPLETE_CHUNKED_ENCODING` in the page's console at each
/// restart. A partial event at the end is dropped by the reader, as at any end of
/// stream. Any other streamed answer that is no page (a download) still breaks off, so
/// it is not taken for whole; a page opened in a tab ends too (see [`inject::apply`]).
fn quiet_event_stream(response: Response<ProxyBody>, upstream: &Upstream) -> Response<ProxyBody> {
    use hyper::body::Body as _;
    let event_stream = inject::content_type(response.headers()).is_some_and(|value| {
        let essence = value.as_bytes().split(|&b| b == b';').next().unwrap_or(b"");
        essence
            .trim_ascii()
            .eq_ignore_ascii_case(b"text/event-stream")
    });
    if !event_stream || response.body().size_hint().exact().is_some() {
        return response;
    }
    let restarts = upstream.cut_signal();
    response.map(|body| body::ending_quietly(body, restarts))
}

/// Makes an answer that says nothing of how long it may be reused (no `Expires`, and
/// no `max-age`, `s-maxage`, `no-cache` or `no-store` in its `Cache-Control`, which may
/// say `public` alone) one the browser asks the server about before each use: a dev
/// server's static files often carry `Last-Modified` alone (Python's `http.server`,
/// Django's `runserver`), and a browser reuses such a file for a tenth of its age
/// without asking (heuristic freshness), so a page reloaded after a save ran the old
/// script and the old stylesheet's `@import`s. With `no-cache` an unchanged file still
/// costs only a `304`. An answer that says how long it may be reused is left as the
/// server wrote it, and so is a `304`, whose headers would replace the stored answer's.
fn revalidated(status: StatusCode, headers: &mut HeaderMap) {
    if status == StatusCode::NOT_MODIFIED || headers.contains_key(EXPIRES) {
        return;
    }
    let says_how_long = headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|directive| {
            let (name, value) = match directive.split_once('=') {
                Some((name, value)) => (name.trim(), Some(value)),
                None => (directive.trim(), None),
            };
            // `no-cache="Set-Cookie"` is about one header: the rest may be reused.
            let bare_no_cache = name.eq_ignore_ascii_case("no-cache") && value.is_none();
            bare_no_cache
                || ["max-age", "s-maxage", "no-store"]
                    .iter()
                    .any(|known| name.eq_ignore_ascii_case(known))
        });
    if !says_how_long {
        headers.append(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
}

/// Whether a request path names a file of a type that is no page (`/report.pdf`,
/// `/clip.mp4`, `/logo.png`): opened in a tab, it is a navigation all the same, and it
/// keeps its `Range` and validators (a video or a PDF was sent whole each time, never
/// a 304). Only media, fonts, documents and archives count: `.php`, `.jsp` and the
/// like are pages a dev server renders.
fn names_other_type(path: &str) -> bool {
    mime_guess::from_path(path).first().is_some_and(|guessed| {
        matches!(
            guessed.type_().as_str(),
            "image" | "video" | "audio" | "font"
        ) || matches!(
            guessed.essence_str(),
            "application/pdf" | "application/zip" | "application/gzip" | "application/wasm"
        )
    })
}

/// The request as the dev server gets it, and the handle that tells whether its body
/// went whole.
fn upstream_request(
    request: Request<Incoming>,
    peer: &Peer,
    host: &str,
    navigation: bool,
    upgrade: Option<HeaderValue>,
    via: &HeaderValue,
) -> (Request<ProxyBody>, Sent) {
    let (mut parts, incoming) = request.into_parts();
    let headers = &mut parts.headers;
    let trailers = accepts_trailers(headers);
    strip_hop_by_hop(headers);
    if trailers {
        headers.insert(TE, HeaderValue::from_static("trailers"));
    }
    let via = via_with(headers, via);
    headers.insert(VIA, via);
    headers.remove(EXPECT);
    if let Some(protocol) = upgrade {
        headers.insert(UPGRADE, protocol);
        headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    }
    if navigation && !names_other_type(parts.uri.path()) {
        // We may inject: ask for bytes we can read, and for the whole document, sent
        // again even if unchanged: a copy the browser holds from a `fetch` has no tag.
        headers.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
        for name in [RANGE, IF_RANGE, IF_NONE_MATCH, IF_MODIFIED_SINCE] {
            headers.remove(name);
        }
    }
    // The host that was checked: the `Host` header, or the URI's authority in an
    // absolute-form request (`GET http://host/ HTTP/1.1`), which then wins.
    let host_kept = headers
        .get(HOST)
        .is_some_and(|v| v.as_bytes() == host.as_bytes());
    if !host_kept {
        if let Ok(value) = HeaderValue::from_str(host) {
            headers.insert(HOST, value);
        }
    }
    let forwarded_for = peer.forwarded_for(headers);
    headers.insert(X_FORWARDED_FOR, forwarded_for);
    if !headers.contains_key(X_FORWARDED_HOST) {
        if let Some(value) = headers.get(HOST).cloned() {
            headers.insert(X_FORWARDED_HOST, value);
        }
    }
    if !headers.contains_key(X_FORWARDED_PROTO) {
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
    }
    if parts.uri.authority().is_some() {
        // The dev server gets the path and query alone (origin form).
        let path = parts.uri.path_and_query().cloned();
        parts.uri = path.map_or_else(|| Uri::from_static("/"), Uri::from);
    }
    parts.version = Version::HTTP_11;
    let (body, sent) = upload::upload(incoming);
    (Request::from_parts(parts, body), sent)
}

/// The protocol a request asks to switch to (`Upgrade`, with `upgrade` among the
/// `Connection` tokens), if any.
fn upgrade_protocol(headers: &HeaderMap) -> Option<HeaderValue> {
    let asks = connection_tokens(headers).any(|t| t.eq_ignore_ascii_case("upgrade"));
    asks.then(|| headers.get(UPGRADE).cloned()).flatten()
}

/// The scheme the browser used: `https` when a terminator in front says so.
fn forwarded_proto(headers: &HeaderMap) -> &'static str {
    let proto = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    match proto {
        Some(p) if p.eq_ignore_ascii_case("https") => "https",
        _ => "http",
    }
}

/// Whether the browser takes trailers (`TE: trailers`).
fn accepts_trailers(headers: &HeaderMap) -> bool {
    tokens(headers, TE).any(|coding| {
        let name = coding.split(';').next().unwrap_or_default();
        name.trim_end().eq_ignore_ascii_case("trailers")
    })
}

/// The comma-separated tokens of every `Connection` header.
fn connection_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    tokens(headers, CONNECTION)
}

/// A transfer coding of a request other than `chunked` (`Transfer-Encoding: gzip,
/// chunked`), which RFC 9112 (6.1) answers with 501: hyper takes off the `chunked` alone.
fn unknown_coding(headers: &HeaderMap) -> Option<&str> {
    tokens(headers, TRANSFER_ENCODING).find(|coding| !coding.eq_ignore_ascii_case("chunked"))
}

/// The comma-separated tokens of every `name` header, trimmed, empty ones left out.
fn tokens(headers: &HeaderMap, name: HeaderName) -> impl Iterator<Item = &str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// Removes the headers that concern one connection only. Most messages have none, or
/// only `Connection: keep-alive`, so one look over the names finds what to remove
/// before anything is built.
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let mut present = [false; HOP_COUNT];
    let mut any_proxy = false;
    for name in headers.keys() {
        let name = name.as_str();
        match HOP_BY_HOP.iter().position(|hop| hop.as_str() == name) {
            Some(i) => present[i] = true,
            None => any_proxy |= name.starts_with("proxy-"),
        }
    }
    let mut named: Vec<HeaderName> = Vec::new();
    if present[0] {
        named.extend(
            connection_tokens(headers)
                .filter(|token| !is_fixed_token(token))
                .filter_map(|token| HeaderName::from_bytes(token.as_bytes()).ok()),
        );
    }
    if any_proxy {
        named.extend(headers.keys().filter(|n| is_proxy_header(n)).cloned());
    }
    if present[TRANSFER_ENCODING_AT] {
        // The message is framed by its transfer coding, which wins over a
        // `Content-Length` beside it (RFC 9112, 6.3); passing that length on would cut
        // the body short and put the connection out of step.
        headers.remove(CONTENT_LENGTH);
    }
    let fixed = HOP_BY_HOP.iter().zip(present).filter(|(_, here)| *here);
    for name in fixed.map(|(name, _)| name).chain(&named) {
        headers.remove(name);
    }
}

/// `Proxy-Authorization`, `Proxy-Connection` and the like.
fn is_proxy_header(name: &HeaderName) -> bool {
    name.as_str().starts_with("proxy-")
}

/// A `Connection` token that names no header of its own to remove: `close`, or one of
/// the hop-by-hop headers removed anyway.
fn is_fixed_token(token: &str) -> bool {
    token.eq_ignore_ascii_case("close")
        || HOP_BY_HOP
            .iter()
            .any(|name| token.eq_ignore_ascii_case(name.as_str()))
}

/// Points a `Location` aimed at the dev server's own address at the proxy instead (one
/// in raw UTF-8, not percent-encoded, too).
fn rewrite_location(headers: &mut HeaderMap, upstream: &str, proxy_origin: &str) {
    let rewritten = headers
        .get(LOCATION)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|location| relocated(location, upstream, proxy_origin));
    if let Some(value) = rewritten.and_then(|l| HeaderValue::from_bytes(l.as_bytes()).ok()) {
        headers.insert(LOCATION, value);
    }
}

/// `location` with the upstream origin replaced by `proxy_origin`, if it points there:
/// `http://UPSTREAM/…` or `//UPSTREAM/…`; for a loopback upstream, any loopback name
/// with its port (`localhost:8000` for `127.0.0.1:8000`).
fn relocated(location: &str, upstream: &str, proxy_origin: &str) -> Option<String> {
    // Compared as bytes: the location may be UTF-8, and byte 7 inside a character.
    let http = location.len() > 7 && location.as_bytes()[..7].eq_ignore_ascii_case(b"http://");
    let (after_scheme, keep_scheme) = if http {
        (&location[7..], false)
    } else if let Some(rest) = location.strip_prefix("//") {
        (rest, true)
    } else {
        return None;
    };
    let end = after_scheme
        .find(['/', '?', '#'])
        .unwrap_or(after_scheme.len());
    let (authority, rest) = after_scheme.split_at(end);
    let (host, port) = split_authority(authority)?;
    let (up_host, up_port) = split_authority(upstream)?;
    let port = port.unwrap_or(80);
    let up_port = up_port.unwrap_or(80);
    let host = host.to_ascii_lowercase();
    let up_host = up_host.to_ascii_lowercase();
    let loopback = |h: &str| is_loopback(h) || h == "0.0.0.0" || h == "[::]";
    let same = port == up_port && (host == up_host || (loopback(&host) && loopback(&up_host)));
    if !same {
        return None;
    }
    Some(if keep_scheme {
        let without_scheme = proxy_origin
            .split_once("://")
            .map_or(proxy_origin, |(_, a)| a);
        format!("//{without_scheme}{rest}")
    } else {
        format!("{proxy_origin}{rest}")
    })
}

/// How long a tunnel stays open one way, once the other side has closed its end, with
/// nothing moving: a browser gone without a WebSocket close (a FIN alone) left the pair
/// open for as long as an app that never closes its side ran, two descriptors each.
/// Bytes still moving keep it open (a protocol whose client closes its sending side
/// and then reads the answer).
const HALF_CLOSED: Duration = Duration::from_secs(2);

/// Copies bytes both ways between `browser` and `server`; when one side ends, its end
/// is passed on, and the other way goes on while bytes move in it (see
/// [`HALF_CLOSED`]).
async fn relay_both<B, S>(browser: B, server: S)
where
    B: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut from_browser, mut to_browser) = tokio::io::split(browser);
    let (mut from_server, mut to_server) = tokio::io::split(server);
    let (up_ended, up_seen) = tokio::sync::watch::channel(false);
    let (down_ended, down_seen) = tokio::sync::watch::channel(false);
    let up = async {
        let copied = one_way(&mut from_browser, &mut to_server, down_seen).await;
        up_ended.send_replace(true);
        copied
    };
    let down = async {
        let copied = one_way(&mut from_server, &mut to_browser, up_seen).await;
        down_ended.send_replace(true);
        copied
    };
    let (up, down) = tokio::join!(up, down);
    if let Some(err) = up.err().or(down.err()) {
        report::debug(format!("proxy: tunnel ended: {err}"));
    }
}

/// Copies `from` to `to` until `from` ends (whose end is then passed on) — or, once
/// `other` says the other way has ended, until nothing has moved for [`HALF_CLOSED`].
async fn one_way<R, W>(
    from: &mut R,
    to: &mut W,
    mut other: tokio::sync::watch::Receiver<bool>,
) -> std::io::Result<()>
where
    R: tokio::io::AsyncRead + Unpin,
    W: tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut buffer = vec![0; 16 * 1024];
    loop {
        let n = if *other.borrow() {
            match tokio::time::timeout(HALF_CLOSED, from.read(&mut buffer)).await {
                Ok(read) => read?,
                Err(_) => return Ok(()),
            }
        } else {
            tokio::select! {
                read = from.read(&mut buffer) => read?,
                // The other way ended: read again, now with the idle limit (`read` is
                // cancel-safe: nothing was read).
                _ = other.changed() => continue,
            }
        };
        if n == 0 {
            return to.shutdown().await;
        }
        let write = to.write_all(&buffer[..n]);
        if *other.borrow() {
            match tokio::time::timeout(HALF_CLOSED, write).await {
                Ok(written) => written?,
                Err(_) => return Ok(()),
            }
        } else {
            write.await?;
        }
    }
}

/// Answers the browser's upgrade with the dev server's 101 and copies bytes both ways
/// once both sides have switched, until both sides close (one of them [`HALF_CLOSED`]
/// after the other) or, at a restart, the old server has had [`GOODBYE`] to close it
/// with a goodbye of its own.
fn tunnel(
    mut response: Response<ProxyBody>,
    browser_side: OnUpgrade,
    mut restarts: tokio::sync::watch::Receiver<u64>,
) -> Response<ProxyBody> {
    let server_side = hyper::upgrade::on(&mut response);
    tokio::spawn(async move {
        match tokio::try_join!(browser_side, server_side) {
            Ok((browser, server)) => {
                let (browser, server) = (TokioIo::new(browser), TokioIo::new(server));
                let cut = async move {
                    if restarts.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    tokio::time::sleep(GOODBYE).await;
                };
                tokio::select! {
                    () = relay_both(browser, server) => {}
                    () = cut => report::debug("proxy: tunnel closed for the restart"),
                }
            }
            Err(err) => report::debug(format!("proxy: upgrade failed: {err}")),
        }
    });
    // The browser's side speaks HTTP/1.1, whatever the server's answer said: a browser
    // takes only an `HTTP/1.1 101` for a WebSocket's switch.
    *response.version_mut() = Version::HTTP_11;
    response.map(|_| body::empty())
}

#[cfg(test)]
mod tests {
    #[test]
    fn media_and_documents_are_no_pages_and_the_rest_may_be() {
        for path in [
            "/report.pdf",
            "/clip.MP4",
            "/logo.png",
            "/a/b.woff2",
            "/dist.zip",
        ] {
            assert!(names_other_type(path), "{path}");
        }
        for path in [
            "/",
            "/about",
            "/index.html",
            "/index.php",
            "/page.jsp",
            "/x.cgi",
        ] {
            assert!(!names_other_type(path), "{path}");
        }
    }

    use super::*;

    #[test]
    fn locations_at_the_upstream_point_at_the_proxy() {
        let proxy = "http://localhost:5000";
        let cases = [
            (
                "http://127.0.0.1:8000/page?x=1",
                Some("http://localhost:5000/page?x=1"),
            ),
            ("HTTP://LOCALHOST:8000", Some("http://localhost:5000")),
            ("http://[::1]:8000#top", Some("http://localhost:5000#top")),
            ("//127.0.0.1:8000/a", Some("//localhost:5000/a")),
            ("http://127.0.0.1:8001/", None),
            ("http://example.com:8000/", None),
            ("https://127.0.0.1:8000/", None),
            ("/relative", None),
            ("http://127.0.0.1:8000@evil.example/", None),
            ("/aaaaaé", None),
            (
                "http://127.0.0.1:8000/café",
                Some("http://localhost:5000/café"),
            ),
        ];
        for (location, expected) in cases {
            assert_eq!(
                relocated(location, "127.0.0.1:8000", proxy).as_deref(),
                expected,
                "{location}"
            );
        }
        assert_eq!(
            relocated(
                "http://app.internal:80/x",
                "app.internal:80",
                "https://dev.test"
            )
            .as_deref(),
            Some("https://dev.test/x")
        );
    }

    #[test]
    fn a_location_in_raw_utf8_is_rewritten_too() {
        let mut headers = HeaderMap::new();
        let raw = HeaderValue::from_bytes("http://127.0.0.1:8000/café".as_bytes()).unwrap();
        headers.insert(LOCATION, raw);
        rewrite_location(&mut headers, "127.0.0.1:8000", "http://localhost:5000");
        assert_eq!(
            headers[LOCATION].as_bytes(),
            "http://localhost:5000/café".as_bytes()
        );
    }

    #[test]
    fn every_forwarded_for_line_is_kept() {
        let peer = Peer::new("127.0.0.1:40000".parse().unwrap());
        let mut headers = HeaderMap::new();
        assert_eq!(peer.forwarded_for(&headers), "127.0.0.1");
        headers.append(
            X_FORWARDED_FOR,
            HeaderValue::from_static("1.2.3.4, 5.6.7.8"),
        );
        headers.append(X_FORWARDED_FOR, HeaderValue::from_static("9.9.9.9"));
        assert_eq!(
            peer.forwarded_for(&headers),
            "1.2.3.4, 5.6.7.8, 9.9.9.9, 127.0.0.1"
        );
    }

    #[test]
    fn hop_by_hop_headers_go_and_end_to_end_ones_stay() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Private"),
            ("x-private", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic x"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("cookie", "a=b"),
            ("host", "localhost:5000"),
        ] {
            headers.append(name, value.parse().expect("a header value"));
        }
        strip_hop_by_hop(&mut headers);
        let mut left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["cookie", "host"]);
    }

    #[test]
    fn a_length_beside_a_transfer_coding_goes_and_a_length_alone_stays() {
        let mut framed = HeaderMap::new();
        framed.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        framed.append(TRANSFER_ENCODING, HeaderValue::from_static("chunked"));
        strip_hop_by_hop(&mut framed);
        assert!(framed.is_empty(), "{framed:?}");

        let mut sized = HeaderMap::new();
        sized.append(CONTENT_LENGTH, HeaderValue::from_static("5"));
        strip_hop_by_hop(&mut sized);
        assert_eq!(sized[CONTENT_LENGTH], "5");
    }

    #[test]
    fn an_answer_silent_on_caching_is_asked_about_each_time_and_others_are_kept() {
        let mut silent = HeaderMap::new();
        silent.append(
            "last-modified",
            HeaderValue::from_static("Mon, 30 Nov 2026 08:00:00 GMT"),
        );
        revalidated(StatusCode::OK, &mut silent);
        assert_eq!(silent[CACHE_CONTROL], "no-cache");
        // `public` alone says nothing of how long.
        let mut public = HeaderMap::new();
        public.append(CACHE_CONTROL, HeaderValue::from_static("Public"));
        revalidated(StatusCode::OK, &mut public);
        let values: Vec<_> = public.get_all(CACHE_CONTROL).iter().collect();
        assert_eq!(values, ["Public", "no-cache"]);
        // Nor `no-cache` about one header only.
        let mut scoped = HeaderMap::new();
        scoped.append(
            CACHE_CONTROL,
            HeaderValue::from_static("no-cache=\"Set-Cookie\""),
        );
        revalidated(StatusCode::OK, &mut scoped);
        assert_eq!(scoped.get_all(CACHE_CONTROL).iter().count(), 2);
        for (status, name, value) in [
            (
                StatusCode::OK,
                CACHE_CONTROL,
                "public, max-age=31536000, immutable",
            ),
            (StatusCode::OK, CACHE_CONTROL, "private, No-Store"),
            (StatusCode::OK, CACHE_CONTROL, "s-maxage=60"),
            (StatusCode::OK, EXPIRES, "Tue, 01 Dec 2026 08:00:00 GMT"),
            (StatusCode::NOT_MODIFIED, hyper::header::ETAG, "\"v1\""),
        ] {
            let mut said = HeaderMap::new();
            said.append(name.clone(), HeaderValue::from_static(value));
            revalidated(status, &mut said);
            assert_eq!(said.len(), 1, "{said:?}");
            assert_eq!(said[name], value);
        }
    }
}
