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
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use nix::fcntl::OFlag;
use nix::sys::stat::fstat;

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
    if same_file(io::stdout().as_fd(), io::stderr().as_fd()) {
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
    Ok((ends, Streams(vec![(read, Box::new(io::stdout()))])))
}

fn separate() -> io::Result<(ServerEnds, Streams)> {
    let (out_read, stdout) = pipe()?;
    let (err_read, stderr) = pipe()?;
    let streams: Vec<(OwnedFd, Writer)> = vec![
        (out_read, Box::new(io::stdout())),
        (err_read, Box::new(io::stderr())),
    ];
    Ok((ServerEnds { stdout, stderr }, Streams(streams)))
}

/// A pipe whose ends are closed on exec, so that no other child (the guard, a task, the
/// next server) holds a write end open and keeps the relay from seeing the end. The
/// server's copies, made by `dup2` onto its fds 1 and 2, stay open.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(io::Error::from)
}

/// Whether two descriptors lead to the same file: the same open file, or the same file
/// (a terminal, a log) opened twice. A closed descriptor matches nothing.
fn same_file(a: BorrowedFd, b: BorrowedFd) -> bool {
    match (fstat(a), fstat(b)) {
        (Ok(a), Ok(b)) => a.st_dev == b.st_dev && a.st_ino == b.st_ino,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_file_is_recognised_however_it_was_opened() {
        let (read, _write) = pipe().unwrap();
        let (other, _other_write) = pipe().unwrap();
        assert!(same_file(read.as_fd(), read.try_clone().unwrap().as_fd()));
        assert!(!same_file(read.as_fd(), other.as_fd()));
        let null = || std::fs::File::open("/dev/null").unwrap();
        assert!(same_file(null().as_fd(), null().as_fd()));
    }
}
