//! Token input: sequences from text, `.npy` and token stores behind one iterator, validated, with
//! errors naming the file and the line (text), element (`.npy`) or record (store).
//!
//! | input | one [`TokenSequence`] per | scales |
//! |---|---|---|
//! | text (any other extension) | non-blank line of space-separated non-negative integers | 1 |
//! | `.npy`, 1-D integer array | file | 1 |
//! | `.npy`, 2-D `[T, codebooks]` | file | one stream per codebook (column), all of length `T` |
//! | `.parquet` file, or a store directory | record (audio file) | one per `tokens_scale_k` (flattened) |
//!
//! A directory holding `tokens_batch_*.parquet` is read as a store; any other directory is walked
//! (sorted by path) for `*.txt`, `*.npy` and `*.parquet`. Files are read one at a time, so memory
//! holds one file (text: one line) at once.
//!
//! # The time-interleaved stream
//!
//! [`TokenSequence::interleaved`] puts the scales of a sequence into one stream, frame by coarsest
//! frame. When every ratio divides the next (SNAC: 1:2:4), a frame is laid out depth-first, the
//! order of Orpheus-style SNAC LMs: `s0[f], s1[2f], s2[4f], s2[4f+1], s1[2f+1], s2[4f+2],
//! s2[4f+3]`; otherwise (e.g. 1:2:3) scale-major: scale 0's codes of the frame, then scale 1's, ...
//! Equal rates (`[T, codebooks]` arrays) give `c0[t], c1[t], ...` per frame (the array row-major).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use audiotok_features::npy::{self, NpyData};

use crate::store::{existing_batches, RecordIter, StoreError, StoreReader};

/// Errors of token input; every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The file cannot be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A bad value or format at a place in a file (`where_` is `line N`, `element [r, c]`, ...).
    #[error("{path}: {where_}: {msg}")]
    Bad {
        /// The file.
        path: PathBuf,
        /// Where in the file.
        where_: String,
        /// What is wrong.
        msg: String,
    },
    /// The file (or every file given) holds no token.
    #[error("{path}: no tokens (empty input)")]
    Empty {
        /// The file or directory.
        path: PathBuf,
    },
    /// A token store error (names file and row).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Result alias of the input module.
pub type Result<T> = std::result::Result<T, InputError>;

/// One token sequence: one stream per scale, coarsest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSequence {
    /// Where it came from: `file:line`, `file`, or `store record i (file_path)`.
    pub source: String,
    /// One stream per scale (or per codebook).
    pub scales: Vec<Vec<u32>>,
}

impl TokenSequence {
    /// Codes per coarsest frame of each scale (`len_k / len_0`), when the lengths are whole
    /// multiples of scale 0's; `None` otherwise. A sequence whose every scale is empty has ratios
    /// of 1.
    pub fn ratios(&self) -> Option<Vec<u32>> {
        let n0 = self.scales.first()?.len();
        if n0 == 0 {
            return self.scales.iter().all(Vec::is_empty).then(|| vec![1; self.scales.len()]);
        }
        self.scales
            .iter()
            .map(|s| (s.len() % n0 == 0 && s.len() >= n0).then(|| u32::try_from(s.len() / n0).ok()).flatten())
            .collect()
    }

    /// The time-interleaved stream (see the [module docs](self)), or `None` when the scale lengths
    /// are not whole multiples of scale 0's.
    pub fn interleaved(&self) -> Option<Vec<u32>> {
        let ratios = self.ratios()?;
        let frames = self.scales.first().map_or(0, Vec::len);
        let mut out = Vec::with_capacity(self.scales.iter().map(Vec::len).sum());
        let nested = ratios.windows(2).all(|w| w[1] % w[0] == 0);
        for f in 0..frames {
            if nested {
                depth_first(&self.scales, &ratios, 0, f, &mut out);
            } else {
                for (s, &r) in self.scales.iter().zip(&ratios) {
                    let r = r as usize;
                    out.extend_from_slice(&s[f * r..(f + 1) * r]);
                }
            }
        }
        Some(out)
    }
}

/// Emits code `j` of scale `k`, then its children at scale `k + 1`, depth-first.
fn depth_first(scales: &[Vec<u32>], ratios: &[u32], k: usize, j: usize, out: &mut Vec<u32>) {
    out.push(scales[k][j]);
    if k + 1 < scales.len() {
        let fan = (ratios[k + 1] / ratios[k]) as usize;
        for c in 0..fan {
            depth_first(scales, ratios, k + 1, j * fan + c, out);
        }
    }
}

/// Options of [`TokenInput`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InputOptions {
    /// Ids must be below this (when given); an id at or above it is an error naming its place.
    pub codebook_size: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Text(PathBuf),
    Npy(PathBuf),
    Store(PathBuf),
}

impl Source {
    fn path(&self) -> &Path {
        match self {
            Source::Text(p) | Source::Npy(p) | Source::Store(p) => p,
        }
    }
}

/// A list of token files (text, `.npy`, Parquet stores) read as one sequence of [`TokenSequence`]s.
#[derive(Debug, Clone)]
pub struct TokenInput {
    sources: Vec<Source>,
    opts: InputOptions,
}

impl TokenInput {
    /// Resolves `paths` (files, store directories, other directories walked for token files) in
    /// the given order. Errors when a path does not exist or a directory holds no token file.
    pub fn open(paths: &[PathBuf], opts: InputOptions) -> Result<Self> {
        let mut sources = Vec::new();
        for p in paths {
            if p.is_dir() {
                if !existing_batches(p)?.is_empty() {
                    sources.push(Source::Store(p.clone()));
                    continue;
                }
                let before = sources.len();
                let mut files = Vec::new();
                walk(p, &mut files)?;
                files.sort();
                for f in files {
                    match f.extension().and_then(|e| e.to_str()) {
                        Some("txt") => sources.push(Source::Text(f)),
                        Some("npy") => sources.push(Source::Npy(f)),
                        Some("parquet") => sources.push(Source::Store(f)),
                        _ => {}
                    }
                }
                if sources.len() == before {
                    return Err(InputError::Empty { path: p.clone() });
                }
            } else if p.is_file() {
                sources.push(classify(p));
            } else {
                return Err(InputError::Io {
                    path: p.clone(),
                    source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory"),
                });
            }
        }
        Ok(TokenInput { sources, opts })
    }

    /// The files and store directories, in reading order.
    pub fn paths(&self) -> Vec<&Path> {
        self.sources.iter().map(Source::path).collect()
    }

    /// Iterates every sequence of every source, in order. A source that yields no token at all is
    /// an error ([`InputError::Empty`]); after the first error the iterator ends.
    pub fn sequences(&self) -> Sequences {
        Sequences { sources: self.sources.clone().into(), opts: self.opts.clone(), current: None, failed: false }
    }

    /// Reads everything into memory.
    pub fn read_all(&self) -> Result<Vec<TokenSequence>> {
        self.sequences().collect()
    }
}

fn classify(p: &Path) -> Source {
    match p.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("npy") => Source::Npy(p.to_path_buf()),
        Some("parquet") => Source::Store(p.to_path_buf()),
        _ => Source::Text(p.to_path_buf()),
    }
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    let io = |source| InputError::Io { path: dir.to_path_buf(), source };
    for e in std::fs::read_dir(dir).map_err(io)? {
        let p = e.map_err(io)?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Iterator over the sequences of a [`TokenInput`].
pub struct Sequences {
    sources: std::collections::VecDeque<Source>,
    opts: InputOptions,
    current: Option<Current>,
    failed: bool,
}

enum Current {
    Text { path: PathBuf, lines: std::io::Lines<BufReader<File>>, line: usize, tokens: u64 },
    Npy(Option<TokenSequence>),
    Store { path: PathBuf, records: RecordIter, index: usize, tokens: u64 },
}

impl Iterator for Sequences {
    type Item = Result<TokenSequence>;

    fn next(&mut self) -> Option<Result<TokenSequence>> {
        if self.failed {
            return None;
        }
        let r = self.step().transpose();
        if matches!(r, Some(Err(_))) {
            self.failed = true;
        }
        r
    }
}

impl Sequences {
    fn step(&mut self) -> Result<Option<TokenSequence>> {
        let limit = self.opts.codebook_size;
        loop {
            match &mut self.current {
                None => {
                    let Some(src) = self.sources.pop_front() else {
                        return Ok(None);
                    };
                    self.current = Some(match src {
                        Source::Text(path) => {
                            let f =
                                File::open(&path).map_err(|source| InputError::Io { path: path.clone(), source })?;
                            Current::Text { path, lines: BufReader::new(f).lines(), line: 0, tokens: 0 }
                        }
                        Source::Npy(path) => Current::Npy(Some(read_npy(&path, limit)?)),
                        Source::Store(path) => {
                            Current::Store { records: StoreReader::open(&path)?.records(), path, index: 0, tokens: 0 }
                        }
                    });
                }
                Some(Current::Npy(seq)) => match seq.take() {
                    Some(s) => return Ok(Some(s)),
                    None => self.current = None,
                },
                Some(Current::Text { path, lines, line, tokens }) => match lines.next() {
                    Some(l) => {
                        *line += 1;
                        let l = l.map_err(|source| InputError::Io { path: path.clone(), source })?;
                        let seq = parse_line(&l, limit).map_err(|msg| InputError::Bad {
                            path: path.clone(),
                            where_: format!("line {line}"),
                            msg,
                        })?;
                        if !seq.is_empty() {
                            *tokens += seq.len() as u64;
                            let source = format!("{}:{line}", path.display());
                            return Ok(Some(TokenSequence { source, scales: vec![seq] }));
                        }
                    }
                    None => {
                        if *tokens == 0 {
                            return Err(InputError::Empty { path: path.clone() });
                        }
                        self.current = None;
                    }
                },
                Some(Current::Store { path, records, index, tokens }) => match records.next() {
                    Some(r) => {
                        let r = r?;
                        let i = *index;
                        *index += 1;
                        for (k, s) in r.scales.iter().enumerate() {
                            check_limit(&s.tokens, limit).map_err(|(p, t, c)| InputError::Bad {
                                path: path.clone(),
                                where_: format!("record {i} ({})", r.file_path),
                                msg: format!("scale {k}: id {t} at position {p} is not below the codebook size {c}"),
                            })?;
                            *tokens += s.tokens.len() as u64;
                        }
                        let source = format!("{} record {i} ({})", path.display(), r.file_path);
                        return Ok(Some(TokenSequence {
                            source,
                            scales: r.scales.into_iter().map(|s| s.tokens).collect(),
                        }));
                    }
                    None => {
                        if *tokens == 0 {
                            return Err(InputError::Empty { path: path.clone() });
                        }
                        self.current = None;
                    }
                },
            }
        }
    }
}

fn check_limit(tokens: &[u32], limit: Option<u32>) -> std::result::Result<(), (usize, u32, u32)> {
    if let Some(c) = limit {
        if let Some((p, &t)) = tokens.iter().enumerate().find(|(_, &t)| t >= c) {
            return Err((p, t, c));
        }
    }
    Ok(())
}

/// Parses one line of space-separated ids (no allocation per token).
fn parse_line(line: &str, limit: Option<u32>) -> std::result::Result<Vec<u32>, String> {
    let mut out = Vec::with_capacity(line.len() / 4 + 1);
    for (i, tok) in line.split_ascii_whitespace().enumerate() {
        let digits = tok.bytes().all(|c| c.is_ascii_digit());
        let v = if digits && tok.len() <= 10 {
            tok.bytes().fold(0u64, |v, c| v * 10 + u64::from(c - b'0'))
        } else {
            u64::MAX
        };
        if v > u64::from(u32::MAX) {
            let what = if digits {
                "is too large for an id"
            } else if tok.len() > 1 && tok.starts_with('-') && tok[1..].bytes().all(|c| c.is_ascii_digit()) {
                "is a negative id"
            } else {
                "is not a non-negative integer id"
            };
            return Err(format!("token {} '{tok}' {what}", i + 1));
        }
        let v = v as u32;
        if let Some(c) = limit.filter(|&c| v >= c) {
            return Err(format!("token {} '{tok}' is not below the codebook size {c}", i + 1));
        }
        out.push(v);
    }
    Ok(out)
}

fn read_npy(path: &Path, limit: Option<u32>) -> Result<TokenSequence> {
    let bad = |where_: String, msg: String| InputError::Bad { path: path.to_path_buf(), where_, msg };
    let f = File::open(path).map_err(|source| InputError::Io { path: path.to_path_buf(), source })?;
    let a = npy::read(BufReader::new(f)).map_err(|e| bad("header".into(), e.to_string()))?;
    let NpyData::Int(v) = a.data else {
        return Err(bad("dtype".into(), "token arrays must hold integers, not floats".into()));
    };
    let (t, c) = match a.shape[..] {
        [t] => (t, 1),
        [t, c] => (t, c),
        _ => return Err(bad("shape".into(), format!("expected a 1-D or 2-D [T, codebooks] array, got {:?}", a.shape))),
    };
    if v.is_empty() {
        return Err(InputError::Empty { path: path.to_path_buf() });
    }
    let mut scales = vec![Vec::with_capacity(t); c];
    for (i, &x) in v.iter().enumerate() {
        let where_ =
            || if a.shape.len() == 1 { format!("element {i}") } else { format!("element [{}, {}]", i / c, i % c) };
        let id = u32::try_from(x).map_err(|_| {
            bad(where_(), if x < 0 { format!("id {x} is negative") } else { format!("id {x} is too large") })
        })?;
        if let Some(lim) = limit.filter(|&lim| id >= lim) {
            return Err(bad(where_(), format!("id {id} is not below the codebook size {lim}")));
        }
        scales[i % c].push(id);
    }
    Ok(TokenSequence { source: path.display().to_string(), scales })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn seq(scales: Vec<Vec<u32>>) -> TokenSequence {
        TokenSequence { source: String::new(), scales }
    }

    #[test]
    fn interleave_snac_depth_first_and_scale_major() {
        // SNAC 1:2:4, two frames: Orpheus order per frame.
        let s = seq(vec![vec![0, 10], vec![1, 2, 11, 12], vec![3, 4, 5, 6, 13, 14, 15, 16]]);
        assert_eq!(s.ratios(), Some(vec![1, 2, 4]));
        assert_eq!(s.interleaved().unwrap(), vec![0, 1, 3, 4, 2, 5, 6, 10, 11, 13, 14, 12, 15, 16]);
        // 1:2:3 is not nested: scale-major within the frame.
        let s = seq(vec![vec![0], vec![1, 2], vec![3, 4, 5]]);
        assert_eq!(s.interleaved().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        // Equal rates: row-major.
        let s = seq(vec![vec![1, 2, 3], vec![4, 5, 6]]);
        assert_eq!(s.interleaved().unwrap(), vec![1, 4, 2, 5, 3, 6]);
        assert_eq!(seq(vec![vec![1, 2], vec![3, 4, 5]]).interleaved(), None);
        assert_eq!(seq(vec![vec![1, 2], vec![3]]).interleaved(), None);
        assert_eq!(seq(vec![vec![], vec![]]).interleaved(), Some(vec![]));
    }

    #[test]
    fn text_lines_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "1 2 3\n\n 4  5\t6 \n").unwrap();
        let got = TokenInput::open(std::slice::from_ref(&p), InputOptions::default()).unwrap().read_all().unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].scales, vec![vec![4, 5, 6]]);
        assert_eq!(got[1].source, format!("{}:3", p.display()));

        let cases = [
            ("1 2\n3 x 4\n", None, "line 2: token 2 'x' is not a non-negative integer id"),
            ("1 2\n3 -4\n", None, "line 2: token 2 '-4' is a negative id"),
            ("1 99999999999\n", None, "line 1: token 2 '99999999999' is too large for an id"),
            ("1 2\n3 4096\n", Some(4096), "line 2: token 2 '4096' is not below the codebook size 4096"),
            ("\n \n", None, "no tokens (empty input)"),
            ("", None, "no tokens (empty input)"),
        ];
        for (text, size, want) in cases {
            std::fs::write(&p, text).unwrap();
            let err = TokenInput::open(std::slice::from_ref(&p), InputOptions { codebook_size: size })
                .unwrap()
                .read_all()
                .unwrap_err()
                .to_string();
            assert!(err.contains("a.txt") && err.contains(want), "{text:?}: {err}");
        }
    }

    #[test]
    fn invalid_utf8_names_line_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, b"1 2\n3 \xff\xfe 4\n").unwrap();
        let err = TokenInput::open(std::slice::from_ref(&p), InputOptions::default()).unwrap().read_all().unwrap_err();
        assert!(matches!(err, InputError::Bad { .. }), "{err:?}");
        let want = format!("{}: line 2: token 2 '\\xff\\xfe' is not a non-negative integer id", p.display());
        assert_eq!(err.to_string(), want);
    }

    fn write_npy(path: &Path, shape: &[usize], data: &[i64]) {
        let mut b = Vec::new();
        npy::write_i64(&mut b, shape, data).unwrap();
        std::fs::write(path, b).unwrap();
    }

    #[test]
    fn npy_one_and_two_dimensional() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.npy");
        write_npy(&a, &[4], &[5, 6, 7, 8]);
        let b = dir.path().join("b.npy");
        write_npy(&b, &[3, 2], &[1, 2, 3, 4, 5, 6]);
        let got = TokenInput::open(&[dir.path().to_path_buf()], InputOptions::default()).unwrap().read_all().unwrap();
        assert_eq!(got[0].scales, vec![vec![5, 6, 7, 8]]);
        assert_eq!(got[1].scales, vec![vec![1, 3, 5], vec![2, 4, 6]]);
        assert_eq!(got[1].interleaved().unwrap(), vec![1, 2, 3, 4, 5, 6]);

        write_npy(&b, &[3, 2], &[1, 2, 3, -4, 5, 6]);
        let err = TokenInput::open(std::slice::from_ref(&b), InputOptions::default()).unwrap().read_all().unwrap_err();
        assert!(err.to_string().contains("b.npy: element [1, 1]: id -4 is negative"), "{err}");
        write_npy(&b, &[3, 2], &[1, 2, 3, 4, 5, 6]);
        let err = TokenInput::open(std::slice::from_ref(&b), InputOptions { codebook_size: Some(6) })
            .unwrap()
            .read_all()
            .unwrap_err();
        assert!(err.to_string().contains("b.npy: element [2, 1]: id 6 is not below the codebook size 6"), "{err}");
        write_npy(&b, &[0], &[]);
        let err = TokenInput::open(std::slice::from_ref(&b), InputOptions::default()).unwrap().read_all().unwrap_err();
        assert!(err.to_string().contains("b.npy: no tokens"), "{err}");
        write_npy(&b, &[1, 1, 1], &[1]);
        let err = TokenInput::open(std::slice::from_ref(&b), InputOptions::default()).unwrap().read_all().unwrap_err();
        assert!(err.to_string().contains("expected a 1-D or 2-D"), "{err}");
    }

    #[test]
    fn store_records_with_codebook_check() {
        let store = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/tokens/pyarrow_store");
        let input = TokenInput::open(std::slice::from_ref(&store), InputOptions::default()).unwrap();
        let got = input.read_all().unwrap();
        assert_eq!(got.len(), 5);
        assert_eq!(got[0].ratios(), Some(vec![1, 2, 4]));
        assert!(got[2].source.ends_with("record 2 (audio/ünïcode clip.wav)"), "{}", got[2].source);
        let max = got.iter().flat_map(|s| s.scales.iter().flatten()).copied().max().unwrap();
        let err = TokenInput::open(std::slice::from_ref(&store), InputOptions { codebook_size: Some(max) })
            .unwrap()
            .read_all()
            .unwrap_err()
            .to_string();
        assert!(err.contains("pyarrow_store: record") && err.contains(&format!("id {max} at position")), "{err}");
        assert!(TokenInput::open(&[PathBuf::from("/nonexistent.txt")], InputOptions::default()).is_err());
    }
}
