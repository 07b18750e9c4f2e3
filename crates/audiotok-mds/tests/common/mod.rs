//! Shared helpers for the golden tests: fixture paths, the JSON value form of
//! tools/mds_values.py, and the LCG blob generator of tools/gen_mds_fixtures.py.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use audiotok_mds::{DType, Json, NdArray, Sample, Value, WriterOptions};

pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/mds")
}

pub fn expected() -> Json {
    let text = std::fs::read(fixtures().join("expected.json")).unwrap();
    Json::parse_bytes(&text).unwrap()
}

pub fn dataset<'a>(expected: &'a Json, name: &str) -> &'a Json {
    expected.get("datasets").and_then(|d| d.get(name)).unwrap_or_else(|| panic!("no dataset {name}"))
}

/// (name, encoding) pairs of a dataset entry.
pub fn columns(entry: &Json) -> Vec<(String, String)> {
    match entry.get("columns") {
        Some(Json::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string())).collect(),
        _ => panic!("no columns"),
    }
}

pub fn options(entry: &Json) -> WriterOptions {
    let o = entry.get("options").unwrap();
    WriterOptions {
        compression: o.get("compression").and_then(Json::as_str).map(str::to_string),
        hashes: o.get("hashes").and_then(Json::as_array).unwrap().iter().map(|h| h.as_str().unwrap().into()).collect(),
        size_limit: o.get("size_limit").and_then(Json::as_u64),
        overwrite: false,
        raw_encodings: Vec::new(),
    }
}

fn kind(encoding: &str) -> &str {
    encoding.split(':').next().unwrap()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len()).step_by(2).map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap()).collect()
}

/// A decoded value in the JSON form.
pub fn to_form(value: &Value) -> Json {
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

/// The value to write for a JSON form.
pub fn from_form(encoding: &str, form: &Json) -> Value {
    match kind(encoding) {
        "int8" | "int16" | "int32" | "int64" | "int" => Value::Int(form.as_i64().unwrap()),
        "uint8" | "uint16" | "uint32" | "uint64" => Value::UInt(form.as_u64().unwrap()),
        "str_int" => match form {
            Json::Int(i) => Value::Int(*i),
            Json::BigInt(s) => Value::BigInt(s.clone()),
            _ => panic!("bad str_int form"),
        },
        "float16" | "float32" | "float64" | "str_float" => {
            Value::Float(f64::from_bits(u64::from_str_radix(form.as_str().unwrap(), 16).unwrap()))
        }
        "str_decimal" => Value::Decimal(form.as_str().unwrap().into()),
        "str" => Value::Str(form.as_str().unwrap().into()),
        "bytes" => Value::Bytes(unhex(form.as_str().unwrap())),
        "json" => Value::Json(form.clone()),
        "ndarray" => {
            let dtype = DType::from_name(form.get("dtype").and_then(Json::as_str).unwrap()).unwrap();
            let shape =
                form.get("shape").and_then(Json::as_array).unwrap().iter().map(|d| d.as_u64().unwrap() as usize);
            let data = unhex(form.get("data").and_then(Json::as_str).unwrap());
            Value::NdArray(NdArray::from_bytes(dtype, shape.collect(), data).unwrap())
        }
        other => panic!("no form for {other}"),
    }
}

/// The samples of a dataset entry's `key` list ("samples" or "decoded") as writer input.
pub fn samples(entry: &Json, key: &str) -> Vec<Sample> {
    let cols = columns(entry);
    entry
        .get(key)
        .and_then(Json::as_array)
        .unwrap()
        .iter()
        .map(|s| cols.iter().map(|(n, e)| (n.clone(), from_form(e, s.get(n).unwrap()))).collect())
        .collect()
}

/// A sample in the JSON form (one Python-style JSON text, so NaN compares equal to NaN).
pub fn sample_form(cols: &[(String, String)], sample: &Sample) -> String {
    let obj = Json::Object(cols.iter().map(|(n, _)| (n.clone(), to_form(&sample[n]))).collect());
    obj.to_python(false)
}

pub fn form_text(cols: &[(String, String)], form: &Json) -> String {
    let obj = Json::Object(cols.iter().map(|(n, _)| (n.clone(), form.get(n).unwrap().clone())).collect());
    obj.to_python(false)
}

/// tools/gen_mds_fixtures.py's `Lcg` and `lcg_blobs`.
pub fn lcg_blobs(seed: u64, sizes: &[usize]) -> Vec<Vec<u8>> {
    let mut state = seed;
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        state >> 33
    };
    let block: Vec<u8> = (0..2048).map(|_| (next() & 0xff) as u8).collect();
    let mut out = Vec::new();
    for &size in sizes {
        let mut blob = Vec::with_capacity(size + 1024);
        while blob.len() < size {
            if next() % 100 < 2 {
                let n = 1 + next() % 39;
                for _ in 0..n {
                    blob.push(65 + (next() % 32) as u8);
                }
            } else {
                let o = (next() % 1024) as usize;
                let n = 16 + (next() % 1008) as usize;
                blob.extend_from_slice(&block[o..(o + n).min(block.len())]);
            }
        }
        blob.truncate(size);
        out.push(blob);
    }
    out
}

/// The generated samples of the `zstd_large` dataset.
pub fn large_samples(entry: &Json) -> Vec<Sample> {
    let g = entry.get("generator").unwrap();
    assert_eq!(g.get("kind").and_then(Json::as_str), Some("lcg_blobs"));
    let seed = g.get("seed").and_then(Json::as_u64).unwrap();
    let sizes: Vec<usize> =
        g.get("sizes").and_then(Json::as_array).unwrap().iter().map(|s| s.as_u64().unwrap() as usize).collect();
    lcg_blobs(seed, &sizes)
        .into_iter()
        .enumerate()
        .map(|(i, blob)| {
            let n = 65536 + i;
            let wide = NdArray::from_bytes(DType::U8, vec![1, n], blob[..n].to_vec()).unwrap();
            let mut s = Sample::new();
            s.insert("blob".into(), Value::Bytes(blob));
            s.insert("wide".into(), Value::NdArray(wide));
            s
        })
        .collect()
}

/// Relative paths and contents of every file under `dir`, sorted.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
                out.push((rel, std::fs::read(&p).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        let dest = to.join(p.file_name().unwrap());
        if p.is_dir() {
            copy_tree(&p, &dest);
        } else {
            std::fs::copy(&p, &dest).unwrap();
        }
    }
}
