//! One reload WebSocket, from the 101 to the close: our `hello` first, then the client's
//! messages, the hub's broadcasts, pings and the shutdown signal, in one `select!` loop.
//!
//! Framing, masking, UTF-8 checks, answering pings and echoing close frames are
//! tungstenite's; this file decides only what to say. Anything a client sends that we do
//! not understand is ignored, except binary frames (the protocol has none) and oversized
//! messages, which end the socket; either way nothing reaches beyond this one task.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use hyper::body::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::broadcast::error::RecvError;
use tokio::time::{Instant, interval_at, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

use super::hub::{Audience, SocketSlot};
use super::protocol::{self, ClientMessage};
use crate::report;

/// The largest client message or frame accepted; a LiveReload client's largest message
/// (`info`) is a few hundred bytes. Larger ones end the socket with close code 1009
/// (the rest of the message unread, so the close may come with a reset).
pub const MAX_MESSAGE: usize = 64 * 1024;

/// How many bytes a socket reads at a time. A client's messages are a few hundred
/// bytes; tungstenite's default, 128 KiB, held up to 2,048 idle sockets' 280 MB.
const READ_BUFFER: usize = 4 * 1024;

/// How many bytes of outgoing frames a socket gathers before it writes them.
const WRITE_BUFFER: usize = 16 * 1024;

/// The most a socket holds of frames its client has not read: a client that sent pings
/// and read no pongs grew reloadsup by 110 MB a second (every pong was kept); past this
/// a pong waits in place of the one before, and our next message ends the socket. Our
/// largest message, a reload naming a path, is a few KiB.
const WRITE_BUFFER_MAX: usize = 64 * 1024;

/// A write that takes longer than this means the client stopped reading: drop it rather
/// than let its messages pile up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a goodbye (close frame) may take at shutdown.
const CLOSE_TIMEOUT: Duration = Duration::from_millis(200);

/// Why the loop ended, for the debug line.
type Ending = &'static str;

/// How many early reloads a socket keeps for a client that has not said hello yet.
const EARLY_MAX: usize = 16;

/// Runs one socket on an upgraded connection until either side ends it.
pub async fn serve<S>(mut slot: SocketSlot, io: S)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
        .write_buffer_size(WRITE_BUFFER)
        .max_write_buffer_size(WRITE_BUFFER_MAX);
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let hub = slot.hub.clone();
    // Subscribe before anything else, so no broadcast sent after the client's hello can
    // slip past this socket.
    let mut events = hub.subscribe();
    let stopped = hub.stopped();
    tokio::pin!(stopped);
    let timing = hub.timing();
    let mut pings = interval_at(Instant::now() + timing.ping, timing.ping);
    let mut last_heard = Instant::now();
    // `Some((first message number, vendor))` once the client's hello arrived.
    let mut client: Option<(u64, bool)> = None;
    // Reloads broadcast after the socket opened but before the client's hello arrived
    // (a page that just connected, as a file is saved): sent right after the hello, so
    // the page is not left stale. Never before it, as the protocol requires.
    let mut early: Vec<Utf8Bytes> = Vec::new();

    let ending: Ending = 'session: {
        if send(&mut ws, Message::Text(hub.hello())).await.is_err() {
            break 'session "could not send hello";
        }
        loop {
            tokio::select! {
                incoming = ws.next() => {
                    let message = match incoming {
                        Some(Ok(message)) => message,
                        Some(Err(tokio_tungstenite::tungstenite::Error::Capacity(_))) => {
                            close(&mut ws, CloseCode::Size, "message too big").await;
                            break 'session "sent a message too big";
                        }
                        Some(Err(tokio_tungstenite::tungstenite::Error::Utf8(_))) => {
                            // RFC 6455: a text frame that is not UTF-8 ends with 1007.
                            close(&mut ws, CloseCode::Invalid, "text frames are UTF-8").await;
                            break 'session "sent a text frame that is not UTF-8";
                        }
                        Some(Err(err)) => {
                            report::debug(format!("reload socket error: {err}"));
                            break 'session "read failed";
                        }
                        None => break 'session "closed by the client",
                    };
                    last_heard = Instant::now();
                    match message {
                        Message::Text(text) => {
                            let before = client.is_some();
                            let reply = on_text(&mut slot, &text, &mut client);
                            let mut replies: Vec<Utf8Bytes> = reply.into_iter().collect();
                            if !before && client.is_some() {
                                replies.append(&mut early);
                            }
                            for reply in replies {
                                if send(&mut ws, Message::Text(reply)).await.is_err() {
                                    break 'session "write failed";
                                }
                            }
                        }
                        Message::Binary(_) => {
                            close(&mut ws, CloseCode::Unsupported, "text frames only").await;
                            break 'session "sent a binary frame";
                        }
                        // Pings are answered and closes echoed by tungstenite; the
                        // stream ends after a close.
                        _ => {}
                    }
                }
                event = events.recv() => {
                    let outgoing = match event {
                        Ok(outgoing) => outgoing,
                        Err(RecvError::Lagged(_)) => break 'session "fell too far behind",
                        Err(RecvError::Closed) => break 'session "hub gone",
                    };
                    let Some((first_seq, vendor)) = client else {
                        if outgoing.audience == Audience::All && early.len() < EARLY_MAX {
                            early.push(outgoing.text);
                        }
                        continue;
                    };
                    let wanted = outgoing.audience == Audience::All || vendor;
                    if outgoing.seq >= first_seq && wanted
                        && send(&mut ws, Message::Text(outgoing.text)).await.is_err()
                    {
                        break 'session "write failed";
                    }
                }
                _ = pings.tick() => {
                    if last_heard.elapsed() >= timing.dead_after {
                        break 'session "did not answer pings";
                    }
                    if send(&mut ws, Message::Ping(Bytes::new())).await.is_err() {
                        break 'session "write failed";
                    }
                }
                () = &mut stopped => {
                    close(&mut ws, CloseCode::Away, "reloadsup is stopping").await;
                    break 'session "shut down";
                }
            }
        }
    };
    report::debug(format!("reload socket ended: {ending}"));
}

/// Acts on one text message; returns a reply to send, if any.
fn on_text(
    slot: &mut SocketSlot,
    text: &str,
    client: &mut Option<(u64, bool)>,
) -> Option<Utf8Bytes> {
    match protocol::decode(text) {
        // Our hello went out when the socket opened, which answers this one too (a
        // second hello would be a protocol error to livereload.js).
        ClientMessage::Hello { vendor } => {
            let joined = slot.join(vendor)?;
            *client = Some((joined.first_seq, vendor));
            joined.status
        }
        ClientMessage::Info { url } => {
            if let Some(url) = url {
                report::debug(format!("browser connected: {url}"));
            }
            None
        }
        ClientMessage::Other => None,
        ClientMessage::Garbage => {
            report::debug("ignored a reload socket message that is not a JSON object");
            None
        }
    }
}

/// Sends one message, giving up after [`WRITE_TIMEOUT`].
async fn send<S>(ws: &mut WebSocketStream<S>, message: Message) -> Result<(), ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match timeout(WRITE_TIMEOUT, ws.send(message)).await {
        Ok(Ok(())) => Ok(()),
        _ => Err(()),
    }
}

/// Says goodbye with `code`, briefly: the socket is dropped right after either way.
async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &'static str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    };
    let _ = timeout(CLOSE_TIMEOUT, ws.close(Some(frame))).await;
}
