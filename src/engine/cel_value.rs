//! Turning JSON caveat context into CEL values, typed by the caveat's declared parameters,
//! and the helpers SpiceDB's caveat environment adds to CEL (`in_cidr`, `isSubtreeOf`,
//! Go-style durations).
//!
//! Each declared type takes the JSON form SpiceDB takes for it: `timestamp` an RFC 3339
//! string (a CEL timestamp, in UTC so that `getHours()` and friends read UTC as in SpiceDB),
//! `duration` a Go duration string such as `"1h30m"` (a CEL duration), `bytes` a base64
//! string (standard alphabet, padded, as Go's `base64.StdEncoding`), `ipaddress` an IP
//! address string (kept in its canonical text form; the schema's type check lets only
//! `in_cidr` and comparisons with other `ipaddress` values see it). `uint` values become CEL
//! `int`s, because SpiceDB declares `uint` parameters with CEL type `int` and the schema
//! check types them so.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use base64::Engine as _;
use cel::objects::{Key, Map};
use cel::Value;
use chrono::{DateTime, Datelike, FixedOffset, Utc};
use serde_json::Value as Json;

use crate::schema::CaveatType;

/// Why a JSON value does not fit a declared caveat type: a readable description, with the
/// path inside the value when the mismatch is nested (`[2]`, `.key`).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Mismatch(pub(super) String);

/// The text SpiceDB uses for a caveat type: `int`, `list<string>`, ...
pub(super) fn type_name(ty: &CaveatType) -> String {
    match ty {
        CaveatType::Any => "any".to_string(),
        CaveatType::Bool => "bool".to_string(),
        CaveatType::String => "string".to_string(),
        CaveatType::Int => "int".to_string(),
        CaveatType::Uint => "uint".to_string(),
        CaveatType::Double => "double".to_string(),
        CaveatType::Bytes => "bytes".to_string(),
        CaveatType::Duration => "duration".to_string(),
        CaveatType::Timestamp => "timestamp".to_string(),
        CaveatType::IpAddress => "ipaddress".to_string(),
        CaveatType::List(inner) => format!("list<{}>", type_name(inner)),
        CaveatType::Map(inner) => format!("map<{}>", type_name(inner)),
    }
}

/// Converts `value` to the CEL value of type `ty`.
pub(super) fn to_cel(ty: &CaveatType, value: &Json) -> Result<Value, Mismatch> {
    let got = || Mismatch(format!("got `{}`", short(value)));
    match ty {
        CaveatType::Any => Ok(natural(value)),
        CaveatType::Bool => value.as_bool().map(Value::Bool).ok_or_else(got),
        CaveatType::String => value
            .as_str()
            .map(|s| Value::String(Arc::new(s.to_string())))
            .ok_or_else(got),
        CaveatType::Int => as_int(value).map(Value::Int).ok_or_else(got),
        CaveatType::Uint => {
            let n = as_uint(value).ok_or_else(got)?;
            i64::try_from(n).map(Value::Int).map_err(|_| {
                Mismatch(format!(
                    "got `{}`: above {} (uint parameters are CEL ints, as in SpiceDB)",
                    short(value),
                    i64::MAX
                ))
            })
        }
        CaveatType::Double => value.as_f64().map(Value::Float).ok_or_else(got),
        CaveatType::Bytes => {
            let text = value.as_str().ok_or_else(got)?;
            decode_base64(text)
                .map(|bytes| Value::Bytes(Arc::new(bytes)))
                .map_err(|reason| Mismatch(format!("got `{}`: {reason}", short(value))))
        }
        CaveatType::Duration => {
            let text = value.as_str().ok_or_else(got)?;
            parse_duration(text)
                .map(|nanos| Value::Duration(chrono::Duration::nanoseconds(nanos)))
                .map_err(|reason| Mismatch(format!("got `{}`: {reason}", short(value))))
        }
        CaveatType::Timestamp => {
            let text = value.as_str().ok_or_else(got)?;
            parse_timestamp(text)
                .map(Value::Timestamp)
                .map_err(|reason| Mismatch(format!("got `{}`: {reason}", short(value))))
        }
        CaveatType::IpAddress => {
            let text = value.as_str().ok_or_else(got)?;
            let ip = text
                .parse::<IpAddr>()
                .map_err(|_| Mismatch(format!("got `{}`: not an IP address", short(value))))?;
            Ok(Value::String(Arc::new(ip.to_string())))
        }
        CaveatType::List(inner) => {
            let items = value.as_array().ok_or_else(got)?;
            let mut out = Vec::with_capacity(items.len());
            for (index, item) in items.iter().enumerate() {
                let converted = to_cel(inner, item)
                    .map_err(|Mismatch(reason)| Mismatch(format!("element {index}: {reason}")))?;
                out.push(converted);
            }
            Ok(Value::List(Arc::new(out)))
        }
        CaveatType::Map(inner) => {
            let entries = value.as_object().ok_or_else(got)?;
            let mut out = HashMap::with_capacity(entries.len());
            for (key, item) in entries {
                let converted = to_cel(inner, item)
                    .map_err(|Mismatch(reason)| Mismatch(format!("key `{key}`: {reason}")))?;
                out.insert(Key::String(Arc::new(key.clone())), converted);
            }
            Ok(Value::Map(Map { map: Arc::new(out) }))
        }
    }
}

/// The JSON value as CEL sees it without a declared type.
fn natural(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::String(Arc::new(s.clone())),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(natural).collect())),
        Json::Object(entries) => Value::Map(Map {
            map: Arc::new(
                entries
                    .iter()
                    .map(|(k, v)| (Key::String(Arc::new(k.clone())), natural(v)))
                    .collect(),
            ),
        }),
    }
}

/// A JSON integer, or a float with no fractional part that fits `i64`.
fn as_int(value: &Json) -> Option<i64> {
    if let Some(i) = value.as_i64() {
        return Some(i);
    }
    let f = value.as_f64()?;
    // 2^63 is exactly representable; anything below it and integral fits.
    (f.fract() == 0.0 && (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f))
        .then_some(f as i64)
}

/// A non-negative JSON integer, or a non-negative integral float that fits `u64`.
fn as_uint(value: &Json) -> Option<u64> {
    if let Some(u) = value.as_u64() {
        return Some(u);
    }
    if value.is_i64() {
        return None;
    }
    let f = value.as_f64()?;
    (f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f)).then_some(f as u64)
}

/// The value's JSON text, cut short for error messages.
fn short(value: &Json) -> String {
    const LIMIT: usize = 64;
    let text = value.to_string();
    if text.len() <= LIMIT {
        return text;
    }
    let mut end = LIMIT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Parses an RFC 3339 timestamp, as an instant in UTC (years 1 to 9999, CEL's range).
pub(super) fn parse_timestamp(text: &str) -> Result<DateTime<FixedOffset>, String> {
    let parsed = DateTime::parse_from_rfc3339(text)
        .map_err(|e| format!("not an RFC 3339 timestamp ({e})"))?;
    let utc = parsed.with_timezone(&Utc);
    if !(1..=9999).contains(&utc.year()) {
        return Err("timestamp out of range (years 1 to 9999)".to_string());
    }
    Ok(utc.fixed_offset())
}

/// Decodes standard, padded base64 as Go's `base64.StdEncoding` does (which skips `\r` and
/// `\n`): SpiceDB's form for a `bytes` value.
pub(super) fn decode_base64(text: &str) -> Result<Vec<u8>, String> {
    let compact: String = text.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|e| format!("not base64 ({e})"))
}

/// Parses a Go duration (`"1h30m"`, `"-1.5s"`, `"300ms"`, `"0"`) into nanoseconds.
pub(super) fn parse_duration(text: &str) -> Result<i64, String> {
    let invalid = || format!("not a duration (expected e.g. `1h30m` or `10s`): `{text}`");
    let (negative, mut rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(rest.len());
        let number = &rest[..digits_end];
        rest = &rest[digits_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_end];
        rest = &rest[unit_end..];
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return Err(invalid()),
        };
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid());
        }
        let whole: i128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut part = whole.checked_mul(scale).ok_or_else(invalid)?;
        let mut divisor: i128 = 1;
        let mut fraction_value: i128 = 0;
        for digit in fraction.bytes().take(18) {
            fraction_value = fraction_value * 10 + i128::from(digit - b'0');
            divisor *= 10;
        }
        part += fraction_value * scale / divisor;
        total = total.checked_add(part).ok_or_else(invalid)?;
        if total > i128::from(i64::MAX) {
            return Err(invalid());
        }
    }
    let signed = if negative { -total } else { total };
    i64::try_from(signed).map_err(|_| invalid())
}

/// Whether `ip` lies inside `cidr` (`10.0.0.0/8`, `2001:db8::/32`; a bare address is a /32 or
/// /128). An IPv4 address never matches an IPv6 network or the other way round.
pub(super) fn in_cidr(ip: &str, cidr: &str) -> Result<bool, String> {
    let ip: IpAddr = ip
        .parse()
        .map_err(|_| format!("`{ip}` is not an IP address"))?;
    let (network, prefix) = match cidr.split_once('/') {
        Some((network, prefix)) => (network, Some(prefix)),
        None => (cidr, None),
    };
    let network: IpAddr = network
        .parse()
        .map_err(|_| format!("`{cidr}` is not a CIDR network"))?;
    let bits: u32 = if network.is_ipv4() { 32 } else { 128 };
    let prefix: u32 = match prefix {
        None => bits,
        Some(text) => text
            .parse()
            .ok()
            .filter(|p| *p <= bits)
            .ok_or_else(|| format!("`{cidr}` is not a CIDR network"))?,
    };
    let (address, network) = match (ip, network) {
        (IpAddr::V4(a), IpAddr::V4(n)) => (
            u128::from(u32::from(a)) << 96,
            u128::from(u32::from(n)) << 96,
        ),
        (IpAddr::V6(a), IpAddr::V6(n)) => (u128::from(a), u128::from(n)),
        _ => return Ok(false),
    };
    if prefix == 0 {
        return Ok(true);
    }
    let mask = u128::MAX << (128 - prefix);
    Ok(address & mask == network & mask)
}

/// SpiceDB's `isSubtreeOf`: every key of `sub` is in `of`, with an equal value, or, where the
/// value is a map, a map of which it is again a subtree.
pub(super) fn is_subtree(sub: &Map, of: &Map) -> bool {
    sub.map
        .iter()
        .all(|(key, value)| match (value, of.map.get(key)) {
            (_, None) => false,
            (Value::Map(inner), Some(Value::Map(other))) => is_subtree(inner, other),
            (Value::Map(_), Some(_)) => false,
            (value, Some(other)) => value == other,
        })
}
