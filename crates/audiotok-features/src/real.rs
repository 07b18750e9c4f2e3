//! The two sample types the spectral code runs in: `f64` (bit-exact with the numpy references)
//! and `f32` (faster, within 1e-4 of them).

use realfft::num_complex::Complex;
use realfft::FftNum;

use crate::fastmath;

/// A float the STFT, mel bank and log can run in.
pub trait Real: FftNum + PartialOrd + Default {
    /// Converts a sample.
    fn of_f32(x: f32) -> Self;
    /// Converts a constant.
    fn of_f64(x: f64) -> Self;
    /// Rounds to `f32`.
    fn to_f32(self) -> f32;
    /// `|c|^2`; with `complex64` the parts are first rounded to single precision (as
    /// transformers stores its float64 STFT as `complex64`).
    fn power(c: Complex<Self>, complex64: bool) -> Self;
    /// Base-10 logarithm of a positive normal value (vectorisable polynomial).
    fn log10(self) -> Self;
    /// The mel weights stored in this precision.
    fn weights<'a>(w64: &'a [f64], w32: &'a [f32]) -> &'a [Self];
}

impl Real for f64 {
    fn of_f32(x: f32) -> Self {
        f64::from(x)
    }
    fn of_f64(x: f64) -> Self {
        x
    }
    fn to_f32(self) -> f32 {
        self as f32
    }
    #[inline(always)]
    fn power(c: Complex<Self>, complex64: bool) -> Self {
        if complex64 {
            let (re, im) = (f64::from(c.re as f32), f64::from(c.im as f32));
            re * re + im * im
        } else {
            c.re * c.re + c.im * c.im
        }
    }
    #[inline(always)]
    fn log10(self) -> Self {
        fastmath::log10(self)
    }
    fn weights<'a>(w64: &'a [f64], _: &'a [f32]) -> &'a [Self] {
        w64
    }
}

impl Real for f32 {
    fn of_f32(x: f32) -> Self {
        x
    }
    fn of_f64(x: f64) -> Self {
        x as f32
    }
    fn to_f32(self) -> f32 {
        self
    }
    #[inline(always)]
    fn power(c: Complex<Self>, _: bool) -> Self {
        c.re * c.re + c.im * c.im
    }
    #[inline(always)]
    fn log10(self) -> Self {
        fastmath::log10_f32(self)
    }
    fn weights<'a>(_: &'a [f64], w32: &'a [f32]) -> &'a [Self] {
        w32
    }
}
