//! Fixed-length windows over a signal (used by codec encoding).
//!
//! The signal is cut into consecutive, non-overlapping windows of `window` samples. What happens to
//! the last, partial window is a [`TailPolicy`]: by default it is zero-padded to full length
//! ([`TailPolicy::Pad`]), so no audio is dropped and every window has the same shape; it can
//! instead be kept short ([`TailPolicy::Keep`]) or dropped ([`TailPolicy::Drop`]). A `window` of 0
//! means one window holding the whole signal.

use std::ops::Range;

/// What to do with a final window shorter than the window length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TailPolicy {
    /// Zero-pad the last window to full length (the default: nothing is lost).
    #[default]
    Pad,
    /// Keep the last window at its own, shorter length.
    Keep,
    /// Drop the last window if it is partial.
    Drop,
}

/// One window: the range of real samples it covers and how many zeros follow them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Segment {
    /// Sample range of the source covered by this window.
    pub range: Range<usize>,
    /// Zeros appended after the samples (non-zero only for a padded tail).
    pub padding: usize,
}

/// Plans the windows over `len` samples.
pub fn plan(len: usize, window: usize, policy: TailPolicy) -> Vec<Segment> {
    if window == 0 {
        return if len == 0 { Vec::new() } else { vec![Segment { range: 0..len, padding: 0 }] };
    }
    let mut out = Vec::with_capacity(len.div_ceil(window));
    let mut start = 0;
    while start < len {
        let end = (start + window).min(len);
        let short = window - (end - start);
        match (short, policy) {
            (0, _) | (_, TailPolicy::Keep) => out.push(Segment { range: start..end, padding: 0 }),
            (_, TailPolicy::Pad) => out.push(Segment { range: start..end, padding: short }),
            (_, TailPolicy::Drop) => {}
        }
        start = end;
    }
    out
}

/// Materialises a planned window from `signal` (samples followed by its zero padding).
pub fn extract(signal: &[f32], seg: &Segment) -> Vec<f32> {
    let mut v = Vec::with_capacity(seg.range.len() + seg.padding);
    v.extend_from_slice(&signal[seg.range.clone()]);
    v.resize(seg.range.len() + seg.padding, 0.0);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn documented_policies() {
        assert_eq!(plan(10, 4, TailPolicy::Pad).last(), Some(&Segment { range: 8..10, padding: 2 }));
        assert_eq!(plan(10, 4, TailPolicy::Keep).last(), Some(&Segment { range: 8..10, padding: 0 }));
        assert_eq!(plan(10, 4, TailPolicy::Drop).len(), 2);
        assert_eq!(plan(8, 4, TailPolicy::Drop).len(), 2);
        assert_eq!(plan(5, 0, TailPolicy::Pad), vec![Segment { range: 0..5, padding: 0 }]);
        assert!(plan(0, 4, TailPolicy::Pad).is_empty());
    }

    proptest! {
        /// Concatenating the windows (without their padding) gives back the signal.
        #[test]
        fn windows_tile_the_signal(x in proptest::collection::vec(-1.0f32..1.0, 0..500), w in 0usize..64) {
            let segs = plan(x.len(), w, TailPolicy::Pad);
            let mut joined = Vec::new();
            for s in &segs {
                let e = extract(&x, s);
                if w > 0 { prop_assert_eq!(e.len(), w); }
                joined.extend_from_slice(&e[..s.range.len()]);
            }
            prop_assert_eq!(joined, x);
        }
    }
}
