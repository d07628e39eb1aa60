//! The reload server over real sockets: a `Reloader` on a free loopback port, and
//! blocking tungstenite clients (or raw HTTP) talking to it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use serde_json::Value;
use tungstenite::client::IntoClientRequest;
use tungstenite::handshake::HandshakeError;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::{Message, WebSocket};

use super::hub::{Hub, Timing};
use super::protocol::{CONNECTION_CHECK, OFFICIAL_7, VENDOR};
use super::{ReloadMessage, Reloader, ServerState};

type Client = WebSocket<TcpStream>;

const PATIENCE: Duration = Duration::from_secs(10);

fn start() -> Reloader {
    Reloader::start("127.0.0.1", 0, &[]).expect("a free port on loopback")
}

/// Opens a WebSocket at `path`, with `origin` if given.
fn open(addr: SocketAddr, path: &str, origin: Option<&str>) -> Result<Client, tungstenite::Error> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(PATIENCE))?;
    let mut request = format!("ws://{addr}{path}").into_client_request()?;
    if let Some(origin) = origin {
        request
            .headers_mut()
            .insert("Origin", origin.parse().expect("a valid header value"));
    }
    match tungstenite::client::client(request, stream) {
        Ok((ws, _)) => Ok(ws),
        Err(HandshakeError::Failure(err)) => Err(err),
        Err(HandshakeError::Interrupted(_)) => unreachable!("a blocking socket"),
    }
}

/// The next text message as JSON, skipping pings.
#[track_caller]
fn next_json(ws: &mut Client) -> Value {
    loop {
        match ws.read().expect("a message before the deadline") {
            Message::Text(text) => return serde_json::from_str(&text).expect("JSON"),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("expected a text message, got {other:?}"),
        }
    }
}

fn send_json(ws: &mut Client, value: Value) {
    ws.send(Message::text(value.to_string())).expect("send");
}

fn hello(vendor: bool) -> Value {
    let protocols: Vec<&str> = if vendor {
        vec![OFFICIAL_7, VENDOR]
    } else {
        vec!["http://livereload.com/protocols/official-6", OFFICIAL_7]
    };
    serde_json::json!({"command": "hello", "protocols": protocols, "ver": "4.0.2"})
}

/// A client through the whole handshake: our hello read, its hello sent.
#[track_caller]
fn handshaken(addr: SocketAddr, vendor: bool) -> Client {
    let mut ws = open(addr, "/livereload", None).expect("upgrade");
    assert_eq!(next_json(&mut ws)["command"], "hello");
    send_json(&mut ws, hello(vendor));
    ws
}

#[track_caller]
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Asserts that nothing arrives for a while (a sleep is the only way to show that).
#[track_caller]
fn assert_silent(ws: &mut Client) {
    ws.get_mut()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .expect("timeout");
    match ws.read() {
        Err(tungstenite::Error::Io(err))
            if matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        other => panic!("expected silence, got {other:?}"),
    }
    ws.get_mut()
        .set_read_timeout(Some(PATIENCE))
        .expect("timeout");
}

/// One raw HTTP/1.1 request; returns the whole response as text.
fn http(addr: SocketAddr, head: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).expect("timeout");
    stream.write_all(head.as_bytes()).expect("write");
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response
}

fn get(addr: SocketAddr, method: &str, path: &str) -> String {
    http(
        addr,
        &format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"),
    )
}

fn reload(path: &str) -> ReloadMessage {
    ReloadMessage {
        path: path.into(),
        live_css: path.ends_with(".css"),
        live_img: false,
    }
}

#[test]
fn the_first_message_is_our_hello() {
    let server = start();
    let mut ws = open(server.local_addr(), "/livereload", None).expect("upgrade");
    let hello = next_json(&mut ws);
    assert_eq!(hello["command"], "hello");
    assert_eq!(hello["protocols"], serde_json::json!([OFFICIAL_7, VENDOR]));
    assert_eq!(hello["serverName"], "reloadsup");
    let instance = hello["instance"].as_str().expect("an instance id");
    assert_eq!(instance, server.hub().instance());
    assert!(!instance.is_empty());
}

#[test]
fn a_v7_hello_makes_a_client() {
    let server = start();
    assert_eq!(server.clients(), 0);
    let _ws = handshaken(server.local_addr(), false);
    wait_until("the hello is counted", || server.clients() == 1);
}

#[test]
fn the_extension_probe_gets_a_hello_reply() {
    let server = start();
    let mut ws = open(
        server.local_addr(),
        "/livereload",
        Some("chrome-extension://abc"),
    )
    .expect("upgrade");
    send_json(
        &mut ws,
        serde_json::json!({"command": "hello", "protocols": [CONNECTION_CHECK]}),
    );
    let reply = ws.read().expect("a reply").into_text().expect("text");
    assert!(reply.starts_with('{'), "{reply}");
    assert_eq!(
        serde_json::from_str::<Value>(&reply).expect("JSON")["command"],
        "hello"
    );
    wait_until("the probe is counted", || server.clients() == 1);
    drop(ws);
    wait_until("the probe is forgotten", || server.clients() == 0);
}

#[test]
fn the_script_is_served_as_javascript_at_both_paths() {
    let server = start();
    for path in [
        "/livereload.js",
        "/__reloadsup/livereload.js?port=&path=__reloadsup/livereload",
    ] {
        let response = get(server.local_addr(), "GET", path);
        let lower = response.to_ascii_lowercase();
        assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
        assert!(lower.contains("content-type: text/javascript; charset=utf-8\r\n"));
        assert!(lower.contains("cache-control: no-cache\r\n"));
        assert!(lower.contains("x-content-type-options: nosniff\r\n"));
        assert!(lower.contains("cross-origin-resource-policy: cross-origin\r\n"));
        assert!(response.contains(OFFICIAL_7), "the body is our client");
        assert!(response.contains("var generation = 0;"), "{response}");
    }
    // The script carries the count of changes when it is served.
    server.changed();
    let response = get(server.local_addr(), "GET", "/livereload.js");
    assert!(response.contains("var generation = 1;"), "{response}");
    let head = get(server.local_addr(), "HEAD", "/livereload.js");
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(head.ends_with("\r\n\r\n"), "HEAD has no body: {head}");
}

#[test]
fn other_paths_are_404_and_other_methods_405() {
    let server = start();
    let addr = server.local_addr();
    assert!(get(addr, "GET", "/").starts_with("HTTP/1.1 404 "));
    assert!(get(addr, "GET", "/__reloadsup/other").starts_with("HTTP/1.1 404 "));
    assert!(get(addr, "GET", "/livereload.js/x").starts_with("HTTP/1.1 404 "));
    let post = get(addr, "POST", "/livereload.js");
    assert!(post.starts_with("HTTP/1.1 405 "), "{post}");
    assert!(post.to_ascii_lowercase().contains("allow: get, head\r\n"));
    assert!(get(addr, "DELETE", "/livereload").starts_with("HTTP/1.1 405 "));
}

#[test]
fn a_plain_get_of_the_socket_path_is_refused_and_survived() {
    let server = start();
    let addr = server.local_addr();
    for path in ["/livereload", "/__reloadsup/livereload"] {
        let response = get(addr, "GET", path);
        assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    }
    let bad_version = http(
        addr,
        "GET /livereload HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    );
    assert!(bad_version.starts_with("HTTP/1.1 426 "), "{bad_version}");
    assert!(
        bad_version
            .to_ascii_lowercase()
            .contains("sec-websocket-version: 13\r\n")
    );
    let bad_key = http(
        addr,
        "GET /livereload HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: short\r\n\r\n",
    );
    assert!(bad_key.starts_with("HTTP/1.1 400 "), "{bad_key}");
    let junk = http(addr, "\x16\x03\x01 this is not HTTP\r\n\r\n");
    assert!(
        junk.is_empty() || junk.starts_with("HTTP/1.1 400 "),
        "{junk}"
    );
    let _ws = handshaken(addr, false);
    wait_until("a new client is served", || server.clients() == 1);
}

#[test]
fn the_socket_is_served_under_the_prefix_too() {
    let server = start();
    let mut ws = open(server.local_addr(), "/__reloadsup/livereload", None).expect("upgrade");
    assert_eq!(next_json(&mut ws)["command"], "hello");
}

#[test]
fn no_reload_is_sent_before_the_clients_hello_and_an_early_one_follows_it() {
    let server = start();
    let mut ws = open(server.local_addr(), "/livereload", None).expect("upgrade");
    assert_eq!(next_json(&mut ws)["command"], "hello");
    assert_eq!(server.broadcast(&reload("early.css")), 0, "not counted yet");
    assert_silent(&mut ws);
    send_json(&mut ws, hello(false));
    // A page that connected as a file was saved still hears of it, after its hello.
    assert_eq!(next_json(&mut ws)["path"], "early.css");
    wait_until("the hello is counted", || server.clients() == 1);
    assert_eq!(server.broadcast(&reload("app.py")), 1);
    assert_eq!(
        next_json(&mut ws),
        serde_json::json!({"command": "reload", "path": "app.py", "liveCSS": false, "liveImg": false, "generation": 0})
    );
}

#[test]
fn a_broadcast_reaches_200_clients() {
    let server = start();
    let mut clients: Vec<Client> = (0..200)
        .map(|_| handshaken(server.local_addr(), false))
        .collect();
    wait_until("all 200 are handshaken", || server.clients() == 200);
    assert_eq!(server.broadcast(&reload("static/site.css")), 200);
    for ws in &mut clients {
        let message = next_json(ws);
        assert_eq!(message["path"], "static/site.css");
        assert_eq!(message["liveCSS"], true);
    }
    drop(clients);
    wait_until("all 200 are gone", || server.clients() == 0);
}

#[test]
fn status_goes_to_vendor_clients_only() {
    let server = start();
    let mut plain = handshaken(server.local_addr(), false);
    let mut ours = handshaken(server.local_addr(), true);
    wait_until("both are handshaken", || server.clients() == 2);
    server.set_state(ServerState::Failed("exited with code 1".into()));
    assert_eq!(
        next_json(&mut ours),
        serde_json::json!({"command": "status", "state": "failed", "message": "exited with code 1", "build": null, "generation": 0})
    );
    server.set_state(ServerState::Ready);
    assert_eq!(next_json(&mut ours)["state"], "ready");
    // The same state again is not sent again.
    server.set_state(ServerState::Ready);
    // The plain client's next message is the reload: no status came before it.
    assert_eq!(server.broadcast(&reload("app.py")), 2);
    assert_eq!(next_json(&mut plain)["command"], "reload");
    assert_eq!(next_json(&mut ours)["command"], "reload");

    // A vendor client arriving later learns the current state at once.
    server.set_state(ServerState::Restarting);
    let mut late = handshaken(server.local_addr(), true);
    assert_eq!(
        next_json(&mut late),
        serde_json::json!({"command": "status", "state": "restarting", "message": null, "build": null, "generation": 0})
    );
}

#[test]
fn info_url_and_unknown_commands_are_ignored() {
    let server = start();
    let mut ws = handshaken(server.local_addr(), false);
    send_json(
        &mut ws,
        serde_json::json!({"command": "info", "plugins": {}, "url": "http://localhost:8000/"}),
    );
    send_json(
        &mut ws,
        serde_json::json!({"command": "url", "url": "http://x/"}),
    );
    send_json(&mut ws, serde_json::json!({"command": "explode"}));
    send_json(&mut ws, hello(true)); // a second hello changes nothing
    wait_until("handshaken", || server.clients() == 1);
    assert_eq!(server.broadcast(&reload("a.html")), 1);
    assert_eq!(next_json(&mut ws)["command"], "reload");
}

#[test]
fn garbage_never_takes_the_server_down() {
    let server = start();
    let addr = server.local_addr();

    // Text that is not a JSON object is ignored; the socket stays.
    let mut ws = handshaken(addr, false);
    for junk in ["not json", "[1,2]", "null", "{\"command\":", ""] {
        ws.send(Message::text(junk)).expect("send");
    }
    wait_until("handshaken", || server.clients() == 1);
    assert_eq!(server.broadcast(&reload("x.py")), 1);
    assert_eq!(next_json(&mut ws)["command"], "reload");

    // A binary frame ends that socket with 1003.
    ws.send(Message::binary(vec![0u8, 159, 146, 150]))
        .expect("send");
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Unsupported),
        other => panic!("expected a close, got {other:?}"),
    }
    wait_until("the binary sender is gone", || server.clients() == 0);

    // A message over 64 KiB ends that socket.
    let mut big = handshaken(addr, false);
    let _ = big.send(Message::text("x".repeat(64 * 1024 + 1)));
    let ended = loop {
        match big.read() {
            Ok(Message::Close(_)) | Err(_) => break true,
            Ok(_) => continue,
        }
    };
    assert!(ended);
    wait_until("the oversized sender is gone", || server.clients() == 0);

    // A raw frame claiming a huge length ends only its own socket too.
    let mut raw = TcpStream::connect(addr).expect("connect");
    raw.write_all(
        b"GET /livereload HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .expect("write");
    raw.write_all(&[
        0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
    ])
    .expect("write");
    raw.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut rest = Vec::new();
    if let Err(err) = raw.read_to_end(&mut rest) {
        let kind = err.kind();
        assert!(
            !matches!(kind, ErrorKind::WouldBlock | ErrorKind::TimedOut),
            "the server kept a socket that announced a 2^63-byte frame"
        );
    }
    // It said why: a close frame with code 1009 (message too big).
    assert!(
        rest.windows(4)
            .any(|w| w[0] == 0x88 && w[2..] == [0x03, 0xf1]),
        "no close 1009 in {rest:?}"
    );

    // A masked text frame that is not UTF-8 ends its socket with 1007.
    let mut raw = TcpStream::connect(addr).expect("connect");
    raw.write_all(
        b"GET /livereload HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
          Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    )
    .expect("write");
    // The payload 0xff 0xfe, masked with a zero key.
    raw.write_all(&[0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe])
        .expect("write");
    raw.set_read_timeout(Some(PATIENCE)).expect("timeout");
    let mut rest = Vec::new();
    let _ = raw.read_to_end(&mut rest);
    assert!(
        rest.windows(4)
            .any(|w| w[0] == 0x88 && w[2..] == [0x03, 0xef]),
        "no close 1007 in {rest:?}"
    );

    let mut fresh = handshaken(addr, false);
    wait_until("a new client is served", || server.clients() == 1);
    assert_eq!(server.broadcast(&reload("y.py")), 1);
    assert_eq!(next_json(&mut fresh)["path"], "y.py");
}

#[test]
fn origins_are_checked() {
    let allow = vec!["http://myapp.test:8000".to_string()];
    let server = Reloader::start("127.0.0.1", 0, &allow).expect("bind");
    let addr = server.local_addr();
    for origin in [
        None,
        Some("http://localhost:8000"),
        Some("http://127.0.0.1:5000"),
        Some("http://[::1]:3000"),
        Some("http://app.localhost"),
        Some("moz-extension://4f1c0b7e-0000-4000-8000-000000000000"),
        Some("http://myapp.test:8000"),
    ] {
        let mut ws =
            open(addr, "/livereload", origin).unwrap_or_else(|e| panic!("{origin:?}: {e}"));
        assert_eq!(next_json(&mut ws)["command"], "hello", "{origin:?}");
    }
    for origin in [
        "http://evil.example",
        "http://myapp.test",
        "null",
        "http://[oops",
    ] {
        match open(addr, "/livereload", Some(origin)) {
            Err(tungstenite::Error::Http(response)) => {
                assert_eq!(response.status(), 403, "{origin}")
            }
            other => panic!("{origin}: expected 403, got {:?}", other.map(|_| ())),
        }
    }
}

#[test]
fn silent_sockets_are_dropped() {
    let timing = Timing {
        ping: Duration::from_millis(50),
        dead_after: Duration::from_millis(200),
    };
    let server = Reloader::start_hub(
        "127.0.0.1",
        0,
        "`reload.port`",
        Hub::with_timing(&[], true, timing),
    )
    .expect("bind");
    // This client never reads again, so it never answers the pings.
    let _mute = handshaken(server.local_addr(), false);
    wait_until("handshaken", || server.clients() == 1);
    wait_until("the mute client is dropped", || server.clients() == 0);

    // One that reads (tungstenite answers pings as it reads) stays.
    let mut live = handshaken(server.local_addr(), false);
    wait_until("handshaken", || server.clients() == 1);
    live.get_mut()
        .set_read_timeout(Some(Duration::from_millis(20)))
        .expect("timeout");
    let until = Instant::now() + Duration::from_millis(600);
    while Instant::now() < until {
        match live.read() {
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == ErrorKind::WouldBlock => {}
            Err(err) => panic!("the live client was dropped: {err}"),
        }
    }
    assert_eq!(server.clients(), 1);
}

#[test]
fn dropping_the_reloader_says_goodbye_and_frees_the_port() {
    let server = start();
    let addr = server.local_addr();
    let mut ws = handshaken(addr, false);
    wait_until("handshaken", || server.clients() == 1);
    drop(server);
    match ws.read() {
        Ok(Message::Close(Some(frame))) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected close 1001, got {other:?}"),
    }
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens any more"
    );
    TcpListener::bind(addr).expect("the port is free again");
}

#[test]
fn a_port_in_use_is_an_error_naming_the_address_and_keys() {
    let taken = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let err = Reloader::start("127.0.0.1", port, &[])
        .err()
        .expect("the port is taken");
    let expected =
        format!("cannot listen on 127.0.0.1:{port} (set by `reload.port`/`reload.host`): ");
    assert!(err.starts_with(&expected), "{err}");
    assert!(!err.contains('\n'));
    let v6 = Reloader::start("[::1]", 0, &[]);
    if let Err(err) = v6 {
        // Machines without IPv6 loopback: the error still shows the bracketed address.
        assert!(err.starts_with("cannot listen on [::1]:0 "), "{err}");
    }
}

/// How the proxy and `serve` mount the hub: their own hyper service sends paths under
/// [`PREFIX`] to `Hub::handle` and everything else elsewhere; one broadcast reaches the
/// browsers of both servers.
#[test]
fn the_handler_mounts_on_another_server() {
    use http_body_util::Full;
    use hyper::body::Bytes;
    use hyper::server::conn::http1;
    use hyper::service::service_fn;
    use hyper_util::rt::TokioIo;

    use super::http::PREFIX;

    let reloader = start();
    let hub = reloader.hub();
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("addr");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    std::thread::spawn(move || {
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("tokio listener");
            loop {
                let (stream, _) = listener.accept().await.expect("accept");
                let hub = hub.clone();
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let response = if req.uri().path().starts_with(PREFIX) {
                        hub.handle(req)
                    } else {
                        hyper::Response::new(Full::new(Bytes::from_static(b"the app\n")))
                    };
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                tokio::spawn(
                    http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades(),
                );
            }
        })
    });

    assert!(get(addr, "GET", "/").ends_with("the app\n"));
    let script = get(addr, "GET", "/__reloadsup/livereload.js");
    assert!(script.starts_with("HTTP/1.1 200 OK\r\n"), "{script}");
    let mut mounted = open(
        addr,
        "/__reloadsup/livereload",
        Some("http://localhost:5000"),
    )
    .expect("upgrade");
    assert_eq!(next_json(&mut mounted)["command"], "hello");
    send_json(&mut mounted, hello(false));
    let mut direct = handshaken(reloader.local_addr(), false);
    wait_until("both are handshaken", || reloader.clients() == 2);
    assert_eq!(reloader.broadcast(&reload("app.py")), 2);
    assert_eq!(next_json(&mut mounted)["path"], "app.py");
    assert_eq!(next_json(&mut direct)["path"], "app.py");
}
