//! Signals as events: a thread turns SIGINT, SIGTERM, SIGHUP, SIGUSR1 and SIGCHLD into
//! `Event::Signal` for the app loop.
//!
//! Handlers are installed explicitly rather than inherited: a shell starts background
//! jobs with SIGINT ignored, and a supervisor that relied on the inherited disposition
//! would then never stop its server on Ctrl-C. The terminal sends SIGINT to the whole
//! foreground process group; the server runs in its own group, so it hears of Ctrl-C
//! only through the supervisor, which stops it gracefully.
//!
//! `reloadsup start` instead notes SIGINT, SIGTERM and SIGHUP ([`Interrupts`]) while it
//! waits for the server it started, so it can stop that server before it exits.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::Sender;

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1};
use signal_hook::iterator::Signals;

use crate::error::{Error, Result};
use crate::event::Event;

/// Set once SIGINT, SIGTERM or SIGHUP has arrived, before its event is sent.
static STOP_REQUESTED: AtomicBool = AtomicBool::new(false);

/// Whether a stop signal has arrived, though its event may still be queued behind
/// others: the loop then starts no new server (one it would stop at once).
pub fn stop_requested() -> bool {
    STOP_REQUESTED.load(Ordering::SeqCst)
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
        for signal in [SIGINT, SIGTERM, SIGHUP] {
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

/// Installs the handlers and starts the thread that forwards signals to `tx`.
pub fn spawn(tx: Sender<Event>) -> Result<()> {
    let mut signals = Signals::new([SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGCHLD])
        .map_err(|err| Error::io("cannot install signal handlers", err))?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if matches!(signal, SIGINT | SIGTERM | SIGHUP) {
                    STOP_REQUESTED.store(true, Ordering::SeqCst);
                }
                if tx.send(Event::Signal(signal)).is_err() {
                    break;
                }
            }
        })
        .map_err(|err| Error::io("cannot start the signal thread", err))?;
    Ok(())
}
