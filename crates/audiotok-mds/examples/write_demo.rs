//! Writes demo MDS datasets for checking with the Python `streaming` package:
//!
//! ```sh
//! cargo run -p audiotok-mds --example write_demo -- OUT
//! for d in plain zstd parts; do
//!   tmp/venv-mds/bin/python tools/check_mds_with_streaming.py OUT/$d OUT/$d.expected.json
//! done
//! ```
//!
//! `OUT/plain` (uncompressed, several shards), `OUT/zstd` (zstd:5, sha1 + xxh64) and `OUT/parts`
//! (two partitions merged with `merge_index`), each with `OUT/<name>.expected.json` holding the
//! samples in the JSON form of tools/mds_values.py.

use std::error::Error;
use std::path::Path;

use audiotok_mds::value::f64_to_f16_bits;
use audiotok_mds::{f16, merge_index, Json, MdsWriter, NdArray, Sample, Value, WriterOptions};

const COLUMNS: [(&str, &str); 14] = [
    ("id", "int64"),
    ("text", "str"),
    ("audio", "ndarray:float32"),
    ("codes", "ndarray:int16:4,8"),
    ("mel", "ndarray"),
    ("sample_rate", "uint32"),
    ("duration", "float32"),
    ("gain", "float16"),
    ("raw", "bytes"),
    ("meta", "json"),
    ("count", "str_int"),
    ("score", "str_float"),
    ("price", "str_decimal"),
    ("flag", "int8"),
];

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// The JSON form of tools/mds_values.py.
fn form(value: &Value) -> Json {
    match value {
        Value::Int(i) => Json::Int(*i),
        Value::UInt(u) => Json::from(*u),
        Value::BigInt(s) => Json::BigInt(s.clone()),
        Value::Float(f) => Json::Str(format!("{:016x}", f.to_bits())),
        Value::Decimal(s) | Value::Str(s) => Json::Str(s.clone()),
        Value::Bytes(b) => Json::Str(hex(b)),
        Value::Json(j) => j.clone(),
        Value::NdArray(a) => Json::Object(vec![
            ("dtype".into(), Json::Str(a.dtype().name().into())),
            ("shape".into(), Json::Array(a.shape().iter().map(|&d| Json::from(d as u64)).collect())),
            ("data".into(), Json::Str(hex(a.data()))),
        ]),
    }
}

fn demo_sample(i: usize) -> Result<Sample, Box<dyn Error>> {
    let n = 200 + 37 * i;
    let audio: Vec<f32> = (0..n).map(|k| (k as f32 * 0.05 * (1 + i % 3) as f32).sin() * 0.5).collect();
    let codes: Vec<i16> = (0..32).map(|k| (k * 31 + i * 7) as i16 % 1024 - 512).collect();
    let mel: Vec<f16> = (0..(3 * (i % 4 + 1))).map(|k| f16::from_bits(f64_to_f16_bits(k as f64 / 8.0))).collect();
    let meta = Json::Object(vec![
        ("speaker".into(), Json::Str(format!("spk{:02}", i % 5))),
        ("lang".into(), Json::Str(if i % 2 == 0 { "en".into() } else { "fr".into() })),
        ("words".into(), Json::Array((0..i % 4).map(|w| Json::Str(format!("w{w}é"))).collect())),
        ("snr".into(), Json::Float(12.5 + i as f64 / 3.0)),
    ]);
    let mut s = Sample::new();
    s.insert("id".into(), Value::Int(i as i64));
    s.insert("text".into(), Value::Str(format!("utterance {i}: ça va \u{1f3a4}")));
    s.insert("audio".into(), Value::NdArray(NdArray::from_vec(&audio)));
    s.insert("codes".into(), Value::NdArray(NdArray::from_slice(vec![4, 8], &codes)?));
    s.insert("mel".into(), Value::NdArray(NdArray::from_slice(vec![3, i % 4 + 1], &mel)?));
    s.insert("sample_rate".into(), Value::UInt(if i % 2 == 0 { 16000 } else { 24000 }));
    s.insert("duration".into(), Value::Float(n as f64 / 16000.0));
    s.insert("gain".into(), Value::Float(0.1 * i as f64));
    s.insert("raw".into(), Value::Bytes((0..(i % 7) as u8).collect()));
    s.insert("meta".into(), Value::Json(meta));
    s.insert(
        "count".into(),
        if i % 3 == 0 { Value::BigInt(format!("1{}", "0".repeat(20 + i))) } else { Value::Int(-(i as i64)) },
    );
    s.insert("score".into(), Value::Float(if i == 4 { f64::INFINITY } else { 1.0 / (i + 1) as f64 }));
    s.insert("price".into(), Value::Decimal(format!("{i}.{:02}", i * 7 % 100)));
    s.insert("flag".into(), Value::Int(i as i64 % 3 - 1));
    Ok(s)
}

/// Writes one dataset and its expected JSON; the expected values are what was written, except
/// that float16/float32 scalars are rounded as stored.
fn write(
    out: &Path,
    name: &str,
    range: std::ops::Range<usize>,
    options: WriterOptions,
) -> Result<Vec<Json>, Box<dyn Error>> {
    let mut w = MdsWriter::new(out.join(name), COLUMNS, options)?;
    let mut forms = Vec::new();
    for i in range {
        let s = demo_sample(i)?;
        w.write(&s)?;
        let mut obj = Vec::new();
        for (col, enc) in COLUMNS {
            let v = match (enc, &s[col]) {
                ("float32", Value::Float(x)) => Value::Float(f64::from(*x as f32)),
                ("float16", Value::Float(x)) => Value::Float(f16::from_bits(f64_to_f16_bits(*x)).to_f64()),
                (_, v) => v.clone(),
            };
            obj.push((col.to_string(), form(&v)));
        }
        forms.push(Json::Object(obj));
    }
    let index = w.finish()?;
    println!("{}: {} shards, {} samples", out.join(name).display(), index.shards.len(), index.num_samples());
    Ok(forms)
}

fn save_expected(out: &Path, name: &str, samples: Vec<Json>) -> Result<(), Box<dyn Error>> {
    let columns = Json::Object(COLUMNS.iter().map(|(c, e)| (c.to_string(), Json::Str(e.to_string()))).collect());
    let doc = Json::Object(vec![("columns".into(), columns), ("samples".into(), Json::Array(samples))]);
    std::fs::write(out.join(format!("{name}.expected.json")), doc.to_python(false))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn Error>> {
    let out = std::env::args().nth(1).ok_or("usage: write_demo OUT_DIR")?;
    let out = Path::new(&out);
    std::fs::create_dir_all(out)?;
    let overwrite = true;

    let plain = write(out, "plain", 0..24, WriterOptions { size_limit: Some(4096), overwrite, ..Default::default() })?;
    save_expected(out, "plain", plain)?;

    let zstd = WriterOptions {
        compression: Some("zstd:5".into()),
        hashes: vec!["sha1".into(), "xxh64".into()],
        size_limit: Some(6000),
        overwrite,
        raw_encodings: Vec::new(),
    };
    let z = write(out, "zstd", 0..24, zstd)?;
    save_expected(out, "zstd", z)?;

    let part = |compression: Option<&str>| WriterOptions {
        compression: compression.map(str::to_string),
        hashes: vec!["xxh64".into()],
        size_limit: Some(5000),
        overwrite,
        raw_encodings: Vec::new(),
    };
    let mut all = write(out, "parts/p0", 0..10, part(None))?;
    all.extend(write(out, "parts/p1", 10..21, part(Some("zstd")))?);
    let merged = merge_index(out.join("parts"))?;
    println!("{}: merged {} shards", out.join("parts").display(), merged.shards.len());
    save_expected(out, "parts", all)?;
    Ok(())
}
