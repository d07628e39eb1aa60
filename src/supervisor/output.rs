//! The server's output, when reloadsup must read it: relayed line by line to the
//! terminal, matched against the `ready = { log }` regex, and its last lines kept for
//! the proxy's error page. Otherwise the server writes to the terminal directly.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use regex::Regex;

use super::pipes::{Streams, Writer};

/// How many of its last lines the tail shows.
const TAIL_LINES: usize = 40;

/// How many lines the tail keeps: more than it shows, so the start of a long traceback
/// (Django's run to a hundred lines) is there to find the line that says why.
const KEPT_LINES: usize = 200;

/// The most bytes held back waiting for a line's end.
pub const LONGEST_LINE: usize = 64 * 1024;

/// Output cut into lines as it comes, for the relay and for `start`'s reading of the
/// log: bytes go in, whole lines come out, and the start of a line whose end has not
/// come yet waits — but never more than [`LONGEST_LINE`] of it (a progress bar,
/// binary output), which comes out as a line of its own: up to its last carriage
/// return, when it has one, so what a terminal shows after it (a progress bar's
/// `Serving on …` once it is done) is not cut in two, and still matches the readiness
/// regex (a match across such a cut was missed).
#[derive(Debug, Default)]
pub struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    /// Adds `bytes`; returns the lines they complete, each ending in a newline but for
    /// a last piece cut at [`LONGEST_LINE`], or nothing if no line was completed.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        self.pending.extend_from_slice(bytes);
        let mut done = match memchr::memrchr(b'\n', &self.pending) {
            Some(last) => {
                let rest = self.pending.split_off(last + 1);
                std::mem::replace(&mut self.pending, rest)
            }
            None => Vec::new(),
        };
        if self.pending.len() >= LONGEST_LINE {
            let cut = match memchr::memrchr(b'\r', &self.pending) {
                Some(cr) if cr > 0 => cr,
                _ => self.pending.len(),
            };
            let rest = self.pending.split_off(cut);
            done.append(&mut self.pending);
            self.pending = rest;
        }
        done
    }

    /// The start of a line not ended yet.
    pub fn partial(&self) -> &[u8] {
        &self.pending
    }

    /// Takes the line not ended yet, leaving none.
    pub fn take_partial(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.pending)
    }
}

/// The last lines the server printed (stdout and stderr interleaved as the relay read
/// them), each with when it was read. They are kept as read, and made the text a
/// terminal shows ([`shown`]) only when asked for: a server's every line went through
/// that, and relaying cost a core at 30 MB/s.
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<KeptLine>>>);

/// A line of the tail, as read, and when.
type KeptLine = (Instant, Vec<u8>);

/// The most characters of a line the tail shows.
const TAIL_WIDTH: usize = 1000;

/// The most bytes of a line the tail keeps: [`TAIL_WIDTH`] characters of four bytes,
/// with room for colour codes.
const KEPT_WIDTH: usize = 8 * TAIL_WIDTH;

/// How long before the server's end its telling line may have come (see
/// [`Tail::telling_line`]): what a server prints as it fails comes in one burst, and an
/// error it logged for an earlier request, and handled, is no reason for its end.
const FINAL_BURST: Duration = Duration::from_secs(1);

/// The most characters of [`Tail::telling_line`].
const TELLING_WIDTH: usize = 200;

impl Tail {
    /// Keeps `line` as read: what follows its last carriage return (all a terminal
    /// shows of it), up to [`KEPT_WIDTH`] bytes.
    fn push(&self, line: &[u8]) {
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let start = memchr::memrchr(b'\r', line).map_or(0, |cr| cr + 1);
        let line = &line[start..];
        let kept = line[..line.len().min(KEPT_WIDTH)].to_vec();
        let mut lines = self.0.lock().expect("no panics while holding the lock");
        if lines.len() == KEPT_LINES {
            lines.pop_front();
        }
        lines.push_back((Instant::now(), kept));
    }

    /// A kept line as a terminal shows it, cut to [`TAIL_WIDTH`] characters.
    fn text(kept: &[u8]) -> String {
        let mut line = shown(&String::from_utf8_lossy(kept));
        if let Some((cut, _)) = line.char_indices().nth(TAIL_WIDTH) {
            line.truncate(cut);
            line.push('…');
        } else if kept.len() == KEPT_WIDTH {
            line.push('…');
        }
        line
    }

    /// The last [`TAIL_LINES`] lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        let lines = self.0.lock().expect("no panics while holding the lock");
        lines
            .iter()
            .skip(lines.len().saturating_sub(TAIL_LINES))
            .map(|(_, line)| Tail::text(line))
            .collect()
    }

    /// The line that best says why a server that has just ended did, for the badge on
    /// open pages, from what it printed in its last [`FINAL_BURST`]: the exception of
    /// Python's last traceback (`ModuleNotFoundError: …`, `ImproperlyConfigured: …`),
    /// a Rust panic's message, else the last line naming an error type (`SyntaxError:
    /// …`, `error[E0425]: …`; Node's comes above its stack), else the last mentioning
    /// an error (`config error: …`, `panic: …`, `fatal: …`), else, with
    /// `last_line_too` (a server that exited with a code of its own, whose last words
    /// are its reason: `sys.exit("…")`, `cp: cannot stat …`), its last line; cut to
    /// [`TELLING_WIDTH`] characters. `None` when none says so: the last line before a
    /// SIGSEGV (an access log's) would only mislead.
    pub fn telling_line(&self, last_line_too: bool) -> Option<String> {
        let now = Instant::now();
        let lines: Vec<String> = self
            .0
            .lock()
            .expect("no panics while holding the lock")
            .iter()
            .filter(|(at, _)| now.duration_since(*at) <= FINAL_BURST)
            .map(|(_, line)| Tail::text(line))
            .collect();
        let line = python_exception(&lines)
            .or_else(|| rust_panic(&lines))
            .or_else(|| last_error(&lines))
            .or_else(|| last_line_too.then(|| last_words(&lines)).flatten())?;
        Some(match line.char_indices().nth(TELLING_WIDTH) {
            Some((cut, _)) => format!("{}…", &line[..cut]),
            None => line,
        })
    }

    /// A tail holding `lines`, read just now.
    #[cfg(test)]
    pub fn of(lines: &[&str]) -> Tail {
        let tail = Tail::default();
        lines.iter().for_each(|line| tail.push(line.as_bytes()));
        tail
    }

    /// Forgets the lines of an earlier server.
    pub fn clear(&self) {
        self.0
            .lock()
            .expect("no panics while holding the lock")
            .clear();
    }
}

/// The exception line of the last Python traceback in `lines`: the first line after
/// its `Traceback (most recent call last):` that is not indented (frames and code
/// are). A chained exception's traceback comes last, so its own line is taken.
fn python_exception(lines: &[String]) -> Option<String> {
    let start = lines
        .iter()
        .rposition(|line| line.starts_with("Traceback (most recent call last):"))?;
    lines[start + 1..]
        .iter()
        .find(|line| !line.is_empty() && !line.starts_with(char::is_whitespace))
        .map(|line| line.trim_end().to_string())
}

/// A Rust panic, `thread 'main' panicked at src/main.rs:4:5:` (newer Rust puts the
/// thread's id after its name: `thread 'main' (2121) panicked at …`) with its message
/// on the next line (as Rust prints it since 1.73), or on the same line.
fn rust_panic(lines: &[String]) -> Option<String> {
    let at = lines.iter().rposition(|line| {
        let line = line.trim_start();
        line.starts_with("thread '") && line.contains(" panicked at ")
    })?;
    let head = lines[at].trim();
    match lines.get(at + 1) {
        Some(message) if head.ends_with(':') && !message.trim().is_empty() => {
            Some(format!("{head} {}", message.trim()))
        }
        _ => Some(head.to_string()),
    }
}

/// The last line naming an error type (`TypeError: …`, `error[E0425]: …`), else the
/// last mentioning an error, stack frames skipped, and the borders Python draws around
/// an exception group's parts (`  | TypeError: …`) taken off.
fn last_error(lines: &[String]) -> Option<String> {
    let candidates: Vec<&str> = lines
        .iter()
        .map(|line| line.trim().trim_start_matches(['|', '+', ' ']))
        .filter(|line| !line.is_empty() && !is_stack_frame(line))
        .collect();
    let named = |line: &&&str| {
        line.split(':').next().is_some_and(|head| {
            let word = head.rsplit([' ', '.']).next().unwrap_or(head);
            word.ends_with("Error") || word.ends_with("Exception") || word.starts_with("error[")
        })
    };
    let mentions = |line: &&&str| {
        let lower = line.to_ascii_lowercase();
        let says = lower.contains("error") || lower.starts_with("panic") || lower.contains("fatal");
        // A count of none (`Found 0 errors. Watching…`, `no errors`) and npm's pointer
        // to its own log say nothing of why.
        let idle = [" 0 error", "no error", "complete log of this run"]
            .iter()
            .any(|phrase| lower.contains(phrase));
        says && !idle
    };
    candidates
        .iter()
        .rev()
        .find(named)
        .or_else(|| candidates.iter().rev().find(mentions))
        .map(|line| line.to_string())
}

/// The last line that is not a runtime's own closing words (Node's `Node.js v20.1.0`
/// and its `(Use \`node --trace-…\`` hint).
fn last_words(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .map(|line| line.trim())
        .rev()
        .find(|line| {
            !line.is_empty() && !line.starts_with("Node.js v") && !line.starts_with("(Use `node")
        })
        .map(str::to_string)
}

/// Whether a (trimmed) line is a frame of a stack trace: JavaScript's `at f (file:1:2)`,
/// Python's `File "app.py", line 3, in <module>`, Go's `main.go:12 +0x1d`.
fn is_stack_frame(line: &str) -> bool {
    line.starts_with("at ")
        || line.starts_with("File \"")
        || line.starts_with("Traceback ")
        || line.ends_with(|c: char| c.is_ascii_hexdigit()) && line.contains(" +0x")
}

/// Whether a relay has read the server's output to its end: a server that exits has
/// usually written its last lines (the traceback) just before, and whoever shows them
/// waits for the relay to have read them. And whether it holds output it could not
/// pass on yet (a slow reader), which the next server's relay lets go first.
#[derive(Debug, Clone, Default)]
pub struct Ended(Arc<EndedState>);

#[derive(Debug, Default)]
struct EndedState {
    ended: Mutex<bool>,
    changed: Condvar,
    holding: AtomicBool,
}

impl Ended {
    fn set(&self) {
        *self.0.ended.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.holding.store(false, Ordering::Release);
        self.0.changed.notify_all();
    }

    /// Whether the relay holds output it has not passed on yet.
    pub fn is_holding(&self) -> bool {
        self.0.holding.load(Ordering::Acquire)
    }

    /// Waits until the output has been read to its end and passed on, or `timeout` has
    /// passed (a process the server left behind may hold its output open); whether it
    /// has.
    pub fn wait(&self, timeout: Duration) -> bool {
        let guard = self.0.ended.lock().unwrap_or_else(PoisonError::into_inner);
        let (guard, _) = self
            .0
            .changed
            .wait_timeout_while(guard, timeout, |ended| !*ended)
            .unwrap_or_else(PoisonError::into_inner);
        *guard
    }
}

/// What the relay does with each line besides copying it.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    /// The readiness regex, if `ready = { log }`.
    pub regex: Option<Arc<Regex>>,
    /// Where to keep the last lines, if anyone shows them.
    pub tail: Option<Tail>,
    /// Set at the first line matching `regex`.
    pub matched: Arc<AtomicBool>,
    /// Set when every stream has ended.
    pub ended: Ended,
    /// The relay of the server before, whose output goes first: while that one holds
    /// output it could not pass on, this one's is read (for readiness, and the tail)
    /// but held. With a slow reader, a restarted server's first lines came before the
    /// old one's last.
    pub after: Option<Ended>,
}

impl Relay {
    /// Copies the server's output to reloadsup's own, line by line, on a thread of its
    /// own: each of `streams` (one pipe for stdout and stderr merged, or one each) to
    /// its writer, once `gate`'s sender is dropped.
    pub fn start(&self, streams: Streams, gate: mpsc::Receiver<()>) {
        let relay = self.clone();
        let counted = crate::console::RelayCount::new();
        let spawned = thread::Builder::new().name("relay".into()).spawn(move || {
            let _counted = counted;
            // Nothing is ever sent: this returns when the sender is dropped.
            let _ = gate.recv();
            let streams = streams.0.into_iter();
            relay.copy(streams.map(|(from, to)| Stream::new(from, to)).collect());
            relay.ended.set();
        });
        if let Err(err) = spawned {
            crate::report::warn(format!("cannot relay the server's output: {err}"));
        }
    }

    /// Reads whichever stream has bytes, until all end. The start of a line the server
    /// pauses in for [`PARTIAL_PAUSE`] (a progress bar redrawn with `\r`, a prompt) is
    /// passed on as it is, and matched against the readiness regex: it waited for the
    /// line's end, so a bar showed nothing until it was done, and a server that
    /// printed `waiting for requests` with no newline was never seen to be ready. Merged into one pipe, stdout and
    /// stderr come in the order the server wrote them. Apart, one thread reads both and,
    /// when both have bytes waiting, reads the first (stdout) first, so the tail mostly
    /// keeps that order (a log on stdout, then the traceback on stderr), which a thread
    /// per stream would leave to the scheduler. A stream whose writer refuses more (its
    /// reader has stopped reading) holds what it read, up to [`HELD_LIMIT`], and is
    /// read no further until that is passed on; the other is read on.
    fn copy(&self, mut streams: Vec<Stream>) {
        loop {
            if self.has_turn() {
                streams.iter_mut().for_each(Stream::pass_on);
            }
            let holding = streams.iter().any(|s| !s.held.is_empty());
            self.ended.0.holding.store(holding, Ordering::Release);
            let open: Vec<usize> = (0..streams.len())
                .filter(|&i| !streams[i].ended && streams[i].held.len() < HELD_LIMIT)
                .collect();
            let holding = streams.iter().any(|s| !s.held.is_empty());
            if open.is_empty() && !holding {
                return;
            }
            let retry = holding.then_some(HELD_RETRY);
            let pause = streams.iter().filter_map(Stream::partial_due).min();
            let timeout = match (retry, pause) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let Some(ready) = wait_readable(&streams, &open, timeout) else {
                return;
            };
            for i in ready {
                streams[i].read_some(self);
            }
            for stream in &mut streams {
                if stream.partial_due() == Some(Duration::ZERO) {
                    stream.show_partial(self);
                }
            }
        }
    }

    /// Whether this relay's output may go: the one before holds none.
    fn has_turn(&self) -> bool {
        !self.after.as_ref().is_some_and(Ended::is_holding)
    }

    /// Matches `line` against the readiness regex (until one has matched) and keeps it
    /// in the tail.
    fn observe(&self, line: &[u8]) {
        if let Some(regex) = &self.regex {
            if !self.matched.load(Ordering::Relaxed)
                && regex.is_match(&shown(&String::from_utf8_lossy(line)))
            {
                self.matched.store(true, Ordering::Release);
            }
        }
        if let Some(tail) = &self.tail {
            tail.push(line);
        }
    }

    /// Matches the start of a line not ended yet against the readiness regex (until
    /// one has matched); the tail keeps the line once it ends. A match counts only if
    /// what may follow cannot undo it: it must also match with a digit or a space
    /// after, so `^Listening on port 8$` or `port 8\b` does not match the start of
    /// `Listening on port 8000`.
    fn observe_partial(&self, partial: &[u8]) {
        let Some(regex) = &self.regex else {
            return;
        };
        if self.matched.load(Ordering::Relaxed) {
            return;
        }
        let text = shown(&String::from_utf8_lossy(partial));
        let certain = regex.is_match(&text)
            && regex.is_match(&format!("{text}0"))
            && regex.is_match(&format!("{text} "));
        if certain {
            self.matched.store(true, Ordering::Release);
        }
    }
}

/// How long the server pauses in a line before its start is passed on.
const PARTIAL_PAUSE: Duration = Duration::from_millis(50);

/// How long the start of a line waits at most, though the server never pauses (a
/// progress bar redrawn every 10 ms showed nothing until it was done).
const PARTIAL_EVERY: Duration = Duration::from_millis(250);

/// How much output a stream holds, refused by its writer, before it is read no more.
const HELD_LIMIT: usize = 256 * 1024;

/// How often held output is offered again.
const HELD_RETRY: Duration = Duration::from_millis(20);

/// Waits until some of the `open` streams have bytes (or have ended), or `timeout` has
/// passed; returns which, or `None` if they cannot be waited on.
fn wait_readable(
    streams: &[Stream],
    open: &[usize],
    timeout: Option<Duration>,
) -> Option<Vec<usize>> {
    let mut fds: Vec<PollFd> = open
        .iter()
        .map(|&i| PollFd::new(streams[i].from.as_fd(), PollFlags::POLLIN))
        .collect();
    let timeout = match timeout {
        Some(after) => PollTimeout::try_from(after).unwrap_or(PollTimeout::MAX),
        None => PollTimeout::NONE,
    };
    loop {
        match poll(&mut fds, timeout) {
            Ok(_) => break,
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
    let ready = open
        .iter()
        .zip(&fds)
        .filter(|(_, fd)| fd.revents().is_some_and(|r| !r.is_empty()))
        .map(|(&i, _)| i)
        .collect();
    Some(ready)
}

/// A line as a terminal would show it: what follows its last carriage return (a
/// progress bar redraws itself that way), without colour and other escape sequences.
pub fn shown(line: &str) -> String {
    let line = line.trim_end_matches(['\n', '\r']);
    let last = line.rsplit('\r').next().unwrap_or_default();
    strip_ansi_escapes::strip_str(last.replace('\t', "    "))
}

/// One of the server's output streams and where it is copied to.
struct Stream {
    from: File,
    to: Writer,
    lines: Lines,
    /// Whole lines read and seen, not yet taken by `to`.
    held: Vec<u8>,
    ended: bool,
    /// How much of the line not ended yet has been passed on.
    partial_shown: usize,
    /// When the stream last had bytes.
    last_read: Instant,
    /// Since when part of the line not ended yet has waited to be passed on.
    unshown_since: Option<Instant>,
}

impl Stream {
    fn new(from: OwnedFd, to: Writer) -> Stream {
        Stream {
            from: File::from(from),
            to,
            lines: Lines::default(),
            held: Vec::new(),
            ended: false,
            partial_shown: 0,
            last_read: Instant::now(),
            unshown_since: None,
        }
    }

    /// How long until the start of a line not ended yet is passed on (zero: now);
    /// `None` when there is nothing more of one to pass on.
    fn partial_due(&self) -> Option<Duration> {
        let since = self.unshown_since?;
        (!self.ended && self.lines.partial().len() > self.partial_shown).then(|| {
            PARTIAL_PAUSE
                .saturating_sub(self.last_read.elapsed())
                .min(PARTIAL_EVERY.saturating_sub(since.elapsed()))
        })
    }

    /// Passes on what has not been of the line not ended yet, and matches it.
    fn show_partial(&mut self, relay: &Relay) {
        let partial = self.lines.partial();
        self.held.extend_from_slice(&partial[self.partial_shown..]);
        self.partial_shown = partial.len();
        self.unshown_since = None;
        if relay.has_turn() {
            self.pass_on();
        }
        relay.observe_partial(self.lines.partial());
    }

    /// Reads what is there and passes on the lines it completes. At the end, a last
    /// line without a newline is passed on with one, so reloadsup's next status line
    /// does not run on from it.
    fn read_some(&mut self, relay: &Relay) {
        let mut buffer = [0u8; 16 * 1024];
        let n = loop {
            match self.from.read(&mut buffer) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break 0,
                Ok(n) => break n,
            }
        };
        self.last_read = Instant::now();
        let done = if n == 0 {
            self.ended = true;
            let mut last = self.lines.take_partial();
            if !last.is_empty() {
                last.push(b'\n');
            }
            last
        } else {
            self.lines.push(&buffer[..n])
        };
        // What was passed on already of its first line is not passed on again.
        let shown = self.partial_shown.min(done.len());
        self.partial_shown -= shown;
        if self.lines.partial().len() <= self.partial_shown {
            self.unshown_since = None;
        } else if self.unshown_since.is_none() {
            self.unshown_since = Some(self.last_read);
        }
        if done.is_empty() {
            return;
        }
        // Passed on before it is seen, so a status line the match brings comes after it.
        self.held.extend_from_slice(&done[shown..]);
        if relay.has_turn() {
            self.pass_on();
        }
        for line in done.split_inclusive(|&b| b == b'\n') {
            relay.observe(line);
        }
    }

    /// Passes the held lines on, unless the writer refuses them for now; on any other
    /// error (a reader gone) they are dropped, as they would be one by one.
    fn pass_on(&mut self) {
        if self.held.is_empty() {
            return;
        }
        match self.to.write_all(&self.held) {
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            _ => {
                let _ = self.to.flush();
            }
        }
        self.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error the server logged for an earlier request, and handled, is no reason for
    /// its end: only its last burst of output is read.
    #[test]
    fn the_telling_line_comes_from_the_last_burst() {
        let tail = Tail::default();
        let earlier = Instant::now() - FINAL_BURST * 3;
        tail.0.lock().unwrap().extend([
            (earlier, b"Traceback (most recent call last):".to_vec()),
            (earlier, b"KeyError: 'user'".to_vec()),
        ]);
        tail.push(b"lost the database, config error: shutting down");
        assert_eq!(
            tail.telling_line(false).as_deref(),
            Some("lost the database, config error: shutting down")
        );
        tail.clear();
        tail.0
            .lock()
            .unwrap()
            .push_back((earlier, b"TypeError: old".to_vec()));
        assert_eq!(tail.telling_line(false), None);
    }

    #[test]
    fn the_telling_line_names_the_error() {
        let python = Tail::of(&[
            "Traceback (most recent call last):",
            "  File \"/app/app.py\", line 3, in <module>",
            "    import flsk",
            "ModuleNotFoundError: No module named 'flsk'",
            "",
        ]);
        assert_eq!(
            python.telling_line(false).as_deref(),
            Some("ModuleNotFoundError: No module named 'flsk'")
        );
        let node = Tail::of(&[
            "/app/app.js:3",
            "  foo(",
            "     ^",
            "SyntaxError: missing ) after argument list",
            "    at wrapSafe (node:internal/modules/cjs/loader:1378:20)",
            "    at Module._compile (node:internal/modules/cjs/loader:1428:41)",
            "Node.js v20.19.2",
        ]);
        assert_eq!(
            node.telling_line(false).as_deref(),
            Some("SyntaxError: missing ) after argument list")
        );
        let go = Tail::of(&[
            "panic: runtime error: index out of range [3] with length 1",
            "goroutine 1 [running]:",
            "main.main()",
            "\t/app/main.go:12 +0x1d",
            "exit status 2",
        ]);
        assert_eq!(
            go.telling_line(false).as_deref(),
            Some("panic: runtime error: index out of range [3] with length 1")
        );
        // A line that names no error would only mislead (an access log's, say).
        let group = Tail::of(&[
            "  + Exception Group Traceback (most recent call last):",
            "  | ExceptionGroup: errors (1 sub-exception)",
            "  +-+---------------- 1 ----------------",
            "    | TypeError: bad host",
            "    +------------------------------------",
        ]);
        assert_eq!(
            group.telling_line(false).as_deref(),
            Some("TypeError: bad host")
        );
        let plain = Tail::of(&["listening", "127.0.0.1 - - \"GET / HTTP/1.1\" 200 -"]);
        assert_eq!(plain.telling_line(false), None);
        assert_eq!(Tail::default().telling_line(false), None);
        let quiet = Tail::of(&[
            "npm error Missing script: \"dev\"",
            "npm error A complete log of this run can be found in: /root/.npm/_logs/x.log",
            "Found 0 errors. Watching for file changes.",
        ]);
        assert_eq!(
            quiet.telling_line(false).as_deref(),
            Some("npm error Missing script: \"dev\"")
        );
        let chained = Tail::of(&[
            "Traceback (most recent call last):",
            "  File \"/app/settings.py\", line 4, in <module>",
            "KeyError: 'SECRET_KEY'",
            "",
            "The above exception was the direct cause of the following exception:",
            "",
            "Traceback (most recent call last):",
            "  File \"/app/settings.py\", line 6, in <module>",
            "    raise ImproperlyConfigured(\"Set the SECRET_KEY\") from err",
            "django.core.exceptions.ImproperlyConfigured: Set the SECRET_KEY",
        ]);
        assert_eq!(
            chained.telling_line(false).as_deref(),
            Some("django.core.exceptions.ImproperlyConfigured: Set the SECRET_KEY")
        );
        let rust = Tail::of(&[
            "thread 'main' panicked at src/main.rs:4:5:",
            "index out of bounds: the len is 1 but the index is 3",
            "note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace",
        ]);
        assert_eq!(
            rust.telling_line(false).as_deref(),
            Some(
                "thread 'main' panicked at src/main.rs:4:5: \
                 index out of bounds: the len is 1 but the index is 3"
            )
        );
        let newer_rust = Tail::of(&[
            "thread 'main' (2121) panicked at src/main.rs:3:5:",
            "DATABASE_URL must be set",
        ]);
        assert_eq!(
            newer_rust.telling_line(false).as_deref(),
            Some("thread 'main' (2121) panicked at src/main.rs:3:5: DATABASE_URL must be set")
        );
        // A server that chose its exit code: its last words, without Node's own.
        let node_throw = Tail::of(&[
            "throw \"config missing\";",
            "^",
            "config missing",
            "(Use `node --trace-uncaught ...` to show where the exception was thrown)",
            "",
            "Node.js v20.19.2",
        ]);
        assert_eq!(
            node_throw.telling_line(true).as_deref(),
            Some("config missing")
        );
        assert_eq!(node_throw.telling_line(false), None);
        // A traceback longer than the lines shown is still read from its start.
        let mut long = vec!["Traceback (most recent call last):".to_string()];
        for depth in 0..60 {
            long.push(format!(
                "  File \"/app/settings.py\", line {depth}, in level"
            ));
            long.push("    level()".to_string());
        }
        long.push("django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set".into());
        let long: Vec<&str> = long.iter().map(String::as_str).collect();
        assert_eq!(
            Tail::of(&long).telling_line(false).as_deref(),
            Some("django.core.exceptions.ImproperlyConfigured: SECRET_KEY must be set")
        );
        assert_eq!(Tail::of(&long).lines().len(), TAIL_LINES);
        let cargo = Tail::of(&[
            "error[E0425]: cannot find value `x` in this scope",
            " --> src/main.rs:2:5",
            "error: could not compile `app` (bin \"app\") due to 1 previous error",
        ]);
        assert_eq!(
            cargo.telling_line(false).as_deref(),
            Some("error[E0425]: cannot find value `x` in this scope")
        );
        let long = format!("Error: {}", "x".repeat(300));
        let cut = Tail::of(&[&long]).telling_line(false).unwrap();
        assert_eq!(cut.chars().count(), TELLING_WIDTH + 1);
    }

    /// A gate already open: its sender is gone.
    fn open() -> mpsc::Receiver<()> {
        mpsc::channel().1
    }

    #[test]
    fn lines_come_out_whole_or_cut_at_the_longest() {
        let mut lines = Lines::default();
        assert!(lines.push(b"one\ntw").ends_with(b"one\n"));
        assert_eq!(lines.partial(), b"tw");
        assert_eq!(lines.push(b"o\nthree\nfo"), b"two\nthree\n");
        assert!(lines.push(&vec![b'#'; LONGEST_LINE]).starts_with(b"fo#"));
        assert!(lines.partial().is_empty(), "a long line is not held");
        // A long line of redraws is cut before its last, which a terminal shows.
        let mut bar = b"\r".repeat(10);
        bar.extend(vec![b'='; LONGEST_LINE]);
        bar.extend(b"\rServing on");
        let done = lines.push(&bar);
        assert_eq!(done.len(), LONGEST_LINE + 10);
        assert_eq!(lines.partial(), b"\rServing on");
        assert_eq!(lines.push(b" :8000\n"), b"\rServing on :8000\n");
        lines.push(b"five");
        assert_eq!(lines.take_partial(), b"five");
        assert!(lines.partial().is_empty());
    }

    #[test]
    fn tail_keeps_the_last_lines_and_the_regex_matches_once() {
        let relay = Relay {
            regex: Some(Arc::new(Regex::new("^Serving on").unwrap())),
            tail: Some(Tail::default()),
            ..Relay::default()
        };
        for i in 0..50 {
            relay.observe(format!("line {i}\n").as_bytes());
        }
        assert!(!relay.matched.load(Ordering::Acquire));
        relay.observe(b"Serving on :8000\r\n");
        assert!(relay.matched.load(Ordering::Acquire));
        let lines = relay.tail.as_ref().unwrap().lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().unwrap(), "Serving on :8000");
        assert_eq!(lines[0], "line 11");
    }

    /// A writer whose bytes the test can read.
    #[derive(Clone, Default)]
    struct Sink(Arc<Mutex<Vec<u8>>>);

    impl Write for Sink {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn both_streams_keep_their_order_and_a_last_line_is_ended() {
        let (out_read, out_write) = nix::unistd::pipe().unwrap();
        let (err_read, err_write) = nix::unistd::pipe().unwrap();
        // Both streams have bytes waiting before the relay reads: stdout was written
        // first, as a server writes its log before the error that ends it.
        File::from(out_write)
            .write_all(b"log 1\nlog 2\nno newline")
            .unwrap();
        File::from(err_write)
            .write_all(b"\x1b[31merror\x1b[0m: boom\n")
            .unwrap();
        let relay = Relay {
            tail: Some(Tail::default()),
            ..Relay::default()
        };
        let (out, err) = (Sink::default(), Sink::default());
        relay.start(
            Streams(vec![
                (out_read, Box::new(out.clone())),
                (err_read, Box::new(err.clone())),
            ]),
            open(),
        );
        let tail = relay.tail.as_ref().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while tail.lines().len() < 4 && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            tail.lines(),
            ["log 1", "log 2", "error: boom", "no newline"]
        );
        assert_eq!(&*out.0.lock().unwrap(), b"log 1\nlog 2\nno newline\n");
        assert_eq!(&*err.0.lock().unwrap(), b"\x1b[31merror\x1b[0m: boom\n");
    }

    #[test]
    fn merged_streams_keep_the_order_they_were_written_in() {
        let (read, write) = nix::unistd::pipe().unwrap();
        let (mut stdout, mut stderr) = (File::from(write.try_clone().unwrap()), File::from(write));
        // All written before the relay reads, as a fast server's output is.
        for i in 0..100 {
            stdout.write_all(format!("out {i}\n").as_bytes()).unwrap();
            stderr.write_all(format!("err {i}\n").as_bytes()).unwrap();
        }
        drop((stdout, stderr));
        let relay = Relay {
            tail: Some(Tail::default()),
            ..Relay::default()
        };
        let out = Sink::default();
        relay.start(Streams(vec![(read, Box::new(out.clone()))]), open());
        let expected: Vec<String> = (0..100)
            .flat_map(|i| [format!("out {i}"), format!("err {i}")])
            .collect();
        let tail = relay.tail.as_ref().unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while tail.lines().last().is_none_or(|line| line != "err 99")
            && std::time::Instant::now() < deadline
        {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(tail.lines(), expected[expected.len() - TAIL_LINES..]);
        let copied = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(copied.lines().collect::<Vec<_>>(), expected);
    }

    #[test]
    fn output_waits_for_the_gate() {
        let (read, write) = nix::unistd::pipe().unwrap();
        File::from(write).write_all(b"first line\n").unwrap();
        let out = Sink::default();
        let (gate, waiting) = mpsc::channel();
        Relay::default().start(Streams(vec![(read, Box::new(out.clone()))]), waiting);
        thread::sleep(std::time::Duration::from_millis(100));
        assert!(
            out.0.lock().unwrap().is_empty(),
            "held while the gate is shut"
        );
        drop(gate);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while out.0.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(&*out.0.lock().unwrap(), b"first line\n");
    }

    #[test]
    fn output_without_newlines_is_passed_on_in_pieces() {
        let (out_read, out_write) = nix::unistd::pipe().unwrap();
        let (err_read, err_write) = nix::unistd::pipe().unwrap();
        drop(err_write);
        let mut writer = File::from(out_write);
        let relay = Relay {
            tail: Some(Tail::default()),
            ..Relay::default()
        };
        let out = Sink::default();
        relay.start(
            Streams(vec![
                (out_read, Box::new(out.clone())),
                (err_read, Box::new(Sink::default())),
            ]),
            open(),
        );
        // More than a pipe holds, with no newline and the pipe still open.
        writer.write_all(&vec![b'#'; LONGEST_LINE * 2]).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while out.0.lock().unwrap().len() < LONGEST_LINE && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(
            out.0.lock().unwrap().len() >= LONGEST_LINE,
            "passed on before a newline"
        );
        let tail = relay.tail.as_ref().unwrap();
        while tail.lines().is_empty() && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        let kept = tail.lines();
        assert_eq!(
            kept[0].chars().count(),
            TAIL_WIDTH + 1,
            "cut, with an ellipsis"
        );
        drop(writer);
    }

    /// Waits up to 5 s for `sink` to hold `expected`.
    fn wait_holds(sink: &Sink, expected: &[u8]) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while *sink.0.lock().unwrap() != expected && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(
            String::from_utf8_lossy(&sink.0.lock().unwrap()),
            String::from_utf8_lossy(expected)
        );
    }

    #[test]
    fn a_line_the_server_pauses_in_is_passed_on_and_matched() {
        let (out_read, out_write) = nix::unistd::pipe().unwrap();
        let mut writer = File::from(out_write);
        let relay = Relay {
            tail: Some(Tail::default()),
            regex: Some(Arc::new(Regex::new("^waiting for requests").unwrap())),
            ..Relay::default()
        };
        let out = Sink::default();
        relay.start(Streams(vec![(out_read, Box::new(out.clone()))]), open());
        // A progress bar, redrawn: shown as it is, each piece once.
        writer.write_all(b"\rbuilding 10%").unwrap();
        wait_holds(&out, b"\rbuilding 10%");
        writer.write_all(b"\rbuilding 100%\nwaiting for").unwrap();
        writer.write_all(b" requests").unwrap();
        wait_holds(&out, b"\rbuilding 10%\rbuilding 100%\nwaiting for requests");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !relay.matched.load(Ordering::Acquire) && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(relay.matched.load(Ordering::Acquire), "a prompt is seen");
        drop(writer);
        wait_holds(
            &out,
            b"\rbuilding 10%\rbuilding 100%\nwaiting for requests\n",
        );
        let tail = relay.tail.as_ref().unwrap();
        while tail.lines().len() < 2 && std::time::Instant::now() < deadline {
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(tail.lines(), ["building 100%", "waiting for requests"]);
    }

    #[test]
    fn a_bar_redrawn_without_pause_is_shown_before_it_ends() {
        let (out_read, out_write) = nix::unistd::pipe().unwrap();
        let mut writer = File::from(out_write);
        let relay = Relay::default();
        let out = Sink::default();
        relay.start(Streams(vec![(out_read, Box::new(out.clone()))]), open());
        // Redrawn every 10 ms, never pausing 50 ms: shown within 250 ms all the same.
        let began = std::time::Instant::now();
        let mut n = 0;
        while out.0.lock().unwrap().is_empty()
            && began.elapsed() < std::time::Duration::from_secs(2)
        {
            write!(writer, "\r{n}%").unwrap();
            n += 1;
            thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(!out.0.lock().unwrap().is_empty(), "shown before its end");
        assert!(began.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn a_line_begun_matches_only_if_its_end_cannot_undo_it() {
        let relay = |pattern: &str| Relay {
            regex: Some(Arc::new(Regex::new(pattern).unwrap())),
            ..Relay::default()
        };
        for (pattern, matched) in [
            ("^Listening on port 8$", false),
            ("port 8\\b", false),
            ("^Listening on port 8", true),
            ("Listening", true),
        ] {
            let relay = relay(pattern);
            relay.observe_partial(b"Listening on port 8");
            assert_eq!(relay.matched.load(Ordering::Acquire), matched, "{pattern}");
        }
    }

    #[test]
    fn a_line_is_kept_as_a_terminal_shows_it() {
        assert_eq!(
            shown("\x1b[1;32mready\x1b[0m on :8000\r\n"),
            "ready on :8000"
        );
        assert_eq!(shown("10%\r50%\r100% done\n"), "100% done");
        assert_eq!(shown("a\tb"), "a    b");
    }
}
