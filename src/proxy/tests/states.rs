//! The upstream state seen through the proxy: requests held while the server starts,
//! connects retried while it should be up, the 502 page when it failed, and binding.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::upstream::{PAGE, Upstream};
use super::{PATIENCE, navigate, proxy, proxy_with, send};
use crate::inject::tag;
use crate::proxy::{Failure, Patience, Proxy, UpstreamState};
use crate::reload::Hub;
use crate::supervisor::output::Tail;

#[test]
fn held_requests_go_through_the_moment_the_server_is_ready() {
    let server = Upstream::start();
    let proxy = proxy_with(
        &server.address(),
        &[],
        Patience::new(PATIENCE),
        UpstreamState::Starting,
    );
    let addr = proxy.local_addr();
    let (done, replies) = mpsc::channel();
    for _ in 0..3 {
        let done = done.clone();
        std::thread::spawn(move || {
            let _ = done.send(navigate(addr, "/page"));
        });
    }
    // Proving that something does not happen takes a wait.
    assert!(
        replies.recv_timeout(Duration::from_millis(200)).is_err(),
        "answered while starting"
    );
    let released = Instant::now();
    proxy.set_state(UpstreamState::Ready);
    for _ in 0..3 {
        let reply = replies.recv_timeout(PATIENCE).expect("released");
        assert_eq!(reply.status, 200);
        assert!(reply.text().starts_with(&PAGE[..40]));
    }
    assert!(
        released.elapsed() < Duration::from_millis(500),
        "released late: {:?}",
        released.elapsed()
    );
}

#[test]
fn idle_upstream_connections_are_reused_until_a_restart() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    for _ in 0..5 {
        assert_eq!(navigate(proxy.local_addr(), "/page").status, 200);
    }
    // A connection is free again once its response has been read; one request after
    // another share it (one more is allowed, should the next request beat the
    // connection's own task to marking it free).
    let kept = server.connections();
    assert!(kept <= 2, "{kept} connections for 5 requests");
    proxy.set_state(UpstreamState::Starting);
    proxy.set_state(UpstreamState::Ready);
    assert_eq!(navigate(proxy.local_addr(), "/page").status, 200);
    assert_eq!(
        server.connections(),
        kept + 1,
        "a new connection after a restart"
    );
}

#[test]
fn many_concurrent_requests_keep_their_upstream_connections() {
    let server = Upstream::start();
    let proxy = proxy(&server.address());
    let addr = proxy.local_addr();
    let clients = 48;
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(clients));
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            let barrier = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                for _ in 0..5 {
                    barrier.wait();
                    assert_eq!(navigate(addr, "/page").status, 200);
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().expect("a client");
    }
    // 48 at once need 48 connections; later rounds reuse them rather than opening
    // (and closing) more because the pool was too small to keep them.
    let opened = server.connections();
    assert!(
        opened <= 60,
        "{opened} upstream connections for 5 rounds of 48"
    );
}

/// A server that takes one connection per step of `script`: for `false` it reads the
/// request and hangs up without answering, for `true` it answers `ok`. Then it stops.
fn scripted_server(script: Vec<bool>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("an address").to_string();
    std::thread::spawn(move || {
        for answer in script {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            if answer {
                let _ = stream.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok",
                );
            }
        }
    });
    address
}

/// A GET whose server hung up without answering and went away (it crashed, or
/// restarts itself) is sent again once a server is back on the port.
#[test]
fn a_get_whose_server_hung_up_and_went_away_is_sent_again() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let address = listener.local_addr().expect("an address");
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else {
            return;
        };
        let mut byte = [0u8; 1];
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
            head.push(byte[0]);
        }
        // Gone (the port first, as a process that exits closes it: its descriptor is
        // older than the connection's), then back 300 ms later.
        drop(listener);
        drop(stream);
        std::thread::sleep(Duration::from_millis(300));
        let listener = TcpListener::bind(address).expect("the same port");
        if let Ok((mut stream, _)) = listener.accept() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        }
    });
    let proxy = proxy(&address.to_string());
    let reply = send(proxy.local_addr(), "GET", "/", &[], Vec::new());
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "ok"));
}

/// A GET whose server hung up without answering, its port still open (werkzeug's and
/// uvicorn's reloaders keep it while the app restarts), is sent again once; a second
/// hang-up is a 502 (a handler that drops its connection would only run again).
#[test]
fn a_get_whose_running_server_hung_up_is_sent_again_once() {
    let proxy = proxy(&scripted_server(vec![false, true]));
    let reply = send(proxy.local_addr(), "GET", "/", &[], Vec::new());
    assert_eq!((reply.status.as_u16(), reply.text().as_str()), (200, "ok"));
    let proxy = self::proxy(&scripted_server(vec![false, false, true]));
    let reply = send(proxy.local_addr(), "GET", "/", &[], Vec::new());
    assert_eq!(reply.status, 502, "{}", reply.text());
}

#[test]
fn a_post_whose_server_hung_up_is_not_sent_again() {
    let proxy = proxy(&scripted_server(vec![false, true]));
    let reply = send(proxy.local_addr(), "POST", "/", &[], b"order=1".to_vec());
    assert_eq!(reply.status, 502);
    assert!(
        reply
            .text()
            .contains("It closed the connection without a complete answer"),
        "{}",
        reply.text()
    );
}

#[test]
fn a_request_held_too_long_gets_the_502_page() {
    let server = Upstream::start();
    let patience = Patience::new(Duration::from_millis(150));
    let proxy = proxy_with(&server.address(), &[], patience, UpstreamState::Starting);
    let reply = navigate(proxy.local_addr(), "/page");
    assert_eq!(reply.status, 502);
    assert!(
        reply
            .text()
            .contains("It was still restarting after 150ms."),
        "{}",
        reply.text()
    );
}

#[test]
fn a_late_server_is_forwarded_to_once_it_listens_and_explained_until_then() {
    let failure = Failure {
        command: "npm run dev".into(),
        status: "is not ready after 2s".into(),
        output: Tail::of(&["compiling <app>..."]),
    };
    // Nothing listens: the page says why at once, with the output, without the retries
    // a ready server's refused connect gets.
    let vacant = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = vacant.local_addr().unwrap().to_string();
    drop(vacant);
    let patience = Patience::new(PATIENCE);
    let proxy = proxy_with(
        &address,
        &[],
        patience,
        UpstreamState::Late(failure.clone()),
    );
    let asked = Instant::now();
    let reply = navigate(proxy.local_addr(), "/page");
    assert!(
        asked.elapsed() < patience.retry_for,
        "answered after {:?}",
        asked.elapsed()
    );
    assert_eq!(reply.status, 502);
    let page = reply.text();
    for expected in [
        "502: the dev server is not ready",
        &format!(
            "<code>npm run dev</code> is not ready after 2s, and connecting to <code>{address}</code> failed: "
        ),
        "compiling &lt;app&gt;...\n",
        &tag(None),
    ] {
        assert!(page.contains(expected), "no {expected:?} in:\n{page}");
    }
    // A server that does listen (its readiness check may be the one that is wrong) is
    // forwarded to.
    let server = Upstream::start();
    let proxy = proxy_with(
        &server.address(),
        &[],
        Patience::new(PATIENCE),
        UpstreamState::Late(failure),
    );
    let reply = navigate(proxy.local_addr(), "/page");
    assert_eq!(reply.status, 200);
    assert!(reply.text().starts_with(&PAGE[..40]));
}

#[test]
fn a_failed_server_gets_the_502_page_which_recovers() {
    let server = Upstream::start();
    let failure = Failure {
        command: "python3 app.py".into(),
        status: "exited with code 1".into(),
        output: Tail::of(&[
            "Traceback (most recent call last):",
            "NameError: name '<oops>' is not defined",
        ]),
    };
    let proxy = proxy_with(
        &server.address(),
        &[],
        Patience::new(PATIENCE),
        UpstreamState::Failed(failure),
    );
    let reply = navigate(proxy.local_addr(), "/page");
    assert_eq!(reply.status, 502);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let page = reply.text();
    for expected in [
        "<code>python3 app.py</code> exited with code 1.",
        "Traceback (most recent call last):\nNameError: name &#39;&lt;oops&gt;&#39; is not defined\n",
        &format!("{}\n</head>", tag(None)),
    ] {
        assert!(page.contains(expected), "no {expected:?} in:\n{page}");
    }
    // The next good start: the same URL is the real page.
    proxy.set_state(UpstreamState::Starting);
    proxy.set_state(UpstreamState::Ready);
    assert_eq!(navigate(proxy.local_addr(), "/page").status, 200);
}

#[test]
fn a_refused_connect_while_ready_is_retried() {
    // A port nothing listens on yet; the server binds it a moment after the request.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let proxy = proxy(&format!("127.0.0.1:{port}"));
    let addr = proxy.local_addr();
    let pending = std::thread::spawn(move || navigate(addr, "/page"));
    std::thread::sleep(Duration::from_millis(300));
    let _server = Upstream::serve(TcpListener::bind(("127.0.0.1", port)).expect("the port again"));
    let reply = pending.join().expect("the request thread");
    assert_eq!(reply.status, 200);
}

/// A server whose queue of connections to accept is full (a single-threaded server busy
/// with a slow request) does not answer a connect at all: it is up, so the request
/// waits until the server takes it, past the retry period for refusals, as a browser
/// waits (it got the 502 page after that period).
#[test]
fn a_connect_a_busy_server_does_not_answer_waits_past_the_retry_period() {
    use socket2::{Domain, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("a socket");
    let any_port: std::net::SocketAddr = "127.0.0.1:0".parse().expect("an address");
    socket.bind(&any_port.into()).expect("a free port");
    // Room for one connection waiting to be accepted, which the first connect takes.
    socket.listen(0).expect("listening");
    let listener: TcpListener = socket.into();
    let address = listener.local_addr().expect("its address");
    let _waiting = std::net::TcpStream::connect(address).expect("the queued connection");
    let mut patience = Patience::new(PATIENCE);
    patience.retry_for = Duration::from_millis(200);
    let proxy = proxy_with(&address.to_string(), &[], patience, UpstreamState::Ready);
    let addr = proxy.local_addr();
    let pending = std::thread::spawn(move || navigate(addr, "/page"));
    // Two connects without an answer: well past the retry period.
    std::thread::sleep(Duration::from_millis(2500));
    let _server = Upstream::serve(listener);
    let reply = pending.join().expect("the request thread");
    assert_eq!(reply.status, 200, "{}", reply.text());
}

#[test]
fn retries_that_run_out_get_the_502_page() {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let mut patience = Patience::new(PATIENCE);
    patience.retry_for = Duration::from_millis(200);
    let proxy = proxy_with(
        &format!("127.0.0.1:{port}"),
        &[],
        patience,
        UpstreamState::Ready,
    );
    let started = Instant::now();
    let reply = navigate(proxy.local_addr(), "/page");
    assert!(started.elapsed() >= Duration::from_millis(200));
    assert_eq!(reply.status, 502);
    let page = reply.text();
    assert!(
        page.contains(&format!(
            "Connecting to <code>127.0.0.1:{port}</code> failed"
        )),
        "{page}"
    );
    assert!(page.contains("Connection refused"), "{page}");
}

#[test]
fn a_used_address_is_an_error_naming_the_key_or_flag_and_dropping_frees_the_port() {
    let start = |listen: &str, set_by: &str| {
        Proxy::start(
            listen,
            set_by,
            "127.0.0.1:9",
            &[],
            Hub::new(&[], true),
            PATIENCE,
        )
    };
    let proxy = start("127.0.0.1:0", "proxy.listen").expect("a free port");
    let listen = proxy.local_addr().to_string();
    for set_by in ["proxy.listen", "--proxy"] {
        let err = start(&listen, set_by).err().expect("the port is taken");
        assert!(
            err.starts_with(&format!("cannot listen on {listen} (set by `{set_by}`): ")),
            "{err}"
        );
        assert!(err.contains("in use"), "{err}");
    }
    drop(proxy);
    TcpListener::bind(&listen).expect("the port is free again");
}
