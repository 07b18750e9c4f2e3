//! The BSQ spectrogram tokenizer: patch embedding, transformer encoder (pre-LN blocks with an optional
//! Conformer convolution module), BSQ bottleneck, transformer decoder, output head, un-patchify.
//!
//! Every op on the training path is differentiable in candle (see [`crate::ops`]). `encode_indices`
//! and `decode_indices`, which need no gradient, use candle's fused LayerNorm and softmax instead
//! (the parity tests check those paths against the reference too).

use candle_core::{Result as CResult, Tensor, Var, D};

use crate::bsq::{self, Quantized};
use crate::ops::{clamp, l2_normalize, layer_norm, softmax_last};
use crate::params::Params;
use crate::{Config, Error};

/// LayerNorm epsilon (PyTorch's default).
pub const LN_EPS: f64 = 1e-5;
/// BatchNorm epsilon and momentum (PyTorch's defaults).
pub const BN_EPS: f64 = 1e-5;
/// BatchNorm running-statistics momentum.
pub const BN_MOMENTUM: f64 = 0.1;

/// Training (BatchNorm on batch statistics, running statistics updated) or evaluation (running
/// statistics used, nothing updated).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Batch statistics; running statistics updated.
    Train,
    /// Running statistics.
    Eval,
}

/// How the reconstruction is compared with the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconLoss {
    /// Mean absolute error.
    L1,
    /// Mean squared error.
    Mse,
}

struct Linear {
    w: Tensor,
    b: Tensor,
}

impl Linear {
    fn new(p: &Params, name: &str) -> Result<Linear, Error> {
        Ok(Linear { w: p.get(&format!("{name}.weight"))?, b: p.get(&format!("{name}.bias"))? })
    }

    fn forward(&self, x: &Tensor) -> CResult<Tensor> {
        let dims = x.dims().to_vec();
        let inp = dims[dims.len() - 1];
        let rows = x.elem_count() / inp;
        let y = x.reshape((rows, inp))?.matmul(&self.w.t()?)?.broadcast_add(&self.b)?;
        let mut out = dims;
        let last = out.len() - 1;
        out[last] = self.w.dim(0)?;
        y.reshape(out)
    }
}

struct Norm {
    w: Tensor,
    b: Tensor,
}

impl Norm {
    fn new(p: &Params, name: &str) -> Result<Norm, Error> {
        Ok(Norm { w: p.get(&format!("{name}.weight"))?, b: p.get(&format!("{name}.bias"))? })
    }

    /// `fast`: candle's fused kernel (no backward; for no-gradient inference only).
    fn forward(&self, x: &Tensor, fast: bool) -> CResult<Tensor> {
        if fast {
            candle_nn::ops::layer_norm(&x.contiguous()?, &self.w, &self.b, LN_EPS as f32)
        } else {
            layer_norm(x, &self.w, &self.b, LN_EPS)
        }
    }
}

struct ConvModule {
    ln: Norm,
    pw1: Linear,
    dw_w: Tensor,
    bn_w: Tensor,
    bn_b: Tensor,
    running_mean: Var,
    running_var: Var,
    pw2: Linear,
    kernel: usize,
}

impl ConvModule {
    fn new(p: &Params, name: &str, kernel: usize) -> Result<ConvModule, Error> {
        let w = p.get(&format!("{name}.dw.weight"))?;
        let (c, _, k) = w.dims3()?;
        Ok(ConvModule {
            ln: Norm::new(p, &format!("{name}.ln"))?,
            pw1: Linear::new(p, &format!("{name}.pw1"))?,
            dw_w: w.reshape((c, k))?,
            bn_w: p.get(&format!("{name}.bn.weight"))?,
            bn_b: p.get(&format!("{name}.bn.bias"))?,
            running_mean: p.var(&format!("{name}.bn.running_mean"))?,
            running_var: p.var(&format!("{name}.bn.running_var"))?,
            pw2: Linear::new(p, &format!("{name}.pw2"))?,
            kernel,
        })
    }

    /// `x`: `[B, N, W]` with `N = nt · nf` tokens time-major. The depthwise convolution runs along
    /// time within each frequency row (zero padding `kernel/2` on both sides).
    fn forward(&self, x: &Tensor, nt: usize, nf: usize, mode: Mode, fast: bool) -> CResult<Tensor> {
        let (b, n, w) = x.dims3()?;
        let y = self.pw1.forward(&self.ln.forward(x, fast)?)?;
        let a = y.narrow(D::Minus1, 0, w)?;
        let gate = y.narrow(D::Minus1, w, w)?;
        let y = (a * crate::ops::sigmoid(&gate)?)?;
        let y = y.reshape((b, nt, nf, w))?;
        let half = self.kernel / 2;
        let padded = y.pad_with_zeros(1, half, half)?;
        // No bias: the BatchNorm that follows removes any constant per channel.
        let mut acc = padded.narrow(1, 0, nt)?.broadcast_mul(&self.dw_w.narrow(1, 0, 1)?.reshape(w)?)?;
        for k in 1..self.kernel {
            let wk = self.dw_w.narrow(1, k, 1)?.reshape(w)?;
            acc = (acc + padded.narrow(1, k, nt)?.broadcast_mul(&wk)?)?;
        }
        let flat = acc.reshape((b * n, w))?;
        let (mean, var) = match mode {
            Mode::Train => {
                let m = (b * n) as f64;
                let mean = flat.mean_keepdim(0)?;
                let var = flat.broadcast_sub(&mean)?.sqr()?.mean_keepdim(0)?;
                let rm = ((self.running_mean.as_tensor() * (1.0 - BN_MOMENTUM))?
                    + (mean.detach().reshape(w)? * BN_MOMENTUM)?)?;
                let unbiased = if m > 1.0 { (var.detach() * (m / (m - 1.0)))? } else { var.detach() };
                let rv =
                    ((self.running_var.as_tensor() * (1.0 - BN_MOMENTUM))? + (unbiased.reshape(w)? * BN_MOMENTUM)?)?;
                self.running_mean.set(&rm)?;
                self.running_var.set(&rv)?;
                (mean, var)
            }
            Mode::Eval => (
                self.running_mean.as_tensor().reshape((1, w))?.detach(),
                self.running_var.as_tensor().reshape((1, w))?.detach(),
            ),
        };
        let yn = flat.broadcast_sub(&mean)?.broadcast_div(&(var + BN_EPS)?.sqrt()?)?;
        let yn = yn.broadcast_mul(&self.bn_w)?.broadcast_add(&self.bn_b)?.silu()?;
        self.pw2.forward(&yn.reshape((b, n, w))?)
    }
}

struct Block {
    ln1: Norm,
    qkv: Linear,
    proj: Linear,
    conv: Option<ConvModule>,
    ln2: Norm,
    fc1: Linear,
    fc2: Linear,
    heads: usize,
}

impl Block {
    fn new(p: &Params, name: &str, cfg: &Config) -> Result<Block, Error> {
        Ok(Block {
            ln1: Norm::new(p, &format!("{name}.ln1"))?,
            qkv: Linear::new(p, &format!("{name}.attn.qkv"))?,
            proj: Linear::new(p, &format!("{name}.attn.proj"))?,
            conv: if cfg.conformer {
                Some(ConvModule::new(p, &format!("{name}.conv"), cfg.conv_kernel)?)
            } else {
                None
            },
            ln2: Norm::new(p, &format!("{name}.ln2"))?,
            fc1: Linear::new(p, &format!("{name}.mlp.fc1"))?,
            fc2: Linear::new(p, &format!("{name}.mlp.fc2"))?,
            heads: cfg.heads,
        })
    }

    fn attention(&self, x: &Tensor, fast: bool) -> CResult<Tensor> {
        let (b, n, w) = x.dims3()?;
        let h = self.heads;
        let d = w / h;
        let qkv = self.qkv.forward(x)?.reshape((b, n, 3, h, d))?.permute((2, 0, 3, 1, 4))?.contiguous()?;
        let (q, k, v) = (qkv.get(0)?, qkv.get(1)?, qkv.get(2)?);
        let scores = (q.matmul(&k.t()?)? * (1.0 / (d as f64).sqrt()))?;
        let probs = if fast { candle_nn::ops::softmax_last_dim(&scores)? } else { softmax_last(&scores)? };
        let att = probs.matmul(&v)?;
        self.proj.forward(&att.transpose(1, 2)?.reshape((b, n, w))?)
    }

    fn forward(&self, x: &Tensor, nt: usize, nf: usize, mode: Mode, fast: bool) -> CResult<Tensor> {
        let mut x = (x + self.attention(&self.ln1.forward(x, fast)?, fast)?)?;
        if let Some(conv) = &self.conv {
            x = (&x + conv.forward(&x, nt, nf, mode, fast)?)?;
        }
        let m = self.fc2.forward(&self.fc1.forward(&self.ln2.forward(&x, fast)?)?.gelu_erf()?)?;
        x + m
    }
}

/// What [`BsqModel::forward`] computes for a batch.
#[derive(Debug, Clone)]
pub struct Forward {
    /// The reconstruction `[B, n_mels, T]`, clamped to `[-1, 1]`.
    pub recon: Tensor,
    /// The L2-normalised latent before quantisation `[B, N, L]`.
    pub z: Tensor,
    /// The quantiser's outputs.
    pub quant: Quantized,
}

/// The loss terms of one batch (scalars).
#[derive(Debug, Clone)]
pub struct Losses {
    /// Spectrogram reconstruction (L1 or MSE).
    pub recon: Tensor,
    /// `recon + bsq_weight · quant.loss`.
    pub total: Tensor,
}

/// The model, built over [`Params`] (whose variables it shares: an optimiser step on the parameters
/// is seen by the model).
pub struct BsqModel {
    cfg: Config,
    params: Params,
    patch_embed: Linear,
    enc_pos: Tensor,
    enc_blocks: Vec<Block>,
    enc_ln: Norm,
    quant_proj: Linear,
    dec_proj: Linear,
    dec_pos: Tensor,
    dec_blocks: Vec<Block>,
    dec_ln: Norm,
    head_fc: Linear,
    head_out: Linear,
}

impl BsqModel {
    /// Builds the model of `cfg` over `params` (which must have been made for `cfg`).
    pub fn new(cfg: &Config, params: Params) -> Result<BsqModel, Error> {
        cfg.validate()?;
        let p = &params;
        let blocks = |prefix: &str, depth: usize| -> Result<Vec<Block>, Error> {
            (0..depth).map(|i| Block::new(p, &format!("{prefix}.blocks.{i}"), cfg)).collect()
        };
        Ok(BsqModel {
            cfg: cfg.clone(),
            patch_embed: Linear::new(p, "enc.patch_embed")?,
            enc_pos: p.get("enc.pos_embed")?,
            enc_blocks: blocks("enc", cfg.encoder_depth)?,
            enc_ln: Norm::new(p, "enc.ln_post")?,
            quant_proj: Linear::new(p, "quant.proj")?,
            dec_proj: Linear::new(p, "dec.proj")?,
            dec_pos: p.get("dec.pos_embed")?,
            dec_blocks: blocks("dec", cfg.decoder_depth)?,
            dec_ln: Norm::new(p, "dec.ln_post")?,
            head_fc: Linear::new(p, "dec.head.fc")?,
            head_out: Linear::new(p, "dec.head.out")?,
            params,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The parameters (shared with the model).
    pub fn params(&self) -> &Params {
        &self.params
    }

    fn check_input(&self, x: &Tensor) -> Result<(usize, usize), Error> {
        let c = &self.cfg;
        let (b, f, t) =
            x.dims3().map_err(|_| Error::Input(format!("expected [batch, mels, frames], got {:?}", x.dims())))?;
        if f != c.n_mels {
            return Err(Error::Input(format!("{f} mel bins, the model takes {}", c.n_mels)));
        }
        if t == 0 || t % c.time_patch != 0 || t > c.crop_frames {
            return Err(Error::Input(format!(
                "{t} frames: a crop must be a positive multiple of time_patch {} of at most crop_frames {}",
                c.time_patch, c.crop_frames
            )));
        }
        Ok((b, t / c.time_patch))
    }

    /// `[B, F, T]` to `[B, N, fp·tp]` patches, time-major (token `t · nf + f`; within a patch, mel bin
    /// major then frame).
    pub fn patchify(&self, x: &Tensor) -> CResult<Tensor> {
        let c = &self.cfg;
        let (b, _, t) = x.dims3()?;
        let (nf, nt) = (c.freq_patches(), t / c.time_patch);
        x.reshape((b, nf, c.freq_patch, nt, c.time_patch))?.permute((0, 3, 1, 2, 4))?.contiguous()?.reshape((
            b,
            nt * nf,
            c.patch_len(),
        ))
    }

    /// The inverse of [`patchify`](Self::patchify).
    pub fn unpatchify(&self, p: &Tensor, nt: usize) -> CResult<Tensor> {
        let c = &self.cfg;
        let b = p.dim(0)?;
        let nf = c.freq_patches();
        p.reshape((b, nt, nf, c.freq_patch, c.time_patch))?.permute((0, 2, 3, 1, 4))?.contiguous()?.reshape((
            b,
            c.n_mels,
            nt * c.time_patch,
        ))
    }

    /// Encoder and projection: the L2-normalised latent `[B, N, L]` of `x` (`[B, n_mels, T]` in `[-1, 1]`).
    pub fn encode_latent(&self, x: &Tensor, mode: Mode) -> Result<Tensor, Error> {
        self.encode_with(x, mode, false)
    }

    /// `fast`: candle's fused LayerNorm and softmax, which have no backward (inference only).
    fn encode_with(&self, x: &Tensor, mode: Mode, fast: bool) -> Result<Tensor, Error> {
        let (_, nt) = self.check_input(x)?;
        let nf = self.cfg.freq_patches();
        let n = nt * nf;
        let mut h = self.patch_embed.forward(&self.patchify(x)?)?;
        h = h.broadcast_add(&self.enc_pos.narrow(0, 0, n)?)?;
        for b in &self.enc_blocks {
            h = b.forward(&h, nt, nf, mode, fast)?;
        }
        let h = self.enc_ln.forward(&h, fast)?;
        Ok(l2_normalize(&self.quant_proj.forward(&h)?)?)
    }

    /// Decoder: the spectrogram `[B, n_mels, nt·time_patch]` of codes `zq` (`[B, nt·nf, L]`, quantised
    /// `±1/√L` or, for the continuous bound, the latent itself), clamped to `[-1, 1]`.
    pub fn decode_latent(&self, zq: &Tensor, mode: Mode) -> Result<Tensor, Error> {
        self.decode_with(zq, mode, false)
    }

    fn decode_with(&self, zq: &Tensor, mode: Mode, fast: bool) -> Result<Tensor, Error> {
        let (_, n, l) = zq.dims3()?;
        let nf = self.cfg.freq_patches();
        if l != self.cfg.bits || n == 0 || n % nf != 0 || n > self.cfg.max_tokens() {
            return Err(Error::Input(format!("codes of shape {:?} do not fit this model", zq.dims())));
        }
        let nt = n / nf;
        let mut h = self.dec_proj.forward(zq)?.broadcast_add(&self.dec_pos.narrow(0, 0, n)?)?;
        for b in &self.dec_blocks {
            h = b.forward(&h, nt, nf, mode, fast)?;
        }
        let h = self.dec_ln.forward(&h, fast)?;
        let p = self.head_out.forward(&self.head_fc.forward(&h)?.tanh()?)?;
        Ok(clamp(&self.unpatchify(&p, nt)?, -1.0, 1.0)?)
    }

    /// Encoder, quantiser and decoder.
    pub fn forward(&self, x: &Tensor, mode: Mode) -> Result<Forward, Error> {
        let z = self.encode_latent(x, mode)?;
        let quant = bsq::quantize(&z, &self.cfg)?;
        let recon = self.decode_latent(&quant.zq, mode)?;
        Ok(Forward { recon, z, quant })
    }

    /// The training loss of a forward pass on `x`.
    pub fn losses(&self, x: &Tensor, fwd: &Forward, kind: ReconLoss, bsq_weight: f64) -> Result<Losses, Error> {
        let diff = (&fwd.recon - x)?;
        let recon = match kind {
            ReconLoss::L1 => diff.abs()?.mean_all()?,
            ReconLoss::Mse => diff.sqr()?.mean_all()?,
        };
        let total = (&recon + (&fwd.quant.loss * bsq_weight)?)?;
        Ok(Losses { recon, total })
    }

    /// The integer codes of `x`: `[B · N]` MSB-first indices, batch-major then time-major tokens
    /// (eval mode, with candle's fused LayerNorm and softmax: no gradient is needed here).
    pub fn encode_indices(&self, x: &Tensor) -> Result<Vec<u32>, Error> {
        let z = self.encode_with(x, Mode::Eval, true)?;
        let flat = z.flatten_all()?.to_vec1::<f32>()?;
        Ok(bsq::indices(&flat, self.cfg.bits))
    }

    /// The spectrogram of integer codes (`[B, N]` indices as [`encode_indices`](Self::encode_indices)
    /// gives them, `N` a multiple of the frequency patches).
    pub fn decode_indices(&self, indices: &[u32], batch: usize) -> Result<Tensor, Error> {
        let l = self.cfg.bits;
        if batch == 0 || indices.len() % batch != 0 {
            return Err(Error::Input(format!("{} indices do not split into {batch} items", indices.len())));
        }
        let n = indices.len() / batch;
        let scale = 1.0 / (l as f32).sqrt();
        let codes: Vec<f32> = bsq::codes(indices, l).into_iter().map(|v| v * scale).collect();
        let zq = Tensor::from_vec(codes, (batch, n, l), self.params.device())?;
        self.decode_with(&zq, Mode::Eval, true)
    }
}
