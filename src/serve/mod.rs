//! `reloadsup serve [DIR]` and the `[serve]` table: a static site with live reload.
//!
//! The comfort of `python -m http.server`, with the browser reloading on every save and
//! no file outside the folder ever served. The site is served on its own port (default
//! `127.0.0.1:5000`, or the next free one when that is taken and no address was given),
//! with the reload script and socket on the same origin, so the page's WebSocket follows
//! whatever address the page was opened at (a phone on the LAN included).

mod files;
mod server;

use std::net::{IpAddr, SocketAddr, TcpListener};
use std::thread::JoinHandle;

use crate::config::{Listen, Serve};
use crate::host::HostPolicy;
use crate::reload::Hub;
use crate::report;

/// The default address when none is given.
const DEFAULT_PORT: u16 = Serve::DEFAULT_PORT;

/// How many ports after the default are tried when it is taken.
const PORT_TRIES: u16 = 100;

/// The running static server; it stops when the hub shuts down.
pub struct StaticServer {
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
    hub: Hub,
}

impl StaticServer {
    /// Binds the address now (an explicit address that cannot be bound is an error
    /// naming it), then serves `serve.root` on a thread of its own.
    /// `reload_port`: the LiveReload port open beside it, `None` for bare `serve`.
    pub fn start(
        serve: &Serve,
        hub: Hub,
        reload_port: Option<u16>,
    ) -> Result<StaticServer, String> {
        let listener = bind(serve.listen.as_ref())?;
        let addr = listener
            .local_addr()
            .map_err(|err| format!("cannot read the static server's address: {err}"))?;
        if !addr.ip().is_loopback() {
            report::warn(format!(
                "serving `{}` on {addr}: every device on the network can read this folder",
                serve.root.display()
            ));
        }
        let written = serve.listen.as_ref().map_or("", |l| l.addr.as_str());
        let hosts = HostPolicy::new(written, addr, &serve.allowed_hosts).with_any_address();
        let (root, thread_hub) = (serve.root.clone(), hub.clone());
        let thread = std::thread::Builder::new()
            .name("serve".into())
            .spawn(move || server::run(listener, root, hosts, thread_hub, reload_port))
            .map_err(|err| format!("cannot start the static server: {err}"))?;
        Ok(StaticServer {
            addr,
            thread: Some(thread),
            hub,
        })
    }

    /// The site's URL.
    pub fn url(&self) -> String {
        crate::web::url_of(self.addr)
    }
}

impl Drop for StaticServer {
    fn drop(&mut self) {
        self.hub.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Binds `listen` (`host:port`, checked when the configuration was resolved), or the
/// default port (moving on to the next free one, and saying so).
fn bind(listen: Option<&Listen>) -> Result<TcpListener, String> {
    if let Some(listen) = listen {
        let set_by = format!("`{}`", listen.set_by);
        return crate::web::listen(listen.addr.as_str(), &listen.addr, &set_by);
    }
    let loopback = IpAddr::from([127, 0, 0, 1]);
    for port in DEFAULT_PORT..DEFAULT_PORT + PORT_TRIES {
        let shown = format!("{loopback}:{port}");
        if let Ok(listener) = crate::web::listen((loopback, port), &shown, "the default port") {
            if port != DEFAULT_PORT {
                report::warn(format!(
                    "port {DEFAULT_PORT} is taken; serving on port {port} instead"
                ));
            }
            return Ok(listener);
        }
    }
    Err(format!(
        "no free port from {DEFAULT_PORT} to {}; choose one with `--listen`",
        DEFAULT_PORT + PORT_TRIES - 1
    ))
}
