//! The supervised server: one state machine, driven by the app loop.
//!
//! ```text
//!            start                 stop (signal the group)
//!   Idle ──────────────▶ Running ──────────────────────────▶ Stopping
//!    ▲                     │  leader ended by itself            │ group and escapees gone
//!    │                     ▼  (remnants of its group: Stopping) │ (SIGKILL at the deadline)
//!    └─────────────────────┴────────────────────────────────────┘
//! ```
//!
//! Nothing here blocks: stopping sends `stop_signal` to the whole process group and
//! returns; the loop then calls `on_child_signal` (SIGCHLD) and `tick` (at `deadline`)
//! until every process of the server is gone, escalating to SIGKILL after
//! `stop_timeout`. Only then may a new server start, so there are never two servers at
//! once, and the port the old one held is free for the new one.
//!
//! Every child the supervisor has is reaped here (`waitpid(-1)`): the server's leader,
//! and the processes re-parented to the supervisor because it is a child subreaper.

mod group;
mod guard;
pub mod output;
mod pipes;
pub mod spawn;

use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use nix::sys::wait::WaitStatus;
use nix::unistd::{Pid, getpid};

use regex::Regex;

use crate::config::{CommandSpec, Ready, Server};
use crate::pidfile;
use crate::report;

pub use guard::Guard;
pub use guard::main as guard_main;
use output::{Ended, Relay, Tail};
use spawn::Mode;
pub use spawn::Spawned;

/// While stopping, how often to look for the group being gone even without a SIGCHLD
/// (a grandchild whose parent is not the supervisor ends without one).
const STOP_POLL: Duration = Duration::from_millis(10);

/// The longest [`Supervisor::settle_output`] waits for an ended server's output to be
/// written, with the writer getting on: the next server's start waits as long.
const SETTLE_MAX: Duration = Duration::from_millis(500);

/// How long [`Supervisor::settle_output`] waits at most when the writer gets nowhere.
const SETTLE_MIN: Duration = Duration::from_millis(100);

/// A running server: its leader's PID is also its process group ID.
#[derive(Debug)]
struct Proc {
    pgid: Pid,
    /// How the leader ended, once it has been reaped.
    leader: Option<WaitStatus>,
}

#[derive(Debug)]
enum State {
    Idle,
    Running(Proc),
    Stopping {
        proc: Proc,
        began: Instant,
        kill_at: Instant,
        /// Why SIGKILL was sent, once it was.
        killed: Option<Kill>,
        /// Whether the supervisor asked for the stop (else it is a clean-up of what a
        /// leader that ended by itself left behind).
        requested: bool,
    },
}

/// Why a stop escalated to SIGKILL.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// `stop_timeout` ran out.
    Timeout,
    /// Asked for (a Ctrl-C while stopping), this long after `stop_signal`.
    Asked(Duration),
}

impl Kill {
    /// How a server killed with SIGKILL ended, in words.
    fn describe(self, spec: &Server) -> String {
        let signal = spec.stop_signal;
        match self {
            Kill::Timeout => format!(
                "did not stop within {} of {signal}; killed with SIGKILL",
                humantime::format_duration(spec.stop_timeout),
            ),
            Kill::Asked(after) => format!(
                "killed with SIGKILL at a Ctrl-C {} ms after {signal}",
                after.as_millis()
            ),
        }
    }
}

/// Something the loop reports or acts on.
#[derive(Debug)]
pub enum Outcome {
    /// The server's leader ended without being asked to.
    Exited { pid: Pid, how: String },
    /// A stop finished: every process of the server is gone.
    Stopped {
        pid: Pid,
        how: String,
        took: Duration,
        requested: bool,
    },
}

/// The supervisor of one server command.
pub struct Supervisor {
    spec: Server,
    state: State,
    guard: Option<Guard>,
    me: Pid,
    tail: Option<Tail>,
    /// Whether the last server's output has been read to its end, when it is relayed.
    output_ended: Option<Ended>,
}

impl Supervisor {
    /// A supervisor for `spec`, made a child subreaper, with its guard process started.
    /// With `keep_tail`, the server's output is relayed and its last lines kept.
    pub fn new(spec: Server, keep_tail: bool) -> Supervisor {
        if let Err(err) = nix::sys::prctl::set_child_subreaper(true) {
            report::warn(format!("cannot become a child subreaper: {err}"));
        }
        let guard = match Guard::spawn() {
            Ok(guard) => {
                if let Some(pid_file) = &spec.pid_file {
                    guard.clear_state(pid_file);
                }
                Some(guard)
            }
            Err(err) => {
                report::warn(format!(
                    "cannot start the guard process ({err}); if reloadsup is killed \
                     with SIGKILL, a server started through a shell may survive it"
                ));
                None
            }
        };
        Supervisor {
            spec,
            state: State::Idle,
            guard,
            me: getpid(),
            tail: keep_tail.then(Tail::default),
            output_ended: None,
        }
    }

    /// The last lines the current (or last) server printed, read when needed (empty if
    /// they are not kept).
    pub fn tail(&self) -> Tail {
        self.tail.clone().unwrap_or_default()
    }

    /// The last lines a server that has exited printed, once its relay has read them
    /// all (or `timeout` has passed); empty if they are not kept.
    pub fn final_tail(&self, timeout: Duration) -> Tail {
        if let Some(ended) = &self.output_ended {
            ended.wait(timeout);
        }
        self.tail()
    }

    /// Waits until the output of a server that has ended is all passed on (queued for
    /// reloadsup's stdout behind what came before), so that the lines said about its
    /// end come after it: with a slow reader, the old server's last lines, its answer
    /// to the stop signal among them, came after `started` for the next one, or, at
    /// the end of `run`, not at all. Waits while the output is being written, up to
    /// [`SETTLE_MAX`]; for a reader that has stopped reading, or a pipe something the
    /// server left holds open, [`SETTLE_MIN`] at most.
    pub fn settle_output(&self) {
        let Some(ended) = &self.output_ended else {
            return;
        };
        let began = Instant::now();
        while !ended.wait(Duration::from_millis(10)) {
            let waited = began.elapsed();
            let stuck = waited >= SETTLE_MIN && crate::console::idle_for() >= SETTLE_MIN;
            if stuck || waited >= SETTLE_MAX {
                return;
            }
        }
    }

    /// The server's settings.
    pub fn spec(&self) -> &Server {
        &self.spec
    }

    /// The running server's process group, if one runs (not while it stops).
    pub fn running(&self) -> Option<Pid> {
        match &self.state {
            State::Running(proc) => Some(proc.pgid),
            _ => None,
        }
    }

    /// The server's process group while it has one (running or stopping): where job
    /// control (Ctrl-Z, `fg`) and a change of window size go, which the terminal sends
    /// to its foreground group alone, reloadsup's.
    pub fn group(&self) -> Option<Pid> {
        match &self.state {
            State::Running(proc) | State::Stopping { proc, .. } => Some(proc.pgid),
            State::Idle => None,
        }
    }

    /// Whether no server process exists.
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Idle)
    }

    /// Whether a stop is under way.
    pub fn is_stopping(&self) -> bool {
        matches!(self.state, State::Stopping { .. })
    }

    /// Starts the server; only when idle. `changed` goes to `RELOADSUP_CHANGED`.
    pub fn start(&mut self, changed: &str) -> Result<Spawned, String> {
        debug_assert!(self.is_idle(), "never two servers at once");
        let regex = match &self.spec.ready {
            Some(Ready::Log(pattern)) => Some(Arc::new(
                Regex::new(pattern).expect("validated when the task file was read"),
            )),
            _ => None,
        };
        if let Some(tail) = &self.tail {
            tail.clear();
        }
        let relay = (regex.is_some() || self.tail.is_some()).then(|| Relay {
            regex,
            tail: self.tail.clone(),
            matched: Arc::default(),
            ended: Ended::default(),
            after: self.output_ended.clone(),
        });
        self.output_ended = relay.as_ref().map(|relay| relay.ended.clone());
        let guard = self.guard.as_ref().map(Guard::fd);
        let spawned = match spawn::spawn(&self.spec, changed, Mode::Supervised { relay, guard }) {
            Ok(spawned) => spawned,
            Err(err) => {
                // The child may have told the guard its group before the exec failed.
                if let Some(guard) = &mut self.guard {
                    guard.untrack();
                }
                return Err(self.spawn_error(err));
            }
        };
        let pid = spawned.pid;
        // The child told the guard its group; now the PID file too, so the guard
        // removes it if reloadsup is killed.
        if let Some(guard) = &mut self.guard {
            guard.track(pid, self.spec.pid_file.as_deref());
        }
        if let Some(path) = &self.spec.pid_file {
            if let Err(err) = pidfile::write(path, pid.as_raw()) {
                report::warn(format!("cannot write PID file `{}`: {err}", path.display()));
            }
        }
        self.state = State::Running(Proc {
            pgid: pid,
            leader: None,
        });
        Ok(spawned)
    }

    /// Writes the running server's PID file again (its folder was removed).
    pub fn put_pid_file_back(&self) {
        if let (Some(pgid), Some(path)) = (self.running(), &self.spec.pid_file) {
            if let Err(err) = pidfile::write(path, pgid.as_raw()) {
                report::warn(format!("cannot write PID file `{}`: {err}", path.display()));
            }
        }
    }

    /// The guard process, for build steps to name themselves to (see `tasks`).
    pub fn guard(&self) -> Option<&Guard> {
        self.guard.as_ref()
    }

    /// Begins a graceful stop of a running server; does nothing otherwise.
    pub fn stop(&mut self, now: Instant) {
        if let State::Running(_) = self.state {
            let State::Running(proc) = std::mem::replace(&mut self.state, State::Idle) else {
                unreachable!("matched above")
            };
            self.begin_stop(proc, now, true);
        }
    }

    /// Kills a server that is being stopped right away (a Ctrl-C while stopping).
    pub fn kill_now(&mut self, now: Instant) {
        if let State::Stopping { proc, .. } = &self.state {
            self.kill(proc.pgid);
        }
        if let State::Stopping { killed, began, .. } = &mut self.state {
            let asked = Kill::Asked(now.saturating_duration_since(*began));
            killed.get_or_insert(asked);
        }
    }

    /// When the loop must call `tick` next, if at all.
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        match &self.state {
            State::Stopping {
                kill_at, killed, ..
            } => {
                let poll = now + STOP_POLL;
                Some(if killed.is_some() {
                    poll
                } else {
                    poll.min(*kill_at)
                })
            }
            _ => None,
        }
    }

    /// Handles SIGCHLD: reaps every ended child and moves the state on.
    pub fn on_child_signal(&mut self, now: Instant) -> Option<Outcome> {
        self.reap();
        if let State::Running(Proc {
            leader: Some(status),
            pgid,
        }) = &self.state
        {
            let (pid, how) = (*pgid, describe(status, &self.spec.command));
            let State::Running(proc) = std::mem::replace(&mut self.state, State::Idle) else {
                unreachable!("matched above")
            };
            if self.remnants(pid) {
                self.begin_stop(proc, now, false);
            } else {
                self.forget(pid);
            }
            return Some(Outcome::Exited { pid, how });
        }
        self.tick(now)
    }

    /// Moves a stop on: done when everything is gone, SIGKILL at the deadline.
    pub fn tick(&mut self, now: Instant) -> Option<Outcome> {
        let pgid = match &self.state {
            State::Stopping { proc, .. } => proc.pgid,
            _ => return None,
        };
        let gone = !self.remnants(pgid);
        let State::Stopping {
            proc,
            began,
            kill_at,
            killed,
            requested,
        } = &mut self.state
        else {
            unreachable!("matched above")
        };
        if gone {
            let how = match killed {
                Some(kill) => kill.describe(&self.spec),
                None => proc
                    .leader
                    .as_ref()
                    .map(|s| describe(s, &self.spec.command))
                    .unwrap_or_else(|| "ended".into()),
            };
            let outcome = Outcome::Stopped {
                pid: pgid,
                how,
                took: now.saturating_duration_since(*began),
                requested: *requested,
            };
            self.state = State::Idle;
            self.forget(pgid);
            return Some(outcome);
        }
        if killed.is_none() && now >= *kill_at {
            *killed = Some(Kill::Timeout);
            self.kill(pgid);
        }
        None
    }

    fn begin_stop(&mut self, proc: Proc, now: Instant, requested: bool) {
        let signal = self.spec.stop_signal;
        // The group first: finding the escapees reads all of /proc, and a server given
        // those milliseconds more logs errors for the idle connections the proxy drops.
        group::signal_group(proc.pgid, signal);
        let escapees = self.escapees(proc.pgid);
        group::signal_each(&escapees, signal);
        // A stopped process (`kill -STOP`, a terminal's SIGTTIN) acts on no signal
        // until it is continued: then it gets the stop signal, as under systemd. Only
        // the stopped ones: a running process needs none.
        group::continue_stopped(proc.pgid, &escapees);
        self.state = State::Stopping {
            proc,
            began: now,
            kill_at: now + self.spec.stop_timeout,
            killed: None,
            requested,
        };
    }

    fn kill(&self, pgid: Pid) {
        group::signal_group(pgid, Signal::SIGKILL);
        group::signal_each(&self.escapees(pgid), Signal::SIGKILL);
    }

    /// Reaps every ended child, keeping the leader's status.
    fn reap(&mut self) {
        for (pid, status) in group::reap_all() {
            if self.guard.as_ref().is_some_and(|g| g.pid() == pid) {
                report::warn(
                    "the guard process ended; a SIGKILL of reloadsup may now leave the server behind",
                );
                self.guard = None;
            }
            match &mut self.state {
                State::Running(proc) | State::Stopping { proc, .. } if proc.pgid == pid => {
                    proc.leader = Some(status);
                }
                _ => {}
            }
        }
    }

    /// Whether anything of the server is left. Our own zombies would keep the group
    /// "alive", so they are reaped first.
    fn remnants(&mut self, pgid: Pid) -> bool {
        self.reap();
        group::group_alive(pgid) || !self.escapees(pgid).is_empty()
    }

    fn escapees(&self, pgid: Pid) -> Vec<Pid> {
        let helpers: Vec<Pid> = self.guard.iter().map(Guard::pid).collect();
        group::escaped_descendants(self.me, pgid, &helpers)
    }

    /// The server is gone: the PID file and the guard's watch go with it.
    fn forget(&mut self, pgid: Pid) {
        if let Some(path) = &self.spec.pid_file {
            if let Err(err) = pidfile::remove_if_ours(path, pgid.as_raw()) {
                report::warn(format!(
                    "cannot remove PID file `{}`: {err}",
                    path.display()
                ));
            }
        }
        if let Some(guard) = &mut self.guard {
            guard.untrack();
        }
    }

    fn spawn_error(&self, err: std::io::Error) -> String {
        spawn::start_error(&self.spec, &err)
    }
}

/// Sends SIGKILL to the whole process group `pgid` (a server whose supervisor is gone).
pub fn kill_group(pgid: Pid) {
    group::signal_group(pgid, Signal::SIGKILL);
}

/// Reaps every ended child, where no supervisor does: a loop without a server, or
/// `start` waiting for a server it launched to be gone.
pub fn reap_strays() {
    let _ = group::reap_all();
}

/// How a process ended, in words.
pub fn describe(status: &WaitStatus, command: &CommandSpec) -> String {
    match status {
        WaitStatus::Exited(_, 127) if matches!(command, CommandSpec::Shell(_)) => {
            "exited with code 127 (command not found)".into()
        }
        WaitStatus::Exited(_, code) => format!("exited with code {code}"),
        WaitStatus::Signaled(_, signal, _) => format!("ended by {signal}"),
        other => format!("ended ({other:?})"),
    }
}

/// What to add to a server's end (`how`, from [`describe`]) when it came before the
/// server was ready: a code of 0 then most often means the command sent the server to
/// the background and ended, leaving it where no stop reaches it.
pub fn early_end_hint(how: &str) -> &'static str {
    if how == "exited with code 0" {
        " (did the command put the server in the background, with `&`, `setsid`, \
         `nohup` or a `--daemon` flag? It then ends at once, and what left its process \
         group is out of reloadsup's reach: run the server in the foreground)"
    } else {
        ""
    }
}
