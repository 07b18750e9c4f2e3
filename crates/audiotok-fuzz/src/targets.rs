//! The fuzz targets: one per reader, each calling its crate's public API the way the CLI does.
//!
//! A target has seeds (committed fixtures under `tests/fixtures`, or inputs made here from them
//! and the crates' own writers, written once under the work folder) and a `run` function that
//! reads one (mutated) input and returns `Ok(summary)` or `Err(the typed error, displayed)`.

use std::collections::HashMap;
use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use audiotok_audio::LoadOptions;
use audiotok_codecs::weights;
use audiotok_mds::{Index, MdsDataset};
use audiotok_tokens::bpe::{self, BpeModel, Corpus, TrainerConfig, Variant};
use audiotok_tokens::input::{InputOptions, TokenInput};
use audiotok_tokens::store::StoreReader;
use candle_core::{Device, Tensor};

use crate::mutate::Regions;

/// What a target's run gives: a short summary, or the reader's error as displayed.
pub type Outcome = Result<String, String>;

/// One seed input: a file, or a folder of files (an MDS dataset, a token store, a tokenizer folder).
#[derive(Debug, Clone)]
pub struct Seed {
    /// Short name, used in failure file names.
    pub name: String,
    /// The file or folder.
    pub path: PathBuf,
    /// For a folder, the files (relative) that mutations may touch, with their weights.
    pub files: Vec<(PathBuf, u32)>,
}

/// A fuzz target.
pub struct Target {
    /// Its name (`audio-flac`, `mds`, ...).
    pub name: &'static str,
    /// What it reads and through which API.
    pub what: &'static str,
    /// Cases of the short budget, relative to the default (slow readers get fewer).
    pub weight: f64,
    seeds: fn(&Path) -> Result<Vec<Seed>, String>,
    /// Reads one input (the seed's file or folder, mutated).
    pub run: fn(&Path) -> Outcome,
    regions: fn(&Path, &[u8]) -> Regions,
    /// Repairs checksums after a mutation (in 3 cases of 4), so that mutations reach the decoder.
    pub fixup: Option<fn(&mut [u8])>,
}

impl Target {
    /// The seeds, made under `work` where they are not committed fixtures.
    pub fn seeds(&self, work: &Path) -> Result<Vec<Seed>, String> {
        (self.seeds)(work)
    }

    /// Where mutations of `file` (with content `data`) should concentrate.
    pub fn regions(&self, file: &Path, data: &[u8]) -> Regions {
        (self.regions)(file, data)
    }
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Target").field("name", &self.name).finish()
    }
}

/// The repository's `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

fn file_seed(rel: &str) -> Seed {
    let path = fixtures().join(rel);
    let name = rel.replace('/', "_");
    Seed { name, path, files: Vec::new() }
}

fn dir_seed(name: &str, path: PathBuf, weight: impl Fn(&Path) -> u32) -> Result<Seed, String> {
    let mut files = Vec::new();
    let mut stack = vec![path.clone()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
            let p = e.map_err(|e| format!("{}: {e}", d.display()))?.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(&path) {
                let w = weight(rel);
                files.push((rel.to_path_buf(), w));
            }
        }
    }
    files.sort();
    Ok(Seed { name: name.to_string(), path, files })
}

fn header_footer(_: &Path, data: &[u8]) -> Regions {
    Regions::header_footer(data.len())
}

/// Every target, in report order.
pub fn all() -> Vec<Target> {
    vec![
        Target {
            name: "audio-wav",
            what: "audiotok_audio::probe + load (mono 16 kHz) + pack header length, WAV",
            weight: 1.0,
            seeds: |_| {
                Ok(["audio/speech_0.1s.wav", "audio/formats/pcm_u8.wav", "audio/formats/extensible_s16_stereo.wav",
                    "audio/formats/float32.wav", "audio/formats/zero_length.wav", "audio/formats/pcm_s24.wav"]
                .map(file_seed)
                .to_vec())
            },
            run: run_audio,
            regions: header_footer,
            fixup: None,
        },
        Target {
            name: "audio-flac",
            what: "audiotok_audio::probe + load + pack header length, FLAC",
            weight: 1.0,
            seeds: |_| Ok(vec![file_seed("audio/formats/clip.flac")]),
            run: run_audio,
            regions: |_, d| Regions::with(d.len(), 0..8192.min(d.len())),
            fixup: None,
        },
        Target {
            name: "audio-mp3",
            what: "audiotok_audio::probe + load + pack header length, MP3",
            weight: 1.0,
            seeds: |_| Ok(vec![file_seed("audio/formats/clip.mp3")]),
            run: run_audio,
            regions: |_, d| Regions::with(d.len(), 0..600.min(d.len())),
            fixup: None,
        },
        Target {
            name: "audio-ogg",
            what: "audiotok_audio::probe + load + pack header length, Ogg Vorbis (and Opus, refused)",
            weight: 1.0,
            seeds: |_| Ok(vec![file_seed("audio/formats/clip.ogg"), file_seed("audio/formats/clip.opus")]),
            run: run_audio,
            regions: |_, d| Regions::with(d.len(), 0..4096.min(d.len())),
            fixup: Some(ogg_fix_crcs),
        },
        Target {
            name: "npy",
            what: "audiotok_features::npy::read + to_f32, and audiotok_tokens::input over the file",
            weight: 1.0,
            seeds: |_| {
                Ok(["snac/tiny24/0p1s_codes0.npy", "snac/tiny24/0p1s_codes2.npy", "snac/tiny24/0p1s_latent.npy"]
                    .map(file_seed)
                    .to_vec())
            },
            run: run_npy,
            regions: |_, d| Regions::with(d.len(), 0..128.min(d.len())),
            fixup: None,
        },
        Target {
            name: "token-text",
            what: "audiotok_tokens::input text token files (codebook 1024)",
            weight: 0.5,
            seeds: |work| {
                let p = work.join("seeds/tokens.txt");
                let text: String = (0..40)
                    .map(|i| (0..(i % 7 + 1) * 5).map(|j| ((i * 131 + j * 17) % 1024).to_string()).collect::<Vec<_>>().join(" ") + "\n")
                    .collect();
                write_seed(&p, text.as_bytes())?;
                Ok(vec![Seed { name: "tokens.txt".into(), path: p, files: Vec::new() }])
            },
            run: run_token_text,
            regions: header_footer,
            fixup: None,
        },
        Target {
            name: "mds",
            what: "audiotok_mds: Index::load, MdsDataset::open_with_raw (as `audiotok mds`), iter, get, verify",
            weight: 1.0,
            seeds: |_| {
                let index_heavy = |rel: &Path| if rel.ends_with("index.json") { 3 } else { 2 };
                ["all_types", "zstd", "hashed", "multi_shard", "zstd7_hashed", "partitioned"]
                    .iter()
                    .map(|n| dir_seed(&format!("mds_{n}"), fixtures().join("mds").join(n), index_heavy))
                    .chain(["cooking_512", "standard_512_bfd_assistant"].iter().map(|n| {
                        dir_seed(&format!("pack_{n}"), fixtures().join("pack").join(n), index_heavy)
                    }))
                    .collect()
            },
            run: run_mds,
            regions: header_footer,
            fixup: None,
        },
        Target {
            name: "store",
            what: "audiotok_tokens::store::StoreReader (open + every record) and input over a Parquet token store",
            weight: 1.0,
            seeds: |_| {
                Ok(vec![
                    dir_seed("pyarrow_store", fixtures().join("tokens/pyarrow_store"), |_| 1)?,
                    file_seed("tokens/variant_int64_plain.parquet"),
                    file_seed("tokens/variant_large_types_zstd.parquet"),
                    file_seed("tokens/variant_shuffled_snappy.parquet"),
                ])
            },
            run: run_store,
            regions: header_footer,
            fixup: None,
        },
        Target {
            name: "tokenizer",
            what: "audiotok_pack::AudioTokenizer::load (tokenizer.json; vocab.json + merges.txt + tokenizer_config.json) + encode/decode",
            weight: 1.0,
            seeds: tokenizer_seeds,
            run: run_tokenizer,
            regions: |_, d| Regions::with(d.len(), 0..d.len()),
            fixup: None,
        },
        Target {
            name: "bpe-model",
            what: "audiotok_tokens::bpe::BpeModel::from_json + encode/decode + stats (plain, rl, cross-scale, hierarchical)",
            weight: 1.0,
            seeds: bpe_seeds,
            run: run_bpe,
            regions: |_, d| Regions::with(d.len(), 0..d.len()),
            fixup: None,
        },
        Target {
            name: "snac-config",
            what: "audiotok_codecs::weights::read_config + snac_from_tensors (tiny24 weights), config.json mutated",
            weight: 0.5,
            seeds: |work| {
                let dir = work.join("seeds/tiny24_config");
                let text = fs::read(fixtures().join("snac/tiny24/config.json")).map_err(|e| e.to_string())?;
                write_seed(&dir.join("config.json"), &text)?;
                Ok(vec![dir_seed("tiny24_config", dir, |_| 1)?])
            },
            run: run_snac_config,
            regions: |_, d| Regions::with(d.len(), 0..d.len()),
            fixup: None,
        },
        Target {
            name: "snac-pth",
            what: "audiotok_codecs::weights::read_tensors + normalize_state_dict + snac_from_tensors, PyTorch zip checkpoints",
            weight: 0.4,
            seeds: |_| Ok(vec![file_seed("snac/tiny24/pytorch_model.bin"), file_seed("snac/tiny24/best_model.pt")]),
            run: run_weights,
            regions: |_, d| Regions::with_all(d.len(), zip_hot(d)),
            fixup: None,
        },
        Target {
            name: "safetensors",
            what: "audiotok_codecs::weights::read_tensors + normalize_state_dict + snac_from_tensors, model.safetensors",
            weight: 0.4,
            seeds: safetensors_seeds,
            run: run_weights,
            regions: |_, d| {
                let n = d.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
                Regions::with(d.len(), 0..(8 + n as usize).min(d.len()))
            },
            fixup: None,
        },
        Target {
            name: "params-safetensors",
            what: "audiotok_inspect::safetensors::read_header (the headers `audiotok params` reads), model.safetensors",
            weight: 0.5,
            seeds: |_| {
                Ok(vec![
                    file_seed("params/tiny/qwen2-tied/model.safetensors"),
                    file_seed("params/tiny/whisper/model.safetensors"),
                ])
            },
            run: run_params_safetensors,
            regions: |_, d| {
                let n = d.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
                Regions::with(d.len(), 0..(8 + n as usize).min(d.len()))
            },
            fixup: None,
        },
        Target {
            name: "params-pth",
            what: "audiotok_inspect::pickle::read_pth (the pickle walk of `audiotok params`), torch.save zips",
            weight: 0.5,
            seeds: |_| {
                Ok(vec![
                    file_seed("params/tiny/qwen2-tied-bin/pytorch_model.bin"),
                    file_seed("snac/tiny24/best_model.pt"),
                ])
            },
            run: run_params_pth,
            regions: |_, d| Regions::with_all(d.len(), zip_hot(d)),
            fixup: None,
        },
    ]
}

fn write_seed(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if fs::read(path).is_ok_and(|b| b == bytes) {
        return Ok(());
    }
    if let Some(d) = path.parent() {
        fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&tmp, bytes).map_err(|e| format!("{}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Ogg's CRC-32 (polynomial 0x04C11DB7, not reflected, initial 0).
fn ogg_crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04C1_1DB7 } else { crc << 1 };
        }
    }
    crc
}

/// Recomputes the CRC of every whole Ogg page found ("OggS", 27-byte header, segment table, body).
fn ogg_fix_crcs(d: &mut [u8]) {
    let mut i = 0;
    while i + 27 <= d.len() {
        if &d[i..i + 4] != b"OggS" {
            i += 1;
            continue;
        }
        let nsegs = usize::from(d[i + 26]);
        let Some(table) = d.get(i + 27..i + 27 + nsegs) else { return };
        let len = 27 + nsegs + table.iter().map(|&b| usize::from(b)).sum::<usize>();
        let Some(page) = d.get_mut(i..i + len) else { return };
        page[22..26].fill(0);
        let crc = ogg_crc(page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        i += len;
    }
}

/// The local headers and names of a zip file (the pickle of a checkpoint is small and early).
fn zip_hot(d: &[u8]) -> Vec<Range<usize>> {
    let mut hot = Vec::new();
    let mut i = 0;
    while let Some(k) = d.get(i..).and_then(|s| s.windows(4).position(|w| w == b"PK\x03\x04")) {
        let at = i + k;
        hot.push(at..(at + 128).min(d.len()));
        if hot.len() > 64 {
            break;
        }
        i = at + 4;
    }
    // The pickle itself.
    if let Some(k) = d.windows(8).position(|w| w == b"data.pkl") {
        hot.push(k..(k + 4096).min(d.len()));
    }
    hot
}

// ---------------------------------------------------------------------------------------------
// Runs.

fn run_audio(p: &Path) -> Outcome {
    let mut out = Vec::new();
    match audiotok_audio::probe(p) {
        Ok(info) => out.push(format!("probe {}Hz {}ch {:?} frames", info.sample_rate, info.channels, info.frames)),
        Err(e) => out.push(format!("probe: {e}")),
    }
    match audiotok_pack::audio_length(p, 16_000, audiotok_pack::LengthMode::Header) {
        Ok(l) => out.push(format!("length {}", l.samples)),
        Err(e) => out.push(format!("length: {e}")),
    }
    let a =
        audiotok_audio::load(p, &LoadOptions::mono_at(16_000)).map_err(|e| format!("{}; load: {e}", out.join("; ")))?;
    out.push(format!("load {} frames", a.frames()));
    Ok(out.join("; "))
}

fn run_npy(p: &Path) -> Outcome {
    let f = fs::File::open(p).map_err(|e| e.to_string())?;
    let a = audiotok_features::npy::read(std::io::BufReader::new(f));
    let first = match a {
        Ok(a) => format!("npy shape {:?}, {} values", a.shape, a.to_f32().len()),
        Err(e) => format!("npy: {e}"),
    };
    let input = TokenInput::open(&[p.to_path_buf()], InputOptions::default()).map_err(|e| format!("{first}; {e}"))?;
    let seqs = input.read_all().map_err(|e| format!("{first}; input: {e}"))?;
    Ok(format!("{first}; {} sequences", seqs.len()))
}

fn run_token_text(p: &Path) -> Outcome {
    let input =
        TokenInput::open(&[p.to_path_buf()], InputOptions { codebook_size: Some(1024) }).map_err(|e| e.to_string())?;
    let seqs = input.read_all().map_err(|e| e.to_string())?;
    Ok(format!("{} sequences", seqs.len()))
}

fn run_mds(dir: &Path) -> Outcome {
    // As `audiotok mds` opens a dataset (see crates/audiotok-cli/src/cmd/mds.rs).
    let index = Index::load(dir).map_err(|e| e.to_string())?;
    let custom = index.shards.iter().any(|s| {
        s.column_encodings.iter().zip(&s.column_sizes).any(|(e, size)| e == "uint32" && size.unwrap_or(0) == 0)
    });
    let raw = if custom { vec!["uint32".to_string()] } else { Vec::new() };
    let ds = MdsDataset::open_with_raw(dir, &raw).map_err(|e| e.to_string())?;
    let mut errors = Vec::new();
    let n = ds.len();
    for i in [0, n / 2, n.saturating_sub(1), n, u64::MAX] {
        if let Err(e) = ds.get(i) {
            errors.push(format!("get {i}: {e}"));
        }
    }
    let mut samples = 0u64;
    for s in ds.iter().take(100_000) {
        match s {
            Ok(_) => samples += 1,
            Err(e) => {
                errors.push(format!("iter: {e}"));
                break;
            }
        }
    }
    match ds.verify() {
        Ok(r) => Ok(format!("{samples} of {n} samples; verify {} samples; {}", r.samples, errors.join("; "))),
        Err(e) => Err(format!("verify: {e}; {}", errors.join("; "))),
    }
}

fn run_store(p: &Path) -> Outcome {
    let reader = StoreReader::open(p).map_err(|e| e.to_string())?;
    let mut records = 0usize;
    let mut first = String::new();
    for r in reader.records() {
        match r {
            Ok(_) => records += 1,
            Err(e) => {
                first = format!("records: {e}");
                break;
            }
        }
    }
    let input = TokenInput::open(&[p.to_path_buf()], InputOptions { codebook_size: Some(4096) })
        .map_err(|e| format!("{first}; input: {e}"))?;
    let seqs = input.read_all().map_err(|e| format!("{first}; input: {e}"))?;
    if first.is_empty() {
        Ok(format!("{records} records, {} sequences", seqs.len()))
    } else {
        Err(first)
    }
}

fn run_tokenizer(p: &Path) -> Outcome {
    let tok = audiotok_pack::AudioTokenizer::load(p).map_err(|e| e.to_string())?;
    let enc = tok.encode("hello world <|AUDIO|> <|audio_bos|>ok").map_err(|e| format!("encode: {e}"))?;
    let text = tok.decode(&enc.ids).map_err(|e| format!("decode: {e}"))?;
    let mut out_of_range = enc.ids.clone();
    out_of_range.push(u32::MAX);
    let _ = tok.decode(&out_of_range);
    Ok(format!("{} ids, {} chars back", enc.ids.len(), text.len()))
}

fn run_bpe(p: &Path) -> Outcome {
    let text = fs::read_to_string(p).map_err(|e| e.to_string())?;
    let model = BpeModel::from_json(&text).map_err(|e| e.to_string())?;
    let c = model.codebook_size().min(1024);
    let stream: Vec<u32> = (0..240u32).map(|i| (i * 7 / 3) % c.max(1)).collect();
    let ids = if model.variant().is_multi_scale() {
        let ratios = model.scale_ratios().to_vec();
        let frames = 20u32;
        let scales: Vec<Vec<u32>> =
            ratios.iter().map(|r| (0..frames * r.min(&64)).map(|i| (i * 5) % c.max(1)).collect()).collect();
        let ids = model.encode_scales(&scales).map_err(|e| format!("encode_scales: {e}"))?;
        model.decode_scales(&ids).map_err(|e| format!("decode_scales: {e}"))?;
        ids
    } else {
        let ids = model.encode(&stream).map_err(|e| format!("encode: {e}"))?;
        model.decode(&ids).map_err(|e| format!("decode: {e}"))?;
        ids
    };
    let all: Vec<u32> = (0..model.vocab_size().min(5000)).collect();
    let _ = if model.variant().is_multi_scale() {
        model.decode_scales(&all).map(|_| ())
    } else {
        model.decode(&all).map(|_| ())
    };
    model.stats(None).map_err(|e| format!("stats: {e}"))?;
    model.to_json().map_err(|e| format!("to_json: {e}"))?;
    Ok(format!("{} merges, {} ids", model.merges().len(), ids.len()))
}

/// The tiny24 model's normalised tensors, read once per process.
fn tiny24_tensors() -> Result<&'static HashMap<String, Tensor>, String> {
    static T: OnceLock<Result<HashMap<String, Tensor>, String>> = OnceLock::new();
    T.get_or_init(|| {
        let t = weights::read_tensors(&fixtures().join("snac/tiny24/pytorch_model.bin")).map_err(|e| e.to_string())?;
        weights::normalize_state_dict(t).map_err(|e| e.to_string())
    })
    .as_ref()
    .map_err(Clone::clone)
}

fn run_snac_config(dir: &Path) -> Outcome {
    let cfg = weights::read_config(dir).map_err(|e| e.to_string())?;
    let tensors = tiny24_tensors()?.clone();
    weights::snac_from_tensors(&cfg, tensors, &Device::Cpu, "tiny24").map_err(|e| e.to_string())?;
    Ok("model built".into())
}

fn run_params_safetensors(p: &Path) -> Outcome {
    let h = audiotok_inspect::safetensors::read_header(p).map_err(|e| e.to_string())?;
    Ok(format!("{} tensors, {} params", h.tensors.len(), h.tensors.iter().map(|t| t.numel()).sum::<u64>()))
}

fn run_params_pth(p: &Path) -> Outcome {
    let t =
        audiotok_inspect::pickle::read_pth(p, audiotok_inspect::pickle::Mode::Lenient).map_err(|e| e.to_string())?;
    Ok(format!("{} tensors, {} params", t.len(), t.iter().map(|t| t.numel()).sum::<u64>()))
}

fn run_weights(p: &Path) -> Outcome {
    let cfg = weights::read_config(&fixtures().join("snac/tiny24")).map_err(|e| e.to_string())?;
    let tensors = weights::read_tensors(p).map_err(|e| e.to_string())?;
    let tensors = weights::normalize_state_dict(tensors).map_err(|e| e.to_string())?;
    weights::snac_from_tensors(&cfg, tensors, &Device::Cpu, &p.display().to_string()).map_err(|e| e.to_string())?;
    Ok("model built".into())
}

// ---------------------------------------------------------------------------------------------
// Made seeds.

fn tokenizer_seeds(work: &Path) -> Result<Vec<Seed>, String> {
    use serde_json::{json, Map, Value};
    // A small byte-level BPE: printable ASCII and 'Ġ' (space), a few merges, the audio specials.
    let mut vocab = Map::new();
    for (i, c) in (33u8..127).map(char::from).chain(['Ġ']).enumerate() {
        vocab.insert(c.to_string(), json!(i));
    }
    let merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("Ġ", "w"), ("o", "r"), ("Ġw", "or")];
    for (a, b) in merges {
        let n = vocab.len();
        vocab.insert(format!("{a}{b}"), json!(n));
    }
    let specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>"];
    let base = vocab.len();
    let added: Vec<Value> = specials
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"id": base + i, "content": t, "single_word": false, "lstrip": false, "rstrip": false,
                   "normalized": false, "special": true})
        })
        .collect();
    let byte_level = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true});
    let tokenizer = json!({
        "version": "1.0", "truncation": null, "padding": null, "added_tokens": added,
        "normalizer": {"type": "NFC"}, "pre_tokenizer": byte_level, "post_processor": byte_level, "decoder": byte_level,
        "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": false, "byte_fallback": false, "ignore_merges": false,
                  "vocab": vocab, "merges": merges.iter().map(|(a, b)| json!([a, b])).collect::<Vec<_>>()}
    });
    let json_path = work.join("seeds/tokenizer/tokenizer.json");
    write_seed(&json_path, tokenizer.to_string().as_bytes())?;
    let slow = work.join("seeds/tokenizer_slow");
    write_seed(&slow.join("vocab.json"), Value::Object(vocab).to_string().as_bytes())?;
    let merges_txt: String = std::iter::once("#version: 0.2".to_string())
        .chain(merges.iter().map(|(a, b)| format!("{a} {b}")))
        .collect::<Vec<_>>()
        .join("\n");
    write_seed(&slow.join("merges.txt"), merges_txt.as_bytes())?;
    let decoder: Map<String, Value> = specials
        .iter()
        .enumerate()
        .map(|(i, t)| ((base + i).to_string(), json!({"content": t, "special": true})))
        .collect();
    let config = json!({"added_tokens_decoder": decoder, "pad_token": "<|endoftext|>",
                        "chat_template": "{% for m in messages %}{{ m['content'] }}{% endfor %}"});
    write_seed(&slow.join("tokenizer_config.json"), config.to_string().as_bytes())?;
    Ok(vec![
        Seed { name: "tokenizer.json".into(), path: json_path, files: Vec::new() },
        dir_seed("tokenizer_slow", slow, |_| 1)?,
    ])
}

fn bpe_seeds(work: &Path) -> Result<Vec<Seed>, String> {
    let streams: Vec<Vec<u32>> =
        (0..6u32).map(|s| (0..200u32).map(|i| ((i / 3) * (s + 1) + (i % 5)) % 64).collect()).collect();
    let scales: Vec<Vec<Vec<u32>>> = (0..4u32)
        .map(|s| (0..3u32).map(|k| (0..(30 << k)).map(|i| (i * (k + 1) + s) % 32).collect()).collect())
        .collect();
    let mut seeds = Vec::new();
    for variant in [Variant::Plain, Variant::Rl, Variant::CrossScale, Variant::Hierarchical] {
        let mut cfg = TrainerConfig::new(variant, 64);
        cfg.merges = Some(40);
        let corpus = if variant.is_multi_scale() {
            cfg.scale_ratios = vec![1, 2, 4];
            Corpus::Scales(&scales)
        } else {
            Corpus::Streams(&streams)
        };
        let model = bpe::train(&cfg, &corpus).map_err(|e| format!("training the {variant} seed: {e}"))?;
        let json = model.to_json().map_err(|e| e.to_string())?;
        let p = work.join(format!("seeds/bpe_{}.json", variant.name().replace('+', "_")));
        write_seed(&p, json.as_bytes())?;
        seeds.push(Seed { name: format!("bpe_{}", variant.name()), path: p, files: Vec::new() });
    }
    Ok(seeds)
}

fn safetensors_seeds(work: &Path) -> Result<Vec<Seed>, String> {
    let p = work.join("seeds/tiny24/model.safetensors");
    if !p.is_file() {
        let t = weights::read_tensors(&fixtures().join("snac/tiny24/pytorch_model.bin")).map_err(|e| e.to_string())?;
        if let Some(d) = p.parent() {
            fs::create_dir_all(d).map_err(|e| e.to_string())?;
        }
        let tmp = p.with_extension(format!("tmp-{}.safetensors", std::process::id()));
        candle_core::safetensors::save(&t, &tmp).map_err(|e| e.to_string())?;
        fs::rename(&tmp, &p).map_err(|e| e.to_string())?;
    }
    Ok(vec![Seed { name: "tiny24.safetensors".into(), path: p, files: Vec::new() }])
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn ogg_crc_repair_leaves_a_good_file_unchanged() {
        for f in ["clip.ogg", "clip.opus"] {
            let orig = fs::read(fixtures().join("audio/formats").join(f)).unwrap();
            let mut fixed = orig.clone();
            fixed[40] ^= 0xFF; // inside the first page's body... then repaired
            ogg_fix_crcs(&mut fixed);
            fixed[40] ^= 0xFF;
            ogg_fix_crcs(&mut fixed);
            assert_eq!(fixed, orig, "{f}");
        }
    }

    /// Every seed, unmutated, reads: Ok, except the Opus file (refused as unsupported).
    #[test]
    fn every_seed_reads() {
        let work = tempfile_dir();
        for t in all() {
            for s in t.seeds(&work).unwrap() {
                let r = (t.run)(&s.path);
                if s.name.ends_with("clip.opus") {
                    assert!(r.as_ref().is_err_and(|e| e.contains("unsupported")), "{}: {r:?}", s.name);
                } else if s.name.ends_with("zero_length.wav") {
                    assert!(r.as_ref().is_err_and(|e| e.contains("zero-length audio")), "{}: {r:?}", s.name);
                } else if s.name.ends_with("latent.npy") {
                    assert!(r.as_ref().is_err_and(|e| e.contains("must hold integers")), "{}: {r:?}", s.name);
                } else {
                    assert!(r.is_ok(), "{} {}: {r:?}", t.name, s.name);
                }
            }
        }
    }

    fn tempfile_dir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("audiotok-fuzz-seeds-{}", std::process::id()));
        fs::create_dir_all(&d).unwrap();
        d
    }
}
