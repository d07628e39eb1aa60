//! Browser reload through the real binary: the LiveReload socket, readiness, assets.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::util::{LiveReloadClient, Project, QUIET, free_port};

/// A server that waits 400 ms before it listens on argv[1], then logs its start.
const SLOW_BIND: &str = r#"
import socket, sys, time
time.sleep(0.4)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen()
open("starts.log", "a").write("start\n")
time.sleep(1000)
"#;

/// A project with a slow-binding server, `app.py` restarting it and `static/*.css` as
/// assets. Returns the project, the server's port and the reload port.
fn project(ready: &str) -> (Project, u16, u16) {
    let p = Project::new();
    let (port, reload) = (free_port(), free_port());
    p.write("server.py", SLOW_BIND);
    p.write("app.py", "");
    p.write("static/site.css", "h1 { color: red }");
    let ready = ready.replace("PORT", &port.to_string());
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{port}', '{}']\n{ready}\n\
             [watch]\nfile_dep = ['**/*.py']\n[reload]\nport = {reload}\nassets = ['static/*.css']\n",
            p.token
        ),
    );
    (p, port, reload)
}

#[test]
fn reload_arrives_once_and_only_when_the_new_server_accepts() {
    for ready in ["ready = { port = PORT }", ""] {
        let (p, port, reload) = project(ready);
        let sup = p.start(&["run"]);
        p.wait_starts(1);
        let mut client = LiveReloadClient::connect(reload);
        let saved = Instant::now();
        p.write("app.py", "v = 1\n");
        let message = client.next(Duration::from_secs(10)).expect("a reload");
        let waited = saved.elapsed();
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_ok(),
            "the new server accepts"
        );
        assert!(
            waited >= Duration::from_millis(400),
            "not before the bind ({waited:?})"
        );
        assert_eq!(
            crate::util::standard_fields(message),
            serde_json::json!({"command": "reload", "path": "app.py", "liveCSS": false, "liveImg": false})
        );
        assert_eq!(client.next(QUIET), None, "one reload per restart");
        assert!(
            sup.stderr().contains("reloaded 1 browser(s): app.py"),
            "{}",
            sup.stderr()
        );
    }
}

#[test]
fn css_asset_is_swapped_without_a_restart() {
    let (p, _port, reload) = project("ready = { port = PORT }");
    let sup = p.start(&["run"]);
    p.wait_starts(1);
    sup.wait_for("ready in ");
    let mut client = LiveReloadClient::connect(reload);
    p.write("static/site.css", "h1 { color: blue }");
    let message = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(
        crate::util::standard_fields(message),
        serde_json::json!({"command": "reload", "path": "static/site.css", "liveCSS": true, "liveImg": true})
    );
    p.assert_starts_stay(1);
    assert_eq!(sup.count("restarting"), 0);
    assert!(
        sup.stderr()
            .contains("updated 1 browser(s): static/site.css")
    );
}

#[test]
fn many_clients_are_all_reloaded() {
    let (p, _port, reload) = project("ready = { port = PORT }");
    let sup = p.start(&["run"]);
    p.wait_starts(1);
    sup.wait_for("ready in ");
    let mut clients: Vec<LiveReloadClient> =
        (0..50).map(|_| LiveReloadClient::connect(reload)).collect();
    p.write("app.py", "v = 2\n");
    for client in &mut clients {
        let message = client.next(Duration::from_secs(10)).expect("a reload");
        assert_eq!(message["command"], "reload");
    }
    assert!(
        sup.stderr().contains("reloaded 50 browser(s)"),
        "{}",
        sup.stderr()
    );
}

/// Served on every address (`reload.host = "0.0.0.0"`): the URL printed is one a
/// browser here opens, with a word that the network can connect.
#[test]
fn the_client_script_is_served() {
    let (p, _port, reload) = project("");
    let toml = p
        .read("reload.toml")
        .replace("[reload]\n", "[reload]\nhost = \"0.0.0.0\"\n");
    p.write("reload.toml", &toml);
    let sup = p.start(&["run"]);
    p.wait_starts(1);
    sup.wait_for(&format!(
        "live reload on http://127.0.0.1:{reload}/livereload.js"
    ));
    sup.wait_for("every device on the network can connect");
    let _ = LiveReloadClient::connect(reload);
    let mut stream = TcpStream::connect(("127.0.0.1", reload)).unwrap();
    stream
        .write_all(b"GET /livereload.js HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(
        response
            .to_ascii_lowercase()
            .contains("content-type: text/javascript")
    );
    assert!(response.contains("official-7"));
}

/// A project whose task file asks for a reload port another socket holds: the project,
/// the socket (held while the test runs) and the port.
fn reload_port_taken() -> (Project, TcpListener, u16) {
    let p = Project::new();
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'sleep {}'\n[reload]\nport = {port}\n",
            p.token
        ),
    );
    (p, taken, port)
}

#[test]
fn a_reload_port_in_use_is_an_error() {
    let (p, _taken, port) = reload_port_taken();
    // Nothing is left in the project: the lock file was, 7 runs in 10.
    for _ in 0..3 {
        let out = p.output(&["run"]);
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("cannot listen on 127.0.0.1:{port}"))
                && out.stderr.contains("reload.port"),
            "{}",
            out.stderr
        );
        assert!(p.servers().is_empty(), "nothing started");
        for file in ["reloadsup.pid", "reloadsup.pid.json", "reloadsup.pid.lock"] {
            assert!(!p.path(file).exists(), "{file} is left");
        }
    }
}

/// `run --asset GLOB` (browser-sync's `--files`) reloads browsers with no restart, in
/// ad-hoc mode too: a stylesheet is swapped, anything else reloads the page.
#[test]
fn asset_flag_reloads_browsers_without_a_restart() {
    let p = Project::new();
    let reload = free_port();
    p.write("app.py", "");
    p.write("public/site.css", "h1 { color: red }");
    let reload_port = reload.to_string();
    let command = format!("echo start >> starts.log; exec sleep {}", p.token);
    let sup = p.start(&[
        "run",
        "--reload-port",
        &reload_port,
        "-w",
        "**/*.py",
        "--asset",
        "public/**",
        "--",
        &command,
    ]);
    p.wait_starts(1);
    let mut client = LiveReloadClient::connect(reload);
    p.write("public/site.css", "h1 { color: blue }");
    let message = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(
        crate::util::standard_fields(message),
        serde_json::json!({"command": "reload", "path": "public/site.css", "liveCSS": true, "liveImg": true})
    );
    p.write("public/page.html", "<p>");
    let message = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(message["path"], "public/page.html");
    assert_eq!(message["liveCSS"], false);
    p.assert_starts_stay(1);
    assert_eq!(sup.count("restarting"), 0, "{}", sup.stderr());
    p.write("app.py", "v = 1\n");
    p.wait_starts(2);
}

/// Assets with nothing for browsers to connect to (`--no-reload`, no proxy or site)
/// are said to do nothing: their changes were taken in silence.
#[test]
fn assets_without_reload_are_said_to_do_nothing() {
    let p = Project::new();
    let command = format!("echo start >> starts.log; exec sleep {}", p.token);
    let sup = p.start(&[
        "run",
        "--no-reload",
        "-w",
        "*.py",
        "--asset",
        "public/**",
        "--",
        &command,
    ]);
    sup.wait_for("`reload.assets` (`--asset`) reload browsers, and none can connect");
}

/// An open page's socket costs a few KiB: each read 128 KiB at a time (tungstenite's
/// default buffer), and 2,048 idle sockets held 280 MB.
#[test]
fn idle_sockets_cost_little_memory() {
    let (p, _port, reload) = project("ready = { port = PORT }");
    let sup = p.start(&["run"]);
    p.wait_starts(1);
    sup.wait_for("ready in ");
    let resident = || {
        let status = std::fs::read_to_string(format!("/proc/{}/status", sup.pid())).unwrap();
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
        line.split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    let before = resident();
    let clients: Vec<LiveReloadClient> = (0..300)
        .map(|_| LiveReloadClient::connect(reload))
        .collect();
    let grown = resident().saturating_sub(before);
    assert!(grown < 15_000, "300 sockets took {grown} KiB");
    drop(clients);
}

/// A reload port in use names what set it: `--reload-port` when the flag did (it named
/// the task file's keys, which said nothing of the port), the keys otherwise.
#[test]
fn a_reload_port_in_use_names_the_key_or_flag_that_set_it() {
    let (p, _taken, port) = reload_port_taken();
    let file = p.output(&["run"]);
    p.write(
        "reload.toml",
        &format!("[server]\ncommand = 'sleep {}'\n", p.token),
    );
    let flag = p.output(&["run", "--reload-port", &port.to_string()]);
    for (out, set_by) in [
        (flag, "`--reload-port`"),
        (file, "`reload.port`/`reload.host`"),
    ] {
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr.contains(&format!(
                "cannot listen on 127.0.0.1:{port} (set by {set_by}): "
            )),
            "{}",
            out.stderr
        );
    }
    assert!(p.servers().is_empty(), "nothing started");
}
