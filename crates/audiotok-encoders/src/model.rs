//! A model folder loaded by its `config.json` `model_type`, behind one interface over samples.

use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};

use crate::config::{ModelConfig, TowerConfig};
use crate::hubert::Wav2Vec2;
use crate::weights::{resolve_model_dir, sha1_file, Loader, Store};
use crate::whisper::{MelWindow, Tower, TowerKind, MEL_FRAMES};
use crate::{Error, Result};

/// Which tensor of a model to return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Tap {
    /// Entry `k` of the hidden states: 0 is the input of the first encoder layer, `k >= 1` the raw
    /// output of layer `k` (before any final norm or pool).
    Hidden(usize),
    /// `last_hidden_state`: after the final LayerNorm of pre-LN models, and Qwen2-Audio's pool and norm.
    Final,
    /// Qwen2-Audio's multi-modal projector output (the LLM's input embeddings).
    Projected,
}

/// The loaded network.
// One per loaded model: the size difference costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Net {
    /// HuBERT / wav2vec2.
    Wav2Vec2(Wav2Vec2),
    /// Qwen2-Audio tower or Whisper encoder.
    Tower(Tower),
}

/// A loaded encoder with where it came from.
#[derive(Debug)]
pub struct Encoder {
    /// The network.
    pub net: Net,
    /// The parsed configuration.
    pub config: ModelConfig,
    /// The model folder.
    pub dir: PathBuf,
    /// SHA-1 of its `config.json`.
    pub config_sha1: String,
    /// wav2vec2 family: whether the input is normalised (`preprocessor_config.json` `do_normalize`).
    pub do_normalize: bool,
}

/// One output of [`Encoder::embed`]: the tapped tensors of a clip as one `(taps, frames, dim)` array.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Frames.
    pub frames: usize,
    /// Width.
    pub dim: usize,
    /// `(taps, frames, dim)` in C order.
    pub data: Vec<f32>,
}

/// Samples of one Whisper / Qwen2-Audio window: 30 s at 16 kHz.
pub const WINDOW_SAMPLES: usize = 480_000;

fn prefixed(store: &Store, bare: &str, prefixes: &[&str]) -> Option<String> {
    prefixes.iter().find(|p| store.contains(&format!("{p}{bare}"))).map(|p| p.to_string())
}

impl Encoder {
    /// Loads a model folder or a hub id from the HF cache.
    pub fn load(model: &str) -> Result<Self> {
        let dir = resolve_model_dir(model).map_err(|e| Error::NotFound(e.to_string()))?;
        Self::load_dir(&dir)
    }

    /// Loads a model folder.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::Io(cfg_path.clone(), e))?;
        let config = ModelConfig::from_json(&text).map_err(|e| match e {
            Error::Config(m) => Error::Config(format!("{}: {m}", cfg_path.display())),
            e => e,
        })?;
        let config_sha1 = sha1_file(&cfg_path)?;
        let source = dir.display().to_string();
        let device = Device::Cpu;
        let (net, do_normalize) = match &config {
            ModelConfig::Wav2Vec2(c) => {
                let prefixes = ["", "hubert.", "wav2vec2.", "data2vec_audio."];
                let ns: Vec<String> = ["feature_extractor.", "feature_projection.", "encoder.", "masked_spec_embed"]
                    .iter()
                    .flat_map(|n| prefixes.iter().map(move |p| format!("{p}{n}")))
                    .collect();
                let store = Store::open(dir, &|n| ns.iter().any(|s| n.starts_with(s.as_str())))?;
                let prefix = prefixed(&store, "feature_projection.projection.weight", &prefixes).unwrap_or_default();
                let l = Loader::new(&store, &prefix, &device, &source);
                let m = Wav2Vec2::new(c, &l)?;
                let mine: Vec<String> = ns.iter().filter(|n| n.starts_with(prefix.as_str())).cloned().collect();
                l.finish(&mine)?;
                (Net::Wav2Vec2(m), read_do_normalize(dir)?)
            }
            ModelConfig::Qwen2Audio { tower, projector } => {
                (Net::Tower(load_tower(dir, tower, TowerKind::Qwen2Audio, *projector, &source)?), false)
            }
            ModelConfig::Whisper(tower) => {
                (Net::Tower(load_tower(dir, tower, TowerKind::Whisper, None, &source)?), false)
            }
        };
        Ok(Encoder { net, config, dir: dir.to_path_buf(), config_sha1, do_normalize })
    }

    /// Output frames per second of a tap.
    pub fn frame_rate(&self, tap: Tap) -> f64 {
        match (&self.net, tap) {
            (Net::Wav2Vec2(m), _) => 16_000.0 / m.config().hop() as f64,
            (Net::Tower(_), Tap::Hidden(_)) => 50.0,
            (Net::Tower(_), _) => {
                if matches!(self.config, ModelConfig::Whisper(_)) {
                    50.0
                } else {
                    25.0
                }
            }
        }
    }

    /// Output width of a tap.
    pub fn dim(&self, tap: Tap) -> usize {
        match &self.net {
            Net::Wav2Vec2(m) => m.dim(),
            Net::Tower(t) => t.dim(tap),
        }
    }

    /// Layers of the encoder.
    pub fn num_layers(&self) -> usize {
        self.config.num_layers()
    }

    /// The shortest clip (samples at 16 kHz) giving one output frame.
    pub fn min_samples(&self) -> usize {
        match &self.net {
            Net::Wav2Vec2(m) => m.config().receptive_field(),
            // One valid mel frame gives one tower frame; a pooled output row needs 3 mel frames.
            Net::Tower(_) => 1,
        }
    }

    /// Embeds a batch of 16 kHz mono clips, each within one window (wav2vec2: any length the
    /// caller allows; towers: at most 30 s). Returns one `(taps, frames, dim)` array per clip.
    pub fn embed(&self, clips: &[&[f32]], taps: &[Tap]) -> Result<Vec<Embedding>> {
        for (i, c) in clips.iter().enumerate() {
            if let Some(j) = c.iter().position(|v| !v.is_finite()) {
                return Err(Error::Input(format!("clip {i}: non-finite sample (NaN or infinity) at sample {j}")));
            }
        }
        let per_clip: Vec<Vec<Tensor>> = match &self.net {
            Net::Wav2Vec2(m) => {
                let normed: Vec<Vec<f32>> = if self.do_normalize {
                    clips.iter().map(|c| audiotok_features::wav2vec2::normalize(c).data).collect()
                } else {
                    clips.iter().map(|c| c.to_vec()).collect()
                };
                let refs: Vec<&[f32]> = normed.iter().map(|v| v.as_slice()).collect();
                m.forward(&refs, taps)?
            }
            Net::Tower(t) => {
                let mut ex = audiotok_features::whisper::Whisper::new(
                    t.config().num_mel_bins,
                    audiotok_features::whisper::WhisperPadding::MaxLength,
                );
                let mut wins = Vec::with_capacity(clips.len());
                for (i, c) in clips.iter().enumerate() {
                    if c.len() > WINDOW_SAMPLES {
                        return Err(Error::Input(format!("clip {i}: longer than one 30 s window")));
                    }
                    if c.is_empty() {
                        return Err(Error::Input(format!("clip {i}: no samples")));
                    }
                    let f = ex.compute(c);
                    let valid = f.mask_ones.unwrap_or(MEL_FRAMES);
                    wins.push(MelWindow { mel: f.data, valid });
                }
                t.forward_mels(&wins, taps, true)?
            }
        };
        let mut out = Vec::with_capacity(per_clip.len());
        for ts in per_clip {
            let frames = ts.first().map(|t| t.dim(0)).transpose()?.unwrap_or(0);
            let dim = ts.first().map(|t| t.dim(1)).transpose()?.unwrap_or(0);
            let mut data = Vec::with_capacity(ts.len() * frames * dim);
            for t in &ts {
                if t.dims() != [frames, dim] {
                    return Err(Error::Config(format!(
                        "the selected layers have different shapes ({:?} and {:?}): ask for them separately",
                        t.dims(),
                        [frames, dim]
                    )));
                }
                data.extend(t.flatten_all()?.to_vec1::<f32>()?);
            }
            out.push(Embedding { frames, dim, data });
        }
        Ok(out)
    }
}

/// Tensor names of a bare tower (a saved `Qwen2AudioEncoder`).
const TOWER_NAMES: [&str; 5] = ["conv1.", "conv2.", "embed_positions.", "layers.", "layer_norm."];

fn load_tower(dir: &Path, cfg: &TowerConfig, kind: TowerKind, proj_out: Option<usize>, source: &str) -> Result<Tower> {
    let device = Device::Cpu;
    let prefixes: &[&str] = match kind {
        TowerKind::Whisper => &["model.encoder.", "encoder."],
        TowerKind::Qwen2Audio => &["audio_tower.", ""],
    };
    let keep = |n: &str| match kind {
        TowerKind::Whisper => n.starts_with("model.encoder.") || n.starts_with("encoder."),
        TowerKind::Qwen2Audio => {
            n.starts_with("audio_tower.")
                || n.starts_with("multi_modal_projector.")
                || TOWER_NAMES.iter().any(|p| n.starts_with(p))
        }
    };
    let store = Store::open(dir, &keep)?;
    let prefix = prefixed(&store, "conv1.weight", prefixes).unwrap_or_else(|| prefixes[0].to_string());
    let l = Loader::new(&store, &prefix, &device, source);
    let pl = Loader::new(&store, "multi_modal_projector.", &device, source);
    let t = Tower::new(cfg, kind, &l, proj_out.map(|o| (&pl, o)))?;
    let ns: Vec<String> = if prefix.is_empty() { TOWER_NAMES.map(String::from).to_vec() } else { vec![prefix.clone()] };
    // Both loaders' records in one error.
    let a = l.finish(&ns);
    let b = if proj_out.is_some() { pl.finish(&["multi_modal_projector.".to_string()]) } else { Ok(()) };
    merge(a, b)?;
    Ok(t)
}

fn merge(a: Result<()>, b: Result<()>) -> Result<()> {
    match (a, b) {
        (Err(Error::Mismatch(mut x)), Err(Error::Mismatch(y))) => {
            x.missing.extend(y.missing);
            x.unexpected.extend(y.unexpected);
            x.misshaped.extend(y.misshaped);
            Err(Error::Mismatch(x))
        }
        (Err(e), _) | (_, Err(e)) => Err(e),
        _ => Ok(()),
    }
}

/// `do_normalize` of a folder's `preprocessor_config.json` (transformers' default, true, without one).
fn read_do_normalize(dir: &Path) -> Result<bool> {
    let p = dir.join("preprocessor_config.json");
    if !p.is_file() {
        return Ok(true);
    }
    let text = std::fs::read_to_string(&p).map_err(|e| Error::Io(p.clone(), e))?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| Error::Config(format!("{}: not JSON: {e}", p.display())))?;
    Ok(v.get("do_normalize").and_then(|b| b.as_bool()).unwrap_or(true))
}
