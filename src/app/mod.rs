//! `reloadsup run`: the app loop.
//!
//! # Theory of operation
//!
//! ```text
//! notify thread ── Event::Fs ─────┐
//! signal thread ── Event::Signal ─┤→ app loop (owns all state)
//! ready probe ──── Event::Ready ──┘   watch.interpret → filter.classify → debounce
//!                                     → tasks → supervisor.stop … Stopped → supervisor.start
//!                                     → ready probe … Ready → browsers.reload_page
//! ```
//!
//! One thread owns everything: the watcher, the filter, the debouncer, the supervisor
//! and the browsers' side (`Browsers`, a narrow handle on the web servers' threads).
//! Other threads only send `Event`s. The loop waits for the next event or
//! the next deadline (a debounced batch falling due, a stop to escalate), whichever is
//! first, so it sleeps when nothing happens: no polling and no CPU while idle.
//!
//! A restart is a stop followed by a start once every process of the old server is
//! gone. A change that arrives while a restart is under way causes exactly one more
//! restart once the new server has started, with all such changes in
//! `RELOADSUP_CHANGED`.

mod server;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGCHLD, SIGHUP, SIGINT, SIGTERM, SIGUSR1};

use crate::browsers::Browsers;
use crate::config::Config;
use crate::control::state::Recorder;
use crate::debounce::{Debouncer, Step};
use crate::error::{Error, Result};
use crate::event::Event;
use crate::filter::Filter;
use crate::supervisor::Supervisor;
use crate::watch::Watcher;
use crate::{report, tasks};

/// What to do once the current stop has finished.
#[derive(Debug)]
enum AfterStop {
    /// Nothing (a clean-up after a server that ended by itself).
    Nothing,
    /// Start the server again, with these changes.
    Start { changed: Vec<String>, began: Began },
    /// Exit with this code.
    Exit(i32),
}

/// When a restart began, and when what asked for it came: the status lines count the
/// restart's own time from the first, the time to ready from the second.
#[derive(Debug, Clone, Copy)]
struct Began {
    /// When the restart began (the old server was signalled).
    restart: Instant,
    /// The end of the change that asked for it (its newest event), or when a restart
    /// was requested.
    asked: Instant,
}

/// A started server not yet known to be ready.
#[derive(Debug)]
struct Starting {
    /// The path the browser reload will name (the first changed file).
    path: String,
    /// When the restart began (`None` for the first start).
    began: Option<Began>,
    /// Whether its readiness timeout has passed (the probe goes on).
    late: bool,
}

/// The most files a batch may name for their bytes to be compared with what they held
/// (see [`App::rewritten_as_it_was`]): a server's build rewrites a few files; a `git
/// checkout` of thousands is the user's, and reading each would hold up the restart.
const REWRITES_COMPARED: usize = 16;

/// How long a restart waits after build steps for the events of what they wrote (they
/// are queued by then; this is the margin for their delivery).
const AFTER_STEPS: Duration = Duration::from_millis(30);

/// A restart held for the events of what build steps wrote.
#[derive(Debug)]
struct Held {
    /// The changes it is for.
    restart: Vec<String>,
    /// When it goes if nothing more came.
    until: Instant,
    /// When it was first held: batches that run the steps again take it along and hold
    /// it again, but not past [`HELD_MAX`] from here (saves every 0.7 s to a task's
    /// input held it for as long as they went on).
    since: Instant,
}

/// The longest a restart is held for build steps, however many batches run them.
const HELD_MAX: Duration = Duration::from_secs(2);

/// How many queued events the loop handles in a row before it looks at its deadlines
/// again, so a stream that never ends still lets batches go.
const QUEUED_AT_ONCE: usize = 1024;

/// The loop's state.
struct App {
    config: Config,
    filter: Filter,
    watcher: Watcher,
    debouncer: Debouncer,
    /// The size of each file a copy may still be filling (see `Step::Created`) when
    /// it was last seen, to tell a copy that goes on without events from one that ended.
    copy_sizes: HashMap<PathBuf, Option<u64>>,
    /// The server's supervisor; `None` when there is no server (a static site only).
    supervisor: Option<Supervisor>,
    browsers: Browsers,
    after_stop: AfterStop,
    /// Changes seen during a restart: one more restart once it is done.
    follow_up: Option<Vec<String>>,
    /// The end of the newest change taken (see [`Debouncer::last_taken`]), until a
    /// restart for it begins.
    changed_at: Option<Instant>,
    /// A restart held after build steps ran: what the steps wrote comes as events of
    /// its own, and goes into the same restart (their input and output both matching
    /// `file_dep` restarted twice).
    held: Option<Held>,
    /// What the build steps' inputs held when they last ran them.
    task_inputs: tasks::Inputs,
    /// What the files the server rewrites as it starts held at their last change (as
    /// the inputs of one step, 0), from the first such write on: see
    /// [`App::rewritten_as_it_was`].
    server_outputs: tasks::Inputs,
    /// The build steps that failed at their last run, shown in open pages.
    task_failures: tasks::Failures,
    /// The server awaiting readiness.
    starting: Option<Starting>,
    /// When the latest server started, and when it was found ready (`None`: not yet):
    /// a change made between the two was made while it started, however late its
    /// batch comes (see [`App::rewritten_as_it_was`]).
    started: Option<(Instant, Option<Instant>)>,
    /// Counts starts; a readiness result for an older one is ignored.
    generation: Arc<AtomicU64>,
    tx: Sender<Event>,
    /// This supervisor's record beside the PID file, for `status`/`restart`/`stop`.
    recorder: Option<Recorder>,
    /// The task file's names: as given, and the file it leads to (`-f alias.toml`, a
    /// link to `reload.toml`, whose saves come as the real file's).
    task_files: Vec<PathBuf>,
    /// A hash of the task file's bytes as `run` began: saved as it was (touched, or
    /// back with the project's folder), it is not said to have changed.
    task_file_read: Option<u64>,
    /// The server's own output files said to restart nothing, each said once.
    told_server_output: HashSet<PathBuf>,
    /// The files said to be rewritten unchanged as the server starts, each said once.
    told_rewritten: HashSet<PathBuf>,
    /// The terminal's settings from the start, put back as each server ends.
    terminal: Option<crate::terminal::Terminal>,
    /// Whether the hint for a server ending with code 0 before it was ready was given
    /// (once: a one-shot command, `run -- pytest`, ends so at every run).
    told_early_end: bool,
    exit: Option<i32>,
}

/// Runs the supervisor until a signal ends it; returns the exit code.
pub fn run(config: Config) -> Result<i32> {
    if config.server.is_none() && config.serve.is_none() && config.proxy.is_none() {
        return Err(Error::Usage("nothing to run: no `server.command`".into()));
    }
    // From here on, a reader that stops reading holds up the relayed output alone.
    crate::console::start();
    // Signals are caught before this supervisor is recorded: a `reloadsup stop` that
    // finds the record at once must find them caught, or SIGTERM kills reloadsup
    // outright and leaves the record behind.
    let (tx, rx) = mpsc::channel();
    crate::signals::spawn(tx.clone())?;
    // The supervisor (with its guard) before the record: if reloadsup is killed from
    // then on, the guard removes the record too.
    let supervisor = config
        .server
        .clone()
        .map(|server| Supervisor::new(server, config.proxy.is_some()));
    let recorder = crate::control::claim_for_run(&config)?;
    let pid_file = recorder.as_ref().map(Recorder::pid_file);
    let code = supervise(config, supervisor, recorder, tx, &rx);
    // The recorder removed the state file (as the run ended, or as an error cut it
    // short: a reload port taken left the lock file behind); then the lock file goes,
    // if nothing took over meanwhile — or when whoever holds it now (a `stop` waiting
    // for this process to end) lets it go.
    // Not when the folder is gone (the project's, moved or deleted): taking the lock
    // would make it again, empty, in the project's place.
    if let Some(pid_file) = pid_file.filter(|file| file.parent().is_some_and(Path::is_dir)) {
        drop(crate::control::state::try_lock(&pid_file));
    }
    code
}

/// Runs the loop for a claimed PID file (`recorder`) until a signal ends it; returns
/// the exit code.
fn supervise(
    config: Config,
    supervisor: Option<Supervisor>,
    recorder: Option<Recorder>,
    tx: Sender<Event>,
    rx: &Receiver<Event>,
) -> Result<i32> {
    let browsers = Browsers::start(&config)?;
    if let (Some(url), true) = (
        browsers.site_url(),
        config.serve.as_ref().is_some_and(|s| s.open),
    ) {
        open_in_browser(&url);
    }
    let mut filter = Filter::new(&config);
    // Before the first build step: what a step leaves running when its shell ends is
    // then re-parented here, where a stop can still find it.
    if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
        report::debug(format!("cannot become a child subreaper: {err}"));
    }
    let mut task_inputs = tasks::Inputs::default();
    let mut task_failures = tasks::Failures::default();
    tasks::run_at_start(
        &config.tasks,
        &config.root,
        supervisor.as_ref().and_then(Supervisor::guard),
        &mut filter,
        &mut task_inputs,
        &mut task_failures,
    );
    browsers.steps_failed(task_failures.summary());
    if let Some(serve) = config.serve.as_ref().filter(|s| !s.root.is_dir()) {
        // Accepted as a folder a build step would make (a mistyped one never is).
        report::warn(format!(
            "`serve.root` folder `{}` does not exist after the build steps ran: every path \
             is a 404 until one makes it",
            serve.root.display()
        ));
    }
    if nothing_watched(&config) {
        report::warn(
            "nothing is watched: no `watch.file_dep`, `reload.assets` or build step names a \
             file, so no change reloads the pages (name the files the server reads: \
             `watch.file_dep = [\"templates/**\"]`)",
        );
    }
    warn_of_literal_files(&config);
    if !browsers.listening() && !config.reload.assets.is_empty() {
        report::warn(
            "`reload.assets` (`--asset`) reload browsers, and none can connect: the \
             LiveReload server is off (`--no-reload`, `reload.enabled = false`) and there \
             is no proxy or site; their changes do nothing",
        );
    }
    let mut notices = Vec::new();
    let watcher =
        Watcher::start(&config, &mut filter, tx.clone(), &mut notices).map_err(Error::Runtime)?;
    notices.iter().for_each(report::warn);
    let folders = match watcher.watched_count() {
        1 => "1 folder".to_string(),
        n => format!("{n} folders"),
    };
    if !crate::signals::stop_requested() {
        // (A stop that came during a build step: reloadsup exits without watching.)
        report::info(match watcher.poll_interval() {
            Some(every) => format!(
                "watching {folders} (polling every {})",
                humantime::format_duration(every)
            ),
            None => format!("watching {folders}"),
        });
    }
    let config_task_file = config.task_file.clone();
    let mut app = App {
        supervisor,
        browsers,
        config,
        filter,
        watcher,
        debouncer: Debouncer::default(),
        copy_sizes: HashMap::new(),
        after_stop: AfterStop::Nothing,
        follow_up: None,
        changed_at: None,
        held: None,
        task_inputs,
        server_outputs: tasks::Inputs::default(),
        task_failures,
        starting: None,
        started: None,
        generation: Arc::new(AtomicU64::new(0)),
        tx,
        recorder,
        task_files: task_file_names(config_task_file.as_deref()),
        task_file_read: config_task_file.as_deref().and_then(tasks::hash_of),
        told_server_output: HashSet::new(),
        told_rewritten: HashSet::new(),
        told_early_end: false,
        terminal: crate::terminal::Terminal::capture(),
        exit: None,
    };
    app.start(Vec::new(), None);
    app.run(rx)
}

impl App {
    fn run(&mut self, rx: &Receiver<Event>) -> Result<i32> {
        loop {
            let now = Instant::now();
            let supervisor = self.supervisor.as_ref().and_then(|s| s.deadline(now));
            let held = self.held.as_ref().map(|held| held.until);
            let deadline = [self.debouncer.deadline(), supervisor, held]
                .into_iter()
                .flatten()
                .min();
            let received = match deadline {
                Some(at) => rx.recv_timeout(at.saturating_duration_since(now)),
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            match received {
                Ok(event) => {
                    self.handle(event);
                    // What came meanwhile is part of the past too: a batch is never
                    // taken while an event from before its deadline waits unread (on a
                    // busy machine, the second half of a rename did, and went as a
                    // change of its own).
                    for event in rx.try_iter().take(QUEUED_AT_ONCE) {
                        self.handle(event);
                    }
                    self.publish_server_group();
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Runtime("the event sources stopped".into()));
                }
            }
            let now = Instant::now();
            if let Some(outcome) = self.supervisor.as_mut().and_then(|s| s.tick(now)) {
                self.on_outcome(outcome);
            }
            self.recheck_copies(now);
            if let Some(mut batch) = self.debouncer.take_due(now) {
                self.changed_at = self.debouncer.last_taken();
                for path in &batch {
                    self.copy_sizes.remove(path);
                }
                // A name made and gone again within the batch (a temp file renamed
                // over the real one) was no change of its own.
                batch.retain(|path| {
                    !(self.debouncer.was_born(path) && std::fs::symlink_metadata(path).is_err())
                });
                if !batch.is_empty() {
                    self.on_batch(batch);
                }
            } else if self.debouncer.deadline().is_none()
                && self.held.as_ref().is_some_and(|held| now >= held.until)
            {
                // Nothing the build steps wrote is pending: the held restart goes.
                if let Some(held) = self.held.take() {
                    self.restart_for(held.restart);
                }
            }
            self.publish_server_group();
            if let Some(code) = self.exit {
                return Ok(code);
            }
        }
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Fs(raw) => {
                self.put_record_back_if_lost(&raw);
                if !raw.paths.is_empty() && raw.paths.iter().all(|p| self.filter.is_own_output(p)) {
                    // Not even a debug line: written to that same file, it would be
                    // another event, without end.
                    return;
                }
                report::debug(format_args!("event {:?} {:?}", raw.kind, raw.paths));
                let mut notices = Vec::new();
                let changes = self.watcher.interpret(&raw, &mut self.filter, &mut notices);
                notices.iter().for_each(report::warn);
                if let Some(interval) = self.watcher.poll_interval() {
                    // Before any change is recorded: polling from the start, or since
                    // it took over from inotify while running.
                    self.debouncer.polling(interval);
                }
                let now = Instant::now();
                let made = self.watcher.take_folders_made();
                if !made.is_empty() {
                    self.debouncer.folders_made(made, now);
                }
                for (path, step) in changes {
                    if path.file_name().is_some_and(|n| n == ".gitignore") {
                        if let Some(dir) = path.parent() {
                            self.filter.reload_gitignore(dir);
                            let mut notices = Vec::new();
                            self.watcher
                                .watch_unignored(dir, &mut self.filter, &mut notices);
                            notices.iter().for_each(report::warn);
                        }
                    }
                    // Filter before debouncing: an ignored temp file that an editor
                    // deletes mid-save must not hold the batch for the grace period.
                    // The task file goes on, for the batch to say it is not re-read. A
                    // birth is no change, only a mark, and is kept whatever the name:
                    // a link to a folder matches no file glob while it is made, but
                    // renamed away it is a folder gone, which does.
                    if step != Step::Born
                        && self.filter.classify(&path).is_ignored()
                        && !self.task_files.contains(&path)
                    {
                        report::debug(format_args!("ignored {}", self.relative(&path)));
                        continue;
                    }
                    // A file a program reading reloadsup's output writes (`| tee
                    // run.log`) would hold each batch for the grace a file being
                    // written gets; its close or a rename (a save by someone else)
                    // still comes through, for the batch to look again.
                    if matches!(step, Step::Partial | Step::Created)
                        && (self.filter.is_piped_output(&path)
                            || self.filter.is_server_output(&path))
                    {
                        continue;
                    }
                    if step != Step::Born
                        && self.debouncer.is_born(&path, now)
                        && std::fs::symlink_metadata(&path).is_err()
                    {
                        // Made in this batch and gone again: a temp file renamed over
                        // the real one, or deleted. No change, and nothing to wait for;
                        // nor is any event of it read after it went (its write and
                        // close, on a busy loop).
                        self.debouncer.born_gone(&path, now);
                        self.copy_sizes.remove(&path);
                        continue;
                    }
                    if step == Step::Created {
                        self.copy_sizes.insert(path.clone(), file_size(&path));
                    }
                    self.debouncer.record(path, step, now);
                }
            }
            Event::WatchError(message) => report::warn(format!("watching: {message}")),
            Event::Signal(SIGCHLD) => {
                let now = Instant::now();
                if self.supervisor.is_none() {
                    // Not a server: reap whatever ended (an `xdg-open`, say).
                    crate::supervisor::reap_strays();
                }
                if let Some(outcome) = self
                    .supervisor
                    .as_mut()
                    .and_then(|s| s.on_child_signal(now))
                {
                    self.on_outcome(outcome);
                }
            }
            Event::Signal(SIGUSR1) => {
                report::info("SIGUSR1: restart requested");
                // Its time to ready counts from now, not from an earlier change.
                self.changed_at = None;
                self.restart(Vec::new());
            }
            Event::Signal(signal @ (SIGINT | SIGTERM | SIGHUP)) => self.shut_down(signal),
            Event::Signal(_) => {}
            Event::Ready(readiness) => self.on_ready(readiness),
        }
    }

    /// A copy in one system call (`cp`'s `copy_file_range`) is reported only once it
    /// returns; one that takes longer than the wait a new file gets goes on growing
    /// without an event. A file whose size moved since it was last seen waits on, so a
    /// copy of seconds is one restart at its end, not one onto half the file and
    /// another at its close.
    fn recheck_copies(&mut self, now: Instant) {
        for path in self.debouncer.copies_to_check(now) {
            let size = file_size(&path);
            let last = self.copy_sizes.insert(path.clone(), size);
            if last.is_some_and(|last| last != size) {
                self.debouncer.record(path, Step::Created, now);
            }
        }
    }

    /// A debounced batch: run the tasks it feeds, then restart if it asks for one.
    fn on_batch(&mut self, batch: Vec<PathBuf>) {
        self.filter.follow_output();
        if let Some(server) = self.supervisor.as_ref().and_then(Supervisor::running) {
            self.filter.follow_server(server.as_raw(), false);
        }
        self.tell_server_output(&batch);
        if let Some(task_file) = self
            .config
            .task_file
            .as_ref()
            .filter(|_| batch.iter().any(|path| self.task_files.contains(path)))
            .filter(|file| {
                tasks::hash_of(file).is_none_or(|hash| Some(hash) != self.task_file_read)
            })
        {
            let what = if task_file.exists() {
                "changed: it is read once, at the start; restart reloadsup to apply it"
            } else {
                "was removed: reloadsup goes on with what it read at the start"
            };
            report::warn(format!("`{}` {what}", self.relative(task_file)));
        }
        // When the batch came: a restart it asks for is held from then, not from the
        // end of the steps it runs (a 1 s step held it a second longer).
        let came = Instant::now();
        // A restart held for what build steps wrote goes with this batch.
        let held = self.held.take();
        let since = held.as_ref().map(|held| held.since);
        let mut restart = held.map(|held| held.restart).unwrap_or_default();
        // The batch's own paths are distinct; only the held ones may come again.
        let held_paths: HashSet<String> = restart.iter().cloned().collect();
        let mut assets = Vec::new();
        let mut tasks = Vec::new();
        // The task file is re-read by no one: restarting on its old settings would only
        // interrupt the server, so it does no more than the warning above.
        let batch_paths: Vec<&PathBuf> = batch
            .iter()
            .filter(|path| {
                !self.task_files.contains(path)
                    && !self.filter.is_piped_output(path)
                    && !self.filter.is_server_output(path)
            })
            .collect();
        // Without a server (a `[serve]` site alone), a "restart" reloads the pages; for
        // a build step's input, whose output reloads them (or swaps a stylesheet, which
        // a reload for the input prevented), it would only come first.
        let serverless = self.supervisor.is_none();
        let compared = batch_paths.len() <= REWRITES_COMPARED;
        for path in batch_paths {
            let verdict = self.filter.classify(path);
            let shown = self.relative(path);
            let feeds_a_step = serverless && !verdict.tasks.is_empty();
            if verdict.restart
                && !feeds_a_step
                && !held_paths.contains(&shown)
                && !self.rewritten_as_it_was(path, compared)
            {
                restart.push(shown.clone());
            }
            if verdict.asset {
                assets.push(shown);
            }
            for task in verdict.tasks {
                // Recorded for every path, also those of a task already to run.
                let changed = self.task_inputs.changed(task, path);
                if changed && !tasks.contains(&task) {
                    tasks.push(task);
                }
            }
        }
        // Classified: a folder that went is forgotten, so that a file or folder of its
        // name made since is itself in later batches.
        for path in &batch {
            self.filter.folder_back(path);
        }
        if !assets.is_empty() {
            report::info(format!("asset changed: {}", report::summary(&assets)));
            if restart.is_empty() {
                self.browsers.reload_assets(&assets);
            }
        }
        // Held for as long as it may be: the restart goes now, not after this batch's
        // steps (a slow step run again and again held it for each run: 4.7 s, not 2);
        // what they write restarts the server once more.
        if !restart.is_empty() && since.is_some_and(|since| came >= since + HELD_MAX) {
            self.restart_for(std::mem::take(&mut restart));
        }
        for &index in &tasks {
            let task = &self.config.tasks[index];
            let guard = self.supervisor.as_ref().and_then(Supervisor::guard);
            let outcome = tasks::run(task, &self.config.root, guard);
            if outcome != tasks::Outcome::Done {
                self.task_inputs.forget(index);
            }
            if self.task_failures.record(index, &outcome) {
                self.browsers.steps_failed(self.task_failures.summary());
            }
        }
        if !tasks.is_empty() {
            self.debouncer.steps_ran();
        }
        if restart.is_empty() {
            return;
        }
        let now = Instant::now();
        let since = since.unwrap_or(came);
        if tasks.is_empty() || now >= since + HELD_MAX {
            self.restart_for(restart);
        } else {
            // What the steps wrote is seen within a poll or two when polling.
            let wait = self
                .watcher
                .poll_interval()
                .map_or(AFTER_STEPS, |interval| interval * 2 + AFTER_STEPS);
            self.held = Some(Held {
                restart,
                until: now + wait,
                since,
            });
        }
    }

    /// Says once of each file of `batch` that the server writes itself that its
    /// changes restart nothing (see `Filter::follow_server`).
    fn tell_server_output(&mut self, batch: &[PathBuf]) {
        for path in batch {
            if self.filter.is_server_output(path) && self.told_server_output.insert(path.clone()) {
                report::warn(format!(
                    "`{}` is written by the server itself: its changes restart nothing \
                     while the server holds it (a file saved in its place does)",
                    self.relative(path)
                ));
            }
        }
    }

    /// Whether `path`, a file that restarts the server, was written while the server
    /// started (before it was ready, within `ready_timeout`) with the bytes it held at
    /// its last change: the server's own build rewriting a watched file as it was (a
    /// `build.rs` that generates a source at each `cargo run` restarted the server at
    /// each start, without end). What such a file holds is kept from its first write
    /// during a start on, and at each change after; a first one restarts the server.
    /// In a batch too large to compare (`compared` false), it is forgotten instead.
    fn rewritten_as_it_was(&mut self, path: &Path, compared: bool) -> bool {
        let starting = self
            .changed_at
            .is_some_and(|at| self.written_while_starting(at));
        if !starting && !self.server_outputs.knows(0, path) {
            return false;
        }
        if !compared {
            self.server_outputs.forget_file(0, path);
            return false;
        }
        let changed = self.server_outputs.changed(0, path);
        // A folder, or a file gone, is no file written (what the file held is kept as
        // nothing, so one put back in its place is new).
        if !starting || changed || !path.is_file() {
            return false;
        }
        if self.told_rewritten.insert(path.to_path_buf()) {
            report::info(format!(
                "`{}` was written as it was while the server started (its build, say): \
                 no restart for that",
                self.relative(path)
            ));
        }
        true
    }

    /// Whether a change at `at` came while the latest server started: after its
    /// start, and before it was found ready (not yet: within its `ready_timeout`). By
    /// the change's own time, not its batch's: a server that writes a file and then
    /// listens at once was found ready before the batch came.
    fn written_while_starting(&self, at: Instant) -> bool {
        let Some((started, ready)) = self.started else {
            return false;
        };
        let timeout = self
            .supervisor
            .as_ref()
            .map_or(Duration::ZERO, |s| s.spec().ready_timeout);
        let until = started + timeout;
        started <= at && at <= ready.map_or(until, |ready| ready.min(until))
    }

    /// The folder the PID and state files live in removed under `run` (`run/` of
    /// `pid_file = "run/app.pid"`, by a `make clean`), while the project's is there:
    /// both files are written again at once, or `status` and `stop` lost the server,
    /// and a `start` beside it was not refused.
    fn put_record_back_if_lost(&self, raw: &notify::Event) {
        let Some(recorder) = &self.recorder else {
            return;
        };
        let removed = matches!(
            raw.kind,
            notify::EventKind::Remove(_)
                | notify::EventKind::Modify(notify::event::ModifyKind::Name(_))
        );
        // The path test first: it looks at the disk only for a folder above the PID
        // file; asking first whether the project's folder is there looked at the disk
        // at every removal (a checkout's thousands).
        if removed
            && raw.paths.iter().any(|path| recorder.lost_with(path))
            && self.config.root.is_dir()
        {
            recorder.put_back();
            if let Some(supervisor) = &self.supervisor {
                supervisor.put_pid_file_back();
            }
        }
    }

    /// Tells the signal thread which process group Ctrl-Z and window-size changes go to
    /// (it acts on them itself, as the loop may be waiting for a build step).
    fn publish_server_group(&self) {
        crate::signals::set_server_group(self.supervisor.as_ref().and_then(Supervisor::group));
    }

    /// Restarts the server for the changes `restart` names.
    fn restart_for(&mut self, restart: Vec<String>) {
        report::info(format!("changed: {}", report::summary(&restart)));
        self.restart(restart);
    }

    fn relative(&self, path: &Path) -> String {
        match path.strip_prefix(&self.config.root) {
            // The project's own folder (gone, say).
            Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
            Ok(rel) => rel.display().to_string(),
            Err(_) => path.display().to_string(),
        }
    }
}

/// Whether no glob names a file to act on: a `[proxy]` alone, with its default of no
/// `file_dep`, before the files are named.
fn nothing_watched(config: &Config) -> bool {
    config.watch.file_dep.is_empty()
        && config.reload.assets.is_empty()
        && config.tasks.iter().all(|task| task.file_dep.is_empty())
}

/// Says of each glob that names a file or folder that is there in parts that glob
/// syntax reads otherwise (`pages/[id].js`) how to name it: read as a glob it matched
/// other files, and saves of that one restarted nothing, with no word why.
fn warn_of_literal_files(config: &Config) {
    let tasks = config.tasks.iter().flat_map(|task| &task.file_dep);
    let patterns = config.watch.file_dep.iter().chain(&config.reload.assets);
    for pattern in patterns.chain(tasks) {
        if let Some(hint) = pattern.literal_hint(&config.root) {
            report::warn(hint);
        }
    }
}

/// The size of the file at `path` now, if it can be read.
fn file_size(path: &Path) -> Option<u64> {
    std::fs::metadata(path).ok().map(|m| m.len())
}

/// The names changes to the task file may come under: its path, and the file a link
/// there leads to.
fn task_file_names(task_file: Option<&Path>) -> Vec<PathBuf> {
    let Some(task_file) = task_file else {
        return Vec::new();
    };
    let mut names = vec![task_file.to_path_buf()];
    if let Ok(real) = task_file.canonicalize() {
        if real != task_file {
            names.push(real);
        }
    }
    names
}

/// Opens `url` with the desktop's default browser, without waiting for it.
fn open_in_browser(url: &str) {
    let mut command = std::process::Command::new("xdg-open");
    crate::limits::as_given(&mut command);
    let opened = command
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Err(err) = opened {
        report::warn(format!("cannot open a browser (`xdg-open {url}`): {err}"));
    }
}
