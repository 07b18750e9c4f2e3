//! The SNAC configuration, as published in the models' `config.json`.

use serde::{Deserialize, Serialize};

use crate::Error;

/// Hyper-parameters of a SNAC model, read from the `config.json` published beside its weights.
///
/// Field names and defaults follow the reference Python package, which builds the model as
/// `SNAC(**config)`: a missing field takes `SNAC.__init__`'s default (the 44.1 kHz model; every field
/// has one, so none is required: [`Config::defaulted_fields`] says which were taken, for a warning),
/// an unknown field is an error (Python raises `TypeError` on it), `latent_dim` defaults to
/// `encoder_dim * 2^len(encoder_rates)`, and `attn_window_size: null` disables the attention layers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
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

/// The fields of `config.json` (the arguments of `snac.SNAC.__init__`), in its order.
pub const FIELDS: [&str; 12] = [
    "sampling_rate",
    "encoder_dim",
    "encoder_rates",
    "latent_dim",
    "decoder_dim",
    "decoder_rates",
    "attn_window_size",
    "codebook_size",
    "codebook_dim",
    "vq_strides",
    "noise",
    "depthwise",
];

/// Largest channel count, codebook size or dimension, rate, stride or attention window a config may
/// state (the published models use at most 4096), so that no arithmetic on them overflows and no
/// layer is absurdly large.
pub const MAX_DIM: usize = 1 << 16;
/// Most encoder or decoder blocks (the published models have 4).
pub const MAX_BLOCKS: usize = 8;
/// Most codebooks (the published models have 3 or 4).
pub const MAX_CODEBOOKS: usize = 16;

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

    /// The fields of [`FIELDS`] that the text of a `config.json` lacks (so take `SNAC.__init__`'s
    /// default), in [`FIELDS`] order; empty when the text is not a JSON object.
    pub fn defaulted_fields(text: &str) -> Vec<&'static str> {
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(serde_json::Value::Object(map)) => FIELDS.into_iter().filter(|f| !map.contains_key(*f)).collect(),
            _ => Vec::new(),
        }
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
        let dims = [
            ("sampling_rate", self.sampling_rate, 1 << 20),
            ("encoder_dim", self.encoder_dim, MAX_DIM),
            ("latent_dim", self.latent_dim.unwrap_or(0), MAX_DIM),
            ("decoder_dim", self.decoder_dim, MAX_DIM),
            ("attn_window_size", self.attn_window_size.unwrap_or(0), MAX_DIM),
            ("codebook_size", self.codebook_size, MAX_DIM),
            ("codebook_dim", self.codebook_dim, MAX_DIM),
        ];
        for (name, v, max) in dims {
            if v > max {
                return bad(format!("{name} {v} is larger than {max}"));
            }
        }
        let lists = [
            ("encoder_rates", &self.encoder_rates, MAX_BLOCKS),
            ("decoder_rates", &self.decoder_rates, MAX_BLOCKS),
            ("vq_strides", &self.vq_strides, MAX_CODEBOOKS),
        ];
        for (name, v, max_len) in lists {
            if v.len() > max_len || v.iter().any(|&x| x > MAX_DIM) {
                return bad(format!("{name} {v:?}: at most {max_len} entries of at most {MAX_DIM}"));
            }
        }
        let overflow = |name: &str| bad(format!("{name}: the sizes it implies overflow"));
        if self.latent_dim.is_none()
            && self.encoder_dim.checked_shl(self.encoder_rates.len() as u32).is_none_or(|d| d > MAX_DIM << MAX_BLOCKS)
        {
            return overflow("encoder_dim");
        }
        let hop = self.encoder_rates.iter().try_fold(1usize, |a, &r| a.checked_mul(r));
        let frame = self.vq_strides.first().copied().unwrap_or(1).checked_mul(self.attn_window_size.unwrap_or(1));
        if hop.zip(frame).and_then(|(h, f)| h.checked_mul(f)).is_none_or(|p| p > 1 << 40) {
            return overflow("encoder_rates");
        }
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
        let product = |v: &[usize]| v.iter().try_fold(1usize, |a, &r| a.checked_mul(r));
        if product(&self.encoder_rates) != product(&self.decoder_rates) {
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

    /// Codes per second of audio of each codebook, coarsest first (the token store's `rate_hz`).
    pub fn token_rates_hz(&self) -> Vec<f64> {
        let hop = self.hop_length();
        self.vq_strides.iter().map(|s| self.sampling_rate as f64 / (hop * s) as f64).collect()
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
    fn fields_follow_snac_init() {
        // Every field has a SNAC.__init__ default: missing ones are listed, unknown ones refused.
        assert_eq!(Config::defaulted_fields("{\"encoder_dim\": 64}").len(), FIELDS.len() - 1);
        assert_eq!(Config::defaulted_fields("{}")[0], "sampling_rate");
        assert_eq!(Config::from_json("{}").unwrap(), Config::default());
        let e = Config::from_json("{\"sample_rate\": 24000}").unwrap_err().to_string();
        assert!(e.contains("unknown field `sample_rate`"), "{e}");
    }

    #[test]
    fn hostile_sizes_are_errors_not_overflows() {
        for text in [
            "{\"encoder_rates\": [65536, 65536, 65536, 65536, 65536, 65536, 65536, 65536], \"decoder_rates\": [1]}",
            "{\"encoder_dim\": 18446744073709551615}",
            "{\"encoder_rates\": [2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]}",
            "{\"attn_window_size\": 65536, \"vq_strides\": [65536]}",
            "{\"codebook_size\": 4294967296}",
        ] {
            let e = Config::from_json(text).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{text}: {e}");
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        assert!(Config::from_json("{\"encoder_rates\": []}").is_err());
        assert!(Config::from_json("{\"decoder_rates\": [2, 2, 2, 2]}").is_err());
        assert!(Config::from_json("not json").is_err());
    }
}
