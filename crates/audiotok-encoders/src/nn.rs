//! candle layers of the towers' input convolutions (channel-major, about 1% of a tower's work);
//! everything after them runs on [`crate::cpu`].

use candle_core::Tensor;

use crate::weights::Loader;
use crate::Result;

/// A 1-D convolution with its optional bias, over `(1, in, length)`.
#[derive(Debug, Clone)]
pub struct Conv1d {
    w: Tensor,
    b: Option<Tensor>,
    stride: usize,
    padding: usize,
    groups: usize,
}

impl Conv1d {
    /// Loads `{name}.weight` `(out, in / groups, k)` and, when `bias`, `{name}.bias`.
    #[allow(clippy::too_many_arguments)]
    pub fn load(
        l: &Loader,
        name: &str,
        inp: usize,
        out: usize,
        k: usize,
        stride: usize,
        padding: usize,
        bias: bool,
    ) -> Result<Self> {
        let w = l.get(&format!("{name}.weight"), &[out, inp, k])?;
        let b = if bias { Some(l.get(&format!("{name}.bias"), &[out])?) } else { None };
        Ok(Conv1d { w, b, stride, padding, groups: 1 })
    }

    /// A convolution from a weight already made.
    pub fn from_parts(w: Tensor, b: Option<Tensor>, stride: usize, padding: usize, groups: usize) -> Self {
        Conv1d { w, b, stride, padding, groups }
    }

    /// Applies it to `(1, in, length)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let y = x.contiguous()?.conv1d(&self.w, self.padding, self.stride, 1, self.groups)?;
        Ok(match &self.b {
            Some(b) => y.broadcast_add(&b.reshape((1, (), 1))?)?,
            None => y,
        })
    }
}

/// Exact (erf) GELU ([`crate::kernels::gelu`]).
pub fn gelu(x: &Tensor) -> Result<Tensor> {
    Ok(crate::kernels::gelu(x)?)
}
