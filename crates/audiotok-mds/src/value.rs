//! Sample values and their byte encodings.
//!
//! A [`Sample`] maps column names to [`Value`]s. Encoding follows `streaming`'s coders:
//! scalars with NumPy's little-endian layout, text as UTF-8, `str_float` as Python's `repr`,
//! `str_decimal` as `str(Decimal)`, `json` as `json.dumps`, and `ndarray` with `streaming`'s
//! dtype byte and right-sized shape header when they are not static. As in `streaming`,
//! a [`Value::Bytes`] given for a column of any other encoding is taken as already encoded and
//! stored as is (fixed-size columns still check its length).

use std::collections::BTreeMap;

use half::f16;

use crate::encoding::{DType, Encoding};
use crate::json::{py_float_repr, Json};

/// One sample: column name → value. Columns are kept sorted by name, as MDS stores them.
pub type Sample = BTreeMap<String, Value>;

/// A decoded (or to-be-encoded) column value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `bytes` (or pre-encoded bytes for any column when writing).
    Bytes(Vec<u8>),
    /// `str`.
    Str(String),
    /// Signed integers: `int`, `int8` … `int64`, and `str_int` values that fit in `i64`.
    Int(i64),
    /// Unsigned integers: `uint8` … `uint64`, and `str_int` values above `i64::MAX` that fit in `u64`.
    UInt(u64),
    /// Floats: `float16`/`float32`/`float64` (widened exactly) and `str_float`.
    Float(f64),
    /// A `str_int` value outside `i64` and `u64`, as canonical decimal text.
    BigInt(String),
    /// A `str_decimal` value as Python's `str(Decimal)` text (canonicalised when written).
    Decimal(String),
    /// A `json` value.
    Json(Json),
    /// An `ndarray` value.
    NdArray(NdArray),
}

/// An n-dimensional array: dtype, shape and the values' little-endian bytes in C (row-major) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NdArray {
    dtype: DType,
    shape: Vec<usize>,
    data: Vec<u8>,
}

/// Why an [`NdArray`] could not be built or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NdArrayError(String);

/// Rust element types that map to an [`NdArray`] dtype.
pub trait Element: Copy {
    /// The dtype.
    const DTYPE: DType;
    /// Appends the little-endian bytes of `self`.
    fn put(self, out: &mut Vec<u8>);
    /// Reads one element from exactly `Self::DTYPE.size()` little-endian bytes.
    fn get(bytes: &[u8]) -> Self;
}

macro_rules! element {
    ($t:ty, $d:expr, $n:expr) => {
        impl Element for $t {
            const DTYPE: DType = $d;
            fn put(self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_le_bytes());
            }
            fn get(bytes: &[u8]) -> Self {
                let mut b = [0u8; $n];
                b.copy_from_slice(&bytes[..$n]);
                <$t>::from_le_bytes(b)
            }
        }
    };
}

element!(u8, DType::U8, 1);
element!(i8, DType::I8, 1);
element!(u16, DType::U16, 2);
element!(i16, DType::I16, 2);
element!(f16, DType::F16, 2);
element!(u32, DType::U32, 4);
element!(i32, DType::I32, 4);
element!(f32, DType::F32, 4);
element!(u64, DType::U64, 8);
element!(i64, DType::I64, 8);
element!(f64, DType::F64, 8);

fn element_count(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d))
}

impl NdArray {
    /// An array from raw little-endian bytes; `data.len()` must equal `prod(shape) * dtype.size()`.
    pub fn from_bytes(dtype: DType, shape: Vec<usize>, data: Vec<u8>) -> Result<NdArray, NdArrayError> {
        let want = element_count(&shape)
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| NdArrayError(format!("shape {shape:?} overflows")))?;
        if want != data.len() {
            return Err(NdArrayError(format!(
                "{} bytes do not fill shape {shape:?} of {dtype} ({want} bytes)",
                data.len()
            )));
        }
        Ok(NdArray { dtype, shape, data })
    }

    /// An array from typed values; `values.len()` must equal `prod(shape)`.
    pub fn from_slice<T: Element>(shape: Vec<usize>, values: &[T]) -> Result<NdArray, NdArrayError> {
        let mut data = Vec::with_capacity(values.len() * T::DTYPE.size());
        for &v in values {
            v.put(&mut data);
        }
        NdArray::from_bytes(T::DTYPE, shape, data)
    }

    /// A one-dimensional array of `values`.
    pub fn from_vec<T: Element>(values: &[T]) -> NdArray {
        let mut data = Vec::with_capacity(values.len() * T::DTYPE.size());
        for &v in values {
            v.put(&mut data);
        }
        NdArray { dtype: T::DTYPE, shape: vec![values.len()], data }
    }

    /// The values, if `T` is this array's element type.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>, NdArrayError> {
        if T::DTYPE != self.dtype {
            return Err(NdArrayError(format!("array is {}, not {}", self.dtype, T::DTYPE)));
        }
        Ok(self.data.chunks_exact(self.dtype.size()).map(T::get).collect())
    }

    /// The dtype.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values' little-endian bytes, row-major.
    pub fn data(&self) -> &[u8] {
        &self.data
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.data.len() / self.dtype.size()
    }

    /// Whether the array has no elements.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

impl From<NdArray> for Value {
    fn from(a: NdArray) -> Self {
        Value::NdArray(a)
    }
}

impl From<Json> for Value {
    fn from(j: Json) -> Self {
        Value::Json(j)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl From<Vec<u8>> for Value {
    fn from(b: Vec<u8>) -> Self {
        Value::Bytes(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Self {
        Value::Int(i)
    }
}

impl From<u64> for Value {
    fn from(u: u64) -> Self {
        Value::UInt(u)
    }
}

impl From<f64> for Value {
    fn from(f: f64) -> Self {
        Value::Float(f)
    }
}

/// Encodes `value` for `encoding`; the error is a reason for [`crate::MdsError::Encode`].
pub(crate) fn encode_value(encoding: &Encoding, value: &Value) -> Result<Vec<u8>, String> {
    if let Value::Bytes(b) = value {
        // streaming's mds_encode passes bytes through for every encoding.
        return Ok(b.clone());
    }
    let mismatch = || format!("cannot encode a {} value", value_kind(value));
    match encoding {
        Encoding::Bytes | Encoding::Raw(_) => Err(mismatch()),
        Encoding::Str => match value {
            Value::Str(s) => Ok(s.as_bytes().to_vec()),
            _ => Err(mismatch()),
        },
        Encoding::Int => encode_scalar(DType::I64, value),
        Encoding::Scalar(d) => encode_scalar(*d, value),
        Encoding::StrInt => match value {
            Value::Int(i) => Ok(i.to_string().into_bytes()),
            Value::UInt(u) => Ok(u.to_string().into_bytes()),
            Value::BigInt(s) => match Json::int_from_digits(s) {
                Some(Json::Int(i)) => Ok(i.to_string().into_bytes()),
                Some(Json::BigInt(t)) => Ok(t.into_bytes()),
                _ => Err(format!("`{s}` is not an integer")),
            },
            _ => Err(mismatch()),
        },
        Encoding::StrFloat => match value {
            Value::Float(f) => Ok(py_float_repr(*f).into_bytes()),
            _ => Err(mismatch()),
        },
        Encoding::StrDecimal => match value {
            Value::Decimal(s) => {
                py_decimal_str(s).map(String::into_bytes).ok_or_else(|| format!("`{s}` is not a decimal"))
            }
            _ => Err(mismatch()),
        },
        Encoding::Json => match value {
            Value::Json(j) => Ok(j.to_python(false).into_bytes()),
            _ => Err(mismatch()),
        },
        Encoding::NdArray { dtype, shape } => match value {
            Value::NdArray(a) => encode_ndarray(*dtype, shape.as_deref(), a),
            _ => Err(mismatch()),
        },
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Bytes(_) => "bytes",
        Value::Str(_) => "str",
        Value::Int(_) => "int",
        Value::UInt(_) => "uint",
        Value::Float(_) => "float",
        Value::BigInt(_) => "big int",
        Value::Decimal(_) => "decimal",
        Value::Json(_) => "json",
        Value::NdArray(_) => "ndarray",
    }
}

fn encode_scalar(d: DType, value: &Value) -> Result<Vec<u8>, String> {
    let out_of_range = || format!("value {} out of range for {d}", value_text(value));
    let int: Option<i128> = match value {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        Value::Float(_) => None,
        _ => return Err(format!("cannot encode a {} value as {d}", value_kind(value))),
    };
    if d.is_float() {
        let x = match (value, int) {
            (Value::Float(f), _) => *f,
            (_, Some(i)) => {
                // Only integers that convert exactly, so no double rounding can happen.
                if i.unsigned_abs() > 1u128 << 53 {
                    return Err(format!("integer {i} is not exactly representable as a float"));
                }
                i as f64
            }
            _ => return Err(out_of_range()),
        };
        return Ok(match d {
            DType::F16 => f64_to_f16_bits(x).to_le_bytes().to_vec(),
            DType::F32 => (x as f32).to_le_bytes().to_vec(),
            _ => x.to_le_bytes().to_vec(),
        });
    }
    let Some(i) = int else {
        return Err(format!("cannot encode a float value as {d}"));
    };
    macro_rules! conv {
        ($t:ty) => {
            <$t>::try_from(i).map_err(|_| out_of_range())?.to_le_bytes().to_vec()
        };
    }
    Ok(match d {
        DType::U8 => conv!(u8),
        DType::I8 => conv!(i8),
        DType::U16 => conv!(u16),
        DType::I16 => conv!(i16),
        DType::U32 => conv!(u32),
        DType::I32 => conv!(i32),
        DType::U64 => conv!(u64),
        _ => conv!(i64),
    })
}

/// `float64` → `float16` bits as NumPy converts (`npy_double_to_half`): rounded once, to nearest
/// with ties to even, straight from the double (going through `f32` would round twice), overflow
/// to infinity, NaN keeping the top payload bits.
pub fn f64_to_f16_bits(x: f64) -> u16 {
    let bits = x.to_bits();
    let sign = ((bits >> 48) & 0x8000) as u16;
    let exp = ((bits >> 52) & 0x7ff) as i32;
    let man = bits & ((1u64 << 52) - 1);
    if exp == 0x7ff {
        if man == 0 {
            return sign | 0x7c00;
        }
        let payload = (man >> 42) as u16;
        return sign | 0x7c00 | if payload == 0 { 1 } else { payload };
    }
    if exp == 0 {
        // float64 subnormals are far below half of float16's smallest subnormal.
        return sign;
    }
    let m = man | (1u64 << 52);
    let e = exp - 1023;
    let round = |m: u64, shift: u32| -> u64 {
        if shift >= 64 {
            return 0;
        }
        let q = m >> shift;
        let rem = m & ((1u64 << shift) - 1);
        let half = 1u64 << (shift - 1);
        if rem > half || (rem == half && q & 1 == 1) {
            q + 1
        } else {
            q
        }
    };
    if e >= -14 {
        let mut q = round(m, 42);
        let mut e = e;
        if q == 1 << 11 {
            q >>= 1;
            e += 1;
        }
        if e > 15 {
            return sign | 0x7c00;
        }
        sign | (((e + 15) as u16) << 10) | (q as u16 & 0x3ff)
    } else {
        // Subnormal: units of 2^-24; a carry into 0x400 is the smallest normal, encoded alike.
        sign | round(m, (28 - e) as u32) as u16
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        Value::Float(f) => py_float_repr(*f),
        _ => value_kind(v).to_string(),
    }
}

fn encode_ndarray(dtype: Option<DType>, shape: Option<&[usize]>, a: &NdArray) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(a.data.len() + 2 + 8 * a.shape.len());
    match dtype {
        None => out.push(a.dtype.code()),
        Some(d) if d != a.dtype => return Err(format!("wrong dtype: expected {d}, got {}", a.dtype)),
        Some(_) => {}
    }
    if a.data.is_empty() {
        return Err("cannot encode an array with 0 elements".into());
    }
    match shape {
        None => {
            let ndim = a.shape.len();
            if ndim == 0 {
                return Err("cannot encode a 0-dimensional array (use a scalar encoding)".into());
            }
            if ndim >= 64 {
                return Err(format!("array has too many axes: maximum 63, got {ndim}"));
            }
            let max = a.shape.iter().copied().max().unwrap_or(0) as u64;
            let code: u8 = if max < 1 << 8 {
                0
            } else if max < 1 << 16 {
                1
            } else if max < 1 << 32 {
                2
            } else {
                3
            };
            out.push(((ndim as u8) << 2) | code);
            for &dim in &a.shape {
                let dim = dim as u64;
                match code {
                    0 => out.push(dim as u8),
                    1 => out.extend_from_slice(&(dim as u16).to_le_bytes()),
                    2 => out.extend_from_slice(&(dim as u32).to_le_bytes()),
                    _ => out.extend_from_slice(&dim.to_le_bytes()),
                }
            }
        }
        Some(s) if s != a.shape.as_slice() => {
            return Err(format!("wrong shape: expected {s:?}, got {:?}", a.shape));
        }
        Some(_) => {}
    }
    out.extend_from_slice(&a.data);
    Ok(out)
}

/// Decodes one column's bytes; the error is a reason for [`crate::MdsError::Corrupt`].
pub(crate) fn decode_value(encoding: &Encoding, data: &[u8]) -> Result<Value, String> {
    let text = || std::str::from_utf8(data).map_err(|e| format!("invalid UTF-8 at byte {}", e.valid_up_to()));
    match encoding {
        Encoding::Bytes | Encoding::Raw(_) => Ok(Value::Bytes(data.to_vec())),
        Encoding::Str => Ok(Value::Str(text()?.to_string())),
        Encoding::Int => decode_scalar(DType::I64, data),
        Encoding::Scalar(d) => decode_scalar(*d, data),
        Encoding::StrInt => {
            let t = text()?;
            match py_int_text(t) {
                Some(Json::Int(i)) => Ok(Value::Int(i)),
                Some(Json::BigInt(s)) => Ok(match s.parse::<u64>() {
                    Ok(u) => Value::UInt(u),
                    Err(_) => Value::BigInt(s),
                }),
                _ => Err(format!("`{t}` is not an integer")),
            }
        }
        Encoding::StrFloat => {
            let t = text()?;
            py_float_parse(t).map(Value::Float).ok_or_else(|| format!("`{t}` is not a float"))
        }
        Encoding::StrDecimal => {
            let t = text()?;
            py_decimal_str(t).map(Value::Decimal).ok_or_else(|| format!("`{t}` is not a decimal"))
        }
        Encoding::Json => Json::parse_bytes(data).map(Value::Json).map_err(|e| e.to_string()),
        Encoding::NdArray { dtype, shape } => decode_ndarray(*dtype, shape.as_deref(), data).map(Value::NdArray),
    }
}

fn decode_scalar(d: DType, data: &[u8]) -> Result<Value, String> {
    if data.len() != d.size() {
        return Err(format!("{} bytes for a {d} scalar", data.len()));
    }
    Ok(match d {
        DType::U8 => Value::UInt(u64::from(u8::get(data))),
        DType::I8 => Value::Int(i64::from(i8::get(data))),
        DType::U16 => Value::UInt(u64::from(u16::get(data))),
        DType::I16 => Value::Int(i64::from(i16::get(data))),
        DType::F16 => Value::Float(f16::get(data).to_f64()),
        DType::U32 => Value::UInt(u64::from(u32::get(data))),
        DType::I32 => Value::Int(i64::from(i32::get(data))),
        DType::F32 => Value::Float(f64::from(f32::get(data))),
        DType::U64 => Value::UInt(u64::get(data)),
        DType::I64 => Value::Int(i64::get(data)),
        DType::F64 => Value::Float(f64::get(data)),
    })
}

fn decode_ndarray(dtype: Option<DType>, shape: Option<&[usize]>, data: &[u8]) -> Result<NdArray, String> {
    let mut i = 0;
    let dtype = match dtype {
        Some(d) => d,
        None => {
            let code = *data.first().ok_or("empty ndarray data")?;
            i += 1;
            DType::from_code(code).ok_or_else(|| format!("unknown ndarray dtype code {code}"))?
        }
    };
    let shape = match shape {
        Some(s) => s.to_vec(),
        None => {
            let byte = *data.get(i).ok_or("ndarray data lacks its shape header")?;
            i += 1;
            let ndim = usize::from(byte >> 2);
            let width = 1usize << (byte & 3);
            let end = i + ndim * width;
            let dims = data.get(i..end).ok_or("ndarray shape header truncated")?;
            i = end;
            dims.chunks_exact(width)
                .map(|c| {
                    let mut b = [0u8; 8];
                    b[..width].copy_from_slice(c);
                    usize::try_from(u64::from_le_bytes(b)).map_err(|_| "ndarray dimension too large".to_string())
                })
                .collect::<Result<Vec<usize>, String>>()?
        }
    };
    NdArray::from_bytes(dtype, shape, data[i..].to_vec()).map_err(|e| e.0)
}

/// Python's `int(text)` for the texts `str(int)` produces and the usual variations
/// (surrounding whitespace, a `+` sign, `_` between digits).
fn py_int_text(text: &str) -> Option<Json> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (neg, rest) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    let digits = strip_digit_underscores(rest)?;
    Json::int_from_digits(&if neg { format!("-{digits}") } else { digits })
}

/// Removes `_` separators that stand between two digits; `None` for any other `_` or non-digit.
fn strip_digit_underscores(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.is_empty() {
        return None;
    }
    let mut out = String::with_capacity(b.len());
    for (k, &c) in b.iter().enumerate() {
        if c == b'_' {
            let ok = k > 0 && b[k - 1].is_ascii_digit() && b.get(k + 1).is_some_and(u8::is_ascii_digit);
            if !ok {
                return None;
            }
        } else if c.is_ascii_digit() {
            out.push(char::from(c));
        } else {
            return None;
        }
    }
    Some(out)
}

/// Python's `float(text)` for `repr` output and the usual spellings (`inf`, `Infinity`, `nan`).
fn py_float_parse(text: &str) -> Option<f64> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    if t.is_empty() || t.contains('_') {
        return None;
    }
    t.parse::<f64>().ok()
}

/// Python's `str(Decimal(text))`: the General Decimal Arithmetic to-scientific-string of the
/// parsed number. `None` when `text` is not a decimal Python accepts (underscores unsupported).
pub(crate) fn py_decimal_str(text: &str) -> Option<String> {
    let t = text.trim_matches(|c: char| c.is_ascii_whitespace());
    let (sign, body) = match t.as_bytes().first() {
        Some(b'-') => ("-", &t[1..]),
        Some(b'+') => ("", &t[1..]),
        _ => ("", t),
    };
    let lower = body.to_ascii_lowercase();
    if lower == "inf" || lower == "infinity" {
        return Some(format!("{sign}Infinity"));
    }
    for (prefix, name) in [("snan", "sNaN"), ("nan", "NaN")] {
        if let Some(payload) = lower.strip_prefix(prefix) {
            if !payload.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let p = payload.trim_start_matches('0');
            return Some(format!("{sign}{name}{p}"));
        }
    }
    let (mantissa, exp) = match body.find(['e', 'E']) {
        Some(k) => (&body[..k], Some(&body[k + 1..])),
        None => (body, None),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(k) => (&mantissa[..k], &mantissa[k + 1..]),
        None => (mantissa, ""),
    };
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut exponent: i64 = match exp {
        Some(e) => {
            let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            e.parse().ok()?
        }
        None => 0,
    };
    exponent = exponent.checked_sub(i64::try_from(frac_part.len()).ok()?)?;
    let all = format!("{int_part}{frac_part}");
    let coeff = all.trim_start_matches('0');
    let coeff = if coeff.is_empty() { "0" } else { coeff };
    let n = coeff.len() as i64;
    let adjusted = exponent.saturating_add(n - 1);
    let body = if exponent <= 0 && adjusted >= -6 {
        if exponent == 0 {
            coeff.to_string()
        } else {
            let point = n + exponent;
            if point > 0 {
                format!("{}.{}", &coeff[..point as usize], &coeff[point as usize..])
            } else {
                format!("0.{}{}", "0".repeat((-point) as usize), coeff)
            }
        }
    } else {
        let mut m = coeff[..1].to_string();
        if n > 1 {
            m.push('.');
            m.push_str(&coeff[1..]);
        }
        format!("{m}E{}{}", if adjusted >= 0 { "+" } else { "-" }, adjusted.abs())
    };
    Some(format!("{sign}{body}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn decimal_str_matches_python() {
        let cases = [
            ("1.10", "1.10"),
            ("1e3", "1E+3"),
            ("100", "100"),
            ("-0", "-0"),
            ("0.0000001", "1E-7"),
            ("0.000001", "0.000001"),
            ("007", "7"),
            ("0.00", "0.00"),
            ("0E+5", "0E+5"),
            ("nan", "NaN"),
            ("NaN0012", "NaN12"),
            ("-inf", "-Infinity"),
            ("sNaN", "sNaN"),
            ("123.456e-10", "1.23456E-8"),
            ("1.5E+2", "1.5E+2"),
            ("12345678901234567890.123456789", "12345678901234567890.123456789"),
            (".5", "0.5"),
            ("5.", "5"),
        ];
        for (input, want) in cases {
            assert_eq!(py_decimal_str(input).as_deref(), Some(want), "{input}");
        }
        for bad in ["", "abc", "1e", "1.2.3", "--1", "nanx", "."] {
            assert_eq!(py_decimal_str(bad), None, "{bad}");
        }
    }

    #[test]
    fn ndarray_layouts() {
        let a = NdArray::from_slice(vec![2, 300], &[7u8; 600]).unwrap();
        let enc = encode_ndarray(None, None, &a).unwrap();
        assert_eq!(&enc[..6], &[8, (2 << 2) | 1, 2, 0, 44, 1]);
        assert_eq!(decode_ndarray(None, None, &enc).unwrap(), a);
        let enc = encode_ndarray(Some(DType::U8), Some(&[2, 300]), &a).unwrap();
        assert_eq!(enc.len(), 600);
        assert!(encode_ndarray(Some(DType::I8), None, &a).is_err());
        assert!(encode_ndarray(None, Some(&[600]), &a).is_err());
        let empty = NdArray::from_slice::<u8>(vec![0], &[]).unwrap();
        assert!(encode_ndarray(None, None, &empty).is_err());
    }

    #[test]
    fn f16_rounding_matches_numpy() {
        let cases: [(f64, u16); 12] = [
            (1.0, 0x3c00),
            (1.0 + 2f64.powi(-11) + 2f64.powi(-40), 0x3c01),
            (1.0 + 2f64.powi(-11), 0x3c00),
            (1.0 + 3.0 * 2f64.powi(-11), 0x3c02),
            (65504.0, 0x7bff),
            (65519.99, 0x7bff),
            (65520.0, 0x7c00),
            (-0.0, 0x8000),
            (2f64.powi(-24), 0x0001),
            (2f64.powi(-25), 0x0000),
            (2f64.powi(-25) * 1.0000001, 0x0001),
            (f64::NAN, 0x7e00),
        ];
        for (x, want) in cases {
            assert_eq!(f64_to_f16_bits(x), want, "{x:e}");
        }
        for h in 0..=u16::MAX {
            let v = f16::from_bits(h);
            if !v.is_nan() {
                assert_eq!(f64_to_f16_bits(v.to_f64()), h, "{h:04x}");
            }
        }
    }

    #[test]
    fn scalar_ranges() {
        assert!(encode_scalar(DType::I8, &Value::Int(128)).is_err());
        assert_eq!(encode_scalar(DType::I8, &Value::Int(-128)).unwrap(), vec![0x80]);
        assert!(encode_scalar(DType::U8, &Value::Int(-1)).is_err());
        assert!(encode_scalar(DType::I32, &Value::Float(1.0)).is_err());
        assert_eq!(encode_scalar(DType::F32, &Value::Int(3)).unwrap(), 3.0f32.to_le_bytes().to_vec());
        assert_eq!(encode_scalar(DType::U64, &Value::UInt(u64::MAX)).unwrap(), vec![0xff; 8]);
    }
}
