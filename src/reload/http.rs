//! The HTTP side of the hub: `GET /livereload.js` and the WebSocket upgrade at
//! `/livereload`, both also under `/__reloadsup/`, as one handler any hyper server can
//! call: the standalone listener here, and the proxy and static server on their origins.
//!
//! The upgrade is checked by hand against RFC 6455 (method, `Upgrade`/`Connection`
//! tokens, version 13, a well-formed key, the `Origin`), answered with 101 by hyper, and
//! the switched connection handed to tokio-tungstenite; no framing is done here.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::hub::Hub;
use super::origin::Verdict;
use super::socket;
use crate::report;

/// Our client script, served at `/livereload.js`.
const SCRIPT: &str = include_str!("client.js");

/// Where the script holds the hub's [`Hub::generation`] as it is served.
const GENERATION_MARK: &str = "/* generation */0";

/// The namespace under which the endpoints are also served, so that a proxy or static
/// server can mount them on the page's own origin.
pub const PREFIX: &str = "/__reloadsup/";

/// Whether `path` is one of the LiveReload protocol's own at a site's root
/// (`/livereload.js`, the socket `/livereload`): a page's hand-written
/// `<script src="/livereload.js">` (python-livereload's and mkdocs' snippet, or a client
/// whose `?port=` names the site) loads the client from the page's origin and connects
/// there. The static server and the proxy answer these paths from the hub where the
/// site has nothing of its own at them.
pub fn is_protocol_path(path: &str) -> bool {
    matches!(path, "/livereload.js" | "/livereload")
}

impl Hub {
    /// Serves one request: `GET`/`HEAD` `/livereload.js` and the WebSocket upgrade at
    /// `/livereload`, both also under [`PREFIX`]; 404 for any other path.
    ///
    /// The socket itself runs on a task spawned with `tokio::spawn`, so this must be
    /// called on a tokio runtime, and the connection served with upgrades enabled
    /// (`hyper::server::conn::http1::Builder::serve_connection(..).with_upgrades()`).
    /// The request body is never read.
    pub fn handle<B: Send + 'static>(&self, mut req: Request<B>) -> Response<Full<Bytes>> {
        let path = req.uri().path();
        let endpoint = path.strip_prefix(PREFIX).or_else(|| path.strip_prefix('/'));
        match endpoint {
            Some("livereload.js") => match *req.method() {
                Method::GET | Method::HEAD => script(self.generation()),
                _ => not_allowed("GET, HEAD"),
            },
            Some("livereload") => match *req.method() {
                Method::GET => self.upgrade(&mut req),
                _ => not_allowed("GET"),
            },
            _ => plain(StatusCode::NOT_FOUND, "not found\n"),
        }
    }

    /// Checks a WebSocket upgrade request and, if it passes, answers 101 and hands the
    /// connection to a socket task once hyper has switched protocols.
    fn upgrade<B: Send + 'static>(&self, req: &mut Request<B>) -> Response<Full<Bytes>> {
        let headers = req.headers();
        if !has_token(headers, header::UPGRADE, "websocket")
            || !has_token(headers, header::CONNECTION, "upgrade")
        {
            let mut response = plain(
                StatusCode::UPGRADE_REQUIRED,
                "this is a WebSocket endpoint (LiveReload protocol 7)\n",
            );
            response
                .headers_mut()
                .insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            return response;
        }
        if headers
            .get(header::SEC_WEBSOCKET_VERSION)
            .map(HeaderValue::as_bytes)
            != Some(b"13")
        {
            let mut response = plain(StatusCode::UPGRADE_REQUIRED, "WebSocket version 13 only\n");
            response.headers_mut().insert(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            );
            return response;
        }
        let Some(key) = headers
            .get(header::SEC_WEBSOCKET_KEY)
            .filter(|k| valid_key(k))
        else {
            return plain(
                StatusCode::BAD_REQUEST,
                "missing or bad Sec-WebSocket-Key\n",
            );
        };
        let accept = derive_accept_key(key.as_bytes());
        if let Some(refusal) = self.check_origin(headers) {
            return refusal;
        }
        let Some(slot) = self.open_slot() else {
            return plain(StatusCode::SERVICE_UNAVAILABLE, "too many reload sockets\n");
        };

        let on_upgrade = hyper::upgrade::on(req);
        tokio::spawn(async move {
            match on_upgrade.await {
                Ok(upgraded) => socket::serve(slot, TokioIo::new(upgraded)).await,
                Err(err) => report::debug(format!("reload socket upgrade failed: {err}")),
            }
        });
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header(header::UPGRADE, "websocket")
            .header(header::CONNECTION, "Upgrade")
            .header(header::SEC_WEBSOCKET_ACCEPT, accept)
            .body(Full::default())
            .expect("static header names and a base64 accept key are valid")
    }

    /// `None` when the request's `Origin` is acceptable, else the 403 to answer.
    fn check_origin(&self, headers: &HeaderMap) -> Option<Response<Full<Bytes>>> {
        let mut values = headers.get_all(header::ORIGIN).iter();
        let (first, second) = (values.next(), values.next());
        let origin = first.map(|v| v.to_str().unwrap_or("\u{fffd}"));
        let verdict = match second {
            Some(_) => {
                self.warn_refused("(several Origin headers)", Verdict::Malformed);
                Verdict::Malformed
            }
            None => self.judge_origin(origin),
        };
        if verdict == Verdict::Allow {
            return None;
        }
        Some(plain(StatusCode::FORBIDDEN, "origin not allowed\n"))
    }
}

/// Whether any of the comma-separated values of header `name` is `token`, ignoring case
/// (`Connection: keep-alive, Upgrade` counts as `upgrade`).
fn has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers.get_all(name).iter().any(|value| {
        value.to_str().is_ok_and(|v| {
            v.split(',')
                .any(|part| part.trim().eq_ignore_ascii_case(token))
        })
    })
}

/// A `Sec-WebSocket-Key` is 16 bytes in base64: 22 alphabet characters and `==`.
fn valid_key(key: &HeaderValue) -> bool {
    let key = key.as_bytes();
    key.len() == 24
        && key.ends_with(b"==")
        && key[..22]
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/')
}

/// The client script, with the headers that let any page (even one with a
/// cross-origin embedder policy) load it and no cache keep an old one (which would
/// also keep an old `generation`, and so reload the page each time it loads).
fn script(generation: u64) -> Response<Full<Bytes>> {
    let script = SCRIPT.replacen(GENERATION_MARK, &generation.to_string(), 1);
    Response::builder()
        .header(header::CONTENT_TYPE, "text/javascript; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::X_CONTENT_TYPE_OPTIONS, "nosniff")
        .header("cross-origin-resource-policy", "cross-origin")
        .body(Full::new(Bytes::from(script)))
        .expect("static headers are valid")
}

fn not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut response = plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    response
}

fn plain(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .expect("static headers are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_must_be_16_bytes_of_base64() {
        let ok = |k: &'static str| valid_key(&HeaderValue::from_static(k));
        assert!(ok("dGhlIHNhbXBsZSBub25jZQ=="));
        assert!(!ok("dGhlIHNhbXBsZSBub25jZQ="));
        assert!(!ok("dGhlIHNhbXBsZSBub25j!Q=="));
        assert!(!ok(""));
    }

    #[test]
    fn the_accept_key_is_the_rfc_example() {
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn upgrade_tokens_are_found_in_lists_and_any_case() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, Upgrade"),
        );
        assert!(has_token(&headers, header::CONNECTION, "upgrade"));
        assert!(!has_token(&headers, header::UPGRADE, "websocket"));
    }
}
