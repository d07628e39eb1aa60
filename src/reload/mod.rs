//! Browser live reload: a LiveReload protocol 7 server living in the supervisor, so
//! browsers stay connected while the dev server restarts.
//!
//! The app loop is synchronous; this module's surface is too. [`Reloader::start_hub`] binds
//! the port at once (so a port in use is a start-up error naming `reload.port`) and then
//! serves on its own thread, with a small current-thread tokio runtime driving hyper
//! (HTTP/1) and tokio-tungstenite (WebSocket framing). [`Hub::broadcast`] only puts
//! a message on a channel; it never waits for a browser.
//!
//! ```text
//! app loop ── broadcast / set_state ──► Hub ── broadcast channel ──► one task per socket
//!                                        ▲
//!     listener thread (hyper) ── handle ─┘    GET /livereload.js, WS /livereload,
//!     proxy / serve (issues 5, 6) ── handle ─┘  also under /__reloadsup/
//! ```
//!
//! The protocol: every socket gets our `hello` first (`official-7` plus [`protocol::VENDOR`] and
//! an `instance` id); a client counts once its own `hello` arrives and is then sent
//! `reload`; a client that listed [`protocol::VENDOR`] is also sent `status`.
//! `client.js` is our own browser client, served as `/livereload.js`.
//!
//! Files: `hub` (shared state, counting, the broadcast channel), `http` (the handler:
//! script and upgrade), `socket` (one WebSocket's loop), `protocol` (messages, pure),
//! `origin` (who may connect, pure), `server` (the standalone listener thread).

pub(crate) mod http;
mod hub;
mod origin;
mod protocol;
mod server;
mod socket;
#[cfg(test)]
mod tests;

use std::net::SocketAddr;
use std::thread::JoinHandle;

pub use http::PREFIX;
pub use hub::Hub;

/// A `reload` to send: the changed file, and whether the browser may swap it in place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadMessage {
    /// The changed file, relative to the task file's folder; the client matches it
    /// against stylesheet and image URLs by trailing path segments.
    pub path: String,
    /// A `.css` path may be swapped without reloading the page.
    pub live_css: bool,
    /// An image path may be swapped without reloading the page.
    pub live_img: bool,
}

/// The dev server's state, sent as `status` to clients of our vendor protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerState {
    /// The old server is stopping or the new one is not ready yet.
    Restarting,
    /// The server is up.
    Ready,
    /// The server exited or could not start; the text says how.
    Failed(String),
}

/// The running reload server: the handle the app loop holds. Dropping it closes every
/// socket (code 1001) and stops the server thread.
pub struct Reloader {
    hub: Hub,
    addr: SocketAddr,
    thread: Option<JoinHandle<()>>,
}

impl Reloader {
    /// Binds `host:port` now (port 0 picks a free port), then serves on a background
    /// thread. The WebSocket accepts loopback and extension pages and `allow_origins`.
    ///
    /// The error is one line naming the address and the keys that set it, e.g.
    /// ``cannot listen on 127.0.0.1:35729 (set by `reload.port`/`reload.host`): Address
    /// already in use (os error 98)``.
    #[cfg(test)]
    pub fn start(host: &str, port: u16, allow_origins: &[String]) -> Result<Reloader, String> {
        Reloader::start_hub(
            host,
            port,
            "`reload.port`/`reload.host`",
            Hub::new(allow_origins, true),
        )
    }

    /// As `Reloader::start` (in tests), serving an existing hub; `set_by` names what
    /// set the address, for the error.
    pub fn start_hub(host: &str, port: u16, set_by: &str, hub: Hub) -> Result<Reloader, String> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let shown = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        let listener = crate::web::listen((bare, port), &shown, set_by)?;
        let addr = listener
            .local_addr()
            .map_err(|err| format!("cannot listen on {shown}: {err}"))?;
        let runtime = crate::web::runtime("the reload server")?;
        let thread_hub = hub.clone();
        let thread = std::thread::Builder::new()
            .name("reload".into())
            .spawn(move || server::run(runtime, listener, thread_hub))
            .map_err(|err| format!("cannot start the reload server: {err}"))?;
        Ok(Reloader {
            hub,
            addr,
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Sends `{"command":"reload","path":P,"liveCSS":B,"liveImg":B}` to every client that
    /// has completed the hello handshake; returns how many were sent it. Never blocks on
    /// a slow browser.
    #[cfg(test)]
    pub fn broadcast(&self, reload: &ReloadMessage) -> usize {
        self.hub.broadcast(reload)
    }

    /// Counts a change (see `Hub::changed`).
    #[cfg(test)]
    pub fn changed(&self) {
        self.hub.changed();
    }

    /// The dev server's state, for clients that negotiated our vendor protocol only.
    #[cfg(test)]
    pub fn set_state(&self, state: ServerState) {
        self.hub.set_state(state);
    }

    /// How many clients are connected and handshaken.
    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.hub.clients()
    }

    /// The hub, to mount [`Hub::handle`] on another server (the proxy, `serve`) so one
    /// broadcast reaches the browsers of every origin.
    #[cfg(test)]
    pub fn hub(&self) -> Hub {
        self.hub.clone()
    }
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.hub.shutdown();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
