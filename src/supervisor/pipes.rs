//! The pipes between the server and the relay.
//!
//! The order of the server's lines across stdout and stderr (a log, then the traceback
//! that ended it) is the order of its `write` calls, and two pipes cannot carry it: a
//! reader that finds both with bytes waiting cannot tell which came first. So when
//! reloadsup's own stdout and stderr are the same file (both the terminal, or `&> log`),
//! the server gets one pipe as both, and its output arrives in the order written. When
//! the user sent them to different places (`> out.log`), the server gets a pipe for
//! each and the separation is kept; the order across the two is then the relay's best
//! effort.

use std::io::{self, Write};
use std::os::fd::OwnedFd;

use nix::fcntl::OFlag;

use crate::console::{Relayed, Target};

/// Where the relay copies what it reads.
pub type Writer = Box<dyn Write + Send>;

/// The relay's side: each pipe's read end, with the writer it is copied to.
pub struct Streams(pub(super) Vec<(OwnedFd, Writer)>);

/// The server's side: the write ends it gets as stdout and stderr (one pipe's, twice,
/// when they are merged).
pub struct ServerEnds {
    /// The server's stdout.
    pub stdout: OwnedFd,
    /// The server's stderr.
    pub stderr: OwnedFd,
}

/// Makes the pipes for the server's output: one for both streams, copied to reloadsup's
/// stdout, when reloadsup's stdout and stderr are the same file; else one each, copied
/// to their counterparts.
pub fn open() -> io::Result<(ServerEnds, Streams)> {
    if crate::console::same_destination() {
        merged()
    } else {
        separate()
    }
}

fn merged() -> io::Result<(ServerEnds, Streams)> {
    let (read, write) = pipe()?;
    let ends = ServerEnds {
        stdout: write.try_clone()?,
        stderr: write,
    };
    Ok((
        ends,
        Streams(vec![(read, Box::new(Relayed(Target::Stdout)))]),
    ))
}

fn separate() -> io::Result<(ServerEnds, Streams)> {
    let (out_read, stdout) = pipe()?;
    let (err_read, stderr) = pipe()?;
    let streams: Vec<(OwnedFd, Writer)> = vec![
        (out_read, Box::new(Relayed(Target::Stdout))),
        (err_read, Box::new(Relayed(Target::Stderr))),
    ];
    Ok((ServerEnds { stdout, stderr }, Streams(streams)))
}

/// A pipe whose ends are closed on exec, so that no other child (the guard, a task, the
/// next server) holds a write end open and keeps the relay from seeing the end. The
/// server's copies, made by `dup2` onto its fds 1 and 2, stay open.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)
}
