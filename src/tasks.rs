//! `[[task]]` build steps: shell lines run in the task file's folder, in order, when the
//! task's own `file_dep` changes (and once at start-up, so outputs are fresh before the
//! server first starts). A failing step is reported and stops that task; supervising
//! goes on.
//!
//! A stop signal that arrives while a step runs (Ctrl-C, a SIGTERM from docker or
//! systemd) ends the step and every process under it at once: reloadsup does not sit
//! out a long build before it stops. If reloadsup is killed, even by SIGKILL, the guard
//! kills what a step started (see `supervisor::spawn::tie_to_supervisor`). The step
//! stays in reloadsup's own process group, so in a terminal it can still prompt and set
//! terminal modes (a group of its own would be a background one there, stopped by
//! SIGTTIN at its first read), and a Ctrl-C reaches it directly.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::Task;
use crate::filter::Filter;
use crate::report;
use crate::supervisor::Guard;
use crate::supervisor::spawn::tie_to_supervisor;

/// How often a running step is checked for its end, or for a stop signal.
const POLL: Duration = Duration::from_millis(10);
/// How long a step may take to end after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How many times the build steps run at the start at most: once, and again for
/// those whose inputs changed meanwhile.
const START_ROUNDS: usize = 3;

/// Inputs larger than this are not read to tell a real change from a rewrite of the
/// same bytes: each of their writes is a change.
const COMPARED_MAX: u64 = 16 * 1024 * 1024;

/// Runs every task once at the start, before the server starts; then again each task
/// whose inputs hold something else after the tasks ran than before it ran, up to
/// [`START_ROUNDS`] runs in all: a save during a slow first build was lost (watching
/// begins after these runs), and a task listed before the task that writes its input
/// ran on a missing or old file until the next save. What the inputs hold is recorded
/// in `inputs`, for the changes seen later (not for a task that failed: the next write
/// of its inputs, even of the same bytes, runs it again), and how each run ended in
/// `failures`.
pub fn run_at_start(
    tasks: &[Task],
    root: &Path,
    guard: Option<&Guard>,
    filter: &mut Filter,
    inputs: &mut Inputs,
    failures: &mut Failures,
) {
    let mut due: Vec<usize> = (0..tasks.len()).collect();
    for round in 1..=START_ROUNDS {
        let mut ran = Vec::new();
        for &index in &due {
            if crate::signals::stop_requested() {
                return;
            }
            let files = input_files(&tasks[index], filter, root);
            for file in &files {
                inputs.changed(index, file);
            }
            let outcome = run(&tasks[index], root, guard);
            failures.record(index, &outcome);
            ran.push((index, files, outcome == Outcome::Done));
        }
        due = Vec::new();
        for (index, mut files, succeeded) in ran {
            files.extend(input_files(&tasks[index], filter, root));
            files.sort();
            files.dedup();
            // Each one compared, so that every record is what it holds now.
            let changed = files
                .iter()
                .fold(false, |any, file| inputs.changed(index, file) | any);
            if !succeeded {
                inputs.forget(index);
            }
            if changed {
                due.push(index);
            }
        }
        if due.is_empty() {
            return;
        }
        let names: Vec<&str> = due.iter().map(|&i| tasks[i].name.as_str()).collect();
        if round == START_ROUNDS {
            report::warn(format!(
                "inputs of {} changed again while the build steps ran; not run again \
                 before the server starts (a save runs them)",
                names.join(", ")
            ));
        } else {
            report::info(format!(
                "inputs changed while the build steps ran: again {}",
                names.join(", ")
            ));
        }
    }
}

/// The files of the task's `file_dep`, as `check` lists them.
fn input_files(task: &Task, filter: &mut Filter, root: &Path) -> Vec<PathBuf> {
    task.file_dep
        .iter()
        .flat_map(|pattern| crate::check::matches(pattern, false, filter, root))
        .collect()
}

/// What each task's inputs held when they last made it run, so that a write of the
/// same bytes (a formatter run as a step, rewriting its own input unchanged) does not
/// run it again: a step that rewrites its inputs ran without end, once per write.
/// A file is read only when its status changed (its size, inode or change time: the
/// change time moves at every write and cannot be set back, as a modification time
/// can by `cp -p` or `touch -d`).
#[derive(Debug, Default)]
pub struct Inputs {
    seen: HashMap<(usize, PathBuf), Seen>,
}

/// A file as last seen: its size, inode and change time (`None`: not there), and a
/// hash of its bytes (`None`: not read, being too large or unreadable).
#[derive(Debug, Clone, Copy)]
struct Seen {
    stamp: Option<(u64, u64, i64, i64)>,
    hash: Option<u64>,
}

impl Inputs {
    /// Whether `path`, an input of task `task`, holds something else than when it last
    /// made the task run (always, the first time); records what it holds now. A file
    /// too large to read counts as changed whenever its status did.
    pub fn changed(&mut self, task: usize, path: &Path) -> bool {
        use std::os::unix::fs::MetadataExt;
        let key = (task, path.to_path_buf());
        let stamp = std::fs::metadata(path)
            .ok()
            .filter(std::fs::Metadata::is_file)
            .map(|meta| (meta.len(), meta.ino(), meta.ctime(), meta.ctime_nsec()));
        let old = self.seen.get(&key).copied();
        if old.is_some_and(|old| old.stamp == stamp) {
            return false;
        }
        let hash = stamp
            .filter(|(len, ..)| *len <= COMPARED_MAX)
            .and_then(|_| hash_of(path));
        let changed = match (old, hash) {
            (Some(old), Some(hash)) => old.hash != Some(hash),
            _ => true,
        };
        self.seen.insert(key, Seen { stamp, hash });
        changed
    }

    /// Whether what `path` holds is kept for `task` (it made the task run once).
    pub fn knows(&self, task: usize, path: &Path) -> bool {
        self.seen.contains_key(&(task, path.to_path_buf()))
    }

    /// Forgets what `path` held for `task`: its next write counts as a change.
    pub fn forget_file(&mut self, task: usize, path: &Path) {
        self.seen.remove(&(task, path.to_path_buf()));
    }

    /// Forgets what the inputs of `task` held: it failed, and the next write of any of
    /// them runs it again (doit keeps no checksums of a failed task either).
    pub fn forget(&mut self, task: usize) {
        self.seen.retain(|(index, _), _| *index != task);
    }
}

/// A hash of the bytes of `path`, if it can be read.
pub fn hash_of(path: &Path) -> Option<u64> {
    let bytes = std::fs::read(path).ok()?;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    Some(hasher.finish())
}

/// How a task's run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every action succeeded.
    Done,
    /// An action failed, or could not run: the message says which and how.
    Failed(String),
    /// A stop signal cut it short.
    Stopped,
}

/// Runs every action of `task`, in order, until one fails.
pub fn run(task: &Task, root: &Path, guard: Option<&Guard>) -> Outcome {
    let began = Instant::now();
    for action in &task.actions {
        if crate::signals::stop_requested() {
            return Outcome::Stopped;
        }
        report::info(format!("task `{}`: {action}", task.name));
        let mut command = Command::new("sh");
        command.arg("-c").arg(action).current_dir(root);
        crate::limits::as_given(&mut command);
        if let Some(guard) = guard {
            // Its shell dies with reloadsup, and the guard kills what it started.
            tie_to_supervisor(&mut command, Some(guard.fd()), b"step ");
        }
        let status = command.spawn().and_then(wait_or_stop);
        if let Some(guard) = guard {
            guard.step_done();
        }
        match status {
            Ok(None) => {
                report::warn(format!(
                    "task `{}` stopped: reloadsup is stopping",
                    task.name
                ));
                return Outcome::Stopped;
            }
            Ok(Some(status)) if status.success() => {}
            Ok(Some(status)) => {
                let message = format!("task `{}` failed: `{action}` {status}", task.name);
                report::error(&message);
                return Outcome::Failed(message);
            }
            Err(err) => {
                let message = format!("task `{}`: cannot run `{action}`: {err}", task.name);
                report::error(&message);
                return Outcome::Failed(message);
            }
        }
    }
    report::info(format!(
        "task `{}` done in {} ms",
        task.name,
        began.elapsed().as_millis()
    ));
    Outcome::Done
}

/// The tasks whose last run failed, with how: what open pages show (see
/// `Hub::set_build`) until each runs through. A task that was stopped keeps what it had.
#[derive(Debug, Default)]
pub struct Failures(BTreeMap<usize, String>);

impl Failures {
    /// Records how task `index` ended; returns whether the failures changed.
    pub fn record(&mut self, index: usize, outcome: &Outcome) -> bool {
        match outcome {
            Outcome::Done => self.0.remove(&index).is_some(),
            Outcome::Failed(message) => {
                self.0.insert(index, message.clone()).as_ref() != Some(message)
            }
            Outcome::Stopped => false,
        }
    }

    /// The failures, a line each in the tasks' order; `None` when none failed.
    pub fn summary(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| self.0.values().cloned().collect::<Vec<_>>().join("\n"))
    }
}

/// Waits for a step to end: its status, or `None` when a stop signal came first. Then
/// the step and whatever it started are sent SIGTERM, and what is left of them SIGKILL
/// after [`STOP_GRACE`] — the shell may be gone already (a Ctrl-C reaches it first)
/// while jobs it put in the background (`a & b & wait`) live on.
fn wait_or_stop(mut child: Child) -> io::Result<Option<ExitStatus>> {
    let step = Pid::from_raw(child.id() as i32);
    let began = crate::procfs::stat(step.as_raw()).map(|s| s.start_ticks);
    loop {
        if let Some(status) = child.try_wait()? {
            if !crate::signals::stop_requested() {
                return Ok(Some(status));
            }
            break;
        }
        if crate::signals::stop_requested() {
            break;
        }
        std::thread::sleep(POLL);
    }
    signal_all(&started_by(step, began), Signal::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        let _ = child.try_wait()?;
        let left = started_by(step, began);
        if left.is_empty() {
            break;
        }
        if Instant::now() >= deadline {
            signal_all(&left, Signal::SIGKILL);
            break;
        }
        std::thread::sleep(POLL);
    }
    let _ = child.wait();
    Ok(None)
}

/// The step (while it lives) and the processes it started that still live: those under
/// it, and those re-parented to reloadsup (a child subreaper) when their parent ended,
/// in reloadsup's process group (a server has one of its own) and started since the
/// step (`began`, in clock ticks since boot).
fn started_by(step: Pid, began: Option<u64>) -> Vec<Pid> {
    let Some(began) = began else {
        return vec![step];
    };
    let group = nix::unistd::getpgrp().as_raw();
    crate::procfs::descendants(Pid::this(), &[])
        .into_iter()
        .filter(|(_, stat)| stat.pgid == group && stat.start_ticks >= began)
        .map(|(pid, _)| Pid::from_raw(pid))
        .collect()
}

/// Sends `signal` to each of `pids`.
fn signal_all(pids: &[Pid], signal: Signal) {
    for &pid in pids {
        let _ = kill(pid, signal);
    }
}
