//! Byte-level HTTP/1.1 syntax (RFC 9110 / 9112) for the request-head parser: spans, lines, the request
//! line, header lines, lists and `Content-Length`.

use super::request::Version;
use crate::error::{Error, PeerMisbehaved};

/// A byte range of a head buffer, kept as `u32`s so the header table stays small.
///
/// Invariant: `start <= end <= buffer.len() <= u32::MAX` ([`super::RequestHeadParser`] clamps
/// `max_head_bytes` to `u32::MAX`, so the `as u32` conversions in [`Span::new`] never truncate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Span {
    start: u32,
    end: u32,
}

impl Span {
    pub(super) fn new(start: usize, end: usize) -> Span {
        Span { start: start as u32, end: end as u32 }
    }

    pub(super) fn start(self) -> usize {
        self.start as usize
    }

    pub(super) fn end(self) -> usize {
        self.end as usize
    }

    /// The bytes of this span (empty if the span does not fit, which the invariant rules out).
    pub(super) fn of(self, bytes: &[u8]) -> &[u8] {
        bytes.get(self.start()..self.end()).unwrap_or_default()
    }
}

/// Where one header's name and (trimmed) value lie in the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct HeaderSpan {
    pub(super) name: Span,
    pub(super) value: Span,
}

/// `Content-Length = 1*DIGIT`; a comma list of identical values is accepted as one (RFC 9110 §8.6).
pub(super) fn parse_content_length(text: &[u8]) -> Result<u64, Error> {
    let mut value = None;
    for item in text.split(|&b| b == b',') {
        let digits = trim_ows(item);
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return Err(malformed("invalid Content-Length").into());
        }
        let parsed =
            digits.iter().try_fold(0u64, |acc, &d| acc.checked_mul(10)?.checked_add(u64::from(d - b'0')));
        let parsed = parsed.ok_or(malformed("Content-Length overflows"))?;
        if value.is_some_and(|v| v != parsed) {
            return Err(malformed("conflicting Content-Length values").into());
        }
        value = Some(parsed);
    }
    value.ok_or_else(|| malformed("invalid Content-Length").into())
}

/// Non-empty, trimmed items of a comma-separated header list (RFC 9110 §5.6.1).
pub(super) fn list_items(text: &[u8]) -> impl Iterator<Item = &[u8]> {
    text.split(|&b| b == b',').map(trim_ows).filter(|item| !item.is_empty())
}

pub(super) fn parse_request_line(bytes: &[u8], line: Span) -> Result<(Span, Span, Version), Error> {
    let text = line.of(bytes);
    let mut parts = text.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(malformed("request line is not `METHOD target HTTP/x.y`").into());
    };
    if method.is_empty() || !method.iter().all(|&b| is_tchar(b)) {
        return Err(malformed("invalid method").into());
    }
    if target.is_empty() || !target.iter().all(|b| (0x21..=0x7e).contains(b)) {
        return Err(malformed("invalid request target").into());
    }
    let version = match version {
        b"HTTP/1.1" => Version::Http11,
        b"HTTP/1.0" => Version::Http10,
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            return Err(PeerMisbehaved::HttpVersion.into())
        }
        _ => return Err(malformed("invalid HTTP version").into()),
    };
    let method_span = Span::new(line.start(), line.start() + method.len());
    let target_start = method_span.end() + 1;
    Ok((method_span, Span::new(target_start, target_start + target.len()), version))
}

pub(super) fn parse_header_line(bytes: &[u8], line: Span) -> Result<HeaderSpan, Error> {
    let text = line.of(bytes);
    if text.first().is_some_and(|&b| b == b' ' || b == b'\t') {
        return Err(malformed("obsolete header line folding").into());
    }
    let colon = text.iter().position(|&b| b == b':').ok_or(malformed("header line without a colon"))?;
    let (name, raw_value) = text.split_at(colon);
    if name.is_empty() || !name.iter().all(|&b| is_tchar(b)) {
        return Err(malformed("invalid header name").into());
    }
    let raw_value = raw_value.get(1..).unwrap_or_default();
    let value = trim_ows(raw_value);
    if !value.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f)) {
        return Err(malformed("control character in header value").into());
    }
    let leading = raw_value.len() - trim_ows_start(raw_value).len();
    let value_start = line.start() + colon + 1 + leading;
    Ok(HeaderSpan {
        name: Span::new(line.start(), line.start() + colon),
        value: Span::new(value_start, value_start + value.len()),
    })
}

/// Lines of a complete head after `pos`, up to (not including) the blank line.
pub(super) struct Lines<'b> {
    pub(super) bytes: &'b [u8],
    pub(super) pos: usize,
}

impl Iterator for Lines<'_> {
    type Item = Span;

    fn next(&mut self) -> Option<Span> {
        let rest = self.bytes.get(self.pos..)?;
        let cr = rest.iter().position(|&b| b == b'\r')?;
        let line = Span::new(self.pos, self.pos + cr);
        // Invariant from the scanner: every CR is followed by LF.
        self.pos += cr + 2;
        (cr > 0).then_some(line)
    }
}

/// `tchar` of RFC 9110 §5.6.2.
pub(super) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn trim_ows_start(text: &[u8]) -> &[u8] {
    let start = text.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(text.len());
    text.get(start..).unwrap_or_default()
}

pub(super) fn trim_ows(text: &[u8]) -> &[u8] {
    let text = trim_ows_start(text);
    let end = text.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(0, |i| i + 1);
    text.get(..end).unwrap_or_default()
}

pub(super) fn malformed(what: &'static str) -> PeerMisbehaved {
    PeerMisbehaved::HttpMalformed(what)
}
