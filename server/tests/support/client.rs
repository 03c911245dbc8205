//! A blocking Socket.IO test client over one WebSocket: upgrade, Engine.IO open and heartbeat, Socket.IO
//! packets (decoded with the engine's codec), binary attachments. Every read gives up after
//! [`PATIENCE`], so a server that stays silent fails the test instead of hanging it.

use std::collections::VecDeque;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use roomcast_engine::sio::{self, Limits, PacketType};

use super::ws::{self, Frame};

/// Upper bound for any single wait; far above what a loaded 2-core machine needs.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// How a connection ended, as the client saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// A WebSocket close frame, with its status code.
    CloseFrame(Option<u16>),
    /// The TCP stream ended without a close frame.
    Eof,
    /// The server reset the connection.
    Reset,
}

/// One Engine.IO message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A text message, Engine.IO type digit included (`4…`, `1`, …).
    Text(String),
    Binary(Vec<u8>),
}

/// One Socket.IO packet the server sent, with its attachments.
#[derive(Debug, Clone)]
pub struct Packet {
    /// The packet text (after the Engine.IO `4`).
    pub text: String,
    pub kind: PacketType,
    pub nsp: String,
    pub ack_id: Option<u64>,
    /// The event name (events only).
    pub name: Option<String>,
    /// Raw JSON arguments: after the name for events, all elements for acks.
    pub args: Vec<String>,
    pub attachments: Vec<Vec<u8>>,
}

impl Packet {
    /// Argument `i` parsed as JSON (`null` when absent).
    pub fn arg(&self, i: usize) -> serde_json::Value {
        self.args.get(i).map_or(serde_json::Value::Null, |a| serde_json::from_str(a).unwrap())
    }

    /// Argument `i` as a string (panics if it is not one).
    pub fn str_arg(&self, i: usize) -> String {
        match self.arg(i) {
            serde_json::Value::String(s) => s,
            other => panic!("argument {i} of {} is not a string: {other}", self.text),
        }
    }

    /// Whether this is an event of that name.
    pub fn is_event(&self, name: &str) -> bool {
        self.kind.is_event() && self.name.as_deref() == Some(name)
    }
}

/// A connected client. Not shared between threads.
pub struct Client {
    stream: TcpStream,
    inbuf: Vec<u8>,
    start: usize,
    /// Packets read while waiting for something else (an ack), returned first by `recv`.
    pending: VecDeque<Packet>,
    next_ack_id: u64,
    mask_state: u32,
    /// The Engine.IO session id from the open packet.
    pub engine_sid: String,
}

impl Client {
    /// Opens a WebSocket Engine.IO session (no namespace joined yet).
    pub fn open(addr: SocketAddr) -> Client {
        Client::open_with_headers(addr, &[])
    }

    /// Opens a session whose upgrade request carries extra headers (e.g. for `handshake.headers`).
    pub fn open_with_headers(addr: SocketAddr, headers: &[(&str, &str)]) -> Client {
        Client::open_at(addr, "/socket.io/?EIO=4&transport=websocket", headers)
    }

    /// Opens a WebSocket session with the upgrade request `GET <target>` (e.g. on another endpoint
    /// `/engine.io/?EIO=4&transport=websocket&name=x`) and reads its open packet.
    pub fn open_at(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Client {
        let mut client = Client::upgrade_and_send(addr, target, headers, None);
        match client.recv_message() {
            Ok(Message::Text(open)) if open.starts_with('0') => {
                let v: serde_json::Value = serde_json::from_str(&open[1..]).unwrap();
                client.engine_sid = v["sid"].as_str().unwrap().to_owned();
            }
            other => panic!("expected the Engine.IO open packet, got {other:?}"),
        }
        client
    }

    /// Sends the upgrade request and reads the `101` head; the Engine.IO open packet is not read yet.
    pub fn upgrade(addr: SocketAddr, headers: &[(&str, &str)]) -> Client {
        Client::upgrade_to(addr, "/socket.io/?EIO=4&transport=websocket", headers)
    }

    /// Sends the upgrade request `GET <target>` (e.g. naming the sid of a polling session) and reads
    /// the `101` head; nothing after it is read yet.
    pub fn upgrade_to(addr: SocketAddr, target: &str, headers: &[(&str, &str)]) -> Client {
        Client::upgrade_and_send(addr, target, headers, None)
    }

    /// Opens a session whose upgrade request is followed, in the same write, by a text frame.
    pub fn upgrade_with_first_frame(addr: SocketAddr, text: &[u8]) -> Client {
        let target = "/socket.io/?EIO=4&transport=websocket";
        let mut client = Client::upgrade_and_send(addr, target, &[], Some(text));
        match client.recv_message() {
            Ok(Message::Text(open)) if open.starts_with('0') => client,
            other => panic!("expected the Engine.IO open packet, got {other:?}"),
        }
    }

    fn upgrade_and_send(
        addr: SocketAddr,
        target: &str,
        headers: &[(&str, &str)],
        first_frame: Option<&[u8]>,
    ) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        let mut client = Client {
            stream,
            inbuf: Vec::new(),
            start: 0,
            pending: VecDeque::new(),
            next_ack_id: 1,
            mask_state: 0x9e37_79b9,
            engine_sid: String::new(),
        };
        let mut request = format!(
            "GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
        );
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        let mut bytes = request.into_bytes();
        if let Some(text) = first_frame {
            ws::encode_frame(0x80 | ws::TEXT, text, Some([1, 2, 3, 4]), &mut bytes);
        }
        client.write(&bytes);
        let head_end = loop {
            if let Some(i) = client.unread().windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            match client.fill() {
                Ok(true) => {}
                Ok(false) => panic!("no upgrade response within the read timeout"),
                Err(ending) => panic!("connection ended ({ending:?}) before the upgrade response"),
            }
        };
        let head = String::from_utf8_lossy(&client.unread()[..head_end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 101"), "upgrade refused: {head}");
        client.start += head_end;
        client
    }

    /// Opens a session and joins `/`; returns the client and its socket id.
    pub fn connect(addr: SocketAddr) -> (Client, String) {
        let mut client = Client::open(addr);
        let sid = client.join_nsp("/", None).unwrap();
        (client, sid)
    }

    /// Sends CONNECT for `nsp` (with `auth`, raw JSON) and waits for the answer: `Ok(sid)` or
    /// `Err(text of the CONNECT_ERROR packet)`.
    pub fn join_nsp(&mut self, nsp: &str, auth: Option<&str>) -> Result<String, String> {
        let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
        self.send_sio(&format!("0{prefix}{}", auth.unwrap_or("")));
        let answer = self
            .recv_where(|p| p.nsp == nsp && matches!(p.kind, PacketType::Connect | PacketType::ConnectError));
        match answer.kind {
            PacketType::Connect => {
                let json = &answer.text[answer.text.find('{').expect("CONNECT without payload")..];
                let payload: serde_json::Value = serde_json::from_str(json).unwrap();
                Ok(payload["sid"].as_str().unwrap().to_owned())
            }
            _ => Err(answer.text),
        }
    }

    /// Sends one Socket.IO packet text (the Engine.IO `4` is added).
    pub fn send_sio(&mut self, packet: &str) {
        self.send_text(&format!("4{packet}"));
    }

    /// Emits `event` on `/` with `args`, the raw JSON texts of the arguments joined by commas
    /// (`""` for none), e.g. `emit("join", r#""room""#)`.
    pub fn emit(&mut self, event: &str, args: &str) {
        self.emit_nsp("/", event, args);
    }

    /// [`Client::emit`] on another namespace.
    pub fn emit_nsp(&mut self, nsp: &str, event: &str, args: &str) {
        let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
        let sep = if args.is_empty() { "" } else { "," };
        self.send_sio(&format!("2{prefix}[{}{sep}{args}]", serde_json::to_string(event).unwrap()));
    }

    /// Emits with an ack id and waits for the server's ack; returns it. Events that arrive meanwhile are
    /// kept for later `recv` calls.
    pub fn call(&mut self, event: &str, args: &str) -> Packet {
        self.call_nsp("/", event, args)
    }

    /// [`Client::call`] on another namespace.
    pub fn call_nsp(&mut self, nsp: &str, event: &str, args: &str) -> Packet {
        let id = self.next_ack_id;
        self.next_ack_id += 1;
        let prefix = if nsp == "/" { String::new() } else { format!("{nsp},") };
        let sep = if args.is_empty() { "" } else { "," };
        self.send_sio(&format!("2{prefix}{id}[{}{sep}{args}]", serde_json::to_string(event).unwrap()));
        self.recv_where(|p| p.kind.is_ack() && p.ack_id == Some(id) && p.nsp == nsp)
    }

    /// Sends an Engine.IO text message (a masked text frame).
    pub fn send_text(&mut self, text: &str) {
        self.send_frame(0x80 | ws::TEXT, text.as_bytes());
    }

    /// Sends an Engine.IO binary message (a masked binary frame), e.g. an attachment.
    pub fn send_binary(&mut self, data: &[u8]) {
        self.send_frame(0x80 | ws::BINARY, data);
    }

    /// Sends one masked frame with the given first byte.
    pub fn send_frame(&mut self, first_byte: u8, payload: &[u8]) {
        self.mask_state ^= self.mask_state << 13;
        self.mask_state ^= self.mask_state >> 17;
        self.mask_state ^= self.mask_state << 5;
        let mut out = Vec::with_capacity(payload.len() + 14);
        ws::encode_frame(first_byte, payload, Some(self.mask_state.to_be_bytes()), &mut out);
        self.write(&out);
    }

    /// Writes raw bytes (for malformed input).
    pub fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next packet: a kept one first, else the next from the wire (answering pings on the way).
    /// Panics if the connection ends or something other than a Socket.IO packet arrives.
    pub fn recv(&mut self) -> Packet {
        if let Some(packet) = self.pending.pop_front() {
            return packet;
        }
        self.read_packet()
    }

    /// The next event, which must be named `name`.
    pub fn expect_event(&mut self, name: &str) -> Packet {
        let packet = self.recv();
        assert!(packet.is_event(name), "expected event {name:?}, got {}", packet.text);
        packet
    }

    /// Reads until a packet satisfies `want`, keeping the others (in order) for later `recv` calls.
    pub fn recv_where(&mut self, want: impl Fn(&Packet) -> bool) -> Packet {
        if let Some(i) = self.pending.iter().position(&want) {
            return self.pending.remove(i).unwrap();
        }
        loop {
            let packet = self.read_packet();
            if want(&packet) {
                return packet;
            }
            self.pending.push_back(packet);
        }
    }

    /// Events named `name` up to (not including) the next event `fence`; panics on other packets.
    /// With a fence broadcast right after the events under test, this shows exactly what arrived.
    pub fn events_until(&mut self, name: &str, fence: &str) -> Vec<Packet> {
        let mut seen = Vec::new();
        loop {
            let packet = self.recv();
            if packet.is_event(fence) {
                return seen;
            }
            assert!(packet.is_event(name), "expected {name:?} or {fence:?}, got {}", packet.text);
            seen.push(packet);
        }
    }

    fn read_packet(&mut self) -> Packet {
        let text = match self.recv_message() {
            Ok(Message::Text(text)) if text.starts_with('4') => text[1..].to_owned(),
            Ok(other) => panic!("expected a Socket.IO packet, got {other:?}"),
            Err(ending) => panic!("connection ended ({ending:?}) while waiting for a packet"),
        };
        let decoded = sio::decode(text.as_bytes(), &Limits::default())
            .unwrap_or_else(|e| panic!("the server sent an invalid packet {text:?}: {e}"));
        let mut attachments = Vec::new();
        for _ in 0..decoded.attachments() {
            match self.recv_message() {
                Ok(Message::Binary(data)) => attachments.push(data),
                other => panic!("expected an attachment of {text:?}, got {other:?}"),
            }
        }
        let str_of = |b: &[u8]| String::from_utf8(b.to_vec()).unwrap();
        Packet {
            kind: decoded.kind(),
            nsp: decoded.nsp().to_owned(),
            ack_id: decoded.ack_id(),
            name: decoded.event_name().map(|n| n.into_owned()),
            args: decoded.args().map(str_of).collect(),
            attachments,
            text: text.clone(),
        }
    }

    /// The next Engine.IO message; answers Engine.IO pings (`2` → `3`) and WebSocket pings on the way.
    pub fn recv_message(&mut self) -> Result<Message, Ending> {
        let mut fragments: Option<(u8, Vec<u8>)> = None;
        loop {
            let frame = self.read_frame()?;
            let (opcode, payload) = match (frame.opcode, fragments.take()) {
                (ws::CLOSE, _) => return Err(Ending::CloseFrame(frame.close_code())),
                (ws::PING, kept) => {
                    fragments = kept;
                    self.send_frame(0x80 | ws::PONG, &frame.payload);
                    continue;
                }
                (ws::PONG, kept) => {
                    fragments = kept;
                    continue;
                }
                (ws::CONTINUATION, Some((opcode, mut data))) => {
                    data.extend_from_slice(&frame.payload);
                    (opcode, data)
                }
                (opcode, None) if opcode != ws::CONTINUATION => (opcode, frame.payload),
                (opcode, kept) => {
                    panic!("unexpected frame opcode {opcode} (fragments pending: {})", kept.is_some())
                }
            };
            if !frame.fin {
                fragments = Some((opcode, payload));
                continue;
            }
            match opcode {
                ws::TEXT => {
                    let text = String::from_utf8(payload).expect("the server sent invalid UTF-8");
                    match text.as_str() {
                        "2" => self.send_text("3"),
                        "6" => {}
                        _ => return Ok(Message::Text(text)),
                    }
                }
                ws::BINARY => return Ok(Message::Binary(payload)),
                other => panic!("unexpected opcode {other}"),
            }
        }
    }

    /// Reads messages until the connection ends; returns how it ended and the text messages seen
    /// (Engine.IO close `1` and Socket.IO DISCONNECT packets included). Bounded by [`PATIENCE`] overall.
    pub fn wait_closed(&mut self) -> (Ending, Vec<String>) {
        let deadline = Instant::now() + PATIENCE;
        let mut texts: Vec<String> = self.pending.drain(..).map(|p| format!("4{}", p.text)).collect();
        loop {
            assert!(Instant::now() < deadline, "the connection stayed open; saw {texts:?}");
            match self.recv_message() {
                Ok(Message::Text(text)) => texts.push(text),
                Ok(Message::Binary(_)) => {}
                Err(ending) => return (ending, texts),
            }
        }
    }

    /// Sends a close frame (status 1000), as a browser closing the tab does.
    pub fn close(&mut self) {
        self.send_frame(0x80 | ws::CLOSE, &1000u16.to_be_bytes());
    }

    /// Closes the TCP stream without a close frame (as a crashed client or a lost network does).
    pub fn shutdown(&self, how: std::net::Shutdown) {
        self.stream.shutdown(how).unwrap();
    }

    /// The next WebSocket frame as sent, control frames included, with nothing answered.
    pub fn next_frame(&mut self) -> Result<Frame, Ending> {
        self.read_frame()
    }

    fn unread(&self) -> &[u8] {
        &self.inbuf[self.start..]
    }

    fn read_frame(&mut self) -> Result<Frame, Ending> {
        loop {
            if let Some((frame, used)) = ws::decode_frame(self.unread()) {
                self.start += used;
                return Ok(frame);
            }
            if !self.fill()? {
                panic!("no data from the server within the read timeout");
            }
        }
    }

    /// Checks that no Socket.IO packet arrives within `quiet` (pings are answered meanwhile).
    pub fn assert_quiet(&mut self, quiet: Duration) {
        if let Some(packet) = self.pending.front() {
            panic!("expected silence, but {} was already received", packet.text);
        }
        let deadline = Instant::now() + quiet;
        loop {
            if let Some((frame, used)) = ws::decode_frame(self.unread()) {
                let is_ping = frame.opcode == ws::TEXT && frame.payload == b"2";
                assert!(is_ping, "expected silence, got {:?}", String::from_utf8_lossy(&frame.payload));
                self.start += used;
                self.send_text("3");
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            self.stream.set_read_timeout(Some(left)).unwrap();
            match self.fill() {
                Ok(true) => {}
                Ok(false) => break,
                Err(ending) => panic!("expected silence, but the connection ended ({ending:?})"),
            }
        }
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
    }

    /// Reads more bytes into the buffer: `Ok(false)` when the read timed out.
    fn fill(&mut self) -> Result<bool, Ending> {
        if self.start > 0 && self.start * 2 >= self.inbuf.len() {
            self.inbuf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; 64 * 1024];
        let read = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                read => break read,
            }
        };
        match read {
            Ok(0) => Err(Ending::Eof),
            Ok(n) => {
                self.inbuf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted) => {
                Err(Ending::Reset)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(false),
            Err(e) => panic!("read failed: {e}"),
        }
    }
}
