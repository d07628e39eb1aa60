//! What the three web-facing servers (the LiveReload listener, the static site and the
//! proxy) share: binding a socket with an error that names the address and the key that
//! set it, a small current-thread tokio runtime for the server's own thread, the accept
//! loop, and hyper's HTTP/1 connection settings.

use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpListener, ToSocketAddrs};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::runtime::Runtime;

use crate::report;

/// Binds `addr` (shown as `shown`) for the server set by `key`, non-blocking, so the
/// runtime can take it over. The error is one line, e.g. ``cannot listen on
/// 127.0.0.1:5000 (set by `proxy.listen`): Address already in use (os error 98)``.
pub fn listen(addr: impl ToSocketAddrs, shown: &str, key: &str) -> Result<TcpListener, String> {
    let failed = |err: std::io::Error| format!("cannot listen on {shown} (set by {key}): {err}");
    let listener = TcpListener::bind(addr).map_err(failed)?;
    listener.set_nonblocking(true).map_err(failed)?;
    Ok(listener)
}

/// A current-thread runtime (I/O and timers) for one server's thread; `what` names the
/// server in the error.
pub fn runtime(what: &str) -> Result<Runtime, String> {
    tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
        .map_err(|err| format!("cannot start {what}: {err}"))
}

/// Accepts connections on `listener` (bound, non-blocking) until `stop` completes,
/// spawning `serve` for each with `TCP_NODELAY` set. A failed accept (usually: out of
/// file descriptors) is logged and followed by a 50 ms pause instead of a spin. `what`
/// names the server in messages. Must run inside the server's runtime.
pub async fn accept_until<F>(
    listener: TcpListener,
    what: &str,
    stop: impl Future<Output = ()>,
    mut serve: impl FnMut(tokio::net::TcpStream, SocketAddr) -> F,
) where
    F: Future<Output = ()> + Send + 'static,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(err) => {
            report::error(format!("{what} cannot use its socket: {err}"));
            return;
        }
    };
    tokio::pin!(stop);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream, peer));
                }
                Err(err) => {
                    report::debug(format!("{what}: accept failed: {err}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut stop => return,
        }
    }
}

/// A URL for a server listening on `addr` that a browser here can open: one on every
/// address (`0.0.0.0`, `[::]`) is reached at loopback, since browsers refuse (Chromium)
/// or mishandle the unspecified address.
pub fn url_of(addr: SocketAddr) -> String {
    let mut reachable = addr;
    if addr.ip().is_unspecified() {
        reachable.set_ip(match addr {
            SocketAddr::V4(_) => IpAddr::from([127, 0, 0, 1]),
            SocketAddr::V6(_) => IpAddr::from(Ipv6Addr::LOCALHOST),
        });
    }
    format!("http://{reachable}/")
}

/// hyper's HTTP/1 server settings: a client must send its request head within
/// `header_timeout` (which also closes idle keep-alive connections).
pub fn http1(header_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
}
