//! Model configurations, read from an HF `config.json` by its `model_type`.

use serde::Deserialize;

use crate::{Error, Result};

/// The wav2vec2-family configuration (`model_type` `hubert` or `wav2vec2`): the fields of
/// transformers' `HubertConfig` / `Wav2Vec2Config` that inference reads.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Wav2Vec2Config {
    /// `hubert` or `wav2vec2`.
    #[serde(default)]
    pub model_type: String,
    /// Channels of each feature-extractor convolution.
    #[serde(default = "d_conv_dim")]
    pub conv_dim: Vec<usize>,
    /// Strides of the convolutions.
    #[serde(default = "d_conv_stride")]
    pub conv_stride: Vec<usize>,
    /// Kernels of the convolutions.
    #[serde(default = "d_conv_kernel")]
    pub conv_kernel: Vec<usize>,
    /// Whether the convolutions have a bias.
    #[serde(default)]
    pub conv_bias: bool,
    /// `group` (GroupNorm on conv 0 only) or `layer` (LayerNorm after every conv).
    #[serde(default = "d_group")]
    pub feat_extract_norm: String,
    /// Activation of the feature extractor (`gelu`).
    #[serde(default = "d_gelu")]
    pub feat_extract_activation: String,
    /// Whether the feature projection starts with a LayerNorm (HuBERT's option; wav2vec2 always has it).
    #[serde(default = "d_true")]
    pub feat_proj_layer_norm: bool,
    /// Model width.
    #[serde(default = "d_768")]
    pub hidden_size: usize,
    /// Encoder layers.
    #[serde(default = "d_12")]
    pub num_hidden_layers: usize,
    /// Attention heads.
    #[serde(default = "d_12")]
    pub num_attention_heads: usize,
    /// Feed-forward width.
    #[serde(default = "d_3072")]
    pub intermediate_size: usize,
    /// Feed-forward activation (`gelu`).
    #[serde(default = "d_gelu")]
    pub hidden_act: String,
    /// LayerNorm epsilon of the encoder.
    #[serde(default = "d_eps")]
    pub layer_norm_eps: f64,
    /// Kernel of the positional convolution.
    #[serde(default = "d_128")]
    pub num_conv_pos_embeddings: usize,
    /// Groups of the positional convolution.
    #[serde(default = "d_16")]
    pub num_conv_pos_embedding_groups: usize,
    /// true: pre-LN layers with the final `encoder.layer_norm`; false: post-LN with the LayerNorm before the layers.
    #[serde(default)]
    pub do_stable_layer_norm: bool,
    /// A BatchNorm before the positional convolution, whose weight is then plain (no weight norm).
    #[serde(default)]
    pub conv_pos_batch_norm: bool,
    /// wav2vec2's adapter (not supported).
    #[serde(default)]
    pub add_adapter: bool,
    /// wav2vec2's attention adapters (not supported).
    #[serde(default)]
    pub adapter_attn_dim: Option<usize>,
}

fn d_conv_dim() -> Vec<usize> {
    vec![512; 7]
}
fn d_conv_stride() -> Vec<usize> {
    vec![5, 2, 2, 2, 2, 2, 2]
}
fn d_conv_kernel() -> Vec<usize> {
    vec![10, 3, 3, 3, 3, 2, 2]
}
fn d_group() -> String {
    "group".into()
}
fn d_gelu() -> String {
    "gelu".into()
}
fn d_true() -> bool {
    true
}
fn d_768() -> usize {
    768
}
fn d_12() -> usize {
    12
}
fn d_3072() -> usize {
    3072
}
fn d_eps() -> f64 {
    1e-5
}
fn d_128() -> usize {
    128
}
fn d_16() -> usize {
    16
}
fn d_1500() -> usize {
    1500
}
fn d_128mels() -> usize {
    128
}

impl Wav2Vec2Config {
    /// Checks what inference relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let n = self.conv_dim.len();
        if n == 0 || self.conv_stride.len() != n || self.conv_kernel.len() != n {
            return bad(format!(
                "conv_dim, conv_stride and conv_kernel must have one entry per convolution (got {}, {}, {})",
                n,
                self.conv_stride.len(),
                self.conv_kernel.len()
            ));
        }
        if self.conv_dim.contains(&0) || self.conv_stride.contains(&0) || self.conv_kernel.contains(&0) {
            return bad("conv_dim, conv_stride and conv_kernel must be positive".into());
        }
        if !matches!(self.feat_extract_norm.as_str(), "group" | "layer") {
            return bad(format!("feat_extract_norm {:?}: expected \"group\" or \"layer\"", self.feat_extract_norm));
        }
        for (what, act) in
            [("feat_extract_activation", &self.feat_extract_activation), ("hidden_act", &self.hidden_act)]
        {
            if act != "gelu" {
                return bad(format!("{what} {act:?}: only \"gelu\" (exact erf) is supported"));
            }
        }
        let h = self.hidden_size;
        if h == 0 || self.num_attention_heads == 0 || h % self.num_attention_heads != 0 {
            return bad(format!(
                "hidden_size {h} must be a positive multiple of num_attention_heads {}",
                self.num_attention_heads
            ));
        }
        let g = self.num_conv_pos_embedding_groups;
        if g == 0 || h % g != 0 || self.num_conv_pos_embeddings == 0 {
            return bad(format!("hidden_size {h} must be a multiple of num_conv_pos_embedding_groups {g}"));
        }
        if self.add_adapter || self.adapter_attn_dim.is_some() {
            return bad("wav2vec2 adapters (add_adapter, adapter_attn_dim) are not supported".into());
        }
        if h > 1 << 16 || self.intermediate_size > 1 << 18 || self.num_hidden_layers > 256 || n > 64 {
            return bad("implausibly large configuration".into());
        }
        Ok(())
    }

    /// Encoder frames for `samples` input samples: each conv gives `(L - k) / s + 1`; 0 when too short.
    pub fn frames(&self, samples: usize) -> usize {
        let mut l = samples;
        for (&k, &s) in self.conv_kernel.iter().zip(&self.conv_stride) {
            if l < k {
                return 0;
            }
            l = (l - k) / s + 1;
        }
        l
    }

    /// The receptive field in samples: the shortest input giving one frame.
    pub fn receptive_field(&self) -> usize {
        let mut r = 1;
        for (&k, &s) in self.conv_kernel.iter().zip(&self.conv_stride).rev() {
            r = (r - 1) * s + k;
        }
        r
    }

    /// Samples per frame (the product of the strides).
    pub fn hop(&self) -> usize {
        self.conv_stride.iter().product()
    }
}

/// The Whisper-style encoder configuration (`qwen2_audio`'s `audio_config`, `qwen2_audio_encoder`,
/// the encoder half of `whisper`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct TowerConfig {
    /// Mel bins of the input (128 for Qwen2-Audio and Whisper v3, 80 before).
    #[serde(default = "d_128mels")]
    pub num_mel_bins: usize,
    /// Model width.
    #[serde(default = "d_1280")]
    pub d_model: usize,
    /// Encoder layers.
    #[serde(default = "d_32")]
    pub encoder_layers: usize,
    /// Attention heads.
    #[serde(default = "d_20")]
    pub encoder_attention_heads: usize,
    /// Feed-forward width.
    #[serde(default = "d_5120")]
    pub encoder_ffn_dim: usize,
    /// Positions (1500: 30 s).
    #[serde(default = "d_1500")]
    pub max_source_positions: usize,
    /// Activation (`gelu`).
    #[serde(default = "d_gelu")]
    pub activation_function: String,
}

fn d_1280() -> usize {
    1280
}
fn d_32() -> usize {
    32
}
fn d_20() -> usize {
    20
}
fn d_5120() -> usize {
    5120
}

impl TowerConfig {
    /// Checks what inference relies on.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::Config(m));
        let h = self.d_model;
        if h == 0 || self.encoder_attention_heads == 0 || h % self.encoder_attention_heads != 0 {
            return bad(format!(
                "d_model {h} must be a positive multiple of encoder_attention_heads {}",
                self.encoder_attention_heads
            ));
        }
        if self.activation_function != "gelu" {
            return bad(format!("activation_function {:?}: only \"gelu\" is supported", self.activation_function));
        }
        if self.max_source_positions != 1500 {
            return bad(format!(
                "max_source_positions {}: the 30 s window of 3000 mel frames needs 1500",
                self.max_source_positions
            ));
        }
        if !matches!(self.num_mel_bins, 80 | 128) {
            return bad(format!("num_mel_bins {}: the Whisper features have 80 or 128", self.num_mel_bins));
        }
        if h > 1 << 16 || self.encoder_ffn_dim > 1 << 18 || self.encoder_layers > 256 {
            return bad("implausibly large configuration".into());
        }
        Ok(())
    }
}

/// The configuration of a supported model folder.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    /// `hubert` / `wav2vec2`.
    Wav2Vec2(Wav2Vec2Config),
    /// `qwen2_audio` (with its projector to the LLM width) or `qwen2_audio_encoder` (`projector` None).
    Qwen2Audio {
        /// The audio tower.
        tower: TowerConfig,
        /// The projector's output width (`text_config.hidden_size`), for a full `qwen2_audio` folder.
        projector: Option<usize>,
    },
    /// The encoder of a `whisper` checkpoint.
    Whisper(TowerConfig),
}

/// The `model_type`s this crate reads.
pub const MODEL_TYPES: &[&str] = &["hubert", "wav2vec2", "qwen2_audio", "qwen2_audio_encoder", "whisper"];

impl ModelConfig {
    /// Parses a `config.json` text.
    pub fn from_json(text: &str) -> Result<Self> {
        let v: serde_json::Value = serde_json::from_str(text).map_err(|e| Error::Config(format!("not JSON: {e}")))?;
        let mt = v.get("model_type").and_then(|m| m.as_str()).unwrap_or_default().to_string();
        fn de<T: serde::de::DeserializeOwned>(mt: &str, v: serde_json::Value) -> Result<T> {
            serde_json::from_value(v).map_err(|e| Error::Config(format!("bad {mt} configuration: {e}")))
        }
        let cfg = match mt.as_str() {
            "hubert" | "wav2vec2" => {
                let mut c: Wav2Vec2Config = de(&mt, v.clone())?;
                if mt == "wav2vec2" {
                    c.feat_proj_layer_norm = true;
                    c.conv_pos_batch_norm = false;
                }
                c.validate()?;
                ModelConfig::Wav2Vec2(c)
            }
            "qwen2_audio" => {
                let audio = v.get("audio_config").cloned().unwrap_or(serde_json::json!({}));
                let tower: TowerConfig = de(&mt, audio)?;
                tower.validate()?;
                let hidden = v.get("text_config").and_then(|t| t.get("hidden_size")).and_then(|h| h.as_u64());
                let projector = Some(hidden.map_or(4096, |h| h as usize));
                ModelConfig::Qwen2Audio { tower, projector }
            }
            "qwen2_audio_encoder" => {
                let tower: TowerConfig = de(&mt, v)?;
                tower.validate()?;
                ModelConfig::Qwen2Audio { tower, projector: None }
            }
            "whisper" => {
                let tower: TowerConfig = de(&mt, v)?;
                tower.validate()?;
                ModelConfig::Whisper(tower)
            }
            "" => return Err(Error::Config("config.json has no model_type".into())),
            other => {
                return Err(Error::Config(format!(
                    "model_type {other:?} is not an audio encoder audiotok embeds (supported: {})",
                    MODEL_TYPES.join(", ")
                )))
            }
        };
        Ok(cfg)
    }

    /// The `model_type` family name.
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Wav2Vec2(c) if c.model_type == "wav2vec2" => "wav2vec2",
            ModelConfig::Wav2Vec2(_) => "hubert",
            ModelConfig::Qwen2Audio { .. } => "qwen2_audio",
            ModelConfig::Whisper(_) => "whisper",
        }
    }

    /// Encoder layers.
    pub fn num_layers(&self) -> usize {
        match self {
            ModelConfig::Wav2Vec2(c) => c.num_hidden_layers,
            ModelConfig::Qwen2Audio { tower, .. } | ModelConfig::Whisper(tower) => tower.encoder_layers,
        }
    }
}
