//! `start | stop | restart | status`: the PID-file lifecycle for build scripts.

use crate::util::{BIN, LiveReloadClient, Output, Project, alive, free_port, wait_until};
use nix::sys::signal::Signal;
use std::net::TcpStream;
use std::process::{Command, Stdio};

/// A server that prints a line, waits 300 ms, then listens on `PORT` (argv[1]).
const SLOW_SERVER: &str = r#"
import socket, sys, time
print("booting", flush=True)
time.sleep(0.3)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
print("listening", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"#;

/// A project whose server is `SLOW_SERVER` behind a shell, ready on its port.
fn project() -> (Project, u16) {
    let (p, port, _reload) = project_with_reload_port();
    (p, port)
}

/// As `project`, also returning the reload port.
fn project_with_reload_port() -> (Project, u16, u16) {
    let p = Project::new();
    let (port, reload) = (free_port(), free_port());
    p.write("server.py", SLOW_SERVER);
    p.write("app.py", "");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'python3 server.py {port} \"$TOKEN\"; echo after'\n\
             env = {{ TOKEN = \"{}\" }}\nready = {{ port = {port} }}\nready_timeout = \"5s\"\n\
             stop_timeout = \"2s\"\n[watch]\nfile_dep = [\"app.py\"]\n[reload]\nport = {reload}\n",
            p.token,
        ),
    );
    (p, port, reload)
}

fn pid_file(p: &Project) -> Option<i32> {
    p.read("reloadsup.pid").trim().parse().ok()
}

fn accepts(port: u16) -> bool {
    TcpStream::connect(("127.0.0.1", port)).is_ok()
}

#[track_caller]
fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
}

/// `start` runs the server alone, and says what of the task file it leaves out: the
/// proxy, and the build steps (it ran none and said nothing).
#[test]
fn start_says_that_it_serves_no_proxy_and_runs_no_build_steps() {
    let (p, port) = project();
    let mut toml = p.read("reload.toml");
    toml.push_str(&format!(
        "[proxy]\nlisten = \"127.0.0.1:{}\"\nupstream = \"127.0.0.1:{port}\"\n\
         [[task]]\nname = \"css\"\nfile_dep = [\"*.scss\"]\nactions = [\"touch built\"]\n",
        free_port()
    ));
    p.write("reload.toml", &toml);
    let out = p.output(&["start"]);
    ok(&out);
    assert!(
        out.stderr
            .contains("`[proxy]` is served only by `reloadsup run`")
            && out
                .stderr
                .contains("`[[task]]` build steps run only under `reloadsup run`"),
        "{}",
        out.stderr
    );
    assert!(!p.path("built").exists());
    ok(&p.output(&["stop"]));
    assert!(p.servers().is_empty(), "no process left");
}

#[test]
fn start_status_stop_cycle() {
    let (p, port) = project();
    let out = p.output(&["start"]);
    ok(&out);
    assert!(accepts(port), "ready when start returns");
    assert!(out.stderr.contains("ready in "), "{}", out.stderr);
    let pid = pid_file(&p).expect("a PID file");
    assert_eq!(p.servers().len(), 1);

    let status = p.output(&["status"]);
    ok(&status);
    assert!(
        status
            .stdout
            .starts_with(&format!("running (pid {pid}, up ")),
        "{}",
        status.stdout
    );

    let again = p.output(&["start"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(
        again
            .stderr
            .contains(&format!("already running (pid {pid})")),
        "{}",
        again.stderr
    );
    assert_eq!(pid_file(&p), Some(pid), "the PID file is untouched");

    ok(&p.output(&["stop"]));
    assert!(p.servers().is_empty(), "no process left");
    assert!(!accepts(port));
    assert!(!p.path("reloadsup.pid").exists());
    assert!(!p.path("reloadsup.pid.json").exists());
    assert!(!p.path("reloadsup.pid.lock").exists(), "no lock file left");

    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(3));
    assert_eq!(status.stdout, "not running\n");
    let stop = p.output(&["stop"]);
    ok(&stop);
    assert!(stop.stderr.contains("not running"));
    assert!(
        p.read("reloadsup.log").contains("listening"),
        "output goes to the log file"
    );
}

#[test]
fn status_json() {
    let (p, _port) = project();
    let out = p.output(&["status", "--json"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(out.stdout.contains("\"running\":false"), "{}", out.stdout);
    ok(&p.output(&["start"]));
    let out = p.output(&["status", "--json"]);
    ok(&out);
    let pid = pid_file(&p).unwrap();
    for needle in [
        "\"running\":true".to_string(),
        format!("\"pid\":{pid}"),
        "\"supervisor_pid\":null".into(),
        "\"started_at\":\"20".into(),
        "\"command\":\"python3 server.py".into(),
    ] {
        assert!(out.stdout.contains(&needle), "{needle} in {}", out.stdout);
    }
    ok(&p.output(&["stop"]));
}

#[test]
fn stale_pid_files_are_recovered() {
    let (p, _port) = project();
    // A PID that no process has.
    p.write("reloadsup.pid", "999999999\n");
    let out = p.output(&["start"]);
    ok(&out);
    assert!(
        out.stderr
            .contains("stale PID file: pid 999999999 is not running"),
        "{}",
        out.stderr
    );
    ok(&p.output(&["stop"]));

    // A PID that an unrelated live process has: recognised, and left alone.
    let mut unrelated = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    p.write("reloadsup.pid", &format!("{}\n", unrelated.id()));
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", status.stdout);
    let out = p.output(&["start"]);
    ok(&out);
    assert!(out.stderr.contains("is another process"), "{}", out.stderr);
    assert_ne!(pid_file(&p), Some(unrelated.id() as i32));
    ok(&p.output(&["stop"]));
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "the unrelated process lives"
    );
    unrelated.kill().unwrap();
    let _ = unrelated.wait();
}

/// A project in a folder whose name is no UTF-8 (Linux allows any bytes): `start`,
/// `status` and `stop` work. The state file, JSON, could not hold its path: `start`
/// failed once the server had started ("path contains invalid UTF-8 characters").
#[test]
fn a_project_in_a_folder_named_in_no_utf8_starts_and_stops() {
    use std::os::unix::ffi::OsStrExt;
    let (p, port) = project();
    let folder = p.path("").join(std::ffi::OsStr::from_bytes(b"caf\xe9"));
    std::fs::create_dir(&folder).unwrap();
    for file in ["reload.toml", "server.py"] {
        std::fs::rename(p.path(file), folder.join(file)).unwrap();
    }
    let reloadsup = |command: &str| {
        let out = Command::new(BIN)
            .arg(command)
            .current_dir(&folder)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(out.status.code(), Some(0), "{command}: {stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    reloadsup("start");
    assert!(accepts(port));
    assert!(reloadsup("status").starts_with("running (pid "));
    reloadsup("stop");
    wait_until("the server stopped", || {
        p.servers().is_empty() && !accepts(port)
    });
    assert!(!folder.join("reloadsup.pid.json").exists());
}

/// A PID file or state file of the default name damaged while a started server runs
/// (edited, cut short): `status` and `stop` still find the server, and nothing is left
/// behind. Both said the file "holds something else" (exit 2, naming `server.pid_file`,
/// a key not written) and the server ran on, unstoppable.
#[test]
fn a_damaged_pid_or_state_file_does_not_keep_stop_from_stopping() {
    let (p, port) = project();
    for (file, damage) in [
        ("reloadsup.pid", "abc\n"),
        ("reloadsup.pid.json", "{garbage"),
    ] {
        ok(&p.output(&["start"]));
        p.write(file, damage);
        let status = p.output(&["status"]);
        ok(&status);
        assert!(
            status.stdout.starts_with("running (pid "),
            "{}",
            status.stdout
        );
        ok(&p.output(&["stop"]));
        wait_until("the server stopped", || {
            p.servers().is_empty() && !accepts(port)
        });
        for left in ["reloadsup.pid", "reloadsup.pid.json"] {
            assert!(
                !p.path(left).exists(),
                "{left} is left after {file} was damaged"
            );
        }
    }
    // Under `run`: the run is found as the server's parent and stopped with it (`stop`
    // stopped the server alone, and the run started it again at the next change).
    let mut sup = p.start(&["run"]);
    sup.wait_for("ready in");
    p.write("reloadsup.pid.json", "{garbage");
    let out = p.output(&["stop"]);
    ok(&out);
    assert!(
        out.stderr.contains("stopped `reloadsup run` (pid "),
        "{}",
        out.stderr
    );
    assert!(sup.wait_exit().success(), "{}", sup.stderr());
    wait_until("the server stopped", || {
        p.servers().is_empty() && !accepts(port)
    });
}

/// A PID file of the default name that holds no PID, with no server running: `stop`
/// removes it, as it does one naming a process gone, and leaves no lock file (both
/// stayed); `status` says why it is not running; `start` says what it removes.
#[test]
fn a_damaged_pid_file_with_nothing_running_is_stale() {
    let (p, _port) = project();
    p.write("reloadsup.pid", "garbage\n");
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", status.stderr);
    assert!(
        status.stdout.contains("the PID file holds no PID"),
        "{}",
        status.stdout
    );
    let out = p.output(&["stop"]);
    ok(&out);
    assert!(
        out.stderr.contains("the PID file holds no PID; removing"),
        "{}",
        out.stderr
    );
    for left in ["reloadsup.pid", "reloadsup.pid.lock", "reloadsup.pid.json"] {
        assert!(!p.path(left).exists(), "{left} is left");
    }
    p.write("reloadsup.pid", "");
    let out = p.output(&["start"]);
    ok(&out);
    assert!(
        out.stderr.contains("holds no PID; removing"),
        "{}",
        out.stderr
    );
    ok(&p.output(&["stop"]));
}

/// A PID file edited by hand (or written over, damaged or removed) while a started
/// server runs: the state file's record of that server wins. `start` removed both files as stale and started
/// a second server beside the first, which was left running, untracked.
#[test]
fn an_edited_pid_file_does_not_lose_the_running_server() {
    let (p, port) = project();
    ok(&p.output(&["start"]));
    let server = pid_file(&p).expect("a PID file");
    let mut unrelated = Command::new("sleep")
        .arg("30")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    for edited in [unrelated.id().to_string(), "999999999".to_string()] {
        p.write("reloadsup.pid", &format!("{edited}\n"));
        let out = p.output(&["start"]);
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "reloadsup.pid` names pid {edited}, but the server started here is pid \
                 {server}, which still runs and counts; the PID file is put right"
            )) && out
                .stderr
                .contains(&format!("already running (pid {server})")),
            "{}",
            out.stderr
        );
        assert_eq!(pid_file(&p), Some(server));
        assert_eq!(p.servers().len(), 1, "one server");
    }
    // Damaged or removed: the same, and the file a script reads is written again (it
    // stayed gone, or garbled, without a word).
    for (damage, said) in [(Some("garbage\n"), "holds no PID"), (None, "is gone")] {
        match damage {
            Some(text) => p.write("reloadsup.pid", text),
            None => std::fs::remove_file(p.path("reloadsup.pid")).unwrap(),
        }
        let status = p.output(&["status"]);
        ok(&status);
        assert!(status.stderr.contains(said), "{}", status.stderr);
        let out = p.output(&["start"]);
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "reloadsup.pid` {said}, but the server started here (pid {server}) still \
                 runs and counts; the PID file is put right"
            )),
            "{}",
            out.stderr
        );
        assert_eq!(pid_file(&p), Some(server));
        assert_eq!(p.servers().len(), 1, "one server");
    }
    p.write("reloadsup.pid", &format!("{}\n", unrelated.id()));
    let status = p.output(&["status"]);
    ok(&status);
    assert!(
        status.stdout.contains(&format!("pid {server}")),
        "{}",
        status.stdout
    );
    ok(&p.output(&["stop"]));
    wait_until("the server stopped", || {
        p.servers().is_empty() && !accepts(port)
    });
    assert!(
        unrelated.try_wait().unwrap().is_none(),
        "the process the PID file named lives"
    );
    unrelated.kill().unwrap();
    let _ = unrelated.wait();
}

/// `stop` with the PID file removed by hand stops the server the state file records,
/// and does not say it put the file right only to remove it.
#[test]
fn stop_without_the_pid_file_stops_the_recorded_server() {
    let (p, port) = project();
    ok(&p.output(&["start"]));
    std::fs::remove_file(p.path("reloadsup.pid")).unwrap();
    let out = p.output(&["stop"]);
    ok(&out);
    assert!(
        out.stderr.contains("reloadsup.pid` is gone") && !out.stderr.contains("put right"),
        "{}",
        out.stderr
    );
    wait_until("the server stopped", || {
        p.servers().is_empty() && !accepts(port)
    });
    for left in ["reloadsup.pid", "reloadsup.pid.json"] {
        assert!(!p.path(left).exists(), "{left} is left");
    }
}

/// A server whose first process moves the real server to a process group of its own
/// (`setpgid`) and exits: the server is still the one `start` started (in its session,
/// carrying its variable). `start` said the server exited before it was ready and left
/// it running; one whose first process lingered until ready was "not running" for
/// `status` and `stop`, and the next `start` started a second.
#[test]
fn a_server_in_a_process_group_of_its_own_is_still_the_server() {
    let (p, port) = project();
    p.write(
        "launch.py",
        "import os, sys, time\n\
         if os.fork() == 0:\n\
         \x20   os.setpgid(0, 0)\n\
         \x20   os.execvp('python3', ['python3', 'server.py'] + sys.argv[1:])\n\
         time.sleep(float(os.environ['LINGER']))\n",
    );
    for linger in ["0", "1"] {
        p.write(
            "reload.toml",
            &format!(
                "[server]\ncommand = ['python3', 'launch.py', '{port}', '{}']\n\
                 env = {{ LINGER = '{linger}' }}\nready = {{ port = {port} }}\n\
                 ready_timeout = \"5s\"\nstop_timeout = \"2s\"\n[reload]\nenabled = false\n",
                p.token
            ),
        );
        ok(&p.output(&["start"]));
        assert!(accepts(port), "linger {linger}");
        wait_until("the first process gone", || p.servers().len() == 1);
        ok(&p.output(&["status"]));
        let again = p.output(&["start"]);
        assert_eq!(again.status.code(), Some(1), "{}", again.stderr);
        assert_eq!(p.servers().len(), 1, "linger {linger}: one server");
        ok(&p.output(&["stop"]));
        wait_until("the server stopped", || {
            p.servers().is_empty() && !accepts(port)
        });
    }
}

#[test]
fn restart_starts_when_stopped_and_replaces_when_running() {
    let (p, port) = project();
    ok(&p.output(&["restart"]));
    assert!(accepts(port));
    let first = pid_file(&p).unwrap();
    ok(&p.output(&["restart"]));
    let second = pid_file(&p).unwrap();
    assert_ne!(first, second);
    assert!(accepts(port));
    assert!(!alive(first), "the old server is gone");
    assert_eq!(p.servers().len(), 1);
    ok(&p.output(&["stop"]));
}

/// `reloadsup COMMAND` run `n` times at once in `p`'s folder, to the end of each.
fn at_once(p: &Project, command: &str, n: usize) -> Vec<std::process::Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            Command::new(BIN)
                .arg(command)
                .current_dir(&p.dir)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

#[test]
fn concurrent_starts_make_one_server() {
    let (p, port) = project();
    let codes: Vec<Option<i32>> = at_once(&p, "start", 6)
        .iter()
        .map(|out| out.status.code())
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?}"
    );
    assert_eq!(
        codes.iter().filter(|c| **c == Some(1)).count(),
        5,
        "{codes:?}"
    );
    assert!(accepts(port));
    assert_eq!(p.servers().len(), 1);
    ok(&p.output(&["stop"]));
}

/// Two `restart`s at once (`make -j`): both succeed, with one server. The first one's
/// server was stopped by the second before it was ready, and it failed, though the
/// fresh, ready server both asked for was there.
#[test]
fn concurrent_restarts_both_succeed_with_one_server() {
    let (p, port) = project();
    ok(&p.output(&["start"]));
    for out in &at_once(&p, "restart", 2) {
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(accepts(port));
    assert_eq!(p.servers().len(), 1);
    ok(&p.output(&["stop"]));
}

#[test]
fn a_server_that_fails_to_start_leaves_nothing() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'echo config error: no DATABASE_URL; sleep 0.2; exit 4; sleep {}'\n\
             ready = {{ port = {} }}\n",
            p.token,
            free_port()
        ),
    );
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("exited with code 4 before it was ready"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("| config error: no DATABASE_URL"),
        "the log tail: {}",
        out.stderr
    );
    assert!(!p.path("reloadsup.pid").exists());
    assert!(p.servers().is_empty());

    // A command that is not there is said to be so, as `run` says it.
    p.write(
        "reload.toml",
        "[server]\ncommand = 'reloadsup-no-such-command'\n",
    );
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("exited with code 127 (command not found) before it was ready"),
        "{}",
        out.stderr
    );

    // Never ready: stopped after the timeout, saying what it waited for.
    let never = free_port();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready = {{ port = {never} }}\nready_timeout = \"500ms\"\n",
            p.token,
        ),
    );
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains(&format!(
            "was not ready within 500ms (`server.ready_timeout`): no connection on port {never} \
             (`server.ready.port`); stopped it"
        )),
        "{}",
        out.stderr
    );
    assert!(!p.path("reloadsup.pid").exists());
    assert!(p.servers().is_empty());

    // The default check (no `ready`: a port the server's processes listen on) says so.
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready_timeout = \"500ms\"\n",
            p.token,
        ),
    );
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains(
            "was not ready within 500ms (`server.ready_timeout`): its processes listened on no \
             TCP port (the check \
             when `server.ready` is not set); stopped it"
        ),
        "{}",
        out.stderr
    );
    assert!(p.servers().is_empty());
}

/// A server that listens on another port than its ready check's is pointed out by
/// `start` after two seconds, as by `run`, not only at the end of its `ready_timeout`;
/// `start` waits on.
#[test]
fn start_points_out_a_server_on_another_port_before_its_ready_timeout() {
    let p = Project::new();
    let (port, other) = (free_port(), free_port());
    p.write("server.py", SLOW_SERVER);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{other}', '{}']\n\
             ready = {{ port = {port} }}\nready_timeout = \"45s\"\n",
            p.token
        ),
    );
    let mut start = p.start(&["start"]);
    start.wait_for(&format!(
        "the server is not ready yet; it listens on port {other}, not {port} \
         (`server.ready.port`); waiting for it up to `ready_timeout` (45s)"
    ));
    assert_eq!(pid_file(&p).map(alive), Some(true), "still waited for");
    ok(&p.output(&["stop"]));
    assert_eq!(start.wait_exit().code(), Some(1), "{}", start.stderr());
    assert!(p.servers().is_empty());
}

#[test]
fn beside_a_running_supervisor() {
    let (p, port, reload) = project_with_reload_port();
    let mut sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    let first = pid_file(&p).unwrap();
    let mut browser = LiveReloadClient::connect(reload);

    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("already running under `reloadsup run`"),
        "{}",
        out.stderr
    );

    let status = p.output(&["status"]);
    ok(&status);
    assert!(
        status
            .stdout
            .contains(&format!("watched by `reloadsup run` (pid {})", sup.pid()))
    );

    let out = p.output(&["restart"]);
    ok(&out);
    assert!(accepts(port), "ready when restart returns");
    let second = pid_file(&p).unwrap();
    assert_ne!(first, second);
    assert_eq!(sup.count("restarting"), 1, "the supervisor restarted once");
    assert_eq!(p.servers().len(), 1);
    let message = browser
        .next(std::time::Duration::from_secs(5))
        .expect("browsers reload");
    assert_eq!(message["command"], "reload");
    sup.wait_for("reloaded 1 browser(s): restart requested");
    assert!(
        sup.stderr().contains("after the request)"),
        "{}",
        sup.stderr()
    );

    ok(&p.output(&["stop"]));
    let status = sup.wait_exit();
    assert!(status.success(), "SIGTERM: exit 0");
    assert!(p.servers().is_empty());
    assert!(!p.path("reloadsup.pid").exists());
    assert!(
        !p.path("reloadsup.pid.lock").exists(),
        "nothing left to guard: no lock file"
    );
}

/// `restart` beside `run`, for a server that never becomes ready, fails once the new
/// server has had its `ready_timeout` (it waited 10 s more, meant for the supervisor).
#[test]
fn a_restart_beside_run_gives_up_at_the_ready_timeout() {
    let p = Project::new();
    let port = free_port();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'echo start >> starts.log; exec sleep {}'\n\
             ready = {{ port = {port} }}\nready_timeout = \"1s\"\nstop_timeout = \"1s\"\n\
             [watch]\nfile_dep = [\"*.py\"]\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("is not ready after 1s");
    let began = std::time::Instant::now();
    let out = p.output(&["restart"]);
    let took = began.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("the restarted server did not become ready within 1s"),
        "{}",
        out.stderr
    );
    assert!(took < std::time::Duration::from_secs(5), "{took:?}");
}

#[test]
fn run_refuses_when_start_already_runs_the_server() {
    let (p, _port) = project();
    ok(&p.output(&["start"]));
    let out = p.output(&["run"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stderr.contains("started by `reloadsup start`"),
        "{}",
        out.stderr
    );
    ok(&p.output(&["stop"]));
}

#[test]
fn stop_escalates_to_sigkill() {
    let p = Project::new();
    let port = free_port();
    p.write(
        "server.py",
        "import signal, socket, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         s = socket.socket()\ns.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen()\ntime.sleep(1000)\n",
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{port}', '{}']\nstop_timeout = \"300ms\"\n\
             ready = {{ port = {port} }}\n",
            p.token
        ),
    );
    ok(&p.output(&["start"]));
    let out = p.output(&["stop"]);
    ok(&out);
    assert!(out.stderr.contains("killed with SIGKILL"), "{}", out.stderr);
    wait_until("no server", || p.servers().is_empty());
}

/// A Ctrl-C (or SIGTERM, SIGHUP) while `stop` or `restart` waits out the grace period
/// kills the server at once and exits 128 + the signal; `restart` then starts nothing.
#[test]
fn an_interrupted_stop_or_restart_kills_the_server_at_once() {
    let p = Project::new();
    let port = free_port();
    p.write(
        "server.py",
        "import signal, socket, sys, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         s = socket.socket()\ns.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', int(sys.argv[1])))\ns.listen()\ntime.sleep(1000)\n",
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{port}', '{}']\nstop_timeout = \"30s\"\n\
             ready = {{ port = {port} }}\n",
            p.token
        ),
    );
    for (command, signal) in [("stop", Signal::SIGINT), ("restart", Signal::SIGTERM)] {
        ok(&p.output(&["start"]));
        let server = pid_file(&p).expect("a PID file");
        let mut waiting = crate::util::Sup::spawn(&p.dir, &[command]);
        // Time to send the stop signal and begin the grace period.
        std::thread::sleep(std::time::Duration::from_millis(500));
        waiting.signal(signal);
        let status = waiting.wait_exit();
        assert_eq!(
            status.code(),
            Some(128 + signal as i32),
            "{}",
            waiting.stderr()
        );
        assert!(
            waiting
                .stderr()
                .contains(&format!("killed with SIGKILL at a {signal}")),
            "{}",
            waiting.stderr()
        );
        wait_until("the server gone", || !alive(server));
        assert!(p.servers().is_empty(), "{command}: nothing started");
        assert_eq!(pid_file(&p), None);
    }
}

#[test]
fn without_the_state_file_only_this_projects_server_counts() {
    let (p1, port1) = project();
    ok(&p1.output(&["start"]));
    let pid = pid_file(&p1).unwrap();

    // Another project whose PID file names p1's server, with no state file beside it.
    let (p8, _port8) = project();
    p8.write("reloadsup.pid", &format!("{pid}\n"));
    assert!(!p8.path("reloadsup.pid.json").exists());
    let status = p8.output(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", status.stdout);
    let out = p8.output(&["stop"]);
    ok(&out);
    assert!(
        out.stderr
            .contains(&format!("pid {pid} is another process")),
        "{}",
        out.stderr
    );
    assert!(alive(pid), "p1's server is left alone");
    assert!(accepts(port1));

    // In its own project, the fallback still recognises it.
    std::fs::remove_file(p1.path("reloadsup.pid.json")).unwrap();
    ok(&p1.output(&["status"]));
    ok(&p1.output(&["stop"]));
    assert!(p1.servers().is_empty(), "no process left");
}

/// `cd frontend && npm run dev`: without the state file, a server working in a folder
/// below the project's is still recognised as this project's.
#[test]
fn without_the_state_file_a_server_in_a_subfolder_still_counts() {
    let p = Project::new();
    p.write("app.py", "");
    p.write("sub/keep", "");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'cd sub && exec sleep {}'\nready = {{ delay = \"100ms\" }}\n\
             [watch]\nfile_dep = [\"app.py\"]\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    ok(&p.output(&["start"]));
    std::fs::remove_file(p.path("reloadsup.pid.json")).unwrap();
    ok(&p.output(&["status"]));
    ok(&p.output(&["stop"]));
    assert!(
        p.servers().is_empty(),
        "stopped, not left running untracked"
    );

    // A project nested in this one (a task file of its own) is not this one's.
    p.write(
        "inner/reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready = {{ delay = \"100ms\" }}\n\
             [watch]\nfile_dep = [\"app.py\"]\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    let started = Command::new(BIN)
        .arg("start")
        .current_dir(p.path("inner"))
        .output()
        .unwrap();
    assert!(started.status.success(), "{started:?}");
    let inner_pid = p.read("inner/reloadsup.pid");
    p.write("reloadsup.pid", &inner_pid);
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", status.stdout);
    ok(&p.output(&["stop"]));
    assert_eq!(
        p.servers().len(),
        1,
        "the inner project's server is left alone"
    );
    let stopped = Command::new(BIN)
        .arg("stop")
        .current_dir(p.path("inner"))
        .output()
        .unwrap();
    assert!(stopped.status.success(), "{stopped:?}");
}

/// A project copied with its PID and state files (`cp -r`) is not running: `stop` in the
/// copy leaves the original's server alone.
#[test]
fn a_copied_project_does_not_stop_the_originals_server() {
    let (p, _port) = project();
    ok(&p.output(&["start"]));
    let copy = Project::new();
    for name in [
        "reload.toml",
        "server.py",
        "app.py",
        "reloadsup.pid",
        "reloadsup.pid.json",
    ] {
        std::fs::copy(p.path(name), copy.path(name)).unwrap();
    }
    let stopped = copy.output(&["stop"]);
    ok(&stopped);
    assert!(stopped.stderr.contains("not running"), "{}", stopped.stderr);
    assert_eq!(copy.output(&["status"]).status.code(), Some(3));
    assert_eq!(p.servers().len(), 1, "the original's server runs on");
    ok(&p.output(&["status"]));
    ok(&p.output(&["stop"]));
    assert!(p.servers().is_empty());
}

/// The project reached through a bind mount (a container's or a chroot's view of it) is
/// the same project, not a copy: `status` there names the server, `start` there is
/// refused, `stop` there stops it. It was taken for a copy: `start` removed the PID and
/// state files and started a second server, and the first ran on untracked. Needs
/// root to mount; skipped otherwise.
#[test]
fn a_project_reached_through_a_bind_mount_is_the_same_project() {
    let (p, _port) = project();
    let Some(view) = View::of(&p, false) else {
        return;
    };
    let in_view = |args: &[&str]| view.output(args);
    ok(&p.output(&["start"]));
    let pid = p.servers();
    assert_eq!(pid.len(), 1);
    let status = in_view(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    assert!(
        String::from_utf8_lossy(&status.stdout).starts_with("running (pid "),
        "{status:?}"
    );
    let again = in_view(&["start"]);
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert_eq!(p.servers(), pid, "no second server");
    let stopped = in_view(&["stop"]);
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(p.servers().is_empty());
}

/// From a current folder that was removed (a shell left in a folder `rm -rf` took
/// away), `status` and `stop` with an absolute `-f` find the server: every command
/// failed with "cannot read the current folder", and the server ran on.
#[test]
fn an_absolute_task_file_needs_no_current_folder() {
    let (p, _port) = project();
    ok(&p.output(&["start"]));
    let other = Project::new();
    let task_file = p.path("reload.toml");
    let from_gone = |command: &str| {
        let line = format!(
            "mkdir gone && cd gone && rmdir ../gone && exec '{BIN}' -f '{}' {command}",
            task_file.display()
        );
        Command::new("sh")
            .args(["-c", &line])
            .current_dir(&other.dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let status = from_gone("status");
    assert_eq!(status.status.code(), Some(0), "{status:?}");
    let stopped = from_gone("stop");
    assert!(stopped.status.success(), "{stopped:?}");
    assert!(p.servers().is_empty());
}

/// A project's folder seen through a bind mount elsewhere (read-only if asked), where
/// reloadsup can be run; unmounted on drop. `None` (the test skipped) where mounting is
/// not allowed.
struct View {
    at: std::path::PathBuf,
    /// Holds the mount point; dropped after the unmount.
    _parent: Project,
}

impl View {
    fn of(p: &Project, read_only: bool) -> Option<View> {
        let parent = Project::new();
        let at = parent.path("view");
        std::fs::create_dir(&at).unwrap();
        let mount = |args: &[&str]| {
            Command::new("mount")
                .args(args)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let (from, to) = (p.dir.to_str().unwrap(), at.to_str().unwrap());
        if !mount(&["--bind", from, to]) {
            eprintln!("skipped: cannot bind-mount here");
            return None;
        }
        let view = View {
            at: at.clone(),
            _parent: parent,
        };
        if read_only && !mount(&["-o", "remount,bind,ro", to]) {
            eprintln!("skipped: cannot remount read-only here");
            return None;
        }
        Some(view)
    }

    /// `reloadsup ARGS` run in the view, to completion.
    fn output(&self, args: &[&str]) -> std::process::Output {
        reloadsup_in(&self.at, args)
    }
}

/// `reloadsup ARGS` run in `dir` (a folder that is no [`Project`] of its own), to
/// completion.
fn reloadsup_in(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

impl Drop for View {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// `stop` in a read-only folder says it could not remove the PID and state files: they
/// stayed without a word, and the next `status` took the server it had stopped for one
/// that ended by itself.
#[test]
fn stop_says_when_it_cannot_remove_its_files() {
    let (p, _port) = project();
    ok(&p.output(&["start"]));
    let Some(view) = View::of(&p, true) else {
        ok(&p.output(&["stop"]));
        return;
    };
    let stopped = view.output(&["stop"]);
    let stderr = String::from_utf8_lossy(&stopped.stderr);
    assert!(stopped.status.success(), "{stderr}");
    assert!(p.servers().is_empty());
    assert!(
        stderr.contains("cannot remove `") && stderr.contains("Read-only file system"),
        "{stderr}"
    );
}

/// A copy made with hard links (`cp -al`) shares the PID file's inode, but it is another
/// project: `status` there says nothing runs, `stop` there leaves the original's server
/// alone (both acted on it while files were compared by inode alone).
#[test]
fn a_hard_linked_copy_is_another_project() {
    let (p, _port) = project();
    ok(&p.output(&["start"]));
    let parent = Project::new();
    let copy = parent.path("copy");
    let copied = Command::new("cp")
        .arg("-al")
        .arg(&p.dir)
        .arg(&copy)
        .status()
        .unwrap();
    assert!(copied.success());
    let in_copy = |args: &[&str]| reloadsup_in(&copy, args);
    assert_eq!(in_copy(&["status"]).status.code(), Some(3));
    assert!(in_copy(&["stop"]).status.success());
    assert_eq!(p.servers().len(), 1, "the original's server runs on");
    ok(&p.output(&["stop"]));
}

/// A log file that cannot be made: the error names the key that set it.
#[test]
fn a_log_file_that_cannot_be_made_names_its_key() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'sleep {}'\nlog_file = '/proc/nope/x.log'\n",
            p.token
        ),
    );
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("cannot create `/proc/nope`, the folder of `server.log_file`"),
        "{}",
        out.stderr
    );
    assert!(p.servers().is_empty());
}

/// A project folder renamed under its started server (`mv app app2`) still knows it:
/// `status` names its command, `stop` stops it; a copy of the renamed folder does not,
/// even when the server works in a folder outside both.
#[test]
fn a_renamed_project_still_knows_its_server() {
    let p = Project::new();
    std::fs::create_dir(p.path("shared")).unwrap();
    p.write(
        "app/reload.toml",
        &format!(
            "[server]\ncommand = ['python3', '-c', 'import time; print(\"up\", flush=True); \
             time.sleep(1000)', '{}']\ncwd = '{}'\nready = {{ log = \"^up\" }}\n",
            p.token,
            p.path("shared").display()
        ),
    );
    let in_folder = |folder: &str, command: &str| {
        Command::new(BIN)
            .arg(command)
            .current_dir(p.path(folder))
            .output()
            .unwrap()
    };
    let started = in_folder("app", "start");
    assert!(started.status.success(), "{started:?}");
    std::fs::rename(p.path("app"), p.path("app2")).unwrap();
    std::fs::create_dir(p.path("app3")).unwrap();
    for name in ["reload.toml", "reloadsup.pid", "reloadsup.pid.json"] {
        std::fs::copy(
            p.path(&format!("app2/{name}")),
            p.path(&format!("app3/{name}")),
        )
        .unwrap();
    }
    assert_eq!(
        in_folder("app3", "status").status.code(),
        Some(3),
        "the copy runs nothing"
    );
    assert!(in_folder("app3", "stop").status.success());
    assert_eq!(p.servers().len(), 1, "the original's server runs on");
    let status = in_folder("app2", "status");
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{status:?}");
    assert!(said.contains("time.sleep"), "the command is known: {said}");
    assert!(in_folder("app2", "stop").status.success());
    assert!(p.servers().is_empty(), "stopped");
}

/// Two task files in one folder share the default PID file: the second's commands
/// refuse, naming the first, rather than take its server for their own.
#[test]
fn a_second_task_file_sharing_the_pid_file_refuses() {
    let (p, _port) = project();
    p.write("other.toml", "[server]\ncommand = 'exec sleep 600'\n");
    ok(&p.output(&["start"]));
    for command in ["start", "stop", "restart", "status"] {
        let out = p.output(&["-f", "other.toml", command]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains("reload.toml") && out.stderr.contains("server.pid_file"),
            "{command}: {}",
            out.stderr
        );
    }
    assert_eq!(p.servers().len(), 1, "left alone");
    // The same task file through a link is the same task file.
    std::os::unix::fs::symlink(p.path("reload.toml"), p.path("dev.toml")).unwrap();
    ok(&p.output(&["-f", "dev.toml", "status"]));
    ok(&p.output(&["-f", "dev.toml", "stop"]));
    assert!(p.servers().is_empty());
}

#[test]
fn start_stops_its_server_when_the_pid_file_cannot_be_written() {
    let (p, port) = project();
    // A folder where the PID file's temp file goes: writing it fails, as a read-only
    // folder would make it (and this holds for root too). A folder where the PID file
    // itself goes is refused when the task file is read.
    p.write(".reloadsup.pid.tmp/keep", "");
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot write PID file") && out.stderr.contains("stopped it"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "one line: {}", out.stderr);
    assert!(p.servers().is_empty(), "the server it started is stopped");
    assert!(!accepts(port));
    assert!(!p.path("reloadsup.pid.json").exists());
    assert!(!p.path("reloadsup.pid").exists());
    assert!(p.path(".reloadsup.pid.tmp/keep").exists());
}

/// The start time of `pid`, in clock ticks since boot (`/proc/PID/stat`, field 22).
fn start_ticks(pid: i32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 1..]
        .split_whitespace()
        .collect();
    fields[19].parse().unwrap()
}

#[test]
fn a_server_whose_leader_exited_runs_until_its_group_is_gone() {
    let (p, port) = project();
    // A wrapper that leaves the server running in the background, and exits.
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'python3 server.py {port} {} & sleep 1; echo leader-exits'\n\
             ready = {{ port = {port} }}\nstop_timeout = \"2s\"\n",
            p.token
        ),
    );
    ok(&p.output(&["start"]));
    let leader = pid_file(&p).unwrap();
    wait_until("the leader to exit", || {
        !alive(leader) && p.read("reloadsup.log").contains("leader-exits")
    });
    assert_eq!(p.servers().len(), 1, "the server runs on");

    let status = p.output(&["status"]);
    ok(&status);
    assert!(
        status
            .stdout
            .starts_with(&format!("running (pid {leader}, up ")),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(&format!(
            "its leader (pid {leader}) has ended; the rest of its process group serves on"
        )),
        "{}",
        status.stdout
    );
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("already running"), "{}", out.stderr);

    let out = p.output(&["stop"]);
    ok(&out);
    assert!(
        out.stderr.contains("stopped `")
            && out
                .stderr
                .contains("its leader had ended; the rest of its group ended "),
        "{}",
        out.stderr
    );
    assert!(p.servers().is_empty(), "the whole group is stopped");
    assert!(!accepts(port));
    assert!(!p.path("reloadsup.pid").exists());
    assert_eq!(p.output(&["status"]).status.code(), Some(3));
}

#[test]
fn a_dead_leaders_group_counts_only_if_it_is_the_servers() {
    let (p, _port) = project();
    // An unrelated session whose leader exits and leaves a process behind in its group:
    // the shape of a server whose leader exited, but not started by reloadsup.
    let mut leader = Command::new("setsid")
        .args(["sh", "-c", &format!("sleep {} & sleep 0.3", p.token)])
        .env_remove("RELOADSUP_CHANGED")
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let pid = leader.id() as i32;
    let ticks = start_ticks(pid);
    let mut member = None;
    wait_until("the member", || {
        member = p.servers().into_iter().find(|&m| m != pid);
        member.is_some()
    });
    let member = member.unwrap();
    leader.wait().unwrap();
    p.write("reloadsup.pid", &format!("{pid}\n"));
    p.write(
        "reloadsup.pid.json",
        &format!(
            r#"{{"supervisor":null,"server":{{"ident":{{"pid":{pid},"start_ticks":{ticks}}},"started_at":1,"command":"x","ready":true}}}}"#
        ),
    );
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", status.stdout);
    assert!(
        status
            .stdout
            .contains(&format!("the server (pid {pid}) has ended")),
        "{}",
        status.stdout
    );
    ok(&p.output(&["stop"]));
    assert!(
        alive(member),
        "a process that is not the server's is left alone"
    );
}

#[test]
fn start_fails_when_another_program_answered_for_a_crashed_server() {
    let (p, port) = project();
    // Another program already listens on the ready port: the server cannot bind it.
    let other = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec python3 server.py {port} {}'\n\
             ready = {{ port = {port} }}\nready_timeout = \"5s\"\n",
            p.token
        ),
    );
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains(&format!(
            "something else already listens on 127.0.0.1:{port} before the server starts"
        )),
        "a warning first, as `run` gives: {}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("exited with code 1 although its ready check passed"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("Address already in use"),
        "{}",
        out.stderr
    );
    assert!(!p.path("reloadsup.pid").exists());
    assert!(!p.path("reloadsup.pid.json").exists());
    assert!(p.servers().is_empty());
    assert_eq!(p.output(&["status"]).status.code(), Some(3));
    drop(other);

    // A server that does bind (on the other loopback address) is confirmed by its own
    // listening port, with the warning.
    let Ok(other) = std::net::TcpListener::bind(("::1", port)) else {
        return; // no IPv6 here
    };
    let out = p.output(&["start"]);
    ok(&out);
    assert!(
        out.stderr.contains("something else already listens"),
        "{}",
        out.stderr
    );
    assert!(accepts(port));
    ok(&p.output(&["stop"]));
    drop(other);
}

#[test]
fn an_interrupted_start_stops_its_server() {
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let p = Project::new();
        p.write(
            "reload.toml",
            &format!(
                "[server]\ncommand = 'exec sleep {}'\nready = {{ port = {} }}\n\
                 ready_timeout = \"60s\"\nstop_timeout = \"2s\"\n",
                p.token,
                free_port()
            ),
        );
        let mut start = p.start(&["start"]);
        wait_until("the server and its PID file", || {
            !p.servers().is_empty() && pid_file(&p).is_some()
        });
        start.signal(signal);
        assert_eq!(start.wait_exit().code(), Some(code), "{}", start.stderr());
        assert!(
            start.stderr().contains(&format!(
                "interrupted by {signal} before it was ready; stopped it"
            )),
            "{}",
            start.stderr()
        );
        assert!(p.servers().is_empty(), "{signal}: the server is stopped");
        assert!(!p.path("reloadsup.pid").exists());
        assert!(!p.path("reloadsup.pid.json").exists());
        let status = p.output(&["status"]);
        assert_eq!(status.status.code(), Some(3), "{}", status.stdout);
    }
}

/// `start` with `ready = { log }` reads the log on from where it last read: a ready
/// line after 21 MB of output is seen (each poll read the first 16 MiB again, so it
/// never was), and it is matched as a terminal shows it (no colour codes).
#[test]
fn start_sees_a_ready_line_after_much_output() {
    let p = Project::new();
    p.write(
        "chatty.py",
        "import sys, time\n\
         sys.stdout.write(('x' * 70 + '\\n') * 300000)\n\
         sys.stdout.write('\\x1b[32mREADY\\x1b[0m\\n')\n\
         sys.stdout.flush()\n\
         time.sleep(600)\n",
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec python3 chatty.py {}'\nready = {{ log = '^READY$' }}\n\
             ready_timeout = '20s'\n",
            p.token
        ),
    );
    let out = p.output(&["start"]);
    ok(&out);
    assert_eq!(p.servers().len(), 1);
    ok(&p.output(&["stop"]));
    assert!(p.servers().is_empty());
}

/// `restart` beside `run` fails as soon as the restarted server ends before it is
/// ready, and says how, instead of waiting out the stop and ready timeouts.
#[test]
fn restart_beside_run_reports_a_server_that_ends_at_once() {
    let p = Project::new();
    p.write("ok", "");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'if [ -f ok ]; then exec sleep {}; else exit 7; fi'\n\
             ready = {{ delay = '100ms' }}\nready_timeout = '5s'\nstop_timeout = '2s'\n\
             [watch]\nfile_dep = ['app.py']\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    let mut sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    std::fs::remove_file(p.path("ok")).unwrap();
    let began = std::time::Instant::now();
    let out = p.output(&["restart"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr.contains("the restart failed: the server (pid ")
            && out.stderr.contains("exited with code 7"),
        "{}",
        out.stderr
    );
    assert!(
        began.elapsed() < std::time::Duration::from_secs(5),
        "not after the timeouts: {:?}",
        began.elapsed()
    );
    ok(&p.output(&["stop"]));
    sup.wait_exit();
}

/// `stop` beside a `run` that does not answer (held stopped by a tracer, as under a
/// debugger, where `stop`'s SIGCONT does not reach it) kills it and its server with
/// SIGKILL after the grace, and leaves no PID or state file. Skipped where tracing is
/// not allowed.
#[test]
fn stop_kills_a_supervisor_that_does_not_answer() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nstop_timeout = '500ms'\n\
             [reload]\nenabled = false\n",
            p.token
        ),
    );
    let mut sup = p.start(&["run"]);
    sup.wait_for("started");
    wait_until("the PID file", || pid_file(&p).is_some());
    if nix::sys::ptrace::attach(sup.pid()).is_err() {
        eprintln!("skipped: cannot trace a process here");
        return;
    }
    // Its stop on being traced, taken by this thread, the tracer; it is not continued.
    let _ = nix::sys::wait::waitpid(sup.pid(), None);
    let out = p.output(&["stop"]);
    ok(&out);
    assert!(
        out.stderr
            .contains("did not stop within 5s 500ms of SIGTERM; killed it and its server"),
        "{}",
        out.stderr
    );
    sup.wait_exit();
    assert!(p.servers().is_empty());
    assert!(!p.path("reloadsup.pid").exists());
    assert!(!p.path("reloadsup.pid.json").exists());
}

/// `status` says when the server runs but is not ready yet.
#[test]
fn status_says_not_ready_yet() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready = {{ delay = '60s' }}\n\
             ready_timeout = '90s'\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    let mut sup = p.start(&["run", "--stop-timeout", "7s"]);
    sup.wait_for("started");
    wait_until("the state file", || pid_file(&p).is_some());
    // `stop` waits for the timeout `run` stops with, which the task file does not say.
    assert!(
        p.read("reloadsup.pid.json")
            .contains("\"stop_timeout_ms\": 7000"),
        "{}",
        p.read("reloadsup.pid.json")
    );
    let status = p.output(&["status"]);
    ok(&status);
    assert!(
        status.stdout.contains(", not ready yet): exec sleep"),
        "{}",
        status.stdout
    );
    ok(&p.output(&["stop"]));
    sup.wait_exit();
}

/// A `start` killed while it waited leaves its server running, never marked ready:
/// past `ready_timeout`, `status` says nothing waits for it any more.
#[test]
fn status_says_when_no_start_waits_for_the_server_any_more() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready = {{ delay = '60s' }}\n\
             ready_timeout = '1s'\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    let mut start = crate::util::Sup::spawn(&p.dir, &["start"]);
    // The state file, which says the start waits, comes just after the PID file: a
    // start killed between the two (seen once in a full run on a busy machine) leaves
    // a server `status` knows nothing more of.
    wait_until("the state file", || {
        pid_file(&p).is_some() && p.path("reloadsup.pid.json").exists()
    });
    start.signal(Signal::SIGKILL);
    start.wait_exit();
    let status = p.output(&["status"]);
    assert!(
        status.stdout.contains(", not ready yet)"),
        "{}",
        status.stdout
    );
    // Uptime is counted in whole seconds: past 1 s + the 2 s of slack, surely.
    std::thread::sleep(std::time::Duration::from_millis(4500));
    let status = p.output(&["status"]);
    assert!(
        status
            .stdout
            .contains(", not known to be ready: the `start` that waited for it ended first)"),
        "{}",
        status.stdout
    );
    ok(&p.output(&["stop"]));
}

/// A task file saved half-edited while the server runs does not keep `status` and
/// `stop` from finding it: they warn and go by the default PID file, or by the file's
/// own `pid_file` when its line still reads.
#[test]
fn stop_finds_the_server_when_the_task_file_is_broken() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready = {{ delay = '50ms' }}\n",
            p.token
        ),
    );
    ok(&p.output(&["start"]));
    p.write("reload.toml", "[server\ncommand = \n");
    let status = p.output(&["status"]);
    ok(&status);
    assert!(
        status.stderr.contains("going by the default PID file"),
        "{}",
        status.stderr
    );
    ok(&p.output(&["stop"]));
    assert!(p.servers().is_empty());
    let out = p.output(&["status"]);
    assert_eq!(out.status.code(), Some(2), "nothing to go by: the error");
    // A file that names its own PID file is not gone by the default one (another
    // task file's, say).
    let good = format!(
        "[server]\ncommand = 'exec sleep {}'\nready = {{ delay = '50ms' }}\n",
        p.token
    );
    p.write("reload.toml", &good);
    ok(&p.output(&["start"]));
    p.write(
        "reload.toml",
        "[server
pid_file = 'mine.pid'
",
    );
    let out = p.output(&["stop"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert!(!out.stderr.contains("going by"), "{}", out.stderr);
    assert_eq!(p.servers().len(), 1, "the other server is left alone");
    p.write("reload.toml", &good);
    ok(&p.output(&["stop"]));
    // One with a PID file of its own and a typo elsewhere goes by that PID file: the
    // typo made `stop` fail with the server left running.
    let own = format!(
        "[server]\ncommand = 'exec sleep {}'\nready = {{ delay = '50ms' }}\npid_file = \"run/app.pid\"\n",
        p.token
    );
    p.write("reload.toml", &own);
    ok(&p.output(&["start"]));
    p.write("reload.toml", &format!("{own}bogus = 1\n"));
    let out = p.output(&["stop"]);
    ok(&out);
    assert!(
        out.stderr.contains("going by its `pid_file`") && out.stderr.contains("run/app.pid"),
        "{}",
        out.stderr
    );
    assert!(p.servers().is_empty());
}

/// A server `start` left running that has since ended is said to have ended, with
/// where its output went (not called a stale PID file, as if the PID were reused).
#[test]
fn status_says_a_started_server_has_ended() {
    let p = Project::new();
    p.write(
        "reload.toml",
        "[server]\ncommand = 'sleep 0.5; exit 3'\nready = { delay = '50ms' }\n",
    );
    ok(&p.output(&["start"]));
    let pid = pid_file(&p).expect("the PID file");
    wait_until("the server to end", || !alive(pid));
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(3), "{}", status.stderr);
    assert!(
        status.stdout.contains(&format!(
            "not running (the server (pid {pid}) has ended; its output is in `"
        )),
        "{}",
        status.stdout
    );
}

/// `stop` by a user not allowed to signal the server says so at once (it waited out
/// the stop timeout and SIGKILL's wait, then blamed the server), though that user may
/// not write the lock file either. Needs root, to run `stop` as another user; skipped
/// otherwise.
#[test]
fn stop_without_permission_to_signal_says_so_at_once() {
    if !nix::unistd::geteuid().is_root() {
        return;
    }
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready = {{ delay = '50ms' }}\n",
            p.token
        ),
    );
    ok(&p.output(&["start"]));
    use std::os::unix::fs::PermissionsExt;
    // The files keep their modes: the lock file, which that user may not write, is
    // locked all the same (it said "cannot lock …: Permission denied").
    std::fs::set_permissions(&p.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let began = std::time::Instant::now();
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            BIN,
            "stop",
        ])
        .current_dir(&p.dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("not allowed to signal"), "{stderr}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(2),
        "{stderr}"
    );
    assert_eq!(p.servers().len(), 1);
    ok(&p.output(&["stop"]));
}

/// `ready = { log }` with a `log_file` that keeps nothing (`/dev/null`) cannot work
/// for `start`: said at once, nothing started (it waited out `ready_timeout`, then said
/// the server wrote nothing).
#[test]
fn start_refuses_a_log_ready_check_on_a_log_that_keeps_nothing() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'echo READY; exec sleep {}'\nlog_file = '/dev/null'\n\
             ready = {{ log = 'READY' }}\nready_timeout = '5s'\n",
            p.token
        ),
    );
    let began = std::time::Instant::now();
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("/dev/null"), "{}", out.stderr);
    assert!(began.elapsed() < std::time::Duration::from_secs(2));
    assert!(p.servers().is_empty());
}

/// While `start` waits for its server to get ready, `stop` stops it at once (it waited
/// for `start`'s lock until `ready_timeout`, then said "not running"), and `start` says
/// so; a second `start` meanwhile says it is already running, at once.
#[test]
fn stop_while_start_waits_for_readiness_stops_it_at_once() {
    let p = Project::new();
    let port = free_port();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\nready = {{ port = {port} }}\nready_timeout = '20s'\n",
            p.token
        ),
    );
    let mut start = Command::new(BIN)
        .arg("start")
        .current_dir(&p.dir)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the server", || p.servers().len() == 1);
    wait_until("the state file", || p.path("reloadsup.pid.json").exists());
    let began = std::time::Instant::now();
    let second = p.output(&["start"]);
    assert_eq!(second.status.code(), Some(1), "{}", second.stderr);
    assert!(
        second.stderr.contains("already running"),
        "{}",
        second.stderr
    );
    let stopped = p.output(&["stop"]);
    ok(&stopped);
    assert!(stopped.stderr.contains("stopped `"), "{}", stopped.stderr);
    assert!(began.elapsed() < std::time::Duration::from_secs(5));
    let status = start.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(start.stderr.as_mut().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("stopped by another command"), "{stderr}");
    assert!(p.servers().is_empty());
    assert!(!p.path("reloadsup.pid").exists());
    assert!(!p.path("reloadsup.pid.json").exists());
}

/// `restart` beside a `run` that is suspended (Ctrl-Z) says so at once (it waited
/// 14 s, then said the restarted server was not ready: none had been restarted).
#[test]
fn restart_beside_a_suspended_run_says_so() {
    let p = Project::new();
    p.write("app.py", "");
    let mut sup = p.start_sleeper(
        "[\"*.py\"]",
        "ready = { delay = '50ms' }\nready_timeout = '3s'",
    );
    wait_until("the state file", || p.path("reloadsup.pid.json").exists());
    sup.signal(Signal::SIGSTOP);
    let began = std::time::Instant::now();
    let out = p.output(&["restart"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("is stopped"), "{}", out.stderr);
    assert!(began.elapsed() < std::time::Duration::from_secs(2));
    sup.signal(Signal::SIGCONT);
    // The restart asked for is done once it runs again.
    p.wait_starts(2);
    sup.signal(Signal::SIGTERM);
    assert_eq!(sup.wait_exit().code(), Some(0));
}

/// `stop` with nothing running makes no folder for the PID file (it made
/// `tmp/pids/`), and says so with exit 0.
#[test]
fn stop_with_nothing_running_makes_no_folder() {
    let p = Project::new();
    p.write(
        "reload.toml",
        "[server]\ncommand = 'sleep 5'\npid_file = 'tmp/pids/server.pid'\n",
    );
    let out = p.output(&["stop"]);
    ok(&out);
    assert!(out.stderr.contains("not running"), "{}", out.stderr);
    assert!(!p.path("tmp").exists());
}

/// A command written over several lines is shown on one line, escaped.
#[test]
fn status_shows_a_command_of_several_lines_on_one() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = '''\nset -e\nexec sleep {}\n'''\nready = {{ delay = '50ms' }}\n",
            p.token
        ),
    );
    ok(&p.output(&["start"]));
    let status = p.output(&["status"]);
    ok(&status);
    assert_eq!(status.stdout.lines().count(), 1, "{}", status.stdout);
    assert!(
        status.stdout.contains("set -e\\nexec sleep"),
        "{}",
        status.stdout
    );
    ok(&p.output(&["stop"]));
}

/// A log truncated while `start` waits for the ready line (`: > reloadsup.log`,
/// logrotate's copytruncate) is read again from its start.
#[test]
fn start_reads_a_truncated_log_anew() {
    let p = Project::new();
    p.write(
        "truncating.py",
        "import sys, time\n\
         sys.stdout.write(('x' * 50 + '\\n') * 2000)\n\
         sys.stdout.flush()\n\
         time.sleep(0.3)\n\
         open('reloadsup.log', 'w').close()\n\
         print('READY', flush=True)\n\
         time.sleep(600)\n",
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec python3 truncating.py {}'\nready = {{ log = '^READY$' }}\n\
             ready_timeout = '10s'\n",
            p.token
        ),
    );
    ok(&p.output(&["start"]));
    ok(&p.output(&["stop"]));
    assert!(p.servers().is_empty());
}

/// A command that sends the server to the background ends at once with code 0, and
/// the server it left is out of reach: `start` and `run` say so and how to mend it.
#[test]
fn a_server_sent_to_the_background_is_pointed_out() {
    let p = Project::new();
    let port = free_port();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'setsid sleep {} >/dev/null 2>&1 </dev/null &'\n\
             ready = {{ port = {port} }}\nready_timeout = \"5s\"\n\
             [watch]\nfile_dep = [\"app.py\"]\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    let hint = "It then ends at once, and what left its process group is out of \
                reloadsup's reach: run the server in the foreground";
    let out = p.output(&["start"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("exited with code 0 before it was ready")
            && out.stderr.contains(hint),
        "{}",
        out.stderr
    );
    let sup = p.start(&["run"]);
    sup.wait_for("exited with code 0");
    assert!(sup.stderr().contains(hint), "{}", sup.stderr());
    // Said once: a one-shot command (`run -- pytest`) ends so at every run.
    p.write("app.py", "1");
    sup.wait_for_n("exited with code 0", 2);
    assert_eq!(sup.count(hint), 1, "{}", sup.stderr());
}

/// A `pid_file` folder removed under `run` (`make clean`, `git clean -fdx`) is made
/// again at once, and at the next start, while the project's folder is there: `status`
/// and `stop` still find the server (they said "not running", `stop` left it running,
/// and a `start` beside it was not refused).
#[test]
fn a_pid_file_folder_removed_under_run_is_made_again() {
    let p = Project::new();
    p.sleeper_task_file(
        "['*.py']",
        "pid_file = 'run/app.pid'\nready = { delay = \"50ms\" }",
    );
    p.write("app.py", "1");
    let sup = p.start(&["run", "--no-reload"]);
    sup.wait_for("ready in ");
    std::fs::remove_dir_all(p.path("run")).unwrap();
    wait_until("the PID file back", || p.path("run/app.pid").exists());
    wait_until("the state file back", || {
        p.path("run/app.pid.json").exists()
    });
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", status.stdout);
    let start = p.output(&["start"]);
    assert_eq!(start.status.code(), Some(1), "refused: {}", start.stderr);
    assert_eq!(p.servers().len(), 1);
    std::fs::remove_dir_all(p.path("run")).unwrap();
    p.write("app.py", "2");
    p.wait_starts(2);
    // Between the old server's end and the new one's record, the state file says no
    // server runs (as it is, for that moment): `status` is asked once the new one is up.
    sup.wait_for_n("ready in ", 2);
    wait_until("the PID file again", || p.path("run/app.pid").exists());
    wait_until("the state file again", || {
        p.path("run/app.pid.json").exists()
    });
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", status.stdout);
    assert!(!sup.stderr().contains("cannot write"), "{}", sup.stderr());
    let stop = p.output(&["stop"]);
    assert!(stop.status.success(), "{}", stop.stderr);
    wait_until("no server", || p.servers().is_empty());
}

/// The arguments of `unshare` for a container's PID namespace, as a user may make one.
const CONTAINER: [&str; 5] = ["-U", "-r", "-p", "-f", "--mount-proc"];

/// Whether this machine lets a user make a PID namespace (a line says so when not).
fn pid_namespaces_allowed() -> bool {
    let probe = Command::new("unshare").args(CONTAINER).arg("true").status();
    let allowed = probe.is_ok_and(|s| s.success());
    if !allowed {
        eprintln!("skipped: PID namespaces are not available here");
    }
    allowed
}

/// A `run` in a container (here, a PID namespace of its own) that shares the project's
/// folder with the host: its PIDs name other processes on the host, so `status` and
/// `stop` there say to run them in the container, and leave its files and its server
/// alone. `stop` on the host took the live `run` for ended, removed its files and said
/// "not running".
#[test]
fn a_run_in_another_pid_namespace_is_left_alone() {
    let p = Project::new();
    p.write("app.py", "");
    p.sleeper_task_file("[\"*.py\"]", "");
    if !pid_namespaces_allowed() {
        return;
    }
    let run = format!("exec {BIN} run --no-reload");
    let mut sup = crate::util::Sup::spawn_command(
        Command::new("unshare")
            .args(CONTAINER)
            .args(["sh", "-c", &run])
            .current_dir(&p.dir),
    );
    p.wait_starts(1);
    sup.wait_for("started");
    for command in ["status", "stop", "start"] {
        let out = p.output(&[command]);
        assert_eq!(out.status.code(), Some(1), "{command}: {}", out.stderr);
        assert!(
            out.stderr.contains("another PID namespace")
                && out.stderr.contains("run the command there"),
            "{command}: {}",
            out.stderr
        );
        assert!(p.path("reloadsup.pid").exists(), "{command}");
        assert_eq!(p.servers().len(), 1, "{command}");
    }
    // The `run` inside: the child unshare forked.
    let unshare = sup.child.id();
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .unwrap_or_default();
    let inside: i32 = children.split_whitespace().next().unwrap().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(inside), Signal::SIGTERM).unwrap();
    assert_eq!(sup.wait_exit().code(), Some(0), "{}", sup.stderr());
    assert!(p.servers().is_empty());
    assert!(!p.path("reloadsup.pid").exists());
}

/// The other way round: inside a container, a `run` of the host's cannot be seen, nor
/// told from one that has ended: `status`, `stop` and `start` there refuse and say how
/// to clear the files if nothing runs. `stop` there removed the live `run`'s files and
/// said "not running", and `start` started a second server.
#[test]
fn a_run_of_the_host_is_left_alone_from_inside_a_container() {
    let p = Project::new();
    p.write("app.py", "");
    if !pid_namespaces_allowed() {
        return;
    }
    let mut sup = p.start_sleeper("[\"*.py\"]", "");
    for command in ["status", "stop", "start"] {
        let inside = format!("exec {BIN} {command}");
        let out = Command::new("unshare")
            .args(CONTAINER)
            .args(["sh", "-c", &inside])
            .current_dir(&p.dir)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            stderr.contains("cannot be seen from here") && stderr.contains("remove `"),
            "{command}: {stderr}"
        );
        assert!(p.path("reloadsup.pid").exists(), "{command}");
        assert_eq!(p.servers().len(), 1, "{command}");
    }
    ok(&p.output(&["status"]));
    sup.signal(Signal::SIGTERM);
    assert_eq!(sup.wait_exit().code(), Some(0));
}
