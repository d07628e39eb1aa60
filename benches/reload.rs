//! `cargo bench --bench reload`: browser-reload latency of the real release binary.
//!
//! A benchmark, not a test: it prints numbers, and fails only when something cannot be
//! run at all. See `bench/README.md` for what each number means.
//!
//! 1. **save → reload**: `app.py` is rewritten in place; reloadsup stops the old server
//!    (`server.py`, which binds its port after a 100 ms delay and appends the wall-clock
//!    time right after `listen()` to `bound.log`), starts the new one, waits until the
//!    port accepts, and broadcasts `reload`. Measured: save → `reload` received by a
//!    LiveReload 7 client, and `reload` received − the new server's bind time (the
//!    overhead reloadsup adds above the server's own start-up).
//! 2. **fan-out**: 1,000 handshaken clients; `static/site.css` is rewritten (an asset:
//!    no restart); measured: write → the last client's receipt, and first → last.

use std::collections::HashSet;
use std::fs;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tungstenite::protocol::WebSocketConfig;
use tungstenite::{Message, WebSocket};

/// Measured saves, after [`WARMUPS`] discarded ones.
const SAVES: usize = 30;
const WARMUPS: usize = 3;
/// The pause after each received reload before the next save.
const PAUSE: Duration = Duration::from_millis(300);
/// `server.py` sleeps this long before it binds (an artificial start-up time).
const BIND_DELAY_MS: u64 = 100;
/// The target for the median overhead above the server's bind.
const OVERHEAD_TARGET_MS: f64 = 5.0;
/// Fan-out clients and measured rounds.
const CLIENTS: usize = 1000;
const FANOUT_ROUNDS: usize = 5;
/// How long any one awaited event may take before the benchmark gives up.
const WAIT: Duration = Duration::from_secs(10);

const HELLO: &str =
    r#"{"command":"hello","protocols":["http://livereload.com/protocols/official-7"]}"#;

/// The dev server: optional delay, bind, listen, log the bind time, sleep forever.
const SERVER_PY: &str = r#"
import socket, sys, time
port = int(sys.argv[1])
delay_ms = int(sys.argv[2]) if len(sys.argv) > 2 else 0
if delay_ms:
    time.sleep(delay_ms / 1000)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port))
s.listen(128)
t = time.time_ns()
with open("bound.log", "a") as f:
    f.write(f"{t}\n")
while True:
    time.sleep(3600)
"#;

fn main() {
    install_signal_cleanup();
    if let Err(e) = Command::new("python3").args(["-c", ""]).status() {
        eprintln!("reload bench: python3 is needed: {e}");
        std::process::exit(1);
    }
    let bin = env!("CARGO_BIN_EXE_reloadsup");
    let cpus = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "reloadsup reload benchmark: {cpus} CPUs, server binds {BIND_DELAY_MS} ms after it starts"
    );

    let (server_port, reload_port) = two_free_ports();
    let mut run = Run::new();
    run.write("server.py", SERVER_PY);
    run.write("app.py", "# save 0\n");
    run.write("static/site.css", "h1 { color: red }\n");
    run.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = [\"python3\", \"server.py\", \"{server_port}\", \"{BIND_DELAY_MS}\"]\n\
             ready = {{ port = {server_port} }}\n\
             [watch]\nfile_dep = [\"app.py\"]\n\
             [reload]\nport = {reload_port}\nassets = [\"static/*.css\"]\n"
        ),
    );
    run.start(bin);
    run.wait_lines("bound.log", 1);

    let (total, overhead) = save_to_reload(&run, reload_port);
    let fanout = fan_out(&run, reload_port);

    println!();
    println!(
        "{:<44} {:>4} {:>9} {:>9} {:>9} {:>9}",
        "", "n", "median", "p95", "min", "max"
    );
    row("save -> reload received (ms)", &total);
    row("  overhead: reload received - bind (ms)", &overhead);
    let overhead_median = median(&overhead);
    let verdict = if overhead_median < OVERHEAD_TARGET_MS {
        "met"
    } else {
        "NOT met"
    };
    println!("  target: overhead median < {OVERHEAD_TARGET_MS} ms: {verdict}");
    let summary_fanout = match &fanout {
        Some(f) => {
            println!();
            println!("{:<44} {:>4} {:>9} {:>9}", "", "n", "median", "max");
            short_row(
                &format!("fan-out {}: write -> first received (ms)", f.clients),
                &f.first,
            );
            short_row(
                &format!("fan-out {}: write -> last received (ms)", f.clients),
                &f.last,
            );
            short_row(
                &format!("fan-out {}: spread first -> last (ms)", f.clients),
                &f.spread,
            );
            format!(
                "; fan-out to {} clients: last after {:.1} ms median (spread {:.1} ms)",
                f.clients,
                median(&f.last),
                median(&f.spread)
            )
        }
        None => "; fan-out skipped".to_string(),
    };
    println!();
    println!(
        "summary: save -> reload {:.1} ms median, {:.2} ms above the server's bind (target < {OVERHEAD_TARGET_MS} ms: {verdict}){summary_fanout}",
        median(&total),
        overhead_median,
    );
    drop(run);
}

/// Part 1: `SAVES` saves of `app.py` after `WARMUPS`; returns (save → reload, reload − bind)
/// in ms.
fn save_to_reload(run: &Run, reload_port: u16) -> (Vec<f64>, Vec<f64>) {
    let mut ws = connect_retrying(reload_port);
    thread::sleep(Duration::from_millis(100)); // let the server count our hello
    let mut total = Vec::new();
    let mut overhead = Vec::new();
    let mut extra_starts = 0;
    let mut lines = run.lines("bound.log");
    for i in 0..WARMUPS + SAVES {
        let saved = wall_ns();
        run.write("app.py", &format!("# save {}\n", i + 1));
        let received = match next_reload(&mut ws, WAIT) {
            Some((at, path)) if path == "app.py" => at,
            Some((_, path)) => panic!("save {i}: reload names {path:?}, not app.py"),
            None => panic!("save {i}: no reload within {WAIT:?}"),
        };
        run.wait_lines("bound.log", lines + 1);
        let now = run.lines("bound.log");
        extra_starts += now - (lines + 1);
        lines = now;
        let bound = run.last_number("bound.log");
        if i >= WARMUPS {
            total.push(ms(received - saved));
            overhead.push(ms(received - bound));
        }
        thread::sleep(PAUSE);
    }
    if extra_starts > 0 {
        println!("warning: {extra_starts} server start(s) more than one per save");
    }
    let _ = ws.close(None);
    (total, overhead)
}

struct FanOut {
    clients: usize,
    first: Vec<f64>,
    last: Vec<f64>,
    spread: Vec<f64>,
}

/// Part 2: `CLIENTS` handshaken clients, `FANOUT_ROUNDS` asset-only reloads.
fn fan_out(run: &Run, reload_port: u16) -> Option<FanOut> {
    let mut clients = CLIENTS;
    let files = limit("Max open files");
    let threads = limit("Max processes");
    // Each client is one socket here and one in reloadsup (which inherits our limits),
    // plus a thread here.
    let need = CLIENTS as u64 + 100;
    match files {
        Some(n) if n < need => {
            clients = n.saturating_sub(100) as usize;
            println!(
                "ulimit -n is {n}: too low for {CLIENTS} clients (needs ~{need}); using {clients}"
            );
        }
        Some(n) => println!("ulimit -n is {n}: enough for {CLIENTS} clients"),
        None => println!("ulimit -n unknown; trying {CLIENTS} clients"),
    }
    if let Some(n) = threads.filter(|&n| n < need) {
        clients = clients.min(n.saturating_sub(200) as usize);
        println!("ulimit -u is {n}: too low for {CLIENTS} client threads; using {clients}");
    }
    if clients == 0 {
        return None;
    }

    let (tx, rx) = mpsc::channel::<(usize, Instant)>();
    let connecting = Instant::now();
    for id in 0..clients {
        let mut ws = connect(reload_port)
            .unwrap_or_else(|e| panic!("fan-out client {id} of {clients}: {e}"));
        // Blocking reads from here on: no wake-ups but real messages (and pings).
        ws.get_mut().set_read_timeout(None).expect("read timeout");
        let tx = tx.clone();
        thread::Builder::new()
            .name(format!("client-{id}"))
            .stack_size(64 * 1024)
            .spawn(move || client_loop(id, ws, tx))
            .unwrap_or_else(|e| panic!("fan-out client thread {id}: {e}"));
    }
    drop(tx);
    println!(
        "fan-out: {clients} clients connected and handshaken in {:.0} ms",
        ms_d(connecting.elapsed())
    );

    // Warm up until every client has had a reload: proves each hello was counted.
    let mut seen = HashSet::new();
    let mut css = 0;
    for attempt in 0.. {
        if attempt == 5 {
            panic!(
                "fan-out warm-up: only {} of {clients} clients got a reload",
                seen.len()
            );
        }
        css += 1;
        run.write(
            "static/site.css",
            &format!("h1 {{ color: red }} /* {css} */\n"),
        );
        let deadline = Instant::now() + Duration::from_secs(3);
        while seen.len() < clients {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((id, _)) => {
                    seen.insert(id);
                }
                Err(_) => break,
            }
        }
        if seen.len() == clients {
            break;
        }
    }
    thread::sleep(PAUSE);
    while rx.try_recv().is_ok() {}

    let mut result = FanOut {
        clients,
        first: Vec::new(),
        last: Vec::new(),
        spread: Vec::new(),
    };
    for round in 0..FANOUT_ROUNDS {
        css += 1;
        let written = Instant::now();
        run.write(
            "static/site.css",
            &format!("h1 {{ color: red }} /* {css} */\n"),
        );
        let times = collect(&rx, clients, written + WAIT).unwrap_or_else(|got| {
            panic!("fan-out round {round}: {got} of {clients} clients got the reload")
        });
        let first = *times.iter().min().expect("receipts");
        let last = *times.iter().max().expect("receipts");
        result.first.push(ms_d(first - written));
        result.last.push(ms_d(last - written));
        result.spread.push(ms_d(last - first));
        thread::sleep(PAUSE);
        while rx.try_recv().is_ok() {}
    }
    Some(result)
}

/// One receipt time per client, or how many clients answered before `deadline`.
fn collect(
    rx: &Receiver<(usize, Instant)>,
    clients: usize,
    deadline: Instant,
) -> Result<Vec<Instant>, usize> {
    let mut seen = HashSet::new();
    let mut times = Vec::with_capacity(clients);
    while seen.len() < clients {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((id, at)) => {
                if seen.insert(id) {
                    times.push(at);
                }
            }
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {
                return Err(seen.len());
            }
        }
    }
    Ok(times)
}

/// A fan-out client: reports each `reload` with the instant it was read.
fn client_loop(id: usize, mut ws: WebSocket<TcpStream>, tx: mpsc::Sender<(usize, Instant)>) {
    loop {
        match ws.read() {
            Ok(Message::Text(text)) => {
                let at = Instant::now();
                if is_reload(&text).is_some() && tx.send((id, at)).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(_) => return, // closed: reloadsup stopped, or the benchmark ended
        }
    }
}

/// The `path` of a `reload` message, `None` for any other message.
fn is_reload(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    if value["command"] != "reload" {
        return None;
    }
    Some(value["path"].as_str().unwrap_or_default().to_string())
}

/// The next `reload` within `timeout`: (wall-clock ns when read, its path).
fn next_reload(ws: &mut WebSocket<TcpStream>, timeout: Duration) -> Option<(i128, String)> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())?;
        ws.get_mut().set_read_timeout(Some(left)).ok()?;
        match ws.read() {
            Ok(Message::Text(text)) => {
                let at = wall_ns();
                if let Some(path) = is_reload(&text) {
                    return Some((at, path));
                }
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(tungstenite::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return None;
            }
            Err(e) => panic!("reload socket: {e}"),
        }
    }
}

/// Connects and completes the LiveReload 7 handshake: the server's hello read, ours sent.
fn connect(port: u16) -> Result<WebSocket<TcpStream>, String> {
    let stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(WAIT))
        .map_err(|e| e.to_string())?;
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0);
    let url = format!("ws://127.0.0.1:{port}/livereload");
    let (mut ws, _) = tungstenite::client::client_with_config(url, stream, Some(config))
        .map_err(|e| format!("handshake: {e}"))?;
    match ws.read() {
        Ok(Message::Text(text)) if text.contains("\"hello\"") => {}
        Ok(other) => return Err(format!("expected the server's hello, got {other:?}")),
        Err(e) => return Err(format!("reading the server's hello: {e}")),
    }
    ws.send(Message::text(HELLO))
        .map_err(|e| format!("sending hello: {e}"))?;
    Ok(ws)
}

fn connect_retrying(port: u16) -> WebSocket<TcpStream> {
    let deadline = Instant::now() + WAIT;
    loop {
        match connect(port) {
            Ok(ws) => return ws,
            Err(e) if Instant::now() > deadline => panic!("reload port {port}: {e}"),
            Err(_) => thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// One benchmark run: a temp dir and the reloadsup in it. Dropping it (also while
/// unwinding from a panic) stops reloadsup and its server and removes the dir; SIGINT,
/// SIGTERM or SIGHUP to the benchmark do the same through [`ACTIVE`].
struct Run {
    dir: PathBuf,
    pid: Option<i32>,
}

/// The run to clean up if the benchmark is interrupted by a signal.
static ACTIVE: Mutex<Option<(Option<i32>, PathBuf)>> = Mutex::new(None);

impl Run {
    fn new() -> Run {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let dir =
            std::env::temp_dir().join(format!("reloadsup-bench-{}-{nanos}", std::process::id()));
        fs::create_dir_all(&dir).expect("temp dir");
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some((None, dir.clone()));
        Run { dir, pid: None }
    }

    fn start(&mut self, bin: &str) {
        #[allow(clippy::zombie_processes)] // reaped with waitpid in `cleanup`
        let child = Command::new(bin)
            .args(["-q", "run"])
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run reloadsup: {e}"));
        // Dropping a `Child` neither waits nor kills: `cleanup` does both, by PID.
        let pid = child.id() as i32;
        self.pid = Some(pid);
        *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some((Some(pid), self.dir.clone()));
    }

    fn write(&self, rel: &str, content: &str) {
        let path = self.dir.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).expect("mkdir");
        }
        fs::write(&path, content).unwrap_or_else(|e| panic!("write {rel}: {e}"));
    }

    fn lines(&self, rel: &str) -> usize {
        fs::read_to_string(self.dir.join(rel)).map_or(0, |t| t.lines().count())
    }

    fn wait_lines(&self, rel: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.lines(rel) < n {
            if let Some(pid) = self.pid {
                if let Ok(WaitStatus::Exited(..) | WaitStatus::Signaled(..)) =
                    waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG))
                {
                    panic!("reloadsup exited early");
                }
            }
            assert!(
                Instant::now() < deadline,
                "{rel}: fewer than {n} lines after {WAIT:?}"
            );
            thread::sleep(Duration::from_millis(1));
        }
    }

    /// The last line of `rel` as a number (wall-clock ns).
    fn last_number(&self, rel: &str) -> i128 {
        let text = fs::read_to_string(self.dir.join(rel)).expect("read");
        let line = text.lines().last().expect("a line");
        line.trim()
            .parse()
            .unwrap_or_else(|e| panic!("{rel}: {line:?}: {e}"))
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((pid, dir)) = active.take() {
            cleanup(pid, &dir);
        }
    }
}

/// SIGINT to reloadsup's group, up to 5 s to exit, then SIGKILL to the group; a server
/// still named by the PID file is killed too; then the temp dir goes.
fn cleanup(pid: Option<i32>, dir: &Path) {
    if let Some(pid) = pid {
        let server: Option<i32> = fs::read_to_string(dir.join("reloadsup.pid"))
            .ok()
            .and_then(|t| t.trim().parse().ok());
        let pid = Pid::from_raw(pid);
        let _ = killpg(pid, Signal::SIGINT);
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut reaped = false;
        while Instant::now() < deadline {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => thread::sleep(Duration::from_millis(10)),
                _ => {
                    reaped = true;
                    break;
                }
            }
        }
        let _ = killpg(pid, Signal::SIGKILL);
        if !reaped {
            let _ = waitpid(pid, None);
        }
        if let Some(server) = server {
            let cmdline = fs::read(format!("/proc/{server}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains("server.py") {
                let _ = killpg(Pid::from_raw(server), Signal::SIGKILL);
            }
        }
    }
    let _ = fs::remove_dir_all(dir);
}

fn install_signal_cleanup() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals =
        signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]).expect("signals");
    thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            let mut active = ACTIVE.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((pid, dir)) = active.take() {
                cleanup(pid, &dir);
            }
            std::process::exit(128 + signal);
        }
    });
}

/// The soft limit named `name` in /proc/self/limits (`None` if unlimited or unknown).
fn limit(name: &str) -> Option<u64> {
    let text = fs::read_to_string("/proc/self/limits").ok()?;
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

fn two_free_ports() -> (u16, u16) {
    let a = TcpListener::bind("127.0.0.1:0").expect("bind");
    let b = TcpListener::bind("127.0.0.1:0").expect("bind");
    (
        a.local_addr().unwrap().port(),
        b.local_addr().unwrap().port(),
    )
}

fn wall_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_nanos() as i128
}

fn ms(ns: i128) -> f64 {
    ns as f64 / 1e6
}

fn ms_d(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

fn median(values: &[f64]) -> f64 {
    let v = sorted(values);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Nearest-rank percentile.
fn percentile(values: &[f64], p: f64) -> f64 {
    let v = sorted(values);
    if v.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

fn row(label: &str, values: &[f64]) {
    let v = sorted(values);
    println!(
        "{label:<44} {:>4} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
        v.len(),
        median(&v),
        percentile(&v, 95.0),
        v.first().copied().unwrap_or(f64::NAN),
        v.last().copied().unwrap_or(f64::NAN),
    );
}

fn short_row(label: &str, values: &[f64]) {
    let max = sorted(values).last().copied().unwrap_or(f64::NAN);
    println!(
        "{label:<44} {:>4} {:>9.2} {:>9.2}",
        values.len(),
        median(values),
        max
    );
}
