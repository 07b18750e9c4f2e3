//! The SNAC model: encoder, strided residual VQ, decoder.

use candle_core::{DType, Result, Tensor};
use candle_nn::VarBuilder;

use crate::layers::{Decoder, Encoder, NoiseRng};
use crate::vq::VectorQuantize;
use crate::Config;

/// A SNAC codec (multi-scale neural audio codec), built from a [`Config`] and its weights.
///
/// Tensor names follow the reference PyTorch module (`encoder.block.*`, `quantizer.quantizers.*`,
/// `decoder.model.*`) with weight-normalised convolutions already folded into plain `weight`s (the
/// loaders in [`crate::weights`] do this).
#[derive(Debug, Clone)]
pub struct Snac {
    cfg: Config,
    encoder: Encoder,
    quantizers: Vec<VectorQuantize>,
    decoder: Decoder,
}

impl Snac {
    /// Builds the model, reading every parameter from `vb`.
    pub fn new(cfg: &Config, vb: VarBuilder) -> Result<Self> {
        cfg.validate().map_err(|e| candle_core::Error::Msg(e.to_string()))?;
        let encoder =
            Encoder::new(vb.pp("encoder"), cfg.encoder_dim, &cfg.encoder_rates, cfg.depthwise, cfg.attn_window_size)?;
        let latent = cfg.latent_dim();
        let vq = vb.pp("quantizer").pp("quantizers");
        let quantizers = cfg
            .vq_strides
            .iter()
            .enumerate()
            .map(|(i, &s)| VectorQuantize::new(vq.pp(i), latent, cfg.codebook_size, cfg.codebook_dim, s))
            .collect::<Result<Vec<_>>>()?;
        let decoder = Decoder::new(
            vb.pp("decoder"),
            latent,
            cfg.decoder_dim,
            &cfg.decoder_rates,
            cfg.noise,
            cfg.depthwise,
            cfg.attn_window_size,
        )?;
        Ok(Self { cfg: cfg.clone(), encoder, quantizers, decoder })
    }

    /// The configuration the model was built from.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// Zero-pads `(batch, 1, samples)` audio on the right to a multiple of [`Config::pad_multiple`].
    pub fn preprocess(&self, audio: &Tensor) -> Result<Tensor> {
        let len = audio.dim(2)?;
        let right = self.cfg.padded_len(len) - len;
        if right == 0 {
            Ok(audio.clone())
        } else {
            audio.pad_with_zeros(2, 0, right)
        }
    }

    /// The encoder's latent `(batch, latent_dim, frames)` of already padded audio.
    pub fn encode_latent(&self, audio: &Tensor) -> Result<Tensor> {
        self.encoder.forward(audio)
    }

    /// Encodes `(batch, 1, samples)` audio at the model's rate into one `(batch, codes)` u32 tensor per
    /// codebook, coarsest first; level `i` has `padded_len / hop / vq_strides[i]` codes.
    pub fn encode(&self, audio: &Tensor) -> Result<Vec<Tensor>> {
        let (_, ch, _) = audio.dims3()?;
        if ch != 1 {
            candle_core::bail!("SNAC encodes mono audio shaped (batch, 1, samples), got {ch} channels");
        }
        let z = self.encode_latent(&self.preprocess(audio)?)?;
        let mut residual = z;
        let mut codes = Vec::with_capacity(self.quantizers.len());
        for q in &self.quantizers {
            let (c, z_q) = q.quantize(&residual)?;
            residual = (residual - z_q)?;
            codes.push(c);
        }
        Ok(codes)
    }

    /// The quantised latent that `codes` stand for (sum of every level's contribution).
    pub fn latent_from_codes(&self, codes: &[Tensor]) -> Result<Tensor> {
        if codes.len() != self.quantizers.len() {
            candle_core::bail!("expected {} codebooks, got {}", self.quantizers.len(), codes.len());
        }
        let (b, t0) = codes[0].dims2()?;
        let frames = t0 * self.quantizers[0].stride;
        for (i, (c, q)) in codes.iter().zip(&self.quantizers).enumerate() {
            let (bi, ti) = c.dims2()?;
            if bi != b || ti * q.stride != frames {
                candle_core::bail!(
                    "codebook {i} has shape ({bi}, {ti}); expected ({b}, {}) to match codebook 0",
                    frames / q.stride
                );
            }
        }
        if let Some(w) = self.cfg.attn_window_size {
            if frames % w != 0 {
                candle_core::bail!("{frames} latent frames is not a multiple of the {w}-frame attention window");
            }
        }
        let mut z: Option<Tensor> = None;
        for (c, q) in codes.iter().zip(&self.quantizers) {
            let part = q.decode_codes(c)?;
            z = Some(match z {
                None => part,
                Some(acc) => (acc + part)?,
            });
        }
        z.ok_or_else(|| candle_core::Error::Msg("no codebooks".into()))
    }

    /// Decodes codes (one `(batch, t_i)` tensor per codebook) to `(batch, 1, samples)` audio in [-1, 1].
    ///
    /// `noise`: `None` skips the decoder's noise layers (deterministic, the parity setting); a
    /// generator adds `N(0, 1)` noise scaled by each noise layer, like the reference at inference.
    pub fn decode(&self, codes: &[Tensor], noise: Option<&mut NoiseRng>) -> Result<Tensor> {
        let z = self.latent_from_codes(codes)?;
        self.decoder.forward(&z, noise)
    }

    /// Convenience: encodes one mono clip of f32 samples; returns the codes of each level.
    pub fn encode_samples(&self, samples: &[f32]) -> Result<Vec<Vec<u32>>> {
        let dev = self.quantizers[0].device();
        let x = Tensor::from_slice(samples, (1, 1, samples.len()), &dev)?.to_dtype(self.quantizers[0].dtype())?;
        self.encode(&x)?.iter().map(|c| c.squeeze(0)?.to_vec1::<u32>()).collect()
    }

    /// Convenience: decodes one clip's codes (one vector per level) to f32 samples (padded length).
    pub fn decode_codes(&self, codes: &[Vec<u32>], noise: Option<&mut NoiseRng>) -> Result<Vec<f32>> {
        let dev = self.quantizers[0].device();
        let tensors = codes.iter().map(|c| Tensor::from_slice(c, (1, c.len()), &dev)).collect::<Result<Vec<_>>>()?;
        self.decode(&tensors, noise)?.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()
    }
}
