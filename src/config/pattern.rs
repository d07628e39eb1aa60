//! One glob of the task file, compiled, with the folder it needs watched.
//!
//! Globs are written relative to the task file's folder (the *root*). A path is matched
//! relative to the root when it lies inside it and by its absolute form otherwise, so a
//! glob such as `../shared/*.css` still works and a root that itself sits below a folder
//! called `target` is not swallowed by the default ignore `**/target/**`.
//!
//! The folder to watch is the glob's literal prefix: `templates/**/*.html` watches
//! `templates` and everything below it; `*.py` watches the root alone.

use std::path::{Component, Path, PathBuf};

use globset::{Glob, GlobBuilder, GlobSetBuilder};

/// A compiled glob and the directory watch it needs.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The glob as the user wrote it, for messages.
    pub text: String,
    /// The compiled glob, in the form `Pattern::match_form` paths are given.
    pub glob: Glob,
    /// The deepest folder that holds every path the glob can match.
    pub base: PathBuf,
    /// Whether folders below `base` can hold matches.
    pub recursive: bool,
}

impl Pattern {
    /// An ignore glob: as [`Pattern::new`], but one with no `/` but a trailing one
    /// matches at any depth, as in `.gitignore` and the ignore lists of nodemon and
    /// watchexec: a name pattern (`*.log`, `*.test.js`; it matched in the task file's
    /// folder alone, so `src/a.test.js` restarted the server), and a plain name
    /// (`dist`, `dist/`), which stands for a file or folder of that name anywhere and
    /// all in it (it was the top-level one alone, while `dist*` matched at any
    /// depth). `./dist` is the top-level one alone.
    pub fn ignore(text: &str, root: &Path) -> Result<Pattern, String> {
        if let Some(anchored) = anchored_at_top(text, root) {
            let mut pattern = Pattern::new(&anchored, root)?;
            pattern.text = text.to_string();
            return Ok(pattern);
        }
        let name = text.trim_end_matches('/');
        let anywhere = if text.starts_with("**") || name.contains('/') {
            None
        } else if has_meta(text) {
            Some(format!("**/{text}"))
        } else if !name.is_empty() && name != "." && name != ".." {
            Some(format!("**/{name}/**"))
        } else {
            None
        };
        let Some(glob) = anywhere else {
            return Pattern::new(text, root);
        };
        let mut pattern = Pattern::new(&glob, root)?;
        pattern.text = text.to_string();
        Ok(pattern)
    }

    /// Compiles `text` relative to `root`. The error is globset's explanation. A name
    /// without glob syntax that is a folder now (`src`, `src/`), or that ends with a
    /// `/` (`dist/`, which a build makes later), stands for everything in it, `src/**`:
    /// as a file name it would match nothing inside.
    pub fn new(text: &str, root: &Path) -> Result<Pattern, String> {
        if text.trim().is_empty() {
            return Err("empty (write e.g. `**/*.py`)".into());
        }
        if text.contains(['\u{8}', '\u{c}']) {
            // `"src/\build"`: in a double-quoted TOML string, `\b` is a backspace.
            return Err(
                "a backspace or form feed in it: in a double-quoted string `\\b` and \
                        `\\f` are those; write a glob with backslashes in single quotes"
                    .into(),
            );
        }
        if text.starts_with('!') {
            return Err(
                "a `!` negation is not supported here: list what to leave out in \
                 `watch.ignore` (or `-i`)"
                    .into(),
            );
        }
        if let Some(relative) = inside_root(text, root) {
            let mut pattern = Pattern::new(&relative, root)?;
            pattern.text = text.to_string();
            return Ok(pattern);
        }
        let trimmed = text.trim_end_matches('/');
        let folder = text.ends_with('/') || root.join(trimmed).is_dir();
        if !trimmed.is_empty() && !has_meta(text) && folder {
            let mut pattern = Pattern::new(&format!("{trimmed}/**"), root)?;
            pattern.text = text.to_string();
            return Ok(pattern);
        }
        let components: Vec<&str> = text
            .split('/')
            .enumerate()
            .filter(|&(i, c)| !(c == "." || (c.is_empty() && i > 0)))
            .map(|(_, c)| c)
            .collect();
        let literal = components.iter().take_while(|c| !has_meta(c)).count();
        let rest = &components[literal..];
        let mut base = normalize(&root.join(components[..literal].join("/")));
        let recursive = rest.len() > 1 || rest.iter().any(|c| c.contains("**"));
        let glob_text = match base.strip_prefix(root) {
            Ok(rel) => join_glob(&escape_path(rel), rest),
            Err(_) => join_glob(&escape_path(&base), rest),
        };
        let glob = GlobBuilder::new(&glob_text)
            .literal_separator(true)
            .backslash_escape(true)
            .build()
            .map_err(|err| err.kind().to_string())?;
        if rest.is_empty() {
            // A literal file: watch its folder, never the file itself.
            base.pop();
        }
        Ok(Pattern {
            text: text.to_string(),
            glob,
            base,
            recursive,
        })
    }

    /// When the glob's text names, read literally, a file or folder that is there in
    /// a part that glob syntax reads otherwise (a Next.js route, `pages/[id].js`, which
    /// as a glob is `pages/i.js` or `pages/d.js`; a SvelteKit folder,
    /// `src/routes/[slug]/**`), the line that says so, with the text that names it
    /// (for `run`'s warning and `check`).
    pub fn literal_hint(&self, root: &Path) -> Option<String> {
        let escaped = self.literal_file(root)?;
        Some(format!(
            "`{}` names a file or folder that is there, read as a glob: write `{escaped}` to \
             name it",
            self.text
        ))
    }

    /// The text that names what [`Pattern::literal_hint`] is about: the parts glob
    /// syntax reads otherwise escaped, the project's own path in an absolute glob left
    /// as it is (it is taken so).
    fn literal_file(&self, root: &Path) -> Option<String> {
        let text = self.text.as_str();
        let (lead, rest, mut at) = match relative_to(text, root) {
            Some(rest) => (format!("{}/", root.to_str()?), rest, root.to_path_buf()),
            None if text.starts_with('/') => (String::new(), text.to_string(), PathBuf::from("/")),
            None => (String::new(), text.to_string(), root.to_path_buf()),
        };
        let mut escaped_any = false;
        let mut literal = true;
        let parts: Vec<String> = rest
            .split('/')
            .map(|part| {
                if !literal || part.is_empty() || !has_meta(part) {
                    at.push(part);
                    return part.to_string();
                }
                at.push(part);
                if std::fs::symlink_metadata(&at).is_err() {
                    // A glob here: nothing below it can be named literally.
                    literal = false;
                    return part.to_string();
                }
                escaped_any = true;
                part.chars().fold(String::new(), |mut out, c| {
                    if has_meta(c.encode_utf8(&mut [0; 4])) {
                        out.push('\\');
                    }
                    out.push(c);
                    out
                })
            })
            .collect();
        escaped_any.then(|| format!("{lead}{}", parts.join("/")))
    }

    /// The form of `path` that globs are matched against: relative to `root` when
    /// inside it, else absolute.
    pub fn match_form<'a>(path: &'a Path, root: &Path) -> &'a Path {
        path.strip_prefix(root).unwrap_or(path)
    }
}

/// An ignore glob with a leading `/` as `.gitignore` writes the project's top-level
/// one (`/build`, `/dist/`), made `./build` (a plain name, as ever, with all in it):
/// taken for an absolute path, it ignored nothing, with no word. So is one with a
/// single name before any glob syntax (`/bin`, `/tmp/`, `/lib/**`) even where the
/// machine has such a folder: an ignore of a whole top-level folder of the machine
/// means nothing to a project, and `/bin` in a Go project's `.gitignore` was read so
/// (the task file meant one thing on a machine with a `/build` and another on one
/// without). A deeper path whose first folder is there (`/srv/cache/**`), or any
/// under the top-level folder the project is in (`/srv/*.log` for a project in `/srv`,
/// as `$PWD/*.log` writes it), is the absolute path it says.
fn anchored_at_top(text: &str, root: &Path) -> Option<String> {
    let rest = text.strip_prefix('/')?;
    let first = rest.split('/').next()?;
    if first.is_empty() || has_meta(first) {
        return None;
    }
    let literal = rest
        .trim_end_matches('/')
        .split('/')
        .take_while(|c| !has_meta(c));
    let top = Path::new("/").join(first);
    // The project in that very folder (`/srv`, `/app` in a container): `/srv/*.log` is
    // a path in the project, as written.
    let absolute = (literal.count() > 1 && top.exists()) || root.starts_with(&top);
    if absolute {
        return None;
    }
    // A plain name, as in the ignores without a `/`: a file or folder, and all in it.
    let name = rest.trim_end_matches('/');
    Some(match name.contains('/') || has_meta(name) {
        true => format!("./{rest}"),
        false => format!("./{name}/**"),
    })
}

/// An absolute glob inside `root`, made relative to it when `root`'s own path holds
/// glob syntax (a project in `my[app]/`): its folder's path is then taken as it is, as
/// a relative glob's is (`-w "$PWD/src"` there matched nothing, and watched all of the
/// folder above the project). `None` for any other glob.
fn inside_root(text: &str, root: &Path) -> Option<String> {
    if !has_meta(&root.to_string_lossy()) {
        return None;
    }
    relative_to(text, root).map(|relative| match relative.as_str() {
        "" | "/" => "./".to_string(),
        _ => relative,
    })
}

/// An absolute glob inside `root` as relative to it, its trailing `/` kept; `None`
/// for a relative glob, or one outside `root`.
fn relative_to(text: &str, root: &Path) -> Option<String> {
    if !text.starts_with('/') {
        return None;
    }
    let relative = Path::new(text).strip_prefix(root).ok()?.to_str()?;
    let slash = if text.ends_with('/') { "/" } else { "" };
    Some(format!("{relative}{slash}"))
}

/// Why `patterns`, with `extra` globs beside them (the built-in ignores), cannot be
/// matched as one set, as the watcher matches them; `None` when they can. globset
/// takes each glob alone but compiles a set into one regular expression, which has
/// nesting and size limits: the first pattern that fails alone is blamed (its index),
/// else the list as a whole (`None` as the index).
pub fn unmatchable(patterns: &[Pattern], extra: &[Glob]) -> Option<Option<usize>> {
    let compiles = |globs: &mut dyn Iterator<Item = &Glob>| {
        let mut builder = GlobSetBuilder::new();
        for glob in globs {
            builder.add(glob.clone());
        }
        builder.build().is_ok()
    };
    if compiles(&mut patterns.iter().map(|p| &p.glob).chain(extra)) {
        return None;
    }
    Some(
        patterns
            .iter()
            .position(|p| !compiles(&mut std::iter::once(&p.glob))),
    )
}

/// The one-line error for [`unmatchable`] patterns: `key` names the list (a task-file
/// key or a flag), `culprit` the glob blamed, if one is.
pub fn unmatchable_message(patterns: &[Pattern], culprit: Option<usize>, key: &str) -> String {
    match culprit {
        Some(i) => format!(
            "glob `{}` in `{key}` is too complex to match (nested or repeated too deeply)",
            patterns[i].text
        ),
        None => format!(
            "the {} globs of `{key}` are too many to match together: merge some \
             (e.g. `src/**/*.{{py,html}}`) or watch a folder (`src`)",
            patterns.len()
        ),
    }
}

/// Whether a path component holds glob syntax.
pub fn has_meta(component: &str) -> bool {
    component.contains(['*', '?', '[', ']', '{', '}', '\\'])
}

/// Escapes a literal path so it can lead a glob.
fn escape_path(path: &Path) -> String {
    globset::escape(&path.to_string_lossy())
}

/// Joins a literal (escaped) prefix and the glob components after it.
fn join_glob(prefix: &str, rest: &[&str]) -> String {
    let mut parts: Vec<&str> = Vec::with_capacity(rest.len() + 1);
    if !prefix.is_empty() {
        parts.push(prefix);
    }
    parts.extend_from_slice(rest);
    parts.join("/")
}

/// Resolves `.` and `..` without touching the file system (the path may not exist yet).
pub fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other.as_os_str()),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pat(text: &str) -> Pattern {
        Pattern::new(text, Path::new("/proj")).expect("valid glob")
    }

    fn matches(text: &str, path: &str) -> bool {
        let p = pat(text);
        let matcher = p.glob.compile_matcher();
        matcher.is_match(Pattern::match_form(Path::new(path), Path::new("/proj")))
    }

    #[test]
    fn bases_and_recursion() {
        let cases = [
            ("*.py", "/proj", false),
            ("**/*.py", "/proj", true),
            ("templates/**/*.html", "/proj/templates", true),
            ("src/*/mod.rs", "/proj/src", true),
            ("static/*.css", "/proj/static", false),
            ("app.py", "/proj", false),
            ("./conf/app.ini", "/proj/conf", false),
            ("../shared/*.css", "/shared", false),
            ("/etc/hosts", "/etc", false),
        ];
        for (text, base, recursive) in cases {
            let p = pat(text);
            assert_eq!(p.base, Path::new(base), "{text}");
            assert_eq!(p.recursive, recursive, "{text}");
        }
    }

    #[test]
    fn matching() {
        assert!(matches("**/*.py", "/proj/app.py"));
        assert!(matches("**/*.py", "/proj/a/b/app.py"));
        assert!(matches("*.py", "/proj/app.py"));
        assert!(!matches("*.py", "/proj/a/app.py"));
        assert!(matches("templates/**/*.html", "/proj/templates/x/y.html"));
        assert!(!matches("templates/**/*.html", "/proj/other/y.html"));
        assert!(matches("../shared/*.css", "/shared/site.css"));
        assert!(matches("app.py", "/proj/app.py"));
        assert!(matches("./app.py", "/proj/app.py"));
    }

    /// A folder's name stands for everything in it; a `!` negation is refused.
    #[test]
    fn a_folder_named_without_glob_syntax_is_all_of_it() {
        let root = std::env::temp_dir().join(format!("reloadsup-pattern-{}", std::process::id()));
        std::fs::create_dir_all(root.join("src/deep")).unwrap();
        for text in ["src", "src/", "./src"] {
            let p = Pattern::new(text, &root).expect("valid");
            assert_eq!(
                (p.base.as_path(), p.recursive),
                (root.join("src").as_path(), true)
            );
            assert!(p.glob.compile_matcher().is_match("src/deep/a.py"), "{text}");
            assert_eq!(p.text, text);
        }
        let file = Pattern::new("src.py", &root).expect("valid");
        assert!(!file.recursive, "not a folder: a file name");
        // With its slash, a folder that does not exist yet (a build's output) too.
        let anywhere = Pattern::ignore("*.test.js", &root).expect("valid");
        let m = anywhere.glob.compile_matcher();
        assert!(m.is_match("src/deep/a.test.js") && m.is_match("a.test.js"));
        assert_eq!(anywhere.text, "*.test.js");
        let top = Pattern::new("*.test.js", &root).expect("valid");
        assert!(!top.glob.compile_matcher().is_match("src/a.test.js"));
        let later = Pattern::new("dist/", &root).expect("valid");
        assert!(later.recursive);
        assert!(later.glob.compile_matcher().is_match("dist/app.js"));
        let missing = Pattern::new("dist", &root).expect("valid");
        assert!(!missing.recursive, "without it, a file's name");
        // An ignore's plain name is a file or folder of that name anywhere, and all
        // in it; `./` keeps it to the top.
        for text in ["dist", "dist/"] {
            let m = Pattern::ignore(text, &root)
                .expect("valid")
                .glob
                .compile_matcher();
            for path in ["dist/app.js", "web/dist/app.js", "web/dist/a/b.js"] {
                assert!(m.is_match(path), "{text}: {path}");
            }
            assert!(!m.is_match("distant/app.js") && !m.is_match("web/dist.js"));
        }
        for text in ["/dist-nowhere-xyz", "/dist-nowhere-xyz/"] {
            let m = Pattern::ignore(text, &root)
                .expect("valid")
                .glob
                .compile_matcher();
            assert!(m.is_match("dist-nowhere-xyz/app.js"), "{text}");
            assert!(m.is_match("dist-nowhere-xyz/a/b.js"), "{text}");
            assert!(!m.is_match("web/dist-nowhere-xyz/app.js"), "{text}");
        }
        let machines = Pattern::ignore("/tmp/cache/**", &root).expect("valid");
        assert!(machines.glob.compile_matcher().is_match("/tmp/cache/a"));
        // Under the top-level folder the project is in, an absolute path is one.
        let in_srv = Path::new("/srv");
        for (text, path) in [
            ("/srv/*.log", "/srv/top.log"),
            ("/srv/**/*.o", "/srv/bin/a.o"),
        ] {
            let m = Pattern::ignore(text, in_srv).expect("valid");
            let form = Pattern::match_form(Path::new(path), in_srv);
            assert!(m.glob.compile_matcher().is_match(form), "{text}: {path}");
        }
        // A single top-level name is the project's, whether or not the machine has
        // such a folder.
        for text in ["/bin", "/lib/", "/bin/**", "/lib/*.o"] {
            let m = Pattern::ignore(text, &root)
                .expect("valid")
                .glob
                .compile_matcher();
            let name = text.trim_start_matches('/').split('/').next().unwrap();
            let inside = format!("{name}/app.o");
            assert!(m.is_match(&inside), "{text}: {inside}");
            assert!(!m.is_match(format!("/{inside}")), "{text}: the machine's");
            assert!(
                !m.is_match(format!("web/{inside}")),
                "{text}: the top's alone"
            );
        }
        let top = Pattern::ignore("./dist", &root)
            .expect("valid")
            .glob
            .compile_matcher();
        assert!(!top.is_match("web/dist") && !top.is_match("web/dist/app.js"));
        assert!(top.is_match("dist"));
        let err = Pattern::new("!src/*.py", &root).unwrap_err();
        assert!(err.contains("`watch.ignore`"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_absolute_glob_inside_a_root_with_glob_characters_keeps_the_roots_path() {
        let root = Path::new("/p[1]/sub");
        for (text, path) in [
            ("/p[1]/sub/src/*.py", "src/a.py"),
            ("/p[1]/sub/app.py", "app.py"),
            ("/p[1]/sub", "deep/a.py"),
        ] {
            let p = Pattern::new(text, root).expect("valid");
            assert!(p.glob.compile_matcher().is_match(path), "{text}: {path}");
            assert!(p.base.starts_with(root), "{text}: {:?}", p.base);
            assert_eq!(p.text, text);
        }
        let later = Pattern::new("/p[1]/sub/dist/", root).expect("valid");
        assert!(later.recursive && later.base == root.join("dist"));
    }

    #[test]
    fn root_with_glob_characters_is_literal() {
        let p = Pattern::new("../b/*.py", Path::new("/p[1]/sub")).expect("valid");
        let m = p.glob.compile_matcher();
        assert!(m.is_match("/p[1]/b/a.py"));
        assert!(!m.is_match("/p1/b/a.py"));
    }

    #[test]
    fn bad_glob_is_explained() {
        let err = Pattern::new("src/[a.py", Path::new("/proj")).unwrap_err();
        assert!(err.contains("unclosed"), "{err}");
    }
}
