//! The proxy's listener thread and its routing: each connection is served by hyper's
//! HTTP/1 server (keep-alive, upgrades enabled); each request's `Host` and `Origin` are
//! checked, then `/__reloadsup/` goes to the hub and everything else but `CONNECT`
//! (405: this is no tunnel) to the dev server (the protocol's own `/livereload.js` and
//! `/livereload` come back to the hub where the server has nothing there: `forward`).
//!
//! The socket is bound by the caller, synchronously, so an address in use is an error
//! at start-up rather than a line lost on another thread.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{CONNECTION, HeaderValue, ORIGIN};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::sync::watch;

use super::body::{BoxError, ProxyBody};
use super::forward::{self, Peer};
use super::{Context, page};
use crate::host;
use crate::reload::http::PREFIX;
use crate::report;

/// A browser must send a request head within this time (also how long an idle
/// keep-alive connection is kept).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// How long blocking work (name look-ups) may delay stopping.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(200);

/// Serves `listener` (bound, non-blocking) on `runtime` until `stopped` turns true,
/// then drops every connection. Runs on the calling thread.
pub fn run(
    runtime: Runtime,
    listener: std::net::TcpListener,
    context: Arc<Context>,
    mut stopped: watch::Receiver<bool>,
) {
    runtime.block_on(async move {
        let stop = async move {
            // A dropped sender stops the proxy too.
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        crate::web::accept_until(listener, "the proxy", stop, |stream, peer| {
            serve_connection(stream, peer, Arc::clone(&context))
        })
        .await;
    });
    runtime.shutdown_timeout(SHUTDOWN_GRACE);
}

/// Serves one browser connection.
async fn serve_connection(stream: TcpStream, address: SocketAddr, context: Arc<Context>) {
    let peer = Arc::new(Peer::new(address));
    // The address the browser connected to: the host of an HTTP/1.0 request without one.
    let local: Arc<str> = stream
        .local_addr()
        .map_or_else(|_| "".into(), |a| a.to_string().into());
    let service = service_fn(move |request| {
        let context = Arc::clone(&context);
        let peer = Arc::clone(&peer);
        let local = Arc::clone(&local);
        async move {
            let old_client = request.version() == Version::HTTP_10;
            let mut response = route(&context, &peer, &local, request).await;
            if old_client {
                close_if_unframed(&mut response);
            }
            Ok::<_, Infallible>(response)
        }
    });
    let connection = crate::web::http1(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(err) = connection.await {
        report::debug(format!("proxy: connection from {address}: {err}"));
    }
}

/// For an HTTP/1.0 client, which has no chunked coding: an answer of no known length
/// ends when the connection closes, so it says `Connection: close` (hyper said
/// `keep-alive` to a client that asked for it, then closed, and the client's next
/// request on it was lost). An answer that already says `close` is made an HTTP/1.0
/// one too, or hyper would add `keep-alive` beside it.
fn close_if_unframed(response: &mut Response<ProxyBody>) {
    use hyper::body::Body;
    let bodiless = matches!(
        response.status(),
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED
    ) || response.status().is_informational();
    let unframed = !bodiless && response.body().size_hint().exact().is_none();
    let closing = response
        .headers()
        .get(CONNECTION)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"close"));
    if unframed || closing {
        // As an HTTP/1.0 answer without `keep-alive`, hyper closes after it and says
        // nothing else; the header says so to the client as well.
        *response.version_mut() = Version::HTTP_10;
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
    }
}

/// Checks a request and sends it where it goes.
async fn route(
    context: &Context,
    peer: &Peer,
    local: &str,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    if host::misplaced_authority(request.method(), request.uri()) {
        let why = "the request target is no path (`/…`) or URL";
        return page::plain(StatusCode::BAD_REQUEST, why);
    }
    let fallback = (!local.is_empty()).then_some(local);
    let judged = context.hosts.judge(
        request.uri(),
        request.headers(),
        request.version(),
        fallback,
        "proxy.allowed_hosts",
    );
    let host = match judged {
        Ok(Some(host)) => host,
        Ok(None) => return page::plain(StatusCode::BAD_REQUEST, "a request needs one Host header"),
        Err((status, why)) => return page::plain(status, &why),
    };
    let origin = match host::single_header(request.headers(), ORIGIN) {
        Ok(origin) => origin,
        Err(_) => return page::plain(StatusCode::BAD_REQUEST, "malformed Origin header"),
    };
    if let Some(origin) = &origin {
        if !host::valid_origin(origin) {
            return page::plain(StatusCode::BAD_REQUEST, "malformed Origin header");
        }
    }
    if request.method() == Method::CONNECT {
        // Not a tunnel: a dev server would only see a mangled request.
        return page::plain(
            StatusCode::METHOD_NOT_ALLOWED,
            "reloadsup's proxy forwards to its dev server only; it does not tunnel CONNECT",
        );
    }
    if request.uri().path().starts_with(PREFIX) {
        return from_hub(context, request, &host);
    }
    forward::forward(context, peer, request, &host).await
}

/// The hub's answer to `request` (its script or its socket) on this origin. A page that
/// came through this proxy is the proxy's own: the hub need not judge its origin (it
/// accepts loopback ones, but not a LAN name or a tunnel), `host` being the one checked.
pub fn from_hub<B: Send + 'static>(
    context: &Context,
    mut request: Request<B>,
    host: &str,
) -> Response<ProxyBody> {
    host::forget_own_origin(request.headers_mut(), host);
    context.hub.handle(request).map(|full| {
        full.map_err(|never| -> BoxError { match never {} })
            .boxed_unsync()
    })
}
