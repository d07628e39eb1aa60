//! Turning the task file and the command line into a `Config`, once.
//!
//! Every error names the task file, the line and the key or value at fault, and maps to
//! exit code 2. Flags given on the command line override the task file.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use nix::sys::signal::Signal;
use toml::Spanned;

use super::address::{self, Kind};
use super::flags::{
    self, Overrides, command_from_args, flag_duration, flag_patterns, flag_pid_file, flag_poll,
    flag_proxy, flag_signal,
};
use super::own_files::{self, Culprit};
use super::pattern::{self, Pattern, normalize};
use super::schema::{RawFile, RawReady, RawServe, RawServer, RawTask, RawWatch, Text};
use super::{
    CommandSpec, Config, DEFAULT_PID_FILE, Listen, Proxy, Ready, Reload, Serve, Server,
    TASK_FILE_NAME, Task, Watch,
};
use crate::error::{Error, Result};

/// The default LiveReload port, as the browser extensions expect.
const DEFAULT_RELOAD_PORT: u16 = 35729;

/// The key whose globs are matched beside the built-in ignores.
const IGNORE_KEY: &str = "watch.ignore";

/// Finds the task file: `explicit` (`-f`) if given, else `reload.toml` in `cwd` or the
/// nearest parent folder. `Ok(None)` when there is none and none was asked for.
pub fn find_task_file(explicit: Option<&Path>, cwd: &Path) -> Result<Option<PathBuf>> {
    if let Some(path) = explicit {
        let path = normalize(&cwd.join(path));
        return match not_a_task_file(&path) {
            Some(why) => Err(Error::Usage(format!(
                "task file `{}` {why}",
                path.display()
            ))),
            None => Ok(Some(path)),
        };
    }
    // The nearest `reload.toml` there is, even one that cannot be used: passing over it
    // to a parent folder's would run (or stop) another project's server.
    for candidate in cwd.ancestors().map(|dir| dir.join(TASK_FILE_NAME)) {
        if std::fs::symlink_metadata(&candidate).is_err() {
            continue;
        }
        return match not_a_task_file(&candidate) {
            Some(why) => Err(Error::Usage(format!(
                "`{}` {why}; name the task file with `-f`",
                candidate.display()
            ))),
            None => Ok(Some(candidate)),
        };
    }
    Ok(None)
}

/// Why `path` cannot be read as a task file, if it cannot: missing, a link to nothing,
/// not a file, or out of reach.
fn not_a_task_file(path: &Path) -> Option<String> {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_file() => None,
        Ok(_) => Some("is not a file".into()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            Some(match std::fs::symlink_metadata(path) {
                Ok(_) => "is a link to nothing".into(),
                Err(_) => "not found".into(),
            })
        }
        Err(err) => Some(format!("cannot be read: {err}")),
    }
}

/// Resolves the configuration from an optional task file and the command-line overrides.
pub fn resolve(task_file: Option<&Path>, cwd: &Path, overrides: &Overrides) -> Result<Config> {
    let config = match task_file {
        Some(file) => {
            // A task file that cannot be read is a task-file error (exit 2), as one
            // that cannot be parsed.
            let bytes = read_task_file(file)?;
            let text = utf8_text(file, bytes)?;
            let doc = Doc { file, text: &text };
            doc.resolve(overrides)?
        }
        None => flags::resolve_ad_hoc(cwd, overrides)?,
    };
    super::listeners::check(&config)?;
    Ok(config)
}

/// The most bytes a task file may hold: a few KiB is a large one, and a `-f` naming a
/// disk image or a log was read whole (4 GiB of memory for a 2 GiB file) before its
/// first line was found to be no TOML.
const TASK_FILE_MAX: u64 = 8 * 1024 * 1024;

/// The task file's bytes, up to [`TASK_FILE_MAX`]; a task-file error past that.
fn read_task_file(file: &Path) -> Result<Vec<u8>> {
    use std::io::Read;
    let cannot = |err: std::io::Error| {
        Error::Usage(format!("cannot read task file `{}`: {err}", file.display()))
    };
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(TASK_FILE_MAX + 1).read_to_end(&mut bytes))
        .map_err(cannot)?;
    if bytes.len() as u64 > TASK_FILE_MAX {
        return Err(Error::task_file(
            file,
            None,
            format!(
                "the task file is larger than {} MiB: is it the right file?",
                TASK_FILE_MAX >> 20
            ),
        ));
    }
    Ok(bytes)
}

/// The task file's bytes as text; a task-file error naming the line and column of the
/// first byte that is not UTF-8 (a file saved as Latin-1 or UTF-16, say) otherwise.
fn utf8_text(file: &Path, bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|err| {
        let at = err.utf8_error().valid_up_to();
        let bytes = err.as_bytes();
        let line_start = bytes[..at]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |n| n + 1);
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        // Everything before `at` is valid UTF-8: the column counts characters, as an
        // editor shows them (a byte-order mark at the start is not one).
        let before = std::str::from_utf8(&bytes[line_start..at]).unwrap_or_default();
        let before = if line_start == 0 {
            before.trim_start_matches('\u{FEFF}')
        } else {
            before
        };
        let column = before.chars().count() + 1;
        Error::task_file(
            file,
            Some(line),
            format!(
                "the task file is not UTF-8: byte 0x{:02X} at column {column} (save it as UTF-8)",
                bytes[at]
            ),
        )
    })
}

/// The task file's text, for locating errors by line.
struct Doc<'a> {
    file: &'a Path,
    text: &'a str,
}

impl Doc<'_> {
    fn resolve(&self, ov: &Overrides) -> Result<Config> {
        let raw: RawFile = toml::from_str(self.text).map_err(|err| {
            let line = err.span().map(|span| self.line(span.start));
            Error::task_file(self.file, line, self.toml_message(err))
        })?;
        let root = self
            .file
            .parent()
            .expect("a task file path has a parent folder")
            .to_path_buf();
        let serve = raw
            .serve
            .as_ref()
            .map(|s| self.serve(s, &root, !raw.tasks.is_empty()))
            .transpose()?;
        // A site, or a proxy in front of a server run elsewhere (a container, another
        // terminal), needs no server of its own.
        let fronting = serve.is_some() || raw.proxy.is_some();
        let server = self.server(raw.server.as_ref(), &root, ov, fronting)?;
        let watch = self.watch(&raw.watch, &root, ov, server.is_none())?;
        let mut reload = self.reload(&raw, &root, ov)?;
        if let Some(serve) = &serve {
            // The site's files are assets: a stylesheet or image is swapped in place,
            // anything else reloads the page; none restarts the server.
            // Written from the task file's folder when the site is in it, as `check`
            // shows it beside the task file's own globs.
            let site = match serve.root.strip_prefix(&root) {
                Ok(inside) if inside.as_os_str().is_empty() => "**".to_string(),
                Ok(inside) => format!("{}/**", globset::escape(&inside.to_string_lossy())),
                Err(_) => format!("{}/**", globset::escape(&serve.root.to_string_lossy())),
            };
            reload
                .assets
                .push(Pattern::new(&site, &root).expect("an escaped path is a valid glob"));
        }
        let proxy = raw
            .proxy
            .as_ref()
            .map(|p| {
                Ok::<_, Error>(Proxy {
                    listen: self.listen(&p.listen, "proxy.listen", Kind::Listen)?,
                    upstream: self.address(&p.upstream, "proxy.upstream", Kind::Connect)?,
                    upstream_line: Some(self.line(p.upstream.span().start)),
                    allowed_hosts: p
                        .allowed_hosts
                        .iter()
                        .map(|host| self.address(host, "proxy.allowed_hosts", Kind::Allowed))
                        .collect::<Result<_>>()?,
                })
            })
            .transpose()?;
        let proxy = flag_proxy(proxy, ov)?;
        let tasks = self.tasks(&raw.tasks, &root)?;
        Ok(Config {
            task_file: Some(self.file.to_path_buf()),
            root,
            server,
            watch,
            reload,
            proxy,
            serve,
            tasks,
        })
    }

    /// `[[task]]`s: each named (names unique, for status lines) and with actions.
    fn tasks(&self, raw: &[RawTask], root: &Path) -> Result<Vec<Task>> {
        let mut tasks: Vec<Task> = Vec::new();
        for t in raw {
            let name = t.name.get_ref().trim();
            if name.is_empty() {
                return Err(self.error(t.name.span(), "`task.name` must not be empty"));
            }
            if tasks.iter().any(|other| other.name == name) {
                return Err(self.error(
                    t.name.span(),
                    format!("a second `[[task]]` named `{name}`: task names must differ"),
                ));
            }
            if t.actions.get_ref().is_empty() {
                return Err(self.error(t.actions.span(), format!("task `{name}` has no `actions`")));
            }
            let actions = t
                .actions
                .get_ref()
                .iter()
                .map(|action| {
                    self.no_nul(action, "task.actions")?;
                    if action.get_ref().trim().is_empty() {
                        return Err(self.error(action.span(), "an empty line in `task.actions`"));
                    }
                    Ok(action.get_ref().clone())
                })
                .collect::<Result<_>>()?;
            tasks.push(Task {
                name: name.to_string(),
                file_dep: self.patterns(&t.file_dep, root, "task.file_dep")?,
                actions,
            });
        }
        Ok(tasks)
    }

    /// `[serve]`; `built` when build steps run at the start, one of which may make a
    /// root that is not there yet (a fresh checkout without Hugo's `public/`).
    fn serve(&self, raw: &RawServe, root: &Path, built: bool) -> Result<Serve> {
        if let Some(root) = &raw.root {
            self.no_nul(root, "serve.root")?;
        }
        let dir = normalize(&root.join(raw.root.as_ref().map_or(".", |t| t.get_ref().as_str())));
        let bad = |why: String| {
            let line = raw.root.as_ref().map(|t| self.line(t.span().start));
            Error::task_file(self.file, line, format!("`serve.root` {why}"))
        };
        let canonical = match dir.canonicalize() {
            Ok(canonical) => canonical,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && built => dir.clone(),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Err(bad(format!(
                    "folder `{}` does not exist (make it, or a `[[task]]` that builds it)",
                    dir.display()
                )));
            }
            Err(err) => return Err(bad(format!("folder `{}`: {err}", dir.display()))),
        };
        if canonical.exists() && !canonical.is_dir() {
            return Err(bad(format!("`{}` is not a folder", dir.display())));
        }
        let listen = raw
            .listen
            .as_ref()
            .map(|l| self.listen(l, "serve.listen", Kind::ListenOr(Serve::DEFAULT_PORT)))
            .transpose()?;
        let allowed_hosts = raw
            .allowed_hosts
            .iter()
            .map(|host| self.address(host, "serve.allowed_hosts", Kind::Allowed))
            .collect::<Result<_>>()?;
        Ok(Serve {
            root: canonical,
            listen,
            allowed_hosts,
            open: false,
        })
    }

    fn server(
        &self,
        raw: Option<&Spanned<RawServer>>,
        root: &Path,
        ov: &Overrides,
        fronting: bool,
    ) -> Result<Option<Server>> {
        let Some(raw_spanned) = raw else {
            if ov.command.is_empty() && fronting {
                return Ok(None);
            }
            if ov.command.is_empty() {
                return Err(Error::task_file(
                    self.file,
                    None,
                    "missing `[server]` table with a `command` (or a `[serve]` table, for a \
                     static site, or a `[proxy]` in front of a server run elsewhere)",
                ));
            }
            return Ok(Some(self.server_from(None, root, ov)?));
        };
        Ok(Some(self.server_from(Some(raw_spanned), root, ov)?))
    }

    fn server_from(
        &self,
        raw: Option<&Spanned<RawServer>>,
        root: &Path,
        ov: &Overrides,
    ) -> Result<Server> {
        // The file's values are checked even where a flag overrides them: a mistake in
        // the file is reported now, not on the first run without the flag.
        let s = raw.map(Spanned::get_ref);
        let file_command = s
            .and_then(|s| s.command.as_ref())
            .map(|value| self.command(value))
            .transpose()?;
        let command = if !ov.command.is_empty() {
            command_from_args(&ov.command)?
        } else {
            let table = raw.expect("checked by the caller");
            match file_command {
                Some(command) => command,
                None => {
                    return Err(self.error(table.span(), "missing `server.command`"));
                }
            }
        };
        let path = |value: Option<&Text>, default: &str| -> PathBuf {
            normalize(&root.join(value.map_or(default, |t| t.get_ref().as_str())))
        };
        for (key, value) in [
            ("server.cwd", s.and_then(|s| s.cwd.as_ref())),
            ("server.pid_file", s.and_then(|s| s.pid_file.as_ref())),
            ("server.log_file", s.and_then(|s| s.log_file.as_ref())),
        ] {
            if let Some(value) = value {
                self.no_nul(value, key)?;
                if key != "server.cwd" && value.get_ref().trim().is_empty() {
                    return Err(self.error(
                        value.span(),
                        format!("`{key}` must not be empty (leave it out for the default)"),
                    ));
                }
                if key != "server.cwd" && own_files::written_as_folder(Path::new(value.get_ref())) {
                    return Err(self.error(
                        value.span(),
                        format!(
                            "`{key}`: `{}` names a folder: name a file in it",
                            value.get_ref()
                        ),
                    ));
                }
            }
        }
        let pid_file = match &ov.pid_file {
            Some(p) => Some(flag_pid_file(p, root)?),
            None => Some(path(s.and_then(|s| s.pid_file.as_ref()), DEFAULT_PID_FILE)),
        };
        let log_file = path(s.and_then(|s| s.log_file.as_ref()), "reloadsup.log");
        // A PID file the task file names is checked with its log file even when
        // `--pid-file` replaces it, as any value a flag replaces is.
        let written_pid = s
            .and_then(|s| s.pid_file.as_ref())
            .map(|value| path(Some(value), DEFAULT_PID_FILE));
        if let (Some(written), Some(_)) = (&written_pid, &ov.pid_file) {
            if let Err((_, why)) = own_files::check(Some(written), &log_file, Some(self.file)) {
                let value = s.and_then(|s| s.pid_file.as_ref());
                let line = value.map(|v| self.line(v.span().start));
                return Err(Error::task_file(
                    self.file,
                    line,
                    format!("`server.pid_file`: {why}"),
                ));
            }
        }
        if let Err((culprit, why)) =
            own_files::check(pid_file.as_deref(), &log_file, Some(self.file))
        {
            let (key, value) = match culprit {
                Culprit::PidFile if ov.pid_file.is_some() => {
                    return Err(Error::Usage(format!("`--pid-file`: {why}")));
                }
                Culprit::PidFile => ("server.pid_file", s.and_then(|s| s.pid_file.as_ref())),
                Culprit::LogFile => ("server.log_file", s.and_then(|s| s.log_file.as_ref())),
                Culprit::Both => match (s.and_then(|s| s.pid_file.as_ref()), ov.pid_file.is_some())
                {
                    (_, true) => return Err(Error::Usage(format!("`--pid-file`: {why}"))),
                    (Some(pid), _) => ("server.pid_file", Some(pid)),
                    (None, _) => ("server.log_file", s.and_then(|s| s.log_file.as_ref())),
                },
            };
            let line = value.map(|v| self.line(v.span().start));
            return Err(Error::task_file(self.file, line, format!("`{key}`: {why}")));
        }
        let file_signal = s
            .and_then(|s| s.stop_signal.as_ref())
            .map(|value| self.signal(value))
            .transpose()?;
        let stop_signal = flag_signal(ov.stop_signal.as_deref())?
            .or(file_signal)
            .unwrap_or(Signal::SIGTERM);
        let file_timeout = self.duration(
            s.and_then(|s| s.stop_timeout.as_ref()),
            "server.stop_timeout",
        )?;
        let stop_timeout = flag_duration("--stop-timeout", ov.stop_timeout.as_deref())?
            .or(file_timeout)
            .unwrap_or(Duration::from_secs(5));
        Ok(Server {
            command,
            cwd: path(s.and_then(|s| s.cwd.as_ref()), "."),
            cwd_line: s
                .and_then(|s| s.cwd.as_ref())
                .map(|cwd| self.line(cwd.span().start)),
            env: match s {
                Some(s) => self.env(s)?,
                None => Vec::new(),
            },
            pid_file,
            log_file,
            stop_signal,
            stop_timeout,
            ready: s
                .and_then(|s| s.ready.as_ref())
                .map(|r| self.ready(r))
                .transpose()?,
            ready_line: s
                .and_then(|s| s.ready.as_ref())
                .map(|r| self.line(r.span().start)),
            ready_timeout: self
                .ready_timeout(s.and_then(|s| s.ready_timeout.as_ref()))?
                .unwrap_or(Duration::from_secs(30)),
        })
    }

    /// `server.ready_timeout`, more than zero: with none, no server is ever ready in
    /// time (`start` failed at once, `run` warned at every start).
    fn ready_timeout(&self, value: Option<&Text>) -> Result<Option<Duration>> {
        let timeout = self.duration(value, "server.ready_timeout")?;
        match (timeout, value) {
            (Some(Duration::ZERO), Some(text)) => Err(self.error(
                text.span(),
                format!(
                    "`server.ready_timeout` must be more than 0, got `{}` (no server is \
                     ready at once; write e.g. `30s`)",
                    text.get_ref().trim()
                ),
            )),
            _ => Ok(timeout),
        }
    }

    fn command(&self, value: &Spanned<toml::Value>) -> Result<CommandSpec> {
        let bad = || {
            self.error(
                value.span(),
                "`server.command` must be a non-empty string or array of strings",
            )
        };
        let spec = match value.get_ref() {
            toml::Value::String(line) if !line.trim().is_empty() => {
                CommandSpec::Shell(line.clone())
            }
            toml::Value::Array(items) if !items.is_empty() => items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    item.as_str().map(str::to_string).ok_or_else(|| {
                        self.error(
                            value.span(),
                            format!(
                                "`server.command`'s argument {} is `{}`, not a string: \
                                 quote it (`\"{}\"`)",
                                i + 1,
                                value_text(item),
                                value_text(item).replace('"', "\\\""),
                            ),
                        )
                    })
                })
                .collect::<Result<Vec<_>>>()
                .map(CommandSpec::Exec)?,
            _ => return Err(bad()),
        };
        check_command(&spec, "`server.command`").map_err(|why| self.error(value.span(), why))?;
        Ok(spec)
    }

    /// `server.env`: names that can be environment variables, values without NUL.
    fn env(&self, raw: &RawServer) -> Result<Vec<(String, String)>> {
        raw.env
            .iter()
            .map(|(name, value)| {
                let bad = |why: &str| {
                    self.error(
                        name.span(),
                        format!("`server.env` name `{}` {why}", name.get_ref()),
                    )
                };
                if name.get_ref().is_empty() {
                    return Err(self.error(name.span(), "`server.env` has an empty name"));
                }
                if name.get_ref().contains('=') {
                    return Err(bad("contains `=`, which ends a variable's name"));
                }
                if name.get_ref().contains('\0') {
                    return Err(self.error(name.span(), nul_message("a `server.env` name")));
                }
                self.no_nul(value, &format!("server.env.{}", name.get_ref()))?;
                Ok((name.get_ref().clone(), value.get_ref().clone()))
            })
            .collect()
    }

    /// Refuses a NUL character in `value`: a path, an argument or an environment
    /// variable cannot hold one, and the server would fail to start at every change.
    fn no_nul(&self, value: &Text, key: &str) -> Result<()> {
        if value.get_ref().contains('\0') {
            return Err(self.error(value.span(), nul_message(&format!("`{key}`"))));
        }
        Ok(())
    }

    fn signal(&self, value: &Spanned<toml::Value>) -> Result<Signal> {
        let parsed = match value.get_ref() {
            toml::Value::String(name) => parse_signal(name),
            toml::Value::Integer(number) => i32::try_from(*number)
                .ok()
                .and_then(|n| Signal::try_from(n).ok()),
            _ => None,
        };
        let shown = value_text(value.get_ref());
        let signal = parsed.ok_or_else(|| {
            self.error(
                value.span(),
                format!("unknown signal `{shown}` for `server.stop_signal`"),
            )
        })?;
        match ends_nothing(signal) {
            Some(why) => Err(self.error(
                value.span(),
                format!("`{shown}` for `server.stop_signal` {why}"),
            )),
            None => Ok(signal),
        }
    }

    fn ready(&self, raw: &Spanned<RawReady>) -> Result<Ready> {
        let r = raw.get_ref();
        let given = [
            r.port.is_some(),
            r.url.is_some(),
            r.log.is_some(),
            r.delay.is_some(),
        ];
        if given.iter().filter(|&&g| g).count() != 1 {
            return Err(self.error(
                raw.span(),
                "`server.ready` needs exactly one of `port`, `url`, `log`, `delay`",
            ));
        }
        if let Some(port) = r.port {
            if port == 0 {
                return Err(self.error(raw.span(), "`server.ready.port` must not be 0"));
            }
            return Ok(Ready::Port(port));
        }
        if let Some(url) = &r.url {
            if !url.get_ref().starts_with("http://") {
                return Err(self.error(
                    url.span(),
                    format!(
                        "`server.ready.url` must start with `http://`, got `{}`",
                        url.get_ref()
                    ),
                ));
            }
            if let Some(why) = url_problem(url.get_ref()) {
                return Err(self.error(
                    url.span(),
                    format!("bad URL `{}` for `server.ready.url`: {why}", url.get_ref()),
                ));
            }
            return Ok(Ready::Url(url.get_ref().clone()));
        }
        if let Some(log) = &r.log {
            let regex = regex::Regex::new(log.get_ref()).map_err(|err| {
                let first = err
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or("")
                    .trim()
                    .to_string();
                self.error(
                    log.span(),
                    format!(
                        "bad regex `{}` for `server.ready.log`: {first}",
                        log.get_ref()
                    ),
                )
            })?;
            if regex.is_match("") {
                // `""`, `.*`, `^`: the server's first line of any kind would pass.
                return Err(self.error(
                    log.span(),
                    format!(
                        "`server.ready.log` `{}` matches an empty line, so any line: give \
                         text the server prints once it is ready (e.g. `Listening on`)",
                        log.get_ref()
                    ),
                ));
            }
            return Ok(Ready::Log(log.get_ref().clone()));
        }
        let delay = self.duration(r.delay.as_ref(), "server.ready.delay")?;
        Ok(Ready::Delay(delay.expect("exactly one key is set")))
    }

    /// `[watch]`; `serverless` when there is no server (a `[serve]` site, or a `[proxy]`
    /// in front of a server run elsewhere): then no `file_dep` is the default, as under
    /// `reloadsup serve`, and only what is named counts (under `**`, a note saved beside
    /// the site reloaded every page, and a server run elsewhere that logs each request
    /// into the folder reloaded its pages without end).
    fn watch(
        &self,
        raw: &RawWatch,
        root: &Path,
        ov: &Overrides,
        serverless: bool,
    ) -> Result<Watch> {
        // As for the server, the file's values are checked even where flags replace them.
        let file_dep = match &raw.file_dep {
            Some(globs) => self.patterns(globs, root, "watch.file_dep")?,
            None if serverless => Vec::new(),
            None => vec![Pattern::new("**", root).expect("`**` is a valid glob")],
        };
        let file_dep = if ov.watch.is_empty() {
            file_dep
        } else {
            flag_patterns("--watch", &ov.watch, root)?
        };
        let ignore = self.patterns(&raw.ignore, root, IGNORE_KEY)?;
        let ignore = if ov.ignore.is_empty() {
            ignore
        } else {
            flag_patterns("--ignore", &ov.ignore, root)?
        };
        let file_poll = match &raw.poll {
            Some(text) => {
                let interval = self.duration(Some(text), "watch.poll")?.expect("given");
                if interval < MIN_POLL {
                    return Err(
                        self.error(text.span(), poll_too_short("`watch.poll`", text.get_ref()))
                    );
                }
                Some(interval)
            }
            None => None,
        };
        let poll = match &ov.poll {
            Some(text) => Some(flag_poll(text)?),
            None => file_poll,
        };
        Ok(Watch {
            file_dep,
            ignore,
            poll,
            gitignore: raw.gitignore.unwrap_or(true),
        })
    }

    fn reload(&self, raw: &RawFile, root: &Path, ov: &Overrides) -> Result<Reload> {
        let r = &raw.reload;
        let mut reload = default_reload(ov.no_reload || r.enabled == Some(false));
        if let Some(host) = &r.host {
            let kind = Kind::Host {
                port_key: "reload.port",
            };
            reload.host = self.address(host, "reload.host", kind)?;
        }
        if let Some(port) = r.port {
            reload.port = port;
        }
        reload.assets = self.patterns(&r.assets, root, "reload.assets")?;
        reload.allow_origins = r
            .allow_origins
            .iter()
            .map(|origin| self.origin(origin))
            .collect::<Result<_>>()?;
        super::flags::with_reload_flags(reload, ov, root)
    }

    /// A `reload.allow_origins` entry: an origin exactly as browsers send it, so that
    /// it can match (a bare host or a URL with a path never would).
    fn origin(&self, value: &Text) -> Result<String> {
        let origin = value.get_ref();
        // As copied from an address bar: a trailing slash is no path.
        let trimmed = origin.trim();
        let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
        if crate::host::valid_origin(trimmed) {
            return Ok(trimmed.to_string());
        }
        Err(self.error(
            value.span(),
            format!(
                "bad origin `{origin}` in `reload.allow_origins`: write scheme://host[:port] \
                 as browsers send it, e.g. `http://192.168.1.5:5000`"
            ),
        ))
    }

    /// The globs of list `key`, each parsed and all matchable together (with
    /// `extra`, the built-in ignores beside `watch.ignore`).
    fn patterns(&self, globs: &[Text], root: &Path, key: &str) -> Result<Vec<Pattern>> {
        let patterns = self.each_pattern(globs, root, key)?;
        let extra = if key == IGNORE_KEY {
            crate::filter::builtin_ignores()
        } else {
            Vec::new()
        };
        match pattern::unmatchable(&patterns, &extra) {
            None => Ok(patterns),
            Some(culprit) => Err(self.error(
                globs[culprit.unwrap_or(0)].span(),
                pattern::unmatchable_message(&patterns, culprit, key),
            )),
        }
    }

    fn each_pattern(&self, globs: &[Text], root: &Path, key: &str) -> Result<Vec<Pattern>> {
        globs
            .iter()
            .map(|g| {
                // No path holds a NUL: such a glob could never match.
                self.no_nul(g, key)?;
                let compiled = if key == IGNORE_KEY {
                    Pattern::ignore(g.get_ref(), root)
                } else {
                    Pattern::new(g.get_ref(), root)
                };
                compiled.map_err(|why| {
                    self.error(
                        g.span(),
                        format!("bad glob `{}` in `{key}`: {why}", g.get_ref()),
                    )
                })
            })
            .collect()
    }

    fn duration(&self, value: Option<&Text>, key: &str) -> Result<Option<Duration>> {
        value
            .map(|t| {
                parse_duration(t.get_ref(), &format!("`{key}`"))
                    .map_err(|message| self.error(t.span(), message))
            })
            .transpose()
    }

    fn address(&self, value: &Text, key: &str, kind: Kind) -> Result<String> {
        address::check(value.get_ref(), key, kind)
            .map_err(|message| self.error(value.span(), message))
    }

    /// An address reloadsup listens on, remembering that `key` set it.
    fn listen(&self, value: &Text, key: &'static str, kind: Kind) -> Result<Listen> {
        Ok(Listen {
            addr: self.address(value, key, kind)?,
            set_by: key,
            line: Some(self.line(value.span().start)),
        })
    }

    /// The TOML reader's message, with the key it concerns when the message itself does
    /// not say (an invalid type gets ``, for `server.stop_timeout` ``; a duplicated table
    /// its name).
    fn toml_message(&self, mut err: toml::de::Error) -> String {
        let mut message = plain_words(err.message().trim());
        // A date or time is read as a table of the TOML reader's own.
        let dated = err
            .span()
            .and_then(|span| self.text.get(span))
            .is_some_and(looks_like_datetime);
        if dated {
            message = message.replace("invalid type: a table", "invalid type: a date or time");
        }
        // Without the input, the reader's own rendering names the key path, if any.
        err.set_input(None);
        let rendered = err.to_string();
        let keys = rendered
            .lines()
            .find_map(|line| line.strip_prefix("in `")?.strip_suffix('`'));
        if let Some(shape) = keys.and_then(|keys| self.wrong_shape(keys)) {
            return shape;
        }
        if let (Some(field), Some(keys)) = (
            message
                .strip_prefix("missing field `")
                .and_then(|rest| rest.strip_suffix('`')),
            keys,
        ) {
            return format!("missing `{keys}.{field}`");
        }
        let about_a_value = ["invalid type", "invalid value", "invalid length"]
            .iter()
            .any(|start| message.starts_with(start));
        if let Some(hint) = peer_key_hint(&message) {
            return format!("{message}; {hint}");
        }
        if message.contains('`') && !about_a_value {
            return message;
        }
        if let Some(keys) = keys {
            return format!("{message}, for `{keys}`");
        }
        // The text it points at; a table's whole header (`[server.env]`), not the last
        // part of it.
        let spanned = err.span().and_then(|span| {
            let line_start = self.line_start(span.start)?;
            let line = self.text[line_start..].lines().next().unwrap_or("").trim();
            let text = if line.starts_with('[') {
                // Up to its closing bracket(s), without a comment after it.
                line.find(']').map_or(line, |end| {
                    let brackets = line[end..].bytes().take_while(|&b| b == b']').count();
                    &line[..end + brackets]
                })
            } else {
                self.text.get(span)?.trim()
            };
            (!text.is_empty() && text.len() <= 80 && !text.contains('\n')).then_some(text)
        });
        let message = match spanned {
            Some(text) => format!("{message}: `{text}`"),
            None => message,
        };
        match err.span().and_then(|span| self.key_at(span.start)) {
            Some(key) => format!("{message}, for `{key}`"),
            None => message,
        }
    }

    /// The key that the line holding `offset` sets (`stop_timeout = 5s` under
    /// `[server]`: `server.stop_timeout`), for a value the TOML reader could not read
    /// and so names no key of.
    fn key_at(&self, offset: usize) -> Option<String> {
        let line_start = self.line_start(offset)?;
        let line = self.text[line_start..].lines().next()?;
        let (key, _) = line.split_once('=')?;
        let key = key.trim();
        let bare = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.');
        if key.is_empty() || !key.chars().all(bare) {
            return None;
        }
        let table = self.text[..line_start].lines().rev().find_map(|l| {
            let l = l.trim();
            l.starts_with('[').then(|| {
                l.trim_start_matches('[')
                    .split(']')
                    .next()
                    .unwrap_or("")
                    .trim()
            })
        });
        Some(match table {
            Some(table) if !table.is_empty() => format!("{table}.{key}"),
            _ => key.to_string(),
        })
    }

    /// When the value at `keys` is an array where a table belongs (`[[server]]`), or a
    /// table where an array of tables belongs (`[task]`), says so: the reader's own
    /// message is about how it tried to read one as the other ("invalid length 1,
    /// expected a table with 9 elements").
    fn wrong_shape(&self, keys: &str) -> Option<String> {
        const TABLES: [&str; 7] = [
            "server",
            "server.env",
            "server.ready",
            "watch",
            "reload",
            "proxy",
            "serve",
        ];
        const ARRAYS_OF_TABLES: [&str; 1] = ["task"];
        let doc: toml::Table = toml::from_str(self.text).ok()?;
        let mut parts = keys.split('.');
        let mut value = doc.get(parts.next()?)?;
        for part in parts {
            value = value.as_table()?.get(part)?;
        }
        match value {
            toml::Value::Array(items) if TABLES.contains(&keys) => {
                let what = if !items.is_empty() && items.iter().all(toml::Value::is_table) {
                    "an array of tables"
                } else {
                    "an array"
                };
                // nodemon's `"watch": ["src"]`, written in TOML.
                let hint = if keys == "watch" && what == "an array" {
                    ": list what to watch in `[watch]` as `file_dep = [\"src/**\"]`"
                } else {
                    ""
                };
                Some(format!("`{keys}` must be a table, not {what}{hint}"))
            }
            toml::Value::Table(_) if ARRAYS_OF_TABLES.contains(&keys) => Some(format!(
                "`{keys}` must be an array of tables (`[[{keys}]]`), not a table"
            )),
            _ => None,
        }
    }

    fn error(&self, span: Range<usize>, message: impl Into<String>) -> Error {
        Error::task_file(self.file, Some(self.line(span.start)), message)
    }

    /// The 1-based line of a byte offset.
    /// Where the line holding `offset` starts (`None` for an offset inside a character
    /// or past the end).
    fn line_start(&self, offset: usize) -> Option<usize> {
        let before = self.text.get(..offset)?;
        Some(before.rfind('\n').map_or(0, |n| n + 1))
    }

    fn line(&self, offset: usize) -> usize {
        let end = offset.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1
    }
}

/// The keys of other tools' configuration files (nodemon's `nodemon.json`, air's
/// `.air.toml`, watchexec's flags) that have no key of that name here, each with what
/// to write instead.
const PEER_KEYS: &[(&[&str], &str)] = &[
    (
        &["ext", "exts", "extensions", "include_ext"],
        "name the extensions in `watch.file_dep` globs: `**/*.{py,html}`",
    ),
    (
        &[
            "exclude",
            "exclude_dir",
            "exclude_file",
            "ignore_dir",
            "ignore",
        ],
        "list what to leave out in `watch.ignore` globs: `tmp/**`",
    ),
    (
        &["watch", "include", "include_dir", "paths"],
        "list what to watch in `watch.file_dep` globs: `src/**`",
    ),
    (
        &["delay", "debounce"],
        "there is no delay to set: a save settles in 5 ms, and a burst of changes is one \
         restart",
    ),
    (
        &["kill_delay", "kill_timeout", "grace"],
        "the grace before SIGKILL is `server.stop_timeout`",
    ),
    (
        &["send_interrupt", "signal", "kill_signal"],
        "the signal that asks the server to stop is `server.stop_signal`",
    ),
    (
        &["exec", "cmd", "bin", "full_bin", "script"],
        "the server is `server.command`, and a build before it a `[[task]]` step",
    ),
    (
        &["env_file", "env_files", "dotenv"],
        "set variables in `server.env`; to read a `.env` file, `command = \"set -a; . \
         ./.env; exec …\"`",
    ),
    (
        &["build"],
        "a build step is a `[[task]]` (`name`, `file_dep`, `actions`), the server `[server]`",
    ),
    (
        &["targets"],
        "a task's outputs are files like any other: to act on them, name them in \
         `watch.file_dep` or `reload.assets`",
    ),
];

/// The keys that name a command, which in a `[[task]]` is its `actions`.
const COMMAND_KEYS: &[&str] = &["exec", "cmd", "command", "script", "run", "action"];

/// What to write instead of an unknown key that another tool's configuration has, if
/// `message` is about one.
fn peer_key_hint(message: &str) -> Option<&'static str> {
    let key = message.strip_prefix("unknown field `")?.split('`').next()?;
    // In a `[[task]]`, whose keys the message lists.
    if message.contains("`actions`") && COMMAND_KEYS.contains(&key) {
        return Some("a task's shell lines are `actions = [\"…\"]`, run in order");
    }
    PEER_KEYS
        .iter()
        .find_map(|(keys, hint)| keys.contains(&key).then_some(*hint))
}

/// The TOML reader's message in the task file's words rather than the program's:
/// ``expected struct RawServer`` is "expected a table", a sequence an array, `u16` a
/// number from 0 to 65535.
fn plain_words(message: &str) -> String {
    let mut plain = message
        .replace("expected a sequence", "expected an array")
        .replace("invalid type: sequence", "invalid type: an array")
        .replace("expected a map", "expected a table")
        .replace("invalid type: map", "invalid type: a table")
        .replace("expected u16", "expected a number from 0 to 65535")
        .replace("` as i128", "`")
        // A date or time is a table of the TOML reader's own, under a name of its own.
        .replace(
            "invalid type: string \"$__toml_private_datetime\", expected a spanned value",
            "invalid type: a date or time",
        )
        .replace(
            "unknown field `$__toml_private_datetime`",
            "invalid type: a date or time",
        )
        // Nesting past the reader's depth limit, in its two wordings.
        .replace(
            "cannot recurse further; max recursion depth met",
            "nested too deeply",
        )
        .replace("recursion limit", "tables nested too deeply")
        // An integer past 64 bits, which the reader keeps apart.
        .replace(
            "expected any valid TOML value",
            "past the largest integer TOML holds",
        );
    while let Some(at) = plain.find("struct Raw") {
        let name = at + "struct ".len();
        let name_end = plain[name..]
            .find(|c: char| !c.is_ascii_alphanumeric())
            .map_or(plain.len(), |n| name + n);
        plain.replace_range(at..name_end, "a table");
    }
    let escape = [
        "missing escaped value",
        "invalid escape",
        "too few unicode value digits",
    ];
    if escape.iter().any(|start| plain.starts_with(start)) {
        // A glob's `\[` in a double-quoted string (`"pages/\[id\].js"`).
        plain.push_str(
            " (in a double-quoted string a backslash starts an escape: write a glob with \
             backslashes in single quotes, 'pages/\\[id\\].js')",
        );
    }
    plain
}

/// Whether a TOML value's text is a date or time (`1979-05-27`, `07:32:00`), which the
/// TOML reader hands over as a table.
fn looks_like_datetime(text: &str) -> bool {
    let text = text.trim().as_bytes();
    let date = text.len() >= 10 && text[..4].iter().all(u8::is_ascii_digit) && text[4] == b'-';
    let time = text.len() >= 8 && text[..2].iter().all(u8::is_ascii_digit) && text[2] == b':';
    date || time
}

/// The `[reload]` settings when the task file has none (or there is no task file):
/// on, on loopback at the LiveReload port, unless `disabled` (`--no-reload`).
pub(super) fn default_reload(disabled: bool) -> Reload {
    Reload {
        enabled: !disabled,
        host: "127.0.0.1".to_string(),
        port: DEFAULT_RELOAD_PORT,
        assets: Vec::new(),
        allow_origins: Vec::new(),
        set_by: "`reload.port`/`reload.host`",
    }
}

/// The shortest polling interval accepted: shorter ones (`0ms`) keep a CPU busy
/// comparing the same files over and over.
pub const MIN_POLL: Duration = Duration::from_millis(10);

/// The error for a polling interval below [`MIN_POLL`], set by `key` (a key or a flag,
/// in backticks) to `text`.
pub(super) fn poll_too_short(key: &str, text: &str) -> String {
    format!(
        "{key} must be at least {}, got `{}` (polling more often keeps a CPU busy)",
        humantime::format_duration(MIN_POLL),
        text.trim()
    )
}

/// Why `url` (which starts with `http://`) cannot be fetched as written, if it cannot:
/// blanks, no host, user info, or an address that is not `host[:port]` with a port
/// from 1 to 65535.
fn url_problem(url: &str) -> Option<String> {
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Some("it holds a blank or control character".into());
    }
    let rest = &url["http://".len()..];
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.is_empty() {
        return Some("no host (write e.g. `http://127.0.0.1:8000/health`)".into());
    }
    if authority.contains('@') {
        return Some("user info (`user@`) is not supported".into());
    }
    let has_port = authority.rsplit_once(':').is_some_and(|(host, _)| {
        !host.ends_with(':') && (!host.starts_with('[') || host.ends_with(']'))
    });
    let with_port = if has_port {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    address::check(&with_port, "server.ready.url", Kind::Connect)
        .err()
        .map(|_| format!("`{authority}` is not a host with an optional port from 1 to 65535"))
}

/// The longest duration accepted: far more than any timeout or interval here needs,
/// and far from the clock's limits (`18446744073709551615s` overflowed every deadline).
const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses `250ms`, `5s`, `1m`, up to a day; a bare number is refused (the unit is part
/// of the value). The error is the whole message for `key` (in backticks).
pub fn parse_duration(text: &str, key: &str) -> Result<Duration, String> {
    let bad = |why: &str| format!("bad duration `{}` for {key}{why}", text.trim());
    let duration = humantime::parse_duration(text.trim()).map_err(|err| match err {
        humantime::DurationError::NumberOverflow => bad(": at most a day (`24h`)"),
        _ => bad(" (write e.g. `250ms`, `5s`, `1m`)"),
    })?;
    if duration > MAX_DURATION {
        return Err(bad(": at most a day (`24h`)"));
    }
    Ok(duration)
}

/// Why `signal` cannot be a stop signal, if it cannot: it pauses a process (`SIGSTOP`,
/// `SIGTSTP`, `SIGTTIN`, `SIGTTOU`), so every stop would wait out `stop_timeout` for
/// SIGKILL. Signals ignored by default (`SIGWINCH`, `SIGURG`, …) stay allowed: a
/// server may ask for one (Apache stops gracefully on `SIGWINCH`).
pub fn ends_nothing(signal: Signal) -> Option<&'static str> {
    use Signal::*;
    matches!(signal, SIGSTOP | SIGTSTP | SIGTTIN | SIGTTOU).then_some(
        "pauses a process rather than ending it: every stop would wait for \
         `stop_timeout`; use e.g. `SIGTERM` or `SIGINT`",
    )
}

/// Parses a signal name (`SIGTERM`, `term`, `TERM`) or number (`15`).
pub fn parse_signal(text: &str) -> Option<Signal> {
    let text = text.trim();
    if let Ok(number) = text.parse::<i32>() {
        return Signal::try_from(number).ok();
    }
    let upper = text.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name).ok()
}

/// Why `spec` (set by `key`, in backticks) cannot be run, if it cannot: an empty
/// program name, or a NUL character (which no argument can hold).
pub(super) fn check_command(spec: &CommandSpec, key: &str) -> Result<(), String> {
    let (program, all): (&str, &[String]) = match spec {
        CommandSpec::Shell(line) => (line, std::slice::from_ref(line)),
        CommandSpec::Exec(args) => (&args[0], args),
    };
    if program.trim().is_empty() {
        return Err(match spec {
            CommandSpec::Shell(_) => format!("{key} is empty"),
            CommandSpec::Exec(_) => format!("{key} names no program: its first word is empty"),
        });
    }
    if all.iter().any(|arg| arg.contains('\0')) {
        return Err(nul_message(key));
    }
    Ok(())
}

/// The error for a NUL character in `key` (in backticks).
fn nul_message(key: &str) -> String {
    format!(
        "{key} contains a NUL character (`\\u0000`), which no command, path or environment variable can hold"
    )
}

/// A value as an error line shows it (cut short there when long, see `Error`).
fn value_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_text(text: &str) -> Result<Config> {
        let doc = Doc {
            file: Path::new("/proj/reload.toml"),
            text,
        };
        doc.resolve(&Overrides::default())
    }

    fn error_of(text: &str) -> String {
        resolve_text(text).unwrap_err().to_string()
    }

    /// A flag replaces a key's value, but a bad value in the file is still an error:
    /// the next run without the flag would meet it.
    #[test]
    fn a_flag_does_not_hide_a_bad_value_in_the_file() {
        let every_flag = Overrides {
            watch: vec!["*.py".into()],
            ignore: vec!["*.tmp".into()],
            poll: Some("1s".into()),
            stop_signal: Some("INT".into()),
            stop_timeout: Some("1s".into()),
            command: vec!["python3".into(), "app.py".into()],
            pid_file: Some(PathBuf::from("other.pid")),
            ..Overrides::default()
        };
        let cases = [
            (
                "[server]\ncommand = \"x\"\npid_file = \"same.txt\"\nlog_file = \"same.txt\"\n",
                3,
                "server.pid_file",
            ),
            ("[server]\ncommand = 5\n", 2, "server.command"),
            (
                "[server]\ncommand = \"x\"\nstop_signal = \"NOPE\"\n",
                3,
                "NOPE",
            ),
            (
                "[server]\ncommand = \"x\"\nstop_timeout = \"soon\"\n",
                3,
                "server.stop_timeout",
            ),
            (
                "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"a/{b\"]\n",
                4,
                "watch.file_dep",
            ),
            (
                "[server]\ncommand = \"x\"\n[watch]\nignore = [\"[z-a]\"]\n",
                4,
                "watch.ignore",
            ),
            (
                "[server]\ncommand = \"x\"\n[watch]\npoll = \"1ms\"\n",
                4,
                "watch.poll",
            ),
        ];
        for (text, line, names) in cases {
            let doc = Doc {
                file: Path::new("/proj/reload.toml"),
                text,
            };
            let err = doc.resolve(&every_flag).unwrap_err().to_string();
            assert!(
                err.contains(&format!("reload.toml:{line}:")) && err.contains(names),
                "{text:?} gave {err}"
            );
            assert!(resolve_text(text).is_err(), "{text:?} without flags");
        }
    }

    #[test]
    fn minimal_file() {
        let config = resolve_text("[server]\ncommand = \"python3 app.py\"\n").unwrap();
        let server = config.server.unwrap();
        assert_eq!(server.command, CommandSpec::Shell("python3 app.py".into()));
        assert_eq!(server.pid_file.unwrap(), Path::new("/proj/reloadsup.pid"));
        assert_eq!(server.stop_signal, Signal::SIGTERM);
        assert_eq!(server.stop_timeout, Duration::from_secs(5));
        assert_eq!(config.watch.file_dep.len(), 1);
    }

    #[test]
    fn ready_urls_are_checked() {
        for good in [
            "http://127.0.0.1:8000/health",
            "http://localhost/",
            "http://[::1]:8000/x?y=1",
            "http://[::1]",
            "http://app.test:3000",
        ] {
            assert_eq!(url_problem(good), None, "{good}");
        }
        for bad in [
            "http://",
            "http:///health",
            "http://127.0.0.1:99999/",
            "http://127.0.0.1:0/",
            "http://[::1/",
            "http://127.0.0.1:8000 /x",
            "http://user@127.0.0.1:8000/",
        ] {
            assert!(url_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn errors_name_line_and_key() {
        let cases = [
            (
                "[server]\ncommand = \"x\"\nbogus = 1\n",
                "/proj/reload.toml:3: unknown field `bogus`",
            ),
            (
                "[server]\ncwd = \".\"\n",
                "/proj/reload.toml:1: missing `server.command`",
            ),
            // Another tool's key: what to write instead, in the table it is in.
            (
                "[server]\ncommand = \"x\"\n[[task]]\nname = \"css\"\nfile_dep = []\n\
                 cmd = \"sass\"\n",
                "a task's shell lines are `actions = [\"…\"]`, run in order",
            ),
            (
                "[server]\ncommand = \"x\"\n[watch]\next = [\"py\"]\n",
                "/proj/reload.toml:4: unknown field `ext`, expected one of `file_dep`, \
                 `ignore`, `poll`, `gitignore`; name the extensions in `watch.file_dep` \
                 globs: `**/*.{py,html}`",
            ),
            (
                "[server]\ncommand = \"x\"\nkill_delay = \"1s\"\n",
                "/proj/reload.toml:3: unknown field `kill_delay`, expected one of `command`, \
                 `cwd`, `env`, `pid_file`, `log_file`, `stop_signal`, `stop_timeout`, `ready`, \
                 `ready_timeout`; the grace before SIGKILL is `server.stop_timeout`",
            ),
            // A glob's escapes in a double-quoted string.
            (
                "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"pages/\\[id\\].js\"]\n",
                "/proj/reload.toml:4: missing escaped value, expected `b`, `e`, `f`, `n`, `r`, \
                 `\\`, `\"`, `x`, `u`, `U` (in a double-quoted string a backslash starts an \
                 escape: write a glob with backslashes in single quotes, 'pages/\\[id\\].js')",
            ),
            (
                "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"src/\\build/*.js\"]\n",
                "/proj/reload.toml:4: bad glob `src/\u{8}uild/*.js` in `watch.file_dep`: a \
                 backspace or form feed in it: in a double-quoted string `\\b` and `\\f` are \
                 those; write a glob with backslashes in single quotes",
            ),
            // nodemon's flat `ignore` and `watch` list, written in TOML.
            (
                "ignore = [\"dist\"]\n[server]\ncommand = \"x\"\n",
                "/proj/reload.toml:1: unknown field `ignore`, expected one of `server`, \
                 `watch`, `reload`, `proxy`, `serve`, `task`; list what to leave out in \
                 `watch.ignore` globs: `tmp/**`",
            ),
            (
                "watch = [\"src\"]\n[server]\ncommand = \"x\"\n",
                "/proj/reload.toml:1: `watch` must be a table, not an array: list what to \
                 watch in `[watch]` as `file_dep = [\"src/**\"]`",
            ),
            (
                "[server]\ncommand = \"x\"\nstop_timeout = \"5 parsecs\"\n",
                "/proj/reload.toml:3: bad duration `5 parsecs` for `server.stop_timeout`",
            ),
            (
                "[server]\ncommand = \"x\"\n[[task]]\nname = \"css\"\nfile_dep = []\n\
                 actions = [\"x\"]\n[[task]]\nname = \"css\"\nfile_dep = []\nactions = [\"y\"]\n",
                "/proj/reload.toml:8: a second `[[task]]` named `css`",
            ),
            (
                "[server]\ncommand = \"x\"\n[[task]]\nname = \"css\"\nfile_dep = []\nactions = []\n",
                "/proj/reload.toml:6: task `css` has no `actions`",
            ),
            (
                "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"*.py\", \"\"]\n",
                "/proj/reload.toml:4: bad glob `` in `watch.file_dep`: empty",
            ),
            (
                "[server]\ncommand = \"x\"\nenv = \"A=1\"\n",
                "/proj/reload.toml:3: invalid type: string \"A=1\", expected a table, for `server.env`",
            ),
            (
                "[server]\ncommand = \"x\"\nready = { url = \"http://\" }\n",
                "/proj/reload.toml:3: bad URL `http://` for `server.ready.url`: no host",
            ),
            (
                "[server]\ncommand = \"x\"\nready_timeout = \"18446744073709551615s\"\n",
                "/proj/reload.toml:3: bad duration `18446744073709551615s` for \
                 `server.ready_timeout`: at most a day",
            ),
            (
                "[server]\ncommand = \"x\"\nready_timeout = \"99999999999999999999s\"\n",
                "/proj/reload.toml:3: bad duration `99999999999999999999s` for \
                 `server.ready_timeout`: at most a day",
            ),
            (
                "[server]\ncommand = \"x\"\nready_timeout = \"0s\"\n",
                "/proj/reload.toml:3: `server.ready_timeout` must be more than 0, got `0s`",
            ),
            (
                "[server]\ncommand = \"x\"\nstop_signal = \"SIGNOPE\"\n",
                "/proj/reload.toml:3: unknown signal `SIGNOPE` for `server.stop_signal`",
            ),
            (
                "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"ok/*.py\",\n \"src/[a.py\"]\n",
                "/proj/reload.toml:5: bad glob `src/[a.py` in `watch.file_dep`",
            ),
            (
                "[server]\ncommand = []\n",
                "/proj/reload.toml:2: `server.command` must be",
            ),
            (
                "[server]\ncommand = [\"python3\",\n  5]\n",
                "/proj/reload.toml:2: `server.command`'s argument 2 is `5`, not a string: \
                 quote it (`\"5\"`)",
            ),
            ("[server\ncommand = \"x\"\n", "/proj/reload.toml:1:"),
            (
                "[server]\ncommand = \"x\"\nstop_timeout = 5s\n",
                "/proj/reload.toml:3: string values must be quoted, expected literal string: \
                 `5s`, for `server.stop_timeout`",
            ),
            (
                "[server]\ncommand = \"x\"\nstop_timeout = \n",
                "for `server.stop_timeout`",
            ),
            (
                "[watch]\nfile_dep = [\"*.py\"]\n",
                "missing `[server]` table",
            ),
            (
                "[server]\ncommand = \"x\"\nready = { port = 1, delay = \"1s\" }\n",
                "/proj/reload.toml:3: `server.ready` needs exactly one of",
            ),
            (
                "[server]\ncommand = \"x\"\n[proxy]\nlisten = \"127.0.0.1:0\"\n\
                 upstream = \"http://localhost:8000\"\n",
                "/proj/reload.toml:5: bad address `http://localhost:8000` for `proxy.upstream`: \
                 write host:port, e.g. `localhost:8000`, not a URL",
            ),
        ];
        for (text, expected) in cases {
            let got = error_of(text);
            assert!(
                got.starts_with(expected) || got.contains(expected),
                "{text:?}\n got: {got}"
            );
        }
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGINT"), Some(Signal::SIGINT));
        assert_eq!(parse_signal("int"), Some(Signal::SIGINT));
        assert_eq!(parse_signal("15"), Some(Signal::SIGTERM));
        assert_eq!(parse_signal("SIGNOPE"), None);
    }

    #[test]
    fn array_command_and_paths() {
        let config = resolve_text(
            "[server]\ncommand = [\"python3\", \"app.py\"]\ncwd = \"web\"\npid_file = \"run/x.pid\"\n",
        )
        .unwrap();
        let server = config.server.unwrap();
        assert_eq!(
            server.command,
            CommandSpec::Exec(vec!["python3".into(), "app.py".into()])
        );
        assert_eq!(server.cwd, Path::new("/proj/web"));
        assert_eq!(server.pid_file.unwrap(), Path::new("/proj/run/x.pid"));
    }
}
