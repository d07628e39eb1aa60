//! The messages the app loop receives. Every source of change (notify's thread, the
//! signal thread) sends an `Event` over one channel; the loop owns all state.

/// One thing that happened.
#[derive(Debug)]
pub enum Event {
    /// A file-system event from notify, already stripped of the kinds that never matter.
    Fs(notify::Event),
    /// notify reported an error (for example the inotify limit for a new folder).
    WatchError(String),
    /// A signal reached the supervisor.
    Signal(i32),
    /// A readiness probe finished.
    Ready(crate::ready::Readiness),
}
