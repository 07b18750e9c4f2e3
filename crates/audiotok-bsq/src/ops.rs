//! Differentiable building blocks written from candle's basic tensor ops.
//!
//! candle 0.11.1's fused `LayerNorm`, `RmsNorm`, `ops::softmax_last_dim` and `sdpa` have no backward
//! pass and silently stop the gradient, so the model uses these instead on every path (the numbers are
//! the same; `tests/grad.rs` checks that every parameter receives a gradient).

use candle_core::{Result, Tensor, D};

/// Layer normalisation over the last axis (biased variance, as `torch.nn.LayerNorm`).
pub fn layer_norm(x: &Tensor, weight: &Tensor, bias: &Tensor, eps: f64) -> Result<Tensor> {
    let mean = x.mean_keepdim(D::Minus1)?;
    let xc = x.broadcast_sub(&mean)?;
    let var = xc.sqr()?.mean_keepdim(D::Minus1)?;
    let xn = xc.broadcast_div(&(var + eps)?.sqrt()?)?;
    xn.broadcast_mul(weight)?.broadcast_add(bias)
}

/// Softmax over the last axis (the maximum is subtracted, as a constant, for range).
pub fn softmax_last(x: &Tensor) -> Result<Tensor> {
    let max = x.max_keepdim(D::Minus1)?.detach();
    let e = x.broadcast_sub(&max)?.exp()?;
    e.broadcast_div(&e.sum_keepdim(D::Minus1)?)
}

/// Logistic sigmoid as `(tanh(x/2) + 1) / 2`: no overflow at large |x| and a finite gradient.
pub fn sigmoid(x: &Tensor) -> Result<Tensor> {
    ((x * 0.5)?.tanh()? + 1.0)? * 0.5
}

/// `-(p · ln(p + 1e-8))` summed over the last axis (bsq-vit's `get_entropy(normalize=False)`).
pub fn entropy_last(p: &Tensor) -> Result<Tensor> {
    (p * (p + 1e-8)?.log()?)?.sum(D::Minus1)?.neg()
}

/// Clamps to `[lo, hi]` with PyTorch's gradient: passed through where `lo <= x <= hi`, zero outside.
pub fn clamp(x: &Tensor, lo: f64, hi: f64) -> Result<Tensor> {
    let inside = x.ge(lo)?.mul(&x.le(hi)?)?;
    let bounded = x.clamp(lo, hi)?.detach();
    inside.where_cond(x, &bounded)
}

/// `x / max(‖x‖₂, 1e-12)` over the last axis (`torch.nn.functional.normalize`).
pub fn l2_normalize(x: &Tensor) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(D::Minus1)?.sqrt()?;
    let floor = Tensor::full(1e-12f32, norm.shape(), norm.device())?.to_dtype(norm.dtype())?;
    let norm = norm.ge(1e-12)?.where_cond(&norm, &floor)?;
    x.broadcast_div(&norm)
}

/// `+1` where `x > 0`, else `-1`, in `x`'s dtype (no gradient).
pub fn sign_pm1(x: &Tensor) -> Result<Tensor> {
    let pos = x.gt(0.0)?;
    let ones = Tensor::ones_like(x)?;
    pos.where_cond(&ones, &ones.neg()?)
}

/// Casts a host `f32` slice to a tensor of `like`'s dtype and device.
pub fn const_like(data: Vec<f32>, shape: &[usize], like: &Tensor) -> Result<Tensor> {
    Tensor::from_vec(data, shape, like.device())?.to_dtype(like.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn layer_norm_matches_candle_fused_and_has_a_gradient() {
        let dev = Device::Cpu;
        let x = Var::from_vec((0..24).map(|i| ((i * 7 % 11) as f32) * 0.3 - 1.0).collect::<Vec<_>>(), (2, 3, 4), &dev)
            .unwrap();
        let w = Var::from_vec(vec![1.0f32, 0.5, 2.0, -1.0], 4, &dev).unwrap();
        let b = Var::from_vec(vec![0.1f32, 0.0, -0.2, 0.3], 4, &dev).unwrap();
        let ours = layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let fused = candle_nn::ops::layer_norm(x.as_tensor(), w.as_tensor(), b.as_tensor(), 1e-5).unwrap();
        let d = (ours.clone() - fused).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-5, "{d}");
        let g = (ours.sqr().unwrap().sum_all().unwrap()).backward().unwrap();
        for v in [&x, &w, &b] {
            let n = g.get(v).unwrap().abs().unwrap().sum_all().unwrap().to_scalar::<f32>().unwrap();
            assert!(n > 0.0);
        }
    }

    #[test]
    fn softmax_matches_fused_and_sigmoid_is_finite() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[1.0f32, 2.0, 3.0], [-100.0, 0.0, 100.0]], &dev).unwrap();
        let ours = softmax_last(&x).unwrap();
        let fused = candle_nn::ops::softmax_last_dim(&x).unwrap();
        let d = (ours - fused).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(d < 1e-6, "{d}");
        let v = Var::from_vec(vec![-200.0f32, 0.0, 200.0], 3, &dev).unwrap();
        let s = sigmoid(v.as_tensor()).unwrap();
        assert_eq!(s.to_vec1::<f32>().unwrap(), vec![0.0, 0.5, 1.0]);
        let g = s.sum_all().unwrap().backward().unwrap();
        let gv = g.get(&v).unwrap().to_vec1::<f32>().unwrap();
        assert!(gv.iter().all(|x| x.is_finite()));
        assert_eq!(gv[1], 0.25);
    }

    #[test]
    fn clamp_passes_the_gradient_only_inside() {
        let dev = Device::Cpu;
        let v = Var::from_vec(vec![-2.0f32, -0.5, 0.5, 3.0], 4, &dev).unwrap();
        let c = clamp(v.as_tensor(), -1.0, 1.0).unwrap();
        assert_eq!(c.to_vec1::<f32>().unwrap(), vec![-1.0, -0.5, 0.5, 1.0]);
        let g = c.sum_all().unwrap().backward().unwrap();
        assert_eq!(g.get(&v).unwrap().to_vec1::<f32>().unwrap(), vec![0.0, 1.0, 1.0, 0.0]);
    }
}
