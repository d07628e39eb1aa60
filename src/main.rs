//! `reloadsup`: a file-change process supervisor with browser live reload.
//!
//! This file is glue: parse the command line, resolve the configuration, run the
//! subcommand, map the result to an exit code. The pipeline itself reads from `app`.

mod app;
mod browsers;
mod check;
mod cli;
mod config;
mod console;
mod control;
mod debounce;
mod descriptors;
mod error;
mod event;
mod filter;
mod host;
mod init;
mod inject;
mod inotify_watch;
mod limits;
mod pidfile;
mod poll;
mod procfs;
mod proxy;
mod ready;
mod reload;
mod report;
mod serve;
mod signals;
mod supervisor;
mod tasks;
mod terminal;
mod watch;
mod web;

use std::path::{Path, PathBuf};

use clap::Parser;
use clap::error::ErrorKind;

use cli::{Cli, Command, RunArgs};
use config::Overrides;
use error::{Error, Result};

fn main() {
    signals::unblock_all();
    let cli = Cli::try_parse().unwrap_or_else(|err| {
        if !err.use_stderr() || err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
            // Help and the version, asked for or shown for a bare `reloadsup`.
            err.exit();
        }
        report::init(report::Level::Normal, cli::ColorChoice::Auto);
        let args: Vec<String> = std::env::args_os()
            .skip(1)
            .map(|arg| arg.to_string_lossy().into_owned())
            .collect();
        report::error(cli::one_line(&err, &args));
        std::process::exit(error::EXIT_USAGE);
    });
    let level = if cli.quiet {
        report::Level::Quiet
    } else if cli.verbose {
        report::Level::Verbose
    } else {
        report::Level::Normal
    };
    report::init(level, cli.color);
    descriptors::keep_inherited_to_ourselves();
    limits::raise();
    let code = match run(cli) {
        Ok(code) => code,
        Err(err) => {
            report::error(&err);
            err.exit_code()
        }
    };
    console::finish(console::FINISH_TIMEOUT);
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    let cwd = current_dir().or_else(|err| folder_of_absolute(cli.file.as_deref()).ok_or(err))?;
    match cli.command {
        Command::Guard => Ok(supervisor::guard_main()),
        Command::Init => init::run(&cwd, cli.file.as_deref()),
        Command::Run(args) => app::run(load(cli.file, &cwd, &overrides(args))?),
        Command::Serve { .. } if cli.file.is_some() => Err(Error::Usage(
            "`serve` reads no task file: for a site served from a task file, give it a \
             `[serve]` table and use `run`"
                .into(),
        )),
        Command::Serve { dir, listen, open } => {
            app::run(config::serve_folder(&cwd, dir.as_deref(), listen, open)?)
        }
        Command::Check { all } => check::run(&load(cli.file, &cwd, &Overrides::default())?, all),
        Command::Start => control::start(&load_task_file(cli.file, &cwd)?),
        Command::Stop => control::stop(&load_or_defaults(cli.file, &cwd)?),
        Command::Restart => control::restart(&load_task_file(cli.file, &cwd)?),
        Command::Status { json } => control::status(&load_or_defaults(cli.file, &cwd)?, json),
    }
}

/// The configuration from the task file (if any) and the command-line overrides.
fn load(file: Option<PathBuf>, cwd: &Path, overrides: &Overrides) -> Result<config::Config> {
    let task_file = config::find_task_file(file.as_deref(), cwd)?;
    config::resolve(task_file.as_deref(), cwd, overrides)
}

/// The configuration of a command that needs a task file.
fn load_task_file(file: Option<PathBuf>, cwd: &Path) -> Result<config::Config> {
    let task_file = config::find_task_file(file.as_deref(), cwd)?.ok_or_else(|| {
        Error::Usage(format!(
            "no `{}` here or in any parent folder; use `-f FILE` or `reloadsup init`",
            config::TASK_FILE_NAME
        ))
    })?;
    config::resolve(Some(&task_file), cwd, &Overrides::default())
}

/// For `stop` and `status`: the task file's configuration, or — when the file cannot be
/// read (saved half-edited while the server runs) and the PID file or its state file is
/// there — the defaults beside it, with a warning, so the server can still be found and
/// stopped. The PID file is the default one, or the one the file's own `pid_file` line
/// names when that line still reads as TOML by itself (a typo elsewhere in the file
/// does not hide the server).
fn load_or_defaults(file: Option<PathBuf>, cwd: &Path) -> Result<config::Config> {
    match load_task_file(file.clone(), cwd) {
        Err(err @ Error::TaskFile { .. }) => {
            let Some(task_file) = config::find_task_file(file.as_deref(), cwd)? else {
                return Err(err);
            };
            let text = std::fs::read_to_string(&task_file).unwrap_or_default();
            // A file whose own PID file cannot be told is not gone by the default one
            // (which may be another task file's).
            let Some(named) = named_pid_file(&text) else {
                return Err(err);
            };
            let Ok(defaults) = config::defaults_beside(&task_file, &named) else {
                return Err(err);
            };
            let Some(pid_file) = defaults.server.as_ref().and_then(|s| s.pid_file.clone()) else {
                return Err(err);
            };
            let state_file = control::state::state_path(&pid_file);
            if !pid_file.exists() && !state_file.exists() {
                return Err(err);
            }
            let which = if named == Path::new(config::DEFAULT_PID_FILE) {
                "the default PID file"
            } else {
                "its `pid_file`"
            };
            report::warn(format!("{err}; going by {which} `{}`", pid_file.display()));
            Ok(defaults)
        }
        other => other,
    }
}

/// The PID file a task file that does not load names: the default when no line sets
/// `pid_file`, the value of the one line that does when that line reads as TOML by
/// itself, `None` otherwise (several such lines, or a value that is no string).
fn named_pid_file(text: &str) -> Option<PathBuf> {
    let mut named = None;
    for line in text.lines() {
        let line = line.trim();
        let key = line.split(['=', ' ', '\t']).next().unwrap_or_default();
        if key != "pid_file" {
            continue;
        }
        let value = toml::from_str::<toml::Table>(line).ok()?;
        let path = PathBuf::from(value.get("pid_file")?.as_str()?);
        if named.replace(path).is_some() {
            return None;
        }
    }
    Some(named.unwrap_or_else(|| PathBuf::from(config::DEFAULT_PID_FILE)))
}

fn overrides(args: RunArgs) -> Overrides {
    Overrides {
        watch: args.watch,
        ignore: args.ignore,
        poll: args.poll,
        stop_signal: args.stop_signal,
        stop_timeout: args.stop_timeout,
        pid_file: args.pid_file,
        no_reload: args.no_reload,
        reload_port: args.reload_port,
        assets: args.assets,
        proxy: args.proxy,
        upstream: args.upstream,
        command: args.command,
    }
}

/// The folder of an absolute `-f` task file, which stands in for a current folder that
/// was removed (a shell left in a folder `git checkout` or `rm -rf` took away): such a
/// task file needs none, and `stop` from there failed with the server left running.
fn folder_of_absolute(file: Option<&Path>) -> Option<PathBuf> {
    Some(file.filter(|f| f.is_absolute())?.parent()?.to_path_buf())
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|err| Error::io("cannot read the current folder", err))
}
