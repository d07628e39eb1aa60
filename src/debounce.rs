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
//!   *settle* window of quiet (a few ms, to catch the rest of a burst) — longer once the
//!   batch holds many paths, or a folder was just made, since a writer of many files
//!   (`git checkout`, `tar x`, `cp -r`) pauses for more than a few ms now and then on a
//!   busy machine, or once it began within a burst's settle of the last batch (a
//!   writer saving files one by one, further apart than the short settle);
//! - while some path is mid-save, the batch waits for a longer *grace* of quiet, so a
//!   plain `rm` still counts, after a short delay; after a file was created (or first
//!   changed since its last close) and nothing more, it waits a second (`cp` writes a
//!   whole file in one system call, reported only once it returns);
//! - a batch waits at most *max_wait* after its first event, so a file written
//!   without end does not hold other changes back — counted from the latest path new
//!   to the batch while new ones keep coming (a burst of thousands of files that takes
//!   seconds is one batch), but never past *max_burst*. At that cap only the paths that
//!   have settled go: complete ones, and those quiet for *grace*. A file still being
//!   written (a large copy, a log held open) stays for a later batch, so the server is
//!   not restarted once a second onto half a file.
//!
//! Pure: the clock is passed in, so the tests never sleep.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Quiet time after a completing event before the batch goes.
pub const SETTLE: Duration = Duration::from_millis(5);
/// Quiet time after a completing event once the batch holds [`BURST_PATHS`] paths.
pub const BURST_SETTLE: Duration = Duration::from_millis(50);
/// What a burst waits beyond a poll's interval when polling: the poll's own time.
pub const POLL_MARGIN: Duration = Duration::from_millis(20);
/// How many paths make a batch a burst: a save is one path (editors' temp files are
/// filtered out first), so a second one means a program writing many (`git checkout`),
/// which may pause for more than [`SETTLE`] after a few files (it was 8: a 30 ms pause
/// after 5 files of a 1,000-file checkout split it into two restarts).
pub const BURST_PATHS: usize = 2;
/// Quiet time while some path is mid-save.
pub const GRACE: Duration = Duration::from_millis(100);
/// Quiet time after a file was created, or first changed since its last close, with
/// nothing more yet: `cp` (coreutils 9) and Python's `shutil.copy` write a whole file
/// in one `copy_file_range` call, of which inotify says nothing until it returns.
pub const CREATED_QUIET: Duration = Duration::from_millis(1000);
/// The longest a batch waits after its first event, or after the latest path new to it.
pub const MAX_WAIT: Duration = Duration::from_millis(1000);
/// The longest a batch waits after its first event, however many new paths come.
pub const MAX_BURST: Duration = Duration::from_secs(10);
/// How long a name born and gone again is remembered after it went: a late event of it
/// (the second half of a rename, read after the batch went) is no change either.
pub const VANISHED_ECHO: Duration = Duration::from_secs(1);
/// How many born names are kept before those a second old and never pending go (see
/// [`Debouncer::forget_old_births`]).
const BORN_KEPT: usize = 4096;

/// Whether an event leaves its file whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Closed after writing, or renamed into place.
    Complete,
    /// Written but still open, deleted, or renamed away.
    Partial,
    /// Created, or first changed since its last close, and nothing more yet: a copy
    /// may be under way in one system call.
    Created,
    /// A close that finds the file as an earlier event already reported it (the scan
    /// of a new folder found it whole, and its own events trail): it completes the
    /// path if it is still pending, and is no change by itself.
    Echo,
    /// The name was created (it comes before the creation's own step): one that is
    /// not pending yet is *born* in the batch. A born file that is complete makes the
    /// batch settle as a burst does, since a temp file written whole is often renamed
    /// over the real one next (`mkstemp` and `os.replace`, `ln -sfn`); and one that is
    /// gone when the batch goes was never a change (see [`Debouncer::was_born`]).
    Born,
}

/// Pending changes and their timing.
#[derive(Debug)]
pub struct Debouncer {
    settle: Duration,
    grace: Duration,
    max_wait: Duration,
    /// Each pending path's latest step, and when it came.
    pending: BTreeMap<PathBuf, (Step, Instant)>,
    /// Counts of the pending paths, kept event by event (see [`Tally`]).
    tally: Tally,
    /// The paths born in their batch (see [`Step::Born`]), and when, until asked about.
    born: BTreeMap<PathBuf, Instant>,
    /// Past this many born names, the old ones not pending are forgotten.
    born_limit: usize,
    /// Folders made since the last batch went: the names in them are born.
    born_folders: BTreeSet<PathBuf>,
    /// Born names found gone again (see [`Debouncer::born_gone`]), and when...
    vanished: BTreeMap<PathBuf, Instant>,
    /// ...and in the order they went, to forget them a second later.
    vanished_order: VecDeque<(Instant, PathBuf)>,
    first: Option<Instant>,
    last: Option<Instant>,
    /// When the newest event of the batch last taken came: the end of the change it
    /// acts on.
    taken_last: Option<Instant>,
    /// When a path not yet in the batch last came.
    last_new: Option<Instant>,
    /// The end of the batch taken before, while a batch beginning soon after it may be
    /// the rest of a writer's burst (see [`Debouncer::continues_a_burst`]).
    previous_end: Option<Instant>,
    /// When a folder was last made: a tree being copied in (`cp -r`, `tar x`), whose
    /// writer pauses between files for longer than the short settle on a busy machine.
    folder_made: Option<Instant>,
    /// The quiet a burst needs: [`BURST_SETTLE`], or with polling, a poll's interval
    /// and a margin (a poll reports what it found at once, so the rest of a burst comes
    /// a poll later at the earliest).
    burst_settle: Duration,
}

/// The pending paths counted by kind, kept beside them event by event, so that what
/// the app loop asks at every event (the deadline, the copies to check) costs a lookup
/// rather than a look at every pending path: a burst of 10,000 files took seconds of
/// CPU when each event went through the whole batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Tally {
    /// The complete paths.
    complete: usize,
    /// The complete paths born in their batch (see [`Step::Born`]).
    born_whole: usize,
    /// The paths mid-save, by when their latest step came.
    partial: BTreeSet<(Instant, PathBuf)>,
    /// The paths created with nothing more yet, by when.
    created: BTreeSet<(Instant, PathBuf)>,
}

impl Tally {
    /// Counts a pending path's latest change.
    fn add(&mut self, path: PathBuf, (step, at): (Step, Instant), born: bool) {
        match step {
            Step::Partial => {
                self.partial.insert((at, path));
            }
            Step::Created => {
                self.created.insert((at, path));
            }
            Step::Complete | Step::Echo | Step::Born => {
                self.complete += 1;
                self.born_whole += usize::from(born);
            }
        }
    }

    /// Uncounts a change [`Tally::add`] counted (with the same `born`).
    fn remove(&mut self, path: &Path, (step, at): (Step, Instant), born: bool) {
        match step {
            Step::Partial => {
                self.partial.remove(&(at, path.to_path_buf()));
            }
            Step::Created => {
                self.created.remove(&(at, path.to_path_buf()));
            }
            Step::Complete | Step::Echo | Step::Born => {
                self.complete -= 1;
                self.born_whole -= usize::from(born);
            }
        }
    }
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
            tally: Tally::default(),
            born: BTreeMap::new(),
            born_limit: BORN_KEPT,
            born_folders: BTreeSet::new(),
            vanished: BTreeMap::new(),
            vanished_order: VecDeque::new(),
            first: None,
            last: None,
            taken_last: None,
            last_new: None,
            previous_end: None,
            folder_made: None,
            burst_settle: BURST_SETTLE,
        }
    }

    /// Changes come from polls every `interval`: a burst waits for one with nothing new.
    pub fn polling(&mut self, interval: Duration) {
        self.burst_settle = BURST_SETTLE.max(interval + POLL_MARGIN);
    }

    /// Folders were made (or moved in): until a second after, the batch settles as a
    /// burst does; and until the next batch goes, every name first seen in them is
    /// born (see [`Step::Born`]). A temp file made in a new folder before its watch was
    /// in place and renamed over the real file before the folder's scan shows only as
    /// renamed away, and was no change.
    pub fn folders_made(&mut self, folders: Vec<PathBuf>, now: Instant) {
        self.folder_made = Some(now);
        self.born_folders.extend(folders);
    }

    /// Records one event; the path's latest event decides whether it is mid-save.
    pub fn record(&mut self, path: PathBuf, step: Step, now: Instant) {
        // Made again, or there again: its removal from now on is a change.
        self.vanished.remove(&path);
        let step = match step {
            Step::Echo if self.pending.contains_key(&path) => Step::Complete,
            Step::Echo => return,
            Step::Born => {
                if !self.pending.contains_key(&path) {
                    self.born.insert(path, now);
                    self.forget_old_births(now);
                }
                return;
            }
            step => step,
        };
        if !self.pending.contains_key(&path) && !self.any_settled(now) {
            // New beside paths still being written only (a log held open): a batch
            // begins now, or its cap, long past, would let each path go on its own.
            self.first = Some(now);
        }
        let new = !self.pending.contains_key(&path);
        if new
            && path
                .parent()
                .is_some_and(|dir| self.born_folders.contains(dir))
        {
            self.born.insert(path.clone(), now);
        }
        let born = self.born.contains_key(&path);
        match self.pending.insert(path.clone(), (step, now)) {
            None => self.last_new = Some(now),
            Some(old) => self.tally.remove(&path, old, born),
        }
        self.tally.add(path, (step, now), born);
        self.first.get_or_insert(now);
        self.last = Some(now);
    }

    /// Whether some pending path has settled by `at`: any complete one has.
    fn any_settled(&self, at: Instant) -> bool {
        self.tally.complete > 0 || self.first_settles().is_some_and(|settles| settles <= at)
    }

    /// When the earliest of the paths not complete settles, if there are any.
    fn first_settles(&self) -> Option<Instant> {
        let partial = self.tally.partial.first().map(|(at, _)| *at + self.grace);
        let created = self
            .tally
            .created
            .first()
            .map(|(at, _)| *at + self.created_quiet());
        partial.into_iter().chain(created).min()
    }

    /// The quiet a created file needs (see [`Step::Created`]).
    fn created_quiet(&self) -> Duration {
        self.grace.max(CREATED_QUIET)
    }

    /// Rebuilds the tally after `pending` was changed wholesale.
    fn recount(&mut self) {
        let mut tally = Tally::default();
        for (path, change) in &self.pending {
            tally.add(path.clone(), *change, self.born.contains_key(path));
        }
        self.tally = tally;
    }

    /// The paths that were created (or first changed since their last close) and have
    /// been quiet since for the wait a copy gets: whether a copy is still filling one
    /// is for the caller to check (its size grows with no event) before the batch goes.
    pub fn copies_to_check(&self, now: Instant) -> Vec<PathBuf> {
        let quiet = self.created_quiet();
        self.tally
            .created
            .iter()
            .take_while(|(at, _)| *at + quiet <= now)
            .map(|(_, path)| path.clone())
            .collect()
    }

    /// When the pending batch is due, if there is one.
    pub fn deadline(&self) -> Option<Instant> {
        let (first, last) = (self.first?, self.last?);
        let whole = last + self.quiet();
        let last_new = self.last_new.unwrap_or(first);
        let cap = (last_new + self.max_wait).min(first + MAX_BURST.max(self.max_wait));
        if whole <= cap || self.any_settled(cap) {
            return Some(whole.min(cap));
        }
        // Every path is still being written at the cap: the batch goes when the first
        // of them settles.
        Some(self.first_settles().map_or(whole, |at| at.min(whole)))
    }

    /// Takes the batch (its paths, sorted) if it is due at `now`: all of it after
    /// enough quiet, else (at the cap) the paths that have settled.
    pub fn take_due(&mut self, now: Instant) -> Option<Vec<PathBuf>> {
        if self.deadline()? > now {
            return None;
        }
        let whole = self.last.is_some_and(|last| last + self.quiet() <= now);
        let (taken, kept): (BTreeMap<_, _>, BTreeMap<_, _>) = std::mem::take(&mut self.pending)
            .into_iter()
            .partition(|(_, change)| whole || self.settled(change, now));
        if taken.is_empty() {
            // Not reached (the deadline is when something settles); never spin on it.
            self.pending = kept;
            return self.take_all();
        }
        self.pending = kept;
        self.taken_last = taken.values().map(|(_, at)| *at).max();
        self.previous_end = self.taken_last;
        // A name born but never pending (a folder made: its files are the changes) is
        // forgotten with its batch, so its removal later is a change.
        self.born
            .retain(|path, _| taken.contains_key(path) || self.pending.contains_key(path));
        self.forget_old_vanished(now);
        self.born_folders.clear();
        self.recount();
        if self.pending.is_empty() {
            self.first = None;
            self.last = None;
            self.last_new = None;
        } else {
            // What is still being written starts a batch of its own.
            self.first = Some(now);
            self.last_new = Some(now);
            self.last = self.pending.values().map(|(_, at)| *at).max();
        }
        Some(taken.into_keys().collect())
    }

    /// Whether `path` was born in the pending batch (see [`Step::Born`]), or was and
    /// went again less than [`VANISHED_ECHO`] before `now`.
    pub fn is_born(&self, path: &Path, now: Instant) -> bool {
        self.born.contains_key(path)
            || self
                .vanished
                .get(path)
                .is_some_and(|at| now < *at + VANISHED_ECHO)
    }

    /// A name born in the pending batch is gone again (a temp file renamed over the
    /// real one, or deleted): nothing more comes for it, and it is no change (see
    /// [`Debouncer::was_born`]), so the batch waits on it no longer. As a path mid-save
    /// it held every save through a temp file that the globs match for the 100 ms
    /// grace. It stays known as born for [`VANISHED_ECHO`], for a late event of it
    /// to be dropped too (the temp name of a rename went as a change, on a busy
    /// machine, when the rename's second half was read after the batch went).
    pub fn born_gone(&mut self, path: &Path, now: Instant) {
        let born = self.born.remove(path).is_some();
        if let Some(old) = self.pending.remove(path) {
            self.tally.remove(path, old, born);
        }
        self.forget_old_vanished(now);
        self.vanished.insert(path.to_path_buf(), now);
        self.vanished_order.push_back((now, path.to_path_buf()));
        if self.pending.is_empty() {
            self.first = None;
            self.last = None;
            self.last_new = None;
        }
    }

    /// When the newest event of the batch just taken came (the end of the save or of
    /// the burst), from which the status line counts a restart's time to ready.
    pub fn last_taken(&self) -> Option<Instant> {
        self.taken_last
    }

    /// Whether `path`, of a batch just taken, was born in it: if it is gone now, it was
    /// a temp file and no change. Asked once per path (the answer is forgotten).
    pub fn was_born(&mut self, path: &Path) -> bool {
        self.born.remove(path).is_some()
    }

    /// Forgets the names gone more than [`VANISHED_ECHO`] before `now`.
    fn forget_old_vanished(&mut self, now: Instant) {
        while let Some((at, _)) = self.vanished_order.front() {
            if now < *at + VANISHED_ECHO {
                break;
            }
            if let Some((at, path)) = self.vanished_order.pop_front() {
                if self.vanished.get(&path) == Some(&at) {
                    self.vanished.remove(&path);
                }
            }
        }
    }

    /// Names born and never pending (temp files no glob matches, made and deleted
    /// without end in a watched folder) were kept until a batch went, and with none
    /// they piled up (5 MB in 30 s). Past `born_limit` names, those born more than
    /// [`MAX_WAIT`] ago and not pending are forgotten (a rename or removal of theirs
    /// would have come by then), and the limit becomes twice what is left, so the
    /// look costs little per name.
    fn forget_old_births(&mut self, now: Instant) {
        if self.born.len() < self.born_limit {
            return;
        }
        let pending = &self.pending;
        self.born
            .retain(|path, at| pending.contains_key(path) || now < *at + MAX_WAIT);
        self.born_limit = BORN_KEPT.max(self.born.len() * 2);
    }

    /// Takes every pending path.
    fn take_all(&mut self) -> Option<Vec<PathBuf>> {
        self.taken_last = self.last;
        self.previous_end = self.last;
        self.first = None;
        self.last = None;
        self.last_new = None;
        let paths: Vec<PathBuf> = std::mem::take(&mut self.pending).into_keys().collect();
        self.born_folders.clear();
        self.recount();
        (!paths.is_empty()).then_some(paths)
    }

    /// The quiet time the batch needs before all of it goes: the longest its paths'
    /// latest steps need.
    fn quiet(&self) -> Duration {
        let tree = self
            .folder_made
            .zip(self.last)
            .is_some_and(|(made, last)| last <= made + self.max_wait);
        let settle = if self.pending.len() >= BURST_PATHS
            || tree
            || self.tally.born_whole > 0
            || self.continues_a_burst()
        {
            self.settle.max(self.burst_settle)
        } else {
            self.settle
        };
        // Complete paths need `settle`; the others what their steps need.
        [
            (self.tally.complete > 0).then_some(settle),
            (!self.tally.partial.is_empty()).then_some(self.grace),
            (!self.tally.created.is_empty()).then_some(self.created_quiet()),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(settle)
    }

    /// Whether the batch began within [`BURST_SETTLE`] of the newest event of the batch
    /// taken before: a writer saving files one at a time, further apart than the short
    /// settle (a code generator, 8–20 ms), sent its first file alone and is still
    /// going. Its rest waits as a burst does, so it is one more restart rather than a
    /// restart per file. A save on its own never comes that close; with polling
    /// faster than that, a batch a poll after the last waits for a poll with nothing
    /// new, as a burst does there.
    fn continues_a_burst(&self) -> bool {
        self.first
            .zip(self.previous_end)
            .is_some_and(|(first, previous)| first <= previous + BURST_SETTLE)
    }

    /// Build steps ran on the batch just taken: what they write comes next, and is no
    /// writer's burst going on, so it settles as a save does (a stylesheet a quick
    /// step wrote waited 50 ms rather than 5 to be swapped in).
    pub fn steps_ran(&mut self) {
        self.previous_end = None;
    }

    /// The quiet time a path needs after `step` before it has settled; `None` for a
    /// complete one, which has.
    fn quiet_after(&self, step: Step) -> Option<Duration> {
        match step {
            Step::Complete | Step::Echo | Step::Born => None,
            Step::Partial => Some(self.grace),
            Step::Created => Some(self.created_quiet()),
        }
    }

    /// Whether a path's change is over at `at`: complete, or quiet for long enough.
    fn settled(&self, (step, last): &(Step, Instant), at: Instant) -> bool {
        self.quiet_after(*step)
            .is_none_or(|quiet| *last + quiet <= at)
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

    /// The batches due by `now`, each with its deadline, as the app loop takes them
    /// when it wakes (it sleeps until the deadline, never past the next event).
    fn due_by(d: &mut Debouncer, now: Instant) -> Vec<(Instant, Vec<PathBuf>)> {
        let mut batches = Vec::new();
        while let Some(due) = d.deadline().filter(|due| *due <= now) {
            batches.push((due, d.take_due(now).expect("due")));
        }
        batches
    }

    /// What is kept beside the pending paths, updated event by event, always equals
    /// what a count from scratch gives, whatever the order of steps and takes.
    #[test]
    fn the_kept_counts_match_a_recount() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let steps = [
            Step::Complete,
            Step::Partial,
            Step::Created,
            Step::Echo,
            Step::Born,
        ];
        // A fixed pseudo-random walk: paths, steps and takes in no neat order.
        let mut seed: u64 = 7;
        for i in 0..5_000u64 {
            seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let path = p(&format!("f{}", (seed >> 33) % 40));
            let step = steps[((seed >> 20) % 5) as usize];
            let now = t0 + ms(i);
            d.record(path.clone(), step, now);
            if (seed >> 40) % 17 == 0 {
                d.take_due(now + ms(2000));
                d.was_born(&path);
            }
            let kept = d.tally.clone();
            d.recount();
            assert_eq!(kept, d.tally, "step {i}");
        }
    }

    #[test]
    fn an_echo_completes_a_pending_path_and_is_nothing_alone() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("new/a.py"), Step::Partial, t0);
        assert_eq!(d.deadline(), Some(t0 + GRACE));
        d.record(p("new/a.py"), Step::Echo, t0 + ms(2));
        assert_eq!(d.deadline(), Some(t0 + ms(2) + SETTLE));
        assert_eq!(d.take_due(t0 + ms(2) + SETTLE), Some(vec![p("new/a.py")]));
        d.record(p("new/a.py"), Step::Echo, t0 + ms(200));
        assert_eq!(
            d.deadline(),
            None,
            "after the batch went, an echo is no change"
        );
    }

    /// A file born in the batch and written whole settles as a burst: a rename over
    /// the real file may follow. Born is forgotten once asked about; a name that was
    /// pending before its creation (vim's rename-away, then a new file) is not born.
    #[test]
    fn a_born_file_waits_for_a_rename_and_is_known_as_born() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("tmp1"), Step::Born, t0);
        d.record(p("tmp1"), Step::Created, t0);
        d.record(p("tmp1"), Step::Complete, t0 + ms(1));
        assert_eq!(d.deadline(), Some(t0 + ms(1) + BURST_SETTLE));
        d.record(p("tmp1"), Step::Partial, t0 + ms(15));
        d.record(p("app.py"), Step::Complete, t0 + ms(15));
        // The temp name renamed away is a partial step: the batch waits the grace.
        let batch = d.take_due(t0 + ms(15) + GRACE).expect("due");
        assert_eq!(batch, vec![p("app.py"), p("tmp1")]);
        assert!(d.was_born(&p("tmp1")));
        assert!(!d.was_born(&p("tmp1")), "asked once");
        assert!(!d.was_born(&p("app.py")));
        d.record(p("a.py"), Step::Partial, t0 + ms(100));
        d.record(p("a.py"), Step::Born, t0 + ms(101));
        d.record(p("a.py"), Step::Complete, t0 + ms(102));
        assert_eq!(
            d.deadline(),
            Some(t0 + ms(102) + SETTLE),
            "vim's save is no birth"
        );
        // A name born and never pending (a folder made) is forgotten with its batch:
        // its removal later is a change.
        d.record(p("newdir"), Step::Born, t0 + ms(103));
        assert!(d.take_due(t0 + ms(102) + SETTLE).is_some());
        assert!(!d.was_born(&p("newdir")));
    }

    /// A temp file born, written whole and renamed over the real file (`mkstemp` and
    /// `os.replace`): once the caller finds the temp name gone, the batch goes after
    /// the short settle, not the grace of a path mid-save; a temp file made and
    /// deleted alone leaves no batch.
    #[test]
    fn a_born_name_gone_again_is_not_waited_on() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p(".app.py.tmp"), Step::Born, t0);
        d.record(p(".app.py.tmp"), Step::Created, t0);
        d.record(p(".app.py.tmp"), Step::Complete, t0 + ms(1));
        d.record(p(".app.py.tmp"), Step::Partial, t0 + ms(2));
        d.record(p("app.py"), Step::Complete, t0 + ms(2));
        assert!(d.is_born(&p(".app.py.tmp"), t0 + ms(2)));
        d.born_gone(&p(".app.py.tmp"), t0 + ms(2));
        assert_eq!(d.deadline(), Some(t0 + ms(2) + SETTLE));
        assert_eq!(d.take_due(t0 + ms(2) + SETTLE), Some(vec![p("app.py")]));
        // A late event of the temp name, after its batch went, is known as well.
        assert!(d.is_born(&p(".app.py.tmp"), t0 + ms(10)));
        d.record(p("scratch"), Step::Born, t0 + ms(500));
        d.record(p("scratch"), Step::Created, t0 + ms(500));
        d.record(p("scratch"), Step::Partial, t0 + ms(501));
        d.born_gone(&p("scratch"), t0 + ms(501));
        assert_eq!(d.deadline(), None);
        // A name made again is no longer taken for gone: its removal is a change.
        d.record(p("scratch"), Step::Born, t0 + ms(600));
        d.record(p("scratch"), Step::Complete, t0 + ms(601));
        assert!(d.take_due(t0 + ms(700)).is_some());
        assert!(d.was_born(&p("scratch")));
        assert!(!d.is_born(&p("scratch"), t0 + ms(700)));
        // ...for a while: a second after, the name is any other.
        d.record(p("app.py"), Step::Complete, t0 + ms(1100));
        assert!(d.take_due(t0 + ms(1100) + SETTLE).is_some());
        assert!(!d.is_born(&p(".app.py.tmp"), t0 + ms(1100)));
        // However long no batch goes.
        d.record(p("late"), Step::Born, t0 + ms(1200));
        d.born_gone(&p("late"), t0 + ms(1200));
        assert!(!d.is_born(&p("late"), t0 + ms(2300)));
    }

    /// Temp names no glob matches, made and deleted without end with no batch going:
    /// their births are kept for a second, not for ever.
    #[test]
    fn births_of_names_never_pending_are_forgotten() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        for i in 0..100_000u64 {
            d.record(p(&format!("cache/t{i}.log")), Step::Born, t0 + ms(i / 10));
        }
        // 10,000 a second: what is kept is about the last second's, at most twice.
        assert!(d.born.len() <= 4 * 10_000, "{} kept", d.born.len());
        assert!(d.is_born(&p("cache/t99999.log"), t0 + ms(10_000)));
    }

    #[test]
    fn a_copy_still_growing_waits_on() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("big.bin"), Step::Created, t0);
        assert!(d.copies_to_check(t0 + ms(999)).is_empty());
        assert_eq!(d.copies_to_check(t0 + CREATED_QUIET), vec![p("big.bin")]);
        // The caller saw it grow: it waits another quiet spell.
        d.record(p("big.bin"), Step::Created, t0 + CREATED_QUIET);
        assert_eq!(d.take_due(t0 + CREATED_QUIET), None);
        assert_eq!(d.deadline(), Some(t0 + CREATED_QUIET * 2));
    }

    #[test]
    fn a_burst_waits_for_a_poll_with_nothing_new_when_polling() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.polling(ms(100));
        d.record(p("a.py"), Step::Complete, t0);
        assert_eq!(d.deadline(), Some(t0 + SETTLE), "a save is no burst");
        d.record(p("new/b.py"), Step::Complete, t0);
        assert_eq!(d.deadline(), Some(t0 + ms(100) + POLL_MARGIN));
    }

    #[test]
    fn files_in_a_folder_just_made_settle_as_a_burst() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.folders_made(vec![p("new")], t0);
        d.record(p("new/a.py"), Step::Complete, t0 + ms(1));
        assert_eq!(d.deadline(), Some(t0 + ms(1) + BURST_SETTLE));
        assert!(d.take_due(t0 + ms(1) + BURST_SETTLE).is_some());
        // A save long after the folder was made settles as usual.
        d.record(p("app.py"), Step::Complete, t0 + ms(5000));
        assert_eq!(d.deadline(), Some(t0 + ms(5000) + SETTLE));
    }

    /// In a folder just made, a name first seen renamed away (its creation came before
    /// the folder's watch) is born; once the batch has gone, a name there is not.
    #[test]
    fn names_in_a_folder_just_made_are_born_until_the_batch_goes() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.folders_made(vec![p("new")], t0);
        d.record(p("new/tmp123"), Step::Partial, t0 + ms(1));
        d.record(p("new/app.py"), Step::Complete, t0 + ms(1));
        d.record(p("other/x.py"), Step::Partial, t0 + ms(1));
        assert!(d.take_due(t0 + ms(200)).is_some());
        // Asked of each path of the batch, as the app loop does.
        assert!(d.was_born(&p("new/tmp123")));
        assert!(d.was_born(&p("new/app.py")));
        assert!(!d.was_born(&p("other/x.py")), "not in a new folder");
        d.record(p("new/app.py"), Step::Partial, t0 + ms(300));
        assert!(d.take_due(t0 + ms(500)).is_some());
        assert!(
            !d.was_born(&p("new/app.py")),
            "a removal a batch later counts"
        );
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
        let last = t0 + Duration::from_micros(300 * 39 + 100);
        assert_eq!(d.deadline(), Some(last + BURST_SETTLE));
        let batch = d
            .take_due(last + BURST_SETTLE)
            .expect("due after the burst settles");
        assert_eq!(batch.len(), 40);
    }

    /// A `git checkout` of thousands of files on a busy machine: seconds long, with
    /// pauses of tens of ms between files now and then. One batch.
    #[test]
    fn a_long_burst_with_pauses_is_one_batch() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut now = t0;
        for i in 0..3000u64 {
            now += if i % 100 == 99 { ms(30) } else { ms(1) };
            d.record(p(&format!("f{i}.py")), Step::Complete, now);
            assert_eq!(d.take_due(now + ms(1)), None, "file {i}");
        }
        assert!(now > t0 + MAX_WAIT * 2, "the burst is long: {:?}", now - t0);
        assert_eq!(d.take_due(now + BURST_SETTLE).map(|b| b.len()), Some(3000));
    }

    /// One file saved goes after the short settle; a second path in the batch makes it
    /// a burst, which waits out a writer's pauses.
    #[test]
    fn one_file_goes_after_the_short_settle_and_two_are_a_burst() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("f0.py"), Step::Complete, t0);
        assert_eq!(d.deadline(), Some(t0 + SETTLE));
        d.record(p("f1.py"), Step::Complete, t0 + ms(1));
        assert_eq!(d.deadline(), Some(t0 + ms(1) + BURST_SETTLE));
        // A pause of 30 ms in the burst does not end it.
        assert_eq!(d.take_due(t0 + ms(31)), None);
    }

    /// A generator saving files one at a time, 15 ms apart (past the short settle): its
    /// first file goes alone, the rest as one more batch, not a batch per file; and a
    /// save on its own later goes after the short settle again.
    #[test]
    fn files_saved_one_by_one_are_two_batches() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut batches = Vec::new();
        let mut now = t0;
        for i in 0..10u64 {
            now = t0 + ms(15 * i);
            batches.extend(due_by(&mut d, now));
            d.record(p(&format!("gen{i}.py")), Step::Complete, now);
        }
        batches.extend(due_by(&mut d, now + BURST_SETTLE));
        let sizes: Vec<usize> = batches.iter().map(|(_, batch)| batch.len()).collect();
        assert_eq!(sizes, [1, 9]);
        let later = now + BURST_SETTLE + ms(500);
        d.record(p("app.py"), Step::Complete, later);
        assert_eq!(d.deadline(), Some(later + SETTLE));
    }

    /// What build steps wrote just after the batch they ran on settles as a save does.
    #[test]
    fn a_steps_output_after_its_input_settles_as_a_save() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("styles/site.scss"), Step::Complete, t0);
        assert_eq!(d.take_due(t0 + SETTLE), Some(vec![p("styles/site.scss")]));
        d.steps_ran();
        let written = t0 + SETTLE + ms(3);
        d.record(p("static/site.css"), Step::Complete, written);
        assert_eq!(d.deadline(), Some(written + SETTLE));
    }

    /// New paths without end: the batch goes at the hard cap all the same.
    #[test]
    fn endless_new_paths_are_capped() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut now = t0;
        let mut i = 0;
        let mut went = None;
        while went.is_none() && now < t0 + MAX_BURST * 2 {
            d.record(p(&format!("log{i}.txt")), Step::Partial, now);
            i += 1;
            now += ms(20);
            if d.take_due(now).is_some() {
                went = Some(now);
            }
        }
        // Counted from the first path, or from a path new beside unsettled ones only
        // (which the first few, 20 ms apart, are).
        let went = went.expect("a batch went while new paths kept coming");
        assert!(went <= t0 + MAX_BURST + GRACE, "{:?}", went - t0);
    }

    /// A large file written for seconds (a slow copy) is one batch, at its close: no
    /// batch once a second with half the file. A save beside it goes at the cap.
    #[test]
    fn a_file_being_written_waits_for_its_end_but_holds_nothing_back() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut now = t0;
        let mut batches = Vec::new();
        d.record(p("big.bin"), Step::Partial, now);
        while now < t0 + MAX_WAIT * 3 {
            now += ms(20);
            d.record(p("big.bin"), Step::Partial, now);
            if now == t0 + ms(200) {
                d.record(p("a.py"), Step::Complete, now);
            }
            batches.extend(
                due_by(&mut d, now)
                    .into_iter()
                    .map(|(due, batch)| (due - t0, batch)),
            );
        }
        // The cap counts from the latest path new to the batch.
        assert_eq!(batches, vec![(ms(200) + MAX_WAIT, vec![p("a.py")])]);
        d.record(p("big.bin"), Step::Complete, now + ms(5));
        let due = d.deadline().expect("the file's close is due");
        assert!(due <= now + ms(5) + GRACE, "{:?}", due - now);
        assert_eq!(d.take_due(due), Some(vec![p("big.bin")]));
        assert_eq!(d.deadline(), None);
    }

    /// A log held open and written for longer than the hard cap: files saved together
    /// beside it later still go as one batch.
    #[test]
    fn a_burst_beside_a_long_written_file_is_one_batch() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut now = t0;
        let mut batches = Vec::new();
        let burst_at = t0 + MAX_BURST + ms(1000);
        let mut saved = 0;
        while now < burst_at + ms(3000) {
            now += ms(10);
            d.record(p("log.py"), Step::Partial, now);
            if now > burst_at && saved < 50 {
                d.record(p(&format!("f{saved}.py")), Step::Complete, now);
                saved += 1;
            }
            batches.extend(
                due_by(&mut d, now)
                    .into_iter()
                    .map(|(_, batch)| batch.len()),
            );
        }
        assert_eq!(batches, vec![50]);
    }

    /// Created and then nothing for a while (a copy in one system call): it waits,
    /// longer than a path mid-save, for the copy's end; created and never written (a
    /// link), it still goes.
    #[test]
    fn a_created_file_waits_for_its_copy() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        d.record(p("big.bin"), Step::Created, t0);
        assert_eq!(d.take_due(t0 + GRACE * 5), None);
        d.record(p("big.bin"), Step::Partial, t0 + ms(700));
        d.record(p("big.bin"), Step::Complete, t0 + ms(701));
        assert_eq!(d.take_due(t0 + ms(701) + SETTLE), Some(vec![p("big.bin")]));
        d.record(p("link"), Step::Created, t0);
        assert_eq!(d.deadline(), Some(t0 + CREATED_QUIET));
    }

    /// Written with no close and then left: it goes once quiet for the grace.
    #[test]
    fn a_file_left_mid_write_goes_once_quiet() {
        let t0 = Instant::now();
        let mut d = Debouncer::default();
        let mut now = t0;
        while now < t0 + MAX_WAIT * 2 {
            d.record(p("log.py"), Step::Partial, now);
            now += ms(50);
        }
        let last = now - ms(50);
        assert_eq!(d.deadline(), Some(last + GRACE));
        assert_eq!(d.take_due(last + GRACE - ms(1)), None);
        assert_eq!(d.take_due(last + GRACE), Some(vec![p("log.py")]));
    }
}
