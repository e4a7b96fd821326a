//! The normalised relaxed Extended JSON form of every BSON type (constructors shared by both
//! decoders) and the scalar text formats it uses: hex, ISO-8601 dates, decimal128 and double strings.

use base64::Engine as _;
use serde_json::{Map, Number, Value};

/// Largest date (ms since epoch) that is rendered as an ISO string: 9999-12-31T23:59:59.999Z.
pub(crate) const MAX_ISO_MS: i64 = 253_402_300_799_999;
const MS_PER_DAY: i64 = 86_400_000;

fn wrap(key: &str, inner: Value) -> Value {
    let mut m = Map::with_capacity(1);
    m.insert(key.to_owned(), inner);
    Value::Object(m)
}

fn pair(k1: &str, v1: Value, k2: &str, v2: Value) -> Map<String, Value> {
    let mut m = Map::with_capacity(2);
    m.insert(k1.to_owned(), v1);
    m.insert(k2.to_owned(), v2);
    m
}

/// Double: finite → JSON number (f64), non-finite → `{"$numberDouble": …}`.
pub(crate) fn double(x: f64) -> Value {
    match Number::from_f64(x) {
        Some(n) => Value::Number(n),
        None => wrap(
            "$numberDouble",
            Value::String(non_finite_name(x).to_owned()),
        ),
    }
}

/// The `$numberDouble` text of a non-finite double.
pub(crate) fn non_finite_name(x: f64) -> &'static str {
    if x.is_nan() {
        "NaN"
    } else if x > 0.0 {
        "Infinity"
    } else {
        "-Infinity"
    }
}

pub(crate) fn int(i: i64) -> Value {
    Value::Number(Number::from(i))
}

pub(crate) fn object_id(bytes: &[u8; 12]) -> Value {
    wrap("$oid", Value::String(hex_lower(bytes)))
}

pub(crate) fn binary(subtype: u8, data: &[u8]) -> Value {
    let b64 = base64::engine::general_purpose::STANDARD.encode(data);
    let inner = pair(
        "base64",
        Value::String(b64),
        "subType",
        Value::String(hex_lower(&[subtype])),
    );
    wrap("$binary", Value::Object(inner))
}

pub(crate) fn date(ms: i64) -> Value {
    let inner = if (0..=MAX_ISO_MS).contains(&ms) {
        Value::String(format_iso(ms))
    } else {
        wrap("$numberLong", Value::String(ms.to_string()))
    };
    wrap("$date", inner)
}

pub(crate) fn regex(pattern: &str, options: &str) -> Value {
    let inner = pair(
        "pattern",
        Value::String(pattern.to_owned()),
        "options",
        Value::String(sort_options(options)),
    );
    wrap("$regularExpression", Value::Object(inner))
}

pub(crate) fn db_pointer(ns: &str, oid: &[u8; 12]) -> Value {
    let inner = pair("$ref", Value::String(ns.to_owned()), "$id", object_id(oid));
    wrap("$dbPointer", Value::Object(inner))
}

pub(crate) fn code(code: &str) -> Value {
    wrap("$code", Value::String(code.to_owned()))
}

pub(crate) fn code_with_scope(code: &str, scope: Map<String, Value>) -> Value {
    code_with_scope_owned(code.to_owned(), scope)
}

pub(crate) fn code_with_scope_owned(code: String, scope: Map<String, Value>) -> Value {
    Value::Object(pair(
        "$code",
        Value::String(code),
        "$scope",
        Value::Object(scope),
    ))
}

pub(crate) fn symbol(s: &str) -> Value {
    wrap("$symbol", Value::String(s.to_owned()))
}

pub(crate) fn undefined() -> Value {
    wrap("$undefined", Value::Bool(true))
}

pub(crate) fn min_key() -> Value {
    wrap("$minKey", int(1))
}

pub(crate) fn max_key() -> Value {
    wrap("$maxKey", int(1))
}

pub(crate) fn timestamp(t: u32, i: u32) -> Value {
    let inner = pair("t", Value::from(t), "i", Value::from(i));
    wrap("$timestamp", Value::Object(inner))
}

pub(crate) fn decimal(bytes: [u8; 16]) -> Value {
    wrap("$numberDecimal", Value::String(decimal_string(bytes)))
}

/// Regex options sorted alphabetically (per the BSON spec).
pub(crate) fn sort_options(options: &str) -> String {
    let mut chars: Vec<char> = options.chars().collect();
    chars.sort_unstable();
    chars.into_iter().collect()
}

// ---------------------------------------------------------------- hex

pub(crate) fn hex_lower(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Bytes first, then one (short) UTF-8 check: pushing `char`s costs a branch each.
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.extend_from_slice(&[DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 0x0f)]]);
    }
    String::from_utf8(out).unwrap_or_default()
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decode exactly `N` bytes from `2*N` hex digits (either case).
pub(crate) fn parse_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    let b = s.as_bytes();
    if b.len() != 2 * N {
        return None;
    }
    let mut out = [0u8; N];
    for (o, chunk) in out.iter_mut().zip(b.chunks_exact(2)) {
        *o = (hex_digit(chunk[0])? << 4) | hex_digit(chunk[1])?;
    }
    Some(out)
}

/// Binary subtype: one or two hex digits.
pub(crate) fn parse_subtype(s: &str) -> Option<u8> {
    match s.as_bytes() {
        [a] => hex_digit(*a),
        [a, b] => Some((hex_digit(*a)? << 4) | hex_digit(*b)?),
        _ => None,
    }
}

/// UUID text: 8-4-4-4-12 hex digits with hyphens, or 32 hex digits without (spec: MAY accept).
pub(crate) fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    let mut digits = [0u8; 32];
    match b.len() {
        32 => digits.copy_from_slice(b),
        36 => {
            let mut n = 0;
            for (i, &c) in b.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    if c != b'-' {
                        return None;
                    }
                } else {
                    *digits.get_mut(n)? = c;
                    n += 1;
                }
            }
        }
        _ => return None,
    }
    let text = std::str::from_utf8(&digits).ok()?;
    parse_hex::<16>(text)
}

// ---------------------------------------------------------------- dates

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian; H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    // d in 1..=31 and m in 1..=12 by construction.
    (y, m as u32, d as u32)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let (m, d) = (i64::from(m), i64::from(d));
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        _ => 28,
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm]Z` for a millisecond timestamp in 1970..=9999.
pub(crate) fn format_iso(ms: i64) -> String {
    let mut buf = [0u8; ISO_MAX_LEN];
    let n = format_iso_into(ms, &mut buf);
    // Only ASCII digits and separators are written.
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

/// Longest [`format_iso`] text: `YYYY-MM-DDTHH:MM:SS.mmmZ`.
const ISO_MAX_LEN: usize = 24;

/// Writes [`format_iso`]'s text into `buf` without allocating; returns its length.
/// `ms` must be within `0..=MAX_ISO_MS`.
fn format_iso_into(ms: i64, buf: &mut [u8; ISO_MAX_LEN]) -> usize {
    let days = ms.div_euclid(MS_PER_DAY);
    let rem = ms.rem_euclid(MS_PER_DAY);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, frac) = (
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000,
    );
    let put = |buf: &mut [u8; ISO_MAX_LEN], at: usize, width: usize, mut v: i64| {
        for i in (at..at + width).rev() {
            buf[i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(buf, 0, 4, y);
    buf[4] = b'-';
    put(buf, 5, 2, i64::from(mo));
    buf[7] = b'-';
    put(buf, 8, 2, i64::from(d));
    buf[10] = b'T';
    put(buf, 11, 2, h);
    buf[13] = b':';
    put(buf, 14, 2, mi);
    buf[16] = b':';
    put(buf, 17, 2, s);
    if frac == 0 {
        buf[19] = b'Z';
        20
    } else {
        buf[19] = b'.';
        put(buf, 20, 3, frac);
        buf[23] = b'Z';
        24
    }
}

/// Whether `s` is exactly the relaxed `$date` text of `ms` (then a parsed `{"$date": s}`
/// is already in normal form).
pub(crate) fn is_iso_of(s: &str, ms: i64) -> bool {
    if !(0..=MAX_ISO_MS).contains(&ms) {
        return false;
    }
    let mut buf = [0u8; ISO_MAX_LEN];
    let n = format_iso_into(ms, &mut buf);
    s.as_bytes() == &buf[..n]
}

fn digits_at(b: &[u8], pos: usize, n: usize) -> Option<i64> {
    let slice = b.get(pos..pos.checked_add(n)?)?;
    slice.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

/// Parse an RFC 3339 / ISO-8601 date-time: `YYYY-MM-DDTHH:MM:SS[.f…](Z|±HH:MM|±HHMM)`.
/// Fractions longer than milliseconds are truncated. Returns ms since the epoch.
pub(crate) fn parse_iso(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let year = digits_at(b, 0, 4)?;
    let month = u32::try_from(digits_at(b, 5, 2)?).ok()?;
    let day = u32::try_from(digits_at(b, 8, 2)?).ok()?;
    let hour = digits_at(b, 11, 2)?;
    let minute = digits_at(b, 14, 2)?;
    let second = digits_at(b, 17, 2)?;
    if b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't'))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let mut pos = 19;
    let mut millis = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while let Some(c) = b.get(pos).filter(|c| c.is_ascii_digit()) {
            if pos - start < 3 {
                millis = millis * 10 + i64::from(c - b'0');
            }
            pos += 1;
        }
        let n = pos - start;
        if n == 0 {
            return None;
        }
        for _ in n..3 {
            millis *= 10;
        }
    }
    let offset_minutes = match b.get(pos..)? {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), rest @ ..] => {
            let (oh, om) = match rest {
                [_, _, b':', _, _] => (digits_at(rest, 0, 2)?, digits_at(rest, 3, 2)?),
                [_, _, _, _] => (digits_at(rest, 0, 2)?, digits_at(rest, 2, 2)?),
                _ => return None,
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let m = oh * 60 + om;
            if *sign == b'-' {
                -m
            } else {
                m
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60;
    Some(secs * 1000 + millis)
}

// ---------------------------------------------------------------- numbers

/// `-?[0-9]+` parsed into an integer type (the EJSON `$numberInt`/`$numberLong` grammar).
pub(crate) fn parse_int<T: std::str::FromStr>(s: &str) -> Option<T> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// `$numberDouble` text: "Infinity", "-Infinity", "NaN" or `-?D+(.D+)?([eE][+-]?D+)?` that
/// parses to a finite double.
pub(crate) fn parse_double(s: &str) -> Option<f64> {
    match s {
        "Infinity" => return Some(f64::INFINITY),
        "-Infinity" => return Some(f64::NEG_INFINITY),
        "NaN" => return Some(f64::NAN),
        _ => {}
    }
    let b = s.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let run = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    if !run(&mut i) {
        return None;
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !run(&mut i) {
            return None;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !run(&mut i) {
            return None;
        }
    }
    if i != b.len() {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Validate decimal128 text against the decimal128 spec grammar (sign, digits with optional
/// point, optional exponent; or Inf/Infinity/NaN case-insensitively), then parse it. Inexact
/// rounding, overflow and malformed text are errors.
pub(crate) fn parse_decimal(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    let unsigned = b.strip_prefix(b"-").or(b.strip_prefix(b"+")).unwrap_or(b);
    let special = unsigned.eq_ignore_ascii_case(b"inf")
        || unsigned.eq_ignore_ascii_case(b"infinity")
        || unsigned.eq_ignore_ascii_case(b"nan");
    if !special {
        let mut i = 0;
        let mut int_digits = 0;
        while unsigned.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
            int_digits += 1;
        }
        let mut frac_digits = 0;
        if unsigned.get(i) == Some(&b'.') {
            i += 1;
            while unsigned.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
                frac_digits += 1;
            }
        }
        if int_digits + frac_digits == 0 {
            return None;
        }
        if matches!(unsigned.get(i), Some(b'e' | b'E')) {
            i += 1;
            if matches!(unsigned.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let start = i;
            while unsigned.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return None;
            }
        }
        if i != unsigned.len() {
            return None;
        }
    }
    s.parse::<::bson::Decimal128>().ok().map(|d| d.bytes())
}

/// The `$numberDecimal` text of a decimal128.
pub(crate) fn decimal_string(bytes: [u8; 16]) -> String {
    ::bson::Decimal128::from_bytes(bytes).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_round_trip_and_forms() {
        let cases: &[(&str, Option<i64>)] = &[
            ("1970-01-01T00:00:00Z", Some(0)),
            ("1970-01-01T00:00:00.000Z", Some(0)),
            ("1970-01-01T00:00:00.5Z", Some(500)),
            ("1970-01-01T00:00:00.123456789Z", Some(123)),
            ("2024-01-01T01:00:00+01:00", Some(1_704_067_200_000)),
            ("2024-01-01T01:00:00+0100", Some(1_704_067_200_000)),
            ("2023-12-31T23:00:00-01:00", Some(1_704_067_200_000)),
            ("9999-12-31T23:59:59.999Z", Some(MAX_ISO_MS)),
            ("1960-01-01T00:00:00Z", Some(-315_619_200_000)),
            ("2024-02-30T00:00:00Z", None),
            ("2023-02-29T00:00:00Z", None),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("2024-01-01T24:00:00Z", None),
            ("2024-01-01T00:00:60Z", None),
            ("2024-01-01T00:00:00", None),
            ("2024-01-01T00:00:00.Z", None),
            ("2024-01-01 00:00:00Z", None),
            ("2024-01-01T00:00:00+1:00", None),
            ("2024-1-01T00:00:00Z", None),
            ("", None),
            ("2024-01-01T00:00:00Zx", None),
        ];
        for (s, want) in cases {
            assert_eq!(parse_iso(s), *want, "{s}");
        }
        for ms in [
            0,
            1,
            999,
            1000,
            1_704_067_200_000,
            951_782_400_123,
            MAX_ISO_MS,
        ] {
            assert_eq!(parse_iso(&format_iso(ms)), Some(ms));
        }
        assert_eq!(format_iso(1_704_067_200_000), "2024-01-01T00:00:00Z");
        assert_eq!(format_iso(1_704_067_200_050), "2024-01-01T00:00:00.050Z");
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_int::<i32>("-12"), Some(-12));
        for bad in ["", "-", "+1", "1.0", " 1", "2147483648", "abc", "1e3"] {
            assert_eq!(parse_int::<i32>(bad), None, "{bad}");
        }
        assert_eq!(
            parse_double("-0.0").map(f64::to_bits),
            Some((-0.0f64).to_bits())
        );
        assert_eq!(
            parse_double("1.2345678921232E+18"),
            Some(1.234_567_892_123_2e18)
        );
        for bad in [
            "", "-", ".5", "1.", "1e", "inf", "-NaN", "1e400", "0x10", "1.0 ",
        ] {
            assert_eq!(parse_double(bad), None, "{bad}");
        }
        for (s, want) in [
            ("1.50", "1.50"),
            ("1E+3", "1E+3"),
            ("1000", "1000"),
            ("-0", "-0"),
            ("inf", "Infinity"),
            ("-Infinity", "-Infinity"),
            ("nan", "NaN"),
            ("-NaN", "NaN"),
            (".5", "0.5"),
            ("5.", "5"),
            ("+1", "1"),
            ("1e-7", "1E-7"),
        ] {
            let d = parse_decimal(s).map(decimal_string);
            assert_eq!(d.as_deref(), Some(want), "{s}");
        }
        for bad in [
            "",
            ".",
            "-",
            "E02",
            "e",
            ".e",
            "1e",
            "1..2",
            "1.2.3",
            "--1",
            "sNaN",
            "Na",
            "1abc",
            " 1",
            "1 ",
            "1e+",
            "12345678901234567890123456789012345",
        ] {
            assert_eq!(parse_decimal(bad), None, "{bad}");
        }
    }

    #[test]
    fn hex_and_uuid() {
        assert_eq!(parse_hex::<2>("aBcD"), Some([0xab, 0xcd]));
        assert_eq!(parse_hex::<2>("abc"), None);
        assert_eq!(parse_hex::<2>("abcg"), None);
        assert_eq!(parse_subtype("4"), Some(4));
        assert_eq!(parse_subtype("80"), Some(0x80));
        assert_eq!(parse_subtype("080"), None);
        assert_eq!(parse_subtype(""), None);
        let u = parse_uuid("c8edabc3-f738-4ca3-b68d-ab92a91478a3");
        assert_eq!(u, parse_uuid("c8edabc3f7384ca3b68dab92a91478a3"));
        assert!(u.is_some());
        assert_eq!(parse_uuid("c8edabc3-f738-4ca3-b68d-ab92a91478a"), None);
        assert_eq!(parse_uuid("c8edabc3xf738-4ca3-b68d-ab92a91478a3"), None);
    }
}
