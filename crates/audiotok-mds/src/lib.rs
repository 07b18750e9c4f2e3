//! MosaicML Streaming's MDS shard format in Rust: write, read, verify and merge datasets that
//! the Python `streaming` package (`MDSWriter`, `StreamingDataset`, `merge_index`) reads and
//! writes, with byte-identical output (shards and `index.json`) for the same samples and options.
//!
//! ```no_run
//! use audiotok_mds::{merge_index, MdsDataset, MdsWriter, NdArray, Sample, Value, WriterOptions};
//!
//! # fn main() -> Result<(), audiotok_mds::MdsError> {
//! let options = WriterOptions { compression: Some("zstd".into()), hashes: vec!["sha1".into()], ..Default::default() };
//! let mut w = MdsWriter::new("out", [("text", "str"), ("audio", "ndarray:float32")], options)?;
//! let mut s = Sample::new();
//! s.insert("text".into(), Value::Str("hello".into()));
//! s.insert("audio".into(), Value::NdArray(NdArray::from_vec(&[0.0f32, 0.5])));
//! w.write(&s)?;
//! let index = w.finish()?;
//!
//! let ds = MdsDataset::open("out")?;
//! assert_eq!(ds.len(), index.num_samples());
//! let first = ds.get(0)?;
//! ds.verify()?;
//! # let _ = (first, merge_index("root"));
//! # Ok(()) }
//! ```
//!
//! Modules: [`encoding`] (column encodings), [`value`] (values and their bytes), [`json`]
//! (Python-exact JSON), [`codec`] (zstd, hashes), [`index`] (`index.json`), [`writer`],
//! [`reader`], [`merge`]. Pickle (`pkl`) columns are refused everywhere, and image encodings
//! are out of scope.
//!
//! The jobs of `audiotok mds`, for every front (the CLI, the Python bindings): [`packed`]
//! (document lengths and attention masks of packed blocks, in the standard and the notebook
//! layouts), [`mod@inspect`] (a dataset's report and its verification) and
//! [`merge::merge_partitions`] (checked, staged, rolled back on failure). Progress goes to an
//! [`audiotok_core::Observer`].

pub mod codec;
pub mod encoding;
pub mod error;
pub mod index;
pub mod inspect;
pub mod json;
pub mod merge;
pub mod packed;
pub mod reader;
pub mod value;
pub mod writer;

pub use codec::{Compression, HashAlgo};
pub use encoding::{DType, Encoding};
pub use error::{MdsError, Result};
pub use half::f16;
pub use index::{parse_bytes, FileInfo, Index, ShardInfo, INDEX_BASENAME};
pub use inspect::{inspect, verify, InspectError, InspectReport, Packing, Verification};
pub use json::Json;
pub use merge::{merge_index, merge_partitions, MergeError, MergeOptions, MergeSummary};
pub use reader::{MdsDataset, VerifyReport};
pub use value::{Element, NdArray, NdArrayError, Sample, Value};
pub use writer::{EncodedSample, MdsWriter, SampleEncoder, WriterOptions, DEFAULT_SIZE_LIMIT};
