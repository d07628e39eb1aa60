//! `reloadsup start | stop | restart | status`: the server's lifecycle for build scripts,
//! known only through the PID file (and the state file beside it).
//!
//! `start` detaches the server (its own session, stdin from `/dev/null`, output appended
//! to `log_file`) and returns only once it is ready; `stop` signals its whole process
//! group and waits until it is gone; `restart` is both; `status` tells (exit 3 when not
//! running, the LSB convention). Beside a running `reloadsup run`, they act through that
//! supervisor instead: `restart` asks it (SIGUSR1) so browsers reload too, `stop` stops
//! it. Every check-and-change holds the lock beside the PID file.

mod detached;
pub mod state;

use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::config::{Config, Server};
use crate::error::{EXIT_OK, EXIT_RUNTIME, Error, Result};
use crate::report;
use crate::signals::{self, Interrupts};
use state::{Ident, ServerRecord, State};

/// Exit code of `status` when the server is not running (LSB).
pub const EXIT_NOT_RUNNING: i32 = 3;

/// How long `restart` waits for a supervisor beyond the server's own timeouts.
const SUPERVISOR_GRACE: Duration = Duration::from_secs(10);

/// What `restart` beside `run` allows beyond `ready_timeout` once the new server is
/// seen: `run`'s own check, and the state file's write, lag a little.
const READY_MARGIN: Duration = Duration::from_secs(1);

/// How long `stop` waits for a supervisor beyond the server's own stop timeout before
/// it kills it: enough for it to stop the server (and a build step) itself.
const SUPERVISOR_STOP_GRACE: Duration = Duration::from_secs(5);

/// What the PID file and the state file say runs now.
#[derive(Debug)]
enum Running {
    /// A `reloadsup run` supervisor, with its server if one runs.
    Supervisor {
        supervisor: Ident,
        server: Option<ServerRecord>,
    },
    /// A server started by `reloadsup start`.
    Detached(ServerRecord),
    /// Nothing; `stale` says why a PID file that exists does not count.
    Nothing { stale: Option<String> },
}

/// The server settings and PID file every command here needs.
struct Target<'a> {
    spec: &'a Server,
    pid_file: &'a std::path::Path,
    task_file: Option<&'a std::path::Path>,
    upstream: Option<&'a str>,
}

fn target(config: &Config) -> Result<Target<'_>> {
    let spec = config.server.as_ref().ok_or_else(|| {
        Error::Usage(
            "no `[server]` in the task file: `start`, `stop`, `restart` and `status` drive \
             a server (a `[serve]` site or a `[proxy]` alone runs under `reloadsup run`, and \
             stops there)"
                .into(),
        )
    })?;
    let pid_file = spec.pid_file.as_deref().ok_or_else(|| {
        Error::Usage("`start`, `stop`, `restart` and `status` need a PID file".into())
    })?;
    Ok(Target {
        spec,
        pid_file,
        task_file: config.task_file.as_deref(),
        upstream: config.proxy.as_ref().map(|p| p.upstream.as_str()),
    })
}

/// For `reloadsup run`: refuses when a server or supervisor already runs for this PID
/// file, else records this process as the supervisor. `None` without a PID file.
pub fn claim_for_run(config: &Config) -> Result<Option<state::Recorder>> {
    let Some(spec) = config.server.as_ref() else {
        return Ok(None);
    };
    let Some(pid_file) = spec.pid_file.as_deref() else {
        return Ok(None);
    };
    let _lock = lock(pid_file)?;
    match inspect(pid_file, config.task_file.as_deref(), spec, true)? {
        Running::Supervisor { supervisor, .. } => Err(Error::Runtime(format!(
            "already supervised by `reloadsup run` (pid {})",
            supervisor.pid
        ))),
        Running::Detached(record) => Err(Error::Runtime(format!(
            "already running (pid {}), started by `reloadsup start`; `reloadsup stop` it first",
            record.ident.pid
        ))),
        Running::Nothing { stale } => {
            clear_stale(pid_file, stale);
            state::Recorder::new(
                pid_file,
                config.task_file.as_deref(),
                &config.root,
                spec.stop_timeout,
            )
            .map(Some)
            .map_err(|err| state_write_error(pid_file, err))
        }
    }
}

/// `reloadsup start`.
pub fn start(config: &Config) -> Result<i32> {
    let t = target(config)?;
    let lock = lock(t.pid_file)?;
    match inspect(t.pid_file, t.task_file, t.spec, true)? {
        Running::Supervisor { supervisor, server } => Err(Error::Runtime(format!(
            "already running under `reloadsup run` (supervisor pid {}{})",
            supervisor.pid,
            server
                .map(|s| format!(", server pid {}", s.ident.pid))
                .unwrap_or_default()
        ))),
        Running::Detached(record) => Err(Error::Runtime(format!(
            "already running (pid {})",
            record.ident.pid
        ))),
        Running::Nothing { stale } => {
            clear_stale(t.pid_file, stale);
            if !config.tasks.is_empty() {
                report::warn(
                    "`[[task]]` build steps run only under `reloadsup run`; `start` runs \
                     the server alone (run the steps first if it needs their output)",
                );
            }
            if config.proxy.is_some() {
                report::warn(
                    "`[proxy]` is served only by `reloadsup run`; `start` runs the server \
                     alone (the proxy's `upstream` still decides when it is ready)",
                );
            }
            detached::launch(t.spec, t.pid_file, t.task_file, t.upstream, lock)
        }
    }
}

/// `reloadsup stop`.
pub fn stop(config: &Config) -> Result<i32> {
    let t = target(config)?;
    // Nothing recorded, and no lock to be had (no folder for the PID file yet, one
    // that cannot be written): nothing runs, which is no error for `stop`, and it
    // makes no folder. Any `start` makes the folder and takes the lock first.
    let recorded = t.pid_file.exists() || state::state_path(t.pid_file).exists();
    let folder = t
        .pid_file
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty());
    if !recorded && folder.is_some_and(|dir| !dir.is_dir()) {
        report::info("not running");
        return Ok(EXIT_OK);
    }
    let _lock = match lock(t.pid_file) {
        Ok(lock) => lock,
        Err(_) if !recorded => {
            report::info("not running");
            return Ok(EXIT_OK);
        }
        Err(err) => return Err(err),
    };
    // A PID file found wrong is not written again only to be removed.
    match inspect(t.pid_file, t.task_file, t.spec, false)? {
        Running::Supervisor { supervisor, server } => stop_supervisor(&t, supervisor, server),
        Running::Detached(record) => {
            let interrupts = Interrupts::catch()?;
            stop_detached(&t, &record, &interrupts)?;
            Ok(interrupts.received().map_or(EXIT_OK, signals::exit_code))
        }
        Running::Nothing { stale } => {
            clear_stale(t.pid_file, stale);
            report::info("not running");
            Ok(EXIT_OK)
        }
    }
}

/// Stops a server `start` started, and removes its files; a Ctrl-C, SIGTERM or SIGHUP
/// meanwhile kills it at once (see `detached::stop`).
fn stop_detached(t: &Target<'_>, record: &ServerRecord, interrupts: &Interrupts) -> Result<()> {
    let how = detached::stop(t.spec, record.ident, Some(interrupts))?;
    remove_files(t.pid_file, record.ident.pid);
    report::info(format!(
        "stopped `{}` (pid {}): {how}",
        record.command, record.ident.pid
    ));
    Ok(())
}

/// `reloadsup restart`.
pub fn restart(config: &Config) -> Result<i32> {
    let t = target(config)?;
    let lock = lock(t.pid_file)?;
    match inspect(t.pid_file, t.task_file, t.spec, true)? {
        Running::Supervisor { supervisor, server } => restart_supervised(&t, supervisor, server),
        Running::Detached(record) => {
            let interrupts = Interrupts::catch()?;
            stop_detached(&t, &record, &interrupts)?;
            match interrupts.received() {
                // Interrupted while the old server stopped: no new one.
                Some(signal) => Ok(signals::exit_code(signal)),
                None => detached::launch(t.spec, t.pid_file, t.task_file, t.upstream, lock),
            }
        }
        Running::Nothing { stale } => {
            clear_stale(t.pid_file, stale);
            detached::launch(t.spec, t.pid_file, t.task_file, t.upstream, lock)
        }
    }
}

/// What `status` says of a server's readiness after its uptime (`up`, in seconds):
/// nothing when ready; `not ready yet` while something waits for it (`run`, or a
/// `start` within its `ready_timeout`); and, for a server `start` left behind unready
/// past that (the `start` was killed: a `start` that times out stops its server), that
/// nothing will say when it is.
fn readiness(server: &ServerRecord, supervised: bool, up: u64, ready_timeout: Duration) -> String {
    if server.ready {
        String::new()
    } else if supervised || Duration::from_secs(up) <= ready_timeout + Duration::from_secs(2) {
        ", not ready yet".into()
    } else {
        ", not known to be ready: the `start` that waited for it ended first".into()
    }
}

/// `reloadsup status [--json]`.
pub fn status(config: &Config, json: bool) -> Result<i32> {
    let t = target(config)?;
    let (supervisor, server, stale) = match inspect(t.pid_file, t.task_file, t.spec, false)? {
        Running::Supervisor { supervisor, server } => (Some(supervisor), server, None),
        Running::Detached(record) => (None, Some(record), None),
        Running::Nothing { stale } => (None, None, stale),
    };
    let text = if json {
        format!("{}\n", status_json(supervisor, server.as_ref()))
    } else {
        let mut text = match &server {
            Some(s) => {
                let up = state::now_unix().saturating_sub(s.started_at);
                format!(
                    "running (pid {}, up {}{}): {}\n",
                    s.ident.pid,
                    humantime::format_duration(Duration::from_secs(up)),
                    readiness(s, supervisor.is_some(), up, t.spec.ready_timeout),
                    // One line, as status lines show it: a command over several lines
                    // (a TOML multi-line string) would break `status | head -1`.
                    report::escape_controls(&s.command)
                )
            }
            None => format!(
                "not running{}\n",
                stale.map(|s| format!(" ({s})")).unwrap_or_default()
            ),
        };
        if let Some(s) = server.as_ref().filter(|s| !s.ident.is_alive()) {
            text.push_str(&leader_gone(s.ident.pid));
        }
        if let Some(sup) = supervisor {
            text.push_str(&format!("watched by `reloadsup run` (pid {})\n", sup.pid));
        }
        text
    };
    report::stdout(&text).map_err(|err| Error::io("cannot write to stdout", err))?;
    Ok(if server.is_some() {
        EXIT_OK
    } else {
        EXIT_NOT_RUNNING
    })
}

/// `status`'s line for a server whose leader has ended while the rest of its group
/// serves on: a wrapper (`npm run dev`, `go run .`) killed alone, by a script's `kill
/// $(cat reloadsup.pid)`, dies without passing the signal on, and `running (pid N…)`
/// named a process that was gone.
fn leader_gone(pid: i32) -> String {
    format!(
        "its leader (pid {pid}) has ended; the rest of its process group serves on (stop \
         it with `reloadsup stop`, or signal the group: `kill -- -{pid}`)\n"
    )
}

fn status_json(supervisor: Option<Ident>, server: Option<&ServerRecord>) -> String {
    let started_at = server.map(|s| {
        humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + Duration::from_secs(s.started_at))
            .to_string()
    });
    serde_json::json!({
        "running": server.is_some(),
        "pid": server.map(|s| s.ident.pid),
        "supervisor_pid": supervisor.map(|s| s.pid),
        "started_at": started_at,
        "uptime_secs": server.map(|s| state::now_unix().saturating_sub(s.started_at)),
        "command": server.map(|s| s.command.clone()),
        "ready": server.is_some_and(|s| s.ready),
    })
    .to_string()
}

/// Reads the PID file and the state file, and checks every process they name. A state
/// file copied from another project (written beside another PID file, in another
/// folder) makes the PID file beside it stale;
/// one written for another task file that shares this PID file is an error while its
/// server or supervisor runs: neither command may take the other's server for its own.
/// `repair`: a PID file found wrong is written again (see [`inspect_state`]).
fn inspect(
    pid_file: &std::path::Path,
    task_file: Option<&std::path::Path>,
    spec: &Server,
    repair: bool,
) -> Result<Running> {
    let mut state = state::read(pid_file);
    if let Some(stale) = other_namespace(&state, pid_file)? {
        return Ok(Running::Nothing { stale: Some(stale) });
    }
    if let Some(owner) = state.owner.as_ref().filter(|o| !o.wrote(pid_file)) {
        if moved_here(&state, pid_file) {
            // Its paths are the project's old ones; the rest holds.
            state.owner = None;
        } else if owner.folder.is_some() {
            // Written in another folder, and moved or copied here with the PID file: neither
            // is this project's, whatever the PID file's process looks like (a server
            // working in a folder outside both projects passed for this one's).
            return Ok(Running::Nothing {
                stale: Some(format!(
                    "the PID file was written for `{}` and moved or copied here",
                    owner.pid_file.display()
                )),
            });
        } else {
            state = State::default();
        }
    }
    let other = state
        .owner
        .as_ref()
        .and_then(|o| o.other_task_file(task_file))
        .map(std::path::Path::to_path_buf);
    let running = inspect_state(state, pid_file, spec, repair);
    match (other, &running) {
        (Some(other), Running::Supervisor { supervisor, .. }) => {
            Err(shared_pid_file(pid_file, &other, supervisor.pid))
        }
        (Some(other), Running::Detached(record)) => {
            Err(shared_pid_file(pid_file, &other, record.ident.pid))
        }
        _ => Ok(running),
    }
}

/// A state file written in another PID namespace (a container sharing the project's
/// folder with the host) holds PIDs that mean other processes here: while a process of
/// that namespace can be seen, an error saying to run the command there (a `stop` on
/// the host took the container's live `run` for ended, removed its files, and said
/// "not running"). From the host, which sees every container's processes, one with
/// none left is gone: its records are stale, and this says why. From inside a
/// container (the host's processes are out of sight), or where other users' processes
/// may not be read, it cannot be told: an error, which says how to clear the files if
/// nothing runs. `None` for this namespace's own.
fn other_namespace(state: &State, pid_file: &std::path::Path) -> Result<Option<String>> {
    let Some(theirs) = state.pid_namespace else {
        return Ok(None);
    };
    let ours = crate::procfs::pid_namespace("self");
    if ours.is_none_or(|ours| ours == theirs) {
        return Ok(None);
    }
    let seen = crate::procfs::namespace_in_use(theirs);
    if seen == Some(true) {
        return Err(Error::Runtime(format!(
            "`{}` was written by reloadsup in another PID namespace (a container's), which \
             still runs: its PIDs name other processes here; run the command there",
            pid_file.display()
        )));
    }
    if seen == Some(false) && ours == Some(crate::procfs::INITIAL_PID_NAMESPACE) {
        return Ok(Some(
            "the PID file was written in a container's PID namespace, which has ended".to_string(),
        ));
    }
    Err(Error::Runtime(format!(
        "`{}` was written by reloadsup in another PID namespace (the host's, or a \
         container's), whose processes cannot be seen from here: run the command there; \
         if nothing runs there any more, remove `{}` and `{}`",
        pid_file.display(),
        pid_file.display(),
        state::state_path(pid_file).display()
    )))
}

/// The error for a PID file in use by another task file's server (or supervisor).
fn shared_pid_file(pid_file: &std::path::Path, other: &std::path::Path, pid: i32) -> Error {
    Error::Runtime(format!(
        "`{}` is in use by `{}` (pid {pid}); give each task file its own `server.pid_file`",
        pid_file.display(),
        other.display()
    ))
}

/// [`inspect`] once the state file is known to be this project's.
/// `repair`: the caller holds the PID file's lock and leaves the server running
/// (`start`, `restart`, `run`), so a PID file found wrong is written again; `status`
/// holds no lock, and `stop` removes the file anyway.
fn inspect_state(state: State, pid_file: &std::path::Path, spec: &Server, repair: bool) -> Running {
    if let Some(supervisor) = state.supervisor.filter(Ident::is_alive) {
        return Running::Supervisor {
            supervisor,
            server: state.server.filter(|s| s.ident.is_alive()),
        };
    }
    let Some(pid) = crate::pidfile::read(pid_file) else {
        return match state.server.filter(|s| detached::is_running(s.ident)) {
            // Removed or damaged by hand: the record wins, as below, and the file a
            // script reads (`kill $(cat reloadsup.pid)`) is written again.
            Some(record) => {
                let what = match pid_file.exists() {
                    true => "holds no PID",
                    false => "is gone",
                };
                report::warn(format!(
                    "`{}` {what}, but the server started here (pid {}) still runs and \
                     counts{}",
                    pid_file.display(),
                    record.ident.pid,
                    put_right(pid_file, record.ident.pid, repair)
                ));
                Running::Detached(record)
            }
            // A PID file that holds no PID (damaged, of the default name) with no
            // server running is stale like one naming a process gone: `stop` left it,
            // and with it the lock file, and `start` wrote over it unsaid.
            None => Running::Nothing {
                stale: pid_file
                    .exists()
                    .then(|| "the PID file holds no PID".to_string()),
            },
        };
    };
    match state.server {
        Some(record) if record.ident.pid == pid => {
            return if detached::is_running(record.ident) {
                Running::Detached(record)
            } else {
                // Started by `start` (no supervisor recorded), its output went to the log.
                let log = match state.supervisor {
                    Some(_) => String::new(),
                    None => format!("; its output is in `{}`", spec.log_file.display()),
                };
                Running::Nothing {
                    stale: Some(format!("the server (pid {pid}) has ended{log}")),
                }
            };
        }
        // The PID file names another process than the server recorded, which still
        // runs: the PID file was edited, or written over. The record wins, so that
        // server is neither left running untracked nor joined by a second one.
        Some(record) if detached::is_running(record.ident) => {
            let own = record.ident.pid;
            report::warn(format!(
                "`{}` names pid {pid}, but the server started here is pid {own}, which \
                 still runs and counts{}",
                pid_file.display(),
                put_right(pid_file, own, repair)
            ));
            return Running::Detached(record);
        }
        _ => {}
    }
    // No record of this PID (the state file is gone): count it only if it looks like a
    // server reloadsup started for this project — a process group leader carrying our
    // variable, working in this server's folder.
    match Ident::of(pid) {
        Some(ident) if ident.is_alive() && is_our_server(pid, &spec.cwd) => {
            let server = ServerRecord {
                ident,
                started_at: crate::procfs::stat(pid)
                    .and_then(|stat| crate::procfs::started_at_unix(&stat))
                    .unwrap_or_else(state::now_unix),
                command: "(unknown command)".into(),
                ready: true,
            };
            // A state file damaged under a `run`: the run is found as its parent, or
            // `stop` stopped the server alone, and the run started it again.
            match supervising_run(pid) {
                Some(supervisor) => Running::Supervisor {
                    supervisor,
                    server: Some(server),
                },
                None => Running::Detached(server),
            }
        }
        Some(_) => Running::Nothing {
            stale: Some(format!("stale PID file: pid {pid} is another process")),
        },
        None => Running::Nothing {
            stale: Some(format!("stale PID file: pid {pid} is not running")),
        },
    }
}

/// Writes `pid` to a PID file found wrong, when the caller repairs it (`repair`, see
/// [`inspect_state`]); the end of the warning that says so.
fn put_right(pid_file: &std::path::Path, pid: i32, repair: bool) -> String {
    if !repair {
        return String::new();
    }
    match crate::pidfile::write(pid_file, pid) {
        Ok(()) => "; the PID file is put right".to_string(),
        Err(err) => format!("; cannot put the PID file right: {err}"),
    }
}

/// The `reloadsup run` whose server `pid` is: its parent, when that is this very
/// program (the same file) running `run`.
fn supervising_run(pid: i32) -> Option<Ident> {
    use std::os::unix::fs::MetadataExt;
    let parent = crate::procfs::stat(pid)?.ppid;
    let program = |pid: &str| std::fs::metadata(format!("/proc/{pid}/exe")).ok();
    let (theirs, ours) = (program(&parent.to_string())?, program("self")?);
    let same = theirs.dev() == ours.dev() && theirs.ino() == ours.ino();
    let runs = std::fs::read(format!("/proc/{parent}/cmdline"))
        .ok()?
        .split(|&b| b == 0)
        .any(|arg| arg == b"run");
    (same && runs).then(|| Ident::of(parent)).flatten()
}

/// Whether a state file that names another PID file was written for this project
/// before its folder was renamed or moved (`mv app app2` under a started server), and
/// records a server that still runs (see [`state::Owner::moved_to`]; a copy of the
/// folder is another folder).
fn moved_here(state: &State, pid_file: &std::path::Path) -> bool {
    let (Some(owner), Some(server)) = (&state.owner, &state.server) else {
        return false;
    };
    owner.moved_to(pid_file) && server.ident.is_alive()
}

/// Whether `pid` looks like a server reloadsup started in `dir`: it leads its process
/// group, carries `RELOADSUP_CHANGED`, and works in `dir` or a folder below it (`cd
/// frontend && npm run dev`) that is not another project's (one with a task file of its
/// own, nested in this one), so another project's server, named by a PID file copied
/// or mistyped, is never taken for this one.
fn is_our_server(pid: i32, dir: &std::path::Path) -> bool {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let in_this_project = |cwd: std::path::PathBuf| {
        cwd.starts_with(&dir)
            && !cwd
                .ancestors()
                .take_while(|folder| *folder != dir)
                .any(|folder| folder.join(crate::config::TASK_FILE_NAME).is_file())
    };
    crate::procfs::stat(pid).is_some_and(|s| s.pgid == pid)
        && crate::procfs::has_env(pid, "RELOADSUP_CHANGED")
        && crate::procfs::cwd(pid).is_some_and(in_this_project)
}

fn clear_stale(pid_file: &std::path::Path, stale: Option<String>) {
    if let Some(why) = stale {
        report::warn(format!("{why}; removing `{}`", pid_file.display()));
        let removed = match std::fs::remove_file(pid_file) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => Err(err),
            _ => state::remove(pid_file),
        };
        warn_not_removed(pid_file, removed);
    }
}

/// The error of a state file that could not be written, naming it.
pub(super) fn state_write_error(pid_file: &std::path::Path, err: std::io::Error) -> Error {
    let path = state::state_path(pid_file);
    Error::io(
        format!("cannot write the state file `{}`", path.display()),
        err,
    )
}

/// Removes the PID file (if it still names `pid`) and the state file beside it.
pub(super) fn remove_files(pid_file: &std::path::Path, pid: i32) {
    let removed = crate::pidfile::remove_if_ours(pid_file, pid).and(state::remove(pid_file));
    warn_not_removed(pid_file, removed);
}

/// Says that the PID file or its state file could not be removed (a read-only
/// folder): they stayed without a word, and the next command took the server that
/// was stopped for one that had ended by itself.
fn warn_not_removed(pid_file: &std::path::Path, removed: std::io::Result<()>) {
    if let Err(err) = removed {
        report::warn(format!(
            "cannot remove `{}` or its state file: {err}",
            pid_file.display()
        ));
    }
}

fn lock(pid_file: &std::path::Path) -> Result<state::Lock> {
    state::lock(pid_file).map_err(|err| {
        Error::io(
            format!("cannot lock `{}`", state::lock_path(pid_file).display()),
            err,
        )
    })
}

/// Asks a `reloadsup run` supervisor to stop (it stops its server) and waits for it.
/// One suspended (Ctrl-Z) is continued, as a shell's `kill %1` does, and stops its
/// server the usual way. One that does not stop in time (hung) is killed with SIGKILL,
/// and its server's group with it: the guard would do it, but not while it waits for
/// the lock this holds.
fn stop_supervisor(t: &Target<'_>, supervisor: Ident, server: Option<ServerRecord>) -> Result<i32> {
    let pid = Pid::from_raw(supervisor.pid);
    kill(pid, Signal::SIGTERM).map_err(|err| {
        Error::Runtime(format!(
            "cannot signal `reloadsup run` (pid {}): {err}",
            supervisor.pid
        ))
    })?;
    let _ = kill(pid, Signal::SIGCONT);
    let grace = run_stop_timeout(t) + SUPERVISOR_STOP_GRACE;
    if detached::wait_gone(&[supervisor], Instant::now() + grace) {
        report::info(format!(
            "stopped `reloadsup run` (pid {}) and its server",
            supervisor.pid
        ));
        return Ok(EXIT_OK);
    }
    let _ = kill(pid, Signal::SIGKILL);
    if let Some(server) = server.as_ref().filter(|s| s.ident.is_alive()) {
        crate::supervisor::kill_group(Pid::from_raw(server.ident.pid));
    }
    if !detached::wait_gone(&[supervisor], Instant::now() + SUPERVISOR_GRACE) {
        return Err(Error::Runtime(format!(
            "`reloadsup run` (pid {}) did not stop, even after SIGKILL",
            supervisor.pid
        )));
    }
    if let Some(server) = server {
        let _ = crate::pidfile::remove_if_ours(t.pid_file, server.ident.pid);
    }
    let _ = state::remove(t.pid_file);
    report::warn(format!(
        "`reloadsup run` (pid {}) did not stop within {} of SIGTERM; killed it and its \
         server with SIGKILL",
        supervisor.pid,
        humantime::format_duration(grace)
    ));
    Ok(EXIT_OK)
}

/// The stop timeout a `run` supervisor stops its server with: the one it recorded, if
/// longer than the task file's now (`--stop-timeout`, or the file edited since).
fn run_stop_timeout(t: &Target<'_>) -> Duration {
    let recorded = state::read(t.pid_file)
        .stop_timeout_ms
        .map_or(Duration::ZERO, Duration::from_millis);
    t.spec.stop_timeout.max(recorded)
}

/// Asks a `reloadsup run` supervisor to restart its server (so browsers reload too) and
/// waits until the new server is ready.
fn restart_supervised(t: &Target<'_>, supervisor: Ident, old: Option<ServerRecord>) -> Result<i32> {
    let before = state::read(t.pid_file).starts;
    kill(Pid::from_raw(supervisor.pid), Signal::SIGUSR1).map_err(|err| {
        Error::Runtime(format!(
            "cannot signal `reloadsup run` (pid {}): {err}",
            supervisor.pid
        ))
    })?;
    let began = Instant::now();
    let deadline = began + run_stop_timeout(t) + t.spec.ready_timeout + SUPERVISOR_GRACE;
    let old = old.map(|s| s.ident);
    // When the new server was first seen: `run` gives it `ready_timeout`, and so does
    // this wait (not a further grace meant for the supervisor's own work).
    let mut new_seen: Option<Instant> = None;
    loop {
        let State {
            server,
            starts,
            ended,
            ..
        } = state::read(t.pid_file);
        if server.as_ref().is_some_and(|s| Some(s.ident) != old) {
            new_seen.get_or_insert_with(Instant::now);
        }
        if let Some(new) = server.as_ref().filter(|s| Some(s.ident) != old && s.ready) {
            report::info(format!(
                "restarted by `reloadsup run` (pid {}): new pid {}, ready after {} ms",
                supervisor.pid,
                new.ident.pid,
                began.elapsed().as_millis()
            ));
            return Ok(EXIT_OK);
        }
        // Started since the signal, and gone (or never started) before it was ready.
        if let (true, None, Some(ended)) = (starts > before, &server, ended) {
            return Err(Error::Runtime(format!(
                "the restart failed: {ended} (see `reloadsup run`'s output)"
            )));
        }
        if !supervisor.is_alive() {
            return Err(Error::Runtime(format!(
                "`reloadsup run` (pid {}) exited during the restart",
                supervisor.pid
            )));
        }
        if crate::procfs::is_stopped(supervisor.pid) {
            // Suspended (Ctrl-Z, SIGSTOP): it restarts nothing until continued.
            return Err(Error::Runtime(format!(
                "`reloadsup run` (pid {}) is stopped (Ctrl-Z or SIGSTOP): it restarts its \
                 server once continued (`fg`, or `kill -CONT {}`)",
                supervisor.pid, supervisor.pid
            )));
        }
        let late =
            new_seen.is_some_and(|seen| seen.elapsed() > t.spec.ready_timeout + READY_MARGIN);
        if late || Instant::now() > deadline {
            report::error(match new_seen {
                Some(_) => format!(
                    "the restarted server did not become ready within {}",
                    humantime::format_duration(t.spec.ready_timeout)
                ),
                None => format!(
                    "`reloadsup run` (pid {}) started no new server within {} ms",
                    supervisor.pid,
                    began.elapsed().as_millis()
                ),
            });
            return Ok(EXIT_RUNTIME);
        }
        std::thread::sleep(crate::ready::POLL);
    }
}
