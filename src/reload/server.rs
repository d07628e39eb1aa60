//! The standalone listener (`reload.host`:`reload.port`, 35729 by default): a thread
//! running a current-thread tokio runtime that accepts connections and serves each with
//! hyper's HTTP/1 server, routed to the hub.
//!
//! The socket is bound by the caller, synchronously, so a port in use is an error at
//! start-up rather than a line lost on another thread.

use std::convert::Infallible;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::runtime::Runtime;
use tokio::time::{Instant, sleep};

use super::hub::Hub;
use crate::report;

/// A client must send its request head within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest request head read; ours are a few hundred bytes.
const MAX_HEAD: usize = 16 * 1024;

/// How long sockets get to send their goodbyes when the listener stops.
const DRAIN: Duration = Duration::from_millis(300);

/// Serves `listener` (already bound, and non-blocking) on `runtime` until the hub is
/// shut down. Runs on the calling thread.
pub fn run(runtime: Runtime, listener: std::net::TcpListener, hub: Hub) {
    runtime.block_on(async move {
        let connections = hub.clone();
        crate::web::accept_until(listener, "the reload server", hub.stopped(), |stream, _| {
            serve_connection(stream, connections.clone())
        })
        .await;
        // Let open sockets send their close frames before the runtime drops them.
        let deadline = Instant::now() + DRAIN;
        while hub.open_sockets() > 0 && Instant::now() < deadline {
            sleep(Duration::from_millis(5)).await;
        }
    });
}

/// Serves one TCP connection with hyper, upgrades enabled. Any other server can mount
/// the hub the same way: call [`Hub::handle`] from its service.
pub async fn serve_connection(stream: tokio::net::TcpStream, hub: Hub) {
    let service = service_fn(move |req| {
        let response = hub.handle(req);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = crate::web::http1(HEADER_TIMEOUT)
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(err) = connection.await {
        report::debug(format!("reload server connection: {err}"));
    }
}
