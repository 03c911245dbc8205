//! JavaScript's spelling of numbers and dates, as `JSON.stringify` writes them.
//!
//! A Node.js server that receives a cluster message decodes it into JavaScript values and hands them to
//! socket.io-parser, which calls `JSON.stringify`. For Roomcast's clients to receive the same bytes as the
//! Node server's clients, numbers and dates decoded from msgpack are printed here by the ECMAScript rules:
//! `Number::toString` (ECMA-262 §6.1.6.1.20) and `Date.prototype.toISOString` (§21.4.4.36).
//!
//! Cost: integers are printed directly; any other number takes two conversions by the standard library
//! (the shortest round-trip digit count, then the exact rounding at that length, which breaks ties the
//! way ECMAScript does) and one parse, a few small allocations.

use bytes::{BufMut, BytesMut};

/// The largest integer `n` such that every integer in `-n..=n` is exactly representable as a double
/// (`Number.MAX_SAFE_INTEGER`).
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// Appends `x` as `Number.prototype.toString()` prints it: `NaN`, `Infinity`, `-Infinity`, `0` for
/// both zeros, plain digits for magnitudes in `[1e-6, 1e21)`, otherwise `d.ddde±n`.
pub fn write_number(x: f64, out: &mut BytesMut) {
    if x.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if x.is_infinite() {
        out.extend_from_slice(if x > 0.0 { b"Infinity" } else { b"-Infinity" });
        return;
    }
    if x == 0.0 {
        out.put_u8(b'0');
        return;
    }
    if x.fract() == 0.0 && x.abs() <= MAX_SAFE_INTEGER as f64 {
        // Exact: the cast cannot truncate a value this small and integral.
        write_integer(x as i64, out);
        return;
    }
    if x < 0.0 {
        out.put_u8(b'-');
    }
    let abs = x.abs();
    // `{:e}` yields the shortest round-trip digit count `k`, but breaks a tie between two equally
    // close k-digit strings arbitrarily; ECMAScript takes the even one. The k-digit rounding of the
    // exact value (`{:.p$e}` rounds half to even) is the closest k-digit string: use it when it reads
    // back as `x` (it may not just below a power of two, where the interval of `x` is lopsided).
    let (shortest, n) = scientific_digits(&format!("{abs:e}"));
    let exact = format!("{abs:.*e}", shortest.len().saturating_sub(1));
    let (digits, n) = match exact.parse::<f64>() {
        Ok(back) if back == abs => scientific_digits(&exact),
        _ => (shortest, n),
    };
    write_digits(&digits, n, out);
}

/// The significant digits (trailing zeros dropped) and decimal point position `n` (value =
/// `0.digits × 10^n`) of Rust's `d.ddde<exp>` text.
fn scientific_digits(sci: &str) -> (Vec<u8>, i64) {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i64 = exp.parse().unwrap_or(0);
    let mut digits: Vec<u8> = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    while digits.len() > 1 && digits.last() == Some(&b'0') {
        digits.pop();
    }
    (digits, exp + 1)
}

/// Appends the JSON text of `x`: `JSON.stringify` writes non-finite numbers as `null`.
pub fn write_json_number(x: f64, out: &mut BytesMut) {
    if x.is_finite() {
        write_number(x, out);
    } else {
        out.extend_from_slice(b"null");
    }
}

/// Appends an integer exactly as JavaScript would print the number closest to it: plain digits while
/// `|n| <= 2^53 - 1`, beyond that the nearest double's spelling (`2^63` prints `9223372036854776000`).
pub fn write_integer(n: i64, out: &mut BytesMut) {
    if n.unsigned_abs() <= MAX_SAFE_INTEGER as u64 {
        out.extend_from_slice(n.to_string().as_bytes());
    } else {
        // Same rounding as JavaScript's `hi * 2^32 + lo` when it decodes an int64: to nearest, ties even.
        write_number(n as f64, out);
    }
}

/// Number::toString step 5–10 for the digit string `digits` (`k` digits, no leading or trailing zero)
/// with the decimal point after digit `n` (so the value is `0.digits × 10^n`).
fn write_digits(digits: &[u8], n: i64, out: &mut BytesMut) {
    let k = digits.len() as i64;
    let zeros = |count: i64, out: &mut BytesMut| {
        for _ in 0..count {
            out.put_u8(b'0');
        }
    };
    if k <= n && n <= 21 {
        out.extend_from_slice(digits);
        zeros(n - k, out);
    } else if 0 < n && n <= 21 {
        let (int, frac) = digits.split_at_checked(n as usize).unwrap_or((digits, &[]));
        out.extend_from_slice(int);
        out.put_u8(b'.');
        out.extend_from_slice(frac);
    } else if -6 < n && n <= 0 {
        out.extend_from_slice(b"0.");
        zeros(-n, out);
        out.extend_from_slice(digits);
    } else {
        let (first, rest) = digits.split_first().map_or((b'0', &[][..]), |(f, r)| (*f, r));
        out.put_u8(first);
        if !rest.is_empty() {
            out.put_u8(b'.');
            out.extend_from_slice(rest);
        }
        out.put_u8(b'e');
        out.put_u8(if n - 1 < 0 { b'-' } else { b'+' });
        out.extend_from_slice((n - 1).unsigned_abs().to_string().as_bytes());
    }
}

/// Milliseconds in a day.
const MS_PER_DAY: i64 = 86_400_000;

/// ECMAScript's `TimeClip`: the time value a `Date` built from `ms` holds, `None` for an invalid date
/// (not finite, or more than 8.64e15 ms from the epoch). Fractions are truncated toward zero.
pub fn time_clip(ms: f64) -> Option<i64> {
    if !ms.is_finite() || ms.abs() > 8.64e15 {
        return None;
    }
    // |ms| <= 8.64e15 < 2^63: the cast is exact after truncation.
    Some(ms.trunc() as i64)
}

/// Appends the JSON text of a `Date` whose time value is `ms`: `Date.prototype.toJSON` gives the quoted
/// `toISOString()` form (`"2000-06-13T00:00:00.000Z"`, six-digit signed years outside 0–9999), and
/// `null` for an invalid date.
pub fn write_json_date(ms: f64, out: &mut BytesMut) {
    let Some(t) = time_clip(ms) else {
        out.extend_from_slice(b"null");
        return;
    };
    let days = t.div_euclid(MS_PER_DAY);
    let in_day = t.rem_euclid(MS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let mut text = String::with_capacity(30);
    text.push('"');
    if (0..=9999).contains(&year) {
        text.push_str(&format!("{year:04}"));
    } else {
        text.push_str(&format!("{}{:06}", if year < 0 { '-' } else { '+' }, year.unsigned_abs()));
    }
    let (h, m, s, milli) = (in_day / 3_600_000, in_day / 60_000 % 60, in_day / 1000 % 60, in_day % 1000);
    text.push_str(&format!("-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{milli:03}Z\""));
    out.extend_from_slice(text.as_bytes());
}

/// The proleptic Gregorian (year, month 1–12, day 1–31) of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`). Exact for every day a valid `Date` can hold.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(bits: u64) -> String {
        let mut out = BytesMut::new();
        write_json_number(f64::from_bits(bits), &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    /// (IEEE-754 bits, what Node.js 22's `JSON.stringify` prints), captured from `node`.
    const NODE_NUMBERS: &[(u64, &str)] = &[
        (0x0000000000000000, "0"),
        (0x8000000000000000, "0"),
        (0x3ff0000000000000, "1"),
        (0xbff0000000000000, "-1"),
        (0x4045000000000000, "42"),
        (0x3fb999999999999a, "0.1"),
        (0x3fe0000000000000, "0.5"),
        (0xc004000000000000, "-2.5"),
        (0x3fd5555555555555, "0.3333333333333333"),
        (0x3fe5555555555555, "0.6666666666666666"),
        (0x4040aaaaaaaaaaab, "33.333333333333336"),
        (0x3fd3333333333334, "0.30000000000000004"),
        (0x444b1ae4d6e2ef50, "1e+21"),
        (0x3e7ad7f29abcaf48, "1e-7"),
        (0x3e8421f5f40d8376, "1.5e-7"),
        (0x3eb0c6f7a0b5ed8d, "0.000001"),
        (0x3eb92a737110e454, "0.0000015"),
        (0x4415af1d78b58c40, "100000000000000000000"),
        (0x441ac53a7e04bcda, "123456789012345680000"),
        (0x4450bb448ec2f608, "1.2345678901234568e+21"),
        (0x4340000000000000, "9007199254740992"),
        (0x4340000000000001, "9007199254740994"),
        (0x43e0000000000000, "9223372036854776000"),
        (0x43f0000000000000, "18446744073709552000"),
        (0xc3e0000000000000, "-9223372036854776000"),
        (0x7fefffffffffffff, "1.7976931348623157e+308"),
        (0x0000000000000001, "5e-324"),
        (0x0010000000000000, "2.2250738585072014e-308"),
        (0x7e6ddd4baa009303, "1e+301"),
        (0x4011666666666666, "4.35"),
        (0x54b249ad2594c37d, "1e+100"),
        (0x3c36b082c2148b8e, "1.23e-18"),
        (0x40934a456d5cfaad, "1234.5678"),
        (0xbeb0c6f7a0b5ed8d, "-0.000001"),
        (0xbe7ad7f29abcaf48, "-1e-7"),
        (0x430c6bf526340002, "1000000000000000.2"),
        (0x3e90c6f7a0b5ed8d, "2.5e-7"),
        (0x3f50000000000000, "0.0009765625"),
        (0x400921fb54442d18, "3.141592653589793"),
        (0xc005bf0a8b145769, "-2.718281828459045"),
        (0x47efffffe0000000, "3.4028234663852886e+38"),
        (0x36a0000000000000, "1.401298464324817e-45"),
        (0x4170000010000000, "16777217"),
        (0x3fd3333340000000, "0.30000001192092896"),
        (0x7ff8000000000000, "null"),
        (0x7ff0000000000000, "null"),
        (0xfff0000000000000, "null"),
    ];

    #[test]
    fn numbers_print_as_node_prints_them() {
        for &(bits, expected) in NODE_NUMBERS {
            assert_eq!(number(bits), expected, "bits {bits:016x}");
        }
    }

    #[test]
    fn number_to_string_spells_non_finite_values() {
        let text = |x: f64| {
            let mut out = BytesMut::new();
            write_number(x, &mut out);
            String::from_utf8(out.to_vec()).unwrap()
        };
        assert_eq!(text(f64::NAN), "NaN");
        assert_eq!(text(f64::NEG_INFINITY), "-Infinity");
        assert_eq!(text(1.5), "1.5");
    }

    #[test]
    fn integers_beyond_the_safe_range_print_as_their_nearest_double() {
        let text = |n: i64| {
            let mut out = BytesMut::new();
            write_integer(n, &mut out);
            String::from_utf8(out.to_vec()).unwrap()
        };
        assert_eq!(text(MAX_SAFE_INTEGER), "9007199254740991");
        assert_eq!(text(-MAX_SAFE_INTEGER), "-9007199254740991");
        assert_eq!(text(i64::MAX), "9223372036854776000");
        assert_eq!(text(i64::MIN), "-9223372036854776000");
        assert_eq!(text((1 << 53) + 1), "9007199254740992");
    }

    #[test]
    fn dates_print_as_node_prints_them() {
        // (time value, `new Date(ms).toJSON()` in Node.js 22)
        let cases: &[(f64, &str)] = &[
            (0.0, "\"1970-01-01T00:00:00.000Z\""),
            (1.0, "\"1970-01-01T00:00:00.001Z\""),
            (-1.0, "\"1969-12-31T23:59:59.999Z\""),
            (961_804_800_000.0, "\"2000-06-24T00:00:00.000Z\""),
            (1_000_000_000_123.0, "\"2001-09-09T01:46:40.123Z\""),
            (-62_198_755_200_000.0, "\"-000001-01-01T00:00:00.000Z\""),
            (-62_198_755_200_001.0, "\"-000002-12-31T23:59:59.999Z\""),
            (253_402_300_799_999.0, "\"9999-12-31T23:59:59.999Z\""),
            (253_402_300_800_000.0, "\"+010000-01-01T00:00:00.000Z\""),
            (8.64e15, "\"+275760-09-13T00:00:00.000Z\""),
            (-8.64e15, "\"-271821-04-20T00:00:00.000Z\""),
            (1.5, "\"1970-01-01T00:00:00.001Z\""),
            (-1.5, "\"1969-12-31T23:59:59.999Z\""),
            (1_718_727_000_000.9, "\"2024-06-18T16:10:00.000Z\""),
            (8.64e15 + 1.0, "null"),
            (f64::NAN, "null"),
        ];
        for &(ms, expected) in cases {
            let mut out = BytesMut::new();
            write_json_date(ms, &mut out);
            assert_eq!(String::from_utf8(out.to_vec()).unwrap(), expected, "ms {ms}");
        }
    }
}
