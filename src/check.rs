//! `reloadsup check`: validates the task file (resolving it is the validation) and lists
//! what each glob matches now, after the ignores, so a user can see why a file does or
//! does not restart the server.

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::config::{Config, Pattern, Server};
use crate::error::{EXIT_OK, Error, Result};
use crate::filter::Filter;
use crate::report;

/// How many of a glob's files `check` lists unless asked for all: a broad `**` in a
/// large project matched 70,000, and the counts scrolled out of sight.
const LISTED: usize = 20;

/// Prints the resolved task file and the matches of every glob to stdout: the first
/// [`LISTED`] files of each, or every one (`all`).
pub fn run(config: &Config, all: bool) -> Result<i32> {
    let mut out = String::new();
    let mut filter = Filter::new(config);
    if let Some(file) = &config.task_file {
        line(&mut out, format_args!("task file: {} (ok)", file.display()));
    }
    if let Some(server) = &config.server {
        check_cwd(config, server)?;
        line(
            &mut out,
            format_args!("server: {}", server.command.display()),
        );
        match &server.ready {
            Some(ready) => line(
                &mut out,
                format_args!(
                    "ready: {} (timeout {})",
                    shown(ready),
                    humantime::format_duration(server.ready_timeout)
                ),
            ),
            None if config.proxy.is_some() => line(
                &mut out,
                format_args!("ready: default (the proxy's upstream accepts connections)"),
            ),
            None => line(
                &mut out,
                format_args!("ready: default (the server's process group listens on a port)"),
            ),
        }
    }
    let reload = &config.reload;
    if reload.enabled {
        line(
            &mut out,
            format_args!("reload: {}:{}", reload.host, reload.port),
        );
    } else {
        line(&mut out, format_args!("reload: off"));
    }
    if let Some(serve) = &config.serve {
        line(
            &mut out,
            format_args!(
                "serve: {}{} on {}",
                serve.root.display(),
                if serve.root.is_dir() {
                    ""
                } else {
                    " (not there yet: a build step must make it)"
                },
                serve
                    .listen
                    .as_ref()
                    .map_or("127.0.0.1:5000", |l| l.addr.as_str())
            ),
        );
    }
    if let Some(proxy) = &config.proxy {
        crate::browsers::check_proxy(config)?;
        line(
            &mut out,
            format_args!(
                "proxy: {} -> {} (hosts: {:?})",
                proxy.listen, proxy.upstream, proxy.allowed_hosts
            ),
        );
    }
    let groups = config
        .watch
        .file_dep
        .iter()
        .map(|p| ("watch.file_dep".to_string(), p, true))
        .chain(
            config
                .reload
                .assets
                .iter()
                .map(|p| ("reload.assets".to_string(), p, false)),
        )
        .chain(config.tasks.iter().flat_map(|t| {
            let key = format!("task `{}` file_dep", t.name);
            t.file_dep.iter().map(move |p| (key.clone(), p, false))
        }));
    let listed: Vec<_> = groups
        .map(|(key, pattern, gitignore)| {
            let mut unreadable = Vec::new();
            let matched = matches_reading(
                pattern,
                gitignore,
                &mut filter,
                &config.root,
                &mut unreadable,
            );
            (key, pattern, matched, unreadable)
        })
        .collect();
    // A glob beside others of its key that match (`.env.*` beside `package.json`) is
    // most often written for files that may come: no reason to doubt it.
    let matching: HashSet<&str> = listed
        .iter()
        .filter(|(_, _, matched, _)| !matched.is_empty())
        .map(|(key, ..)| key.as_str())
        .collect();
    for (key, pattern, matched, unreadable) in &listed {
        // A glob's folder that a build makes later (`dist/`) is watched once made.
        let missing = (!pattern.base.exists())
            .then(|| pattern.base.strip_prefix(&config.root).ok())
            .flatten()
            .filter(|rel| !rel.as_os_str().is_empty());
        // A file named as it is that is there: an ignore wins over it.
        let named_but_ignored =
            !crate::config::has_meta(&pattern.text) && config.root.join(&pattern.text).is_file();
        let none = match (matched.is_empty(), unreadable.is_empty(), missing) {
            (true, true, Some(folder)) => {
                format!(" (none yet: `{}/` is not there yet)", folder.display())
            }
            (true, true, None) if named_but_ignored => {
                " (it is there, but ignored: an ignore glob, a default ignore or \
                 `.gitignore` matches it, and wins)"
                    .into()
            }
            (true, true, None) if matching.contains(key.as_str()) => " (none yet)".into(),
            (true, true, None) => " (none yet: is the glob right?)".into(),
            (true, false, _) => " (none that could be read)".into(),
            (false, ..) => String::new(),
        };
        line(
            &mut out,
            format_args!("{key} `{}`: {} file(s){none}", pattern.text, matched.len()),
        );
        if let Some(hint) = pattern.literal_hint(&config.root) {
            line(&mut out, format_args!("  {hint}"));
        }
        // A folder that cannot be read was taken for one holding nothing.
        for (folder, err) in unreadable {
            let shown = folder.strip_prefix(&config.root).unwrap_or(folder);
            line(
                &mut out,
                format_args!("  cannot read `{}`: {err}", shown.display()),
            );
        }
        let shown_count = if all { matched.len() } else { LISTED };
        for path in matched.iter().take(shown_count) {
            let shown = path.strip_prefix(&config.root).unwrap_or(path);
            line(&mut out, format_args!("  {}", shown.display()));
        }
        if matched.len() > shown_count {
            line(
                &mut out,
                format_args!(
                    "  … and {} more (`reloadsup check --all` lists every one)",
                    matched.len() - shown_count
                ),
            );
        }
    }
    report::stdout(&out).map_err(|err| Error::io("cannot write to stdout", err))?;
    Ok(EXIT_OK)
}

/// A working folder that does not exist fails every start: an error here, though `run`
/// starts anyway (a build step may make the folder) and says so at each start.
fn check_cwd(config: &Config, server: &Server) -> Result<()> {
    let Some(why) = server.cwd_problem() else {
        return Ok(());
    };
    let message = format!("`server.cwd` `{}` {why}", server.cwd.display());
    Err(match &config.task_file {
        Some(file) => Error::task_file(file, server.cwd_line, message),
        None => Error::Usage(message),
    })
}

/// Appends one line to `out`, its control characters escaped as in status lines (a
/// file name with a newline or an escape sequence is one line, and leaves the
/// terminal alone).
fn line(out: &mut String, text: std::fmt::Arguments<'_>) {
    out.push_str(&report::escape_controls(&text.to_string()));
    out.push('\n');
}

/// The files under the pattern's folder that it matches and that are not ignored
/// (`gitignore`: whether `.gitignore` applies, as it does for restart globs). Also how
/// the build steps run at the start find their inputs (see `tasks::run_at_start`).
pub fn matches(
    pattern: &Pattern,
    gitignore: bool,
    filter: &mut Filter,
    root: &Path,
) -> Vec<PathBuf> {
    matches_reading(pattern, gitignore, filter, root, &mut Vec::new())
}

/// [`matches()`], collecting in `unreadable` the folders that could not be read, with why.
fn matches_reading(
    pattern: &Pattern,
    gitignore: bool,
    filter: &mut Filter,
    root: &Path,
    unreadable: &mut Vec<(PathBuf, std::io::Error)>,
) -> Vec<PathBuf> {
    let matcher = pattern.glob.compile_matcher();
    let mut files = Vec::new();
    let mut walked = Walk {
        gitignore,
        filter,
        files: &mut files,
        unreadable,
        ancestors: Vec::new(),
        visits: HashMap::new(),
    };
    walked.walk(&pattern.base, pattern.recursive);
    files.retain(|f| {
        matcher.is_match(Pattern::match_form(f, root))
            && !filter.is_ignored(f)
            && !(gitignore && filter.gitignored_for_restart(f, false))
    });
    files.sort();
    files
}

/// A walk of the folders a glob can match in, following links to folders as the
/// watcher does (see `watch`): a folder's files are listed under each path that leads
/// to it, as the watcher names their changes, but for a link back up the tree.
struct Walk<'a> {
    /// Whether `.gitignore` prunes folders.
    gitignore: bool,
    filter: &'a mut Filter,
    files: &'a mut Vec<PathBuf>,
    /// The folders that could not be read (a folder not there is none of them).
    unreadable: &'a mut Vec<(PathBuf, std::io::Error)>,
    /// The folders being walked, from the first down, by device and inode: a link
    /// to one of them leads back up the tree.
    ancestors: Vec<(u64, u64)>,
    /// How often each folder was walked, under any path: at most [`PATHS_PER_FOLDER`].
    visits: HashMap<(u64, u64), usize>,
}

/// The most paths a folder's files are listed under: links that lead to folders with
/// links to the next ones (`a` and `b` in each of twenty) make 2^20 paths, and `check`
/// ran for minutes.
const PATHS_PER_FOLDER: usize = 8;

impl Walk<'_> {
    fn walk(&mut self, dir: &Path, recursive: bool) {
        let id = std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()));
        if let Some(id) = id {
            let visits = self.visits.entry(id).or_default();
            if self.ancestors.contains(&id) || *visits >= PATHS_PER_FOLDER {
                return;
            }
            *visits += 1;
            self.ancestors.push(id);
        }
        self.walk_in(dir, recursive);
        if id.is_some() {
            self.ancestors.pop();
        }
    }

    fn walk_in(&mut self, dir: &Path, recursive: bool) {
        self.filter.add_gitignore(dir);
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return,
            Err(err) => {
                self.unreadable.push((dir.to_path_buf(), err));
                return;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match entry.file_type() {
                Ok(kind) if kind.is_dir() => {
                    if recursive && !self.filter.prune_dir(&path, self.gitignore) {
                        self.walk(&path, recursive);
                    }
                }
                Ok(kind) if kind.is_symlink() && path.is_dir() => {
                    if recursive && !self.filter.prune_dir(&path, self.gitignore) {
                        self.walk(&path, recursive);
                    }
                }
                Ok(_) => self.files.push(path),
                Err(_) => {}
            }
        }
    }
}

/// A readiness check as the task file writes it.
fn shown(ready: &crate::config::Ready) -> String {
    use crate::config::Ready;
    match ready {
        Ready::Port(port) => format!("{{ port = {port} }}"),
        Ready::Url(url) => format!("{{ url = {url:?} }}"),
        Ready::Log(regex) => format!("{{ log = {regex:?} }}"),
        Ready::Delay(delay) => format!("{{ delay = \"{}\" }}", humantime::format_duration(*delay)),
    }
}
