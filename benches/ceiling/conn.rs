//! One ceiling connection: the HTTP upgrade, the few Engine.IO/Socket.IO packets the load generator
//! sends, and a write path with a backlog for what the kernel did not take yet.
//!
//! Nothing here is a model of a server: a malformed request is answered with a closed connection, and
//! an event the ceiling does not know is ignored.

use std::io::{self, IoSlice, Read, Write};

use bytes::Bytes;
use mio::net::TcpStream;
use roomcast_engine::http::websocket_accept;
use roomcast_engine::ws::{encode_text, prebuilt_text_frame, FrameDecoder, WsEvent};
use serde::Deserialize;
use serde_json::value::RawValue;

/// Largest upgrade request head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Most frames handed to one `writev` (the kernel's `IOV_MAX` is 1024).
const MAX_IOV: usize = 1024;

/// What a client's message asks the shard to do.
#[derive(Debug)]
pub enum Action {
    /// Write these bytes to this connection now.
    Reply(Bytes),
    Join(String),
    Leave(String),
    /// A broadcast: the frame to deliver and its audience (the sender is always excluded).
    Publish {
        frame: Bytes,
        to: Vec<String>,
        except: Vec<String>,
    },
    /// Close this connection.
    Close,
}

#[derive(Deserialize)]
struct Publish<'a> {
    #[serde(default)]
    to: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    event: String,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

/// One accepted socket.
#[derive(Debug)]
pub struct Conn {
    pub stream: TcpStream,
    /// The upgrade request read so far; `None` once upgraded.
    head: Option<Vec<u8>>,
    decoder: FrameDecoder,
    /// Rooms joined (names; the shard keeps the member lists).
    pub rooms: Vec<String>,
    /// Bytes the kernel did not take yet; written before anything else.
    backlog: Vec<u8>,
    /// Frames queued this loop turn (coalesced mode).
    pub pending: Vec<Bytes>,
    sid: u64,
}

impl Conn {
    pub fn new(stream: TcpStream, sid: u64) -> Conn {
        Conn {
            stream,
            head: Some(Vec::new()),
            decoder: FrameDecoder::new(1 << 20),
            rooms: Vec::new(),
            backlog: Vec::new(),
            pending: Vec::new(),
            sid,
        }
    }

    /// Reads until the socket would block, appending what the bytes ask for to `actions`. `Err` or an
    /// `Action::Close` means: close the connection.
    pub fn on_readable(&mut self, buf: &mut [u8], actions: &mut Vec<Action>) -> io::Result<()> {
        loop {
            let n = match self.stream.read(buf) {
                Ok(0) => {
                    actions.push(Action::Close);
                    return Ok(());
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let input = buf.get_mut(..n).unwrap_or_default();
            match self.head.as_mut() {
                Some(head) => {
                    head.extend_from_slice(input);
                    let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") else {
                        if head.len() > MAX_HEAD {
                            actions.push(Action::Close);
                        }
                        continue;
                    };
                    let mut rest = head.split_off(end + 4);
                    let reply = upgrade_reply(head, self.sid);
                    self.head = None;
                    match reply {
                        Some(reply) => actions.push(Action::Reply(reply)),
                        None => {
                            actions.push(Action::Close);
                            return Ok(());
                        }
                    }
                    self.decode(&mut rest, actions);
                }
                None => self.decode(input, actions),
            }
        }
    }

    fn decode(&mut self, input: &mut [u8], actions: &mut Vec<Action>) {
        let sid = self.sid;
        let result = self.decoder.handle_bytes(input, |event| {
            match event {
                WsEvent::Text(text) => on_text(text, sid, actions),
                WsEvent::Close { .. } => actions.push(Action::Close),
                WsEvent::Binary(_) | WsEvent::Ping(_) | WsEvent::Pong(_) => {}
            }
            Ok(())
        });
        if result.is_err() {
            actions.push(Action::Close);
        }
    }

    /// Writes `bytes` now, behind any backlog; what the kernel does not take joins the backlog.
    pub fn send_now(&mut self, bytes: &[u8]) -> io::Result<()> {
        if !self.backlog.is_empty() {
            self.backlog.extend_from_slice(bytes);
            return self.flush_backlog();
        }
        let written = write_some(&mut self.stream, bytes)?;
        self.backlog.extend_from_slice(bytes.get(written..).unwrap_or_default());
        Ok(())
    }

    /// Sends every pending frame in one `writev` per [`MAX_IOV`] frames (coalesced mode).
    pub fn flush_pending(&mut self) -> io::Result<()> {
        if !self.backlog.is_empty() {
            for frame in self.pending.drain(..) {
                self.backlog.extend_from_slice(&frame);
            }
            return self.flush_backlog();
        }
        let mut first = 0;
        while first < self.pending.len() {
            let batch =
                self.pending.get(first..(first + MAX_IOV).min(self.pending.len())).unwrap_or_default();
            let slices: Vec<IoSlice<'_>> = batch.iter().map(|f| IoSlice::new(f)).collect();
            let total: usize = batch.iter().map(|f| f.len()).sum();
            let mut written = loop {
                match self.stream.write_vectored(&slices) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break 0,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            };
            if written < total {
                // Keep the unsent tail, in order, and stop: the socket is full.
                for frame in self.pending.get(first..).unwrap_or_default() {
                    let skip = written.min(frame.len());
                    written -= skip;
                    self.backlog.extend_from_slice(frame.get(skip..).unwrap_or_default());
                }
                break;
            }
            first += batch.len();
        }
        self.pending.clear();
        Ok(())
    }

    /// Writes as much of the backlog as the kernel takes.
    pub fn flush_backlog(&mut self) -> io::Result<()> {
        if self.backlog.is_empty() {
            return Ok(());
        }
        let written = write_some(&mut self.stream, &self.backlog)?;
        self.backlog.drain(..written);
        Ok(())
    }
}

/// Writes until done or the socket would block; returns the bytes written.
fn write_some(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < bytes.len() {
        match stream.write(bytes.get(written..).unwrap_or_default()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// The `101` answer to a WebSocket upgrade request and the Engine.IO open packet, or `None` when the
/// request has no `Sec-WebSocket-Key`.
fn upgrade_reply(head: &[u8], sid: u64) -> Option<Bytes> {
    let text = std::str::from_utf8(head).ok()?;
    let key = text.split("\r\n").find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim().eq_ignore_ascii_case("sec-websocket-key").then(|| value.trim())
    })?;
    let accept = websocket_accept(key.as_bytes());
    let mut out = bytes::BytesMut::new();
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ");
    out.extend_from_slice(&accept);
    out.extend_from_slice(b"\r\n\r\n");
    let open = format!(
        r#"0{{"sid":"c{sid:x}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    );
    encode_text(&open, &mut out);
    Some(out.freeze())
}

fn text_frame(text: &str) -> Bytes {
    let mut out = bytes::BytesMut::new();
    encode_text(text, &mut out);
    out.freeze()
}

/// One Engine.IO text message from the client.
fn on_text(text: &str, sid: u64, actions: &mut Vec<Action>) {
    match text.as_bytes() {
        [b'4', b'0', ..] => actions.push(Action::Reply(text_frame(&format!(r#"40{{"sid":"s{sid:x}"}}"#)))),
        [b'4', b'1', ..] | [b'1', ..] => actions.push(Action::Close),
        [b'2', ..] => actions.push(Action::Reply(text_frame("3"))),
        [b'4', b'2', ..] => on_event(text.get(2..).unwrap_or_default(), actions),
        _ => {}
    }
}

/// A Socket.IO EVENT on `/`: `<ack id>["name", arg]`.
fn on_event(text: &str, actions: &mut Vec<Action>) {
    let digits = text.bytes().take_while(u8::is_ascii_digit).count();
    let (ack_id, json) = text.split_at_checked(digits).unwrap_or(("", text));
    let Ok(args) = serde_json::from_str::<Vec<&RawValue>>(json) else { return };
    let (Some(name), arg) = (args.first(), args.get(1)) else { return };
    let room = || arg.and_then(|a| serde_json::from_str::<String>(a.get()).ok());
    match name.get() {
        r#""join""# => match room() {
            Some(room) => actions.push(Action::Join(room)),
            None => return,
        },
        r#""leave""# => match room() {
            Some(room) => actions.push(Action::Leave(room)),
            None => return,
        },
        r#""publish""# => {
            let Some(request) = arg.and_then(|a| serde_json::from_str::<Publish<'_>>(a.get()).ok()) else {
                return;
            };
            let Ok(event) = serde_json::to_string(&request.event) else { return };
            let packet = match request.data {
                Some(data) => format!("2[{event},{}]", data.get()),
                None => format!("2[{event}]"),
            };
            let frame = prebuilt_text_frame(&[b"4", packet.as_bytes()]);
            actions.push(Action::Publish { frame, to: request.to, except: request.except });
        }
        _ => return,
    }
    if !ack_id.is_empty() {
        actions.push(Action::Reply(text_frame(&format!(r#"43{ack_id}["ok"]"#))));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(frame: &Bytes) -> &[u8] {
        // Server frames of these tests are short: a 2-byte header.
        frame.get(2..).unwrap_or_default()
    }

    #[test]
    fn publish_builds_the_delivered_frame_once_and_acks_ok() {
        let mut actions = Vec::new();
        on_text(
            r#"425["publish",{"to":["r0"],"except":["r1"],"event":"m","data":"rc1.x_xx"}]"#,
            1,
            &mut actions,
        );
        let [Action::Publish { frame, to, except }, Action::Reply(ack)] = actions.as_slice() else {
            panic!("expected a publish and its ack, got {actions:?}");
        };
        assert_eq!(payload(frame), br#"42["m","rc1.x_xx"]"#);
        assert_eq!((to.as_slice(), except.as_slice()), (&["r0".to_string()][..], &["r1".to_string()][..]));
        assert_eq!(payload(ack), br#"435["ok"]"#);
    }

    #[test]
    fn connect_join_and_ping_are_answered() {
        let mut actions = Vec::new();
        on_text("40", 0xab, &mut actions);
        on_text(r#"421["join","r7"]"#, 0xab, &mut actions);
        on_text("2", 0xab, &mut actions);
        let texts: Vec<String> = actions
            .iter()
            .map(|a| match a {
                Action::Reply(b) => String::from_utf8_lossy(payload(b)).into_owned(),
                Action::Join(room) => format!("join {room}"),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(texts, [r#"40{"sid":"sab"}"#, "join r7", r#"431["ok"]"#, "3"]);
    }

    #[test]
    fn the_upgrade_reply_carries_the_accept_key_and_the_open_packet() {
        let head = b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        let reply = upgrade_reply(head, 1).unwrap_or_default();
        let text = String::from_utf8_lossy(&reply);
        assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n"), "{text}");
        assert!(text.contains(r#"0{"sid":"c1","upgrades":[]"#), "{text}");
        assert!(upgrade_reply(b"GET / HTTP/1.1\r\n\r\n", 1).is_none());
    }
}
