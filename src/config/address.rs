//! Network addresses in the task file and on the command line (`proxy.listen`,
//! `proxy.upstream`, `serve.listen`, `reload.host`, `--proxy`, `--upstream`, `--listen`),
//! checked once while the configuration is resolved.
//!
//! A URL or a missing port used to get through and fail later, far from its cause: an
//! upstream `http://127.0.0.1:8000` made every request wait 2 s for a 502 ("failed to
//! lookup address"), a listen address without a port ended the run with "invalid socket
//! address" and no line number. Here each is a usage error naming the key or flag, with
//! a hint at the form wanted.
//!
//! The form is `host:port`: the host a name (letters, digits, `-`, `_`, dots), an IPv4
//! address, or an IPv6 address in brackets (`[::1]:8000`); the port a number. Whether
//! the port may be 0 (a free one) or left out depends on what the address is for
//! ([`Kind`]). Names are not looked up here: that happens when the address is used.

use std::net::{Ipv4Addr, Ipv6Addr};

/// What an address is for, which decides the port it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// reloadsup listens here (`proxy.listen`, `--proxy`): `host:port`, where port 0
    /// picks a free port (the status line shows which).
    Listen,
    /// As [`Kind::Listen`], but a host alone means this port (`serve.listen`, `--listen`).
    ListenOr(u16),
    /// reloadsup connects here (`proxy.upstream`, `--upstream`): `host:port`, port 1 to
    /// 65535.
    Connect,
    /// A host alone (`reload.host`), whose port is the named key; a bare IPv6 address
    /// (`::1`) is accepted too, as it always was.
    Host {
        /// The key that sets the port, for the hint.
        port_key: &'static str,
    },
    /// A `Host` value the proxy serves (`proxy.allowed_hosts`): a host, with or
    /// without a port; a leading `.` stands for the domain and all its subdomains.
    Allowed,
}

impl Kind {
    /// The port shown in hints, `None` for a host alone.
    fn example_port(self) -> Option<u16> {
        match self {
            Kind::Listen => Some(5000),
            Kind::ListenOr(port) => Some(port),
            Kind::Connect => Some(8000),
            Kind::Host { .. } | Kind::Allowed => None,
        }
    }

    /// `host` in the form this kind wants, for hints.
    fn example(self, host: &str) -> String {
        match self.example_port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }
    }

    /// The form, for hints.
    fn form(self) -> &'static str {
        match self {
            Kind::Host { .. } => "the host alone",
            Kind::Allowed => "a host or host:port",
            _ => "host:port",
        }
    }
}

/// Checks `text`, the value of `name` (a key such as `proxy.upstream`, or a flag such as
/// `--upstream`), as an address of this kind. Returns it trimmed (and, for
/// [`Kind::ListenOr`], with the default port added to a host alone), or the one-line
/// message: ``bad address `http://127.0.0.1:8000` for `proxy.upstream`: write host:port,
/// e.g. `127.0.0.1:8000`, not a URL``.
pub fn check(text: &str, name: &str, kind: Kind) -> Result<String, String> {
    parse(text.trim(), kind).map_err(|why| format!("bad address `{text}` for `{name}`: {why}"))
}

/// The address, or why it is not one.
fn parse(text: &str, kind: Kind) -> Result<String, String> {
    if text.is_empty() {
        return Err(format!(
            "write {}, e.g. `{}`",
            kind.form(),
            kind.example("127.0.0.1")
        ));
    }
    if let Some((scheme, rest)) = text.split_once("://") {
        return Err(format!(
            "write {}, e.g. `{}`, not a URL",
            kind.form(),
            from_url(scheme, rest, kind)
        ));
    }
    if let Some((before, _)) = text.split_once(['/', '?', '#']) {
        let example = parse(before, kind).unwrap_or_else(|_| kind.example("127.0.0.1"));
        return Err(format!(
            "write {}, e.g. `{example}`, without a path",
            kind.form()
        ));
    }
    if kind == Kind::Allowed {
        return allowed(text);
    }
    if let Kind::Host { port_key } = kind {
        if text.parse::<Ipv6Addr>().is_ok() {
            return Ok(text.to_string());
        }
        let (host, port) = split(text, kind)?;
        check_host(host, kind)?;
        if port.is_some() {
            return Err(format!(
                "write the host alone, e.g. `{host}`; the port is `{port_key}`"
            ));
        }
        return Ok(text.to_string());
    }
    let (host, port) = split(text, kind)?;
    if port.is_none() && !host.is_empty() && host.bytes().all(|b| b.is_ascii_digit()) {
        let example = match check_port(host, kind) {
            Ok(()) => format!("127.0.0.1:{host}"),
            Err(_) => kind.example("127.0.0.1"),
        };
        return Err(format!("a port alone; write host:port, e.g. `{example}`"));
    }
    check_host(host, kind)?;
    match (port, kind) {
        (Some(""), _) => Err(format!(
            "no port after `:`; write e.g. `{}`",
            kind.example(host)
        )),
        (Some(port), _) => check_port(port, kind).map(|()| text.to_string()),
        (None, Kind::ListenOr(default)) => Ok(format!("{text}:{default}")),
        (None, _) => Err(format!(
            "no port; write host:port, e.g. `{}`",
            kind.example(host)
        )),
    }
}

/// A `proxy.allowed_hosts` entry: `host`, `host:port`, or `.domain` for the domain and
/// its subdomains (as Django's and Vite's allowed hosts write it).
fn allowed(text: &str) -> Result<String, String> {
    if text.contains('*') {
        let domain = text.trim_start_matches(['*', '.']);
        if domain.is_empty() || domain.contains('*') {
            // `*` alone (any host) is what the check is there to refuse.
            return Err(
                "no wildcards: name each host, or `.example.test` for a domain and all its \
                 subdomains"
                    .into(),
            );
        }
        return Err(format!(
            "no wildcards; write `.{domain}` for `{domain}` and all its subdomains"
        ));
    }
    let (host, port) = split(text.strip_prefix('.').unwrap_or(text), Kind::Allowed)?;
    check_host(host, Kind::Allowed)?;
    if let Some(port) = port {
        check_port(port, Kind::Connect)?;
    }
    Ok(text.to_string())
}

/// Splits `host[:port]`; a bracketed IPv6 host keeps its brackets.
fn split(text: &str, kind: Kind) -> Result<(&str, Option<&str>), String> {
    if let Some(inside) = text.strip_prefix('[') {
        let close = inside
            .find(']')
            .ok_or_else(|| format!("no `]` after `[`; write e.g. `{}`", kind.example("[::1]")))?;
        let (ip, after) = (&inside[..close], &inside[close + 1..]);
        if ip.parse::<Ipv6Addr>().is_err() {
            return Err(format!("`{ip}` is not an IPv6 address"));
        }
        let host = &text[..close + 2];
        return match after {
            "" => Ok((host, None)),
            _ => after
                .strip_prefix(':')
                .map(|port| (host, Some(port)))
                .ok_or_else(|| {
                    format!(
                        "`{after}` after `{host}`; write e.g. `{}`",
                        kind.example(host)
                    )
                }),
        };
    }
    match text.split_once(':') {
        None => Ok((text, None)),
        Some((host, port)) if !port.contains(':') => Ok((host, Some(port))),
        Some(_) => Err(format!(
            "put an IPv6 address in brackets, e.g. `{}`",
            kind.example("[::1]")
        )),
    }
}

/// A name or an IPv4 address (a bracketed IPv6 address was checked by `split`).
fn check_host(host: &str, kind: Kind) -> Result<(), String> {
    if host.is_empty() {
        return Err(format!(
            "no host; write {}, e.g. `{}`",
            kind.form(),
            kind.example("127.0.0.1")
        ));
    }
    if host.starts_with('[') {
        return Ok(());
    }
    // One trailing dot is a fully qualified name (`localhost.`).
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'))
        });
    if !labels_ok {
        return Err(format!(
            "`{host}` is not a host name, an IPv4 address or an IPv6 address in brackets"
        ));
    }
    // A name whose last label is a number is meant as an IPv4 address (no top-level
    // domain is all digits), so `127.0.0` or `300.1.1.1` is a typo, not a name.
    let last = name.rsplit('.').next().unwrap_or(name);
    if last.bytes().all(|b| b.is_ascii_digit()) && name.parse::<Ipv4Addr>().is_err() {
        return Err(format!("`{host}` is not an IPv4 address"));
    }
    Ok(())
}

/// A decimal port; 0 only where reloadsup listens.
fn check_port(port: &str, kind: Kind) -> Result<(), String> {
    let lowest = if kind == Kind::Connect { 1 } else { 0 };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("port `{port}` is not a number"));
    }
    match port.parse::<u32>() {
        Ok(number) if (lowest..=65535).contains(&number) => Ok(()),
        _ => Err(format!("port {port} is out of range ({lowest}–65535)")),
    }
}

/// What to write instead of the URL `scheme://rest`: its host and port (port 80 for a
/// plain `http://` URL without one), or a generic example when that is no address.
fn from_url(scheme: &str, rest: &str, kind: Kind) -> String {
    let authority = rest.split(['/', '?', '#']).next().unwrap_or(rest);
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, after)| after);
    let fixed = match split(authority, kind) {
        Ok((host, _)) if matches!(kind, Kind::Host { .. } | Kind::Allowed) => host.to_string(),
        Ok((host, None)) if scheme.eq_ignore_ascii_case("http") => format!("{host}:80"),
        Ok(_) => authority.to_string(),
        Err(_) => String::new(),
    };
    parse(&fixed, kind).unwrap_or_else(|_| kind.example("127.0.0.1"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: Kind = Kind::Host {
        port_key: "reload.port",
    };

    /// `(input, kind, the address it gives)`.
    #[test]
    fn good_addresses() {
        let cases = [
            ("127.0.0.1:8000", Kind::Connect, "127.0.0.1:8000"),
            ("  localhost:8000 ", Kind::Connect, "localhost:8000"),
            ("dev.test:65535", Kind::Connect, "dev.test:65535"),
            ("my_box-2.lan.:80", Kind::Connect, "my_box-2.lan.:80"),
            ("[::1]:8000", Kind::Connect, "[::1]:8000"),
            ("[fe80::1]:1", Kind::Connect, "[fe80::1]:1"),
            ("127.0.0.1:0", Kind::Listen, "127.0.0.1:0"),
            ("0.0.0.0:5000", Kind::Listen, "0.0.0.0:5000"),
            ("[::]:0", Kind::Listen, "[::]:0"),
            ("0.0.0.0", Kind::ListenOr(5000), "0.0.0.0:5000"),
            ("localhost", Kind::ListenOr(5000), "localhost:5000"),
            ("[::1]", Kind::ListenOr(5000), "[::1]:5000"),
            ("127.0.0.1:0", Kind::ListenOr(5000), "127.0.0.1:0"),
            ("127.0.0.1", HOST, "127.0.0.1"),
            ("localhost", HOST, "localhost"),
            ("::1", HOST, "::1"),
            ("[::1]", HOST, "[::1]"),
            ("0.0.0.0", HOST, "0.0.0.0"),
            ("dev.test", Kind::Allowed, "dev.test"),
            ("tunnel.example:443", Kind::Allowed, "tunnel.example:443"),
            (".example.test", Kind::Allowed, ".example.test"),
            ("192.168.1.5", Kind::Allowed, "192.168.1.5"),
            ("[fd00::1]:5000", Kind::Allowed, "[fd00::1]:5000"),
        ];
        for (input, kind, expected) in cases {
            assert_eq!(
                check(input, "key", kind).as_deref(),
                Ok(expected),
                "{input:?} as {kind:?}"
            );
        }
    }

    /// `(input, kind, what the message says after the address and the key)`.
    #[test]
    fn bad_addresses() {
        let cases = [
            (
                "http://foo.test",
                Kind::Allowed,
                "write a host or host:port, e.g. `foo.test`, not a URL",
            ),
            (
                "*.example.test",
                Kind::Allowed,
                "no wildcards; write `.example.test` for `example.test` and all its subdomains",
            ),
            (
                "*",
                Kind::Allowed,
                "no wildcards: name each host, or `.example.test` for a domain and all its \
                 subdomains",
            ),
            (
                "a*b",
                Kind::Allowed,
                "no wildcards: name each host, or `.example.test` for a domain and all its \
                 subdomains",
            ),
            (
                "foo.test:99999",
                Kind::Allowed,
                "port 99999 is out of range (1–65535)",
            ),
            (
                "a b",
                Kind::Allowed,
                "`a b` is not a host name, an IPv4 address or an IPv6 address in brackets",
            ),
            (
                "",
                Kind::Allowed,
                "write a host or host:port, e.g. `127.0.0.1`",
            ),
            (
                ".",
                Kind::Allowed,
                "no host; write a host or host:port, e.g. `127.0.0.1`",
            ),
            (
                "http://127.0.0.1:8000",
                Kind::Connect,
                "write host:port, e.g. `127.0.0.1:8000`, not a URL",
            ),
            (
                "http://localhost:8000/",
                Kind::Connect,
                "write host:port, e.g. `localhost:8000`, not a URL",
            ),
            (
                "HTTP://user@[::1]:9000/x?y",
                Kind::Connect,
                "write host:port, e.g. `[::1]:9000`, not a URL",
            ),
            (
                "http://localhost",
                Kind::Connect,
                "write host:port, e.g. `localhost:80`, not a URL",
            ),
            (
                "https://example.com",
                Kind::Connect,
                "write host:port, e.g. `127.0.0.1:8000`, not a URL",
            ),
            (
                "http://127.0.0.1:5000",
                Kind::Listen,
                "write host:port, e.g. `127.0.0.1:5000`, not a URL",
            ),
            (
                "http://0.0.0.0",
                Kind::ListenOr(5000),
                "write host:port, e.g. `0.0.0.0:80`, not a URL",
            ),
            (
                "http://localhost:35729",
                HOST,
                "write the host alone, e.g. `localhost`, not a URL",
            ),
            (
                "localhost:8000/",
                Kind::Connect,
                "write host:port, e.g. `localhost:8000`, without a path",
            ),
            (
                "a b/c",
                Kind::Connect,
                "write host:port, e.g. `127.0.0.1:8000`, without a path",
            ),
            (
                "localhost",
                Kind::Connect,
                "no port; write host:port, e.g. `localhost:8000`",
            ),
            (
                "127.0.0.1",
                Kind::Listen,
                "no port; write host:port, e.g. `127.0.0.1:5000`",
            ),
            (
                "[::1]",
                Kind::Listen,
                "no port; write host:port, e.g. `[::1]:5000`",
            ),
            ("", Kind::Connect, "write host:port, e.g. `127.0.0.1:8000`"),
            (
                ":8000",
                Kind::Connect,
                "no host; write host:port, e.g. `127.0.0.1:8000`",
            ),
            (
                "localhost:",
                Kind::Connect,
                "no port after `:`; write e.g. `localhost:8000`",
            ),
            (
                "8000",
                Kind::Connect,
                "a port alone; write host:port, e.g. `127.0.0.1:8000`",
            ),
            (
                "0",
                Kind::Connect,
                "a port alone; write host:port, e.g. `127.0.0.1:8000`",
            ),
            (
                "5001",
                Kind::ListenOr(5000),
                "a port alone; write host:port, e.g. `127.0.0.1:5001`",
            ),
            (
                "localhost:http",
                Kind::Connect,
                "port `http` is not a number",
            ),
            ("localhost:-1", Kind::Connect, "port `-1` is not a number"),
            (
                "127.0.0.1:0",
                Kind::Connect,
                "port 0 is out of range (1–65535)",
            ),
            (
                "127.0.0.1:65536",
                Kind::Listen,
                "port 65536 is out of range (0–65535)",
            ),
            (
                "127.0.0.1:99999999999",
                Kind::Connect,
                "port 99999999999 is out of range (1–65535)",
            ),
            (
                "::1:8000",
                Kind::Connect,
                "put an IPv6 address in brackets, e.g. `[::1]:8000`",
            ),
            (
                "[::1:8000",
                Kind::Connect,
                "no `]` after `[`; write e.g. `[::1]:8000`",
            ),
            (
                "[nope]:8000",
                Kind::Connect,
                "`nope` is not an IPv6 address",
            ),
            (
                "[::1]8000",
                Kind::Connect,
                "`8000` after `[::1]`; write e.g. `[::1]:8000`",
            ),
            (
                "127.0.0:8000",
                Kind::Connect,
                "`127.0.0` is not an IPv4 address",
            ),
            (
                "300.1.1.1:8000",
                Kind::Connect,
                "`300.1.1.1` is not an IPv4 address",
            ),
            (
                "local host:8000",
                Kind::Connect,
                "`local host` is not a host name, an IPv4 address or an IPv6 address in brackets",
            ),
            (
                "a..b:8000",
                Kind::Connect,
                "`a..b` is not a host name, an IPv4 address or an IPv6 address in brackets",
            ),
            (
                "127.0.0.1:35729",
                HOST,
                "write the host alone, e.g. `127.0.0.1`; the port is `reload.port`",
            ),
        ];
        for (input, kind, why) in cases {
            assert_eq!(
                check(input, "key", kind),
                Err(format!("bad address `{input}` for `key`: {why}")),
                "{input:?} as {kind:?}"
            );
        }
    }
}
