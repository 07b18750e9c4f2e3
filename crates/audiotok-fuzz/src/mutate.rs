//! A deterministic byte mutator: a splitmix64 generator and the mutations of [`mutate`].
//!
//! Everything is a pure function of the 64-bit case seed, so the parent and the child process
//! derive the same input for the same case, and a case number alone reproduces it.

use std::ops::Range;

/// splitmix64 (Steele, Lea, Flood 2014): small, fast and good enough to pick mutations.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    /// One element of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// FNV-1a of a name, to give each target its own stream of cases.
pub fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The seed of case `case` of target `target` under the campaign seed `base`.
pub fn case_seed(target: &str, base: u64, case: u64) -> u64 {
    let mut r = Rng::new(name_hash(target) ^ base.rotate_left(17) ^ case.wrapping_mul(0xA24B_AED4_963E_E407));
    r.next_u64()
}

/// Boundary integers written over 2, 4 or 8 bytes.
const BOUNDARY: &[u64] = &[
    0,
    1,
    0x7F,
    0x80,
    0xFF,
    0x7FFF,
    0x8000,
    0xFFFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    0x1_0000_0000,
    (1 << 36) - 1,
    0x7FFF_FFFF_FFFF_FFFF,
    0x8000_0000_0000_0000,
    u64::MAX,
];

/// Numbers written over a run of ASCII digits (JSON, npy headers, text token files).
const DECIMALS: &[&str] = &[
    "0",
    "-1",
    "1",
    "255",
    "65536",
    "2147483647",
    "2147483648",
    "4294967295",
    "4294967296",
    "68719476735",
    "10000000000000",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "1e300",
    "-0",
    "0.5",
    "NaN",
];

const INTERESTING_BYTES: &[u8] = &[0, 0xFF, 0x7F, 0x80, 1, b'"', b'{', b'[', b',', b'9'];

/// Where mutations land: `hot` ranges (headers, footers) get about half of them.
#[derive(Debug, Clone, Default)]
pub struct Regions {
    /// Byte ranges that matter most to the reader (clamped to the input).
    pub hot: Vec<Range<usize>>,
}

impl Regions {
    /// The first 64 bytes and the last KiB: where most containers keep their sizes.
    pub fn header_footer(len: usize) -> Regions {
        Regions { hot: vec![0..len.min(64), len.saturating_sub(1024)..len] }
    }

    /// `header_footer` plus `extra`.
    pub fn with(len: usize, extra: Range<usize>) -> Regions {
        Regions::with_all(len, std::iter::once(extra))
    }

    /// `header_footer` plus every range of `extra`.
    pub fn with_all(len: usize, extra: impl IntoIterator<Item = Range<usize>>) -> Regions {
        let mut r = Regions::header_footer(len);
        r.hot.extend(extra);
        r
    }

    fn position(&self, rng: &mut Rng, len: usize) -> usize {
        let hot: Vec<Range<usize>> =
            self.hot.iter().map(|r| r.start.min(len)..r.end.min(len)).filter(|r| !r.is_empty()).collect();
        if !hot.is_empty() && rng.chance(1, 2) {
            let r = rng.pick(&hot).clone();
            return r.start + rng.below(r.len());
        }
        rng.below(len)
    }
}

/// What one mutation did, for the failure report.
pub fn describe(ops: &[String]) -> String {
    ops.join("; ")
}

/// Mutates `data` in place with 1 to 4 mutations drawn from `rng`; returns their descriptions.
pub fn mutate(data: &mut Vec<u8>, regions: &Regions, rng: &mut Rng) -> Vec<String> {
    // Mostly one mutation (so that a reader gets past its first check), sometimes a few.
    let n = match rng.below(8) {
        0..=4 => 1,
        5 | 6 => 2,
        _ => 3 + rng.below(2),
    };
    let mut ops = Vec::with_capacity(n);
    for _ in 0..n {
        ops.push(mutate_once(data, regions, rng));
    }
    ops
}

fn mutate_once(data: &mut Vec<u8>, regions: &Regions, rng: &mut Rng) -> String {
    if data.is_empty() {
        let b = rng.next_u64() as u8;
        data.push(b);
        return format!("insert {b:#04x} into an empty input");
    }
    let len = data.len();
    let pos = regions.position(rng, len);
    match rng.below(100) {
        0..=19 => {
            let bit = rng.below(8);
            data[pos] ^= 1 << bit;
            format!("flip bit {bit} at {pos}")
        }
        20..=31 => {
            let b = *rng.pick(INTERESTING_BYTES);
            data[pos] = b;
            format!("set byte {pos} to {b:#04x}")
        }
        32..=53 => {
            let width = *rng.pick(&[2usize, 4, 8]);
            let pos = pos.min(len.saturating_sub(width));
            let end = (pos + width).min(len);
            let mut old = [0u8; 8];
            old[..end - pos].copy_from_slice(&data[pos..end]);
            let big = rng.chance(1, 4);
            let value = match rng.below(3) {
                0 => {
                    // The value already there times 2^k, or off by one.
                    let v = if big { u64::from_be_bytes(old) >> (8 * (8 - width)) } else { u64::from_le_bytes(old) };
                    match rng.below(3) {
                        0 => v.wrapping_shl(*rng.pick(&[1u32, 4, 8, 16, 24, 32])),
                        1 => v.wrapping_add(1),
                        _ => v.wrapping_sub(1),
                    }
                }
                _ => *rng.pick(BOUNDARY),
            };
            let bytes =
                if big { value.to_be_bytes()[8 - width..].to_vec() } else { value.to_le_bytes()[..width].to_vec() };
            data[pos..end].copy_from_slice(&bytes[..end - pos]);
            format!("write {value:#x} as {width} bytes {} at {pos}", if big { "BE" } else { "LE" })
        }
        54..=61 => {
            // Truncate: anywhere, or inside a hot region.
            let at = if rng.chance(1, 3) { rng.below(len) } else { pos };
            data.truncate(at);
            format!("truncate to {at} bytes")
        }
        62..=73 => {
            let n = 1 + rng.below((len - pos).min(256));
            let chunk = data[pos..pos + n].to_vec();
            let at = regions.position(rng, len);
            data.splice(at..at, chunk);
            format!("duplicate {n} bytes from {pos} at {at}")
        }
        74..=83 => {
            let n = 1 + rng.below((len - pos).min(256));
            data.drain(pos..pos + n);
            format!("remove {n} bytes at {pos}")
        }
        _ => replace_number(data, pos, rng),
    }
}

/// Replaces the run of ASCII digits at or after `pos` with a boundary number (a bit flip where
/// there is none).
fn replace_number(data: &mut Vec<u8>, pos: usize, rng: &mut Rng) -> String {
    let Some(start) = data[pos..].iter().position(u8::is_ascii_digit).map(|i| pos + i) else {
        data[pos] ^= 0x01;
        return format!("flip bit 0 at {pos}");
    };
    let end = data[start..].iter().position(|b| !b.is_ascii_digit()).map_or(data.len(), |i| start + i);
    let with = *rng.pick(DECIMALS);
    data.splice(start..end, with.bytes());
    format!("replace the number at {start}..{end} with {with}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_mutation() {
        let seed: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
        let regions = Regions::header_footer(seed.len());
        let run = |s: u64| {
            let mut d = seed.clone();
            let ops = mutate(&mut d, &regions, &mut Rng::new(s));
            (d, ops)
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7).0, run(8).0);
        // Cases differ per target and per case number.
        assert_ne!(case_seed("a", 0, 1), case_seed("b", 0, 1));
        assert_ne!(case_seed("a", 0, 1), case_seed("a", 0, 2));
        assert_eq!(case_seed("a", 3, 9), case_seed("a", 3, 9));
    }

    #[test]
    fn every_kind_of_mutation_happens() {
        let seed = br#"{"shape": [1024, 2], "n": 12345}"#.repeat(20);
        let regions = Regions::header_footer(seed.len());
        let mut kinds = std::collections::BTreeSet::new();
        for s in 0..2000 {
            let mut d = seed.clone();
            for op in mutate(&mut d, &regions, &mut Rng::new(s)) {
                kinds.insert(op.split(' ').next().unwrap_or_default().to_string());
            }
        }
        let want = ["duplicate", "flip", "insert", "remove", "replace", "set", "truncate", "write"];
        assert_eq!(kinds.into_iter().collect::<Vec<_>>(), want);
    }

    #[test]
    fn hot_regions_get_about_half() {
        let len = 100_000;
        let regions = Regions { hot: std::iter::once(0..64).collect() };
        let mut rng = Rng::new(1);
        let hits = (0..10_000).filter(|_| regions.position(&mut rng, len) < 64).count();
        assert!((4500..5600).contains(&hits), "{hits}");
    }
}
