//! Inference: a trained tokenizer loaded from a run or a checkpoint, whole files encoded to codes
//! and codes decoded back to mel-db; the jobs of `audiotok bsq encode` and `audiotok bsq decode`.
//!
//! # Codes of a whole file
//!
//! A file's features (`[n_mels, frames]`, scaled to `[-1, 1]`) are cut into consecutive crops of
//! the model's `crop_frames`. **Tail policy**: the last crop, shorter, is padded with `-1` (the
//! -80 dB floor) to the next multiple of `time_patch` and encoded as a shorter crop (the model
//! takes any multiple of `time_patch` up to `crop_frames`), so no frame is dropped and at most
//! `time_patch - 1` padding frames are added. [`Codes`] are time-major: token `t · F + f` is the
//! patch of frames `t·tp .. (t+1)·tp` and mel bins `f·fp .. (f+1)·fp` (`F = n_mels / fp`
//! frequency patches, `tp`/`fp` the patch sizes).
//!
//! # Token store (`audiotok bsq encode`)
//!
//! One record per file. Scale 0 holds the `L`-bit MSB-first index of every patch, shape
//! `[time_patches, F]`; when `g < L`, scales `1..=L/g` hold the group indices (`g` bits each,
//! group 0 the first, most significant, `g` bits) of the same patches, same shape. Codebook
//! sizes `2^L` and `2^g`; rate `F · 100 / tp` tokens per second (features at 100 frames/s). The
//! metadata's provenance says all of that, the checkpoint and its weights (`ema` or `live`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use audiotok_core::{path_text, Observer};
use audiotok_features::meldb::MelDb;
use audiotok_tokens::store::{ScaleTokens, StoreOptions, StoreReader, StoreWriter, TokenRecord};
use candle_core::{Device, Tensor};
use serde::Serialize;

use crate::data::{self, Reject, HOP, SAMPLE_RATE};
use crate::{bsq, BsqModel, Config, Error, Params};

/// Which weights of a checkpoint to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Weights {
    /// The EMA weights when the checkpoint has them, else the trained ones.
    Ema,
    /// The trained weights.
    Live,
}

/// A trained tokenizer.
pub struct Tokenizer {
    model: BsqModel,
    checkpoint: PathBuf,
    weights: &'static str,
}

/// The codes of one file (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Codes {
    /// `time_patches · freq_patches` MSB-first indices, time-major.
    pub indices: Vec<u32>,
    /// Time patches.
    pub time_patches: usize,
    /// Frequency patches per time patch.
    pub freq_patches: usize,
    /// Feature frames of the input (before the tail was padded).
    pub frames: usize,
}

/// The checkpoint folder of `path`: a run folder (its `latest`) or a checkpoint folder.
pub fn checkpoint_dir(path: &Path) -> Result<PathBuf, Error> {
    let latest = path.join("latest");
    if latest.is_file() {
        let name = std::fs::read_to_string(&latest).map_err(|e| Error::Io(latest.clone(), e))?;
        return Ok(path.join("checkpoints").join(name.trim()));
    }
    if path.join("weights.safetensors").is_file() {
        return Ok(path.to_path_buf());
    }
    Err(Error::Config(format!(
        "{}: neither a run folder (with `latest`) nor a checkpoint folder (with weights.safetensors)",
        path.display()
    )))
}

impl Tokenizer {
    /// Loads the checkpoint of `path` (a run folder or a checkpoint folder: `config.json`,
    /// `weights.safetensors`, optionally `ema.safetensors`).
    pub fn load(path: &Path, weights: Weights, device: &Device) -> Result<Tokenizer, Error> {
        let dir = checkpoint_dir(path)?;
        let cfg_path = dir.join("config.json");
        let text = std::fs::read_to_string(&cfg_path).map_err(|e| Error::Io(cfg_path.clone(), e))?;
        let cfg = Config::from_json(&text).map_err(|e| Error::Config(format!("{}: {e}", cfg_path.display())))?;
        let ema = dir.join("ema.safetensors");
        let (file, which) = if weights == Weights::Ema && ema.is_file() {
            (ema, "ema")
        } else {
            (dir.join("weights.safetensors"), "live")
        };
        let params = Params::load(&cfg, &file, device)?;
        Ok(Tokenizer { model: BsqModel::new(&cfg, params)?, checkpoint: dir, weights: which })
    }

    /// A tokenizer over a model already built.
    pub fn from_model(model: BsqModel) -> Tokenizer {
        Tokenizer { model, checkpoint: PathBuf::new(), weights: "live" }
    }

    /// The model.
    pub fn model(&self) -> &BsqModel {
        &self.model
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        self.model.config()
    }

    /// The checkpoint folder loaded.
    pub fn checkpoint(&self) -> &Path {
        &self.checkpoint
    }

    /// `ema` or `live`.
    pub fn weights(&self) -> &str {
        self.weights
    }

    /// The crops of a `[n_mels, frames]` array: `(start frame, frames in the crop after padding)`.
    fn crops(&self, frames: usize) -> Vec<(usize, usize)> {
        let c = self.config();
        let mut out = Vec::new();
        let mut start = 0;
        while start < frames {
            let len = (frames - start).min(c.crop_frames);
            out.push((start, len.div_ceil(c.time_patch) * c.time_patch));
            start += c.crop_frames;
        }
        out
    }

    /// Codes of scaled mel-db features `[n_mels, frames]` (C order, values in `[-1, 1]`): whole
    /// crops are encoded `batch` at a time, then the tail.
    pub fn encode_mel(&self, mel: &[f32], frames: usize, batch: usize) -> Result<Codes, Error> {
        let c = self.config();
        let m = c.n_mels;
        if mel.len() != m * frames || frames == 0 {
            return Err(Error::Input(format!("{} values are not [{m}, {frames}] features", mel.len())));
        }
        let dev = self.model.params().device();
        let crops = self.crops(frames);
        let mut indices = Vec::new();
        let mut i = 0;
        while i < crops.len() {
            let len = crops[i].1;
            let mut j = i;
            while j < crops.len() && j - i < batch.max(1) && crops[j].1 == len {
                j += 1;
            }
            let mut buf = Vec::with_capacity((j - i) * m * len);
            for &(start, _) in &crops[i..j] {
                buf.extend(data::take_crop(mel, m, frames, start, len));
            }
            let x = Tensor::from_vec(buf, (j - i, m, len), dev)?;
            indices.extend(self.model.encode_indices(&x)?);
            i = j;
        }
        let freq_patches = c.freq_patches();
        Ok(Codes { time_patches: indices.len() / freq_patches, freq_patches, indices, frames })
    }

    /// Codes of a mono 16 kHz signal (the mel-db features computed as for training).
    pub fn encode_samples(&self, samples: &[f32], batch: usize) -> Result<Codes, Error> {
        let mut mel = MelDb::new(data::meldb_config(self.config().n_mels));
        let (frames, feats) = data::features(&mut mel, samples);
        self.encode_mel(&feats, frames, batch)
    }

    /// Codes of a mono clip at `rate` Hz, as [`encode`] encodes a file: resampled to 16 kHz with
    /// libsoxr HQ (what decoding a file at 16 kHz does), rejected when it is empty, not finite or
    /// silent (the training data's `silence_dbfs` default), then [`Tokenizer::encode_samples`].
    /// Returns the duration in seconds (of the 16 kHz signal) and the codes; `Err(Clip)` is the
    /// reason, naming the clip `name`.
    pub fn encode_audio(&self, name: &str, samples: &[f32], rate: u32, batch: usize) -> Result<(f64, Codes), Error> {
        let resampled;
        let x = if rate == SAMPLE_RATE {
            samples
        } else {
            if let Some(i) = samples.iter().position(|v| !v.is_finite()) {
                return Err(Error::Clip(format!("{name}: sample {i} is not finite")));
            }
            resampled = audiotok_audio::resample(samples, rate, SAMPLE_RATE)
                .map_err(|e| Error::Clip(format!("{name}: {}", audiotok_core::error_text(&e))))?;
            &resampled
        };
        data::check_clip(name, x, data::DataConfig::default().silence_dbfs).map_err(Error::Clip)?;
        let codes = self.encode_samples(x, batch)?;
        Ok((x.len() as f64 / f64::from(SAMPLE_RATE), codes))
    }

    /// The token store layout of this tokenizer's codes (see the module documentation): scale 0
    /// and, with `group_scales` when `g < L`, the group scales; codebook sizes, rates and the
    /// provenance (tokenizer, checkpoint, weights, config, layout, tail policy).
    pub fn store_options(&self, group_scales: bool, batch_size: usize) -> Result<StoreOptions, Error> {
        let cfg = self.config();
        if cfg.bits > 31 {
            return Err(Error::Config(format!("bits {}: the token store holds codes below 2^31", cfg.bits)));
        }
        let groups = self.group_scales(group_scales);
        let mut so = StoreOptions::new(1 + groups);
        so.batch_size = batch_size;
        let mut sizes = vec![1u32 << cfg.bits];
        sizes.extend(std::iter::repeat_n(1u32 << cfg.group_size, groups));
        so.codebook_sizes = Some(sizes);
        so.rates_hz = Some(vec![self.rate_hz(); 1 + groups]);
        let mut prov = BTreeMap::new();
        prov.insert("tokenizer".into(), "audiotok-bsq".into());
        prov.insert("checkpoint".into(), path_text(self.checkpoint()));
        prov.insert("weights".into(), self.weights().into());
        prov.insert("config".into(), serde_json::to_string(cfg).map_err(|e| Error::Config(e.to_string()))?);
        prov.insert("layout".into(), layout(cfg, group_scales));
        prov.insert(
            "tail".into(),
            format!(
                "consecutive crops of {} frames; the last padded with the -80 dB floor to a multiple of {} frames",
                cfg.crop_frames, cfg.time_patch
            ),
        );
        so.provenance = prov;
        Ok(so)
    }

    /// Tokens (of scale 0) per second of audio.
    pub fn rate_hz(&self) -> f64 {
        let cfg = self.config();
        cfg.freq_patches() as f64 * f64::from(SAMPLE_RATE) / HOP as f64 / cfg.time_patch as f64
    }

    /// The number of group scales a store holds (0 unless `group_scales` and `g < L`).
    pub fn group_scales(&self, group_scales: bool) -> usize {
        let cfg = self.config();
        if group_scales && cfg.group_size < cfg.bits {
            cfg.groups()
        } else {
            0
        }
    }

    /// The store scales of `codes`: scale 0, then (with `group_scales`) the group indices, each
    /// of shape `[time_patches, F]`.
    pub fn scales(&self, codes: &Codes, group_scales: bool) -> Vec<ScaleTokens> {
        let cfg = self.config();
        let groups = self.group_scales(group_scales);
        let shape = vec![codes.time_patches as u64, codes.freq_patches as u64];
        let mut scales = vec![ScaleTokens { shape: shape.clone(), tokens: codes.indices.clone() }];
        if groups > 0 {
            let signs = bsq::codes(&codes.indices, cfg.bits);
            let g = bsq::group_indices(&signs, cfg.group_size);
            for j in 0..groups {
                let t: Vec<u32> = g.iter().skip(j).step_by(groups).copied().collect();
                scales.push(ScaleTokens { shape: shape.clone(), tokens: t });
            }
        }
        scales
    }

    /// The scaled mel spectrogram (`[n_mels, time_patches · tp]`, values in `[-1, 1]`) of codes
    /// (`time_patches · F` indices, time-major), decoded crop by crop.
    pub fn decode(&self, indices: &[u32]) -> Result<(usize, Vec<f32>), Error> {
        let c = self.config();
        let nf = c.freq_patches();
        if indices.is_empty() || indices.len() % nf != 0 {
            return Err(Error::Input(format!("{} codes are not whole time patches of {nf}", indices.len())));
        }
        if c.bits < 32 && indices.iter().any(|&i| i >> c.bits != 0) {
            return Err(Error::Input(format!("a code is not below 2^{}", c.bits)));
        }
        let nt = indices.len() / nf;
        let per = c.max_time_patches();
        let (m, tp) = (c.n_mels, c.time_patch);
        let frames = nt * tp;
        let mut out = vec![0f32; m * frames];
        let mut t0 = 0;
        while t0 < nt {
            let n = (nt - t0).min(per);
            let y = self.model.decode_indices(&indices[t0 * nf..(t0 + n) * nf], 1)?;
            let y = y.flatten_all()?.to_vec1::<f32>()?;
            let w = n * tp;
            for r in 0..m {
                out[r * frames + t0 * tp..r * frames + t0 * tp + w].copy_from_slice(&y[r * w..(r + 1) * w]);
            }
            t0 += n;
        }
        Ok((frames, out))
    }
}

/// What [`encode`] does.
#[derive(Debug, Clone)]
pub struct EncodeOptions {
    /// A run folder or a checkpoint folder.
    pub model: PathBuf,
    /// Audio files or folders.
    pub inputs: Vec<PathBuf>,
    /// The token store folder.
    pub output: PathBuf,
    /// EMA or trained weights.
    pub weights: Weights,
    /// Records per Parquet batch.
    pub batch_size: usize,
    /// Crops per model call.
    pub crops_per_call: usize,
    /// Also the per-group scales (when `g < L`).
    pub group_scales: bool,
}

/// What [`encode`] did.
#[derive(Debug, Clone, Serialize)]
pub struct EncodeSummary {
    /// The store.
    pub output: PathBuf,
    /// The checkpoint used.
    pub checkpoint: PathBuf,
    /// Files encoded.
    pub files: usize,
    /// Inputs rejected, with reasons.
    pub rejects: Vec<Reject>,
    /// Files under folders that are not audio.
    pub ignored: usize,
    /// Patches (tokens of scale 0).
    pub tokens: u64,
    /// Seconds of audio encoded.
    pub audio_secs: f64,
    /// Bits per token `L`.
    pub bits: usize,
    /// Codebook size `2^L`.
    pub codebook_size: u64,
    /// Tokens per second of audio.
    pub rate_hz: f64,
    /// Bits per second (`rate_hz · L`).
    pub bitrate: f64,
}

/// The store layout of `cfg` in words (the provenance's `layout`).
pub fn layout(cfg: &Config, group_scales: bool) -> String {
    let mut s = format!(
        "scale 0: {}-bit MSB-first index per patch, shape [time_patches, {}], time-major: token t*{}+f covers \
         frames t*{tp}..(t+1)*{tp} (hop {HOP} at {SAMPLE_RATE} Hz) and mel bins f*{fp}..(f+1)*{fp}",
        cfg.bits,
        cfg.freq_patches(),
        cfg.freq_patches(),
        tp = cfg.time_patch,
        fp = cfg.freq_patch
    );
    if group_scales && cfg.group_size < cfg.bits {
        s.push_str(&format!(
            "; scales 1..{}: the {}-bit group indices of the same patches (group 0 = the most significant bits)",
            cfg.groups(),
            cfg.group_size
        ));
    }
    s
}

/// Encodes audio files into a token store (see the module documentation). Undecodable or silent
/// files are rejects and the job goes on. Progress: the phase `encode`, in files.
pub fn encode(opts: &EncodeOptions, device: &Device, observer: &dyn Observer) -> Result<EncodeSummary, Error> {
    let tok = Tokenizer::load(&opts.model, opts.weights, device)?;
    let cfg = tok.config().clone();
    let so = tok.store_options(opts.group_scales, opts.batch_size)?;
    let found = audiotok_core::collect(&opts.inputs).map_err(|e| Error::Data(e.to_string()))?;
    let rate = tok.rate_hz();
    let mut w = StoreWriter::create(&opts.output, so).map_err(|e| Error::Data(e.to_string()))?;
    let mut mel = MelDb::new(data::meldb_config(cfg.n_mels));
    let silence = data::DataConfig::default().silence_dbfs;
    let mut rejects = Vec::new();
    let (mut files, mut tokens, mut secs) = (0usize, 0u64, 0f64);
    let phase = audiotok_core::observer::Phase::begin(observer, "encode", found.files.len() as u64, "files");
    for input in &found.files {
        let got = input.readable().and_then(|()| data::clip_features(&mut mel, &input.path, silence));
        match got {
            Err(reason) => rejects.push(Reject { input: path_text(&input.path), reason }),
            Ok((samples, frames, feats)) => {
                let codes = tok.encode_mel(&feats, frames, opts.crops_per_call)?;
                let scales = tok.scales(&codes, opts.group_scales);
                let duration = samples as f64 / f64::from(SAMPLE_RATE);
                w.push(TokenRecord { file_path: path_text(&input.path), duration, scales })
                    .map_err(|e| Error::Data(e.to_string()))?;
                files += 1;
                tokens += codes.indices.len() as u64;
                secs += duration;
            }
        }
        phase.advance(1);
    }
    drop(phase);
    w.finish().map_err(|e| Error::Data(e.to_string()))?;
    Ok(EncodeSummary {
        output: opts.output.clone(),
        checkpoint: tok.checkpoint().to_path_buf(),
        files,
        rejects,
        ignored: found.ignored,
        tokens,
        audio_secs: secs,
        bits: cfg.bits,
        codebook_size: 1u64 << cfg.bits,
        rate_hz: rate,
        bitrate: rate * cfg.bits as f64,
    })
}

/// What [`decode`] does.
#[derive(Debug, Clone)]
pub struct DecodeOptions {
    /// A run folder or a checkpoint folder (the one that encoded the store).
    pub model: PathBuf,
    /// The token store.
    pub input: PathBuf,
    /// The folder receiving one `.npy` (mel-db in dB, `[n_mels, frames]`) per record.
    pub out: PathBuf,
    /// EMA or trained weights.
    pub weights: Weights,
    /// Also a 16 kHz `.wav` per record by Griffin-Lim with this many iterations
    /// ([`crate::griffinlim`]; a listening aid, not a vocoder).
    pub wav_iters: Option<usize>,
}

/// One decoded record.
#[derive(Debug, Clone, Serialize)]
pub struct Decoded {
    /// The record's `file_path`.
    pub file_path: String,
    /// The `.npy` written, relative to the output folder.
    pub output: String,
    /// Frames written.
    pub frames: usize,
    /// The `.wav` written, if asked for.
    pub wav: Option<String>,
}

/// A file name for the record `file_path`: its stem (`.npy`), `_K` added on a clash.
fn output_name(file_path: &str, used: &mut std::collections::HashSet<String>) -> String {
    let stem = Path::new(file_path).file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let stem: String = stem.chars().map(|c| if c == '/' || c == '\\' || c.is_control() { '_' } else { c }).collect();
    let stem = if stem.is_empty() || stem.starts_with('.') { format!("clip{stem}") } else { stem };
    let mut name = format!("{stem}.npy");
    let mut k = 1;
    while !used.insert(name.clone()) {
        name = format!("{stem}_{k}.npy");
        k += 1;
    }
    name
}

/// Frames of the features of `duration` seconds at 16 kHz (`1 + samples / hop`).
pub fn frames_of(duration: f64) -> usize {
    1 + (duration * f64::from(SAMPLE_RATE)).round() as usize / HOP
}

/// Decodes scale 0 of every record of a token store to mel-db `.npy` files (values in dB,
/// `[-80, 0]`; the tail's padding frames cut off) and, with `wav_iters`, to `.wav` files by
/// Griffin-Lim. Progress: the phase `decode`, in records.
pub fn decode(opts: &DecodeOptions, device: &Device, observer: &dyn Observer) -> Result<Vec<Decoded>, Error> {
    let tok = Tokenizer::load(&opts.model, opts.weights, device)?;
    let reader = StoreReader::open(&opts.input).map_err(|e| Error::Data(e.to_string()))?;
    std::fs::create_dir_all(&opts.out).map_err(|e| Error::Io(opts.out.clone(), e))?;
    let m = tok.config().n_mels;
    let mut used = std::collections::HashSet::new();
    let gl = opts.wav_iters.map(|_| crate::griffinlim::GriffinLim::new(m));
    let mut out = Vec::new();
    let phase = audiotok_core::observer::Phase::begin(observer, "decode", 0, "records");
    for rec in reader.records() {
        let rec = rec.map_err(|e| Error::Data(e.to_string()))?;
        let scale = rec.scales.first().ok_or_else(|| Error::Data(format!("{}: no scale", rec.file_path)))?;
        let (frames, mel) = tok.decode(&scale.tokens).map_err(|e| Error::Data(format!("{}: {e}", rec.file_path)))?;
        let keep = frames_of(rec.duration).min(frames);
        let mut db = vec![0f32; m * keep];
        for r in 0..m {
            for t in 0..keep {
                db[r * keep + t] = data::unscale_db(mel[r * frames + t]);
            }
        }
        let name = output_name(&rec.file_path, &mut used);
        let path = opts.out.join(&name);
        audiotok_core::atomic::write_with(&path, |w| {
            audiotok_features::npy::write_f32(w, &[m, keep], &db).map_err(|e| Error::Data(e.to_string()))
        })?;
        let wav = match (&gl, opts.wav_iters) {
            (Some(gl), Some(iters)) => {
                let samples = gl.mel_to_audio(&db, keep, iters);
                let wname = format!("{}.wav", name.trim_end_matches(".npy"));
                let wpath = opts.out.join(&wname);
                audiotok_audio::write_wav_f32(&wpath, &samples, SAMPLE_RATE, 1)
                    .map_err(|e| Error::Data(format!("{}: {e}", wpath.display())))?;
                Some(wname)
            }
            _ => None,
        };
        out.push(Decoded { file_path: rec.file_path.clone(), output: name, frames: keep, wav });
        phase.advance(1);
    }
    Ok(out)
}
