//! Polling: for file systems where inotify does not work (network mounts, some
//! containers and VMs), when `[watch] poll` asks for it, or when the inotify watch limit
//! is reached.
//!
//! notify's own `PollWatcher` compares modification times in whole seconds, so two saves
//! within one second look like one, and a save within the second of the previous one is
//! missed; hashing contents instead reads every file at every poll. This poller compares
//! what `stat` gives for free: modification time to the nanosecond, size and inode (a
//! rename over the file changes the inode). It polls exactly the folders the watcher
//! chose, so ignored folders cost nothing, and it reports changes as notify events so
//! the rest of the pipeline is the same as with inotify.

use std::collections::HashMap;
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use notify::EventKind;
use notify::event::{CreateKind, DataChange, ModifyKind, RemoveKind};

/// What `stat` says about one entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    mtime_ns: i128,
    size: u64,
    inode: u64,
    is_dir: bool,
}

/// A folder's entries at the last poll.
type Listing = HashMap<PathBuf, Stamp>;

/// The polled folders and their last listings, shared with the polling thread.
type Folders = Arc<Mutex<HashMap<PathBuf, Listing>>>;

/// A polling watcher; the thread stops when this is dropped.
pub struct Poller {
    folders: Folders,
    stop: Arc<AtomicBool>,
}

impl Poller {
    /// Starts polling every `interval`; changes go to `handler` as notify events.
    pub fn new<F>(interval: Duration, handler: F) -> std::io::Result<Poller>
    where
        F: Fn(notify::Event) + Send + 'static,
    {
        let folders: Folders = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (shared, stopped) = (Arc::clone(&folders), Arc::clone(&stop));
        thread::Builder::new().name("poll".into()).spawn(move || {
            while !stopped.load(Ordering::Relaxed) {
                thread::sleep(interval);
                for event in poll_once(&shared) {
                    handler(event);
                }
            }
        })?;
        Ok(Poller { folders, stop })
    }

    /// Starts polling `dir` (not its subfolders). Its current entries are the baseline,
    /// read now, so a change right after this call is seen.
    pub fn watch(&self, dir: &Path) -> std::io::Result<()> {
        let listing = list(dir)?;
        self.folders
            .lock()
            .expect("the poll thread never panics holding the lock")
            .insert(dir.to_path_buf(), listing);
        Ok(())
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Lists every polled folder and returns what changed since the last poll.
fn poll_once(folders: &Folders) -> Vec<notify::Event> {
    let mut events = Vec::new();
    let mut folders = folders.lock().expect("no panics while holding the lock");
    folders.retain(|dir, before| match list(dir) {
        Ok(now) => {
            diff(before, &now, &mut events);
            *before = now;
            true
        }
        Err(_) => {
            // The folder is gone: so is everything it held.
            diff(before, &Listing::new(), &mut events);
            false
        }
    });
    events
}

/// Appends the events that turn `before` into `now`.
fn diff(before: &Listing, now: &Listing, events: &mut Vec<notify::Event>) {
    for (path, stamp) in now {
        let kind = match before.get(path) {
            None if stamp.is_dir => EventKind::Create(CreateKind::Folder),
            None => EventKind::Create(CreateKind::File),
            Some(old) if old != stamp && !stamp.is_dir => {
                EventKind::Modify(ModifyKind::Data(DataChange::Any))
            }
            Some(_) => continue,
        };
        events.push(notify::Event::new(kind).add_path(path.clone()));
    }
    for (path, stamp) in before {
        if !now.contains_key(path) {
            let kind = if stamp.is_dir {
                RemoveKind::Folder
            } else {
                RemoveKind::File
            };
            events.push(notify::Event::new(EventKind::Remove(kind)).add_path(path.clone()));
        }
    }
}

fn list(dir: &Path) -> std::io::Result<Listing> {
    let mut listing = Listing::new();
    for entry in fs::read_dir(dir)?.flatten() {
        let Ok(mut meta) = entry.metadata() else {
            continue;
        };
        if meta.file_type().is_symlink() {
            // Seen as what it leads to, as the watches follow it (a dangling link as
            // itself, so that it is seen to come and go).
            if let Ok(target) = fs::metadata(entry.path()) {
                meta = target;
            }
        }
        listing.insert(
            entry.path(),
            Stamp {
                mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
                size: meta.size(),
                inode: meta.ino(),
                is_dir: meta.is_dir(),
            },
        );
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(mtime_ns: i128, size: u64, inode: u64) -> Stamp {
        Stamp {
            mtime_ns,
            size,
            inode,
            is_dir: false,
        }
    }

    fn kinds(before: &Listing, now: &Listing) -> Vec<(EventKind, PathBuf)> {
        let mut events = Vec::new();
        diff(before, now, &mut events);
        let mut out: Vec<_> = events
            .into_iter()
            .map(|e| (e.kind, e.paths[0].clone()))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    #[test]
    fn sub_second_change_rename_over_create_and_remove() {
        let p = |s: &str| PathBuf::from(s);
        let before = Listing::from([
            (p("a"), stamp(1_000_000_001, 3, 7)),
            (p("b"), stamp(5, 3, 8)),
            (p("c"), stamp(5, 3, 9)),
        ]);
        let now = Listing::from([
            (p("a"), stamp(1_000_000_002, 3, 7)),
            (p("b"), stamp(5, 3, 10)),
            (p("d"), stamp(5, 3, 11)),
        ]);
        let modify = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        assert_eq!(
            kinds(&before, &now),
            vec![
                (modify, p("a")),
                (modify, p("b")),
                (EventKind::Remove(RemoveKind::File), p("c")),
                (EventKind::Create(CreateKind::File), p("d")),
            ]
        );
        assert!(kinds(&now, &now).is_empty());
    }
}
