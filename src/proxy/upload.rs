//! A browser's request body on its way to the dev server, and what happens to the rest
//! of it when the server answers without reading it all.
//!
//! A server may answer before it has read the request's body: Python's `wsgiref` under
//! an app that never reads `wsgi.input`, or a 413 or 401 to an upload. If it then
//! closes, hyper's client drops the body, and hyper's server, finding the body
//! unwanted, stops reading from the browser and closes the connection after the
//! answer: the browser, still sending its body, gets a reset, and loses the answer
//! (or reuses a connection that it was told was kept alive, and loses the next one).
//!
//! So the rest is read and dropped ([`DISCARD_LIMIT`] bytes, [`DISCARD_TIME`] at
//! most, as nginx discards a body it did not need), letting the browser finish sending
//! and read the answer; and an answer that comes before the body went whole to the
//! server says `Connection: close` ([`Sent::whole`]), since the connection may still
//! be closed if the browser sends more than that, or the server stops the body short.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};

use super::body::{BoxError, ProxyBody};
use crate::report;

/// How many bytes of a body the server did not take are read and dropped at most.
const DISCARD_LIMIT: usize = 8 * 1024 * 1024;

/// How long the rest of a body the server did not take is read and dropped at most.
const DISCARD_TIME: Duration = Duration::from_secs(2);

/// A request body for the dev server, as a [`ProxyBody`], and the handle that tells
/// whether it went to the server whole.
pub fn upload(incoming: Incoming) -> (ProxyBody, Sent) {
    let sent = Sent {
        whole: Arc::new(AtomicBool::new(incoming.is_end_stream())),
        broken: Arc::default(),
    };
    let body = Upload {
        incoming: Some(incoming),
        whole: Arc::clone(&sent.whole),
        broken: Arc::clone(&sent.broken),
    };
    (body.map_err(BoxError::from).boxed_unsync(), sent)
}

/// Whether a request body went to the dev server whole, or broke on its way.
pub struct Sent {
    whole: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
}

impl Sent {
    /// Whether the body was passed on to its end (an empty one from the start): the
    /// browser sends nothing more, and its connection can be kept alive.
    pub fn whole(&self) -> bool {
        self.whole.load(Ordering::Acquire)
    }

    /// Whether reading the body from the browser failed (a malformed chunk, a
    /// connection closed before the body's end): the server then got a request cut
    /// short, and its failure to answer is the request's fault, not the server's.
    pub fn broken(&self) -> bool {
        self.broken.load(Ordering::Acquire)
    }
}

/// The browser's body: passed on frame by frame, and its rest discarded if it is
/// dropped before its end.
struct Upload {
    incoming: Option<Incoming>,
    whole: Arc<AtomicBool>,
    broken: Arc<AtomicBool>,
}

impl Body for Upload {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let Some(incoming) = self.incoming.as_mut() else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(&mut *incoming).poll_frame(cx);
        // hyper's client stops at a body that says it has ended, without polling it
        // for its end: a last frame that completes the length counts.
        let ended = match &polled {
            Poll::Ready(None) => true,
            Poll::Ready(Some(Ok(_))) => incoming.is_end_stream(),
            Poll::Ready(Some(Err(_))) => {
                self.broken.store(true, Ordering::Release);
                false
            }
            Poll::Pending => false,
        };
        if ended {
            self.whole.store(true, Ordering::Release);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for Upload {
    fn drop(&mut self) {
        let Some(incoming) = self.incoming.take() else {
            return;
        };
        if incoming.is_end_stream() {
            return;
        }
        // Dropped by hyper's client, on the proxy's runtime; without one (the runtime
        // is shutting down) the connection goes with it anyway.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(discard(incoming));
        }
    }
}

/// Reads `rest` to its end and drops it, up to [`DISCARD_LIMIT`] bytes and
/// [`DISCARD_TIME`]; then gives up, and hyper closes the browser's connection.
async fn discard(mut rest: Incoming) {
    let read = async {
        let mut read = 0;
        while let Some(frame) = rest.frame().await {
            let Ok(frame) = frame else { return };
            read += frame.data_ref().map_or(0, Bytes::len);
            if read > DISCARD_LIMIT {
                report::debug("proxy: a request body the server did not read is too long");
                return;
            }
        }
    };
    if tokio::time::timeout(DISCARD_TIME, read).await.is_err() {
        report::debug("proxy: a request body the server did not read is too slow");
    }
}
