//! msgpack as notepack.io 3.0.1 (the Redis adapter's and emitter's codec) writes and reads it.
//!
//! [`Value`] is a JavaScript value as notepack decodes it: every number is one kind of number (integers
//! are kept exact in [`Value::Int`] for convenience), map keys are strings, `bin` is a `Buffer`.
//!
//! Reading ([`decode`]) accepts every msgpack form: nil, bool, all int widths, float 32/64, str, bin,
//! array, map and ext. As notepack does, `fixext 1` of type 0 is `undefined`, ext 8/16/32 of type 0
//! is an `ArrayBuffer` (here [`Value::Bin`]), other ext values stay opaque ([`Value::Ext`]; see
//! [`ext_date_ms`] for the timestamp types), `uint 64` beyond `i64::MAX` becomes a float, a string's
//! invalid UTF-8 becomes U+FFFD (Node's `buffer.toString('utf8')`), and scalar map keys are turned into
//! their JavaScript string. A message is one whole value: trailing bytes are an error.
//!
//! Writing ([`encode`]) uses the smallest form, as notepack does: integral numbers in the safe range
//! (`|n| <= 2^53 - 1`) as the smallest int, other numbers as float 64 (notepack writes integral
//! doubles beyond 2^53 as int 64; any msgpack reader gets the same number back either way), map
//! members whose value is `undefined` omitted, `undefined` elsewhere as nil.
//!
//! Contracts: decoding never panics and never recurses deeper than [`MAX_DEPTH`] containers; every
//! length is checked against the bytes that remain, and containers reserve little ahead of the
//! elements they actually hold, so a message allocates at most a constant factor of its own size
//! (about 80 bytes per input byte in the worst case: an array of one-byte elements, 40 bytes per
//! [`Value`], grown by doubling). Cost: one pass; strings and binaries are copied once.

use bytes::{BufMut, Bytes, BytesMut};

use super::js;
use crate::{Error, Limit, PeerMisbehaved};

/// Deepest nesting of arrays and maps [`decode`] accepts ([`Limit::ClusterDepth`] beyond). A broadcast
/// wraps the user's arguments in three levels (`[uid, {data: [ev, …]}]`); 128 leaves the arguments far
/// more room than socket.io clients' own payload limit (32 levels by default in Roomcast).
pub const MAX_DEPTH: usize = 128;

/// A value as notepack.io decodes it (a JavaScript value).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null` (msgpack nil).
    Nil,
    /// `undefined` (notepack's legacy `fixext 1` type 0). Written as nil; omitted as a map member.
    Undefined,
    /// `true` / `false`.
    Bool(bool),
    /// An integer number, exact.
    Int(i64),
    /// Any other number (non-integral, non-finite, or from a float form).
    Float(f64),
    /// A string (msgpack str).
    Str(String),
    /// A `Buffer` (msgpack bin, or notepack's legacy ext type 0 `ArrayBuffer`).
    Bin(Bytes),
    /// An array.
    Array(Vec<Value>),
    /// An object: members in wire order. Duplicate keys are kept as sent; [`Value::get`] reads the last
    /// (as a JavaScript object would).
    Map(Vec<(String, Value)>),
    /// An ext value of another kind: (type, data). notepack hands these out as `[type, Buffer]`, or as a
    /// `Date` for the timestamp types ([`ext_date_ms`]).
    Ext(i8, Bytes),
}

// The allocation bound in the module docs counts on it.
const _: () = assert!(std::mem::size_of::<Value>() <= 40);

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// An array of strings.
    pub fn str_array<S: AsRef<str>>(items: &[S]) -> Value {
        Value::Array(items.iter().map(|s| Value::str(s.as_ref())).collect())
    }

    /// A map from `(key, value)` pairs, in order.
    pub fn map<const N: usize>(entries: [(&str, Value); N]) -> Value {
        Value::Map(entries.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// The member `key` of a map (the last one if repeated); `None` for a missing member or a non-map.
    pub fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Whether the value holds a `Buffer` anywhere (socket.io's `hasBinary`): a [`Value::Bin`], or an
    /// ext value that notepack decodes as `[type, Buffer]`. Timestamps decode as dates, not binary.
    /// Cost: a walk of the whole value.
    pub fn has_binary(&self) -> bool {
        match self {
            Value::Bin(_) => true,
            Value::Ext(kind, data) => ext_date_ms(*kind, data).is_none(),
            Value::Array(items) => items.iter().any(Value::has_binary),
            Value::Map(entries) => entries.iter().any(|(_, v)| v.has_binary()),
            _ => false,
        }
    }
}

/// The time value (ms since the epoch) of an ext value notepack decodes as a `Date`: the msgpack
/// timestamp type −1 in its 32, 64 and 96-bit layouts, and notepack's legacy `fixext 8` type 0 (signed
/// milliseconds). Timestamps are recognised by length, whatever ext form carried them.
pub fn ext_date_ms(kind: i8, data: &[u8]) -> Option<f64> {
    let be32 =
        |at: usize| -> Option<u32> { Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?)) };
    match (kind, data.len()) {
        (-1, 4) => Some(f64::from(be32(0)?) * 1e3),
        (-1, 8) => {
            let (hi, lo) = (be32(0)?, be32(4)?);
            let seconds = f64::from(hi & 3) * 4_294_967_296.0 + f64::from(lo);
            Some(seconds * 1e3 + f64::from(hi >> 2) / 1e6)
        }
        (-1, 12) => {
            let (nanos, hi, lo) = (be32(0)?, be32(4)? as i32, be32(8)?);
            Some((f64::from(hi) * 4_294_967_296.0 + f64::from(lo)) * 1e3 + f64::from(nanos) / 1e6)
        }
        (0, 8) => Some(f64::from(be32(0)? as i32) * 4_294_967_296.0 + f64::from(be32(4)?)),
        _ => None,
    }
}

fn malformed(what: &'static str) -> Error {
    Error::PeerMisbehaved(PeerMisbehaved::ClusterParse(what))
}

/// Decodes one whole msgpack message.
///
/// Errors: [`PeerMisbehaved::ClusterParse`] for truncated input, trailing bytes, the reserved byte
/// `0xc1`, or a map key that is not a scalar; [`Limit::ClusterDepth`] beyond [`MAX_DEPTH`].
pub fn decode(input: &[u8]) -> Result<Value, Error> {
    let mut reader = Reader { rest: input };
    let value = reader.value(0)?;
    if !reader.rest.is_empty() {
        return Err(malformed("msgpack: trailing bytes after the value"));
    }
    Ok(value)
}

/// Most elements reserved ahead for an array or map. Claimed lengths are only trusted this far: nested
/// containers may each claim the rest of the message, so reserving their full claims would cost
/// depth × size; growing by pushes keeps allocation proportional to the elements actually read.
const PREALLOCATE_MAX: usize = 16;

struct Reader<'a> {
    rest: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let (head, tail) = self.rest.split_at_checked(n).ok_or(malformed("msgpack: truncated value"))?;
        self.rest = tail;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        self.take(N)?.try_into().map_err(|_| malformed("msgpack: truncated value"))
    }

    fn byte(&mut self) -> Result<u8, Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    /// A length of `width` bytes (1, 2 or 4), big-endian.
    fn len(&mut self, width: usize) -> Result<usize, Error> {
        Ok(match width {
            1 => usize::from(self.byte()?),
            2 => usize::from(u16::from_be_bytes(self.array()?)),
            _ => u32::from_be_bytes(self.array()?) as usize,
        })
    }

    fn value(&mut self, depth: usize) -> Result<Value, Error> {
        let prefix = self.byte()?;
        Ok(match prefix {
            0x00..=0x7f => Value::Int(i64::from(prefix)),
            0x80..=0x8f => self.map(usize::from(prefix & 0x0f), depth)?,
            0x90..=0x9f => self.array_of(usize::from(prefix & 0x0f), depth)?,
            0xa0..=0xbf => self.string(usize::from(prefix & 0x1f))?,
            0xc0 => Value::Nil,
            0xc1 => return Err(malformed("msgpack: reserved byte 0xc1")),
            0xc2 => Value::Bool(false),
            0xc3 => Value::Bool(true),
            0xc4..=0xc6 => {
                let len = self.len(1 << (prefix - 0xc4))?;
                Value::Bin(Bytes::copy_from_slice(self.take(len)?))
            }
            0xc7..=0xc9 => {
                let len = self.len(1 << (prefix - 0xc7))?;
                let kind = self.byte()? as i8;
                let data = Bytes::copy_from_slice(self.take(len)?);
                if kind == 0 {
                    Value::Bin(data)
                } else {
                    Value::Ext(kind, data)
                }
            }
            0xca => Value::Float(f64::from(f32::from_be_bytes(self.array()?))),
            0xcb => Value::Float(f64::from_be_bytes(self.array()?)),
            0xcc => Value::Int(i64::from(self.byte()?)),
            0xcd => Value::Int(i64::from(u16::from_be_bytes(self.array()?))),
            0xce => Value::Int(i64::from(u32::from_be_bytes(self.array()?))),
            0xcf => {
                let n = u64::from_be_bytes(self.array()?);
                i64::try_from(n).map_or(Value::Float(n as f64), Value::Int)
            }
            0xd0 => Value::Int(i64::from(i8::from_be_bytes(self.array()?))),
            0xd1 => Value::Int(i64::from(i16::from_be_bytes(self.array()?))),
            0xd2 => Value::Int(i64::from(i32::from_be_bytes(self.array()?))),
            0xd3 => Value::Int(i64::from_be_bytes(self.array()?)),
            0xd4..=0xd8 => {
                let kind = self.byte()? as i8;
                let data = self.take(1 << (prefix - 0xd4))?;
                if prefix == 0xd4 && kind == 0 {
                    Value::Undefined
                } else {
                    Value::Ext(kind, Bytes::copy_from_slice(data))
                }
            }
            0xd9..=0xdb => {
                let len = self.len(1 << (prefix - 0xd9))?;
                self.string(len)?
            }
            0xdc | 0xdd => {
                let len = self.len(if prefix == 0xdc { 2 } else { 4 })?;
                self.array_of(len, depth)?
            }
            0xde | 0xdf => {
                let len = self.len(if prefix == 0xde { 2 } else { 4 })?;
                self.map(len, depth)?
            }
            0xe0..=0xff => Value::Int(i64::from(prefix as i8)),
        })
    }

    fn string(&mut self, len: usize) -> Result<Value, Error> {
        Ok(Value::Str(String::from_utf8_lossy(self.take(len)?).into_owned()))
    }

    fn array_of(&mut self, len: usize, depth: usize) -> Result<Value, Error> {
        if depth >= MAX_DEPTH {
            return Err(Error::LimitExceeded(Limit::ClusterDepth { max: MAX_DEPTH }));
        }
        // Each element takes at least one byte: a longer claim is a lie, caught before allocating.
        if len > self.rest.len() {
            return Err(malformed("msgpack: array longer than the message"));
        }
        let mut items = Vec::with_capacity(len.min(PREALLOCATE_MAX));
        for _ in 0..len {
            items.push(self.value(depth + 1)?);
        }
        Ok(Value::Array(items))
    }

    fn map(&mut self, len: usize, depth: usize) -> Result<Value, Error> {
        if depth >= MAX_DEPTH {
            return Err(Error::LimitExceeded(Limit::ClusterDepth { max: MAX_DEPTH }));
        }
        if len > self.rest.len() / 2 {
            return Err(malformed("msgpack: map longer than the message"));
        }
        let mut entries = Vec::with_capacity(len.min(PREALLOCATE_MAX));
        for _ in 0..len {
            let key = key_string(self.value(depth + 1)?)?;
            entries.push((key, self.value(depth + 1)?));
        }
        Ok(Value::Map(entries))
    }
}

/// A decoded map key as the JavaScript property name it becomes (`String(key)`).
fn key_string(key: Value) -> Result<String, Error> {
    Ok(match key {
        Value::Str(s) => s,
        Value::Int(n) => {
            let mut out = BytesMut::new();
            js::write_integer(n, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
        Value::Float(x) => {
            let mut out = BytesMut::new();
            js::write_number(x, &mut out);
            String::from_utf8_lossy(&out).into_owned()
        }
        Value::Bool(b) => b.to_string(),
        Value::Nil => "null".to_owned(),
        Value::Undefined => "undefined".to_owned(),
        _ => return Err(malformed("msgpack: map key is not a string or scalar")),
    })
}

/// Encodes `value` into a new buffer. See [`encode`].
pub fn to_bytes(value: &Value) -> Bytes {
    let mut out = BytesMut::new();
    encode(value, &mut out);
    out.freeze()
}

/// Appends `value` in notepack's forms (module docs). Strings, binaries, arrays and maps longer than
/// `u32::MAX` are not representable in msgpack; callers never build them. Recurses once per level.
pub fn encode(value: &Value, out: &mut BytesMut) {
    match value {
        Value::Nil | Value::Undefined => out.put_u8(0xc0),
        Value::Bool(b) => out.put_u8(if *b { 0xc3 } else { 0xc2 }),
        Value::Int(n) => write_int(*n, out),
        Value::Float(x) => {
            if x.fract() == 0.0 && x.abs() <= js::MAX_SAFE_INTEGER as f64 {
                // Integral and within ±2^53: the cast is exact (and turns -0 into 0, as notepack does).
                write_int(*x as i64, out);
            } else {
                out.put_u8(0xcb);
                out.put_f64(*x);
            }
        }
        Value::Str(s) => {
            write_len(out, s.len(), (0xa0, 32), [0xd9, 0xda, 0xdb]);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Bin(b) => {
            write_len(out, b.len(), (0, 0), [0xc4, 0xc5, 0xc6]);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            write_len(out, items.len(), (0x90, 16), [0, 0xdc, 0xdd]);
            for item in items {
                encode(item, out);
            }
        }
        Value::Map(entries) => {
            let present = || entries.iter().filter(|(_, v)| !matches!(v, Value::Undefined));
            write_len(out, present().count(), (0x80, 16), [0, 0xde, 0xdf]);
            for (key, item) in present() {
                write_len(out, key.len(), (0xa0, 32), [0xd9, 0xda, 0xdb]);
                out.extend_from_slice(key.as_bytes());
                encode(item, out);
            }
        }
        Value::Ext(kind, data) => {
            match data.len() {
                1 => out.put_u8(0xd4),
                2 => out.put_u8(0xd5),
                4 => out.put_u8(0xd6),
                8 => out.put_u8(0xd7),
                16 => out.put_u8(0xd8),
                len => write_len(out, len, (0, 0), [0xc7, 0xc8, 0xc9]),
            }
            out.put_i8(*kind);
            out.extend_from_slice(data);
        }
    }
}

/// Writes a length header: `fix.0 | len` when `len < fix.1`, else the 8/16/32-bit form from `wide`
/// (a zero entry means that width does not exist for this type).
fn write_len(out: &mut BytesMut, len: usize, fix: (u8, usize), wide: [u8; 3]) {
    if len < fix.1 {
        out.put_u8(fix.0 | len as u8);
    } else if len < 0x100 && wide[0] != 0 {
        out.put_u8(wide[0]);
        out.put_u8(len as u8);
    } else if len < 0x1_0000 {
        out.put_u8(wide[1]);
        out.put_u16(len as u16);
    } else {
        out.put_u8(wide[2]);
        out.put_u32(len as u32);
    }
}

fn write_int(n: i64, out: &mut BytesMut) {
    match n {
        0..=0x7f => out.put_u8(n as u8),
        0x80..=0xff => {
            out.put_u8(0xcc);
            out.put_u8(n as u8);
        }
        0x100..=0xffff => {
            out.put_u8(0xcd);
            out.put_u16(n as u16);
        }
        0x1_0000..=0xffff_ffff => {
            out.put_u8(0xce);
            out.put_u32(n as u32);
        }
        0x1_0000_0000.. => {
            out.put_u8(0xcf);
            out.put_u64(n as u64);
        }
        -0x20..=-1 => out.put_i8(n as i8),
        -0x80..=-0x21 => {
            out.put_u8(0xd0);
            out.put_i8(n as i8);
        }
        -0x8000..=-0x81 => {
            out.put_u8(0xd1);
            out.put_i16(n as i16);
        }
        -0x8000_0000..=-0x8001 => {
            out.put_u8(0xd2);
            out.put_i32(n as i32);
        }
        _ => {
            out.put_u8(0xd3);
            out.put_i64(n);
        }
    }
}
