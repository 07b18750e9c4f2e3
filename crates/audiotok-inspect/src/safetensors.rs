//! safetensors headers, read without the tensor data: 8 bytes of little-endian header length, then
//! that many bytes of JSON naming each tensor's dtype, shape and `data_offsets` (relative to the end
//! of the header). A 16 GB checkpoint costs its header (a few hundred KB at most).
//!
//! The header is checked as the format requires, so a header that lies is refused with the tensor it
//! names: a length past the end of the file or over [`MAX_HEADER_BYTES`], a dtype it does not define,
//! a shape whose bytes overflow or differ from its offsets, offsets past the end of the file, and
//! tensors that overlap or leave holes.

use std::io::Read;
use std::path::Path;

use crate::{Dtype, InspectError, TensorMeta};

/// The largest header read (the safetensors crate's own limit).
pub const MAX_HEADER_BYTES: u64 = 100_000_000;

/// The tensors of a safetensors file and the header's `__metadata__` (string to string).
#[derive(Debug, Clone)]
pub struct Header {
    /// Tensors in the order of their data offsets.
    pub tensors: Vec<TensorMeta>,
    /// The `__metadata__` entries (`format: pt`, ...).
    pub metadata: Vec<(String, String)>,
}

/// Reads the header of a safetensors file.
pub fn read_header(path: &Path) -> Result<Header, InspectError> {
    let io = |e| InspectError::Io(path.to_path_buf(), e);
    let mut f = std::fs::File::open(path).map_err(io)?;
    let file_len = f.metadata().map_err(io)?.len();
    let mut len = [0u8; 8];
    f.read_exact(&mut len).map_err(|_| bad(path, format!("{file_len} bytes: too short for a safetensors header")))?;
    let n = u64::from_le_bytes(len);
    if n > MAX_HEADER_BYTES {
        return Err(bad(path, format!("the header states {n} bytes, over the {MAX_HEADER_BYTES}-byte limit")));
    }
    if n > file_len - 8 {
        return Err(bad(
            path,
            format!("the header states {n} bytes but the file has {} after the length", file_len - 8),
        ));
    }
    let mut text = Vec::new();
    f.take(n).read_to_end(&mut text).map_err(io)?;
    parse_header(&text, file_len - 8 - n).map_err(|m| bad(path, m))
}

fn bad(path: &Path, msg: String) -> InspectError {
    InspectError::Safetensors(path.to_path_buf(), msg)
}

/// Parses a header's JSON and checks it against the `data_len` bytes that follow it.
pub fn parse_header(text: &[u8], data_len: u64) -> Result<Header, String> {
    let value: serde_json::Value = serde_json::from_slice(text).map_err(|e| format!("the header is not JSON: {e}"))?;
    let serde_json::Value::Object(map) = value else {
        return Err("the header is not a JSON object".into());
    };
    let mut tensors = Vec::with_capacity(map.len());
    let mut metadata = Vec::new();
    let mut spans = Vec::with_capacity(map.len());
    for (name, v) in map {
        if name == "__metadata__" {
            let serde_json::Value::Object(m) = v else {
                return Err("__metadata__ is not an object".into());
            };
            for (k, v) in m {
                let s = v.as_str().ok_or_else(|| format!("__metadata__.{k} is not a string"))?;
                metadata.push((k, s.to_string()));
            }
            continue;
        }
        let dtype = v.get("dtype").and_then(|d| d.as_str()).ok_or_else(|| format!("tensor {name}: no dtype"))?;
        let dtype = Dtype::from_safetensors(dtype).ok_or_else(|| format!("tensor {name}: unknown dtype {dtype:?}"))?;
        let shape = u64s(v.get("shape")).ok_or_else(|| format!("tensor {name}: shape is not a list of integers"))?;
        let offsets = u64s(v.get("data_offsets"))
            .filter(|o| o.len() == 2)
            .ok_or_else(|| format!("tensor {name}: data_offsets is not two integers"))?;
        let (begin, end) = (offsets[0], offsets[1]);
        let bytes = shape
            .iter()
            .try_fold(1u64, |a, &d| a.checked_mul(d))
            .and_then(|n| n.checked_mul(dtype.size()))
            .ok_or_else(|| format!("tensor {name}: shape {shape:?} of {dtype} overflows 64 bits"))?;
        if end < begin || end - begin != bytes {
            return Err(format!(
                "tensor {name}: shape {shape:?} of {dtype} is {bytes} bytes but data_offsets [{begin}, {end}] hold {}",
                end.saturating_sub(begin)
            ));
        }
        if end > data_len {
            return Err(format!(
                "tensor {name}: data_offsets [{begin}, {end}] run past the end of the data ({data_len} bytes)"
            ));
        }
        spans.push((begin, end, tensors.len()));
        tensors.push(TensorMeta { name, dtype, shape, storage: None });
    }
    spans.sort_unstable();
    let mut at = 0u64;
    for &(begin, end, i) in &spans {
        if begin < at {
            return Err(format!(
                "tensor {}: data_offsets [{begin}, {end}] overlap the tensor before it",
                tensors[i].name
            ));
        }
        if begin > at {
            return Err(format!(
                "tensor {}: a hole of {} bytes before its data_offsets [{begin}, {end}]",
                tensors[i].name,
                begin - at
            ));
        }
        at = end;
    }
    let order: Vec<usize> = spans.iter().map(|s| s.2).collect();
    let mut slots: Vec<Option<TensorMeta>> = tensors.into_iter().map(Some).collect();
    let tensors = order.into_iter().filter_map(|i| slots.get_mut(i).and_then(Option::take)).collect();
    metadata.sort();
    Ok(Header { tensors, metadata })
}

fn u64s(v: Option<&serde_json::Value>) -> Option<Vec<u64>> {
    v?.as_array()?.iter().map(|x| x.as_u64()).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::parse_header;

    fn header(tensors: &str) -> String {
        format!("{{\"__metadata__\":{{\"format\":\"pt\"}},{tensors}}}")
    }

    #[test]
    fn good_header_in_offset_order() {
        let h = header(
            r#""b":{"dtype":"BF16","shape":[2,3],"data_offsets":[16,28]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}"#,
        );
        let h = parse_header(h.as_bytes(), 28).unwrap();
        let names: Vec<&str> = h.tensors.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(h.tensors[1].shape, [2, 3]);
        assert_eq!(h.metadata, [("format".to_string(), "pt".to_string())]);
    }

    #[test]
    fn lying_headers_are_refused_with_the_tensor() {
        let cases = [
            (
                r#""a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}"#,
                8,
                "a: data_offsets [0, 16] run past the end of the data (8 bytes)",
            ),
            (
                r#""a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}"#,
                16,
                "b: data_offsets [8, 16] overlap",
            ),
            (r#""a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}"#, 16, "overflows 64 bits"),
            (
                r#""a":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}"#,
                16,
                "is 20 bytes but data_offsets [0, 16] hold 16",
            ),
            (r#""a":{"dtype":"Q4","shape":[4],"data_offsets":[0,16]}"#, 16, "unknown dtype \"Q4\""),
            (r#""a":{"dtype":"F32","shape":[4],"data_offsets":[4,20]}"#, 20, "a hole of 4 bytes"),
            (r#""a":{"dtype":"F32","shape":[-4],"data_offsets":[0,16]}"#, 16, "shape is not a list"),
        ];
        for (t, len, want) in cases {
            let err = parse_header(header(t).as_bytes(), len).unwrap_err();
            assert!(err.contains(want), "{t}: {err}");
        }
        assert!(parse_header(b"{\"a\":", 0).unwrap_err().contains("not JSON"));
        assert!(parse_header(b"[1]", 0).unwrap_err().contains("not a JSON object"));
    }
}
