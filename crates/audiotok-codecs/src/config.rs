//! The SNAC configuration, as published in the models' `config.json`.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Hyper-parameters of a SNAC model, read from the `config.json` published beside its weights.
///
/// Field names and defaults follow the reference Python package (`snac.SNAC.__init__`): a missing
/// field takes the reference default (the 44.1 kHz model), `latent_dim` defaults to
/// `encoder_dim * 2^len(encoder_rates)`, and `attn_window_size: null` disables the attention layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Sample rate of the audio the model encodes and decodes.
    pub sampling_rate: usize,
    /// Channels of the encoder's first convolution (doubled by every encoder block).
    pub encoder_dim: usize,
    /// Down-sampling factor of each encoder block.
    pub encoder_rates: Vec<usize>,
    /// Channels of the latent sequence (`None`: `encoder_dim * 2^len(encoder_rates)`).
    pub latent_dim: Option<usize>,
    /// Channels of the decoder's first convolution (halved by every decoder block).
    pub decoder_dim: usize,
    /// Up-sampling factor of each decoder block.
    pub decoder_rates: Vec<usize>,
    /// Window (in latent frames) of the local attention layers; `None` = no attention.
    pub attn_window_size: Option<usize>,
    /// Entries per codebook.
    pub codebook_size: usize,
    /// Dimension of a codebook entry.
    pub codebook_dim: usize,
    /// Temporal stride of each codebook (one codebook per entry, coarsest first).
    pub vq_strides: Vec<usize>,
    /// Whether the decoder blocks carry noise layers.
    pub noise: bool,
    /// Whether convolutions are depthwise (grouped) where the reference makes them so.
    pub depthwise: bool,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            sampling_rate: 44100,
            encoder_dim: 64,
            encoder_rates: vec![3, 3, 7, 7],
            latent_dim: None,
            decoder_dim: 1536,
            decoder_rates: vec![7, 7, 3, 3],
            attn_window_size: Some(32),
            codebook_size: 4096,
            codebook_dim: 8,
            vq_strides: vec![8, 4, 2, 1],
            noise: true,
            depthwise: true,
        }
    }
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

impl Config {
    /// The published 24 kHz configuration (`hubertsiuzdak/snac_24khz`): 3 codebooks, no attention.
    pub fn snac_24khz() -> Self {
        Self {
            sampling_rate: 24000,
            encoder_dim: 48,
            encoder_rates: vec![2, 4, 8, 8],
            latent_dim: None,
            decoder_dim: 1024,
            decoder_rates: vec![8, 8, 4, 2],
            attn_window_size: None,
            codebook_size: 4096,
            codebook_dim: 8,
            vq_strides: vec![4, 2, 1],
            noise: true,
            depthwise: true,
        }
    }

    /// The published 32 kHz configuration (`hubertsiuzdak/snac_32khz`): 4 codebooks, local attention.
    pub fn snac_32khz() -> Self {
        Self {
            sampling_rate: 32000,
            encoder_dim: 64,
            encoder_rates: vec![2, 3, 8, 8],
            latent_dim: None,
            decoder_dim: 1536,
            decoder_rates: vec![8, 8, 3, 2],
            attn_window_size: Some(32),
            codebook_size: 4096,
            codebook_dim: 8,
            vq_strides: vec![8, 4, 2, 1],
            noise: true,
            depthwise: true,
        }
    }

    /// The published 44.1 kHz configuration (`hubertsiuzdak/snac_44khz`): the 32 kHz layout at 44.1 kHz.
    pub fn snac_44khz() -> Self {
        Self { sampling_rate: 44100, ..Self::snac_32khz() }
    }

    /// Reads a configuration from the text of a `config.json`.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let cfg: Self = serde_json::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks that the numbers describe a model that can be built.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        if self.sampling_rate == 0 || self.encoder_dim == 0 || self.decoder_dim == 0 {
            return bad("sampling_rate, encoder_dim and decoder_dim must be positive".into());
        }
        if self.encoder_rates.is_empty() || self.encoder_rates.contains(&0) {
            return bad(format!("encoder_rates must be non-empty and positive, got {:?}", self.encoder_rates));
        }
        if self.decoder_rates.is_empty() || self.decoder_rates.contains(&0) {
            return bad(format!("decoder_rates must be non-empty and positive, got {:?}", self.decoder_rates));
        }
        if self.vq_strides.is_empty() || self.vq_strides.contains(&0) {
            return bad(format!("vq_strides must be non-empty and positive, got {:?}", self.vq_strides));
        }
        if self.codebook_size == 0 || self.codebook_dim == 0 {
            return bad("codebook_size and codebook_dim must be positive".into());
        }
        if self.decoder_dim % (1usize << self.decoder_rates.len()) != 0 {
            return bad(format!(
                "decoder_dim {} must be divisible by 2^{} (one halving per decoder rate)",
                self.decoder_dim,
                self.decoder_rates.len()
            ));
        }
        if let Some(w) = self.attn_window_size {
            if w == 0 {
                return bad("attn_window_size must be positive or null".into());
            }
            for (name, dim) in [("latent_dim", self.latent_dim()), ("decoder_dim", self.decoder_dim)] {
                if dim % 64 != 0 {
                    return bad(format!("with attention, {name} ({dim}) must be a multiple of the 64-wide heads"));
                }
            }
        }
        if self.encoder_rates.iter().product::<usize>() != self.decoder_rates.iter().product::<usize>() {
            return bad(format!(
                "encoder_rates {:?} and decoder_rates {:?} must have the same product",
                self.encoder_rates, self.decoder_rates
            ));
        }
        Ok(())
    }

    /// Channels of the latent sequence.
    pub fn latent_dim(&self) -> usize {
        self.latent_dim.unwrap_or(self.encoder_dim << self.encoder_rates.len())
    }

    /// Audio samples per latent frame (the product of the encoder rates).
    pub fn hop_length(&self) -> usize {
        self.encoder_rates.iter().product()
    }

    /// Number of codebooks (one per VQ stride).
    pub fn n_codebooks(&self) -> usize {
        self.vq_strides.len()
    }

    /// Latent frames that the padded input must be a multiple of: lcm(vq_strides[0], attn_window_size or 1).
    pub fn frame_multiple(&self) -> usize {
        let a = self.vq_strides[0];
        let b = self.attn_window_size.unwrap_or(1);
        a / gcd(a, b) * b
    }

    /// Samples the encoder input is right-padded to a multiple of: hop × [`Config::frame_multiple`].
    pub fn pad_multiple(&self) -> usize {
        self.hop_length() * self.frame_multiple()
    }

    /// Length in samples after the encoder's zero padding.
    pub fn padded_len(&self, len: usize) -> usize {
        len.div_ceil(self.pad_multiple()) * self.pad_multiple()
    }

    /// Codes per codebook for an input of `len` samples: `padded_len / hop / stride` per level.
    pub fn codes_per_level(&self, len: usize) -> Vec<usize> {
        let frames = self.padded_len(len) / self.hop_length();
        self.vq_strides.iter().map(|s| frames / s).collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn published_24khz_json_parses() {
        let text = r#"{"sampling_rate": 24000, "encoder_dim": 48, "encoder_rates": [2, 4, 8, 8],
            "decoder_dim": 1024, "decoder_rates": [8, 8, 4, 2], "attn_window_size": null,
            "codebook_size": 4096, "codebook_dim": 8, "vq_strides": [4, 2, 1], "noise": true, "depthwise": true}"#;
        let cfg = Config::from_json(text).unwrap();
        assert_eq!(cfg, Config::snac_24khz());
        assert_eq!(cfg.hop_length(), 512);
        assert_eq!(cfg.latent_dim(), 768);
        assert_eq!(cfg.pad_multiple(), 2048);
        assert_eq!(cfg.codes_per_level(24000), vec![12, 24, 48]);
    }

    #[test]
    fn attention_configs_pad_to_the_window() {
        let cfg = Config::snac_32khz();
        assert_eq!(cfg.hop_length(), 384);
        assert_eq!(cfg.latent_dim(), 1024);
        assert_eq!(cfg.frame_multiple(), 32);
        assert_eq!(cfg.pad_multiple(), 384 * 32);
        assert_eq!(cfg.codes_per_level(1), vec![4, 8, 16, 32]);
        assert_eq!(Config::snac_44khz().sampling_rate, 44100);
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(Config::from_json("{\"encoder_rates\": []}").is_err());
        assert!(Config::from_json("{\"decoder_rates\": [2, 2, 2, 2]}").is_err());
        assert!(Config::from_json("not json").is_err());
    }
}
