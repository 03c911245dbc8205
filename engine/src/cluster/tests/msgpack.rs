//! msgpack forms against notepack.io 3.0.1's own output (`encode(value).toString('hex')` in Node).

use super::{assert_prefixes_rejected, hex, s};
use crate::cluster::msgpack::{decode, to_bytes, Value, MAX_DEPTH};
use crate::{Error, Limit};

fn ints(range: std::ops::Range<i64>) -> Value {
    Value::Array(range.map(Value::Int).collect())
}

/// (what, value, notepack's bytes): the writer must produce these, the reader must read them back.
fn notepack_vectors() -> Vec<(&'static str, Value, &'static str)> {
    vec![
        ("int 0", Value::Int(0), "00"),
        ("int 127", Value::Int(127), "7f"),
        ("int 128", Value::Int(128), "cc80"),
        ("int 255", Value::Int(255), "ccff"),
        ("int 256", Value::Int(256), "cd0100"),
        ("int 65535", Value::Int(65535), "cdffff"),
        ("int 65536", Value::Int(65536), "ce00010000"),
        ("int 2^32-1", Value::Int(4_294_967_295), "ceffffffff"),
        ("int 2^32", Value::Int(4_294_967_296), "cf0000000100000000"),
        ("int 2^53-1", Value::Int(9_007_199_254_740_991), "cf001fffffffffffff"),
        ("int -1", Value::Int(-1), "ff"),
        ("int -32", Value::Int(-32), "e0"),
        ("int -33", Value::Int(-33), "d0df"),
        ("int -128", Value::Int(-128), "d080"),
        ("int -129", Value::Int(-129), "d1ff7f"),
        ("int -32768", Value::Int(-32768), "d18000"),
        ("int -32769", Value::Int(-32769), "d2ffff7fff"),
        ("int -2^31", Value::Int(-2_147_483_648), "d280000000"),
        ("int -2^31-1", Value::Int(-2_147_483_649), "d3ffffffff7fffffff"),
        ("int -(2^53-1)", Value::Int(-9_007_199_254_740_991), "d3ffe0000000000001"),
        ("float 1.5", Value::Float(1.5), "cb3ff8000000000000"),
        ("float -0.1", Value::Float(-0.1), "cbbfb999999999999a"),
        ("str 31", s(&"a".repeat(31)), "bf61616161616161616161616161616161616161616161616161616161616161"),
        (
            "str 32",
            s(&"b".repeat(32)),
            "d9206262626262626262626262626262626262626262626262626262626262626262",
        ),
        ("str utf8", s("é€😀"), "a9c3a9e282acf09f9880"),
        ("bin 3", Value::Bin(vec![1, 2, 3].into()), "c403010203"),
        ("array 15", ints(0..15), "9f000102030405060708090a0b0c0d0e"),
        ("array 16", ints(0..16), "dc0010000102030405060708090a0b0c0d0e0f"),
        ("date 2000", Value::Ext(-1, hex("39457980").into()), "d6ff39457980"),
        ("date with ms", Value::Ext(-1, hex("1d5353006671b158").into()), "d7ff1d5353006671b158"),
        (
            "date pre-epoch",
            Value::Ext(-1, hex("3b8b87c0ffffffffffffffff").into()),
            "c70cff3b8b87c0ffffffffffffffff",
        ),
        (
            "nested",
            Value::map([
                ("b", Value::Int(1)),
                (
                    "a",
                    Value::Array(vec![
                        Value::Bool(true),
                        Value::Bool(false),
                        Value::Nil,
                        s("x"),
                        Value::map([("y", Value::Float(2.5))]),
                    ]),
                ),
            ]),
            "82a16201a16195c3c2c0a17881a179cb4004000000000000",
        ),
    ]
}

#[test]
fn writer_and_reader_agree_with_notepack() {
    for (what, value, bytes) in notepack_vectors() {
        assert_eq!(to_bytes(&value), hex(bytes), "{what}");
        assert_eq!(decode(&hex(bytes)).unwrap(), value, "{what}");
        assert_prefixes_rejected(&hex(bytes), decode);
    }
}

#[test]
fn writer_normalizes_numbers_and_undefined_as_notepack_does() {
    // Integral floats are written as integers, -0 as 0; `undefined` members are left out.
    assert_eq!(to_bytes(&Value::Float(-0.0)), hex("00"));
    assert_eq!(to_bytes(&Value::Float(300.0)), hex("cd012c"));
    let map = Value::map([("a", Value::Int(1)), ("b", Value::Undefined), ("c", Value::Nil)]);
    assert_eq!(to_bytes(&map), hex("82a16101a163c0"));
    assert_eq!(to_bytes(&Value::Array(vec![Value::Undefined])), hex("91c0"));
    // Beyond 2^53, integral doubles stay doubles (any reader gets the same number back).
    assert_eq!(to_bytes(&Value::Float(2f64.powi(60))), hex("cb43b0000000000000"));
}

#[test]
fn long_forms_use_the_widths_notepack_uses() {
    let head = |v: &Value, n: usize| to_bytes(v)[..n].to_vec();
    let map16 = Value::Map((0..16).map(|i| (format!("k{i}"), Value::Int(i))).collect());
    assert_eq!(head(&map16, 10), hex("de0010a26b3000a26b31"));
    assert_eq!(head(&s(&"c".repeat(256)), 6), hex("da0100636363"));
    assert_eq!(head(&s(&"d".repeat(65536)), 6), hex("db0001000064"));
    assert_eq!(head(&Value::Bin(vec![0; 256].into()), 6), hex("c50100000000"));
    assert_eq!(head(&Value::Bin(vec![0; 65536].into()), 6), hex("c60001000000"));
    assert_eq!(head(&ints(0..65536), 6), hex("dd0001000000"));
    for v in [map16, s(&"d".repeat(65536)), Value::Bin(vec![9; 65536].into()), ints(0..65536)] {
        assert_eq!(decode(&to_bytes(&v)).unwrap(), v);
    }
}

#[test]
fn reader_accepts_every_width_and_notepacks_legacy_forms() {
    let cases = [
        ("cc05", Value::Int(5)),
        ("cd0005", Value::Int(5)),
        ("ce00000005", Value::Int(5)),
        ("cf0000000000000005", Value::Int(5)),
        ("d0fb", Value::Int(-5)),
        ("d1fffb", Value::Int(-5)),
        ("d2fffffffb", Value::Int(-5)),
        ("d3fffffffffffffffb", Value::Int(-5)),
        ("cfffffffffffffffff", Value::Float(18_446_744_073_709_551_615.0)),
        ("ca3fc00000", Value::Float(1.5)),
        ("d90161", s("a")),
        ("da000161", s("a")),
        ("db0000000161", s("a")),
        ("c5000101", Value::Bin(vec![1].into())),
        ("c600000001ff", Value::Bin(vec![0xff].into())),
        ("dc000101", ints(1..2)),
        ("dd0000000101", ints(1..2)),
        ("de0001a16101", Value::map([("a", Value::Int(1))])),
        ("df00000001a16101", Value::map([("a", Value::Int(1))])),
        // fixext 1 type 0 is `undefined`; ext 8/16/32 type 0 an ArrayBuffer; other ext values opaque.
        ("d40000", Value::Undefined),
        ("c70300010203", Value::Bin(vec![1, 2, 3].into())),
        ("c8000200abcd", Value::Bin(vec![0xab, 0xcd].into())),
        ("d5050102", Value::Ext(5, vec![1, 2].into())),
        ("c900000003070a0b0c", Value::Ext(7, vec![10, 11, 12].into())),
        // Invalid UTF-8 reads as U+FFFD (Buffer#toString); scalar keys become their JavaScript string.
        ("a3ff6162", s("\u{FFFD}ab")),
        (
            "8301c3c0c2cb3ff8000000000000a178",
            Value::map([("1", Value::Bool(true)), ("null", Value::Bool(false)), ("1.5", s("x"))]),
        ),
    ];
    for (bytes, value) in cases {
        assert_eq!(decode(&hex(bytes)).unwrap(), value, "{bytes}");
    }
}

#[test]
fn malformed_input_is_rejected_before_allocating() {
    let cases = [
        "",             // nothing
        "c1",           // reserved
        "0000",         // trailing byte
        "dcffff",       // array of 65535 claimed by a 3-byte message
        "dfffffffff",   // map of 2^32-1
        "dbffffffff61", // string longer than the message
        "c6ffffffff",   // binary longer than the message
        "c9ffffffff05", // ext longer than the message
        "8191a161",     // array as a map key
        "81c401ffa161", // binary as a map key
        "d6ff0102",     // truncated fixext 4
    ];
    for bytes in cases {
        assert!(decode(&hex(bytes)).is_err(), "{bytes}");
    }
}

#[test]
fn nesting_is_limited() {
    let nested = |depth: usize| {
        let mut bytes = vec![0x91; depth];
        bytes.push(0xc0);
        bytes
    };
    assert!(decode(&nested(MAX_DEPTH)).is_ok());
    assert_eq!(
        decode(&nested(MAX_DEPTH + 1)),
        Err(Error::LimitExceeded(Limit::ClusterDepth { max: MAX_DEPTH }))
    );
    // A deep message cannot exhaust the stack, however long.
    assert!(decode(&nested(1_000_000)).is_err());
}

#[test]
fn has_binary_finds_buffers_but_not_dates() {
    assert!(Value::Array(vec![s("x"), Value::map([("b", Value::Bin(vec![].into()))])]).has_binary());
    assert!(Value::Ext(5, vec![1].into()).has_binary());
    assert!(!Value::Ext(-1, hex("39457980").into()).has_binary());
    assert!(!Value::map([("a", Value::Array(vec![Value::Int(1)]))]).has_binary());
}
