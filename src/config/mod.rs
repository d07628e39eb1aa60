//! The resolved configuration: what the rest of the program works from.
//!
//! The task file and the command line are read once, by `resolve`, into a `Config` with
//! absolute paths, parsed durations, compiled globs and a parsed stop signal. Nothing
//! downstream reads raw flags or raw TOML (the ripgrep habit: raw args → one high-level
//! config). Precedence: command-line flags, then the task file, then defaults.

mod address;
mod flags;
mod listeners;
mod own_files;
mod pattern;
mod resolve;
mod schema;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

pub use flags::{Overrides, serve_folder};
pub use pattern::{Pattern, has_meta};
pub use resolve::{find_task_file, resolve};

/// The configuration `stop` and `status` fall back on when the task file cannot be read
/// (saved half-edited while the server runs): `pid_file` (the default one, or the one the
/// file names) beside it, and the default stop settings, so that a running server can
/// still be found and stopped.
pub fn defaults_beside(
    task_file: &std::path::Path,
    pid_file: &std::path::Path,
) -> crate::error::Result<Config> {
    let root = task_file.parent().unwrap_or(std::path::Path::new("/"));
    let overrides = Overrides {
        command: vec!["(unknown command)".into()],
        pid_file: Some(pid_file.to_path_buf()),
        no_reload: true,
        ..Overrides::default()
    };
    let mut config = flags::resolve_ad_hoc(root, &overrides)?;
    config.task_file = Some(task_file.to_path_buf());
    Ok(config)
}

/// `server.pid_file` when the task file does not set it.
pub const DEFAULT_PID_FILE: &str = "reloadsup.pid";

/// The task file's default name, looked for here and in parent folders.
pub const TASK_FILE_NAME: &str = "reload.toml";

/// Everything a command needs, resolved.
#[derive(Debug, Clone)]
pub struct Config {
    /// The task file, absolute; `None` in ad-hoc mode.
    pub task_file: Option<PathBuf>,
    /// The folder relative paths and globs are resolved against (the task file's
    /// folder, or the current folder in ad-hoc mode).
    pub root: PathBuf,
    /// The supervised server; `None` when there is nothing to run.
    pub server: Option<Server>,
    /// What to watch.
    pub watch: Watch,
    /// The LiveReload server.
    pub reload: Reload,
    /// The reverse proxy, when configured.
    pub proxy: Option<Proxy>,
    /// The static site, when configured (`[serve]` or `reloadsup serve`).
    pub serve: Option<Serve>,
    /// Build steps run before a restart when their own inputs change.
    pub tasks: Vec<Task>,
}

/// `[server]`, resolved.
#[derive(Debug, Clone)]
pub struct Server {
    /// What to run.
    pub command: CommandSpec,
    /// The working folder, absolute.
    pub cwd: PathBuf,
    /// The task file's line that set `cwd` (`None`: the default or a flag), so that
    /// `check` can point at it when the folder does not exist.
    pub cwd_line: Option<usize>,
    /// Extra environment, on top of the supervisor's own.
    pub env: Vec<(String, String)>,
    /// Where the server's PID is written while it runs; `None` writes none.
    pub pid_file: Option<PathBuf>,
    /// Where `start` sends the server's output.
    pub log_file: PathBuf,
    /// The signal that asks the server's process group to stop.
    pub stop_signal: Signal,
    /// How long to wait after `stop_signal` before SIGKILL.
    pub stop_timeout: Duration,
    /// How readiness is detected; `None` means the default (see the README).
    pub ready: Option<Ready>,
    /// The task file's line that set `ready` (`None`: the default).
    pub ready_line: Option<usize>,
    /// How long to wait for readiness before warning.
    pub ready_timeout: Duration,
}

impl Server {
    /// What is wrong with `cwd` as a working folder, if anything: `does not exist` or
    /// `is not a folder`.
    pub fn cwd_problem(&self) -> Option<&'static str> {
        if self.cwd.is_dir() {
            None
        } else if self.cwd.exists() {
            Some("is not a folder")
        } else {
            Some("does not exist")
        }
    }
}

/// A server command: a shell string or an argument vector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandSpec {
    /// Run by `sh -c`, so pipes, `&&` and variables work.
    Shell(String),
    /// Exec'd directly: the first element is the program.
    Exec(Vec<String>),
}

impl CommandSpec {
    /// The command as a user would type it, for status lines.
    pub fn display(&self) -> String {
        match self {
            CommandSpec::Shell(line) => line.clone(),
            CommandSpec::Exec(args) => args.join(" "),
        }
    }
}

/// `server.ready`: how to tell that a (re)started server accepts requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// A TCP connect to this port on 127.0.0.1 succeeds.
    Port(u16),
    /// An HTTP GET of this URL answers with a status below 500.
    Url(String),
    /// The server prints a line matching this regular expression.
    Log(String),
    /// A fixed delay after the start.
    Delay(Duration),
}

/// `[watch]`, resolved.
#[derive(Debug, Clone)]
pub struct Watch {
    /// Globs whose changes restart the server.
    pub file_dep: Vec<Pattern>,
    /// Globs ignored on top of the default ignores.
    pub ignore: Vec<Pattern>,
    /// Poll at this interval instead of using inotify.
    pub poll: Option<Duration>,
    /// Whether paths ignored by `.gitignore` files are ignored too.
    pub gitignore: bool,
}

/// `[reload]`, resolved. Parsed and validated here; served by the reload module.
#[derive(Debug, Clone)]
pub struct Reload {
    /// Whether a LiveReload server runs.
    pub enabled: bool,
    /// The host it binds.
    pub host: String,
    /// The port it binds.
    pub port: u16,
    /// Globs whose changes reload browsers without restarting the server.
    pub assets: Vec<Pattern>,
    /// Extra WebSocket origins accepted besides loopback and extensions.
    pub allow_origins: Vec<String>,
    /// What set its address, for the error when it cannot be bound: the keys, or
    /// `--reload-port`.
    pub set_by: &'static str,
}

/// An address reloadsup listens on, checked (`host:port`), with the key or flag that
/// set it, so that an error about it (say, the port is in use) can name the right one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listen {
    /// `host:port`.
    pub addr: String,
    /// The key or flag that set it, e.g. `proxy.listen` or `--proxy` (no backticks).
    pub set_by: &'static str,
    /// The task file's line that set it (`None` for a flag), for errors about it.
    pub line: Option<usize>,
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.addr)
    }
}

/// `[proxy]`, resolved. Parsed and validated here.
#[derive(Debug, Clone)]
pub struct Proxy {
    /// The address browsers connect to.
    pub listen: Listen,
    /// The dev server's address.
    pub upstream: String,
    /// The task file's line that set `upstream` (`None` for `--upstream`).
    pub upstream_line: Option<usize>,
    /// Extra `Host` names accepted.
    pub allowed_hosts: Vec<String>,
}

/// `[serve]`, resolved: a folder served over HTTP with live reload.
#[derive(Debug, Clone)]
pub struct Serve {
    /// The folder served, canonical.
    pub root: PathBuf,
    /// The address to listen on; `None` means 127.0.0.1:5000, or the next free port.
    pub listen: Option<Listen>,
    /// `Host` names served besides loopback ones, the listen address and any IP
    /// address (see `host`).
    pub allowed_hosts: Vec<String>,
    /// Open the site in the browser (`xdg-open`) once it is served.
    pub open: bool,
}

impl Serve {
    /// The port of the default address, and of a `listen` address that names a host alone.
    pub const DEFAULT_PORT: u16 = 5000;
}

/// `[[task]]`, resolved.
#[derive(Debug, Clone)]
pub struct Task {
    /// The task's name, for status lines.
    pub name: String,
    /// Globs whose changes run this task.
    pub file_dep: Vec<Pattern>,
    /// Shell lines run in order, in the task file's folder; the first failure stops the task.
    pub actions: Vec<String>,
}
