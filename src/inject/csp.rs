//! The page's Content Security Policy, as far as the reload client is concerned: the
//! nonce our tag must carry to run, and the reload socket, which a policy that
//! restricts connections would block.
//!
//! The nonce comes from the enforced policy (`Content-Security-Policy`), else from a
//! report-only one, so the tag does not set off a report on every page load while a
//! site tries a policy out. A policy whose `connect-src` (or, without one,
//! `default-src`) allows neither `'self'` nor `*` gets the socket's own URL added, in
//! both kinds of header: the one URL, not the whole origin, so the page's other
//! connections are held to the policy as before. Likewise our script's URL, where the
//! directive that governs scripts allows neither `'self'`, `*` nor a nonce (Express's
//! error pages say `default-src 'none'`: the tag was blocked, and the page never
//! reloaded into the fixed one). A policy in a `<meta>` is in the body
//! and stays as written (its nonce is still found: [`meta_nonce`]).

use hyper::header::{
    CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY, HeaderMap, HeaderValue,
};

use super::scan::{Placement, meta_policy};

/// The path of the reload socket on the proxy's origin.
const SOCKET_PATH: &str = "/__reloadsup/livereload";

/// The path of our script on the proxy's origin (a source with a path allows that file
/// alone, whatever its query).
const SCRIPT_PATH: &str = "/__reloadsup/livereload.js";

/// The nonce that the response's policy headers allow scripts with: the enforced
/// policy's, else a report-only one's (see [`policy_nonce`]).
pub fn nonce(headers: &HeaderMap) -> Option<String> {
    [CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY]
        .into_iter()
        .find_map(|name| {
            let policies: Vec<&str> = headers
                .get_all(name)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .collect();
            policy_nonce(&policies)
        })
}

/// The nonce that scripts are allowed with by `policies`: from `script-src-elem`, else
/// `script-src`, else `default-src` (the directive a browser would apply to our tag),
/// in any of them. Only a nonce of base64 characters is taken, so it can go into an
/// attribute as it is.
pub fn policy_nonce(policies: &[&str]) -> Option<String> {
    for wanted in SCRIPTS.governing {
        for policy in policies {
            let Some(sources) = directive(policy, wanted) else {
                continue;
            };
            if let Some(nonce) = sources.split_ascii_whitespace().find_map(nonce_source) {
                return Some(nonce.to_string());
            }
        }
    }
    None
}

/// The value of a source that is a nonce of base64 characters (`'nonce-x+y/z='`), the
/// only kind the tag carries, as it can go into an attribute as it is.
fn nonce_source(token: &str) -> Option<&str> {
    let token = token.strip_prefix('\'')?.strip_suffix('\'')?;
    let (prefix, value) = token.split_at_checked(6)?;
    (prefix.eq_ignore_ascii_case("nonce-")
        && !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+/=_-".contains(&b)))
    .then_some(value)
}

/// The nonce of a `<meta http-equiv="Content-Security-Policy">` in `document` before
/// the tag's `placement`: such a policy governs only what comes after it.
pub fn meta_nonce(document: &[u8], placement: Placement) -> Option<String> {
    let before = match placement {
        Placement::At(at) => &document[..at],
        _ => document,
    };
    let policy = meta_policy(before)?;
    policy_nonce(&[policy.as_str()])
}

/// Lets the page's policy headers, enforced and report-only, load our script and
/// connect to the reload socket of a page served at `host` over `proto` (`http` or
/// `https`).
pub fn allow_client(headers: &mut HeaderMap, host: &str, proto: &str) {
    let scheme = if proto == "https" { "wss" } else { "ws" };
    let (script, socket) = if host.starts_with('[') {
        // A policy cannot name an IPv6 address (a browser drops such a source, and the
        // script stayed blocked): the page's own origin, then, which is the proxy's.
        ("'self'".to_string(), "'self'".to_string())
    } else {
        (
            format!("{proto}://{host}{SCRIPT_PATH}"),
            format!("{scheme}://{host}{SOCKET_PATH}"),
        )
    };
    for name in [CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY_REPORT_ONLY] {
        if !headers.contains_key(&name) {
            continue;
        }
        let values: Vec<HeaderValue> = headers
            .get_all(&name)
            .iter()
            .map(|value| rewritten(value, &script, &socket).unwrap_or_else(|| value.clone()))
            .collect();
        headers.remove(&name);
        for value in values {
            headers.append(&name, value);
        }
    }
}

/// A header value (one policy or several, comma-separated) with `script` allowed to
/// run and `socket` to connect in each; `None` when none of them needed it.
fn rewritten(value: &HeaderValue, script: &str, socket: &str) -> Option<HeaderValue> {
    let text = value.to_str().ok()?;
    let mut changed = false;
    let policies: Vec<String> = text
        .split(',')
        .map(|policy| {
            let mut policy = policy.trim().to_string();
            for (family, source) in [(&SCRIPTS, script), (&CONNECTIONS, socket)] {
                if let Some(allowed) = allowing(&policy, family, source) {
                    changed = true;
                    policy = allowed;
                }
            }
            policy
        })
        .collect();
    changed
        .then(|| HeaderValue::try_from(policies.join(", ")).ok())
        .flatten()
}

/// The directives that govern one kind of fetch, and what lets ours through already.
struct Family {
    /// The directives a browser applies, in order; the last is `default-src`.
    governing: &'static [&'static str],
    /// The directive added, from `default-src`'s sources plus ours, when only that
    /// one governs.
    added: &'static str,
    /// Whether these sources let ours through as they are.
    open: fn(&[&str]) -> bool,
}

/// Our `<script src>`: by `script-src-elem`, else `script-src`, else `default-src`.
/// A nonce the tag can carry lets it run (see [`nonce`]); so does
/// `'strict-dynamic'` with one, and without one a URL would not help, as that keyword
/// makes a browser ignore URLs.
const SCRIPTS: Family = Family {
    governing: &["script-src-elem", "script-src", "default-src"],
    added: "script-src",
    open: |words| {
        words.iter().any(|w| {
            let lower = w.to_ascii_lowercase();
            lower == "'self'"
                || *w == "*"
                || lower == "'strict-dynamic'"
                || nonce_source(w).is_some()
        })
    },
};

/// The reload socket: by `connect-src`, else `default-src`.
const CONNECTIONS: Family = Family {
    governing: &["connect-src", "default-src"],
    added: "connect-src",
    open: |words| {
        words
            .iter()
            .any(|w| w.eq_ignore_ascii_case("'self'") || *w == "*")
    },
};

/// `policy` with `source` added to the directive of `family` that governs it, if that
/// directive would block it; `None` if the policy lets it through already.
fn allowing(policy: &str, family: &Family, source: &str) -> Option<String> {
    let (name, sources) = family
        .governing
        .iter()
        .find_map(|name| Some((*name, directive(policy, name)?)))?;
    let words: Vec<&str> = sources.split_ascii_whitespace().collect();
    if (family.open)(&words) {
        return None;
    }
    // `'none'` beside a source is ignored, with a console warning: drop it.
    let kept: Vec<&str> = words
        .into_iter()
        .filter(|w| !w.eq_ignore_ascii_case("'none'"))
        .chain([source])
        .collect();
    // Without a directive of its own, `default-src` governs; one made from its
    // sources plus ours keeps that, and lets ours through.
    let name = if name == "default-src" {
        family.added
    } else {
        name
    };
    let rewritten = format!("{name} {}", kept.join(" "));
    let mut directives: Vec<String> = policy
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    let is_named = |d: &String| name_of(d).is_some_and(|n| n.eq_ignore_ascii_case(name));
    match directives.iter().position(is_named) {
        Some(at) => directives[at] = rewritten,
        None => directives.push(rewritten),
    }
    Some(directives.join("; "))
}

/// The sources of the first directive named `wanted` (any case) in `policy`; a
/// browser ignores any later one of the same name.
fn directive<'a>(policy: &'a str, wanted: &str) -> Option<&'a str> {
    policy.split(';').find_map(|d| {
        let d = d.trim();
        let name = name_of(d)?;
        name.eq_ignore_ascii_case(wanted)
            .then(|| d[name.len()..].trim_start())
    })
}

/// The name of a directive (its first word).
fn name_of(directive: &str) -> Option<&str> {
    directive.split_ascii_whitespace().next()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn the_nonce_comes_from_the_directive_that_governs_scripts() {
        let nonce = |csp: &[&'static str]| {
            let pairs: Vec<_> = csp
                .iter()
                .map(|v| ("content-security-policy", *v))
                .collect();
            nonce(&headers(&pairs))
        };
        assert_eq!(
            nonce(&["script-src 'nonce-abc123' 'strict-dynamic'"]).as_deref(),
            Some("abc123")
        );
        assert_eq!(
            nonce(&["default-src 'self'; SCRIPT-SRC 'self' 'NONCE-x+y/z='"]).as_deref(),
            Some("x+y/z=")
        );
        assert_eq!(
            nonce(&["default-src 'nonce-d'", "script-src-elem 'nonce-e'"]).as_deref(),
            Some("e")
        );
        assert_eq!(nonce(&["style-src 'nonce-s'"]), None);
        assert_eq!(nonce(&["script-src 'nonce-a\"b'"]), None);
        assert_eq!(nonce(&["script-src 'self'"]), None);
    }

    #[test]
    fn a_report_only_policy_gives_the_nonce_when_the_enforced_one_does_not() {
        let only = headers(&[(
            "content-security-policy-report-only",
            "script-src 'nonce-ro1'; report-uri /r",
        )]);
        assert_eq!(nonce(&only).as_deref(), Some("ro1"));
        let both = headers(&[
            (
                "content-security-policy-report-only",
                "script-src 'nonce-ro'",
            ),
            ("content-security-policy", "script-src 'nonce-en'"),
        ]);
        assert_eq!(nonce(&both).as_deref(), Some("en"));
    }

    #[test]
    fn a_policy_that_blocks_the_socket_lets_it_through_alone() {
        let allowed =
            |policy: &str| allowing(policy, &CONNECTIONS, "ws://h:5/__reloadsup/livereload");
        assert_eq!(
            allowed("default-src 'none'; script-src 'nonce-a'").as_deref(),
            Some(
                "default-src 'none'; script-src 'nonce-a'; connect-src ws://h:5/__reloadsup/livereload"
            )
        );
        assert_eq!(
            allowed("default-src https://cdn.test; CONNECT-SRC https://api.test; img-src *")
                .as_deref(),
            Some(
                "default-src https://cdn.test; connect-src https://api.test \
                 ws://h:5/__reloadsup/livereload; img-src *"
            )
        );
        assert_eq!(
            allowed("connect-src 'none'").as_deref(),
            Some("connect-src ws://h:5/__reloadsup/livereload")
        );
        assert_eq!(allowed("default-src 'self'"), None);
        assert_eq!(allowed("default-src 'none'; connect-src 'SELF'"), None);
        assert_eq!(allowed("connect-src *"), None);
        assert_eq!(allowed("script-src 'nonce-a'; img-src 'none'"), None);
    }

    #[test]
    fn both_kinds_of_header_are_rewritten_and_others_left() {
        let mut map = headers(&[
            ("content-security-policy", "default-src 'none', img-src *"),
            ("content-security-policy-report-only", "connect-src 'none'"),
            ("content-security-policy", "default-src 'self'"),
        ]);
        allow_client(&mut map, "dev.test", "https");
        let enforced: Vec<&str> = map
            .get_all(CONTENT_SECURITY_POLICY)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(
            enforced,
            [
                "default-src 'none'; script-src https://dev.test/__reloadsup/livereload.js; \
                 connect-src wss://dev.test/__reloadsup/livereload, img-src *",
                "default-src 'self'",
            ]
        );
        assert_eq!(
            map[CONTENT_SECURITY_POLICY_REPORT_ONLY],
            "connect-src wss://dev.test/__reloadsup/livereload"
        );
    }

    #[test]
    fn an_ipv6_host_is_let_through_as_the_pages_own_origin() {
        let mut map = headers(&[("content-security-policy", "default-src 'none'")]);
        allow_client(&mut map, "[::1]:5000", "http");
        assert_eq!(
            map[CONTENT_SECURITY_POLICY],
            "default-src 'none'; script-src 'self'; connect-src 'self'"
        );
    }

    #[test]
    fn a_policy_that_blocks_the_script_lets_it_run_alone() {
        let allowed =
            |policy: &str| allowing(policy, &SCRIPTS, "http://h:5/__reloadsup/livereload.js");
        // Express's error pages.
        assert_eq!(
            allowed("default-src 'none'").as_deref(),
            Some("default-src 'none'; script-src http://h:5/__reloadsup/livereload.js")
        );
        assert_eq!(
            allowed("default-src 'self'; Script-Src https://cdn.test; img-src *").as_deref(),
            Some(
                "default-src 'self'; script-src https://cdn.test \
                 http://h:5/__reloadsup/livereload.js; img-src *"
            )
        );
        assert_eq!(
            allowed("script-src 'self'; script-src-elem 'none'").as_deref(),
            Some("script-src 'self'; script-src-elem http://h:5/__reloadsup/livereload.js")
        );
        assert_eq!(allowed("default-src 'self'"), None);
        assert_eq!(allowed("default-src 'none'; script-src *"), None);
        assert_eq!(allowed("script-src 'NONCE-abc' https://cdn.test"), None);
        // A nonce the tag cannot carry lets nothing of ours run.
        assert_eq!(
            allowed("script-src 'nonce-a\"b'").as_deref(),
            Some("script-src 'nonce-a\"b' http://h:5/__reloadsup/livereload.js")
        );
        assert_eq!(allowed("script-src 'sha256-x' 'strict-dynamic'"), None);
        assert_eq!(allowed("img-src 'none'; connect-src 'none'"), None);
    }
}
