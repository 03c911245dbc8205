//! A blocking HTTP/1.1 test client for Engine.IO's polling transport, on one keep-alive connection:
//! requests with any method, headers and body, responses read by `Content-Length`, and, after an
//! upgrade on the same connection, WebSocket frames from the same buffer. Every read gives up after
//! [`PATIENCE`], so a server that stays silent fails the test instead of hanging it.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::client::PATIENCE;
use super::ws;

/// One HTTP response as received.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header lines in arrival order, as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text (panics if it is not UTF-8).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }

    /// The first header with this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A connection to one Engine.IO endpoint (`/socket.io/` unless [`HttpClient::connect_at`] says
/// otherwise); requests name only their query.
pub struct HttpClient {
    pub stream: TcpStream,
    buf: Vec<u8>,
    path: String,
}

impl HttpClient {
    /// A connection for requests to `/socket.io/`.
    pub fn connect(addr: SocketAddr) -> HttpClient {
        HttpClient::connect_at(addr, "/socket.io/")
    }

    /// A connection for requests to the endpoint at `path` (e.g. `/engine.io/`).
    pub fn connect_at(addr: SocketAddr, path: &str) -> HttpClient {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        stream.set_write_timeout(Some(PATIENCE)).unwrap();
        HttpClient { stream, buf: Vec::new(), path: path.to_owned() }
    }

    /// Reads more bytes into the buffer: `false` at end of stream. Retries `EINTR`: the server's io_uring
    /// may interrupt this thread (its rings were set up here, by `Server::start`).
    fn try_fill(&mut self) -> bool {
        let mut chunk = [0u8; 4096];
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if e.kind() == ErrorKind::ConnectionReset => break 0,
                other => break other.expect("no answer from the server within the read timeout"),
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        n > 0
    }

    /// Reads more bytes into the buffer; fails the test at end of stream.
    fn fill(&mut self) {
        assert!(self.try_fill(), "the server closed the connection");
    }

    /// Writes a request with a `text/plain` body, as `engine.io-client` does.
    pub fn write_request(&mut self, method: &str, query: &str, body: &[u8]) {
        self.write_request_with(method, query, &[("Content-Type", "text/plain;charset=UTF-8")], body);
    }

    /// Writes a request with these headers, plus `Host`, and `Content-Length` unless they name one (a
    /// request may announce a body it does not send).
    pub fn write_request_with(&mut self, method: &str, query: &str, headers: &[(&str, &str)], body: &[u8]) {
        let mut head = format!("{method} {}?{query} HTTP/1.1\r\nHost: localhost\r\n", self.path);
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-length")) {
            head.push_str(&format!("Content-Length: {}\r\n", body.len()));
        }
        head.push_str("\r\n");
        self.stream.write_all(head.as_bytes()).unwrap();
        self.stream.write_all(body).unwrap();
    }

    /// A request with a `text/plain` body, and its response.
    pub fn request(&mut self, method: &str, query: &str, body: &[u8]) -> Response {
        self.write_request(method, query, body);
        self.read_response()
    }

    /// A request with these headers, and its response.
    pub fn request_with(
        &mut self,
        method: &str,
        query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Response {
        self.write_request_with(method, query, headers, body);
        self.read_response()
    }

    /// Reads one response (head, then `Content-Length` bytes of body).
    pub fn read_response(&mut self) -> Response {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            self.fill();
        };
        let head = String::from_utf8(self.buf.drain(..end).collect()).unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        let headers: Vec<(String, String)> = head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.to_owned(), value.trim().to_owned()))
            .collect();
        let length = headers
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.parse().unwrap());
        while self.buf.len() < length {
            self.fill();
        }
        Response { status, headers, body: self.buf.drain(..length).collect() }
    }

    /// Asserts that nothing arrives for `wait` (e.g. a GET that must stay parked).
    pub fn assert_silent(&mut self, wait: Duration) {
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut byte = [0u8; 1];
        let deadline = Instant::now() + wait;
        loop {
            match self.stream.read(&mut byte) {
                Err(e) if e.kind() == ErrorKind::Interrupted && Instant::now() < deadline => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                    ) =>
                {
                    break
                }
                other => panic!("expected silence, got {other:?}"),
            }
        }
        self.stream.set_read_timeout(Some(PATIENCE)).unwrap();
        assert!(self.buf.is_empty());
    }

    /// Reads until the server closes the connection; returns what arrived meanwhile.
    pub fn read_until_closed(&mut self) -> Vec<u8> {
        while self.try_fill() {}
        std::mem::take(&mut self.buf)
    }

    /// Sends a WebSocket upgrade request for session `sid` and reads the response head.
    pub fn upgrade(&mut self, sid: &str) -> Response {
        self.upgrade_with_query(&format!("EIO=4&transport=websocket&sid={sid}"))
    }

    /// Sends a WebSocket upgrade request with this query and reads the response head (and body, if any).
    pub fn upgrade_with_query(&mut self, query: &str) -> Response {
        let request = format!(
            "GET {}?{query} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
            self.path
        );
        self.stream.write_all(request.as_bytes()).unwrap();
        self.read_response()
    }

    /// Sends one masked text frame.
    pub fn send_text(&mut self, text: &str) {
        let mut frame = Vec::new();
        ws::encode_frame(0x80 | ws::TEXT, text.as_bytes(), Some([0x11, 0x22, 0x33, 0x44]), &mut frame);
        self.stream.write_all(&frame).unwrap();
    }

    /// Reads one unmasked server frame: (opcode, payload).
    pub fn read_frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if let Some((frame, used)) = ws::decode_frame(&self.buf) {
                self.buf.drain(..used);
                return (frame.opcode, frame.payload);
            }
            self.fill();
        }
    }

    /// Reads one frame, which must be a text frame.
    pub fn read_text(&mut self) -> String {
        let (opcode, payload) = self.read_frame();
        assert_eq!(opcode, ws::TEXT, "a text frame");
        String::from_utf8(payload).unwrap()
    }
}
