//! What the browsers are told and see, and the status lines about it: the app loop's
//! side of the web-facing servers. One hub holds the browsers' sockets; the LiveReload
//! listener (`[reload]`, port 35729), the static site (`[serve]`) and the proxy
//! (`[proxy]`) each serve its endpoints, so one broadcast reaches the pages of every
//! origin. The proxy also follows the server's state: it holds requests while the server
//! restarts and shows why when it failed. With nothing listening, every call here does
//! nothing.

use std::time::Duration;

use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::proxy::{Failure, Proxy, UpstreamState};
use crate::reload::{Hub, ReloadMessage, Reloader, ServerState};
use crate::report;
use crate::serve::StaticServer;
use crate::supervisor::output::Tail;

/// At most this many stylesheets and images changed at once are swapped in place, a
/// message each; more (a build that rewrites a whole folder) reload the page instead.
/// A thousand messages in a row overran a page's socket, which was then dropped as
/// too slow (past the hub's backlog of 256), and swapping them all takes a page longer
/// than loading it again.
const SWAPPED_MAX: usize = 32;

/// The image extensions the client swaps in place (as livereload.js does).
const IMAGES: &[&str] = &["jpg", "jpeg", "png", "gif", "svg", "webp", "avif", "ico"];

/// Added to a restart's longest time (stop and readiness timeouts) for the proxy's
/// hold: the app loop's own steps in between (SIGKILL, the start).
const HOLD_MARGIN: Duration = Duration::from_secs(1);

/// How long a restart waits for the old server to answer the requests it is working
/// on before stopping it: long enough for a form's POST, short enough that a request
/// the server never answers (a long poll, a hang) barely delays the restart.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// The browsers' hub and the servers that serve it.
pub struct Browsers {
    /// `None` when nothing listens for browsers.
    hub: Option<Hub>,
    // Held for their lifetime: dropping them stops them.
    _reloader: Option<Reloader>,
    site: Option<StaticServer>,
    proxy: Option<Proxy>,
}

/// The LiveReload port's bind error, with the ways out when the port is taken (most
/// often by another reloadsup): another port, or none at all, which loses nothing for
/// pages that come through the proxy or `serve` (their client uses their own origin).
fn with_way_out(error: String, config: &Config) -> String {
    // The bind error's text ends with the OS error's number, whatever the language of
    // its words.
    let in_use = format!("(os error {})", nix::errno::Errno::EADDRINUSE as i32);
    if !error.contains(&in_use) {
        return error;
    }
    let same_origin = config.proxy.is_some() || config.serve.is_some();
    if same_origin {
        format!(
            "{error}; pass `--no-reload` (or set `reload.enabled = false`): pages through the \
             proxy or `serve` reload without it"
        )
    } else if config.task_file.is_none() {
        // No task file (`run -w … -- cmd`): no `reload.port` to set.
        format!("{error}; pass `--reload-port` another port (0: any free one), or `--no-reload`")
    } else {
        format!("{error}; set another `reload.port` (or `--reload-port`), or pass `--no-reload`")
    }
}

/// The error for a proxy whose upstream is its own address `own`: it would forward
/// every request to itself. At the line of `upstream` (or `listen`), exit 2.
fn self_loop(config: &Config, p: &config::Proxy, own: std::net::SocketAddr) -> Error {
    let message = format!(
        "the proxy's upstream {} is its own address {own} (`{}`): it would \
         forward every request to itself; give the dev server's address",
        p.upstream, p.listen.set_by
    );
    match (&config.task_file, p.upstream_line.or(p.listen.line)) {
        (Some(file), Some(line)) => Error::task_file(file, Some(line), message),
        _ => Error::Usage(message),
    }
}

/// For `check`, which binds nothing: the same refusal as at start of a proxy whose
/// `listen` (a fixed port) is where `upstream` leads.
pub fn check_proxy(config: &Config) -> Result<()> {
    let Some(p) = &config.proxy else {
        return Ok(());
    };
    let own = std::net::ToSocketAddrs::to_socket_addrs(&p.listen.addr)
        .into_iter()
        .flatten()
        .filter(|addr| addr.port() != 0);
    for addr in own {
        if crate::proxy::leads_to(&p.upstream, addr) {
            return Err(self_loop(config, p, addr));
        }
    }
    Ok(())
}

impl Browsers {
    /// Starts the LiveReload listener and the static site as configured; an address
    /// that cannot be bound is an error naming it.
    pub fn start(config: &Config) -> Result<Browsers> {
        let reload = &config.reload;
        // Before anything is bound or said: a proxy on a fixed port leading to itself.
        check_proxy(config)?;
        if !reload.enabled && config.serve.is_none() && config.proxy.is_none() {
            return Ok(Browsers {
                hub: None,
                _reloader: None,
                site: None,
                proxy: None,
            });
        }
        let hub = Hub::new(&reload.allow_origins, config.task_file.is_some());
        if config.server.is_none() {
            // Nothing to wait for (a static site alone): a page that finds a new
            // instance reloads at once, instead of waiting for a `ready` never sent.
            hub.set_state(ServerState::Ready);
        }
        let reloader = if reload.enabled {
            let reloader =
                Reloader::start_hub(&reload.host, reload.port, reload.set_by, hub.clone())
                    .map_err(|err| Error::Runtime(with_way_out(err, config)))?;
            let addr = reloader.local_addr();
            report::info(format!(
                "live reload on {}livereload.js",
                crate::web::url_of(addr)
            ));
            if !addr.ip().is_loopback() {
                report::warn(format!(
                    "the reload socket listens on {addr}: every device on the network can \
                     connect (pages it allows, by `Origin`, are still only loopback ones and \
                     `reload.allow_origins`)"
                ));
            }
            Some(reloader)
        } else {
            None
        };
        let site = match &config.serve {
            Some(serve) => {
                let site = StaticServer::start(
                    serve,
                    hub.clone(),
                    reloader.as_ref().map(|r| r.local_addr().port()),
                )
                .map_err(Error::Runtime)?;
                report::good(format!(
                    "serving `{}` at {}",
                    serve.root.display(),
                    site.url()
                ));
                Some(site)
            }
            None => None,
        };
        let proxy = match &config.proxy {
            Some(p) => {
                // Requests wait for the server as long as a restart may take: the
                // old server's stop, then the new one's readiness.
                let hold = config.server.as_ref().map_or(Duration::from_secs(30), |s| {
                    s.stop_timeout + s.ready_timeout + HOLD_MARGIN
                });
                let proxy = Proxy::start(
                    &p.listen.addr,
                    p.listen.set_by,
                    &p.upstream,
                    &p.allowed_hosts,
                    hub.clone(),
                    hold,
                )
                .map_err(Error::Runtime)?;
                if proxy.forwards_to_itself() {
                    return Err(self_loop(config, p, proxy.local_addr()));
                }
                if config.server.is_none() {
                    // A server run elsewhere: nothing to wait for, and whether it
                    // answers is seen request by request.
                    proxy.set_state(UpstreamState::Ready);
                }
                report::good(format!(
                    "proxy on {} for {} (the reload script is injected)",
                    crate::web::url_of(proxy.local_addr()),
                    p.upstream
                ));
                if !proxy.local_addr().ip().is_loopback() {
                    report::warn(format!(
                        "the proxy listens on {}: every device on the network can reach \
                         the dev server through it",
                        proxy.local_addr()
                    ));
                }
                Some(proxy)
            }
            None => None,
        };
        Ok(Browsers {
            hub: Some(hub),
            _reloader: reloader,
            site,
            proxy,
        })
    }

    /// Whether anything listens for browsers (the LiveReload port, a site, a proxy):
    /// with nothing, there are no pages to reload.
    pub fn listening(&self) -> bool {
        self.hub.is_some()
    }

    /// The site's URL, when a static site is served.
    pub fn site_url(&self) -> Option<String> {
        self.site.as_ref().map(StaticServer::url)
    }

    /// The server is (re)starting: the proxy holds new requests from now on, so call
    /// this before the old server is signalled.
    pub fn restarting(&self) {
        self.changed();
        self.set_state(ServerState::Restarting, UpstreamState::Starting);
    }

    /// Counts a change pages will be told of, so a page loading meanwhile learns of
    /// it when its socket opens (see `Hub::changed`).
    fn changed(&self) {
        if let Some(hub) = &self.hub {
            hub.changed();
        }
    }

    /// Before the old server is stopped for a restart (and after [`Browsers::restarting`],
    /// so no new request reaches it): waits up to [`DRAIN_LIMIT`] for it to answer the
    /// requests it is working on, so a form's POST in flight is answered rather than
    /// broken off (it cannot be sent again). Returns at once when there are none.
    pub fn drain(&self) {
        if let Some(proxy) = &self.proxy {
            if !proxy.drain(DRAIN_LIMIT) {
                report::debug(format!(
                    "proxy: requests still unanswered after {}; stopping the server anyway",
                    humantime::format_duration(DRAIN_LIMIT)
                ));
            }
        }
    }

    /// The server is up: held requests go through.
    pub fn ready(&self) {
        self.set_state(ServerState::Ready, UpstreamState::Ready);
    }

    /// The server ended or could not start: `status` says how, `output` is what it
    /// printed (whose last lines the proxy's error page shows, and whose telling line
    /// the badge of open pages does).
    pub fn failed(&self, command: &str, status: &str, output: Tail) {
        let failure = Failure {
            command: command.to_string(),
            status: status.to_string(),
            output,
        };
        // Open pages show it on their badge, with the line of the output that says why:
        // when the server chose its exit code, its last line may say it even without
        // naming an error (`supervisor::describe` words such an end `exited with code`).
        let by_itself = status.starts_with("exited with code");
        let shown = match failure.output.telling_line(by_itself) {
            Some(line) => format!("{status}: {line}"),
            None => status.to_string(),
        };
        self.set_state(ServerState::Failed(shown), UpstreamState::Failed(failure));
    }

    /// The server missed its readiness timeout (`status` says so). Pages are told it
    /// is up (it may be, with a readiness check that is wrong); the proxy forwards a
    /// request if the server accepts it and shows why it cannot otherwise.
    pub fn late(&self, command: &str, status: &str, output: Tail) {
        let failure = Failure {
            command: command.to_string(),
            status: status.to_string(),
            output,
        };
        self.set_state(ServerState::Ready, UpstreamState::Late(failure));
    }

    /// Which build steps failed at their last run (`None`: none did): open pages show
    /// it on their badge while the server is up, until the steps run through.
    pub fn steps_failed(&self, failures: Option<String>) {
        if let Some(hub) = &self.hub {
            hub.set_build(failures);
        }
    }

    fn set_state(&self, state: ServerState, upstream: UpstreamState) {
        if let Some(hub) = &self.hub {
            hub.set_state(state);
        }
        if let Some(proxy) = &self.proxy {
            proxy.set_state(upstream);
        }
    }

    /// A full page reload after a restart; `path` is the first changed file.
    pub fn reload_page(&self, path: &str) {
        let what = if path == REQUESTED {
            "restart requested"
        } else {
            path
        };
        self.reload_page_for(path, what);
    }

    /// A full page reload naming `path` to the pages, `what` in the status line.
    pub fn reload_page_for(&self, path: &str, what: &str) {
        let Some(hub) = &self.hub else {
            return;
        };
        let sent = hub.broadcast(&ReloadMessage {
            path: path.to_string(),
            live_css: false,
            live_img: false,
        });
        report::info(format!("reloaded {sent} browser(s): {what}"));
    }

    /// Asset changes: stylesheets and images are swapped in place, anything else
    /// reloads the page (once), and so do more than [`SWAPPED_MAX`] of them.
    pub fn reload_assets(&self, paths: &[String]) {
        self.changed();
        let (live, other): (Vec<String>, Vec<String>) =
            paths.iter().cloned().partition(|p| is_live(p));
        if let Some(first) = other.first() {
            self.reload_page_for(first, &report::summary(paths));
            return;
        }
        if live.len() > SWAPPED_MAX {
            self.reload_page_for(&live[0], &report::summary(&live));
            return;
        }
        let Some(hub) = &self.hub else {
            return;
        };
        let mut sent = 0;
        for path in &live {
            sent = hub.broadcast(&ReloadMessage {
                path: path.clone(),
                live_css: true,
                live_img: true,
            });
        }
        report::info(format!(
            "updated {sent} browser(s): {}",
            report::summary(&live)
        ));
    }
}

/// The reload path after a restart that no file change caused (`reloadsup restart`,
/// SIGUSR1); LiveReload clients reload the page whatever the path.
pub const REQUESTED: &str = "*";

/// Whether the client can swap this file without a page reload.
fn is_live(path: &str) -> bool {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    ext == "css" || IMAGES.contains(&ext.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_assets() {
        assert!(is_live("static/site.css"));
        assert!(is_live("img/Logo.PNG"));
        assert!(!is_live("static/app.js"));
        assert!(!is_live("README"));
    }
}
