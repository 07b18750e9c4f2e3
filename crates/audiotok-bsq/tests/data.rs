//! The data pipeline: decoded clips to mel-db crops, deterministic under the seed; bad input.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use audiotok_bsq::data::{self, gather, DataConfig, Dataset, Split};
use audiotok_bsq::{Config, Rng};
use audiotok_core::Silent;
use candle_core::Device;

fn model() -> Config {
    Config {
        n_mels: 16,
        crop_frames: 32,
        freq_patch: 8,
        time_patch: 4,
        width: 16,
        encoder_depth: 1,
        decoder_depth: 1,
        heads: 2,
        head_dim: 16,
        bits: 6,
        group_size: 3,
        conv_kernel: 3,
        ..Config::default()
    }
}

/// A chirp-like tone of `secs` seconds at `rate`, different per `k`.
fn tone(path: &Path, k: usize, secs: f64, rate: u32) {
    let n = (secs * f64::from(rate)) as usize;
    let f0 = 200.0 + 150.0 * k as f64;
    let s: Vec<f32> = (0..n)
        .map(|i| {
            let t = i as f64 / f64::from(rate);
            (0.3 * (std::f64::consts::TAU * (f0 + 300.0 * t) * t).sin() * (1.0 + (7.0 * t).sin()) * 0.5) as f32
        })
        .collect();
    audiotok_audio::write_wav_f32(path, &s, rate, 1).unwrap();
}

fn corpus(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for k in 0..n {
        // Some at 22.05 kHz, resampled to 16 kHz by the pipeline.
        let rate = if k % 2 == 0 { 16_000 } else { 22_050 };
        tone(&dir.join(format!("clip{k}.wav")), k, 0.4 + 0.1 * k as f64, rate);
    }
}

fn dcfg() -> DataConfig {
    DataConfig {
        batch_size: 3,
        val_fraction: 0.25,
        time_masks: 2,
        time_mask_width: 6,
        freq_masks: 1,
        freq_mask_width: 4,
        jobs: 2,
        ..DataConfig::default()
    }
}

#[test]
fn features_match_the_project_mel_db_and_batches_follow_the_seed() {
    let tmp = tempfile::tempdir().unwrap();
    let audio = tmp.path().join("audio");
    corpus(&audio, 8);
    let cfg = dcfg();
    let ds = Dataset::prepare(&[&audio], &cfg, &model(), 7, &tmp.path().join("cache"), &Silent).unwrap();
    assert!(ds.rejects().is_empty(), "{:?}", ds.rejects());
    assert_eq!((ds.train_items().len(), ds.val_items().len()), (6, 2));
    // A cached array is the project's mel-db of the 16 kHz signal, scaled to [-1, 1].
    let item = ds.train_items().iter().find(|i| i.input.ends_with("clip0.wav")).unwrap();
    let samples = audiotok_audio::load(Path::new(&item.input), &audiotok_audio::LoadOptions::mono_at(16_000)).unwrap();
    let mut mel = audiotok_features::meldb::MelDb::new(data::meldb_config(16));
    let f = mel.compute(&samples.samples);
    let (frames, cached) = data::read_features(&item.cache, 16).unwrap();
    assert_eq!(vec![16, frames], f.shape);
    assert_eq!(frames, 1 + 6400 / 160);
    let want: Vec<f32> = f.data.iter().map(|&v| (v / 40.0 + 1.0).clamp(-1.0, 1.0)).collect();
    assert_eq!(cached, want);
    assert!(cached.iter().all(|v| (-1.0..=1.0).contains(v)));
    assert_eq!(cached.iter().cloned().fold(f32::MIN, f32::max), 1.0);

    let dev = Device::Cpu;
    let draw = |seed: u64| -> Vec<Vec<f32>> {
        let mut rng = Rng::new(seed);
        (0..4).map(|_| ds.train_batch(&mut rng, &dev).unwrap().flatten_all().unwrap().to_vec1().unwrap()).collect()
    };
    let a = draw(1);
    assert_eq!(a, draw(1));
    assert_ne!(a, draw(2));
    assert_eq!(a[0].len(), 3 * 16 * 32);
    // Masked cells hold the floor value; every batch has some.
    assert!(a.iter().all(|b| b.iter().filter(|&&v| v == -1.0).count() > 0));

    // A second preparation reuses the cache and splits the same way; another seed splits otherwise.
    let again = Dataset::prepare(&[&audio], &cfg, &model(), 7, &tmp.path().join("cache"), &Silent).unwrap();
    assert_eq!(again.train_items(), ds.train_items());
    assert_eq!(again.val_items(), ds.val_items());
    let other = (8..40)
        .map(|s| Dataset::prepare(&[&audio], &cfg, &model(), s, &tmp.path().join("cache"), &Silent).unwrap())
        .any(|d| d.val_items() != ds.val_items());
    assert!(other, "the split ignores the seed");

    // Validation crops: consecutive from each clip's start, the same every time, unmasked.
    let v1: Vec<Vec<f32>> =
        ds.val_batches(&dev).unwrap().iter().map(|t| t.flatten_all().unwrap().to_vec1().unwrap()).collect();
    let v2: Vec<Vec<f32>> =
        ds.val_batches(&dev).unwrap().iter().map(|t| t.flatten_all().unwrap().to_vec1().unwrap()).collect();
    assert_eq!(v1, v2);
    let expected: usize = ds.val_items().iter().map(|i| i.frames.div_ceil(32)).sum();
    assert_eq!(v1.iter().map(|b| b.len() / (16 * 32)).sum::<usize>(), expected);
    let first = &ds.val_items()[0];
    let (fr, d) = data::read_features(&first.cache, 16).unwrap();
    assert_eq!(&v1[0][..16 * 32], data::take_crop(&d, 16, fr, 0, 32).as_slice());
}

#[test]
fn manifests_split_by_speaker_and_reject_bad_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let audio = tmp.path().join("a");
    corpus(&audio, 6);
    let mut jsonl = String::new();
    for k in 0..4 {
        jsonl.push_str(&format!("{{\"path\": \"a/clip{k}.wav\", \"speaker\": \"s{}\"}}\n", k % 2));
    }
    jsonl.push_str("{\"text\": \"no path here\"}\nnot json\n");
    std::fs::write(tmp.path().join("m.jsonl"), jsonl).unwrap();
    std::fs::write(tmp.path().join("m.csv"), "speaker,path\ns2,a/clip4.wav\n\"s2\",\"a/clip5.wav\"\ns3\n").unwrap();
    let (clips, rejects) = gather(&[tmp.path().join("m.jsonl"), tmp.path().join("m.csv")]).unwrap();
    assert_eq!(clips.len(), 6);
    assert_eq!(clips[5].speaker.as_deref(), Some("s2"));
    assert!(clips[0].path.ends_with("a/clip0.wav"));
    let reasons: Vec<&str> = rejects.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].ends_with("m.jsonl:5: no path (path, audio or file field)"), "{}", reasons[0]);
    assert!(reasons[1].contains("m.jsonl:6: not JSON"), "{}", reasons[1]);
    assert!(reasons[2].ends_with("m.csv:4: 1 fields, the header has 2"), "{}", reasons[2]);

    let cfg = DataConfig { split: Split::Speaker, val_fraction: 0.3, ..dcfg() };
    for seed in 0..6 {
        let ds = Dataset::prepare(
            &[tmp.path().join("m.jsonl"), tmp.path().join("m.csv")],
            &cfg,
            &model(),
            seed,
            &tmp.path().join("cache"),
            &Silent,
        )
        .unwrap();
        assert_eq!(ds.rejects().len(), 3);
        assert!(!ds.val_items().is_empty());
        for v in ds.val_items() {
            assert!(ds.train_items().iter().all(|t| t.speaker != v.speaker));
        }
    }
}

#[test]
fn silent_or_undecodable_input() {
    let tmp = tempfile::tempdir().unwrap();
    let quiet = tmp.path().join("quiet");
    std::fs::create_dir_all(&quiet).unwrap();
    audiotok_audio::write_wav_f32(&quiet.join("zero.wav"), &vec![0.0; 8000], 16_000, 1).unwrap();
    audiotok_audio::write_wav_f32(&quiet.join("faint.wav"), &vec![1e-5; 8000], 16_000, 1).unwrap();
    let e = Dataset::prepare(&[&quiet], &dcfg(), &model(), 0, &tmp.path().join("c"), &Silent).unwrap_err().to_string();
    assert!(e.starts_with("no usable audio: 2 inputs, all rejected"), "{e}");
    assert!(e.contains("zero.wav: silent"), "{e}");

    let empty = tmp.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = Dataset::prepare(&[&empty], &dcfg(), &model(), 0, &tmp.path().join("c"), &Silent).unwrap_err().to_string();
    assert!(e.contains("no audio files found in"), "{e}");

    // One undecodable file among good ones: recorded, the rest used.
    let mixed = tmp.path().join("mixed");
    corpus(&mixed, 3);
    std::fs::write(mixed.join("broken.wav"), b"RIFF\x10\x00\x00\x00WAVEjunk").unwrap();
    let ds = Dataset::prepare(&[&mixed], &dcfg(), &model(), 0, &tmp.path().join("c"), &Silent).unwrap();
    assert_eq!(ds.rejects().len(), 1);
    assert!(ds.rejects()[0].reason.contains("broken.wav"), "{:?}", ds.rejects());
    assert_eq!(ds.train_items().len() + ds.val_items().len(), 3);

    let bad = DataConfig { crop_frames: 30, ..dcfg() };
    let e = Dataset::prepare(&[&mixed], &bad, &model(), 0, &tmp.path().join("c"), &Silent).unwrap_err().to_string();
    assert!(e.contains("data.crop_frames 30 is not a multiple of time_patch 4"), "{e}");
}
