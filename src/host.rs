//! Which `Host` values the proxy and the static server serve, and what a well-formed
//! `Host` or `Origin` is.
//!
//! DNS rebinding: a page on `evil.example` can make its own name resolve to 127.0.0.1
//! after loading, and then read through the proxy (or the served folder) with
//! same-origin requests that carry `Host: evil.example`. Checking `Host` stops it:
//! served are loopback names and addresses on any port (`localhost`, `*.localhost`,
//! 127.0.0.0/8, `[::1]`), the listen address itself, and whatever `allowed_hosts`
//! lists (a LAN name, a tunnel's host; `.example.test` for a domain and its
//! subdomains, such as a tunnel's random ones). The static server also serves any IP
//! address as a host (a phone opening the LAN address): rebinding needs a name, so an
//! address is no way in. Everything here is pure and never panics on hostile input.

use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use hyper::header::{HOST, HeaderMap, HeaderName, ORIGIN};
use hyper::{Method, StatusCode, Uri, Version};

/// The verdict on a request's `Host`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostVerdict {
    /// Serve it.
    Allow,
    /// Well formed, but not a name this proxy answers to: 403.
    Deny,
    /// Not `host[:port]` at all: 400.
    Malformed,
}

/// A host, lowercased without a trailing dot (IPv6 in brackets), and maybe a port.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    host: String,
    /// `None`: any port.
    port: Option<u16>,
    /// Its subdomains too (written `.example.test`).
    subdomains: bool,
}

impl Entry {
    /// Whether this entry serves `host` (normalized) on `port`.
    fn serves(&self, host: &str, port: u16) -> bool {
        let named = host == self.host
            || (self.subdomains
                && host
                    .strip_suffix(self.host.as_str())
                    .is_some_and(|rest| rest.ends_with('.')));
        named && self.port.is_none_or(|p| p == port)
    }
}

/// The `Host` values served: loopback, the listen address, the allowed hosts, and
/// (if asked for) any IP address.
#[derive(Debug, Clone)]
pub struct HostPolicy {
    entries: Vec<Entry>,
    any_address: bool,
}

impl HostPolicy {
    /// The policy for a proxy bound to `bound` (configured as `listen`) with the
    /// configured `allowed_hosts` (`host` for any port, or `host:port`).
    pub fn new(listen: &str, bound: SocketAddr, allowed_hosts: &[String]) -> HostPolicy {
        let mut entries = Vec::new();
        // The listen address, as written and as bound, with the real port (`:0` binds
        // some free port).
        let listen_host = split_authority(listen).map(|(host, _)| normalize(host));
        let bound_host = match bound {
            SocketAddr::V4(v4) => v4.ip().to_string(),
            SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
        };
        for host in listen_host.into_iter().chain([bound_host]) {
            entries.push(Entry {
                host,
                port: Some(bound.port()),
                subdomains: false,
            });
        }
        for allowed in allowed_hosts {
            let allowed = allowed.trim();
            let domain = allowed.strip_prefix('.');
            // The configuration checked the form; anything else could match nothing.
            if let Some((host, port)) = split_authority(domain.unwrap_or(allowed)) {
                entries.push(Entry {
                    host: normalize(host),
                    port,
                    subdomains: domain.is_some(),
                });
            }
        }
        HostPolicy {
            entries,
            any_address: false,
        }
    }

    /// The same policy, serving any IP address as a host too.
    pub fn with_any_address(self) -> HostPolicy {
        HostPolicy {
            any_address: true,
            ..self
        }
    }

    /// The host a request is for, if it is served: its target's authority when it has
    /// one (absolute form), else its one `Host` header, else, for an HTTP/1.0 request
    /// (the header came with HTTP/1.1), `fallback`: `Ok(None)` when that is `None`
    /// too. `Err` is the answer's status and one-line reason; `key` is the setting
    /// that would allow a refused host. The proxy and the static server both ask this,
    /// so one request gets one answer from either.
    pub fn judge(
        &self,
        uri: &Uri,
        headers: &HeaderMap,
        version: Version,
        fallback: Option<&str>,
        key: &str,
    ) -> Result<Option<String>, (StatusCode, String)> {
        let bad = |why: &str| Err((StatusCode::BAD_REQUEST, why.to_string()));
        let host = match (uri.authority(), single_header(headers, HOST)) {
            (Some(authority), _) => authority.as_str().to_string(),
            (None, Ok(Some(value))) => value,
            (None, Ok(None)) if version < Version::HTTP_11 => match fallback {
                Some(local) => local.to_string(),
                None => return Ok(None),
            },
            (None, Ok(None)) => return bad("a request needs one Host header"),
            (None, Err(SingleHeader::Repeated)) => return bad("a request needs one Host header"),
            (None, Err(SingleHeader::NotText)) => return bad("malformed Host header"),
        };
        match self.check(&host) {
            HostVerdict::Allow => Ok(Some(host)),
            HostVerdict::Malformed => bad("malformed Host header"),
            HostVerdict::Deny => {
                let shown: String = host.chars().take(100).collect();
                Err((
                    StatusCode::FORBIDDEN,
                    format!(
                        "reloadsup does not serve host `{shown}` (a guard against DNS \
                         rebinding); to allow it, add it to `{key}`"
                    ),
                ))
            }
        }
    }

    /// Judges a request's `Host` value (or its URI's authority).
    pub fn check(&self, value: &str) -> HostVerdict {
        let Some((host, port)) = split_authority(value) else {
            return HostVerdict::Malformed;
        };
        let host = normalize(host);
        // A request without a port means the scheme's default; only an entry without
        // a port, or with that very port, can match it.
        let port = port.unwrap_or(80);
        let listed = self.entries.iter().any(|e| e.serves(&host, port));
        if listed || is_loopback(&host) || (self.any_address && is_address(&host)) {
            HostVerdict::Allow
        } else {
            HostVerdict::Deny
        }
    }
}

/// Why a header that may appear once could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SingleHeader {
    /// It appears more than once.
    Repeated,
    /// Its value is not visible ASCII.
    NotText,
}

/// The value of a header that may appear at most once (`Host`, `Origin`), trimmed;
/// `Ok(None)` when absent.
pub fn single_header(
    headers: &HeaderMap,
    name: HeaderName,
) -> Result<Option<String>, SingleHeader> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value
            .to_str()
            .map(|v| Some(v.trim().to_string()))
            .map_err(|_| SingleHeader::NotText),
        (Some(_), Some(_)) => Err(SingleHeader::Repeated),
    }
}

/// Splits `host[:port]` into the host (an IPv6 address keeps its brackets) and the
/// port, or `None` when it is not one: a registered name of letters, digits, `-`, `.`
/// and `_`, an IPv4 address, or a bracketed IPv6 address; a port of up to 5 digits that
/// fits in 16 bits. An empty port (`host:`) counts as none, as RFC 3986 allows.
pub fn split_authority(value: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if value.starts_with('[') {
        let close = value.find(']')?;
        let (host, rest) = value.split_at(close + 1);
        host[1..close].parse::<Ipv6Addr>().ok()?;
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match value.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (value, None),
        }
    };
    let name_ok = !host.is_empty()
        && (host.starts_with('[')
            || host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_')));
    if !name_ok {
        return None;
    }
    let port = match port {
        None | Some("") => None,
        Some(digits) if digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Some(digits.parse::<u16>().ok()?)
        }
        Some(_) => return None,
    };
    Some((host, port))
}

/// Whether an `Origin` value is well formed: `null`, or `scheme://host[:port]` with
/// nothing after it.
pub fn valid_origin(value: &str) -> bool {
    value == "null" || split_origin(value).is_some()
}

/// Whether a request's target is in authority form (`host:port`) for any method but
/// CONNECT, the only one it belongs to: `GET style.css` reads as asking for host
/// `style.css`, and was refused as a host not served (403) where it is a malformed
/// request (400).
pub fn misplaced_authority(method: &Method, uri: &Uri) -> bool {
    method != Method::CONNECT && uri.scheme().is_none() && uri.authority().is_some()
}

/// Whether `origin` is this very request's origin: http(s) and the same `host[:port]`
/// as its `Host`, so the page came through this proxy.
pub fn same_origin(origin: &str, host: &str) -> bool {
    split_origin(origin).is_some_and(|(scheme, authority)| {
        matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https")
            && authority.eq_ignore_ascii_case(host)
    })
}

/// Drops a request's `Origin` when it is the request's own (one value, the
/// [`same_origin`] of `host`, its `Host` already checked): a page served from this very
/// address opening its reload socket. The hub need not judge it; it accepts loopback
/// origins and `reload.allow_origins`, not a LAN address or a tunnel's name that the
/// `Host` check let in, and would refuse the page's own socket.
pub fn forget_own_origin(headers: &mut HeaderMap, host: &str) {
    let mut values = headers.get_all(ORIGIN).iter();
    let own = match (values.next(), values.next()) {
        (Some(value), None) => value
            .to_str()
            .is_ok_and(|origin| same_origin(origin.trim(), host)),
        _ => false,
    };
    if own {
        headers.remove(ORIGIN);
    }
}

/// Splits `scheme://authority` with a valid scheme and authority.
fn split_origin(value: &str) -> Option<(&str, &str)> {
    let (scheme, authority) = value.split_once("://")?;
    let mut chars = scheme.chars();
    let scheme_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    (scheme_ok && split_authority(authority).is_some()).then_some((scheme, authority))
}

/// Lowercases a host and drops one trailing dot (`localhost.` is `localhost`).
fn normalize(host: &str) -> String {
    let host = host.strip_suffix('.').unwrap_or(host);
    host.to_ascii_lowercase()
}

/// Whether a normalized host names this machine's loopback interface.
pub fn is_loopback(host: &str) -> bool {
    if host == "localhost" || host.ends_with(".localhost") {
        return true;
    }
    if let Some(inner) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        // `[::ffff:127.0.0.1]`, the IPv4 loopback as IPv6 writes it, is loopback too.
        return inner.parse::<Ipv6Addr>().is_ok_and(|ip| {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        });
    }
    host.parse::<Ipv4Addr>().is_ok_and(|ip| ip.is_loopback())
}

/// Whether `host` (normalized) is an IP address, not a name.
fn is_address(host: &str) -> bool {
    match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        Some(inner) => inner.parse::<Ipv6Addr>().is_ok(),
        None => host.parse::<Ipv4Addr>().is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_address_serves_addresses_but_no_other_names() {
        let open = policy(&[]).with_any_address();
        assert_eq!(open.check("192.168.1.20:5000"), HostVerdict::Allow);
        assert_eq!(open.check("[fe80::1]:5000"), HostVerdict::Allow);
        assert_eq!(open.check("evil.example:5000"), HostVerdict::Deny);
        assert_eq!(open.check("1.2.3.4.evil.example"), HostVerdict::Deny);
        assert_eq!(policy(&[]).check("192.168.1.20:5000"), HostVerdict::Deny);
    }

    fn policy(allowed: &[&str]) -> HostPolicy {
        let allowed: Vec<String> = allowed.iter().map(|s| s.to_string()).collect();
        let bound: SocketAddr = "0.0.0.0:5000".parse().expect("an address");
        HostPolicy::new("devbox.lan:5000", bound, &allowed)
    }

    /// What `judge` answers for a request with this target, these `Host` headers and
    /// version.
    fn judged(
        target: &str,
        hosts: &[&[u8]],
        version: Version,
        fallback: Option<&str>,
    ) -> Result<Option<String>, (StatusCode, String)> {
        let mut headers = HeaderMap::new();
        for value in hosts {
            headers.append(HOST, hyper::header::HeaderValue::from_bytes(value).unwrap());
        }
        let uri: Uri = target.parse().unwrap();
        policy(&[]).judge(&uri, &headers, version, fallback, "x.allowed_hosts")
    }

    #[test]
    fn a_request_is_for_its_target_else_its_one_host_header() {
        let v11 = Version::HTTP_11;
        let ok = |host: &str| Ok(Some(host.to_string()));
        assert_eq!(
            judged("/", &[b"localhost:5000"], v11, None),
            ok("localhost:5000")
        );
        assert_eq!(
            judged("http://127.0.0.1:5000/", &[b"evil.example"], v11, None),
            ok("127.0.0.1:5000"),
            "an absolute target is what is judged, not the header"
        );
        let needs_one = Err((
            StatusCode::BAD_REQUEST,
            "a request needs one Host header".to_string(),
        ));
        assert_eq!(judged("/", &[], v11, Some("127.0.0.1:5000")), needs_one);
        assert_eq!(
            judged("/", &[b"localhost", b"localhost"], v11, None),
            needs_one
        );
        let malformed = Err((StatusCode::BAD_REQUEST, "malformed Host header".to_string()));
        assert_eq!(judged("/", &[b"caf\xc3\xa9.test"], v11, None), malformed);
        assert_eq!(judged("/", &[b"a b"], v11, None), malformed);
        let v10 = Version::HTTP_10;
        assert_eq!(judged("/", &[], v10, None), Ok(None));
        assert_eq!(
            judged("/", &[], v10, Some("127.0.0.1:5000")),
            ok("127.0.0.1:5000")
        );
        let (status, why) = judged("/", &[b"evil.example"], v11, None).unwrap_err();
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(why.ends_with("add it to `x.allowed_hosts`"), "{why}");
    }

    #[test]
    fn hosts_are_judged() {
        let policy = policy(&[
            "dev.test",
            "tunnel.example:443",
            "[fd00::1]",
            ".tunnel.test",
        ]);
        let cases = [
            ("localhost", HostVerdict::Allow),
            ("localhost:5000", HostVerdict::Allow),
            ("LOCALHOST:1234", HostVerdict::Allow),
            ("localhost.:5000", HostVerdict::Allow),
            ("app.localhost:5000", HostVerdict::Allow),
            ("127.0.0.1:5000", HostVerdict::Allow),
            ("127.1.2.3", HostVerdict::Allow),
            ("[::1]:5000", HostVerdict::Allow),
            ("[::1]", HostVerdict::Allow),
            ("[::ffff:127.0.0.1]:5000", HostVerdict::Allow),
            ("[::ffff:10.0.0.1]:5000", HostVerdict::Deny),
            ("devbox.lan:5000", HostVerdict::Allow),
            ("devbox.lan:5001", HostVerdict::Deny),
            ("0.0.0.0:5000", HostVerdict::Allow),
            ("dev.test", HostVerdict::Allow),
            ("DEV.test:8080", HostVerdict::Allow),
            ("tunnel.example:443", HostVerdict::Allow),
            ("tunnel.example", HostVerdict::Deny),
            ("[fd00::1]:5000", HostVerdict::Allow),
            ("evil.example", HostVerdict::Deny),
            ("tunnel.test", HostVerdict::Allow),
            ("abc123.tunnel.test:443", HostVerdict::Allow),
            ("a.b.TUNNEL.test.", HostVerdict::Allow),
            ("eviltunnel.test", HostVerdict::Deny),
            ("tunnel.test.evil.example", HostVerdict::Deny),
            ("localhost.evil.example", HostVerdict::Deny),
            ("128.0.0.1:5000", HostVerdict::Deny),
            ("[::2]:5000", HostVerdict::Deny),
            ("", HostVerdict::Malformed),
            ("a b", HostVerdict::Malformed),
            ("[::1", HostVerdict::Malformed),
            ("[::1]x", HostVerdict::Malformed),
            ("[nonsense]:80", HostVerdict::Malformed),
            ("localhost:99999", HostVerdict::Malformed),
            ("localhost:5000:1", HostVerdict::Malformed),
            ("user@localhost", HostVerdict::Malformed),
            ("localhost/x", HostVerdict::Malformed),
            ("lоcalhost", HostVerdict::Malformed), // a Cyrillic `о`
        ];
        for (host, expected) in cases {
            assert_eq!(policy.check(host), expected, "Host: {host:?}");
        }
    }

    #[test]
    fn origins_are_well_formed_or_not() {
        for good in [
            "null",
            "http://localhost:5000",
            "https://dev.test",
            "moz-extension://abc",
        ] {
            assert!(valid_origin(good), "{good}");
        }
        for bad in [
            "",
            "localhost",
            "http://",
            "http://a b",
            "http://x/y",
            "1http://x",
            "http://[::1",
        ] {
            assert!(!valid_origin(bad), "{bad}");
        }
    }

    #[test]
    fn same_origin_compares_scheme_and_authority() {
        assert!(same_origin("http://dev.test:5000", "dev.test:5000"));
        assert!(same_origin("HTTPS://Dev.Test:5000", "dev.test:5000"));
        assert!(!same_origin("http://dev.test:5001", "dev.test:5000"));
        assert!(!same_origin("ftp://dev.test:5000", "dev.test:5000"));
        assert!(!same_origin("null", "dev.test:5000"));
    }
}
