//! wav2vec2 / HuBERT input normalisation (`Wav2Vec2FeatureExtractor` with `do_normalize=True`):
//! per utterance, `(x - mean) / sqrt(var + 1e-7)` with the population variance.

use crate::Features;

/// Normalises one utterance to zero mean and unit variance. An empty input gives an empty output.
pub fn normalize(x: &[f32]) -> Features {
    let n = x.len().max(1) as f64;
    let mean = x.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let var = x.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
    let scale = 1.0 / (var + 1e-7).sqrt();
    let data: Vec<f32> = x.iter().map(|&v| ((f64::from(v) - mean) * scale) as f32).collect();
    Features { shape: vec![data.len()], data, mask_ones: Some(x.len()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_mean_unit_variance() {
        let x: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.1).sin() * 3.0 + 1.0).collect();
        let f = normalize(&x);
        let n = f.data.len() as f64;
        let mean: f64 = f.data.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var: f64 = f.data.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum::<f64>() / n;
        assert!(mean.abs() < 1e-6 && (var - 1.0).abs() < 1e-5, "{mean} {var}");
    }

    #[test]
    fn constant_input_stays_finite() {
        let f = normalize(&[0.5; 10]);
        assert!(f.data.iter().all(|v| v.abs() < 1e-3));
    }
}
