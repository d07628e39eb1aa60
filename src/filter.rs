//! Deciding what a changed path means: nothing, a server restart, a browser-only asset
//! reload, and which build tasks it feeds.
//!
//! Pure and fast (no I/O after construction but for reading `.gitignore` files when a
//! folder is first watched), so the app loop can call it for every event. A path is
//! ignored when it matches the default ignores of the contract (VCS and dependency
//! folders, byte code, editor temp and backup files), the user's `ignore` globs, or the
//! supervisor's own PID and log files.
//!
//! `.gitignore` applies to the restart globs (`watch.file_dep`): there it keeps
//! virtualenvs, build folders and caches out of a broad `**/*.py`. It does not apply to
//! `reload.assets` or a task's `file_dep`, because those usually name build outputs
//! (compiled CSS, bundles) that git is told to ignore.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use globset::{Glob, GlobBuilder, GlobSet, GlobSetBuilder};
use ignore::gitignore::{Gitignore, GitignoreBuilder};

use crate::config::{Config, Pattern, has_meta};
use crate::procfs::HeldFile;

/// Folders never watched, wherever they are.
const IGNORED_DIRS: &[&str] = &[".git", "node_modules", "target", "__pycache__", ".venv"];

/// Files never acted on: byte code and the temp and backup files of editors and tools.
const IGNORED_FILES: &[&str] = &[
    "*.pyc",
    // vim: the write probe, swap files, backups
    "4913",
    ".*.sw[a-z]",
    "*~",
    // emacs: lock links and auto-save files
    ".#*",
    "#*#",
    // JetBrains safe write
    "*___jb_tmp___",
    "*___jb_old___",
    // `sed -i` writes `sedXXXXXX` beside the file, then renames it over
    "sed[a-zA-Z0-9][a-zA-Z0-9][a-zA-Z0-9][a-zA-Z0-9][a-zA-Z0-9][a-zA-Z0-9]",
    // GNOME's GIO (gedit and friends) safe write
    ".goutputstream-*",
    // Kate's swap files
    ".*.kate-swp",
    // doit's record of what its tasks last ran on (`.doit.db`, or `.dat`/`.dir`/`.bak`
    // beside it): rewritten at each `doit` run, as a build step's
    ".doit.db*",
];

/// What a change of one path asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    /// The server must restart.
    pub restart: bool,
    /// Browsers should reload this asset in place (no restart).
    pub asset: bool,
    /// Indexes of the `[[task]]`s whose inputs changed.
    pub tasks: Vec<usize>,
}

impl Verdict {
    /// Whether the change asks for nothing at all.
    pub fn is_ignored(&self) -> bool {
        !self.restart && !self.asset && self.tasks.is_empty()
    }
}

/// How long, while no program is found reading reloadsup's output pipe, before they
/// are looked for again.
const READERS_AGAIN: Duration = Duration::from_secs(5);

/// The most processes of the server whose open files are looked at.
const SERVER_PROCESSES_MAX: usize = 256;

/// The compiled matchers.
#[derive(Debug)]
pub struct Filter {
    root: PathBuf,
    file_dep: GlobSet,
    assets: GlobSet,
    tasks: Vec<GlobSet>,
    /// The folders each kind of glob can match in (see [`Reach`]), for folders that
    /// go away whole.
    reach: Reach,
    /// Watched folders that went away (deleted, or moved out): a change to one stands
    /// for the files it held, which the globs cannot be asked about one by one.
    gone_folders: HashMap<PathBuf, bool>,
    ignore: GlobSet,
    ignore_dirs: GlobSet,
    /// The folders of the user's ignores that are no change themselves (see
    /// [`ignored_names`]).
    ignored_names: GlobSet,
    own_files: Vec<PathBuf>,
    /// The files reloadsup's own stdout and stderr go to (`run > run.log`), resolved:
    /// each line written there would otherwise be a change.
    own_output: Vec<PathBuf>,
    /// Whether this process's output goes into a pipe: the files the programs reading
    /// it write are its output too (see [`Filter::follow_output`]).
    piped: bool,
    /// Those programs, once looked for, and when.
    readers: Option<(Vec<i32>, Instant)>,
    /// The files (device and inode) they and their children had open for writing when
    /// last looked.
    piped_output: Vec<HeldFile>,
    /// The files (device and inode) the server's processes have been seen holding open
    /// for writing since it was last ready (see [`Filter::follow_server`]).
    server_output: Vec<HeldFile>,
    use_gitignore: bool,
    /// `.gitignore` matchers, deepest folder first.
    gitignores: Vec<Gitignore>,
}

impl Filter {
    /// Compiles the matchers of `config`. The globs were validated by `config::resolve`.
    pub fn new(config: &Config) -> Filter {
        let mut own_files = Vec::new();
        if let Some(server) = &config.server {
            if let Some(pid_file) = &server.pid_file {
                let state = crate::control::state::state_path(pid_file);
                own_files.push(crate::pidfile::temp_path(&state));
                own_files.push(state);
                own_files.push(crate::control::state::lock_path(pid_file));
                own_files.push(crate::pidfile::temp_path(pid_file));
                own_files.push(pid_file.clone());
            }
            own_files.push(server.log_file.clone());
        }
        let user_ignores: Vec<Glob> = config.watch.ignore.iter().map(|p| p.glob.clone()).collect();
        let mut filter = Filter {
            root: config.root.clone(),
            file_dep: set_of(&config.watch.file_dep),
            assets: set_of(&config.reload.assets),
            tasks: config.tasks.iter().map(|t| set_of(&t.file_dep)).collect(),
            reach: Reach {
                file_dep: bases_of(&config.watch.file_dep),
                assets: bases_of(&config.reload.assets),
                tasks: config.tasks.iter().map(|t| bases_of(&t.file_dep)).collect(),
            },
            gone_folders: HashMap::new(),
            ignore: default_ignores(&user_ignores),
            ignore_dirs: dir_ignores(&user_ignores),
            ignored_names: ignored_names(&user_ignores),
            own_files,
            own_output: output_files(),
            piped: [1, 2]
                .into_iter()
                .any(|fd| crate::procfs::own_pipe(fd).is_some()),
            readers: None,
            piped_output: Vec::new(),
            server_output: Vec::new(),
            use_gitignore: config.watch.gitignore,
            gitignores: Vec::new(),
        };
        if filter.use_gitignore {
            filter.add_gitignores_above_root();
        }
        filter
    }

    /// Adds the files written by the processes reading reloadsup's output through a
    /// pipe (or down a pipeline) to its own output: `reloadsup run 2>&1 | tee run.log`
    /// under the default `**` restarted the server at every line (each restart printed
    /// more). Looked up before each batch is looked at, since the reader may open its
    /// file after reloadsup has started (a file it writes is open by then), or start
    /// the program that writes it (`| { sleep 1; tee run.log; }`): the readers are
    /// found once (again after [`READERS_AGAIN`] while none are), and then their files
    /// and their children's are read at each batch, which costs a few reads rather
    /// than a look at every process of the session (a few ms on each save).
    pub fn follow_output(&mut self) {
        if !self.piped {
            return;
        }
        let stale = self
            .readers
            .as_ref()
            .is_none_or(|(readers, found)| readers.is_empty() && found.elapsed() >= READERS_AGAIN);
        if stale {
            self.readers = Some((crate::procfs::output_readers(&[1, 2]), Instant::now()));
        }
        let Some((readers, _)) = &self.readers else {
            return;
        };
        let writers: Vec<i32> = readers
            .iter()
            .flat_map(|&reader| std::iter::once(reader).chain(crate::procfs::children(reader)))
            .collect();
        // Only while they hold a file is it theirs: a program that reads the pipe and
        // also saves a project file now and then (a test harness) must not hide that
        // file's later saves by others (it did, for the rest of the run).
        self.piped_output = writers
            .into_iter()
            .flat_map(crate::procfs::files_written_by)
            .collect();
    }

    /// Adds the files the server's processes (the process `leader` and those below it)
    /// hold open for writing to its output, whose changes restart nothing: a server
    /// that logs to `app.log` under the default `**` was restarted by its own log, about
    /// once a second (a file written and held open counts after a pause), and again by
    /// the close of the log as each server ended, without end. Looked at when the
    /// server is ready (`fresh`: what an earlier server held is forgotten then, so a
    /// file it no longer writes is the user's again), as each batch comes, and before
    /// it is stopped; what was seen is kept until the next server is ready, for the
    /// closes that come as a server ends, stopped or crashed.
    pub fn follow_server(&mut self, leader: i32, fresh: bool) {
        if fresh {
            self.server_output.clear();
        }
        let mut processes = vec![leader];
        let mut index = 0;
        // Bounded: a fork bomb under the server must not stall the loop.
        while index < processes.len() && processes.len() < SERVER_PROCESSES_MAX {
            processes.extend(crate::procfs::children(processes[index]));
            index += 1;
        }
        for file in processes
            .into_iter()
            .flat_map(crate::procfs::files_written_by)
        {
            if !self.server_output.contains(&file) {
                self.server_output.push(file);
            }
        }
    }

    /// Records that the watched folder `dir` went away: a change reported for it is
    /// then about every file it held. `restarts`: whether it held a file that restarts
    /// the server (one of stylesheets alone reloads browsers instead).
    pub fn folder_gone(&mut self, dir: &Path, restarts: bool) {
        // Reported twice (by the folder above and by its own watch), or a folder of the
        // name gone again before the batch: what either held counts.
        *self.gone_folders.entry(dir.to_path_buf()).or_insert(false) |= restarts;
    }

    /// Whether `dir` went away and its batch is not classified yet.
    pub fn is_gone(&self, dir: &Path) -> bool {
        self.gone_folders.contains_key(dir)
    }

    /// Forgets that `dir` went away: its going is no change (it held nothing), or its
    /// batch has been classified. Until then it stays gone for the filter, even if a
    /// folder or file of its name is made meanwhile (`mv src/pkg /tmp && mkdir
    /// src/pkg` in one batch was no change: the new folder took the name first).
    pub fn folder_back(&mut self, dir: &Path) {
        self.gone_folders.remove(dir);
    }

    /// Classifies a changed file (or a folder that went away).
    pub fn classify(&self, path: &Path) -> Verdict {
        if let Some(&restarts) = self.gone_folders.get(path) {
            return self.classify_gone_folder(path, restarts);
        }
        if self.is_ignored(path) {
            return Verdict::default();
        }
        let form = Pattern::match_form(path, &self.root);
        let reach = &self.reach;
        let asset = Reach::matches(&self.assets, &reach.assets, form, path);
        let file_dep = Reach::matches(&self.file_dep, &reach.file_dep, form, path);
        Verdict {
            // An asset is swapped in the browser; it never restarts the server.
            restart: !asset && file_dep && !self.gitignored_for_restart(path, false),
            asset,
            tasks: (0..self.tasks.len())
                .filter(|&i| Reach::matches(&self.tasks[i], &reach.tasks[i], form, path))
                .collect(),
        }
    }

    /// A folder that went away, with whatever it held: it counts for each kind of glob
    /// that can match in it or below it (for a restart, only if it held such a file).
    fn classify_gone_folder(&self, dir: &Path, restarts: bool) -> Verdict {
        if self.prune_dir(dir, false) {
            return Verdict::default();
        }
        let reach = &self.reach;
        Verdict {
            restart: restarts
                && Reach::holds(&reach.file_dep, dir)
                && !self.gitignored_for_restart(dir, true),
            asset: Reach::holds(&reach.assets, dir),
            tasks: (0..reach.tasks.len())
                .filter(|&i| Reach::holds(&reach.tasks[i], dir))
                .collect(),
        }
    }

    /// Whether a folder is never to be watched (nor anything below it). `gitignore`
    /// says whether `.gitignore` counts: only when restart globs alone need the folder.
    pub fn prune_dir(&self, dir: &Path, gitignore: bool) -> bool {
        if dir
            .file_name()
            .is_some_and(|name| IGNORED_DIRS.iter().any(|d| name == *d))
        {
            return true;
        }
        let form = Pattern::match_form(dir, &self.root);
        self.ignore_dirs.is_match(form)
            || self.is_ignored(dir)
            || (gitignore && self.gitignored_for_restart(dir, true))
    }

    /// Reads `dir/.gitignore`, if there is one, so it applies below `dir`.
    pub fn add_gitignore(&mut self, dir: &Path) {
        if self.gitignores.iter().any(|g| g.path() == dir) {
            return;
        }
        self.load_gitignore(dir);
    }

    /// Reads `dir/.gitignore` again after it changed (or appeared, or went away).
    pub fn reload_gitignore(&mut self, dir: &Path) {
        self.gitignores.retain(|g| g.path() != dir);
        self.load_gitignore(dir);
    }

    /// Reads `dir/.gitignore`, and at a repository's top `.git/info/exclude` with it
    /// (what git ignores in this clone alone; read first, so that the `.gitignore`'s
    /// rules win, as in git).
    fn load_gitignore(&mut self, dir: &Path) {
        if !self.use_gitignore {
            return;
        }
        let files = [dir.join(".git/info/exclude"), dir.join(".gitignore")];
        let mut builder = GitignoreBuilder::new(dir);
        let mut read = false;
        for file in files.iter().filter(|file| file.is_file()) {
            // A line that is no glob is skipped; the others still apply.
            let _partial_error = builder.add(file);
            read = true;
        }
        let Some(matcher) = read.then(|| builder.build().ok()).flatten() else {
            return;
        };
        self.gitignores.push(matcher);
        self.gitignores
            .sort_by_key(|g| std::cmp::Reverse(g.path().components().count()));
    }

    /// The `.gitignore` files of the folders above the root, up to the repository's top.
    fn add_gitignores_above_root(&mut self) {
        let root = self.root.clone();
        for dir in root.ancestors() {
            self.add_gitignore(dir);
            if dir.join(".git").exists() {
                break;
            }
        }
    }

    /// Whether a path is ignored for every purpose: the default ignores, the user's
    /// ignores and the supervisor's own files.
    pub fn is_ignored(&self, path: &Path) -> bool {
        let form = Pattern::match_form(path, &self.root);
        self.own_files.iter().any(|own| own == path)
            || self.is_own_output(path)
            || self.ignore.is_match(form)
            || self.ignored_names.is_match(form)
    }

    /// Whether `path` is where reloadsup's own output goes. Compared resolved (the
    /// watched folder may be reached through a symbolic link), which costs a look-up
    /// only for a path with the output file's name.
    pub fn is_own_output(&self, path: &Path) -> bool {
        is_among(path, &self.own_output)
    }

    /// Whether `path` was open for writing by a program reading reloadsup's output
    /// when [`Filter::follow_output`] last looked: asked of a batch's paths only, once
    /// it has looked, so that a file such a program held for a moment is not taken
    /// for its own at every later event (whose batch would never come to look again).
    pub fn is_piped_output(&self, path: &Path) -> bool {
        is_one_of(path, &self.piped_output)
    }

    /// Whether `path` is a file the server writes itself (see
    /// [`Filter::follow_server`]): the very file, not one saved in its place since (a
    /// database reset by `mv seed.db db.sqlite3` under a server holding the old one).
    pub fn is_server_output(&self, path: &Path) -> bool {
        is_one_of(path, &self.server_output)
    }

    /// Whether `.gitignore` keeps `path` from restarting the server: git ignores it,
    /// and no restart glob is written for a folder git ignores that holds it. A glob
    /// whose folder git ignores names it on purpose (`dist/**/*.js`, a build's output,
    /// with `dist/` in `.gitignore`: it never restarted the server) and wins: below its
    /// folder only the `.gitignore` files in that folder or deeper apply (those of a
    /// project inside a folder an enclosing repository ignores still do). A broad
    /// `**/*.js` still leaves `dist` out.
    pub fn gitignored_for_restart(&self, path: &Path, is_dir: bool) -> bool {
        if !self.gitignored(path, is_dir) {
            return false;
        }
        let written_for = self
            .reach
            .file_dep
            .iter()
            .map(|(base, _)| base)
            .filter(|base| path.starts_with(base) && self.gitignored(base, true))
            .max_by_key(|base| base.components().count());
        match written_for {
            Some(base) => self.gitignored_by(path, is_dir, |folder| folder.starts_with(base)),
            None => true,
        }
    }

    /// Whether a `.gitignore` (the deepest one that has a say) ignores `path`.
    fn gitignored(&self, path: &Path, is_dir: bool) -> bool {
        self.gitignored_by(path, is_dir, |_| true)
    }

    /// Whether a `.gitignore` (the deepest one that has a say, among those in the
    /// folders `counts` accepts) ignores `path`.
    fn gitignored_by(&self, path: &Path, is_dir: bool, counts: impl Fn(&Path) -> bool) -> bool {
        for matcher in &self.gitignores {
            if !path.starts_with(matcher.path())
                || path == matcher.path()
                || !counts(matcher.path())
            {
                continue;
            }
            let found = matcher.matched_path_or_any_parents(path, is_dir);
            if found.is_ignore() {
                return true;
            }
            if found.is_whitelist() {
                return false;
            }
        }
        false
    }
}

/// For each kind of glob, the folders its globs can match in: each glob's base folder
/// and whether folders below it can hold matches.
#[derive(Debug, Default)]
struct Reach {
    file_dep: Vec<(PathBuf, bool)>,
    assets: Vec<(PathBuf, bool)>,
    tasks: Vec<Vec<(PathBuf, bool)>>,
}

impl Reach {
    /// Whether one of the globs in `set` (whose bases are `bases`, in the same order)
    /// matches `path` (in its match form `form`) inside its own base folder. A path
    /// outside it is no match even if the glob's text matches: `**` matches the
    /// absolute path of a file outside the project, in a folder watched only so that a
    /// deleted project folder is seen when it comes back.
    fn matches(set: &GlobSet, bases: &[(PathBuf, bool)], form: &Path, path: &Path) -> bool {
        set.matches(form)
            .into_iter()
            .any(|i| bases.get(i).is_some_and(|(base, _)| path.starts_with(base)))
    }

    /// Whether `dir`, gone with everything in it, may have held a match of one of
    /// `bases`: it is a base, lies below a recursive one, or holds one.
    fn holds(bases: &[(PathBuf, bool)], dir: &Path) -> bool {
        bases
            .iter()
            .any(|(base, recursive)| base.starts_with(dir) || (dir.starts_with(base) && *recursive))
    }
}

fn bases_of(patterns: &[Pattern]) -> Vec<(PathBuf, bool)> {
    patterns
        .iter()
        .map(|p| (p.base.clone(), p.recursive))
        .collect()
}

fn set_of(patterns: &[Pattern]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for pattern in patterns {
        builder.add(pattern.glob.clone());
    }
    builder
        .build()
        .expect("globs compiled one by one also compile as a set")
}

fn glob(text: &str) -> Glob {
    GlobBuilder::new(text)
        .literal_separator(true)
        .build()
        .expect("built-in ignore globs are valid")
}

/// Whether the file at `path` is one of `files`: the very file a program holds open,
/// not one saved in its place since. Looks at the disk only for a path with the name
/// of one of them (this is asked of every write event).
fn is_one_of(path: &Path, files: &[HeldFile]) -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(name) = path.file_name() else {
        return false;
    };
    let named: Vec<&HeldFile> = files.iter().filter(|f| f.name == name).collect();
    !named.is_empty()
        && std::fs::metadata(path)
            .is_ok_and(|meta| named.iter().any(|f| f.id == (meta.dev(), meta.ino())))
}

/// Whether `path` is one of `files` (resolved paths), compared resolved: the watched
/// folder may be reached through a symbolic link. Costs a look-up only for a path
/// with one of their names.
fn is_among(path: &Path, files: &[PathBuf]) -> bool {
    if !files
        .iter()
        .any(|file| file.file_name() == path.file_name())
    {
        return false;
    }
    let resolved = path
        .parent()
        .and_then(|dir| dir.canonicalize().ok())
        .zip(path.file_name())
        .map(|(dir, name)| dir.join(name));
    resolved.is_some_and(|resolved| files.contains(&resolved))
}

/// The regular files that this process's stdout and stderr are, if they are files.
fn output_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = [1, 2]
        .iter()
        .filter_map(|fd| std::fs::read_link(format!("/proc/self/fd/{fd}")).ok())
        .filter(|path| path.is_file())
        .collect();
    files.dedup();
    files
}

/// The globs of the folders and files always ignored, to be matched beside the
/// user's ignores (the task file's check compiles them together, as here).
pub fn builtin_ignores() -> Vec<Glob> {
    // The folder itself too: made or removed (`npm install`, a first `__pycache__`),
    // it is no change of the project's.
    let dirs = IGNORED_DIRS
        .iter()
        .flat_map(|dir| [glob(&format!("**/{dir}")), glob(&format!("**/{dir}/**"))]);
    let files = IGNORED_FILES.iter().map(|file| glob(&format!("**/{file}")));
    dirs.chain(files).collect()
}

fn default_ignores(user: &[Glob]) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for g in builtin_ignores().iter().chain(user) {
        builder.add(g.clone());
    }
    builder.build().expect("valid globs build a valid set")
}

/// A user ignore `X/**` ignores everything below `X`, so folder `X` itself need not be
/// watched: the globs with that suffix stripped match the folders to prune.
fn dir_ignores(user: &[Glob]) -> GlobSet {
    folders_of(user, |_| true)
}

/// The folders of the user's `X/**` ignores that are themselves no change when made
/// or removed: those whose last component is a plain name (`dist/**`,
/// `**/build/**`). One with a wildcard there (`src/*/**`) would match the files beside
/// the folders too, which the ignore leaves alone.
fn ignored_names(user: &[Glob]) -> GlobSet {
    folders_of(user, |dir| !has_meta(dir.rsplit('/').next().unwrap_or(dir)))
}

/// The `X` of each `X/**` among `user` that `keep` accepts, as one set.
fn folders_of(user: &[Glob], keep: impl Fn(&str) -> bool) -> GlobSet {
    let mut builder = GlobSetBuilder::new();
    for g in user {
        if let Some(dir) = g.glob().strip_suffix("/**") {
            if !dir.is_empty() && keep(dir) {
                builder.add(glob(dir));
            }
        }
    }
    builder.build().expect("valid globs build a valid set")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Overrides, resolve};

    fn filter_for(toml: &str) -> (Filter, tempdir::Dir) {
        let dir = tempdir::Dir::new();
        let file = dir.path.join("reload.toml");
        std::fs::write(&file, toml).unwrap();
        let config = resolve(Some(&file), &dir.path, &Overrides::default()).unwrap();
        (Filter::new(&config), dir)
    }

    /// A throwaway folder for the tests of this module.
    mod tempdir {
        use std::path::PathBuf;
        pub struct Dir {
            pub path: PathBuf,
        }
        impl Dir {
            pub fn new() -> Dir {
                use std::sync::atomic::{AtomicUsize, Ordering};
                static N: AtomicUsize = AtomicUsize::new(0);
                let path = std::env::temp_dir().join(format!(
                    "reloadsup-filter-{}-{}",
                    std::process::id(),
                    N.fetch_add(1, Ordering::SeqCst)
                ));
                std::fs::create_dir_all(&path).unwrap();
                Dir {
                    path: path.canonicalize().unwrap(),
                }
            }
        }
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.path);
            }
        }
    }

    const TOML: &str = r#"
[server]
command = "python3 app.py"
[watch]
file_dep = ["**/*.py", "templates/**/*.html"]
ignore = ["**/migrations/**"]
[reload]
assets = ["static/**/*.css"]
[[task]]
name = "css"
file_dep = ["scss/**/*.scss"]
actions = ["true"]
"#;

    /// A folder above the project is watched while the project's folder is gone (so
    /// its return is seen): a file there matches `**` by its text, not by its place.
    #[test]
    fn a_glob_matches_only_inside_its_own_folder() {
        let (filter, dir) = filter_for("[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"**\"]\n");
        assert!(filter.classify(&dir.path.join("app.py")).restart);
        let outside = dir.path.parent().unwrap().join("neighbour.log");
        assert!(!filter.classify(&outside).restart);
        // A glob may name a folder outside the project: inside that folder it matches.
        let (filter, dir) =
            filter_for("[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"../shared/*.py\"]\n");
        let shared = dir.path.parent().unwrap().join("shared");
        assert!(filter.classify(&shared.join("util.py")).restart);
        assert!(!filter.classify(&dir.path.join("util.py")).restart);
    }

    /// Under a catch-all `**`, editors' temp and swap files (and doit's record) still
    /// restart nothing.
    #[test]
    fn editor_files_are_ignored_under_a_catch_all() {
        let (filter, dir) = filter_for("[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"**\"]\n");
        assert!(filter.classify(&dir.path.join("app.py")).restart);
        for name in [
            "4913",
            ".app.py.swp",
            "app.py~",
            ".#app.py",
            "#app.py#",
            "app.py___jb_tmp___",
            "sedX1b2Zq",
            ".goutputstream-AB12CD",
            ".app.py.kate-swp",
            ".doit.db",
            ".doit.db.dat",
        ] {
            assert!(filter.classify(&dir.path.join(name)).is_ignored(), "{name}");
        }
    }

    /// An ignored folder made or removed is no change either: not the default ones
    /// (`npm install`, Python's first `__pycache__`), nor one the user ignores with `/**`.
    #[test]
    fn ignored_folders_themselves_are_ignored() {
        let (filter, dir) = filter_for(
            "[server]\ncommand = \"x\"\n[watch]\nfile_dep = [\"**\"]\n\
             ignore = [\"dist/**\", \"src/*/**\", \"**/build/**\"]\n",
        );
        for name in [
            "node_modules",
            "__pycache__",
            "src/.git",
            "a/target",
            ".venv",
            "dist",
            "a/b/build",
            "src/sub/x.py",
        ] {
            assert!(filter.classify(&dir.path.join(name)).is_ignored(), "{name}");
        }
        for name in [
            "src",
            "targets",
            "node_modules.py",
            "distance",
            "src/app.py",
            "top.py",
        ] {
            assert!(filter.classify(&dir.path.join(name)).restart, "{name}");
        }
    }

    #[test]
    fn table() {
        let (filter, dir) = filter_for(TOML);
        let restart = Verdict {
            restart: true,
            ..Verdict::default()
        };
        let cases: &[(&str, Verdict)] = &[
            ("app.py", restart.clone()),
            ("pkg/deep/mod.py", restart.clone()),
            ("templates/a/b.html", restart.clone()),
            ("notes.txt", Verdict::default()),
            ("other/page.html", Verdict::default()),
            ("__pycache__/app.cpython-311.pyc", Verdict::default()),
            ("pkg/x.pyc", Verdict::default()),
            (".git/HEAD", Verdict::default()),
            ("node_modules/x/index.py", Verdict::default()),
            ("pkg/migrations/0001.py", Verdict::default()),
            ("4913", Verdict::default()),
            (".app.py.swp", Verdict::default()),
            (".app.py.swx", Verdict::default()),
            ("app.py~", Verdict::default()),
            (".#app.py", Verdict::default()),
            ("#app.py#", Verdict::default()),
            ("app.py___jb_tmp___", Verdict::default()),
            ("app.py___jb_old___", Verdict::default()),
            ("sedX1b2Zq", Verdict::default()),
            ("reloadsup.pid", Verdict::default()),
            ("reloadsup.log", Verdict::default()),
            (
                "static/site.css",
                Verdict {
                    asset: true,
                    ..Verdict::default()
                },
            ),
            (
                "scss/main.scss",
                Verdict {
                    tasks: vec![0],
                    ..Verdict::default()
                },
            ),
        ];
        for (rel, expected) in cases {
            assert_eq!(&filter.classify(&dir.path.join(rel)), expected, "{rel}");
        }
    }

    #[test]
    fn pruned_dirs() {
        let (filter, dir) = filter_for(TOML);
        assert!(filter.prune_dir(&dir.path.join(".git"), false));
        assert!(filter.prune_dir(&dir.path.join("a/node_modules"), false));
        assert!(filter.prune_dir(&dir.path.join("pkg/migrations"), false));
        assert!(!filter.prune_dir(&dir.path.join("pkg"), true));
    }

    #[test]
    fn gitignore_applies_below_its_folder() {
        let (mut filter, dir) = filter_for(TOML);
        std::fs::write(
            dir.path.join(".gitignore"),
            "build/\ngen_*.py\n!gen_keep.py\nstatic/\n",
        )
        .unwrap();
        filter.add_gitignore(&dir.path);
        assert!(filter.classify(&dir.path.join("gen_x.py")).is_ignored());
        assert!(filter.classify(&dir.path.join("build/x.py")).is_ignored());
        assert!(filter.prune_dir(&dir.path.join("build"), true));
        assert!(!filter.prune_dir(&dir.path.join("build"), false));
        // Build outputs named as assets are not subject to `.gitignore`.
        assert!(filter.classify(&dir.path.join("static/site.css")).asset);
        assert!(filter.classify(&dir.path.join("gen_keep.py")).restart);
        assert!(filter.classify(&dir.path.join("app.py")).restart);
        // Edited while watching: read again.
        std::fs::write(dir.path.join(".gitignore"), "app.py\n").unwrap();
        filter.reload_gitignore(&dir.path);
        assert!(filter.classify(&dir.path.join("app.py")).is_ignored());
        assert!(filter.classify(&dir.path.join("gen_x.py")).restart);
    }
}
