//! Decoding a compressed document so the tag can go in: `gzip` (also `x-gzip`) and
//! `deflate`, streamed frame by frame with flate2.
//!
//! The proxy asks for `Accept-Encoding: identity` on the requests it may inject into,
//! so this is for servers that compress regardless. A coding it does not know, or
//! several stacked, is passed through untouched (and not injected into).
//! `deflate` is meant to be zlib-wrapped (RFC 9110), but some servers send raw deflate;
//! the first two bytes tell which.

use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};

use flate2::write::{DeflateDecoder, MultiGzDecoder, ZlibDecoder};
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

/// A body decoded on the fly.
pub struct Decoded {
    inner: ProxyBody,
    /// `None` once the compressed stream has ended.
    inflater: Option<Inflater>,
    /// Trailers read while finishing, sent after the last bytes.
    pending: Option<Frame<Bytes>>,
}

impl Decoded {
    /// `inner`, decoded from `coding`.
    pub fn new(inner: ProxyBody, coding: Coding) -> Decoded {
        Decoded {
            inner,
            inflater: Some(Inflater::new(coding)),
            pending: None,
        }
    }

    /// The compressed stream ended (or trailers came): flushes the inflater. `None` when
    /// it had nothing left, so the caller reads on.
    fn finish(&mut self) -> Option<Result<Frame<Bytes>, BoxError>> {
        let last = self.inflater.take()?.finish();
        match last {
            Ok(bytes) if bytes.is_empty() => None,
            Ok(bytes) => Some(Ok(Frame::data(bytes))),
            Err(err) => Some(Err(err.into())),
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
            let frame = match Pin::new(&mut this.inner).poll_frame(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Err(err))) => return Poll::Ready(Some(Err(err))),
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(None) => match this.finish() {
                    Some(frame) => return Poll::Ready(Some(frame)),
                    None => continue,
                },
            };
            match frame.into_data() {
                Ok(data) => match inflater.push(&data) {
                    // Compressed bytes that made no output yet: read on.
                    Ok(bytes) if bytes.is_empty() => continue,
                    Ok(bytes) => return Poll::Ready(Some(Ok(Frame::data(bytes)))),
                    Err(err) => return Poll::Ready(Some(Err(err.into()))),
                },
                Err(trailers) => {
                    this.pending = Some(trailers);
                    match this.finish() {
                        Some(frame) => return Poll::Ready(Some(frame)),
                        None => continue,
                    }
                }
            }
        }
    }
}

/// flate2's streaming decoders, writing into a buffer that is emptied after each push.
/// Each push is flushed: flate2 keeps what a write decoded in its own buffer until the
/// next write, which would hold back what a streaming server flushed (the head of a
/// page, the tag's place) until its next chunk.
enum Inflater {
    Gzip(MultiGzDecoder<Vec<u8>>),
    Zlib(ZlibDecoder<Vec<u8>>),
    Raw(DeflateDecoder<Vec<u8>>),
    /// `deflate` whose first two bytes have not arrived yet.
    Undecided(Vec<u8>),
    /// Nothing has arrived yet for `gzip` (an empty body is no error).
    GzipUnstarted,
}

impl Inflater {
    fn new(coding: Coding) -> Inflater {
        match coding {
            Coding::Gzip => Inflater::GzipUnstarted,
            Coding::Deflate => Inflater::Undecided(Vec::new()),
        }
    }

    /// Decodes `data`, returning what it decoded to so far.
    fn push(&mut self, data: &[u8]) -> std::io::Result<Bytes> {
        if data.is_empty() {
            return Ok(Bytes::new());
        }
        match self {
            Inflater::GzipUnstarted => {
                *self = Inflater::Gzip(MultiGzDecoder::new(Vec::new()));
                self.push(data)
            }
            Inflater::Undecided(first) => {
                first.extend_from_slice(data);
                if first.len() < 2 {
                    return Ok(Bytes::new());
                }
                let first = std::mem::take(first);
                *self = if is_zlib_header(first[0], first[1]) {
                    Inflater::Zlib(ZlibDecoder::new(Vec::new()))
                } else {
                    Inflater::Raw(DeflateDecoder::new(Vec::new()))
                };
                self.push(&first)
            }
            Inflater::Gzip(d) => {
                d.write_all(data)?;
                d.flush()?;
                Ok(std::mem::take(d.get_mut()).into())
            }
            Inflater::Zlib(d) => {
                d.write_all(data)?;
                d.flush()?;
                Ok(std::mem::take(d.get_mut()).into())
            }
            Inflater::Raw(d) => {
                d.write_all(data)?;
                d.flush()?;
                Ok(std::mem::take(d.get_mut()).into())
            }
        }
    }

    /// Ends the stream, returning the last decoded bytes; an error if it was cut short.
    fn finish(&mut self) -> std::io::Result<Bytes> {
        let out = match self {
            Inflater::GzipUnstarted => Vec::new(),
            Inflater::Undecided(first) if first.is_empty() => Vec::new(),
            Inflater::Undecided(_) => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::UnexpectedEof,
                    "a deflate stream of one byte",
                ));
            }
            Inflater::Gzip(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
            Inflater::Zlib(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
            Inflater::Raw(d) => {
                d.try_finish()?;
                std::mem::take(d.get_mut())
            }
        };
        Ok(out.into())
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
    use http_body_util::{BodyExt, StreamBody};

    use super::*;

    const TEXT: &[u8] = b"<html><head></head><body>compressed, decompressed</body></html>";

    fn compress(coding: &str) -> Vec<u8> {
        let level = Compression::default();
        let compressed = match coding {
            "gzip" => {
                let mut e = GzEncoder::new(Vec::new(), level);
                e.write_all(TEXT).and_then(|()| e.finish())
            }
            "zlib" => {
                let mut e = ZlibEncoder::new(Vec::new(), level);
                e.write_all(TEXT).and_then(|()| e.finish())
            }
            _ => {
                let mut e = DeflateEncoder::new(Vec::new(), level);
                e.write_all(TEXT).and_then(|()| e.finish())
            }
        };
        compressed.expect("compressing into memory")
    }

    /// Decodes `bytes` fed one byte per frame, the worst split there is.
    fn decode(bytes: &[u8], coding: Coding) -> Result<Vec<u8>, BoxError> {
        let frames: Vec<Result<Frame<Bytes>, BoxError>> = bytes
            .iter()
            .map(|&b| Ok(Frame::data(Bytes::copy_from_slice(&[b]))))
            .collect();
        let source = StreamBody::new(futures_util::stream::iter(frames)).boxed_unsync();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime");
        let collected = runtime.block_on(Decoded::new(source, coding).collect())?;
        Ok(collected.to_bytes().to_vec())
    }

    #[test]
    fn gzip_zlib_and_raw_deflate_decode_byte_by_byte() {
        assert_eq!(decode(&compress("gzip"), Coding::Gzip).expect("gzip"), TEXT);
        assert_eq!(
            decode(&compress("zlib"), Coding::Deflate).expect("zlib"),
            TEXT
        );
        assert_eq!(
            decode(&compress("raw"), Coding::Deflate).expect("raw"),
            TEXT
        );
        assert_eq!(decode(b"", Coding::Gzip).expect("empty"), b"");
    }

    #[test]
    fn a_truncated_stream_is_an_error() {
        let gzip = compress("gzip");
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
