//! Integration tests: the real binary, real files, real processes.

mod control;
mod editors;
mod livereload;
mod process;
mod taskfile;
mod util;
