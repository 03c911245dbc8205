//! The client side of the WebSocket opening handshake (RFC 6455 §4.1): the `GET … Upgrade` request
//! and a resumable reader for the server's response head.
//!
//! The reader takes bytes as they arrive (any split), keeps at most [`MAX_RESPONSE_HEAD`] bytes, and
//! once the head is complete says whether it is an acceptable `101 Switching Protocols`: status 101,
//! `Upgrade: websocket`, and `Sec-WebSocket-Accept` matching the key we sent. Bytes after the head
//! already belong to the WebSocket and are left for the frame decoder.

use roomcast_engine::eio::BytesMut;
use roomcast_engine::http::websocket_accept;

use super::target::Target;

/// Largest response head accepted; a 101 is a few hundred bytes.
pub const MAX_RESPONSE_HEAD: usize = 8 * 1024;

/// A `Sec-WebSocket-Key`: base64 of 16 bytes (24 characters, `==` at the end).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketKey([u8; 24]);

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

impl WebSocketKey {
    /// The key made from 128 bits (a connection's pseudo-random number; the key only has to be
    /// unlikely to repeat, RFC 6455 §4.1 item 7). Pure: the same bits give the same key, so a
    /// connection need not store it to check the server's answer.
    pub fn from_bits(bits: u128) -> WebSocketKey {
        let mut key = [b'='; 24];
        for (i, slot) in key.iter_mut().take(21).enumerate() {
            let sextet = (bits >> (122 - 6 * i)) & 63;
            *slot = B64.get(sextet as usize).copied().unwrap_or(b'A');
        }
        // The 22nd character holds the last 2 bits; its low 4 bits are padding and must be zero.
        let last = ((bits & 3) << 4) as usize;
        key[21] = B64.get(last).copied().unwrap_or(b'A');
        WebSocketKey(key)
    }

    /// The key as sent.
    pub fn as_bytes(&self) -> &[u8; 24] {
        &self.0
    }

    /// The `Sec-WebSocket-Accept` the server must answer with.
    pub fn expected_accept(&self) -> [u8; 28] {
        websocket_accept(&self.0)
    }
}

/// Appends the upgrade request for `target` (Engine.IO v4, WebSocket transport) to `out`: a new
/// session, or with `sid` (already URL-safe) the upgrade of a polling session.
pub fn write_upgrade_request(target: &Target, key: &WebSocketKey, sid: Option<&str>, out: &mut BytesMut) {
    out.extend_from_slice(b"GET ");
    out.extend_from_slice(target.path.as_bytes());
    out.extend_from_slice(b"?EIO=4&transport=websocket");
    if let Some(sid) = sid {
        out.extend_from_slice(b"&sid=");
        out.extend_from_slice(sid.as_bytes());
    }
    out.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    out.extend_from_slice(target.host.as_bytes());
    out.extend_from_slice(b"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    out.extend_from_slice(key.as_bytes());
    out.extend_from_slice(b"\r\nSec-WebSocket-Version: 13\r\n\r\n");
}

/// Why the server's answer is not a usable WebSocket upgrade.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpgradeRefusal {
    /// A well-formed answer with another status (400 for a bad request, 404 for a wrong path, …).
    Status {
        /// The HTTP status code.
        code: u16,
        /// The status line's text after the code.
        reason: String,
    },
    /// The head is not HTTP/1.x or breaks the upgrade rules; the text says how.
    Malformed(&'static str),
}

impl std::fmt::Display for UpgradeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UpgradeRefusal::Status { code, reason } => write!(f, "HTTP {code} {reason}"),
            UpgradeRefusal::Malformed(why) => write!(f, "bad WebSocket handshake answer: {why}"),
        }
    }
}

/// Reads the response head. One per connection, dropped once the upgrade is done.
#[derive(Debug, Default)]
pub struct ResponseHeadReader {
    head: Vec<u8>,
}

impl ResponseHeadReader {
    /// Feeds `input`. `Ok(None)`: the head is not complete and all of `input` was kept.
    /// `Ok(Some(n))`: an acceptable 101 ended `n` bytes into `input`; the rest is WebSocket data.
    /// `Err`: refused or malformed (a head over [`MAX_RESPONSE_HEAD`] is malformed).
    /// Cost: O(input) plus one scan of the head when it completes.
    pub fn handle_bytes(
        &mut self,
        input: &[u8],
        key: &WebSocketKey,
    ) -> Result<Option<usize>, UpgradeRefusal> {
        // Look for the blank line across the boundary with what we already hold.
        let before = self.head.len();
        let overlap = before.saturating_sub(3);
        let room = MAX_RESPONSE_HEAD.saturating_sub(before);
        let take = input.len().min(room);
        self.head.extend_from_slice(input.get(..take).unwrap_or_default());
        let search = self.head.get(overlap..).unwrap_or_default();
        let Some(end) = search.windows(4).position(|w| w == b"\r\n\r\n").map(|p| overlap + p + 4) else {
            if self.head.len() >= MAX_RESPONSE_HEAD {
                return Err(UpgradeRefusal::Malformed("response head longer than 8 KiB"));
            }
            return Ok(None);
        };
        check_head(self.head.get(..end).unwrap_or_default(), key)?;
        self.head = Vec::new();
        Ok(Some(end - before))
    }
}

fn check_head(head: &[u8], key: &WebSocketKey) -> Result<(), UpgradeRefusal> {
    let text = std::str::from_utf8(head).map_err(|_| UpgradeRefusal::Malformed("head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Err(UpgradeRefusal::Malformed("no status line"));
    };
    if !matches!(version, "HTTP/1.1" | "HTTP/1.0") {
        return Err(UpgradeRefusal::Malformed("not an HTTP/1.x answer"));
    }
    let code: u16 = code.parse().map_err(|_| UpgradeRefusal::Malformed("status code is not a number"))?;
    if code != 101 {
        let reason = parts.next().unwrap_or_default().trim().chars().take(100).collect();
        return Err(UpgradeRefusal::Status { code, reason });
    }
    let (mut upgrade, mut accept) = (false, false);
    let expected = key.expected_accept();
    for line in lines.take_while(|l| !l.is_empty()) {
        let Some((name, value)) = line.split_once(':') else {
            return Err(UpgradeRefusal::Malformed("header line without ':'"));
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("upgrade") {
            upgrade = value.eq_ignore_ascii_case("websocket");
        } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
            accept = value.as_bytes() == expected;
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") && !value.is_empty() {
            return Err(UpgradeRefusal::Malformed("server chose an extension we did not offer"));
        }
    }
    match (upgrade, accept) {
        (true, true) => Ok(()),
        (false, _) => Err(UpgradeRefusal::Malformed("101 without Upgrade: websocket")),
        (true, false) => Err(UpgradeRefusal::Malformed("Sec-WebSocket-Accept missing or wrong")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6455 §1.3's example key and answer.
    const RFC_KEY: &[u8; 24] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn response(accept: &str, extra: &str) -> Vec<u8> {
        format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: {accept}\r\n{extra}\r\n"
        )
        .into_bytes()
    }

    fn read_every_way(input: &[u8], key: &WebSocketKey) -> Result<Option<usize>, UpgradeRefusal> {
        let whole = ResponseHeadReader::default().handle_bytes(input, key);
        let mut reader = ResponseHeadReader::default();
        let mut by_byte = Ok(None);
        for (i, b) in input.iter().enumerate() {
            match reader.handle_bytes(std::slice::from_ref(b), key) {
                Ok(None) => continue,
                Ok(Some(n)) => by_byte = Ok(Some(i + n)),
                Err(e) => by_byte = Err(e),
            }
            break;
        }
        assert_eq!(whole, by_byte, "whole and byte-by-byte disagree");
        whole
    }

    #[test]
    fn keys_are_16_bytes_of_base64_and_the_rfc_example_is_accepted() {
        let key = WebSocketKey::from_bits(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        assert_eq!(&key.as_bytes()[22..], b"==");
        assert_ne!(key, WebSocketKey::from_bits(1));
        let rfc = WebSocketKey(*RFC_KEY);
        assert_eq!(&rfc.expected_accept(), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let mut input = response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "");
        let head_len = input.len();
        input.extend_from_slice(&[0x81, 0x01, b'0']);
        assert_eq!(read_every_way(&input, &rfc), Ok(Some(head_len)));
    }

    #[test]
    fn refusals_and_bad_answers_are_reported_whole_or_byte_by_byte() {
        let key = WebSocketKey(*RFC_KEY);
        let refused = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 18\r\n\r\nTransport unknown";
        let expected = UpgradeRefusal::Status { code: 400, reason: "Bad Request".into() };
        assert_eq!(read_every_way(refused, &key), Err(expected));
        assert!(matches!(read_every_way(&response("wrong", ""), &key), Err(UpgradeRefusal::Malformed(_))));
        let deflate =
            response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "Sec-WebSocket-Extensions: permessage-deflate\r\n");
        assert!(matches!(read_every_way(&deflate, &key), Err(UpgradeRefusal::Malformed(_))));
        assert!(matches!(
            read_every_way(b"SSH-2.0-OpenSSH\r\n\r\n", &key),
            Err(UpgradeRefusal::Malformed(_))
        ));
        let endless = vec![b'a'; MAX_RESPONSE_HEAD + 10];
        assert!(matches!(read_every_way(&endless, &key), Err(UpgradeRefusal::Malformed(_))));
    }

    #[test]
    fn the_request_names_path_host_and_key() {
        let target = Target::parse("http://127.0.0.1:3000", "/socket.io/").unwrap();
        let mut out = BytesMut::new();
        write_upgrade_request(&target, &WebSocketKey(*RFC_KEY), None, &mut out);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(text
            .starts_with("GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1:3000\r\n"));
        assert!(text.contains("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
        assert!(text.ends_with("\r\n\r\n"));
        out.clear();
        write_upgrade_request(&target, &WebSocketKey(*RFC_KEY), Some("AAE-x_y"), &mut out);
        assert!(out.starts_with(b"GET /socket.io/?EIO=4&transport=websocket&sid=AAE-x_y HTTP/1.1\r\n"));
    }
}
