//! The model configuration (serde; saved beside every checkpoint as `config.json`).

use serde::{Deserialize, Serialize};

use crate::Error;

/// How the per-sample entropy is computed (bsq-vit's `persample_entropy_compute`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntropyMode {
    /// Softmax over the `2^g` codes of each group of `g` bits (logits `2·τ·(z_g · c)`).
    Group,
    /// Per bit: `p = sigmoid(-4·τ·z/√L)`, a two-way distribution for every bit. As in bsq-vit, the
    /// codebook entropy then also runs over these per-bit distributions (the batch-averaged `p`).
    Analytical,
}

/// Hyper-parameters of the BSQ spectrogram tokenizer.
///
/// The input is a mel-db spectrogram (`n_mels` bins, frames at the feature hop) scaled to `[-1, 1]`,
/// cut in crops of at most `crop_frames` frames (a multiple of `time_patch`). Each crop is split into
/// `freq_patch x time_patch` patches, ordered time-major: token `n = t * (n_mels / freq_patch) + f`
/// for time patch `t` and frequency patch `f`, so a shorter crop uses the first rows of the positional
/// tables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Mel bins of the input (the features' `n_mels`).
    pub n_mels: usize,
    /// Longest crop in frames; sets the size of the positional tables.
    pub crop_frames: usize,
    /// Patch height in mel bins (divides `n_mels`).
    pub freq_patch: usize,
    /// Patch width in frames (divides `crop_frames`).
    pub time_patch: usize,
    /// Transformer width (encoder and decoder).
    pub width: usize,
    /// Encoder blocks.
    pub encoder_depth: usize,
    /// Decoder blocks.
    pub decoder_depth: usize,
    /// Attention heads (divide `width`).
    pub heads: usize,
    /// MLP hidden width as a multiple of `width`.
    pub mlp_ratio: f64,
    /// Whether every block carries a Conformer convolution module.
    pub conformer: bool,
    /// Kernel of the Conformer depthwise convolution (odd).
    pub conv_kernel: usize,
    /// Hidden width of the decoder's output head (`Linear + Tanh`, then `Linear` to the patch).
    pub head_dim: usize,
    /// Bits per code `L` (at most 32: the index is a `u32`).
    pub bits: usize,
    /// Bits per entropy group `g` (divides `bits`; `2^g` group codes, at most 2^16).
    pub group_size: usize,
    /// Inverse temperature `τ` of the soft entropy.
    pub inv_temperature: f64,
    /// Weight `β` of the commitment loss.
    pub beta: f64,
    /// Weight `γ0` of the per-sample entropy.
    pub gamma0: f64,
    /// Weight `γ` of the codebook entropy.
    pub gamma: f64,
    /// Weight `ζ` of the whole entropy penalty.
    pub zeta: f64,
    /// Per-sample entropy variant.
    pub persample_entropy: EntropyMode,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            n_mels: 128,
            crop_frames: 1024,
            freq_patch: 16,
            time_patch: 16,
            width: 512,
            encoder_depth: 8,
            decoder_depth: 8,
            heads: 8,
            mlp_ratio: 4.0,
            conformer: true,
            conv_kernel: 31,
            head_dim: 1024,
            bits: 18,
            group_size: 9,
            inv_temperature: 1.0,
            beta: 0.0,
            gamma0: 1.0,
            gamma: 1.0,
            zeta: 1.0,
            persample_entropy: EntropyMode::Group,
        }
    }
}

impl Config {
    /// Reads a JSON configuration (missing fields take the defaults, unknown fields are an error)
    /// and validates it.
    pub fn from_json(text: &str) -> Result<Config, Error> {
        let cfg: Config = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks every constraint the model relies on; the message names the field.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        for (name, v) in [
            ("n_mels", self.n_mels),
            ("crop_frames", self.crop_frames),
            ("freq_patch", self.freq_patch),
            ("time_patch", self.time_patch),
            ("width", self.width),
            ("heads", self.heads),
            ("head_dim", self.head_dim),
            ("bits", self.bits),
            ("group_size", self.group_size),
            ("conv_kernel", self.conv_kernel),
        ] {
            if v == 0 {
                return bad(format!("{name} must be positive"));
            }
        }
        if self.n_mels % self.freq_patch != 0 {
            return bad(format!("freq_patch {} does not divide n_mels {}", self.freq_patch, self.n_mels));
        }
        if self.crop_frames % self.time_patch != 0 {
            return bad(format!("time_patch {} does not divide crop_frames {}", self.time_patch, self.crop_frames));
        }
        if self.width % self.heads != 0 {
            return bad(format!("heads {} does not divide width {}", self.heads, self.width));
        }
        if self.bits > 32 {
            return bad(format!("bits {} is more than 32 (indices are u32)", self.bits));
        }
        if self.bits % self.group_size != 0 {
            return bad(format!("group_size {} does not divide bits {}", self.group_size, self.bits));
        }
        if self.group_size > 16 {
            return bad(format!("group_size {} is more than 16 (2^g group codes per token)", self.group_size));
        }
        if self.conv_kernel % 2 == 0 {
            return bad(format!("conv_kernel {} must be odd", self.conv_kernel));
        }
        if !(self.mlp_ratio.is_finite() && self.mlp_hidden() > 0) {
            return bad(format!("mlp_ratio {} gives no MLP width", self.mlp_ratio));
        }
        for (name, v) in [
            ("inv_temperature", self.inv_temperature),
            ("beta", self.beta),
            ("gamma0", self.gamma0),
            ("gamma", self.gamma),
            ("zeta", self.zeta),
        ] {
            if !v.is_finite() || v < 0.0 {
                return bad(format!("{name} {v} must be finite and not negative"));
            }
        }
        if self.inv_temperature == 0.0 {
            return bad("inv_temperature must be positive".into());
        }
        Ok(())
    }

    /// MLP hidden width (`int(width * mlp_ratio)`, as PyTorch models compute it).
    pub fn mlp_hidden(&self) -> usize {
        (self.width as f64 * self.mlp_ratio) as usize
    }

    /// Frequency patches per crop.
    pub fn freq_patches(&self) -> usize {
        self.n_mels / self.freq_patch
    }

    /// Time patches in the longest crop.
    pub fn max_time_patches(&self) -> usize {
        self.crop_frames / self.time_patch
    }

    /// Tokens (patches) in the longest crop.
    pub fn max_tokens(&self) -> usize {
        self.freq_patches() * self.max_time_patches()
    }

    /// Values in one patch.
    pub fn patch_len(&self) -> usize {
        self.freq_patch * self.time_patch
    }

    /// Entropy groups `L / g`.
    pub fn groups(&self) -> usize {
        self.bits / self.group_size
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_round_trips() {
        let c = Config::default();
        c.validate().unwrap();
        let back = Config::from_json(&serde_json::to_string(&c).unwrap()).unwrap();
        assert_eq!(back, c);
        assert_eq!(c.max_tokens(), 8 * 64);
    }

    #[test]
    fn bad_configs_name_the_field() {
        let e = Config::from_json(r#"{"time_patch": 12}"#).unwrap_err().to_string();
        assert!(e.contains("time_patch 12 does not divide crop_frames 1024"), "{e}");
        let e = Config::from_json(r#"{"freq_patch": 10}"#).unwrap_err().to_string();
        assert!(e.contains("freq_patch 10 does not divide n_mels 128"), "{e}");
        let e = Config::from_json(r#"{"bits": 18, "group_size": 4}"#).unwrap_err().to_string();
        assert!(e.contains("group_size 4 does not divide bits 18"), "{e}");
        let e = Config::from_json(r#"{"conv_kernel": 4}"#).unwrap_err().to_string();
        assert!(e.contains("conv_kernel 4 must be odd"), "{e}");
        let e = Config::from_json(r#"{"heads": 3}"#).unwrap_err().to_string();
        assert!(e.contains("heads 3 does not divide width 512"), "{e}");
        let e = Config::from_json(r#"{"bitz": 3}"#).unwrap_err().to_string();
        assert!(e.contains("unknown field `bitz`"), "{e}");
    }
}
