//! The injecting reverse proxy (`[proxy]`): browsers open `listen`, and reloadsup
//! forwards to the dev server at `upstream`, adding the reload client to every HTML
//! document and holding requests while the server restarts.
//!
//! Like the reload server, its surface is synchronous: [`Proxy::start`] binds the port
//! at once (so an address in use is a start-up error naming `proxy.listen`, or `--proxy`
//! when the flag set it) and then serves on its own thread, a small current-thread tokio
//! runtime driving hyper (HTTP/1, server and client). The app loop only calls
//! [`Proxy::set_state`], which never waits.
//!
//! ```text
//! browser ── listen ──► route ─┬─ /__reloadsup/… ──► Hub::handle (script, reload socket)
//!                              └─ anything else ───► forward ──► upstream (held while
//!                                   ▲   Host check              Starting, retried while
//!                                   └── inject into documents   Ready, 502 page if Failed)
//! ```
//!
//! Files: `server` (the listener thread, routing; the `Host`/`Origin` checks against
//! DNS rebinding are the crate's `host`, shared with `serve`), `forward` (headers both ways, `Location`, app
//! WebSockets), `upload` (a request body, and its rest the server did not read),
//! `upstream` (hold, retry, connections), `inject` (which responses get the
//! tag, and splicing it in), `csp` (the page's policy: our tag's nonce, the reload
//! socket let through), `scan` (where in the HTML the tag goes, pure), `decode`
//! (gzip/deflate), `body` (the body types), `page` (the pages we answer ourselves),
//! `quickack` (acknowledging a dev server's response head at once), `sniff` (telling a
//! dev server that speaks HTTPS).

mod body;
mod decode;
mod forward;
mod inject;
mod page;
mod quickack;
mod server;
mod sniff;
#[cfg(test)]
mod tests;
mod upload;
mod upstream;

use std::net::{IpAddr, SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hyper::header::HeaderValue;
use tokio::sync::watch;

use crate::host::HostPolicy;
use crate::reload::Hub;
use crate::supervisor::output::Tail;
use upstream::Upstream;

/// The dev server's state as the supervisor sees it; it decides what a request gets.
#[derive(Debug, Clone)]
pub enum UpstreamState {
    /// Stopping, starting, or not ready yet: requests wait (up to the hold timeout).
    Starting,
    /// Ready: requests are forwarded; a refused connect is retried briefly, one that
    /// gets no answer (a busy server) up to the hold timeout.
    Ready,
    /// The server exited or could not start: requests get a 502 page saying why.
    Failed(Failure),
    /// The server did not become ready within its readiness timeout (`status` says
    /// so). It may still come up, or serve already and only its readiness check be
    /// wrong: a request is forwarded if the server accepts a connection, and gets the
    /// 502 page saying why (output and all) at once if not, without retrying.
    Late(Failure),
}

/// Why the dev server is not running, for the 502 page.
#[derive(Debug, Clone)]
pub struct Failure {
    /// The server command, as the user wrote it.
    pub command: String,
    /// How it ended, e.g. "exited with code 1", or that it is not ready.
    pub status: String,
    /// The server's output, whose last lines the page shows as they are when it is
    /// made (a late server may print more).
    pub output: Tail,
}

/// How long the proxy waits for the dev server, in its two ways of waiting.
#[derive(Debug, Clone, Copy)]
struct Patience {
    /// A request arriving while [`UpstreamState::Starting`] waits this long for `Ready`;
    /// while `Ready`, a connect that gets no answer (a busy server) is retried as long.
    hold: Duration,
    /// While `Ready`, a refused connect is retried for this long...
    retry_for: Duration,
    /// ...this often.
    retry_every: Duration,
}

impl Patience {
    fn new(hold: Duration) -> Patience {
        Patience {
            hold,
            retry_for: Duration::from_secs(2),
            retry_every: Duration::from_millis(50),
        }
    }
}

/// What every connection's tasks share.
struct Context {
    /// Serves `/__reloadsup/`.
    hub: Hub,
    /// Which `Host` values are served.
    hosts: HostPolicy,
    /// The dev server: its address, state and idle connections.
    upstream: Upstream,
    /// This proxy's `Via` entry, by which a request that comes back is known.
    via: HeaderValue,
}

/// The running proxy: the handle the app loop holds. Dropping it stops the thread and
/// frees the port.
pub struct Proxy {
    addr: SocketAddr,
    context: Arc<Context>,
    shutdown: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Proxy {
    /// Binds `listen` (set by the key or flag `set_by`) now, then serves on a background
    /// thread, forwarding to `upstream` (`host:port`). Starts in
    /// [`UpstreamState::Starting`]: requests wait up to `hold_timeout` for
    /// [`Proxy::set_state`] to say `Ready`.
    ///
    /// `allowed_hosts` are the `Host` values served besides loopback names and the
    /// listen address (`host` for any port, or `host:port`). The hub serves the reload
    /// endpoints on this origin too.
    ///
    /// The error is one line naming the address and `set_by`, e.g. ``cannot listen on
    /// 127.0.0.1:5000 (set by `--proxy`): Address already in use (os error 98)``.
    pub fn start(
        listen: &str,
        set_by: &str,
        upstream: &str,
        allowed_hosts: &[String],
        hub: Hub,
        hold_timeout: Duration,
    ) -> Result<Proxy, String> {
        Proxy::start_with(
            listen,
            set_by,
            upstream,
            allowed_hosts,
            hub,
            Patience::new(hold_timeout),
        )
    }

    fn start_with(
        listen: &str,
        set_by: &str,
        upstream: &str,
        allowed_hosts: &[String],
        hub: Hub,
        patience: Patience,
    ) -> Result<Proxy, String> {
        let listener = crate::web::listen(listen, listen, &format!("`{set_by}`"))?;
        let addr = listener
            .local_addr()
            .map_err(|err| format!("cannot listen on {listen}: {err}"))?;
        let runtime = crate::web::runtime("the proxy")?;
        let context = Arc::new(Context {
            hub,
            // An address in `Host` is no way in for DNS rebinding, which needs a name: a
            // phone opening this machine's LAN address is served, as by `serve`.
            hosts: HostPolicy::new(listen, addr, allowed_hosts).with_any_address(),
            upstream: Upstream::new(upstream, patience),
            via: forward::own_via(),
        });
        let (shutdown, stopped) = watch::channel(false);
        let thread_context = Arc::clone(&context);
        let thread = std::thread::Builder::new()
            .name("proxy".into())
            .spawn(move || server::run(runtime, listener, thread_context, stopped))
            .map_err(|err| format!("cannot start the proxy: {err}"))?;
        Ok(Proxy {
            addr,
            context,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Whether the upstream is this proxy's own address (`upstream` the same as
    /// `listen`, or a name or address of this machine when it listens on all of them):
    /// every request would be forwarded to the proxy itself. Any of the name's
    /// addresses counts, since the connection may go to any of them.
    pub fn forwards_to_itself(&self) -> bool {
        leads_to(self.context.upstream.address(), self.addr)
    }

    /// Upstream state, driven by the supervisor loop: requests are held while
    /// `Starting`, released the moment it becomes `Ready`, and answered with the 502
    /// page while `Failed`. Never blocks.
    pub fn set_state(&self, state: UpstreamState) {
        self.context.upstream.set_state(state);
    }

    /// Waits, up to `limit`, for the answers to requests the server is working on
    /// (sent, no answer head yet). Blocks; returns whether all came.
    pub fn drain(&self, limit: Duration) -> bool {
        self.context.upstream.drain(limit)
    }
}

/// Whether connecting to `upstream` (`host:port`) may reach a socket listening on `own`.
/// An IPv4-mapped IPv6 address (`[::ffff:127.0.0.1]`) is taken as the IPv4 one it
/// stands for.
pub fn leads_to(upstream: &str, own: SocketAddr) -> bool {
    let Ok(addresses) = upstream.to_socket_addrs() else {
        return false;
    };
    let own_ip = own.ip().to_canonical();
    addresses.into_iter().any(|to| {
        let to_ip = to.ip().to_canonical();
        // An IPv4 socket is not reached over IPv6 and back; one on `[::]` takes both.
        let reachable = own_ip.is_ipv4() == to_ip.is_ipv4()
            || matches!(own_ip, IpAddr::V6(v6) if v6.is_unspecified());
        to.port() == own.port()
            && reachable
            && (to_ip == own_ip
                // Connecting to 0.0.0.0 or :: reaches this machine's loopback.
                || (to_ip.is_unspecified() && (own_ip.is_loopback() || own_ip.is_unspecified()))
                || (own_ip.is_unspecified() && is_local(to_ip)))
    })
}

/// Whether `ip` is an address of this machine: one a socket can be bound to.
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified() || UdpSocket::bind((ip, 0)).is_ok()
}

impl Drop for Proxy {
    fn drop(&mut self) {
        // Nobody may be listening any more; that is fine.
        let _ = self.shutdown.send(true);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
