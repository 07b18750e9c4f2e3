//! Token-count profiles: how many audio tokens an encoder emits for `n` samples at its rate.
//!
//! | profile | rate | tokens for n samples |
//! |---|---|---|
//! | `qwen2-audio`, `qwen2.5-omni` | 16 kHz | `f = min(3000, ceil(n/160))`; `(((f-1)//2+1) - 2)//2 + 1` (25/s, at most 750) |
//! | `qwen2-audio-windows` | 16 kHz | the clip in consecutive 30 s windows (480 000 samples, the last shorter), each counted as `qwen2-audio`, summed: the rows `audiotok embed` gives a long clip on the Qwen2-Audio tower |
//! | `qwen3-omni` | 16 kHz | `L = ceil(n/160)`; `13*(L//100) + ceil((L%100)/8)` (not truncated) |
//! | `whisper` | 16 kHz | `L = ceil(n/160)`; `(L-1)//2 + 1` (50/s, not truncated) |
//! | `hubert`, `wav2vec2` | 16 kHz | `floor((n-400)/320) + 1`, 0 below 400 samples (50/s) |
//! | `snac-24khz` | 24 kHz | pad n to a multiple of 512·4; `T = n'/512`; scales `T/4, T/2, T` |
//! | `snac-32khz` | 32 kHz | pad n to a multiple of 384·32; `T = n'/384`; scales `T/8, T/4, T/2, T` |
//! | `snac-44khz` | 44.1 kHz | as `snac-32khz` |
//! | `encodec-24khz` | 24 kHz | `ceil(n/320)` per codebook (75/s; 8 codebooks at 6 kbps) |
//! | `mimi` | 24 kHz | `ceil(n/1920)` per codebook (12.5/s; 8 codebooks) |
//! | `custom:rate=R,hop=H` | R | `ceil(n/H)` |
//! | `custom:fps=F[,rate=R]` | R (16 kHz) | `ceil(n*F/R)` |

use std::fmt;
use std::str::FromStr;

use crate::error::FeatureError;

/// A named encoder geometry.
#[derive(Debug, Clone, PartialEq)]
pub enum Profile {
    /// Qwen2-Audio's Whisper-style encoder with a stride-2 pooling: 25 tokens/s, 30 s max.
    Qwen2Audio,
    /// Qwen2.5-Omni's audio tower (same counts as Qwen2-Audio).
    Qwen25Omni,
    /// Qwen2-Audio over consecutive 30 s windows (no truncation): `audiotok embed`'s rows.
    Qwen2AudioWindows,
    /// Qwen3-Omni's chunked audio encoder: 13 tokens per 100 mel frames.
    Qwen3Omni,
    /// Whisper's encoder: 50 tokens/s.
    Whisper,
    /// HuBERT's convolutional front end: 20 ms frames, 25 ms receptive field.
    Hubert,
    /// wav2vec2's convolutional front end (as HuBERT).
    Wav2Vec2,
    /// SNAC 24 kHz: 3 scales.
    Snac24,
    /// SNAC 32 kHz: 4 scales.
    Snac32,
    /// SNAC 44.1 kHz: 4 scales.
    Snac44,
    /// EnCodec 24 kHz: 75 frames/s per codebook.
    Encodec24,
    /// Mimi (Moshi): 12.5 frames/s per codebook.
    Mimi,
    /// `ceil(n / hop)` tokens at `rate`.
    CustomHop {
        /// Sample rate.
        rate: u32,
        /// Samples per token.
        hop: u32,
    },
    /// `ceil(n * fps / rate)` tokens.
    CustomFps {
        /// Sample rate.
        rate: u32,
        /// Tokens per second.
        fps: f64,
    },
}

/// Tokens for one clip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCount {
    /// Tokens per scale (one entry for single-rate encoders), coarsest first.
    pub per_scale: Vec<u64>,
    /// Parallel codebooks at each scale (e.g. 8 for EnCodec at 6 kbps).
    pub codebooks: u32,
}

impl TokenCount {
    /// All tokens over scales and codebooks.
    pub fn total(&self) -> u64 {
        self.per_scale.iter().sum::<u64>() * u64::from(self.codebooks)
    }
}

/// Every named profile, for help texts.
pub const NAMES: &[&str] = &[
    "qwen2-audio",
    "qwen2.5-omni",
    "qwen2-audio-windows",
    "qwen3-omni",
    "whisper",
    "hubert",
    "wav2vec2",
    "snac-24khz",
    "snac-32khz",
    "snac-44khz",
    "encodec-24khz",
    "mimi",
    "custom:rate=R,hop=H",
    "custom:fps=F[,rate=R]",
];

fn mel_frames(n: u64) -> u64 {
    n.div_ceil(160)
}

/// Qwen2-Audio's tokens for one window of `n` samples (its 3000 mel frames at most).
fn qwen2_audio(n: u64) -> u64 {
    let f = mel_frames(n).min(3000) as i64;
    // Python floor division on possibly negative values.
    let t = (((f - 1).div_euclid(2) + 1) - 2).div_euclid(2) + 1;
    t.max(0) as u64
}

/// Samples of one Qwen2-Audio window (30 s at 16 kHz).
const QWEN2_WINDOW: u64 = 480_000;

/// SNAC: pad to hop * lcm(vq_strides[0], attention window), then one count per stride.
fn snac(n: u64, hop: u64, strides: &[u64], window: u64) -> Vec<u64> {
    let lcm = lcm(strides[0], window);
    let padded = n.div_ceil(hop * lcm) * hop * lcm;
    let t = padded / hop;
    strides.iter().map(|s| t / s).collect()
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn lcm(a: u64, b: u64) -> u64 {
    a / gcd(a, b) * b
}

impl Profile {
    /// The sample rate the counts refer to.
    pub fn sample_rate(&self) -> u32 {
        match self {
            Profile::Snac24 | Profile::Encodec24 | Profile::Mimi => 24_000,
            Profile::Snac32 => 32_000,
            Profile::Snac44 => 44_100,
            Profile::CustomHop { rate, .. } | Profile::CustomFps { rate, .. } => *rate,
            _ => 16_000,
        }
    }

    /// Tokens for `n` samples at [`Profile::sample_rate`].
    pub fn count(&self, n: u64) -> TokenCount {
        let one = |t: u64| TokenCount { per_scale: vec![t], codebooks: 1 };
        match self {
            Profile::Qwen2Audio | Profile::Qwen25Omni => one(qwen2_audio(n)),
            Profile::Qwen2AudioWindows => {
                let full = n / QWEN2_WINDOW;
                let rest = n % QWEN2_WINDOW;
                one(full * qwen2_audio(QWEN2_WINDOW) + if rest > 0 { qwen2_audio(rest) } else { 0 })
            }
            Profile::Qwen3Omni => {
                let l = mel_frames(n);
                one(13 * (l / 100) + (l % 100).div_ceil(8))
            }
            Profile::Whisper => one(mel_frames(n).div_ceil(2)),
            Profile::Hubert | Profile::Wav2Vec2 => one(if n < 400 { 0 } else { (n - 400) / 320 + 1 }),
            Profile::Snac24 => TokenCount { per_scale: snac(n, 512, &[4, 2, 1], 1), codebooks: 1 },
            Profile::Snac32 | Profile::Snac44 => {
                TokenCount { per_scale: snac(n, 384, &[8, 4, 2, 1], 32), codebooks: 1 }
            }
            Profile::Encodec24 => TokenCount { per_scale: vec![n.div_ceil(320)], codebooks: 8 },
            Profile::Mimi => TokenCount { per_scale: vec![n.div_ceil(1920)], codebooks: 8 },
            Profile::CustomHop { hop, .. } => one(n.div_ceil(u64::from(*hop))),
            Profile::CustomFps { rate, fps } => one((n as f64 * fps / f64::from(*rate)).ceil() as u64),
        }
    }
}

impl fmt::Display for Profile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Profile::Qwen2Audio => "qwen2-audio",
            Profile::Qwen25Omni => "qwen2.5-omni",
            Profile::Qwen2AudioWindows => "qwen2-audio-windows",
            Profile::Qwen3Omni => "qwen3-omni",
            Profile::Whisper => "whisper",
            Profile::Hubert => "hubert",
            Profile::Wav2Vec2 => "wav2vec2",
            Profile::Snac24 => "snac-24khz",
            Profile::Snac32 => "snac-32khz",
            Profile::Snac44 => "snac-44khz",
            Profile::Encodec24 => "encodec-24khz",
            Profile::Mimi => "mimi",
            Profile::CustomHop { rate, hop } => return write!(f, "custom:rate={rate},hop={hop}"),
            Profile::CustomFps { rate, fps } => return write!(f, "custom:fps={fps},rate={rate}"),
        };
        f.write_str(s)
    }
}

impl FromStr for Profile {
    type Err = FeatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let p = match s.to_ascii_lowercase().as_str() {
            "qwen2-audio" => Profile::Qwen2Audio,
            "qwen2.5-omni" | "qwen25-omni" => Profile::Qwen25Omni,
            "qwen2-audio-windows" => Profile::Qwen2AudioWindows,
            "qwen3-omni" => Profile::Qwen3Omni,
            "whisper" => Profile::Whisper,
            "hubert" => Profile::Hubert,
            "wav2vec2" => Profile::Wav2Vec2,
            "snac-24khz" | "snac24" => Profile::Snac24,
            "snac-32khz" | "snac32" => Profile::Snac32,
            "snac-44khz" | "snac44" => Profile::Snac44,
            "encodec-24khz" | "encodec" => Profile::Encodec24,
            "mimi" => Profile::Mimi,
            other => match other.strip_prefix("custom:") {
                Some(spec) => return parse_custom(spec),
                None => {
                    return Err(FeatureError::Config(format!("unknown profile '{s}'; known: {}", NAMES.join(", "))))
                }
            },
        };
        Ok(p)
    }
}

/// The highest `rate` a custom profile takes: the highest sample rate audiotok decodes or
/// resamples to (`audiotok_audio::MAX_SAMPLE_RATE`, checked equal in audiotok-pack's tests).
pub const MAX_RATE: u32 = 768_000;

/// The lowest `fps` a custom profile takes (one token per 1000 s). The highest is its `rate`: one
/// token per sample.
pub const MIN_FPS: f64 = 0.001;

fn parse_custom(spec: &str) -> Result<Profile, FeatureError> {
    let bad = |m: &str| FeatureError::Config(format!("custom profile '{spec}': {m}"));
    let (mut rate, mut hop, mut fps) = (None, None, None);
    for kv in spec.split(',') {
        let (k, v) = kv.split_once('=').ok_or_else(|| bad("expected key=value pairs"))?;
        match k.trim() {
            "rate" => rate = Some(v.trim().parse::<u32>().map_err(|_| bad("rate must be an integer"))?),
            "hop" => hop = Some(v.trim().parse::<u32>().map_err(|_| bad("hop must be an integer"))?),
            "fps" => fps = Some(v.trim().parse::<f64>().map_err(|_| bad("fps must be a number"))?),
            other => return Err(bad(&format!("unknown key '{other}' (rate, hop, fps)"))),
        }
    }
    let rate = rate.unwrap_or(16_000);
    if rate == 0 || rate > MAX_RATE {
        return Err(bad(&format!("rate must be 1 to {MAX_RATE} Hz")));
    }
    match (hop, fps) {
        (Some(h), None) if h > 0 => Ok(Profile::CustomHop { rate, hop: h }),
        (None, Some(f)) if f > 0.0 && f.is_finite() => {
            if !(MIN_FPS..=f64::from(rate)).contains(&f) {
                return Err(bad(&format!("fps must be {MIN_FPS} to {rate} (the sample rate) tokens per second")));
            }
            Ok(Profile::CustomFps { rate, fps: f })
        }
        _ => Err(bad("give exactly one of hop (positive integer) or fps (positive number)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str, secs: f64) -> Vec<u64> {
        let p: Profile = p.parse().unwrap();
        p.count((secs * f64::from(p.sample_rate())).round() as u64).per_scale
    }

    #[test]
    fn documented_examples() {
        assert_eq!(c("qwen2-audio", 10.0), vec![250]);
        assert_eq!(c("qwen2-audio", 30.0), vec![750]);
        assert_eq!(c("qwen2-audio", 45.0), vec![750]);
        assert_eq!(c("qwen2.5-omni", 10.0), vec![250]);
        // Windows: 45 s = 30 s (750) + 15 s (375); up to 30 s the same as qwen2-audio.
        assert_eq!(c("qwen2-audio-windows", 45.0), vec![1125]);
        assert_eq!(c("qwen2-audio-windows", 60.0), vec![1500]);
        for secs in [0.01, 1.0, 10.0, 29.99, 30.0] {
            assert_eq!(c("qwen2-audio-windows", secs), c("qwen2-audio", secs), "{secs} s");
        }
        assert_eq!(c("hubert", 3.0), vec![149]);
        assert_eq!(c("wav2vec2", 3.0), vec![149]);
        assert_eq!(c("whisper", 30.0), vec![1500]);
        assert_eq!(c("encodec-24khz", 1.0), vec![75]);
        assert_eq!(c("mimi", 2.0), vec![25]);
        assert_eq!(c("custom:rate=16000,hop=320", 1.0), vec![50]);
        assert_eq!(c("custom:fps=12.5", 2.0), vec![25]);
    }

    #[test]
    fn qwen_small_inputs_follow_python_floor_division() {
        let p = Profile::Qwen2Audio;
        // n=0 -> frames 0 -> (((−1)//2+1)−2)//2+1 = 0.
        assert_eq!(p.count(0).per_scale, vec![0]);
        let want = [(1, 0), (2, 0), (3, 1), (6, 1), (7, 2), (3000, 750), (4000, 750)];
        for (frames, tokens) in want {
            assert_eq!(p.count(160 * frames).per_scale, vec![tokens], "{frames} frames");
        }
    }

    #[test]
    fn qwen3_omni_matches_its_conv_formula() {
        // transformers: leave = L % 100; f = (leave-1)//2+1; ((f-1)//2+1-1)//2+1 + (L//100)*13.
        for l in 0u64..1000 {
            let leave = l as i64 % 100;
            let f = (leave - 1).div_euclid(2) + 1;
            let want = ((f - 1).div_euclid(2) + 1 - 1).div_euclid(2) + 1 + (l as i64 / 100) * 13;
            assert_eq!(Profile::Qwen3Omni.count(l * 160).per_scale, vec![want as u64], "L={l}");
        }
    }

    #[test]
    fn snac_pads_to_hop_times_lcm() {
        // 10 s at 24 kHz: 240000 -> 241664 (118 * 2048) -> 472 frames.
        assert_eq!(c("snac-24khz", 10.0), vec![118, 236, 472]);
        // 1 s at 32 kHz: 32000 -> 36864 (3 * 12288) -> 96 frames.
        assert_eq!(c("snac-32khz", 1.0), vec![12, 24, 48, 96]);
        assert_eq!(Profile::Snac44.count(1).per_scale, vec![4, 8, 16, 32]);
    }

    #[test]
    fn parse_errors_are_clear() {
        assert!("nope".parse::<Profile>().unwrap_err().to_string().contains("qwen2-audio"));
        assert!("custom:hop=0".parse::<Profile>().is_err());
        assert!("custom:hop=3,fps=2".parse::<Profile>().is_err());
        assert_eq!("custom:rate=24000,hop=480".parse::<Profile>().unwrap().to_string(), "custom:rate=24000,hop=480");
    }

    /// Rates above 768 kHz and token rates above the sample rate (or below one per 1000 s) are
    /// refused: `fps=1e300` would overflow every count.
    #[test]
    fn custom_values_out_of_range_are_refused() {
        for (spec, why) in [
            ("custom:fps=1e300", "fps must be"),
            ("custom:fps=16001", "fps must be"),
            ("custom:fps=1e-300", "fps must be"),
            ("custom:rate=4294967295,hop=1", "rate must be"),
            ("custom:rate=768001,hop=320", "rate must be"),
            ("custom:fps=50,rate=0", "rate must be"),
        ] {
            let e = spec.parse::<Profile>().unwrap_err().to_string();
            assert!(e.contains(spec.trim_start_matches("custom:")) && e.contains(why), "{spec}: {e}");
        }
        assert!("custom:fps=16000".parse::<Profile>().is_ok());
        assert!("custom:rate=768000,hop=1".parse::<Profile>().is_ok());
        assert!("custom:fps=0.001".parse::<Profile>().is_ok());
    }
}
