//! Test helpers: a scratch project folder, the real `reloadsup` binary started in it,
//! and waiting with deadlines (never a fixed sleep, except to prove that something does
//! *not* happen).

#![allow(dead_code)]

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_reloadsup");

/// How long to wait for something that should happen.
pub const WAIT: Duration = Duration::from_secs(10);

/// How long to watch for something that should *not* happen.
pub const QUIET: Duration = Duration::from_millis(400);

/// A scratch folder, removed on drop.
pub struct Project {
    pub dir: PathBuf,
    /// A token unique to this project, put in server command lines so the test can find
    /// (and count) exactly its own processes.
    pub token: String,
}

impl Project {
    pub fn new() -> Project {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("reloadsup-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        // A fractional `sleep` duration unique to this project: it shows in the process
        // table, so the test can count its servers without touching anyone else's.
        let token = format!("1000.{}{:04}", std::process::id(), n);
        Project { dir, token }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// Writes a file (creating folders), in place.
    pub fn write(&self, rel: &str, content: &str) {
        let path = self.path(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).unwrap();
        }
        fs::write(path, content).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        fs::read_to_string(self.path(rel)).unwrap_or_default()
    }

    /// The number of lines in a file (0 when missing).
    pub fn lines(&self, rel: &str) -> usize {
        self.read(rel).lines().count()
    }

    /// A task file whose server appends a line to `starts.log` at each start and then
    /// sleeps (as `sleep <token>`, exec'd, so the process can be found).
    pub fn sleeper_task_file(&self, watch: &str, extra: &str) {
        self.write(
            "reload.toml",
            &format!(
                "[server]\ncommand = '''echo start >> starts.log; printf '%s|' \"$RELOADSUP_CHANGED\" >> changed.log; exec sleep {token}'''\n\
                 stop_timeout = \"2s\"\n{extra}\n[watch]\nfile_dep = {watch}\n",
                token = self.token
            ),
        );
    }

    /// Writes [`Project::sleeper_task_file`] and runs `reloadsup run --no-reload` on it,
    /// returning once the first server has started and reloadsup has said so.
    pub fn start_sleeper(&self, watch: &str, extra: &str) -> Sup {
        self.sleeper_task_file(watch, extra);
        let sup = self.start(&["run", "--no-reload"]);
        self.wait_starts(1);
        sup.wait_for("started");
        sup
    }

    /// `reloadsup ARGS` in this folder, with stderr captured.
    pub fn start(&self, args: &[&str]) -> Sup {
        Sup::spawn(&self.dir, args)
    }

    /// `reloadsup ARGS` to completion.
    pub fn output(&self, args: &[&str]) -> Output {
        let out = Command::new(BIN)
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        Output {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// The PIDs of living processes whose command line holds this project's token.
    pub fn servers(&self) -> Vec<i32> {
        processes_with(&self.token)
    }

    /// Waits until `starts.log` has `n` lines.
    #[track_caller]
    pub fn wait_starts(&self, n: usize) {
        wait_until(&format!("{n} server start(s)"), || {
            self.lines("starts.log") >= n
        });
        assert_eq!(self.lines("starts.log"), n, "more starts than expected");
    }

    /// Asserts that `starts.log` keeps `n` lines for a quiet period.
    #[track_caller]
    pub fn assert_starts_stay(&self, n: usize) {
        thread::sleep(QUIET);
        assert_eq!(self.lines("starts.log"), n, "unexpected extra restart");
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for pid in self.servers() {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A finished command.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// A running `reloadsup`, stopped (and its group killed) on drop.
pub struct Sup {
    pub child: Child,
    stderr: Arc<Mutex<String>>,
    reader: Option<thread::JoinHandle<()>>,
}

impl Sup {
    /// `reloadsup ARGS` in `dir`. `PYTHONUNBUFFERED` is removed from its environment,
    /// as on a machine that does not set it, so Python servers buffer their output to a
    /// pipe unless reloadsup sees to it.
    pub fn spawn(dir: &Path, args: &[&str]) -> Sup {
        Sup::spawn_command(
            Command::new(BIN)
                .args(args)
                .current_dir(dir)
                .env_remove("PYTHONUNBUFFERED"),
        )
    }

    /// Starts `command` in a process group of its own, with stdout discarded and stderr
    /// captured.
    pub fn spawn_command(command: &mut Command) -> Sup {
        let mut child = Sup::start_child(command.stdout(Stdio::null()).stderr(Stdio::piped()));
        let pipe = child.stderr.take().unwrap();
        Sup::capturing(child, pipe)
    }

    /// As `spawn`, with stdout and stderr on one pipe, as on a terminal: `stderr()`
    /// then returns both, in the order reloadsup wrote them.
    pub fn spawn_merged(dir: &Path, args: &[&str]) -> Sup {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir)
            .env_remove("PYTHONUNBUFFERED")
            .stdout(write.try_clone().unwrap())
            .stderr(write);
        let child = Sup::start_child(&mut command);
        // The command's copies of the write end: the reader sees the end once
        // reloadsup's are closed.
        drop(command);
        Sup::capturing(child, std::fs::File::from(read))
    }

    /// As `spawn_merged`, but nobody reads the pipe, as under a paused pager: once it
    /// is full, every write to it waits. The read end is returned, to be held open.
    pub fn spawn_unread(dir: &Path, args: &[&str]) -> (Sup, std::os::fd::OwnedFd) {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir)
            .stdout(write.try_clone().unwrap())
            .stderr(write);
        let child = Sup::start_child(&mut command);
        drop(command);
        (Sup::capturing(child, std::io::empty()), read)
    }

    /// As `spawn`, but nobody reads stdout's pipe (`reloadsup run | less`, paused);
    /// `stderr()` has stderr. The read end is returned, to be held open.
    pub fn spawn_stdout_unread(dir: &Path, args: &[&str]) -> (Sup, std::os::fd::OwnedFd) {
        let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
        let mut command = Command::new(BIN);
        command
            .args(args)
            .current_dir(dir)
            .stdout(write)
            .stderr(Stdio::piped());
        let mut child = Sup::start_child(&mut command);
        drop(command);
        let pipe = child.stderr.take().unwrap();
        (Sup::capturing(child, pipe), read)
    }

    /// As `spawn`, with stdout and stderr written to the file `output`, as by
    /// `reloadsup run > out.log 2>&1`; `stderr()` then has nothing, the file has it all.
    pub fn spawn_into(dir: &Path, args: &[&str], output: &Path) -> Sup {
        let file = std::fs::File::create(output).unwrap();
        let child = Sup::start_child(
            Command::new(BIN)
                .args(args)
                .current_dir(dir)
                .env_remove("PYTHONUNBUFFERED")
                .stdout(file.try_clone().unwrap())
                .stderr(file),
        );
        Sup::capturing(child, std::io::empty())
    }

    fn start_child(command: &mut Command) -> Child {
        use std::os::unix::process::CommandExt;
        command
            .stdin(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap()
    }

    /// A `Sup` for `child`, whose output is read from `pipe` on a thread.
    fn capturing(child: Child, pipe: impl Read + Send + 'static) -> Sup {
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let reader = thread::spawn(move || {
            let mut lines = BufReader::new(pipe);
            let mut line = String::new();
            while lines.read_line(&mut line).unwrap_or(0) > 0 {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        Sup {
            child,
            stderr,
            reader: Some(reader),
        }
    }

    pub fn pid(&self) -> Pid {
        Pid::from_raw(self.child.id() as i32)
    }

    /// Everything printed on stderr so far (and on stdout, for `spawn_merged`).
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// How many times `needle` appears on stderr.
    pub fn count(&self, needle: &str) -> usize {
        self.stderr().matches(needle).count()
    }

    /// Waits until stderr holds `needle` at least `n` times.
    #[track_caller]
    pub fn wait_for_n(&self, needle: &str, n: usize) {
        let deadline = Instant::now() + WAIT;
        while self.count(needle) < n {
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {n}× {needle:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[track_caller]
    pub fn wait_for(&self, needle: &str) {
        self.wait_for_n(needle, 1);
    }

    pub fn signal(&self, signal: Signal) {
        kill(self.pid(), signal).unwrap();
    }

    /// Waits for the supervisor to exit; returns its status.
    #[track_caller]
    pub fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // The reader ends when every copy of the pipe's write end is closed:
                // a server that outlived reloadsup (a failure a test is after) holds
                // one, and the test must go on to say so, not hang.
                if let Some(reader) = self.reader.take() {
                    while !reader.is_finished() && Instant::now() < deadline {
                        thread::sleep(Duration::from_millis(5));
                    }
                    if reader.is_finished() {
                        let _ = reader.join();
                    }
                }
                return status;
            }
            if Instant::now() > deadline {
                panic!("reloadsup did not exit; stderr:\n{}", self.stderr());
            }
            thread::sleep(Duration::from_millis(5));
        }
    }
}

impl Drop for Sup {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = kill(self.pid(), Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(5);
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                thread::sleep(Duration::from_millis(10));
            }
            let _ = killpg(self.pid(), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Polls `condition` every few ms until it holds, or panics after `WAIT`.
#[track_caller]
pub fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !condition() {
        if Instant::now() > deadline {
            panic!("timed out waiting for {what}");
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Living (non-zombie) processes whose command line contains `needle`.
pub fn processes_with(needle: &str) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let mut cmdline = Vec::new();
        if fs::File::open(entry.path().join("cmdline"))
            .and_then(|mut f| f.read_to_end(&mut cmdline))
            .is_err()
        {
            continue;
        }
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        let state = fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        let zombie = state
            .rfind(')')
            .is_some_and(|i| state[i + 1..].trim_start().starts_with('Z'));
        if cmdline.contains(needle) && !zombie && pid != std::process::id() as i32 {
            found.push(pid);
        }
    }
    found
}

/// Whether `script` (util-linux) is here to run a command on a terminal of its own;
/// says the test is skipped when it is not.
pub fn can_make_a_terminal() -> bool {
    let here = Command::new("script").arg("--version").output().is_ok();
    if !here {
        eprintln!("skipped: no `script` (util-linux) to make a terminal");
    }
    here
}

/// Whether process `pid` exists and is not a zombie.
pub fn alive(pid: i32) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rfind(')')
        .is_some_and(|i| !stat[i + 1..].trim_start().starts_with('Z'))
}

/// A TCP port that is free right now, and stays free for the test that asked: each
/// call gets a port of its own, below the kernel's ephemeral range, where every
/// outgoing connection (the proxy's to its dev server, a test's client) takes its
/// local port — one handed out by `bind(:0)` could meanwhile be such a connection's,
/// and the server the test starts on it fail with "address in use".
pub fn free_port() -> u16 {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let ephemeral_low: u16 = fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse().ok())
        .unwrap_or(32768);
    const LOW: u16 = 10_000;
    if ephemeral_low <= LOW + 2_000 {
        return std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
    }
    // Runs at the same time (other checkouts) start at different places.
    let span = usize::from(ephemeral_low - LOW);
    let start = std::process::id() as usize * 97;
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let port = LOW + ((start + n) % span) as u16;
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A `reload` or `status` message without reloadsup's own `generation` field (which
/// counts changes, see the hub), after checking that it is there: what any LiveReload
/// client reads.
pub fn standard_fields(mut message: serde_json::Value) -> serde_json::Value {
    let generation = message.as_object_mut().and_then(|m| m.remove("generation"));
    assert!(
        generation.as_ref().is_some_and(|g| g.is_u64()),
        "a generation in {message}"
    );
    message
}

/// The `hello` of a plain LiveReload client.
const OFFICIAL_HELLO: &str =
    r#"{"command":"hello","protocols":["http://livereload.com/protocols/official-7"]}"#;

/// The `hello` of our own client, which speaks reloadsup's extension too.
const VENDOR_HELLO: &str = r#"{"command":"hello","protocols":["http://livereload.com/protocols/official-7","https://reloadsup.invalid/protocols/reloadsup-1"]}"#;

/// A LiveReload client over a real WebSocket.
pub struct LiveReloadClient {
    ws: tungstenite::WebSocket<tungstenite::stream::MaybeTlsStream<std::net::TcpStream>>,
}

impl LiveReloadClient {
    /// Connects to `ws://127.0.0.1:PORT/livereload` (waiting for the server to listen),
    /// says hello, and reads the server's hello.
    #[track_caller]
    pub fn connect(port: u16) -> LiveReloadClient {
        LiveReloadClient::connect_at(port, "/livereload")
    }

    /// As `connect`, at another path (`/__reloadsup/livereload` on a site's origin).
    #[track_caller]
    pub fn connect_at(port: u16, path: &str) -> LiveReloadClient {
        LiveReloadClient::connect_saying(port, path, OFFICIAL_HELLO)
    }

    /// As `connect`, saying reloadsup's protocol extension too, as our client does: it
    /// is then also told the server's state (`status`).
    #[track_caller]
    pub fn connect_vendor(port: u16) -> LiveReloadClient {
        LiveReloadClient::connect_saying(port, "/livereload", VENDOR_HELLO)
    }

    #[track_caller]
    fn connect_saying(port: u16, path: &str, hello: &str) -> LiveReloadClient {
        let url = format!("ws://127.0.0.1:{port}{path}");
        let mut connected = None;
        wait_until("the reload server", || {
            connected = tungstenite::connect(&url).ok();
            connected.is_some()
        });
        let (ws, _) = connected.unwrap();
        let mut client = LiveReloadClient { ws };
        client.send(hello);
        let hello = client.next(WAIT).expect("the server's hello");
        assert_eq!(hello["command"], "hello", "{hello}");
        client
    }

    pub fn send(&mut self, text: &str) {
        self.ws.send(tungstenite::Message::text(text)).unwrap();
    }

    /// The next JSON message, or `None` if none comes within `timeout`.
    pub fn next(&mut self, timeout: Duration) -> Option<serde_json::Value> {
        if let tungstenite::stream::MaybeTlsStream::Plain(stream) = self.ws.get_mut() {
            stream.set_read_timeout(Some(timeout)).unwrap();
        }
        loop {
            match self.ws.read() {
                Ok(tungstenite::Message::Text(text)) => {
                    return Some(serde_json::from_str(text.as_str()).unwrap());
                }
                Ok(_) => continue,
                Err(tungstenite::Error::Io(err))
                    if matches!(
                        err.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return None;
                }
                Err(err) => panic!("websocket: {err}"),
            }
        }
    }
}

/// Headless Chromium, driven through `tests/browser/driver.mjs` (playwright-core).
pub struct Browser {
    child: Child,
    stdin: std::process::ChildStdin,
    answers: BufReader<std::process::ChildStdout>,
}

impl Browser {
    /// Starts the browser. Without Chromium or the driver's `node_modules` the test is
    /// skipped (`None`) — except under CI (`CI` set), where `.ci/run` installs both and
    /// their absence is a failure.
    pub fn launch() -> Option<Browser> {
        let driver_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        let missing = if !Path::new(&chromium).exists() {
            Some(format!("{chromium} (apt-get install chromium)"))
        } else if !driver_dir.join("node_modules/playwright-core").is_dir() {
            Some("tests/browser/node_modules (npm ci in tests/browser)".to_string())
        } else {
            None
        };
        if let Some(what) = missing {
            assert!(
                std::env::var_os("CI").is_none(),
                "browser tests need {what}"
            );
            eprintln!("skipped: the browser tests need {what}");
            return None;
        }
        let mut child = Command::new("node")
            .arg(driver_dir.join("driver.mjs"))
            .env("CHROMIUM", &chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node runs");
        let stdin = child.stdin.take().unwrap();
        let answers = BufReader::new(child.stdout.take().unwrap());
        let mut browser = Browser {
            child,
            stdin,
            answers,
        };
        let started = browser.answer().expect("the driver starts");
        assert_eq!(started, "started");
        Some(browser)
    }

    fn answer(&mut self) -> Result<serde_json::Value, String> {
        let mut line = String::new();
        self.answers.read_line(&mut line).unwrap();
        let answer: serde_json::Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("driver said {line:?}"));
        if answer["ok"] == true {
            Ok(answer["value"].clone())
        } else {
            Err(answer["error"].as_str().unwrap_or("?").to_string())
        }
    }

    fn command(&mut self, command: serde_json::Value) -> Result<serde_json::Value, String> {
        use std::io::Write as _;
        writeln!(self.stdin, "{command}").unwrap();
        self.answer()
    }

    /// Loads `url`.
    #[track_caller]
    pub fn open(&mut self, url: &str) {
        self.command(serde_json::json!({ "open": url })).unwrap();
    }

    /// The value of a JavaScript expression in the page.
    #[track_caller]
    pub fn eval(&mut self, js: &str) -> serde_json::Value {
        self.command(serde_json::json!({ "eval": js }))
            .unwrap_or_else(|err| panic!("{js}: {err}"))
    }

    /// Waits (across page reloads) until the expression is truthy.
    #[track_caller]
    pub fn wait_for(&mut self, js: &str) -> serde_json::Value {
        self.command(serde_json::json!({ "wait": js, "timeout": WAIT.as_millis() as u64 }))
            .unwrap_or_else(|err| panic!("{err}"))
    }

    /// Rewrites a stylesheet (with `write`, which must make `h1` blue) and asserts the
    /// page applied it without reloading: a marker set on `window` survives.
    #[track_caller]
    pub fn assert_css_swapped(&mut self, sup: &Sup, write: impl FnOnce()) {
        self.wait_for("window.__reloadsup.connected");
        self.eval("window.__marker = 2");
        write();
        self.wait_for_with(
            "getComputedStyle(document.querySelector('h1')).color === 'rgb(0, 0, 255)'",
            sup,
        );
        assert_eq!(
            self.eval("window.__marker"),
            2,
            "CSS applied without a page reload"
        );
    }

    /// Rewrites the page (with `write`, which must make its `h1` say `text`) and asserts
    /// the browser reloaded it: the marker set before is gone.
    #[track_caller]
    pub fn assert_page_reloaded(&mut self, sup: &Sup, text: &str, write: impl FnOnce()) {
        self.wait_for("window.__reloadsup && window.__reloadsup.connected");
        self.eval("window.__marker = 1");
        write();
        self.wait_for_with(
            &format!("document.querySelector('h1') && document.querySelector('h1').textContent === '{text}'"),
            sup,
        );
        assert_eq!(
            self.eval("window.__marker === undefined"),
            true,
            "a full reload"
        );
    }

    /// As `wait_for`, showing the supervisor's output if it times out.
    #[track_caller]
    pub fn wait_for_with(&mut self, js: &str, sup: &Sup) -> serde_json::Value {
        self.command(serde_json::json!({ "wait": js, "timeout": WAIT.as_millis() as u64 }))
            .unwrap_or_else(|err| panic!("{err}\nreloadsup said:\n{}", sup.stderr()))
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        use std::io::Write as _;
        let _ = writeln!(self.stdin, "{{\"quit\":true}}");
        let deadline = Instant::now() + Duration::from_secs(5);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts that a page navigation to `/` on `port` gets the same-origin reload tag
/// before `</head>`, with a `Content-Length` to match, and that a `fetch()` or a
/// download of the same page does not.
#[track_caller]
pub fn assert_injected_for_navigations_only(port: u16) {
    let page = http(
        port,
        "GET",
        "/",
        &[("Accept", "text/html"), ("Sec-Fetch-Dest", "document")],
    );
    assert_eq!(page.status, 200);
    let tag = "<script src=\"/__reloadsup/livereload.js?port=&amp;path=__reloadsup/livereload\" defer></script></head>";
    assert!(page.text().contains(tag), "{}", page.text());
    assert_eq!(
        page.header("content-length"),
        Some(page.body.len().to_string().as_str())
    );
    let fetched = http(
        port,
        "GET",
        "/",
        &[("Accept", "text/html"), ("Sec-Fetch-Dest", "empty")],
    );
    assert!(
        !fetched.text().contains("livereload"),
        "a fetch() is left alone"
    );
    // A page load a service worker passes on (`fetch(event.request)`), as Chromium sends
    // it, is a navigation; an `<a download>` of the page, the same two headers but no
    // `Accept`, is not (the saved file keeps its bytes).
    let worker = [
        ("Accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-Dest", "empty"),
    ];
    assert!(http(port, "GET", "/", &worker).text().contains(tag));
    let download = http(port, "GET", "/", &worker[1..]);
    assert!(
        !download.text().contains("livereload"),
        "a download is left alone"
    );
}

/// A response read off the wire.
#[derive(Debug)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends one HTTP/1.1 request with the path exactly as given (no normalising, so
/// `..` and `%2e%2e` reach the server) and reads the response to the end.
pub fn http(port: u16, method: &str, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
    use std::io::Write as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let mut parsed_headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut parsed_headers);
    let head_len = match response.parse(&raw).unwrap() {
        httparse::Status::Complete(n) => n,
        httparse::Status::Partial => {
            panic!("incomplete response: {}", String::from_utf8_lossy(&raw))
        }
    };
    let headers: Vec<(String, String)> = response
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8_lossy(h.value).into_owned(),
            )
        })
        .collect();
    let mut body = raw[head_len..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if chunked {
        body = dechunk(&body);
    }
    HttpResponse {
        status: response.code.unwrap(),
        headers,
        body,
    }
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("chunk size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line_end]).unwrap().trim(), 16)
            .unwrap();
        raw = &raw[line_end + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}
