//! A small JSON value type that reads and writes JSON exactly as Python's `json` module does.
//!
//! `streaming` writes `index.json`, the config block inside every shard and `json` columns with
//! Python's `json.dumps`: separators `", "` and `": "`, `ensure_ascii=True` (every character outside
//! printable ASCII becomes `\uXXXX` with lowercase hex, astral characters as surrogate pairs),
//! floats as `repr(float)` (`1.0`, `1e+16`, `NaN`, `Infinity`), integers of any size, and keys in
//! insertion order unless `sort_keys=True`. [`Json`] keeps object keys in insertion order and
//! integers of any size, and [`Json::to_python`] reproduces that output byte for byte; the parser
//! accepts what `json.loads` accepts (including `NaN`, `Infinity`, `-Infinity`), except lone
//! UTF-16 surrogates, which a Rust `String` cannot hold.

use crate::error::{MdsError, Result};

/// A JSON value with ordered objects and arbitrary-size integers.
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// An integer outside `i64`, as its canonical decimal text (optional `-`, no leading zeros).
    BigInt(String),
    /// A float (written as Python's `repr`; `NaN`, `Infinity`, `-Infinity` for non-finite values).
    Float(f64),
    /// A string.
    Str(String),
    /// An array.
    Array(Vec<Json>),
    /// An object; keys keep their order (a repeated key keeps its first position and last value,
    /// as a Python `dict` does).
    Object(Vec<(String, Json)>),
}

/// Deepest nesting the parser accepts (Python's own limit is about 1000 frames).
const MAX_DEPTH: usize = 512;

impl Json {
    /// Parses JSON text as `json.loads` does.
    pub fn parse(text: &str) -> Result<Json> {
        let mut p = Parser { s: text.as_bytes(), i: 0 };
        p.ws();
        let v = p.value(0)?;
        p.ws();
        if p.i != p.s.len() {
            return Err(p.err("extra data after the JSON value"));
        }
        Ok(v)
    }

    /// Parses JSON from bytes that must be UTF-8.
    pub fn parse_bytes(data: &[u8]) -> Result<Json> {
        let text = std::str::from_utf8(data)
            .map_err(|e| MdsError::Json { offset: e.valid_up_to(), reason: "not UTF-8".into() })?;
        Json::parse(text)
    }

    /// Serialises as Python's `json.dumps(value, sort_keys=sort_keys)` with default options.
    pub fn to_python(&self, sort_keys: bool) -> String {
        let mut out = String::new();
        self.write_python(&mut out, sort_keys);
        out
    }

    fn write_python(&self, out: &mut String, sort_keys: bool) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(true) => out.push_str("true"),
            Json::Bool(false) => out.push_str("false"),
            Json::Int(i) => out.push_str(&i.to_string()),
            Json::BigInt(s) => out.push_str(s),
            Json::Float(f) => {
                if f.is_nan() {
                    out.push_str("NaN");
                } else if f.is_infinite() {
                    out.push_str(if *f > 0.0 { "Infinity" } else { "-Infinity" });
                } else {
                    out.push_str(&py_float_repr(*f));
                }
            }
            Json::Str(s) => write_py_string(out, s),
            Json::Array(items) => {
                out.push('[');
                for (k, item) in items.iter().enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    item.write_python(out, sort_keys);
                }
                out.push(']');
            }
            Json::Object(members) => {
                out.push('{');
                let mut refs: Vec<&(String, Json)> = members.iter().collect();
                if sort_keys {
                    refs.sort_by(|a, b| a.0.cmp(&b.0));
                }
                for (k, (key, value)) in refs.into_iter().enumerate() {
                    if k > 0 {
                        out.push_str(", ");
                    }
                    write_py_string(out, key);
                    out.push_str(": ");
                    value.write_python(out, sort_keys);
                }
                out.push('}');
            }
        }
    }

    /// The member `key` of an object (`None` for a missing key or a non-object).
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// Mutable access to the member `key` of an object.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Json> {
        match self {
            Json::Object(m) => m.iter_mut().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is an integer that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Json::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The integer, if this is a non-negative integer that fits in `u64`.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Json::Int(i) => u64::try_from(*i).ok(),
            Json::BigInt(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The items, if this is an array.
    pub fn as_array(&self) -> Option<&[Json]> {
        match self {
            Json::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Python truthiness: `null`, `false`, `0`, `0.0`, `""`, `[]` and `{}` are false.
    pub fn is_truthy(&self) -> bool {
        match self {
            Json::Null => false,
            Json::Bool(b) => *b,
            Json::Int(i) => *i != 0,
            Json::BigInt(_) => true,
            Json::Float(f) => *f != 0.0,
            Json::Str(s) => !s.is_empty(),
            Json::Array(a) => !a.is_empty(),
            Json::Object(o) => !o.is_empty(),
        }
    }

    /// An integer from its decimal text, as `Int` when it fits in `i64`, else `BigInt`.
    /// The text must be an optional `-` followed by ASCII digits.
    pub(crate) fn int_from_digits(text: &str) -> Option<Json> {
        let (neg, digits) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        if let Ok(i) = text.parse::<i64>() {
            return Some(Json::Int(i));
        }
        let trimmed = digits.trim_start_matches('0');
        let trimmed = if trimmed.is_empty() { "0" } else { trimmed };
        if trimmed == "0" {
            return Some(Json::Int(0));
        }
        Some(Json::BigInt(if neg { format!("-{trimmed}") } else { trimmed.to_string() }))
    }
}

impl From<&str> for Json {
    fn from(s: &str) -> Self {
        Json::Str(s.to_string())
    }
}

impl From<String> for Json {
    fn from(s: String) -> Self {
        Json::Str(s)
    }
}

impl From<i64> for Json {
    fn from(i: i64) -> Self {
        Json::Int(i)
    }
}

impl From<u64> for Json {
    fn from(u: u64) -> Self {
        match i64::try_from(u) {
            Ok(i) => Json::Int(i),
            Err(_) => Json::BigInt(u.to_string()),
        }
    }
}

impl From<f64> for Json {
    fn from(f: f64) -> Self {
        Json::Float(f)
    }
}

impl From<bool> for Json {
    fn from(b: bool) -> Self {
        Json::Bool(b)
    }
}

/// Writes `s` as a JSON string literal with Python's `ensure_ascii=True` escaping.
fn write_py_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
}

/// Python's `repr(float)` for a finite or non-finite `f64` (`inf`, `-inf`, `nan` for the latter).
///
/// Python prints the shortest digit string that round-trips (the same digits Rust's `{:e}` gives),
/// in fixed notation when the decimal exponent `e` (as in `d.ddd × 10^e`) satisfies `-4 <= e < 16`,
/// with `.0` appended to integral values, and in scientific notation otherwise, with a signed
/// exponent of at least two digits (`1e+16`, `1.5e-07`).
pub fn py_float_repr(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    // The shortest round-tripping length from Rust's shortest formatting, then the digits of
    // that length correctly rounded (ties to even), as Python's dtoa picks the closest of the
    // shortest candidates: `{:e}` alone may pick the other one of a tie.
    let shortest = format!("{:e}", x.abs());
    let len = shortest.split_once('e').map_or(1, |(m, _)| m.chars().filter(char::is_ascii_digit).count());
    let sci = format!("{:.*e}", len.saturating_sub(1), x.abs());
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let sign = if x.is_sign_negative() { "-" } else { "" };
    let n = digits.len() as i32;
    let body = if (-4..16).contains(&exp) {
        if exp < 0 {
            format!("0.{}{}", "0".repeat((-exp - 1) as usize), digits)
        } else if exp + 1 >= n {
            format!("{}{}.0", digits, "0".repeat((exp + 1 - n) as usize))
        } else {
            let point = (exp + 1) as usize;
            format!("{}.{}", &digits[..point], &digits[point..])
        }
    } else {
        let mut m = digits[..1].to_string();
        if n > 1 {
            m.push('.');
            m.push_str(&digits[1..]);
        }
        format!("{}e{}{:02}", m, if exp < 0 { '-' } else { '+' }, exp.abs())
    };
    format!("{sign}{body}")
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn err(&self, reason: &str) -> MdsError {
        MdsError::Json { offset: self.i, reason: reason.to_string() }
    }

    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, lit: &str) -> bool {
        if self.s[self.i..].starts_with(lit.as_bytes()) {
            self.i += lit.len();
            true
        } else {
            false
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json> {
        if depth > MAX_DEPTH {
            return Err(self.err("nesting too deep"));
        }
        let Some(&c) = self.s.get(self.i) else {
            return Err(self.err("expected a value"));
        };
        match c {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => Ok(Json::Str(self.string()?)),
            b'n' if self.eat("null") => Ok(Json::Null),
            b't' if self.eat("true") => Ok(Json::Bool(true)),
            b'f' if self.eat("false") => Ok(Json::Bool(false)),
            b'N' if self.eat("NaN") => Ok(Json::Float(f64::NAN)),
            b'I' if self.eat("Infinity") => Ok(Json::Float(f64::INFINITY)),
            b'-' if self.eat("-Infinity") => Ok(Json::Float(f64::NEG_INFINITY)),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(self.err("expected a value")),
        }
    }

    fn object(&mut self, depth: usize) -> Result<Json> {
        self.i += 1;
        let mut members: Vec<(String, Json)> = Vec::new();
        self.ws();
        if self.eat("}") {
            return Ok(Json::Object(members));
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a property name in double quotes"));
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(":") {
                return Err(self.err("expected ':'"));
            }
            self.ws();
            let value = self.value(depth + 1)?;
            match members.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => members.push((key, value)),
            }
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("}") {
                return Ok(Json::Object(members));
            }
            return Err(self.err("expected ',' or '}'"));
        }
    }

    fn array(&mut self, depth: usize) -> Result<Json> {
        self.i += 1;
        let mut items = Vec::new();
        self.ws();
        if self.eat("]") {
            return Ok(Json::Array(items));
        }
        loop {
            self.ws();
            items.push(self.value(depth + 1)?);
            self.ws();
            if self.eat(",") {
                continue;
            }
            if self.eat("]") {
                return Ok(Json::Array(items));
            }
            return Err(self.err("expected ',' or ']'"));
        }
    }

    fn hex4(&mut self) -> Result<u32> {
        let h = self.s.get(self.i..self.i + 4).ok_or_else(|| self.err("truncated \\u escape"))?;
        let text = std::str::from_utf8(h).map_err(|_| self.err("invalid \\u escape"))?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(self.err("invalid \\u escape"));
        }
        let v = u32::from_str_radix(text, 16).map_err(|_| self.err("invalid \\u escape"))?;
        self.i += 4;
        Ok(v)
    }

    fn string(&mut self) -> Result<String> {
        self.i += 1;
        let mut out = String::new();
        loop {
            let start = self.i;
            while self.i < self.s.len() && !matches!(self.s[self.i], b'"' | b'\\') && self.s[self.i] >= 0x20 {
                self.i += 1;
            }
            let chunk = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("invalid UTF-8"))?;
            out.push_str(chunk);
            let Some(&c) = self.s.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let u = self.hex4()?;
                            let code = if (0xd800..0xdc00).contains(&u) && self.eat("\\u") {
                                let lo = self.hex4()?;
                                if !(0xdc00..0xe000).contains(&lo) {
                                    return Err(self.err("lone UTF-16 surrogate"));
                                }
                                0x10000 + ((u - 0xd800) << 10) + (lo - 0xdc00)
                            } else {
                                u
                            };
                            let ch = char::from_u32(code).ok_or_else(|| self.err("lone UTF-16 surrogate"))?;
                            out.push(ch);
                        }
                        _ => return Err(self.err("invalid escape")),
                    }
                }
                _ => return Err(self.err("control character in string")),
            }
        }
    }

    fn number(&mut self) -> Result<Json> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        let digits_start = self.i;
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
            }
            _ => return Err(self.err("expected a value")),
        }
        let int_end = self.i;
        let mut is_float = false;
        if self.s.get(self.i) == Some(&b'.') && self.s.get(self.i + 1).is_some_and(u8::is_ascii_digit) {
            is_float = true;
            self.i += 1;
            while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
        }
        if matches!(self.s.get(self.i), Some(b'e' | b'E')) {
            let save = self.i;
            self.i += 1;
            if matches!(self.s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            if self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                is_float = true;
                while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
                    self.i += 1;
                }
            } else {
                // As Python's scanner: an `e` without digits is not part of the number.
                self.i = save;
            }
        }
        let text = std::str::from_utf8(&self.s[start..self.i]).map_err(|_| self.err("invalid number"))?;
        if is_float {
            let f: f64 = text.parse().map_err(|_| self.err("invalid number"))?;
            return Ok(Json::Float(f));
        }
        debug_assert!(int_end > digits_start);
        Json::int_from_digits(text).ok_or_else(|| self.err("invalid number"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn float_repr_matches_python() {
        let cases = [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1.0, "1.0"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (123456789012345680.0, "1.2345678901234568e+17"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (1.5e300, "1.5e+300"),
            (5e-324, "5e-324"),
            (f64::MAX, "1.7976931348623157e+308"),
            (2.5, "2.5"),
            (-1234.5, "-1234.5"),
            (1e22, "1e+22"),
            (f64::INFINITY, "inf"),
        ];
        for (x, want) in cases {
            assert_eq!(py_float_repr(x), want, "{x:e}");
        }
    }

    #[test]
    fn python_dumps_layout() {
        let v = Json::parse(r#"{"b": [1, 2.0, "é\u0001\ud83d\ude00\u007f"], "a": null, "c": {"x": true}}"#).unwrap();
        assert_eq!(
            v.to_python(false),
            r#"{"b": [1, 2.0, "\u00e9\u0001\ud83d\ude00\u007f"], "a": null, "c": {"x": true}}"#
        );
        assert_eq!(
            v.to_python(true),
            r#"{"a": null, "b": [1, 2.0, "\u00e9\u0001\ud83d\ude00\u007f"], "c": {"x": true}}"#
        );
    }

    #[test]
    fn parse_specials_and_big_ints() {
        let v = Json::parse("[NaN, Infinity, -Infinity, 123456789012345678901234567890, -0, 1E5]").unwrap();
        assert_eq!(v.to_python(false), "[NaN, Infinity, -Infinity, 123456789012345678901234567890, 0, 100000.0]");
        assert!(Json::parse("[1,]").is_err());
        assert!(Json::parse("01").is_err());
        assert!(Json::parse("\"\\ud800\"").is_err());
        assert!(Json::parse("{\"a\": 1} x").is_err());
        let dup = Json::parse(r#"{"a": 1, "b": 2, "a": 3}"#).unwrap();
        assert_eq!(dup.to_python(false), r#"{"a": 3, "b": 2}"#);
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let text = "[".repeat(100_000);
        assert!(Json::parse(&text).is_err());
    }
}
