//! A real browser (headless Chromium) on a page that includes the reload snippet.

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::util::{Browser, Project, free_port};

/// A dev server: the page from `templates/index.html` (read at start-up, so a template
/// change needs the restart) and files from `static/`.
const APP: &str = r#"
import os, sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
PAGE = open("templates/index.html", "rb").read()
class Handler(SimpleHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(PAGE)))
            self.end_headers()
            self.wfile.write(PAGE)
        else:
            super().do_GET()
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

fn page(reload_port: u16, heading: &str) -> String {
    format!(
        "<!doctype html><html><head><meta charset=utf-8><title>t</title>\n\
         <link rel=\"stylesheet\" href=\"/static/site.css\">\n</head><body>\n<h1>{heading}</h1>\n\
         <script>sessionStorage.loads = (+sessionStorage.loads || 0) + 1</script>\n\
         <script src=\"http://127.0.0.1:{reload_port}/livereload.js\"></script>\n</body></html>\n"
    )
}

#[test]
fn page_text_updates_css_swaps_in_place_and_restarts_do_not_loop() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let p = Project::new();
    let (port, reload) = (free_port(), free_port());
    p.write("app.py", APP);
    p.write("templates/index.html", &page(reload, "v1"));
    p.write("static/site.css", "h1 { color: rgb(255, 0, 0) }\n");
    // Last modified long ago: with no `Cache-Control` from the server (Python's sends
    // none), the browser takes the stylesheet it cached for fresh for months.
    let touched = std::process::Command::new("touch")
        .args(["-d", "2020-01-01"])
        .arg(p.path("static/site.css"))
        .status()
        .unwrap();
    assert!(touched.success());
    p.write("static/bg.png", "first");
    p.write("static/more.css", "h1 { background-image: url(bg.png) }\n");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'app.py', '{port}', '{}']\nready = {{ port = {port} }}\n\
             [watch]\nfile_dep = ['*.py', 'templates/*.html']\n\
             [reload]\nport = {reload}\nassets = ['static/*.css', 'static/*.png']\n",
            p.token
        ),
    );
    let mut sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    let url = format!("http://127.0.0.1:{port}/");
    browser.open(&url);
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    assert_eq!(
        browser.eval("document.querySelector('h1').textContent"),
        "v1"
    );

    // A template change restarts the server; the page reloads and shows the new text.
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write("templates/index.html", &page(reload, "v2"))
    });
    sup.wait_for("reloaded 1 browser(s): templates/index.html");

    // A stylesheet change is swapped in place: no reload, the marker survives.
    browser.assert_css_swapped(&sup, || {
        p.write(
            "static/site.css",
            "@import url(/static/more.css);\nh1 { color: rgb(0, 0, 255) }\n",
        )
    });
    assert_eq!(
        browser.eval("document.querySelectorAll('link[rel=stylesheet]').length"),
        1
    );

    // An image a stylesheet uses (here an imported one, by a URL relative to it) is
    // made fresh in place too, at the same address: no reload.
    browser.eval("window.__marker = 3");
    p.write("static/bg.png", "second");
    browser.wait_for_with(
        "getComputedStyle(document.querySelector('h1')).backgroundImage\
         .includes('/static/bg.png?reloadsup=')",
        &sup,
    );
    assert_eq!(browser.eval("window.__marker"), 3, "no page reload");

    // The next page load shows the new stylesheet, not the one the browser cached: the
    // swap fetched it afresh at its own URL too.
    browser.assert_page_reloaded(&sup, "v3", || {
        p.write("templates/index.html", &page(reload, "v3"))
    });
    browser.wait_for_with(
        "getComputedStyle(document.querySelector('h1')).color === 'rgb(0, 0, 255)'",
        &sup,
    );

    // The supervisor itself restarts: the page reloads exactly once (a new instance),
    // once the new server is ready, and does not loop.
    let loads = browser.eval("+sessionStorage.loads").as_i64().unwrap();
    sup.signal(Signal::SIGTERM);
    sup.wait_exit();
    let sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    browser.wait_for(&format!("+sessionStorage.loads === {}", loads + 1));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        browser.eval("+sessionStorage.loads").as_i64(),
        Some(loads + 1),
        "no reload loop"
    );
    assert_eq!(
        browser.eval("document.querySelector('h1').textContent"),
        "v3"
    );
    browser.wait_for("window.__reloadsup.connected");
}

/// A dev server whose page loads a slow script: the first time, while that script is
/// requested (the page loading, its reload socket not open yet), it changes an asset.
const SLOW_APP: &str = r#"
import sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
PAGE = open("index.html", "rb").read()
changed = False
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        global changed
        if self.path == "/slow.js":
            if not changed:
                changed = True
                time.sleep(0.3)
                open("static/data.txt", "w").write("changed while the page loaded")
                time.sleep(1.0)
            body, kind = b"window.slow = 1", "text/javascript"
        else:
            body, kind = PAGE, "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

/// A change broadcast while a page loads, before its socket is open, reaches no one;
/// the page learns of it when its socket opens (the script it loaded tells how many
/// changes there had been) and reloads, once.
#[test]
fn a_change_made_while_a_page_loads_is_not_lost() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let p = Project::new();
    let (port, reload) = (free_port(), free_port());
    p.write("app.py", SLOW_APP);
    p.write("static/data.txt", "first");
    // The reload script, deferred, is fetched at once and runs after the slow script.
    p.write(
        "index.html",
        &format!(
            "<!doctype html><html><head><meta charset=utf-8><title>t</title>\n\
             <script src=\"http://127.0.0.1:{reload}/livereload.js\" defer></script>\n\
             <script src=\"/slow.js\"></script>\n</head><body><h1>page</h1>\n\
             <script>sessionStorage.loads = (+sessionStorage.loads || 0) + 1</script>\n\
             </body></html>\n"
        ),
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'app.py', '{port}', '{}']\nready = {{ port = {port} }}\n\
             [watch]\nfile_dep = ['*.py']\n\
             [reload]\nport = {reload}\nassets = ['static/*.txt']\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    browser.open(&format!("http://127.0.0.1:{port}/"));
    sup.wait_for("reloaded 0 browser(s): static/data.txt");
    browser.wait_for_with("+sessionStorage.loads === 2", &sup);
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        browser.eval("+sessionStorage.loads").as_i64(),
        Some(2),
        "one reload, no loop"
    );
}

/// A build step that copies `styles/site.css` to `static/site.css`, and fails, saying
/// why, for a stylesheet that says `broken`.
const BUILD_CSS: &str = r#"
import os, sys
text = open("styles/site.css").read()
if "broken" in text:
    sys.exit("Error: expected ';' in styles/site.css")
os.makedirs("static", exist_ok=True)
open("static/site.css", "w").write(text)
"#;

/// A build step that fails leaves the server up on the files it did not make: the open
/// page says so on its badge, without reloading, and the badge goes when the step runs
/// through (its stylesheet swapped in place).
#[test]
fn a_failed_build_step_shows_in_the_page_until_it_runs_through() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let p = Project::new();
    let (port, reload) = (free_port(), free_port());
    p.write("app.py", APP);
    p.write("build.py", BUILD_CSS);
    p.write("templates/index.html", &page(reload, "v1"));
    p.write("styles/site.css", "h1 { color: rgb(255, 0, 0) }\n");
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'app.py', '{port}', '{}']\nready = {{ port = {port} }}\n\
             [watch]\nfile_dep = ['*.py', 'templates/*.html']\n\
             [reload]\nport = {reload}\nassets = ['static/*.css']\n\
             [[task]]\nname = 'css'\nfile_dep = ['styles/*.css']\nactions = ['python3 build.py']\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    browser.open(&format!("http://127.0.0.1:{port}/"));
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    assert_eq!(
        browser.eval("!!document.getElementById('__reloadsup-status')"),
        false
    );
    browser.eval("window.__marker = 1");

    p.write("styles/site.css", "h1 { color: broken }\n");
    sup.wait_for("task `css` failed");
    let badge = browser.wait_for_with(
        "(document.getElementById('__reloadsup-status') || {}).textContent",
        &sup,
    );
    assert_eq!(
        badge,
        "reloadsup: task `css` failed: `python3 build.py` exit status: 1",
        "{}",
        sup.stderr()
    );
    assert_eq!(
        browser.eval("window.__marker"),
        1,
        "no reload for a failed step"
    );

    // Fixed: the step runs through, its output is swapped in, and the badge goes.
    browser.assert_css_swapped(&sup, || {
        p.write("styles/site.css", "h1 { color: rgb(0, 0, 255) }\n")
    });
    browser.wait_for_with("!document.getElementById('__reloadsup-status')", &sup);

    // A page opened while a step has failed shows it from the start.
    p.write("styles/site.css", "h1 { color: broken }\n");
    sup.wait_for_n("task `css` failed", 2);
    browser.open(&format!("http://127.0.0.1:{port}/"));
    browser.wait_for_with(
        "(document.getElementById('__reloadsup-status') || {}).textContent === \
         'reloadsup: task `css` failed: `python3 build.py` exit status: 1'",
        &sup,
    );
}

/// A dev server that builds its stylesheet and image on request, as Sass or image
/// middleware does: a file that says `broken` is a 500. It counts the requests for
/// fresh copies (`?reloadsup=`) of each at `/hits`, and exits at start-up while
/// `app.py` says `crash`.
const BUILDING_APP: &str = r#"
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
if "crash" in open(__file__).read().split("BUILDING_APP")[0]:
    sys.exit("SyntaxError: the app is broken")
hits = {}
class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        path, _, query = self.path.partition("?")
        if "reloadsup=" in query:
            hits[path] = hits.get(path, 0) + 1
        if path == "/hits":
            body, kind, code = repr(hits).encode(), "text/plain", 200
        elif path in ("/static/site.css", "/static/pic.svg"):
            body = open(path[1:], "rb").read()
            kind = "text/css" if path.endswith(".css") else "image/svg+xml"
            code = 200
            if b"broken" in body:
                body, kind, code = b"cannot build it", "text/plain", 500
        else:
            body, kind, code = open("index.html", "rb").read(), "text/html; charset=utf-8", 200
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

/// An SVG image `width` pixels wide.
fn svg(width: u32) -> String {
    format!(
        "<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='10'>\
         <rect width='{width}' height='10'/></svg>"
    )
}

/// A stylesheet or image that cannot load — the server answers 500 for it, or is down
/// — never leaves the page worse than before: the last good one stays (the old
/// stylesheet was dropped as its replacement failed, the page left unstyled; an image
/// went broken), and the page shows the new one once the server is back.
#[test]
fn an_asset_that_cannot_load_keeps_the_last_good_one() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let p = Project::new();
    let (port, reload) = (free_port(), free_port());
    p.write("app.py", &format!("# BUILDING_APP\n{BUILDING_APP}"));
    p.write("static/site.css", "h1 { color: rgb(255, 0, 0) }\n");
    p.write("static/pic.svg", &svg(30));
    p.write(
        "index.html",
        &format!(
            "<!doctype html><html><head><meta charset=utf-8><title>t</title>\n\
             <link rel=\"stylesheet\" href=\"/static/site.css\"></head><body>\n\
             <h1>page</h1><img src=\"/static/pic.svg\">\n\
             <script src=\"http://127.0.0.1:{reload}/livereload.js\"></script>\n</body></html>\n"
        ),
    );
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'app.py', '{port}', '{}']\nready = {{ port = {port} }}\n\
             [watch]\nfile_dep = ['*.py', '*.html']\n\
             [reload]\nport = {reload}\nassets = ['static/*']\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    let origin = format!("http://127.0.0.1:{port}");
    browser.open(&format!("{origin}/"));
    browser.wait_for("window.__reloadsup && window.__reloadsup.connected");
    browser.eval("window.__marker = 1");
    let red = "getComputedStyle(document.querySelector('h1')).color === 'rgb(255, 0, 0)'";
    let hits = |path: &str| {
        format!("fetch('/hits').then(r => r.text()).then(t => t.includes(\"'{path}'\"))")
    };

    // The server answers 500 for the new stylesheet and image: the old ones stay.
    p.write("static/site.css", "h1 { color: broken }\n");
    browser.wait_for_with(&hits("/static/site.css"), &sup);
    browser.wait_for_with(
        "document.querySelectorAll('link[rel=stylesheet]').length === 1 && \
         !document.querySelector('link[href*=reloadsup]')",
        &sup,
    );
    assert_eq!(browser.eval(red), true, "the last good stylesheet stays");
    p.write("static/pic.svg", &format!("{} <!-- broken -->", svg(40)));
    browser.wait_for_with(&hits("/static/pic.svg"), &sup);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        browser.eval(
            "[document.images[0].naturalWidth, document.images[0].src.includes('reloadsup=')]"
        ),
        serde_json::json!([30, false]),
        "the last good image stays"
    );

    // The server down: the page keeps its styles, and its reload at the next good start
    // brings the new ones.
    p.write("app.py", &format!("# crash BUILDING_APP\n{BUILDING_APP}"));
    browser.wait_for_with("window.__reloadsup.status === 'failed'", &sup);
    p.write("static/site.css", "h1 { color: rgb(0, 0, 255) }\n");
    sup.wait_for("updated 1 browser(s): static/site.css");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(browser.eval(red), true, "the page keeps its styles");
    assert_eq!(browser.eval("window.__marker"), 1, "no reload");
    p.write("app.py", &format!("# BUILDING_APP\n{BUILDING_APP}"));
    browser.wait_for_with(
        "getComputedStyle(document.querySelector('h1')).color === 'rgb(0, 0, 255)'",
        &sup,
    );
}

/// A proxy in front of a server run elsewhere (`[proxy]` with no `[server]`, as
/// browser-sync's `--proxy` is used): refused before. The page opened before that
/// server is up asks again by itself and shows the real page once it answers; a saved
/// file reloads it.
#[test]
fn a_proxy_alone_fronts_a_server_run_elsewhere() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let p = Project::new();
    let (listen, upstream, reload) = (free_port(), free_port(), free_port());
    p.write(
        "site/index.html",
        "<!doctype html><title>t</title><h1>v1</h1>\n",
    );
    p.write(
        "reload.toml",
        &format!(
            "[proxy]\nlisten = '127.0.0.1:{listen}'\nupstream = '127.0.0.1:{upstream}'\n\
             [reload]\nport = {reload}\n[watch]\nfile_dep = ['site/*.html']\n"
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("proxy on ");
    browser.open(&format!("http://127.0.0.1:{listen}/"));
    assert_eq!(
        browser.eval("document.querySelector('h1').textContent"),
        "502: cannot reach the dev server"
    );
    // The server, started by someone else (its token lets the project stop it).
    let mut server = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, http.server as h\n\
             h.ThreadingHTTPServer(('127.0.0.1', int(sys.argv[1])), h.SimpleHTTPRequestHandler)\
             .serve_forever()",
            &upstream.to_string(),
            &p.token,
        ])
        .current_dir(p.path("site"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    browser.wait_for_with(
        "document.querySelector('h1') && document.querySelector('h1').textContent === 'v1'",
        &sup,
    );
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write(
            "site/index.html",
            "<!doctype html><title>t</title><h1>v2</h1>\n",
        )
    });
    let _ = server.kill();
    let _ = server.wait();
}

/// A service worker that passes page loads on (`fetch(event.request)`, as offline-first
/// and caching workers do) sends them as `Sec-Fetch-Dest: empty` with
/// `Sec-Fetch-Mode: navigate`: the proxy took them for `fetch()`es, so a page the
/// worker controlled got no reload script and stopped reloading without a word.
#[test]
fn a_page_a_service_worker_loads_is_injected_and_reloads() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let p = Project::new();
    let (listen, upstream, reload) = (free_port(), free_port(), free_port());
    p.write("app.py", APP);
    p.write(
        "sw.js",
        "self.addEventListener('install', () => self.skipWaiting());\n\
         self.addEventListener('activate', (e) => e.waitUntil(clients.claim()));\n\
         self.addEventListener('fetch', (e) => {\n\
           if (e.request.mode === 'navigate') e.respondWith(fetch(e.request));\n\
         });\n",
    );
    let template = |heading: &str| {
        format!(
            "<!doctype html><html><head><title>t</title></head><body><h1>{heading}</h1>\n\
             <script>navigator.serviceWorker.register('/sw.js')</script>\n</body></html>\n"
        )
    };
    p.write("templates/index.html", &template("v1"));
    p.write(
        "reload.toml",
        &format!(
            "[server]\ncommand = ['python3', 'app.py', '{upstream}', '{}']\n\
             [watch]\nfile_dep = ['templates/*.html']\n[reload]\nport = {reload}\n\
             [proxy]\nlisten = '127.0.0.1:{listen}'\nupstream = '127.0.0.1:{upstream}'\n",
            p.token
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("ready in ");
    let url = format!("http://127.0.0.1:{listen}/");
    browser.open(&url);
    browser.wait_for_with("navigator.serviceWorker.controller !== null", &sup);
    // Loaded again, now through the worker.
    browser.open(&url);
    browser.wait_for_with(
        "navigator.serviceWorker.controller !== null && window.__reloadsup \
         && window.__reloadsup.connected",
        &sup,
    );
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write("templates/index.html", &template("v2"))
    });
}
