//! The training data: audio folders or manifests turned into mel-db crops.
//!
//! [`gather`] expands `--data` arguments: audio files and folders (walked by
//! [`audiotok_core::collect`]) and manifests (`.jsonl`: one JSON object a line; `.csv`: a header
//! row then one row a line) whose rows name an audio file in a `path` (or `audio`, `file`) field
//! and optionally a `speaker`; a relative path is taken from the manifest's folder. A manifest row
//! without a path is a reject naming the manifest and line.
//!
//! [`Dataset::prepare`] decodes every clip with `audiotok_audio` (mono, resampled to 16 kHz),
//! computes the project's `mel-db` features with `audiotok_features::meldb` (n_fft 1024, hop 160,
//! `n_mels` bins, dB to the clip's maximum, floor 80 dB below it, no crop or pad) and scales them to
//! `[-1, 1]` (`x = dB / 40 + 1`). Each clip's array is written once as `.npy` in a feature cache
//! folder (atomically; a later run with the same file, size and modification time reuses it), so
//! memory holds only the clips of the batch being built. Undecodable files and files whose peak is
//! below [`DataConfig::silence_dbfs`] are rejects (with the reason) and the job goes on; no usable
//! clip at all is an error. The clips are then split into training and validation sets: by file,
//! or by speaker (every clip of a speaker on the same side; clips without a speaker are each their
//! own speaker), with the seed's shuffle.
//!
//! [`Dataset::train_batch`] draws a batch from a [`Rng`] (the trainer's, saved in checkpoints, so a
//! resumed run draws the same batches): for each item a clip uniformly, a crop start uniformly
//! (clips shorter than the crop are padded with `-1`, the -80 dB floor), then the SpecAugment masks
//! (`time_masks` spans of up to `time_mask_width` frames and `freq_masks` of up to
//! `freq_mask_width` bins, each width uniform from 0, set to `mask_value`). The model reconstructs
//! the masked crop (the masks augment the input distribution; the target is what the model saw).
//! [`Dataset::val_batches`] gives the validation crops: consecutive crops from the start of each
//! validation clip, no masks, at most `val_crops` of them, the same on every call.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::{Path, PathBuf};

use audiotok_core::{path_text, Observer};
use audiotok_features::meldb::{MelDb, MelDbConfig};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::{Config, Error, Rng};

/// The rate the features are computed at.
pub const SAMPLE_RATE: u32 = 16_000;
/// The feature hop in samples (100 frames/s at 16 kHz).
pub const HOP: usize = 160;
/// The FFT size of the features.
pub const N_FFT: usize = 1024;
/// The dB range below the maximum that the features keep.
pub const TOP_DB: f64 = 80.0;

/// How the validation clips are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// Whole files.
    File,
    /// Whole speakers (a manifest's `speaker` field).
    Speaker,
}

/// How crops are drawn and augmented, and how the validation set is made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Frames in a training crop (a multiple of the model's `time_patch`, at most its
    /// `crop_frames`; 0: the model's `crop_frames`).
    pub crop_frames: usize,
    /// Crops per batch.
    pub batch_size: usize,
    /// Share of the clips (or speakers) held out for validation; with at least two clips and a
    /// positive share, at least one is held out.
    pub val_fraction: f64,
    /// Validation split by file or by speaker.
    pub split: Split,
    /// Most validation crops evaluated.
    pub val_crops: usize,
    /// SpecAugment time masks per crop.
    pub time_masks: usize,
    /// Widest time mask (frames).
    pub time_mask_width: usize,
    /// SpecAugment frequency masks per crop.
    pub freq_masks: usize,
    /// Widest frequency mask (mel bins).
    pub freq_mask_width: usize,
    /// The value masked cells take (`-1` is the -80 dB floor).
    pub mask_value: f64,
    /// A clip whose peak sample is below this level (dB full scale) is rejected as silent.
    pub silence_dbfs: f64,
    /// Threads decoding and featurising (0: one per core).
    pub jobs: usize,
}

impl Default for DataConfig {
    fn default() -> Self {
        DataConfig {
            crop_frames: 0,
            batch_size: 8,
            val_fraction: 0.1,
            split: Split::File,
            val_crops: 64,
            time_masks: 0,
            time_mask_width: 16,
            freq_masks: 0,
            freq_mask_width: 8,
            mask_value: -1.0,
            silence_dbfs: -80.0,
            jobs: 0,
        }
    }
}

impl DataConfig {
    /// Checks the fields against the model they feed.
    pub fn validate(&self, model: &Config) -> Result<(), Error> {
        let bad = |m: String| Err(Error::Config(m));
        let crop = self.crop(model);
        if crop % model.time_patch != 0 {
            return bad(format!("data.crop_frames {crop} is not a multiple of time_patch {}", model.time_patch));
        }
        if crop > model.crop_frames {
            return bad(format!("data.crop_frames {crop} is more than the model's crop_frames {}", model.crop_frames));
        }
        if self.batch_size == 0 {
            return bad("data.batch_size must be positive".into());
        }
        if !(0.0..1.0).contains(&self.val_fraction) {
            return bad(format!("data.val_fraction {} must be in [0, 1)", self.val_fraction));
        }
        if self.time_masks > 0 && self.time_mask_width > crop {
            return bad(format!(
                "data.time_mask_width {} is wider than the crop ({crop} frames)",
                self.time_mask_width
            ));
        }
        if self.freq_masks > 0 && self.freq_mask_width > model.n_mels {
            return bad(format!("data.freq_mask_width {} is more than n_mels {}", self.freq_mask_width, model.n_mels));
        }
        if !(self.mask_value.is_finite() && (-1.0..=1.0).contains(&self.mask_value)) {
            return bad(format!("data.mask_value {} must be in [-1, 1]", self.mask_value));
        }
        if !self.silence_dbfs.is_finite() {
            return bad("data.silence_dbfs must be finite".into());
        }
        audiotok_core::check_jobs(self.jobs).map_err(|e| Error::Config(format!("data.jobs: {e}")))?;
        Ok(())
    }

    /// The training crop in frames for `model`.
    pub fn crop(&self, model: &Config) -> usize {
        if self.crop_frames == 0 {
            model.crop_frames
        } else {
            self.crop_frames
        }
    }
}

/// The mel-db settings of the features (`frames: None`: the clip's whole length).
pub fn meldb_config(n_mels: usize) -> MelDbConfig {
    MelDbConfig { sample_rate: SAMPLE_RATE, n_fft: N_FFT, hop: HOP, n_mels, top_db: TOP_DB, frames: None }
}

/// The features of a mono 16 kHz signal: `[n_mels, frames]` (C order) mel-db scaled to `[-1, 1]`.
pub fn features(meldb: &mut MelDb, samples: &[f32]) -> (usize, Vec<f32>) {
    let f = meldb.compute(samples);
    let frames = f.shape.get(1).copied().unwrap_or(0);
    let data = f.data.iter().map(|&v| scale_db(v)).collect();
    (frames, data)
}

/// dB in `[-80, 0]` to `[-1, 1]`.
pub fn scale_db(db: f32) -> f32 {
    (db / (TOP_DB as f32 / 2.0) + 1.0).clamp(-1.0, 1.0)
}

/// `[-1, 1]` back to dB in `[-80, 0]`.
pub fn unscale_db(x: f32) -> f32 {
    (x.clamp(-1.0, 1.0) - 1.0) * (TOP_DB as f32 / 2.0)
}

/// One audio file named by a `--data` argument.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Clip {
    /// The file.
    pub path: PathBuf,
    /// Its speaker, from a manifest.
    pub speaker: Option<String>,
}

/// An input that gave no training data, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reject {
    /// The file (or `manifest:line`).
    pub input: String,
    /// Why (naming the file).
    pub reason: String,
}

fn is_manifest(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "jsonl" | "csv"))
}

const PATH_FIELDS: [&str; 3] = ["path", "audio", "file"];

/// Expands `--data` arguments into clips (and rejects for bad manifest rows); see the module
/// documentation. A missing argument, or no clip at all, is an error.
pub fn gather<P: AsRef<Path>>(args: &[P]) -> Result<(Vec<Clip>, Vec<Reject>), Error> {
    let mut clips = Vec::new();
    let mut rejects = Vec::new();
    for arg in args {
        let arg = arg.as_ref();
        if is_manifest(arg) {
            read_manifest(arg, &mut clips, &mut rejects)?;
            continue;
        }
        let found = audiotok_core::collect(&[arg]).map_err(|e| Error::Data(e.to_string()))?;
        for input in found.files {
            if let Err(reason) = input.readable() {
                rejects.push(Reject { input: path_text(&input.path), reason });
                continue;
            }
            clips.push(Clip { path: input.path, speaker: None });
        }
    }
    if clips.is_empty() {
        let names: Vec<String> = args.iter().map(|a| a.as_ref().display().to_string()).collect();
        return Err(Error::Data(format!("no audio files found in {}", names.join(", "))));
    }
    Ok((clips, rejects))
}

fn read_manifest(path: &Path, clips: &mut Vec<Clip>, rejects: &mut Vec<Reject>) -> Result<(), Error> {
    let file = std::fs::File::open(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let base = path.parent().unwrap_or(Path::new("")).to_path_buf();
    let csv = path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut header: Option<Vec<String>> = None;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::Io(path.to_path_buf(), e))?;
        let at = format!("{}:{}", path.display(), i + 1);
        if line.trim().is_empty() {
            continue;
        }
        let row: Result<HashMap<String, String>, String> = if csv {
            match &header {
                None => {
                    let h = split_csv(&line).map_err(|e| Error::Data(format!("{at}: {e}")))?;
                    if !PATH_FIELDS.iter().any(|f| h.iter().any(|c| c == f)) {
                        return Err(Error::Data(format!("{at}: the header has no path column (path, audio or file)")));
                    }
                    header = Some(h);
                    continue;
                }
                Some(h) => split_csv(&line).and_then(|cells| {
                    if cells.len() != h.len() {
                        return Err(format!("{} fields, the header has {}", cells.len(), h.len()));
                    }
                    Ok(h.iter().cloned().zip(cells).collect())
                }),
            }
        } else {
            json_row(&line)
        };
        let row = match row {
            Ok(r) => r,
            Err(reason) => {
                rejects.push(Reject { input: at.clone(), reason: format!("{at}: {reason}") });
                continue;
            }
        };
        let Some(p) = PATH_FIELDS.iter().find_map(|f| row.get(*f)).filter(|p| !p.is_empty()) else {
            rejects.push(Reject { input: at.clone(), reason: format!("{at}: no path (path, audio or file field)") });
            continue;
        };
        let p = PathBuf::from(p);
        let p = if p.is_absolute() { p } else { base.join(p) };
        let speaker = row.get("speaker").filter(|s| !s.is_empty()).cloned();
        clips.push(Clip { path: p, speaker });
    }
    Ok(())
}

fn json_row(line: &str) -> Result<HashMap<String, String>, String> {
    let v: serde_json::Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let obj = v.as_object().ok_or("not a JSON object")?;
    Ok(obj
        .iter()
        .filter_map(|(k, v)| {
            let s = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Number(n) => n.to_string(),
                _ => return None,
            };
            Some((k.clone(), s))
        })
        .collect())
}

/// One CSV line (RFC 4180 quoting: `"a,b"`, `""` for a quote; no line breaks inside fields).
fn split_csv(line: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut chars = line.trim_end_matches('\r').chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    cur.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                cur.push(c);
            }
        } else if c == '"' && cur.is_empty() && !was_quoted {
            quoted = true;
            was_quoted = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
            was_quoted = false;
        } else if was_quoted {
            return Err("text after a closing quote".into());
        } else {
            cur.push(c);
        }
    }
    if quoted {
        return Err("unterminated quote".into());
    }
    out.push(cur);
    Ok(out)
}

/// A clip whose features are in the cache.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    /// The audio file ([`path_text`]).
    pub input: String,
    /// Its speaker, if the manifest gave one.
    pub speaker: Option<String>,
    /// Its features (`[n_mels, frames]` `.npy`, scaled to `[-1, 1]`).
    pub cache: PathBuf,
    /// Frames of features.
    pub frames: usize,
}

/// Clips ready for training: the training and validation sets and what was rejected.
#[derive(Debug, Clone)]
pub struct Dataset {
    cfg: DataConfig,
    n_mels: usize,
    crop: usize,
    train: Vec<Item>,
    val: Vec<Item>,
    rejects: Vec<Reject>,
}

fn fnv1a(bytes: &[u8], mut h: u64) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x100_0000_01b3);
    }
    h
}

fn cache_name(path: &Path, n_mels: usize) -> String {
    let mut key = path_text(path).into_bytes();
    if let Ok(m) = std::fs::metadata(path) {
        key.extend(m.len().to_le_bytes());
        if let Ok(t) = m.modified().map(|t| t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default()) {
            key.extend(t.as_nanos().to_le_bytes());
        }
    }
    key.extend(format!("mel-db/{SAMPLE_RATE}/{N_FFT}/{HOP}/{n_mels}/{TOP_DB}").into_bytes());
    let stem: String = path
        .file_stem()
        .map(|s| {
            s.to_string_lossy().chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).take(40).collect()
        })
        .unwrap_or_default();
    format!("{stem}-{:016x}.npy", fnv1a(&key, 0xcbf2_9ce4_8422_2325))
}

/// Reads a cached feature array, checking it has `n_mels` rows.
pub fn read_features(path: &Path, n_mels: usize) -> Result<(usize, Vec<f32>), Error> {
    let f = std::fs::File::open(path).map_err(|e| Error::Io(path.to_path_buf(), e))?;
    let a = audiotok_features::npy::read(std::io::BufReader::new(f))
        .map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    match a.shape.as_slice() {
        [m, t] if *m == n_mels => Ok((*t, a.to_f32())),
        s => Err(Error::Data(format!("{}: shape {s:?}, expected [{n_mels}, frames]", path.display()))),
    }
}

/// Decodes `path` and computes its scaled features: `(samples at 16 kHz, frames, [n_mels, frames]
/// values)`; `Err` is the reason (naming the file).
pub fn clip_features(meldb: &mut MelDb, path: &Path, silence_dbfs: f64) -> Result<(usize, usize, Vec<f32>), String> {
    let audio = audiotok_audio::load(path, &audiotok_audio::LoadOptions::mono_at(SAMPLE_RATE))
        .map_err(|e| format!("{}: {}", path.display(), audiotok_core::error_text(&e)))?;
    check_clip(&path.display().to_string(), &audio.samples, silence_dbfs)?;
    let (frames, data) = features(meldb, &audio.samples);
    Ok((audio.samples.len(), frames, data))
}

/// Whether a decoded clip gives data: not empty, finite, its peak at or above `silence_dbfs`;
/// `Err` is the reason, naming the clip `name`.
pub fn check_clip(name: &str, samples: &[f32], silence_dbfs: f64) -> Result<(), String> {
    if samples.is_empty() {
        return Err(format!("{name}: no samples"));
    }
    if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
        return Err(format!("{name}: sample {i} is not finite"));
    }
    let peak = samples.iter().fold(0f32, |m, &v| m.max(v.abs()));
    let peak_db = 20.0 * f64::from(peak).max(1e-30).log10();
    if !peak_db.is_finite() || peak_db < silence_dbfs {
        return Err(format!("{name}: silent (peak {:.1} dBFS, below {:.1})", peak_db.max(-999.0), silence_dbfs));
    }
    Ok(())
}

impl Dataset {
    /// Gathers the clips of `args`, computes (or reuses) their features in `cache_dir` and splits
    /// them (see the module documentation). Progress goes to `observer` as the phase `features`.
    pub fn prepare<P: AsRef<Path>>(
        args: &[P],
        cfg: &DataConfig,
        model: &Config,
        seed: u64,
        cache_dir: &Path,
        observer: &dyn Observer,
    ) -> Result<Dataset, Error> {
        cfg.validate(model)?;
        let (clips, mut rejects) = gather(args)?;
        std::fs::create_dir_all(cache_dir).map_err(|e| Error::Io(cache_dir.to_path_buf(), e))?;
        let n_mels = model.n_mels;
        let inputs: Vec<audiotok_core::Input> = clips.iter().map(|c| audiotok_core::Input::file(&c.path)).collect();
        let silence = cfg.silence_dbfs;
        let make = || MelDb::new(meldb_config(n_mels));
        let outcomes = audiotok_core::run_parallel(&inputs, cfg.jobs, "features", observer, make, |mel, _, input| {
            let cache = cache_dir.join(cache_name(&input.path, n_mels));
            if let Ok((frames, _)) = read_features(&cache, n_mels) {
                return Ok((cache, frames));
            }
            let (_, frames, data) = clip_features(mel, &input.path, silence)?;
            audiotok_core::atomic::write_with(&cache, |w| {
                audiotok_features::npy::write_f32(w, &[n_mels, frames], &data).map_err(|e| Error::Data(e.to_string()))
            })
            .map_err(|e| format!("{}: {e}", cache.display()))?;
            Ok((cache, frames))
        })
        .map_err(|e| Error::Data(e.to_string()))?;
        let mut items = Vec::new();
        for (clip, out) in clips.iter().zip(outcomes) {
            match out {
                Ok((cache, frames)) if frames > 0 => {
                    items.push(Item { input: path_text(&clip.path), speaker: clip.speaker.clone(), cache, frames })
                }
                Ok(_) => rejects.push(Reject {
                    input: path_text(&clip.path),
                    reason: format!("{}: no frames", clip.path.display()),
                }),
                Err(reason) => rejects.push(Reject { input: path_text(&clip.path), reason }),
            }
        }
        if items.is_empty() {
            let why: Vec<&str> = rejects.iter().take(3).map(|r| r.reason.as_str()).collect();
            return Err(Error::Data(format!(
                "no usable audio: {} inputs, all rejected (silent or undecodable): {}{}",
                rejects.len(),
                why.join("; "),
                if rejects.len() > 3 { "; ..." } else { "" }
            )));
        }
        let (train, val) = split(items, cfg, seed)?;
        Ok(Dataset { cfg: cfg.clone(), n_mels, crop: cfg.crop(model), train, val, rejects })
    }

    /// The training clips.
    pub fn train_items(&self) -> &[Item] {
        &self.train
    }

    /// The validation clips.
    pub fn val_items(&self) -> &[Item] {
        &self.val
    }

    /// The inputs that gave no data, with their reasons.
    pub fn rejects(&self) -> &[Reject] {
        &self.rejects
    }

    /// Frames per crop.
    pub fn crop_frames(&self) -> usize {
        self.crop
    }

    /// The data configuration.
    pub fn config(&self) -> &DataConfig {
        &self.cfg
    }

    /// A training batch `[batch_size, n_mels, crop_frames]` drawn with `rng` (see the module
    /// documentation).
    pub fn train_batch(&self, rng: &mut Rng, device: &Device) -> Result<Tensor, Error> {
        let (b, m, t) = (self.cfg.batch_size, self.n_mels, self.crop);
        let mut out = Vec::with_capacity(b * m * t);
        for _ in 0..b {
            let item = &self.train[rng.below(self.train.len() as u64) as usize];
            let (frames, data) = read_features(&item.cache, m)?;
            let start = if frames > t { rng.below((frames - t + 1) as u64) as usize } else { 0 };
            let mut crop = take_crop(&data, m, frames, start, t);
            self.mask(&mut crop, rng);
            out.extend(crop);
        }
        Ok(Tensor::from_vec(out, (b, m, t), device)?)
    }

    fn mask(&self, crop: &mut [f32], rng: &mut Rng) {
        let (m, t, v) = (self.n_mels, self.crop, self.cfg.mask_value as f32);
        for _ in 0..self.cfg.time_masks {
            let w = rng.below(self.cfg.time_mask_width as u64 + 1) as usize;
            let t0 = rng.below((t - w + 1) as u64) as usize;
            for row in crop.chunks_exact_mut(t) {
                row[t0..t0 + w].fill(v);
            }
        }
        for _ in 0..self.cfg.freq_masks {
            let w = rng.below(self.cfg.freq_mask_width as u64 + 1) as usize;
            let f0 = rng.below((m - w + 1) as u64) as usize;
            crop[f0 * t..(f0 + w) * t].fill(v);
        }
    }

    /// The validation crops, `batch_size` at a time (the last batch may be smaller): consecutive
    /// crops from the start of each validation clip, no masks, at most `val_crops` in all. Empty
    /// when nothing is held out.
    pub fn val_batches(&self, device: &Device) -> Result<Vec<Tensor>, Error> {
        let (m, t) = (self.n_mels, self.crop);
        let mut crops: Vec<Vec<f32>> = Vec::new();
        'clips: for item in &self.val {
            let (frames, data) = read_features(&item.cache, m)?;
            let mut start = 0;
            loop {
                if crops.len() >= self.cfg.val_crops {
                    break 'clips;
                }
                crops.push(take_crop(&data, m, frames, start, t));
                start += t;
                if start >= frames {
                    break;
                }
            }
        }
        crops.chunks(self.cfg.batch_size).map(|c| Ok(Tensor::from_vec(c.concat(), (c.len(), m, t), device)?)).collect()
    }
}

/// Frames `start..start + t` of a `[m, frames]` array, padded with `-1` past its end.
pub fn take_crop(data: &[f32], m: usize, frames: usize, start: usize, t: usize) -> Vec<f32> {
    let mut crop = vec![-1.0f32; m * t];
    let keep = frames.saturating_sub(start).min(t);
    for r in 0..m {
        crop[r * t..r * t + keep].copy_from_slice(&data[r * frames + start..r * frames + start + keep]);
    }
    crop
}

fn shuffle<T>(v: &mut [T], rng: &mut Rng) {
    for i in (1..v.len()).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
}

fn split(items: Vec<Item>, cfg: &DataConfig, seed: u64) -> Result<(Vec<Item>, Vec<Item>), Error> {
    let mut rng = Rng::new(seed ^ 0x0005_9117_c11b);
    // Groups: one per file, or one per speaker (clips without a speaker alone), in first-seen order.
    let mut groups: Vec<Vec<Item>> = Vec::new();
    match cfg.split {
        Split::File => groups.extend(items.into_iter().map(|i| vec![i])),
        Split::Speaker => {
            let mut at: BTreeMap<String, usize> = BTreeMap::new();
            for item in items {
                match item.speaker.clone() {
                    Some(s) => match at.get(&s) {
                        Some(&g) => groups[g].push(item),
                        None => {
                            at.insert(s, groups.len());
                            groups.push(vec![item]);
                        }
                    },
                    None => groups.push(vec![item]),
                }
            }
        }
    }
    let total: usize = groups.iter().map(Vec::len).sum();
    shuffle(&mut groups, &mut rng);
    let want = (cfg.val_fraction * total as f64).ceil() as usize;
    let mut val = Vec::new();
    let mut train = Vec::new();
    let n = groups.len();
    for (k, g) in groups.into_iter().enumerate() {
        // Hold out until the share is reached, leaving at least one group for training.
        if val.len() < want && !(k + 1 == n && train.is_empty()) {
            val.extend(g);
        } else {
            train.extend(g);
        }
    }
    if train.is_empty() {
        return Err(Error::Data("no clip left for training after the validation split".into()));
    }
    Ok((train, val))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields() {
        assert_eq!(split_csv("a,b,c").unwrap(), vec!["a", "b", "c"]);
        assert_eq!(split_csv("\"x,y\",\"he said \"\"hi\"\"\",").unwrap(), vec!["x,y", "he said \"hi\"", ""]);
        assert!(split_csv("\"open").is_err());
        assert!(split_csv("\"a\"b").is_err());
    }

    #[test]
    fn scaling_inverts() {
        assert_eq!(scale_db(0.0), 1.0);
        assert_eq!(scale_db(-80.0), -1.0);
        assert_eq!(scale_db(-40.0), 0.0);
        assert_eq!(unscale_db(scale_db(-23.5)), -23.5);
    }

    fn item(name: &str, speaker: Option<&str>) -> Item {
        Item { input: name.into(), speaker: speaker.map(String::from), cache: name.into(), frames: 1 }
    }

    #[test]
    fn split_by_speaker_keeps_speakers_whole() {
        let cfg = DataConfig { val_fraction: 0.3, split: Split::Speaker, ..DataConfig::default() };
        let items: Vec<Item> = (0..12).map(|i| item(&format!("{i}"), Some(["a", "b", "c", "d"][i % 4]))).collect();
        for seed in 0..20 {
            let (train, val) = split(items.clone(), &cfg, seed).unwrap();
            assert_eq!(train.len() + val.len(), 12);
            assert!(!val.is_empty() && !train.is_empty());
            for v in &val {
                assert!(train.iter().all(|t| t.speaker != v.speaker), "seed {seed}: a speaker on both sides");
            }
        }
        let cfg = DataConfig { val_fraction: 0.25, ..DataConfig::default() };
        let (train, val) = split(items, &cfg, 3).unwrap();
        assert_eq!((train.len(), val.len()), (9, 3));
        let (train, val) = split(vec![item("only", None)], &cfg, 3).unwrap();
        assert_eq!((train.len(), val.len()), (1, 0));
    }

    #[test]
    fn crops_pad_with_the_floor() {
        let data: Vec<f32> = (0..6).map(|v| v as f32).collect(); // 2 x 3
        assert_eq!(take_crop(&data, 2, 3, 1, 4), vec![1.0, 2.0, -1.0, -1.0, 4.0, 5.0, -1.0, -1.0]);
    }
}
