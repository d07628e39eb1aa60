//! Decoding a compressed document so the tag can go in: `gzip` (also `x-gzip`) and
//! `deflate`, streamed frame by frame with flate2.
//!
//! The proxy asks for `Accept-Encoding: identity` on the requests it may inject into,
//! so this is for servers that compress regardless. A coding it does not know, or
//! several stacked, is passed through untouched (and not injected into).
//! `deflate` is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate;
//! the first two bytes tell which.
//!
//! Memory is bounded: the decoder runs only until it has a frame of 64 KiB, and reads
//! no more compressed bytes until what it decoded has been passed on, so a page that
//! expands a thousandfold (deflate goes up to 1032:1) takes no more than one that comes
//! uncompressed.

use std::io::{self, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use flate2::write::{DeflateDecoder, GzDecoder, ZlibDecoder};
use hyper::body::{Body, Bytes, Frame};
use hyper::header::{CONTENT_ENCODING, HeaderMap};

use super::body::{BoxError, ProxyBody};

/// A response's `Content-Encoding`, as far as injection cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// None (or `identity`): the bytes are the document.
    Identity,
    /// One coding we can undo.
    Decodable(Coding),
    /// Anything else: leave the body alone.
    Other,
}

/// A content coding we decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Coding {
    /// `gzip` or `x-gzip`.
    Gzip,
    /// `deflate`, zlib-wrapped or raw.
    Deflate,
}

impl Encoding {
    /// The encoding named by `headers`' `Content-Encoding` (all of its values).
    pub fn of(headers: &HeaderMap) -> Encoding {
        let mut codings = Vec::new();
        for value in headers.get_all(CONTENT_ENCODING) {
            let Ok(value) = value.to_str() else {
                return Encoding::Other;
            };
            codings.extend(
                value
                    .split(',')
                    .map(|c| c.trim().to_ascii_lowercase())
                    .filter(|c| !c.is_empty() && c != "identity"),
            );
        }
        match codings.as_slice() {
            [] => Encoding::Identity,
            [one] if one == "gzip" || one == "x-gzip" => Encoding::Decodable(Coding::Gzip),
            [one] if one == "deflate" => Encoding::Decodable(Coding::Deflate),
            _ => Encoding::Other,
        }
    }
}

/// The most decoded bytes in one frame.
const FRAME: usize = 64 * 1024;

/// A body decoded on the fly.
pub struct Decoded {
    inner: ProxyBody,
    /// `None` once the decoded stream has ended.
    inflater: Option<Inflater>,
    /// Whether the compressed stream has ended (or its trailers came).
    ended: bool,
    /// Trailers read at the end, sent after the last bytes.
    pending: Option<Frame<Bytes>>,
}

impl Decoded {
    /// `inner`, decoded from `coding`.
    pub fn new(inner: ProxyBody, coding: Coding) -> Decoded {
        Decoded {
            inner,
            inflater: Some(Inflater::new(coding)),
            ended: false,
            pending: None,
        }
    }
}

impl Body for Decoded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        loop {
            let Some(inflater) = &mut this.inflater else {
                return Poll::Ready(this.pending.take().map(Ok));
            };
            // What the input read so far decodes to goes out before more is read.
            match inflater.next(this.ended) {
                Ok(Some(bytes)) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Ok(None) if this.ended => {
                    this.inflater = None;
                    continue;
                }
                Ok(None) => {}
                Err(err) => return Poll::Ready(Some(Err(err.into()))),
            }
            match ready!(Pin::new(&mut this.inner).poll_frame(cx)) {
                Some(Ok(frame)) => match frame.into_data() {
                    Ok(data) => inflater.push(data),
                    Err(trailers) => {
                        this.pending = Some(trailers);
                        this.ended = true;
                    }
                },
                Some(Err(err)) => return Poll::Ready(Some(Err(err))),
                None => this.ended = true,
            }
        }
    }
}

/// The compressed bytes not decoded yet, and the decoder once it is known.
struct Inflater {
    coding: Coding,
    /// `None` until the first bytes arrive (for `deflate`, the first two: they tell
    /// zlib from raw), so that an empty body is no error.
    decoder: Option<Decoder>,
    input: Bytes,
    /// Set once bytes that are no gzip member came after one: the rest is dropped.
    trailing: bool,
}

impl Inflater {
    fn new(coding: Coding) -> Inflater {
        Inflater {
            coding,
            decoder: None,
            input: Bytes::new(),
            trailing: false,
        }
    }

    /// Adds compressed bytes; called once [`Inflater::next`] has taken all before.
    fn push(&mut self, data: Bytes) {
        if self.trailing {
            return;
        }
        self.input = if self.input.is_empty() {
            data
        } else {
            // Only the first byte of a `deflate` stream, or of what follows a gzip
            // member, waits for a second.
            [&self.input[..], &data[..]].concat().into()
        };
    }

    /// The next piece of the decoded stream (at most [`FRAME`] bytes), or `None` once
    /// all the input is decoded and passed on. `ended`: no more input will come, so
    /// the stream must be complete.
    fn next(&mut self, ended: bool) -> io::Result<Option<Bytes>> {
        if self.decoder.is_none() {
            self.decoder = Decoder::start(self.coding, &self.input);
        }
        let Some(decoder) = &mut self.decoder else {
            if ended && !self.input.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "a deflate stream of one byte",
                ));
            }
            return Ok(None);
        };
        while !self.input.is_empty() {
            match decoder.writer().write(&self.input) {
                Ok(0) if matches!(decoder, Decoder::Gzip(_)) => {
                    // A gzip member ended and more follows: another member, or bytes
                    // to drop, as browsers (and zlib's gunzip) drop them.
                    match &self.input[..] {
                        [0x1f, 0x8b, ..] => decoder.next_member(),
                        [0x1f] if !ended => break,
                        _ => {
                            self.trailing = true;
                            self.input = Bytes::new();
                        }
                    }
                }
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        "data after the end of the compressed stream",
                    ));
                }
                Ok(taken) => self.input = self.input.slice(taken..),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Some(decoder.take()));
                }
                Err(err) => return Err(err),
            }
        }
        // flate2 keeps what a write decoded in its own buffer until the next write, which
        // would hold back what a streaming server flushed (the head of a page, the tag's
        // place) until its next chunk: flushed now, or finished at the end.
        let done = if ended {
            decoder.finish()
        } else {
            decoder.writer().flush()
        };
        match done {
            // A full frame: the rest comes at the next call.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => {}
            Err(err) => return Err(err),
            Ok(()) => {}
        }
        let out = decoder.take();
        Ok((!out.is_empty()).then_some(out))
    }
}

/// flate2's streaming decoders, each writing into a [`Sink`]; gzip one member at a
/// time, so what follows a member can be told apart.
enum Decoder {
    Gzip(GzDecoder<Sink>),
    Zlib(ZlibDecoder<Sink>),
    Raw(DeflateDecoder<Sink>),
}

impl Decoder {
    /// The decoder for `coding`, or `None` until `first` holds enough bytes to tell.
    fn start(coding: Coding, first: &[u8]) -> Option<Decoder> {
        match (coding, first) {
            (_, []) | (Coding::Deflate, [_]) => None,
            (Coding::Gzip, _) => Some(Decoder::Gzip(GzDecoder::new(Sink::default()))),
            (Coding::Deflate, [cmf, flg, ..]) if is_zlib_header(*cmf, *flg) => {
                Some(Decoder::Zlib(ZlibDecoder::new(Sink::default())))
            }
            (Coding::Deflate, _) => Some(Decoder::Raw(DeflateDecoder::new(Sink::default()))),
        }
    }

    /// A gzip decoder for the next member, keeping what the last one decoded.
    fn next_member(&mut self) {
        if let Decoder::Gzip(d) = self {
            let decoded = std::mem::take(d.get_mut());
            *d = GzDecoder::new(decoded);
        }
    }

    fn writer(&mut self) -> &mut dyn Write {
        match self {
            Decoder::Gzip(d) => d,
            Decoder::Zlib(d) => d,
            Decoder::Raw(d) => d,
        }
    }

    /// Decodes what is left and checks that the stream is complete; `WouldBlock` when
    /// the frame filled first (call again once it has been taken).
    fn finish(&mut self) -> io::Result<()> {
        match self {
            Decoder::Gzip(d) => d.try_finish(),
            Decoder::Zlib(d) => d.try_finish(),
            Decoder::Raw(d) => d.try_finish(),
        }
    }

    /// The bytes decoded so far, leaving room for a frame more.
    fn take(&mut self) -> Bytes {
        let sink = match self {
            Decoder::Gzip(d) => d.get_mut(),
            Decoder::Zlib(d) => d.get_mut(),
            Decoder::Raw(d) => d.get_mut(),
        };
        std::mem::take(&mut sink.0).into()
    }
}

/// Where a decoder writes: up to [`FRAME`] bytes, then `WouldBlock` until they are
/// taken. The flate2 decoders keep their place (and at most 32 KiB decoded) when their
/// writer would block, so each write decodes only as far as the frame has room.
#[derive(Default)]
struct Sink(Vec<u8>);

impl Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let room = FRAME - self.0.len();
        if room == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = bytes.len().min(room);
        self.0.extend_from_slice(&bytes[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Whether two bytes open a zlib stream: method 8 (deflate), a window of at most
/// 32 KiB, and a header checksum that makes them a multiple of 31 (RFC 1950).
fn is_zlib_header(cmf: u8, flg: u8) -> bool {
    cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(cmf) << 8 | u16::from(flg)) % 31 == 0
}

#[cfg(test)]
mod tests {
    use flate2::Compression;
    use flate2::write::{DeflateEncoder, GzEncoder, ZlibEncoder};
    use futures_util::{FutureExt, StreamExt};
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    const TEXT: &[u8] = b"<html><head></head><body>compressed, decompressed</body></html>";

    fn compress(coding: &str, text: &[u8]) -> Vec<u8> {
        let level = Compression::default();
        let compressed = match coding {
            "gzip" => {
                let mut e = GzEncoder::new(Vec::new(), level);
                e.write_all(text).and_then(|()| e.finish())
            }
            "zlib" => {
                let mut e = ZlibEncoder::new(Vec::new(), level);
                e.write_all(text).and_then(|()| e.finish())
            }
            _ => {
                let mut e = DeflateEncoder::new(Vec::new(), level);
                e.write_all(text).and_then(|()| e.finish())
            }
        };
        compressed.expect("compressing into memory")
    }

    /// The body `Decoded` makes of `chunks`, each a frame of the compressed body.
    fn decoded<'a>(chunks: impl Iterator<Item = &'a [u8]>, coding: Coding) -> Decoded {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = chunks
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let source = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
        Decoded::new(source, coding)
    }

    /// The frames `Decoded` makes of `chunks`, read to the end.
    fn frames<'a>(
        chunks: impl Iterator<Item = &'a [u8]>,
        coding: Coding,
    ) -> Result<Vec<Bytes>, BoxError> {
        let mut body = decoded(chunks, coding);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let mut frames = Vec::new();
            while let Some(frame) = body.frame().await {
                frames.push(frame?.into_data().expect("no trailers"));
            }
            Ok(frames)
        })
    }

    /// Decodes `bytes` fed one byte per frame, the worst split there is.
    fn decode(bytes: &[u8], coding: Coding) -> Result<Vec<u8>, BoxError> {
        Ok(frames(bytes.chunks(1), coding)?.concat())
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode_byte_by_byte() {
        let gzip = compress("gzip", TEXT);
        assert_eq!(decode(&gzip, Coding::Gzip).expect("gzip"), TEXT);
        let zlib = compress("zlib", TEXT);
        assert_eq!(decode(&zlib, Coding::Deflate).expect("zlib"), TEXT);
        let raw = compress("raw", TEXT);
        assert_eq!(decode(&raw, Coding::Deflate).expect("raw"), TEXT);
        assert_eq!(decode(b"", Coding::Gzip).expect("empty"), b"");
        assert_eq!(decode(b"", Coding::Deflate).expect("empty"), b"");
        assert!(decode(&raw[..1], Coding::Deflate).is_err());
    }

    /// Several gzip members are one page; bytes after a member that are no member are
    /// dropped, as browsers drop them (a 502 before).
    #[test]
    fn gzip_members_follow_each_other_and_stray_bytes_are_dropped() {
        let (one, two) = (
            compress("gzip", b"<p>one</p>"),
            compress("gzip", b"<p>two</p>"),
        );
        let both = [&one[..], &two[..]].concat();
        assert_eq!(
            decode(&both, Coding::Gzip).expect("two members"),
            b"<p>one</p><p>two</p>"
        );
        for stray in [&b"\n"[..], b"\x1f", b"garbage after the trailer"] {
            let page = [&one[..], stray].concat();
            assert_eq!(
                decode(&page, Coding::Gzip).expect("stray bytes"),
                b"<p>one</p>"
            );
            let whole = frames([&page[..]].into_iter(), Coding::Gzip).expect("in one frame");
            assert_eq!(whole.concat(), b"<p>one</p>");
        }
        assert!(
            decode(&one[..one.len() - 4], Coding::Gzip).is_err(),
            "cut short"
        );
    }

    #[test]
    fn a_page_that_expands_a_thousandfold_comes_out_in_bounded_frames() {
        let mut page = b"<html><head></head><body>".to_vec();
        page.resize(24 << 20, 0);
        page.extend_from_slice(b"</body></html>");
        for (coding, name) in [(Coding::Gzip, "gzip"), (Coding::Deflate, "zlib")] {
            let compressed = compress(name, &page);
            assert!(compressed.len() < 100 << 10, "{name}: {}", compressed.len());
            // All of it in one input frame, then in two.
            for split in [compressed.len(), compressed.len() / 2] {
                let frames = frames(compressed.chunks(split), coding).expect(name);
                let largest = frames.iter().map(Bytes::len).max();
                assert_eq!(largest, Some(FRAME), "{name}");
                assert!(frames.concat() == page, "{name}: the page comes out whole");
            }
        }
    }

    #[test]
    fn what_a_server_flushed_comes_out_whole_before_more_arrives() {
        // More than a frame, flushed (as a streaming server does), then nothing more.
        let text: Vec<u8> = (0..20_000)
            .flat_map(|n| format!("<p>line {n}</p>\n").into_bytes())
            .collect();
        assert!(text.len() > 2 * FRAME);
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder
            .write_all(&text)
            .and_then(|()| encoder.flush())
            .expect("compressing into memory");
        let flushed = Bytes::from(std::mem::take(encoder.get_mut()));
        let head = futures_util::stream::once(async { Ok::<_, BoxError>(Frame::data(flushed)) });
        let source = StreamBody::new(head.chain(futures_util::stream::pending()));
        let mut body = Decoded::new(source.boxed_unsync(), Coding::Gzip);
        let mut out = Vec::new();
        while out.len() < text.len() {
            let frame = body.frame().now_or_never();
            let frame = frame.expect("decoded bytes are not held back for more input");
            let data = frame.expect("a frame").expect("no error");
            out.extend_from_slice(&data.into_data().expect("data"));
        }
        assert!(out == text);
        assert!(body.frame().now_or_never().is_none(), "then it waits");
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let gzip = compress("gzip", TEXT);
        assert!(decode(&gzip[..gzip.len() - 4], Coding::Gzip).is_err());
    }

    #[test]
    fn encodings_are_read_from_every_value() {
        let of = |values: &[&'static str]| {
            let mut headers = HeaderMap::new();
            for v in values {
                headers.append(CONTENT_ENCODING, v.parse().expect("a header value"));
            }
            Encoding::of(&headers)
        };
        assert_eq!(of(&[]), Encoding::Identity);
        assert_eq!(of(&["identity"]), Encoding::Identity);
        assert_eq!(of(&["GZIP"]), Encoding::Decodable(Coding::Gzip));
        assert_eq!(of(&["x-gzip"]), Encoding::Decodable(Coding::Gzip));
        assert_eq!(of(&["deflate"]), Encoding::Decodable(Coding::Deflate));
        assert_eq!(of(&["br"]), Encoding::Other);
        assert_eq!(of(&["gzip, br"]), Encoding::Other);
        assert_eq!(of(&["gzip", "gzip"]), Encoding::Other);
    }
}
