//! Sample-rate conversion with libsoxr at HQ quality, matching python-soxr.
//!
//! `soxr.resample(x, in_rate, out_rate, quality="HQ")` (the resampler behind `librosa.load` and HF
//! `datasets`) creates one libsoxr stream with `soxr_quality_spec(SOXR_HQ, 0)`, float32 in and out,
//! one thread, feeds the signal, flushes, and keeps at most `floor(n * out / in) + 1` output
//! samples. [`Resampler`] does the same incrementally, so a long file is resampled block by block
//! with constant extra memory; the output does not depend on how the input is split.
//!
//! libsoxr comes from Debian's `libsoxr-dev` (version 0.1.3, the release python-soxr bundles),
//! linked through the `soxr` / `libsoxr-sys` crates.

use soxr::format::Mono;
use soxr::params::{QualityRecipe, QualitySpec, RuntimeSpec};
use soxr::Soxr;

use crate::error::{AudioError, Result};

/// A streaming mono resampler (one channel; run one per channel for multi-channel audio).
pub struct Resampler {
    soxr: Option<Soxr<Mono<f32>>>,
    from: u32,
    to: u32,
    consumed: u64,
    produced: u64,
    scratch: Vec<f32>,
}

const SCRATCH: usize = 16384;

fn soxr_error(from: u32, to: u32, e: soxr::Error) -> AudioError {
    AudioError::Resample { from, to, reason: e.as_str().to_string() }
}

impl Resampler {
    /// A resampler from `from` Hz to `to` Hz. Equal rates pass samples through untouched, as
    /// librosa does.
    pub fn new(from: u32, to: u32) -> Result<Self> {
        if from == 0 || to == 0 || from > crate::MAX_SAMPLE_RATE || to > crate::MAX_SAMPLE_RATE {
            return Err(AudioError::InvalidParameter(format!(
                "sample rates must be 1 to {} Hz ({from} -> {to})",
                crate::MAX_SAMPLE_RATE
            )));
        }
        let soxr = if from == to {
            None
        } else {
            let q = QualitySpec::new(QualityRecipe::high());
            Some(
                Soxr::<Mono<f32>>::new_with_params(f64::from(from), f64::from(to), q, RuntimeSpec::new(1))
                    .map_err(|e| soxr_error(from, to, e))?,
            )
        };
        Ok(Resampler { soxr, from, to, consumed: 0, produced: 0, scratch: vec![0.0; SCRATCH] })
    }

    /// The most samples python-soxr keeps for `n` input samples: `floor(n * to / from) + 1`.
    pub fn output_cap(n: u64, from: u32, to: u32) -> u64 {
        if from == to {
            return n;
        }
        (n as f64 * f64::from(to) / f64::from(from)) as u64 + 1
    }

    /// Feeds `input` and appends whatever output is ready to `out`.
    pub fn process(&mut self, mut input: &[f32], out: &mut Vec<f32>) -> Result<()> {
        self.consumed += input.len() as u64;
        let Some(soxr) = self.soxr.as_mut() else {
            out.extend_from_slice(input);
            self.produced += input.len() as u64;
            return Ok(());
        };
        while !input.is_empty() {
            let done = soxr.process(input, &mut self.scratch).map_err(|e| soxr_error(self.from, self.to, e))?;
            out.extend_from_slice(&self.scratch[..done.output_frames]);
            self.produced += done.output_frames as u64;
            if done.input_frames == 0 && done.output_frames == 0 {
                return Err(AudioError::Resample {
                    from: self.from,
                    to: self.to,
                    reason: "libsoxr made no progress".into(),
                });
            }
            input = &input[done.input_frames..];
        }
        Ok(())
    }

    /// Flushes the filter tail into `out` and trims the total to python-soxr's length.
    pub fn finish(mut self, out: &mut Vec<f32>) -> Result<()> {
        let start_len = out.len() as u64 - self.produced.min(out.len() as u64);
        if let Some(mut soxr) = self.soxr.take() {
            loop {
                let n = soxr.drain(&mut self.scratch).map_err(|e| soxr_error(self.from, self.to, e))?;
                if n == 0 {
                    break;
                }
                out.extend_from_slice(&self.scratch[..n]);
                self.produced += n as u64;
            }
        }
        let cap = Self::output_cap(self.consumed, self.from, self.to);
        if self.produced > cap {
            out.truncate((start_len + cap) as usize);
        }
        Ok(())
    }
}

/// The exact length [`resample`] (and [`crate::load`]) gives for `n` input samples:
/// `round(n * to / from)`, ties rounded up. libsoxr's flushed output has this length (python-soxr's
/// cap, `floor(n * to / from) + 1`, never binds), so a container that states its frame count gives
/// the resampled length without decoding. Checked against real resampling in the tests.
pub fn resampled_len(n: u64, from: u32, to: u32) -> u64 {
    if from == to || from == 0 {
        return n;
    }
    let (n, from, to) = (u128::from(n), u128::from(from), u128::from(to));
    ((2 * n * to + from) / (2 * from)) as u64
}

/// Resamples a whole mono signal (python-soxr's `soxr.resample(x, from, to, "HQ")`).
pub fn resample(x: &[f32], from: u32, to: u32) -> Result<Vec<f32>> {
    let mut r = Resampler::new(from, to)?;
    let mut out = Vec::with_capacity(Resampler::output_cap(x.len() as u64, from, to) as usize);
    r.process(x, &mut out)?;
    r.finish(&mut out)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn signal(n: usize) -> Vec<f32> {
        (0..n).map(|i| ((i as f32) * 0.013).sin() * 0.5 + ((i as f32) * 0.31).sin() * 0.2).collect()
    }

    #[test]
    fn same_rate_is_identity() {
        let x = signal(1000);
        assert_eq!(resample(&x, 16000, 16000).unwrap(), x);
    }

    #[test]
    fn length_follows_ratio() {
        for (n, from, to) in [(16000usize, 16000u32, 24000u32), (44100, 44100, 16000), (1234, 48000, 16000)] {
            let y = resample(&signal(n), from, to).unwrap();
            let exact = n as f64 * f64::from(to) / f64::from(from);
            assert!((y.len() as f64 - exact).abs() <= 1.0, "{n} {from}->{to}: {} vs {exact}", y.len());
        }
    }

    #[test]
    fn resampled_len_is_exact() {
        let pairs = [
            (44100u32, 16000u32),
            (48000, 16000),
            (22050, 16000),
            (8000, 16000),
            (16000, 24000),
            (16000, 44100),
            (11025, 16000),
            (44100, 24000),
            (24000, 32000),
        ];
        for (from, to) in pairs {
            for n in (1..700u64).chain([1023, 4410, 44100, 100_003]) {
                let x = signal(n as usize);
                let y = resample(&x, from, to).unwrap();
                assert_eq!(y.len() as u64, resampled_len(n, from, to), "{n} samples {from} -> {to}");
            }
        }
        assert_eq!(resampled_len(5, 16000, 16000), 5);
    }

    #[test]
    fn zero_rate_is_an_error() {
        assert!(Resampler::new(0, 16000).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        /// Streaming in arbitrary blocks gives exactly the one-shot output.
        #[test]
        fn chunking_does_not_change_output(splits in proptest::collection::vec(1usize..5000, 1..8)) {
            let x = signal(20000);
            let whole = resample(&x, 44100, 16000).unwrap();
            let mut r = Resampler::new(44100, 16000).unwrap();
            let mut out = Vec::new();
            let mut pos = 0;
            for s in splits {
                let end = (pos + s).min(x.len());
                r.process(&x[pos..end], &mut out).unwrap();
                pos = end;
            }
            r.process(&x[pos..], &mut out).unwrap();
            r.finish(&mut out).unwrap();
            prop_assert_eq!(out, whole);
        }
    }
}
