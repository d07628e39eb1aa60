//! Forwarding through the proxy: bodies both ways, headers, redirects, streams, the
//! app's WebSocket, the reload endpoints, the `Host` check, and answers that bend or
//! break HTTP's rules.

use std::io::{Read, Write};
use std::net::TcpStream;

use tungstenite::client::IntoClientRequest;
use tungstenite::{Message, WebSocket};

use super::upstream::{self, MANY_COOKIES, PAGE, Raw, Upstream};
use super::{
    NAVIGATE, PATIENCE, build, exchange, first_frame, navigate, proxy, proxy_with,
    proxy_with_listen, raw, send,
};
use crate::proxy::{Patience, UpstreamState, leads_to};

#[test]
fn an_upstream_is_told_from_the_proxys_own_address() {
    let own = "127.0.0.1:5000".parse().unwrap();
    assert!(leads_to("127.0.0.1:5000", own));
    assert!(leads_to("localhost:5000", own));
    assert!(leads_to("0.0.0.0:5000", own));
    assert!(!leads_to("127.0.0.1:8000", own));
    assert!(!leads_to("127.0.0.2:5000", own));
    assert!(
        leads_to("[::ffff:127.0.0.1]:5000", own),
        "an IPv4-mapped address is the IPv4 one"
    );
    assert!(leads_to(
        "127.0.0.1:5000",
        "[::ffff:127.0.0.1]:5000".parse().unwrap()
    ));
    assert!(!leads_to("[::1]:5000", own), "another stack's loopback");
    let all = "0.0.0.0:5000".parse().unwrap();
    assert!(leads_to("127.0.0.1:5000", all));
    assert!(
        leads_to("127.0.0.2:5000", all),
        "all of 127/8 is this machine"
    );
    assert!(
        !leads_to("192.0.2.1:5000", all),
        "a documentation address is not ours"
    );
    assert!(!leads_to("127.0.0.1:8000", all));
    assert!(
        !leads_to("[::1]:5000", all),
        "an IPv4 socket is not reached over IPv6"
    );
    let dual = "[::]:5000".parse().unwrap();
    assert!(leads_to("[::1]:5000", dual));
    assert!(leads_to("127.0.0.1:5000", dual), "[::] takes IPv4 too");
}

#[test]
fn a_request_that_comes_round_to_the_same_proxy_again_is_stopped() {
    // Two proxies, each the other's upstream: a request would go round without end.
    let second_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let first = proxy(&format!("127.0.0.1:{second_port}"));
    let second = proxy_with_listen(
        &format!("127.0.0.1:{second_port}"),
        &first.local_addr().to_string(),
    );
    let reply = navigate(first.local_addr(), "/page");
    assert_eq!(reply.status, 508, "{}", reply.text());
    assert!(
        reply
            .text()
            .contains("came back to the proxy that forwarded it"),
        "{}",
        reply.text()
    );
    drop(second);
}

#[test]
fn binary_and_json_bodies_come_through_byte_for_byte() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let binary = navigate(proxy.local_addr(), "/binary");
    assert_eq!(binary.body, upstream::binary());
    assert_eq!(binary.header("content-length"), Some("262144"));
    let json = send(
        proxy.local_addr(),
        "GET",
        "/json",
        &[("accept", "application/json")],
        Vec::new(),
    );
    assert_eq!(json.text(), upstream::JSON);
    assert_eq!(json.header("content-type"), Some("application/json"));
}

#[test]
fn request_bodies_are_forwarded() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let upload = upstream::binary().repeat(4);
    let reply = send(
        proxy.local_addr(),
        "POST",
        "/echo",
        &[("content-type", "application/octet-stream")],
        upload.clone(),
    );
    assert_eq!(reply.header("x-method"), Some("POST"));
    assert_eq!(reply.body, upload);
}

#[test]
fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let mut stream = raw(proxy.local_addr());
    let head = format!(
        "POST /echo HTTP/1.1\r\nHost: localhost:{}\r\nContent-Length: 5\r\n\
         Expect: 100-continue\r\nConnection: close\r\n\r\n",
        proxy.local_addr().port()
    );
    stream.write_all(head.as_bytes()).expect("send the head");
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).expect("an interim answer");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").expect("send the body");
    let mut rest = String::new();
    stream.read_to_string(&mut rest).expect("the answer");
    assert!(rest.starts_with("HTTP/1.1 200 OK\r\n"), "{rest}");
    assert!(rest.ends_with("\r\n\r\nhello"), "{rest}");
}

#[test]
fn the_dev_server_gets_the_host_forwarding_headers_and_no_hop_by_hop_ones() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let host = format!("localhost:{}", proxy.local_addr().port());
    let mut headers = NAVIGATE.to_vec();
    headers.extend([
        ("connection", "keep-alive, x-private"),
        ("x-private", "secret"),
        ("keep-alive", "timeout=5"),
        // A transfer coding is this connection's; only `trailers` goes on.
        ("te", "deflate;q=0.5"),
        ("proxy-authorization", "Basic eDp5"),
        ("range", "bytes=0-10"),
        ("if-none-match", "W/\"v1\""),
        ("if-modified-since", "Sun, 29 Nov 2026 10:00:00 GMT"),
        ("accept-encoding", "gzip, br"),
        ("cookie", "session=1"),
        ("via", "1.1 tunnel"),
    ]);
    let seen = send(proxy.local_addr(), "GET", "/headers", &headers, Vec::new()).text();
    let lines: Vec<&str> = seen.lines().collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("via: 1.1 tunnel, 1.1 reloadsup-")),
        "our `Via` entry after the earlier one:\n{seen}"
    );
    for expected in [
        format!("host: {host}"),
        "x-forwarded-for: 127.0.0.1".to_string(),
        format!("x-forwarded-host: {host}"),
        "x-forwarded-proto: http".to_string(),
        "accept-encoding: identity".to_string(),
        "cookie: session=1".to_string(),
    ] {
        assert!(
            lines.contains(&expected.as_str()),
            "no `{expected}` in:\n{seen}"
        );
    }
    for gone in [
        "x-private",
        "keep-alive",
        "te:",
        "proxy-authorization",
        "range",
        "expect",
        // A navigation gets the whole page even if unchanged: the browser's copy may
        // be a `fetch`'s, without the tag.
        "if-none-match",
        "if-modified-since",
    ] {
        assert!(!seen.contains(gone), "`{gone}` reached the server:\n{seen}");
    }
}

#[test]
fn redirects_to_the_dev_server_point_at_the_proxy() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let reply = navigate(proxy.local_addr(), "/redirect");
    assert_eq!(reply.status, 302);
    let expected = format!(
        "http://localhost:{}/page?from=redirect",
        proxy.local_addr().port()
    );
    assert_eq!(reply.header("location"), Some(expected.as_str()));
}

#[test]
fn an_event_stream_is_passed_on_as_it_comes() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    // The stream never ends: only the first event can arrive.
    let first = first_frame(
        proxy.local_addr(),
        "/sse",
        &[("accept", "text/event-stream")],
    );
    assert_eq!(first, "data: first\n\n");
}

#[test]
fn an_app_websocket_echoes_through_the_proxy() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let mut ws = websocket(proxy.local_addr(), "/ws", None);
    ws.send(Message::text("ping through the proxy"))
        .expect("send");
    assert_eq!(
        ws.read().expect("the echo"),
        Message::text("ping through the proxy")
    );
    ws.send(Message::binary(vec![0u8, 255, 7])).expect("send");
    assert_eq!(
        ws.read().expect("the echo"),
        Message::binary(vec![0u8, 255, 7])
    );
}

#[test]
fn the_reload_endpoints_are_served_on_the_proxy_origin() {
    let server = Upstream::start();
    let allowed = ["dev.test"];
    let proxy = proxy_with(
        &server.address(),
        &allowed,
        Patience::new(PATIENCE),
        UpstreamState::Ready,
    );
    let addr = proxy.local_addr();
    let script = send(
        addr,
        "GET",
        "/__reloadsup/livereload.js?port=&path=__reloadsup/livereload",
        &[],
        Vec::new(),
    );
    assert_eq!(script.status, 200);
    assert_eq!(
        script.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    // A page on an allowed LAN name opens the socket on its own origin.
    let host = format!("dev.test:{}", addr.port());
    let mut ws = websocket(
        addr,
        "/__reloadsup/livereload",
        Some((&host, &format!("http://{host}"))),
    );
    let hello = ws.read().expect("our hello");
    assert!(
        hello
            .to_text()
            .expect("text")
            .contains("\"command\":\"hello\"")
    );
    // Another origin is refused by the hub.
    let mut request = format!("ws://localhost:{}/__reloadsup/livereload", addr.port())
        .into_client_request()
        .expect("a request");
    request
        .headers_mut()
        .insert("origin", "http://evil.example".parse().expect("a value"));
    let refused = tungstenite::client::client(request, raw(addr));
    assert!(refused.is_err());
}

#[test]
fn hosts_are_checked_against_dns_rebinding() {
    let server = Upstream::start();
    let proxy = proxy_with(
        &server.address(),
        &["dev.test"],
        Patience::new(PATIENCE),
        UpstreamState::Ready,
    );
    let addr = proxy.local_addr();
    let get = |headers: &[(&str, &str)]| send(addr, "GET", "/page", headers, Vec::new());

    let rebound = get(&[("host", "evil.example")]);
    assert_eq!(rebound.status, 403);
    assert!(
        rebound.text().contains("`proxy.allowed_hosts`"),
        "{}",
        rebound.text()
    );
    assert_eq!(rebound.text().lines().count(), 1);
    assert_eq!(rebound.header("access-control-allow-origin"), None);

    for host in [
        "dev.test",
        "dev.test:5000",
        "127.0.0.1",
        "[::1]:1",
        "app.localhost",
    ] {
        assert_eq!(get(&[("host", host)]).text(), PAGE, "Host: {host}");
    }
    for host in ["[::1", "a b", "localhost:99999", "user@localhost"] {
        assert_eq!(get(&[("host", host)]).status, 400, "Host: {host}");
    }
    // HTTP/1.0 had no `Host`: such a request is for the address it was sent to. An
    // HTTP/1.1 request must name its host.
    let without_host = |version: &str| {
        let mut stream = raw(addr);
        write!(stream, "GET /page {version}\r\nConnection: close\r\n\r\n").expect("sent");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("an answer");
        answer
    };
    let old = without_host("HTTP/1.0");
    assert!(old.starts_with("HTTP/1.0 200 OK\r\n"), "{old}");
    assert!(old.ends_with(PAGE), "{old}");
    let new = without_host("HTTP/1.1");
    assert!(new.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{new}");
    assert!(new.ends_with("a request needs one Host header\n"), "{new}");
    let bad_origin = get(&[("origin", "not an origin")]);
    assert_eq!(bad_origin.status, 400);
    assert_eq!(bad_origin.text(), "malformed Origin header\n");
    assert_eq!(get(&[("origin", "null")]).status, 200);
}

/// A WebSocket through the proxy at `path`, with `(Host, Origin)` if given.
fn websocket(
    addr: std::net::SocketAddr,
    path: &str,
    host_origin: Option<(&str, &str)>,
) -> WebSocket<TcpStream> {
    let mut request = format!("ws://localhost:{}{path}", addr.port())
        .into_client_request()
        .expect("a request");
    if let Some((host, origin)) = host_origin {
        request
            .headers_mut()
            .insert("host", host.parse().expect("a value"));
        request
            .headers_mut()
            .insert("origin", origin.parse().expect("a value"));
    }
    match tungstenite::client::client(request, raw(addr)) {
        Ok((ws, _)) => ws,
        Err(err) => panic!("the upgrade failed: {err}"),
    }
}

/// A dev server shaped like Python's `http.server`: keep-alive, Nagle's algorithm on,
/// and each answer's head and body sent in two writes.
fn two_write_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("an address").to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while stream.read(&mut byte).is_ok_and(|n| n == 1) {
                    head.push(byte[0]);
                    if head.ends_with(b"\r\n\r\n") {
                        head.clear();
                        let written = stream
                            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
                            .and_then(|()| stream.write_all(b"hello"));
                        if written.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    address
}

#[test]
fn a_server_writing_head_and_body_apart_is_not_held_up_by_delayed_acks() {
    let proxy = proxy(&two_write_server());
    let addr = proxy.local_addr();
    let rounds = 20;
    let requests = (0..rounds)
        .map(|_| super::build(addr, "GET", "/", &[], Vec::new()))
        .collect();
    let began = std::time::Instant::now();
    let replies = super::exchange(addr, requests);
    let took = began.elapsed();
    assert!(replies.iter().all(|r| r.body == b"hello"), "{replies:?}");
    // A body held back until the head's delayed acknowledgement costs 40 ms a request
    // (800 ms in all); acknowledged at once, the round trips take a few ms.
    assert!(
        took < std::time::Duration::from_millis(300),
        "{rounds} requests took {took:?}"
    );
}

/// A page framed two ways at once: a `Content-Length` that is wrong, and the chunked
/// coding that wins.
const LENGTH_AND_CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\
    Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n\
    1b\r\n<head></head><body>x</body>\r\n0\r\n\r\n";

#[test]
fn a_length_beside_the_chunked_coding_is_not_passed_on() {
    let server = Raw::start(LENGTH_AND_CHUNKED);
    let proxy = proxy(&server.address());
    let addr = proxy.local_addr();
    let page = "<head></head><body>x</body>";
    // Two on one connection: a stale length would cut the first and garble the second.
    let fetch = [("accept", "*/*")];
    let replies = exchange(
        addr,
        vec![
            build(addr, "GET", "/a", &fetch, Vec::new()),
            build(addr, "GET", "/b", &fetch, Vec::new()),
        ],
    );
    for reply in &replies {
        assert_eq!(reply.text(), page);
        assert_ne!(reply.header("content-length"), Some("5"));
    }
    let injected = navigate(addr, "/c");
    let tag = crate::inject::tag(None);
    assert_eq!(injected.text(), format!("<head>{tag}</head><body>x</body>"));
}

/// An endless event stream, chunked, with a small `Content-Length` beside the coding.
const STREAM_WITH_A_LENGTH: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\
    Transfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\nd\r\ndata: first\n\n\r\n";

#[test]
fn a_stream_with_a_length_beside_its_coding_is_not_waited_for_whole() {
    let server = Raw::start(STREAM_WITH_A_LENGTH);
    let proxy = proxy(&server.address());
    let first = first_frame(proxy.local_addr(), "/events", &[("accept", "*/*")]);
    assert_eq!(first, "data: first\n\n");
}

/// So is a `101` to a request that asked for no upgrade (the browser got a bare 101).
#[test]
fn an_answer_that_is_not_http_is_a_502_saying_so_and_is_not_asked_again() {
    for (answer, said) in [
        (&b"HTTP/1.1 2x0 Fine\r\n\r\n"[..], "not valid HTTP"),
        (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
            "switched protocols",
        ),
    ] {
        let server = Raw::start(answer);
        let proxy = proxy(&server.address());
        let reply = navigate(proxy.local_addr(), "/");
        assert_eq!(reply.status, 502);
        assert!(reply.text().contains(said), "{}", reply.text());
        assert_eq!(server.requests(), 1);
    }
}

/// A server that is up and breaks off an answer itself (a handler that drops its
/// connection, or sends less than its length) is sent the request once more, not four
/// times: that only runs the handler again. The browser gets the 502 page.
#[test]
fn a_request_the_running_server_broke_off_is_sent_once_more() {
    for answer in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly ten b",
    ] {
        let server = Raw::start_closing(answer);
        let proxy = proxy(&server.address());
        let reply = navigate(proxy.local_addr(), "/");
        assert_eq!(reply.status, 502, "{}", reply.text());
        assert_eq!(server.requests(), 2, "{answer:?}");
    }
}

/// An HTTP/1.0 client asking to keep the connection alive, given an answer of no known
/// length (chunked from the server; 1.0 has no chunks), is told the connection closes,
/// as it does: it was told `keep-alive`, and its next request on it was lost.
#[test]
fn an_unframed_answer_to_an_http_1_0_client_says_close() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let mut stream = raw(proxy.local_addr());
    write!(
        stream,
        "GET /chunked HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
    )
    .expect("sent");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("an answer");
    let head = answer
        .split("\r\n\r\n")
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    assert!(head.contains("\r\nconnection: close"), "{answer}");
    assert!(!head.contains("keep-alive"), "{answer}");
    assert!(answer.ends_with("chunks</body></html>"), "{answer}");
    // A known length keeps it alive, as asked.
    let mut stream = raw(proxy.local_addr());
    write!(
        stream,
        "GET /json HTTP/1.0\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n"
    )
    .expect("sent");
    let mut head = [0u8; 512];
    let n = stream.read(&mut head).expect("an answer");
    let head = String::from_utf8_lossy(&head[..n]).to_ascii_lowercase();
    assert!(head.contains("connection: keep-alive"), "{head}");
}

/// A POST whose body the server never reads (`wsgiref` under an app that leaves
/// `wsgi.input` alone), answered and closed before the browser has sent that body:
/// the answer says `Connection: close`, so the browser does not send its next request
/// on the connection, and the rest of the body is read and dropped, so the browser
/// can send it all and then read the answer and a clean end (it was met with a reset,
/// and its next request on the connection was lost).
#[test]
fn an_answer_before_the_body_was_read_says_close_and_the_rest_is_discarded() {
    let server = upstream::Wsgiref::start_sized();
    let proxy = proxy(&server.address());
    let pause = std::time::Duration::from_millis(50);
    for _ in 0..3 {
        let mut stream = raw(proxy.local_addr());
        stream
            .write_all(b"POST /p HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n")
            .expect("the head sent");
        std::thread::sleep(pause);
        stream.write_all(&[b'x'; 50]).expect("half the body sent");
        std::thread::sleep(pause);
        stream
            .write_all(&[b'x'; 50])
            .expect("the rest of the body sent, not met with a reset");
        let mut answer = String::new();
        stream
            .read_to_string(&mut answer)
            .expect("the answer, then a clean end");
        let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_default();
        assert!(head.starts_with("HTTP/1.1 200 "), "{answer}");
        assert!(
            head.to_ascii_lowercase().contains("\r\nconnection: close"),
            "{answer}"
        );
        assert_eq!(body, upstream::WSGI_PARTS.concat());
    }
}

#[test]
fn an_answer_with_many_header_fields_comes_through() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    for _ in 0..2 {
        let reply = navigate(proxy.local_addr(), "/many-headers");
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert_eq!(
            reply.headers.get_all("set-cookie").iter().count(),
            MANY_COOKIES
        );
        assert!(reply.text().contains("livereload.js"));
    }
}

#[test]
fn a_post_whose_answer_had_too_many_header_fields_is_told_it_was_lost() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let form = [("content-type", "application/x-www-form-urlencoded")];
    let reply = send(
        proxy.local_addr(),
        "POST",
        "/many-headers",
        &form,
        b"a=1".to_vec(),
    );
    assert_eq!(reply.status, 502);
    let text = reply.text();
    assert!(text.contains("502: the answer was lost"), "{text}");
    assert!(text.contains("Send it again"), "{text}");
    assert!(
        !text.contains("livereload.js"),
        "no reload client: a reload would post the form again"
    );
    assert_eq!(server.connections(), 1, "a POST is never sent twice");
    // Later answers are read whole.
    let reply = send(
        proxy.local_addr(),
        "POST",
        "/many-headers",
        &form,
        b"a=1".to_vec(),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn connect_is_refused_not_forwarded() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let mut stream = raw(proxy.local_addr());
    stream
        .write_all(b"CONNECT localhost:22 HTTP/1.1\r\nHost: localhost:22\r\n\r\n")
        .expect("send");
    let mut head = [0; 12];
    stream.read_exact(&mut head).expect("an answer");
    assert_eq!(&head, b"HTTP/1.1 405");
    assert_eq!(server.connections(), 0);
}
