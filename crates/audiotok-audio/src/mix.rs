//! Channel reduction.

/// Appends the channel mean of one planar block to `out`, as `librosa.to_mono` (`np.mean` over
/// channels in float32: a running sum over channels, then one division).
pub fn downmix_into(planes: &[Vec<f32>], out: &mut Vec<f32>) {
    match planes {
        [] => {}
        [only] => out.extend_from_slice(only),
        [first, rest @ ..] => {
            let n = first.len();
            let start = out.len();
            out.extend_from_slice(first);
            let acc = &mut out[start..start + n];
            for plane in rest {
                for (a, &s) in acc.iter_mut().zip(plane) {
                    *a += s;
                }
            }
            let c = planes.len() as f32;
            for a in acc.iter_mut() {
                *a /= c;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_of_channels() {
        let mut out = vec![9.0];
        downmix_into(&[vec![1.0, 0.5], vec![0.0, -0.5], vec![2.0, 3.0]], &mut out);
        assert_eq!(out, vec![9.0, 1.0, 1.0]);
    }

    #[test]
    fn mono_passes_through() {
        let mut out = Vec::new();
        downmix_into(&[vec![0.25, -1.0]], &mut out);
        assert_eq!(out, vec![0.25, -1.0]);
    }
}
