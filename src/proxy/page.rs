//! The responses the proxy makes itself: the 502 page when the dev server cannot
//! answer, and one-line refusals (400, 403).
//!
//! The 502 page says why (the command, how it ended, the last lines of its output,
//! all HTML-escaped) and carries the reload tag: the next good restart broadcasts
//! `reload`, and the page turns into the real one by itself. `Cache-Control: no-store`
//! keeps a browser from showing it again once the server is back. The page for a
//! request that may change something on the server (a form's POST) carries no tag: a
//! reload would send the request again unasked, and the server may have acted on it
//! already; the page says to send it again instead.

use std::fmt::Write;

use hyper::header::{CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};

use super::body::{self, ProxyBody};
use super::upstream::Unavailable;
use crate::inject::escape_html;

/// The request a page of ours answers, as far as the page cares: its method.
#[derive(Debug, Clone)]
pub struct Asked(Method);

impl Asked {
    /// A request with `method`.
    pub fn new(method: &Method) -> Asked {
        Asked(method.clone())
    }

    /// Whether only the headers are wanted (HEAD).
    pub fn head_only(&self) -> bool {
        self.0 == Method::HEAD
    }

    /// Whether a reload may send the request again: a GET, HEAD or OPTIONS, which
    /// changes nothing on the server.
    pub fn repeatable(&self) -> bool {
        matches!(self.0, Method::GET | Method::HEAD | Method::OPTIONS)
    }
}

/// The 502 page for a request that could not be forwarded.
pub fn unavailable(why: &Unavailable, asked: &Asked) -> Response<ProxyBody> {
    let (title, detail, tail): (&str, String, Vec<String>) = match why {
        Unavailable::Failed(failure) => (
            "the dev server is not running",
            format!(
                "<code>{}</code> {}.",
                escape_html(&failure.command),
                escape_html(&failure.status)
            ),
            failure.output.lines(),
        ),
        Unavailable::NotReady(hold) => (
            "the dev server is not ready",
            format!(
                "It was still restarting after {}.",
                humantime::format_duration(*hold)
            ),
            Vec::new(),
        ),
        Unavailable::Late {
            failure,
            address,
            error,
        } => (
            "the dev server is not ready",
            format!(
                "<code>{}</code> {}, and connecting to <code>{}</code> failed: {}.",
                escape_html(&failure.command),
                escape_html(&failure.status),
                escape_html(address),
                escape_html(error)
            ),
            failure.output.lines(),
        ),
        Unavailable::Unreachable {
            address,
            error,
            waited,
        } => (
            "cannot reach the dev server",
            format!(
                "Connecting to <code>{}</code> failed for {}: {}.",
                escape_html(address),
                humantime::format_duration(rounded(*waited)),
                escape_html(error)
            ),
            Vec::new(),
        ),
        Unavailable::Broke(error) => (
            "the dev server did not answer",
            format!(
                "It closed the connection without a complete answer: {}.",
                escape_html(error)
            ),
            Vec::new(),
        ),
        Unavailable::Unread => {
            return lost_page(asked.head_only());
        }
        Unavailable::Tls(address) => (
            "the dev server speaks HTTPS",
            format!(
                "<code>{}</code> answered the proxy's plain HTTP as an HTTPS server does. \
                 The proxy speaks HTTP to <code>proxy.upstream</code>: serve the dev server \
                 over HTTP (<code>vite</code> without <code>--https</code>, \
                 webpack-dev-server without <code>server: 'https'</code>, \
                 <code>next dev</code> without <code>--experimental-https</code>), and \
                 open the proxy's address.",
                escape_html(address)
            ),
            Vec::new(),
        ),
        Unavailable::Malformed(error) => (
            "the dev server's answer is not valid HTTP",
            format!(
                "reloadsup could not read its answer: {}.",
                escape_html(error)
            ),
            Vec::new(),
        ),
    };
    // Whether the server got the request: it took it and then broke off or answered
    // nonsense. Otherwise it never reached a server.
    let reached = matches!(why, Unavailable::Broke(_) | Unavailable::Malformed(_));
    // Nothing to wait for when the server counts as up but does not answer (one run
    // elsewhere, under `[proxy]` alone, not started yet): the page asks again.
    let retry = matches!(why, Unavailable::Unreachable { .. });
    error_page(title, &detail, &tail, asked, reached, retry)
}

/// The 502 page for a response that broke off before it could be passed on.
pub fn broken(detail: &str, asked: &Asked) -> Response<ProxyBody> {
    error_page(
        "the dev server's answer broke off",
        &format!("{}.", escape_html(detail)),
        &[],
        asked,
        true,
        false,
    )
}

/// The page for a request that may not be sent twice (a form's POST) whose answer had
/// more header fields than were read. Without the reload client: a reload would send
/// the form again unasked (or make the browser ask).
fn lost_page(head_only: bool) -> Response<ProxyBody> {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>502: {title}</title>\n</head>\n<body>\n<h1>502: {title}</h1>\n\
         <p>The dev server answered with more than {limit} header fields, more than \
         reloadsup read. It reads up to {most} from now on, but this request cannot be sent \
         twice (it is not a GET, HEAD or OPTIONS without a body), so its answer is lost.</p>\n\
         <p>Send it again: go back and submit the form once more.</p>\n</body>\n</html>\n",
        title = "the answer was lost",
        limit = super::upstream::DEFAULT_HEADERS,
        most = super::upstream::MANY_HEADERS,
    );
    respond(html, head_only)
}

/// A short plain-text response (`text` is one line).
pub fn plain(status: StatusCode, text: &str) -> Response<ProxyBody> {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(CACHE_CONTROL, "no-store")
        .body(body::full(format!("{text}\n")))
        .expect("static headers are valid")
}

/// The 502 page; `reached`: the server may have received the request; `retry`: the
/// page asks again every [`RETRY_EVERY`] seconds (a request that may be repeated).
fn error_page(
    title: &str,
    detail: &str,
    tail: &[String],
    asked: &Asked,
    reached: bool,
    retry: bool,
) -> Response<ProxyBody> {
    let repeatable = asked.repeatable();
    let retry = retry && repeatable;
    let mut html = String::new();
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>502: {title}</title>\n<style>\n\
         body {{ font: 16px/1.5 system-ui, sans-serif; margin: 2em auto; max-width: 60em; padding: 0 1em; }}\n\
         pre {{ background: #222; color: #eee; padding: 1em; overflow: auto; }}\n\
         </style>\n{refresh}{tag}</head>\n<body>\n<h1>502: {title}</h1>\n<p>{detail}</p>\n",
        refresh = if retry {
            format!("<meta http-equiv=\"refresh\" content=\"{RETRY_EVERY}\">\n")
        } else {
            String::new()
        },
        tag = if repeatable {
            crate::inject::tag(None) + "\n"
        } else {
            String::new()
        },
    );
    if !tail.is_empty() {
        html.push_str("<p>The last lines of its output:</p>\n<pre>");
        for line in tail {
            html.push_str(&escape_html(line));
            html.push('\n');
        }
        html.push_str("</pre>\n");
    }
    if retry {
        let _ = writeln!(
            html,
            "<p>This page tries again every {RETRY_EVERY} seconds, and reloads by itself \
             when the server is ready again (<a href=\"\">reload now</a>).</p>"
        );
    } else if repeatable {
        html.push_str(
            "<p>This page reloads by itself when the server is ready again \
             (<a href=\"\">reload now</a>).</p>\n",
        );
    } else {
        let next = if reached {
            "The server may have received it already: check before you send it again."
        } else {
            "It did not reach the server: once the server is ready again, go back and \
             send it again."
        };
        let _ = writeln!(
            html,
            "<p>This page does not reload by itself: a reload would send this {method} \
             again, and it may change something on the server. {next}</p>",
            method = escape_html(asked.0.as_str()),
        );
    }
    html.push_str("</body>\n</html>\n");
    respond(html, asked.head_only())
}

/// How often, in seconds, a page for a server that cannot be reached asks again.
const RETRY_EVERY: u32 = 2;

/// A 502 answer carrying `html` (or, for HEAD, only its headers).
fn respond(html: String, head_only: bool) -> Response<ProxyBody> {
    let body = if head_only {
        body::empty()
    } else {
        body::full(html)
    };
    Response::builder()
        .status(StatusCode::BAD_GATEWAY)
        .header(CONTENT_TYPE, "text/html; charset=utf-8")
        .header(CACHE_CONTROL, "no-store")
        .body(body)
        .expect("static headers are valid")
}

/// A duration to the millisecond, for reading.
fn rounded(d: std::time::Duration) -> std::time::Duration {
    std::time::Duration::from_millis(d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;

    use super::*;
    use crate::proxy::Failure;
    use crate::supervisor::output::Tail;

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape_html("<a href=\"x\">&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn the_failure_page_says_why_and_carries_the_tag() {
        let failure = Failure {
            command: "python3 app.py --name '<x>'".into(),
            status: "exited with code 1".into(),
            output: Tail::of(&["Traceback:", "  raise Error(\"<boom>\")"]),
        };
        let response = unavailable(&Unavailable::Failed(failure), &Asked::new(&Method::GET));
        assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        let html = text(response);
        assert!(html.contains(
            "<code>python3 app.py --name &#39;&lt;x&gt;&#39;</code> exited with code 1."
        ));
        assert!(html.contains("  raise Error(&quot;&lt;boom&gt;&quot;)\n"));
        assert!(html.contains(&crate::inject::tag(None)));
        assert!(html.contains("reloads by itself"));
        assert!(!html.contains("<boom>"));
    }

    #[test]
    fn a_page_for_a_post_does_not_reload_itself() {
        let broke = Unavailable::Broke("connection closed before message completed".into());
        for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            for response in [
                unavailable(&broke, &Asked::new(&method)),
                broken("the document broke off", &Asked::new(&method)),
            ] {
                assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
                let html = text(response);
                assert!(!html.contains("livereload"), "{method}: {html}");
                assert!(!html.contains("reloads by itself"), "{method}: {html}");
                assert!(
                    html.contains(&format!("a reload would send this {method} again")),
                    "{method}: {html}"
                );
                assert!(html.contains("may have received it already"), "{html}");
            }
        }
        let crashed = Unavailable::NotReady(std::time::Duration::from_secs(30));
        let html = text(unavailable(&crashed, &Asked::new(&Method::POST)));
        assert!(html.contains("It did not reach the server"), "{html}");
        assert!(!html.contains("livereload"), "{html}");
        for method in [Method::GET, Method::OPTIONS] {
            let html = text(unavailable(&broke, &Asked::new(&method)));
            assert!(html.contains(&crate::inject::tag(None)), "{method}: {html}");
        }
    }

    /// The whole body of an in-memory response, as text.
    fn text(response: Response<ProxyBody>) -> String {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let body = runtime
            .block_on(response.into_body().collect())
            .expect("an in-memory body")
            .to_bytes();
        String::from_utf8(body.to_vec()).expect("UTF-8")
    }
}
