//! Cluster codec tests: golden vectors captured from the real Node.js packages (the adapter, the
//! emitter, notepack.io and socket.io-parser), transcoding, and property tests.

mod classic_golden;
mod msgpack;
mod props;
mod sharded_golden;
mod transcode;

use super::msgpack::Value;

/// Bytes from a hex string (whitespace ignored).
fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    digits.chunks(2).map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap()).collect()
}

fn s(text: &str) -> Value {
    Value::str(text)
}

/// `[event, …args]` of string and integer arguments.
fn data(items: &[Value]) -> Value {
    Value::Array(items.to_vec())
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// Every strict prefix of a whole message must be rejected (Redis delivers messages whole, so a
/// prefix is a truncated message), and must not panic.
fn assert_prefixes_rejected<T: std::fmt::Debug, E>(message: &[u8], decode: impl Fn(&[u8]) -> Result<T, E>) {
    for end in 0..message.len() {
        if let Ok(v) = decode(&message[..end]) {
            panic!("prefix of {end} bytes decoded as {v:?}");
        }
    }
}
