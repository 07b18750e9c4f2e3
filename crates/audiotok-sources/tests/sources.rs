//! Every source kind against the same clips decoded from disk, on fixtures written by the real
//! packages (tools/gen_source_fixtures.py: datasets, webdataset, lhotse).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use audiotok_audio::{load, load_input, probe_input, LoadOptions};
use audiotok_core::{Clip, Input, Origin};
use audiotok_sources::{collect, SourceFormat, SourceOptions};
use serde_json::Value;

const RAW: LoadOptions = LoadOptions { target_rate: None, mono: false };

fn fx() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/sources")
}

fn expected() -> Value {
    serde_json::from_str(&std::fs::read_to_string(fx().join("expected.json")).unwrap()).unwrap()
}

fn clips() -> Vec<PathBuf> {
    expected()["clips"].as_array().unwrap().iter().map(|c| fx().join(c.as_str().unwrap())).collect()
}

fn list(arg: &Path) -> Vec<Input> {
    collect(&[arg], &SourceOptions::default()).unwrap().files
}

fn meta(i: &Input) -> Value {
    serde_json::from_str(i.meta.as_deref().unwrap()).unwrap()
}

/// Each input decodes (raw and as 16 kHz mono) to exactly what its clip gives from disk.
fn same_as_files(inputs: &[Input], files: &[PathBuf]) {
    assert_eq!(inputs.len(), files.len());
    for (i, f) in inputs.iter().zip(files) {
        for opts in [RAW, LoadOptions::mono_at(16_000)] {
            let got = load_input(i, &opts).unwrap_or_else(|e| panic!("{}: {e}", i.path.display()));
            let want = load(f, &opts).unwrap();
            assert_eq!(got.samples, want.samples, "{} vs {}", i.path.display(), f.display());
            assert_eq!((got.sample_rate, got.channels), (want.sample_rate, want.channels));
        }
        let (p, q) = (probe_input(i).unwrap(), audiotok_audio::probe(f).unwrap());
        assert_eq!((p.frames, p.sample_rate, p.channels, p.codec), (q.frames, q.sample_rate, q.channels, q.codec));
    }
}

#[test]
fn parquet_shards_decode_as_the_files_with_ids_names_and_columns() {
    let shard = fx().join("parquet/train-00000-of-00002.parquet");
    let got = list(&shard);
    let ids: Vec<String> = got.iter().map(|i| i.path.display().to_string()).collect();
    assert_eq!(ids, (0..3).map(|r| format!("{}#{r}", shard.display())).collect::<Vec<_>>());
    let rels: Vec<String> = got.iter().map(|i| i.rel.display().to_string()).collect();
    assert_eq!(rels, ["train-00000-of-00002/0.flac", "train-00000-of-00002/1.wav", "train-00000-of-00002/2.mp3"]);
    let e = expected();
    for (r, i) in got.iter().enumerate() {
        let m = meta(i);
        assert_eq!(m["text"], e["texts"][r]);
        assert_eq!(m["speaker"], e["speakers"][r]);
        // datasets keeps the file name of a local file it embeds.
        assert_eq!(m["audio_path"].as_str(), e["clips"][r].as_str().unwrap().strip_prefix("clips/"));
        assert!(matches!(i.origin, Origin::Bytes(_)));
    }
    same_as_files(&got, &clips()[..3]);
    // The folder of shards: every row, in shard order.
    same_as_files(&list(&fx().join("parquet")), &clips());
}

#[test]
fn rows_decode_in_any_order_and_across_threads() {
    let mut got = list(&fx().join("parquet"));
    let mut files = clips();
    got.reverse();
    files.reverse();
    same_as_files(&got, &files);
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (g, f) = (got.clone(), files.clone());
            std::thread::spawn(move || same_as_files(&g, &f))
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn the_hub_cache_layout_and_save_to_disk_folders_are_found() {
    let cache = fx().join("hf_cache");
    let got = list(&cache);
    assert!(got[0].path.to_string_lossy().contains("snapshots/"), "{}", got[0].path.display());
    same_as_files(&got, &clips()[2..]);
    let saved = list(&fx().join("saved"));
    assert_eq!(saved[3].path, fx().join("saved/data-00000-of-00001.arrow#3"));
    assert_eq!(meta(&saved[1])["text"], expected()["texts"][1]);
    same_as_files(&saved, &clips());
    let mut back = saved.clone();
    back.reverse();
    let mut files = clips();
    files.reverse();
    same_as_files(&back, &files);
}

#[test]
fn bad_rows_and_shards_fail_alone_naming_the_row() {
    let bad = fx().join("bad.parquet");
    let got = list(&bad);
    assert_eq!(got.len(), 3);
    same_as_files(&got[..1], &clips()[..1]);
    let e1 = load_input(&got[1], &RAW).unwrap_err().to_string();
    assert!(e1.starts_with(&format!("{}#1: unsupported audio", bad.display())), "{e1}");
    let e2 = load_input(&got[2], &RAW).unwrap_err().to_string();
    assert_eq!(e2, format!("{}#2: the audio has neither bytes nor a path", bad.display()));
    let none = list(&fx().join("noaudio.parquet"));
    assert_eq!(none.len(), 1);
    let reason = none[0].unreadable.clone().unwrap();
    assert!(reason.contains("noaudio.parquet: no audio column") && reason.contains("columns: text"), "{reason}");
    assert_eq!(load_input(&none[0], &RAW).unwrap_err().to_string(), reason);
    // A named column that is not there.
    let opts = SourceOptions { audio_column: Some("speech".into()), ..Default::default() };
    let r = collect(&[fx().join("parquet/train-00001-of-00002.parquet")], &opts).unwrap().files;
    assert!(r[0].unreadable.as_ref().unwrap().contains("no column \"speech\" (columns: audio, text, speaker)"));
}

#[test]
fn webdataset_tars_plain_and_gzipped_group_members_by_key() {
    let e = expected();
    for name in ["wds/shard-000000.tar", "wds/shard-000000.tar.gz"] {
        let tar = fx().join(name);
        let got = list(&tar);
        assert_eq!(got.len(), 4, "{name}");
        for (k, i) in got.iter().enumerate() {
            let key = e["wds_keys"][k][0].as_str().unwrap();
            assert_eq!(i.path, PathBuf::from(format!("{}#{key}", tar.display())));
            assert_eq!(i.rel, PathBuf::from(format!("shard-000000/{key}.{}", e["wds_keys"][k][1].as_str().unwrap())));
            let m = meta(i);
            assert_eq!(m["txt"], e["texts"][k]);
            assert_eq!(m["json"]["text"], e["texts"][k]);
            assert_eq!(m["json"]["n"], k);
            assert_eq!(m["__key__"], key);
        }
        same_as_files(&got, &clips());
        let mut back = got.clone();
        back.reverse();
        let mut files = clips();
        files.reverse();
        same_as_files(&back, &files);
    }
    let cut = fx().join("wds/truncated.tar");
    let got = list(&cut);
    assert_eq!(got.len(), 2);
    same_as_files(&got[..1], &clips()[..1]);
    let reason = got[1].unreadable.clone().unwrap();
    assert!(
        reason.starts_with(&format!("{}#sample0003: truncated: member sample0003.flac holds", cut.display())),
        "{reason}"
    );
}

#[test]
fn lhotse_cuts_give_what_lhotse_loads_with_the_supervision_text() {
    let e = expected();
    let raw = std::fs::read(fx().join("lhotse/lhotse_loaded.i16")).unwrap();
    let loaded: Vec<f32> = raw.chunks(2).map(|b| f32::from(i16::from_le_bytes([b[0], b[1]])) / 32768.0).collect();
    let got = list(&fx().join("lhotse/cuts.jsonl.gz"));
    assert_eq!(got.len(), 3);
    for (i, cut) in got.iter().zip(e["cuts"].as_array().unwrap()) {
        let id = cut["id"].as_str().unwrap();
        assert_eq!(i.path, PathBuf::from(id));
        assert_eq!(meta(i)["text"], cut["text"]);
        let at = &e["lhotse_audio"][id];
        let (off, n) = (at["offset"].as_u64().unwrap() as usize, at["samples"].as_u64().unwrap() as usize);
        let a = load_input(i, &RAW).unwrap();
        assert_eq!(a.channels, 1, "{id}");
        assert_eq!(a.samples, loaded[off..off + n], "{id}");
        assert_eq!(probe_input(i).unwrap().frames, Some(n as u64));
    }
    // The recordings manifest: whole recordings.
    let recs = list(&fx().join("lhotse/recordings.jsonl.gz"));
    assert_eq!(recs[0].path, PathBuf::from("long"));
    same_as_files(&recs, &[fx().join("clips/long.flac"), fx().join("clips/c1.wav")]);
}

#[test]
fn csv_tsv_and_jsonl_manifests_cut_segments_and_report_missing_files() {
    let long = load(&fx().join("clips/long.flac"), &RAW).unwrap().samples;
    for name in ["manifest.csv", "manifest.tsv", "manifest.jsonl"] {
        let m = fx().join(name);
        let got = list(&m);
        assert_eq!(got.len(), 5, "{name}");
        assert_eq!(got[1].path, PathBuf::from(format!("{}#1", m.display())));
        assert_eq!(got[1].clip, Some(Clip { start_s: 0.5, duration_s: Some(1.25), channel: None }));
        same_as_files(&got[..1], &clips()[..1]);
        same_as_files(&got[4..], &clips()[2..3]);
        assert_eq!(load_input(&got[1], &RAW).unwrap().samples, long[8000..28000], "{name}");
        assert_eq!(load_input(&got[2], &RAW).unwrap().samples, long[28000..], "{name}");
        let missing = got[3].unreadable.clone().unwrap();
        assert!(missing.starts_with(&format!("{}#3: {}", m.display(), fx().join("clips/missing.flac").display())));
        assert_eq!(meta(&got[0])["text"], "hello world");
    }
    // A named path column that is not there fails every line, naming it.
    let opts = SourceOptions { path_column: Some("wav_path".into()), ..Default::default() };
    let got = collect(&[fx().join("manifest.csv")], &opts).unwrap().files;
    assert!(got[0]
        .unreadable
        .as_ref()
        .unwrap()
        .contains("no path column (wav_path) among duration, offset, path, text"));
    // Forcing a format: a CSV read as files is one (undecodable) file.
    let opts = SourceOptions { format: Some(SourceFormat::Files), ..Default::default() };
    assert_eq!(collect(&[fx().join("manifest.csv")], &opts).unwrap().files.len(), 1);
}

#[test]
fn segments_seek_in_wav_and_flac_and_match_a_sliced_decode() {
    for (file, rate) in [("clips/c1.wav", 22050.0), ("clips/long.flac", 16000.0), ("clips/c2.mp3", 24000.0)] {
        let path = fx().join(file);
        let whole = load(&path, &RAW).unwrap();
        let ch = whole.channels;
        for (start, dur, channel) in [(0.3, Some(0.2), None), (0.1, None, Some(ch - 1)), (0.0, Some(0.05), Some(0))] {
            let input = Input {
                origin: Origin::File(path.clone()),
                clip: Some(Clip { start_s: start, duration_s: dur, channel }),
                ..Input::found("x".into(), "x".into())
            };
            let a = (start * rate).round() as usize;
            let b = dur.map_or(whole.frames(), |d| a + (d * rate).round() as usize);
            let want: Vec<f32> = match channel {
                Some(c) => (a..b).map(|f| whole.samples[f * ch + c]).collect(),
                None => whole.samples[a * ch..b * ch].to_vec(),
            };
            let got = load_input(&input, &RAW).unwrap();
            assert_eq!(got.samples, want, "{file} {start} {dur:?} {channel:?}");
        }
        // Past the end: an error naming the segment.
        let input = Input {
            origin: Origin::File(path.clone()),
            clip: Some(Clip { start_s: 100.0, duration_s: Some(1.0), channel: None }),
            ..Input::found("x".into(), "x".into())
        };
        let e = load_input(&input, &RAW).unwrap_err().to_string();
        assert!(
            e.contains("segment") && e.contains("past the end") || e.contains("stream ends at frame"),
            "{file}: {e}"
        );
    }
}

#[test]
fn plain_files_and_folders_are_listed_as_before() {
    let got = list(&fx().join("clips"));
    let names: Vec<String> = got.iter().map(|i| i.rel.display().to_string()).collect();
    assert_eq!(names, ["c0.flac", "c1.wav", "c2.mp3", "c3.flac", "long.flac"]);
    assert!(collect(&[fx().join("nothing-here")], &SourceOptions::default()).is_err());
}
