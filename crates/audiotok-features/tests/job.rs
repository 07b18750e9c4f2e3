//! The features job (`audiotok_features::job`) on the fixture clips: the arrays equal
//! `Extractor::compute` on `audiotok_audio::load`, the files and manifest written, the
//! output-name clash rounds, the observer's phases and the job's errors.

#![allow(clippy::unwrap_used)] // Tests panic on broken fixtures by design.

use std::path::{Path, PathBuf};

use audiotok_audio::{load, LoadOptions};
use audiotok_core::{collect, Input, Silent};
use audiotok_features::job::{output_rel, Record, Status};
use audiotok_features::whisper::{Precision, WhisperPadding};
use audiotok_features::{
    compute_files, npy, write_features, Extractor, FeatureError, FeatureKind, FeaturesOptions, FileExtractor,
};

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/audio").join(rel)
}

/// Every event an observer saw, as text.
type Log = audiotok_core::Recorder;

/// The options of every kind the CLI offers, on two threads.
fn all_options() -> Vec<FeaturesOptions> {
    let mut out = Vec::new();
    for kind in [FeatureKind::Whisper128, FeatureKind::Whisper80, FeatureKind::Wav2Vec2, FeatureKind::MelDb] {
        out.push(FeaturesOptions { jobs: 2, ..FeaturesOptions::new(kind) });
    }
    out.push(FeaturesOptions {
        whisper_padding: WhisperPadding::Longest,
        whisper_precision: Precision::Exact,
        jobs: 2,
        ..FeaturesOptions::new(FeatureKind::Whisper80)
    });
    out.push(FeaturesOptions { meldb_frames: None, jobs: 2, ..FeaturesOptions::new(FeatureKind::MelDb) });
    out
}

#[test]
fn arrays_equal_the_extractor_on_load_for_every_kind() {
    let clips = ["speech_0.1s.wav", "speech_1s.wav", "speech_7s.flac", "speech_7s_44k_stereo.flac"];
    let inputs: Vec<Input> = clips.iter().map(|c| Input::file(fixture(c))).collect();
    for opts in all_options() {
        let log = Log::default();
        let got = compute_files(&inputs, &opts, &log).unwrap();
        assert_eq!(log.events().first().unwrap(), "begin features 4 files", "{opts:?}");
        assert_eq!(log.events().iter().filter(|e| *e == "advance 1").count(), 4);
        assert_eq!(log.events().last().unwrap(), "end");
        let mut ex = Extractor::new(opts.kind, opts.extractor_options());
        let mut fx = FileExtractor::new(&opts);
        for (input, r) in inputs.iter().zip(&got) {
            let audio = load(&input.path, &LoadOptions::mono_at(16_000)).unwrap();
            let want = ex.compute(&audio.samples).unwrap();
            let c = r.as_ref().unwrap();
            assert_eq!(c.features, want, "{opts:?} {}", input.path.display());
            assert_eq!(c.samples, audio.samples.len());
            assert_eq!(&fx.compute(&input.path).unwrap(), c);
        }
    }
}

#[test]
fn whisper_reads_30_s_but_counts_the_whole_clip() {
    let opts = FeaturesOptions::new(FeatureKind::Whisper128);
    let path = fixture("speech_45s.flac");
    let got = FileExtractor::new(&opts).compute(&path).unwrap();
    let audio = load(&path, &LoadOptions::mono_at(16_000)).unwrap();
    assert_eq!(got.samples, audio.samples.len());
    assert_eq!(got.features, Extractor::new(opts.kind, opts.extractor_options()).compute(&audio.samples).unwrap());
    assert_eq!(got.features.shape, [128, 3000]);
}

#[test]
fn failures_are_outcomes_naming_the_file() {
    let mut unreadable = Input::file("/nowhere/link.wav");
    unreadable.unreadable = Some("/nowhere/link.wav: dangling symlink (its target does not exist)".into());
    let inputs = vec![
        Input::file(fixture("formats/nan.wav")),
        unreadable,
        Input::file(fixture("formats/zero_length.wav")),
        Input::file(fixture("speech_1s.wav")),
    ];
    let got = compute_files(&inputs, &FeaturesOptions::new(FeatureKind::MelDb), &Silent).unwrap();
    let nan = fixture("formats/nan.wav");
    assert_eq!(
        got[0].as_ref().unwrap_err(),
        &format!("{}: non-finite sample (NaN or infinity) at frame 100", nan.display())
    );
    assert_eq!(got[1].as_ref().unwrap_err(), "/nowhere/link.wav: dangling symlink (its target does not exist)");
    assert!(got[2].as_ref().unwrap_err().ends_with("zero_length.wav: no audio samples (zero-length audio)"));
    assert_eq!(got[3].as_ref().unwrap().features.shape, [128, 1024]);
}

/// A folder holding copies of fixture clips under the given names (`None`: a file that is not
/// audio).
fn folder(files: &[(&str, Option<&str>)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, clip) in files {
        let dest = dir.path().join(name);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        match clip {
            Some(clip) => std::fs::copy(fixture(clip), &dest).map(drop).unwrap(),
            None => std::fs::write(&dest, b"not audio at all").unwrap(),
        }
    }
    dir
}

fn json(s: &Path) -> String {
    serde_json::to_string(s.to_str().unwrap()).unwrap()
}

#[test]
fn writes_the_arrays_and_the_manifest() {
    let dir = folder(&[("a.wav", Some("speech_1s.wav")), ("sub/b.wav", Some("speech_0.1s.wav")), ("c.wav", None)]);
    let out = tempfile::tempdir().unwrap();
    let out = out.path().join("new/feats");
    let inputs = collect(&[dir.path()]).unwrap().files;
    let opts = FeaturesOptions { jobs: 2, ..FeaturesOptions::new(FeatureKind::MelDb) };
    let log = Log::default();
    let summary = write_features(&inputs, &out, &opts, &log).unwrap();
    assert_eq!((summary.done, summary.failed), (2, 1));
    assert_eq!(summary.audio_secs, 1.0 + 0.1);
    let events = log.events();
    assert_eq!((events.first().unwrap().as_str(), events.last().unwrap().as_str()), ("begin features 3 files", "end"));

    let (a, b, c) = (dir.path().join("a.wav"), dir.path().join("sub/b.wav"), dir.path().join("c.wav"));
    let c_reason = format!("{}: unsupported audio: not a recognised audio container", c.display());
    let manifest = std::fs::read_to_string(out.join("manifest.jsonl")).unwrap();
    let want = [
        format!(
            r#"{{"input":{},"output":"a.npy","status":"ok","samples":16000,"duration_s":1.0,"shape":[128,1024],"mask_ones":101}}"#,
            json(&a)
        ),
        format!(r#"{{"input":{},"output":null,"status":"failed","error":{}}}"#, json(&c), json(Path::new(&c_reason))),
        format!(
            r#"{{"input":{},"output":"sub/b.npy","status":"ok","samples":1600,"duration_s":0.1,"shape":[128,1024],"mask_ones":11}}"#,
            json(&b)
        ),
    ];
    assert_eq!(manifest, want.iter().map(|l| format!("{l}\n")).collect::<String>());
    let records: Vec<Record> = manifest.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(records, summary.records);
    assert_eq!(summary.records[1].status, Status::Failed);
    assert_eq!(summary.failures().collect::<Vec<_>>(), [(1, c_reason.as_str())]);

    let computed = compute_files(&inputs, &opts, &Silent).unwrap();
    for (input, c) in inputs.iter().zip(&computed) {
        let Ok(c) = c else { continue };
        let arr = npy::read(std::fs::File::open(out.join(output_rel(input))).unwrap()).unwrap();
        assert_eq!((arr.shape.clone(), arr.to_f32()), (c.features.shape.clone(), c.features.data.clone()));
    }
    assert!(!out.join("c.npy").exists());

    // Reruns give the same bytes whatever the thread count.
    let out1 = out.with_file_name("one");
    write_features(&inputs, &out1, &FeaturesOptions { jobs: 1, ..opts }, &Silent).unwrap();
    for rel in ["manifest.jsonl", "a.npy", "sub/b.npy"] {
        assert_eq!(std::fs::read(out.join(rel)).unwrap(), std::fs::read(out1.join(rel)).unwrap(), "{rel}");
    }
}

#[test]
fn clashing_output_names_never_overwrite_each_other() {
    // x.flac (sorted first) is not audio, so x.wav writes x.npy in a second round; of y.flac
    // and y.wav, both good, the first writes y.npy and the second fails naming it.
    let dir = folder(&[
        ("x.flac", None),
        ("x.wav", Some("speech_1s.wav")),
        ("y.flac", Some("speech_0.1s.wav")),
        ("y.wav", Some("speech_1s.wav")),
    ]);
    let out = tempfile::tempdir().unwrap();
    let inputs = collect(&[dir.path()]).unwrap().files;
    let log = Log::default();
    let opts = FeaturesOptions::new(FeatureKind::Wav2Vec2);
    let summary = write_features(&inputs, out.path(), &opts, &log).unwrap();
    let begins: Vec<String> = log.events().into_iter().filter(|e| e.starts_with("begin")).collect();
    assert_eq!(begins, ["begin features 2 files", "begin features 1 files"]);
    assert_eq!(log.events().iter().filter(|e| *e == "end").count(), 2);
    let status: Vec<Status> = summary.records.iter().map(|r| r.status).collect();
    assert_eq!(status, [Status::Failed, Status::Ok, Status::Ok, Status::Failed]);
    let p = |n: &str| dir.path().join(n).display().to_string();
    assert_eq!(
        summary.records[3].error.as_deref().unwrap(),
        format!(
            "{}: output y.npy is written for {} (same name once the extension is replaced); rename one of them",
            p("y.wav"),
            p("y.flac")
        )
    );
    let shape = |n: &str| npy::read(std::fs::File::open(out.path().join(n)).unwrap()).unwrap().shape;
    assert_eq!((shape("x.npy"), shape("y.npy")), (vec![16000], vec![1600]));
}

#[test]
fn job_errors_come_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let inputs = [Input::file(fixture("speech_1s.wav"))];
    let opts = FeaturesOptions::new(FeatureKind::MelDb);
    let e = write_features(&inputs, &file, &opts, &Silent).unwrap_err();
    assert!(matches!(e, FeatureError::CreateDir { .. }));
    assert_eq!(e.to_string(), format!("creating {}: File exists (os error 17)", file.display()));

    let too_many = FeaturesOptions { jobs: audiotok_core::MAX_JOBS + 1, ..opts };
    let out = dir.path().join("out");
    let e = write_features(&inputs, &out, &too_many, &Silent).unwrap_err();
    assert_eq!(e.to_string(), "1025 threads: at most 1024 (0 uses one per core)");
    assert!(!out.exists());
    assert!(compute_files(&inputs, &too_many, &Silent).is_err());
}

#[test]
fn options_serialise_in_cli_spelling() {
    let opts = FeaturesOptions::new(FeatureKind::Whisper128);
    let text = serde_json::to_string(&opts).unwrap();
    assert_eq!(
        text,
        r#"{"kind":"whisper-128","whisper_padding":"max-length","whisper_precision":"fast","meldb_frames":1024,"jobs":0}"#
    );
    assert_eq!(serde_json::from_str::<FeaturesOptions>(&text).unwrap(), opts);
    let back: FeaturesOptions = serde_json::from_str(
        r#"{"kind":"hubert","whisper_padding":"longest","whisper_precision":"exact","meldb_frames":null,"jobs":3}"#,
    )
    .unwrap();
    assert_eq!(back.kind, FeatureKind::Wav2Vec2);
    assert_eq!(
        (back.whisper_padding, back.whisper_precision, back.meldb_frames),
        (WhisperPadding::Longest, Precision::Exact, None)
    );
}
