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
//! holds one file (a `.npy` file, a store batch) at once. Text is read byte-wise: with
//! [`TokenInput::pieces`] a line of any length costs at most a piece of [`PIECE_TOKENS`] ids;
//! [`TokenInput::sequences`] holds a line whole, up to [`MAX_LINE_TOKENS`] ids.
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
    /// an error ([`InputError::Empty`]); after the first error the iterator ends. A text line is
    /// held whole: one of more than [`MAX_LINE_TOKENS`] tokens is an error naming it.
    pub fn sequences(&self) -> Sequences {
        Sequences { inner: self.reader(MAX_LINE_TOKENS, true), line_limit: MAX_LINE_TOKENS }
    }

    /// Iterates every source in pieces: a text line in pieces of at most `piece_tokens` ids (so
    /// that a line of any length costs bounded memory), `.npy` files and store records whole.
    /// Errors as [`TokenInput::sequences`] has them, without the line limit.
    pub fn pieces(&self, piece_tokens: usize) -> Pieces {
        Pieces { inner: self.reader(piece_tokens.max(1), false) }
    }

    /// Reads everything into memory.
    pub fn read_all(&self) -> Result<Vec<TokenSequence>> {
        self.sequences().collect()
    }

    /// `whole`: a line of exactly `piece` ids is one piece (the reader looks past its last id).
    fn reader(&self, piece: usize, whole: bool) -> Reader {
        Reader {
            sources: self.sources.clone().into(),
            opts: self.opts.clone(),
            current: None,
            failed: false,
            piece,
            whole,
            line: 0,
        }
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

/// An item of [`TokenInput::pieces`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// A whole sequence (a `.npy` file, a store record).
    Whole(TokenSequence),
    /// Ids of a single-stream sequence (a text line) in order; `last` ends it. Pieces may be
    /// empty; a sequence has at least one id.
    Part {
        /// `file:line`.
        source: String,
        /// The ids.
        tokens: Vec<u32>,
        /// This piece ends the sequence.
        last: bool,
    },
}

/// Iterator over the pieces of a [`TokenInput`] ([`TokenInput::pieces`]).
pub struct Pieces {
    inner: Reader,
}

impl Iterator for Pieces {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Result<Piece>> {
        self.inner.next()
    }
}

/// Iterator over the sequences of a [`TokenInput`].
pub struct Sequences {
    inner: Reader,
    line_limit: usize,
}

impl Iterator for Sequences {
    type Item = Result<TokenSequence>;

    fn next(&mut self) -> Option<Result<TokenSequence>> {
        Some(match self.inner.next()? {
            Ok(Piece::Whole(s)) => Ok(s),
            Ok(Piece::Part { source, tokens, last: true }) if tokens.len() <= self.line_limit => {
                Ok(TokenSequence { source, scales: vec![tokens] })
            }
            Ok(Piece::Part { .. }) => {
                self.inner.failed = true;
                let path = match &self.inner.current {
                    Some(Current::Text { text, .. }) => text.path.clone(),
                    _ => PathBuf::new(),
                };
                Err(InputError::Bad {
                    path,
                    where_: format!("line {}", self.inner.line),
                    msg: format!(
                        "more than {} tokens on one line (the limit of a line read whole; split the line)",
                        self.line_limit
                    ),
                })
            }
            Err(e) => Err(e),
        })
    }
}

/// Reads the sources one after the other; text lines in pieces of at most `piece` ids.
struct Reader {
    sources: std::collections::VecDeque<Source>,
    opts: InputOptions,
    current: Option<Current>,
    failed: bool,
    piece: usize,
    whole: bool,
    /// The line of the last text piece given.
    line: u64,
}

enum Current {
    /// `open`: pieces of the current line have been given, without the last.
    Text {
        text: TextTokens,
        tokens: u64,
        open: bool,
    },
    Npy(Option<TokenSequence>),
    Store {
        path: PathBuf,
        records: RecordIter,
        index: usize,
        tokens: u64,
    },
}

impl Iterator for Reader {
    type Item = Result<Piece>;

    fn next(&mut self) -> Option<Result<Piece>> {
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

impl Reader {
    fn step(&mut self) -> Result<Option<Piece>> {
        let limit = self.opts.codebook_size;
        loop {
            match &mut self.current {
                None => {
                    let Some(src) = self.sources.pop_front() else {
                        return Ok(None);
                    };
                    self.current = Some(match src {
                        Source::Text(path) => {
                            Current::Text { text: TextTokens::open(path, limit)?, tokens: 0, open: false }
                        }
                        Source::Npy(path) => Current::Npy(Some(read_npy(&path, limit)?)),
                        Source::Store(path) => {
                            Current::Store { records: StoreReader::open(&path)?.records(), path, index: 0, tokens: 0 }
                        }
                    });
                }
                Some(Current::Npy(seq)) => match seq.take() {
                    Some(s) => return Ok(Some(Piece::Whole(s))),
                    None => self.current = None,
                },
                Some(Current::Text { text, tokens, open }) => {
                    let mut ids = Vec::new();
                    let line = text.line;
                    let stop = text.read(&mut ids, self.piece)?;
                    *tokens += ids.len() as u64;
                    let last = match stop {
                        // Does the line end after these ids? (No id more is read into `ids`.)
                        Stop::Full if self.whole => {
                            let mut more = Vec::new();
                            text.read(&mut more, 1)? == Stop::LineEnd(line) && more.is_empty()
                        }
                        Stop::Full => false,
                        Stop::LineEnd(_) if ids.is_empty() && !*open => continue,
                        Stop::LineEnd(_) => true,
                        Stop::Eof => {
                            if *tokens == 0 {
                                return Err(InputError::Empty { path: text.path.clone() });
                            }
                            self.current = None;
                            continue;
                        }
                    };
                    *open = !last;
                    self.line = line;
                    let source = format!("{}:{line}", text.path.display());
                    return Ok(Some(Piece::Part { source, tokens: ids, last }));
                }
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
                        return Ok(Some(Piece::Whole(TokenSequence {
                            source,
                            scales: r.scales.into_iter().map(|s| s.tokens).collect(),
                        })));
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

/// Most tokens of one text line read whole ([`TokenInput::sequences`]); a longer line is an error
/// naming the file and line. [`TokenInput::pieces`] reads lines of any length.
pub const MAX_LINE_TOKENS: usize = 1 << 26;

/// Tokens per piece of a text line in [`TokenInput::pieces`] (4 MiB of ids).
pub const PIECE_TOKENS: usize = 1 << 20;

/// Bytes of a token kept for its error message; a longer token is shown cut, with its length.
const TOKEN_SHOWN: usize = 32;

/// One past the largest id: values are folded up to it and stay there.
const TOO_LARGE: u64 = u32::MAX as u64 + 1;

/// The token being read, byte by byte (it may span reads of the buffer).
#[derive(Default)]
struct Partial {
    /// Bytes so far (0: between tokens).
    len: u64,
    /// The decimal value of its digits, saturating at [`TOO_LARGE`].
    value: u64,
    /// It starts with `-`.
    minus: bool,
    /// A byte other than a digit (and a leading `-`).
    other: bool,
    /// Its first [`TOKEN_SHOWN`] bytes.
    shown: [u8; TOKEN_SHOWN],
}

impl Partial {
    /// Adds the bytes of `seg` (none of them ASCII whitespace).
    #[inline]
    fn feed(&mut self, seg: &[u8]) {
        let at = self.len.min(TOKEN_SHOWN as u64) as usize;
        let n = seg.len().min(TOKEN_SHOWN - at);
        self.shown[at..at + n].copy_from_slice(&seg[..n]);
        let mut bytes = seg.iter();
        if self.len == 0 && seg.first() == Some(&b'-') {
            self.minus = true;
            bytes.next();
        }
        let mut value = self.value;
        for &b in bytes {
            let d = b.wrapping_sub(b'0');
            if d < 10 {
                value = (value * 10 + u64::from(d)).min(TOO_LARGE);
            } else {
                self.other = true;
            }
        }
        self.value = value;
        self.len += seg.len() as u64;
    }

    /// The id, or what is wrong with the token (`index`: its 1-based place in the line); resets
    /// the state for the next token.
    fn finish(&mut self, index: u64, limit: Option<u32>) -> std::result::Result<u32, String> {
        let t = std::mem::take(self);
        let what = if !t.minus && !t.other {
            match u32::try_from(t.value) {
                Ok(v) => match limit.filter(|&c| v >= c) {
                    None => return Ok(v),
                    Some(c) => format!("is not below the codebook size {c}"),
                },
                Err(_) => "is too large for an id".to_string(),
            }
        } else if t.minus && !t.other && t.len > 1 {
            "is a negative id".to_string()
        } else {
            "is not a non-negative integer id".to_string()
        };
        Err(format!("token {index} {} {what}", t.show()))
    }

    /// The token quoted as read (bytes that are not UTF-8 escaped as `\xNN`), cut after
    /// [`TOKEN_SHOWN`] bytes with its length in bytes.
    fn show(&self) -> String {
        let cut = self.len > TOKEN_SHOWN as u64;
        let bytes = &self.shown[..self.len.min(TOKEN_SHOWN as u64) as usize];
        let text = match std::str::from_utf8(bytes) {
            Ok(s) => s.to_string(),
            // A character cut at the end of the kept bytes.
            Err(e) if cut && e.error_len().is_none() => String::from_utf8_lossy(&bytes[..e.valid_up_to()]).into_owned(),
            Err(_) => bytes.escape_ascii().to_string(),
        };
        if cut {
            format!("'{text}...' ({} bytes)", self.len)
        } else {
            format!("'{text}'")
        }
    }
}

/// What [`TextTokens::read`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    /// `max` tokens were read; the line may go on.
    Full,
    /// The end of line `n` (its newline, or the end of the file after its last byte).
    LineEnd(u64),
    /// The end of the file.
    Eof,
}

/// The ids of a text file read byte-wise from a buffer (`fill_buf`/`consume`), so that memory
/// holds the buffer and the ids asked for, never a whole line. Lines end at `\n`; tokens are
/// separated by ASCII whitespace; an error names the file, the line and the token.
struct TextTokens {
    path: PathBuf,
    reader: BufReader<File>,
    limit: Option<u32>,
    /// The line being read (1-based).
    line: u64,
    /// A byte of the current line has been read.
    in_line: bool,
    /// Tokens of the current line finished so far.
    index: u64,
    tok: Partial,
}

/// ASCII whitespace as [`u8::is_ascii_whitespace`] has it.
#[inline]
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c')
}

impl TextTokens {
    fn open(path: PathBuf, limit: Option<u32>) -> Result<Self> {
        let f = File::open(&path).map_err(|source| InputError::Io { path: path.clone(), source })?;
        Ok(TextTokens {
            path,
            reader: BufReader::with_capacity(64 << 10, f),
            limit,
            line: 1,
            in_line: false,
            index: 0,
            tok: Partial::default(),
        })
    }

    fn bad(&self, msg: String) -> InputError {
        InputError::Bad { path: self.path.clone(), where_: format!("line {}", self.line), msg }
    }

    /// Ends the token being read (if any), appending its id to `out`.
    fn end_token(&mut self, out: &mut Vec<u32>) -> Result<()> {
        if self.tok.len > 0 {
            self.index += 1;
            let id = self.tok.finish(self.index, self.limit).map_err(|msg| self.bad(msg))?;
            out.push(id);
        }
        Ok(())
    }

    /// Appends the ids of the current line to `out` until `max` (at least 1) have been appended
    /// ([`Stop::Full`]), the line ends, or the file does.
    fn read(&mut self, out: &mut Vec<u32>, max: usize) -> Result<Stop> {
        let goal = out.len() + max.max(1);
        loop {
            let buf = match self.reader.fill_buf() {
                Ok(b) => b,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => return Err(InputError::Io { path: self.path.clone(), source }),
            };
            if buf.is_empty() {
                self.end_token(out)?;
                if self.in_line {
                    self.in_line = false;
                    self.index = 0;
                    return Ok(Stop::LineEnd(self.line));
                }
                return Ok(Stop::Eof);
            }
            self.in_line = true;
            let mut i = 0;
            let mut stop = None;
            while i < buf.len() {
                let b = buf[i];
                if !is_space(b) {
                    let from = i;
                    while i < buf.len() && !is_space(buf[i]) {
                        i += 1;
                    }
                    self.tok.feed(&buf[from..i]);
                    continue;
                }
                i += 1;
                if self.tok.len > 0 {
                    self.index += 1;
                    let index = self.index;
                    match self.tok.finish(index, self.limit) {
                        Ok(id) => out.push(id),
                        Err(msg) => {
                            let e =
                                InputError::Bad { path: self.path.clone(), where_: format!("line {}", self.line), msg };
                            self.reader.consume(i);
                            return Err(e);
                        }
                    }
                }
                if b == b'\n' {
                    stop = Some(Stop::LineEnd(self.line));
                    self.line += 1;
                    self.in_line = false;
                    self.index = 0;
                    break;
                }
                if out.len() >= goal {
                    stop = Some(Stop::Full);
                    break;
                }
            }
            self.reader.consume(i);
            if let Some(stop) = stop {
                return Ok(stop);
            }
        }
    }
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

    fn pieces_of(p: &Path, piece: usize) -> Vec<(Vec<u32>, bool)> {
        let input = TokenInput::open(&[p.to_path_buf()], InputOptions::default()).unwrap();
        input
            .pieces(piece)
            .map(|r| match r.unwrap() {
                Piece::Part { tokens, last, .. } => (tokens, last),
                Piece::Whole(s) => panic!("text gave a whole sequence {s:?}"),
            })
            .collect()
    }

    #[test]
    fn text_lines_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, "1 2 3 4 5 6 7\n\n8 9 10 11 12 13\n14 15 16 \n17").unwrap();
        let got = pieces_of(&p, 3);
        let want: Vec<(Vec<u32>, bool)> = vec![
            (vec![1, 2, 3], false),
            (vec![4, 5, 6], false),
            (vec![7], true),
            (vec![8, 9, 10], false),
            (vec![11, 12, 13], true),
            (vec![14, 15, 16], false),
            (vec![], true),
            (vec![17], true),
        ];
        assert_eq!(got, want);
        let input = TokenInput::open(std::slice::from_ref(&p), InputOptions::default()).unwrap();
        let sources: Vec<String> = input
            .pieces(3)
            .filter_map(|r| match r.unwrap() {
                Piece::Part { source, last: true, .. } => Some(source),
                _ => None,
            })
            .collect();
        let lines: Vec<String> = [1, 3, 4, 5].iter().map(|l| format!("{}:{l}", p.display())).collect();
        assert_eq!(sources, lines);
        // An error in a later piece counts tokens from the start of the line.
        std::fs::write(&p, "1 2\n3 4 5 6 x 7\n").unwrap();
        let input = TokenInput::open(std::slice::from_ref(&p), InputOptions::default()).unwrap();
        let err = input.pieces(2).find_map(|r| r.err()).unwrap().to_string();
        assert!(err.ends_with("a.txt: line 2: token 5 'x' is not a non-negative integer id"), "{err}");
    }

    /// The ids of `text` as the earlier reader had them: `lines()` and `split_ascii_whitespace`.
    fn reference(text: &str) -> Vec<Vec<u32>> {
        text.lines()
            .map(|l| l.split_ascii_whitespace().map(|t| t.parse::<u32>().unwrap()).collect::<Vec<u32>>())
            .filter(|l| !l.is_empty())
            .collect()
    }

    #[test]
    fn tokens_across_buffer_refills_read_as_lines_split() {
        // Lines longer than the 64 KiB buffer, tokens of 1 to 10 digits (leading zeros too),
        // separators of every ASCII whitespace kind, blank lines and CRLF endings.
        let mut x = 5u64;
        let mut next = |m: u64| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) % m
        };
        let mut text = String::new();
        for line in 0..7 {
            for _ in 0..(if line % 3 == 0 { 30_000 } else { 17 }) {
                let digits = 1 + next(10) as usize;
                let v = next(u64::from(u32::MAX) + 1);
                text += &format!("{v:0digits$}")[..]
                    .chars()
                    .rev()
                    .take(digits)
                    .collect::<Vec<_>>()
                    .iter()
                    .rev()
                    .collect::<String>();
                text += [" ", "  ", "\t", "\r", "\x0c"][next(5) as usize];
            }
            text += ["\n", "\r\n", "\n\n \n"][next(3) as usize];
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        std::fs::write(&p, &text).unwrap();
        let want = reference(&text);
        let got = TokenInput::open(std::slice::from_ref(&p), InputOptions::default()).unwrap().read_all().unwrap();
        assert_eq!(got.iter().map(|s| s.scales[0].clone()).collect::<Vec<_>>(), want);
        let mut joined: Vec<Vec<u32>> = vec![Vec::new()];
        for (ids, last) in pieces_of(&p, 1000) {
            assert!(ids.len() <= 1000);
            joined.last_mut().unwrap().extend(ids);
            if last {
                joined.push(Vec::new());
            }
        }
        joined.pop();
        assert_eq!(joined, want);
    }

    #[test]
    fn token_messages_and_the_line_limit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.txt");
        let read = |text: &[u8]| {
            std::fs::write(&p, text).unwrap();
            TokenInput::open(std::slice::from_ref(&p), InputOptions::default()).unwrap().read_all()
        };
        assert_eq!(
            read(b"007 -\n").unwrap_err().to_string(),
            format!("{}: line 1: token 2 '-' is not a non-negative integer id", p.display())
        );
        assert_eq!(read(b"007 4294967295\n").unwrap()[0].scales, vec![vec![7, u32::MAX]]);
        assert!(read(b"4294967296").unwrap_err().to_string().ends_with("token 1 '4294967296' is too large for an id"));
        assert!(read(b"1 -0").unwrap_err().to_string().ends_with("token 2 '-0' is a negative id"));
        // A long token is shown cut, with its length; a character cut by the cut is dropped.
        let long = format!("1 {}\n", "9".repeat(100));
        let err = read(long.as_bytes()).unwrap_err().to_string();
        assert!(
            err.ends_with(&format!("line 1: token 2 '{}...' (100 bytes) is too large for an id", "9".repeat(32))),
            "{err}"
        );
        let long = format!("{}\u{e9}{}", "1".repeat(31), "x".repeat(10));
        let err = read(long.as_bytes()).unwrap_err().to_string();
        assert!(
            err.ends_with(&format!("token 1 '{}...' (43 bytes) is not a non-negative integer id", "1".repeat(31))),
            "{err}"
        );
        assert!(read("1 \u{e9}".as_bytes())
            .unwrap_err()
            .to_string()
            .ends_with("token 2 '\u{e9}' is not a non-negative integer id"));
        // Lines read whole are limited; the error names the file and the line.
        for text in ["1 2 3\n4 5 6 7\n", "1 2 3\n4 5 6 7", "1 2 3 \n4 5 6 7 8 9 10 \n11"] {
            std::fs::write(&p, text).unwrap();
            let input = TokenInput::open(std::slice::from_ref(&p), InputOptions::default()).unwrap();
            let mut seqs = Sequences { inner: input.reader(3, true), line_limit: 3 };
            assert_eq!(seqs.next().unwrap().unwrap().scales, vec![vec![1, 2, 3]]);
            let err = seqs.next().unwrap().unwrap_err().to_string();
            assert_eq!(
                err,
                format!(
                    "{}: line 2: more than 3 tokens on one line (the limit of a line read whole; split the line)",
                    p.display()
                )
            );
            assert!(seqs.next().is_none());
            assert_eq!(input.sequences().line_limit, MAX_LINE_TOKENS);
        }
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
