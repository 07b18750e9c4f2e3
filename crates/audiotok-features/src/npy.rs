//! NumPy `.npy` files (format versions 1.0 to 3.0): writing float32 arrays and reading numeric ones.

use std::io::{Read, Write};

use crate::error::{FeatureError, Result};

/// Element data of an array read from a `.npy` file.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    /// `<f4`
    F32(Vec<f32>),
    /// `<f8`
    F64(Vec<f64>),
    /// `<i2`, `<i4`, `<i8`, `|i1`, `|u1`, `<u2`, `<u4`, `<u8` widened to i64 (u8 values above
    /// `i64::MAX` are an error).
    Int(Vec<i64>),
}

/// An array read from a `.npy` file (C order).
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Dimensions, outermost first.
    pub shape: Vec<usize>,
    /// Elements in C order.
    pub data: NpyData,
}

impl NpyArray {
    /// The elements as `f32` (integers and f64 are converted).
    pub fn to_f32(&self) -> Vec<f32> {
        match &self.data {
            NpyData::F32(v) => v.clone(),
            NpyData::F64(v) => v.iter().map(|&x| x as f32).collect(),
            NpyData::Int(v) => v.iter().map(|&x| x as f32).collect(),
        }
    }
}

fn header_text(descr: &str, shape: &[usize]) -> Vec<u8> {
    let dims = match shape {
        [one] => format!("({one},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {dims}, }}").into_bytes();
    // As numpy's `_write_array_header`: room for the first dimension to grow to 21 digits, then
    // spaces so that magic + length + header + '\n' ends on a multiple of 64 (always adding some).
    let first = shape.first().map_or(0, |d| d.to_string().len());
    let growth = if shape.is_empty() { 0 } else { 21 - first.min(21) };
    let hlen = h.len() + growth + 1;
    let pad = 64 - (10 + hlen) % 64;
    h.extend(std::iter::repeat_n(b' ', growth + pad));
    h.push(b'\n');
    h
}

/// Writes a float32 array of `shape` (C order) as `.npy` version 1.0, as `np.save` does.
pub fn write_f32<W: Write>(w: W, shape: &[usize], data: &[f32]) -> Result<()> {
    write_le(w, "<f4", shape, data)
}

/// Writes an int64 array of `shape` (C order) as `.npy` version 1.0, as `np.save` does.
pub fn write_i64<W: Write>(w: W, shape: &[usize], data: &[i64]) -> Result<()> {
    write_le(w, "<i8", shape, data)
}

fn write_le<W: Write, T: bytemuck::Pod + LeBytes>(mut w: W, descr: &str, shape: &[usize], data: &[T]) -> Result<()> {
    let count: usize = shape.iter().product();
    if count != data.len() {
        return Err(FeatureError::Shape(format!("shape {shape:?} holds {count} values, data has {}", data.len())));
    }
    let h = header_text(descr, shape);
    w.write_all(b"\x93NUMPY\x01\x00")?;
    w.write_all(&(h.len() as u16).to_le_bytes())?;
    w.write_all(&h)?;
    if cfg!(target_endian = "little") {
        // The in-memory representation is the file's: one copy, no per-element conversion.
        w.write_all(bytemuck::cast_slice(data))?;
    } else {
        let mut buf = Vec::with_capacity(data.len().min(1 << 16) * std::mem::size_of::<T>());
        for chunk in data.chunks(1 << 16) {
            buf.clear();
            for v in chunk {
                v.put_le(&mut buf);
            }
            w.write_all(&buf)?;
        }
    }
    Ok(())
}

/// Little-endian serialisation of the element types we write.
trait LeBytes {
    fn put_le(&self, out: &mut Vec<u8>);
}

impl LeBytes for f32 {
    fn put_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl LeBytes for i64 {
    fn put_le(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
}

fn bad(msg: impl Into<String>) -> FeatureError {
    FeatureError::Npy(msg.into())
}

fn field<'a>(header: &'a str, key: &str) -> Result<&'a str> {
    let pat = format!("'{key}':");
    let at = header.find(&pat).ok_or_else(|| bad(format!("header lacks '{key}'")))?;
    Ok(header[at + pat.len()..].trim_start())
}

/// Reads exactly `n` bytes, never reserving more than is actually read (plus one growth step):
/// a size taken from a header cannot make this allocate beyond the bytes the input holds.
/// `Err(got)` with the number of bytes there were when the input ends early.
fn read_claimed<R: Read>(r: &mut R, n: u64) -> std::io::Result<std::result::Result<Vec<u8>, u64>> {
    const FIRST: u64 = 1 << 16;
    let mut buf = Vec::with_capacity(n.min(FIRST) as usize);
    let got = r.take(n).read_to_end(&mut buf)? as u64;
    Ok(if got == n { Ok(buf) } else { Err(got) })
}

/// Reads a `.npy` file's bytes.
///
/// Sizes in the header (its own length, the shape) are checked (overflow, then against the bytes
/// that actually follow) before memory is taken for them: a file whose header claims more data
/// than it holds is an [`FeatureError::Npy`] naming both sizes, read in time and memory
/// proportional to the file, not to the claim.
pub fn read<R: Read>(mut r: R) -> Result<NpyArray> {
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(|_| bad("file shorter than the .npy magic"))?;
    if &magic[..6] != b"\x93NUMPY" {
        return Err(bad("not a .npy file (bad magic)"));
    }
    let hlen = match magic[6] {
        1 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            usize::from(u16::from_le_bytes(b))
        }
        2 | 3 => {
            let mut b = [0u8; 4];
            r.read_exact(&mut b)?;
            u32::from_le_bytes(b) as usize
        }
        v => return Err(bad(format!("unsupported .npy version {v}"))),
    };
    let hb = read_claimed(&mut r, hlen as u64)?
        .map_err(|got| bad(format!("header needs {hlen} bytes, the file holds {got}")))?;
    let header = String::from_utf8(hb).map_err(|_| bad("header is not UTF-8"))?;
    let descr = field(&header, "descr")?;
    let descr = descr.trim_start_matches(['\'', '"']);
    let descr = &descr[..descr.find(['\'', '"']).ok_or_else(|| bad("bad descr"))?];
    if field(&header, "fortran_order")?.starts_with("True") {
        return Err(bad("Fortran-order arrays are not supported"));
    }
    let shape_s = field(&header, "shape")?;
    let inner = shape_s.strip_prefix('(').ok_or_else(|| bad("bad shape"))?;
    let close = inner.find(')').ok_or_else(|| bad("bad shape"))?;
    let shape = inner[..close]
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(format!("bad dimension '{s}'"))))
        .collect::<Result<Vec<_>>>()?;
    let width = match descr {
        "<f4" | "<i4" | "<u4" => 4,
        "<f8" | "<i8" | "<u8" => 8,
        "<i2" | "<u2" => 2,
        "|i1" | "|u1" | "<i1" | "<u1" => 1,
        d => return Err(bad(format!("unsupported dtype '{d}' (little-endian numbers only)"))),
    };
    let overflows = || bad(format!("shape {shape:?} overflows"));
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(overflows)?;
    let need = count.checked_mul(width).and_then(|n| u64::try_from(n).ok()).ok_or_else(overflows)?;
    let raw = read_claimed(&mut r, need)?
        .map_err(|got| bad(format!("shape {shape:?} needs {need} bytes of data, the file holds {got}")))?;
    let data = match descr {
        "<f4" => NpyData::F32(raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()),
        "<f8" => {
            NpyData::F64(raw.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8]))).collect())
        }
        _ => {
            let mut v = Vec::with_capacity(count);
            for c in raw.chunks_exact(width) {
                let mut b = [0u8; 8];
                b[..width].copy_from_slice(c);
                let signed = descr.as_bytes()[1] == b'i';
                let x = if signed {
                    let shift = 64 - 8 * width as u32;
                    (i64::from_le_bytes(b) << shift) >> shift
                } else {
                    i64::try_from(u64::from_le_bytes(b)).map_err(|_| bad("uint64 value beyond i64"))?
                };
                v.push(x);
            }
            NpyData::Int(v)
        }
    };
    Ok(NpyArray { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn header_matches_numpy() {
        let mut v = Vec::new();
        write_f32(&mut v, &[2, 3], &[0.0; 6]).unwrap();
        assert_eq!(&v[..10], b"\x93NUMPY\x01\x00\x76\x00");
        let h = std::str::from_utf8(&v[10..128]).unwrap();
        assert!(h.starts_with("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert_eq!(v.len(), 128 + 24);
        let mut v1 = Vec::new();
        write_f32(&mut v1, &[5], &[0.0; 5]).unwrap();
        assert!(std::str::from_utf8(&v1[10..128]).unwrap().contains("'shape': (5,), }"));
    }

    #[test]
    fn int64_round_trip() {
        let mut v = Vec::new();
        write_i64(&mut v, &[3], &[1, -2, 1 << 40]).unwrap();
        let a = read(&v[..]).unwrap();
        assert_eq!((a.shape, a.data), (vec![3], NpyData::Int(vec![1, -2, 1 << 40])));
    }

    #[test]
    fn rejects_wrong_count_and_garbage() {
        assert!(write_f32(Vec::new(), &[2, 2], &[0.0; 3]).is_err());
        assert!(read(&b"hello world, not numpy"[..]).is_err());
    }

    /// A v1 header claiming `shape` of `<i8`, followed by `data_bytes` zero bytes.
    fn claimed(descr: &str, shape: &str, data_bytes: usize) -> Vec<u8> {
        let h = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}\n");
        let mut v = b"\x93NUMPY\x01\x00".to_vec();
        v.extend_from_slice(&(h.len() as u16).to_le_bytes());
        v.extend_from_slice(h.as_bytes());
        v.resize(v.len() + data_bytes, 0);
        v
    }

    #[test]
    fn header_sizes_never_drive_allocation() {
        // 8 KB of data under a header claiming 10^13 elements (80 TB): a typed error, at once.
        let v = claimed("<i8", "(10000000000000,)", 8192);
        let err = read(&v[..]).unwrap_err();
        assert!(matches!(err, FeatureError::Npy(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "npy: shape [10000000000000] needs 80000000000000 bytes of data, the file holds 8192"
        );
        // A shape whose byte size overflows.
        let err = read(&claimed("<i8", "(4611686018427387904, 4)", 16)[..]).unwrap_err();
        assert_eq!(err.to_string(), "npy: shape [4611686018427387904, 4] overflows");
        // A version-2 header length of 4 GiB in a 12-byte file.
        let v2 = b"\x93NUMPY\x02\x00\xff\xff\xff\xff".to_vec();
        let err = read(&v2[..]).unwrap_err();
        assert_eq!(err.to_string(), "npy: header needs 4294967295 bytes, the file holds 0");
        // The exact size still reads; one byte short is the same typed error.
        let ok = claimed("<i8", "(2, 3)", 48);
        assert_eq!(read(&ok[..]).unwrap().data, NpyData::Int(vec![0; 6]));
        let err = read(&ok[..ok.len() - 1]).unwrap_err();
        assert_eq!(err.to_string(), "npy: shape [2, 3] needs 48 bytes of data, the file holds 47");
        // A shape that does not open with '(' is refused, not sliced.
        assert_eq!(read(&claimed("<i8", ")", 0)[..]).unwrap_err().to_string(), "npy: bad shape");
    }

    proptest! {
        #[test]
        fn round_trip(data in proptest::collection::vec(any::<f32>(), 0..200), rows in 1usize..4) {
            let n = data.len() / rows * rows;
            let data = &data[..n];
            let shape = [rows, n / rows];
            let mut buf = Vec::new();
            write_f32(&mut buf, &shape, data).unwrap();
            prop_assert_eq!(buf.len() % 64, (n * 4) % 64);
            let a = read(&buf[..]).unwrap();
            prop_assert_eq!(a.shape, shape.to_vec());
            let NpyData::F32(back) = a.data else { panic!("dtype") };
            prop_assert_eq!(back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), data.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
        }
    }
}
