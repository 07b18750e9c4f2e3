//! Shard compression and file hashes, named as `streaming` names them.
//!
//! Compression strings are `streaming`'s: a family, optionally with a level (`zstd`, `zstd:7`).
//! Only zstd (levels 1 to 22, default 3) is implemented; `br`, `bz2`, `gz` and `snappy` are
//! recognised and refused. A compressed shard is named `shard.NNNNN.mds.zstd` whatever the level.
//!
//! Hashes are `hashlib`/`xxhash` hex digests: `sha1` and `xxh64` (seed 0, big-endian hex).

use std::fmt;
use std::str::FromStr;

use sha1::{Digest, Sha1};

use crate::error::MdsError;

/// A shard compression: zstd at a level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Compression {
    level: Option<i32>,
}

impl Compression {
    /// zstd at `level` (1..=22), or at streaming's default level 3 with `None` (written `zstd`).
    pub fn zstd(level: Option<i32>) -> Result<Compression, MdsError> {
        match level {
            Some(l) if !(1..=22).contains(&l) => Err(MdsError::InvalidCompression(format!("zstd:{l}"))),
            _ => Ok(Compression { level }),
        }
    }

    /// The level passed to zstd.
    pub fn level(&self) -> i32 {
        self.level.unwrap_or(3)
    }

    /// The file name extension of compressed shards (`zstd`).
    pub fn extension(&self) -> &'static str {
        "zstd"
    }

    /// Compresses `data` as `zstd.compress(data, level)` does.
    ///
    /// The Python `zstd` package calls `ZSTD_compress2` with `nbWorkers` set to the number of
    /// physical cores, so always at least 1: libzstd's multi-threaded mode, whose output is the
    /// same for any worker count but differs from single-threaded mode for inputs above about
    /// 512 KiB. We therefore compress in multi-threaded mode too (workers only change speed).
    pub fn compress(&self, data: &[u8]) -> std::io::Result<Vec<u8>> {
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 4) as u32;
        let mut c = zstd::bulk::Compressor::new(self.level())?;
        c.set_parameter(zstd::zstd_safe::CParameter::NbWorkers(workers))?;
        c.compress(data)
    }

    /// Decompresses a whole zstd frame whose content is expected to be `expected_len` bytes.
    pub fn decompress(&self, data: &[u8], expected_len: usize) -> std::io::Result<Vec<u8>> {
        use std::io::Read;
        // Read at most one byte past the expected size, so a bad frame cannot balloon memory.
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(data)?.take(expected_len as u64 + 1).read_to_end(&mut out)?;
        if out.len() != expected_len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("decompressed to {} bytes, expected {expected_len}", out.len()),
            ));
        }
        Ok(out)
    }
}

impl FromStr for Compression {
    type Err = MdsError;

    /// Accepts exactly the strings `streaming` accepts for zstd: `zstd` and `zstd:1` … `zstd:22`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (family, level) = match text.split_once(':') {
            Some((f, l)) => (f, Some(l)),
            None => (text, None),
        };
        let known_levels: Option<std::ops::RangeInclusive<i32>> = match family {
            "zstd" => Some(1..=22),
            "br" => Some(0..=11),
            "bz2" => Some(1..=9),
            "gz" => Some(0..=9),
            "snappy" => None,
            _ => return Err(MdsError::InvalidCompression(text.to_string())),
        };
        let level = match level {
            None => None,
            Some(l) => {
                // streaming looks the whole string up in a table built from `f"{ext}:{level}"`,
                // so only canonical decimal levels in the family's range exist.
                let n: i32 = l.parse().map_err(|_| MdsError::InvalidCompression(text.to_string()))?;
                let in_range = known_levels.as_ref().is_some_and(|r| r.contains(&n));
                if !in_range || n.to_string() != l {
                    return Err(MdsError::InvalidCompression(text.to_string()));
                }
                Some(n)
            }
        };
        if family != "zstd" {
            return Err(MdsError::UnsupportedCompression(text.to_string()));
        }
        Compression::zstd(level)
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.level {
            Some(l) => write!(f, "zstd:{l}"),
            None => f.write_str("zstd"),
        }
    }
}

/// A file hash algorithm for `index.json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HashAlgo {
    /// `sha1` (hashlib), 40 hex digits.
    Sha1,
    /// `xxh64` (xxhash, seed 0), 16 hex digits.
    Xxh64,
}

impl HashAlgo {
    /// The name in `index.json`.
    pub fn name(self) -> &'static str {
        match self {
            HashAlgo::Sha1 => "sha1",
            HashAlgo::Xxh64 => "xxh64",
        }
    }

    /// The lowercase hex digest of `data`.
    pub fn hex_digest(self, data: &[u8]) -> String {
        self.hex_digest_parts(&[data])
    }

    /// The lowercase hex digest of the concatenation of `parts` (computed without joining them).
    pub fn hex_digest_parts(self, parts: &[&[u8]]) -> String {
        match self {
            HashAlgo::Sha1 => {
                let mut h = Sha1::new();
                for p in parts {
                    h.update(p);
                }
                h.finalize().iter().map(|b| format!("{b:02x}")).collect()
            }
            HashAlgo::Xxh64 => {
                let mut h = xxhash_rust::xxh64::Xxh64::new(0);
                for p in parts {
                    h.update(p);
                }
                format!("{:016x}", h.digest())
            }
        }
    }
}

impl FromStr for HashAlgo {
    type Err = MdsError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "sha1" => Ok(HashAlgo::Sha1),
            "xxh64" => Ok(HashAlgo::Xxh64),
            _ => Err(MdsError::UnsupportedHash(text.to_string())),
        }
    }
}

impl fmt::Display for HashAlgo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn compression_strings() {
        assert_eq!("zstd".parse::<Compression>().unwrap().level(), 3);
        assert_eq!("zstd:7".parse::<Compression>().unwrap().to_string(), "zstd:7");
        for bad in ["zstd:0", "zstd:23", "zstd:07", "zstd:", "lz4", "zstd:x"] {
            assert!(matches!(bad.parse::<Compression>(), Err(MdsError::InvalidCompression(_))), "{bad}");
        }
        for unsupported in ["gz", "br:5", "bz2", "snappy"] {
            assert!(matches!(unsupported.parse::<Compression>(), Err(MdsError::UnsupportedCompression(_))));
        }
    }

    #[test]
    fn known_digests() {
        assert_eq!(HashAlgo::Sha1.hex_digest(b"abc"), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(HashAlgo::Xxh64.hex_digest(b""), "ef46db3751d8e999");
    }

    #[test]
    fn digests_of_parts_equal_digests_of_the_whole() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
        for algo in [HashAlgo::Sha1, HashAlgo::Xxh64] {
            let whole = algo.hex_digest(&data);
            for cuts in [vec![], vec![0], vec![1, 31, 32, 33], vec![4096, 50_000, 99_999], vec![100_000]] {
                let mut parts: Vec<&[u8]> = Vec::new();
                let mut from = 0;
                for &c in &cuts {
                    parts.push(&data[from..c]);
                    from = c;
                }
                parts.push(&data[from..]);
                assert_eq!(algo.hex_digest_parts(&parts), whole, "{algo} {cuts:?}");
            }
            assert_eq!(algo.hex_digest_parts(&[]), algo.hex_digest(b""));
        }
    }
}
