//! The proxy over real sockets: a real dev server (hyper, or Python's `wsgiref`), a
//! real [`Proxy`] in front of it, and HTTP clients (hyper's, or a raw socket where the
//! bytes on the wire are the point) talking to it.

mod forwarding;
mod injection;
mod states;
mod upstream;

use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;

use super::{Patience, Proxy, UpstreamState};
use crate::reload::Hub;

/// Long enough for anything that should happen; tests finish well within it.
const PATIENCE: Duration = Duration::from_secs(5);

/// A proxy in front of `upstream` (`host:port`), already `Ready`.
fn proxy(upstream: &str) -> Proxy {
    proxy_with(upstream, &[], Patience::new(PATIENCE), UpstreamState::Ready)
}

fn proxy_with(upstream: &str, allowed: &[&str], patience: Patience, state: UpstreamState) -> Proxy {
    start("127.0.0.1:0", upstream, allowed, patience, state)
}

/// A proxy on `listen` in front of `upstream`, already `Ready`.
fn proxy_with_listen(listen: &str, upstream: &str) -> Proxy {
    start(
        listen,
        upstream,
        &[],
        Patience::new(PATIENCE),
        UpstreamState::Ready,
    )
}

fn start(
    listen: &str,
    upstream: &str,
    allowed: &[&str],
    patience: Patience,
    state: UpstreamState,
) -> Proxy {
    let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
    let proxy = Proxy::start_with(
        listen,
        "proxy.listen",
        upstream,
        &allowed,
        Hub::new(&[], true),
        patience,
    )
    .expect("a free port on loopback");
    proxy.set_state(state);
    proxy
}

/// An answer, read to its end.
#[derive(Debug)]
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(name)
            .map(|v| v.to_str().expect("a text header"))
    }
}

/// Browser-like headers for a page navigation.
const NAVIGATE: [(&str, &str); 2] = [
    ("sec-fetch-dest", "document"),
    ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
];

/// A GET navigation of `path`.
#[track_caller]
fn navigate(addr: SocketAddr, path: &str) -> Reply {
    send(addr, "GET", path, &NAVIGATE, Vec::new())
}

/// Sends one request on a new connection and reads the answer. `Host` is
/// `localhost:PORT` unless `headers` name one.
#[track_caller]
fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
    let request = build(addr, method, path, headers, body);
    exchange(addr, vec![request]).pop().expect("one reply")
}

fn build(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Request<Full<Bytes>> {
    let mut request = Request::builder().method(method).uri(path);
    if !headers
        .iter()
        .any(|(name, _)| name.eq_ignore_ascii_case("host"))
    {
        request = request.header("host", format!("localhost:{}", addr.port()));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request
        .body(Full::new(Bytes::from(body)))
        .expect("a request")
}

/// Sends a GET of `path` (with `headers`) on a new connection and returns the first
/// frame of the answer's body, for bodies that stream (and may never end).
#[track_caller]
fn first_frame(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Bytes {
    let request = build(addr, "GET", path, headers, Vec::new());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let first = runtime.block_on(async move {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .expect("handshake");
        tokio::spawn(connection);
        let first = async {
            let mut response = sender.send_request(request).await.expect("an answer");
            response.body_mut().frame().await
        };
        tokio::time::timeout(PATIENCE, first)
            .await
            .expect("the head and first frame in time")
            .expect("a frame")
            .expect("no error")
    });
    first.into_data().expect("data")
}

/// Sends `requests` one after another on one keep-alive connection.
#[track_caller]
fn exchange(addr: SocketAddr, requests: Vec<Request<Full<Bytes>>>) -> Vec<Reply> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    runtime.block_on(async move {
        let work = async {
            let stream = tokio::net::TcpStream::connect(addr)
                .await
                .expect("connect to the proxy");
            // As many header fields as a browser takes, not hyper's default 100.
            let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
                .max_headers(1000)
                .handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(connection);
            let mut replies = Vec::new();
            for request in requests {
                sender.ready().await.expect("the connection stays open");
                let response = sender.send_request(request).await.expect("an answer");
                let (parts, body) = response.into_parts();
                let body = body
                    .collect()
                    .await
                    .expect("a whole body")
                    .to_bytes()
                    .to_vec();
                replies.push(Reply {
                    status: parts.status,
                    headers: parts.headers,
                    body,
                });
            }
            replies
        };
        tokio::time::timeout(PATIENCE, work)
            .await
            .expect("answers in time")
    })
}

/// A raw connection to the proxy, for what hyper's client hides.
fn raw(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the proxy");
    stream.set_read_timeout(Some(PATIENCE)).expect("a timeout");
    stream
}
