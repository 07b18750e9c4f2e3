//! SNAC's building blocks: weight-normalised convolutions (weights folded at load time), Snake,
//! residual units, encoder/decoder blocks, noise blocks and windowed local attention.
//!
//! On the CPU with f32 tensors the hot paths (Snake, depthwise convolutions, the end of a residual
//! unit) run the kernels of [`crate::kernels`]; elsewhere they use candle's ops, which compute the same
//! functions.

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{LayerNorm, Linear, VarBuilder};

use crate::kernels::{BiasResidualOp, DepthwiseOp, Im2ColOp, SnakeCoef, SnakeOp};

fn fast_path(x: &Tensor) -> bool {
    x.device().is_cpu() && x.dtype() == DType::F32
}

/// Geometry of a 1-D convolution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvGeom {
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    pub dilation: usize,
    pub groups: usize,
}

impl ConvGeom {
    pub fn plain(kernel: usize, padding: usize) -> Self {
        Self { kernel, stride: 1, padding, dilation: 1, groups: 1 }
    }
}

/// A convolution whose weight-normalised parameters were folded into `weight` by the loader.
#[derive(Debug, Clone)]
pub(crate) struct Conv1d {
    weight: Tensor,
    bias: Option<Tensor>,
    geom: ConvGeom,
    cin: usize,
    cout: usize,
}

impl Conv1d {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, geom: ConvGeom, bias: bool) -> Result<Self> {
        let weight = vb.get((cout, cin / geom.groups, geom.kernel), "weight")?;
        let bias = if bias { Some(vb.get(cout, "bias")?) } else { None };
        Ok(Self { weight, bias, geom, cin, cout })
    }

    fn is_pointwise(&self) -> bool {
        let g = self.geom;
        g.kernel == 1 && g.stride == 1 && g.padding == 0 && g.groups == 1
    }

    /// A depthwise "same" convolution that the CPU kernel can run.
    fn is_depthwise_same(&self) -> bool {
        let g = self.geom;
        g.groups == self.cin
            && self.cin == self.cout
            && g.stride == 1
            && g.kernel % 2 == 1
            && g.padding == (g.kernel - 1) * g.dilation / 2
    }

    /// The CPU kernel for this convolution, with optional Snakes around it.
    fn depthwise_op(&self, pre: Option<&Snake>, post: Option<&Snake>) -> Result<Option<DepthwiseOp>> {
        if !self.is_depthwise_same() || !self.weight.device().is_cpu() {
            return Ok(None);
        }
        let weight = self.weight.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?;
        let bias = match &self.bias {
            Some(b) => b.to_dtype(DType::F32)?.to_vec1::<f32>()?,
            None => vec![0.0; self.cout],
        };
        Ok(Some(DepthwiseOp {
            weight,
            bias,
            kernel: self.geom.kernel,
            dilation: self.geom.dilation,
            pre: pre.map(|s| s.coefs.clone()),
            post: post.map(|s| s.coefs.clone()),
        }))
    }

    /// The matrix product of a 1×1 convolution, without its bias.
    fn pointwise_no_bias(&self, x: &Tensor) -> Result<Tensor> {
        let w = self.weight.squeeze(2)?;
        let (b, _, _) = x.dims3()?;
        if b == 1 {
            w.matmul(&x.squeeze(0)?)?.unsqueeze(0)
        } else {
            w.broadcast_left(b)?.contiguous()?.matmul(x)
        }
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = if self.is_pointwise() {
            self.pointwise_no_bias(&x.contiguous()?)?
        } else if self.geom.groups == 1 && fast_path(x) {
            // im2col laid out so that the product comes out as (cout, len) without a transpose.
            let g = self.geom;
            let op = Im2ColOp { kernel: g.kernel, stride: g.stride, padding: g.padding, dilation: g.dilation };
            let cols = x.contiguous()?.apply_op1_no_bwd(&op)?;
            let w = self.weight.reshape((self.cout, self.cin * g.kernel))?;
            let (b, _, _) = cols.dims3()?;
            if b == 1 {
                w.matmul(&cols.squeeze(0)?)?.unsqueeze(0)?
            } else {
                w.broadcast_left(b)?.contiguous()?.matmul(&cols)?
            }
        } else {
            let g = self.geom;
            x.conv1d(&self.weight, g.padding, g.stride, g.dilation, g.groups)?
        };
        match &self.bias {
            Some(b) => y.broadcast_add(&b.reshape((1, self.cout, 1))?),
            None => Ok(y),
        }
    }
}

/// A weight-normalised transposed convolution (groups = 1), weights folded by the loader.
#[derive(Debug, Clone)]
pub(crate) struct ConvTranspose1d {
    weight: Tensor,
    bias: Tensor,
    stride: usize,
    padding: usize,
    output_padding: usize,
    cout: usize,
}

impl ConvTranspose1d {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, stride: usize) -> Result<Self> {
        let weight = vb.get((cin, cout, 2 * stride), "weight")?;
        let bias = vb.get(cout, "bias")?;
        Ok(Self { weight, bias, stride, padding: stride.div_ceil(2), output_padding: stride % 2, cout })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (_, _, l) = x.dims3()?;
        let k = self.weight.dim(2)?;
        // Unpadded transposed convolution (candle's fast path), then the window that padding and
        // output padding select: out[j] = full[j + padding].
        let full = x.conv_transpose1d(&self.weight, 0, 0, self.stride, 1, 1)?;
        let out_len = (l - 1) * self.stride + k + self.output_padding - 2 * self.padding;
        let full_len = full.dim(2)?;
        let y = if self.padding + out_len <= full_len {
            full.narrow(2, self.padding, out_len)?
        } else {
            let avail = full_len - self.padding;
            let tail = Tensor::zeros((full.dim(0)?, self.cout, out_len - avail), full.dtype(), full.device())?;
            Tensor::cat(&[full.narrow(2, self.padding, avail)?, tail], 2)?
        };
        y.broadcast_add(&self.bias.reshape((1, self.cout, 1))?)
    }
}

/// Snake activation: x + 1/(α + 1e-9) · sin²(αx), one α per channel.
#[derive(Debug, Clone)]
pub(crate) struct Snake {
    alpha: Tensor,
    coefs: Vec<SnakeCoef>,
}

impl Snake {
    pub fn new(vb: VarBuilder, channels: usize) -> Result<Self> {
        let alpha = vb.get((1, channels, 1), "alpha")?;
        let coefs =
            alpha.to_dtype(DType::F32)?.flatten_all()?.to_vec1::<f32>()?.into_iter().map(SnakeCoef::new).collect();
        Ok(Self { alpha, coefs })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if fast_path(x) {
            return x.contiguous()?.apply_op1_no_bwd(&SnakeOp { coefs: self.coefs.clone() });
        }
        let inv = (&self.alpha + 1e-9)?.recip()?;
        let s = x.broadcast_mul(&self.alpha)?.sin()?.sqr()?;
        x + s.broadcast_mul(&inv)?
    }
}

/// Snake → depthwise (or full) conv k=7 with dilation → Snake → 1×1 conv, added to the input.
#[derive(Debug, Clone)]
pub(crate) struct ResidualUnit {
    snake1: Snake,
    conv1: Conv1d,
    snake2: Snake,
    conv2: Conv1d,
    fused: Option<DepthwiseOp>,
    tail: Option<BiasResidualOp>,
}

impl ResidualUnit {
    pub fn new(vb: VarBuilder, dim: usize, dilation: usize, groups: usize) -> Result<Self> {
        let vb = vb.pp("block");
        let snake1 = Snake::new(vb.pp(0), dim)?;
        let geom = ConvGeom { kernel: 7, stride: 1, padding: 3 * dilation, dilation, groups };
        let conv1 = Conv1d::new(vb.pp(1), dim, dim, geom, true)?;
        let snake2 = Snake::new(vb.pp(2), dim)?;
        let conv2 = Conv1d::new(vb.pp(3), dim, dim, ConvGeom::plain(1, 0), true)?;
        let fused = conv1.depthwise_op(Some(&snake1), Some(&snake2))?;
        let tail = match (&fused, &conv2.bias) {
            (Some(_), Some(b)) => Some(BiasResidualOp { bias: b.to_dtype(DType::F32)?.to_vec1::<f32>()? }),
            _ => None,
        };
        Ok(Self { snake1, conv1, snake2, conv2, fused, tail })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        if let (Some(fused), Some(tail), true) = (&self.fused, &self.tail, fast_path(x)) {
            let x = x.contiguous()?;
            let h = x.apply_op1_no_bwd(fused)?;
            let y = self.conv2.pointwise_no_bias(&h)?;
            return y.apply_op2_no_bwd(&x, tail);
        }
        let y = self.conv2.forward(&self.snake2.forward(&self.conv1.forward(&self.snake1.forward(x)?)?)?)?;
        // Same-padded convolutions keep the length; the reference crops x when they do not.
        let pad = (x.dim(2)? - y.dim(2)?) / 2;
        let x = if pad > 0 { x.narrow(2, pad, y.dim(2)?)? } else { x.clone() };
        x + y
    }
}

/// A depthwise (or full) convolution with "same" padding, with the CPU kernel when it applies.
#[derive(Debug, Clone)]
pub(crate) struct SameConv {
    conv: Conv1d,
    op: Option<DepthwiseOp>,
}

impl SameConv {
    pub fn new(vb: VarBuilder, cin: usize, cout: usize, kernel: usize, groups: usize) -> Result<Self> {
        let geom = ConvGeom { kernel, stride: 1, padding: (kernel - 1) / 2, dilation: 1, groups };
        let conv = Conv1d::new(vb, cin, cout, geom, true)?;
        let op = conv.depthwise_op(None, None)?;
        Ok(Self { conv, op })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        match (&self.op, fast_path(x)) {
            (Some(op), true) => x.contiguous()?.apply_op1_no_bwd(op),
            _ => self.conv.forward(x),
        }
    }
}

/// Three residual units (dilations 1, 3, 9), Snake, strided convolution.
#[derive(Debug, Clone)]
pub(crate) struct EncoderBlock {
    res: [ResidualUnit; 3],
    snake: Snake,
    conv: Conv1d,
}

impl EncoderBlock {
    pub fn new(vb: VarBuilder, output_dim: usize, stride: usize, groups: usize) -> Result<Self> {
        let vb = vb.pp("block");
        let input_dim = output_dim / 2;
        let res = [
            ResidualUnit::new(vb.pp(0), input_dim, 1, groups)?,
            ResidualUnit::new(vb.pp(1), input_dim, 3, groups)?,
            ResidualUnit::new(vb.pp(2), input_dim, 9, groups)?,
        ];
        let snake = Snake::new(vb.pp(3), input_dim)?;
        let geom = ConvGeom { kernel: 2 * stride, stride, padding: stride.div_ceil(2), dilation: 1, groups: 1 };
        let conv = Conv1d::new(vb.pp(4), input_dim, output_dim, geom, true)?;
        Ok(Self { res, snake, conv })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = x.clone();
        for r in &self.res {
            x = r.forward(&x)?;
        }
        self.conv.forward(&self.snake.forward(&x)?)
    }
}

/// Standard-normal noise: Box–Muller over SplitMix64, reproducible from a seed.
#[derive(Debug, Clone)]
pub struct NoiseRng {
    state: u64,
}

impl NoiseRng {
    /// A generator whose stream depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `n` standard-normal samples.
    pub fn normals(&mut self, n: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(n + 1);
        while out.len() < n {
            // u1 in (0, 1], u2 in [0, 1).
            let u1 = ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
            let u2 = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
            let r = (-2.0 * u1.ln()).sqrt();
            let th = std::f64::consts::TAU * u2;
            out.push((r * th.cos()) as f32);
            out.push((r * th.sin()) as f32);
        }
        out.truncate(n);
        out
    }
}

/// x + noise · (W x): the decoder's noise layer; skipped when no generator is given.
#[derive(Debug, Clone)]
pub(crate) struct NoiseBlock {
    linear: Conv1d,
}

impl NoiseBlock {
    pub fn new(vb: VarBuilder, dim: usize) -> Result<Self> {
        Ok(Self { linear: Conv1d::new(vb.pp("linear"), dim, dim, ConvGeom::plain(1, 0), false)? })
    }

    pub fn forward(&self, x: &Tensor, rng: Option<&mut NoiseRng>) -> Result<Tensor> {
        let Some(rng) = rng else { return Ok(x.clone()) };
        let (b, _, t) = x.dims3()?;
        let noise = Tensor::from_vec(rng.normals(b * t), (b, 1, t), x.device())?.to_dtype(x.dtype())?;
        let h = self.linear.forward(x)?;
        x + h.broadcast_mul(&noise)?
    }
}

/// Snake, transposed (up-sampling) convolution, optional noise, three residual units.
#[derive(Debug, Clone)]
pub(crate) struct DecoderBlock {
    snake: Snake,
    conv: ConvTranspose1d,
    noise: Option<NoiseBlock>,
    res: [ResidualUnit; 3],
}

impl DecoderBlock {
    pub fn new(
        vb: VarBuilder,
        input_dim: usize,
        output_dim: usize,
        stride: usize,
        noise: bool,
        groups: usize,
    ) -> Result<Self> {
        let vb = vb.pp("block");
        let snake = Snake::new(vb.pp(0), input_dim)?;
        let conv = ConvTranspose1d::new(vb.pp(1), input_dim, output_dim, stride)?;
        let (noise, first) = if noise { (Some(NoiseBlock::new(vb.pp(2), output_dim)?), 3) } else { (None, 2) };
        let res = [
            ResidualUnit::new(vb.pp(first), output_dim, 1, groups)?,
            ResidualUnit::new(vb.pp(first + 1), output_dim, 3, groups)?,
            ResidualUnit::new(vb.pp(first + 2), output_dim, 9, groups)?,
        ];
        Ok(Self { snake, conv, noise, res })
    }

    pub fn forward(&self, x: &Tensor, rng: Option<&mut NoiseRng>) -> Result<Tensor> {
        let mut x = self.conv.forward(&self.snake.forward(x)?)?;
        if let Some(n) = &self.noise {
            x = n.forward(&x, rng)?;
        }
        for r in &self.res {
            x = r.forward(&x)?;
        }
        Ok(x)
    }
}

/// Multi-head self-attention inside non-overlapping windows of `window` frames, with rotary position
/// embeddings that restart in every window (64-wide heads, pre-LayerNorm, residual).
#[derive(Debug, Clone)]
pub(crate) struct LocalMha {
    norm: LayerNorm,
    to_qkv: Linear,
    to_out: Linear,
    window: usize,
    heads: usize,
    cos: Tensor,
    sin: Tensor,
}

const HEAD_DIM: usize = 64;

impl LocalMha {
    pub fn new(vb: VarBuilder, dim: usize, window: usize) -> Result<Self> {
        let norm =
            candle_nn::layer_norm(dim, candle_nn::LayerNormConfig { eps: 1e-5, ..Default::default() }, vb.pp("norm"))?;
        let to_qkv = candle_nn::linear_no_bias(dim, 3 * dim, vb.pp("to_qkv"))?;
        let to_out = candle_nn::linear_no_bias(dim, dim, vb.pp("to_out"))?;
        // The reference stores its rotary frequencies 1 / 10000^(2j/64) as the buffer
        // `rel_pos.inv_freq`; angles are position × frequency in f32, restarting in every window.
        let half = HEAD_DIM / 2;
        // Checkpoints without the buffer get the same values computed here.
        let rel = vb.pp("rel_pos");
        let inv_freq = if rel.contains_tensor("inv_freq") {
            rel.get(half, "inv_freq")?.to_dtype(DType::F32)?.to_vec1::<f32>()?
        } else {
            (0..half).map(|j| 1.0 / 10000f32.powf((2 * j) as f32 / HEAD_DIM as f32)).collect()
        };
        let mut cos = Vec::with_capacity(window * half);
        let mut sin = Vec::with_capacity(window * half);
        for pos in 0..window {
            for &inv in &inv_freq {
                let f = pos as f32 * inv;
                cos.push(f.cos());
                sin.push(f.sin());
            }
        }
        let dev = vb.device();
        let cos = Tensor::from_vec(cos, (window, half), dev)?.to_dtype(vb.dtype())?;
        let sin = Tensor::from_vec(sin, (window, half), dev)?.to_dtype(vb.dtype())?;
        Ok(Self { norm, to_qkv, to_out, window, heads: dim / HEAD_DIM, cos, sin })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, c, t) = x.dims3()?;
        if t % self.window != 0 {
            candle_core::bail!("local attention: {t} frames is not a multiple of the {}-frame window", self.window);
        }
        let windows = t / self.window;
        let h = self.norm.forward(&x.transpose(1, 2)?.contiguous()?)?;
        let qkv = self.to_qkv.forward(&h)?; // (b, t, 3c)
        let n = b * self.heads * windows;
        let split = |i: usize| -> Result<Tensor> {
            qkv.narrow(2, i * c, c)?
                .reshape((b, windows, self.window, self.heads, HEAD_DIM))?
                .permute((0, 3, 1, 2, 4))?
                .contiguous()?
                .reshape((n, 1, self.window, HEAD_DIM))
        };
        let q = candle_nn::rotary_emb::rope(&split(0)?, &self.cos, &self.sin)?.reshape((n, self.window, HEAD_DIM))?;
        let k = candle_nn::rotary_emb::rope(&split(1)?, &self.cos, &self.sin)?.reshape((n, self.window, HEAD_DIM))?;
        let v = split(2)?.reshape((n, self.window, HEAD_DIM))?;
        let scale = 1.0 / (HEAD_DIM as f64).sqrt();
        let att = (q.matmul(&k.t()?)? * scale)?;
        let att = candle_nn::ops::softmax_last_dim(&att)?;
        let out = att.matmul(&v)?; // (n, window, d)
        let out = out
            .reshape((b, self.heads, windows, self.window, HEAD_DIM))?
            .permute((0, 2, 3, 1, 4))?
            .contiguous()?
            .reshape((b, t, c))?;
        let out = self.to_out.forward(&out)?;
        out.transpose(1, 2)? + x
    }
}

/// The encoder: input conv, one block per rate, optional attention, final depthwise conv.
#[derive(Debug, Clone)]
pub(crate) struct Encoder {
    first: Conv1d,
    blocks: Vec<EncoderBlock>,
    attn: Option<LocalMha>,
    last: SameConv,
}

impl Encoder {
    pub fn new(
        vb: VarBuilder,
        d_model: usize,
        rates: &[usize],
        depthwise: bool,
        window: Option<usize>,
    ) -> Result<Self> {
        let vb = vb.pp("block");
        let first = Conv1d::new(vb.pp(0), 1, d_model, ConvGeom::plain(7, 3), true)?;
        let mut d = d_model;
        let mut blocks = Vec::with_capacity(rates.len());
        for (i, &stride) in rates.iter().enumerate() {
            d *= 2;
            let groups = if depthwise { d / 2 } else { 1 };
            blocks.push(EncoderBlock::new(vb.pp(i + 1), d, stride, groups)?);
        }
        let mut idx = rates.len() + 1;
        let attn = match window {
            Some(w) => {
                idx += 1;
                Some(LocalMha::new(vb.pp(idx - 1), d, w)?)
            }
            None => None,
        };
        let last = SameConv::new(vb.pp(idx), d, d, 7, if depthwise { d } else { 1 })?;
        Ok(Self { first, blocks, attn, last })
    }

    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let mut x = self.first.forward(x)?;
        for b in &self.blocks {
            x = b.forward(&x)?;
        }
        if let Some(a) = &self.attn {
            x = a.forward(&x)?;
        }
        self.last.forward(&x)
    }
}

/// The decoder: input conv(s), optional attention, one block per rate, Snake, output conv, tanh.
#[derive(Debug, Clone)]
pub(crate) struct Decoder {
    input: Vec<SameConv>,
    attn: Option<LocalMha>,
    blocks: Vec<DecoderBlock>,
    snake: Snake,
    out: Conv1d,
}

impl Decoder {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        vb: VarBuilder,
        input_channel: usize,
        channels: usize,
        rates: &[usize],
        noise: bool,
        depthwise: bool,
        window: Option<usize>,
    ) -> Result<Self> {
        let vb = vb.pp("model");
        let mut idx = 0;
        let input = if depthwise {
            idx = 2;
            vec![
                SameConv::new(vb.pp(0), input_channel, input_channel, 7, input_channel)?,
                SameConv::new(vb.pp(1), input_channel, channels, 1, 1)?,
            ]
        } else {
            idx += 1;
            vec![SameConv::new(vb.pp(0), input_channel, channels, 7, 1)?]
        };
        let attn = match window {
            Some(w) => {
                idx += 1;
                Some(LocalMha::new(vb.pp(idx - 1), channels, w)?)
            }
            None => None,
        };
        let mut blocks = Vec::with_capacity(rates.len());
        let mut output_dim = channels;
        for (i, &stride) in rates.iter().enumerate() {
            let input_dim = channels >> i;
            output_dim = channels >> (i + 1);
            let groups = if depthwise { output_dim } else { 1 };
            blocks.push(DecoderBlock::new(vb.pp(idx), input_dim, output_dim, stride, noise, groups)?);
            idx += 1;
        }
        let snake = Snake::new(vb.pp(idx), output_dim)?;
        let out = Conv1d::new(vb.pp(idx + 1), output_dim, 1, ConvGeom::plain(7, 3), true)?;
        Ok(Self { input, attn, blocks, snake, out })
    }

    pub fn forward(&self, z: &Tensor, mut rng: Option<&mut NoiseRng>) -> Result<Tensor> {
        let mut x = z.clone();
        for c in &self.input {
            x = c.forward(&x)?;
        }
        if let Some(a) = &self.attn {
            x = a.forward(&x)?;
        }
        for b in &self.blocks {
            x = b.forward(&x, rng.as_deref_mut())?;
        }
        self.out.forward(&self.snake.forward(&x)?)?.tanh()
    }
}

/// Repeats every frame `n` times along the last axis (`repeat_interleave`).
pub(crate) fn repeat_frames(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, c, t) = x.dims3()?;
    x.unsqueeze(3)?.broadcast_as((b, c, t, n))?.contiguous()?.reshape((b, c, t * n))
}

/// Mean over non-overlapping groups of `n` frames (`avg_pool1d(n, n)`).
pub(crate) fn pool_frames(x: &Tensor, n: usize) -> Result<Tensor> {
    if n == 1 {
        return Ok(x.clone());
    }
    let (b, c, t) = x.dims3()?;
    x.contiguous()?.reshape((b, c, t / n, n))?.sum(D::Minus1)? / n as f64
}
