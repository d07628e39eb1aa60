//! The static file server: GET and HEAD of the files under the root, `index.html` for
//! folders (else a listing), `Range` requests, `Cache-Control: no-store` on everything
//! (a dev server must never let the browser show a stale file), the reload script
//! injected into HTML pages, and the reload endpoints under `/__reloadsup/` on the same
//! origin. hyper (HTTP/1) on a current-thread tokio runtime of its own.
//!
//! Pages are read whole (the script goes into them); every other file streams from
//! disk in pieces, read on tokio's blocking threads, from the start of its range, so a
//! video or a big download takes no more memory than a piece and never holds up the
//! other requests or the reload socket, and a HEAD reads nothing.

use std::convert::Infallible;
use std::fs;
use std::io::{self, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use http_range_header::{EndPosition, StartPosition, SyntacticallyCorrectRange};
use hyper::body::{Bytes, Frame};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::files::{self, Target};
use crate::host::HostPolicy;
use crate::inject;
use crate::reload::Hub;
use crate::report;

/// A client must send its request head within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest page read whole to get the reload script; a larger one streams as is.
const PAGE_MAX: u64 = 8 * 1024 * 1024;

/// The most bytes of a request head read before the request is refused.
const MAX_HEAD: usize = 64 * 1024;

/// How much of a file is read at a time.
const PIECE: usize = 64 * 1024;

/// A response body: a page in memory, or a file streaming from disk.
type Body = UnsyncBoxBody<Bytes, io::Error>;

/// A body of bytes in memory.
fn whole(response: Response<Full<Bytes>>) -> Response<Body> {
    response.map(|full| full.map_err(|never| match never {}).boxed_unsync())
}

/// What every connection needs.
struct Site {
    /// The site's folder as configured: canonical, unless it did not exist yet when
    /// the task file was read (a build step makes it).
    configured: PathBuf,
    /// The folder, canonical, once it exists (see [`Site::root`]).
    root: std::sync::OnceLock<PathBuf>,
    /// The `Host` values served (a guard against DNS rebinding).
    hosts: HostPolicy,
    hub: Hub,
    /// The LiveReload port open beside the site (`run` with `[serve]`), `None` for bare
    /// `serve`: a page's own `livereload.js` tag that names another port (or any, when
    /// none is open) loads nothing of ours, and the page is told about.
    reload_port: Option<u16>,
    /// The site's own port, which a page's own `livereload.js` tag may name to load
    /// ours from the LiveReload protocol's own paths (see [`Site::answers`]).
    port: u16,
    /// The pages already warned about (see [`Site::warn_own_client`]).
    warned: std::sync::Mutex<std::collections::HashSet<PathBuf>>,
}

/// At most this many pages are warned about having a client of their own.
const WARNED_MAX: usize = 100;

impl Site {
    /// The site's folder, canonical, once it exists: a `[serve]` root that a build step
    /// makes at the start (Hugo's `public/`, MkDocs' `site/`) need not be there before.
    fn root(&self) -> Option<&Path> {
        if let Some(root) = self.root.get() {
            return Some(root);
        }
        let real = self.configured.canonicalize().ok().filter(|p| p.is_dir())?;
        Some(self.root.get_or_init(|| real))
    }

    /// Warns, once per page, that a page which loads a `livereload.js` of its own gets
    /// no tag, and that nothing of ours answers that one: when the site is served alone
    /// (the README's snippet for `run`, `:35729/livereload.js`, left a page without
    /// reloads and no word why), or when its tag names another port than the LiveReload
    /// port (`reload.port` changed, the snippet not). A tag the site answers is not
    /// warned about (see [`Site::answers`]).
    fn warn_own_client(&self, file: &Path, document: &[u8]) {
        let Some(client) = inject::scan::own_client(document, false) else {
            return;
        };
        if self.answers(file, client) {
            return;
        }
        let why = match (self.reload_port, client.port) {
            (None, _) => "`serve` opens no LiveReload port for it: remove that tag, and the \
                          page reloads with the one `serve` puts in"
                .to_string(),
            (Some(open), Some(named)) if named != u32::from(open) => format!(
                "it names port {named}, but live reload is on port {open} (`reload.port`): \
                 put {open} in that tag, or remove it, and the page reloads with the one \
                 put in"
            ),
            _ => return,
        };
        let mut warned = self.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() >= WARNED_MAX || !warned.insert(file.to_path_buf()) {
            return;
        }
        let root = self.root().unwrap_or(&self.configured);
        let shown = file.strip_prefix(root).unwrap_or(file);
        report::warn(format!(
            "`{}` loads a livereload.js of its own, so none is put in, and {why}",
            shown.display()
        ));
    }

    /// Whether the site itself answers the page `file`'s own client, script and socket
    /// (see [`crate::reload::http::is_protocol_path`]): the tag loads `/livereload.js` from the site's root
    /// (by that path, beside a page at the root, or by a URL naming the site's port),
    /// and its socket goes to the site's port (none named is the script's own).
    fn answers(&self, file: &Path, client: inject::scan::OwnClient) -> bool {
        use inject::scan::ClientSource;
        let site_port = u32::from(self.port);
        let at_root = match client.source {
            ClientSource::SiteRoot => true,
            ClientSource::PageFolder => file.parent() == self.root(),
            ClientSource::Url => client.port == Some(site_port),
            ClientSource::Elsewhere => false,
        };
        at_root && client.port.is_none_or(|named| named == site_port)
    }
}

/// Serves `listener` (bound, non-blocking) until the hub shuts down, to requests for
/// the hosts `hosts` allows. Runs on the calling thread.
/// `reload_port`: the LiveReload port open beside it (see [`Site::reload_port`]).
pub fn run(
    listener: std::net::TcpListener,
    root: PathBuf,
    hosts: HostPolicy,
    hub: Hub,
    reload_port: Option<u16>,
) {
    let runtime = match crate::web::runtime("the static server") {
        Ok(runtime) => runtime,
        Err(message) => {
            report::error(message);
            return;
        }
    };
    let stopped = hub.stopped();
    let port = listener.local_addr().map_or(0, |address| address.port());
    let site = Arc::new(Site {
        configured: root,
        root: std::sync::OnceLock::new(),
        hosts,
        hub,
        reload_port,
        port,
        warned: Default::default(),
    });
    runtime.block_on(crate::web::accept_until(
        listener,
        "the static server",
        stopped,
        |stream, _| serve_connection(stream, Arc::clone(&site)),
    ));
}

async fn serve_connection(stream: tokio::net::TcpStream, site: Arc<Site>) {
    let service = service_fn(move |req| {
        let response = respond(&site, req);
        async move { Ok::<_, Infallible>(response) }
    });
    let connection = crate::web::http1(HEADER_TIMEOUT)
        // A request head larger than this is refused (431): a connection that trickles
        // one in holds no more memory than this.
        .max_buf_size(MAX_HEAD)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(err) = connection.await {
        report::debug(format!("static server connection: {err}"));
    }
}

/// Answers one request.
fn respond<B: Send + 'static>(site: &Site, req: Request<B>) -> Response<Body> {
    if crate::host::misplaced_authority(req.method(), req.uri()) {
        let why = "the request target is no path (`/…`) or URL";
        return whole(page(StatusCode::BAD_REQUEST, "400 bad request", why));
    }
    let judged = site.hosts.judge(
        req.uri(),
        req.headers(),
        req.version(),
        None,
        "serve.allowed_hosts",
    );
    let host = match judged {
        Ok(host) => host,
        Err((status, why)) => {
            let title = match status {
                StatusCode::FORBIDDEN => "403 forbidden",
                _ => "400 bad request",
            };
            return whole(page(status, title, &why));
        }
    };
    let path = req.uri().path().to_string();
    if path.starts_with(crate::reload::PREFIX) {
        return to_hub(site, req, host.as_deref());
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut response = page(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed", "");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return whole(response);
    }
    let navigation = inject::is_navigation(req.headers());
    let head = req.method() == Method::HEAD;
    let target = match site.root() {
        Some(root) => files::resolve(root, &path),
        None => Target::NotFound,
    };
    if matches!(target, Target::NotFound) && crate::reload::http::is_protocol_path(&path) {
        return to_hub(site, req, host.as_deref());
    }
    let mut response = match target {
        Target::File(file) => serve_file(site, &file, req.headers(), navigation, head),
        Target::Listing(dir) => {
            let html = files::listing(&dir, &path);
            whole(html_response(StatusCode::OK, html.into_bytes(), navigation))
        }
        Target::Redirect(location) => {
            let mut response = page(StatusCode::MOVED_PERMANENTLY, "moved", "");
            let location = match req.uri().query() {
                Some(query) => format!("{location}?{query}"),
                None => location,
            };
            if let Ok(value) = HeaderValue::from_str(&location) {
                response.headers_mut().insert(header::LOCATION, value);
            }
            whole(response)
        }
        Target::NotFound => {
            let body = crate::inject::escape_html(&path);
            whole(html_response(
                StatusCode::NOT_FOUND,
                error_page("404 not found", &body).into_bytes(),
                navigation,
            ))
        }
        Target::Forbidden => whole(page(
            StatusCode::FORBIDDEN,
            "403 forbidden",
            "outside the served folder",
        )),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // For HEAD, hyper sends the headers (Content-Length included) and no body.
    response
}

/// Hands a request to the LiveReload endpoints, `host` being the one judged served, so
/// an `Origin` is the page's own only on a served host.
fn to_hub<B: Send + 'static>(
    site: &Site,
    mut req: Request<B>,
    host: Option<&str>,
) -> Response<Body> {
    if let Some(host) = host {
        crate::host::forget_own_origin(req.headers_mut(), host);
    }
    whole(site.hub.handle(req))
}

/// A file, whole or the requested range, streamed (nothing read for a HEAD); an HTML
/// page gets the reload script (and is then always read and sent whole).
fn serve_file(
    site: &Site,
    file: &Path,
    headers: &HeaderMap,
    navigation: bool,
    head: bool,
) -> Response<Body> {
    let content_type = files::content_type(file);
    let page_type = ["text/html", "application/xhtml+xml"]
        .iter()
        .any(|t| content_type.starts_with(t));
    // A page is read whole on the server's thread, to put the script in: a huge one
    // (a generated report) streams as it is instead, without it.
    let small = fs::metadata(file).is_ok_and(|m| m.len() <= PAGE_MAX);
    if page_type && small {
        return match fs::read(file) {
            Ok(document) => {
                if navigation {
                    site.warn_own_client(file, &document);
                }
                let content_type = files::with_own_encoding(content_type, &document);
                whole(document_response(
                    StatusCode::OK,
                    document,
                    navigation,
                    &content_type,
                ))
            }
            Err(err) => whole(page(
                StatusCode::NOT_FOUND,
                "404 not found",
                &err.to_string(),
            )),
        };
    }
    // A page too large to read whole: its first bytes say its encoding.
    let content_type = if page_type {
        let head = files::head_of(file, files::ENCODING_PRESCAN);
        files::with_own_encoding(content_type, &head)
    } else {
        content_type
    };
    let total = match fs::metadata(file) {
        Ok(metadata) => metadata.len(),
        Err(err) => {
            return whole(page(
                StatusCode::NOT_FOUND,
                "404 not found",
                &err.to_string(),
            ));
        }
    };
    let (status, start, length) = match requested_range(headers, total) {
        Ok(None) => (StatusCode::OK, 0, total),
        Ok(Some((start, end))) => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        Err(()) => {
            let mut response = page(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "416 range not satisfiable",
                "",
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return whole(response);
        }
    };
    let body = if head {
        Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed_unsync()
    } else {
        streamed(file.to_path_buf(), start, length)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let h = response.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(length));
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, value);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let range = format!("bytes {start}-{}/{total}", start + length - 1);
        if let Ok(value) = HeaderValue::from_str(&range) {
            h.insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

/// The one byte range `headers` ask for, as first and last offsets within a file of
/// `total` bytes: `Ok(None)` for the whole file, `Err` when no range asked for can be
/// satisfied (`bytes=-0` included). The whole file answers a `Range` of another unit,
/// one not well formed (`bytes=5-3`), one of several ranges (a valid answer, without
/// multipart), and any `If-Range`: nothing here is sent with a validator (no `ETag`, no
/// `Last-Modified`), so none the client holds can match.
fn requested_range(headers: &HeaderMap, total: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(text) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else {
        return Ok(None);
    };
    if headers.contains_key(header::IF_RANGE) {
        return Ok(None);
    }
    // The unit is case-insensitive (`BYTES=0-4`); the parser wants it as `bytes=`.
    let text = text.trim();
    if !text
        .get(..6)
        .is_some_and(|unit| unit.eq_ignore_ascii_case("bytes="))
    {
        return Ok(None);
    }
    let parsed = match http_range_header::parse_range_header(&format!("bytes={}", &text[6..])) {
        Ok(parsed) => parsed,
        // `bytes=-0`: the last no bytes, which no file has.
        Err(http_range_header::RangeUnsatisfiableError::ZeroSuffix) => return Err(()),
        Err(_) => return Ok(None),
    };
    let suffix =
        |range: &SyntacticallyCorrectRange| matches!(range.start, StartPosition::FromLast(_));
    if total == 0 && parsed.ranges.iter().any(suffix) {
        // The last N bytes of an empty file are all of it: nothing, whole (there is no
        // way to write an empty range in `Content-Range`).
        return Ok(None);
    }
    let reversed = parsed
        .ranges
        .iter()
        .any(|range| match (range.start, range.end) {
            (StartPosition::Index(first), EndPosition::Index(last)) => last < first,
            _ => false,
        });
    if reversed {
        return Ok(None);
    }
    let satisfiable: Vec<(u64, u64)> = parsed
        .ranges
        .iter()
        .filter_map(|range| satisfiable(range, total))
        .collect();
    match (parsed.ranges.len(), satisfiable.as_slice()) {
        (_, []) => Err(()),
        (1, [one]) => Ok(Some(*one)),
        _ => Ok(None),
    }
}

/// What part of a file of `total` bytes `range` names, if any of it exists: a suffix
/// longer than the file is the whole file, a last offset past the end is the end.
fn satisfiable(range: &SyntacticallyCorrectRange, total: u64) -> Option<(u64, u64)> {
    let end = total.checked_sub(1)?;
    let (first, last) = match (range.start, range.end) {
        (StartPosition::FromLast(length), _) => (total.saturating_sub(length), end),
        (StartPosition::Index(first), EndPosition::Index(last)) => (first, last.min(end)),
        (StartPosition::Index(first), EndPosition::LastByte) => (first, end),
    };
    (first <= last).then_some((first, last))
}

/// `length` bytes of `file` from offset `start`, read a piece at a time as the client
/// takes them.
fn streamed(file: PathBuf, start: u64, length: u64) -> Body {
    use tokio::io::{AsyncReadExt, AsyncSeekExt};
    let file = Arc::new(file);
    let pieces = futures_util::stream::try_unfold((None, length), move |(open, left)| {
        let file = Arc::clone(&file);
        async move {
            if left == 0 {
                return Ok(None);
            }
            let mut open = match open {
                Some(open) => open,
                None => {
                    let mut opened = tokio::fs::File::open(file.as_path()).await?;
                    opened.seek(SeekFrom::Start(start)).await?;
                    opened
                }
            };
            let mut piece = vec![0; PIECE.min(usize::try_from(left).unwrap_or(PIECE))];
            let read = open.read(&mut piece).await?;
            if read == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file got shorter while it was sent",
                ));
            }
            piece.truncate(read);
            let left = left - read as u64;
            Ok(Some((Frame::data(Bytes::from(piece)), (Some(open), left))))
        }
    });
    StreamBody::new(pieces).boxed_unsync()
}

/// An HTML response, with the reload script when the request is a page navigation.
fn html_response(status: StatusCode, html: Vec<u8>, navigation: bool) -> Response<Full<Bytes>> {
    document_response(status, html, navigation, "text/html; charset=utf-8")
}

/// A document of `content_type` (HTML or XHTML), with the reload script when the
/// request is a page navigation.
fn document_response(
    status: StatusCode,
    document: Vec<u8>,
    navigation: bool,
    content_type: &str,
) -> Response<Full<Bytes>> {
    let xml = content_type.starts_with("application/xhtml+xml");
    let body = if navigation {
        inject::into_page(&document, xml)
    } else {
        document
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    if let Ok(value) = HeaderValue::from_str(content_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

/// A small HTML page for errors.
fn error_page(title: &str, detail: &str) -> String {
    format!(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\n\
         <body><h1>{title}</h1><p>{detail}</p></body></html>\n"
    )
}

/// A plain-text answer.
fn page(status: StatusCode, title: &str, detail: &str) -> Response<Full<Bytes>> {
    let text = if detail.is_empty() {
        format!("{title}\n")
    } else {
        format!("{title}: {detail}\n")
    };
    let mut response = Response::new(Full::new(Bytes::from(text)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
