//! What the three web-facing servers (the LiveReload listener, the static site and the
//! proxy) share: binding a socket with an error that names the address and the key that
//! set it, a small current-thread tokio runtime for the server's own thread, and hyper's
//! HTTP/1 connection settings.

use std::net::{TcpListener, ToSocketAddrs};
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioTimer;
use tokio::runtime::Runtime;

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

/// hyper's HTTP/1 server settings: a client must send its request head within
/// `header_timeout` (which also closes idle keep-alive connections).
pub fn http1(header_timeout: Duration) -> http1::Builder {
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
}
