//! The static file server: GET and HEAD of the files under the root, `index.html` for
//! folders (else a listing), `Range` requests, `Cache-Control: no-store` on everything
//! (a dev server must never let the browser show a stale file), the reload script
//! injected into HTML pages, and the reload endpoints under `/__reloadsup/` on the same
//! origin. hyper (HTTP/1) on a current-thread tokio runtime of its own.

use std::convert::Infallible;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;

use super::files::{self, Target};
use crate::inject;
use crate::reload::Hub;
use crate::report;

/// A client must send its request head within this time.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);

/// What every connection needs.
struct Site {
    root: PathBuf,
    hub: Hub,
}

/// Serves `listener` (bound, non-blocking) until the hub shuts down. Runs on the
/// calling thread.
pub fn run(listener: std::net::TcpListener, root: PathBuf, hub: Hub) {
    let runtime = match crate::web::runtime("the static server") {
        Ok(runtime) => runtime,
        Err(message) => {
            report::error(message);
            return;
        }
    };
    let stopped = hub.stopped();
    let site = Arc::new(Site { root, hub });
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
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(err) = connection.await {
        report::debug(format!("static server connection: {err}"));
    }
}

/// Answers one request.
fn respond<B: Send + 'static>(site: &Site, req: Request<B>) -> Response<Full<Bytes>> {
    let path = req.uri().path().to_string();
    if path.starts_with(crate::reload::PREFIX) {
        return site.hub.handle(req);
    }
    if !matches!(*req.method(), Method::GET | Method::HEAD) {
        let mut response = page(StatusCode::METHOD_NOT_ALLOWED, "405 method not allowed", "");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let navigation = inject::is_navigation(req.headers());
    let mut response = match files::resolve(&site.root, &path) {
        Target::File(file) => serve_file(&file, req.headers(), navigation),
        Target::Listing(dir) => {
            let html = files::listing(&dir, &path);
            html_response(StatusCode::OK, html.into_bytes(), navigation)
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
            response
        }
        Target::NotFound => {
            let body = crate::inject::escape_html(&path);
            html_response(
                StatusCode::NOT_FOUND,
                error_page("404 not found", &body).into_bytes(),
                navigation,
            )
        }
        Target::Forbidden => page(
            StatusCode::FORBIDDEN,
            "403 forbidden",
            "outside the served folder",
        ),
    };
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // For HEAD, hyper sends the headers (Content-Length included) and no body.
    response
}

/// A file, whole or the requested range; an HTML page gets the reload script (and is
/// then always sent whole).
fn serve_file(file: &Path, headers: &HeaderMap, navigation: bool) -> Response<Full<Bytes>> {
    let content = match fs::read(file) {
        Ok(content) => content,
        Err(err) => {
            return page(StatusCode::NOT_FOUND, "404 not found", &err.to_string());
        }
    };
    let content_type = files::content_type(file);
    if content_type.starts_with("text/html") {
        return html_response(StatusCode::OK, content, navigation);
    }
    let total = content.len() as u64;
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map(|text| http_range_header::parse_range_header(text).and_then(|r| r.validate(total)));
    let (status, body, content_range) = match range {
        None => (StatusCode::OK, content, None),
        Some(Ok(ranges)) if ranges.len() == 1 => {
            let (start, end) = (*ranges[0].start(), *ranges[0].end());
            let slice = content[start as usize..=end as usize].to_vec();
            (
                StatusCode::PARTIAL_CONTENT,
                slice,
                Some(format!("bytes {start}-{end}/{total}")),
            )
        }
        // Several ranges: the whole file is a valid answer.
        Some(Ok(_)) => (StatusCode::OK, content, None),
        Some(Err(_)) => {
            let mut response = page(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "416 range not satisfiable",
                "",
            );
            if let Ok(value) = HeaderValue::from_str(&format!("bytes */{total}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, value);
            }
            return response;
        }
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    let h = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&content_type) {
        h.insert(header::CONTENT_TYPE, value);
    }
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if let Some(range) = content_range.and_then(|r| HeaderValue::from_str(&r).ok()) {
        h.insert(header::CONTENT_RANGE, range);
    }
    response
}

/// An HTML response, with the reload script when the request is a page navigation.
fn html_response(status: StatusCode, html: Vec<u8>, navigation: bool) -> Response<Full<Bytes>> {
    let body = if navigation {
        inject::into_page(&html, None)
    } else {
        html
    };
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
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

/// The address the site is served on, as a URL.
pub fn url_of(addr: SocketAddr) -> String {
    format!("http://{addr}/")
}
