//! A server that outlives the command that started it: launched in its own session by
//! `reloadsup start`, stopped by a later `reloadsup stop` that is not its parent.
//!
//! The stopper cannot `waitpid` a process it did not start, so "gone" is read from
//! `/proc`: a process that no longer exists, that is a zombie (its parent, often init,
//! has not reaped it yet), or whose PID now belongs to a process with another start
//! time.

use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use regex::Regex;

use super::state::{self, Ident, ServerRecord, State};
use crate::config::{CommandSpec, Ready, Server};
use crate::error::{EXIT_OK, EXIT_RUNTIME, Error, Result};
use crate::ready::{self, Check, LogCursor};
use crate::report;
use crate::signals::Interrupts;
use crate::supervisor::spawn::{self, Mode};

/// How long to wait after SIGKILL before giving up.
const KILL_WAIT: Duration = Duration::from_secs(5);

/// How often `start` looks for the server's own listening port when another program
/// answered its readiness check (a read of `/proc`).
const CONFIRM_POLL: Duration = Duration::from_millis(10);

/// How many lines of the log file to show when the server fails to start.
const LOG_TAIL: usize = 20;

/// Starts the server detached, records it, and waits until it is ready. On failure it
/// stops what it started, removes the PID and state files, and prints the log's tail.
///
/// When something already accepts connections where the readiness check connects, it
/// warns (as `run` does), and a passed check counts only once the server's own process
/// group listens on that port. In every case the server must still run once the check
/// has passed: a server that crashed (say, on `EADDRINUSE`) while another program
/// answered for it is a failed start.
///
/// `lock` (the caller's, on the PID file) is held until the server is recorded, then
/// let go while it gets ready: a `stop` or `restart` meanwhile stops it at once rather
/// than wait out `ready_timeout` for the lock. Whatever this start writes or removes
/// after that, it does under the lock again, and only while the state file still
/// names its server.
pub fn launch(
    spec: &Server,
    pid_file: &Path,
    task_file: Option<&Path>,
    upstream: Option<&str>,
    lock: state::Lock,
) -> Result<i32> {
    readable_log(spec)?;
    let made_log = !spec.log_file.exists();
    let log = open_log(&spec.log_file)?;
    let offset = log.metadata().map(|m| m.len()).unwrap_or(0);
    let taken = ready::warn_if_taken(spec.ready.as_ref(), upstream);
    let interrupts = Interrupts::catch()?;
    let began = Instant::now();
    let spawned = spawn::spawn(spec, "", Mode::Detached { log }).map_err(|err| {
        // A server that could not even start wrote nothing: no empty log left behind.
        if made_log && fs::metadata(&spec.log_file).is_ok_and(|m| m.len() == 0) {
            let _ = fs::remove_file(&spec.log_file);
        }
        Error::Runtime(spawn::start_error(spec, &err))
    })?;
    let pid = spawned.pid;
    let ident = Ident::of(pid.as_raw()).unwrap_or(Ident {
        pid: pid.as_raw(),
        start_ticks: 0,
    });
    let mut record = ServerRecord {
        ident,
        started_at: state::now_unix(),
        command: spec.command.display(),
        ready: false,
    };
    if let Err(err) = record_server(pid_file, task_file, &record) {
        return Err(abandon(spec, pid_file, &record, err));
    }
    let check = match check_for(spec, upstream, pid, offset) {
        Ok(check) => check,
        Err(err) => return Err(abandon(spec, pid_file, &record, err)),
    };
    drop(lock);
    let mut watch = Watch {
        ident,
        ended: None,
        interrupts,
    };
    let deadline = began + spec.ready_timeout;
    let mut misplaced = ready::Misplaced::new(
        ready::elsewhere_reader(spec.ready.as_ref(), upstream, pid),
        began,
    );
    let mut waited = check.wait(began, spec.ready_timeout, || {
        if let Some(elsewhere) = misplaced.settled(Instant::now()) {
            report::warn(ready::elsewhere_warning(&elsewhere, spec.ready_timeout));
        }
        watch.interrupted().is_some() || watch.gone()
    });
    if let (Ok(_), Some(addr)) = (waited, taken) {
        waited = Ok(confirm_own_port(&mut watch, addr, deadline, began));
    }
    if let Some(signal) = watch.interrupted() {
        // As on a timeout, but the exit code says which signal it was.
        let how = match stop(spec, ident, None) {
            Ok(_) => "stopped it".to_string(),
            Err(err) => format!("cannot stop it: {err}"),
        };
        forget(pid_file, ident);
        let name = Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.to_string());
        report::error(format!(
            "`{}` (pid {pid}): interrupted by {name} before it was ready; {how}",
            record.command
        ));
        return Ok(crate::signals::exit_code(signal));
    }
    // `by_itself`: the leader failed with a code of its own, which no stop signal
    // gives; a `stop` that found it a zombie (not reaped yet) removed the files all the
    // same, and the failure is still this start's to report.
    let fail = |why: String, by_itself: bool| {
        let _ = stop(spec, ident, None);
        if !forget(pid_file, ident) && !by_itself {
            return Ok(stopped_meanwhile(&record, pid_file, spec.ready_timeout));
        }
        report::error(format!("`{}` (pid {pid}) {why}", spec.command.display()));
        print_tail(&spec.log_file, offset);
        Ok(EXIT_RUNTIME)
    };
    let Ok(waited) = waited else {
        return if watch.gone() {
            // Its group is gone; anything it left outside the group goes too.
            let how = watch.how(&spec.command);
            let hint = crate::supervisor::early_end_hint(&how);
            fail(format!("{how} before it was ready{hint}"), watch.exited())
        } else {
            let why = ready::listening_elsewhere(spec.ready.as_ref(), upstream, pid)
                .unwrap_or_else(|| ready::awaited(spec.ready.as_ref(), upstream));
            fail(
                format!(
                    "was not ready within {} (`server.ready_timeout`){why}; stopped it",
                    humantime::format_duration(spec.ready_timeout)
                ),
                false,
            )
        };
    };
    // The check passed: the server must still run (a crash just after it, or while
    // another program answered for it, is not a start).
    if watch.gone() {
        let hint = taken
            .map(|addr| {
                format!(": something else already listens on {addr} (a server left running?)")
            })
            .unwrap_or_default();
        return fail(
            format!(
                "{} although its ready check passed{hint}",
                watch.how(&spec.command)
            ),
            watch.exited(),
        );
    }
    record.ready = true;
    let Some(_lock) = still_ours(pid_file, ident) else {
        let _ = stop(spec, ident, None);
        return Ok(stopped_meanwhile(&record, pid_file, spec.ready_timeout));
    };
    if let Err(err) = record_server(pid_file, task_file, &record) {
        return Err(abandon(spec, pid_file, &record, err));
    }
    report::good(format!(
        "started `{}` (pid {pid}); ready in {} ms",
        record.command,
        waited.as_millis()
    ));
    Ok(EXIT_OK)
}

/// The lock on `pid_file`, if the state file still names the server `ident` led (no
/// `stop` or `restart` has taken it over since `launch` let the lock go).
fn still_ours(pid_file: &Path, ident: Ident) -> Option<state::Lock> {
    let lock = state::lock(pid_file).ok()?;
    let ours = state::read(pid_file)
        .server
        .is_some_and(|server| server.ident == ident);
    ours.then_some(lock)
}

/// Removes the PID and state files of the server `ident` led, if they still name it;
/// whether they did.
fn forget(pid_file: &Path, ident: Ident) -> bool {
    let Some(_lock) = still_ours(pid_file, ident) else {
        return false;
    };
    super::remove_files(pid_file, ident.pid);
    true
}

/// Another command stopped the server before it was ready. When that was a `restart`
/// (whose server is recorded once the lock is free again), this start waits for that
/// server to be ready as for its own, for up to `timeout`, and succeeds with it: what
/// both asked for, a fresh server that is ready, is there (two `restart`s at once, from
/// `make -j`, failed one of them). After a `stop`, it says so and fails. Returns the
/// exit code.
fn stopped_meanwhile(record: &ServerRecord, pid_file: &Path, timeout: Duration) -> i32 {
    let deadline = Instant::now() + timeout;
    // The replacing command records its server before it lets the lock go.
    drop(state::lock(pid_file));
    loop {
        match state::read(pid_file).server {
            Some(next) if next.ident != record.ident && next.ident.is_alive() => {
                if next.ready {
                    report::good(format!(
                        "`{}` (pid {}) was replaced by another command's server (pid {}), \
                         which is ready",
                        record.command, record.ident.pid, next.ident.pid
                    ));
                    return EXIT_OK;
                }
            }
            _ => break,
        }
        if Instant::now() >= deadline {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    report::error(format!(
        "`{}` (pid {}) was stopped by another command (`reloadsup stop` or `restart`) \
         before it was ready",
        record.command, record.ident.pid
    ));
    EXIT_RUNTIME
}

/// The server `launch` started, watched while it waits.
struct Watch {
    ident: Ident,
    /// How the leader (our child until `launch` returns) ended, once it has.
    ended: Option<WaitStatus>,
    /// SIGINT, SIGTERM or SIGHUP to `start` itself.
    interrupts: Interrupts,
}

impl Watch {
    /// The signal that interrupted `start`, if one did.
    fn interrupted(&self) -> Option<i32> {
        self.interrupts.received()
    }

    /// Whether the server has ended: no process of its group is left. Reaps the leader.
    fn gone(&mut self) -> bool {
        if self.ended.is_none() {
            match waitpid(Pid::from_raw(self.ident.pid), Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => return false,
                Ok(status) => self.ended = Some(status),
                Err(_) => {}
            }
        }
        !is_running(self.ident)
    }

    /// Whether the leader failed by itself: it exited with a code other than 0. A stop
    /// signal kills it, or (caught) ends it with 0.
    fn exited(&self) -> bool {
        matches!(self.ended, Some(WaitStatus::Exited(_, code)) if code != 0)
    }

    /// How the leader ended, in words, as `run` says it (`127` is "command not found").
    fn how(&self, command: &CommandSpec) -> String {
        match &self.ended {
            Some(status) => crate::supervisor::describe(status, command),
            None => "ended".to_string(),
        }
    }
}

/// After a check that another program at `addr` may have passed: waits until the
/// server's own process group listens on `addr`'s port, or the server ends (which the
/// caller then sees). At `deadline` (`ready_timeout` after the start) the server still
/// runs but does not listen there: reloadsup cannot tell who answers, and says so.
/// Returns the time since `began`.
fn confirm_own_port(
    watch: &mut Watch,
    addr: SocketAddr,
    deadline: Instant,
    began: Instant,
) -> Duration {
    let pgid = Pid::from_raw(watch.ident.pid);
    loop {
        if watch.interrupted().is_some()
            || watch.gone()
            || ready::listening_ports(pgid).contains(&addr.port())
        {
            return began.elapsed();
        }
        if Instant::now() >= deadline {
            report::warn(format!(
                "the server does not listen on port {} itself: the program already at \
                 {addr} may be answering for it",
                addr.port()
            ));
            return began.elapsed();
        }
        std::thread::sleep(CONFIRM_POLL);
    }
}

/// Stops the server just started, whose PID file or state file could not be written
/// (an untracked server would run on unseen), removes what was written, and returns
/// `err` saying so.
fn abandon(spec: &Server, pid_file: &Path, record: &ServerRecord, err: Error) -> Error {
    let stopped = match stop(spec, record.ident, None) {
        Ok(_) => "stopped it".to_string(),
        Err(stop_err) => format!("and cannot stop it: {stop_err}"),
    };
    super::remove_files(pid_file, record.ident.pid);
    Error::Runtime(format!(
        "{err}; started `{}` (pid {}), {stopped}",
        record.command, record.ident.pid
    ))
}

/// Stops the server whose leader is `leader`: `stop_signal` to its group and to its
/// descendants, then SIGKILL after `stop_timeout`, or at once when one of `interrupts`
/// arrives meanwhile (a Ctrl-C while `stop` waits: the user wants it gone now). Returns
/// how it ended, in words.
pub fn stop(spec: &Server, leader: Ident, interrupts: Option<&Interrupts>) -> Result<String> {
    let began = Instant::now();
    // A wrapper's leader that ended on its own (killed alone): the rest of the group
    // is what ends now.
    let rest = if leader.is_alive() {
        ""
    } else {
        "its leader had ended; the rest of its group "
    };
    let targets = processes_of(leader);
    if let Err(nix::errno::Errno::EPERM) = kill(Pid::from_raw(leader.pid), None) {
        // Waiting out `stop_timeout` and SIGKILL would change nothing.
        return Err(Error::Runtime(format!(
            "not allowed to signal the server (pid {}): it runs as another user",
            leader.pid
        )));
    }
    send(leader, &targets, spec.stop_signal);
    // A stopped process acts on the signal only once continued (the stopped ones only:
    // see `group::continue_stopped`).
    for target in targets.iter().filter(|t| crate::procfs::is_stopped(t.pid)) {
        let _ = kill(Pid::from_raw(target.pid), Signal::SIGCONT);
    }
    let interrupted = || interrupts.and_then(Interrupts::received);
    let gone = wait_gone_unless(&targets, began + spec.stop_timeout, || {
        interrupted().is_some()
    });
    if let (false, Some(signal)) = (gone, interrupted()) {
        send(leader, &targets, Signal::SIGKILL);
        if wait_gone(&targets, Instant::now() + KILL_WAIT) {
            let name =
                Signal::try_from(signal).map_or_else(|_| signal.to_string(), |s| s.to_string());
            return Ok(format!(
                "killed with SIGKILL at a {name} {} ms after {}",
                began.elapsed().as_millis(),
                spec.stop_signal
            ));
        }
    }
    if gone {
        // Not a child of this process: how it ended (a code, a signal) cannot be read.
        return Ok(format!(
            "{rest}ended {} ms after {}",
            began.elapsed().as_millis(),
            spec.stop_signal
        ));
    }
    send(leader, &targets, Signal::SIGKILL);
    if wait_gone(&targets, Instant::now() + KILL_WAIT) {
        return Ok(format!(
            "did not stop within {} of {}; killed with SIGKILL",
            humantime::format_duration(spec.stop_timeout),
            spec.stop_signal
        ));
    }
    Err(Error::Runtime(format!(
        "the server (pid {}) did not stop, even with SIGKILL",
        leader.pid
    )))
}

/// Whether the server that `leader` led still runs: the leader itself, or — once the
/// leader has exited (a shell or `npm` wrapper whose server runs on in the background)
/// — any process that is provably the server's (see [`orphans`]).
pub fn is_running(leader: Ident) -> bool {
    leader.is_alive() || !orphans(leader).is_empty()
}

/// The living processes other than the leader that are provably the server's: in the
/// session `start` gave the server (its ID is the leader's PID), started no earlier
/// than the leader, and carrying `RELOADSUP_CHANGED` as every process the server starts
/// does. The leader's process group or another one: a server may move to a group of its
/// own (`setpgid`), and still be in the session. None if the leader's PID now names
/// another process: the kernel gives a PID to no new process while a session or group
/// still has it as its ID, so that session is gone.
fn orphans(leader: Ident) -> Vec<i32> {
    if Ident::of(leader.pid).is_some_and(|now| now.start_ticks != leader.start_ticks) {
        return Vec::new();
    }
    crate::procfs::table()
        .into_iter()
        .filter(|(pid, s)| {
            *pid != leader.pid
                && s.sid == leader.pid
                && !s.is_zombie()
                && s.start_ticks >= leader.start_ticks
                && crate::procfs::has_env(*pid, "RELOADSUP_CHANGED")
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// The leader, its process group, the processes provably the server's in other groups
/// ([`orphans`]), and their descendants (which may have left the session). Once the
/// leader has exited, only those provably the server's and their descendants.
fn processes_of(leader: Ident) -> Vec<Ident> {
    let pgid = Pid::from_raw(leader.pid);
    let mut members = orphans(leader);
    if leader.is_alive() {
        members.extend(crate::procfs::group_members(pgid));
        members.push(leader.pid);
    }
    let mut pids = members.clone();
    for member in members {
        pids.extend(
            crate::procfs::descendants(Pid::from_raw(member), &[])
                .into_iter()
                .map(|(pid, _)| pid),
        );
    }
    pids.sort_unstable();
    pids.dedup();
    let mut idents: Vec<Ident> = pids.into_iter().filter_map(Ident::of).collect();
    if !idents.iter().any(|i| i.pid == leader.pid) {
        idents.push(leader);
    }
    idents
}

/// Sends `signal` to the server's process group (while it is provably the server's) and
/// to each of `targets` still alive.
fn send(leader: Ident, targets: &[Ident], signal: Signal) {
    if is_running(leader) {
        let _ = killpg(Pid::from_raw(leader.pid), signal);
    }
    for target in targets.iter().filter(|t| t.is_alive()) {
        let _ = kill(Pid::from_raw(target.pid), signal);
    }
}

/// Waits until every one of `targets` is gone; whether they went by `deadline`.
pub(super) fn wait_gone(targets: &[Ident], deadline: Instant) -> bool {
    wait_gone_unless(targets, deadline, || false)
}

/// As [`wait_gone`], giving up early (false) once `give_up` says so.
fn wait_gone_unless(targets: &[Ident], deadline: Instant, give_up: impl Fn() -> bool) -> bool {
    loop {
        // Our own children (a server `start` just launched) must be reaped to be gone.
        crate::supervisor::reap_strays();
        if !targets.iter().any(Ident::is_alive) {
            return true;
        }
        if Instant::now() >= deadline || give_up() {
            return false;
        }
        std::thread::sleep(ready::POLL);
    }
}

fn record_server(pid_file: &Path, task_file: Option<&Path>, record: &ServerRecord) -> Result<()> {
    crate::pidfile::write(pid_file, record.ident.pid).map_err(|err| {
        Error::io(
            format!("cannot write PID file `{}`", pid_file.display()),
            err,
        )
    })?;
    state::write(
        pid_file,
        &State {
            owner: Some(state::Owner::new(pid_file, task_file)),
            supervisor: None,
            server: Some(record.clone()),
            ..State::default()
        },
    )
    .map_err(|err| super::state_write_error(pid_file, err))
}

/// With `ready = { log }`, `start` reads the ready line back from `log_file`: one that
/// keeps nothing (`/dev/null`, a terminal, a pipe) would make every start wait out
/// `ready_timeout` and then blame the server for writing nothing.
fn readable_log(spec: &Server) -> Result<()> {
    let kept = fs::metadata(&spec.log_file).map_or(true, |m| m.is_file());
    match &spec.ready {
        Some(Ready::Log(_)) if !kept => Err(Error::Runtime(format!(
            "`ready = {{ log }}` reads the server's output back from `log_file`, and `{}` \
             is not a file that keeps it: name a file, or wait for a port or URL",
            spec.log_file.display()
        ))),
        _ => Ok(()),
    }
}

fn check_for(spec: &Server, upstream: Option<&str>, pid: Pid, offset: u64) -> Result<Check> {
    if let Some(Ready::Log(pattern)) = &spec.ready {
        return Ok(Check::LogFile {
            path: spec.log_file.clone(),
            cursor: Arc::new(Mutex::new(LogCursor::at(offset))),
            regex: Regex::new(pattern).expect("validated when the task file was read"),
        });
    }
    ready::check_for(spec.ready.as_ref(), upstream, pid, None).map_err(Error::Runtime)
}

fn open_log(path: &Path) -> Result<fs::File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).map_err(|err| {
            let what = format!(
                "cannot create `{}`, the folder of `server.log_file`",
                dir.display()
            );
            Error::io(what, err)
        })?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|err| {
            let what = format!(
                "cannot open log file `{}` (`server.log_file`)",
                path.display()
            );
            Error::io(what, err)
        })
}

/// Prints the last lines the server wrote to the log file during this start.
fn print_tail(path: &Path, offset: u64) {
    let mut text = String::new();
    if let Ok(mut file) = fs::File::open(path) {
        let _ = file.seek(SeekFrom::Start(offset));
        let _ = file.read_to_string(&mut text);
    }
    let lines: Vec<&str> = text.lines().collect();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
    if tail.is_empty() {
        report::stderr_raw(&format!(
            "  (the server wrote nothing to `{}`)\n",
            path.display()
        ));
        return;
    }
    let mut text = format!("  last lines of `{}`:\n", path.display());
    for line in tail {
        text.push_str(&format!("  | {line}\n"));
    }
    report::stderr_raw(&text);
}
