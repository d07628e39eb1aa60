//! Mapping a request path to a file under the served folder, and nothing outside it.
//!
//! The seed's single-file server served any file on the machine. Here every path is
//! decoded one segment at a time, and refused when a segment is `..`, or decodes to
//! something holding a `/` (`%2f`), a backslash or a NUL byte; the result is then
//! resolved through its symlinks and refused unless it is still inside the root. Hidden
//! files and folders (a name starting with `.`, such as `.git` or `.env`) are not served.

use std::ffi::OsStr;
use std::fmt::Write as _;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use percent_encoding::{AsciiSet, CONTROLS, percent_decode_str, percent_encode};

/// What a request path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A file to send.
    File(PathBuf),
    /// A folder without `index.html`: list it.
    Listing(PathBuf),
    /// A folder asked for without its trailing slash: redirect here (relative links in
    /// its index would otherwise resolve against the parent).
    Redirect(String),
    /// Nothing there (or something hidden).
    NotFound,
    /// An attempt to leave the root.
    Forbidden,
}

/// Resolves `raw_path` (the request path, still percent-encoded, without the query)
/// under `root`, which must be canonical.
pub fn resolve(root: &Path, raw_path: &str) -> Target {
    let mut path = root.to_path_buf();
    for raw in raw_path.split('/') {
        let segment: Vec<u8> = percent_decode_str(raw).collect();
        match segment.as_slice() {
            b"" | b"." => continue,
            b".." => return Target::Forbidden,
            bytes if bytes.iter().any(|b| matches!(b, b'/' | b'\\' | 0)) => {
                return Target::Forbidden;
            }
            bytes if is_hidden_name(bytes) => return Target::NotFound,
            bytes => path.push(OsStr::from_bytes(bytes)),
        }
    }
    let Ok(real) = path.canonicalize() else {
        return Target::NotFound;
    };
    if !real.starts_with(root) {
        return Target::Forbidden;
    }
    if is_hidden(&real, root) {
        // Reached through a link (`env.txt -> .env`): as hidden as its target.
        return Target::NotFound;
    }
    // `/docs/` and `/docs/.` name a folder (browsers take the dot away; `curl
    // --path-as-is` does not, and `/page.html/.` served the page).
    let last = raw_path.rsplit('/').next().unwrap_or_default();
    let as_folder = last.is_empty() || percent_decode_str(last).eq(*b".");
    if !real.is_dir() {
        // `/page.html/` names a folder that is not there; a FIFO, socket or device is
        // no file to serve (reading a FIFO would wait for a writer).
        if as_folder || !real.is_file() {
            return Target::NotFound;
        }
        return Target::File(real);
    }
    if !as_folder {
        // One leading slash: `//evil.example` would send the browser to that host.
        return Target::Redirect(format!("/{}/", raw_path.trim_start_matches('/')));
    }
    // An index that is a link to a hidden file (`index.html -> ../.env`) is none.
    match real.join("index.html").canonicalize() {
        Ok(index) if index.starts_with(root) && index.is_file() && !is_hidden(&index, root) => {
            Target::File(index)
        }
        _ => Target::Listing(real),
    }
}

/// Whether `real` (canonical, under `root`) is hidden: a name on its way down from
/// `root` is (see [`is_hidden_name`]).
fn is_hidden(real: &Path, root: &Path) -> bool {
    real.strip_prefix(root).is_ok_and(|rest| {
        rest.components()
            .any(|c| is_hidden_name(c.as_os_str().as_bytes()))
    })
}

/// Whether a file or folder name is hidden: it starts with a dot (but `.well-known`,
/// which sites publish).
fn is_hidden_name(name: &[u8]) -> bool {
    name.starts_with(b".") && name != b".well-known"
}

/// The `Content-Type` for a file, with `charset=utf-8` for text (for an HTML page, see
/// [`with_own_encoding`]). A few types
/// a web developer serves are set here rather than guessed: source maps are JSON,
/// `.cjs` is JavaScript, TypeScript sources are text (`.ts` is also an MPEG transport
/// stream's name, and is served as one when it starts like one).
pub fn content_type(path: &Path) -> String {
    let extension = path
        .extension()
        .and_then(OsStr::to_str)
        .map(str::to_ascii_lowercase);
    let essence = match extension.as_deref() {
        Some("map") => "application/json".to_string(),
        Some("cjs") => "text/javascript".to_string(),
        Some("tsx" | "mts" | "cts") => "text/plain".to_string(),
        Some("ts") if is_transport_stream(&head_of(path, 189)) => "video/mp2t".to_string(),
        Some("ts") => "text/plain".to_string(),
        _ => mime_guess::from_path(path)
            .first_or_octet_stream()
            .essence_str()
            .to_string(),
    };
    let textual = essence.starts_with("text/")
        || matches!(
            essence.as_str(),
            "application/javascript" | "application/json" | "application/xml" | "image/svg+xml"
        );
    if textual {
        format!("{essence}; charset=utf-8")
    } else {
        essence
    }
}

/// `content_type` for an HTML page that starts with `page` (its first bytes, or all of
/// it): without `charset=utf-8` when the page names its own encoding (a `<meta
/// charset>`, a byte-order mark), which the header would override (a page in Latin-1
/// was shown garbled). XHTML is XML, UTF-8 unless its declaration says otherwise, and
/// is given no charset.
pub fn with_own_encoding(content_type: String, page: &[u8]) -> String {
    let head = &page[..page.len().min(ENCODING_PRESCAN)];
    if content_type.starts_with("text/html") && declares_encoding(head) {
        "text/html".to_string()
    } else {
        content_type
    }
}

/// How far into a page a browser looks for its `<meta charset>`.
pub const ENCODING_PRESCAN: usize = 1024;

/// Up to the first `length` bytes of the file at `path` (none if it cannot be read).
pub fn head_of(path: &Path, length: usize) -> Vec<u8> {
    use std::io::Read as _;
    let mut head = Vec::with_capacity(length);
    if let Ok(file) = std::fs::File::open(path) {
        let _ = file.take(length as u64).read_to_end(&mut head);
    }
    head
}

/// Whether a page's first bytes name its encoding: a byte-order mark, or a `<meta>` tag
/// that does (see [`crate::inject::scan::meta_charset`]).
fn declares_encoding(head: &[u8]) -> bool {
    let boms: [&[u8]; 3] = [b"\xEF\xBB\xBF", b"\xFE\xFF", b"\xFF\xFE"];
    boms.iter().any(|bom| head.starts_with(bom)) || crate::inject::scan::meta_charset(head)
}

/// Whether a file starting with `head` is an MPEG transport stream: packets of 188
/// bytes, each starting with the sync byte `0x47` (two of them, so that a short
/// TypeScript file starting with `G` is not taken for one).
fn is_transport_stream(head: &[u8]) -> bool {
    head.first() == Some(&0x47) && head.get(188) == Some(&0x47)
}

/// Characters escaped in the links of a listing.
const PATH_SEGMENT: &AsciiSet = &CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'\\')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// An HTML listing of `dir` (hidden entries left out, folders first), titled with the
/// request path.
pub fn listing(dir: &Path, url_path: &str) -> String {
    // The name's own bytes go into the link (a name that is not UTF-8 still links to
    // itself); the text shown may replace what is not UTF-8.
    let mut entries: Vec<(bool, std::ffi::OsString)> = std::fs::read_dir(dir)
        .map(|it| {
            it.flatten()
                .filter_map(|e| {
                    let name = e.file_name();
                    (!name.as_bytes().starts_with(b".")).then(|| (!e.path().is_dir(), name))
                })
                .collect()
        })
        .unwrap_or_default();
    entries.sort();
    // The path as the user reads it (`/a b/`, not `/a%20b/`).
    let title = crate::inject::escape_html(&percent_decode_str(url_path).decode_utf8_lossy());
    let mut html = format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1>\n<ul>\n"
    );
    if url_path != "/" {
        html.push_str("<li><a href=\"../\">../</a></li>\n");
    }
    for (is_file, name) in entries {
        let slash = if is_file { "" } else { "/" };
        // `./` first: a name with a colon (`javascript:…`, `a:b.txt`) would read as a
        // URL's scheme.
        let href = percent_encode(name.as_bytes(), PATH_SEGMENT);
        let _ = writeln!(
            html,
            "<li><a href=\"./{href}{slash}\">{}{slash}</a></li>",
            crate::inject::escape_html(&name.to_string_lossy())
        );
    }
    html.push_str("</ul>\n</body></html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    struct Site {
        base: PathBuf,
        root: PathBuf,
    }

    impl Site {
        fn new() -> Site {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(0);
            let base = std::env::temp_dir().join(format!(
                "reloadsup-files-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            let _ = fs::remove_dir_all(&base);
            let root = base.join("site");
            fs::create_dir_all(root.join("docs")).unwrap();
            fs::create_dir_all(root.join("app")).unwrap();
            fs::write(root.join("index.html"), "<h1>home</h1>").unwrap();
            fs::write(root.join("app/main.js"), "1").unwrap();
            fs::write(root.join("docs/a b.txt"), "x").unwrap();
            fs::write(root.join(".env"), "SECRET=1").unwrap();
            fs::write(base.join("secret.txt"), "outside").unwrap();
            symlink(base.join("secret.txt"), root.join("leak.txt")).unwrap();
            symlink(&base, root.join("up")).unwrap();
            symlink(root.join("app/main.js"), root.join("inside.js")).unwrap();
            let root = root.canonicalize().unwrap();
            Site { base, root }
        }
    }

    impl Drop for Site {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.base);
        }
    }

    #[test]
    fn files_folders_and_redirects() {
        let s = Site::new();
        assert_eq!(
            resolve(&s.root, "/"),
            Target::File(s.root.join("index.html"))
        );
        assert_eq!(
            resolve(&s.root, "/app/main.js"),
            Target::File(s.root.join("app/main.js"))
        );
        assert_eq!(
            resolve(&s.root, "/docs/a%20b.txt"),
            Target::File(s.root.join("docs/a b.txt"))
        );
        assert_eq!(resolve(&s.root, "/docs"), Target::Redirect("/docs/".into()));
        assert_eq!(
            resolve(&s.root, "/docs/"),
            Target::Listing(s.root.join("docs"))
        );
        assert_eq!(
            resolve(&s.root, "/inside.js"),
            Target::File(s.root.join("app/main.js"))
        );
        assert_eq!(resolve(&s.root, "/nope.html"), Target::NotFound);
        assert_eq!(resolve(&s.root, "/.env"), Target::NotFound);
        // A file is no folder: a trailing slash after it names nothing.
        assert_eq!(resolve(&s.root, "/inside.js/"), Target::NotFound);
        assert_eq!(resolve(&s.root, "/inside.js/."), Target::NotFound);
        assert_eq!(resolve(&s.root, "/inside.js/%2e"), Target::NotFound);
        assert_eq!(
            resolve(&s.root, "/docs/."),
            Target::Listing(s.root.join("docs"))
        );
    }

    /// A link to a hidden file is as hidden as the file; a FIFO is no file (reading it
    /// waited for a writer, and held every other request up meanwhile).
    #[test]
    fn links_to_hidden_files_and_fifos_are_not_served() {
        let s = Site::new();
        symlink(s.root.join(".env"), s.root.join("env.txt")).unwrap();
        assert_eq!(resolve(&s.root, "/env.txt"), Target::NotFound);
        // Nor as a folder's index: the folder is listed instead.
        symlink("../.env", s.root.join("docs/index.html")).unwrap();
        assert_eq!(
            resolve(&s.root, "/docs/"),
            Target::Listing(s.root.join("docs"))
        );
        let fifo = s.root.join("page.html");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert_eq!(resolve(&s.root, "/page.html"), Target::NotFound);
        fs::create_dir_all(s.root.join(".well-known")).unwrap();
        fs::write(s.root.join(".well-known/security.txt"), "x").unwrap();
        assert_eq!(
            resolve(&s.root, "/.well-known/security.txt"),
            Target::File(s.root.join(".well-known/security.txt"))
        );
    }

    #[test]
    fn nothing_outside_the_root() {
        let s = Site::new();
        for path in [
            "/../secret.txt",
            "/app/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E/secret.txt",
            "/app%2f..%2f..%2fsecret.txt",
            "/..%2fsecret.txt",
            "/..%5csecret.txt",
            "/app\\..\\..\\secret.txt",
            "/index.html%00.js",
            "/leak.txt",
            "/up/secret.txt",
        ] {
            let target = resolve(&s.root, path);
            assert!(
                matches!(target, Target::Forbidden | Target::NotFound),
                "{path} gave {target:?}"
            );
        }
    }

    #[test]
    fn content_types() {
        let cases = [
            ("a.html", "text/html; charset=utf-8"),
            ("a.css", "text/css; charset=utf-8"),
            ("a.js", "text/javascript; charset=utf-8"),
            ("a.svg", "image/svg+xml; charset=utf-8"),
            ("a.png", "image/png"),
            ("a.json", "application/json; charset=utf-8"),
            ("a.wasm", "application/wasm"),
            ("a.unknownext", "application/octet-stream"),
            ("a.js.map", "application/json; charset=utf-8"),
            ("a.cjs", "text/javascript; charset=utf-8"),
            ("a.ts", "text/plain; charset=utf-8"),
            ("a.tsx", "text/plain; charset=utf-8"),
        ];
        for (name, expected) in cases {
            assert_eq!(content_type(Path::new(name)), expected, "{name}");
        }
    }

    #[test]
    fn a_page_naming_its_encoding_keeps_it() {
        for (head, named) in [
            (
                &b"<!doctype html><meta charset=\"iso-8859-1\"><p>caf\xe9"[..],
                true,
            ),
            (
                b"<html><head><META HTTP-EQUIV=Content-Type CONTENT='text/html; charset=koi8-r'>",
                true,
            ),
            (b"\xEF\xBB\xBF<p>x", true),
            (b"\xFF\xFE<\0p\0>\0", true),
            (
                b"<!doctype html><title>charset</title><meta name=viewport>",
                false,
            ),
            (b"", false),
            (
                b"<meta name=description content=\"A charset converter\"><p>x",
                false,
            ),
            (b"<!-- <meta charset=\"x\"> --><p>x", false),
            (b"<!-- a --><meta charset=utf-8>", true),
            (b"<meta http-equiv=refresh content=\"5; charset=x\">", false),
        ] {
            assert_eq!(
                declares_encoding(head),
                named,
                "{}",
                String::from_utf8_lossy(head)
            );
        }
        let s = Site::new();
        fs::write(
            s.root.join("latin.html"),
            b"<meta charset=\"iso-8859-1\"><p>caf\xe9",
        )
        .unwrap();
        let latin = s.root.join("latin.html");
        assert_eq!(
            with_own_encoding(content_type(&latin), &head_of(&latin, ENCODING_PRESCAN)),
            "text/html"
        );
        let mut stream = vec![0u8; 376];
        stream[0] = 0x47;
        stream[188] = 0x47;
        fs::write(s.root.join("seg.ts"), stream).unwrap();
        assert_eq!(content_type(&s.root.join("seg.ts")), "video/mp2t");
        fs::write(s.root.join("short.ts"), "Greeting = 1;\n").unwrap();
        assert_eq!(
            content_type(&s.root.join("short.ts")),
            "text/plain; charset=utf-8"
        );
    }

    #[test]
    fn listing_escapes_and_hides() {
        let s = Site::new();
        fs::write(s.root.join("docs/<b>.txt"), "x").unwrap();
        let titled = listing(&s.root.join("docs"), "/my%20docs/%3Cb%3E/");
        assert!(
            titled.contains("<title>/my docs/&lt;b&gt;/</title>"),
            "{titled}"
        );
        let html = listing(&s.root.join("docs"), "/docs/");
        assert!(
            html.contains("<a href=\"./a%20b.txt\">a b.txt</a>"),
            "{html}"
        );
        assert!(html.contains("&lt;b&gt;.txt"));
        let top = listing(&s.root, "/");
        assert!(!top.contains(".env"));
        assert!(top.contains("<a href=\"./app/\">app/</a>"));
        // A name with a colon is no URL scheme, and `&` is no character reference.
        fs::write(s.root.join("javascript:alert(1)"), "x").unwrap();
        fs::write(s.root.join("x&amp;.txt"), "x").unwrap();
        let html = listing(&s.root, "/");
        assert!(
            html.contains("<a href=\"./javascript:alert(1)\">"),
            "{html}"
        );
        assert!(html.contains("<a href=\"./x%26amp;.txt\">"), "{html}");
        // A backslash, which browsers take for a slash, is no folder.
        fs::write(s.root.join("a\\b.txt"), "x").unwrap();
        let html = listing(&s.root, "/");
        assert!(html.contains("<a href=\"./a%5Cb.txt\">"), "{html}");
        assert_eq!(
            resolve(&s.root, "/x%26amp;.txt"),
            Target::File(s.root.join("x&amp;.txt"))
        );
        // A name that is not UTF-8 links to its own bytes, which resolve back to it.
        fs::write(s.root.join(OsStr::from_bytes(b"n\xffm.txt")), "x").unwrap();
        let html = listing(&s.root, "/");
        assert!(html.contains("<a href=\"./n%FFm.txt\">"), "{html}");
        assert_eq!(
            resolve(&s.root, "/n%FFm.txt"),
            Target::File(s.root.join(OsStr::from_bytes(b"n\xffm.txt")))
        );
    }
}
