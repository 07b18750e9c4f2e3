//! Opening an input file for the decoder: refuse non-regular files before opening them, repair
//! the size fields of streamed WAVs, and tell whether an MP3 states its exact length.
//!
//! Streamed WAVs: a writer that cannot seek back (ffmpeg writing to a pipe) leaves the RIFF and
//! data sizes at 0xFFFFFFFF; one killed before it patched its header leaves them as first written
//! (data 0, RIFF 0 or 8). libsndfile reads both kinds to the end of the file (`wav.c`: a data
//! size of 0 with a RIFF size of 8 is "a WAV file which wasn't closed properly", and any data size
//! beyond the file is clamped to it). audiotok does the same for exactly these sentinel sizes,
//! taking whole frames up to the end of the file, by presenting the decoder a view of the file
//! whose size fields are the real ones. Any other data size beyond the end of the file stays a
//! truncation error (libsndfile clamps those silently; audiotok does not accept missing audio).

use std::fs::File;
use std::io::{Cursor, Read, Seek, SeekFrom};
use std::path::Path;

use symphonia::core::io::MediaSource;

use crate::error::{AudioError, Result};

/// What a path names when it is not a regular file, for [`AudioError::NotAFile`].
fn non_regular_kind(ft: std::fs::FileType) -> Option<&'static str> {
    if ft.is_file() {
        return None;
    }
    if ft.is_dir() {
        return Some("a directory");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if ft.is_fifo() {
            return Some("a FIFO");
        }
        if ft.is_char_device() {
            return Some("a character device");
        }
        if ft.is_block_device() {
            return Some("a block device");
        }
        if ft.is_socket() {
            return Some("a socket");
        }
    }
    Some("a special file")
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> AudioError + '_ {
    move |source| AudioError::Io { path: path.to_path_buf(), source }
}

/// Opens `path` for reading after checking (without opening it, so that a FIFO cannot block)
/// that it is a regular file. Returns the file and its length.
pub(crate) fn open_regular(path: &Path) -> Result<(File, u64)> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if let Some(kind) = non_regular_kind(meta.file_type()) {
        return Err(AudioError::NotAFile { path: path.to_path_buf(), kind });
    }
    let file = File::open(path).map_err(io(path))?;
    // The path may have been replaced between the two calls: check what was opened.
    let meta = file.metadata().map_err(io(path))?;
    if let Some(kind) = non_regular_kind(meta.file_type()) {
        return Err(AudioError::NotAFile { path: path.to_path_buf(), kind });
    }
    Ok((file, meta.len()))
}

/// An input's bytes (a file, or bytes in memory) with some 4-byte fields replaced, as the decoder
/// reads them.
pub(crate) struct PatchedFile<R = File> {
    file: R,
    len: u64,
    pos: u64,
    patches: Vec<(u64, [u8; 4])>,
}

impl<R: Read> Read for PatchedFile<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        let (start, end) = (self.pos, self.pos + n as u64);
        for (at, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let p = at + i as u64;
                if p >= start && p < end {
                    if let Some(slot) = buf.get_mut((p - start) as usize) {
                        *slot = *b;
                    }
                }
            }
        }
        self.pos = end;
        Ok(n)
    }
}

impl<R: Seek> Seek for PatchedFile<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

impl<R: Read + Seek + Send + Sync> MediaSource for PatchedFile<R> {
    fn is_seekable(&self) -> bool {
        true
    }

    fn byte_len(&self) -> Option<u64> {
        Some(self.len)
    }
}

fn read_at<R: Read + Seek>(file: &mut R, at: u64, buf: &mut [u8]) -> std::io::Result<bool> {
    file.seek(SeekFrom::Start(at))?;
    match file.read_exact(buf) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(false),
        Err(e) => Err(e),
    }
}

fn le32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_le_bytes(a)
}

/// The chunks walked before giving up on finding `data` (a hostile file may hold millions).
const MAX_CHUNKS: usize = 4096;

/// The size fields of a streamed WAV to replace (see the module docs); none for any other file.
fn wav_patches<R: Read + Seek>(path: &Path, file: &mut R, len: u64) -> Result<Vec<(u64, [u8; 4])>> {
    let mut head = [0u8; 12];
    if !read_at(file, 0, &mut head).map_err(io(path))? || &head[..4] != b"RIFF" || &head[8..12] != b"WAVE" {
        return Ok(Vec::new());
    }
    let riff = le32(&head[4..8]);
    let mut at = 12u64;
    let mut block_align = 1u64;
    for _ in 0..MAX_CHUNKS {
        let mut ch = [0u8; 8];
        if !read_at(file, at, &mut ch).map_err(io(path))? {
            break;
        }
        let size = le32(&ch[4..8]);
        if &ch[..4] == b"fmt " {
            let mut fmt = [0u8; 14];
            if read_at(file, at + 8, &mut fmt).map_err(io(path))? {
                block_align = u64::from(u16::from_le_bytes([fmt[12], fmt[13]])).max(1);
            }
        }
        if &ch[..4] == b"data" {
            let start = at + 8;
            let avail = len.saturating_sub(start);
            let unfinished = size == 0 && avail > 0 && matches!(riff, 0 | 8 | u32::MAX);
            let mut patches = Vec::new();
            if size == u32::MAX || unfinished {
                let data = avail - avail % block_align;
                let fits = u32::try_from(data).ok().filter(|&d| d < u32::MAX && len - 8 < u64::from(u32::MAX));
                let Some(data) = fits else {
                    return Err(AudioError::Unsupported {
                        path: path.to_path_buf(),
                        reason: format!(
                            "streamed WAV (no data size in its header) with {avail} bytes of data: over the 4 GiB \
                             a WAV can describe"
                        ),
                    });
                };
                patches.push((at + 4, data.to_le_bytes()));
            }
            if !patches.is_empty() || matches!(riff, 0 | u32::MAX) {
                if let Ok(r) = u32::try_from(len - 8) {
                    if r < u32::MAX {
                        patches.push((4, r.to_le_bytes()));
                    }
                }
            }
            if patches.is_empty() && u64::from(size) > avail {
                // Decoding would stop at the end of the file: the file is cut short.
                return Err(AudioError::Corrupt {
                    path: path.to_path_buf(),
                    reason: format!(
                        "truncated: the data chunk states {size} bytes but the file holds {avail} after its header"
                    ),
                });
            }
            return Ok(patches);
        }
        at += 8 + u64::from(size) + u64::from(size & 1);
    }
    Ok(Vec::new())
}

/// `path` opened for the decoder, with a streamed WAV's size fields repaired.
pub(crate) fn open_source(path: &Path) -> Result<(PatchedFile, u64)> {
    let (file, len) = open_regular(path)?;
    patched(path, file, len)
}

/// Bytes in memory (an encoded file held in a Parquet cell, a tar member, a Python `bytes`)
/// prepared for the decoder as [`open_source`] prepares a file; `name` stands for them in errors.
pub(crate) fn memory_source(name: &Path, bytes: Vec<u8>) -> Result<(PatchedFile<Cursor<Vec<u8>>>, u64)> {
    let len = bytes.len() as u64;
    patched(name, Cursor::new(bytes), len)
}

fn patched<R: Read + Seek>(path: &Path, mut file: R, len: u64) -> Result<(PatchedFile<R>, u64)> {
    let patches = wav_patches(path, &mut file, len)?;
    file.seek(SeekFrom::Start(0)).map_err(io(path))?;
    Ok((PatchedFile { file, len, pos: 0, patches }, len))
}

/// Whether the MP3 in `file` (named `path` in errors) starts with a Xing/Info tag that states its frame count (LAME and
/// ffmpeg write one): the stream's length is then exact, and a decode that ends short of it is a
/// truncated file. Without one, the length is an estimate from the bitrate.
pub(crate) fn mp3_states_frame_count<R: Read + Seek>(path: &Path, file: &mut R, len: u64) -> Result<bool> {
    let mut start = 0u64;
    let mut id3 = [0u8; 10];
    if read_at(file, 0, &mut id3).map_err(io(path))? && &id3[..3] == b"ID3" {
        let size = id3[6..10].iter().fold(0u64, |a, &b| (a << 7) | u64::from(b & 0x7f));
        start = 10 + size + if id3[5] & 0x10 != 0 { 10 } else { 0 };
    }
    if start >= len {
        return Ok(false);
    }
    let mut buf = vec![0u8; 4096.min((len - start) as usize)];
    file.seek(SeekFrom::Start(start)).map_err(io(path))?;
    file.read_exact(&mut buf).map_err(io(path))?;
    // The first frame header: sync, layer III.
    let Some(i) = buf.windows(2).position(|w| w[0] == 0xff && w[1] & 0xe0 == 0xe0 && (w[1] >> 1) & 3 == 1) else {
        return Ok(false);
    };
    let (Some(&b1), Some(&b3)) = (buf.get(i + 1), buf.get(i + 3)) else { return Ok(false) };
    let mpeg1 = (b1 >> 3) & 3 == 3;
    let mono = b3 >> 6 == 3;
    let side = match (mpeg1, mono) {
        (true, true) => 17,
        (true, false) => 32,
        (false, true) => 9,
        (false, false) => 17,
    };
    let tag = i + 4 + side;
    let (Some(id), Some(flags)) = (buf.get(tag..tag + 4), buf.get(tag + 4..tag + 8)) else { return Ok(false) };
    Ok((id == b"Xing" || id == b"Info") && flags[3] & 1 == 1)
}
