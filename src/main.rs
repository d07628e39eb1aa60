//! `reloadsup`: a file-change process supervisor with browser live reload.
//!
//! This file is glue: parse the command line, resolve the configuration, run the
//! subcommand, map the result to an exit code. The pipeline itself reads from `app`.

mod app;
mod check;
mod cli;
mod config;
mod debounce;
mod error;
mod event;
mod filter;
mod init;
mod pidfile;
mod poll;
mod report;
mod signals;
mod supervisor;
mod tasks;
mod watch;

use std::path::PathBuf;

use clap::Parser;

use cli::{Cli, Command, RunArgs};
use config::Overrides;
use error::{Error, Result};

fn main() {
    let cli = Cli::parse();
    let level = if cli.quiet {
        report::Level::Quiet
    } else if cli.verbose {
        report::Level::Verbose
    } else {
        report::Level::Normal
    };
    report::init(level, cli.color);
    let code = match run(cli) {
        Ok(code) => code,
        Err(err) => {
            report::error(&err);
            err.exit_code()
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> Result<i32> {
    let cwd = current_dir()?;
    match cli.command {
        Command::Guard => Ok(supervisor::guard_main()),
        Command::Init => init::run(&cwd),
        Command::Check => {
            let task_file = config::find_task_file(cli.file.as_deref(), &cwd)?;
            let config = config::resolve(task_file.as_deref(), &cwd, &Overrides::default())?;
            check::run(&config)
        }
        Command::Run(args) => {
            let task_file = config::find_task_file(cli.file.as_deref(), &cwd)?;
            let config = config::resolve(task_file.as_deref(), &cwd, &overrides(args))?;
            app::run(config)
        }
    }
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
        command: args.command,
    }
}

fn current_dir() -> Result<PathBuf> {
    std::env::current_dir().map_err(|err| Error::io("cannot read the current folder", err))
}
