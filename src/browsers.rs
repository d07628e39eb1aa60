//! What the browsers are told, and the status lines about it: the app loop's side of the
//! LiveReload server. With `reload.enabled = false` (or `--no-reload`) every call here
//! does nothing.

use crate::config::Reload;
use crate::error::{Error, Result};
use crate::reload::{ReloadMessage, Reloader, ServerState};
use crate::report;

/// The image extensions the client swaps in place (as livereload.js does).
const IMAGES: &[&str] = &["jpg", "jpeg", "png", "gif", "svg", "webp", "avif", "ico"];

/// The reload server, if one runs.
pub struct Browsers {
    reloader: Option<Reloader>,
}

impl Browsers {
    /// Starts the reload server as configured; a port that cannot be bound is an error.
    pub fn start(config: &Reload) -> Result<Browsers> {
        if !config.enabled {
            return Ok(Browsers { reloader: None });
        }
        let reloader = Reloader::start(&config.host, config.port, &config.allow_origins)
            .map_err(Error::Runtime)?;
        report::info(format!(
            "live reload on http://{}/livereload.js",
            reloader.local_addr()
        ));
        Ok(Browsers {
            reloader: Some(reloader),
        })
    }

    /// The server is restarting (for clients that show it).
    pub fn restarting(&self) {
        if let Some(r) = &self.reloader {
            r.set_state(ServerState::Restarting);
        }
    }

    /// The server is up.
    pub fn ready(&self) {
        if let Some(r) = &self.reloader {
            r.set_state(ServerState::Ready);
        }
    }

    /// The server ended or could not start.
    pub fn failed(&self, why: &str) {
        if let Some(r) = &self.reloader {
            r.set_state(ServerState::Failed(why.to_string()));
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
        if let Some(r) = &self.reloader {
            let sent = r.broadcast(&message);
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
