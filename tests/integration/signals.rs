//! Signals to reloadsup while it stops the server for good: a Ctrl-C kills the server at
//! once, a repeated SIGTERM leaves the graceful stop to run its course; and while a
//! build step runs: it ends at once, and no server starts.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::util::{Project, Sup};

/// A started project whose server ignores SIGTERM, given `stop_timeout`.
fn stubborn(stop_timeout: &str) -> (Project, Sup) {
    stubborn_with(stop_timeout, "")
}

/// As `stubborn`, with `extra` lines in `[server]`.
fn stubborn_with(stop_timeout: &str, extra: &str) -> (Project, Sup) {
    let p = Project::new();
    p.write(
        "server.py",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n\
         open('starts.log', 'a').write('start\\n')\ntime.sleep(1000)\n",
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{}']\n\
             stop_timeout = \"{stop_timeout}\"\n{extra}\n[watch]\nfile_dep = [\"app.py\"]\n",
            p.token
        ),
    );
    let sup = p.start(&["run", "--no-reload"]);
    p.wait_starts(1);
    (p, sup)
}

/// The line reporting how the server's stop ended.
fn stop_line(sup: &Sup) -> String {
    let stderr = sup.stderr();
    let line = stderr
        .lines()
        .rev()
        .find(|line| line.contains("server (pid "));
    line.expect("a stop line").to_string()
}

#[test]
fn a_ctrl_c_while_stopping_kills_the_server_at_once() {
    assert_ctrl_c_kills_at_once(Signal::SIGINT, 130);
    assert_ctrl_c_kills_at_once(Signal::SIGTERM, 0);
}

/// Stops a stubborn server with `first`, then presses Ctrl-C: the server is killed at
/// once, said so, and reloadsup exits with `code` (`first`'s).
#[track_caller]
fn assert_ctrl_c_kills_at_once(first: Signal, code: i32) {
    let (p, mut sup) = stubborn("20s");
    let began = Instant::now();
    sup.signal(first);
    sup.wait_for("stopping");
    sup.signal(Signal::SIGINT);
    assert_eq!(sup.wait_exit().code(), Some(code), "{}", sup.stderr());
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "long before the grace ran out"
    );
    assert!(
        sup.stderr().contains("killing the server now"),
        "{}",
        sup.stderr()
    );
    let line = stop_line(&sup);
    assert!(line.contains("killed with SIGKILL at a Ctrl-C "), "{line}");
    assert!(line.contains(" ms after SIGTERM, in "), "{line}");
    assert!(
        !line.contains("did not stop within"),
        "no grace ran out: {line}"
    );
    assert!(p.servers().is_empty());
}

#[test]
fn a_second_sigterm_leaves_the_graceful_stop_alone() {
    let (p, mut sup) = stubborn("1s");
    let began = Instant::now();
    sup.signal(Signal::SIGTERM);
    sup.wait_for("stopping");
    sup.signal(Signal::SIGTERM);
    sup.wait_for("still stopping; a Ctrl-C kills the server at once");
    assert_eq!(sup.wait_exit().code(), Some(0), "{}", sup.stderr());
    assert!(
        began.elapsed() >= Duration::from_secs(1),
        "the grace was given"
    );
    assert!(!sup.stderr().contains("killing the server now"));
    let line = stop_line(&sup);
    assert!(
        line.contains("did not stop within 1s of SIGTERM; killed with SIGKILL"),
        "{line}"
    );
    assert!(p.servers().is_empty());
}

/// A stop signal during a long build step (`[[task]]` at start-up, or after a change)
/// ends the step at once, and no server is started only to be stopped.
#[test]
fn a_stop_during_a_build_step_ends_it_and_starts_no_server() {
    let p = Project::new();
    p.write("style.scss", "a {}\n");
    let step = format!("{}9", p.token);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'echo start >> starts.log; exec sleep {}'\n\
             [watch]\nfile_dep = [\"app.py\"]\n\
             [[task]]\nname = \"build\"\nfile_dep = [\"*.scss\"]\nactions = [\"sleep {step}\"]\n",
            p.token
        ),
    );
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        let mut sup = p.start(&["run", "--no-reload"]);
        crate::util::wait_until("the build step", || {
            !crate::util::processes_with(&step).is_empty()
        });
        let asked = Instant::now();
        sup.signal(signal);
        sup.wait_exit();
        assert!(
            asked.elapsed() < Duration::from_secs(3),
            "{signal}: {:?}",
            asked.elapsed()
        );
        assert!(crate::util::processes_with(&step).is_empty(), "{signal}");
        assert!(!sup.stderr().contains("started `"), "{}", sup.stderr());
        assert_eq!(p.lines("starts.log"), 0);
    }
}

#[test]
fn a_stop_cancels_the_pending_readiness_warning() {
    // Never ready; the stop (2 s of grace) outlasts the readiness timeout (1 s).
    let (p, mut sup) = stubborn_with(
        "2s",
        "ready = { log = \"a line it never prints\" }\nready_timeout = \"1s\"",
    );
    sup.signal(Signal::SIGINT);
    assert_eq!(sup.wait_exit().code(), Some(130), "{}", sup.stderr());
    let stderr = sup.stderr();
    let stopping = stderr.find("stopping").expect("a stop");
    assert!(
        !stderr[stopping..].contains("is not ready after"),
        "no readiness warning once stopping:\n{stderr}"
    );
    assert!(
        stop_line(&sup).contains("did not stop within 2s"),
        "the stop outlasted the readiness timeout:\n{stderr}"
    );
    assert!(p.servers().is_empty());
}

/// A build step's background job that ignores SIGTERM (`a & b & wait` in parallel
/// builds): its shell ends at the stop signal, the job is killed 2 s later all the same.
#[test]
fn a_stop_leaves_nothing_a_build_step_started() {
    let p = Project::new();
    p.write("style.scss", "a {}\n");
    let job = format!("{}8", p.token);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\n[watch]\nfile_dep = [\"app.py\"]\n\
             [[task]]\nname = \"build\"\nfile_dep = [\"*.scss\"]\n\
             actions = [\"sh -c 'trap \\\"\\\" TERM; exec sleep {job}' & wait\"]\n",
            p.token
        ),
    );
    let mut sup = p.start(&["run", "--no-reload"]);
    crate::util::wait_until("the job", || !crate::util::processes_with(&job).is_empty());
    sup.signal(Signal::SIGTERM);
    sup.wait_exit();
    crate::util::wait_until("no job left", || {
        crate::util::processes_with(&job).is_empty()
    });
    assert!(!sup.stderr().contains("started `"), "{}", sup.stderr());
    assert!(!sup.stderr().contains("watching "), "{}", sup.stderr());
}

/// Drives `reloadsup run` on a terminal (a pseudo-terminal): waits for `prompt` in its
/// output, types `typed`, waits for `answer.txt`, then stops it with SIGTERM.
const ON_A_TERMINAL: &str = r#"
import os, pty, signal, sys, time
binary, prompt, typed = sys.argv[1], sys.argv[2].encode(), sys.argv[3].encode()
pid, fd = pty.fork()
if pid == 0:
    os.execv(binary, [binary, "run", "--no-reload"])
seen, deadline = b"", time.time() + 10
while prompt not in seen and time.time() < deadline:
    try:
        seen += os.read(fd, 4096)
    except OSError:
        break
time.sleep(0.3)
os.write(fd, typed + b"\n")
while not os.path.exists("answer.txt") and time.time() < deadline:
    time.sleep(0.05)
os.kill(pid, signal.SIGTERM)
os.waitpid(pid, 0)
"#;

/// A build step may ask a question on the terminal (a prompting `npx`): it gets the
/// answer typed there, instead of being stopped as a background process.
#[test]
fn a_build_step_can_read_the_terminal() {
    let p = Project::new();
    p.write("style.scss", "a {}\n");
    p.write("on_a_terminal.py", ON_A_TERMINAL);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\n[watch]\nfile_dep = [\"app.py\"]\n\
             [[task]]\nname = \"ask\"\nfile_dep = [\"*.scss\"]\n\
             actions = [\"read answer; echo got-$answer > answer.txt\"]\n",
            p.token
        ),
    );
    let status = std::process::Command::new("python3")
        .args([
            "on_a_terminal.py",
            env!("CARGO_BIN_EXE_reloadsup"),
            "task `ask`",
            "hello",
        ])
        .current_dir(&p.dir)
        .status()
        .expect("python3 runs");
    assert!(status.success());
    assert_eq!(p.read("answer.txt"), "got-hello\n");
    assert!(p.servers().is_empty());
}

/// A `reloadsup stop` right as `run` starts finds its signals caught: `run` stops
/// gracefully (exit 0) and leaves no state file, instead of being killed by SIGTERM
/// (it recorded itself before it caught signals).
#[test]
fn a_stop_as_run_starts_is_a_graceful_stop() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'exec sleep {}'\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    for _ in 0..8 {
        let mut sup = p.start(&["run"]);
        let _ = p.output(&["stop"]);
        if sup.child.try_wait().unwrap().is_none() {
            // The stop came before `run` recorded itself: it said "not running".
            std::thread::sleep(Duration::from_millis(300));
            sup.signal(Signal::SIGINT);
        }
        let status = sup.wait_exit();
        assert!(
            status.code().is_some_and(|code| code == 0 || code == 130),
            "{status:?}: {}",
            sup.stderr()
        );
        assert!(!p.path("reloadsup.pid.json").exists());
        assert!(p.servers().is_empty());
    }
}

/// A server that sets the terminal up (raw mode here, as a prompt library or a TUI
/// does) and is stopped or crashes leaves it so: the next server, and the user's shell
/// after reloadsup, got a raw terminal, in which Ctrl-C no longer reached reloadsup.
/// Run on a real terminal (`script` makes one); each server writes down the
/// settings it finds before it sets raw mode.
#[test]
fn the_terminal_is_put_back_after_a_server_changed_it() {
    if !crate::util::can_make_a_terminal() {
        return;
    }
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = '''stty -g <&1 >> modes.log; echo start >> starts.log; \
             exec python3 -c 'import tty, time; tty.setraw(1); print(1, file=open(\"raw.log\", \"a\")); \
             time.sleep(1000)' {}'''\n\
             ready = {{ delay = \"100ms\" }}\n[watch]\nfile_dep = ['*.py']\n\
             [reload]\nenabled = false\n",
            p.token
        ),
    );
    let mut sup = Sup::spawn_command(
        std::process::Command::new("script")
            .args(["-qec", &format!("{} run", crate::util::BIN), "/dev/null"])
            .current_dir(p.path(".")),
    );
    // Each save once the server has set raw mode.
    for n in 1..=2 {
        crate::util::wait_until("raw mode set", || p.lines("raw.log") >= n);
        p.write("app.py", &n.to_string());
    }
    p.wait_starts(3);
    let modes = p.read("modes.log");
    let modes: Vec<&str> = modes.lines().collect();
    assert_eq!(modes.len(), 3, "{modes:?}");
    assert!(
        modes.iter().all(|m| *m == modes[0]),
        "each server found the terminal as the first did: {modes:?}"
    );
    sup.signal(Signal::SIGTERM);
    let _ = sup.wait_exit();
}

/// The state letter of process `pid` (`T` when stopped), from `/proc/PID/stat`.
fn state_of(pid: i32) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|rest| rest.trim_start().chars().next())
        .unwrap_or('?')
}

/// `reloadsup run` on the project's `server.py` (which logs its start to `starts.log`),
/// returned once the server is ready.
fn run_python_server(p: &Project) -> Sup {
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{}']\nready = {{ delay = '50ms' }}\n\
             [watch]\nfile_dep = ['app.py']\n",
            p.token
        ),
    );
    let sup = p.start(&["run", "--no-reload"]);
    p.wait_starts(1);
    sup.wait_for("ready");
    sup
}

/// Ctrl-Z (SIGTSTP) stops the server's group along with reloadsup, and continuing
/// reloadsup (`fg`, `bg`) continues the server: only reloadsup stopped, and the server
/// went on serving and writing over the shell's prompt. Saves made meanwhile restart it
/// once continued.
#[test]
fn ctrl_z_stops_the_server_with_reloadsup_and_fg_continues_both() {
    let p = Project::new();
    let sup = p.start_sleeper("['app.py']", "");
    let server = p.servers()[0];
    sup.signal(Signal::SIGTSTP);
    crate::util::wait_until("the server stopped", || state_of(server) == 'T');
    crate::util::wait_until("reloadsup stopped", || state_of(sup.pid().as_raw()) == 'T');
    p.write("app.py", "x = 1\n");
    sup.signal(Signal::SIGCONT);
    crate::util::wait_until("the server continued", || {
        !matches!(state_of(server), 'T' | '?')
    });
    p.wait_starts(2);
}

/// `stop` beside a `run` suspended with Ctrl-Z continues it, and it stops its server
/// the usual way, at once: it waited 10 s and then killed both with SIGKILL, the server
/// never told to stop.
#[test]
fn stop_beside_a_suspended_run_stops_its_server_gracefully() {
    let p = Project::new();
    p.write(
        "server.py",
        "import signal, sys, time\n\
         signal.signal(signal.SIGTERM, lambda *a: (open('stops.log', 'a').write('term\\n'), sys.exit(0)))\n\
         open('starts.log', 'a').write('start\\n')\ntime.sleep(1000)\n",
    );
    let mut sup = run_python_server(&p);
    sup.signal(Signal::SIGTSTP);
    crate::util::wait_until("reloadsup stopped", || state_of(sup.pid().as_raw()) == 'T');
    let began = Instant::now();
    let stopped = p.output(&["stop"]);
    assert!(stopped.status.success(), "{}", stopped.stderr);
    assert!(!stopped.stderr.contains("SIGKILL"), "{}", stopped.stderr);
    assert_eq!(p.read("stops.log"), "term\n", "told to stop");
    // Not after the grace for a supervisor that does not answer (5 s + 5 s).
    assert!(
        began.elapsed() < Duration::from_secs(9),
        "{:?}: {}",
        began.elapsed(),
        stopped.stderr
    );
    sup.wait_exit();
    assert!(p.servers().is_empty());
}

/// A change of the terminal's window size (SIGWINCH, sent to its foreground group
/// alone) is passed on to the server, so that it can lay out its output anew.
#[test]
fn a_window_size_change_reaches_the_server() {
    let p = Project::new();
    p.write(
        "server.py",
        "import signal, time\n\
         signal.signal(signal.SIGWINCH, lambda *a: open('winch.log', 'a').write('winch\\n'))\n\
         open('starts.log', 'a').write('start\\n')\n\
         while True: time.sleep(1)\n",
    );
    let sup = run_python_server(&p);
    sup.signal(Signal::SIGWINCH);
    crate::util::wait_until("the server heard of it", || p.lines("winch.log") == 1);
}

/// Ctrl-Z while a build step runs stops reloadsup too: the loop waited for the step,
/// which the terminal had stopped with reloadsup's group, and the shell never got its
/// prompt back.
#[test]
fn ctrl_z_during_a_build_step_stops_reloadsup() {
    let p = Project::new();
    p.sleeper_task_file(
        "['app.py']",
        "[[task]]\nname = 'slow'\nfile_dep = ['style.scss']\n\
         actions = ['if [ -f go ]; then touch step.started; sleep 30; fi']\n",
    );
    p.write("style.scss", "");
    let sup = p.start(&["run", "--no-reload"]);
    p.wait_starts(1);
    sup.wait_for("started");
    // Slow from now on (the steps also run before the first start).
    p.write("go", "");
    p.write("style.scss", "a {}\n");
    crate::util::wait_until("the step", || p.path("step.started").exists());
    sup.signal(Signal::SIGTSTP);
    crate::util::wait_until("reloadsup stopped", || state_of(sup.pid().as_raw()) == 'T');
    sup.signal(Signal::SIGCONT);
}
