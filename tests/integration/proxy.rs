//! Proxy mode through the real binary: the dev server behind `[proxy]`, the script
//! injected, requests held across restarts, a 502 page that recovers.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use crate::util::{
    Browser, LiveReloadClient, Project, Sup, assert_injected_for_navigations_only, free_port, http,
};

/// A dev server that renders `templates/index.html` (read at start-up), serves
/// `/static/*`, `/api.json`, `/signup` (a page titled `form` whose form posts to itself,
/// answered by one titled `posted` after 4.5 s; each request logged to `requests.log`),
/// `/untyped` (a page without a `Content-Type`, as Node's `res.end('<h1>…')` sends
/// one; `/untyped-late` sends a blank first and the page 0.2 s later,
/// `/untyped-nosniff` says `X-Content-Type-Options: nosniff`, `/untyped-404` is a 404,
/// `/untyped-far` has 2,000 blanks before its tag) and `/untyped.bin`
/// (bytes without one, no page), a POST to `/submit` (a page headed `submitted`; a GET of it is a 404), `/both` (the
/// same; a GET of it is a page, a HEAD a 501), `/getonly` (as `/both`, a HEAD a 404) or
/// `/validates` (as `/submit`, a GET or HEAD of it a 400), `/walled` (as `/submit`, a
/// GET of it a 403 page, a HEAD a 403), `/page.xhtml` (`templates/page.xhtml`, read at each
/// request), answers a POST to `/late-body` with its head at once and its body 0.6 s
/// later, `/hang` (answered after 5 s, like a long poll; `/hang?s=N` after N), `/strict/NAME` (`templates/NAME`; `header.html` with a policy header that
/// allows nothing but scripts with a nonce, `none.html` with one that allows nothing), answers a POST after half a second (`/slow`: 0.9 s), and `/bomb.html` (a page of [`BOMB_MIB`] MiB, nearly all zeros, gzipped
/// though not asked to), answers any upgrade with 400 (as Node's `ws` does for paths it
/// does not handle; none for 20 s while a file `hang-upgrades` exists; to `/livereload`,
/// its own switch while a file `own-socket` exists), answers `/livereload.js` with its
/// page while a file `spa` exists (a single-page app's fallback), says so and waits `DELAY` seconds before it binds, takes
/// `SLOW_STOP` seconds to stop on SIGTERM, and exits with code 3 when `app.py` says
/// `BROKEN`, after printing a log (coloured, a line redrawn after a carriage return) to
/// stdout without flushing it, and then an error to stderr.
const APP: &str = r#"
import json, os, signal, sys, time, zlib
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
if "BRO" + "KEN" in open("app.py").read():
    for n in range(30):
        print("loading module", n)
    print("\x1b[33mwarning:\x1b[0m colours\r\x1b[33mwarning:\x1b[0m progress redrawn")
    print("config error: boom", file=sys.stderr)
    sys.exit(3)
if "SLOW_STOP" in os.environ:
    signal.signal(signal.SIGTERM, lambda *_: (time.sleep(float(os.environ["SLOW_STOP"])), os._exit(0)))
print("warming up for", os.environ.get("DELAY", "0"), "s", flush=True)
time.sleep(float(os.environ.get("DELAY", "0")))
PAGE = open("templates/index.html", "rb").read()
FORM = b"<!doctype html><html><head><title>%s</title></head><body>" \
    b"<form method=post action=/signup><input name=q value=x></form></body></html>"
class Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.headers.get("Upgrade"):
            if os.path.exists("own-socket") and self.path == "/livereload":
                # A socket of its own there, as python-livereload's.
                self.send_response(101)
                self.send_header("Upgrade", "websocket")
                self.send_header("Connection", "Upgrade")
                self.send_header("X-Own", "1")
                self.end_headers()
                self.wfile.flush()
                time.sleep(2)
                return
            if os.path.exists("hang-upgrades"):
                # As a server that listens for upgrades on its own paths only.
                time.sleep(20)
                return
            # As the `ws` library answers an upgrade it does not handle.
            return self.send_error(400)
        if self.path == "/livereload.js" and os.path.exists("spa"):
            # As a single-page app's fallback: its page for any path.
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            return self.wfile.write(PAGE)
        if self.path == "/":
            body, kind = PAGE, "text/html; charset=utf-8"
        elif self.path == "/page.xhtml":
            body, kind = open("templates/page.xhtml", "rb").read(), "application/xhtml+xml"
        elif self.path.startswith("/strict/"):
            body, kind = open("templates" + self.path[7:], "rb").read(), "text/html"
        elif self.path.startswith("/hang"):
            time.sleep(float(self.path.partition("?s=")[2] or 5))
            body, kind = b"late", "text/plain"
        elif self.path == "/untyped-late":
            # Its first bytes tell nothing yet: a blank, then the page, late.
            self.send_response(200)
            self.send_header("Content-Length", "17")
            self.end_headers()
            self.wfile.write(b" ")
            self.wfile.flush()
            time.sleep(0.2)
            return self.wfile.write(b"<h1>untyped</h1>")
        elif self.path.startswith("/untyped"):
            body = b"\x00\x01<h1>" if self.path == "/untyped.bin" else b"<h1>untyped</h1>"
            if self.path == "/untyped-far":
                body = b" " * 2000 + b"<h1>untyped</h1>"
            self.send_response(404 if self.path == "/untyped-404" else 200)
            if self.path == "/untyped-nosniff":
                self.send_header("X-Content-Type-Options", "nosniff")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        elif self.path == "/validates":
            # As a handler that reads the form's fields from any request.
            return self.send_error(400, "missing field q")
        elif self.path == "/walled":
            # As a page behind a login wall: what the developer needs to see.
            body = b"<!doctype html><html><head></head><body><h1>walled by get</h1></body></html>"
            self.send_response(403)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        elif self.path in ("/both", "/getonly"):
            body, kind = b"<!doctype html><html><head></head><body><h1>%s by get</h1></body></html>" % self.path[1:].encode(), "text/html"
        elif self.path == "/signup":
            open("requests.log", "a").write("GET /signup\n")
            body, kind = FORM % b"form", "text/html"
        elif self.path == "/api.json":
            body, kind = json.dumps({"pid": os.getpid(), "html": "</head>"}).encode(), "application/json"
        elif self.path == "/bomb.html":
            gzip = zlib.compressobj(9, zlib.DEFLATED, 31)
            parts = [gzip.compress(b"<html><head></head><body>")]
            parts += [gzip.compress(bytes(1 << 20)) for _ in range(64)]
            body, kind = b"".join(parts + [gzip.flush()]), "text/html"
        else:
            return super().do_GET()
        self.send_response(200)
        self.send_header("Content-Type", kind)
        if self.path == "/strict/header.html":
            self.send_header("Content-Security-Policy", "default-src 'none'; script-src 'nonce-n1'; style-src 'self'")
        if self.path == "/strict/none.html":
            self.send_header("Content-Security-Policy", "default-src 'none'")
        if self.path == "/bomb.html":
            self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_POST(self):
        time.sleep(0.9 if self.path == "/slow" else 0.5)
        if self.path in ("/submit", "/both", "/getonly", "/validates", "/walled"):
            body = b"<!doctype html><html><head><title>s</title></head><body><h1>submitted</h1></body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        if self.path == "/signup":
            # As slow as a first request that compiles the page.
            time.sleep(4)
            open("requests.log", "a").write("POST /signup\n")
            self.rfile.read(int(self.headers["Content-Length"]))
            body = FORM % b"posted"
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        body = b"saved by %d" % os.getpid()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.path == "/late-body":
            self.wfile.flush()
            time.sleep(0.6)
        self.wfile.write(body)
    def do_HEAD(self):
        if self.path == "/both":
            return self.send_error(501)
        if self.path == "/getonly":
            return self.send_error(404)
        if self.path in ("/validates", "/walled"):
            return self.send_error(400 if self.path == "/validates" else 403)
        super().do_HEAD()
    def do_PUT(self):
        # An answer that streams, of no known length, for 5 s.
        self.send_response(200)
        self.end_headers()
        for _ in range(50):
            self.wfile.write(b"progress\n")
            self.wfile.flush()
            time.sleep(0.1)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

/// How many MiB of zeros `/bomb.html` of [`APP`] decodes to (from about 64 KiB gzipped).
const BOMB_MIB: usize = 64;

fn template(heading: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>t</title>\
         <link rel=\"stylesheet\" href=\"/static/site.css\"></head>\
         <body><h1>{heading}</h1></body></html>"
    )
}

/// The reload port a project's task file sets.
fn reload_port(p: &Project) -> u16 {
    let toml = p.read("reload.toml");
    let line = toml
        .lines()
        .find_map(|l| l.strip_prefix("port = "))
        .expect("a reload port");
    line.trim().parse().expect("a port number")
}

/// A project behind the proxy; returns it, the proxy's port and the running supervisor,
/// once the server is ready.
fn proxied(delay: &str) -> (Project, u16, Sup) {
    let (p, proxy, sup) = proxied_with(&format!("DELAY = \"{delay}\""), "ready_timeout = \"10s\"");
    sup.wait_for("ready in ");
    (p, proxy, sup)
}

/// As `proxied`, with the server's environment (`env`, inline table entries) and more
/// `[server]` lines, returning at once.
fn proxied_with(env: &str, server: &str) -> (Project, u16, Sup) {
    let p = Project::new();
    let (port, proxy, reload) = (free_port(), free_port(), free_port());
    p.write("app.py", APP);
    p.write("templates/index.html", &template("v1"));
    p.write("static/site.css", "h1 { color: rgb(255, 0, 0) }\n");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'app.py', '{port}', '{}']\nenv = {{ {env} }}\n\
             {server}\n\
             [watch]\nfile_dep = ['*.py', 'templates/*.html']\n\
             [reload]\nport = {reload}\nassets = ['static/*.css']\n\
             [proxy]\nlisten = \"127.0.0.1:{proxy}\"\nupstream = \"127.0.0.1:{port}\"\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    (p, proxy, sup)
}

const DOCUMENT: &[(&str, &str)] = &[("Accept", "text/html"), ("Sec-Fetch-Dest", "document")];

/// A page navigation answered with plain text or JSON, which has no place for the
/// script, is said once (axum's hello world answers `text/plain`, and its tab was never
/// reloaded with no word why); a fetch of the same is not.
#[test]
fn a_navigation_answered_with_text_is_said_once() {
    let (_p, proxy, sup) = proxied("0");
    sup.wait_for("ready in ");
    assert_eq!(http(proxy, "GET", "/api.json", &[]).status, 200);
    assert_eq!(
        http(proxy, "GET", "/hang?s=0", &[("Sec-Fetch-Dest", "empty")]).status,
        200
    );
    assert_eq!(http(proxy, "GET", "/", DOCUMENT).status, 200);
    assert_eq!(sup.count("not HTML"), 0, "{}", sup.stderr());
    assert_eq!(http(proxy, "GET", "/hang?s=0", DOCUMENT).status, 200);
    assert_eq!(http(proxy, "GET", "/api.json", DOCUMENT).status, 200);
    sup.wait_for(
        "a page opened through the proxy is `text/plain`, not HTML: it gets no reload script",
    );
    std::thread::sleep(crate::util::QUIET);
    assert_eq!(sup.count("not HTML"), 1, "once: {}", sup.stderr());
}

#[test]
fn pages_get_the_script_and_other_bodies_pass_unchanged() {
    let (_p, proxy, _sup) = proxied("0");
    assert_injected_for_navigations_only(proxy);
    let json = http(proxy, "GET", "/api.json", DOCUMENT);
    assert!(
        json.text().starts_with("{\"pid\": ") && json.text().ends_with("\"html\": \"</head>\"}")
    );
    let script = http(proxy, "GET", "/__reloadsup/livereload.js", &[]);
    assert!(
        script
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
    let foreign = http(proxy, "GET", "/", &[("Host", "evil.example")]);
    assert!(
        matches!(foreign.status, 400 | 403),
        "DNS rebinding refused: {}",
        foreign.status
    );
}

#[test]
fn a_gzip_bomb_is_decoded_and_injected_in_bounded_memory() {
    let (_p, proxy, sup) = proxied("0");
    let page = http(proxy, "GET", "/bomb.html", DOCUMENT);
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-encoding"), None);
    let start = page.body.iter().position(|&b| b == 0).expect("the zeros");
    let (head, zeros) = page.body.split_at(start);
    let head = String::from_utf8_lossy(head);
    assert!(
        head.contains("livereload.js") && head.ends_with("</head><body>"),
        "{head}"
    );
    assert!(
        zeros.len() == BOMB_MIB << 20 && zeros.iter().all(|&b| b == 0),
        "the page arrives whole"
    );
    // The peak of the proxy's resident memory, over its whole life.
    let status = std::fs::read_to_string(format!("/proc/{}/status", sup.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status");
    assert!(
        peak_kib < 100 * 1024,
        "{BOMB_MIB} MiB decoded with a peak of {peak_kib} KiB resident"
    );
}

#[test]
fn no_request_fails_through_five_restarts() {
    let (p, proxy, sup) = proxied("0.3");
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let client = {
        let (stop, ok, failed) = (Arc::clone(&stop), Arc::clone(&ok), Arc::clone(&failed));
        thread::spawn(move || {
            let mut failures = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let response = http(proxy, "GET", "/api.json", &[]);
                if response.status == 200 && response.text().contains("\"pid\"") {
                    ok.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                    failures.push(format!("{} {}", response.status, response.text()));
                }
            }
            failures
        })
    };
    for n in 1..=5 {
        let before = ok.load(Ordering::Relaxed);
        p.write("templates/index.html", &template(&format!("v{}", n + 1)));
        sup.wait_for_n("ready in ", n + 1);
        // The client goes on asking the new server before the next restart.
        crate::util::wait_until("requests to the new server", || {
            ok.load(Ordering::Relaxed) >= before + 3
        });
    }
    stop.store(true, Ordering::Relaxed);
    let failures = client.join().unwrap();
    assert_eq!(
        failed.load(Ordering::Relaxed),
        0,
        "failed requests: {failures:?}"
    );
    assert!(ok.load(Ordering::Relaxed) >= 15, "the client kept asking");
    assert_eq!(sup.count("restarting"), 5);
}

#[test]
fn a_post_the_server_is_working_on_is_answered_before_a_restart_stops_it() {
    let (p, proxy, sup) = proxied("0");
    let post = thread::spawn(move || http(proxy, "POST", "/form", &[("Content-Length", "0")]));
    // The server has it, and takes half a second to answer, when the save comes.
    thread::sleep(Duration::from_millis(150));
    p.write("templates/index.html", &template("v2"));
    let answer = post.join().expect("the request thread");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().starts_with("saved by "), "{}", answer.text());
    sup.wait_for_n("ready in ", 2);
    assert_eq!(sup.count("restarting"), 1);
}

/// The server has sent the head of a POST's answer, not yet its body, when the save
/// comes: the restart waits for the whole answer.
#[test]
fn a_posts_answer_whose_body_comes_late_is_whole_across_a_restart() {
    let (p, proxy, sup) = proxied("0");
    let post = thread::spawn(move || http(proxy, "POST", "/late-body", &[("Content-Length", "0")]));
    // The head comes after 0.5 s, the body 0.6 s after that.
    thread::sleep(Duration::from_millis(750));
    p.write("templates/index.html", &template("v2"));
    let answer = post.join().expect("the request thread");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(
        answer.text().starts_with("saved by "),
        "{:?}",
        answer.text()
    );
    sup.wait_for_n("ready in ", 2);
}

/// Waits for the restart's server to be ready, and returns how long the restart took
/// (from its `restart took N ms` line).
fn restart_took(sup: &Sup) -> u64 {
    sup.wait_for_n("ready in ", 2);
    let stderr = sup.stderr();
    stderr
        .split("restart took ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|ms| ms.parse().ok())
        .unwrap_or_else(|| panic!("a restart time in:\n{stderr}"))
}

/// How long a restart takes (ms) when a save comes `after` the request head `head`
/// (its `Host` line added) went to the proxy, the request still open.
fn restart_with_request_open(head: &str, after: Duration) -> u64 {
    let (p, proxy, sup) = proxied("0");
    let mut open = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
    write!(open, "{head}\r\nHost: 127.0.0.1:{proxy}\r\n\r\n").unwrap();
    thread::sleep(after);
    p.write("templates/index.html", &template("v2"));
    restart_took(&sup)
}

/// A request body sent with a transfer coding besides `chunked` (`gzip, chunked`): hyper
/// takes off the `chunked` alone, and the body went on with the other coding's name
/// lost (the server took gzip bytes for a form). RFC 9112 answers it with 501.
#[test]
fn a_request_with_a_transfer_coding_the_proxy_cannot_decode_gets_501() {
    use std::io::Read as _;
    let (_p, proxy, _sup) = proxied("0");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
    write!(
        stream,
        "POST /form HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 501 "), "{answer}");
    assert!(answer.contains("transfer coding `gzip`"), "{answer}");
    // Plain `chunked` goes on.
    let plain = http(proxy, "POST", "/form", &[("Transfer-Encoding", "chunked")]);
    assert_eq!(plain.status, 200, "{}", plain.text());
}

/// A PDF or an image opened in a tab is a navigation, but no page: it keeps its
/// validators (and `Range`), so the server can answer 304; a page's are taken off, so
/// the browser's untagged copy from a `fetch` never comes back as the page.
#[test]
fn a_navigation_to_a_file_that_is_no_page_keeps_its_validators() {
    let (p, proxy, _sup) = proxied("0");
    std::fs::write(p.path("static/report.pdf"), b"%PDF-1.4 x").unwrap();
    let later = [
        ("Accept", "text/html"),
        ("Sec-Fetch-Dest", "document"),
        ("If-Modified-Since", "Fri, 01 Jan 2100 00:00:00 GMT"),
    ];
    let pdf = http(proxy, "GET", "/static/report.pdf", &later);
    assert_eq!(pdf.status, 304, "{}", pdf.text());
    p.write("static/page.html", &template("static"));
    let page = http(proxy, "GET", "/static/page.html", &later);
    assert_eq!(page.status, 200, "{}", page.text());
}

/// A request body whose chunked framing is malformed is the request's fault: 400, not
/// the 502 page saying the dev server did not answer.
#[test]
fn a_malformed_chunked_request_body_gets_400() {
    let (_p, proxy, _sup) = proxied("0");
    let answer = raw_exchange(
        proxy,
        &format!(
            "POST /form HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\n\
             Transfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\nabc\r\n0\r\n\r\n"
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("body was malformed"), "{answer}");
}

/// A request that cannot be resent, whose answer streams: its wait ends with the head,
/// as the stream would be cut off after the wait all the same.
#[test]
fn a_streaming_answer_does_not_hold_up_a_restart() {
    let took = restart_with_request_open(
        "PUT /upload HTTP/1.1\r\nContent-Length: 0",
        Duration::from_millis(300),
    );
    assert!(took < 2500, "the restart waited for the stream: {took} ms");
}

#[test]
fn a_get_the_server_holds_does_not_hold_up_a_restart() {
    // A long poll: the server has it and answers in 5 s. Cut off by the stop, it is
    // sent again to the next server, so the restart need not wait for it.
    let took = restart_with_request_open("GET /hang HTTP/1.1", Duration::from_millis(150));
    assert!(took < 2500, "the restart waited for the poll: {took} ms");
}

#[test]
fn a_ctrl_c_during_a_restarts_wait_starts_no_new_server() {
    // On a loaded machine the saves below can outlast the wait, and the new server
    // start before the Ctrl-C is sent: such a run shows nothing, and is tried again.
    for _ in 0..5 {
        let (p, proxy, mut sup) = proxied("0");
        let post = thread::spawn(move || http(proxy, "POST", "/slow", &[("Content-Length", "0")]));
        thread::sleep(Duration::from_millis(150));
        p.write("templates/index.html", &template("v2"));
        // While the restart waits (most of a second) for the old server's answer: many
        // saves (events the loop meets before the signal's), then Ctrl-C.
        thread::sleep(Duration::from_millis(50));
        for n in 0..400 {
            p.write(&format!("extra{n}.py"), "x = 1\n");
        }
        let started_before = sup.count("started `");
        sup.signal(nix::sys::signal::Signal::SIGINT);
        assert_eq!(sup.wait_exit().code(), Some(130), "{}", sup.stderr());
        let _ = post.join();
        if started_before > 1 {
            continue;
        }
        assert_eq!(
            sup.count("started `"),
            1,
            "no server after Ctrl-C: {}",
            sup.stderr()
        );
        return;
    }
    panic!("the Ctrl-C never came during the restart's wait in five tries");
}

#[test]
fn a_crash_gives_the_502_page_which_recovers() {
    let (p, proxy, sup) = proxied("0");
    let mut page_socket = LiveReloadClient::connect_vendor(reload_port(&p));
    p.write("app.py", &format!("{APP}\n# BROKEN\n"));
    sup.wait_for("exited with code 3");
    // Open pages are told why on their badge, in the line of output that says it,
    // printed just before the exit.
    let failed = std::iter::from_fn(|| page_socket.next(Duration::from_secs(10)))
        .find(|m| m["state"] == "failed")
        .expect("a failed status");
    assert_eq!(
        failed["message"], "exited with code 3: config error: boom",
        "{failed}"
    );
    let page = http(proxy, "GET", "/", DOCUMENT);
    assert_eq!(page.status, 502);
    let text = page.text();
    assert!(text.contains("exited with code 3"), "{text}");
    assert!(text.contains("python3 app.py"), "the command: {text}");
    // The tail in the order the server wrote it: the log, then the error, though
    // Python's stdout to a pipe is block-buffered and the two streams are read apart.
    let log = text.find("loading module 29").expect("the log");
    let warning = text
        .find("warning: progress redrawn")
        .expect("the shown line");
    let error = text.find("config error: boom").expect("the error");
    assert!(
        log < warning && warning < error,
        "the output's tail: {text}"
    );
    assert!(
        !text.contains('\u{1b}') && !text.contains("colours"),
        "escape sequences and overwritten text are gone: {text}"
    );
    assert!(
        text.contains("/__reloadsup/livereload.js"),
        "the page reloads itself"
    );
    // No server to ask: a page's own `/livereload.js` comes from the hub.
    let script = http(proxy, "GET", "/livereload.js", &[]);
    assert_eq!(script.status, 200, "{}", script.text());
    // A form's POST: the page must not reload itself, which would post it again.
    let post = http(proxy, "POST", "/form", DOCUMENT);
    assert_eq!(post.status, 502);
    let text = post.text();
    assert!(text.contains("exited with code 3"), "{text}");
    assert!(!text.contains("livereload"), "no reload client: {text}");
    assert!(text.contains("would send this POST again"), "{text}");
    p.write("app.py", APP);
    sup.wait_for_n("ready in ", 2);
    let page = http(proxy, "GET", "/", DOCUMENT);
    assert_eq!(page.status, 200);
    assert!(page.text().contains("<h1>v1</h1>"));
}

#[test]
fn a_server_ready_late_is_explained_then_reloaded_into() {
    let (_p, proxy, sup) = proxied_with("DELAY = \"4\"", "ready_timeout = \"500ms\"");
    let mut page = LiveReloadClient::connect_at(proxy, "/__reloadsup/livereload");
    sup.wait_for("the server is not ready after 500ms");
    // The page is made when asked for, with the output as it is then (the server's
    // first line may come after the timeout).
    let mut early = None;
    crate::util::wait_until("the 502 page with the server's output", || {
        let asked = Instant::now();
        let page = http(proxy, "GET", "/", DOCUMENT);
        assert!(
            asked.elapsed() < Duration::from_millis(1500),
            "answered at once, not after retries: {:?}",
            asked.elapsed()
        );
        assert_eq!(page.status, 502, "{}", page.text());
        let text = page.text();
        early = Some(text.clone());
        text.contains("warming up for 4 s")
    });
    let text = early.unwrap();
    for expected in [
        "502: the dev server is not ready",
        "python3 app.py",
        "is not ready after 500ms, and connecting to",
        "/__reloadsup/livereload.js",
    ] {
        assert!(text.contains(expected), "no {expected:?} in:\n{text}");
    }
    // The probe goes on: once the server listens, the page is told to reload, and
    // reloads into the real one.
    let reload = page
        .next(Duration::from_secs(15))
        .expect("a reload once the server is up");
    assert_eq!(reload["command"], "reload", "{reload}");
    sup.wait_for("ready in ");
    assert!(sup.stderr().contains(", late"), "{}", sup.stderr());
    // No change or request caused it (it said `restart requested`).
    sup.wait_for("reloaded 1 browser(s): the first start, ready late");
    let real = http(proxy, "GET", "/", DOCUMENT);
    assert_eq!(real.status, 200);
    assert!(real.text().contains("<h1>v1</h1>"));
}

#[test]
fn a_request_is_held_through_a_slow_stop() {
    let (p, proxy, sup) = proxied_with(
        "SLOW_STOP = \"3.5\"",
        "stop_timeout = \"6s\"\nready_timeout = \"2s\"",
    );
    sup.wait_for("ready in ");
    p.write("templates/index.html", &template("v2"));
    sup.wait_for("restarting");
    // The old server takes 3.5 s to stop, longer than the new one's readiness
    // timeout: the request waits for the new server all the same.
    let asked = Instant::now();
    let page = http(proxy, "GET", "/", DOCUMENT);
    assert_eq!(page.status, 200, "{}", page.text());
    assert!(page.text().contains("<h1>v2</h1>"), "{}", page.text());
    assert!(
        asked.elapsed() >= Duration::from_millis(2500),
        "held through the stop: {:?}",
        asked.elapsed()
    );
}

#[test]
fn another_program_on_the_upstream_port_is_warned_about() {
    let p = Project::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = taken.local_addr().unwrap().to_string();
    let (listen, sleep) = (
        format!("127.0.0.1:{}", free_port()),
        format!("sleep {}", p.token),
    );
    let sup = p.start(&[
        "run",
        "--no-reload",
        "--proxy",
        &listen,
        "--upstream",
        &upstream,
        "--",
        &sleep,
    ]);
    sup.wait_for(&format!(
        "something else already listens on {upstream} before the server starts"
    ));
}

#[test]
fn a_real_browser_through_the_proxy_with_no_snippet() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (p, proxy, sup) = proxied("0");
    browser.open(&format!("http://127.0.0.1:{proxy}/"));
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write("templates/index.html", &template("v2"))
    });
    sup.wait_for("reloaded 1 browser(s)");
    browser.assert_css_swapped(&sup, || {
        p.write("static/site.css", "h1 { color: rgb(0, 0, 255) }\n")
    });
}

/// A page of its own with python-livereload's snippet, `<script src="/livereload.js">`,
/// for [`APP`]'s `/strict/own.html`.
fn own_snippet_page(heading: &str) -> String {
    format!(
        "<!doctype html><html><head><title>t</title><script src=\"/livereload.js\"></script>\
         </head><body><h1>{heading}</h1></body></html>"
    )
}

/// A page sent without a `Content-Type`, which a browser sniffs as HTML, gets the tag
/// (as a navigation only); untyped bytes that are no page pass unchanged.
#[test]
fn an_untyped_page_gets_the_script_and_untyped_bytes_pass() {
    let (_p, proxy, _sup) = proxied("0");
    let page = http(proxy, "GET", "/untyped", DOCUMENT);
    assert_eq!(page.status, 200);
    assert!(
        page.text().contains("/__reloadsup/livereload.js"),
        "{}",
        page.text()
    );
    assert!(
        page.text().starts_with("<h1>untyped</h1>"),
        "{}",
        page.text()
    );
    assert_eq!(page.header("content-type"), Some("text/html"));
    let fetched = http(proxy, "GET", "/untyped", &[("Sec-Fetch-Dest", "empty")]);
    assert_eq!(fetched.body, b"<h1>untyped</h1>");
    let bytes = http(proxy, "GET", "/untyped.bin", DOCUMENT);
    assert_eq!(bytes.body, b"\x00\x01<h1>");
    assert_eq!(bytes.header("content-type"), None);
    let late = http(proxy, "GET", "/untyped-late", DOCUMENT);
    assert!(
        late.text().starts_with(" <h1>untyped</h1>"),
        "{}",
        late.text()
    );
    assert!(
        late.text().contains("/__reloadsup/livereload.js"),
        "{}",
        late.text()
    );
    // Shown as text by the browser: left so.
    let nosniff = http(proxy, "GET", "/untyped-nosniff", DOCUMENT);
    assert_eq!(nosniff.body, b"<h1>untyped</h1>");
    assert_eq!(nosniff.header("content-type"), None);
    let far = http(proxy, "GET", "/untyped-far", DOCUMENT);
    assert_eq!(far.header("content-type"), None);
    assert!(!far.text().contains("/__reloadsup/"));
    // An error page is a page too.
    let missing = http(proxy, "GET", "/untyped-404", DOCUMENT);
    assert_eq!(missing.status, 404);
    assert!(
        missing.text().contains("/__reloadsup/livereload.js"),
        "{}",
        missing.text()
    );
}

/// A page with a hand-written `<script src="/livereload.js">` gets no tag of ours (it
/// has a client), and the dev server has no such file: the proxy answers the protocol's
/// own paths, script and socket, where the server's answer is a 404, so the page
/// reloads, and where it leaves the socket's upgrade unanswered too. A server with a
/// `livereload.js` of its own keeps it.
#[test]
fn a_page_loading_livereload_js_from_its_origin_reloads_through_the_proxy() {
    let (p, proxy, sup) = proxied("0");
    p.write("templates/own.html", &own_snippet_page("v1"));
    let page = http(proxy, "GET", "/strict/own.html", DOCUMENT);
    assert_eq!(page.status, 200);
    assert!(!page.text().contains("/__reloadsup/"), "{}", page.text());
    let script = http(proxy, "GET", "/livereload.js", &[]);
    assert_eq!(script.status, 200, "{}", script.text());
    assert!(
        script.text().contains("__reloadsup"),
        "reloadsup's client: {}",
        &script.text()[..200.min(script.text().len())]
    );
    let mut client = LiveReloadClient::connect_at(proxy, "/livereload");
    p.write("templates/own.html", &own_snippet_page("v2"));
    let message = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(message["command"], "reload", "{message}");
    // A server that leaves an upgrade to another path than its own unanswered.
    p.write("hang-upgrades", "");
    let asked = Instant::now();
    LiveReloadClient::connect_at(proxy, "/livereload");
    assert!(
        asked.elapsed() < Duration::from_secs(10),
        "{:?}",
        asked.elapsed()
    );
    // A server that answers every path with its page has no client there.
    p.write("spa", "");
    let fallback = http(proxy, "GET", "/livereload.js", &[]);
    assert_eq!(fallback.header("content-type"), Some("text/html"));
    thread::sleep(Duration::from_millis(300));
    assert_eq!(sup.count("of its own: its pages"), 0, "{}", sup.stderr());
    std::fs::remove_file(p.path("spa")).unwrap();
    p.write("livereload.js", "// the dev server's own client\n");
    let script = http(proxy, "GET", "/livereload.js", &[]);
    assert_eq!(script.status, 200);
    assert_eq!(script.text(), "// the dev server's own client\n");
    // Its pages are not reloaded at reloadsup's restarts: said once.
    sup.wait_for("the dev server serves a `/livereload.js` of its own");
    p.write("spa", "");
    http(proxy, "GET", "/livereload.js", &[]);
    thread::sleep(Duration::from_millis(300));
    assert_eq!(sup.count("of its own: its pages"), 1, "{}", sup.stderr());
}

/// A dev server with a socket of its own at `/livereload` keeps it when the page's
/// client asks for it during a restart: the hold until the server is up does not count
/// as the server leaving the upgrade unanswered.
#[test]
fn a_servers_own_livereload_socket_asked_during_a_restart_stays_its_own() {
    let (p, proxy, sup) = proxied("1.5");
    p.write("own-socket", "");
    p.write("app.py", &format!("{APP}\n# saved\n"));
    sup.wait_for("restarting");
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let request = format!(
        "GET /livereload HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\nConnection: Upgrade\r\n\
         Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).unwrap();
    let head = read_until(&mut stream, "\r\n\r\n").to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("x-own: 1"), "the server's own socket: {head}");
}

/// The same page in a real browser: its own snippet's client connects through the
/// proxy, and a save reloads it.
#[test]
fn a_real_browser_reloads_a_page_with_its_own_snippet_through_the_proxy() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (p, proxy, sup) = proxied("0");
    p.write("templates/own.html", &own_snippet_page("v1"));
    browser.open(&format!("http://127.0.0.1:{proxy}/strict/own.html"));
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write("templates/own.html", &own_snippet_page("v2"))
    });
}

/// A browser on `path` through the proxy of [`proxied`]`(delay)`, its reload client
/// connected; `None` when the browser tests are skipped.
fn a_browser_on(delay: &str, path: &str) -> Option<(Browser, Project, Sup)> {
    let mut browser = Browser::launch()?;
    let (p, proxy, sup) = proxied(delay);
    browser.open(&format!("http://127.0.0.1:{proxy}{path}"));
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    Some((browser, p, sup))
}

/// A form sent while the server restarts is held, and the reload that comes when the
/// server is ready does not cancel it: the browser shows its answer. That page answered
/// a POST: the next save reloads it with a GET, not by sending the form again.
#[test]
fn a_form_sent_during_a_restart_lands_and_its_answer_reloads_by_get() {
    let Some((mut browser, p, sup)) = a_browser_on("0.3", "/signup") else {
        return;
    };
    p.write("app.py", &format!("{APP}\n# saved\n"));
    sup.wait_for("restarting");
    browser.eval("setTimeout(function () { document.forms[0].submit(); }, 0), 1");
    browser.wait_for_with("document.title === 'posted'", &sup);
    // The reload came before the answer (4.5 s), and was not let cancel the navigation.
    sup.wait_for_n("reloaded 1 browser(s): app.py", 1);
    thread::sleep(Duration::from_millis(500));
    assert_eq!(browser.eval("document.title"), "posted", "{}", sup.stderr());
    assert_eq!(p.read("requests.log").matches("POST").count(), 1);
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    p.write("templates/index.html", &template("v2"));
    browser.wait_for_with("document.title === 'form'", &sup);
    assert_eq!(
        p.read("requests.log"),
        "GET /signup\nPOST /signup\nGET /signup\n",
        "reloaded by a GET"
    );
}

/// A navigation the page's own router handled (the Navigation API's `intercept`) is
/// over at once: the next save reloads the page without waiting for it to leave.
/// A page that answered a POST to a URL that takes POSTs only (a GET of it is a 404, or
/// a 400 where the handler reads the form's fields): a save takes the tab back to the
/// form that was sent, not to "not found". A GET answered 403 (a login wall) is loaded. One whose
/// URL answers a GET, though not a HEAD (a 501, or a 404 from a server that routes on
/// the method), gets that GET.
#[test]
fn a_post_only_pages_answer_goes_back_to_its_form_at_a_save() {
    let form_to = |action: &str, heading: &str| {
        format!(
            "<!doctype html><html><head><title>f</title></head><body><h1>{heading}</h1>\
             <form method=post action={action}><input name=q value=x></form></body></html>"
        )
    };
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (p, proxy, sup) = proxied("0");
    // (page, where its form posts, where a save takes the tab, the heading shown there)
    let cases = [
        ("form", "/submit", "/strict/form.html", "form v2"),
        ("both", "/both", "/both", "both by get"),
        ("getonly", "/getonly", "/getonly", "getonly by get"),
        (
            "validates",
            "/validates",
            "/strict/validates.html",
            "validates v2",
        ),
        ("walled", "/walled", "/walled", "walled by get"),
    ];
    for (page, action, _, _) in cases {
        p.write(&format!("templates/{page}.html"), &form_to(action, page));
    }
    sup.wait_for_n("ready in ", 2);
    for (page, action, lands_on, heading) in cases {
        browser.open(&format!("http://127.0.0.1:{proxy}/strict/{page}.html"));
        browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
        browser.eval("document.forms[0].submit(), 1");
        browser.wait_for_with(
            "document.querySelector('h1').textContent === 'submitted' && \
             window.__reloadsup && window.__reloadsup.connected",
            &sup,
        );
        p.write(
            &format!("templates/{page}.html"),
            &form_to(action, &format!("{page} v2")),
        );
        browser.wait_for_with(
            &format!(
                "location.pathname === '{lands_on}' && \
                 document.querySelector('h1').textContent === '{heading}'"
            ),
            &sup,
        );
    }
}

#[test]
fn a_page_its_router_navigated_reloads_at_once() {
    let Some((mut browser, p, sup)) = a_browser_on("0", "/") else {
        return;
    };
    browser.eval(
        "navigation.addEventListener('navigate', function (e) { \
           if (e.canIntercept && e.navigationType !== 'reload') e.intercept({ handler: function () { document.title = 'routed'; } }); \
         }), location.href = '/', 1",
    );
    browser.wait_for("document.title === 'routed'");
    // (A navigation still taken for one under way would hold the reload 15 s, past
    // this wait.)
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write("templates/index.html", &template("v2"))
    });
}

/// A `mailto:` or `tel:` link opens another program and the page stays: it is no
/// navigation to wait for, and the next save reloads the page at once (it was held
/// 15 s, past this wait).
#[test]
fn a_page_whose_mailto_link_was_clicked_reloads_at_once() {
    let Some((mut browser, p, sup)) = a_browser_on("0", "/") else {
        return;
    };
    browser.eval(
        "['mailto:dev@example.com', 'tel:+15550100'].forEach(function (href) { \
           var a = document.createElement('a'); a.href = href; document.body.appendChild(a); \
           a.click(); \
         }), 1",
    );
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write("templates/index.html", &template("v2"))
    });
}

/// A dev server's static files that carry `Last-Modified` alone (Python's) were reused
/// by the browser without asking: a save that changed the page and its stylesheet at
/// once (a save-all, a checkout) reloaded the new page with the old stylesheet. The
/// proxy makes such answers `no-cache`, so the reloaded page asks for it again.
#[test]
fn a_reloaded_page_gets_its_changed_stylesheet_not_a_cached_one() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (p, proxy, sup) = proxied("0");
    // Checked out hours ago: a browser reuses such a file for a tenth of its age.
    let hours_ago = std::time::SystemTime::now() - Duration::from_secs(3 * 3600);
    std::fs::File::options()
        .write(true)
        .open(p.path("static/site.css"))
        .unwrap()
        .set_modified(hours_ago)
        .unwrap();
    let asset = http(proxy, "GET", "/static/site.css", &[]);
    assert_eq!(asset.header("cache-control"), Some("no-cache"));
    browser.open(&format!("http://127.0.0.1:{proxy}/"));
    browser.wait_for("getComputedStyle(document.querySelector('h1')).color === 'rgb(255, 0, 0)'");
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    p.write("static/site.css", "h1 { color: rgb(0, 0, 255) }\n");
    p.write("templates/index.html", &template("v2"));
    browser.wait_for_with("document.querySelector('h1').textContent === 'v2'", &sup);
    browser.wait_for_with(
        "getComputedStyle(document.querySelector('h1')).color === 'rgb(0, 0, 255)'",
        &sup,
    );
}

#[test]
fn a_real_browser_connects_under_a_strict_policy_header_and_is_told_of_a_meta_one() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (p, proxy, sup) = proxied("0");
    let strict = |heading: &str, meta: &str| {
        format!(
            "<!doctype html><html><head>{meta}<title>s</title></head>\
             <body><h1>{heading}</h1></body></html>"
        )
    };
    let meta = "<meta http-equiv=\"Content-Security-Policy\" \
                content=\"default-src 'none'; script-src 'nonce-m1'\">";
    // The pages are watched templates: the restart they cause is over before a look.
    p.write("templates/header.html", &strict("h1", ""));
    p.write("templates/meta.html", &strict("m1", meta));
    p.write("templates/none.html", &strict("n1", ""));
    sup.wait_for_n("ready in ", 2);
    // The header allows no connection at all: the proxy lets the socket through.
    browser.open(&format!("http://127.0.0.1:{proxy}/strict/header.html"));
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    browser.assert_page_reloaded(&sup, "h2", || {
        p.write("templates/header.html", &strict("h2", ""));
    });
    // Express's error pages allow nothing at all, scripts included: the proxy lets our
    // script run as well.
    browser.open(&format!("http://127.0.0.1:{proxy}/strict/none.html"));
    browser.assert_page_reloaded(&sup, "n2", || {
        p.write("templates/none.html", &strict("n2", ""));
    });
    // A policy in a `<meta>` is the page's own: the client says what blocks it.
    browser.open(&format!("http://127.0.0.1:{proxy}/strict/meta.html"));
    browser.wait_for("window.__reloadsup && window.__reloadsup.blocked === 'connect-src'");
    assert_eq!(browser.eval("window.__reloadsup.connected"), false);
}

#[test]
fn a_real_browser_runs_the_client_in_an_xhtml_page() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (p, proxy, sup) = proxied("0");
    let xhtml = |heading: &str| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
             <html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>x</title></head>\
             <body><h1>{heading}</h1></body></html>\n"
        )
    };
    p.write("templates/page.xhtml", &xhtml("x1"));
    browser.open(&format!("http://127.0.0.1:{proxy}/page.xhtml"));
    assert_eq!(
        browser.eval("document.contentType"),
        "application/xhtml+xml"
    );
    browser.assert_page_reloaded(&sup, "x2", || {
        p.write("templates/page.xhtml", &xhtml("x2"));
        p.write("templates/index.html", &template("v2"));
    });
}

/// A server that listens on another port than `proxy.upstream` names: the warning (and
/// the page) say where it does listen.
/// A project whose server listens on another port than its `proxy.upstream`, with
/// `ready_timeout`; returns it, the two ports (the upstream's, the server's) and the
/// proxy's, and the running supervisor.
fn upstream_mistyped(ready_timeout: &str) -> (Project, u16, u16, u16, Sup) {
    let p = Project::new();
    let (port, other, proxy) = (free_port(), free_port(), free_port());
    p.write(
        "server.py",
        "import sys\nfrom http.server import HTTPServer, SimpleHTTPRequestHandler\n\
         HTTPServer(('127.0.0.1', int(sys.argv[1])), SimpleHTTPRequestHandler).serve_forever()\n",
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{other}', '{}']\n\
             ready_timeout = \"{ready_timeout}\"\n[proxy]\n\
             listen = \"127.0.0.1:{proxy}\"\nupstream = \"127.0.0.1:{port}\"\n",
            p.token
        ),
    );
    let sup = p.start(&["run", "--no-reload"]);
    (p, port, other, proxy, sup)
}

#[test]
fn a_server_on_another_port_than_the_upstream_is_pointed_out() {
    let (_p, port, other, proxy, sup) = upstream_mistyped("1s");
    sup.wait_for(&format!(
        "is not ready after 1s (`server.ready_timeout`); it listens on port {other}, not {port} \
         (`proxy.upstream`)"
    ));
    let page = http(proxy, "GET", "/", DOCUMENT);
    assert!(
        page.text().contains(&format!("it listens on port {other}")),
        "{}",
        page.text()
    );
}

/// A server that listens on another port for two seconds is pointed out then, on the
/// terminal, not only after its whole `ready_timeout`; requests stay held (such a server
/// may be one that opens a debugger's port before its own, only slow to start).
#[test]
fn a_server_on_another_port_is_pointed_out_before_its_ready_timeout() {
    let (_p, port, other, proxy, sup) = upstream_mistyped("45s");
    sup.wait_for("proxy on ");
    let held = thread::spawn(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", proxy)).unwrap();
        stream
            .write_all(format!("GET / HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\n\r\n").as_bytes())
            .unwrap();
        stream
    });
    sup.wait_for(&format!(
        "the server is not ready yet; it listens on port {other}, not {port} \
         (`proxy.upstream`); waiting for it up to `ready_timeout` (45s)"
    ));
    let mut stream = held.join().expect("the request's thread");
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut answer = [0u8; 64];
    let read = std::io::Read::read(&mut stream, &mut answer);
    assert!(
        read.is_err(),
        "answered while still within ready_timeout: {read:?}"
    );
    assert_eq!(sup.count("is not ready after"), 0, "{}", sup.stderr());
}

/// An HTTPS dev server (`vite --https`): Python's `http.server` behind TLS, with a
/// self-signed certificate made for this test alone (`tests/fixtures`).
const TLS_APP: &str = r#"
import ssl, sys
from http.server import HTTPServer, SimpleHTTPRequestHandler
server = HTTPServer(("127.0.0.1", int(sys.argv[1])), SimpleHTTPRequestHandler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(sys.argv[2], sys.argv[3])
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"#;

/// A dev server that speaks HTTPS behind the proxy's plain HTTP is named as such, on
/// the 502 page and the terminal (the page said it closed without a complete answer,
/// and that it would reload by itself when the server was ready again).
#[test]
fn an_https_dev_server_is_named_as_such() {
    let p = Project::new();
    let (port, proxy) = (free_port(), free_port());
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    p.write("server.py", TLS_APP);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'server.py', '{port}', '{}', '{}', '{}']\n\
             [proxy]\nlisten = \"127.0.0.1:{proxy}\"\nupstream = \"127.0.0.1:{port}\"\n",
            fixtures.join("tls-cert.pem").display(),
            fixtures.join("tls-key.pem").display(),
            p.token
        ),
    );
    let sup = p.start(&["run", "--no-reload"]);
    sup.wait_for("ready in ");
    let page = http(proxy, "GET", "/", DOCUMENT);
    assert_eq!(page.status, 502);
    assert!(
        page.text().contains(&format!(
            "<code>127.0.0.1:{port}</code> answered the proxy's plain HTTP as an HTTPS server does"
        )),
        "{}",
        page.text()
    );
    sup.wait_for(&format!(
        "the dev server at 127.0.0.1:{port} (`proxy.upstream`) speaks HTTPS"
    ));
}

#[test]
fn ad_hoc_proxy_flags() {
    let p = Project::new();
    let (port, proxy) = (free_port(), free_port());
    p.write("app.py", APP);
    p.write("templates/index.html", &template("ad hoc"));
    // On every address, as for a phone on the LAN.
    let (listen, upstream, port_arg) = (
        format!("0.0.0.0:{proxy}"),
        format!("127.0.0.1:{port}"),
        port.to_string(),
    );
    let sup = p.start(&[
        "run",
        "--no-reload",
        "--proxy",
        &listen,
        "--upstream",
        &upstream,
        "-w",
        "*.py",
        "--",
        "python3",
        "app.py",
        &port_arg,
        &p.token,
    ]);
    sup.wait_for("ready in ");
    let page = http(proxy, "GET", "/", DOCUMENT);
    assert!(page.text().contains("<h1>ad hoc</h1>"));
    assert!(page.text().contains("/__reloadsup/livereload.js"));
    // A URL a browser here can open, and a word that the network can reach it.
    sup.wait_for(&format!(
        "proxy on http://127.0.0.1:{proxy}/ for {upstream}"
    ));
    sup.wait_for("every device on the network can reach the dev server through it");
    // This machine's LAN address, as a phone opens it: an address is no rebinding.
    for (host, status) in [
        (format!("192.168.1.20:{proxy}"), "200"),
        // A name is still judged.
        ("evil.example".to_string(), "403"),
    ] {
        let answer = raw_exchange(
            proxy,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        );
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status}")),
            "{host}: {answer}"
        );
    }
    // A target that is no path is a malformed request, not a host to refuse.
    let odd = raw_exchange(
        proxy,
        &format!("GET style.css HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\nConnection: close\r\n\r\n"),
    );
    assert!(odd.starts_with("HTTP/1.1 400"), "{odd}");

    let out = p.output(&["run", "--proxy", &listen, "--", "true"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        out.stderr.contains("`--proxy` needs `--upstream ADDR`"),
        "{}",
        out.stderr
    );
}

/// A request the old server held longer than the hold's backstop (2.5 s here) when a
/// restart cut it off: sent again, it waits for the new server like any other, the
/// backstop counted from this restart, not from when it first came.
#[test]
fn a_long_request_cut_off_by_a_restart_waits_for_the_new_server() {
    let (p, proxy, sup) = proxied_with("", "stop_timeout = \"0.5s\"\nready_timeout = \"1s\"");
    sup.wait_for("ready in ");
    let poll = thread::spawn(move || http(proxy, "GET", "/hang?s=3.5", &[]));
    thread::sleep(Duration::from_millis(3000));
    p.write("templates/index.html", &template("v2"));
    let answer = poll.join().expect("the request thread");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert_eq!(answer.text(), "late");
}

/// A dev server with keep-alive (HTTP/1.1): `/peer` answers (GET or POST) with the
/// port the proxy's connection comes from, `/trailers` with a chunked body, a declared
/// trailer and what `TE` it was sent, `/lenient` with a header folded over two lines
/// and one with a space before its colon, as browsers read; `/br` with a page in
/// `Content-Encoding: br`, whatever was asked.
const KEEP_ALIVE_APP: &str = r#"
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def peer(self):
        body = str(self.client_address[1]).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path == "/peer":
            return self.peer()
        if self.path == "/trailers":
            body = ("te=" + self.headers.get("TE", "")).encode()
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"Transfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n"
                             b"%x\r\n%s\r\n0\r\nX-Sum: 42\r\n\r\n" % (len(body), body))
        elif self.path == "/br":
            body = b"\x1b\x00\x00not really brotli"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: br\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(body), body))
        elif self.path == "/lenient":
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                             b"X-Folded: one\r\n two\r\nX-Spaced : v\r\nContent-Length: 2\r\n\r\nok")
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.peer()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

/// A project behind the proxy running [`KEEP_ALIVE_APP`], ready; returns it, the
/// proxy's port and the supervisor.
fn keep_alive_proxied() -> (Project, u16, Sup) {
    app_proxied("app.py", KEEP_ALIVE_APP, "python3", "")
}

/// A project behind the proxy running `program file PORT TOKEN`, `file` holding
/// `source`, watching the files of its kind, with no live reload and `server` as more
/// `[server]` lines; returns it once ready, with the proxy's port and the supervisor.
fn app_proxied(file: &str, source: &str, program: &str, server: &str) -> (Project, u16, Sup) {
    let p = Project::new();
    let (port, proxy) = (free_port(), free_port());
    p.write(file, source);
    let kind = file.rsplit('.').next().expect("a file with an extension");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['{program}', '{file}', '{port}', '{}']\n{server}\n\
             [watch]\nfile_dep = ['*.{kind}']\n[reload]\nenabled = false\n\
             [proxy]\nlisten = \"127.0.0.1:{proxy}\"\nupstream = \"127.0.0.1:{port}\"\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    (p, proxy, sup)
}

/// GETs share kept connections to the server; a POST never takes one (the server may
/// close it for idling just as the POST goes out, and a POST cannot be sent again), so
/// it comes from a port no GET came from.
#[test]
fn a_post_goes_on_a_new_connection_and_gets_share_kept_ones() {
    let (_p, proxy, _sup) = keep_alive_proxied();
    let port_of = |method: &str| {
        let answer = http(proxy, method, "/peer", &[("Content-Length", "0")]);
        assert_eq!(answer.status, 200, "{}", answer.text());
        answer.text()
    };
    let first = port_of("GET");
    assert_eq!(port_of("GET"), first, "a GET reuses the kept connection");
    let posted = port_of("POST");
    assert_ne!(posted, first, "a POST goes on a connection of its own");
    assert_ne!(port_of("POST"), posted, "and never on a kept one");
    assert_eq!(port_of("GET"), first, "which is not kept either");
}

/// A Node dev server that stops gracefully on SIGTERM (`server.close()` waits for open
/// connections, upgraded ones included), saying `bye` to the upgraded connections it
/// keeps (`/socket`; not to `/socket?quiet`) as it goes (`/socket?quiet&late` answers
/// `late answer`, in two pieces 1.5 s apart, 1.5 s after the client closed its side); it answers `/events` with an
/// event stream, a POST to `/stream` with a stream, and other POSTs after 1.5 s.
const GRACEFUL_APP: &str = r#"
const http = require("http");
const sockets = new Set();
const server = http.createServer((req, res) => {
  if (req.method === "POST" && req.url === "/stream") {
    res.writeHead(200, { "Content-Type": "text/plain" });
    return res.write("first\n");
  }
  if (req.method === "POST") {
    req.resume();
    return setTimeout(() => res.end("done by " + process.pid), 1500);
  }
  res.writeHead(200, { "Content-Type": "text/event-stream" });
  res.write("data: " + process.pid + "\n\n");
});
server.on("upgrade", (req, socket) => {
  if (req.url.includes("late")) {
    // Answers 3 s after the client closed its sending side, in pieces.
    socket.on("end", () => setTimeout(() => {
      socket.write("late ");
      setTimeout(() => socket.end("answer"), 1500);
    }, 1500));
  }
  if (!req.url.includes("quiet")) sockets.add(socket);
  socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: test\r\nConnection: Upgrade\r\n\r\n");
});
process.on("SIGTERM", () => {
  for (const socket of sockets) socket.end("bye");
  server.close(() => process.exit(0));
});
server.listen(Number(process.argv[2]), "127.0.0.1");
"#;

/// Opens a connection to `port`, sends `request` and reads until `expected` has come.
fn open_until(port: u16, request: &str, expected: &str) -> std::net::TcpStream {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    read_until(&mut stream, expected);
    stream
}

/// Reads from `stream` until `expected` has come; returns what came.
fn read_until(stream: &mut std::net::TcpStream, expected: &str) -> String {
    use std::io::Read as _;
    let mut seen = Vec::new();
    let mut buffer = [0; 1024];
    while !String::from_utf8_lossy(&seen).contains(expected) {
        let n = stream.read(&mut buffer).unwrap();
        assert!(n > 0, "closed early: {}", String::from_utf8_lossy(&seen));
        seen.extend_from_slice(&buffer[..n]);
    }
    String::from_utf8_lossy(&seen).into_owned()
}

/// With a server that stops gracefully: an event stream, an app's upgraded connection
/// and a POST's streamed answer open through the proxy do not hold a restart up (they
/// are closed: the stream at once, the others after the server has had a moment to
/// say goodbye, and a socket it says goodbye to gets it), while a POST that takes
/// longer than the restart's drain is still answered by the old server.
#[test]
fn a_graceful_servers_restart_cuts_streams_and_sockets_but_not_waiting_posts() {
    let (p, proxy, sup) = app_proxied("app.js", GRACEFUL_APP, "node", "stop_timeout = '4s'");
    let host = format!("Host: 127.0.0.1:{proxy}");
    let mut events = open_until(
        proxy,
        &format!("GET /events HTTP/1.1\r\n{host}\r\n\r\n"),
        "data: ",
    );
    let mut socket = open_until(
        proxy,
        &format!("GET /socket HTTP/1.1\r\n{host}\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"),
        "\r\n\r\n",
    );
    let _quiet = open_until(
        proxy,
        &format!(
            "GET /socket?quiet HTTP/1.1\r\n{host}\r\nConnection: Upgrade\r\nUpgrade: test\r\n\r\n"
        ),
        "\r\n\r\n",
    );
    let mut stream = open_until(
        proxy,
        &format!("POST /stream HTTP/1.1\r\n{host}\r\nContent-Length: 0\r\n\r\n"),
        "first",
    );
    let goodbye = thread::spawn(move || read_until(&mut socket, "bye"));
    p.write("app.js", &format!("{GRACEFUL_APP}\n// v2\n"));
    let took = restart_took(&sup);
    assert!(took < 2500, "the restart waited for the stream: {took} ms");
    // The event stream ends as a whole chunked answer (a browser logged an error for a
    // cut-off one); the streamed POST answer, which might be a download, breaks off.
    read_until(&mut events, "0\r\n\r\n");
    let rest = read_to_close(&mut stream);
    assert!(!rest.contains("0\r\n\r\n"), "{rest:?}");
    assert!(
        goodbye
            .join()
            .expect("the socket's thread")
            .ends_with("bye")
    );
    let post = thread::spawn(move || http(proxy, "POST", "/form", &[("Content-Length", "0")]));
    thread::sleep(Duration::from_millis(200));
    p.write("app.js", &format!("{GRACEFUL_APP}\n// v3\n"));
    let answer = post.join().expect("the request thread");
    assert_eq!(answer.status, 200, "{}", answer.text());
    assert!(answer.text().starts_with("done by "), "{}", answer.text());
    sup.wait_for_n("ready in ", 3);
    assert_eq!(sup.count("SIGKILL"), 0, "{}", sup.stderr());
}

/// An app's upgraded connection whose browser went (a FIN, no close of the app's
/// protocol) is closed on the browser's side too, soon, though the app never closes its
/// own: the proxy held the pair open, two descriptors, for as long as the app ran. But
/// not while bytes still move.
#[test]
fn a_tunnel_whose_browser_went_is_closed_though_the_app_keeps_its_side() {
    use std::io::Read as _;
    let (_p, proxy, _sup) = app_proxied("app.js", GRACEFUL_APP, "node", "");
    let mut socket = open_until(
        proxy,
        &format!(
            "GET /socket?quiet HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\n\
             Connection: Upgrade\r\nUpgrade: test\r\n\r\n"
        ),
        "\r\n\r\n",
    );
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let began = std::time::Instant::now();
    let mut rest = Vec::new();
    socket
        .read_to_end(&mut rest)
        .expect("closed by the proxy before the read timeout");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "{:?}",
        began.elapsed()
    );
    // An answer that comes after the client closed its side still comes whole, though
    // it takes longer than the limit: the limit is on a pause.
    let mut socket = open_until(
        proxy,
        &format!(
            "GET /socket?quiet&late HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\n\
             Connection: Upgrade\r\nUpgrade: test\r\n\r\n"
        ),
        "\r\n\r\n",
    );
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    socket.read_to_end(&mut rest).unwrap();
    assert_eq!(String::from_utf8_lossy(&rest), "late answer");
}

/// A Node dev server whose page (`/`) streams a row every 200 ms and never ends, headed
/// by `VERSION`; `/log` the same without a head or a body (its tag goes at its end);
/// `/drop` a page that drops its connection after its first rows.
const STREAMING_PAGE_APP: &str = r#"
const http = require("http");
const VERSION = "v1";
http.createServer((req, res) => {
  if (!["/", "/log", "/drop"].includes(req.url)) { res.statusCode = 404; return res.end(); }
  require("fs").appendFileSync("requests.log", req.url + "\n");
  res.writeHead(200, { "Content-Type": "text/html; charset=utf-8" });
  res.write(req.url === "/log" ? `<h1>${VERSION}</h1><pre>\n`
    : `<!doctype html><html><head><title>${VERSION}</title></head><body><h1>${VERSION}</h1>\n`);
  const timer = setInterval(() => res.write("<p>row</p>\n"), 200);
  res.on("close", () => clearInterval(timer));
  if (req.url === "/drop") setTimeout(() => res.socket.destroy(), 500);
}).listen(Number(process.argv[2]), "127.0.0.1");
"#;

/// A page still streaming when a save restarts the server ends as a whole one, not cut
/// off (its tag at the end included, where it has no other place): Chromium left a
/// cut-off page loading for good, its deferred reload client never ran, and the tab
/// stayed on the half page. Ended, the page's client learns that a change came while
/// it loaded, and reloads it. A page broken off for another reason (its handler dropped
/// the connection) still breaks off, not to be taken for whole.
#[test]
fn a_page_still_streaming_at_a_restart_ends_and_reloads() {
    let p = Project::new();
    let (port, proxy, reload) = (free_port(), free_port(), free_port());
    p.write("app.js", STREAMING_PAGE_APP);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['node', 'app.js', '{port}', '{}']\n\
             [watch]\nfile_dep = ['*.js']\n[reload]\nport = {reload}\n\
             [proxy]\nlisten = \"127.0.0.1:{proxy}\"\nupstream = \"127.0.0.1:{port}\"\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    let version = |v: &str| STREAMING_PAGE_APP.replace("\"v1\"", &format!("\"{v}\""));
    let navigate = |path: &str| {
        format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\nAccept: text/html\r\n\
             Sec-Fetch-Dest: document\r\n\r\n"
        )
    };
    let mut dropped = open_until(proxy, &navigate("/drop"), "<p>row</p>");
    let rest = read_to_close(&mut dropped);
    assert!(!rest.contains("0\r\n\r\n"), "broken off: {rest:?}");
    let mut page = open_until(proxy, &navigate("/"), "<p>row</p>");
    let mut log = open_until(proxy, &navigate("/log"), "<p>row</p>");
    p.write("app.js", &version("v2"));
    read_until(&mut page, "0\r\n\r\n");
    let tail = read_until(&mut log, "0\r\n\r\n");
    assert!(tail.contains("/__reloadsup/livereload.js"), "{tail:?}");
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    sup.wait_for_n("ready in ", 2);
    browser.open("about:blank");
    browser.eval(&format!("location.href = 'http://127.0.0.1:{proxy}/', 1"));
    browser.wait_for("document.querySelectorAll('p').length > 2");
    assert_eq!(browser.eval("document.readyState"), "loading");
    p.write("app.js", &version("v3"));
    browser.wait_for_with(
        "document.querySelector('h1') && document.querySelector('h1').textContent === 'v3'",
        &sup,
    );
    // Loaded once more, not twice: the page reloads at its `ready` status, and the
    // `reload` that follows at once starts no second load.
    thread::sleep(crate::util::QUIET);
    let pages = p.read("requests.log").lines().filter(|l| *l == "/").count();
    assert_eq!(pages, 3, "the raw request, the browser's, its reload");
}

/// Reads from `stream` until it closes (or breaks off); returns what came.
fn read_to_close(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read as _;
    let mut seen = Vec::new();
    let _ = stream.read_to_end(&mut seen);
    String::from_utf8_lossy(&seen).into_owned()
}

/// Reads the whole raw answer to a request with `Connection: close`.
fn raw_exchange(port: u16, request: &str) -> String {
    use std::io::Read as _;
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    String::from_utf8_lossy(&raw).into_owned()
}

/// Trailers pass back to a browser that takes them (and its `TE: trailers` reaches the
/// server); an answer browsers read leniently is read so here too.
#[test]
fn trailers_pass_and_answers_are_read_as_leniently_as_browsers_do() {
    let (_p, proxy, _sup) = keep_alive_proxied();
    let answer = raw_exchange(
        proxy,
        &format!(
            "GET /trailers HTTP/1.1\r\nHost: 127.0.0.1:{proxy}\r\nTE: trailers\r\n\
             Connection: close, TE\r\n\r\n"
        ),
    );
    let lower = answer.to_ascii_lowercase();
    assert!(lower.contains("te=trailers"), "{answer}");
    assert!(lower.ends_with("\r\n0\r\nx-sum: 42\r\n\r\n"), "{answer}");
    let lenient = http(proxy, "GET", "/lenient", &[]);
    assert_eq!(lenient.status, 200, "{}", lenient.text());
    assert_eq!(lenient.text(), "ok");
    assert_eq!(lenient.header("x-spaced"), Some("v"));
}

#[test]
fn an_upstream_that_is_the_proxy_itself_is_refused() {
    let p = Project::new();
    let port = free_port();
    let sleep = format!("sleep {}", p.token);
    for (listen, upstream) in [
        (format!("127.0.0.1:{port}"), format!("127.0.0.1:{port}")),
        (format!("127.0.0.1:{port}"), format!("localhost:{port}")),
        (format!("0.0.0.0:{port}"), format!("127.0.0.1:{port}")),
    ] {
        let out = p.output(&[
            "run",
            "--no-reload",
            "--proxy",
            &listen,
            "--upstream",
            &upstream,
            "--",
            &sleep,
        ]);
        assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
        let said = format!("the proxy's upstream {upstream} is its own address ");
        assert!(out.stderr.contains(&said), "{}", out.stderr);
        assert!(p.servers().is_empty(), "nothing started");
    }
    // With a reload port to open too: refused before it is bound, in one line.
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = '{sleep}'\n[reload]\nport = {}\n",
            free_port()
        ),
    );
    let own = format!("127.0.0.1:{port}");
    let out = p.output(&["run", "--proxy", &own, "--upstream", &own]);
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // Set by the task file: its line is named.
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = '{sleep}'\n[proxy]\nlisten = \"127.0.0.1:{port}\"\n\
             upstream = \"localhost:{port}\"\n"
        ),
    );
    // `check` says so too, binding nothing.
    for args in [&["run", "--no-reload"][..], &["check"]] {
        let out = p.output(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr
                .contains("reload.toml:5: the proxy's upstream localhost:"),
            "{args:?}: {}",
            out.stderr
        );
    }
}

/// A LiveReload port taken (by another reloadsup, say) is an error that names the way
/// out: without it, pages through the proxy still reload.
#[test]
fn a_taken_reload_port_says_the_proxy_does_without_it() {
    let p = Project::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let reload = taken.local_addr().unwrap().port();
    let (listen, upstream) = (free_port(), free_port());
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = 'sleep {}'\n[reload]\nport = {reload}\n\
             [proxy]\nlisten = \"127.0.0.1:{listen}\"\nupstream = \"127.0.0.1:{upstream}\"\n",
            p.token
        ),
    );
    let out = p.output(&["run"]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("pass `--no-reload`"), "{}", out.stderr);
    assert_eq!(out.stderr.trim().lines().count(), 1, "{}", out.stderr);
}

/// Without a task file (`run -w … -- cmd`) the LiveReload port is the default one,
/// and no `reload.port` can be set: the way out says so (it said to set one), and
/// `--reload-port` is one (a second ad-hoc run beside another had none but
/// `--no-reload`).
#[test]
fn a_taken_default_reload_port_in_ad_hoc_mode_names_a_way_out_that_exists() {
    let p = Project::new();
    // Held here, or by someone else already: taken either way.
    let _held = std::net::TcpListener::bind("127.0.0.1:35729");
    let sleep = format!("sleep {}", p.token);
    let out = p.output(&["run", "-w", "*.py", "--", &sleep]);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("pass `--reload-port` another port (0: any free one), or `--no-reload`"),
        "{}",
        out.stderr
    );
    let port = free_port();
    let sup = p.start(&[
        "run",
        "--reload-port",
        &port.to_string(),
        "-w",
        "*.py",
        "--",
        &sleep,
    ]);
    sup.wait_for(&format!(
        "live reload on http://127.0.0.1:{port}/livereload.js"
    ));
    // It reads the server's hello.
    LiveReloadClient::connect(port);
    drop(sup);
}

#[test]
fn a_proxy_address_in_use_names_the_key_or_flag_that_set_it() {
    let p = Project::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let upstream = format!("127.0.0.1:{}", free_port());
    let sleep = format!("sleep {}", p.token);
    let flags = p.output(&[
        "run",
        "--no-reload",
        "--proxy",
        &listen,
        "--upstream",
        &upstream,
        "--",
        &sleep,
    ]);
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = '{sleep}'\n[reload]\nenabled = false\n\
             [proxy]\nlisten = \"{listen}\"\nupstream = \"{upstream}\"\n"
        ),
    );
    let file = p.output(&["run"]);
    for (out, set_by) in [(flags, "`--proxy`"), (file, "`proxy.listen`")] {
        assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
        assert!(
            out.stderr
                .contains(&format!("cannot listen on {listen} (set by {set_by}): ")),
            "{}",
            out.stderr
        );
    }
    assert!(p.servers().is_empty(), "nothing started");
}

/// A `[proxy]` alone watches nothing by default, and says so: under a default `**`, a
/// server run elsewhere that logs each request into the folder reloaded its pages
/// without end (each reload a request, each request a line of its log).
#[test]
fn a_proxy_alone_watches_only_what_is_named() {
    let p = Project::new();
    let (listen, upstream) = (free_port(), free_port());
    p.write(
        "reload.toml",
        &format!(
            "[proxy]\nlisten = '127.0.0.1:{listen}'\nupstream = '127.0.0.1:{upstream}'\n\
             [reload]\nenabled = false\n"
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("nothing is watched: no `watch.file_dep`, `reload.assets` or build step");
    sup.wait_for("watching");
    p.write("access.log", "GET /\n");
    std::thread::sleep(Duration::from_millis(400));
    assert!(
        !sup.stderr().contains("changed: access.log"),
        "{}",
        sup.stderr()
    );
    drop(sup);
    // The same from flags alone, with no task file and no command (`browser-sync
    // --proxy`): what `-w` names reloads the pages.
    std::fs::remove_file(p.path("reload.toml")).unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let upstream = format!("127.0.0.1:{}", free_port());
    let args = [
        "run",
        "--no-reload",
        "--proxy",
        &listen,
        "--upstream",
        &upstream,
        "-w",
        "site/**",
    ];
    let sup = p.start(&args);
    sup.wait_for("proxy on ");
    sup.wait_for("watching");
    p.write("site/index.html", "<h1>v2</h1>");
    sup.wait_for("changed: site/index.html");
}
