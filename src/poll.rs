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

impl Stamp {
    /// Whether `other` is this entry unchanged: for a folder, the same folder (its
    /// time changes with every file made in it, which its own poll reports).
    fn same(&self, other: &Stamp) -> bool {
        if self.is_dir && other.is_dir {
            self.inode == other.inode
        } else {
            self == other
        }
    }
}

/// A folder's entries, by path.
type Listing = HashMap<PathBuf, Stamp>;

/// One polled folder: its entries as the last poll found them, and as last reported.
/// A file is reported once two polls in a row find it the same: one still being
/// written (a slow copy, a large save in pieces) is reported once, when whole, not at
/// every poll that catches it half-written.
#[derive(Debug, Default)]
struct Polled {
    seen: Listing,
    reported: Listing,
}

impl Polled {
    /// A folder found as `listing`, the baseline.
    fn new(listing: Listing) -> Polled {
        Polled {
            seen: listing.clone(),
            reported: listing,
        }
    }

    /// Takes in the folder as found now (empty if it is gone); appends the events.
    fn update(&mut self, now: Listing, events: &mut Vec<notify::Event>) {
        for (path, stamp) in &now {
            let reported = self.reported.get(path);
            if reported.is_some_and(|old| old.same(stamp)) {
                continue;
            }
            // A folder is reported at once (its files are what wait); a file once it
            // has stopped changing.
            if !stamp.is_dir && self.seen.get(path) != Some(stamp) {
                continue;
            }
            match reported {
                None => {}
                Some(old) if old.is_dir == stamp.is_dir && !stamp.is_dir => {
                    let kind = EventKind::Modify(ModifyKind::Data(DataChange::Any));
                    events.push(notify::Event::new(kind).add_path(path.clone()));
                    self.reported.insert(path.clone(), *stamp);
                    continue;
                }
                // The same name, another folder (moved away and another put there),
                // or a file where a folder was, or the other way round: the old one
                // went, a new one came.
                Some(old) => events.push(removed(path, old)),
            }
            let kind = if stamp.is_dir {
                CreateKind::Folder
            } else {
                CreateKind::File
            };
            events.push(notify::Event::new(EventKind::Create(kind)).add_path(path.clone()));
            self.reported.insert(path.clone(), *stamp);
        }
        self.reported.retain(|path, stamp| {
            let kept = now.contains_key(path);
            if !kept {
                events.push(removed(path, stamp));
            }
            kept
        });
        self.seen = now;
    }
}

/// The event for an entry that went.
fn removed(path: &Path, stamp: &Stamp) -> notify::Event {
    let kind = if stamp.is_dir {
        RemoveKind::Folder
    } else {
        RemoveKind::File
    };
    notify::Event::new(EventKind::Remove(kind)).add_path(path.to_path_buf())
}

/// The polled folders, shared with the polling thread.
type Folders = Arc<Mutex<HashMap<PathBuf, Polled>>>;

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
            .insert(dir.to_path_buf(), Polled::new(listing));
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
    folders.retain(|dir, polled| match list(dir) {
        Ok(now) => {
            polled.update(now, &mut events);
            true
        }
        Err(_) => {
            // The folder is gone: so is everything it held.
            polled.update(Listing::new(), &mut events);
            false
        }
    });
    events
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

    fn folder(inode: u64) -> Stamp {
        Stamp {
            mtime_ns: 1,
            size: 4096,
            inode,
            is_dir: true,
        }
    }

    /// The events of one poll that finds `now`.
    fn poll(polled: &mut Polled, now: &Listing) -> Vec<(EventKind, PathBuf)> {
        let mut events = Vec::new();
        polled.update(now.clone(), &mut events);
        let mut out: Vec<_> = events
            .into_iter()
            .map(|e| (e.kind, e.paths[0].clone()))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        out
    }

    const MODIFY: EventKind = EventKind::Modify(ModifyKind::Data(DataChange::Any));

    #[test]
    fn sub_second_change_rename_over_create_and_remove_once_settled() {
        let p = |s: &str| PathBuf::from(s);
        let mut polled = Polled::new(Listing::from([
            (p("a"), stamp(1_000_000_001, 3, 7)),
            (p("b"), stamp(5, 3, 8)),
            (p("c"), stamp(5, 3, 9)),
        ]));
        let now = Listing::from([
            (p("a"), stamp(1_000_000_002, 3, 7)),
            (p("b"), stamp(5, 3, 10)),
            (p("d"), stamp(5, 3, 11)),
        ]);
        // A removal is whole at once; the rest waits for a poll that finds it the same.
        assert_eq!(
            poll(&mut polled, &now),
            vec![(EventKind::Remove(RemoveKind::File), p("c"))]
        );
        assert_eq!(
            poll(&mut polled, &now),
            vec![
                (MODIFY, p("a")),
                (MODIFY, p("b")),
                (EventKind::Create(CreateKind::File), p("d")),
            ]
        );
        assert!(poll(&mut polled, &now).is_empty());
    }

    #[test]
    fn a_file_still_growing_is_reported_once_whole() {
        let p = PathBuf::from("big");
        let mut polled = Polled::new(Listing::from([(p.clone(), stamp(1, 0, 7))]));
        for size in [200, 400, 600, 800] {
            let now = Listing::from([(p.clone(), stamp(i128::from(size), size, 7))]);
            assert!(poll(&mut polled, &now).is_empty(), "at {size}");
        }
        let whole = Listing::from([(p.clone(), stamp(800, 800, 7))]);
        assert_eq!(poll(&mut polled, &whole), vec![(MODIFY, p.clone())]);
        assert!(poll(&mut polled, &whole).is_empty());
    }

    #[test]
    fn a_folder_is_reported_at_once_and_so_is_a_change_of_kind() {
        let p = |s: &str| PathBuf::from(s);
        let mut polled = Polled::new(Listing::from([(p("thing"), stamp(1, 3, 7))]));
        // A file replaced by a folder: the file went, a folder came.
        let now = Listing::from([(p("thing"), folder(8)), (p("new"), folder(9))]);
        let mut events = poll(&mut polled, &now);
        events.sort_by_key(|(kind, path)| (path.clone(), format!("{kind:?}")));
        assert_eq!(
            events,
            vec![
                (EventKind::Create(CreateKind::Folder), p("new")),
                (EventKind::Create(CreateKind::Folder), p("thing")),
                (EventKind::Remove(RemoveKind::File), p("thing")),
            ]
        );
        // Files made in a folder change its time, not the folder.
        let mut busier = folder(8);
        busier.mtime_ns = 99;
        let now = Listing::from([(p("thing"), busier), (p("new"), folder(9))]);
        assert!(poll(&mut polled, &now).is_empty());
        // Another folder under the same name: the old one went.
        let now = Listing::from([(p("thing"), folder(10)), (p("new"), folder(9))]);
        let mut events = poll(&mut polled, &now);
        events.sort_by_key(|(kind, _)| format!("{kind:?}"));
        assert_eq!(
            events,
            vec![
                (EventKind::Create(CreateKind::Folder), p("thing")),
                (EventKind::Remove(RemoveKind::Folder), p("thing")),
            ]
        );
    }
}
