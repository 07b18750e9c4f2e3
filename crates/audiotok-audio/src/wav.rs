//! Writing IEEE float32 WAV files atomically, and a minimal reader for them.

use std::io::Write;
use std::path::Path;

use crate::error::{AudioError, Result};

/// Writes interleaved `samples` as a 32-bit float WAV (format tag 3, with a `fact` chunk) to
/// `path`, as [`crate::atomic`] writes every output: under a temporary name in the same folder,
/// synced and renamed into place, so a reader never sees a half-written file (a symlink is
/// written through, a FIFO or device directly).
pub fn write_wav_f32(path: &Path, samples: &[f32], sample_rate: u32, channels: u16) -> Result<()> {
    if channels == 0 || sample_rate == 0 {
        return Err(AudioError::InvalidParameter("WAV needs at least one channel and a positive rate".into()));
    }
    let data_bytes = samples.len() as u64 * 4;
    if data_bytes + 58 > u64::from(u32::MAX) {
        return Err(AudioError::InvalidParameter(format!(
            "{}: {} samples exceed the 4 GiB limit of a WAV file",
            path.display(),
            samples.len()
        )));
    }
    let mut file = crate::atomic::AtomicFile::create(path)?;
    let io = |e| AudioError::Io { path: path.to_path_buf(), source: e };
    let w = file.writer();
    let mut write = || -> std::io::Result<()> {
        let block_align = u32::from(channels) * 4;
        w.write_all(b"RIFF")?;
        w.write_all(&((4 + 26 + 12 + 8 + data_bytes) as u32).to_le_bytes())?;
        w.write_all(b"WAVEfmt ")?;
        w.write_all(&18u32.to_le_bytes())?;
        w.write_all(&3u16.to_le_bytes())?;
        w.write_all(&channels.to_le_bytes())?;
        w.write_all(&sample_rate.to_le_bytes())?;
        w.write_all(&(sample_rate * block_align).to_le_bytes())?;
        w.write_all(&(block_align as u16).to_le_bytes())?;
        w.write_all(&32u16.to_le_bytes())?;
        w.write_all(&0u16.to_le_bytes())?;
        w.write_all(b"fact")?;
        w.write_all(&4u32.to_le_bytes())?;
        w.write_all(&((samples.len() / usize::from(channels)) as u32).to_le_bytes())?;
        w.write_all(b"data")?;
        w.write_all(&(data_bytes as u32).to_le_bytes())?;
        for chunk in samples.chunks(4096) {
            let mut buf = [0u8; 4096 * 4];
            for (i, s) in chunk.iter().enumerate() {
                buf[i * 4..i * 4 + 4].copy_from_slice(&s.to_le_bytes());
            }
            w.write_all(&buf[..chunk.len() * 4])?;
        }
        Ok(())
    };
    // On error `file` is dropped uncommitted: its temporary file goes, `path` stays as it was.
    write().map_err(io)?;
    file.commit(true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{load, LoadOptions};
    use proptest::prelude::*;

    /// The output is written through a symlink (the link stays) and into a FIFO (it stays a FIFO).
    #[test]
    fn writes_through_links_and_into_fifos() {
        use std::os::unix::fs::FileTypeExt;
        let dir = tempfile::tempdir().unwrap();
        let samples = [0.25f32, -0.5, 0.125];
        let plain = dir.path().join("plain.wav");
        write_wav_f32(&plain, &samples, 8000, 1).unwrap();
        let want = std::fs::read(&plain).unwrap();
        std::fs::write(dir.path().join("target.wav"), b"old").unwrap();
        let link = dir.path().join("link.wav");
        std::os::unix::fs::symlink("target.wav", &link).unwrap();
        write_wav_f32(&link, &samples, 8000, 1).unwrap();
        assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
        assert_eq!(std::fs::read(dir.path().join("target.wav")).unwrap(), want);

        let fifo = dir.path().join("pipe.wav");
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = fifo.clone();
        std::thread::spawn(move || {
            let _ = tx.send(std::fs::read(reader).unwrap());
        });
        write_wav_f32(&fifo, &samples, 8000, 1).unwrap();
        assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
        assert_eq!(rx.recv_timeout(std::time::Duration::from_secs(20)).unwrap(), want);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(16))]
        /// Writing then decoding with symphonia gives back the same samples bit for bit.
        #[test]
        fn wav_round_trip(samples in proptest::collection::vec(-1.0f32..1.0, 1..3000), stereo in any::<bool>()) {
            let channels = if stereo { 2 } else { 1 };
            let mut samples = samples;
            samples.truncate(samples.len() / channels * channels);
            prop_assume!(!samples.is_empty());
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("x.wav");
            write_wav_f32(&path, &samples, 22050, channels as u16).unwrap();
            let a = load(&path, &LoadOptions { target_rate: None, mono: false }).unwrap();
            prop_assert_eq!(a.sample_rate, 22050);
            prop_assert_eq!(a.channels, channels);
            prop_assert_eq!(a.samples, samples);
        }
    }
}
