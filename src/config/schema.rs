//! The raw shape of `reload.toml`, exactly as written: serde types with
//! `deny_unknown_fields`, so a misspelt key is an error that names it. Values that need
//! checking later (globs, durations, signals, the command) keep their span so the error
//! can name the line. Only `config::resolve` reads these types.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

/// A string with its place in the task file.
pub type Text = Spanned<String>;

/// The whole task file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFile {
    pub server: Option<Spanned<RawServer>>,
    #[serde(default)]
    pub watch: RawWatch,
    #[serde(default)]
    pub reload: RawReload,
    pub proxy: Option<RawProxy>,
    pub serve: Option<RawServe>,
    #[serde(default, rename = "task")]
    pub tasks: Vec<RawTask>,
}

/// `[server]`: the supervised command and how to stop it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServer {
    pub command: Option<Spanned<toml::Value>>,
    pub cwd: Option<Text>,
    #[serde(default)]
    pub env: BTreeMap<Text, Text>,
    pub pid_file: Option<Text>,
    pub log_file: Option<Text>,
    pub stop_signal: Option<Spanned<toml::Value>>,
    pub stop_timeout: Option<Text>,
    pub ready: Option<Spanned<RawReady>>,
    pub ready_timeout: Option<Text>,
}

/// `server.ready`: exactly one of its keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReady {
    pub port: Option<u16>,
    pub url: Option<Text>,
    pub log: Option<Text>,
    pub delay: Option<Text>,
}

/// `[watch]`: which files restart the server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWatch {
    pub file_dep: Option<Vec<Text>>,
    #[serde(default)]
    pub ignore: Vec<Text>,
    pub poll: Option<Text>,
    pub gitignore: Option<bool>,
}

/// `[reload]`: the LiveReload server.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawReload {
    pub enabled: Option<bool>,
    pub port: Option<u16>,
    pub host: Option<Text>,
    #[serde(default)]
    pub assets: Vec<Text>,
    #[serde(default)]
    pub allow_origins: Vec<Text>,
}

/// `[proxy]`: the reverse proxy that injects the reload script.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    pub listen: Text,
    pub upstream: Text,
    #[serde(default)]
    pub allowed_hosts: Vec<Text>,
}

/// `[serve]`: a static site served with live reload (no server command needed).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServe {
    pub root: Option<Text>,
    pub listen: Option<Text>,
    #[serde(default)]
    pub allowed_hosts: Vec<Text>,
}

/// `[[task]]`: a build step run when its own `file_dep` changes.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTask {
    pub name: Text,
    pub file_dep: Vec<Text>,
    pub actions: Spanned<Vec<Text>>,
}
