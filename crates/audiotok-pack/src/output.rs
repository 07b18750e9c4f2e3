//! Packed blocks as MDS samples.
//!
//! [`Layout::Standard`] (default) uses encodings the unmodified `streaming` package reads:
//!
//! | column | encoding | content |
//! |---|---|---|
//! | `input_ids` | `ndarray:int32:B` | ids, right-padded with the pad id |
//! | `position_ids` | `ndarray:int32:B` | 0.. per document, 0 on padding |
//! | `labels` | `ndarray:int32:B` | ids, -100 on audio tokens, padding and (`--train-on assistant`) outside assistant turns; not shifted |
//! | `seq_lengths` | `ndarray:int32` | document lengths in order (no entry for padding) |
//! | `audio` | `json` | the documents' audio paths, in order |
//!
//! [`Layout::Cooking`] reproduces the Qwen2-Audio packing notebook byte for byte: `input_ids`,
//! `position_ids` and `attention_mask` (= document lengths) in the notebook's custom `uint32`
//! encoding (raw little-endian u32, variable length), `audio` as `str` holding Python's
//! `json.dumps(paths)`, `text` as `str` = `""`. Both layouts: no compression, sha1 + xxh64.

use std::path::Path;

use audiotok_mds::{EncodedSample, Index, Json, MdsWriter, NdArray, Sample, SampleEncoder, Value, WriterOptions};

use crate::document::Document;
use crate::error::PackError;
use crate::tokenizer::SpecialIds;

/// The notebook's custom encoding name.
pub const COOKING_ENCODING: &str = "uint32";

/// Column layout of the output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    /// Standard `streaming` encodings, with labels.
    #[default]
    Standard,
    /// The notebook's layout and custom `uint32` encoding.
    Cooking,
}

/// Writes blocks of documents into an MDS folder.
#[derive(Debug)]
pub struct BlockWriter {
    writer: MdsWriter,
    encoder: SampleEncoder,
    layout: Layout,
    block_size: usize,
    ids: SpecialIds,
}

impl BlockWriter {
    /// Creates the writer. With `overwrite`, an existing index and shards in `dir` are replaced.
    pub fn create(
        dir: &Path,
        layout: Layout,
        block_size: usize,
        ids: SpecialIds,
        overwrite: bool,
    ) -> Result<BlockWriter, PackError> {
        let fixed = format!("ndarray:int32:{block_size}");
        let columns: Vec<(&str, &str)> = match layout {
            Layout::Standard => vec![
                ("input_ids", &fixed),
                ("position_ids", &fixed),
                ("labels", &fixed),
                ("seq_lengths", "ndarray:int32"),
                ("audio", "json"),
            ],
            Layout::Cooking => vec![
                ("input_ids", COOKING_ENCODING),
                ("position_ids", COOKING_ENCODING),
                ("attention_mask", COOKING_ENCODING),
                ("audio", "str"),
                ("text", "str"),
            ],
        };
        let options = WriterOptions {
            compression: None,
            hashes: vec!["sha1".into(), "xxh64".into()],
            overwrite,
            raw_encodings: match layout {
                Layout::Cooking => vec![COOKING_ENCODING.into()],
                Layout::Standard => Vec::new(),
            },
            ..WriterOptions::default()
        };
        let writer = MdsWriter::new(dir, columns, options)?;
        let encoder = writer.encoder();
        Ok(BlockWriter { writer, encoder, layout, block_size, ids })
    }

    /// Writes one block. The documents' total length must be at most the block size.
    pub fn write_block(&mut self, docs: &[&Document]) -> Result<(), PackError> {
        let sample = self.sample(docs)?;
        self.write_sample(&sample)
    }

    /// Writes a sample made by [`BlockWriter::sample`] (samples are written in call order).
    pub fn write_sample(&mut self, sample: &Sample) -> Result<(), PackError> {
        self.writer.write(sample)?;
        Ok(())
    }

    /// The encoded MDS sample of one block, without writing it: callers may encode blocks in
    /// parallel and write them in order with [`BlockWriter::write_encoded`].
    pub fn encode(&self, docs: &[&Document]) -> Result<EncodedSample, PackError> {
        Ok(self.encoder.encode(&self.sample(docs)?)?)
    }

    /// Writes a block encoded by [`BlockWriter::encode`] (blocks are written in call order).
    /// Full shards are finished on a background thread; an error there is returned by a
    /// later call or by [`BlockWriter::finish`].
    pub fn write_encoded(&mut self, block: EncodedSample) -> Result<(), PackError> {
        self.writer.write_encoded(block)?;
        Ok(())
    }

    /// The MDS sample of one block, without writing it: callers may build samples in parallel
    /// and write them in order.
    pub fn sample(&self, docs: &[&Document]) -> Result<Sample, PackError> {
        let used: usize = docs.iter().map(|d| d.ids.len()).sum();
        if used > self.block_size {
            return Err(PackError::Config(format!(
                "block of {used} tokens exceeds the block size {}",
                self.block_size
            )));
        }
        let b = self.block_size;
        let mut input_ids = Vec::with_capacity(b);
        let mut position_ids = Vec::with_capacity(b);
        let mut lengths = Vec::with_capacity(docs.len());
        let mut audio = Vec::new();
        for d in docs {
            input_ids.extend_from_slice(&d.ids);
            position_ids.extend(0..d.ids.len() as u32);
            lengths.push(d.ids.len() as u32);
            audio.extend(d.audio.iter().cloned());
        }
        input_ids.resize(b, self.ids.pad);
        position_ids.resize(b, 0);
        let mut s = Sample::new();
        match self.layout {
            Layout::Cooking => {
                s.insert("input_ids".into(), Value::Bytes(le_bytes(&input_ids)));
                s.insert("position_ids".into(), Value::Bytes(le_bytes(&position_ids)));
                s.insert("attention_mask".into(), Value::Bytes(le_bytes(&lengths)));
                let paths = Json::Array(audio.into_iter().map(Json::Str).collect());
                s.insert("audio".into(), Value::Str(paths.to_python(false)));
                s.insert("text".into(), Value::Str(String::new()));
            }
            Layout::Standard => {
                let mut labels: Vec<i32> = Vec::with_capacity(b);
                for d in docs {
                    for (i, &t) in d.ids.iter().enumerate() {
                        let audio_tok = t == self.ids.audio || t == self.ids.audio_bos || t == self.ids.audio_eos;
                        let outside = d.assistant.as_ref().is_some_and(|m| !m[i]);
                        labels.push(if audio_tok || outside { -100 } else { t as i32 });
                    }
                }
                labels.resize(b, -100);
                let as_i32 = |v: &[u32]| v.iter().map(|&x| x as i32).collect::<Vec<i32>>();
                s.insert("input_ids".into(), Value::NdArray(ndarray(&as_i32(&input_ids))?));
                s.insert("position_ids".into(), Value::NdArray(ndarray(&as_i32(&position_ids))?));
                s.insert("labels".into(), Value::NdArray(ndarray(&labels)?));
                s.insert("seq_lengths".into(), Value::NdArray(NdArray::from_vec(&as_i32(&lengths))));
                s.insert("audio".into(), Value::Json(Json::Array(audio.into_iter().map(Json::Str).collect())));
            }
        }
        Ok(s)
    }

    /// Writes the last shard and `index.json`.
    pub fn finish(self) -> Result<Index, PackError> {
        Ok(self.writer.finish()?)
    }
}

fn ndarray(v: &[i32]) -> Result<NdArray, PackError> {
    NdArray::from_slice(vec![v.len()], v).map_err(|e| PackError::Config(e.to_string()))
}

fn le_bytes(v: &[u32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}
