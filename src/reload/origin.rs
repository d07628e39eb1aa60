//! Which pages may open the reload WebSocket, judged by the upgrade's `Origin` header.
//!
//! Browsers do not apply the same-origin policy to WebSockets: any page on the web could
//! open `ws://127.0.0.1:35729/livereload` and learn the paths of the files a developer
//! saves. Browsers do always send `Origin` on a WebSocket upgrade, so the check is made
//! there. Accepted: no `Origin` (command-line tools, tests), loopback pages on any port
//! (the dev server, the proxy, a static server), browser-extension pages (the LiveReload
//! extensions probe from their background page), and whatever `reload.allow_origins`
//! lists, matched exactly. Everything else is denied, `null` included (the opaque origin
//! of `file://` pages and sandboxed frames: any such page would pass), unless listed.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The schemes of browser-extension pages; any extension is accepted, as the
/// LiveReload extensions of every browser must be.
const EXTENSION_SCHEMES: [&str; 3] = ["chrome-extension", "moz-extension", "safari-web-extension"];

/// The `Origin` of a page that has none to tell (`file://`, a sandboxed frame).
pub const NULL: &str = "null";

/// The verdict on one `Origin` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Open the socket.
    Allow,
    /// A well-formed origin that is not ours to serve: 403.
    Deny,
    /// Not `scheme://host[:port]` at all: also refused.
    Malformed,
}

/// The accepted origins: the fixed rules above plus the configured list.
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    /// `reload.allow_origins`, lowercased, without a trailing `/`.
    extra: Vec<String>,
}

impl OriginPolicy {
    /// A policy that also accepts each of `allow_origins` (`scheme://host[:port]`),
    /// compared without regard to case.
    pub fn new(allow_origins: &[String]) -> OriginPolicy {
        let extra = allow_origins
            .iter()
            .map(|o| o.trim().trim_end_matches('/').to_ascii_lowercase())
            .collect();
        OriginPolicy { extra }
    }

    /// Judges the `Origin` header of an upgrade request (`None` when it has none).
    pub fn check(&self, origin: Option<&str>) -> Verdict {
        let Some(origin) = origin else {
            return Verdict::Allow;
        };
        let origin = origin.trim().to_ascii_lowercase();
        if self.extra.contains(&origin) {
            return Verdict::Allow;
        }
        if origin == NULL {
            return Verdict::Deny;
        }
        let Some((scheme, host)) = split(&origin) else {
            return Verdict::Malformed;
        };
        let allowed = if EXTENSION_SCHEMES.contains(&scheme) {
            true
        } else {
            matches!(scheme, "http" | "https") && is_loopback(host)
        };
        if allowed {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }
}

/// Splits a lowercased `scheme://host[:port]` into scheme and host (IPv6 hosts keep their
/// brackets), checking that each part is well formed and that nothing else follows.
fn split(origin: &str) -> Option<(&str, &str)> {
    let (scheme, authority) = origin.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return None;
    }
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        host[1..end].parse::<Ipv6Addr>().ok()?;
        (host, rest)
    } else {
        match authority.find(':') {
            Some(colon) => authority.split_at(colon),
            None => (authority, ""),
        }
    };
    let host_ok = host.starts_with('[')
        || (!host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_')));
    let port_ok = port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|p| !p.is_empty() && p.len() <= 5 && p.parse::<u16>().is_ok());
    (host_ok && port_ok).then_some((scheme, host))
}

/// Whether a host names this machine: `localhost`, `*.localhost` (which browsers resolve
/// to loopback by RFC 6761), `127.0.0.0/8`, or `[::1]`.
fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return v6.parse::<Ipv6Addr>().is_ok_and(|ip| {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(allow: &[&str], origin: Option<&str>) -> Verdict {
        let allow: Vec<String> = allow.iter().map(|s| s.to_string()).collect();
        OriginPolicy::new(&allow).check(origin)
    }

    #[test]
    fn no_origin_is_allowed() {
        assert_eq!(verdict(&[], None), Verdict::Allow);
    }

    #[test]
    fn loopback_pages_on_any_port_are_allowed() {
        for origin in [
            "http://localhost",
            "http://localhost:8000",
            "https://LOCALHOST:8443",
            "http://app.localhost:3000",
            "http://127.0.0.1",
            "http://127.0.0.1:5000",
            "http://127.1.2.3:80",
            "http://[::1]:8000",
            "http://[::ffff:127.0.0.1]:8000",
        ] {
            assert_eq!(verdict(&[], Some(origin)), Verdict::Allow, "{origin}");
        }
    }

    #[test]
    fn extension_pages_are_allowed() {
        for origin in [
            "chrome-extension://jnihajbhpnppcggbcgedagnkighmdlei",
            "moz-extension://0b5c1f4e-7a3d-4c55-9d0e-3b6a2a8f1c11",
            "safari-web-extension://ABCDEF01-2345",
        ] {
            assert_eq!(verdict(&[], Some(origin)), Verdict::Allow, "{origin}");
        }
    }

    #[test]
    fn other_sites_are_denied() {
        for origin in [
            "http://evil.example",
            "https://evil.example:35729",
            "http://localhost.evil.example",
            "http://128.0.0.1",
            "http://192.168.1.10:8000",
            "http://[::2]",
            "ftp://localhost",
            "null",
            "NULL",
        ] {
            assert_eq!(verdict(&[], Some(origin)), Verdict::Deny, "{origin}");
        }
        // A `file://` page, when the user says so.
        assert_eq!(verdict(&["null"], Some("null")), Verdict::Allow);
    }

    #[test]
    fn allow_origins_match_exactly_ignoring_case_and_a_trailing_slash() {
        let allow = ["http://myapp.test:8000", "https://Dev.Example/"];
        assert_eq!(
            verdict(&allow, Some("http://myapp.test:8000")),
            Verdict::Allow
        );
        assert_eq!(verdict(&allow, Some("https://dev.example")), Verdict::Allow);
        assert_eq!(verdict(&allow, Some("http://myapp.test")), Verdict::Deny);
        assert_eq!(
            verdict(&allow, Some("https://myapp.test:8000")),
            Verdict::Deny
        );
        assert_eq!(verdict(&allow, Some("http://dev.example")), Verdict::Deny);
    }

    #[test]
    fn malformed_origins_are_refused_without_panicking() {
        for origin in [
            "",
            "file://",
            "localhost:8000",
            "http://",
            "http://localhost:",
            "http://localhost:99999",
            "http://localhost:8000/path",
            "http://user@localhost",
            "http://[::1",
            "http://[zz]:80",
            "http://[::1]x",
            "://localhost",
            "1http://localhost",
            "http://local host",
            "http://ö.localhost",
        ] {
            assert_eq!(verdict(&[], Some(origin)), Verdict::Malformed, "{origin:?}");
        }
    }
}
