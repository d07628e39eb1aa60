//! Where the reload tag goes in an HTML document: a small, bounded tokenizer over the
//! document's first bytes (pure; the caller reads them).
//!
//! Before the first real `</head>` in the window — not right after `<head>`, where the
//! tag could push `<meta charset>` past the 1024 bytes browsers prescan for it. Else
//! right after the opening `<body…>` tag. Else at the end of the document (browsers
//! take a trailing script into the body), so no page is ever left without the client
//! and nothing past the window needs buffering — except when a comment is still open
//! at the window's end: it may never close, so the tag goes before it (when nothing
//! but comments came before it, only if the document ends inside it: else it may
//! close, and a doctype follow that the tag must not precede). A window whose
//! `<script>`s already load a `livereload.js` (a hand-written snippet, an earlier
//! injection, LiveReload's inline loader; not one commented out or shown as text) is
//! left alone, and so is a document in UTF-16, which the ASCII tag would break.
//!
//! [`meta_policy`] finds a `<meta http-equiv="Content-Security-Policy">`, whose nonce
//! the tag must carry like that of a policy header.
//!
//! "Real" means as a browser's tokenizer sees it: comments, attribute values and the
//! contents of raw-text elements (`<script>`, `<style>`, `<title>`, `<textarea>`,
//! `<xmp>`, `<noscript>`, `<noembed>`, `<noframes>`, `<iframe>`) and of `<template>`
//! are skipped (a self-closed `<script/>` has no contents
//! in XHTML only), so `"</head>"` inside a script string does not count; a comment
//! ends at `-->` or `--!>`, and `<!-->` is a whole one. The same tokens tell whether a
//! snippet is a real `<script>`. Once `<body>` has opened, a later `</head>` would be
//! ignored by the browser, so the scan stops there.

/// How many bytes of a document are scanned for a place, and held back until it is found.
pub const WINDOW: usize = 64 * 1024;

/// Elements whose contents are raw text, skipped up to their own end tag.
/// (`<noscript>` is one when scripting is on, the only case in which our script runs.)
const RAW_TEXT: [&[u8]; 9] = [
    b"script",
    b"style",
    b"title",
    b"textarea",
    b"xmp",
    b"noscript",
    b"noembed",
    b"noframes",
    b"iframe",
];

/// Where the tag goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// At this byte offset (before `</head>`, or after `<body…>`).
    At(usize),
    /// After the document's last byte: the window held no place.
    End,
    /// Nowhere: the document already loads a `livereload.js`.
    Skip,
}

/// Where the tag goes in a document that starts with `window` (only the first
/// [`WINDOW`] bytes are looked at); `xml` for XHTML, where `<script/>` is a whole
/// element (in HTML the slash means nothing, and the script runs to `</script>`).
/// `whole` when `window` is all of the document: a comment open at its end then never
/// closes, and nothing, not even a doctype, can follow it.
pub fn place(window: &[u8], xml: bool, whole: bool) -> Placement {
    scan(window, xml, whole && window.len() <= WINDOW).0
}

/// The place, if more bytes after `window` cannot change it (a real `</head>` or
/// `<body>` was found, or a snippet); `None` while the next bytes could give a better
/// one, for a page that is still arriving.
pub fn settled(window: &[u8], xml: bool) -> Option<Placement> {
    match scan(window, xml, false) {
        (placement, true) => Some(placement),
        (_, false) => None,
    }
}

/// The place, and whether it is settled (see [`settled`]); `whole` when `window` is
/// the whole document.
fn scan(window: &[u8], xml: bool, whole: bool) -> (Placement, bool) {
    let window = &window[..window.len().min(WINDOW)];
    if loads_client(window, xml) || is_wide(window) {
        return (Placement::Skip, true);
    }
    // Whether the document has begun: a doctype or a tag came before.
    let mut begun = false;
    for token in Tokens::new(window, xml) {
        match token {
            Token::EndTag { name, start } if name.eq_ignore_ascii_case(b"head") => {
                return (Placement::At(start), true);
            }
            Token::StartTag { name, end, .. } if name.eq_ignore_ascii_case(b"body") => {
                return (Placement::At(end), true);
            }
            // A comment open to the end of the window may never close (a forgotten
            // `-->`), and then the end of the document is inside it: the tag goes
            // before it, unless that could put it before the doctype, which may
            // follow the comment once it closes (a tag first makes the page a quirks
            // one). In a whole document it never closes, and nothing follows it.
            Token::Comment { start, end: None } if begun || whole => {
                return (Placement::At(start), false);
            }
            // An unclosed tag or raw text swallows the rest of the window.
            Token::Comment { end: None, .. } | Token::Cut => return (Placement::End, false),
            Token::Doctype | Token::StartTag { .. } | Token::EndTag { .. } => begun = true,
            Token::Comment { .. } => {}
        }
    }
    (Placement::End, false)
}

/// What a browser's tokenizer meets in a window, as far as placing the tag cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Token<'a> {
    /// A comment from `start`, ending just before `end` (`None`: not in the window).
    Comment { start: usize, end: Option<usize> },
    /// A `<!DOCTYPE …>`.
    Doctype,
    /// An end tag `</name…>` starting at `start`.
    EndTag { name: &'a [u8], start: usize },
    /// A start tag `<name…>` from `start` to just before `end`, then its contents up to
    /// `text_end`: those of a raw-text element are skipped, and read as text (for
    /// other elements, `text_end` is `end`).
    StartTag {
        name: &'a [u8],
        start: usize,
        end: usize,
        text_end: usize,
    },
    /// The rest cannot be read within the window: a tag, or a raw-text element's
    /// contents, runs past it.
    Cut,
}

/// The tokens of a window, in order: comments, attribute values and the contents of
/// [`RAW_TEXT`] elements are skipped as a browser skips them, and so is everything
/// inside a `<template>`, which is inert (a `</head>` or a script in there does
/// nothing).
struct Tokens<'a> {
    window: &'a [u8],
    /// XHTML: a self-closed element (`<script/>`) has no contents.
    xml: bool,
    at: usize,
    done: bool,
    /// How many `<template>`s are open.
    templates: usize,
}

impl<'a> Tokens<'a> {
    fn new(window: &'a [u8], xml: bool) -> Tokens<'a> {
        Tokens {
            window,
            xml,
            at: 0,
            done: false,
            templates: 0,
        }
    }

    /// Whether the start tag ending just before `end` closes itself, which only XHTML
    /// honours (in HTML, `<script/>` is an open script).
    fn self_closed(&self, end: usize) -> bool {
        self.xml && self.window[end - 2] == b'/'
    }

    /// Ends the tokens with `token`.
    fn last(&mut self, token: Token<'a>) -> Option<Token<'a>> {
        self.done = true;
        Some(token)
    }
}

impl<'a> Iterator for Tokens<'a> {
    type Item = Token<'a>;

    fn next(&mut self) -> Option<Token<'a>> {
        loop {
            let token = self.lex()?;
            let inert = self.templates > 0;
            match token {
                Token::StartTag { name, end, .. }
                    if name.eq_ignore_ascii_case(b"template") && !self.self_closed(end) =>
                {
                    self.templates += 1;
                }
                Token::EndTag { name, .. } if name.eq_ignore_ascii_case(b"template") => {
                    self.templates = self.templates.saturating_sub(1);
                }
                // What runs past the window inside a template: the rest is unreadable.
                Token::Comment { end: None, .. } | Token::Cut if inert => return Some(Token::Cut),
                _ => {}
            }
            if !inert {
                return Some(token);
            }
        }
    }
}

impl<'a> Tokens<'a> {
    /// The next token, templates' contents included.
    fn lex(&mut self) -> Option<Token<'a>> {
        let window = self.window;
        while !self.done {
            let start = self.at + memchr::memchr(b'<', &window[self.at..])?;
            let rest = &window[start..];
            if rest.starts_with(b"<!--") {
                // A comment runs to `-->` (or `--!>`), which may share the opening's
                // dashes: `<!-->` and `<!--->` are whole, empty comments.
                let Some(end) = comment_end(window, start + 2) else {
                    return self.last(Token::Comment { start, end: None });
                };
                self.at = end;
                return Some(Token::Comment {
                    start,
                    end: Some(end),
                });
            }
            if rest.starts_with(b"<!") || rest.starts_with(b"<?") {
                // `<!DOCTYPE …>`, `<![CDATA[`, `<?xml …?>`: skip to the next `>`.
                match memchr::memchr(b'>', rest) {
                    Some(end) => self.at = start + end + 1,
                    None => return self.last(Token::Cut),
                }
                if rest.len() > 9 && rest[2..9].eq_ignore_ascii_case(b"doctype") {
                    return Some(Token::Doctype);
                }
                continue;
            }
            let closing = rest.get(1) == Some(&b'/');
            let name_start = start + 1 + usize::from(closing);
            let name_len = tag_name_len(&window[name_start..]);
            if name_len == 0 && closing && rest.len() > 2 {
                // `</>` is dropped; `</ x>` is a comment up to the next `>`.
                let end = memchr::memchr(b'>', &rest[2..]).map(|gt| start + 2 + gt + 1);
                match end {
                    Some(end) => self.at = end,
                    None => self.done = true,
                }
                if rest[2] == b'>' {
                    continue;
                }
                return Some(Token::Comment { start, end });
            }
            if name_len == 0 {
                // `a < b`: text, not a tag.
                self.at = start + 1;
                continue;
            }
            let name_end = name_start + name_len;
            if name_end == window.len() {
                // The name may go on past the window.
                return self.last(Token::Cut);
            }
            let name = &window[name_start..name_end];
            let end = tag_end(window, name_end);
            if closing {
                // Its `>` may be past the window; the end tag counts all the same.
                match end {
                    Some(end) => self.at = end,
                    None => self.done = true,
                }
                return Some(Token::EndTag { name, start });
            }
            let Some(end) = end else {
                return self.last(Token::Cut);
            };
            let raw = RAW_TEXT.iter().any(|raw| name.eq_ignore_ascii_case(raw));
            if !raw || self.self_closed(end) {
                self.at = end;
                return Some(Token::StartTag {
                    name,
                    start,
                    end,
                    text_end: end,
                });
            }
            // The contents of a raw-text element run to its end tag.
            let closed = if name.eq_ignore_ascii_case(b"script") {
                script_end(window, end)
            } else {
                end_tag(window, end, name)
            };
            let text_end = closed.map_or(window.len(), |(text_end, _)| text_end);
            let tag = Token::StartTag {
                name,
                start,
                end,
                text_end,
            };
            return match closed {
                Some((_, after)) => {
                    self.at = after;
                    Some(tag)
                }
                None => self.last(tag),
            };
        }
        None
    }
}

/// The offset just past the end of a comment whose closing dashes may begin at `from`
/// (the opening's own dashes): `-->`, or `--!>`, which browsers take as an end too but
/// not from those dashes (`<!--!>` is still open).
fn comment_end(window: &[u8], from: usize) -> Option<usize> {
    let arrow = find_ignore_case(window, &COMMENT_END, from).map(|at| at + 3);
    let bang = find_ignore_case(window, &COMMENT_BANG_END, from + 2).map(|at| at + 4);
    match (arrow, bang) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A page's own `livereload.js` tag, as far as it says where its socket goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OwnClient {
    /// The port the tag names (`…:35729/livereload.js`, or a `port=` in its query,
    /// which the client connects to instead), as written: one past 65535 names no port
    /// there is; `None` when it names none (a path on the page's own origin, or a port
    /// computed by script).
    pub port: Option<u32>,
    /// Where the script itself is loaded from.
    pub source: ClientSource,
}

/// Where a page's own `livereload.js` comes from, as far as its tag says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientSource {
    /// `/livereload.js` on the page's own origin.
    SiteRoot,
    /// `livereload.js` (or `./livereload.js`) beside the page.
    PageFolder,
    /// `http://HOST[:PORT]/livereload.js` (or `//…`): another origin, or the page's own
    /// if [`OwnClient::port`] is its port.
    Url,
    /// Anywhere else (`/js/livereload.js`, a CDN's path), or written by an inline
    /// loader.
    Elsewhere,
}

/// Where a `src` (trimmed) that loads `livereload.js` points.
fn client_source(src: &str) -> ClientSource {
    let path = src.split(['?', '#']).next().unwrap_or_default();
    let lower = path.to_ascii_lowercase();
    let after_scheme = ["http:", "https:"]
        .iter()
        .find_map(|scheme| lower.strip_prefix(scheme))
        .unwrap_or(&lower);
    if let Some(authority) = after_scheme.strip_prefix("//") {
        return match authority.split_once('/') {
            Some((_, "livereload.js")) => ClientSource::Url,
            _ => ClientSource::Elsewhere,
        };
    }
    match lower.as_str() {
        "/livereload.js" => ClientSource::SiteRoot,
        "livereload.js" | "./livereload.js" => ClientSource::PageFolder,
        _ => ClientSource::Elsewhere,
    }
}

/// The `livereload.js` a page (its first [`WINDOW`] bytes looked at) loads of its own,
/// other than the one reloadsup puts in (see [`client_tag`]).
pub fn own_client(page: &[u8], xml: bool) -> Option<OwnClient> {
    let window = &page[..page.len().min(WINDOW)];
    if memchr::memmem::find(window, b"/__reloadsup/livereload.js").is_some() {
        return None;
    }
    client_tag(window, xml)
}

/// Whether a `<script>` in `window` loads a `livereload.js` (see [`client_tag`]).
fn loads_client(window: &[u8], xml: bool) -> bool {
    client_tag(window, xml).is_some()
}

/// The first `<script>` in `window` that loads a `livereload.js` (a hand-written
/// snippet, an earlier injection): by its `src`, or as an inline loader that writes
/// such a tag (LiveReload's own snippet). The name anywhere else does not count: in the
/// page's text or a link (a page about live reload), in a `<title>`, `<textarea>` or
/// `<template>`, or in a snippet commented out (one the proxy replaces). Nor does a
/// file whose name only contains it (see [`names_client`]).
fn client_tag(window: &[u8], xml: bool) -> Option<OwnClient> {
    find_ignore_case(window, &SNIPPET, 0)?;
    Tokens::new(window, xml).find_map(|token| match token {
        Token::StartTag {
            name,
            start,
            end,
            text_end,
        } if name.eq_ignore_ascii_case(b"script") => {
            let attributes = &window[start + 1 + name.len()..end - 1];
            match attribute(attributes, b"src").filter(|src| is_client_url(src)) {
                Some(src) => {
                    let src = src.trim();
                    let path = src.split(['?', '#']).next().unwrap_or_default();
                    Some(OwnClient {
                        port: port_named(src.as_bytes(), path.len()),
                        source: client_source(src),
                    })
                }
                None => {
                    let text = &window[end..text_end];
                    names_client(text).map(|at| OwnClient {
                        port: port_named(text, at),
                        source: ClientSource::Elsewhere,
                    })
                }
            }
        }
        _ => None,
    })
}

/// The port a client URL ending (before its query) at `name_end`, just past its
/// `livereload.js`, connects to: its query's `port=` if it has one, else a port written
/// just before the file's path (`:35729/livereload.js`).
fn port_named(text: &[u8], name_end: usize) -> Option<u32> {
    let digits = |bytes: &[u8]| -> Option<u32> {
        // Up to 9 digits fit; a longer run names no port there is either.
        let count = bytes
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
            .min(9);
        std::str::from_utf8(&bytes[..count]).ok()?.parse().ok()
    };
    let rest = &text[name_end..];
    let query_end = rest
        .iter()
        .position(|b| !b.is_ascii_graphic() || matches!(b, b'"' | b'\'' | b'#'))
        .unwrap_or(rest.len());
    let query = &rest[..query_end];
    if query.first() == Some(&b'?') {
        let asked = query[1..]
            .split(|&b| b == b'&')
            .find_map(|pair| pair.strip_prefix(b"port="))
            .and_then(digits);
        if asked.is_some() {
            return asked;
        }
    }
    let before = &text[..name_end.checked_sub(SNIPPET.bytes.len())?];
    let slash = before.strip_suffix(b"/")?;
    let count = slash
        .iter()
        .rev()
        .take_while(|b| b.is_ascii_digit())
        .count();
    let colon = slash.len().checked_sub(count + 1)?;
    (count > 0 && slash[colon] == b':')
        .then(|| digits(&slash[colon + 1..]))
        .flatten()
}

/// Whether a script's `src` is a file called `livereload.js` (any case): the last
/// segment of its path, before any `?` or `#`. So `/livereload.js?port=1` is one, and
/// `/notlivereload.js`, `/livereload.json`, `/livereload.jsx` and
/// `/livereload.min.js` (another file, whose client we cannot know) are not.
fn is_client_url(src: &str) -> bool {
    let path = src.split(['?', '#']).next().unwrap_or_default();
    let file = path.rsplit('/').next().unwrap_or_default();
    file.trim().eq_ignore_ascii_case("livereload.js")
}

/// Where an inline script names a file called `livereload.js` (any case), as
/// LiveReload's loader does in the URL it writes (`…:35729/livereload.js?snipver=1`):
/// the offset just past the first such name that is not part of a longer one
/// (`my-livereload.js`, `livereload.json`).
fn names_client(text: &[u8]) -> Option<usize> {
    // Bytes that may go on a file name around the one looked for.
    let in_name = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_');
    let mut from = 0;
    while let Some(at) = find_ignore_case(text, &SNIPPET, from) {
        let end = at + SNIPPET.bytes.len();
        let alone = !text[..at].last().is_some_and(in_name) && !text.get(end).is_some_and(in_name);
        if alone {
            return Some(end);
        }
        from = at + 1;
    }
    None
}

/// The `content` of the first `<meta http-equiv="Content-Security-Policy">` in
/// `document` (entities in it decoded), so the tag can carry the nonce such a policy
/// asks for. One inside a comment counts too: a nonce the page does not need is
/// harmless.
pub fn meta_policy(document: &[u8]) -> Option<String> {
    let mut at = 0;
    while let Some(found) = find_ignore_case(document, &HTTP_EQUIV, at) {
        at = found + HTTP_EQUIV.bytes.len();
        let Some(start) = memchr::memrchr(b'<', &document[..found]) else {
            continue;
        };
        let name = &document[start + 1..];
        let is_meta = name.len() > 4
            && name[..4].eq_ignore_ascii_case(b"meta")
            && name[4].is_ascii_whitespace();
        let Some(end) = tag_end(document, start + 5).filter(|_| is_meta) else {
            continue;
        };
        let tag = &document[start + 5..end - 1];
        let is_policy = attribute(tag, b"http-equiv")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("content-security-policy"));
        if is_policy {
            return attribute(tag, b"content");
        }
    }
    None
}

/// The value of attribute `wanted` among a tag's attributes (`tag` is what follows
/// its name, without the closing `>`), quoted or not, with the common entities
/// decoded.
fn attribute(tag: &[u8], wanted: &[u8]) -> Option<String> {
    let mut i = 0;
    while i < tag.len() {
        while i < tag.len() && (tag[i].is_ascii_whitespace() || tag[i] == b'/') {
            i += 1;
        }
        let name_start = i;
        while i < tag.len() && !tag[i].is_ascii_whitespace() && !b"=/>".contains(&tag[i]) {
            i += 1;
        }
        let name = &tag[name_start..i];
        while i < tag.len() && tag[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value: &[u8] = b"";
        if tag.get(i) == Some(&b'=') {
            i += 1;
            while i < tag.len() && tag[i].is_ascii_whitespace() {
                i += 1;
            }
            match tag.get(i) {
                Some(&quote @ (b'"' | b'\'')) => {
                    let len = tag[i + 1..]
                        .iter()
                        .position(|&b| b == quote)
                        .unwrap_or(tag.len() - i - 1);
                    value = &tag[i + 1..i + 1 + len];
                    i += len + 2;
                }
                _ => {
                    let start = i;
                    while i < tag.len() && !tag[i].is_ascii_whitespace() {
                        i += 1;
                    }
                    value = &tag[start..i];
                }
            }
        }
        if name.eq_ignore_ascii_case(wanted) {
            return Some(decode_entities(&String::from_utf8_lossy(value)));
        }
        if name.is_empty() {
            i += 1;
        }
    }
    None
}

/// Whether `head` (a page's first bytes) names the page's encoding in a `<meta>` tag,
/// as a browser's prescan finds it: a `charset` attribute, or `http-equiv=
/// "Content-Type"` with a `content` holding `charset=`. Comments are passed over (read
/// by the same tokens as the tag's placement), and so is the word in any other
/// attribute (`content="A charset converter"`).
pub fn meta_charset(head: &[u8]) -> bool {
    Tokens::new(head, false).any(|token| match token {
        Token::StartTag {
            name, start, end, ..
        } if name.eq_ignore_ascii_case(b"meta") => {
            let attributes = &head[start + 1 + name.len()..end - 1];
            let content_type = attribute(attributes, b"http-equiv")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("content-type"));
            let named_in_content = content_type
                && attribute(attributes, b"content")
                    .is_some_and(|c| c.to_ascii_lowercase().contains("charset="));
            attribute(attributes, b"charset").is_some() || named_in_content
        }
        _ => false,
    })
}

/// Decodes the entities a policy in an attribute may use for its quotes.
fn decode_entities(text: &str) -> String {
    text.replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&apos;", "'")
        .replace("&quot;", "\"")
        .replace("&amp;", "&")
}

/// Whether a document starts with a UTF-16 (or UTF-32) byte-order mark: a browser reads
/// it so whatever the headers say, and the ASCII tag would turn into garbage in it.
fn is_wide(window: &[u8]) -> bool {
    window.starts_with(&[0xFF, 0xFE]) || window.starts_with(&[0xFE, 0xFF])
}

/// The length of the tag name at the start of `bytes`: a letter, then letters, digits,
/// `-`, `_`, `:` or `.`.
fn tag_name_len(bytes: &[u8]) -> usize {
    match bytes.first() {
        Some(b) if b.is_ascii_alphabetic() => bytes
            .iter()
            .position(|b| !(b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':' | b'.')))
            .unwrap_or(bytes.len()),
        _ => 0,
    }
}

/// The offset just past the `>` that ends a tag whose attributes start at `from`,
/// skipping quoted attribute values (`<div title="a > b">`).
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < bytes.len() {
        match bytes[i] {
            b'>' => return Some(i + 1),
            b'=' => {
                i += 1;
                while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                    i += 1;
                }
                if let Some(&quote @ (b'"' | b'\'')) = bytes.get(i) {
                    let close = bytes[i + 1..].iter().position(|&b| b == quote)?;
                    i += close + 2;
                }
            }
            _ => i += 1,
        }
    }
    None
}

/// Where the end tag `</name…>` that closes a raw-text element whose contents start at
/// `from` begins, and the offset just past it.
fn end_tag(bytes: &[u8], from: usize, name: &[u8]) -> Option<(usize, usize)> {
    let mut at = from;
    loop {
        let lt = find_ignore_case(bytes, &END_TAG, at)?;
        if let Some(after) = named_tag(bytes, lt + 2, name) {
            return Some((lt, after));
        }
        at = lt + 2;
    }
}

/// As [`end_tag`], for a `<script>`, whose contents browsers read in two more states:
/// after a `<!--`, a `<script` opens a part in which `</script>` does not end the
/// script, up to the `</script>` that closes that part or a `-->` (pages that wrote
/// `<!-- document.write("<script>…</script>") -->`).
fn script_end(bytes: &[u8], from: usize) -> Option<(usize, usize)> {
    // After `<!--`, until `-->`; and within that, after `<script`.
    let (mut escaped, mut nested) = (false, false);
    let mut at = from;
    loop {
        let found = if escaped {
            memchr::memchr2(b'<', b'-', &bytes[at..])
        } else {
            memchr::memchr(b'<', &bytes[at..])
        };
        let i = at + found?;
        let rest = &bytes[i..];
        at = i + 1;
        if rest.starts_with(b"-->") {
            (escaped, nested) = (false, false);
            at = i + 3;
        } else if !escaped && rest.starts_with(b"<!--") {
            // The dashes may end it too: `<!-->`.
            escaped = true;
            at = i + 2;
        } else if rest.starts_with(b"</") {
            if let Some(after) = named_tag(bytes, i + 2, b"script") {
                if !nested {
                    return Some((i, after));
                }
                nested = false;
                at = i + b"</script".len();
            }
        } else if escaped && !nested && rest.starts_with(b"<") {
            nested = named_tag(bytes, i + 1, b"script").is_some();
        }
    }
}

/// The offset just past a tag named `name` (any case) whose name starts at `at`: the
/// name followed by a space, `/` or `>`, and the tag's `>` within `bytes`.
fn named_tag(bytes: &[u8], at: usize, name: &[u8]) -> Option<usize> {
    let name_end = at + name.len();
    let delimited = bytes
        .get(name_end)
        .is_some_and(|&b| b == b'>' || b == b'/' || b.is_ascii_whitespace());
    if !(delimited && bytes[at..name_end].eq_ignore_ascii_case(name)) {
        return None;
    }
    let close = memchr::memchr(b'>', &bytes[name_end..])?;
    Some(name_end + close + 1)
}

/// Bytes that are common in HTML pages, most common first (after letters' case is
/// folded). A needle is looked for by the byte of it that comes latest in this list, or
/// is missing from it.
const COMMON: &[u8] = b" etaoinsrlhcd/<>=\"pmu-.fgwybv:k";

/// A hand-written snippet or an earlier injection.
const SNIPPET: Needle = Needle::new(b"livereload.js");
/// The attribute of a `<meta>` that sets a policy.
const HTTP_EQUIV: Needle = Needle::new(b"http-equiv");
/// The end of a comment.
const COMMENT_END: Needle = Needle::new(b"-->");
/// The other end of a comment that browsers accept.
const COMMENT_BANG_END: Needle = Needle::new(b"--!>");
/// The start of an end tag.
const END_TAG: Needle = Needle::new(b"</");

/// A string to look for (ASCII, any case), with the index of its rarest byte, chosen
/// once (at compile time for the constants above) rather than at every search.
struct Needle<'a> {
    bytes: &'a [u8],
    anchor: usize,
}

impl<'a> Needle<'a> {
    const fn new(bytes: &'a [u8]) -> Needle<'a> {
        Needle {
            bytes,
            anchor: rarest(bytes),
        }
    }
}

/// The offset of the first `needle` in `haystack` at or after `from`. Candidates are
/// found with `memchr` by the needle's rarest byte (both cases of a letter), so a page
/// costs a pass at memory speed and few restarts: `livereload.js` is looked for by its
/// `j`, not by the `l` of every `class`.
fn find_ignore_case(haystack: &[u8], needle: &Needle, from: usize) -> Option<usize> {
    let Needle { bytes, anchor } = *needle;
    let key = *bytes.get(anchor)?;
    let (lower, upper) = (key.to_ascii_lowercase(), key.to_ascii_uppercase());
    let mut at = from + anchor;
    while at < haystack.len() {
        let candidate = at + memchr::memchr2(lower, upper, &haystack[at..])?;
        let start = candidate - anchor;
        // A needle that runs past the end here fits at no later candidate either.
        let window = haystack.get(start..start + bytes.len())?;
        if window.eq_ignore_ascii_case(bytes) {
            return Some(start);
        }
        at = candidate + 1;
    }
    None
}

/// The index of the byte of `needle` that is least common in pages, by [`COMMON`]
/// (the last of equals; 0 for an empty needle).
const fn rarest(needle: &[u8]) -> usize {
    let (mut best, mut best_rank) = (0, 0);
    let mut i = 0;
    while i < needle.len() {
        let rank = rank(needle[i]);
        if rank >= best_rank {
            (best, best_rank) = (i, rank);
        }
        i += 1;
    }
    best
}

/// Where `byte` stands in [`COMMON`] (its length if it is not there).
const fn rank(byte: u8) -> usize {
    let byte = byte.to_ascii_lowercase();
    let mut i = 0;
    while i < COMMON.len() && COMMON[i] != byte {
        i += 1;
    }
    i
}

#[cfg(test)]
mod tests {
    use super::Placement::{At, End, Skip};
    use super::*;

    /// Where the tag goes, shown as the document with `@` at the place (or `+@` at the
    /// end, or `skip`).
    fn shown(doc: &str) -> String {
        match place(doc.as_bytes(), false, false) {
            At(i) => format!("{}@{}", &doc[..i], &doc[i..]),
            End => format!("{doc}+@"),
            Skip => "skip".to_string(),
        }
    }

    #[test]
    fn in_xhtml_a_self_closed_script_is_whole() {
        let doc = "<head><script src=\"a.js\"/></head><body>x<script>q()</script>";
        let at = doc.find("</head>").expect("a head");
        assert_eq!(place(doc.as_bytes(), true, false), At(at));
        assert_eq!(place(doc.as_bytes(), false, false), End);
    }

    #[test]
    fn needles_are_found_in_any_case_at_any_offset() {
        let find = |haystack: &str, needle: &str, from| {
            find_ignore_case(haystack.as_bytes(), &Needle::new(needle.as_bytes()), from)
        };
        assert_eq!(find("x LLiveReload.JS", "livereload.js", 0), Some(3));
        assert_eq!(
            find("livereload.jslivereload.js", "livereload.js", 1),
            Some(13)
        );
        assert_eq!(find("a -- --> b", "-->", 0), Some(5));
        assert_eq!(find("</HEAD>", "</head>", 0), Some(0));
        assert_eq!(find("livereload.j", "livereload.js", 0), None);
        assert_eq!(find("-->", "-->", 4), None);
        assert_eq!(find("a-->-->", "-->", 2), Some(4));
        assert_eq!(find("j livereload.js", "livereload.js", 0), Some(2));
    }

    #[test]
    fn needles_are_looked_for_by_their_rarest_byte() {
        assert_eq!(rarest(b"livereload.js"), 11);
        assert_eq!(SNIPPET.anchor, 11);
        assert_eq!(rarest(b"</"), 0);
        assert_eq!(rarest(b""), 0);
    }

    #[test]
    fn the_search_agrees_with_a_plain_one() {
        let find = |haystack: &str, needle: &str, from| {
            find_ignore_case(haystack.as_bytes(), &Needle::new(needle.as_bytes()), from)
        };
        let plain = |haystack: &[u8], needle: &[u8], from: usize| {
            (from..=haystack.len().saturating_sub(needle.len())).find(|&i| {
                haystack[i..].len() >= needle.len()
                    && haystack[i..i + needle.len()].eq_ignore_ascii_case(needle)
            })
        };
        let haystacks = [
            "",
            "j",
            "livereload.js",
            "LIVERELOAD.JS livereload.js",
            "jjj livereload.jj.js",
            "a-->--->-->",
            "</</<//</",
            "xlivereload.jslivereload.js",
            "--> livereload.JS -->",
        ];
        for haystack in haystacks {
            for needle in ["livereload.js", "-->", "</", "j", "JS"] {
                for from in 0..=haystack.len() + 1 {
                    assert_eq!(
                        find(haystack, needle, from),
                        plain(haystack.as_bytes(), needle.as_bytes(), from),
                        "{needle:?} in {haystack:?} from {from}"
                    );
                }
            }
        }
        assert_eq!(find("", "-->", 0), None);
    }

    #[test]
    fn placement_table() {
        let cases = [
            // `</head>` present: before it.
            (
                "<!DOCTYPE html><html><head><title>x</title></head><body>hi</body></html>",
                "<!DOCTYPE html><html><head><title>x</title>@</head><body>hi</body></html>",
            ),
            // Uppercase tags, and an end tag with a space.
            (
                "<HTML><HEAD><TITLE>x</TITLE></HEAD ><BODY></BODY>",
                "<HTML><HEAD><TITLE>x</TITLE>@</HEAD ><BODY></BODY>",
            ),
            // No head: after the opening body tag, attributes and all.
            (
                "<body class=\"a>b\" data-x='1'><p>hi</p></body>",
                "<body class=\"a>b\" data-x='1'>@<p>hi</p></body>",
            ),
            // Neither: at the end.
            ("<p>hi</p>", "<p>hi</p>+@"),
            ("", "+@"),
            // `</head>` and `</body>` in a script string, a comment, a style sheet, an
            // attribute and a title do not count.
            (
                "<head><script>var s = \"</head></body>\";</script></head>",
                "<head><script>var s = \"</head></body>\";</script>@</head>",
            ),
            (
                "<head><!-- </head> <body> --></head>",
                "<head><!-- </head> <body> -->@</head>",
            ),
            (
                "<head><style>/* </head> */ p{}</style></head>",
                "<head><style>/* </head> */ p{}</style>@</head>",
            ),
            (
                "<head><meta content=\"</head>\"></head>",
                "<head><meta content=\"</head>\">@</head>",
            ),
            (
                "<head><title>a </head> b</title></head>",
                "<head><title>a </head> b</title>@</head>",
            ),
            // Case-insensitive end of a script, `</scripts>` is not one.
            (
                "<head><SCRIPT>a</scripts></Script></head>",
                "<head><SCRIPT>a</scripts></Script>@</head>",
            ),
            // In HTML a self-closed script is an open one: it runs to `</script>`.
            (
                "<head><script src=\"a.js\"/></head><body>x<script>q()</script>",
                "<head><script src=\"a.js\"/></head><body>x<script>q()</script>+@",
            ),
            // A template's contents are inert: its `</head>` does not count.
            (
                "<head><template><div></head></div></template></head>",
                "<head><template><div></head></div></template>@</head>",
            ),
            // `<header>` and `</header>` are not the head.
            (
                "<body><header>x</header></body>",
                "<body>@<header>x</header></body>",
            ),
            // Text `<` and a processing instruction.
            (
                "<?xml version=\"1.0\"?><head>a < b</head>",
                "<?xml version=\"1.0\"?><head>a < b@</head>",
            ),
            // An unclosed script swallows the rest: at the end. An unclosed comment
            // too, but the end may be inside it: before it, unless it comes before
            // anything else (the doctype may follow it).
            ("<head><!-- </head>", "<head>@<!-- </head>"),
            (
                "<!DOCTYPE html><!-- <head></head>",
                "<!DOCTYPE html>@<!-- <head></head>",
            ),
            (
                "<!-- a --> <!-- <!DOCTYPE html>",
                "<!-- a --> <!-- <!DOCTYPE html>+@",
            ),
            (
                "<head><script>x = '</head>'",
                "<head><script>x = '</head>'+@",
            ),
            // An existing snippet, in any case: never twice.
            (
                "<head></head><body><script src=\"http://localhost:35729/LiveReload.js\"></script>",
                "skip",
            ),
            (
                "<head><SCRIPT defer\nsrc='/__reloadsup/livereload.js?port='></SCRIPT></head>",
                "skip",
            ),
            // Empty comments are whole: `<!-->` and `<!--->`.
            (
                "<head><!--></head><body>x</body>",
                "<head><!-->@</head><body>x</body>",
            ),
            (
                "<head><!---></head><body>x</body>",
                "<head><!--->@</head><body>x</body>",
            ),
            ("<head><!----></head>", "<head><!---->@</head>"),
            // A snippet commented out is replaced; one after the comment is not.
            (
                "<head><!-- <script src=\"http://localhost:35729/livereload.js\"></script> --></head>",
                "<head><!-- <script src=\"http://localhost:35729/livereload.js\"></script> -->@</head>",
            ),
            (
                "<head><!-- old --><script src=\"/livereload.js\"></script></head>",
                "skip",
            ),
            (
                "<head><!--><script src=\"/livereload.js\"></script></head>",
                "skip",
            ),
            // A `<!--` in a script string, an attribute or a style sheet starts no
            // comment: the snippet after it is real.
            (
                "<head><script>var a = \"<!--\";</script><script src=\"/livereload.js\"></script></head>",
                "skip",
            ),
            (
                "<head><meta content=\"<!--\"><style>/* <!-- */</style><script src=\"/livereload.js\"></script></head>",
                "skip",
            ),
            // `--!>` ends a comment too, but not with the opening's dashes.
            ("<head><!-- a --!></head>", "<head><!-- a --!>@</head>"),
            (
                "<head><!--!> </head> --></head>",
                "<head><!--!> </head> -->@</head>",
            ),
            (
                "<head><!-- a --!><script src=\"/livereload.js\"></script></head>",
                "skip",
            ),
            // `</` and a non-letter: `</>` is dropped, `</ x>` is a comment to its `>`.
            ("<head></ </head> x></head>", "<head></ </head> x>@</head>"),
            ("<head></></head>", "<head></>@</head>"),
            ("<head></ x", "<head>@</ x"),
            // After `<!--` in a script, a `<script>…</script>` in it does not end it.
            (
                "<head><script><!-- document.write('<script>x()</script></head>') --></script></head>",
                "<head><script><!-- document.write('<script>x()</script></head>') --></script>@</head>",
            ),
            (
                "<head><script><!--</script></head>",
                "<head><script><!--</script>@</head>",
            ),
            (
                "<head><script><!-- <script> --></script></head>",
                "<head><script><!-- <script> --></script>@</head>",
            ),
            (
                "<head><script><!--> <script></script></head>",
                "<head><script><!--> <script></script>@</head>",
            ),
            // Templates nest; the contents of all of them are inert.
            (
                "<head><template><template></template></head><body></template></head>",
                "<head><template><template></template></head><body></template>@</head>",
            ),
            (
                "<head><template><script>'</template>'</script></head></template></head>",
                "<head><template><script>'</template>'</script></head></template>@</head>",
            ),
            ("<head><template><!-- ", "<head><template><!-- +@"),
            // The name in the page's text, or in a link, is no snippet.
            (
                "<head><title>livereload.js</title></head><a href=\"livereload.js\">",
                "<head><title>livereload.js</title>@</head><a href=\"livereload.js\">",
            ),
            // Nor is a snippet shown as text in a title, a text area, an attribute or
            // the inert contents of a template, or one only named by another attribute.
            (
                "<head><title><script src=\"/livereload.js\"></script></title></head>",
                "<head><title><script src=\"/livereload.js\"></script></title>@</head>",
            ),
            // A `</head>` in raw text of the head is no end of it: the tag would go
            // into that text and never run.
            (
                "<head><noscript><style>p{}</style></head></noscript></head>",
                "<head><noscript><style>p{}</style></head></noscript>@</head>",
            ),
            (
                "<head><iframe></head></iframe><noembed></head></noembed></head>",
                "<head><iframe></head></iframe><noembed></head></noembed>@</head>",
            ),
            (
                "<head><noframes></head></noframes><body>x",
                "<head><noframes></head></noframes><body>@x",
            ),
            (
                "<head></head><body><textarea><script src=/livereload.js></script></textarea>",
                "<head>@</head><body><textarea><script src=/livereload.js></script></textarea>",
            ),
            (
                "<head><meta content='<script src=\"/livereload.js\">'></head>",
                "<head><meta content='<script src=\"/livereload.js\">'>@</head>",
            ),
            (
                "<head><template><script src=\"/livereload.js\"></script></template></head>",
                "<head><template><script src=\"/livereload.js\"></script></template>@</head>",
            ),
            (
                "<head><script data-docs=\"livereload.js\" src=\"app.js\"></script></head>",
                "<head><script data-docs=\"livereload.js\" src=\"app.js\"></script>@</head>",
            ),
            // Only a file called `livereload.js` counts, not one whose name holds it.
            (
                "<head><script src=\"/notlivereload.js\"></script></head>",
                "<head><script src=\"/notlivereload.js\"></script>@</head>",
            ),
            (
                "<head><script src=\"/livereload.json\"></script></head>",
                "<head><script src=\"/livereload.json\"></script>@</head>",
            ),
            (
                "<head><script src=\"/livereload.jsx\"></script></head>",
                "<head><script src=\"/livereload.jsx\"></script>@</head>",
            ),
            (
                "<head><script src=\"/livereload.jsonp?cb=x\"></script></head>",
                "<head><script src=\"/livereload.jsonp?cb=x\"></script>@</head>",
            ),
            (
                "<head><script src=\"/livereload.min.js\"></script></head>",
                "<head><script src=\"/livereload.min.js\"></script>@</head>",
            ),
            (
                "<head><script>load('/my-livereload.js')</script></head>",
                "<head><script>load('/my-livereload.js')</script>@</head>",
            ),
            (
                "<head><script src=\"livereload.js#x\"></script></head>",
                "skip",
            ),
            // LiveReload's own snippet writes its tag from an inline script.
            (
                "<head></head><body><script>document.write('<script src=\"http://' + \
                 location.hostname + ':35729/livereload.js?snipver=1\"></' + 'script>')</script>",
                "skip",
            ),
        ];
        for (doc, expected) in cases {
            assert_eq!(shown(doc), expected, "document: {doc:?}");
        }
    }

    #[test]
    fn a_place_is_settled_once_more_bytes_cannot_change_it() {
        let settled = |doc: &str| settled(doc.as_bytes(), false);
        assert_eq!(settled("<head><title>x</title></head>"), Some(At(22)));
        assert_eq!(settled("<body class=a>"), Some(At(14)));
        assert_eq!(settled("<script src=/livereload.js></script>"), Some(Skip));
        // The comment may still close, and a `</head>` follow.
        assert_eq!(settled("<head><!-- a "), None);
        assert_eq!(place(b"<head><!-- a ", false, false), At(6));
        assert_eq!(settled("<head><title>x</title>"), None);
        assert_eq!(settled("<head><script>a"), None);
    }

    #[test]
    fn a_comment_left_open_at_the_top_of_a_whole_document_gets_the_tag_before_it() {
        let doc = b"\n<!-- a -->\n<!-- open <html><head></head><body>x</body>";
        // In a window, the comment may close, and a doctype follow it: at the end.
        assert_eq!(place(doc, false, false), End);
        // A whole document's comment never closes, and nothing follows it.
        assert_eq!(place(doc, false, true), At(12));
        assert_eq!(place(b"<!-- open", false, true), At(0));
        assert_eq!(place(b"<!doctype html><!-- open", false, true), At(15));
        // More than the window is no whole document.
        let long = format!("<!-- {}", "x".repeat(WINDOW));
        assert_eq!(place(long.as_bytes(), false, true), End);
    }

    #[test]
    fn a_policy_in_a_meta_tag_is_found() {
        let policy = |doc: &str| meta_policy(doc.as_bytes());
        assert_eq!(
            policy(
                "<head><meta charset=utf-8><META Http-Equiv=\"content-security-policy\" \
                 content=\"script-src 'nonce-abc'\"></head>"
            )
            .as_deref(),
            Some("script-src 'nonce-abc'")
        );
        assert_eq!(
            policy(
                "<meta content='script-src &#39;nonce-x&#39;' http-equiv=Content-Security-Policy>"
            )
            .as_deref(),
            Some("script-src 'nonce-x'")
        );
        assert_eq!(
            policy("<meta http-equiv=\"refresh\" content=\"5\"><p>http-equiv</p>"),
            None
        );
        assert_eq!(policy("<head></head>"), None);
    }

    #[test]
    fn a_document_in_utf_16_is_left_alone() {
        let little: Vec<u8> = [0xFF, 0xFE]
            .into_iter()
            .chain("<head></head>".bytes().flat_map(|b| [b, 0]))
            .collect();
        assert_eq!(place(&little, false, false), Placement::Skip);
        let big: Vec<u8> = [0xFE, 0xFF]
            .into_iter()
            .chain("<p>".bytes().flat_map(|b| [0, b]))
            .collect();
        assert_eq!(place(&big, false, false), Placement::Skip);
        // A UTF-8 byte-order mark is ASCII-compatible.
        assert_eq!(
            place(b"\xEF\xBB\xBF<head></head>", false, false),
            Placement::At(9)
        );
    }

    #[test]
    fn only_the_window_is_scanned() {
        let filler = "x".repeat(WINDOW);
        // `</head>` only after the window, and the body with it: at the end.
        let late = format!("<head><title>{filler}</title></head><body></body>");
        assert_eq!(place(late.as_bytes(), false, false), End);
        // A body inside the window, a stray `</head>` after it: after the body.
        let body_first = format!("<body>{filler}</head>");
        assert_eq!(place(body_first.as_bytes(), false, false), At(6));
        // `</head>` cut off by the window's end: not found.
        let cut = format!("{}</head>", "y".repeat(WINDOW - 3));
        assert_eq!(place(cut.as_bytes(), false, false), End);
        // A snippet past the window is not seen.
        let snippet = format!("<head></head>{filler}livereload.js");
        assert_eq!(place(snippet.as_bytes(), false, false), At(6));
    }

    /// A window can end anywhere (a page that stalls is placed from what arrived), so
    /// every cut of a tricky document must give a place inside it, or the end. (Read
    /// as XHTML, where its `<style/>` is a whole element.)
    #[test]
    fn every_cut_of_a_document_gets_a_place_within_it() {
        let doc = "<!DOCTYPE html><?xml x?><html><head><!-- </head> --><meta content=\"a>b\" \
                   x='c'><SCRIPT>if (a < b) s = \"</head>\";</scripts></Script><style/>\
                   <title>t</title><br/></HEAD ><body class=x>a < b </ x>\
                   <script src=livereload.js></script></body>";
        let head = doc.find("</HEAD").expect("the real end of the head");
        let snippet = doc.find("livereload.js").expect("a snippet") + "livereload.js".len();
        for cut in 0..=doc.len() {
            let found = place(&doc.as_bytes()[..cut], true, false);
            if let At(at) = found {
                assert!(at <= cut, "cut {cut}: place {at} past the window");
            }
            // Once the name after `</` is whole, the place is known, until the snippet
            // has arrived and nothing is injected.
            if (head + "</HEAD ".len()..snippet).contains(&cut) {
                assert_eq!(found, At(head), "cut {cut}");
            }
        }
        assert_eq!(place(doc.as_bytes(), true, false), Skip);
    }

    /// Where a page's own client is loaded from: the site's root, beside the page, a
    /// URL (whose port says whether it is the site's), or elsewhere.
    #[test]
    fn a_pages_own_client_says_where_it_comes_from() {
        let source = |src: &str| {
            let page = format!("<script src=\"{src}\"></script>");
            own_client(page.as_bytes(), false).map(|client| client.source)
        };
        use ClientSource::*;
        for (src, expected) in [
            ("/livereload.js", SiteRoot),
            ("/livereload.js?port=5000", SiteRoot),
            (" /LiveReload.js ", SiteRoot),
            ("livereload.js", PageFolder),
            ("./livereload.js#x", PageFolder),
            ("http://localhost:5000/livereload.js", Url),
            ("//otherhost/livereload.js", Url),
            (
                "https://cdn.example/npm/livereload-js/dist/livereload.js",
                Elsewhere,
            ),
            ("/js/livereload.js", Elsewhere),
            ("docs/livereload.js", Elsewhere),
        ] {
            assert_eq!(source(src), Some(expected), "{src}");
        }
        let inline = "<script>document.write('<script src=\"http://' + location.host + \
                      ':35729/livereload.js\"></' + 'script>')</script>";
        assert_eq!(
            own_client(inline.as_bytes(), false).map(|c| c.source),
            Some(Elsewhere)
        );
    }

    /// A page's own client is found with the port its socket goes to, when the tag
    /// says: the port before the file's path, or the `port=` of its query, which wins.
    #[test]
    fn a_pages_own_client_names_its_port() {
        let port = |page: &str| own_client(page.as_bytes(), false).map(|client| client.port);
        let cases = [
            (
                "<script src=\"http://localhost:35729/livereload.js\"></script>",
                Some(Some(35729)),
            ),
            (
                "<script src='//127.0.0.1:35730/livereload.js?snipver=1'></script>",
                Some(Some(35730)),
            ),
            (
                "<script src=\"http://h:1/livereload.js?a=b&port=35731\"></script>",
                Some(Some(35731)),
            ),
            ("<script src=\"/livereload.js\"></script>", Some(None)),
            (
                "<script src=\"http://h:x1/livereload.js\"></script>",
                Some(None),
            ),
            (
                "<script src=\"http://h:99999/livereload.js\"></script>",
                Some(Some(99999)),
            ),
            (
                "<script src=\" //h:35731/livereload.js \"></script>",
                Some(Some(35731)),
            ),
            // LiveReload's own loader, whose host is the page's.
            (
                "<script>document.write('<script src=\"http://' + (location.host || \
                 'localhost').split(':')[0] + ':35729/livereload.js?snipver=1\"></' + \
                 'script>')</script>",
                Some(Some(35729)),
            ),
            ("<script>load(port + '/livereload.js')</script>", Some(None)),
            (
                "<script src=\"/__reloadsup/livereload.js?port=\"></script>",
                None,
            ),
            ("<p>http://localhost:35729/livereload.js</p>", None),
        ];
        for (page, expected) in cases {
            assert_eq!(port(page), expected, "{page}");
        }
    }
}
