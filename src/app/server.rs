//! The server side of the app loop: restarting (a stop, then a start once the old
//! server is gone), probing the new server's readiness, reacting to how servers end,
//! and shutting down on a signal.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT};

use super::{AfterStop, App, Began, Starting};
use crate::browsers::REQUESTED;
use crate::error::{EXIT_OK, EXIT_SIGINT};
use crate::ready::{self, Found, Readiness};
use crate::report;
use crate::supervisor::output::Tail;
use crate::supervisor::{Outcome, Spawned};

/// How long a server that exited may take to have its last output read (usually
/// there already; longer only when a process it left behind holds its output open).
const LAST_OUTPUT: Duration = Duration::from_millis(200);

impl App {
    /// Restarts the server (or starts it, if none runs) with `changed`.
    pub(super) fn restart(&mut self, changed: Vec<String>) {
        if self.exit.is_some() || matches!(self.after_stop, AfterStop::Exit(_)) {
            return;
        }
        let now = Instant::now();
        let began = Began {
            restart: now,
            asked: self.changed_at.take().unwrap_or(now),
        };
        let Some(supervisor) = &mut self.supervisor else {
            // No server: a restart request reloads the pages.
            self.browsers
                .reload_page(changed.first().map_or(REQUESTED, String::as_str));
            return;
        };
        if supervisor.is_stopping() {
            match &mut self.after_stop {
                AfterStop::Start { .. } => {
                    merge(self.follow_up.get_or_insert_with(Vec::new), changed);
                    // The follow-up's time to ready counts from its newest change.
                    self.changed_at = Some(began.asked);
                }
                other => *other = AfterStop::Start { changed, began },
            }
        } else if supervisor.is_idle() {
            self.start(changed, Some(began));
        } else {
            report::info("restarting");
            // The proxy holds requests from before the old server is signalled, and
            // lets it answer those it is working on.
            self.browsers.restarting();
            self.browsers.drain();
            // What it writes is closed as it ends: no change of the user's.
            if let Some(server) = supervisor.running() {
                self.filter.follow_server(server.as_raw(), false);
            }
            supervisor.stop(Instant::now());
            self.forget_starting();
            self.after_stop = AfterStop::Start { changed, began };
        }
    }

    /// Starts the server for the files in `changed` (none: at launch or on request),
    /// `began` being when the restart that leads here began; reports how it went.
    pub(super) fn start(&mut self, changed: Vec<String>, began: Option<Began>) {
        let Some(supervisor) = &mut self.supervisor else {
            return;
        };
        if crate::signals::stop_requested() {
            // A stop signal is queued (it came during a build step, say): a server
            // started now would only be stopped at once.
            return;
        }
        if !self.config.root.is_dir() {
            // Started there, the server would find none of its files, and the PID
            // file's folder made again would stand in the project's place.
            let command = supervisor.spec().command.display();
            let message = format!(
                "the project folder `{}` is gone (moved or deleted): no server runs until \
                 it is back",
                self.config.root.display()
            );
            self.browsers.failed(&command, &message, Tail::default());
            report::warn(message);
            self.forget_starting();
            return;
        }
        // Requests wait for this server (and pages left open from an earlier supervisor
        // wait for it before they reload).
        self.browsers.restarting();
        ready::warn_if_taken(
            supervisor.spec().ready.as_ref(),
            self.config.proxy.as_ref().map(|p| p.upstream.as_str()),
        );
        let started = supervisor.start(&changed.join("\n"));
        let command = supervisor.spec().command.display();
        self.forget_starting();
        let path = changed.first().cloned().unwrap_or_else(|| REQUESTED.into());
        match started {
            Ok(mut spawned) => {
                let pid = spawned.pid;
                match began {
                    Some(began) => report::good(format!(
                        "started `{command}` (pid {pid}); restart took {} ms",
                        began.restart.elapsed().as_millis()
                    )),
                    None => report::good(format!("started `{command}` (pid {pid})")),
                }
                spawned.release_output();
                if let Some(recorder) = &mut self.recorder {
                    recorder.started(pid.as_raw(), command);
                }
                self.probe(spawned);
                self.started = Some((Instant::now(), None));
                self.starting = Some(Starting {
                    path,
                    began,
                    late: false,
                });
            }
            Err(message) => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.failed(message.clone());
                }
                // A command that cannot start printed nothing: no output to show.
                self.browsers.failed(&command, &message, Tail::default());
                report::error(format!("{message}; waiting for the next change"));
            }
        }
        if let Some(more) = self.follow_up.take() {
            report::info("changed during the restart: restarting once more");
            self.restart(more);
        }
    }

    /// Starts probing the new server's readiness on a thread of its own.
    fn probe(&mut self, spawned: Spawned) {
        let Some(supervisor) = &self.supervisor else {
            return;
        };
        let spec = supervisor.spec();
        let upstream = self.config.proxy.as_ref().map(|p| p.upstream.as_str());
        let check = match ready::check_for(
            spec.ready.as_ref(),
            upstream,
            spawned.pid,
            spawned.ready_flag,
        ) {
            Ok(check) => check,
            Err(message) => {
                report::warn(format!(
                    "{message}; waiting for the first listening port instead"
                ));
                ready::Check::GroupListens(spawned.pid)
            }
        };
        let generation = self.generation.load(Ordering::Acquire);
        let listens_elsewhere = ready::elsewhere_reader(spec.ready.as_ref(), upstream, spawned.pid);
        ready::spawn_probe(
            check,
            generation,
            Arc::clone(&self.generation),
            Instant::now(),
            spec.ready_timeout,
            Some(listens_elsewhere),
            self.tx.clone(),
        );
    }

    /// No server awaits readiness any more; a probe still running gives up.
    fn forget_starting(&mut self) {
        self.starting = None;
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// A probe's result: the server is ready (reload the pages), or missed its
    /// readiness timeout (reload them anyway, and once more if it comes up late).
    pub(super) fn on_ready(&mut self, readiness: Readiness) {
        if readiness.generation != self.generation.load(Ordering::Acquire) {
            return;
        }
        match readiness.found {
            Found::Ready => {}
            Found::Elsewhere(elsewhere) => return self.on_elsewhere(&elsewhere),
            Found::TimedOut => return self.on_not_ready(),
        }
        let Some(starting) = self.starting.take() else {
            return;
        };
        if let Some((_, ready)) = &mut self.started {
            ready.get_or_insert_with(Instant::now);
        }
        let since_restart = starting
            .began
            .map(|b| {
                let after = if starting.path == REQUESTED {
                    "the request"
                } else {
                    "the change"
                };
                format!(" ({} ms after {after})", b.asked.elapsed().as_millis())
            })
            .unwrap_or_default();
        let late = if starting.late { ", late" } else { "" };
        report::info(format!(
            "ready in {} ms{since_restart}{late}",
            readiness.waited.as_millis()
        ));
        if let Some(recorder) = &mut self.recorder {
            recorder.ready();
        }
        self.browsers.ready();
        if let Some(server) = self.supervisor.as_ref().and_then(|s| s.running()) {
            self.filter.follow_server(server.as_raw(), true);
        }
        if starting.began.is_some() {
            self.browsers.reload_page(&starting.path);
        } else if starting.late {
            // The first start, late: pages showing the "not ready" page reload. No
            // change or request caused it (it said `restart requested`).
            self.browsers
                .reload_page_for(REQUESTED, "the first start, ready late");
        }
    }

    /// The server has listened on other ports only for a while (`elsewhere` says
    /// where): said at once, as the likely reason it is not ready (requests wait on
    /// until `ready_timeout`).
    fn on_elsewhere(&self, elsewhere: &str) {
        let Some(supervisor) = &self.supervisor else {
            return;
        };
        report::warn(ready::elsewhere_warning(
            elsewhere,
            supervisor.spec().ready_timeout,
        ));
    }

    /// The readiness timeout passed. The proxy shows why a request cannot be answered
    /// (the command, the output); the probe goes on.
    fn on_not_ready(&mut self) {
        let (Some(starting), Some(supervisor)) = (&mut self.starting, &self.supervisor) else {
            return;
        };
        starting.late = true;
        let spec = supervisor.spec();
        let upstream = self.config.proxy.as_ref().map(|p| p.upstream.as_str());
        let elsewhere = supervisor
            .running()
            .and_then(|pgid| ready::listening_elsewhere(spec.ready.as_ref(), upstream, pgid))
            .unwrap_or_default();
        let after = humantime::format_duration(spec.ready_timeout);
        let status = format!("is not ready after {after}{elsewhere}");
        let awaited = if elsewhere.is_empty() {
            ready::awaited(spec.ready.as_ref(), upstream)
        } else {
            String::new()
        };
        let then = if self.browsers.listening() {
            "reloading browsers anyway, and again if it becomes ready"
        } else {
            "it runs on (no browser listens, to be reloaded)"
        };
        // The key that sets the wait, on the terminal (a first build can outlast it).
        report::warn(format!(
            "the server is not ready after {after} (`server.ready_timeout`){elsewhere}{awaited}; {then}"
        ));
        self.browsers
            .late(&spec.command.display(), &status, supervisor.tail());
        if starting.began.is_some() {
            self.browsers.reload_page(&starting.path);
        }
    }

    /// Takes in how a server ended — on its own (shown to browsers as a failure), or
    /// at the end of a stop — and records and reports it.
    pub(super) fn on_outcome(&mut self, outcome: Outcome) {
        if let Some(supervisor) = &self.supervisor {
            supervisor.settle_output();
        }
        if self.terminal.as_ref().is_some_and(|t| t.restore()) {
            report::debug("the server had changed the terminal's settings: put back");
        }
        match outcome {
            Outcome::Exited { pid, how } => {
                let hint = match self.starting {
                    Some(_) if !self.told_early_end => crate::supervisor::early_end_hint(&how),
                    _ => "",
                };
                self.told_early_end |= !hint.is_empty();
                self.forget_starting();
                if let Some(recorder) = &mut self.recorder {
                    recorder.stopped(Some(format!("the server (pid {pid}) {how}")));
                }
                if let Some(supervisor) = &self.supervisor {
                    let command = supervisor.spec().command.display();
                    let output = supervisor.final_tail(LAST_OUTPUT);
                    self.browsers.failed(&command, &how, output);
                }
                report::warn(format!(
                    "server (pid {pid}) {how}{hint}; it restarts at the next change"
                ));
            }
            Outcome::Stopped {
                pid,
                how,
                took,
                requested,
            } => {
                if let Some(recorder) = &mut self.recorder {
                    recorder.stopped(None);
                }
                if requested {
                    report::info(format!(
                        "server (pid {pid}) {how}, in {} ms",
                        took.as_millis()
                    ));
                } else {
                    report::info(format!(
                        "the rest of server (pid {pid})'s process group stopped"
                    ));
                }
                match std::mem::replace(&mut self.after_stop, AfterStop::Nothing) {
                    AfterStop::Nothing => {}
                    // A stop signal whose event is still queued (behind changes that
                    // came during the restart's drain) exits instead.
                    AfterStop::Start { .. } if crate::signals::stop_requested() => {}
                    AfterStop::Start { changed, began } => self.start(changed, Some(began)),
                    AfterStop::Exit(code) => self.exit = Some(code),
                }
            }
        }
    }

    /// SIGINT, SIGTERM or SIGHUP: stop the server and exit. A Ctrl-C (SIGINT) while
    /// stopping kills the server at once. A repeated SIGTERM or SIGHUP does not: the
    /// tools that send them may deliver one twice (`timeout` signals reloadsup, then
    /// its process group), and send SIGKILL when they mean to force the stop.
    pub(super) fn shut_down(&mut self, signal: i32) {
        let code = match signal {
            SIGINT => EXIT_SIGINT,
            SIGHUP => 128 + SIGHUP,
            _ => EXIT_OK,
        };
        self.follow_up = None;
        let Some(supervisor) = self.supervisor.as_mut().filter(|s| !s.is_idle()) else {
            self.exit = Some(code);
            return;
        };
        if matches!(self.after_stop, AfterStop::Exit(_)) {
            if signal == SIGINT {
                report::info("killing the server now");
                supervisor.kill_now(Instant::now());
            } else {
                report::info("still stopping; a Ctrl-C kills the server at once");
            }
            return;
        }
        report::info("stopping");
        supervisor.stop(Instant::now());
        // Nothing awaits the server's readiness any more: no "not ready" warning (or
        // browser reload) comes while it stops.
        self.forget_starting();
        self.after_stop = AfterStop::Exit(code);
    }
}

/// Adds to `list` the paths of `more` it does not hold yet, in order: a file saved
/// three times during a restart is one line of `RELOADSUP_CHANGED`, not three.
fn merge(list: &mut Vec<String>, more: Vec<String>) {
    let mut seen: std::collections::HashSet<String> = list.iter().cloned().collect();
    list.extend(more.into_iter().filter(|path| seen.insert(path.clone())));
}
