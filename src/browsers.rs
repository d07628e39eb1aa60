//! What the browsers are told, and the status lines about it: the app loop's side of the
//! web-facing servers. One hub holds the browsers' sockets; the LiveReload listener
//! (`[reload]`, port 35729) and the static site (`[serve]`) each serve its endpoints, so
//! one broadcast reaches the pages of every origin. With nothing listening, every call
//! here does nothing.

use crate::config::Config;
use crate::error::{Error, Result};
use crate::reload::{Hub, ReloadMessage, Reloader, ServerState};
use crate::report;
use crate::serve::StaticServer;

/// The image extensions the client swaps in place (as livereload.js does).
const IMAGES: &[&str] = &["jpg", "jpeg", "png", "gif", "svg", "webp", "avif", "ico"];

/// The browsers' hub and the servers that serve it.
pub struct Browsers {
    /// `None` when nothing listens for browsers.
    hub: Option<Hub>,
    // Held for their lifetime: dropping them stops them.
    _reloader: Option<Reloader>,
    _site: Option<StaticServer>,
}

impl Browsers {
    /// Starts the LiveReload listener and the static site as configured; an address
    /// that cannot be bound is an error naming it.
    pub fn start(config: &Config) -> Result<Browsers> {
        let reload = &config.reload;
        if !reload.enabled && config.serve.is_none() {
            return Ok(Browsers {
                hub: None,
                _reloader: None,
                _site: None,
            });
        }
        let hub = Hub::new(&reload.allow_origins);
        let reloader = if reload.enabled {
            let reloader = Reloader::start_hub(&reload.host, reload.port, hub.clone())
                .map_err(Error::Runtime)?;
            report::info(format!(
                "live reload on http://{}/livereload.js",
                reloader.local_addr()
            ));
            Some(reloader)
        } else {
            None
        };
        let site = match &config.serve {
            Some(serve) => {
                let site = StaticServer::start(serve, hub.clone()).map_err(Error::Runtime)?;
                report::good(format!(
                    "serving `{}` at {}",
                    serve.root.display(),
                    site.url()
                ));
                Some(site)
            }
            None => None,
        };
        Ok(Browsers {
            hub: Some(hub),
            _reloader: reloader,
            _site: site,
        })
    }

    /// The site's URL, when a static site is served.
    pub fn site_url(&self) -> Option<String> {
        self._site.as_ref().map(StaticServer::url)
    }

    /// The server is restarting (for clients that show it).
    pub fn restarting(&self) {
        self.set_state(ServerState::Restarting);
    }

    /// The server is up.
    pub fn ready(&self) {
        self.set_state(ServerState::Ready);
    }

    /// The server ended or could not start.
    pub fn failed(&self, why: &str) {
        self.set_state(ServerState::Failed(why.to_string()));
    }

    fn set_state(&self, state: ServerState) {
        if let Some(hub) = &self.hub {
            hub.set_state(state);
        }
    }

    /// A full page reload after a restart; `path` is the first changed file.
    pub fn reload_page(&self, path: &str) {
        self.send(ReloadMessage {
            path: path.to_string(),
            live_css: false,
            live_img: false,
        });
    }

    /// Asset changes: stylesheets and images are swapped in place, anything else
    /// reloads the page (once).
    pub fn reload_assets(&self, paths: &[String]) {
        let (live, other): (Vec<&String>, Vec<&String>) = paths.iter().partition(|p| is_live(p));
        if let Some(first) = other.first() {
            self.reload_page(first);
            return;
        }
        for path in live {
            self.send(ReloadMessage {
                path: path.clone(),
                live_css: true,
                live_img: true,
            });
        }
    }

    fn send(&self, message: ReloadMessage) {
        if let Some(hub) = &self.hub {
            let sent = hub.broadcast(&message);
            let how = if message.live_css {
                "updated"
            } else {
                "reloaded"
            };
            report::info(format!("{how} {sent} browser(s): {}", message.path));
        }
    }
}

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
