//! The body types the proxy passes around: one boxed type for every body it sends
//! either way, and [`Spliced`], an upstream body with bytes put in front and behind
//! (the scanned window with the tag in it, and the tag appended at the end).
//!
//! Every body streams: a frame is passed on as soon as it arrives, so server-sent
//! events, large files and slow downloads go through without being held.

use std::pin::Pin;
use std::task::{Context, Poll};

use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::HeaderMap;
use hyper::body::{Body, Bytes, Frame, Incoming, SizeHint};
use tokio::sync::watch;

/// Any error a body can end with.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Every body the proxy sends, to the browser or to the dev server.
pub type ProxyBody = UnsyncBoxBody<Bytes, BoxError>;

/// A body of these bytes.
pub fn full(bytes: impl Into<Bytes>) -> ProxyBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// A body with nothing in it.
pub fn empty() -> ProxyBody {
    Empty::new().map_err(|never| match never {}).boxed_unsync()
}

/// A body received by hyper (a request from the browser, a response from upstream).
pub fn incoming(body: Incoming) -> ProxyBody {
    body.map_err(BoxError::from).boxed_unsync()
}

/// `body`, ended as a whole body where it breaks off because a restart cut it (a new
/// value in `restarts`, the proxy's cut signal, since it was taken): for an event
/// stream, whose reader reconnects either way, and a page still streaming into a tab
/// (see `forward::quiet_event_stream`, `inject::apply`). Broken off for any other
/// reason (a crash, a handler that dropped its connection), it still fails, so it is
/// not taken for whole.
pub fn ending_quietly(body: ProxyBody, restarts: watch::Receiver<u64>) -> ProxyBody {
    EndsQuietly {
        body: Some(body),
        restarts,
    }
    .boxed_unsync()
}

/// A body that ends, rather than fails, when a restart cuts its source off.
struct EndsQuietly {
    /// The source, until it ends or breaks off.
    body: Option<ProxyBody>,
    /// The proxy's cut signal, as it was when the body began.
    restarts: watch::Receiver<u64>,
}

impl Body for EndsQuietly {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(body) = &mut self.body else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Err(err))) => {
                self.body = None;
                if !self.restarts.has_changed().unwrap_or(false) {
                    return Poll::Ready(Some(Err(err)));
                }
                crate::report::debug(format!("proxy: stream ended at a restart: {err}"));
                Poll::Ready(None)
            }
            Poll::Ready(None) => {
                self.body = None;
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

/// `front`, then the frames of `rest` (if any) as they arrive, then `tail`, then the
/// trailers (`rest`'s own, or those already read from it).
pub struct Spliced {
    front: Bytes,
    rest: Option<ProxyBody>,
    tail: Bytes,
    trailers: Option<HeaderMap>,
}

impl Spliced {
    /// The body `front` + `rest` + `tail`, ending with `trailers` unless `rest` has its
    /// own.
    pub fn new(
        front: Bytes,
        rest: Option<ProxyBody>,
        tail: Bytes,
        trailers: Option<HeaderMap>,
    ) -> Spliced {
        Spliced {
            front,
            rest,
            tail,
            trailers,
        }
    }
}

impl Body for Spliced {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if !this.front.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.front)))));
        }
        if let Some(rest) = &mut this.rest {
            match Pin::new(rest).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(frame))) => match frame.into_trailers() {
                    // Trailers end a body: the tail must come before them.
                    Ok(trailers) => {
                        this.trailers = Some(trailers);
                        this.rest = None;
                    }
                    Err(frame) => return Poll::Ready(Some(Ok(frame))),
                },
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(None) => this.rest = None,
            }
        }
        if !this.tail.is_empty() {
            return Poll::Ready(Some(Ok(Frame::data(std::mem::take(&mut this.tail)))));
        }
        Poll::Ready(this.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.front.is_empty()
            && self.rest.is_none()
            && self.tail.is_empty()
            && self.trailers.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        let ours = (self.front.len() + self.tail.len()) as u64;
        match &self.rest {
            None => SizeHint::with_exact(ours),
            Some(rest) => {
                let theirs = rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(theirs.lower() + ours);
                if let Some(upper) = theirs.upper() {
                    hint.set_upper(upper + ours);
                }
                hint
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(body: Spliced) -> (Vec<u8>, Option<HeaderMap>) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let collected = runtime
            .block_on(body.collect())
            .expect("no error from in-memory bodies");
        let trailers = collected.trailers().cloned();
        (collected.to_bytes().to_vec(), trailers)
    }

    #[test]
    fn front_rest_and_tail_come_in_order() {
        let spliced = Spliced::new(
            Bytes::from_static(b"front "),
            Some(full("rest ")),
            Bytes::from_static(b"tail"),
            None,
        );
        // A rest of known length makes the whole length known.
        assert_eq!(spliced.size_hint().exact(), Some(15));
        assert_eq!(collect(spliced).0, b"front rest tail");
    }

    /// A body of one frame of `bytes`, then an error.
    struct Breaks(Option<Bytes>);

    impl Body for Breaks {
        type Data = Bytes;
        type Error = BoxError;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
            Poll::Ready(Some(match self.0.take() {
                Some(bytes) => Ok(Frame::data(bytes)),
                None => Err("cut off".into()),
            }))
        }
    }

    #[test]
    fn a_body_ending_quietly_ends_where_a_restart_breaks_it_off() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let breaks = || Breaks(Some(Bytes::from_static(b"data: 1\n\n"))).boxed_unsync();
        assert!(runtime.block_on(breaks().collect()).is_err());
        let cut = watch::Sender::new(0u64);
        // Broken off with no restart since it began (a crash): it fails.
        let quiet = ending_quietly(breaks(), cut.subscribe());
        assert!(runtime.block_on(quiet.collect()).is_err());
        let quiet = ending_quietly(breaks(), cut.subscribe());
        cut.send_modify(|restarts| *restarts += 1);
        let collected = runtime.block_on(quiet.collect()).expect("a whole body");
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"data: 1\n\n"));
    }

    #[test]
    fn a_finished_body_knows_its_length_and_keeps_its_trailers() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-checksum", "1".parse().expect("a header value"));
        let spliced = Spliced::new(
            Bytes::from_static(b"all"),
            None,
            Bytes::from_static(b"!"),
            Some(trailers.clone()),
        );
        assert_eq!(spliced.size_hint().exact(), Some(4));
        assert_eq!(collect(spliced), (b"all!".to_vec(), Some(trailers)));
    }
}
