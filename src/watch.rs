//! Watching folders with `notify`: inotify by default, polling on request or when the
//! inotify watch limit is reached.
//!
//! Folders are watched, never single files, because most editors save by replacing the
//! file (vim renames the old one away, JetBrains and `sed -i` rename a temp file over it,
//! `git checkout` unlinks and recreates): a watch on the file itself would follow the old
//! inode and miss every later save (notify-rs/notify#531). Each folder gets its own
//! non-recursive watch, so ignored folders (`.git`, `node_modules`, ...) are never
//! descended into (watchexec#377), and a folder created later is watched as it appears
//! and then scanned, so files created before its watch existed (`mkdir -p a/b && touch
//! a/b/x`) are not missed.
//!
//! Raw events become `(path, Step)` pairs for the debouncer: a close after writing or a
//! rename into place completes a save; a create, a write, a delete or a rename away is a
//! step of one. "After writing" is checked: inotify reports the close of any file opened
//! for writing, written to or not (SQLite opens its database read-write and closes it
//! unchanged, over and over), so a close counts only when the file was created, written,
//! truncated or had its times set (`touch`) since its last counted close — or, for a
//! write inotify does not report (through a memory map), when its modification time or
//! size moved: since its last counted close, or past the start of watching.
//!
//! A symbolic link to a folder is followed (a package linked into the project, a
//! shared folder): its target is watched under the link's path, so changes made there
//! match the globs as if the files were in the project. Each folder is watched once,
//! under the first path it is found by: inotify gives one watch per folder whatever
//! the path, and a link back up the tree would otherwise be followed forever.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::ops::Bound;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant, SystemTime};

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, CreateKind, ModifyKind, RemoveKind, RenameMode};

use crate::config::Config;
use crate::debounce::Step;
use crate::event::Event;
use crate::filter::Filter;
use crate::inotify_watch::{InotifyWatcher, below};
use crate::poll::Poller;

/// How long after a folder's scan an event of a file it found may still be the scan's
/// echo (see [`Watcher::seen_by_scan`]).
const SCAN_ECHO: Duration = Duration::from_secs(5);

/// How long after a folder went holding nothing of the kind a second report of its
/// removal is still taken for the first one's echo (see [`Watcher::went_empty`]).
const GONE_ECHO: Duration = Duration::from_secs(5);

/// The poll interval used when the inotify limit forces polling and none was configured.
const FALLBACK_POLL: Duration = Duration::from_millis(500);

/// How changes are learnt of: the kernel's watches, or polling.
enum Backend {
    Native(InotifyWatcher),
    Poll(Poller, Duration),
}

/// A folder that must be watched for some glob, whether its subfolders must be too, and
/// whether `.gitignore` may prune them (only for restart globs; see `filter`).
#[derive(Debug, Clone)]
struct Root {
    path: PathBuf,
    recursive: bool,
    gitignore: bool,
}

/// What a folder needs: a watch of its own, and whether its subfolders need one.
#[derive(Debug, Clone, Copy)]
struct Plan {
    recursive: bool,
    gitignore: bool,
}

/// The watches, and the knowledge of which folders need one.
pub struct Watcher {
    backend: Backend,
    roots: Vec<Root>,
    /// The project's folder: links on the way to a glob's folder are looked for below
    /// it (see [`link_homes`]).
    project: PathBuf,
    /// The watched folders, by the path they are watched under, with their identity;
    /// in path order, so the folders below one are found without a look at every other
    /// ([`below`]: `rm -rf` of a tree of 10,000 folders looked at all of them for each).
    watched: BTreeMap<PathBuf, FolderId>,
    /// The watched folders by identity: a folder reached again by another path (a
    /// symbolic link) is not watched twice.
    by_id: HashMap<FolderId, PathBuf>,
    /// The other paths (links) that lead to a watched folder, by the path it is
    /// watched under: a change below it is a change below each of them too.
    aliases: HashMap<PathBuf, Vec<PathBuf>>,
    /// Files changed (created, written, their times set) since their last counted close:
    /// only their close is a save.
    written: HashSet<PathBuf>,
    /// Modification time and size of each file at its last counted close.
    stamps: HashMap<PathBuf, Stamp>,
    /// Files reported by the scan of a new folder, with their stamp then and when: an
    /// event of theirs that comes after the scan (the folder's watch was added while
    /// they were written) and finds them as the scan did reported nothing new.
    scanned: HashMap<PathBuf, (Stamp, Instant)>,
    /// The folders that appeared since [`Watcher::take_folders_made`] was last asked.
    folders_made: Vec<PathBuf>,
    /// The watched folders known to have held a file some glob matches (found by a
    /// scan, or named by an event since): only such a folder's removal is a change.
    held: BTreeSet<PathBuf>,
    /// Those of them known to have held a file that restarts the server: only such a
    /// folder's removal restarts it (one of stylesheets alone reloads browsers).
    held_restart: BTreeSet<PathBuf>,
    /// Folders that went holding nothing of the kind, lately: the removal is reported
    /// twice (by the folder above, and by the folder's own watch), and the second must
    /// be no change either.
    went_empty: HashMap<PathBuf, Instant>,
    /// When watching started: a file last modified before then is unchanged since.
    since: SystemTime,
    tx: Sender<Event>,
}

/// inotify's per-user watch limit (`fs.inotify.max_user_watches`) is reached: the one
/// failure to watch a folder that ends a walk (polling takes over). Any other (a folder
/// that cannot be read) is a notice, and the walk goes on with the folders beside it.
#[derive(Debug)]
pub struct WatchLimit;

impl Watcher {
    /// Starts watching every folder the globs of `config` need. `notices` collects
    /// messages for the user (such as the fall-back to polling).
    pub fn start(
        config: &Config,
        filter: &mut Filter,
        tx: Sender<Event>,
        notices: &mut Vec<String>,
    ) -> Result<Watcher, String> {
        let roots = roots_of(config);
        let backend = match config.watch.poll {
            Some(interval) => poll_backend(&tx, interval)?,
            None => native_backend(&tx).or_else(|err| fallback_backend(&tx, err, notices))?,
        };
        let mut watcher = Watcher {
            backend,
            roots,
            project: config.root.clone(),
            watched: BTreeMap::new(),
            by_id: HashMap::new(),
            aliases: HashMap::new(),
            written: HashSet::new(),
            stamps: HashMap::new(),
            scanned: HashMap::new(),
            folders_made: Vec::new(),
            held: BTreeSet::new(),
            held_restart: BTreeSet::new(),
            went_empty: HashMap::new(),
            since: SystemTime::now(),
            tx,
        };
        if let Err(WatchLimit) = watcher.watch_all(filter, notices) {
            watcher.poll_instead(filter, notices, None)?;
        }
        Ok(watcher)
    }

    /// Falls back to polling every [`FALLBACK_POLL`] once the inotify watch limit is
    /// reached: every folder is polled instead, starting with `new` (a folder that just
    /// appeared, whose files are added to `found` as changes); the rest as they are now.
    fn poll_instead(
        &mut self,
        filter: &mut Filter,
        notices: &mut Vec<String>,
        new: Option<(&Path, &mut Vec<PathBuf>)>,
    ) -> Result<(), String> {
        notices.push(format!(
            "inotify watch limit reached (raise it with `sysctl fs.inotify.max_user_watches=524288`); \
             falling back to polling every {}",
            humantime::format_duration(FALLBACK_POLL)
        ));
        self.backend = poll_backend(&self.tx, FALLBACK_POLL)?;
        self.watched.clear();
        self.by_id.clear();
        self.aliases.clear();
        self.held.clear();
        self.held_restart.clear();
        if let Some((dir, found)) = new {
            found.clear();
            if let Err(WatchLimit) = self.add_tree(dir, filter, found, false, notices) {
                return Err("cannot watch files: the watch limit is reached while polling".into());
            }
        }
        self.watch_all(filter, notices)
            .map_err(|err| format!("cannot watch files: {err:?}"))
    }

    /// How many folders are watched.
    pub fn watched_count(&self) -> usize {
        self.watched.len()
    }

    /// Whether polling is in use, and at which interval.
    pub fn poll_interval(&self) -> Option<Duration> {
        match self.backend {
            Backend::Poll(_, interval) => Some(interval),
            Backend::Native(_) => None,
        }
    }

    fn watch_all(
        &mut self,
        filter: &mut Filter,
        notices: &mut Vec<String>,
    ) -> Result<(), WatchLimit> {
        // Every root's own folders first, then what links lead to (see `add_tree`).
        let mut links = Vec::new();
        let mut starts: Vec<PathBuf> = self
            .roots
            .iter()
            .map(|root| nearest_existing(&root.path))
            .collect();
        starts.extend(
            self.roots
                .iter()
                .flat_map(|root| link_homes(&root.path, &self.project)),
        );
        for start in &starts {
            self.add_folders(start, filter, &mut Vec::new(), true, &mut links, notices)?;
        }
        while let Some(link) = links.pop() {
            self.add_folders(&link, filter, &mut Vec::new(), true, &mut links, notices)?;
        }
        Ok(())
    }

    /// Turns one raw event into the changes it means. Folders that appear are watched
    /// (and their files reported), as the globs require.
    pub fn interpret(
        &mut self,
        event: &notify::Event,
        filter: &mut Filter,
        notices: &mut Vec<String>,
    ) -> Vec<(PathBuf, Step)> {
        let polling = matches!(self.backend, Backend::Poll(..));
        let mut changes = Vec::new();
        if event.need_rescan() {
            notices.push("the kernel's event queue overflowed; restarting to be safe".into());
            changes.push((PathBuf::from("(event queue overflow)"), Step::Complete));
        }
        for (i, path) in event.paths.iter().enumerate() {
            // A data change to a file not changed since its last counted close: the
            // first sign of a save (or of a copy in one call over the file).
            let first_write = !self.written.contains(path);
            if !polling && self.unwatched_folder_changed_mode(&event.kind, path, filter) {
                // One that could not be watched (`chmod 000`) may be readable now:
                // watched from here on. Nothing in it changed, so nothing is reported.
                if let Err(WatchLimit) = self.add_tree(path, filter, &mut Vec::new(), true, notices)
                {
                    if let Err(message) = self.poll_instead(filter, notices, None) {
                        notices.push(message);
                    }
                }
                continue;
            }
            if !polling && self.folder_times_set(&event.kind, path) {
                continue;
            }
            if !polling && self.seen_by_scan(&event.kind, path) {
                // Its close may still end the wait for it in a pending batch.
                if matches!(event.kind, EventKind::Access(AccessKind::Close(_))) {
                    changes.push((path.clone(), Step::Echo));
                }
                continue;
            }
            if !polling && !self.was_written(&event.kind, i, path) {
                continue;
            }
            let step = match step_of(&event.kind, i, polling) {
                Some(Step::Partial)
                    if !polling && awaits_content(&event.kind, path, first_write) =>
                {
                    Step::Created
                }
                Some(Step::Complete) if !polling && closed_empty(&event.kind, path) => {
                    Step::Partial
                }
                Some(step) => step,
                None => continue,
            };
            // A folder gone or made again: a partial step with inotify; with polling,
            // its removal, or another folder under its name (its files are new).
            let gone = step != Step::Complete
                || polling && matches!(event.kind, EventKind::Remove(_) | EventKind::Create(_));
            // A folder that went without ever holding a file some glob matches (a temp
            // folder, `mkdir x && rmdir x`) took nothing with it: no change. Its own
            // watch reports it going once more (deleted or moved itself), which is none
            // either; any other event means the name is something else now.
            let mut went_empty = false;
            if !polling {
                if let Some(at) = self.went_empty.get(path) {
                    if leaves(&event.kind, i)
                        && !self.watched.contains_key(path)
                        && at.elapsed() < GONE_ECHO
                    {
                        continue;
                    }
                    self.went_empty.remove(path);
                }
                // A folder removed that is not watched (gone before its watch could be
                // added, or not needed by any glob) held nothing that was seen.
                if matches!(event.kind, EventKind::Remove(RemoveKind::Folder))
                    && !self.watched.contains_key(path)
                {
                    continue;
                }
            }
            if gone && self.watched.contains_key(path) {
                if matches!(event.kind, EventKind::Create(_)) {
                    // Made again before its removal was seen (events of a folder that
                    // went come on its own watch, and may trail): the old watches on
                    // the name are stale, and the new folder is watched afresh below.
                    self.forget_under(path);
                } else if !polling
                    && leaves(&event.kind, i)
                    && FolderId::of(path) == self.watched.get(path).copied()
                {
                    // The folder watched under this name is there: this reports an
                    // older one's going (its own watch's echo, after a folder of the
                    // name was made and watched at once), already counted.
                    continue;
                } else {
                    went_empty = !polling && !held_below(&self.held, path);
                    let pending = filter.is_gone(path);
                    if went_empty {
                        let now = Instant::now();
                        self.went_empty
                            .retain(|_, at| now.duration_since(*at) < GONE_ECHO);
                        self.went_empty.insert(path.clone(), now);
                    }
                    self.folder_gone(path, filter, notices);
                    if went_empty && !pending {
                        // No change is reported for it: a file that takes its name
                        // later is a file (its changes were taken for the folder's).
                        filter.folder_back(path);
                    }
                }
            } else if !polling {
                self.note_held(path, Some(&event.kind), filter);
            }
            let created = !polling && matches!(event.kind, EventKind::Create(_));
            if created && !std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
                // A new name: if it is gone again when its batch goes (a temp file
                // renamed over the real one, `ln -sfn`'s temporary link), it was no
                // change of its own. Not a folder made: one made and removed a batch
                // later was dropped from that batch (none was taken in between).
                changes.push((path.clone(), Step::Born));
                if !self.aliases.is_empty() {
                    // Born under the names its folder has through links too: the temp
                    // name was listed under a link's (folder watched under both).
                    let aliases = self.also_named(path).into_iter();
                    changes.extend(aliases.map(|alias| (alias, Step::Born)));
                }
            }
            if self.is_new_folder(&event.kind, path, filter) {
                self.folders_made.push(path.clone());
                let renamed_in = matches!(
                    event.kind,
                    EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                );
                if self
                    .watched
                    .get(path)
                    .is_some_and(|id| renamed_in || FolderId::of(path) != Some(*id))
                {
                    // Another folder under a watched name (a link pointed elsewhere,
                    // a folder renamed over an empty one): the old one is no longer
                    // ours, wherever it is now — but for other links that lead to it.
                    // Or the same one back from a move (out of the project and in
                    // again at once): its watches went as it left (`inotify_watch`),
                    // and its leaving was taken for an echo, the folder being there.
                    let others = self.other_names(path);
                    self.drop_watches(path);
                    self.watch_again(&others, filter, notices);
                }
                let mut found = Vec::new();
                if let Err(WatchLimit) = self.add_tree(path, filter, &mut found, false, notices) {
                    if let Err(message) =
                        self.poll_instead(filter, notices, Some((path, &mut found)))
                    {
                        notices.push(message);
                    }
                }
                // A file found by the scan may still be being written (created just
                // before the scan, closed just after, with an event of its own then):
                // a step, so the batch waits for that close instead of going twice.
                // Its stamp as found is what that close is compared with: a close that
                // changed nothing since (one seen late, on a busy machine, after the
                // batch went) is no second save.
                let now = Instant::now();
                self.scanned
                    .retain(|_, (_, at)| now.duration_since(*at) < SCAN_ECHO);
                for file in &found {
                    if let Some(stamp) = Stamp::of(file) {
                        self.stamps.insert(file.clone(), stamp);
                        self.scanned.insert(file.clone(), (stamp, now));
                    }
                }
                // A poll finds files as they are (its next look reports what goes on).
                let found_step = if polling {
                    Step::Complete
                } else {
                    Step::Partial
                };
                // Each found name is new (born) too: one renamed away again before its
                // batch goes (a temp file in a folder just made, or every name under a
                // temporary link `ln -sfn` renames over the real one) was no change.
                changes.extend(
                    found
                        .into_iter()
                        .flat_map(|f| [(f.clone(), Step::Born), (f, found_step)]),
                );
                continue;
            }
            if went_empty {
                crate::report::debug(format_args!(
                    "{} went, holding nothing watched for",
                    path.display()
                ));
                continue;
            }
            if !self.aliases.is_empty() && !filter.classify(path).asset {
                // Named through the links to its folder too, for the globs written for
                // their paths; an asset stays an asset (a reload, not a restart).
                changes.extend(self.also_named(path).into_iter().map(|alias| (alias, step)));
            }
            changes.push((path.clone(), step));
        }
        changes
    }

    /// Watches the folders under `dir` that are wanted now and were not watched: once
    /// `dir/.gitignore` changed, a folder it ignored (never watched, so nothing in it was
    /// ever seen) may be wanted again. Nothing in them changed, so nothing is reported.
    /// (A folder it ignores now keeps its watch; the filter drops its changes.)
    pub fn watch_unignored(&mut self, dir: &Path, filter: &mut Filter, notices: &mut Vec<String>) {
        let mut folders: Vec<PathBuf> = self
            .watched
            .keys()
            .filter(|w| w.starts_with(dir))
            .cloned()
            .collect();
        folders.sort();
        for folder in folders {
            let Ok(entries) = std::fs::read_dir(&folder) else {
                continue;
            };
            for path in entries.flatten().map(|entry| entry.path()) {
                if self.watched.contains_key(&path) || !path.is_dir() || !self.wanted(&path, filter)
                {
                    continue;
                }
                if let Err(WatchLimit) =
                    self.add_tree(&path, filter, &mut Vec::new(), true, notices)
                {
                    if let Err(message) = self.poll_instead(filter, notices, None) {
                        notices.push(message);
                    }
                    return;
                }
            }
        }
    }

    /// Records that the folder of `path` held a file some glob matches, if `path` is
    /// one: not a folder (under `**`, an empty subfolder made a temp folder count).
    /// `kind`: the event that named it; `None` for a file found by a scan.
    fn note_held(&mut self, path: &Path, kind: Option<&EventKind>, filter: &Filter) {
        let Some(dir) = path.parent() else {
            return;
        };
        if self.held_restart.contains(dir) || !self.watched.contains_key(dir) {
            return;
        }
        let folder = kind.is_some_and(|kind| {
            matches!(
                kind,
                EventKind::Create(CreateKind::Folder) | EventKind::Remove(RemoveKind::Folder)
            ) || path.is_dir()
        });
        if folder {
            return;
        }
        let verdict = filter.classify(path);
        if !verdict.is_ignored() {
            self.held.insert(dir.to_path_buf());
        }
        if verdict.restart {
            self.held_restart.insert(dir.to_path_buf());
        }
    }

    /// The folders that appeared (made, moved in) since the last call: a tree may be
    /// being copied in, file by file, and every name in them is new.
    pub fn take_folders_made(&mut self) -> Vec<PathBuf> {
        std::mem::take(&mut self.folders_made)
    }

    /// The other names of `path`: through each link that leads to a folder above it.
    fn also_named(&self, path: &Path) -> Vec<PathBuf> {
        let mut names = Vec::new();
        for folder in path.ancestors().skip(1) {
            let Some(links) = self.aliases.get(folder) else {
                continue;
            };
            let Ok(rest) = path.strip_prefix(folder) else {
                continue;
            };
            // A link removed or pointed elsewhere since no longer names it.
            let id = self.watched.get(folder).copied();
            names.extend(
                links
                    .iter()
                    .filter(|link| FolderId::of(link) == id)
                    .map(|link| link.join(rest)),
            );
        }
        names
    }

    /// A watched folder went away (deleted, or moved): its watches are dropped — one on
    /// a folder moved elsewhere would follow it out of the project — and the nearest
    /// folder still there above it is watched, so that a folder of the same name made
    /// again (a `git checkout` back, `rm -rf src; mkdir src`) is seen and watched.
    fn folder_gone(&mut self, path: &Path, filter: &mut Filter, notices: &mut Vec<String>) {
        let others = self.other_names(path);
        // Known only from events, which polling does not look at this way.
        let restarts =
            matches!(self.backend, Backend::Poll(..)) || held_below(&self.held_restart, path);
        self.drop_watches(path);
        filter.folder_gone(path, restarts);
        self.watch_again(&others, filter, notices);
        // The folder above may be going too (`rm -rf a` is still at `a/b` when `a/b/c`
        // is reported gone): if its watch finds it gone, the next one up is tried.
        let mut above = nearest_existing(path);
        while self.plan(&above).is_some() {
            // At the watch limit, the folder's return goes unseen (as a new folder's
            // would).
            let _ = self.add_tree(&above, filter, &mut Vec::new(), true, notices);
            let Some(parent) = above
                .parent()
                .filter(|_| !self.watched.contains_key(&above))
            else {
                break;
            };
            above = nearest_existing(parent);
        }
    }

    /// Whether `kind` is a data change reported for a folder that is still there: its
    /// times set (`tar x`, `rsync -a` and `cp -a` set every folder's at the
    /// end, as does `touch -d`). That is no change of the folder, whose files have
    /// events of their own; taken for one, it listed the folders as changed, held the
    /// batch for the grace of a path mid-save, and restarted the server by itself.
    fn folder_times_set(&self, kind: &EventKind, path: &Path) -> bool {
        matches!(
            kind,
            EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any)
        ) && match self.watched.get(path) {
            Some(id) => FolderId::of(path) == Some(*id),
            // One not watched (ignored, or no glob goes into it), seen by its
            // parent's watch.
            None => std::fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()),
        }
    }

    /// Whether an event for `path` only echoes what the scan of its new folder already
    /// reported: a create, write or close of a file found by that scan, coming after
    /// it (its folder's watch was added while it was written; on a busy machine after
    /// the batch went) and finding it as the scan did. Any other event, or a file that
    /// changed since, ends the echo.
    fn seen_by_scan(&mut self, kind: &EventKind, path: &Path) -> bool {
        let Some((stamp, _)) = self.scanned.get(path) else {
            return false;
        };
        let echo = matches!(
            kind,
            EventKind::Create(_)
                | EventKind::Modify(
                    ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Metadata(_)
                )
                | EventKind::Access(AccessKind::Close(AccessMode::Write))
        ) && Stamp::of(path) == Some(*stamp);
        if !echo {
            self.scanned.remove(path);
        }
        echo
    }

    /// Keeps [`Watcher::written`] and the stamps up to date with an event for `path`
    /// (the event's path at `index`), and says whether the event may be a change:
    /// `false` for a close of a file that nothing was written to since it was last
    /// closed.
    fn was_written(&mut self, kind: &EventKind, index: usize, path: &Path) -> bool {
        match kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {
                let stamp = Stamp::of(path);
                let changed = self.written.remove(path)
                    || match (self.stamps.get(path), stamp) {
                        (Some(last), Some(now)) => *last != now,
                        (None, Some(now)) => now.modified > self.since,
                        (_, None) => true,
                    };
                if let (true, Some(stamp)) = (changed, stamp) {
                    self.stamps.insert(path.to_path_buf(), stamp);
                }
                changed
            }
            EventKind::Create(CreateKind::Folder) => true,
            EventKind::Create(_)
            | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Metadata(_)) => {
                self.written.insert(path.to_path_buf());
                true
            }
            // Moved in: a rename into place is a whole save, and the file as it lands
            // is what a later unchanged close compares with.
            EventKind::Modify(ModifyKind::Name(mode))
                if *mode == RenameMode::To || (*mode == RenameMode::Both && index == 1) =>
            {
                self.written.remove(path);
                match Stamp::of(path) {
                    Some(stamp) => self.stamps.insert(path.to_path_buf(), stamp),
                    None => self.stamps.remove(path),
                };
                true
            }
            // Gone, or moved away.
            EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_)) => {
                self.written.remove(path);
                self.stamps.remove(path);
                true
            }
            _ => true,
        }
    }

    /// The other names (links from elsewhere) of the folders watched at `path` and below
    /// it: their watch is one with the folder's, so dropping it under `path` loses them
    /// too, unless they are watched again ([`Watcher::watch_again`]).
    fn other_names(&self, path: &Path) -> Vec<PathBuf> {
        below(&self.watched, path)
            .filter_map(|(w, _)| self.aliases.get(w))
            .flatten()
            .filter(|alias| !alias.starts_with(path))
            .cloned()
            .collect()
    }

    /// Watches `names` (from [`Watcher::other_names`]) under their own path, those still
    /// there; nothing in them changed, so nothing is reported.
    fn watch_again(&mut self, names: &[PathBuf], filter: &mut Filter, notices: &mut Vec<String>) {
        for name in names.iter().filter(|name| name.is_dir()) {
            // At the watch limit, that name's changes go unseen (as a new folder's would).
            let _ = self.add_tree(name, filter, &mut Vec::new(), true, notices);
        }
    }

    /// Removes the watches on `path` and below it.
    fn drop_watches(&mut self, path: &Path) {
        let gone = self.forget_under(path);
        if let Backend::Native(watcher) = &mut self.backend {
            for dir in &gone {
                watcher.unwatch(dir);
            }
        }
    }

    /// Drops the bookkeeping of the watches on `path` and below it, and returns their
    /// paths.
    fn forget_under(&mut self, path: &Path) -> Vec<PathBuf> {
        let gone: Vec<PathBuf> = below(&self.watched, path).map(|(w, _)| w.clone()).collect();
        for dir in &gone {
            if let Some(id) = self.watched.remove(dir) {
                self.by_id.remove(&id);
            }
            self.aliases.remove(dir);
            self.held.remove(dir);
            self.held_restart.remove(dir);
        }
        // A link that went away no longer names anything.
        for links in self.aliases.values_mut() {
            links.retain(|link| !link.starts_with(path));
        }
        gone
    }

    /// Whether an event brought a folder the globs need: one created or moved in, or
    /// a symbolic link to a folder (reported as a file) made — and not an ignored one
    /// (`node_modules` made by `npm install` while watching was watched, recursively).
    fn is_new_folder(&self, kind: &EventKind, path: &Path, filter: &Filter) -> bool {
        let maybe_folder = match kind {
            EventKind::Create(CreateKind::Folder) => true,
            EventKind::Create(CreateKind::Any) => path.is_dir(),
            EventKind::Create(CreateKind::File) => path.is_symlink(),
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both)) => path.is_dir(),
            _ => false,
        };
        maybe_folder && self.wanted(path, filter) && path.is_dir()
    }

    /// Whether `path` is a folder a glob wants but that has no watch, and `kind` says its
    /// mode or owner changed: a folder that could not be read when it was walked.
    fn unwatched_folder_changed_mode(
        &self,
        kind: &EventKind,
        path: &Path,
        filter: &Filter,
    ) -> bool {
        matches!(kind, EventKind::Modify(ModifyKind::Metadata(_)))
            && !self.watched.contains_key(path)
            && path.is_dir()
            && self.wanted(path, filter)
    }

    /// Whether the folder `dir` needs a watch: a glob needs it, and it is not ignored
    /// (unless a glob's own folder is in it: a glob written for it wins).
    fn wanted(&self, dir: &Path, filter: &Filter) -> bool {
        let Some(plan) = self.plan(dir) else {
            return false;
        };
        let explicit = self.roots.iter().any(|r| r.path.starts_with(dir));
        explicit || !filter.prune_dir(dir, plan.gitignore)
    }

    /// Whether a folder needs a watch: it holds matches, or it is on the way to a glob's
    /// folder not yet created. `None` when no glob needs it.
    fn plan(&self, dir: &Path) -> Option<Plan> {
        let mut plan: Option<Plan> = None;
        for root in &self.roots {
            let (wanted, recursive) = if dir == root.path {
                (true, root.recursive)
            } else if root.recursive && dir.starts_with(&root.path) {
                (true, true)
            } else {
                (root.path.starts_with(dir), false)
            };
            if wanted {
                let p = plan.get_or_insert(Plan {
                    recursive: false,
                    gitignore: true,
                });
                p.recursive |= recursive;
                p.gitignore &= root.gitignore;
            }
        }
        plan
    }

    /// Watches `dir` and, as planned, the folders below it; `found` collects the files
    /// seen in folders that are new (`initial` is false), `notices` the folders that
    /// cannot be watched (the walk goes on beside them). Links are followed after
    /// every real folder, so a folder reached both ways is watched, and its changes
    /// named, under its real path (where the globs of `reload.assets`, say, expect it).
    fn add_tree(
        &mut self,
        dir: &Path,
        filter: &mut Filter,
        found: &mut Vec<PathBuf>,
        initial: bool,
        notices: &mut Vec<String>,
    ) -> Result<(), WatchLimit> {
        let mut links = Vec::new();
        self.add_folders(dir, filter, found, initial, &mut links, notices)?;
        while let Some(link) = links.pop() {
            self.add_folders(&link, filter, found, initial, &mut links, notices)?;
        }
        Ok(())
    }

    /// [`Watcher::add_tree`] without following links: those that lead to folders it
    /// needs go to `links`.
    fn add_folders(
        &mut self,
        dir: &Path,
        filter: &mut Filter,
        found: &mut Vec<PathBuf>,
        initial: bool,
        links: &mut Vec<PathBuf>,
        notices: &mut Vec<String>,
    ) -> Result<(), WatchLimit> {
        let Some(id) = FolderId::of(dir) else {
            // Gone already: its parent's watch reports its return (for a link, only
            // the link's own changes are seen, not its target's return).
            return Ok(());
        };
        if self.watched.contains_key(dir) {
            return Ok(());
        }
        if let Some(other) = self.by_id.get(&id) {
            if FolderId::of(other) == Some(id) {
                // The same folder, watched already under another path: its changes are
                // named under this one too, for the globs written for it — unless this
                // is a link back up the tree (`loop -> .`), which names nothing new.
                if !dir.starts_with(other) {
                    let aliases = self.aliases.entry(other.clone()).or_default();
                    if !aliases.iter().any(|a| a == dir) {
                        aliases.push(dir.to_path_buf());
                    }
                }
                return Ok(());
            }
            // A folder gone unnoticed whose inode number is in use again.
            let other = other.clone();
            self.watched.remove(&other);
        }
        self.watched.insert(dir.to_path_buf(), id);
        self.by_id.insert(id, dir.to_path_buf());
        filter.add_gitignore(dir);
        let added = match &mut self.backend {
            Backend::Native(w) => w.watch(dir).map_err(|err| {
                if err.raw_os_error() == Some(nix::libc::ENOSPC) {
                    Failed::Limit
                } else if err.kind() == std::io::ErrorKind::NotFound {
                    Failed::Gone
                } else {
                    Failed::Other(format!("cannot watch `{}`: {err}", dir.display()))
                }
            }),
            Backend::Poll(w, _) => w.watch(dir).map_err(|err| match err.kind() {
                std::io::ErrorKind::NotFound => Failed::Gone,
                _ => Failed::Other(format!("cannot poll `{}`: {err}", dir.display())),
            }),
        };
        if let Err(failed) = added {
            self.watched.remove(dir);
            self.by_id.remove(&id);
            return match failed {
                Failed::Limit => Err(WatchLimit),
                Failed::Gone => Ok(()),
                Failed::Other(message) => {
                    notices.push(message);
                    Ok(())
                }
            };
        }
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries.flatten() {
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let path = entry.path();
            // A link is followed when it leads to a folder.
            let link = kind.is_symlink() && path.is_dir();
            if kind.is_dir() || link {
                if !self.wanted(&path, filter) {
                    continue;
                }
                if link {
                    links.push(path);
                } else {
                    self.add_folders(&path, filter, found, initial, links, notices)?;
                }
            } else {
                self.note_held(&path, None, filter);
                if !initial {
                    found.push(path);
                }
            }
        }
        Ok(())
    }
}

/// Whether the watched folder `dir`, or one below it, is in `held`.
fn held_below(held: &BTreeSet<PathBuf>, dir: &Path) -> bool {
    held.range::<Path, _>((Bound::Included(dir), Bound::Unbounded))
        .next()
        .is_some_and(|folder| folder.starts_with(dir))
}

/// Whether an event says the name at `paths[index]` left: removed, or renamed away.
fn leaves(kind: &EventKind, index: usize) -> bool {
    match kind {
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(RenameMode::From)) => true,
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => index == 0,
        _ => false,
    }
}

/// How adding one folder's watch failed.
enum Failed {
    /// The watch limit: the walk ends.
    Limit,
    /// The folder went before its watch: its parent's watch reports its return.
    Gone,
    /// Anything else (no permission to read it): the message says what and where.
    Other(String),
}

/// Whether an event leaves a file that a copy in one system call may be filling
/// (`cp`'s `copy_file_range`, reported only once it returns): a regular file just
/// created (not a link, a FIFO or a hard link to a file that has its content), or one
/// whose data changed for the first time since it was last closed (`cp` over it
/// empties it first; its size by the time this is read says nothing, the copy having
/// gone on meanwhile). A new name whose content was last changed well before now
/// (more than [`COPY_FRESH`]) is no copy under way either: a hard link whose other name
/// went meanwhile (`perl -pi.orig` links the backup, then renames the new file over
/// the original: it waited a second).
fn awaits_content(kind: &EventKind, path: &Path, first_write: bool) -> bool {
    let Ok(metadata) = std::fs::symlink_metadata(path) else {
        return false;
    };
    if !metadata.file_type().is_file() {
        return false;
    }
    match kind {
        EventKind::Create(_) => metadata.nlink() == 1 && written_lately(&metadata),
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => first_write,
        _ => false,
    }
}

/// Whether the event is a file closed empty after writing: most often the first half
/// of a rewrite by two programs (`truncate -s0 f; cat new >> f`, `: > f` then an
/// append), whose second comes after a fork and an exec, often more than the settle
/// later (it was two restarts, the first onto the empty file). It waits as a step
/// does; a file left empty goes a moment later all the same.
fn closed_empty(kind: &EventKind, path: &Path) -> bool {
    matches!(
        kind,
        EventKind::Access(AccessKind::Close(AccessMode::Write))
    ) && std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() == 0)
}

/// How recently a file a copy is filling was last written: a copy writes as it goes.
const COPY_FRESH: Duration = Duration::from_secs(2);

/// Whether the file's content changed within [`COPY_FRESH`] (or its time is unknown,
/// or in the future).
fn written_lately(metadata: &std::fs::Metadata) -> bool {
    metadata
        .modified()
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_none_or(|age| age <= COPY_FRESH)
}

/// The step an event is for the path at `index`, or `None` when it is no change.
fn step_of(kind: &EventKind, index: usize, polling: bool) -> Option<Step> {
    if polling {
        // The poller reports a file once two polls find it the same: a whole change.
        return match kind {
            EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) => {
                Some(Step::Complete)
            }
            _ => None,
        };
    }
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => Some(Step::Complete),
        EventKind::Modify(ModifyKind::Name(RenameMode::To)) => Some(Step::Complete),
        EventKind::Modify(ModifyKind::Name(RenameMode::Both)) => Some(if index == 0 {
            Step::Partial
        } else {
            Step::Complete
        }),
        EventKind::Modify(ModifyKind::Name(_)) => Some(Step::Partial),
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => Some(Step::Partial),
        EventKind::Create(_) | EventKind::Remove(_) => Some(Step::Partial),
        _ => None,
    }
}

/// Whether a raw event can matter at all; the rest (opens, reads) is dropped on
/// notify's thread so it never wakes the app loop. An attribute change is no change by
/// itself, but it makes the file's next close one (`touch`).
pub fn is_relevant(event: &notify::Event) -> bool {
    event.need_rescan()
        || matches!(
            event.kind,
            EventKind::Access(AccessKind::Close(AccessMode::Write))
                | EventKind::Create(_)
                | EventKind::Remove(_)
                | EventKind::Modify(
                    ModifyKind::Name(_)
                        | ModifyKind::Data(_)
                        | ModifyKind::Any
                        | ModifyKind::Metadata(_)
                )
        )
}

fn roots_of(config: &Config) -> Vec<Root> {
    let patterns = config
        .watch
        .file_dep
        .iter()
        .map(|p| (p, true))
        .chain(config.reload.assets.iter().map(|p| (p, false)))
        .chain(
            config
                .tasks
                .iter()
                .flat_map(|t| &t.file_dep)
                .map(|p| (p, false)),
        );
    let mut roots: Vec<Root> = Vec::new();
    for (p, gitignore) in patterns {
        match roots.iter_mut().find(|r| r.path == p.base) {
            Some(root) => {
                root.recursive |= p.recursive;
                root.gitignore &= gitignore;
            }
            None => roots.push(Root {
                path: p.base.clone(),
                recursive: p.recursive,
                gitignore,
            }),
        }
    }
    roots
}

/// What tells folders apart whatever path leads to them: device and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct FolderId {
    device: u64,
    inode: u64,
}

impl FolderId {
    /// The identity of the folder at `path` (links followed), if it is one.
    fn of(path: &Path) -> Option<FolderId> {
        let metadata = std::fs::metadata(path).ok()?;
        metadata.is_dir().then(|| FolderId {
            device: metadata.dev(),
            inode: metadata.ino(),
        })
    }
}

/// A file's modification time and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    modified: SystemTime,
    len: u64,
}

impl Stamp {
    /// The file's stamp now, if it can be read.
    fn of(path: &Path) -> Option<Stamp> {
        let metadata = std::fs::metadata(path).ok()?;
        Some(Stamp {
            modified: metadata.modified().ok()?,
            len: metadata.len(),
        })
    }
}

/// The folders, in the project, that hold a symbolic link on the way to a glob's folder
/// `root` (`linked` in `linked/*.py`, where `linked -> ../outside/lib`): watched too,
/// so that the link pointed elsewhere (`ln -sfn`) is seen. Watched through the link
/// alone, the old target stayed watched under its name, and the new one unseen.
fn link_homes(root: &Path, project: &Path) -> Vec<PathBuf> {
    root.ancestors()
        .take_while(|dir| dir.starts_with(project) && *dir != project)
        .filter(|dir| dir.is_symlink())
        .filter_map(|link| link.parent().map(Path::to_path_buf))
        .collect()
}

fn nearest_existing(path: &Path) -> PathBuf {
    path.ancestors()
        .find(|p| p.is_dir())
        .unwrap_or(Path::new("/"))
        .to_path_buf()
}

fn handler(tx: &Sender<Event>) -> impl Fn(notify::Result<notify::Event>) + Send + 'static + Clone {
    let tx = tx.clone();
    move |result: notify::Result<notify::Event>| match result {
        Ok(event) if !is_relevant(&event) => {}
        Ok(event) => {
            let _ = tx.send(Event::Fs(event));
        }
        Err(err) => {
            let _ = tx.send(Event::WatchError(err.to_string()));
        }
    }
}

fn native_backend(tx: &Sender<Event>) -> std::io::Result<Backend> {
    InotifyWatcher::new(handler(tx)).map(Backend::Native)
}

/// Polling when inotify cannot start for want of an instance: `EMFILE` from
/// `inotify_init1` is the per-user limit on inotify instances (every editor, language
/// server and watcher takes some), or this process's open-file limit. Said as such:
/// "Too many open files" alone pointed at `ulimit -n`, and reloadsup exited. Any other
/// error is one.
fn fallback_backend(
    tx: &Sender<Event>,
    err: std::io::Error,
    notices: &mut Vec<String>,
) -> Result<Backend, String> {
    if err.raw_os_error() != Some(nix::libc::EMFILE) {
        return Err(format!("cannot start inotify: {err}"));
    }
    notices.push(format!(
        "cannot start inotify: the limit of inotify instances is reached (raise it with \
         `sysctl fs.inotify.max_user_instances=512`), or of open files (`ulimit -n`); \
         falling back to polling every {}",
        humantime::format_duration(FALLBACK_POLL)
    ));
    poll_backend(tx, FALLBACK_POLL)
}

fn poll_backend(tx: &Sender<Event>, interval: Duration) -> Result<Backend, String> {
    let handle = handler(tx);
    Poller::new(interval, move |event| handle(Ok(event)))
        .map(|p| Backend::Poll(p, interval))
        .map_err(|err| format!("cannot start polling: {err}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::DataChange;

    /// The folders below one are found by range, and are exactly those a look at every
    /// path finds, whatever names sort between them (`a/b c`, `a/b-c`, `a/b.c`, `a/bc`
    /// sort after `a/b/…` by component, but before it by bytes).
    #[test]
    fn the_folders_below_one_are_those_a_full_look_finds() {
        let names = [
            "/p",
            "/p/a",
            "/p/a/b",
            "/p/a/b/c",
            "/p/a/b/c/d",
            "/p/a/b c",
            "/p/a/b-c",
            "/p/a/b.c",
            "/p/a/bc",
            "/p/a/b/z",
            "/p/a/a",
            "/p/ab",
            "/p/a.b",
            "/q",
        ];
        let map: BTreeMap<PathBuf, ()> = names.iter().map(|n| (PathBuf::from(n), ())).collect();
        let set: BTreeSet<PathBuf> = map.keys().cloned().collect();
        for dir in names.iter().chain(&["/p/a/b/", "/p/a/bb", "/", "/r"]) {
            let dir = Path::new(dir);
            let ranged: Vec<&PathBuf> = below(&map, dir).map(|(p, _)| p).collect();
            let looked: Vec<&PathBuf> = map.keys().filter(|p| p.starts_with(dir)).collect();
            assert_eq!(ranged, looked, "below {dir:?}");
            assert_eq!(
                held_below(&set, dir),
                !looked.is_empty(),
                "held below {dir:?}"
            );
        }
    }

    /// Only a regular file that a copy may still be filling waits for its content: not
    /// a link, a FIFO or a hard link, nor a file emptied and refilled already.
    #[test]
    fn only_files_a_copy_may_be_filling_await_content() {
        let dir = std::env::temp_dir().join(format!("reloadsup-watch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let created = EventKind::Create(CreateKind::File);
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let file = dir.join("new.py");
        std::fs::write(&file, "x = 1\n").unwrap();
        assert!(
            awaits_content(&created, &file, true),
            "a new file, being filled"
        );
        assert!(
            awaits_content(&written, &file, true),
            "a file's first change"
        );
        assert!(
            !awaits_content(&written, &file, false),
            "a file being written"
        );
        let link = dir.join("link.py");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(!awaits_content(&created, &link, true), "a link");
        let hard = dir.join("hard.py");
        std::fs::hard_link(&file, &hard).unwrap();
        assert!(!awaits_content(&created, &hard, true), "a hard link");
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!awaits_content(&created, &fifo, true), "a FIFO");
        let gone = dir.join("gone.py");
        assert!(!awaits_content(&created, &gone, true), "gone already");
        // A hard link whose other name went (`perl -pi.orig`'s backup): its content
        // was written long ago.
        let old = dir.join("app.py.orig");
        std::fs::write(&old, "x = 0\n").unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();
        assert!(!awaits_content(&created, &old, true), "written an hour ago");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The close of a file found by scanning its new folder, coming after the scan and
    /// finding the file as the scan did, is an echo (no second save once the batch
    /// went); once the file changes again, its close is a save as usual.
    #[test]
    fn a_scanned_file_closing_unchanged_is_an_echo() {
        let dir = std::env::temp_dir().join(format!("reloadsup-echo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        let overrides = crate::config::Overrides {
            command: vec!["true".into()],
            no_reload: true,
            ..Default::default()
        };
        let config = crate::config::resolve(None, &dir, &overrides).unwrap();
        let mut filter = Filter::new(&config);
        let (tx, _rx) = std::sync::mpsc::channel();
        let mut watcher = Watcher::start(&config, &mut filter, tx, &mut Vec::new()).unwrap();
        let file = dir.join("new/deep/a.py");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, "x = 1\n").unwrap();
        let mut interpret = |kind: EventKind, path: &Path| {
            let event = notify::Event::new(kind).add_path(path.to_path_buf());
            watcher.interpret(&event, &mut filter, &mut Vec::new())
        };
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let created = interpret(EventKind::Create(CreateKind::Folder), &dir.join("new"));
        assert_eq!(
            created,
            vec![(file.clone(), Step::Born), (file.clone(), Step::Partial)],
            "found by the scan: a new name, and a step"
        );
        assert_eq!(
            interpret(EventKind::Create(CreateKind::File), &file),
            vec![],
            "its creation, seen late"
        );
        assert_eq!(
            interpret(EventKind::Modify(ModifyKind::Any), &file),
            vec![],
            "its write, seen late"
        );
        assert_eq!(interpret(close, &file), vec![(file.clone(), Step::Echo)]);
        std::fs::write(&file, "x = 22\n").unwrap();
        assert_eq!(
            interpret(EventKind::Modify(ModifyKind::Any), &file),
            vec![(file.clone(), Step::Created)],
            "a new save: its first write since the last close"
        );
        assert_eq!(
            interpret(close, &file),
            vec![(file.clone(), Step::Complete)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
