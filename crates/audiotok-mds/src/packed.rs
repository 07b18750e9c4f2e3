//! Packed instruction blocks: the document lengths of a block and its block-diagonal causal
//! attention mask, in both layouts `audiotok pack` writes.
//!
//! - **standard**: `input_ids` (an integer ndarray) and `seq_lengths` (an integer ndarray, one
//!   length per document, padding after the last document);
//! - **`--compat cooking`**: the Qwen2-Audio packing notebook's layout, whose `input_ids` and
//!   `attention_mask` columns use its custom variable-length `uint32` encoding (raw little-endian
//!   u32 bytes), `attention_mask` holding the document lengths.
//!
//! [`open_dataset`] opens either (registering the notebook's encoding when the index shows it);
//! [`doc_lengths`] and [`int_column`] read a sample's lengths and ids; [`documents`] gives each
//! token's document, [`attention_mask`] the mask as a boolean matrix and [`mask_picture`] the
//! mask scaled to an image (grey levels [`VISIBLE`], [`MASKED`], [`PADDING`]).
//!
//! ```no_run
//! use audiotok_mds::packed::{attention_mask, doc_lengths, int_column, open_dataset};
//!
//! # fn main() -> Result<(), audiotok_mds::MdsError> {
//! let ds = open_dataset("tests/fixtures/pack/cooking_512")?;
//! let sample = ds.get(0)?;
//! let block = int_column(&sample, "input_ids").map_or(0, |ids| ids.len());
//! let lengths: Vec<usize> = doc_lengths(&sample).unwrap_or_default().iter().map(|&l| l.max(0) as usize).collect();
//! let mask = attention_mask(block, &lengths); // mask[q * block + k]: query q sees key k
//! # let _ = mask;
//! # Ok(()) }
//! ```

use std::path::Path;

use crate::encoding::DType;
use crate::error::Result;
use crate::index::Index;
use crate::reader::MdsDataset;
use crate::value::{NdArray, Sample, Value};

/// The name of the notebook's custom encoding (a variable-length u32 array), which shadows the
/// built-in fixed 4-byte `uint32`.
pub const NOTEBOOK_UINT32: &str = "uint32";

/// Whether `index` has a `uint32` column of variable size: the notebook's custom encoding, as the
/// built-in fixed 4-byte `uint32` can never be variable.
pub fn has_notebook_uint32(index: &Index) -> bool {
    index.shards.iter().any(|s| {
        s.column_encodings.iter().zip(&s.column_sizes).any(|(e, size)| e == NOTEBOOK_UINT32 && size.unwrap_or(0) == 0)
    })
}

/// Opens the dataset in `dir`, any writer's: the notebook's custom `uint32` encoding is
/// registered as raw bytes when the index shows it ([`has_notebook_uint32`]).
pub fn open_dataset(dir: impl AsRef<Path>) -> Result<MdsDataset> {
    let dir = dir.as_ref();
    let index = Index::load(dir)?;
    let raw = if has_notebook_uint32(&index) { vec![NOTEBOOK_UINT32.to_string()] } else { Vec::new() };
    MdsDataset::open_with_raw(dir, &raw)
}

/// Integer elements of any integer array (`None` for a float array or one that does not decode).
/// A `uint64` above `i64::MAX` wraps, as a cast does.
pub fn ints(a: &NdArray) -> Option<Vec<i64>> {
    let v: Vec<i64> = match a.dtype() {
        DType::U8 => a.to_vec::<u8>().ok()?.into_iter().map(i64::from).collect(),
        DType::I8 => a.to_vec::<i8>().ok()?.into_iter().map(i64::from).collect(),
        DType::U16 => a.to_vec::<u16>().ok()?.into_iter().map(i64::from).collect(),
        DType::I16 => a.to_vec::<i16>().ok()?.into_iter().map(i64::from).collect(),
        DType::U32 => a.to_vec::<u32>().ok()?.into_iter().map(i64::from).collect(),
        DType::I32 => a.to_vec::<i32>().ok()?.into_iter().map(i64::from).collect(),
        DType::I64 => a.to_vec::<i64>().ok()?,
        DType::U64 => a.to_vec::<u64>().ok()?.into_iter().map(|x| x as i64).collect(),
        _ => return None,
    };
    Some(v)
}

/// Integers of column `name`: an integer ndarray, or the notebook's raw little-endian u32 bytes
/// (bytes of a length that is a multiple of 4). `None` when the column is missing or neither.
pub fn int_column(sample: &Sample, name: &str) -> Option<Vec<i64>> {
    match sample.get(name)? {
        Value::NdArray(a) => ints(a),
        Value::Bytes(b) if b.len() % 4 == 0 => {
            Some(b.chunks_exact(4).map(|c| i64::from(u32::from_le_bytes([c[0], c[1], c[2], c[3]]))).collect())
        }
        _ => None,
    }
}

/// Document lengths of a packed block: `seq_lengths` (standard layout), or the notebook's
/// `attention_mask` bytes (`--compat cooking`). `None` when the sample has neither in integer
/// form.
pub fn doc_lengths(sample: &Sample) -> Option<Vec<i64>> {
    match sample.get("seq_lengths") {
        Some(_) => int_column(sample, "seq_lengths"),
        None => match sample.get("attention_mask") {
            Some(Value::Bytes(_)) => int_column(sample, "attention_mask"),
            _ => None,
        },
    }
}

/// Document number of every token of a block of `block` tokens whose documents have the lengths
/// `lengths`, in order (`None` for padding after the last document; documents past the block are
/// cut).
pub fn documents(block: usize, lengths: &[usize]) -> Vec<Option<u32>> {
    let mut doc = Vec::with_capacity(block);
    for (d, &l) in lengths.iter().enumerate() {
        if doc.len() >= block {
            break;
        }
        doc.extend(std::iter::repeat_n(Some(d as u32), l.min(block - doc.len())));
    }
    doc.resize(block, None);
    doc
}

/// The block-diagonal causal attention mask of a block, row-major `block` x `block`:
/// `mask[q * block + k]` is true when query token `q` sees key token `k`, that is when both are in
/// the same document and `k <= q`. Padding sees nothing and is seen by nothing.
pub fn attention_mask(block: usize, lengths: &[usize]) -> Vec<bool> {
    let doc = documents(block, lengths);
    let mut mask = vec![false; block * block];
    for (q, d) in doc.iter().enumerate() {
        let Some(d) = d else { continue };
        for (k, key) in doc.iter().enumerate().take(q + 1) {
            mask[q * block + k] = key == &Some(*d);
        }
    }
    mask
}

/// Grey level of a picture pixel holding a visible cell.
pub const VISIBLE: u8 = 255;
/// Grey level of a pixel whose cells are all masked.
pub const MASKED: u8 = 0;
/// Grey level of a pixel of padding rows (no cell visible, every query row padding).
pub const PADDING: u8 = 64;

/// The attention mask drawn as a square grey picture, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskPicture {
    /// Width and height in pixels.
    pub side: usize,
    /// `side * side` grey levels: [`VISIBLE`], [`MASKED`] or [`PADDING`].
    pub pixels: Vec<u8>,
}

/// The mask of a block (see [`attention_mask`]) scaled to a `size` x `size` picture (at most one
/// pixel per token, at least one pixel): pixel `(r, c)` covers the query rows and key columns
/// `[p * block / side, (p + 1) * block / side)` and is [`VISIBLE`] when any of its cells is,
/// [`PADDING`] when all its rows are padding, else [`MASKED`].
pub fn mask_picture(block: usize, lengths: &[usize], size: u32) -> MaskPicture {
    let doc = documents(block, lengths);
    let side = (size as usize).clamp(1, block.max(1));
    let span = |p: usize| (p * block / side, ((p + 1) * block / side).max(p * block / side + 1).min(block));
    let mut pixels = vec![MASKED; side * side];
    for r in 0..side {
        let (r0, r1) = span(r);
        let padding = (r0..r1).all(|q| doc[q].is_none());
        for c in 0..side {
            let (c0, c1) = span(c);
            let visible = (r0..r1).any(|q| doc[q].is_some_and(|d| (c0..c1.min(q + 1)).any(|k| doc[k] == Some(d))));
            pixels[r * side + c] = if visible {
                VISIBLE
            } else if padding {
                PADDING
            } else {
                MASKED
            };
        }
    }
    MaskPicture { side, pixels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_and_padding() {
        assert_eq!(documents(6, &[2, 3]), vec![Some(0), Some(0), Some(1), Some(1), Some(1), None]);
        assert_eq!(documents(3, &[2, 3]), vec![Some(0), Some(0), Some(1)]);
        assert_eq!(documents(0, &[2]), Vec::<Option<u32>>::new());
    }

    #[test]
    fn a_full_size_picture_is_the_mask() {
        let (block, lengths) = (7, [3, 2]);
        let mask = attention_mask(block, &lengths);
        let pic = mask_picture(block, &lengths, 100);
        assert_eq!(pic.side, block);
        for q in 0..block {
            for k in 0..block {
                let want = match (mask[q * block + k], q >= 5) {
                    (true, _) => VISIBLE,
                    (false, true) => PADDING,
                    (false, false) => MASKED,
                };
                assert_eq!(pic.pixels[q * block + k], want, "({q}, {k})");
            }
        }
        assert!(mask[4 * block + 3] && !mask[4 * block + 2] && !mask[3 * block + 4]);
        // An empty block is one padding pixel.
        assert_eq!(mask_picture(0, &[], 8), MaskPicture { side: 1, pixels: vec![PADDING] });
    }
}
