//! The LiveReload protocol 7 messages, as pure encode and decode functions.
//!
//! Every frame is a text frame holding one JSON object with a string `command`. The
//! server sends `hello` first, then only `reload` to plain clients
//! (livereload.js treats any other command as a protocol error and drops the socket).
//! `status` is our own command, sent only to clients that listed [`VENDOR`] in their
//! `hello`, which is how the protocol lets two parties agree on extensions.

use serde::Serialize;
use serde_json::Value;

/// The protocol every LiveReload client and extension speaks.
pub const OFFICIAL_7: &str = "http://livereload.com/protocols/official-7";

/// The probe the LiveReload browser extensions send before injecting the script; it
/// lists only this protocol and just wants any reply.
#[cfg(test)]
pub const CONNECTION_CHECK: &str = "http://livereload.com/protocols/connection-check-1";

/// Our vendor protocol: a client listing it may also be sent `status` messages. The
/// `.invalid` top-level domain is reserved (RFC 2606), so the URL names no real host;
/// it is an identifier, never fetched.
pub const VENDOR: &str = "https://reloadsup.invalid/protocols/reloadsup-1";

/// The name we give in our `hello`.
pub const SERVER_NAME: &str = "reloadsup";

/// A message from the server, in the field order it is written.
#[derive(Debug, Serialize)]
#[serde(tag = "command", rename_all = "lowercase")]
pub enum ServerMessage<'a> {
    /// The first message on every socket. `instance` is ours: it lets our client tell
    /// a reconnect to the same supervisor from one to a restarted supervisor.
    Hello {
        protocols: [&'a str; 2],
        #[serde(rename = "serverName")]
        server_name: &'a str,
        instance: &'a str,
    },
    /// Reload the page, or swap the stylesheet or image that `path` names.
    /// `generation` is ours (see `Status`); other clients ignore the field.
    Reload {
        path: &'a str,
        #[serde(rename = "liveCSS")]
        live_css: bool,
        #[serde(rename = "liveImg")]
        live_img: bool,
        generation: u64,
    },
    /// The dev server's state (vendor clients only): `restarting`, `ready` or `failed`;
    /// `message` is `null` unless it failed. `build` is `null` unless a build step
    /// (`[[task]]`) failed at its last run, and then says which and how: the server may
    /// be up on the files the step failed to make. `generation` counts the changes
    /// pages were told of (see `Hub::changed`): a page whose script was served at an
    /// older one missed a change while it loaded, and reloads.
    Status {
        state: &'a str,
        message: Option<&'a str>,
        build: Option<&'a str>,
        generation: u64,
    },
}

impl ServerMessage<'_> {
    /// The message as the text of one WebSocket frame.
    pub fn encode(&self) -> String {
        serde_json::to_string(self).expect("a message of strings and booleans always encodes")
    }
}

/// What a client told us, reduced to what the server acts on.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientMessage {
    /// The client's `hello`; `vendor` is whether it listed [`VENDOR`].
    Hello { vendor: bool },
    /// livereload.js's `info`, sent right after the handshake, with the page URL.
    Info { url: Option<String> },
    /// `url`, any other command, or a JSON object without a string `command`: ignored,
    /// as the protocol asks.
    Other,
    /// Not a JSON object at all.
    Garbage,
}

/// Decodes the text of one client frame. Never fails: anything unexpected is
/// [`ClientMessage::Other`] or [`ClientMessage::Garbage`], for the caller to ignore.
pub fn decode(text: &str) -> ClientMessage {
    let Ok(Value::Object(map)) = serde_json::from_str::<Value>(text) else {
        return ClientMessage::Garbage;
    };
    match map.get("command").and_then(Value::as_str) {
        Some("hello") => {
            let vendor = map
                .get("protocols")
                .and_then(Value::as_array)
                .is_some_and(|list| list.iter().any(|p| p.as_str() == Some(VENDOR)));
            ClientMessage::Hello { vendor }
        }
        Some("info") => ClientMessage::Info {
            url: map.get("url").and_then(Value::as_str).map(str::to_owned),
        },
        _ => ClientMessage::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_lists_official_7_first_then_the_vendor_protocol() {
        let hello = ServerMessage::Hello {
            protocols: [OFFICIAL_7, VENDOR],
            server_name: SERVER_NAME,
            instance: "1a-2b",
        };
        assert_eq!(
            hello.encode(),
            r#"{"command":"hello","protocols":["http://livereload.com/protocols/official-7","https://reloadsup.invalid/protocols/reloadsup-1"],"serverName":"reloadsup","instance":"1a-2b"}"#
        );
    }

    #[test]
    fn reload_always_carries_path_and_both_flags() {
        let reload = ServerMessage::Reload {
            path: "static/site.css",
            live_css: true,
            live_img: false,
            generation: 3,
        };
        assert_eq!(
            reload.encode(),
            r#"{"command":"reload","path":"static/site.css","liveCSS":true,"liveImg":false,"generation":3}"#
        );
    }

    #[test]
    fn paths_with_quotes_and_backslashes_are_escaped() {
        let reload = ServerMessage::Reload {
            path: "a\"b\\c",
            live_css: false,
            live_img: false,
            generation: 0,
        };
        assert!(reload.encode().contains(r#""path":"a\"b\\c""#));
    }

    #[test]
    fn status_encodes() {
        assert_eq!(
            ServerMessage::Status {
                state: "ready",
                message: None,
                build: Some("task `css` failed"),
                generation: 2,
            }
            .encode(),
            r#"{"command":"status","state":"ready","message":null,"build":"task `css` failed","generation":2}"#
        );
        assert_eq!(
            ServerMessage::Status {
                state: "failed",
                message: Some("exit code 1"),
                build: None,
                generation: 0,
            }
            .encode(),
            r#"{"command":"status","state":"failed","message":"exit code 1","build":null,"generation":0}"#
        );
    }

    #[test]
    fn client_hellos_are_recognised_with_or_without_the_vendor_protocol() {
        let v7 = format!(
            r#"{{"command":"hello","protocols":["http://livereload.com/protocols/official-6","{OFFICIAL_7}"],"ver":"4.0.2"}}"#
        );
        assert_eq!(decode(&v7), ClientMessage::Hello { vendor: false });
        let probe = format!(r#"{{"command":"hello","protocols":["{CONNECTION_CHECK}"]}}"#);
        assert_eq!(decode(&probe), ClientMessage::Hello { vendor: false });
        let ours = format!(r#"{{"command":"hello","protocols":["{OFFICIAL_7}","{VENDOR}"]}}"#);
        assert_eq!(decode(&ours), ClientMessage::Hello { vendor: true });
        // A hello with no or a malformed protocol list is still a hello.
        assert_eq!(
            decode(r#"{"command":"hello"}"#),
            ClientMessage::Hello { vendor: false }
        );
        assert_eq!(
            decode(r#"{"command":"hello","protocols":[1,null,{}]}"#),
            ClientMessage::Hello { vendor: false }
        );
    }

    #[test]
    fn info_yields_the_page_url() {
        assert_eq!(
            decode(r#"{"command":"info","plugins":{},"url":"http://localhost:8000/a"}"#),
            ClientMessage::Info {
                url: Some("http://localhost:8000/a".into())
            }
        );
        assert_eq!(
            decode(r#"{"command":"info","url":7}"#),
            ClientMessage::Info { url: None }
        );
    }

    #[test]
    fn unknown_and_malformed_messages_never_fail() {
        assert_eq!(
            decode(r#"{"command":"url","url":"x"}"#),
            ClientMessage::Other
        );
        assert_eq!(decode(r#"{"command":5}"#), ClientMessage::Other);
        assert_eq!(decode(r#"{}"#), ClientMessage::Other);
        assert_eq!(decode(r#"["hello"]"#), ClientMessage::Garbage);
        assert_eq!(decode("not json"), ClientMessage::Garbage);
        assert_eq!(decode(""), ClientMessage::Garbage);
        assert_eq!(decode("{\"command\":\"hel"), ClientMessage::Garbage);
    }
}
