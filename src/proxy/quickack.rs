//! The dev server's socket, acknowledging a response head at once.
//!
//! Python's `http.server` (and so the dev servers built on it) sends a response's head
//! and its body in two writes with Nagle's algorithm on, so the body waits until the
//! head has been acknowledged. On a connection that goes request, response, request,
//! Linux delays that acknowledgement by up to 40 ms, hoping to piggyback it on the
//! next request: every response would stall for 40 ms (browsers and curl see the same
//! against such a server directly). After a read that ends at a line end (a head
//! complete up to its blank line, or a chunk), the socket is told to acknowledge now
//! (`TCP_QUICKACK`). A read that ends mid-line, as the last bytes of most bodies do,
//! sends nothing extra: its acknowledgement rides on the next request.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use socket2::SockRef;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// A connection to the dev server that acknowledges line-ended reads at once.
pub struct QuickAck(TcpStream);

impl QuickAck {
    /// Wraps a connected socket.
    pub fn new(stream: TcpStream) -> QuickAck {
        QuickAck(stream)
    }
}

impl AsyncRead for QuickAck {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.0).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled()[before..].ends_with(b"\r\n") {
            // Best effort: without it, the worst is the 40 ms wait described above.
            let _ = SockRef::from(&self.0).set_tcp_quickack(true);
        }
        polled
    }
}

impl AsyncWrite for QuickAck {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}
