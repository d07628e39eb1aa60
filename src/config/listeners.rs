//! reloadsup's own listening addresses must differ: the LiveReload port, the static
//! site's and the proxy's `listen`. Two that are the same address (`reload.port` 5000
//! and `proxy.listen` 127.0.0.1:5000) would fail at the second bind with "address in
//! use", blaming some other program, so the configuration is refused first, naming both
//! keys (and the task file's line of the later one that the file sets).

use std::net::{SocketAddr, ToSocketAddrs};

use super::{Config, Ready};
use crate::error::{Error, Result};

/// Refuses `config` if two of its listeners are the same address. A port of 0 (any
/// free one) never clashes, and neither does the static site's default address, which
/// moves on to a free port by itself.
pub fn check(config: &Config) -> Result<()> {
    let listeners = listeners(config);
    for (i, first) in listeners.iter().enumerate() {
        if let Some(second) = listeners[i + 1..]
            .iter()
            .find(|b| clash(&first.addr, &b.addr))
        {
            let message = format!(
                "{} ({}) and {} ({}) are the same address: reloadsup cannot listen there \
                 twice; give one of them another port",
                first.key, first.addr, second.key, second.addr
            );
            return Err(error(config, second.line.or(first.line), message));
        }
    }
    // (The proxy's own address as its upstream has an error of its own, at the start.)
    let proxy_listen = config.proxy.as_ref().map(|p| p.listen.addr.as_str());
    for (key, addr, line) in connected(config) {
        let own = listeners.iter().find(|l| {
            clash(&l.addr, &addr) && !(key == UPSTREAM && Some(l.addr.as_str()) == proxy_listen)
        });
        if let Some(own) = own {
            let message = format!(
                "{key} ({addr}) is reloadsup's own {} ({}), not the server's: give the \
                 address the dev server listens on",
                own.key, own.addr
            );
            return Err(error(config, line, message));
        }
    }
    Ok(())
}

/// A task-file error at `line` (if the task file set it), else a usage error.
fn error(config: &Config, line: Option<usize>, message: String) -> Error {
    match &config.task_file {
        Some(file) => Error::task_file(file, line, message),
        None => Error::Usage(message),
    }
}

/// The key of the proxy's upstream, as errors name it.
const UPSTREAM: &str = "`proxy.upstream`";

/// The addresses reloadsup connects to as the server's, each with its key and the task
/// file's line: a readiness port on one of reloadsup's own listeners passed at once,
/// before the server listened (and `run` warned that "something else" listened there),
/// and an upstream there would send the browser's requests to reloadsup itself. (An
/// upstream that is the proxy's own address is refused when the proxy starts.)
fn connected(config: &Config) -> Vec<(&'static str, String, Option<usize>)> {
    let mut connected = Vec::new();
    if let Some(server) = &config.server {
        if let Some(Ready::Port(port)) = server.ready {
            let line = server.ready_line;
            connected.push(("`server.ready.port`", format!("127.0.0.1:{port}"), line));
        }
    }
    // Only an address that needs no name look-up: a name for another machine could
    // hold every command up for the resolver's timeout.
    let looked_up = |addr: &str| {
        addr.rsplit_once(':').is_none_or(|(host, _)| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            host != "localhost" && host.parse::<std::net::IpAddr>().is_err()
        })
    };
    if let Some(proxy) = config.proxy.as_ref().filter(|p| !looked_up(&p.upstream)) {
        let line = proxy.upstream_line;
        connected.push((UPSTREAM, proxy.upstream.clone(), line));
    }
    connected
}

/// An address reloadsup will listen on.
struct Listener {
    addr: String,
    /// The key or flag that set it, in backticks.
    key: String,
    /// The task file's line that set it, if the file did.
    line: Option<usize>,
}

/// Each address reloadsup will listen on.
fn listeners(config: &Config) -> Vec<Listener> {
    let mut listeners = Vec::new();
    if config.reload.enabled {
        let (host, port) = (&config.reload.host, config.reload.port);
        let addr = if host.contains(':') && !host.starts_with('[') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        listeners.push(Listener {
            addr,
            key: "`reload.port`/`reload.host`".to_string(),
            line: None,
        });
    }
    let serve = config.serve.as_ref().and_then(|s| s.listen.as_ref());
    let proxy = config.proxy.as_ref().map(|p| &p.listen);
    for listen in serve.into_iter().chain(proxy) {
        listeners.push(Listener {
            addr: listen.addr.clone(),
            key: format!("`{}`", listen.set_by),
            line: listen.line,
        });
    }
    listeners
}

/// Whether listening on `a` and then on `b` collides: the same non-zero port on the
/// same address, or on any address when one of them is the wildcard (`0.0.0.0`).
fn clash(a: &str, b: &str) -> bool {
    let resolve = |addr: &str| -> Vec<SocketAddr> {
        addr.to_socket_addrs().map_or(Vec::new(), Iterator::collect)
    };
    let (a, b) = (resolve(a), resolve(b));
    a.iter().any(|x| {
        b.iter().any(|y| {
            x.port() != 0
                && x.port() == y.port()
                && (x.ip() == y.ip() || x.ip().is_unspecified() || y.ip().is_unspecified())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_address_clashes_and_others_do_not() {
        assert!(clash("127.0.0.1:5000", "127.0.0.1:5000"));
        assert!(clash("localhost:5000", "127.0.0.1:5000"));
        assert!(clash("0.0.0.0:5000", "127.0.0.1:5000"));
        assert!(clash("127.0.0.1:5000", "0.0.0.0:5000"));
        assert!(!clash("127.0.0.1:5000", "127.0.0.1:5001"));
        assert!(!clash("127.0.0.1:5000", "127.0.0.2:5000"));
        assert!(
            !clash("127.0.0.1:0", "127.0.0.1:0"),
            "each gets a free port"
        );
        assert!(!clash("[::1]:5000", "127.0.0.1:5000"));
    }
}
