//! A branch-free `log10` for positive normal `f64`, accurate to a few ulp, that the compiler can
//! vectorise (glibc's `log10` cannot be, and was 40% of the Whisper extractor's time).

const SQRT2: f64 = std::f64::consts::SQRT_2;
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // ln 2, high 32 bits
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // ln 2 - LN2_HI
const INV_LN10: f64 = std::f64::consts::LOG10_E;

/// Natural logarithm of a positive, normal, finite `x` (other inputs give unspecified values).
///
/// `x = 2^e * m` with `m` in `[sqrt(1/2), sqrt(2))`; `ln m = 2 atanh(s)`, `s = (m-1)/(m+1)`,
/// `|s| <= 0.1716`, summed to `s^17`: the first omitted term, `2 s^19 / 19`, is below 2e-16, an
/// absolute error far under the float32 rounding the callers apply.
#[inline(always)]
pub fn ln(x: f64) -> f64 {
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    let big = m > SQRT2;
    m = if big { m * 0.5 } else { m };
    e += i64::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 2.0 / 17.0;
    p = p * s2 + 2.0 / 15.0;
    p = p * s2 + 2.0 / 13.0;
    p = p * s2 + 2.0 / 11.0;
    p = p * s2 + 2.0 / 9.0;
    p = p * s2 + 2.0 / 7.0;
    p = p * s2 + 2.0 / 5.0;
    p = p * s2 + 2.0 / 3.0;
    let lnm = s * 2.0 + s * s2 * p;
    let ef = e as f64;
    ef * LN2_HI + (ef * LN2_LO + lnm)
}

/// Base-10 logarithm of a positive, normal, finite `x`.
#[inline(always)]
pub fn log10(x: f64) -> f64 {
    ln(x) * INV_LN10
}

/// Base-10 logarithm of a positive, normal, finite `f32` (relative error a few ulp).
///
/// As [`ln`], with the series to `s^9`: the first omitted term, `2 s^11 / 11`, is below 8e-10.
#[inline(always)]
pub fn log10_f32(x: f32) -> f32 {
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    let big = m > std::f32::consts::SQRT_2;
    m = if big { m * 0.5 } else { m };
    e += i32::from(big);
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut p = 2.0f32 / 9.0;
    p = p * s2 + 2.0 / 7.0;
    p = p * s2 + 2.0 / 5.0;
    p = p * s2 + 2.0 / 3.0;
    let lnm = s * 2.0 + s * s2 * p;
    (e as f32 * std::f32::consts::LN_2 + lnm) * std::f32::consts::LOG10_E
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn exact_powers_and_edges() {
        assert_eq!(log10(1.0), 0.0);
        assert!((log10(1e-10) + 10.0).abs() < 1e-14);
        assert!((log10(1e10) - 10.0).abs() < 1e-14);
    }

    proptest! {
        #[test]
        fn f32_close_to_libm(x in 1e-12f32..1e12) {
            let (a, b) = (log10_f32(x), x.log10());
            prop_assert!((a - b).abs() <= 4.0 * f32::EPSILON * b.abs().max(1.0), "{x}: {a} vs {b}");
        }

        #[test]
        fn close_to_libm(x in 1e-12f64..1e12) {
            let (a, b) = (log10(x), x.log10());
            prop_assert!((a - b).abs() <= 4.0 * f64::EPSILON * b.abs().max(1.0), "{x}: {a} vs {b}");
            // What the Whisper extractor keeps: the value rounded to f32.
            prop_assert!(((a as f32) - (b as f32)).abs() <= f32::EPSILON * (b as f32).abs().max(1.0));
        }
    }
}
