//! The placeholder walk: finds `{"_placeholder":true,"num":N}` objects anywhere in a JSON tree.

use std::ops::Range;

use super::{scan_value, skip_ws, unescape_string, JsonError, JsonKind, Validated, Visitor};

/// A binary placeholder `{"_placeholder":true,...,"num":N}` found in a JSON text.
///
/// An object is a placeholder when its last `_placeholder` member is the literal `true` (what socket.io's
/// `_reconstructPacket` tests; extra members are allowed and ignored). Placeholders nested inside another
/// placeholder are reported too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    /// Byte range of the whole placeholder object.
    pub object: Range<usize>,
    /// The last `num` member's value when it is a plain non-negative integer literal (`0`, `17`; not
    /// `1.0`, `1e0` or `-0`) that fits `usize`; `None` otherwise, including when `num` is missing.
    pub num: Option<usize>,
    /// Byte range of the last `num` member's value when that value is a scalar.
    pub num_text: Option<Range<usize>>,
}

/// Validates `text` like [`super::validate`] and calls `found` for every placeholder object in it, in
/// the order the objects close (inner before outer, otherwise document order). Cost: one pass;
/// allocates a frame stack as deep as the text nests.
pub fn placeholders(
    text: &[u8],
    max_depth: usize,
    found: impl FnMut(Placeholder),
) -> Result<Validated, JsonError> {
    let mut walker = PlaceholderWalker { text, frames: Vec::new(), found };
    let start = skip_ws(text, 0);
    let (kind, end) = scan_value(text, start, max_depth, &mut walker)?;
    if skip_ws(text, end) != text.len() {
        return Err(JsonError::Syntax { at: end, what: "JSON: trailing characters after the value" });
    }
    Ok(Validated { kind, value: start..end })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum MemberKey {
    Other,
    Placeholder,
    Num,
}

struct Frame {
    start: usize,
    is_object: bool,
    key: MemberKey,
    is_placeholder: bool,
    num: Option<usize>,
    num_text: Option<Range<usize>>,
}

struct PlaceholderWalker<'t, F> {
    text: &'t [u8],
    frames: Vec<Frame>,
    found: F,
}

impl<F> PlaceholderWalker<'_, F> {
    /// Records a member value of the innermost object, if it is `_placeholder` or `num`.
    fn member_value(&mut self, kind: JsonKind, range: Range<usize>, is_scalar: bool) {
        let text = self.text;
        let Some(frame) = self.frames.last_mut().filter(|f| f.is_object) else { return };
        match frame.key {
            MemberKey::Other => {}
            MemberKey::Placeholder => {
                frame.is_placeholder = is_scalar && text.get(range) == Some(b"true".as_slice());
            }
            MemberKey::Num => {
                let value = text.get(range.clone()).filter(|_| kind == JsonKind::Number);
                frame.num = value.and_then(plain_uint);
                frame.num_text = is_scalar.then_some(range);
            }
        }
    }
}

fn plain_uint(text: &[u8]) -> Option<usize> {
    if text.is_empty() || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter().try_fold(0usize, |n, &d| n.checked_mul(10)?.checked_add(usize::from(d - b'0')))
}

impl<F: FnMut(Placeholder)> Visitor for PlaceholderWalker<'_, F> {
    fn open(&mut self, kind: JsonKind, at: usize) {
        self.member_value(kind, at..at, false);
        let is_object = kind == JsonKind::Object;
        let key = MemberKey::Other;
        self.frames.push(Frame {
            start: at,
            is_object,
            key,
            is_placeholder: false,
            num: None,
            num_text: None,
        });
    }

    fn key(&mut self, raw: Range<usize>) {
        let token = self.text.get(raw.start.saturating_sub(1)..raw.end + 1).unwrap_or_default();
        let key = match unescape_string(token).as_deref() {
            Some("_placeholder") => MemberKey::Placeholder,
            Some("num") => MemberKey::Num,
            _ => MemberKey::Other,
        };
        if let Some(frame) = self.frames.last_mut() {
            frame.key = key;
        }
    }

    fn scalar(&mut self, kind: JsonKind, range: Range<usize>) {
        self.member_value(kind, range, true);
    }

    fn close(&mut self, end: usize) {
        if let Some(frame) = self.frames.pop().filter(|f| f.is_placeholder) {
            (self.found)(Placeholder { object: frame.start..end, num: frame.num, num_text: frame.num_text });
        }
    }
}
