//! Integration tests: the real binary, real files, real processes.

mod browser;
mod control;
mod editors;
mod livereload;
mod process;
mod proxy;
mod relay;
mod serve;
mod signals;
mod taskfile;
mod util;
