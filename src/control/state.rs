//! The state file and the lock beside the PID file.
//!
//! The PID file holds one number, as the contract says; everything else the
//! `start | stop | restart | status` commands need lives in `PIDFILE.json`:
//! who started the server (a `reloadsup run` supervisor, or `reloadsup start`), when,
//! with which command, whether it is ready, and — for each process — its start time in
//! clock ticks since boot, so a PID that the kernel has since given to an unrelated
//! process is recognised as stale and never signalled.
//!
//! `PIDFILE.lock` is `flock`ed around every check-and-change, so two `start`s at the
//! same moment produce exactly one server.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::procfs;

/// A process, identified by PID and start time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ident {
    /// The PID.
    pub pid: i32,
    /// Its start time, in clock ticks since boot.
    pub start_ticks: u64,
}

impl Ident {
    /// The identity of the living process `pid`, if it exists.
    pub fn of(pid: i32) -> Option<Ident> {
        let stat = procfs::stat(pid)?;
        Some(Ident {
            pid,
            start_ticks: stat.start_ticks,
        })
    }

    /// Whether this very process is still alive (not a zombie, not a recycled PID).
    pub fn is_alive(&self) -> bool {
        procfs::stat(self.pid).is_some_and(|s| !s.is_zombie() && s.start_ticks == self.start_ticks)
    }
}

/// The server, as recorded when it started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerRecord {
    /// The leader, whose PID is also the process group ID.
    pub ident: Ident,
    /// When it started, in seconds since the Unix epoch.
    pub started_at: u64,
    /// The command, as a user would type it.
    pub command: String,
    /// Whether it has been seen ready.
    pub ready: bool,
}

/// Whose state file it is: the PID file it was written beside and the task file that
/// named that PID file. A state file copied along with a project (`cp -r`), or one
/// written for another task file sharing the PID file, names another project's server:
/// it must not be taken for this one's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner {
    /// The PID file, as configured (absolute).
    #[serde(with = "path_text")]
    pub pid_file: PathBuf,
    /// The task file, if the server came from one.
    #[serde(with = "path_text::optional")]
    pub task_file: Option<PathBuf>,
    /// The PID file's folder, as device and inode numbers: the same after the folder is
    /// renamed or moved, another for a copy (missing in older state files).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub folder: Option<[u64; 2]>,
}

impl Owner {
    /// The owner of a state file written now beside `pid_file`, for `task_file`.
    pub fn new(pid_file: &Path, task_file: Option<&Path>) -> Owner {
        Owner {
            pid_file: pid_file.to_path_buf(),
            task_file: task_file.map(Path::to_path_buf),
            folder: pid_file.parent().and_then(file_id),
        }
    }

    /// Whether the state file was written beside `pid_file` before its folder was
    /// renamed or moved (`mv app app2` under a started server): the PID file it names is
    /// gone, and `pid_file`'s folder is the very folder it was written in.
    pub fn moved_to(&self, pid_file: &Path) -> bool {
        fs::symlink_metadata(&self.pid_file).is_err()
            && self.folder.is_some()
            && pid_file.parent().and_then(file_id) == self.folder
    }

    /// Whether the state file was written beside `pid_file` (the same file, however
    /// reached), not copied there from elsewhere.
    pub fn wrote(&self, pid_file: &Path) -> bool {
        same_file(&self.pid_file, pid_file)
    }

    /// The other task file this state file was written for, if not `task_file`.
    pub fn other_task_file(&self, task_file: Option<&Path>) -> Option<&Path> {
        let recorded = self.task_file.as_deref()?;
        match task_file {
            Some(mine) if same_file(recorded, mine) => None,
            _ => Some(recorded),
        }
    }
}

/// A file's or folder's identity: its device and inode numbers, after links.
fn file_id(path: &Path) -> Option<[u64; 2]> {
    use std::os::unix::fs::MetadataExt;
    let metadata = fs::metadata(path).ok()?;
    Some([metadata.dev(), metadata.ino()])
}

/// Whether two paths name the same file, however reached: the same file (device and
/// inode) in the same folder where both exist (a task file `dev.toml` that is a link to
/// `reload.toml`, a project reached through a bind mount; not a hard link in a copy
/// made with `cp -al`), else the same name in the same folder (a PID file not written
/// yet). A path whose folder is gone matches only itself.
fn same_file(a: &Path, b: &Path) -> bool {
    if a == b {
        return true;
    }
    // The file and its folder, after links.
    let identity = |path: &Path| {
        let real = fs::canonicalize(path).ok()?;
        Some((file_id(&real)?, file_id(real.parent()?)?))
    };
    if let (Some(a), Some(b)) = (identity(a), identity(b)) {
        return a == b;
    }
    let folder = |path: &Path| path.parent().and_then(file_id);
    a.file_name() == b.file_name() && folder(a).is_some() && folder(a) == folder(b)
}

/// The whole state file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// Whose it is (missing in state files from before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<Owner>,
    /// The `reloadsup run` supervisor watching, if any.
    pub supervisor: Option<Ident>,
    /// The server, if one was started.
    pub server: Option<ServerRecord>,
    /// How many servers a `run` supervisor has started (or failed to start), so that
    /// `restart` beside it can tell the restarted server from the one before.
    #[serde(default)]
    pub starts: u64,
    /// How the latest server ended by itself, or why it could not start (`the server
    /// (pid 12) exited with code 1`); cleared at each start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// The stop timeout a `run` supervisor stops its servers with, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_timeout_ms: Option<u64>,
    /// The PID namespace of the reloadsup that wrote it (see
    /// [`crate::procfs::pid_namespace`]), whose PIDs it holds; set by [`write()`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid_namespace: Option<u64>,
}

/// The record a `reloadsup run` supervisor keeps in the state file, so `status`,
/// `restart` and `stop` can find it and its server. Removed on drop.
pub struct Recorder {
    pid_file: PathBuf,
    /// The project's folder: while it is there, a missing folder of the state file (a
    /// `pid_file = "run/app.pid"` whose `run/` a `make clean` removed) is made again.
    project: PathBuf,
    state: State,
}

impl Recorder {
    /// Records the calling process as the supervisor.
    /// `stop_timeout` is the one it stops its servers with (the task file's, or
    /// `--stop-timeout`), for `stop` to know how long to wait for it.
    pub fn new(
        pid_file: &Path,
        task_file: Option<&Path>,
        project: &Path,
        stop_timeout: Duration,
    ) -> io::Result<Recorder> {
        let me = Ident::of(std::process::id() as i32)
            .ok_or_else(|| io::Error::other("cannot read this process's start time"))?;
        let recorder = Recorder {
            pid_file: pid_file.to_path_buf(),
            project: project.to_path_buf(),
            state: State {
                owner: Some(Owner::new(pid_file, task_file)),
                supervisor: Some(me),
                stop_timeout_ms: Some(stop_timeout.as_millis().try_into().unwrap_or(u64::MAX)),
                ..State::default()
            },
        };
        write(pid_file, &recorder.state)?;
        Ok(recorder)
    }

    /// The PID file this records beside.
    pub fn pid_file(&self) -> PathBuf {
        self.pid_file.clone()
    }

    /// Whether `removed`, a path gone, is a folder the record lives in (`run/` of
    /// `pid_file = "run/app.pid"`, removed by a `make clean`), now gone with it.
    pub fn lost_with(&self, removed: &Path) -> bool {
        removed != self.pid_file
            && self.pid_file.starts_with(removed)
            && !self.pid_file.parent().is_some_and(Path::is_dir)
    }

    /// Writes the record again, its folder with it (see [`Recorder::lost_with`]).
    pub fn put_back(&self) {
        self.save();
    }

    /// A server started.
    pub fn started(&mut self, pid: i32, command: String) {
        self.state.starts += 1;
        self.state.ended = None;
        self.state.server = Ident::of(pid).map(|ident| ServerRecord {
            ident,
            started_at: now_unix(),
            command,
            ready: false,
        });
        self.save();
    }

    /// The server became ready.
    pub fn ready(&mut self) {
        if let Some(server) = &mut self.state.server {
            server.ready = true;
        }
        self.save();
    }

    /// The server is gone: stopped (`ended` is `None`), or ended by itself, and how.
    pub fn stopped(&mut self, ended: Option<String>) {
        self.state.server = None;
        self.state.ended = ended;
        self.save();
    }

    /// A server could not be started, and why.
    pub fn failed(&mut self, why: String) {
        self.state.starts += 1;
        self.state.server = None;
        self.state.ended = Some(why);
        self.save();
    }

    fn save(&self) {
        if let Some(dir) = self.pid_file.parent().filter(|_| self.project.is_dir()) {
            let _ = fs::create_dir_all(dir);
        }
        match write(&self.pid_file, &self.state) {
            // The folder is gone (the project's, moved or deleted): no one can look
            // for the record there, and `run` says why its server is stopped.
            Err(err) if err.kind() == io::ErrorKind::NotFound => {}
            Err(err) => crate::report::warn(format!(
                "cannot write `{}`: {err}",
                state_path(&self.pid_file).display()
            )),
            Ok(()) => {}
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let _ = remove(&self.pid_file);
    }
}

/// The state file's path for a PID file.
pub fn state_path(pid_file: &Path) -> PathBuf {
    with_suffix(pid_file, ".json")
}

/// The lock file's path for a PID file.
pub fn lock_path(pid_file: &Path) -> PathBuf {
    with_suffix(pid_file, ".lock")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// A path in the state file: a string, or, for a path that is no UTF-8 (Linux allows
/// any bytes but `/` and NUL in a name, and JSON strings hold text only), its bytes as
/// an array of numbers. `run` and `start` in a folder named so failed ("path contains
/// invalid UTF-8 characters") once they had started the server.
mod path_text {
    use std::ffi::OsString;
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::path::{Path, PathBuf};

    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// A path as written: text when it is UTF-8.
    #[derive(Serialize, Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Bytes(Vec<u8>),
    }

    impl Written {
        fn of(path: &Path) -> Written {
            match path.to_str() {
                Some(text) => Written::Text(text.to_string()),
                None => Written::Bytes(path.as_os_str().as_bytes().to_vec()),
            }
        }

        fn path(self) -> PathBuf {
            match self {
                Written::Text(text) => PathBuf::from(text),
                Written::Bytes(bytes) => PathBuf::from(OsString::from_vec(bytes)),
            }
        }
    }

    /// Writes `path` (see the module's note).
    pub fn serialize<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
        Written::of(path).serialize(serializer)
    }

    /// Reads a path written by [`serialize`].
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<PathBuf, D::Error> {
        Written::deserialize(deserializer).map(Written::path)
    }

    /// The same for a path that may be missing (`null`).
    pub mod optional {
        use super::*;

        /// Writes `path`, or `null`.
        pub fn serialize<S: Serializer>(
            path: &Option<PathBuf>,
            serializer: S,
        ) -> Result<S::Ok, S::Error> {
            path.as_deref().map(Written::of).serialize(serializer)
        }

        /// Reads a path or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            deserializer: D,
        ) -> Result<Option<PathBuf>, D::Error> {
            Option::<Written>::deserialize(deserializer).map(|written| written.map(Written::path))
        }
    }
}

/// Reads the state file; a missing or unreadable one is an empty state.
pub fn read(pid_file: &Path) -> State {
    fs::read_to_string(state_path(pid_file))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or_default()
}

/// Writes the state file atomically (a temp file, then a rename). Its folder is not
/// made here: the lock makes it as a command starts, and [`Recorder`] again while the
/// project's folder is there (made after the project went, it would stand in its
/// place).
pub fn write(pid_file: &Path, state: &State) -> io::Result<()> {
    let path = state_path(pid_file);
    let temp = crate::pidfile::temp_path(&path);
    let state = State {
        pid_namespace: procfs::pid_namespace("self"),
        ..state.clone()
    };
    fs::write(
        &temp,
        serde_json::to_vec_pretty(&state).map_err(io::Error::other)?,
    )?;
    fs::rename(&temp, &path).inspect_err(|_| {
        let _ = fs::remove_file(&temp);
    })
}

/// Removes the state file (a missing one is fine).
pub fn remove(pid_file: &Path) -> io::Result<()> {
    match fs::remove_file(state_path(pid_file)) {
        Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
        _ => Ok(()),
    }
}

/// The current time in seconds since the Unix epoch.
pub fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The exclusive lock beside a PID file, held until dropped. When it is dropped with
/// nothing left to guard (no PID file, no state file), the lock file is removed first,
/// so a stopped project is not left with a `reloadsup.pid.lock`.
pub struct Lock {
    _file: Flock<File>,
    pid_file: PathBuf,
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Removed while held: a waiter that opened it before finds, once it has the
        // lock, that the name leads elsewhere (or nowhere), and tries again.
        if !self.pid_file.exists() && !state_path(&self.pid_file).exists() {
            let _ = fs::remove_file(lock_path(&self.pid_file));
        }
        // `_file` is unlocked after this, as the fields are dropped.
    }
}

/// Takes the exclusive lock beside `pid_file`, waiting for another holder to finish.
pub fn lock(pid_file: &Path) -> io::Result<Lock> {
    loop {
        if let Some(lock) = try_lock_with(pid_file, FlockArg::LockExclusive)? {
            return Ok(lock);
        }
    }
}

/// Takes the lock if no one holds it; `None` if someone does (a `stop` waiting for
/// this very process to end, say: waiting for it would deadlock).
pub fn try_lock(pid_file: &Path) -> io::Result<Option<Lock>> {
    match try_lock_with(pid_file, FlockArg::LockExclusiveNonblock) {
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(None),
        other => other,
    }
}

/// One attempt at the lock; `None` when the file it locked was removed meanwhile (by
/// the holder it waited for), which guards nothing.
fn try_lock_with(pid_file: &Path, how: FlockArg) -> io::Result<Option<Lock>> {
    let path = lock_path(pid_file);
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
    {
        // A lock file that exists but may not be written (another user's, a folder
        // mounted read-only) is locked all the same: a lock writes nothing. So `stop`
        // goes on to say what it can or cannot do to the server.
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::PermissionDenied | io::ErrorKind::ReadOnlyFilesystem
            ) =>
        {
            File::open(&path).map_err(|_| err)?
        }
        opened => opened?,
    };
    let file = Flock::lock(file, how).map_err(|(_, errno)| io::Error::from(errno))?;
    let held = file.metadata()?;
    let same =
        fs::metadata(&path).is_ok_and(|now| now.dev() == held.dev() && now.ino() == held.ino());
    Ok(same.then(|| Lock {
        _file: file,
        pid_file: pid_file.to_path_buf(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A holder that removes the lock file (nothing left to guard) while another waits
    /// for it: the waiter ends up holding a lock on the file at the path, not on the
    /// removed one, so a third comer is kept out.
    #[test]
    fn a_lock_file_removed_by_its_holder_is_taken_afresh() {
        let dir = std::env::temp_dir().join(format!("reloadsup-lock-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let pid_file = dir.join("x.pid");
        let first = lock(&pid_file).unwrap();
        let waiting = {
            let pid_file = pid_file.clone();
            std::thread::spawn(move || {
                let held = lock(&pid_file).unwrap();
                assert!(lock_path(&pid_file).exists(), "a lock file at the path");
                assert!(try_lock(&pid_file).unwrap().is_none(), "and it is held");
                drop(held);
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(100));
        drop(first);
        waiting.join().unwrap();
        assert!(!lock_path(&pid_file).exists(), "removed when let go, idle");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn round_trip_and_identity() {
        let dir = std::env::temp_dir().join(format!("reloadsup-state-{}", std::process::id()));
        let pid_file = dir.join("app.pid");
        assert_eq!(read(&pid_file), State::default());
        let me = Ident::of(std::process::id() as i32).unwrap();
        assert!(me.is_alive());
        let recycled = Ident {
            start_ticks: me.start_ticks + 1,
            ..me
        };
        assert!(
            !recycled.is_alive(),
            "same PID, other start time: not our process"
        );
        let state = State {
            supervisor: Some(me),
            server: Some(ServerRecord {
                ident: me,
                started_at: 1,
                command: "x".into(),
                ready: true,
            }),
            ..State::default()
        };
        assert!(write(&pid_file, &state).is_err(), "its folder is not made");
        let held = lock(&pid_file).unwrap();
        write(&pid_file, &state).unwrap();
        let written = State {
            pid_namespace: procfs::pid_namespace("self"),
            ..state
        };
        assert!(
            written.pid_namespace.is_some(),
            "the writer's namespace is recorded"
        );
        assert_eq!(read(&pid_file), written);
        drop(held);
        let _held = lock(&pid_file).unwrap();
        remove(&pid_file).unwrap();
        assert_eq!(read(&pid_file), State::default());
        fs::remove_dir_all(&dir).unwrap();
    }
}
