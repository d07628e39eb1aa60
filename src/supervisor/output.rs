//! The server's output, when reloadsup must read it: relayed line by line to the
//! terminal, matched against the `ready = { log }` regex, and its last lines kept for
//! the proxy's error page. Otherwise the server writes to the terminal directly.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use regex::Regex;

/// How many lines the tail keeps.
const TAIL_LINES: usize = 40;

/// The last lines the server printed (stdout and stderr interleaved as they arrived).
#[derive(Debug, Clone, Default)]
pub struct Tail(Arc<Mutex<VecDeque<String>>>);

impl Tail {
    fn push(&self, line: String) {
        let mut lines = self.0.lock().expect("no panics while holding the lock");
        if lines.len() == TAIL_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// The kept lines, oldest first.
    pub fn lines(&self) -> Vec<String> {
        self.0
            .lock()
            .expect("no panics while holding the lock")
            .iter()
            .cloned()
            .collect()
    }

    /// A tail holding `lines`.
    #[cfg(test)]
    pub fn of(lines: &[&str]) -> Tail {
        let tail = Tail::default();
        lines.iter().for_each(|line| tail.push(line.to_string()));
        tail
    }

    /// Forgets the lines of an earlier server.
    pub fn clear(&self) {
        self.0
            .lock()
            .expect("no panics while holding the lock")
            .clear();
    }
}

/// What the relay does with each line besides copying it.
#[derive(Debug, Clone, Default)]
pub struct Relay {
    /// The readiness regex, if `ready = { log }`.
    pub regex: Option<Arc<Regex>>,
    /// Where to keep the last lines, if anyone shows them.
    pub tail: Option<Tail>,
    /// Set at the first line matching `regex`.
    pub matched: Arc<AtomicBool>,
}

impl Relay {
    /// Copies `from` to `to` line by line on a thread of its own.
    pub fn start(&self, from: impl Read + Send + 'static, mut to: impl Write + Send + 'static) {
        let relay = self.clone();
        let spawned = thread::Builder::new().name("relay".into()).spawn(move || {
            let mut reader = BufReader::new(from);
            let mut line = Vec::new();
            while reader.read_until(b'\n', &mut line).unwrap_or(0) > 0 {
                let _ = to.write_all(&line);
                let _ = to.flush();
                relay.observe(&String::from_utf8_lossy(&line));
                line.clear();
            }
        });
        if let Err(err) = spawned {
            crate::report::warn(format!("cannot relay the server's output: {err}"));
        }
    }

    fn observe(&self, line: &str) {
        let line = line.trim_end_matches(['\n', '\r']);
        if let Some(regex) = &self.regex {
            if !self.matched.load(Ordering::Relaxed) && regex.is_match(line) {
                self.matched.store(true, Ordering::Release);
            }
        }
        if let Some(tail) = &self.tail {
            tail.push(line.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_last_lines_and_the_regex_matches_once() {
        let relay = Relay {
            regex: Some(Arc::new(Regex::new("^Serving on").unwrap())),
            tail: Some(Tail::default()),
            matched: Arc::default(),
        };
        for i in 0..50 {
            relay.observe(&format!("line {i}\n"));
        }
        assert!(!relay.matched.load(Ordering::Acquire));
        relay.observe("Serving on :8000\r\n");
        assert!(relay.matched.load(Ordering::Acquire));
        let lines = relay.tail.as_ref().unwrap().lines();
        assert_eq!(lines.len(), TAIL_LINES);
        assert_eq!(lines.last().unwrap(), "Serving on :8000");
        assert_eq!(lines[0], "line 11");
    }
}
