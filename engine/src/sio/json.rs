//! A strict RFC 8259 JSON scanner over bytes: validates, classifies and slices JSON text without building
//! a tree and without re-serializing anything.
//!
//! Socket.IO payloads are `JSON.stringify` output. Roomcast never parses them into values: it checks that
//! the text is valid JSON (so a broken client is rejected as the reference rejects it), finds the top-level
//! array elements, un-escapes the event name, and finds binary placeholders. Arguments then travel on
//! byte-exact. Because browsers and Node send compact `JSON.stringify` text, byte-exact pass-through
//! produces exactly what the reference server re-emits (it parses and re-stringifies, which keeps key order
//! and prints numbers the way the client did for every number `JSON.stringify` can produce).
//!
//! Contracts:
//! - Nothing here panics or recurses: the scanner is iterative, with a fixed-size bit stack, so nesting is
//!   bounded by the caller's `max_depth` (clamped to [`MAX_DEPTH_CEILING`]) and never by the thread stack.
//! - Strings must be valid UTF-8 with no raw control characters; `\u` escapes may name lone surrogates
//!   (RFC 8259 §8.2 allows them, as does `JSON.parse`).
//! - Cost: one pass over the text, no allocation ([`placeholders`] allocates one frame per open container).

use std::borrow::Cow;
use std::ops::Range;

mod placeholders;
pub use placeholders::{placeholders, Placeholder};

/// Hard ceiling on nesting depth, whatever a configuration asks for (the size of the scanner's bit stack).
pub const MAX_DEPTH_CEILING: usize = 256;

/// The kind of a JSON value, as seen from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonKind {
    Object,
    Array,
    String,
    Number,
    Bool,
    Null,
}

/// Why a text is not acceptable JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonError {
    /// The text breaks the grammar at byte offset `at`.
    Syntax { at: usize, what: &'static str },
    /// The text nests arrays/objects deeper than `max` levels.
    TooDeep { max: usize },
}

/// A validated JSON text: its kind and the byte range of the value without surrounding whitespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validated {
    pub kind: JsonKind,
    pub value: Range<usize>,
}

/// Checks that `text` is exactly one JSON value (whitespace allowed around it) nested at most `max_depth`
/// levels deep (`max_depth` is clamped to [`MAX_DEPTH_CEILING`]). Cost: one pass, no allocation.
pub fn validate(text: &[u8], max_depth: usize) -> Result<Validated, JsonError> {
    let start = skip_ws(text, 0);
    let (kind, end) = scan_value(text, start, max_depth, &mut NoVisitor)?;
    if skip_ws(text, end) != text.len() {
        return Err(JsonError::Syntax { at: end, what: "JSON: trailing characters after the value" });
    }
    Ok(Validated { kind, value: start..end })
}

/// Iterates the top-level elements of a JSON array text (the `[` must be its first byte), yielding each
/// element's bytes without surrounding whitespace. Meant for text [`validate`] accepted; on malformed
/// input it simply stops early. Cost: one pass over the elements it yields.
pub fn array_elements(array: &[u8]) -> ArrayElements<'_> {
    let pos = if array.first() == Some(&b'[') { 1 } else { array.len() };
    ArrayElements { text: array, pos }
}

/// Iterator returned by [`array_elements`].
#[derive(Debug, Clone)]
pub struct ArrayElements<'a> {
    text: &'a [u8],
    pos: usize,
}

impl<'a> Iterator for ArrayElements<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let start = skip_ws(self.text, self.pos);
        if self.text.get(start).is_none_or(|&b| b == b']') {
            self.pos = self.text.len();
            return None;
        }
        let Ok((_, end)) = scan_value(self.text, start, MAX_DEPTH_CEILING, &mut NoVisitor) else {
            self.pos = self.text.len();
            return None;
        };
        let after = skip_ws(self.text, end);
        self.pos = if self.text.get(after) == Some(&b',') { after + 1 } else { after };
        self.text.get(start..end)
    }
}

/// The kind of the JSON value starting at the first byte of `value` (no validation).
pub fn kind_of(value: &[u8]) -> Option<JsonKind> {
    match value.first()? {
        b'{' => Some(JsonKind::Object),
        b'[' => Some(JsonKind::Array),
        b'"' => Some(JsonKind::String),
        b't' | b'f' => Some(JsonKind::Bool),
        b'n' => Some(JsonKind::Null),
        b'-' | b'0'..=b'9' => Some(JsonKind::Number),
        _ => None,
    }
}

/// The text of a JSON string token (quotes included) with escapes resolved; borrowed when it has none.
/// Lone surrogate escapes become U+FFFD. `None` if `token` is not a well-formed string token.
/// Cost: O(len); allocates only when the token contains a backslash.
pub fn unescape_string(token: &[u8]) -> Option<Cow<'_, str>> {
    let inner = token.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let Some(first_escape) = inner.iter().position(|&b| b == b'\\') else {
        return std::str::from_utf8(inner).ok().map(Cow::Borrowed);
    };
    let (plain, mut rest) = inner.split_at_checked(first_escape)?;
    let mut out = String::with_capacity(inner.len());
    out.push_str(std::str::from_utf8(plain).ok()?);
    while let Some((&b, tail)) = rest.split_first() {
        if b != b'\\' {
            let run = rest.iter().position(|&c| c == b'\\').unwrap_or(rest.len());
            let (text, tail) = rest.split_at_checked(run)?;
            out.push_str(std::str::from_utf8(text).ok()?);
            rest = tail;
            continue;
        }
        let (&esc, tail) = tail.split_first()?;
        rest = tail;
        let simple = match esc {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let (unit, tail) = hex4(rest)?;
                rest = tail;
                let low = match (unit, rest) {
                    (0xD800..=0xDBFF, [b'\\', b'u', after @ ..]) => match hex4(after) {
                        Some((low @ 0xDC00..=0xDFFF, tail)) => {
                            rest = tail;
                            Some(low)
                        }
                        _ => None,
                    },
                    _ => None,
                };
                let code = match low {
                    Some(low) => 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00),
                    None => u32::from(unit),
                };
                char::from_u32(code).unwrap_or('\u{FFFD}')
            }
            _ => return None,
        };
        out.push(simple);
    }
    Some(Cow::Owned(out))
}

fn hex4(text: &[u8]) -> Option<(u16, &[u8])> {
    let (digits, tail) = text.split_at_checked(4)?;
    let mut unit = 0u16;
    for &d in digits {
        unit = unit << 4 | char::from(d).to_digit(16)? as u16;
    }
    Some((unit, tail))
}

// ---------------------------------------------------------------------------------------------------
// The scanner.

/// Receives the structure of a value as the scanner walks it. Defaults ignore everything.
pub(crate) trait Visitor {
    /// A `{` or `[` at byte `at` (`kind` is Object or Array).
    fn open(&mut self, _kind: JsonKind, _at: usize) {}
    /// An object member key; `raw` is the range between the quotes, escapes unresolved.
    fn key(&mut self, _raw: Range<usize>) {}
    /// A string, number, `true`, `false` or `null` token.
    fn scalar(&mut self, _kind: JsonKind, _range: Range<usize>) {}
    /// The `}` or `]` closing the innermost open container; `end` is one past it.
    fn close(&mut self, _end: usize) {}
}

pub(crate) struct NoVisitor;
impl Visitor for NoVisitor {}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Whether `b` is JSON insignificant whitespace.
pub fn is_json_whitespace(b: u8) -> bool {
    is_ws(b)
}

fn skip_ws(text: &[u8], mut pos: usize) -> usize {
    while text.get(pos).is_some_and(|&b| is_ws(b)) {
        pos += 1;
    }
    pos
}

/// One bit per open container: 1 = object, 0 = array.
struct BitStack {
    bits: [u64; MAX_DEPTH_CEILING / 64],
    len: usize,
}

impl BitStack {
    fn push(&mut self, is_object: bool) {
        if let Some(word) = self.bits.get_mut(self.len / 64) {
            let mask = 1u64 << (self.len % 64);
            *word = if is_object { *word | mask } else { *word & !mask };
        }
        self.len += 1;
    }

    fn top_is_object(&self) -> Option<bool> {
        let i = self.len.checked_sub(1)?;
        Some(self.bits.get(i / 64)? >> (i % 64) & 1 == 1)
    }
}

fn syntax(at: usize, what: &'static str) -> JsonError {
    JsonError::Syntax { at, what }
}

/// Scans one JSON value starting exactly at `start` and returns its kind and end offset (one past its
/// last byte). Iterative; nesting deeper than `min(max_depth, MAX_DEPTH_CEILING)` is an error.
pub(crate) fn scan_value<V: Visitor>(
    text: &[u8],
    start: usize,
    max_depth: usize,
    visitor: &mut V,
) -> Result<(JsonKind, usize), JsonError> {
    let max_depth = max_depth.min(MAX_DEPTH_CEILING);
    let mut stack = BitStack { bits: [0; MAX_DEPTH_CEILING / 64], len: 0 };
    let mut pos = start;
    let mut top_kind = None;
    'value: loop {
        pos = skip_ws(text, pos);
        let at = pos;
        let first = text.get(pos).copied().ok_or(syntax(pos, "JSON: expected a value"))?;
        let kind = kind_of(std::slice::from_ref(&first)).ok_or(syntax(pos, "JSON: expected a value"))?;
        top_kind.get_or_insert(kind);
        match kind {
            JsonKind::Object | JsonKind::Array => {
                if stack.len >= max_depth {
                    return Err(JsonError::TooDeep { max: max_depth });
                }
                let is_object = kind == JsonKind::Object;
                visitor.open(kind, at);
                stack.push(is_object);
                pos = skip_ws(text, pos + 1);
                let closer = if is_object { b'}' } else { b']' };
                if text.get(pos) == Some(&closer) {
                    pos += 1;
                    stack.len -= 1;
                    visitor.close(pos);
                } else {
                    if is_object {
                        pos = scan_member_key(text, pos, visitor)?;
                    }
                    continue 'value;
                }
            }
            JsonKind::String => {
                pos = scan_string(text, pos)?;
                visitor.scalar(kind, at..pos);
            }
            JsonKind::Number => {
                pos = scan_number(text, pos)?;
                visitor.scalar(kind, at..pos);
            }
            JsonKind::Bool | JsonKind::Null => {
                let literal: &[u8] = match first {
                    b't' => b"true",
                    b'f' => b"false",
                    _ => b"null",
                };
                if !text.get(pos..).is_some_and(|rest| rest.starts_with(literal)) {
                    return Err(syntax(pos, "JSON: invalid literal"));
                }
                pos += literal.len();
                visitor.scalar(kind, at..pos);
            }
        }
        // After a complete value: close containers until one expects another element.
        loop {
            let Some(in_object) = stack.top_is_object() else {
                return Ok((top_kind.unwrap_or(kind), pos));
            };
            pos = skip_ws(text, pos);
            match (text.get(pos), in_object) {
                (Some(b','), true) => {
                    pos = scan_member_key(text, skip_ws(text, pos + 1), visitor)?;
                    continue 'value;
                }
                (Some(b','), false) => {
                    pos += 1;
                    continue 'value;
                }
                (Some(b'}'), true) | (Some(b']'), false) => {
                    pos += 1;
                    stack.len -= 1;
                    visitor.close(pos);
                }
                _ => return Err(syntax(pos, "JSON: expected ',' or a closing bracket")),
            }
        }
    }
}

/// Scans `"key"` then `:` starting at `pos`; returns the offset after the colon.
fn scan_member_key<V: Visitor>(text: &[u8], pos: usize, visitor: &mut V) -> Result<usize, JsonError> {
    if text.get(pos) != Some(&b'"') {
        return Err(syntax(pos, "JSON: expected an object key"));
    }
    let end = scan_string(text, pos)?;
    visitor.key(pos + 1..end - 1);
    let colon = skip_ws(text, end);
    if text.get(colon) != Some(&b':') {
        return Err(syntax(colon, "JSON: expected ':' after an object key"));
    }
    Ok(colon + 1)
}

/// Scans a string token whose opening quote is at `pos`; returns the offset after the closing quote.
fn scan_string(text: &[u8], pos: usize) -> Result<usize, JsonError> {
    let body_start = pos + 1;
    let mut i = body_start;
    let mut high_bits = 0u8;
    loop {
        // Hot loop: skip bytes that need no attention, noting whether any is non-ASCII.
        while let Some(&b) = text.get(i) {
            if b == b'"' || b == b'\\' || b < 0x20 {
                break;
            }
            high_bits |= b;
            i += 1;
        }
        let b = *text.get(i).ok_or(syntax(i, "JSON: unterminated string"))?;
        match b {
            b'"' => break,
            b'\\' => {
                match text.get(i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => i += 2,
                    Some(b'u') => {
                        let hex = text.get(i + 2..i + 6).ok_or(syntax(i, "JSON: short \\u escape"))?;
                        if !hex.iter().all(u8::is_ascii_hexdigit) {
                            return Err(syntax(i, "JSON: bad \\u escape"));
                        }
                        i += 6;
                    }
                    _ => return Err(syntax(i, "JSON: bad escape")),
                }
                continue;
            }
            _ => return Err(syntax(i, "JSON: control character in string")),
        }
    }
    if high_bits >= 0x80 && text.get(body_start..i).is_none_or(|body| std::str::from_utf8(body).is_err()) {
        return Err(syntax(body_start, "JSON: string is not valid UTF-8"));
    }
    Ok(i + 1)
}

/// Scans `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` from `pos`; returns its end.
fn scan_number(text: &[u8], mut pos: usize) -> Result<usize, JsonError> {
    let digits = |text: &[u8], mut p: usize| {
        let from = p;
        while text.get(p).is_some_and(u8::is_ascii_digit) {
            p += 1;
        }
        (p, p - from)
    };
    if text.get(pos) == Some(&b'-') {
        pos += 1;
    }
    match text.get(pos) {
        Some(b'0') => pos += 1,
        Some(b'1'..=b'9') => pos = digits(text, pos).0,
        _ => return Err(syntax(pos, "JSON: bad number")),
    }
    if text.get(pos) == Some(&b'.') {
        let (end, n) = digits(text, pos + 1);
        if n == 0 {
            return Err(syntax(pos, "JSON: bad fraction"));
        }
        pos = end;
    }
    if matches!(text.get(pos), Some(b'e' | b'E')) {
        pos += 1;
        if matches!(text.get(pos), Some(b'+' | b'-')) {
            pos += 1;
        }
        let (end, n) = digits(text, pos);
        if n == 0 {
            return Err(syntax(pos, "JSON: bad exponent"));
        }
        pos = end;
    }
    Ok(pos)
}

#[cfg(test)]
mod tests;
