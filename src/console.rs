//! reloadsup's own stdout and stderr while `run` (or `serve`) runs, written by threads
//! of their own, so that a reader that stops reading (a paused pager, `| less` scrolled
//! back, a stopped `| cat`) holds up the server's relayed output and nothing else.
//!
//! The app loop's status lines wait for their write only while the writer is getting
//! on with it ([`STATUS_WAIT`]), so they come before what the loop does next (a
//! `restarting` before the old server's own words on its stop signal), but a stuck
//! write holds up nothing: the loop had sat in a write to a full pipe, with the server
//! stopped for a restart and not started again, the proxy holding every request and
//! Ctrl-C unheard. The relay's writes are refused once
//! [`RELAYED_LIMIT`] bytes of the server's output are queued; the relay then holds
//! them and reads less, so the server meets the back-pressure it would meet writing
//! there itself. When stdout and stderr are the
//! same file, one queue takes both, in the order written (a status line stays where it
//! was said among the server's lines); when they are different files, each has its
//! own, so a paused stdout does not hold up stderr.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::stat::fstat;

/// One of reloadsup's two output streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// File descriptor 1.
    Stdout,
    /// File descriptor 2.
    Stderr,
}

/// How many bytes of the server's output may wait in a queue before more is refused
/// (and the relay holds it, and the server, its pipe full, waits for the relay).
const RELAYED_LIMIT: usize = 256 * 1024;

/// How many bytes of status lines may wait: past it (a reader gone for hours while
/// changes come), a line is dropped rather than kept without end.
const STATUS_LIMIT: usize = 1024 * 1024;

/// How long [`finish`] waits for the queues to be written at the end of `run`.
pub const FINISH_TIMEOUT: Duration = Duration::from_secs(2);

/// How much of a write is written at a time, so that a slow reader is seen to read.
const PIECE: usize = 16 * 1024;

/// The longest a status line waits to be written; not at all while the writer has been
/// in one write for longer (a reader that has stopped reading).
const STATUS_WAIT: Duration = Duration::from_millis(100);

/// How long [`finish`] waits on a write that makes no progress: a reader that has
/// stopped reading is not waited for (Ctrl-C under a paused pager).
const STALLED: Duration = Duration::from_millis(250);

/// Whether stdout and stderr lead to the same file (both the terminal, or `&> log`):
/// the same open file, or the same file opened twice. A closed one matches nothing.
pub fn same_destination() -> bool {
    same_file(io::stdout().as_fd(), io::stderr().as_fd())
}

fn same_file(a: BorrowedFd, b: BorrowedFd) -> bool {
    match (fstat(a), fstat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

/// Starts the writer threads; until then (and in the other commands, which wait for
/// nothing), writes go straight to the stream. A thread that cannot be started leaves
/// the writes direct, as before.
pub fn start() {
    let Ok(stdout) = Queue::start() else {
        return;
    };
    let stderr = match same_destination() {
        true => Ok(Arc::clone(&stdout)),
        false => Queue::start(),
    };
    if let Ok(stderr) = stderr {
        let _ = QUEUES.set(Queues { stdout, stderr });
    }
}

/// Writes a status line (or lines) to stderr: queued once [`start`] has run, and waited
/// for up to [`STATUS_WAIT`] while the writer gets on; else written at once.
pub fn status(text: &str) {
    match QUEUES.get() {
        Some(queues) => {
            if let Some(turn) = queues.stderr.push(Target::Stderr, text.as_bytes(), false) {
                queues.stderr.wait_written(turn);
            }
        }
        None => {
            let _ = io::stderr().lock().write_all(text.as_bytes());
        }
    }
}

/// Queues relayed output for `target`, all of it, unless [`RELAYED_LIMIT`] bytes of it
/// are queued there already: then none, and `false`. Written at once (and `true`)
/// before [`start`].
pub fn relay(target: Target, bytes: &[u8]) -> bool {
    match QUEUES.get() {
        Some(queues) => queues.of(target).push(target, bytes, true).is_some(),
        None => {
            write_to(target, bytes);
            true
        }
    }
}

/// Waits until everything queued, and everything the relays still hold, has been
/// written, or `timeout` has passed, or nothing has been written for [`STALLED`] (a
/// reader that never reads again would otherwise keep reloadsup from ending).
pub fn finish(timeout: Duration) {
    let Some(queues) = QUEUES.get() else {
        return;
    };
    let deadline = Instant::now() + timeout;
    loop {
        let busy = RELAYS.load(Ordering::SeqCst) > 0
            || !queues.stdout.is_done()
            || !queues.stderr.is_done();
        if !busy || Instant::now() >= deadline || idle_for() >= STALLED {
            return;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// How many relays are passing a server's output on: [`finish`] waits for what they
/// still hold (what a slow reader has not taken yet) as for the queues.
static RELAYS: AtomicUsize = AtomicUsize::new(0);

/// Counts a relay in until dropped (see [`RELAYS`]).
pub struct RelayCount(());

impl RelayCount {
    /// Counts a relay in.
    pub fn new() -> RelayCount {
        RELAYS.fetch_add(1, Ordering::SeqCst);
        RelayCount(())
    }
}

impl Drop for RelayCount {
    fn drop(&mut self) {
        RELAYS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// How long the console has made no progress, across its queues: how long it has been
/// in its current write, or, with nothing to write, since its last; none while a write
/// waits to be taken; [`Duration::MAX`] before [`start`].
pub fn idle_for() -> Duration {
    let Some(queues) = QUEUES.get() else {
        return Duration::MAX;
    };
    let since = |queue: &Queue| {
        let state = queue.lock();
        match state.writing {
            Some(began) => began.elapsed(),
            None if !state.waiting.is_empty() => Duration::ZERO,
            None => state.progress.map_or(Duration::MAX, |at| at.elapsed()),
        }
    };
    since(&queues.stdout).min(since(&queues.stderr))
}

/// A writer for the relay: each write is [`relay`]ed to `target`, whole, or refused
/// with [`io::ErrorKind::WouldBlock`] while the queue is full.
pub struct Relayed(pub Target);

impl Write for Relayed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match relay(self.0, buf) {
            true => Ok(buf.len()),
            false => Err(io::ErrorKind::WouldBlock.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

static QUEUES: OnceLock<Queues> = OnceLock::new();

struct Queues {
    stdout: Arc<Queue>,
    stderr: Arc<Queue>,
}

impl Queues {
    fn of(&self, target: Target) -> &Queue {
        match target {
            Target::Stdout => &self.stdout,
            Target::Stderr => &self.stderr,
        }
    }
}

/// Writes waiting for one destination, and the thread that writes them in order.
#[derive(Default)]
struct Queue {
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    /// Each write: where, what, and whether it is relayed output.
    waiting: VecDeque<(Target, Vec<u8>, bool)>,
    relayed: usize,
    statuses: usize,
    /// While the thread is in a write (what it took is no longer in `waiting`): when
    /// that write began or last got a piece written.
    writing: Option<Instant>,
    /// How many writes have been queued, and how many made: a write's turn is the
    /// count once it was queued.
    queued: u64,
    written: u64,
    /// When the last write ended (or the wait for the first began).
    progress: Option<Instant>,
    /// Whether the last relayed output queued left a line open (a progress bar, a
    /// prompt): the next status line starts on a line of its own.
    line_open: bool,
    /// Whether a status line ended such a line, and no relayed output came since: the
    /// server's own end of that line is then not written again (a blank line).
    ended_for_it: bool,
}

impl Queue {
    fn start() -> io::Result<Arc<Queue>> {
        let queue = Arc::new(Queue::default());
        let writer = Arc::clone(&queue);
        thread::Builder::new()
            .name("console".into())
            .spawn(move || writer.write_all())?;
        Ok(queue)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues a write, and returns its turn; `None` (and nothing queued) when its
    /// kind's limit is reached.
    fn push(&self, target: Target, bytes: &[u8], relayed: bool) -> Option<u64> {
        let mut state = self.lock();
        let mut bytes = bytes.to_vec();
        if relayed {
            if state.relayed >= RELAYED_LIMIT {
                return None;
            }
            if std::mem::take(&mut state.ended_for_it) && bytes.first() == Some(&b'\n') {
                bytes.remove(0);
            }
            state.relayed += bytes.len();
            if let Some(&last) = bytes.last() {
                state.line_open = last != b'\n';
            }
        } else if state.statuses + bytes.len() > STATUS_LIMIT {
            return None;
        } else {
            if std::mem::take(&mut state.line_open) {
                bytes.insert(0, b'\n');
                state.ended_for_it = true;
            }
            state.statuses += bytes.len();
        }
        state.waiting.push_back((target, bytes, relayed));
        state.queued += 1;
        self.changed.notify_all();
        Some(state.queued)
    }

    /// Waits until the write of `turn` is made, for up to [`STATUS_WAIT`], and not at
    /// all while the writer has been in one write for longer.
    fn wait_written(&self, turn: u64) {
        let deadline = Instant::now() + STATUS_WAIT;
        let mut state = self.lock();
        while state.written < turn {
            let stuck = state
                .writing
                .is_some_and(|began| began.elapsed() > STATUS_WAIT);
            let left = deadline.saturating_duration_since(Instant::now());
            if stuck || left.is_zero() {
                return;
            }
            state = self
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The writer thread: takes each write in turn and makes it, for as long as the
    /// process runs.
    fn write_all(&self) {
        loop {
            let (target, bytes, relayed) = {
                let mut state = self.lock();
                state.writing = None;
                self.changed.notify_all();
                loop {
                    if let Some(next) = state.waiting.pop_front() {
                        state.writing = Some(Instant::now());
                        break next;
                    }
                    state = self
                        .changed
                        .wait(state)
                        .unwrap_or_else(PoisonError::into_inner);
                }
            };
            // A piece at a time, each one progress: one write of 256 KiB to a slow
            // reader took longer than a stuck one is given, and was taken for stuck.
            for piece in bytes.chunks(PIECE) {
                write_to(target, piece);
                let mut state = self.lock();
                state.progress = Some(Instant::now());
                state.writing = state.progress;
            }
            let mut state = self.lock();
            state.written += 1;
            match relayed {
                true => state.relayed -= bytes.len(),
                false => state.statuses -= bytes.len(),
            }
        }
    }

    /// Whether nothing is waiting or being written.
    fn is_done(&self) -> bool {
        let state = self.lock();
        state.waiting.is_empty() && state.writing.is_none()
    }
}

/// Writes `bytes` to `target` now, ignoring a reader that went away or a stream that
/// is closed: reloadsup's work goes on without its output.
fn write_to(target: Target, bytes: &[u8]) {
    let _ = match target {
        Target::Stdout => {
            let mut out = io::stdout().lock();
            out.write_all(bytes).and_then(|()| out.flush())
        }
        Target::Stderr => io::stderr().lock().write_all(bytes),
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_is_recognised_however_it_was_opened() {
        let (read, _write) = nix::unistd::pipe().unwrap();
        let (other, _other_write) = nix::unistd::pipe().unwrap();
        assert!(same_file(read.as_fd(), read.try_clone().unwrap().as_fd()));
        assert!(!same_file(read.as_fd(), other.as_fd()));
        let null = || std::fs::File::open("/dev/null").unwrap();
        assert!(same_file(null().as_fd(), null().as_fd()));
    }

    /// Relayed writes are refused at the limit; status lines are not.
    #[test]
    fn relayed_output_is_refused_at_the_limit_and_status_lines_are_not() {
        let queue = Queue::default();
        let pushed = |bytes: &[u8], relayed| queue.push(Target::Stdout, bytes, relayed);
        assert_eq!(pushed(&vec![b'x'; RELAYED_LIMIT - 1], true), Some(1));
        assert_eq!(pushed(b"last\n", true), Some(2), "under the limit");
        assert_eq!(pushed(b"more\n", true), None, "at it");
        assert_eq!(pushed(b"[reloadsup] restarting\n", false), Some(3));
        let state = queue.lock();
        let order: Vec<&[u8]> = state.waiting.iter().map(|w| &w.1[..4]).collect();
        assert_eq!(order, [&b"xxxx"[..], b"last", b"[rel"]);
    }

    /// A status line after a server's line left open (a progress bar, a prompt) starts
    /// on a line of its own; after an ended line, as it is.
    #[test]
    fn a_status_line_after_an_open_line_starts_a_new_one() {
        let queue = Queue::default();
        let pushed = |bytes: &[u8], relayed| queue.push(Target::Stdout, bytes, relayed);
        pushed(b"\rbuilding 50%", true);
        pushed(b"[reloadsup] ready\n", false);
        // The server's end of the line ended already: not a blank line.
        pushed(b"\nline\n", true);
        pushed(b"[reloadsup] changed\n", false);
        pushed(b"\n", true);
        let state = queue.lock();
        let written: Vec<&[u8]> = state.waiting.iter().map(|w| &w.1[..]).collect();
        assert_eq!(
            written,
            [
                &b"\rbuilding 50%"[..],
                b"\n[reloadsup] ready\n",
                b"line\n",
                b"[reloadsup] changed\n",
                b"\n"
            ]
        );
    }

    #[test]
    fn status_lines_past_their_limit_are_dropped() {
        let queue = Queue::default();
        let line = vec![b's'; 1000];
        for _ in 0..(STATUS_LIMIT / 1000 + 10) {
            let _ = queue.push(Target::Stderr, &line, false);
        }
        assert_eq!(queue.lock().waiting.len(), STATUS_LIMIT / 1000);
    }
}
