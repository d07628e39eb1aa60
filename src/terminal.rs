//! The terminal's settings, taken as reloadsup starts and put back as each server ends:
//! a server that sets the terminal up (raw mode, no echo: a prompt library, a TUI)
//! leaves it so when it is stopped or crashes, and in raw mode Ctrl-C no longer reaches
//! reloadsup, so it could only be stopped from another terminal.

use std::io::IsTerminal;
use std::os::fd::AsFd;

use nix::sys::termios::{SetArg, Termios, tcgetattr, tcsetattr};

/// The settings reloadsup's terminal had when it started.
pub struct Terminal {
    saved: Termios,
}

impl Terminal {
    /// The settings of the terminal reloadsup writes to (its stderr), when it runs in
    /// that terminal's foreground: a job in the background leaves the terminal to the
    /// foreground one.
    pub fn capture() -> Option<Terminal> {
        let stderr = std::io::stderr();
        if !stderr.is_terminal() || !in_foreground() {
            return None;
        }
        tcgetattr(stderr.as_fd())
            .ok()
            .map(|saved| Terminal { saved })
    }

    /// Puts the settings back if a server changed them, while reloadsup is still in
    /// the terminal's foreground (moved to the background with `bg`, it leaves the
    /// terminal alone). Returns whether it did.
    pub fn restore(&self) -> bool {
        let stderr = std::io::stderr();
        if !in_foreground() {
            return false;
        }
        match tcgetattr(stderr.as_fd()) {
            Ok(now) if now != self.saved => {
                tcsetattr(stderr.as_fd(), SetArg::TCSADRAIN, &self.saved).is_ok()
            }
            _ => false,
        }
    }
}

/// Whether reloadsup's process group is the foreground one of the terminal on stderr.
fn in_foreground() -> bool {
    nix::unistd::tcgetpgrp(std::io::stderr().as_fd())
        .is_ok_and(|group| group == nix::unistd::getpgrp())
}
