//! `reloadsup serve`: a static site with live reload.

use std::os::unix::fs::symlink;
use std::time::Duration;

use crate::util::{
    Browser, LiveReloadClient, Project, Sup, assert_injected_for_navigations_only, free_port, http,
};

/// The first bytes of a real PNG (signature and IHDR of a 1×1 image) and more binary.
const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52,
    0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4,
    0x89, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00,
    0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae,
    0x42, 0x60, 0x82,
];

/// A site in `site/` with a secret beside it, served on a free port.
fn site() -> (Project, u16, Sup) {
    let p = Project::new();
    p.write(
        "site/index.html",
        "<!doctype html><html><head><title>t</title><link rel=\"stylesheet\" href=\"/css/site.css\">\
         </head><body><h1>v1</h1></body></html>",
    );
    p.write("site/css/site.css", "h1 { color: rgb(255, 0, 0) }\n");
    p.write("site/app.js", "console.log(1)\n");
    p.write(
        "site/logo.svg",
        "<svg xmlns=\"http://www.w3.org/2000/svg\"/>",
    );
    p.write("site/data.json", "{\"a\":1}");
    p.write("site/docs/readme.txt", "hello\n");
    p.write("site/.env", "SECRET=1\n");
    p.write("secret.txt", "outside the root\n");
    std::fs::write(p.path("site/img.png"), PNG).unwrap();
    std::fs::write(p.path("site/mod.wasm"), b"\0asm\x01\0\0\0").unwrap();
    symlink(p.path("secret.txt"), p.path("site/leak.txt")).unwrap();
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let sup = p.start(&["serve", "site", "--listen", &listen]);
    sup.wait_for("serving `");
    sup.wait_for("watching ");
    (p, port, sup)
}

#[test]
fn files_types_head_range_listing_errors() {
    let (p, port, _sup) = site();
    let png = http(port, "GET", "/img.png", &[]);
    assert_eq!(png.status, 200);
    assert_eq!(png.body, PNG, "binary bytes unchanged");
    assert_eq!(png.header("cache-control"), Some("no-store"));
    let js = http(port, "GET", "/app.js", &[]);
    assert_eq!(js.body, p.read("site/app.js").as_bytes());
    for (path, content_type) in [
        ("/", "text/html; charset=utf-8"),
        ("/css/site.css", "text/css; charset=utf-8"),
        ("/app.js", "text/javascript; charset=utf-8"),
        ("/logo.svg", "image/svg+xml; charset=utf-8"),
        ("/img.png", "image/png"),
        ("/data.json", "application/json; charset=utf-8"),
        ("/mod.wasm", "application/wasm"),
    ] {
        assert_eq!(
            http(port, "GET", path, &[]).header("content-type"),
            Some(content_type),
            "{path}"
        );
    }
    let head = http(port, "HEAD", "/img.png", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(
        head.header("content-length"),
        Some(PNG.len().to_string().as_str())
    );

    let range = http(port, "GET", "/img.png", &[("Range", "bytes=1-3")]);
    assert_eq!(range.status, 206);
    assert_eq!(range.body, b"PNG");
    assert_eq!(
        range.header("content-range"),
        Some(format!("bytes 1-3/{}", PNG.len()).as_str())
    );
    assert_eq!(
        http(port, "GET", "/img.png", &[("Range", "bytes=999-")]).status,
        416
    );

    let listing = http(port, "GET", "/docs/", &[]);
    assert_eq!(listing.status, 200);
    assert!(
        listing
            .text()
            .contains("<a href=\"./readme.txt\">readme.txt</a>"),
        "{}",
        listing.text()
    );
    let top = http(port, "GET", "/css/", &[]).text();
    assert!(top.contains("site.css"));
    let redirect = http(port, "GET", "/docs", &[]);
    assert_eq!(
        (redirect.status, redirect.header("location")),
        (301, Some("/docs/"))
    );
    assert_eq!(http(port, "GET", "/nope.html", &[]).status, 404);
    assert_eq!(http(port, "POST", "/", &[]).status, 405);
    assert_eq!(
        http(port, "DELETE", "/app.js", &[]).header("allow"),
        Some("GET, HEAD")
    );
}

#[test]
fn nothing_outside_the_folder_is_ever_served() {
    let (_p, port, _sup) = site();
    for path in [
        "/../secret.txt",
        "/css/../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E/%2E%2E/secret.txt",
        "/css%2f..%2f..%2fsecret.txt",
        "/..%5csecret.txt",
        "/css/..\\..\\secret.txt",
        "/index.html%00",
        "/leak.txt",
        "/.env",
    ] {
        let response = http(port, "GET", path, &[]);
        assert!(
            matches!(response.status, 400 | 403 | 404),
            "{path}: {}",
            response.status
        );
        assert!(
            !response.text().contains("outside the root"),
            "{path} leaked"
        );
        assert!(!response.text().contains("SECRET"), "{path} leaked");
    }
}

/// The status line's code for a GET of `/` with `host` as its `Host` header.
fn status_for_host(port: u16, host: &str) -> u16 {
    status_for(port, "/", host)
}

/// The status line's code for a GET of `target` with `host` as its `Host` header.
fn status_for(port: u16, target: &str, host: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    let _ = stream.read_to_string(&mut answer);
    answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"))
}

#[test]
fn only_loopback_names_the_listen_address_and_ip_addresses_are_served() {
    let (_p, port, _sup) = site();
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("app.localhost:{port}"),
        format!("192.168.1.20:{port}"),
        format!("[::1]:{port}"),
    ] {
        assert_eq!(status_for_host(port, &host), 200, "{host}");
    }
    // DNS rebinding: a page on another name reading the folder.
    assert_eq!(status_for_host(port, "evil.example"), 403);
    assert_eq!(status_for_host(port, &format!("evil.example:{port}")), 403);
    assert_eq!(status_for_host(port, &format!("127.0.0.1:{port}:9")), 400);
}

/// The status of a WebSocket upgrade of the page's reload socket, sent with these
/// `Host` and `Origin` headers.
fn upgrade_status(port: u16, host: &str, origin: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET /__reloadsup/livereload HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
         Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).unwrap();
    String::from_utf8_lossy(&answer[9..12]).parse().unwrap()
}

/// A page opened at a LAN address (or any host the site serves) connects its reload
/// socket on its own origin; a page of another origin does not.
#[test]
fn the_pages_own_origin_opens_its_reload_socket() {
    let (_p, port, sup) = site();
    for host in [format!("192.168.1.20:{port}"), format!("localhost:{port}")] {
        let origin = format!("http://{host}");
        assert_eq!(upgrade_status(port, &host, &origin), 101, "{host}");
    }
    let lan = format!("192.168.1.20:{port}");
    assert_eq!(upgrade_status(port, &lan, "http://evil.example"), 403);
    // Bare `serve` reads no task file: the warning says where the key would go.
    sup.wait_for(
        "refused a browser reload connection from `http://evil.example`; to accept it, \
         write a task file (`reloadsup init`) and add it to `reload.allow_origins`",
    );
    // A `file://` page (or a sandboxed frame) has the origin `null`: refused, and the
    // warning says what it is and how to accept it.
    assert_eq!(upgrade_status(port, &lan, "null"), 403);
    sup.wait_for(
        "refused a browser reload connection from a page with no origin (`null`: a file:// \
         page or a sandboxed frame); to accept such pages, add \"null\" to \
         `reload.allow_origins` in a task file (`reloadsup init`)",
    );
    // An absolute-form request names its host in its target, which is what is judged:
    // a `Host` header of the same foreign name makes its origin no "own" one.
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET http://127.0.0.1:{port}/__reloadsup/livereload HTTP/1.1\r\nHost: evil.example\r\n\
         Origin: http://evil.example\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    )
    .unwrap();
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(
        &answer, b"HTTP/1.1 403",
        "a foreign origin through an absolute target"
    );
    assert_eq!(
        upgrade_status(port, &format!("127.0.0.1:{port}"), &format!("http://{lan}")),
        403,
        "a LAN origin on another host's socket"
    );
}

/// A request head larger than the static server reads (64 KiB) is refused (431) rather
/// than held: a connection trickling one in holds no more memory than that.
#[test]
fn an_oversized_request_head_is_refused() {
    use std::io::{Read, Write};
    let (_p, port, _sup) = site();
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let padding = "a".repeat(200 * 1024);
    let _ = write!(
        stream,
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Padding: {padding}\r\n\r\n"
    );
    let mut answer = [0u8; 12];
    stream.read_exact(&mut answer).unwrap();
    assert_eq!(&answer, b"HTTP/1.1 431");
    assert_eq!(http(port, "GET", "/index.html", &[]).status, 200);
}

#[test]
fn big_and_empty_files_stream_and_odd_ranges_are_answered() {
    let (p, port, sup) = site();
    // A 1.5 GB file (sparse): a HEAD and a range read next to nothing of it.
    let big = std::fs::File::create(p.path("site/huge.bin")).unwrap();
    big.set_len(1_500_000_000).unwrap();
    let head = http(port, "HEAD", "/huge.bin", &[]);
    assert_eq!(head.header("content-length"), Some("1500000000"));
    let one = http(
        port,
        "GET",
        "/huge.bin",
        &[("Range", "bytes=1000000000-1000000001")],
    );
    assert_eq!((one.status, one.body.as_slice()), (206, &[0u8, 0][..]));
    assert_eq!(
        one.header("content-range"),
        Some("bytes 1000000000-1000000001/1500000000")
    );
    // A whole download goes piece by piece, while other requests are answered.
    let mut download = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    std::io::Write::write_all(
        &mut download,
        format!("GET /huge.bin HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let asked = std::time::Instant::now();
    assert_eq!(http(port, "GET", "/app.js", &[]).status, 200);
    assert!(
        asked.elapsed() < Duration::from_secs(1),
        "{:?}",
        asked.elapsed()
    );
    // A page too large to read whole (200 MB) streams as it is, without the script.
    let report = std::fs::File::create(p.path("site/report.html")).unwrap();
    report.set_len(200_000_000).unwrap();
    let navigation = [("Accept", "text/html"), ("Sec-Fetch-Dest", "document")];
    let head = http(port, "HEAD", "/report.html", &navigation);
    assert_eq!(head.header("content-length"), Some("200000000"));
    let status = std::fs::read_to_string(format!("/proc/{}/status", sup.pid())).unwrap();
    let peak_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        .unwrap();
    assert!(peak_kib < 100_000, "peak memory {peak_kib} KiB");
    drop(download);
    // An empty file: any byte range is unsatisfiable, and nothing breaks.
    p.write("site/empty.txt", "");
    let empty = http(port, "GET", "/empty.txt", &[("Range", "bytes=0-")]);
    assert_eq!(
        (empty.status, empty.header("content-range")),
        (416, Some("bytes */0"))
    );
    assert_eq!(http(port, "GET", "/empty.txt", &[]).status, 200);
    // A range in another unit is ignored: the whole file.
    let items = http(port, "GET", "/app.js", &[("Range", "items=0-5")]);
    assert_eq!(items.status, 200);
    assert_eq!(items.body, p.read("site/app.js").as_bytes());
}

/// Ranges as RFC 9110 has them, a folder's redirect that cannot leave the site, and a
/// page's own encoding left to it.
#[test]
fn ranges_redirects_and_encodings_as_browsers_expect() {
    let (p, port, _sup) = site();
    p.write("site/h5.txt", "hello");
    let get = |path: &str, headers: &[(&str, &str)]| http(port, "GET", path, headers);
    // A suffix longer than the file is the whole file; a last offset past the end, the end.
    let suffix = get("/h5.txt", &[("Range", "bytes=-10")]);
    assert_eq!(
        (suffix.status, suffix.body.as_slice()),
        (206, &b"hello"[..])
    );
    assert_eq!(suffix.header("content-range"), Some("bytes 0-4/5"));
    let tail = get("/h5.txt", &[("Range", "bytes=3-100")]);
    assert_eq!((tail.status, tail.body.as_slice()), (206, &b"lo"[..]));
    assert_eq!(get("/h5.txt", &[("Range", "bytes=9-")]).status, 416);
    // The unit in any case; the last no bytes, which no file has.
    assert_eq!(get("/h5.txt", &[("Range", "BYTES=0-1")]).status, 206);
    assert_eq!(get("/h5.txt", &[("Range", "bytes=-0")]).status, 416);
    // The last bytes of an empty file: all of it, that is nothing.
    p.write("site/empty.txt", "");
    let nothing = get("/empty.txt", &[("Range", "bytes=-5")]);
    assert_eq!((nothing.status, nothing.body.len()), (200, 0));
    // The whole file: no validator can match an `If-Range`, several ranges (overlapping
    // or not), a range not well formed.
    for (range, if_range) in [
        ("bytes=0-2", Some("\"stale\"")),
        ("bytes=0-2", Some("Wed, 21 Oct 2015 07:28:00 GMT")),
        ("bytes=0-1,0-1", None),
        ("bytes=0-1,3-4", None),
        ("bytes=5-3,0-1", None),
    ] {
        let mut headers = vec![("Range", range)];
        headers.extend(if_range.map(|v| ("If-Range", v)));
        let whole = get("/h5.txt", &headers);
        assert_eq!(
            (whole.status, whole.body.as_slice()),
            (200, &b"hello"[..]),
            "{headers:?}"
        );
    }
    // `//evil.example` names the folder `evil.example`; its redirect stays on this site.
    p.write("site/evil.example/index.html", "<p>x");
    let moved = get("//evil.example", &[]);
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/evil.example/"));
    // A target that is no path is a malformed request, not a host to refuse.
    let host = format!("127.0.0.1:{port}");
    assert_eq!(status_for(port, "style.css", &host), 400);
    // A page that names its encoding is not told it is UTF-8.
    std::fs::write(
        p.path("site/latin.html"),
        b"<meta charset=\"iso-8859-1\"><p>caf\xe9</p>",
    )
    .unwrap();
    assert_eq!(
        get("/latin.html", &[]).header("content-type"),
        Some("text/html")
    );
    assert_eq!(
        get("/index.html", &[]).header("content-type"),
        Some("text/html; charset=utf-8")
    );
}

/// A page whose `<meta>` policy allows scripts by nonce gets the tag with that nonce,
/// as through the proxy.
#[test]
fn a_meta_policy_nonce_goes_on_the_tag() {
    let (p, port, _sup) = site();
    p.write(
        "site/csp.html",
        "<html><head><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'self'; \
         script-src 'nonce-abc123'\"><script nonce=\"abc123\">1</script></head><body></body></html>",
    );
    let page = http(
        port,
        "GET",
        "/csp.html",
        &[("Accept", "text/html"), ("Sec-Fetch-Dest", "document")],
    );
    // Without the nonce the browser blocks the script, and the page never reloads.
    assert!(
        page.text()
            .contains(" defer nonce=\"abc123\"></script></head>"),
        "{}",
        page.text()
    );
}

/// An XHTML page gets the tag in XML form.
#[test]
fn xhtml_pages_get_the_script_too() {
    let (p, port, _sup) = site();
    p.write(
        "site/page.xhtml",
        "<html xmlns=\"http://www.w3.org/1999/xhtml\"><head><title>x</title></head><body/></html>",
    );
    let page = http(
        port,
        "GET",
        "/page.xhtml",
        &[("Accept", "text/html"), ("Sec-Fetch-Dest", "document")],
    );
    assert_eq!(page.header("content-type"), Some("application/xhtml+xml"));
    // In XML form: a bare `defer` would be an XML error that blanks the page.
    assert!(
        page.text().contains("defer=\"defer\"></script></head>"),
        "{}",
        page.text()
    );
}

#[test]
fn pages_get_the_script_on_the_same_origin() {
    let (_p, port, _sup) = site();
    assert_injected_for_navigations_only(port);
    let script = http(port, "GET", "/__reloadsup/livereload.js", &[]);
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[test]
fn saves_reload_connected_clients() {
    let (p, port, sup) = site();
    let mut client = LiveReloadClient::connect_at(port, "/__reloadsup/livereload");
    p.write("site/index.html", "<h1>v2</h1>");
    let message = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(
        crate::util::standard_fields(message),
        serde_json::json!({"command": "reload", "path": "index.html", "liveCSS": false, "liveImg": false})
    );
    p.write("site/css/site.css", "h1 { color: blue }");
    let message = client.next(Duration::from_secs(10)).expect("a css reload");
    assert_eq!(message["path"], "css/site.css");
    assert_eq!(message["liveCSS"], true);
    assert_eq!(client.next(crate::util::QUIET), None, "one reload per save");
    assert!(sup.stderr().contains("updated 1 browser(s): css/site.css"));
}

/// A page that loads a livereload.js of its own (the README's snippet for `run`) gets
/// no tag, and `serve` says once that nothing of it answers that one.
#[test]
fn a_page_with_its_own_client_is_warned_about_once() {
    let (p, port, sup) = site();
    p.write(
        "site/snip.html",
        "<html><head><script src=\"http://127.0.0.1:35729/livereload.js\"></script></head>\
         <body>x</body></html>",
    );
    let navigation = [("Accept", "text/html"), ("Sec-Fetch-Dest", "document")];
    for _ in 0..2 {
        let page = http(port, "GET", "/snip.html", &navigation);
        assert!(!page.text().contains("/__reloadsup/"), "{}", page.text());
    }
    sup.wait_for("`snip.html` loads a livereload.js of its own, so none is put in");
    assert_eq!(sup.count("loads a livereload.js of its own"), 1);
    // Pages that get the tag are not warned about.
    http(port, "GET", "/index.html", &navigation);
    assert_eq!(sup.count("loads a livereload.js of its own"), 1);
}

/// A page with a hand-written `<script src="/livereload.js">` (python-livereload's and
/// mkdocs' snippet: the client from the page's own origin, its socket there too) reloads:
/// the site answers the LiveReload protocol's own paths where no file of that name is,
/// and says nothing about that page. A file of that name is served as it is.
#[test]
fn a_page_loading_livereload_js_from_the_site_reloads() {
    let (p, port, sup) = site();
    p.write(
        "site/own.html",
        "<html><head><script src=\"/livereload.js\"></script></head><body>x</body></html>",
    );
    let navigation = [("Accept", "text/html"), ("Sec-Fetch-Dest", "document")];
    let page = http(port, "GET", "/own.html", &navigation);
    assert!(!page.text().contains("/__reloadsup/"), "{}", page.text());
    let script = http(port, "GET", "/livereload.js", &[]);
    assert_eq!(script.status, 200);
    assert!(
        script
            .header("content-type")
            .unwrap()
            .contains("javascript"),
        "{:?}",
        script.headers
    );
    let mut client = LiveReloadClient::connect_at(port, "/livereload");
    p.write("site/own.html", "<html><body>y</body></html>");
    let message = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(message["command"], "reload", "{message}");
    assert_eq!(message["path"], "own.html", "{message}");
    assert_eq!(sup.count("loads a livereload.js of its own"), 0);
    // Tags the site does not answer are still warned about: beside a page in a folder
    // (`/docs/livereload.js`, a 404), from another host.
    p.write(
        "site/docs/sub.html",
        "<html><head><script src=\"livereload.js\"></script></head><body>x</body></html>",
    );
    p.write(
        "site/cdn.html",
        "<html><head><script src=\"//otherhost/livereload.js\"></script></head><body></body></html>",
    );
    http(port, "GET", "/docs/sub.html", &navigation);
    http(port, "GET", "/cdn.html", &navigation);
    sup.wait_for("`docs/sub.html` loads a livereload.js of its own");
    sup.wait_for("`cdn.html` loads a livereload.js of its own");
    p.write("site/livereload.js", "// the site's own\n");
    let own = http(port, "GET", "/livereload.js", &[]);
    assert_eq!(own.text(), "// the site's own\n");
}

/// Under `run` with `[serve]`, a page whose own snippet names another port than the
/// LiveReload port (`reload.port` changed, the snippet not) is warned about once; one
/// naming the open port is not.
#[test]
fn a_page_whose_client_names_another_port_is_warned_about() {
    let p = Project::new();
    let (site_port, reload_port) = (free_port(), free_port());
    let other = if reload_port == 35729 { 35730 } else { 35729 };
    let snippet = |port: u16| {
        format!(
            "<html><head><script src=\"http://localhost:{port}/livereload.js\"></script>\
             </head><body>x</body></html>"
        )
    };
    p.write("public/old.html", &snippet(other));
    p.write("public/kept.html", &snippet(reload_port));
    p.write(
        "reload.toml",
        &format!(
            "[serve]\nroot = \"public\"\nlisten = \"127.0.0.1:{site_port}\"\n\
             [reload]\nport = {reload_port}\n"
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("watching ");
    let navigation = [("Accept", "text/html"), ("Sec-Fetch-Dest", "document")];
    for page in ["/kept.html", "/old.html", "/old.html"] {
        let answer = http(site_port, "GET", page, &navigation);
        assert!(
            !answer.text().contains("/__reloadsup/"),
            "{}",
            answer.text()
        );
    }
    sup.wait_for(&format!(
        "`old.html` loads a livereload.js of its own, so none is put in, and it names \
         port {other}, but live reload is on port {reload_port} (`reload.port`)"
    ));
    assert_eq!(sup.count("loads a livereload.js of its own"), 1);
}

/// reloadsup's resident memory in KiB.
fn rss_kib(sup: &Sup) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", sup.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A client that sends pings and reads none of the pongs costs a bounded amount of
/// memory: every pong was kept, 110 MB a second.
#[test]
fn a_client_that_reads_no_pongs_does_not_grow_memory() {
    use std::io::Write as _;
    let (_p, port, sup) = site();
    let url = format!("ws://127.0.0.1:{port}/__reloadsup/livereload");
    let stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let (mut ws, _) = tungstenite::client(url.as_str(), stream).unwrap();
    let before = rss_kib(&sup);
    // Masked ping frames (a zero mask key) with 125-byte payloads, never a read.
    let mut frame = vec![0x89, 0x80 | 125, 0, 0, 0, 0];
    frame.extend_from_slice(&[b'p'; 125]);
    let blob = frame.repeat(1000);
    let socket = ws.get_mut();
    socket
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let started = std::time::Instant::now();
    let mut sent = 0usize;
    while started.elapsed() < Duration::from_secs(3) && socket.write_all(&blob).is_ok() {
        sent += blob.len();
    }
    let grown = rss_kib(&sup).saturating_sub(before);
    assert!(sent > 20 << 20, "the pings went out: {sent} bytes");
    assert!(
        grown < 32 * 1024,
        "grew {grown} KiB for {sent} bytes of pings"
    );
}

/// A few stylesheets saved together are swapped a message each, under one status
/// line; a build that rewrites hundreds reloads the page once (a message per file
/// overran the page's socket, which was dropped).
#[test]
fn many_stylesheets_at_once_reload_the_page_once() {
    let (p, port, sup) = site();
    let mut client = LiveReloadClient::connect_at(port, "/__reloadsup/livereload");
    std::fs::create_dir(p.path("site/theme")).unwrap();
    sup.wait_for("watching");
    for name in ["a", "b", "c", "d"] {
        p.write(&format!("site/theme/{name}.css"), "p {}");
    }
    let mut swapped = Vec::new();
    while let Some(message) = client.next(crate::util::QUIET) {
        assert_eq!(message["liveCSS"], true, "{message}");
        swapped.push(message["path"].as_str().unwrap().to_string());
    }
    assert_eq!(swapped.len(), 4, "{swapped:?}");
    // One status line for the batch (two, should a busy machine split it), not one per
    // file.
    sup.wait_for("updated 1 browser(s): theme/a.css, ");
    assert!(
        sup.count("updated 1 browser(s): theme/") <= 2,
        "{}",
        sup.stderr()
    );
    for i in 0..400 {
        p.write(&format!("site/theme/f{i:03}.css"), "p {}");
    }
    let first = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(
        first["liveCSS"], false,
        "a page reload, not 400 swaps: {first}"
    );
    // (On a busy machine a pause in the writing may split the burst: its tail, if
    // short, is swapped as a batch of its own. Never 400 messages.)
    let mut more = 0;
    while client.next(crate::util::QUIET).is_some() {
        more += 1;
    }
    assert!(more <= 32, "{more} more messages");
    sup.wait_for("reloaded 1 browser(s): theme/f000.css, theme/f001.css, theme/f002.css (+");
}

#[test]
fn default_port_moves_on_when_taken_and_lan_is_warned() {
    let p = Project::new();
    p.write("index.html", "x");
    // Hold the default port if it is free, so the fallback must happen.
    let held = std::net::TcpListener::bind("127.0.0.1:5000");
    let sup = p.start(&["serve"]);
    sup.wait_for("serving `");
    if held.is_ok() {
        sup.wait_for("port 5000 is taken; serving on port");
    }
    drop(sup);
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let lan = p.start(&["serve", "--listen", &listen]);
    lan.wait_for("every device on the network can read this folder");
    assert_eq!(http(port, "GET", "/index.html", &[]).text(), "x");
    let taken = p.output(&["serve", "--listen", &listen]);
    assert_eq!(taken.status.code(), Some(1));
    assert!(
        taken.stderr.contains(&format!(
            "cannot listen on 0.0.0.0:{port} (set by `--listen`): "
        )),
        "{}",
        taken.stderr
    );
}

#[test]
fn a_real_browser_sees_text_updates_and_css_swaps() {
    let Some(mut browser) = Browser::launch() else {
        return;
    };
    let (p, port, sup) = site();
    browser.open(&format!("http://127.0.0.1:{port}/"));
    browser.assert_page_reloaded(&sup, "v2", || {
        p.write(
            "site/index.html",
            "<!doctype html><html><head><link rel=\"stylesheet\" href=\"/css/site.css\"></head>\
             <body><h1>v2</h1></body></html>",
        )
    });
    browser.assert_css_swapped(&sup, || {
        p.write("site/css/site.css", "h1 { color: rgb(0, 0, 255) }\n")
    });
    // A sheet imported by a `<style>` element is swapped in place too.
    p.write("site/css/parts/inl.css", "#q { color: rgb(255, 0, 0) }\n");
    browser.assert_page_reloaded(&sup, "v3", || {
        p.write(
            "site/index.html",
            "<!doctype html><html><head><link rel=\"stylesheet\" href=\"/css/site.css\">\
             <style>@import url(\"css/parts/inl.css\");</style></head>\
             <body><h1>v3</h1><p id=q>q</p></body></html>",
        )
    });
    browser.wait_for("getComputedStyle(document.getElementById('q')).color === 'rgb(255, 0, 0)'");
    browser.eval("window.__marker = 7");
    p.write("site/css/parts/inl.css", "#q { color: rgb(0, 0, 255) }\n");
    browser.wait_for_with(
        "getComputedStyle(document.getElementById('q')).color === 'rgb(0, 0, 255)'",
        &sup,
    );
    assert_eq!(browser.eval("window.__marker"), 7, "no page reload");
    // `serve` itself stopped, the page edited meanwhile, `serve` started again: the
    // page reconnects to a new instance and reloads once, showing the edit.
    let mut sup = sup;
    sup.signal(nix::sys::signal::Signal::SIGINT);
    sup.wait_exit();
    p.write(
        "site/index.html",
        "<!doctype html><html><head></head><body><h1>v4</h1></body></html>",
    );
    let listen = format!("127.0.0.1:{port}");
    let again = p.start(&["serve", "site", "--listen", &listen]);
    again.wait_for("watching ");
    browser.wait_for("document.querySelector('h1').textContent === 'v4'");
}

/// A `[serve]` site alone with a build step: a save of the step's input (under the
/// default `**`) reloaded the pages before the step's output came, which then could
/// not be swapped in; the output alone now tells the pages.
#[test]
fn a_build_steps_input_does_not_reload_a_site_served_alone() {
    let p = Project::new();
    let port = free_port();
    p.write("public/index.html", "<h1>site</h1>");
    p.write("src/a.css", "h1 { color: red }");
    p.write(
        "reload.toml",
        &format!(
            "[serve]\nroot = \"public\"\nlisten = \"127.0.0.1:{port}\"\n\
             [reload]\nenabled = false\n\
             [[task]]\nname = \"css\"\nfile_dep = [\"src/*.css\"]\n\
             actions = [\"cp src/a.css public/a.css\"]\n"
        ),
    );
    let sup = p.start(&["run"]);
    sup.wait_for("watching ");
    let mut client = LiveReloadClient::connect_at(port, "/__reloadsup/livereload");
    p.write("src/a.css", "h1 { color: blue }");
    let message = client.next(Duration::from_secs(10)).expect("a message");
    assert_eq!(
        (&message["path"], &message["liveCSS"]),
        (&serde_json::json!("public/a.css"), &serde_json::json!(true)),
        "{message}"
    );
    assert_eq!(client.next(crate::util::QUIET), None, "one message");
}

/// A `[serve]` root that a build step makes (a fresh checkout without Hugo's
/// `public/`) need not be there when reloadsup starts.
#[test]
fn a_serve_root_made_by_a_build_step_is_served() {
    let p = Project::new();
    let port = free_port();
    p.write("src/index.html", "<h1>built</h1>");
    p.write(
        "reload.toml",
        &format!(
            "[serve]\nroot = \"public\"\nlisten = \"127.0.0.1:{port}\"\n\
             [reload]\nenabled = false\n\
             [[task]]\nname = \"site\"\nfile_dep = [\"src/*.html\"]\n\
             actions = [\"mkdir -p public && cp src/index.html public/\"]\n"
        ),
    );
    let check = p.output(&["check"]);
    assert!(check.status.success(), "{}", check.stderr);
    assert!(
        check
            .stdout
            .contains("public (not there yet: a build step must make it) on"),
        "{}",
        check.stdout
    );
    let sup = p.start(&["run"]);
    sup.wait_for("watching ");
    assert_eq!(http(port, "GET", "/", &[]).text(), "<h1>built</h1>");
    assert_eq!(sup.count("does not exist after the build steps ran"), 0);
    drop(sup);
    // A root that no build step makes (mistyped) is said to be missing.
    let toml = p
        .read("reload.toml")
        .replace("root = \"public\"", "root = \"pubilc\"");
    p.write("reload.toml", &toml);
    let sup = p.start(&["run"]);
    sup.wait_for("`serve.root` folder");
    sup.wait_for("pubilc` does not exist after the build steps ran");
    drop(sup);
    // Without a build step, a missing root is still an error that says what to do.
    p.write("reload.toml", "[serve]\nroot = \"site\"\n");
    let bad = p.output(&["check"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        bad.stderr
            .contains("does not exist (make it, or a `[[task]]` that builds it)"),
        "{}",
        bad.stderr
    );
}

#[test]
fn run_serves_a_serve_table_without_a_server_command() {
    let p = Project::new();
    let port = free_port();
    p.write("public/index.html", "<h1>table</h1>");
    p.write(
        "reload.toml",
        &format!(
            "[serve]\nroot = \"public\"\nlisten = \"127.0.0.1:{port}\"\n[reload]\nenabled = false\n"
        ),
    );
    let check = p.output(&["check"]);
    assert!(check.status.success(), "{}", check.stderr);
    assert!(
        check
            .stdout
            .contains("reload.assets `public/**`: 1 file(s)\n  public/index.html\n"),
        "{}",
        check.stdout
    );
    let sup = p.start(&["run"]);
    sup.wait_for("watching ");
    assert_eq!(http(port, "GET", "/", &[]).text(), "<h1>table</h1>");
    let mut client = LiveReloadClient::connect_at(port, "/__reloadsup/livereload");
    p.write("public/index.html", "<h1>changed</h1>");
    let message = client.next(Duration::from_secs(10)).expect("a reload");
    assert_eq!(message["path"], "public/index.html");
    p.write("public/site.css", "h1 { color: red }");
    let message = client.next(Duration::from_secs(10)).expect("a css reload");
    assert_eq!(
        (&message["path"], &message["liveCSS"]),
        (
            &serde_json::json!("public/site.css"),
            &serde_json::json!(true)
        )
    );
    // Without a server, a file beside the site is nothing to the pages.
    p.write("notes.md", "# to do\n");
    assert_eq!(
        client.next(crate::util::QUIET),
        None,
        "no reload for notes.md"
    );
    // The build-script commands drive a server; they say where a site alone stops.
    let status = p.output(&["status"]);
    assert_eq!(status.status.code(), Some(2));
    assert!(
        status.stderr.contains("no `[server]` in the task file")
            && status.stderr.contains("runs under `reloadsup run`"),
        "{}",
        status.stderr
    );
    let missing = p.output(&["-f", "reload.toml", "check"]);
    assert!(missing.status.success());
    p.write("reload.toml", "[serve]\nroot = \"nope\"\n");
    let bad = p.output(&["run"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        bad.stderr.contains("reload.toml:2: `serve.root` folder"),
        "{}",
        bad.stderr
    );
}
