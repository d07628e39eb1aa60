//! The hub: the state every reload socket shares, whatever server the sockets came in
//! through (the HTTP side is in `http.rs`).
//!
//! Outgoing messages travel on one `tokio::sync::broadcast` channel that every socket
//! subscribes to as it opens. Sending on it never blocks, so the synchronous app loop can
//! broadcast directly. Each message carries a sequence number, taken under the same lock
//! as the count of handshaken clients: a socket forwards only messages numbered after its
//! client's `hello`, so the count `broadcast` returns is exactly the sockets that forward
//! it, and no client ever gets a `reload` before its `hello`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::{broadcast, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use super::origin::{OriginPolicy, Verdict};
use super::protocol::{OFFICIAL_7, SERVER_NAME, ServerMessage, VENDOR};
use super::{ReloadMessage, ServerState};
use crate::report;

/// Open sockets beyond this get 503: each costs a file descriptor, and a runaway page
/// reconnecting in a loop must not exhaust the supervisor's. Half the open-file limit,
/// if that is less (see [`crate::limits`]).
const MAX_SOCKETS: usize = 2048;

/// Messages a socket may fall behind by before it is dropped as too slow.
const BACKLOG: usize = 256;

/// Distinct refused origins remembered so each is warned about once; past this the
/// set stops growing (a hostile page could otherwise make it grow without bound).
const MAX_WARNED: usize = 64;

/// How often idle sockets are pinged and how long a silent one is kept.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Interval between pings.
    pub ping: Duration,
    /// A socket from which nothing (not even a pong) arrived for this long is dropped.
    pub dead_after: Duration,
}

impl Default for Timing {
    fn default() -> Timing {
        Timing {
            ping: Duration::from_secs(20),
            dead_after: Duration::from_secs(45),
        }
    }
}

/// Who may receive an outgoing message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    /// Every handshaken client (`reload`).
    All,
    /// Only clients that negotiated our vendor protocol (`status`).
    Vendor,
}

/// One message on the broadcast channel.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Its place in the order of all messages sent.
    pub seq: u64,
    /// Who may receive it.
    pub audience: Audience,
    /// The frame's text, shared by every socket without copying.
    pub text: Utf8Bytes,
}

/// What a socket learns when its client's `hello` arrives.
pub struct Joined {
    /// The first message sequence number this client may be sent.
    pub first_seq: u64,
    /// The current `status`, for a vendor client, so it need not wait for the next change.
    pub status: Option<Utf8Bytes>,
}

/// State under one lock, so counting clients and numbering messages agree.
#[derive(Default)]
struct Book {
    handshaken: usize,
    vendors: usize,
    seq: u64,
    state: Option<ServerState>,
    /// The failed build steps' message (see [`Hub::set_build`]).
    build: Option<String>,
    /// Changes pages were told of (see [`Hub::changed`]).
    generation: u64,
}

struct Shared {
    #[cfg(test)]
    instance: String,
    hello: Utf8Bytes,
    policy: OriginPolicy,
    timing: Timing,
    sender: broadcast::Sender<Outgoing>,
    book: Mutex<Book>,
    warned: Mutex<HashSet<String>>,
    /// Whether a task file is read, so that a refused origin's warning can point at
    /// `reload.allow_origins` (bare `serve` and ad-hoc `run` read none).
    task_file: bool,
    sockets: AtomicUsize,
    /// The most sockets open at once.
    max_sockets: usize,
    shutdown: watch::Sender<bool>,
}

/// A cheap, cloneable handle on the reload state: broadcast to its clients, and serve
/// its two endpoints from any hyper server running on a tokio runtime.
#[derive(Clone)]
pub struct Hub {
    shared: Arc<Shared>,
}

impl Hub {
    /// A hub whose WebSocket accepts, beyond the fixed rules, `allow_origins`;
    /// `task_file` says whether the user has a task file to add origins to.
    pub fn new(allow_origins: &[String], task_file: bool) -> Hub {
        Hub::with_timing(allow_origins, task_file, Timing::default())
    }

    /// As [`Hub::new`], with other ping timings (tests use short ones).
    pub fn with_timing(allow_origins: &[String], task_file: bool, timing: Timing) -> Hub {
        let instance = instance_id();
        let hello = ServerMessage::Hello {
            protocols: [OFFICIAL_7, VENDOR],
            server_name: SERVER_NAME,
            instance: &instance,
        }
        .encode()
        .into();
        let (sender, _) = broadcast::channel(BACKLOG);
        let shared = Shared {
            #[cfg(test)]
            instance,
            hello,
            policy: OriginPolicy::new(allow_origins),
            timing,
            sender,
            book: Mutex::new(Book::default()),
            warned: Mutex::new(HashSet::new()),
            task_file,
            sockets: AtomicUsize::new(0),
            max_sockets: MAX_SOCKETS
                .min(usize::try_from(crate::limits::open_files() / 2).unwrap_or(MAX_SOCKETS)),
            shutdown: watch::Sender::new(false),
        };
        Hub {
            shared: Arc::new(shared),
        }
    }

    /// The id in our `hello`, unique to this supervisor process.
    #[cfg(test)]
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// Sends `reload` to every handshaken client; returns how many that is.
    pub fn broadcast(&self, reload: &ReloadMessage) -> usize {
        let mut book = self.book();
        let text = ServerMessage::Reload {
            path: &reload.path,
            live_css: reload.live_css,
            live_img: reload.live_img,
            generation: book.generation,
        }
        .encode();
        Self::send_locked(&self.shared.sender, &mut book, Audience::All, text)
    }

    /// Counts a change that pages will be told of (a restart begins, assets changed),
    /// before they are told. A page gets the count with its script and, when its
    /// socket opens, the current count: a page that was loading while a change was
    /// broadcast (its socket not open yet) learns that way that it missed it.
    pub fn changed(&self) {
        self.book().generation += 1;
    }

    /// The current count of [`Hub::changed`], which the client script is served with.
    pub fn generation(&self) -> u64 {
        self.book().generation
    }

    /// Records the dev server's state and sends it as `status` to vendor clients, now
    /// and to each that connects later. The state they already have is not sent again
    /// (a restart says `restarting` both when it stops the server and when it starts).
    pub fn set_state(&self, state: ServerState) {
        let mut book = self.book();
        if book.state.as_ref() == Some(&state) {
            return;
        }
        book.state = Some(state);
        Self::send_status(&self.shared.sender, &mut book);
    }

    /// Records which build steps failed at their last run (`None`: none did), and sends
    /// it with the server's state as `status` to vendor clients, now (once the server
    /// has a state) and to each that connects later: a failed step leaves the server up
    /// on old files, and the page shows why nothing changed.
    pub fn set_build(&self, build: Option<String>) {
        let mut book = self.book();
        if book.build == build {
            return;
        }
        book.build = build;
        Self::send_status(&self.shared.sender, &mut book);
    }

    /// Sends the `status` the book holds to vendor clients, once the server has a state.
    fn send_status(sender: &broadcast::Sender<Outgoing>, book: &mut Book) {
        if let Some(text) = status_text(book) {
            Self::send_locked(sender, book, Audience::Vendor, text);
        }
    }

    /// How many clients are connected and handshaken.
    #[cfg(test)]
    pub fn clients(&self) -> usize {
        self.book().handshaken
    }

    /// Asks every socket of this hub to close (code 1001, going away).
    pub fn shutdown(&self) {
        self.shared.shutdown.send_replace(true);
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        // A panic elsewhere while holding the lock leaves only counters behind; keep going.
        self.shared.book.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send_locked(
        sender: &broadcast::Sender<Outgoing>,
        book: &mut Book,
        audience: Audience,
        text: String,
    ) -> usize {
        book.seq += 1;
        let count = match audience {
            Audience::All => book.handshaken,
            Audience::Vendor => book.vendors,
        };
        let outgoing = Outgoing {
            seq: book.seq,
            audience,
            text: text.into(),
        };
        // An error only means no socket is subscribed right now: nobody to send to.
        let _ = sender.send(outgoing);
        count
    }

    // The socket tasks' side of the hub.

    /// Our `hello`, sent first on every socket.
    pub(super) fn hello(&self) -> Utf8Bytes {
        self.shared.hello.clone()
    }

    /// How often idle sockets are pinged and how long a silent one is kept.
    pub(super) fn timing(&self) -> Timing {
        self.shared.timing
    }

    /// A receiver of every message broadcast from now on, for one socket.
    pub(super) fn subscribe(&self) -> broadcast::Receiver<Outgoing> {
        self.shared.sender.subscribe()
    }

    /// Resolves once [`Hub::shutdown`] has been called, even if that was before this.
    pub(crate) fn stopped(&self) -> impl Future<Output = ()> + use<> {
        let mut signal = self.shared.shutdown.subscribe();
        async move {
            // An error means the hub itself is gone: stop too.
            let _ = signal.wait_for(|down| *down).await;
        }
    }

    /// Judges an upgrade's `Origin` (`None`: absent). A refused origin is warned about
    /// the first time it is seen, with the key that would allow it.
    pub(super) fn judge_origin(&self, origin: Option<&str>) -> Verdict {
        let verdict = self.shared.policy.check(origin);
        if verdict != Verdict::Allow {
            self.warn_refused(origin.unwrap_or_default(), verdict);
        }
        verdict
    }

    /// Warns, once per origin, that `origin` was refused.
    pub(super) fn warn_refused(&self, origin: &str, verdict: Verdict) {
        let shown: String = origin.chars().take(100).collect();
        let mut warned = self.shared.warned.lock().unwrap_or_else(|e| e.into_inner());
        if warned.len() >= MAX_WARNED || !warned.insert(shown.clone()) {
            return;
        }
        report::warn(match verdict {
            Verdict::Malformed => {
                format!("refused a browser reload connection with a malformed Origin `{shown}`")
            }
            _ if shown.trim().eq_ignore_ascii_case(super::origin::NULL) => format!(
                "refused a browser reload connection from a page with no origin (`null`: \
                 a file:// page or a sandboxed frame); to accept such pages, add \"null\" \
                 to `reload.allow_origins`{}",
                if self.shared.task_file {
                    ""
                } else {
                    " in a task file (`reloadsup init`)"
                }
            ),
            _ if self.shared.task_file => format!(
                "refused a browser reload connection from `{shown}`; \
                 to accept it, add it to `reload.allow_origins`"
            ),
            _ => format!(
                "refused a browser reload connection from `{shown}`; \
                 to accept it, write a task file (`reloadsup init`) and add it to \
                 `reload.allow_origins`"
            ),
        });
    }

    /// Claims a place for one more socket, or `None` when the most are open (see
    /// [`MAX_SOCKETS`]).
    pub(super) fn open_slot(&self) -> Option<SocketSlot> {
        let (sockets, most) = (&self.shared.sockets, self.shared.max_sockets);
        let claimed = sockets.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
            (n < most).then_some(n + 1)
        });
        claimed.is_ok().then(|| SocketSlot {
            hub: self.clone(),
            joined: None,
        })
    }

    /// Counts a client whose `hello` arrived.
    pub(super) fn join(&self, vendor: bool) -> Joined {
        let mut book = self.book();
        book.handshaken += 1;
        if vendor {
            book.vendors += 1;
        }
        let status = status_text(&book).filter(|_| vendor).map(Into::into);
        Joined {
            first_seq: book.seq + 1,
            status,
        }
    }

    /// Forgets a handshaken client whose socket closed.
    pub(super) fn leave(&self, vendor: bool) {
        let mut book = self.book();
        book.handshaken = book.handshaken.saturating_sub(1);
        if vendor {
            book.vendors = book.vendors.saturating_sub(1);
        }
    }

    /// How many sockets are open, handshaken or not.
    pub(super) fn open_sockets(&self) -> usize {
        self.shared.sockets.load(Ordering::Relaxed)
    }
}

/// One open socket's claim on the hub: counted while it lives, and, once its client's
/// `hello` arrived, counted as a client. Dropping it (even when the runtime cancels the
/// task) gives both back.
pub struct SocketSlot {
    /// The hub the socket belongs to.
    pub hub: Hub,
    /// `Some(vendor)` once the client is handshaken.
    joined: Option<bool>,
}

impl SocketSlot {
    /// Records the client's `hello`; `None` if it had already sent one.
    pub fn join(&mut self, vendor: bool) -> Option<Joined> {
        if self.joined.is_some() {
            return None;
        }
        self.joined = Some(vendor);
        Some(self.hub.join(vendor))
    }
}

impl Drop for SocketSlot {
    fn drop(&mut self) {
        if let Some(vendor) = self.joined {
            self.hub.leave(vendor);
        }
        self.hub.shared.sockets.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The `status` text for the server's state and the build steps' failure the book
/// holds; none before the server has a state.
fn status_text(book: &Book) -> Option<String> {
    let (state, message) = match book.state.as_ref()? {
        ServerState::Restarting => ("restarting", None),
        ServerState::Ready => ("ready", None),
        ServerState::Failed(message) => ("failed", Some(message.as_str())),
    };
    let status = ServerMessage::Status {
        state,
        message,
        build: book.build.as_deref(),
        generation: book.generation,
    };
    Some(status.encode())
}

/// An id for this process's hub: its PID and the time it started, in hex. A restarted
/// supervisor gets another, which our client takes as its cue to reload once.
fn instance_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}-{:x}", std::process::id(), nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counting_and_numbering_agree() {
        let hub = Hub::new(&[], true);
        let reload = ReloadMessage {
            path: "a.py".into(),
            live_css: false,
            live_img: false,
        };
        assert_eq!(hub.broadcast(&reload), 0);
        let mut slot = hub.open_slot().expect("room");
        let joined = slot.join(false).expect("first hello");
        assert_eq!(joined.first_seq, 2);
        assert!(slot.join(false).is_none(), "a second hello counts once");
        assert_eq!(hub.clients(), 1);
        assert_eq!(hub.broadcast(&reload), 1);
        drop(slot);
        assert_eq!(hub.clients(), 0);
        assert_eq!(hub.open_sockets(), 0);
    }

    #[test]
    fn vendor_clients_get_the_current_state_on_joining() {
        let hub = Hub::new(&[], true);
        hub.set_state(ServerState::Failed("exit code 3".into()));
        let mut plain_slot = hub.open_slot().expect("room");
        assert!(plain_slot.join(false).expect("hello").status.is_none());
        let mut vendor_slot = hub.open_slot().expect("room");
        let status = vendor_slot.join(true).expect("hello").status;
        assert_eq!(
            status.as_deref(),
            Some(
                r#"{"command":"status","state":"failed","message":"exit code 3","build":null,"generation":0}"#
            )
        );
        // A change counted since: a client joining now hears the new count.
        hub.changed();
        let mut later = hub.open_slot().expect("room");
        let status = later.join(true).expect("hello").status.expect("a status");
        assert!(status.ends_with(r#""generation":1}"#), "{status}");
    }

    #[test]
    fn a_build_failure_goes_with_the_state_and_clears() {
        let hub = Hub::new(&[], true);
        // Recorded before the server has a state (the build steps run first): kept,
        // and told to clients with the first state.
        hub.set_build(Some("task `css` failed".into()));
        let mut early = hub.open_slot().expect("room");
        assert!(early.join(true).expect("hello").status.is_none());
        hub.set_state(ServerState::Ready);
        let mut slot = hub.open_slot().expect("room");
        let status = slot.join(true).expect("hello").status.expect("a status");
        assert!(
            status.contains(r#""state":"ready","message":null,"build":"task `css` failed""#),
            "{status}"
        );
        // Each change is a message to vendor clients; the same failure again is none.
        let before = hub.book().seq;
        hub.set_build(Some("task `css` failed".into()));
        assert_eq!(hub.book().seq, before);
        hub.set_build(None);
        assert_eq!(hub.book().seq, before + 1);
        let mut later = hub.open_slot().expect("room");
        let status = later.join(true).expect("hello").status.expect("a status");
        assert!(status.contains(r#""build":null"#), "{status}");
    }
}
