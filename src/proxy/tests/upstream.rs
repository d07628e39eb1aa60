//! A real dev server for the proxy tests: hyper on its own thread and runtime, with a
//! route for each kind of answer the proxy must pass on (pages with and without a
//! head, gzip regardless of `Accept-Encoding`, chunked, a never-ending event stream,
//! a WebSocket echo, binary and JSON bodies, redirects, 204, a CSP nonce, an error
//! page, a page that streams without end, many header fields), a Python `wsgiref`
//! server for close-delimited HTTP/1.0 answers, and a raw server that answers every
//! request with the same bytes, for answers hyper would not send.

use std::convert::Infallible;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;

use flate2::Compression;
use flate2::write::GzEncoder;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;

use crate::proxy::body::{BoxError, ProxyBody};

/// A page with a head.
pub const PAGE: &str =
    "<!DOCTYPE html><html><head><title>t</title></head><body><p>hello</p></body></html>";
/// A page without one.
pub const NO_HEAD: &str = "<body class=\"x\"><p>no head</p></body>";
/// `</head>` and `</body>` where they do not count, then the real `</head>`.
pub const TRICKY: &str =
    "<head><script>var s = \"</head></body>\";</script><!-- </head> --></head><body></body>";
/// A page whose policy is in a `<meta>`, with the nonce [`NONCE`].
pub const CSP_META: &str = "<html><head><meta http-equiv=\"Content-Security-Policy\" \
                            content=\"script-src 'nonce-r4nd0m+/='\"></head><body></body></html>";
/// A page that loads the reload client itself.
pub const EXISTING: &str =
    "<head><script src=\"http://localhost:35729/livereload.js\"></script></head><body></body>";
/// An XHTML page with a head.
pub const XHTML: &str = "<?xml version=\"1.0\"?><html xmlns=\"http://www.w3.org/1999/xhtml\">\
                         <head><title>x</title></head><body><p>x</p></body></html>";
/// An XHTML document with neither `</head>` nor `<body>` (an SVG-like fragment).
pub const XHTML_BARE: &str = "<html xmlns=\"http://www.w3.org/1999/xhtml\"><p>x</p></html>";
/// What `/stalled` sends before it stops sending.
pub const STALLED_HEAD: &str = "<html><head><title>slow</title></head><body>";

/// What `/comment-split` sends, in two frames split inside its comment.
pub const COMMENT_SPLIT: &str =
    "<html><head><!-- a note --><title>t</title></head><body>x</body></html>";

/// A page whose comment at the top (after only a comment and blank lines) never closes.
pub const OPEN_COMMENT: &str =
    "\n<!-- a note -->\n<!-- left open <html><head></head><body>x</body></html>\n";

/// The line that `/trickle` and `/trickle-bare` send every 20 ms.
pub const TRICKLE_LINE: &str = "<p>line</p>\n";

/// How many cookies `/many-headers` sets: more header fields than hyper reads by
/// default.
pub const MANY_COOKIES: usize = 150;

/// The CSP nonce of `/csp`.
pub const NONCE: &str = "r4nd0m+/=";

/// A page whose `</head>` (and `<body>`) come after the scanned window.
pub fn late_page() -> String {
    format!(
        "<html><head><title>{}</title></head><body>late</body></html>",
        "x".repeat(70_000)
    )
}

/// 256 KiB of bytes of every value, in no simple order.
pub fn binary() -> Vec<u8> {
    let mut state: u32 = 0x1234_5678;
    (0..256 * 1024)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state.to_le_bytes()[0]
        })
        .collect()
}

/// The JSON of `/json`.
pub const JSON: &str = r#"{"html":"<head></head>","list":[1,2,3]}"#;

/// The hyper dev server; stops when dropped.
pub struct Upstream {
    addr: SocketAddr,
    /// Connections accepted so far.
    accepted: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    /// Serves on a free loopback port.
    pub fn start() -> Upstream {
        Upstream::serve(TcpListener::bind("127.0.0.1:0").expect("a free port"))
    }

    /// Serves on `listener`.
    pub fn serve(listener: TcpListener) -> Upstream {
        listener.set_nonblocking(true).expect("non-blocking");
        let addr = listener.local_addr().expect("an address");
        let (stop, mut stopped) = watch::channel(false);
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&accepted);
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("a listener");
                loop {
                    tokio::select! {
                        accepted = listener.accept() => {
                            let (stream, _) = accepted.expect("accept");
                            counter.fetch_add(1, Ordering::SeqCst);
                            tokio::spawn(async move {
                                let service = service_fn(move |req| async move {
                                    Ok::<_, Infallible>(respond(addr, req).await)
                                });
                                let _ = http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), service)
                                    .with_upgrades()
                                    .await;
                            });
                        }
                        _ = stopped.wait_for(|s| *s) => return,
                    }
                }
            });
            runtime.shutdown_background();
        });
        Upstream {
            addr,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// How many connections it has accepted.
    pub fn connections(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `page`, gzip-compressed, as a server that compresses whatever it is asked sends it.
fn gzipped_html(page: &str) -> Response<ProxyBody> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder
        .write_all(page.as_bytes())
        .expect("compressing into memory");
    let mut response = html(encoder.finish().expect("compressing into memory"));
    response
        .headers_mut()
        .insert("content-encoding", "gzip".parse().expect("a value"));
    response
}

fn html(body: impl Into<Bytes>) -> Response<ProxyBody> {
    Response::builder()
        .header("content-type", "text/html; charset=utf-8")
        .body(full(body))
        .expect("a response")
}

fn xhtml(body: &'static str) -> Response<ProxyBody> {
    Response::builder()
        .header("content-type", "application/xhtml+xml")
        .body(full(body))
        .expect("a response")
}

/// A page that streams without end: `head` if given, then a line every 20 ms.
fn trickle(head: Option<&'static str>) -> Response<ProxyBody> {
    let lines = futures_util::stream::unfold(head, |head| async move {
        let text = match head {
            Some(head) => head,
            None => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                TRICKLE_LINE
            }
        };
        let frame = Frame::data(Bytes::from_static(text.as_bytes()));
        Some((Ok::<_, BoxError>(frame), None))
    });
    Response::builder()
        .header("content-type", "text/html")
        .body(StreamBody::new(lines).boxed_unsync())
        .expect("a response")
}

/// A body sent as separate frames, with no length known in advance (chunked).
fn streamed(parts: Vec<&'static str>) -> ProxyBody {
    let frames = parts
        .into_iter()
        .map(|p| Ok::<_, BoxError>(Frame::data(Bytes::from_static(p.as_bytes()))));
    StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync()
}

async fn respond(addr: SocketAddr, req: Request<Incoming>) -> Response<ProxyBody> {
    match req.uri().path() {
        "/page" => html(PAGE),
        "/nohead" => html(NO_HEAD),
        "/tricky" => html(TRICKY),
        "/existing" => html(EXISTING),
        "/open-comment" => html(OPEN_COMMENT),
        "/late" => html(late_page()),
        "/xhtml" => xhtml(XHTML),
        "/xhtml-bare" => xhtml(XHTML_BARE),
        "/etag" => {
            let mut response = html(PAGE);
            response
                .headers_mut()
                .insert("etag", "\"v1\"".parse().expect("a value"));
            response
        }
        "/csp" => {
            let mut response = html(PAGE);
            let policy = format!("default-src 'self'; script-src 'nonce-{NONCE}' 'strict-dynamic'");
            response
                .headers_mut()
                .insert("content-security-policy", policy.parse().expect("a value"));
            response
        }
        "/csp-meta" => html(CSP_META),
        "/csp-strict" => {
            let mut response = html(PAGE);
            let policy = format!("default-src 'none'; script-src 'nonce-{NONCE}'");
            let headers = response.headers_mut();
            headers.insert("content-security-policy", policy.parse().expect("a value"));
            let trial = "connect-src https://api.test; report-uri /csp-report";
            headers.insert(
                "content-security-policy-report-only",
                trial.parse().expect("a value"),
            );
            response
        }
        "/gzip" => gzipped_html(PAGE),
        "/gzip-late" => gzipped_html(&late_page()),
        "/stalled" => {
            let head = futures_util::stream::once(async {
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(STALLED_HEAD.as_bytes())))
            });
            // The rest of the page never comes: only a proxy that stops waiting for its
            // window passes the head on.
            let body = StreamBody::new(head.chain(futures_util::stream::pending()));
            Response::builder()
                .header("content-type", "text/html")
                .body(body.boxed_unsync())
                .expect("a response")
        }
        "/gzip-stalled" => {
            // The head compressed and flushed (a sync flush, as a streaming server
            // does), then nothing more.
            let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
            encoder
                .write_all(STALLED_HEAD.as_bytes())
                .and_then(|()| encoder.flush())
                .expect("compressing into memory");
            let head = Bytes::from(std::mem::take(encoder.get_mut()));
            let head = futures_util::stream::once(async { Ok::<_, BoxError>(Frame::data(head)) });
            let body = StreamBody::new(head.chain(futures_util::stream::pending()));
            Response::builder()
                .header("content-type", "text/html")
                .header("content-encoding", "gzip")
                .body(body.boxed_unsync())
                .expect("a response")
        }
        "/comment-split" => {
            // A comment that the first frame leaves open, closed 20 ms later.
            let (first, rest) =
                COMMENT_SPLIT.split_at(COMMENT_SPLIT.find(" -->").expect("a comment"));
            let first = futures_util::stream::once(async move {
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(first.as_bytes())))
            });
            let rest = futures_util::stream::once(async move {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(rest.as_bytes())))
            });
            Response::builder()
                .header("content-type", "text/html")
                .body(StreamBody::new(first.chain(rest)).boxed_unsync())
                .expect("a response")
        }
        "/late-start" | "/late-bom" => {
            // The head of the answer at once, a blank line (or a byte-order mark), then
            // the page 300 ms later (a server that flushes its head before it renders).
            let first: &[u8] = if req.uri().path() == "/late-bom" {
                b"\xEF\xBB\xBF"
            } else {
                b"\n"
            };
            let blank = futures_util::stream::once(async move {
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(first)))
            });
            let page = futures_util::stream::once(async {
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(PAGE.as_bytes())))
            });
            Response::builder()
                .header("content-type", "text/html")
                .body(StreamBody::new(blank.chain(page)).boxed_unsync())
                .expect("a response")
        }
        "/heartbeat" => {
            // A blank every 100 ms, and never the page (a server keeping a tunnel's
            // first-byte timeout at bay while it renders).
            let blanks = futures_util::stream::unfold((), |()| async {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                Some((Ok::<_, BoxError>(Frame::data(Bytes::from_static(b" "))), ()))
            });
            Response::builder()
                .header("content-type", "text/html")
                .body(StreamBody::new(blanks).boxed_unsync())
                .expect("a response")
        }
        "/trickle" => trickle(Some(STALLED_HEAD)),
        "/trickle-bare" => trickle(None),
        "/error" => {
            let mut response = html(PAGE);
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
        "/many-headers" => {
            let mut response = html(PAGE);
            for i in 0..MANY_COOKIES {
                let cookie = format!("c{i}=v{i}").parse().expect("a value");
                response.headers_mut().append("set-cookie", cookie);
            }
            response
        }
        "/brotli" => {
            let mut response = html("not really brotli");
            response
                .headers_mut()
                .insert("content-encoding", "br".parse().expect("a value"));
            response
        }
        "/chunked" => Response::builder()
            .header("content-type", "text/html")
            .body(streamed(vec![
                "<html><head><title>c</title>",
                "</he",
                "ad><body>chunks</body></html>",
            ]))
            .expect("a response"),
        "/sse" => {
            let first = futures_util::stream::once(async {
                Ok::<_, BoxError>(Frame::data(Bytes::from_static(b"data: first\n\n")))
            });
            // Then nothing, ever: only a proxy that streams passes the first event on.
            let body = StreamBody::new(first.chain(futures_util::stream::pending()));
            Response::builder()
                .header("content-type", "text/event-stream")
                .body(body.boxed_unsync())
                .expect("a response")
        }
        "/binary" => Response::builder()
            .header("content-type", "application/octet-stream")
            .body(full(binary()))
            .expect("a response"),
        "/json" => Response::builder()
            .header("content-type", "application/json")
            .body(full(JSON))
            .expect("a response"),
        "/redirect" => Response::builder()
            .status(StatusCode::FOUND)
            .header("location", format!("http://{addr}/page?from=redirect"))
            .body(full(""))
            .expect("a response"),
        "/empty" => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .header("content-type", "text/html")
            .body(full(""))
            .expect("a response"),
        "/echo" => {
            let method = req.method().to_string();
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Response::builder()
                .header("content-type", "application/octet-stream")
                .header("x-method", method)
                .body(full(body))
                .expect("a response")
        }
        "/headers" => {
            let mut text = String::new();
            for (name, value) in req.headers() {
                text.push_str(&format!("{name}: {}\n", value.to_str().unwrap_or("?")));
            }
            Response::builder()
                .header("content-type", "text/plain")
                .body(full(text))
                .expect("a response")
        }
        "/ws" => websocket_echo(req),
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(full("not found"))
            .expect("a response"),
    }
}

/// Answers a WebSocket upgrade and echoes every message back.
fn websocket_echo(mut req: Request<Incoming>) -> Response<ProxyBody> {
    let Some(key) = req.headers().get("sec-websocket-key") else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(full("no key"))
            .expect("a response");
    };
    let accept = derive_accept_key(key.as_bytes());
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let mut ws =
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, None).await;
        while let Some(Ok(message)) = ws.next().await {
            if message.is_close() || ws.send(message).await.is_err() {
                break;
            }
        }
    });
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header("upgrade", "websocket")
        .header("connection", "Upgrade")
        .header("sec-websocket-accept", accept)
        .body(full(""))
        .expect("a response")
}

/// The page the `wsgiref` server answers, in several pieces so that wsgiref sends no
/// `Content-Length` and ends the body by closing (HTTP/1.0).
pub const WSGI_PARTS: [&str; 3] = [
    "<html><head><title>w</title>",
    "</head><body>",
    "wsgiref</body></html>",
];

const WSGI_APP: &str = r#"
import sys
from wsgiref.simple_server import make_server, WSGIRequestHandler

class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass

def app(environ, start_response):
    # Never reads `wsgi.input`: a request's body is left unread.
    parts = [p.encode() for p in sys.argv[1:] if p != "--sized"]
    headers = [("Content-Type", "text/html; charset=utf-8")]
    if "--sized" in sys.argv:
        headers.append(("Content-Length", str(sum(map(len, parts)))))
    start_response("200 OK", headers)
    return iter(parts)

server = make_server("127.0.0.1", 0, app, handler_class=Quiet)
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// Python's `wsgiref` server, killed when dropped.
pub struct Wsgiref {
    child: Child,
    port: u16,
}

impl Wsgiref {
    /// Starts the app on a port of its choosing, returning once it listens.
    pub fn start() -> Wsgiref {
        Wsgiref::launch(&[])
    }

    /// As [`Wsgiref::start`], the answer with its `Content-Length`.
    pub fn start_sized() -> Wsgiref {
        Wsgiref::launch(&["--sized"])
    }

    fn launch(flags: &[&str]) -> Wsgiref {
        let mut child = Command::new("python3")
            .arg("-c")
            .arg(WSGI_APP)
            .args(flags)
            .args(WSGI_PARTS)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the port");
        let port = line.trim().parse().expect("a port number");
        Wsgiref { child, port }
    }

    /// Where it listens, as the proxy's `upstream` is written.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Wsgiref {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A server that answers every request with the same bytes, whatever they are; stops
/// when dropped.
pub struct Raw {
    addr: SocketAddr,
    requests: Arc<AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Raw {
    /// Answers with `answer` on a free loopback port, each connection on a thread.
    pub fn start(answer: &'static [u8]) -> Raw {
        Raw::listen(answer, false)
    }

    /// As [`Raw::start`], closing each connection after its first answer: with a short
    /// answer (or none), as a handler that drops its connection breaks off.
    pub fn start_closing(answer: &'static [u8]) -> Raw {
        Raw::listen(answer, true)
    }

    fn listen(answer: &'static [u8], close: bool) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        let addr = listener.local_addr().expect("an address");
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (counter, stopping) = (Arc::clone(&requests), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || answer_each(stream, answer, &counter, close));
            }
        });
        Raw {
            addr,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    /// `host:port`.
    pub fn address(&self) -> String {
        self.addr.to_string()
    }

    /// How many request heads it has read.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Reads request heads (bodyless requests only) and answers each with `answer`; after
/// the first if `close`.
fn answer_each(stream: std::net::TcpStream, answer: &[u8], counter: &AtomicUsize, close: bool) {
    let mut reader = BufReader::new(&stream);
    let mut writer = &stream;
    loop {
        let mut line = String::new();
        let mut head_lines = 0;
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return,
                Ok(_) if line == "\r\n" && head_lines > 0 => break,
                Ok(_) => head_lines += 1,
            }
        }
        counter.fetch_add(1, Ordering::SeqCst);
        if writer.write_all(answer).is_err() || close {
            return;
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accepting thread so it sees the flag.
        let _ = std::net::TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
