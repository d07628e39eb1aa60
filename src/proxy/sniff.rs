//! Telling a dev server that speaks HTTPS, when the proxy's plain HTTP got no answer
//! it could read: such a server closes the connection, or answers with a TLS alert,
//! and a 502 page saying "closed without a complete answer" left the cause to guess
//! (`vite --https`, webpack-dev-server's `server: 'https'`, `next dev
//! --experimental-https`). The proxy opens one more connection and begins a TLS
//! handshake on it: a server that answers with a TLS record speaks TLS. No TLS is
//! done beyond that first record's header.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long the connect may take, and then the hello and its answer.
pub const LOOK_FOR: Duration = Duration::from_millis(500);

/// A TLS 1.2 ClientHello record: a fixed random, no session, three common cipher
/// suites (TLS 1.3's AES-128-GCM, then ECDHE-RSA and RSA with AES-128-GCM), no
/// compression, no extensions; then a blank line. A TLS server answers the record with
/// a ServerHello or an alert, both TLS records; an HTTP server, whose request line the
/// blank line ends, with a 400 at once (without it, Python's server waited for the
/// line's end until the look gave up, and then logged a traceback).
const CLIENT_HELLO: [u8; 58] = [
    // Record: handshake (22), version 3.1, 49 bytes.
    0x16, 0x03, 0x01, 0x00, 0x31, //
    // Handshake: ClientHello (1), 45 bytes; client version 3.3 (TLS 1.2).
    0x01, 0x00, 0x00, 0x2d, 0x03, 0x03, //
    // Random: 32 bytes.
    0x72, 0x65, 0x6c, 0x6f, 0x61, 0x64, 0x73, 0x75, 0x70, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x01, //
    // No session id; 6 bytes of cipher suites; one compression method, none.
    0x00, 0x00, 0x06, 0x13, 0x01, 0xc0, 0x2f, 0x00, 0x9c, 0x01, 0x00, //
    // A blank line, for a server of plain HTTP.
    b'\r', b'\n', b'\r', b'\n',
];

/// Whether the server on `stream` (freshly connected) answers a TLS ClientHello with a
/// TLS record: a handshake message (22) or an alert (21), of a version 3.x.
pub async fn speaks_tls(mut stream: TcpStream) -> bool {
    let look = async {
        stream.write_all(&CLIENT_HELLO).await.ok()?;
        let mut head = [0u8; 2];
        stream.read_exact(&mut head).await.ok()?;
        Some(matches!(head, [0x15 | 0x16, 0x03]))
    };
    let answer = tokio::time::timeout(LOOK_FOR, look).await;
    // Closed with a reset, as the answer is left unread: no TIME-WAIT for a look.
    let _ = socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    matches!(answer, Ok(Some(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hello_is_one_well_formed_record() {
        let record = u16::from_be_bytes([CLIENT_HELLO[3], CLIENT_HELLO[4]]) as usize;
        assert_eq!(record, CLIENT_HELLO.len() - 5 - 4);
        assert!(CLIENT_HELLO.ends_with(b"\r\n\r\n"));
        let handshake = u32::from_be_bytes([0, CLIENT_HELLO[6], CLIENT_HELLO[7], CLIENT_HELLO[8]]);
        assert_eq!(handshake as usize, record - 4);
        // Version, random, session id, suites (length and 3), methods (length and 1).
        assert_eq!(handshake as usize, 2 + 32 + 1 + (2 + 6) + (1 + 1));
    }

    /// A server of plain HTTP, which answers the hello with a 400, is no TLS server.
    #[test]
    fn an_http_server_is_not_taken_for_tls() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
        let address = listener.local_addr().expect("its address");
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut socket, _) = listener.accept().expect("the look");
            let mut hello = [0u8; 58];
            let _ = socket.read_exact(&mut hello);
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        });
        let tls = runtime.block_on(async {
            speaks_tls(TcpStream::connect(address).await.expect("a connection")).await
        });
        assert!(!tls);
        server.join().expect("the server's thread");
    }
}
