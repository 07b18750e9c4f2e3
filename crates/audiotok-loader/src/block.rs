//! One packed block with its audio features.

use std::path::{Path, PathBuf};

use audiotok_features::job::{FeaturesOptions, FileExtractor};
use audiotok_features::whisper::{Precision, WhisperPadding};
use audiotok_features::{FeatureKind, Profile};
use audiotok_mds::packed::{doc_lengths, int_column, open_dataset};
use audiotok_mds::{Json, MdsDataset, Sample, Value};
use serde::{Deserialize, Serialize};

use crate::LoaderError;

/// The special token ids the loader needs (Qwen2-Audio's by default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenIds {
    /// `<|AUDIO|>`: the placeholder the audio features replace.
    pub audio: i64,
    /// `<|audio_bos|>`.
    pub audio_bos: i64,
    /// `<|audio_eos|>`.
    pub audio_eos: i64,
    /// The padding id (`<|endoftext|>`).
    pub pad: i64,
}

impl Default for TokenIds {
    fn default() -> Self {
        TokenIds { audio: 151_646, audio_bos: 151_647, audio_eos: 151_648, pad: 151_643 }
    }
}

/// How blocks are read (plain data: a Python object pickles it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoaderOptions {
    /// The feature kind: `whisper-128` (Qwen2-Audio, Whisper v3) or `whisper-80`.
    pub kind: FeatureKind,
    /// The log-mel arithmetic: float32 (fast, default) or bit-exact float64.
    pub precision: Precision,
    /// The special ids.
    pub ids: TokenIds,
    /// The folder relative audio paths are resolved against (default: the current folder), as
    /// `audiotok pack --audio-root` resolved them.
    pub audio_root: Option<PathBuf>,
}

impl Default for LoaderOptions {
    fn default() -> Self {
        LoaderOptions {
            kind: FeatureKind::Whisper128,
            precision: Precision::Fast,
            ids: TokenIds::default(),
            audio_root: None,
        }
    }
}

/// Which columns a pack output has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// `input_ids`, `position_ids`, `labels`, `seq_lengths`, `audio` (json).
    Standard,
    /// The notebook's: `input_ids`, `position_ids`, `attention_mask` (lengths), `audio` (str).
    Cooking,
}

/// One block as a training step reads it. Arrays are row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Block {
    /// The block's index in the dataset.
    pub index: u64,
    /// Token ids, `[T]`.
    pub input_ids: Vec<i64>,
    /// Labels, `[T]`: -100 on `<|AUDIO|>`, `<|audio_bos|>`, `<|audio_eos|>`, the padding, every
    /// document's first token, and (standard layout, `--train-on assistant`) outside assistant
    /// turns; the token id elsewhere. Not shifted.
    pub labels: Vec<i64>,
    /// Position ids, `[T]` (0.. per document, 0 on padding).
    pub position_ids: Vec<i64>,
    /// Document lengths, `[D]`.
    pub seq_lengths: Vec<i32>,
    /// `[0, cumsum(seq_lengths)]`, `[D + 1]` (flash-attention's `cu_seqlens`).
    pub cu_seqlens: Vec<i32>,
    /// The audio paths, as stored, in placeholder order.
    pub audio: Vec<String>,
    /// Mel bins (128 or 80).
    pub n_mels: usize,
    /// Feature frames per audio (3000: 30 s).
    pub frames: usize,
    /// `[n_audio, n_mels, frames]` float32 log-mel (transformers' `WhisperFeatureExtractor`,
    /// `padding="max_length"`).
    pub input_features: Vec<f32>,
    /// `[n_audio, frames]`: 1 on the frames of audio, 0 on padding.
    pub feature_attention_mask: Vec<i32>,
}

/// An `audiotok pack` output opened for training.
#[derive(Debug)]
pub struct PackedDataset {
    dir: PathBuf,
    ds: MdsDataset,
    layout: Layout,
    options: LoaderOptions,
}

impl PackedDataset {
    /// Opens `dir` (either layout).
    pub fn open(dir: impl AsRef<Path>, options: LoaderOptions) -> Result<Self, LoaderError> {
        let dir = dir.as_ref().to_path_buf();
        if !matches!(options.kind, FeatureKind::Whisper128 | FeatureKind::Whisper80) {
            return Err(LoaderError::Options(format!(
                "feature {}: the loader computes whisper-128 or whisper-80",
                options.kind
            )));
        }
        let ds = open_dataset(&dir)?;
        let cols = ds.column_names();
        let has = |c: &str| cols.iter().any(|n| n == c);
        let layout = if ["input_ids", "position_ids", "labels", "seq_lengths", "audio"].iter().all(|c| has(c)) {
            Layout::Standard
        } else if ["input_ids", "position_ids", "attention_mask", "audio"].iter().all(|c| has(c)) {
            Layout::Cooking
        } else {
            return Err(LoaderError::Layout {
                dir,
                reason: format!(
                    "columns {cols:?}; expected input_ids, position_ids, labels, seq_lengths, audio (standard) or input_ids, position_ids, attention_mask, audio (--compat cooking)"
                ),
            });
        };
        Ok(PackedDataset { dir, ds, layout, options })
    }

    /// Blocks in the dataset.
    pub fn len(&self) -> u64 {
        self.ds.len()
    }

    /// Whether the dataset has no block.
    pub fn is_empty(&self) -> bool {
        self.ds.is_empty()
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The options it was opened with.
    pub fn options(&self) -> &LoaderOptions {
        &self.options
    }

    /// A feature extractor for [`block`](Self::block) (plans the FFT once; keep one per thread).
    pub fn extractor(&self) -> FileExtractor {
        FileExtractor::new(&FeaturesOptions {
            kind: self.options.kind,
            whisper_padding: WhisperPadding::MaxLength,
            whisper_precision: self.options.precision,
            meldb_frames: None,
            jobs: 1,
        })
    }

    fn bad(&self, block: u64, reason: impl Into<String>) -> LoaderError {
        LoaderError::Block { dir: self.dir.clone(), block, reason: reason.into() }
    }

    /// Block `i` without its features: ids, labels, positions, lengths and audio paths
    /// (`input_features` and `feature_attention_mask` empty).
    pub fn tokens(&self, i: u64) -> Result<Block, LoaderError> {
        let sample = self.ds.get(i)?;
        let ints =
            |name: &str| int_column(&sample, name).ok_or_else(|| self.bad(i, format!("no integer column {name}")));
        let input_ids = ints("input_ids")?;
        let position_ids = ints("position_ids")?;
        if position_ids.len() != input_ids.len() {
            return Err(self.bad(i, format!("{} position ids for {} input ids", position_ids.len(), input_ids.len())));
        }
        let lengths = doc_lengths(&sample).ok_or_else(|| self.bad(i, "no document lengths"))?;
        let t = input_ids.len();
        let mut seq_lengths = Vec::with_capacity(lengths.len());
        let mut cu_seqlens = Vec::with_capacity(lengths.len() + 1);
        cu_seqlens.push(0i32);
        let mut used = 0usize;
        for &l in &lengths {
            let l = usize::try_from(l).map_err(|_| self.bad(i, format!("document length {l}")))?;
            used += l;
            if used > t {
                return Err(self.bad(i, format!("document lengths add up to more than its {t} tokens")));
            }
            // used <= t, and a block's length fits an i32 (pack bounds it to 2^20).
            seq_lengths.push(l as i32);
            cu_seqlens.push(used as i32);
        }
        let ids = self.options.ids;
        let mut labels: Vec<i64> = match self.layout {
            Layout::Standard => {
                let stored = ints("labels")?;
                if stored.len() != t {
                    return Err(self.bad(i, format!("{} labels for {t} input ids", stored.len())));
                }
                stored
            }
            Layout::Cooking => input_ids
                .iter()
                .enumerate()
                .map(|(k, &id)| {
                    let audio = id == ids.audio || id == ids.audio_bos || id == ids.audio_eos;
                    if audio || k >= used {
                        -100
                    } else {
                        id
                    }
                })
                .collect(),
        };
        // A document's first token is never a target: the shifted loss would predict it from the
        // previous document's last token (DataCollatorWithFlattening's separator).
        for &start in &cu_seqlens[..cu_seqlens.len() - 1] {
            if let Some(l) = labels.get_mut(start as usize) {
                *l = -100;
            }
        }
        let audio = self.audio_paths(&sample).ok_or_else(|| self.bad(i, "no audio list"))?;
        let n_mels = if self.options.kind == FeatureKind::Whisper80 { 80 } else { 128 };
        Ok(Block {
            index: i,
            input_ids,
            labels,
            position_ids,
            seq_lengths,
            cu_seqlens,
            audio,
            n_mels,
            frames: audiotok_features::whisper::N_SAMPLES / audiotok_features::whisper::HOP,
            input_features: Vec::new(),
            feature_attention_mask: Vec::new(),
        })
    }

    fn audio_paths(&self, sample: &Sample) -> Option<Vec<String>> {
        let parsed;
        let list = match (self.layout, sample.get("audio")?) {
            (Layout::Standard, Value::Json(j)) => j,
            (Layout::Cooking, Value::Str(s)) => {
                parsed = Json::parse(s).ok()?;
                &parsed
            }
            _ => return None,
        };
        list.as_array()?.iter().map(|p| p.as_str().map(str::to_string)).collect()
    }

    fn resolve(&self, p: &str) -> PathBuf {
        match &self.options.audio_root {
            Some(root) if Path::new(p).is_relative() => root.join(p),
            _ => PathBuf::from(p),
        }
    }

    /// Block `i` with its audios' features, computed with `fx` (from [`extractor`](Self::extractor)).
    pub fn block(&self, i: u64, fx: &mut FileExtractor) -> Result<Block, LoaderError> {
        let mut b = self.tokens(i)?;
        let frames = b.frames;
        b.input_features.reserve(b.audio.len() * b.n_mels * frames);
        b.feature_attention_mask.reserve(b.audio.len() * frames);
        let mut expected = 0u64;
        for (k, p) in b.audio.iter().enumerate() {
            let c = fx.compute(&self.resolve(p)).map_err(|reason| LoaderError::Audio {
                dir: self.dir.clone(),
                block: i,
                audio: k,
                reason,
            })?;
            let ones = c.features.mask_ones.unwrap_or(0).min(frames);
            b.input_features.extend_from_slice(&c.features.data);
            b.feature_attention_mask.extend((0..frames).map(|f| i32::from(f < ones)));
            expected += Profile::Qwen2Audio.count(c.samples as u64).total();
        }
        let found = b.input_ids.iter().filter(|&&t| t == self.options.ids.audio).count() as u64;
        if found != expected {
            return Err(self.bad(
                i,
                format!("{found} <|AUDIO|> tokens, but its {} audio(s) give {expected} audio features", b.audio.len()),
            ));
        }
        Ok(b)
    }
}
