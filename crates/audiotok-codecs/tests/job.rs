//! The codec job API on the tiny24 fixture model (tests/fixtures/snac/tiny24): encode with
//! rejects, resume (every batch reused, bytes identical; a lost batch encoded again; a damaged
//! one redone), the in-memory entry against the job's records, and decode.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use audiotok_codecs::job::{self, DecodeOptions, DeviceChoice, EncodeOptions, JobError};
use audiotok_core::{Observer, Silent};
use audiotok_tokens::store::StoreReader;

fn fixture(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures").join(rel)
}

fn model() -> String {
    fixture("snac/tiny24").display().to_string()
}

/// Every event, as text.
#[derive(Default)]
struct Log(Mutex<Vec<String>>);

impl Log {
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl Observer for Log {
    fn begin(&self, phase: &str, total: u64, unit: &str) {
        self.0.lock().unwrap().push(format!("begin {phase} {total} {unit}"));
    }
    fn advance(&self, n: u64) {
        let mut log = self.0.lock().unwrap();
        // Consecutive advances are summed, so the log does not depend on block sizes.
        if let Some(last) = log.last_mut().filter(|l| l.starts_with("advance ")) {
            let sum: u64 = last["advance ".len()..].parse::<u64>().unwrap() + n;
            *last = format!("advance {sum}");
        } else {
            log.push(format!("advance {n}"));
        }
    }
    fn end(&self) {
        self.0.lock().unwrap().push("end".into());
    }
    fn warn(&self, message: &str) {
        self.0.lock().unwrap().push(format!("warn {message}"));
    }
}

fn files_of(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let p = e.unwrap().path();
            (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn encode_options(store: &Path) -> EncodeOptions {
    let inputs = ["audio/speech_1s.wav", "audio/speech_0.1s.wav", "audio/formats/nan.wav"];
    let mut opts = EncodeOptions::new(model(), inputs.iter().map(|i| fixture(i)).collect(), store);
    opts.segment_seconds = 0.4;
    opts.batch_size = 2;
    opts.jobs = 2;
    opts.device = DeviceChoice::Cpu;
    opts
}

#[test]
fn encode_resume_and_decode_through_the_job_api() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let opts = encode_options(&store);
    let log = Log::default();
    let first = job::encode(&opts, &log).unwrap();

    // 1 s at 24 kHz: two 0.4 s segments and a 4800-sample remainder; 0.1 s: one short segment.
    assert_eq!((first.files, first.records, first.batches, first.reused_batches), (2, 4, 2, 0));
    assert_eq!(first.failures.len(), 1);
    assert_eq!(first.failures[0].path, fixture("audio/formats/nan.wav"));
    assert!(first.failures[0]
        .reason
        .ends_with("nan.wav: non-finite sample (NaN or infinity) at frame 100 of channel 0"));
    assert!(first.redone.is_empty());
    assert!((first.encoded_seconds - 1.1).abs() < 1e-9, "{}", first.encoded_seconds);
    assert_eq!((first.dropped_seconds, first.sampling_rate), (0.0, 24000));
    let events = log.take();
    let warned = events.iter().filter(|e| e.starts_with("warn ")).count();
    let phases: Vec<&str> = events.iter().filter(|e| !e.starts_with("warn ")).map(String::as_str).collect();
    // The fixture's config.json lacks latent_dim: its default is a warning.
    assert_eq!(warned, 1, "{events:?}");
    assert!(events[0].contains("no latent_dim: using the snac package's default null"), "{events:?}");
    assert_eq!(
        phases,
        ["begin scan 3 files", "advance 3", "end", "begin encode 26400 samples", "advance 26400", "end"]
    );
    let names: Vec<String> = StoreReader::open(&store).unwrap().records().map(|r| r.unwrap().file_path).collect();
    let tails: Vec<&str> = names.iter().map(|n| n.rsplit('/').next().unwrap()).collect();
    assert_eq!(tails, ["speech_1s.wav#0", "speech_1s.wav#1", "speech_1s.wav#2", "speech_0.1s.wav#0"]);
    let bytes = files_of(&store);

    // The in-memory entry gives the job's records: same resampling (16 kHz -> 24 kHz) and segments.
    let loaded = job::load_model(&model(), None, DeviceChoice::Cpu, &Silent).unwrap();
    let clip = audiotok_audio::load(&fixture("audio/speech_1s.wav"), &audiotok_audio::LoadOptions::default()).unwrap();
    assert_eq!(clip.sample_rate, 16000);
    let segments = job::encode_audio(&loaded.model, &clip.samples, clip.sample_rate, 0.4).unwrap();
    let records: Vec<_> = StoreReader::open(&store).unwrap().records().map(|r| r.unwrap()).collect();
    assert_eq!(segments.len(), 3);
    for (s, r) in segments.iter().zip(&records) {
        assert_eq!(s.duration, r.duration);
        let codes: Vec<Vec<u32>> = r.scales.iter().map(|t| t.tokens.clone()).collect();
        assert_eq!(s.codes, codes);
    }

    // A rerun reuses every batch, encodes nothing, and leaves the bytes as they were.
    let again = job::encode(&opts, &Silent).unwrap();
    assert_eq!((again.reused_batches, again.encoded_seconds), (2, 0.0));
    assert!(again.redone.is_empty());
    assert_eq!(files_of(&store), bytes);

    // A lost batch is encoded again; a damaged one is redone, saying why; bytes still identical.
    std::fs::remove_file(store.join("tokens_batch_0001.parquet")).unwrap();
    let p0 = store.join("tokens_batch_0000.parquet");
    let mut damaged = std::fs::read(&p0).unwrap();
    damaged[10] ^= 0x10;
    std::fs::write(&p0, &damaged).unwrap();
    let redo = job::encode(&opts, &Silent).unwrap();
    assert_eq!(redo.reused_batches, 0);
    assert_eq!(redo.redone.len(), 1);
    assert_eq!(redo.redone[0].batches, 1);
    assert!(redo.redone[0].reason.starts_with("could not be read"), "{:?}", redo.redone);
    assert_eq!(files_of(&store), bytes);
    let json = serde_json::to_value(&redo).unwrap();
    assert_eq!(json["redone"][0]["batches"], 1);
    assert!(json["failures"][0]["path"].as_str().unwrap().ends_with("nan.wav"));

    // Decode: one WAV per record, cut to its duration, equal to the in-memory decode.
    let wavs = tmp.path().join("wav");
    let mut dopts = DecodeOptions::new(model(), &store, &wavs);
    dopts.device = DeviceChoice::Cpu;
    dopts.jobs = 1;
    let decoded = job::decode(&dopts, &log).unwrap();
    assert_eq!((decoded.records, decoded.sampling_rate), (4, 24000));
    assert!(decoded.failures.is_empty() && decoded.missing_batches.is_empty());
    assert!((decoded.audio_seconds - 1.1).abs() < 1e-9);
    let events: Vec<String> = log.take().into_iter().filter(|e| !e.starts_with("warn ")).collect();
    assert_eq!(events, ["begin decode 4 records", "advance 4", "end"]);
    let got: Vec<String> = files_of(&wavs).into_iter().map(|(n, _)| n).collect();
    assert_eq!(
        got,
        [
            "000000_speech_1s_seg0.wav",
            "000001_speech_1s_seg1.wav",
            "000002_speech_1s_seg2.wav",
            "000003_speech_0.1s_seg0.wav"
        ]
    );
    let wav = audiotok_audio::load(&wavs.join(&got[2]), &audiotok_audio::LoadOptions::default()).unwrap();
    let codes: Vec<Vec<u32>> = records[2].scales.iter().map(|t| t.tokens.clone()).collect();
    let samples = job::decode_audio(&loaded.model, &codes, records[2].duration, None).unwrap();
    assert_eq!(samples.len(), 4800);
    assert_eq!(wav.samples, samples);

    // A missing batch is a failure naming it.
    std::fs::remove_file(store.join("tokens_batch_0000.parquet")).unwrap();
    let partial = job::decode(&DecodeOptions { out: tmp.path().join("wav2"), ..dopts }, &Silent).unwrap();
    assert_eq!(partial.records, 2);
    assert_eq!(partial.missing_batches, ["tokens_batch_0000.parquet"]);
    assert!(partial.failures[0].reason.ends_with("tokens_batch_0000.parquet: missing (listed in metadata.json)"));
}

#[test]
fn options_are_checked_with_the_cli_messages() {
    let tmp = tempfile::tempdir().unwrap();
    let mut opts = encode_options(&tmp.path().join("s"));
    opts.batch_size = 0;
    let e = job::encode(&opts, &Silent).unwrap_err();
    assert!(matches!(e, JobError::Options(_)));
    assert_eq!(e.to_string(), "--batch-size must be at least 1");
    opts.batch_size = 1;
    opts.segment_seconds = 3600.0;
    assert!(job::encode(&opts, &Silent)
        .unwrap_err()
        .to_string()
        .starts_with("--segment-length 3600: segments are at most 600 s"));
    opts.segment_seconds = 1.0;
    opts.jobs = 5000;
    assert_eq!(
        job::encode(&opts, &Silent).unwrap_err().to_string(),
        "5000 threads: at most 1024 (0 uses one per core)"
    );
    opts.jobs = 1;
    opts.model = tmp.path().join("nowhere").display().to_string();
    let e = job::encode(&opts, &Silent).unwrap_err().to_string();
    assert!(e.starts_with("loading SNAC model ") && e.ends_with("nowhere: no such model folder"), "{e}");
    assert!(!tmp.path().join("s").exists(), "nothing is written before the model loads");

    // The in-memory entry refuses what the job rejects.
    let loaded = job::load_model(&model(), None, DeviceChoice::Cpu, &Silent).unwrap();
    let short = job::encode_audio(&loaded.model, &[0.0; 100], 24000, 0.0).unwrap_err().to_string();
    assert!(short.starts_with("shorter than one hop (100 samples at 24000 Hz < 512)"), "{short}");
    let nan = job::encode_audio(&loaded.model, &[0.0, f32::NAN], 24000, 0.0).unwrap_err().to_string();
    assert_eq!(nan, "non-finite sample (NaN or infinity) at sample 1");
    let whole = job::encode_audio(&loaded.model, &[0.25; 2400], 24000, 0.0).unwrap();
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].duration, 0.1);
    assert_eq!(whole[0].codes, loaded.model.encode_samples(&[0.25; 2400]).unwrap());
}
