//! Column encodings: the strings `streaming` stores in `column_encodings`, parsed.
//!
//! Supported, with the same names and byte layouts as `streaming.base.format.mds.encodings`:
//! `bytes`, `str`, `int` (int64), `int8` … `int64`, `uint8` … `uint64`, `float16`, `float32`,
//! `float64` (all little-endian), `str_int`, `str_float`, `str_decimal` (the value as text),
//! `json` (Python `json.dumps` text) and `ndarray` with optional static dtype and shape:
//! `ndarray`, `ndarray:int32`, `ndarray:int32:4096`, `ndarray:float32:2,3`.
//!
//! Refused with a clear error: `pkl` (pickle: unsafe, never read or written) and the image
//! encodings `pil`, `jpeg`, `png`, `jpeg_array`/`jpegarray`, `list[pil]`, `list[jpeg]`, `list[png]`.

use std::fmt;
use std::str::FromStr;

use crate::error::MdsError;

/// Element type of an `ndarray` column or value (the dtypes `streaming` can encode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DType {
    /// `uint8`
    U8,
    /// `int8`
    I8,
    /// `uint16`
    U16,
    /// `int16`
    I16,
    /// `float16`
    F16,
    /// `uint32`
    U32,
    /// `int32`
    I32,
    /// `float32`
    F32,
    /// `uint64`
    U64,
    /// `int64`
    I64,
    /// `float64`
    F64,
}

impl DType {
    /// Every dtype.
    pub const ALL: [DType; 11] = [
        DType::U8,
        DType::I8,
        DType::U16,
        DType::I16,
        DType::F16,
        DType::U32,
        DType::I32,
        DType::F32,
        DType::U64,
        DType::I64,
        DType::F64,
    ];

    /// NumPy's name (`"int32"`).
    pub fn name(self) -> &'static str {
        match self {
            DType::U8 => "uint8",
            DType::I8 => "int8",
            DType::U16 => "uint16",
            DType::I16 => "int16",
            DType::F16 => "float16",
            DType::U32 => "uint32",
            DType::I32 => "int32",
            DType::F32 => "float32",
            DType::U64 => "uint64",
            DType::I64 => "int64",
            DType::F64 => "float64",
        }
    }

    /// The dtype named `name` (NumPy's names).
    pub fn from_name(name: &str) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.name() == name)
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::U8 | DType::I8 => 1,
            DType::U16 | DType::I16 | DType::F16 => 2,
            DType::U32 | DType::I32 | DType::F32 => 4,
            DType::U64 | DType::I64 | DType::F64 => 8,
        }
    }

    /// The byte `streaming`'s dynamic-dtype `ndarray` layout stores for this dtype.
    pub fn code(self) -> u8 {
        match self {
            DType::U8 => 8,
            DType::I8 => 9,
            DType::U16 => 16,
            DType::I16 => 17,
            DType::F16 => 18,
            DType::U32 => 32,
            DType::I32 => 33,
            DType::F32 => 34,
            DType::U64 => 64,
            DType::I64 => 65,
            DType::F64 => 66,
        }
    }

    /// The dtype for a dynamic-dtype `ndarray` code byte.
    pub fn from_code(code: u8) -> Option<DType> {
        DType::ALL.into_iter().find(|d| d.code() == code)
    }

    /// Whether this is a float dtype.
    pub fn is_float(self) -> bool {
        matches!(self, DType::F16 | DType::F32 | DType::F64)
    }

    /// Whether this is a signed integer dtype.
    pub fn is_signed_int(self) -> bool {
        matches!(self, DType::I8 | DType::I16 | DType::I32 | DType::I64)
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A column encoding.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `bytes`: raw bytes, variable size.
    Bytes,
    /// `str`: UTF-8 text, variable size.
    Str,
    /// `int`: a Python int stored as little-endian int64 (8 bytes).
    Int,
    /// A fixed-size little-endian scalar: `uint8` … `float64`.
    Scalar(DType),
    /// `str_int`: an integer as decimal text (any size), variable size.
    StrInt,
    /// `str_float`: a float as Python's `repr` text, variable size.
    StrFloat,
    /// `str_decimal`: a `decimal.Decimal` as its `str()` text, variable size.
    StrDecimal,
    /// `json`: `json.dumps` text, variable size.
    Json,
    /// `ndarray[:dtype[:shape]]`: an n-dimensional array; fixed size when both are given.
    NdArray {
        /// Static dtype, when the encoding string gives one.
        dtype: Option<DType>,
        /// Static shape, when the encoding string gives one (every dimension >= 1).
        shape: Option<Vec<usize>>,
    },
    /// A caller-registered encoding: raw bytes of variable size stored under a custom name (the
    /// name is kept in `column_encodings`). This mirrors registering a custom `Encoding` subclass
    /// in Python's `streaming.base.format.mds.encodings._encodings`, which may also replace a
    /// built-in name: the Qwen2-Audio packing notebook registers `uint32` as "a variable-length
    /// array of little-endian u32", so its shards must be read with `uint32` registered as raw.
    Raw(String),
}

/// Names `streaming` defines that this crate refuses: images, and pickle.
const IMAGE_ENCODINGS: [&str; 8] =
    ["pil", "jpeg", "jpeg_array", "jpegarray", "png", "list[pil]", "list[jpeg]", "list[png]"];

impl Encoding {
    /// Parses an encoding string for column `column` (the name only serves error messages),
    /// refusing `pkl` and image encodings with their dedicated errors.
    pub fn parse_for_column(text: &str, column: &str) -> Result<Encoding, MdsError> {
        let name = text.split(':').next().unwrap_or(text);
        if name == "pkl" {
            return Err(MdsError::PickleRefused { column: column.to_string() });
        }
        if IMAGE_ENCODINGS.contains(&name) {
            return Err(MdsError::UnsupportedImageEncoding { column: column.to_string(), encoding: text.to_string() });
        }
        text.parse()
    }

    /// As [`Encoding::parse_for_column`], but names in `raw` are caller-registered raw encodings
    /// ([`Encoding::Raw`]), taking precedence over built-ins of the same name.
    pub fn parse_with_raw(text: &str, column: &str, raw: &[String]) -> Result<Encoding, MdsError> {
        if raw.iter().any(|r| r == text) {
            if text.is_empty() || text.contains(':') || text == "pkl" {
                return Err(MdsError::InvalidEncoding {
                    encoding: text.to_string(),
                    reason: "a registered raw encoding name must be non-empty, without `:`, and not pkl".into(),
                });
            }
            return Ok(Encoding::Raw(text.to_string()));
        }
        Encoding::parse_for_column(text, column)
    }

    /// The fixed encoded size in bytes, or `None` for variable-size encodings (which get a u32
    /// size prefix in each sample). This is the value of `column_sizes` in the index.
    pub fn fixed_size(&self) -> Option<usize> {
        match self {
            Encoding::Int => Some(8),
            Encoding::Scalar(d) => Some(d.size()),
            Encoding::NdArray { dtype: Some(d), shape: Some(s) } => {
                s.iter().try_fold(d.size(), |acc, &dim| acc.checked_mul(dim))
            }
            _ => None,
        }
    }
}

impl FromStr for Encoding {
    type Err = MdsError;

    /// Parses as `streaming`'s `_get_coder`: the text before the first `:` names the encoding,
    /// and only `ndarray` takes arguments (`ndarray:DTYPE` or `ndarray:DTYPE:D1,D2,...`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let invalid =
            |reason: &str| MdsError::InvalidEncoding { encoding: text.to_string(), reason: reason.to_string() };
        let (name, config) = match text.find(':') {
            Some(i) => (&text[..i], Some(&text[i + 1..])),
            None => (text, None),
        };
        if let Some(config) = config {
            if name != "ndarray" {
                return Err(MdsError::UnknownEncoding(text.to_string()));
            }
            let args: Vec<&str> = if config.is_empty() { Vec::new() } else { config.split(':').collect() };
            if args.len() > 2 {
                return Err(invalid("expected ndarray, ndarray:DTYPE or ndarray:DTYPE:SHAPE"));
            }
            let dtype = match args.first() {
                Some(d) => Some(DType::from_name(d).ok_or_else(|| invalid("unknown dtype"))?),
                None => None,
            };
            let shape = match args.get(1) {
                Some(s) => {
                    let mut dims = Vec::new();
                    for part in s.split(',') {
                        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                            return Err(invalid("shape must be comma-separated positive integers"));
                        }
                        let dim: usize = part.parse().map_err(|_| invalid("shape dimension too large"))?;
                        if dim == 0 {
                            return Err(invalid("shape dimensions must be >= 1"));
                        }
                        dims.push(dim);
                    }
                    Some(dims)
                }
                None => None,
            };
            let enc = Encoding::NdArray { dtype, shape };
            if matches!(enc, Encoding::NdArray { dtype: Some(_), shape: Some(_) }) && enc.fixed_size().is_none() {
                return Err(invalid("static size overflows"));
            }
            return Ok(enc);
        }
        Ok(match name {
            "bytes" => Encoding::Bytes,
            "str" => Encoding::Str,
            "int" => Encoding::Int,
            "str_int" => Encoding::StrInt,
            "str_float" => Encoding::StrFloat,
            "str_decimal" => Encoding::StrDecimal,
            "json" => Encoding::Json,
            "ndarray" => Encoding::NdArray { dtype: None, shape: None },
            "pkl" => return Err(MdsError::PickleRefused { column: String::new() }),
            other => match DType::from_name(other) {
                Some(d) => Encoding::Scalar(d),
                None => return Err(MdsError::UnknownEncoding(text.to_string())),
            },
        })
    }
}

impl fmt::Display for Encoding {
    /// The canonical encoding string (what `streaming` would print for the same coder).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Encoding::Bytes => f.write_str("bytes"),
            Encoding::Str => f.write_str("str"),
            Encoding::Int => f.write_str("int"),
            Encoding::Scalar(d) => f.write_str(d.name()),
            Encoding::StrInt => f.write_str("str_int"),
            Encoding::StrFloat => f.write_str("str_float"),
            Encoding::StrDecimal => f.write_str("str_decimal"),
            Encoding::Json => f.write_str("json"),
            Encoding::Raw(name) => f.write_str(name),
            Encoding::NdArray { dtype, shape } => {
                f.write_str("ndarray")?;
                if let Some(d) = dtype {
                    write!(f, ":{d}")?;
                    if let Some(s) = shape {
                        let dims: Vec<String> = s.iter().map(|d| d.to_string()).collect();
                        write!(f, ":{}", dims.join(","))?;
                    }
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_and_sizes() {
        let e: Encoding = "ndarray:int32:4096".parse().unwrap();
        assert_eq!(e.fixed_size(), Some(4 * 4096));
        assert_eq!(e.to_string(), "ndarray:int32:4096");
        let e: Encoding = "ndarray:float32:2,3".parse().unwrap();
        assert_eq!(e.fixed_size(), Some(24));
        assert_eq!("ndarray:int32".parse::<Encoding>().unwrap().fixed_size(), None);
        assert_eq!("ndarray".parse::<Encoding>().unwrap().fixed_size(), None);
        assert_eq!("ndarray:".parse::<Encoding>().unwrap(), Encoding::NdArray { dtype: None, shape: None });
        assert_eq!("int".parse::<Encoding>().unwrap().fixed_size(), Some(8));
        assert_eq!("float16".parse::<Encoding>().unwrap().fixed_size(), Some(2));
        assert_eq!("str".parse::<Encoding>().unwrap().fixed_size(), None);
        for bad in ["ndarray:int32:0", "ndarray:bool", "ndarray::4", "ndarray:int8:4:5", "int8:4", "float128", "Str"] {
            assert!(bad.parse::<Encoding>().is_err(), "{bad}");
        }
    }

    #[test]
    fn pickle_and_images_refused() {
        assert!(matches!(Encoding::parse_for_column("pkl", "x"), Err(MdsError::PickleRefused { .. })));
        assert!(matches!(Encoding::parse_for_column("jpeg", "x"), Err(MdsError::UnsupportedImageEncoding { .. })));
        assert!(matches!(Encoding::parse_for_column("list[png]", "x"), Err(MdsError::UnsupportedImageEncoding { .. })));
    }
}
