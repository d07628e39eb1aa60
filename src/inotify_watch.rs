//! Folder watches through Linux's inotify, one per folder, with the kernel's events put
//! in `notify`'s terms (the vocabulary `watch` and `poll` share).
//!
//! Why not `notify`'s own inotify watcher: when a watched folder goes, it looks through
//! every watch for those below it, so `rm -rf` of a tree of 10,000 folders took it
//! about 5 s of CPU, long enough for the kernel's event queue to overflow, and the
//! save after it waited for all of that. Here the watches are kept in path order
//! ([`Table`]), so the ones below a folder are found by range. And no `IN_OPEN`: a
//! build that reads every source opened each one under a watch, an event apiece that
//! nothing here uses.
//!
//! A folder renamed away (`IN_MOVED_FROM`) has its watch, and those below it, removed
//! before its events go out: the folder keeps its watches wherever it went, and one
//! renamed within the project is watched again under its new name, where the kernel
//! hands back the same watch for the same folder. A folder deleted loses its watch by
//! itself (`IN_IGNORED`).

use std::collections::{BTreeMap, HashMap};
use std::ffi::OsStr;
use std::io;
use std::ops::Bound;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask, Watches};
use nix::fcntl::OFlag;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use notify::event::{
    AccessKind, AccessMode, CreateKind, DataChange, Flag, MetadataKind, ModifyKind, RemoveKind,
    RenameMode,
};
use notify::{Event, EventKind};

/// What each watch asks the kernel for: everything `watch` turns into changes.
const MASK: WatchMask = WatchMask::ATTRIB
    .union(WatchMask::CREATE)
    .union(WatchMask::DELETE)
    .union(WatchMask::CLOSE_WRITE)
    .union(WatchMask::MODIFY)
    .union(WatchMask::MOVED_FROM)
    .union(WatchMask::MOVED_TO)
    .union(WatchMask::DELETE_SELF)
    .union(WatchMask::MOVE_SELF);

/// How many bytes of events one read takes (a few hundred events).
const BUFFER: usize = 16 * 1024;

/// The watches by descriptor and by path.
#[derive(Default)]
struct Table {
    /// Each watch's path, and whether it is a folder.
    by_wd: HashMap<WatchDescriptor, (PathBuf, bool)>,
    /// Each watched path's watch, in path order: those below a folder come right after
    /// it.
    by_path: BTreeMap<PathBuf, WatchDescriptor>,
}

impl Table {
    /// Records `wd` for `path`; the kernel gives the same watch for the same folder
    /// under another name, which then names it no more.
    fn insert(&mut self, path: PathBuf, wd: WatchDescriptor, is_dir: bool) {
        if let Some((old, _)) = self.by_wd.insert(wd.clone(), (path.clone(), is_dir)) {
            if old != path && self.by_path.get(&old) == Some(&wd) {
                self.by_path.remove(&old);
            }
        }
        self.by_path.insert(path, wd);
    }

    /// Forgets the watch on `path`, returning it.
    fn remove_path(&mut self, path: &Path) -> Option<WatchDescriptor> {
        let wd = self.by_path.remove(path)?;
        if self.by_wd.get(&wd).is_some_and(|(p, _)| p == path) {
            self.by_wd.remove(&wd);
        }
        Some(wd)
    }

    /// Forgets the watch `wd`, which the kernel has removed.
    fn remove_wd(&mut self, wd: &WatchDescriptor) {
        if let Some((path, _)) = self.by_wd.remove(wd) {
            if self.by_path.get(&path) == Some(wd) {
                self.by_path.remove(&path);
            }
        }
    }

    /// Forgets the watches on `dir` and below it, returning them.
    fn remove_below(&mut self, dir: &Path) -> Vec<WatchDescriptor> {
        let paths: Vec<PathBuf> = below(&self.by_path, dir)
            .map(|(path, _)| path.clone())
            .collect();
        paths
            .iter()
            .filter_map(|path| self.remove_path(path))
            .collect()
    }
}

/// The entries of a map by path at `dir` and below it. Paths sort by their components,
/// so these come together, right from `dir` on: found without a look at the others.
pub fn below<'a, V>(
    map: &'a BTreeMap<PathBuf, V>,
    dir: &'a Path,
) -> impl Iterator<Item = (&'a PathBuf, &'a V)> {
    map.range::<Path, _>((Bound::Included(dir), Bound::Unbounded))
        .take_while(move |(path, _)| path.starts_with(dir))
}

/// The inotify instance's watches, with a thread that reads its events and hands each
/// to the handler.
pub struct InotifyWatcher {
    watches: Watches,
    table: Arc<Mutex<Table>>,
    /// Dropped with the watcher: its other end wakes the reading thread, which ends and
    /// closes the instance.
    _stop: OwnedFd,
}

impl InotifyWatcher {
    /// Starts an inotify instance and the thread that reads it; `handler` gets each
    /// event, or the error that ended the reading.
    pub fn new<F>(handler: F) -> io::Result<InotifyWatcher>
    where
        F: Fn(notify::Result<Event>) + Send + 'static,
    {
        let inotify = Inotify::init()?;
        let watches = inotify.watches();
        let table = Arc::new(Mutex::new(Table::default()));
        let (stop_read, stop_write) =
            nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)?;
        let reader = Reader {
            table: Arc::clone(&table),
            watches: watches.clone(),
            rename_from: None,
        };
        thread::Builder::new()
            .name("inotify".into())
            .spawn(move || reader.run(inotify, &stop_read, &handler))?;
        Ok(InotifyWatcher {
            watches,
            table,
            _stop: stop_write,
        })
    }

    /// Watches the folder (or file) `path` itself, not the folders below it.
    pub fn watch(&mut self, path: &Path) -> io::Result<()> {
        let is_dir = path.is_dir();
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let wd = self.watches.add(path, MASK)?;
        table.insert(path.to_path_buf(), wd, is_dir);
        Ok(())
    }

    /// Stops watching `path`; nothing happens if it is not watched (its folder went,
    /// and its watch with it).
    pub fn unwatch(&mut self, path: &Path) {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(wd) = table.remove_path(path) {
            // Already gone with a deleted folder; that is no error.
            let _ = self.watches.remove(wd);
        }
    }
}

/// The reading side: what it needs to name events.
struct Reader {
    table: Arc<Mutex<Table>>,
    watches: Watches,
    /// The last `IN_MOVED_FROM`: its cookie and path, to pair with its `IN_MOVED_TO`.
    rename_from: Option<(u32, PathBuf)>,
}

impl Reader {
    /// Reads `inotify`'s events until `stop` closes (the watcher dropped) or reading
    /// fails.
    fn run<F>(mut self, mut inotify: Inotify, stop: &OwnedFd, handler: &F)
    where
        F: Fn(notify::Result<Event>),
    {
        let mut buffer = vec![0; BUFFER];
        let table = Arc::clone(&self.table);
        loop {
            let inotify_fd = inotify.as_fd();
            let mut fds = [
                PollFd::new(inotify_fd, PollFlags::POLLIN),
                PollFd::new(stop.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(err) => return handler(Err(notify::Error::io(err.into()))),
            }
            if fds[1].revents().is_some_and(|r| !r.is_empty()) {
                return;
            }
            let events = match inotify.read_events(&mut buffer) {
                Ok(events) => events,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => continue,
                Err(err) => return handler(Err(notify::Error::io(err))),
            };
            let mut out = Vec::new();
            {
                let mut table = table.lock().unwrap_or_else(PoisonError::into_inner);
                for event in events {
                    self.translate(&mut table, &event, &mut out);
                }
            }
            out.into_iter().for_each(|event| handler(Ok(event)));
        }
    }

    /// The events `notify`'s inotify watcher would have made of one of the kernel's,
    /// in its order, added to `out`; the table kept up to date with the watches.
    fn translate(
        &mut self,
        table: &mut Table,
        event: &inotify::Event<&OsStr>,
        out: &mut Vec<Event>,
    ) {
        let mask = event.mask;
        if mask.contains(EventMask::Q_OVERFLOW) {
            out.push(Event::new(EventKind::Other).set_flag(Flag::Rescan));
            return;
        }
        let Some((dir, dir_is_folder)) = table.by_wd.get(&event.wd).cloned() else {
            return;
        };
        if mask.contains(EventMask::IGNORED) {
            table.remove_wd(&event.wd);
            return;
        }
        let path = match event.name {
            Some(name) => dir.join(name),
            None => dir,
        };
        let named = |kind: EventKind| Event::new(kind).add_path(path.clone());
        let folder = mask.contains(EventMask::ISDIR);
        if mask.contains(EventMask::MOVED_FROM) {
            for wd in table.remove_below(&path) {
                let _ = self.watches.remove(wd);
            }
            self.rename_from = Some((event.cookie, path.clone()));
            out.push(
                named(EventKind::Modify(ModifyKind::Name(RenameMode::From)))
                    .set_tracker(event.cookie as usize),
            );
        } else if mask.contains(EventMask::MOVED_TO) {
            out.push(
                named(EventKind::Modify(ModifyKind::Name(RenameMode::To)))
                    .set_tracker(event.cookie as usize),
            );
            if let Some((_, from)) = self
                .rename_from
                .take_if(|(cookie, _)| *cookie == event.cookie)
            {
                out.push(
                    Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
                        .set_tracker(event.cookie as usize)
                        .add_path(from)
                        .add_path(path.clone()),
                );
            }
        }
        if mask.contains(EventMask::MOVE_SELF) {
            out.push(named(EventKind::Modify(ModifyKind::Name(RenameMode::From))));
        }
        let removal = |folder: bool| {
            EventKind::Remove(if folder {
                RemoveKind::Folder
            } else {
                RemoveKind::File
            })
        };
        if mask.contains(EventMask::CREATE) {
            let kind = if folder {
                CreateKind::Folder
            } else {
                CreateKind::File
            };
            out.push(named(EventKind::Create(kind)));
        }
        if mask.contains(EventMask::DELETE) {
            // A folder's own watch ends by itself (`IN_IGNORED`).
            out.push(named(removal(folder)));
        }
        if mask.contains(EventMask::DELETE_SELF) {
            out.push(named(removal(dir_is_folder)));
        }
        if mask.contains(EventMask::MODIFY) {
            out.push(named(EventKind::Modify(ModifyKind::Data(DataChange::Any))));
        }
        if mask.contains(EventMask::CLOSE_WRITE) {
            out.push(named(EventKind::Access(AccessKind::Close(
                AccessMode::Write,
            ))));
        }
        if mask.contains(EventMask::ATTRIB) {
            out.push(named(EventKind::Modify(ModifyKind::Metadata(
                MetadataKind::Any,
            ))));
        }
    }
}
