//! The dev server as the proxy reaches it: hold requests while it restarts, retry a
//! refused connect while it should be up, keep connections for reuse.
//!
//! Hold, don't refuse. A request that arrives while the server is `Starting` waits on a
//! `watch` channel and goes the moment the supervisor says `Ready` (or `Late`, or
//! `Failed`: the supervisor's own timeouts end every hold; [`Patience::hold`] is only a
//! backstop). While `Ready`, a refused connect (the server crashed unseen, or restarts
//! itself) is retried every [`Patience::retry_every`] for [`Patience::retry_for`], and
//! one that gets no answer within [`CONNECT_TIMEOUT`] (a server whose queue of
//! connections to accept is full) up to [`Patience::hold`];
//! while `Late`, it gets the 502 page at once. The TCP socket is connected
//! here and only then handed to hyper's client handshake, so a failed connect leaves
//! the request, body and all, still ours to send again.
//!
//! Keep-alive connections (up to [`MAX_IDLE`], more than a browser or load test keeps
//! open at once, so none churn) go back to the pool as soon as their answer's head is
//! in, and are free for the next request once that answer has been read to its end
//! (hyper's connection task marks them so); the pool is emptied when the server
//! restarts. A request that finds a kept connection already closed is sent on a
//! new one: hyper hands back a request it could not start to send. A request that could
//! not be sent again (a POST) always goes on a new connection, used for it alone: a kept
//! one may be closed by the server for idling just as the request goes out, and the
//! request is lost (a browser resends in that case; a proxy cannot, having sent the
//! body). A safe request
//! without a body (GET, HEAD, OPTIONS) whose connection closed before any answer, as
//! when the server is stopped mid-request for a restart, is sent again; so is one whose
//! small answer (known length, up to [`WHOLE_LIMIT`]) broke off before it was whole:
//! such answers are received whole before they are passed on: once in any case, and
//! again only after a restart (see [`Upstream::went_away`]).
//!
//! Requests that could not be sent again (a POST) are counted from when they are sent
//! until their answer has been read to its end (a small answer of known length; a
//! stream's count ends with its head), so that a restart can let the old server finish
//! them before it is stopped ([`Upstream::drain`]): the head alone is not enough, since
//! a server may write its answer's body after its head (Python's does).
//!
//! An answer that is not HTTP gets the 502 page saying so, and is never asked for
//! again. One with more header fields than hyper reads by default (100) is the
//! exception, once: connections made from then on read up to [`MANY_HEADERS`], and a
//! safe request goes again on one (any other gets a page saying its answer was lost
//! and asking for it to be sent again).

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::Poll;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{HeaderMap, Method, Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::{Instant, timeout, timeout_at};

use super::body::{self, BoxError, ProxyBody};
use super::quickack::QuickAck;
use super::sniff;
use super::{Failure, Patience, UpstreamState};
use crate::report;

/// Connections kept at most, free or still finishing an answer; more are closed when
/// their answer ends.
const MAX_IDLE: usize = 128;

/// How many new connections one request may be tried on.
const MAX_CONNECTIONS: usize = 4;

/// Answers up to this size (by `Content-Length`) to safe requests are received whole
/// before they are passed on, so they can be asked for again if the server goes away
/// mid-answer.
const WHOLE_LIMIT: u64 = 256 * 1024;

/// How long a stream answering a request that cannot be sent again, or an app's
/// WebSocket, stays open after a restart's cut (see [`Upstream::drain`]): the old server
/// is signalled at the cut, and may say goodbye on it (a close frame, a last event)
/// before it is closed. A server that stops gracefully would otherwise wait for it
/// until the stop timeout's SIGKILL (Node's `server.close()` never closes upgraded
/// sockets).
pub const GOODBYE: Duration = Duration::from_millis(250);

/// When a connection is closed at a restart's cut.
#[derive(Clone)]
enum Cut {
    /// At once: it carries safe requests only, which go again to the next server.
    Now,
    /// [`GOODBYE`] after the cut, once its request has its answer's head (set when it
    /// comes): a request still waiting for its answer is left for the server to finish.
    AfterHead(Arc<AtomicBool>),
}

/// How long one connect may take: a loopback connect is immediate or refused, unless
/// the server's queue of connections to accept is full, when it gets no answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// How many header fields hyper reads in an answer by default.
pub const DEFAULT_HEADERS: usize = 100;

/// The most header fields an answer may have once the server has sent more than
/// hyper's default of 100, which browsers take (an app setting many cookies, say).
/// Not the default: hyper readies room for every allowed field on each answer it reads,
/// which at this size would cost a quarter more CPU per proxied request.
pub const MANY_HEADERS: usize = 1000;

/// Why a request could not be forwarded; each becomes the 502 page.
#[derive(Debug, Clone)]
pub enum Unavailable {
    /// The supervisor says the server failed.
    Failed(Failure),
    /// The server was still restarting when the hold timeout passed.
    NotReady(Duration),
    /// The server missed its readiness timeout, and a connect to it failed.
    Late {
        /// What the supervisor knows: the command, its state, its output.
        failure: Failure,
        /// The upstream address.
        address: String,
        /// The connect error.
        error: String,
    },
    /// Connecting kept failing for the retry period (or, without an answer, the hold).
    Unreachable {
        /// The upstream address.
        address: String,
        /// The last connect error.
        error: String,
        /// How long connecting was retried.
        waited: Duration,
    },
    /// The server took the request but closed the connection without answering.
    Broke(String),
    /// The server answered something that is not an HTTP response (or one beyond
    /// hyper's limits); it is not asked again, since it would answer the same.
    Malformed(String),
    /// The first answer with more header fields than connections read so far: later
    /// ones read more, but this request (not safe to send twice, a POST say) has lost
    /// its answer.
    Unread,
    /// The server at this address speaks TLS (HTTPS), not the plain HTTP the proxy
    /// sends it.
    Tls(String),
}

/// Whether an answer's body is framed by a length of at most [`WHOLE_LIMIT`] bytes. The
/// body's own framing decides, as hyper read it: a `Content-Length` beside a transfer
/// coding frames nothing (the coding wins), and such a body may stream without end.
fn is_small<B: hyper::body::Body>(response: &Response<B>) -> bool {
    response
        .body()
        .size_hint()
        .exact()
        .is_some_and(|length| length <= WHOLE_LIMIT)
}

/// A copy of a request that can safely be sent again: a GET, HEAD or OPTIONS without
/// a body, which changes nothing on the server.
struct Replay {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
}

impl Replay {
    fn of(request: &Request<ProxyBody>) -> Option<Replay> {
        let safe = matches!(
            *request.method(),
            Method::GET | Method::HEAD | Method::OPTIONS
        );
        (safe && request.body().is_end_stream()).then(|| Replay {
            method: request.method().clone(),
            uri: request.uri().clone(),
            headers: request.headers().clone(),
        })
    }

    fn request(&self) -> Request<ProxyBody> {
        let mut request = Request::new(body::empty());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// A connection to send one request on.
enum Connection {
    /// An idle keep-alive connection.
    Kept(SendRequest<ProxyBody>),
    /// A new socket, before the HTTP handshake.
    New(TcpStream),
}

/// The dev server: where it is, its state, and idle connections to it.
pub struct Upstream {
    address: String,
    patience: Patience,
    state: watch::Sender<UpstreamState>,
    idle: Mutex<Vec<SendRequest<ProxyBody>>>,
    /// Set once the server answered with more header fields than hyper reads by
    /// default: new connections then read up to [`MANY_HEADERS`].
    many_headers: AtomicBool,
    /// The requests that could not be sent again and are not wholly answered yet: a
    /// restart waits for them.
    in_flight: Arc<InFlight>,
    /// Counts the restarts whose old server has had its connections for safe requests
    /// cut (see [`Upstream::drain`]); each such connection ends when it moves.
    cut: watch::Sender<u64>,
    /// Counts the times the server was found ready: one look for TLS per server.
    starts: AtomicU64,
    /// Whether the server speaks TLS, with the start it was found for.
    tls: Mutex<Option<(u64, bool)>>,
}

/// A count of requests in flight, signalled on `done` whenever one ends.
#[derive(Debug, Default)]
struct InFlight {
    count: Mutex<usize>,
    done: Condvar,
}

impl InFlight {
    /// The count. A poisoned lock still guards a number, so it is used as it is.
    fn count(&self) -> MutexGuard<'_, usize> {
        self.count.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A request that could not be sent again (a form's POST), counted from when it is
/// sent until its answer has been read to the end, or given up.
struct Waiting(Arc<InFlight>);

impl Waiting {
    fn new(in_flight: &Arc<InFlight>) -> Waiting {
        *in_flight.count() += 1;
        Waiting(Arc::clone(in_flight))
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        let mut count = self.0.count();
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.0.done.notify_all();
        }
    }
}

/// An answer's body that keeps its request counted as in flight until it ends.
struct Counted {
    body: Incoming,
    waiting: Option<Waiting>,
}

impl Body for Counted {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.body).poll_frame(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            self.waiting = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The body of an answer, counted as in flight (by `waiting`) until it ends — if its
/// length is known and small (a form's answer). A stream, or a large download, would
/// only hold a restart up for the whole wait and then be cut off all the same: its
/// count ends with its head.
fn counted(body: Incoming, waiting: Option<Waiting>) -> ProxyBody {
    let small = body
        .size_hint()
        .exact()
        .is_some_and(|length| length <= WHOLE_LIMIT);
    match waiting.filter(|_| small) {
        Some(waiting) => Counted {
            body,
            waiting: Some(waiting),
        }
        .map_err(BoxError::from)
        .boxed_unsync(),
        None => body::incoming(body),
    }
}

impl Upstream {
    /// The server at `address` (`host:port`), `Starting`.
    pub fn new(address: &str, patience: Patience) -> Upstream {
        Upstream {
            address: address.to_string(),
            patience,
            state: watch::Sender::new(UpstreamState::Starting),
            idle: Mutex::default(),
            many_headers: AtomicBool::new(false),
            in_flight: Arc::default(),
            cut: watch::Sender::new(0),
            starts: AtomicU64::new(0),
            tls: Mutex::default(),
        }
    }

    /// What ends the connections open now at the next restart: a server that stops
    /// gracefully (uvicorn, Node's `server.close()`) waits for its open connections, so
    /// a page's event stream, long poll or WebSocket would hold every restart up until
    /// the stop timeout's SIGKILL. Safe requests are cut at once and go again to the
    /// next server; streams and sockets of other requests get [`GOODBYE`] first; a
    /// request still waiting for its answer (a slow POST) is left for the server.
    pub fn cut_signal(&self) -> watch::Receiver<u64> {
        self.cut.subscribe()
    }

    /// Waits, up to `limit`, until the server has wholly answered (its answer read to
    /// the end) every request it was sent that cannot be sent again, so that stopping
    /// it for a restart breaks none off: a form's POST. Then closes the connections
    /// for safe requests still open to it (see [`Upstream::cut_signal`]): a request cut
    /// off goes again to the next server, an event stream reconnects by itself. Blocks
    /// the calling thread; returns whether all were answered.
    pub fn drain(&self, limit: Duration) -> bool {
        let answered = {
            let count = self.in_flight.count();
            let (count, _) = self
                .in_flight
                .done
                .wait_timeout_while(count, limit, |count| *count > 0)
                .unwrap_or_else(|e| e.into_inner());
            *count == 0
        };
        self.cut.send_modify(|restarts| *restarts += 1);
        answered
    }

    /// The server's address, as configured.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Resolves once the server is up (ready, or late but running): the moment a
    /// request held through a restart is sent.
    pub async fn up(&self) {
        let mut state = self.state.subscribe();
        let _ = state
            .wait_for(|s| matches!(s, UpstreamState::Ready | UpstreamState::Late(_)))
            .await;
    }

    /// Records the server's state; connections kept from a server that is going away
    /// are dropped.
    pub fn set_state(&self, state: UpstreamState) {
        if matches!(state, UpstreamState::Ready) {
            self.starts.fetch_add(1, Ordering::Relaxed);
        } else {
            self.idle().clear();
        }
        self.state.send_replace(state);
    }

    /// Sends `request` once the server is ready, waiting and retrying as described
    /// above. An `upgrade` goes on a connection of its own that can switch protocols.
    pub async fn send(
        &self,
        mut request: Request<ProxyBody>,
        upgrade: bool,
    ) -> Result<Response<ProxyBody>, Unavailable> {
        let mut state = self.state.subscribe();
        let replay = Replay::of(&request);
        // A kept connection may be closed by the server (idle too long) just as the
        // request goes out, and then only a request that can be sent again is safe.
        let fresh = upgrade || replay.is_none();
        // Only a fresh connection waits for its answer's head before a cut; a safe
        // request (most of them) needs no flag.
        let answered = fresh.then(|| Arc::new(AtomicBool::new(false)));
        let cut = match &answered {
            Some(answered) => Cut::AfterHead(Arc::clone(answered)),
            None => Cut::Now,
        };
        let mut connections = 0;
        // Whether the one resend to a server that has not restarted (on a fresh
        // connection) has been used.
        let mut resent = false;
        loop {
            let (mut sender, new) = match self.connection(&mut state, fresh || resent).await? {
                Connection::Kept(sender) => (sender, false),
                Connection::New(stream) => {
                    connections += 1;
                    (self.handshake(stream, upgrade, cut.clone()).await?, true)
                }
            };
            // A safe request cut off by a stop goes again to the next server, so a
            // restart does not wait for it (a long poll would hold it up for nothing).
            let waiting = replay.is_none().then(|| Waiting::new(&self.in_flight));
            if waiting.is_some() && !self.is_up(&state) {
                // A restart began since this server was found ready, and its drain may
                // have found nothing to wait for: counted only now, this request would
                // go to a server being stopped (a POST got a 502, 6 in 316,000). Not
                // sent yet: it waits for the next server instead.
                drop(waiting);
                connections -= usize::from(new);
                continue;
            }
            let restarts = *self.cut.borrow();
            let sent = sender.try_send_request(request).await;
            let error = match sent {
                Ok(response) => {
                    if let Some(answered) = &answered {
                        answered.store(true, Ordering::Relaxed);
                    }
                    // A fresh connection serves its one request: kept, every POST
                    // would add one more idle connection (a thread, in a Python
                    // server) up to the pool's limit.
                    if !fresh {
                        self.keep(sender, &state);
                    }
                    if replay.is_none() || upgrade || !is_small(&response) {
                        return Ok(response.map(|body| counted(body, waiting)));
                    }
                    // A small answer to a safe request is received whole before it is
                    // passed on: a server stopped mid-answer (for a restart) then costs
                    // a resend, not a broken page.
                    let (parts, incoming) = response.into_parts();
                    match incoming.collect().await {
                        Ok(whole) => {
                            return Ok(Response::from_parts(parts, body::full(whole.to_bytes())));
                        }
                        Err(err) => err,
                    }
                }
                Err(mut err) => match err.take_message() {
                    // The connection closed before the request went out: use another.
                    Some(unsent) if connections < MAX_CONNECTIONS => {
                        request = unsent;
                        continue;
                    }
                    _ => err.into_error(),
                },
            };
            if error.is_parse_too_large() && !self.many_headers.swap(true, Ordering::Relaxed) {
                // Too many header fields, the first time: from now on, connections read
                // more, and a safe request goes again on one of them.
                self.idle().clear();
                let Some(replay) = &replay else {
                    return Err(Unavailable::Unread);
                };
                report::debug(format!("proxy: {error}; sending the request again"));
                request = replay.request();
                continue;
            }
            if error.is_parse() || error.is_parse_too_large() {
                return Err(self.or_tls(Unavailable::Malformed(error.to_string())).await);
            }
            // Sent, and the connection closed without a whole answer. A safe request
            // without a body can go again when the server went away mid-request
            // (stopped for a restart, say: to the next server once it is ready).
            match &replay {
                Some(replay)
                    if connections < MAX_CONNECTIONS
                        && self.went_away(&state, restarts, !resent) =>
                {
                    report::debug(format!("proxy: {error}; sending the request again"));
                    resent = true;
                    request = replay.request();
                }
                _ => return Err(self.or_tls(Unavailable::Broke(error.to_string())).await),
            }
        }
    }

    /// A connection once the server is `Ready`: a kept one, or (always when `fresh`) a
    /// new socket. The hold counts from here: a request sent again after a restart cut
    /// it off waits for the next server as long as a new one would.
    async fn connection(
        &self,
        state: &mut watch::Receiver<UpstreamState>,
        fresh: bool,
    ) -> Result<Connection, Unavailable> {
        let hold_until = Instant::now() + self.patience.hold;
        let mut failing_since: Option<Instant> = None;
        loop {
            let current = state.borrow_and_update().clone();
            let late = match current {
                UpstreamState::Failed(failure) => return Err(Unavailable::Failed(failure)),
                UpstreamState::Starting => {
                    failing_since = None;
                    match timeout_at(hold_until, state.changed()).await {
                        Ok(_) => continue,
                        Err(_) => return Err(Unavailable::NotReady(self.patience.hold)),
                    }
                }
                UpstreamState::Late(failure) => Some(failure),
                UpstreamState::Ready => None,
            };
            let kept = if fresh { None } else { self.take_idle() };
            if let Some(sender) = kept {
                return Ok(Connection::Kept(sender));
            }
            let (error, busy) = match timeout(CONNECT_TIMEOUT, self.connect()).await {
                Ok(Ok(stream)) => return Ok(Connection::New(stream)),
                Ok(Err(err)) => (err.to_string(), false),
                Err(_) => (
                    format!(
                        "no answer within {}",
                        humantime::format_duration(CONNECT_TIMEOUT)
                    ),
                    true,
                ),
            };
            if let Some(failure) = late {
                return Err(Unavailable::Late {
                    failure,
                    address: self.address.clone(),
                    error,
                });
            }
            let since = *failing_since.get_or_insert_with(Instant::now);
            let waited = since.elapsed();
            // A connect that gets no answer is no refusal: the server is up, and its
            // queue of connections to accept is full (a single-threaded server busy
            // with a slow request), so the request waits as a browser would, up to the
            // hold. A refusal means it is gone, and is retried briefly.
            let given_up = if busy {
                Instant::now() >= hold_until
            } else {
                waited >= self.patience.retry_for
            };
            if given_up {
                return Err(Unavailable::Unreachable {
                    address: self.address.clone(),
                    error,
                    waited,
                });
            }
            // Try again shortly, or at once if the supervisor has news.
            let _ = timeout(self.patience.retry_every, state.changed()).await;
        }
    }

    /// Whether a safe request whose answer broke off should go again: when a restart
    /// began or passed since it was sent (when [`Upstream::drain`] had counted
    /// `restarts`: it goes to the next server), and once in any case (`first`): the
    /// server may have closed a kept connection for idling just as the request went
    /// out, or restarted itself (werkzeug's and uvicorn's reloaders keep the port open
    /// meanwhile, so a connect tells nothing). Not again after that: a handler that
    /// drops its connection would only run again (it ran four times).
    fn went_away(
        &self,
        state: &watch::Receiver<UpstreamState>,
        restarts: u64,
        first: bool,
    ) -> bool {
        first || !self.is_up(state) || *self.cut.borrow() != restarts
    }

    /// Whether the server is (still) the one requests go to: ready, or late but up.
    fn is_up(&self, state: &watch::Receiver<UpstreamState>) -> bool {
        matches!(
            *state.borrow(),
            UpstreamState::Ready | UpstreamState::Late(_)
        )
    }

    /// `why` a request got no answer the proxy could read, unless the server speaks TLS
    /// (see `sniff`): then that, said once on the terminal too. The server is looked at
    /// once per start, as a server that drops connections would get a look (and a line
    /// in its log) for every request.
    async fn or_tls(&self, why: Unavailable) -> Unavailable {
        static TOLD: AtomicBool = AtomicBool::new(false);
        let start = self.starts.load(Ordering::Relaxed);
        let known = *self.tls.lock().unwrap_or_else(|e| e.into_inner());
        let tls = match known {
            Some((at, tls)) if at == start => tls,
            _ => {
                let tls = self.speaks_tls().await;
                *self.tls.lock().unwrap_or_else(|e| e.into_inner()) = Some((start, tls));
                tls
            }
        };
        if !tls {
            return why;
        }
        if !TOLD.swap(true, Ordering::Relaxed) {
            report::warn(format!(
                "the dev server at {} (`proxy.upstream`) speaks HTTPS; the proxy speaks plain \
                 HTTP to it: serve it over HTTP",
                self.address
            ));
        }
        Unavailable::Tls(self.address.clone())
    }

    /// Whether the server answers a TLS hello as a TLS server (see `sniff`).
    async fn speaks_tls(&self) -> bool {
        match tokio::time::timeout(sniff::LOOK_FOR, self.connect()).await {
            Ok(Ok(stream)) => sniff::speaks_tls(stream).await,
            _ => false,
        }
    }

    /// Opens a TCP connection to the server (resolving its name, if it has one).
    async fn connect(&self) -> std::io::Result<TcpStream> {
        let stream = match self.address.parse::<std::net::SocketAddr>() {
            Ok(addr) => TcpStream::connect(addr).await?,
            Err(_) => TcpStream::connect(self.address.as_str()).await?,
        };
        if crate::ready::joined_to_itself(socket2::SockRef::from(&stream)) {
            // Not the server: a socket joined to itself while nothing listens.
            return Err(std::io::ErrorKind::ConnectionRefused.into());
        }
        let _ = stream.set_nodelay(true);
        Ok(stream)
    }

    /// Runs hyper's client handshake on a new socket and drives the connection on a
    /// task of its own, which `cut` ends at a restart.
    async fn handshake(
        &self,
        stream: TcpStream,
        upgrade: bool,
        cut: Cut,
    ) -> Result<SendRequest<ProxyBody>, Unavailable> {
        let mut builder = http1::Builder::new();
        // Read answers as leniently as browsers do (a folded header line, a space
        // before the colon): a page the server shows directly must show here too.
        builder
            .allow_obsolete_multiline_headers_in_responses(true)
            .allow_spaces_after_header_name_in_responses(true);
        if self.many_headers.load(Ordering::Relaxed) {
            builder.max_headers(MANY_HEADERS);
        }
        let (sender, connection) = builder
            .handshake(TokioIo::new(QuickAck::new(stream)))
            .await
            .map_err(|err| Unavailable::Broke(err.to_string()))?;
        let mut restarts = self.cut_signal();
        tokio::spawn(async move {
            let run = async move {
                if upgrade {
                    connection.with_upgrades().await
                } else {
                    connection.await
                }
            };
            let cut = async move {
                loop {
                    if restarts.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                    match &cut {
                        Cut::Now => return,
                        Cut::AfterHead(answered) => {
                            tokio::time::sleep(GOODBYE).await;
                            if answered.load(Ordering::Relaxed) {
                                return;
                            }
                        }
                    }
                }
            };
            tokio::select! {
                result = run => {
                    if let Err(err) = result {
                        report::debug(format!("proxy: upstream connection: {err}"));
                    }
                }
                () = cut => {}
            }
        });
        Ok(sender)
    }

    /// The kept connections. A poisoned lock still guards a whole `Vec` of them, so it
    /// is used as it is.
    fn idle(&self) -> MutexGuard<'_, Vec<SendRequest<ProxyBody>>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A kept connection that is free for a request, if any. Connections whose last
    /// answer is still being read stay for later; closed ones are dropped.
    fn take_idle(&self) -> Option<SendRequest<ProxyBody>> {
        let mut idle = self.idle();
        idle.retain(|sender| !sender.is_closed());
        let free = idle.iter().rposition(SendRequest::is_ready)?;
        Some(idle.swap_remove(free))
    }

    /// Keeps `sender`'s connection for another request, unless the server's state has
    /// changed since `generation` was taken (a restart makes the connection stale). It
    /// becomes free once this response has been read to its end; if the server closes
    /// it instead (HTTP/1.0, `Connection: close`), it is dropped when next looked at.
    fn keep(&self, sender: SendRequest<ProxyBody>, generation: &watch::Receiver<UpstreamState>) {
        if generation.has_changed().unwrap_or(true) {
            return;
        }
        let mut idle = self.idle();
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }
}
