//! Turning a stream of per-path changes into batches, one batch per save or burst.
//!
//! The usual debounce waits a fixed 50 ms or more after the last event. That costs
//! latency on every save, and still splits a save whose steps straddle the window. This
//! one knows which events *complete* a save: a close after writing and a rename into
//! place leave the file whole, while a create, a write in progress, a delete or a rename
//! away are steps that a completing event usually follows (vim's rename-then-write,
//! `git checkout`'s unlink-then-create). So:
//!
//! - when every pending path's latest event completes it, the batch goes after a short
//!   *settle* window of quiet (a few ms, to catch the rest of a burst);
//! - while some path is mid-save, the batch waits for a longer *grace* of quiet, so a
//!   plain `rm` still counts, after a short delay;
//! - a batch never waits longer than *max_wait* after its first event, so a file written
//!   continuously still restarts the server.
//!
//! Pure: the clock is passed in, so the tests never sleep.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// Quiet time after a completing event before the batch goes.
pub const SETTLE: Duration = Duration::from_millis(5);
/// Quiet time while some path is mid-save.
pub const GRACE: Duration = Duration::from_millis(100);
/// The longest a batch waits after its first event.
pub const MAX_WAIT: Duration = Duration::from_millis(1000);

/// Whether an event leaves its file whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Closed after writing, or renamed into place.
    Complete,
    /// Created, written but still open, deleted, or renamed away.
    Partial,
}

/// Pending changes and their timing.
#[derive(Debug)]
pub struct Debouncer {
    settle: Duration,
    grace: Duration,
    max_wait: Duration,
    pending: BTreeMap<PathBuf, Step>,
    first: Option<Instant>,
    last: Option<Instant>,
}

impl Default for Debouncer {
    fn default() -> Self {
        Debouncer::new(SETTLE, GRACE, MAX_WAIT)
    }
}

impl Debouncer {
    /// A debouncer with the given windows.
    pub fn new(settle: Duration, grace: Duration, max_wait: Duration) -> Debouncer {
        Debouncer {
            settle,
            grace,
            max_wait,
            pending: BTreeMap::new(),
            first: None,
            last: None,
        }
    }

    /// Records one event; the path's latest event decides whether it is mid-save.
    pub fn record(&mut self, path: PathBuf, step: Step, now: Instant) {
        self.pending.insert(path, step);
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// When the pending batch is due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        let quiet = if self.pending.values().all(|s| *s == Step::Complete) {
            self.settle
        } else {
            self.grace
        };
        Some((last + quiet).min(first + self.max_wait))
    }

    /// Takes the batch (its paths, sorted) if it is due at `now`.
    pub fn take_due(&mut self, now: Instant) -> Option<Vec<PathBuf>> {
        if self.deadline()? > now {
            return None;
        }
        self.first = None;
        self.last = None;
        Some(std::mem::take(&mut self.pending).into_keys().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn p(s: &str) -> PathBuf {
        PathBuf::from(s)
    }

    #[test]
    fn complete_save_goes_after_settle() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("a.py"), Step::Complete, t0);
        assert_eq!(d.deadline(), Some(t0 + SETTLE));
        assert_eq!(d.take_due(t0 + ms(1)), None);
        assert_eq!(d.take_due(t0 + SETTLE), Some(vec![p("a.py")]));
        assert_eq!(d.deadline(), None);
    }

    #[test]
    fn vim_rename_then_write_is_one_batch() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        // Rename away, then a slow write (fsync) of the new file, then close.
        d.record(p("a.py"), Step::Partial, t0);
        d.record(p("a.py"), Step::Partial, t0 + ms(1));
        assert_eq!(
            d.take_due(t0 + ms(40)),
            None,
            "mid-save: wait for the close"
        );
        d.record(p("a.py"), Step::Complete, t0 + ms(60));
        assert_eq!(d.take_due(t0 + ms(62)), None);
        assert_eq!(d.take_due(t0 + ms(65)), Some(vec![p("a.py")]));
    }

    #[test]
    fn plain_delete_goes_after_grace() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("a.py"), Step::Partial, t0);
        assert_eq!(d.take_due(t0 + GRACE - ms(1)), None);
        assert_eq!(d.take_due(t0 + GRACE), Some(vec![p("a.py")]));
    }

    #[test]
    fn burst_is_one_batch() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        for i in 0..40u64 {
            let at = t0 + Duration::from_micros(300 * i);
            let path = p(&format!("f{i}.py"));
            d.record(path.clone(), Step::Partial, at);
            d.record(path, Step::Complete, at + Duration::from_micros(100));
            assert_eq!(d.take_due(at + Duration::from_micros(200)), None);
        }
        let batch = d
            .take_due(t0 + ms(20))
            .expect("due after the burst settles");
        assert_eq!(batch.len(), 40);
    }

    #[test]
    fn continuous_writes_are_capped() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut now = t0;
        while now < t0 + MAX_WAIT {
            d.record(p("log.py"), Step::Partial, now);
            now += ms(50);
        }
        assert!(d.take_due(t0 + MAX_WAIT).is_some());
    }
}
