//! Readiness: telling that a (re)started server accepts requests, so browsers are
//! reloaded only then, and `reloadsup start` returns only then.
//!
//! Every check is a cheap poll, repeated every few ms (never a blind sleep): a TCP
//! connect, an HTTP GET answered below 500, a line of output matching a regex (seen by
//! the output relay, or read from the log file), a fixed delay, or — by default — the
//! server's process group listening on a TCP port, read from `/proc`. The caller starts
//! checking only once the old server's process group is gone, so the old server can
//! never answer for the new one.

use std::collections::HashSet;
use std::fs;
use std::io::{Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::unistd::Pid;
use regex::Regex;
use socket2::SockRef;

use crate::config::Ready;
use crate::event::Event;
use crate::procfs;
use crate::supervisor::output;

/// How often a cheap check (a connect, an HTTP request, a flag) is repeated at first:
/// a server that binds within a second is seen within 5 ms of binding.
pub const POLL: Duration = Duration::from_millis(5);

/// The first-second interval for checks that read `/proc` or a log file, which cost
/// more than a refused connect.
const POLL_SCAN: Duration = Duration::from_millis(10);

/// The interval after `elapsed` of waiting: `first` during the first second, then
/// coarser for a slow server (or one that never listens), so a long wait costs next to
/// no CPU.
fn interval(first: Duration, elapsed: Duration) -> Duration {
    match elapsed.as_secs() {
        0 => first,
        1..=4 => Duration::from_millis(50),
        _ => Duration::from_millis(250),
    }
}

/// How often a server that missed its readiness timeout is checked again, so that it
/// is still seen when it comes up late (a first build that takes minutes), at next to
/// no cost while it never does.
const POLL_LATE: Duration = Duration::from_secs(1);

/// How long a server must have listened on other ports only, and not on the one the
/// check connects to, before that is said as a likely mistake (a mistyped
/// `proxy.upstream` or `server.ready.port`) on the terminal, rather than only after the
/// whole `ready_timeout`. Nothing else changes then: a server that opens a debugger's
/// port (`node --inspect`) seconds before its own is only slow to start, and requests
/// held for it (a form's POST) must still reach it.
const ELSEWHERE_FOR: Duration = Duration::from_secs(2);

/// How often the server's ports are read from `/proc` for [`ELSEWHERE_FOR`].
const ELSEWHERE_POLL: Duration = Duration::from_millis(500);

/// How long one connect or HTTP exchange may take before it counts as "not yet".
const ATTEMPT_TIMEOUT: Duration = Duration::from_millis(500);

/// One way to tell readiness, resolved for one server process.
#[derive(Debug, Clone)]
pub enum Check {
    /// A TCP connect to one of these addresses (all that a name resolves to: a server
    /// may listen on `127.0.0.1` while `localhost` gives `::1` first) succeeds.
    Connect(Vec<SocketAddr>),
    /// An HTTP GET of this URL, at one of these addresses, is answered with a status
    /// below 500.
    Http {
        addrs: Vec<SocketAddr>,
        host: String,
        path: String,
    },
    /// A matching line was seen by the output relay (which sets the flag).
    Flag(Arc<AtomicBool>),
    /// A line of this log file, written after the cursor's start, matches.
    LogFile {
        path: PathBuf,
        cursor: Arc<Mutex<LogCursor>>,
        regex: Regex,
    },
    /// This much time has passed since the start.
    Delay(Duration),
    /// Some process of this group listens on a TCP port.
    GroupListens(Pid),
}

impl Check {
    /// Whether the server is ready now; `since` is when it started.
    pub fn poll(&self, since: Instant) -> bool {
        match self {
            Check::Connect(addrs) => accepting(addrs, ATTEMPT_TIMEOUT).is_some(),
            Check::Http { addrs, host, path } => addrs
                .iter()
                .find_map(|addr| http_status(*addr, host, path))
                .is_some_and(|s| s < 500),
            Check::Flag(flag) => flag.load(Ordering::Acquire),
            Check::LogFile {
                path,
                cursor,
                regex,
            } => cursor
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .matches(path, regex),
            Check::Delay(delay) => since.elapsed() >= *delay,
            Check::GroupListens(pgid) => !listening_ports(*pgid).is_empty(),
        }
    }

    /// The addresses this check connects to, if it connects: something else listening
    /// there would pass it for the server.
    pub fn addresses(&self) -> &[SocketAddr] {
        match self {
            Check::Connect(addrs) | Check::Http { addrs, .. } => addrs,
            _ => &[],
        }
    }

    /// Polls until ready (`Ok`, with the time waited) or `timeout` (`Err`), or until
    /// `cancelled` says to give up (`Err`).
    pub fn wait(
        &self,
        since: Instant,
        timeout: Duration,
        cancelled: impl FnMut() -> bool,
    ) -> Result<Duration, ()> {
        self.wait_until(since, Some(since + timeout), cancelled)
    }

    /// As [`Check::wait`], with no deadline when `deadline` is `None`: after the
    /// timeout, every [`POLL_LATE`].
    fn wait_until(
        &self,
        since: Instant,
        deadline: Option<Instant>,
        mut cancelled: impl FnMut() -> bool,
    ) -> Result<Duration, ()> {
        loop {
            if cancelled() {
                return Err(());
            }
            if self.poll(since) {
                return Ok(since.elapsed());
            }
            let now = Instant::now();
            let pause = match deadline {
                Some(deadline) if now >= deadline => return Err(()),
                Some(deadline) => {
                    let first = match self {
                        Check::GroupListens(_) | Check::LogFile { .. } => POLL_SCAN,
                        _ => POLL,
                    };
                    interval(first, since.elapsed()).min(deadline - now)
                }
                None => POLL_LATE,
            };
            thread::sleep(pause);
        }
    }
}

/// The result of a probe run on its own thread, sent to the app loop.
#[derive(Debug)]
pub struct Readiness {
    /// Which start this is about; results for a replaced server are ignored.
    pub generation: u64,
    /// Time from the start to readiness (or to the timeout).
    pub waited: Duration,
    /// What the probe has found.
    pub found: Found,
}

/// What a probe reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// The server is ready.
    Ready,
    /// The server has listened on other ports only for [`ELSEWHERE_FOR`]: said at once
    /// (a mistyped port) while the probe waits on. The text says where, as
    /// [`listening_elsewhere`] words it.
    Elsewhere(String),
    /// The timeout passed. The probe goes on, and reports `Ready` if the server
    /// becomes ready after all.
    TimedOut,
}

/// Where a server listens, when on other ports only and not the one its check connects
/// to (see [`listening_elsewhere`]), read by the probe.
pub type ListensElsewhere = Box<dyn FnMut() -> Option<String> + Send>;

/// Reads where the server of group `pgid` listens when on other ports only (see
/// [`listening_elsewhere`]), for [`Misplaced`]; it owns copies of the check's settings,
/// as it runs on the probe's thread.
pub fn elsewhere_reader(
    ready: Option<&Ready>,
    upstream: Option<&str>,
    pgid: Pid,
) -> ListensElsewhere {
    let (ready, upstream) = (ready.cloned(), upstream.map(str::to_string));
    Box::new(move || listening_elsewhere(ready.as_ref(), upstream.as_deref(), pgid))
}

/// Tells, once, when a server has listened elsewhere (other ports only) for
/// [`ELSEWHERE_FOR`], reading its ports every [`ELSEWHERE_POLL`]: `run`'s probe and
/// `start`'s wait both say so at once, as the likely reason it is not ready.
pub struct Misplaced {
    listens_elsewhere: ListensElsewhere,
    /// When the ports are read next; `None` once told.
    next: Option<Instant>,
    /// Since when they have been elsewhere.
    since: Option<Instant>,
}

impl Misplaced {
    /// Watches a server started at `started`, whose ports `listens_elsewhere` reads.
    pub fn new(listens_elsewhere: ListensElsewhere, started: Instant) -> Misplaced {
        Misplaced {
            listens_elsewhere,
            next: Some(started + ELSEWHERE_POLL),
            since: None,
        }
    }

    /// Where the server listens if, at `now`, it has listened elsewhere long enough;
    /// `Some` once only.
    pub fn settled(&mut self, now: Instant) -> Option<String> {
        if self.next.is_none_or(|next| now < next) {
            return None;
        }
        self.next = Some(now + ELSEWHERE_POLL);
        let Some(elsewhere) = (self.listens_elsewhere)() else {
            self.since = None;
            return None;
        };
        let settled = now - *self.since.get_or_insert(now) >= ELSEWHERE_FOR;
        if settled {
            self.next = None;
        }
        settled.then_some(elsewhere)
    }
}

/// The warning for a server found listening elsewhere (`elsewhere`, as
/// [`listening_elsewhere`] words it), which is waited for up to `timeout` all the same.
pub fn elsewhere_warning(elsewhere: &str, timeout: Duration) -> String {
    format!(
        "the server is not ready yet{elsewhere}; waiting for it up to `ready_timeout` ({})",
        humantime::format_duration(timeout)
    )
}

/// Starts a thread that polls `check` and sends `Event::Ready`: once when the server is
/// ready, or once when `timeout` passes and again if it becomes ready later; and once
/// when `listens_elsewhere` has said so for [`ELSEWHERE_FOR`] before either. It gives
/// up silently as soon as `current` no longer holds `generation` (the server was
/// replaced or ended).
pub fn spawn_probe(
    check: Check,
    generation: u64,
    current: Arc<AtomicU64>,
    since: Instant,
    timeout: Duration,
    listens_elsewhere: Option<ListensElsewhere>,
    tx: Sender<Event>,
) {
    let spawned = thread::Builder::new().name("ready".into()).spawn(move || {
        let replaced = || current.load(Ordering::Acquire) != generation;
        let send = |found| {
            let _ = tx.send(Event::Ready(Readiness {
                generation,
                waited: since.elapsed(),
                found,
            }));
        };
        let mut misplaced = listens_elsewhere.map(|l| Misplaced::new(l, since));
        let waited = check.wait(since, timeout, || {
            if let Some(elsewhere) = misplaced.as_mut().and_then(|m| m.settled(Instant::now())) {
                send(Found::Elsewhere(elsewhere));
            }
            replaced()
        });
        if waited.is_err() {
            if replaced() {
                return;
            }
            send(Found::TimedOut);
            if check.wait_until(since, None, replaced).is_err() {
                return;
            }
        }
        if !replaced() {
            send(Found::Ready);
        }
    });
    if let Err(err) = spawned {
        crate::report::warn(format!("cannot start the readiness probe: {err}"));
    }
}

/// The check for a server just started as group `pgid`: `server.ready` as configured;
/// else the proxy's upstream accepting connections when a proxy is configured; else the
/// first TCP port the group listens on. `flag` is the output relay's, for `log`.
pub fn check_for(
    ready: Option<&Ready>,
    upstream: Option<&str>,
    pgid: Pid,
    flag: Option<Arc<AtomicBool>>,
) -> Result<Check, String> {
    Ok(match ready {
        // A server told to listen on `localhost` may take either loopback address.
        Some(Ready::Port(port)) => Check::Connect(vec![
            SocketAddr::from(([127, 0, 0, 1], *port)),
            SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, *port)),
        ]),
        Some(Ready::Url(url)) => http_check(url)?,
        Some(Ready::Log(_)) => Check::Flag(flag.unwrap_or_default()),
        Some(Ready::Delay(delay)) => Check::Delay(*delay),
        None => match upstream {
            Some(address) => Check::Connect(
                resolve(address)
                    .ok_or_else(|| format!("cannot resolve the proxy upstream `{address}`"))?,
            ),
            None => Check::GroupListens(pgid),
        },
    })
}

/// Resolves a `http://host[:port]/path` URL into a check.
pub fn http_check(url: &str) -> Result<Check, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("`{url}` is not an http:// URL"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addrs =
        resolve(&with_port).ok_or_else(|| format!("cannot resolve `{authority}` in `{url}`"))?;
    Ok(Check::Http {
        addrs,
        host: authority.to_string(),
        path: path.to_string(),
    })
}

/// Every address `host:port` resolves to, in the resolver's order; `None` for none.
fn resolve(address: &str) -> Option<Vec<SocketAddr>> {
    let addrs: Vec<SocketAddr> = address.to_socket_addrs().ok()?.collect();
    (!addrs.is_empty()).then_some(addrs)
}

/// How long the check for another program at the server's address may take (a
/// loopback connect is answered or refused at once).
const TAKEN_TIMEOUT: Duration = Duration::from_millis(200);

/// Warns when something already accepts connections where the readiness check for
/// `ready` (by default, the proxy's `upstream`) connects, before the server starts, and
/// returns that address. The old server's processes are all gone by then, so it is
/// another program (a server left running in another terminal): it would pass the
/// check at once, and get the proxy's requests.
pub fn warn_if_taken(ready: Option<&Ready>, upstream: Option<&str>) -> Option<SocketAddr> {
    let check = check_for(ready, upstream, Pid::from_raw(0), None).ok()?;
    let addr = accepting(check.addresses(), TAKEN_TIMEOUT)?;
    crate::report::warn(format!(
        "something else already listens on {addr} before the server starts \
         (a server left running?): it will pass for the server"
    ));
    Some(addr)
}

/// The first of `addrs` that accepts a connection within `timeout`, if one does.
pub fn accepting(addrs: &[SocketAddr], timeout: Duration) -> Option<SocketAddr> {
    addrs
        .iter()
        .copied()
        .find(|addr| connect(*addr, timeout).is_ok())
}

/// A connection to `addr`, refused if it is to itself (see [`joined_to_itself`]).
fn connect(addr: SocketAddr, timeout: Duration) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    if joined_to_itself(SockRef::from(&stream)) {
        return Err(std::io::ErrorKind::ConnectionRefused.into());
    }
    Ok(stream)
}

/// Whether a connection is to itself; if it is, it is set to end with a reset when it
/// is closed. Connecting again and again to a loopback port in the kernel's ephemeral
/// range that nothing listens on sooner or later picks that very port as its own, and
/// TCP joins the socket to itself ("simultaneous open"): a server that has not bound
/// yet would pass for ready, and then fail to bind. Closed as usual, such a socket
/// stays in TIME-WAIT on the server's port for 60 s, and every start of the server
/// meanwhile failed with "address already in use", `SO_REUSEADDR` or not (one restart
/// in 45, on an even port above 32768); a reset leaves nothing behind.
pub fn joined_to_itself(socket: SockRef<'_>) -> bool {
    let address = |a: std::io::Result<socket2::SockAddr>| a.ok().and_then(|a| a.as_socket());
    let itself = matches!(
        (address(socket.local_addr()), address(socket.peer_addr())),
        (Some(local), Some(peer)) if local == peer
    );
    if itself {
        // Best effort: without it, the port is held as described above.
        let _ = socket.set_linger(Some(Duration::ZERO));
    }
    itself
}

/// The status code of `GET path`, or `None` if there is no answer (yet).
fn http_status(addr: SocketAddr, host: &str, path: &str) -> Option<u16> {
    let mut stream = connect(addr, ATTEMPT_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(ATTEMPT_TIMEOUT)).ok()?;
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: reloadsup\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut buffer = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buffer) {
            Ok(_) if response.code.is_some() => return response.code,
            Ok(_) if buffer.len() < 64 * 1024 => continue,
            _ => return None,
        }
    }
}

/// How far `start` has read the server's log file: each poll reads on from there, not
/// again from the start (a server that printed 24 MB before its ready line was never
/// seen ready: each poll read the first 16 MiB again).
#[derive(Debug, Default)]
pub struct LogCursor {
    /// The file offset read up to.
    pos: u64,
    /// What was read, cut into lines.
    lines: output::Lines,
}

/// The most a poll reads, so a log written faster than it is read does not hold the
/// poll (and its deadline) up; the rest is read at the next poll.
const LOG_READ_PER_POLL: u64 = 64 * 1024 * 1024;

impl LogCursor {
    /// A cursor at `offset` (where the log ended when the server started).
    pub fn at(offset: u64) -> LogCursor {
        LogCursor {
            pos: offset,
            lines: output::Lines::default(),
        }
    }

    /// Reads what was written since the last call; whether a line of it matches, as a
    /// terminal would show it (see `output::shown`). A line being written matches too
    /// (a prompt, or a banner the server ends without a newline).
    fn matches(&mut self, path: &Path, regex: &Regex) -> bool {
        let Ok(mut file) = fs::File::open(path) else {
            return false;
        };
        if file.metadata().is_ok_and(|m| m.len() < self.pos) {
            // Truncated (logrotate's `copytruncate`, `: > reloadsup.log`): read it anew.
            self.pos = 0;
            self.lines.take_partial();
        }
        if file.seek(SeekFrom::Start(self.pos)).is_err() {
            return false;
        }
        let mut chunk = vec![0u8; 256 * 1024];
        let mut read = 0;
        while read < LOG_READ_PER_POLL {
            let n = match file.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            read += n as u64;
            self.pos += n as u64;
            if self
                .lines
                .push(&chunk[..n])
                .split(|&b| b == b'\n')
                .any(|line| line_matches(line, regex))
            {
                return true;
            }
        }
        line_matches(self.lines.partial(), regex)
    }
}

/// Whether a line of output matches, as a terminal would show it.
fn line_matches(line: &[u8], regex: &Regex) -> bool {
    !line.is_empty() && regex.is_match(&output::shown(&String::from_utf8_lossy(line)))
}

/// What a readiness check that timed out waited for, naming the key that set it, so a
/// wrong setting shows at once: `: no connection on port 5000 (`server.ready.port`)`.
/// Empty for a delay, which cannot time out.
pub fn awaited(ready: Option<&Ready>, upstream: Option<&str>) -> String {
    match (ready, upstream) {
        (Some(Ready::Port(port)), _) => {
            format!(": no connection on port {port} (`server.ready.port`)")
        }
        (Some(Ready::Url(url)), _) => {
            format!(": `{url}` gave no answer below 500 (`server.ready.url`)")
        }
        (Some(Ready::Log(pattern)), _) => {
            format!(": no line of its output matched `{pattern}` (`server.ready.log`)")
        }
        (None, Some(address)) => format!(": no connection at {address} (`proxy.upstream`)"),
        (None, None) => ": its processes listened on no TCP port (the check when \
                         `server.ready` is not set)"
            .to_string(),
        (Some(Ready::Delay(_)), _) => String::new(),
    }
}

/// For a server not ready in time, when the check waits for a port and the server's
/// processes listen on others only (`proxy.upstream` or `server.ready.port` names the
/// wrong one): `; it listens on port 5001, not 5000 (`proxy.upstream`)`.
pub fn listening_elsewhere(
    ready: Option<&Ready>,
    upstream: Option<&str>,
    pgid: Pid,
) -> Option<String> {
    let (port, key) = match (ready, upstream) {
        (Some(Ready::Port(port)), _) => (*port, "server.ready.port"),
        (None, Some(address)) => (resolve(address)?.first()?.port(), "proxy.upstream"),
        _ => return None,
    };
    let ports = listening_ports(pgid);
    if ports.is_empty() || ports.contains(&port) {
        return None;
    }
    let listed: Vec<String> = ports.iter().map(u16::to_string).collect();
    let noun = if ports.len() == 1 { "port" } else { "ports" };
    Some(format!(
        "; it listens on {noun} {}, not {port} (`{key}`)",
        listed.join(", ")
    ))
}

/// The TCP ports that the processes of group `pgid` listen on (IPv4 and IPv6).
pub fn listening_ports(pgid: Pid) -> Vec<u16> {
    let inodes = group_socket_inodes(pgid);
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is field 1 (HEX_IP:HEX_PORT), st is field 3 (0A = LISTEN),
            // inode is field 9.
            if fields.len() > 9
                && fields[3] == "0A"
                && fields[9].parse().is_ok_and(|i: u64| inodes.contains(&i))
            {
                if let Some(port) = fields[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                {
                    ports.push(port);
                }
            }
        }
    }
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// The inodes of the sockets held open by the processes of group `pgid`.
fn group_socket_inodes(pgid: Pid) -> HashSet<u64> {
    let mut inodes = HashSet::new();
    for pid in procfs::group_members(pgid) {
        procfs::socket_inodes(pid, &mut inodes);
    }
    inodes
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    /// Connecting over and over to a port in the ephemeral range that nothing listens
    /// on: once the kernel gives a connection that very port, it is joined to itself,
    /// which must not pass for a server.
    #[test]
    fn a_connection_to_itself_is_no_server() {
        let range = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
            .expect("the ephemeral port range");
        let bounds: Vec<u16> = range
            .split_whitespace()
            .map(|n| n.parse().unwrap())
            .collect();
        // An even port: connections take even ones (bind takes odd ones first).
        let port = (bounds[0]..bounds[1])
            .rev()
            .filter(|p| p % 2 == 0)
            .find(|p| TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("a free port");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let attempts = usize::from(bounds[1] - bounds[0]) * 2;
        for attempt in 0..attempts {
            assert_eq!(
                accepting(&[addr], Duration::from_millis(100)),
                None,
                "attempt {attempt}"
            );
        }
        // The port is left free: a socket joined to itself closed as usual held it
        // in TIME-WAIT for 60 s, and the server could not bind it. A socket bound to
        // the port and connected to it is joined to itself every time (waiting for
        // the kernel to pick that port by chance failed on a busy machine).
        let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("a socket");
        socket.set_reuse_address(true).expect("SO_REUSEADDR");
        socket.bind(&addr.into()).expect("the free port");
        socket
            .connect(&addr.into())
            .expect("a connection to itself");
        assert!(joined_to_itself(SockRef::from(&socket)));
        drop(socket);
        TcpListener::bind(addr).expect("the port is free after a connection to itself");
    }

    #[test]
    fn connect_check() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        assert!(Check::Connect(vec![addr]).poll(Instant::now()));
        drop(listener);
        assert!(!Check::Connect(vec![addr]).poll(Instant::now()));
    }

    #[test]
    fn a_port_check_takes_either_loopback_address() {
        let Ok(listener) = TcpListener::bind("[::1]:0") else {
            return; // no IPv6 here
        };
        let port = listener.local_addr().unwrap().port();
        let ready = Ready::Port(port);
        let check = check_for(Some(&ready), None, Pid::from_raw(0), None).unwrap();
        assert!(check.poll(Instant::now()));
    }

    /// A name can resolve to several addresses (`localhost`: `::1`, then `127.0.0.1`),
    /// and the server listen on any one of them.
    #[test]
    fn a_check_tries_every_address_a_name_gives() {
        let closed = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let check = Check::Connect(vec![closed, open]);
        assert!(check.poll(Instant::now()));
        assert_eq!(accepting(check.addresses(), ATTEMPT_TIMEOUT), Some(open));
        drop(listener);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let open = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            let mut stream = listener.incoming().next().unwrap().unwrap();
            let _ = stream.read(&mut [0u8; 1024]);
            let _ = stream.write_all(b"HTTP/1.0 200 OK\r\n\r\n");
        });
        let http = Check::Http {
            addrs: vec![closed, open],
            host: "localhost".into(),
            path: "/".into(),
        };
        assert!(http.poll(Instant::now()));
        server.join().unwrap();
        assert_eq!(
            resolve(&format!("localhost:{}", open.port()))
                .map(|a| a.iter().any(|a| a.port() == open.port())),
            Some(true)
        );
    }

    #[test]
    fn http_check_reads_the_status() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = thread::spawn(move || {
            for (i, stream) in listener.incoming().take(2).enumerate() {
                let mut stream = stream.unwrap();
                let mut buf = [0u8; 1024];
                let _ = stream.read(&mut buf);
                let status = if i == 0 {
                    "503 Service Unavailable"
                } else {
                    "404 Not Found"
                };
                let _ = stream.write_all(format!("HTTP/1.0 {status}\r\n\r\n").as_bytes());
            }
        });
        let check = http_check(&format!("http://{addr}/health")).unwrap();
        assert!(!check.poll(Instant::now()), "503 is not ready");
        assert!(check.poll(Instant::now()), "404 is an answer below 500");
        server.join().unwrap();
    }

    #[test]
    fn own_listening_port_is_found() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let pgid = nix::unistd::getpgrp();
        assert!(listening_ports(pgid).contains(&port));
    }

    #[test]
    fn bad_urls() {
        assert!(http_check("https://x/").is_err());
        assert!(http_check("http://127.0.0.1:8000").is_ok());
    }
}
