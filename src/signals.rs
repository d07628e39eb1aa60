//! Signals as events: a thread turns SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGCHLD into
//! `Event::Signal` for the app loop.
//!
//! Handlers are installed explicitly rather than inherited: a shell starts background
//! jobs with SIGINT ignored, and a supervisor that relied on the inherited disposition
//! would then never stop its server on Ctrl-C. The terminal sends SIGINT to the whole
//! foreground process group; the server runs in its own group, so it hears of Ctrl-C
//! only through the supervisor, which stops it gracefully.
//!
//! SIGHUP is the exception: ignored when reloadsup starts, it stays ignored. That is
//! what `nohup reloadsup run &` asks for (keep running when the terminal closes), and
//! unlike an ignored SIGINT it is never a shell's doing.
//!
//! Job control: the terminal sends Ctrl-Z's SIGTSTP, and SIGWINCH when its window is
//! resized, to its foreground group alone, which the server is not in. `run` passes
//! them on: Ctrl-Z stops the server's group and then reloadsup itself, and `fg` or
//! `bg` continues both (only reloadsup stopped, and the server went on writing over
//! the shell's prompt). A SIGTSTP ignored when reloadsup starts stays ignored.
//!
//! `reloadsup start` instead notes SIGINT, SIGTERM and SIGHUP ([`Interrupts`]) while it
//! waits for the server it started, so it can stop that server before it exits.

use std::sync::atomic::{AtomicBool, AtomicI32, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, OnceLock};

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGTSTP, SIGUSR1, SIGWINCH};
use signal_hook::iterator::Signals;

use crate::error::{Error, Result};
use crate::event::Event;

/// The server's process group, as the app loop last saw it (0: none).
static SERVER_GROUP: AtomicI32 = AtomicI32::new(0);

/// Records the server's process group, for job control.
pub fn set_server_group(pgid: Option<nix::unistd::Pid>) {
    SERVER_GROUP.store(pgid.map_or(0, |p| p.as_raw()), Ordering::SeqCst);
}

/// Sends `signal` to the server's process group, if there is one.
fn to_server(signal: nix::sys::signal::Signal) {
    let pgid = SERVER_GROUP.load(Ordering::SeqCst);
    if pgid > 0 {
        let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pgid), signal);
    }
}

/// Ctrl-Z: stops the server's group, then reloadsup itself, as the shell expects of a
/// job; once continued (`fg`, `bg`, or `stop`'s SIGCONT), continues the server. Done
/// on the signal thread: the app loop may be waiting for a build step (in reloadsup's
/// own group, stopped by the terminal with it), and the terminal was not given back.
fn suspend() {
    use nix::sys::signal::Signal;
    to_server(Signal::SIGSTOP);
    // Stops every thread of the process; returns once it is continued.
    let _ = nix::sys::signal::raise(Signal::SIGSTOP);
    to_server(Signal::SIGCONT);
}

/// Set once SIGINT, SIGTERM or SIGHUP has arrived, before its event is sent.
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop signal has arrived, though its event may still be queued behind
/// others: the loop then starts no new server (one it would stop at once).
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
}

/// The signals that stop reloadsup: SIGINT, SIGTERM, and SIGHUP unless it was ignored
/// when reloadsup started (`nohup`). Read before any handler is installed, which
/// [`spawn`] and [`Interrupts::catch`] (the only places that install them) ensure.
fn stop_signals() -> &'static [i32] {
    static SIGNALS: OnceLock<Vec<i32>> = OnceLock::new();
    SIGNALS.get_or_init(|| {
        let mut signals = vec![SIGINT, SIGTERM];
        if !ignored_at_start(SIGHUP) {
            signals.push(SIGHUP);
        }
        signals
    })
}

/// Whether `signal` was ignored when reloadsup started (before a handler of its own).
fn ignored_at_start(signal: i32) -> bool {
    crate::procfs::ignored_signals().is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// SIGINT, SIGTERM and SIGHUP, noted instead of ending the process, from
/// [`Interrupts::catch`] until the process exits. `reloadsup start` waits for its
/// server with these caught, so that an interrupted start stops the server it started
/// rather than leave it running, never ready, behind.
pub struct Interrupts {
    received: Arc<AtomicUsize>,
}

impl Interrupts {
    /// Installs the handlers.
    pub fn catch() -> Result<Interrupts> {
        let received = Arc::new(AtomicUsize::new(0));
        for &signal in stop_signals() {
            signal_hook::flag::register_usize(signal, Arc::clone(&received), signal as usize)
                .map_err(|err| Error::io("cannot install signal handlers", err))?;
        }
        Ok(Interrupts { received })
    }

    /// The signal that arrived last, if any has.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            signal => Some(signal as i32),
        }
    }
}

/// The exit code after `signal` ended a command: 128 + its number, as shells expect.
pub fn exit_code(signal: i32) -> i32 {
    128 + signal
}

/// Unblocks every signal, before any thread starts (threads take the mask of the one
/// that made them): a blocked signal stays blocked across `exec`, and a parent that
/// blocked some (a test harness, a process manager of its own) left reloadsup deaf to
/// Ctrl-C and SIGTERM, and its servers to their stop signal until SIGKILL. The server
/// is given an empty mask this way too, between fork and exec (`sigprocmask` is
/// async-signal-safe).
pub fn unblock_all() {
    let _ = nix::sys::signal::sigprocmask(
        nix::sys::signal::SigmaskHow::SIG_SETMASK,
        Some(&nix::sys::signal::SigSet::empty()),
        None,
    );
}

/// The job-control signals `run` passes on to its server: SIGWINCH, and SIGTSTP unless
/// it was ignored when reloadsup started (a process manager that wants no stops).
/// Read before any handler is installed.
fn job_signals() -> Vec<i32> {
    if ignored_at_start(SIGTSTP) {
        vec![SIGWINCH]
    } else {
        vec![SIGWINCH, SIGTSTP]
    }
}

/// Installs the handlers and starts the thread that forwards signals to `tx`.
pub fn spawn(tx: Sender<Event>) -> Result<()> {
    let mut wanted = stop_signals().to_vec();
    wanted.extend([SIGUSR1, SIGCHLD]);
    wanted.extend(job_signals());
    let mut signals =
        Signals::new(wanted).map_err(|err| Error::io("cannot install signal handlers", err))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                match signal {
                    // Acted on here, not by the loop.
                    SIGTSTP => {
                        suspend();
                        continue;
                    }
                    SIGWINCH => {
                        to_server(nix::sys::signal::Signal::SIGWINCH);
                        continue;
                    }
                    SIGINT | SIGTERM | SIGHUP => STOP_REQUESTED.store(true, Ordering::SeqCst),
                    _ => {}
                }
                if tx.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        })
        .map_err(|err| Error::io("cannot start the signal thread", err))?;
    Ok(())
}
