//! The server's output relayed through reloadsup (here because of a proxy): the order of
//! its lines across stdout and stderr, on reloadsup's output and on the crash page.

use crate::util::{Project, Sup, free_port, http, wait_until};

/// A server that writes `out N` to stdout and `err N` to stderr by turns, each line
/// with a `write` of its own and nothing buffered, then exits with code 3.
const ALTERNATING: &str = r#"
import os, sys
for n in range(200):
    os.write(1, b"out %d\n" % n)
    os.write(2, b"err %d\n" % n)
sys.exit(3)
"#;

/// A project whose server is `ALTERNATING`, behind a proxy; returns it and the proxy's
/// port.
fn alternating() -> (Project, u16) {
    let p = Project::new();
    let (port, proxy, reload) = (free_port(), free_port(), free_port());
    p.write("app.py", ALTERNATING);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'app.py', '{}']\n\
             [watch]\nfile_dep = ['*.py']\n\
             [reload]\nport = {reload}\n\
             [proxy]\nlisten = \"127.0.0.1:{proxy}\"\nupstream = \"127.0.0.1:{port}\"\n",
            p.token
        ),
    );
    (p, proxy)
}

/// The lines `out N` and `err N` for N in `from..200`, in the order written.
fn written(from: usize) -> Vec<String> {
    (from..200)
        .flat_map(|n| [format!("out {n}"), format!("err {n}")])
        .collect()
}

/// The lines of `text` that are the server's.
fn server_lines(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| line.starts_with("out ") || line.starts_with("err "))
        .map(str::to_string)
        .collect()
}

/// The output's tail on the proxy's crash page, once `complete` says it is.
#[track_caller]
fn crash_page_tail(proxy: u16, complete: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut tail = Vec::new();
    wait_until("the crash page's tail", || {
        tail = page_tail(proxy);
        complete(&tail)
    });
    tail
}

#[track_caller]
fn page_tail(proxy: u16) -> Vec<String> {
    let document = [("Accept", "text/html"), ("Sec-Fetch-Dest", "document")];
    let page = http(proxy, "GET", "/", &document);
    assert_eq!(page.status, 502);
    let text = page.text();
    let Some(start) = text.find("<pre>") else {
        return Vec::new();
    };
    let end = text.find("</pre>").expect("the end of the tail");
    text[start + "<pre>".len()..end]
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn stdout_and_stderr_to_one_place_keep_the_order_written() {
    let (p, proxy) = alternating();
    let sup = Sup::spawn_merged(&p.dir, &["run"]);
    sup.wait_for("exited with code 3");
    sup.wait_for("err 199\n");
    assert_eq!(server_lines(&sup.stderr()), written(0), "{}", sup.stderr());
    let tail = crash_page_tail(proxy, |tail| tail.last().is_some_and(|l| l == "err 199"));
    assert_eq!(tail, written(180));
}

#[test]
fn stdout_and_stderr_apart_stay_apart() {
    let (p, proxy) = alternating();
    let sup = p.start(&["run"]);
    sup.wait_for("exited with code 3");
    sup.wait_for("err 199\n");
    let errors: Vec<String> = (0..200).map(|n| format!("err {n}")).collect();
    assert_eq!(
        server_lines(&sup.stderr()),
        errors,
        "stdout is not on stderr"
    );
    // The order across the two pipes is the relay's best effort: which lines are last
    // depends on when it read them.
    let tail = crash_page_tail(proxy, |tail| tail.len() == 40);
    assert!(
        tail.iter()
            .all(|line| line.starts_with("out ") || line.starts_with("err ")),
        "{tail:?}"
    );
}

/// reloadsup's line saying the server started comes before the server's first line,
/// even from a server that prints at once (the relay holds its output until then).
#[test]
fn the_started_line_comes_before_the_servers_first() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['sh', '-c', 'echo first-line; exec sleep {}']\n\
             ready = {{ log = 'first-line' }}\n\
             [watch]\nfile_dep = ['*.py']\n[reload]\nenabled = false\n",
            p.token
        ),
    );
    for _ in 0..3 {
        let sup = Sup::spawn_merged(&p.dir, &["run"]);
        sup.wait_for("ready in");
        let text = sup.stderr();
        let started = text.find("] started `").expect("the started line");
        let first = text.find("\nfirst-line\n").expect("the server's line");
        assert!(started < first, "{text}");
    }
}

/// A server whose output reloadsup relays writes to a pipe, where cargo, rustc and
/// Node's tools drop their colours: while reloadsup colours its own lines, the server
/// is told to keep them (unless the environment or `[server] env` says otherwise), and
/// not when reloadsup's are plain.
#[test]
fn a_relayed_server_keeps_its_colours_when_reloadsup_has_them() {
    for (color, env, expected) in [
        ("always", "", "always|1|1"),
        (
            "always",
            "env = { CARGO_TERM_COLOR = \"never\" }\n",
            "never|1|1",
        ),
        ("never", "", "||"),
    ] {
        let p = Project::new();
        p.write(
            "reload.toml",
            &format!(
                "[server]\ncommand = '''printf '%s|%s|%s' \"$CARGO_TERM_COLOR\" \"$FORCE_COLOR\" \
                 \"$CLICOLOR_FORCE\" > vars.txt; echo serving; exec sleep {}'''\n{env}\
                 ready = {{ log = \"serving\" }}\n[watch]\nfile_dep = ['*.py']\n",
                p.token
            ),
        );
        let sup = Sup::spawn_command(
            std::process::Command::new(crate::util::BIN)
                .args(["--color", color, "run", "--no-reload"])
                .current_dir(&p.dir)
                .env_remove("CARGO_TERM_COLOR")
                .env_remove("FORCE_COLOR")
                .env_remove("CLICOLOR_FORCE")
                .env("TERM", "xterm")
                .env_remove("COLORTERM"),
        );
        sup.wait_for("ready in ");
        assert_eq!(p.read("vars.txt"), expected, "--color {color} {env}");
    }
    // On a terminal (`script` makes one): with stdout there too, and with stdout sent
    // to a file, where the server's colours would be escape codes in the file.
    if !crate::util::can_make_a_terminal() {
        return;
    }
    for (redirect, expected) in [("", "always|1|1"), (" > out.txt", "||")] {
        let p = Project::new();
        p.write(
            "reload.toml",
            &format!(
                "[server]\ncommand = '''printf '%s|%s|%s' \"$CARGO_TERM_COLOR\" \"$FORCE_COLOR\" \
                 \"$CLICOLOR_FORCE\" > vars.txt; echo serving; exec sleep {}'''\n\
                 ready = {{ log = \"serving\" }}\n[watch]\nfile_dep = ['*.py']\n",
                p.token
            ),
        );
        let line = format!("{} run --no-reload{redirect}", crate::util::BIN);
        let _sup = Sup::spawn_command(
            std::process::Command::new("script")
                .args(["-qec", &line, "/dev/null"])
                .current_dir(&p.dir)
                .env_remove("CARGO_TERM_COLOR")
                .env_remove("FORCE_COLOR")
                .env_remove("CLICOLOR_FORCE")
                .env_remove("NO_COLOR")
                .env("TERM", "xterm")
                .env_remove("COLORTERM"),
        );
        wait_until("the server's variables", || p.path("vars.txt").exists());
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert_eq!(p.read("vars.txt"), expected, "stdout{redirect}");
    }
}

/// A reader that stops reading (`reloadsup run 2>&1 | less`, scrolled back) holds up
/// the server's output and nothing else: a save still restarts the server, and SIGTERM
/// still stops everything at once. reloadsup sat in a write of its status line, with
/// the server stopped for the restart and not started again, and no signal heard; with
/// the relay (`ready = { log }`) as without it.
#[test]
fn a_reader_that_stops_reading_holds_up_no_restart_and_no_signal() {
    for ready in ["", "ready = { log = 'start' }"] {
        let p = Project::new();
        p.write("app.py", "v = 0\n");
        p.write(
            "reload.toml",
            &format!(
                "[server]\ncommand = '''echo start >> starts.log; echo start; \
                 head -c 300000 /dev/zero | tr '\\0' x; exec sleep {}'''\n{ready}\n\
                 [watch]\nfile_dep = ['app.py']\n",
                p.token
            ),
        );
        let (mut sup, _unread) = Sup::spawn_unread(&p.path(""), &["run", "--no-reload"]);
        p.wait_starts(1);
        std::thread::sleep(std::time::Duration::from_millis(500));
        p.write("app.py", "v = 1\n");
        p.wait_starts(2);
        p.write("app.py", "v = 2\n");
        p.wait_starts(3);
        let asked = std::time::Instant::now();
        sup.signal(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(sup.wait_exit().code(), Some(0), "{ready}");
        assert!(
            asked.elapsed() < std::time::Duration::from_secs(3),
            "{ready}: {:?}",
            asked.elapsed()
        );
    }
}

/// With stdout and stderr apart (`reloadsup run | less`, stderr on the terminal), a
/// reader that stops reading stdout holds up the server's stdout alone: its stderr (a
/// Python server's request log) is relayed on. One relay reads both, and it sat in the
/// write to stdout.
#[test]
fn a_paused_stdout_holds_up_no_stderr() {
    let p = Project::new();
    p.write("app.py", "v = 0\n");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = '''echo start >> starts.log; echo start; \
             head -c 400000 /dev/zero | tr '\\0' x; echo; echo said on std\"\"err >&2; \
             exec sleep {}'''\nready = {{ log = 'start' }}\n\
             [watch]\nfile_dep = ['app.py']\n",
            p.token
        ),
    );
    let (mut sup, _unread) = Sup::spawn_stdout_unread(&p.path(""), &["run", "--no-reload"]);
    p.wait_starts(1);
    sup.wait_for("said on stderr");
    sup.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(sup.wait_exit().code(), Some(0));
}

/// A status line comes before what the app loop does next: `restarting` (and
/// `stopping`) before the old server's own words on its stop signal, in a file as on a
/// terminal. Queued for a writer thread, the line was overtaken by the signal's answer
/// in about one restart in six.
#[test]
fn a_status_line_comes_before_the_server_answers_what_follows_it() {
    let p = Project::new();
    let output = p.path("out.log");
    let server = format!(
        "trap 'echo got-term; exit 0' TERM; echo armed; while :; do sleep 0.05; done # {}",
        p.token
    );
    let args = ["run", "--no-reload", "-w", "x", "--", &server];
    let mut sup = Sup::spawn_into(&p.path(""), &args, &output);
    // Whole lines: the command, in the status lines, holds the words too.
    let count = |line: &str| {
        std::fs::read_to_string(&output)
            .unwrap_or_default()
            .lines()
            .filter(|l| *l == line)
            .count()
    };
    wait_until("the first start", || count("armed") == 1);
    for n in 1..=20 {
        sup.signal(nix::sys::signal::Signal::SIGUSR1);
        wait_until("the restart", || count("armed") == n + 1);
    }
    sup.signal(nix::sys::signal::Signal::SIGINT);
    sup.wait_exit();
    let text = std::fs::read_to_string(&output).unwrap();
    let mut said = 0;
    for line in text.lines() {
        if line.contains("restarting") || line.contains("stopping") {
            said += 1;
        } else if line == "got-term" {
            assert!(
                said > 0,
                "a server's answer before its status line:\n{text}"
            );
            said -= 1;
        }
    }
    assert_eq!(count("got-term"), 21, "{text}");
}

/// `reloadsup run` in `p` (whose `server.py` is its server, ready at `Serving on`),
/// with its output read slowly: 4 KiB every 10 ms, about 400 KB a second (one write of
/// what the relay held took longer than a reader that reads nothing is given, and the
/// end of the output was lost). The reader returns everything read, once `run` and its
/// server have closed the pipe.
fn run_read_slowly(p: &Project) -> (Sup, std::thread::JoinHandle<String>) {
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{}']\n\
             ready = {{ log = 'Serving on' }}\n[watch]\nfile_dep = ['x.txt']\n",
            p.token
        ),
    );
    let (sup, unread) = Sup::spawn_unread(&p.path(""), &["run", "--no-reload"]);
    let reader = std::thread::spawn(move || {
        use std::io::Read;
        let mut pipe = std::fs::File::from(unread);
        let mut all = Vec::new();
        let mut buffer = vec![0u8; 4 * 1024];
        loop {
            match pipe.read(&mut buffer) {
                Ok(0) | Err(_) => return String::from_utf8_lossy(&all).into_owned(),
                Ok(n) => all.extend_from_slice(&buffer[..n]),
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
    });
    (sup, reader)
}

/// With a slow reader (a terminal over a slow link, a pager read page by page), an
/// ended server's last lines and what reloadsup says of its end are all written at
/// the end of `run`: what the relay held, the server's answer to SIGTERM among it, was
/// lost, and so, when one write of it to the slow reader outlasted the time a reader
/// that reads nothing is given, was the status line after it.
#[test]
fn a_slow_reader_gets_the_last_lines_and_the_end() {
    let p = Project::new();
    p.write(
        "server.py",
        "import signal, sys\n\
         def bye(*_):\n    print('srv: TERM reply', flush=True)\n    sys.exit(0)\n\
         signal.signal(signal.SIGTERM, bye)\n\
         print('Serving on :1', flush=True)\n\
         for n in range(20000):\n    print('line %07d ' % n + 'x' * 40)\n\
         sys.stdout.flush()\n\
         signal.pause()\n",
    );
    let (mut sup, reader) = run_read_slowly(&p);
    std::thread::sleep(std::time::Duration::from_millis(1500));
    sup.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(sup.wait_exit().code(), Some(0));
    let text = reader.join().unwrap();
    let last = &text[text.len().saturating_sub(600)..];
    let reply = text
        .find("srv: TERM reply")
        .unwrap_or_else(|| panic!("the server's last line: {last}"));
    let ended = text.rfind("[reloadsup] server (pid");
    assert!(ended.is_some(), "its end said: {last}");
    assert!(reply > 0);
}

/// With a slow reader, a restarted server's output comes after all of the old one's:
/// the old relay held its last lines, the new one's went first.
#[test]
fn a_slow_reader_gets_each_servers_output_in_turn() {
    let p = Project::new();
    p.write(
        "server.py",
        "import os, signal, sys\n\
         me = os.getpid()\n\
         def bye(*_):\n    print('%d TERM reply' % me, flush=True)\n    sys.exit(0)\n\
         signal.signal(signal.SIGTERM, bye)\n\
         print('Serving on :1', flush=True)\n\
         for n in range(20000):\n    print('%d line %07d ' % (me, n) + 'x' * 30)\n\
         sys.stdout.flush()\n\
         signal.pause()\n",
    );
    let (mut sup, reader) = run_read_slowly(&p);
    std::thread::sleep(std::time::Duration::from_millis(300));
    sup.signal(nix::sys::signal::Signal::SIGUSR1);
    std::thread::sleep(std::time::Duration::from_millis(5000));
    sup.signal(nix::sys::signal::Signal::SIGTERM);
    assert_eq!(sup.wait_exit().code(), Some(0));
    let text = reader.join().unwrap();
    // The servers in the order their first line came, and where each one's lines are.
    let mut servers: Vec<(String, usize, usize)> = Vec::new();
    for (at, line) in text.lines().enumerate() {
        let Some((pid, _)) = line.split_once(' ') else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        match servers.iter_mut().find(|(p, _, _)| p == pid) {
            Some(server) => server.2 = at,
            None => servers.push((pid.to_string(), at, at)),
        }
    }
    assert_eq!(servers.len(), 2, "two servers' lines");
    let (old, new) = (&servers[0], &servers[1]);
    assert!(
        old.2 < new.1,
        "the old server's last line (line {}) after the new one's first (line {})",
        old.2,
        new.1
    );
    assert!(text.contains(&format!("{} TERM reply", old.0)));
}

/// A server that prints its readiness with no newline (a prompt) and waits there is
/// seen to be ready, and its line is shown; reloadsup's status line after it starts on
/// a line of its own. The line waited for its end: readiness was never reported, and
/// a progress bar redrawn with `\r` showed nothing until it was done.
#[test]
fn a_line_without_its_end_is_shown_and_matched() {
    let p = Project::new();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = '''printf 'building 50%%'; sleep 0.2; \
             printf '\\rbuilding 100%%\\nwaiting for requests'; exec sleep {}'''\n\
             ready = {{ log = \"^waiting for requests\" }}\n[watch]\nfile_dep = ['*.py']\n",
            p.token
        ),
    );
    let sup = Sup::spawn_merged(&p.dir, &["run", "--no-reload"]);
    sup.wait_for("ready in ");
    let output = sup.stderr();
    assert!(
        output.contains("building 50%\rbuilding 100%\nwaiting for requests\n[reloadsup] ready in "),
        "{output:?}"
    );
}
