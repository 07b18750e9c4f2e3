//! Manifests, read line by line: CSV, TSV and JSON Lines (optionally gzipped) with a path column
//! and optional offset and duration, and lhotse's cut and recording manifests (`cuts.jsonl.gz`).
//!
//! Paths are relative to the manifest's folder (else to the working directory, as lhotse's own
//! relative paths are). A JSON Lines manifest is lhotse's when its first line is a cut (`id`,
//! `start`, `duration`, `recording`) or a recording (`id`, `sources`, `sampling_rate`).
//!
//! lhotse: a cut is the segment `start`..`start + duration` of its recording's source file that
//! holds its `channel` (the channel's position in that source's `channels`), sample positions
//! rounded as lhotse's `compute_num_samples` does; its supervisions (their text) are carried in
//! the record's metadata. Sources of other types than `file` (url, memory, command, shar) and
//! recordings with transforms (speed, volume, resampling) are failures naming the cut: audiotok
//! does not reproduce them.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use audiotok_core::{Clip, Input, Origin};
use serde_json::{Map, Value};

use crate::{audio_ext, record_id, record_rel, SourceFormat, SourceOptions};

/// Path columns tried in order when none is named.
const PATH_COLUMNS: &[&str] = &["path", "audio_filepath", "audio_path", "audio", "file", "filename", "wav"];
const OFFSET_COLUMNS: &[&str] = &["offset", "start", "offset_s", "start_s"];
const DURATION_COLUMNS: &[&str] = &["duration", "duration_s"];

fn open_lines(path: &Path) -> Result<Box<dyn BufRead>, String> {
    let f = File::open(path).map_err(|e| format!("cannot read: {e}"))?;
    let gz = path.to_string_lossy().to_ascii_lowercase().ends_with(".gz");
    Ok(if gz { Box::new(BufReader::new(flate2::read::MultiGzDecoder::new(f))) } else { Box::new(BufReader::new(f)) })
}

/// Lists the lines of the manifest `path` (of kind `kind`) into `out`.
pub(crate) fn manifest_records(path: &Path, kind: SourceFormat, opts: &SourceOptions, out: &mut Vec<Input>) {
    let listed = match kind {
        SourceFormat::Csv => delimited(path, b',', opts, out),
        SourceFormat::Tsv => delimited(path, b'\t', opts, out),
        _ => json_lines(path, kind == SourceFormat::Lhotse, opts, out),
    };
    if let Err(reason) = listed {
        let rel = record_rel(path, "_", None);
        out.push(Input::failed(path.to_path_buf(), rel, format!("{}: {reason}", path.display())));
    }
}

fn delimited(path: &Path, delimiter: u8, opts: &SourceOptions, out: &mut Vec<Input>) -> Result<(), String> {
    let lines = open_lines(path)?;
    let mut reader = csv::ReaderBuilder::new().delimiter(delimiter).flexible(true).from_reader(lines);
    let header: Vec<String> =
        reader.headers().map_err(|e| format!("reading the header: {e}"))?.iter().map(str::to_string).collect();
    for (row, rec) in reader.records().enumerate() {
        let id = record_id(path, row);
        let rec = match rec {
            Ok(r) => r,
            Err(e) => {
                out.push(Input::failed(
                    id.clone(),
                    record_rel(path, &row.to_string(), None),
                    format!("{}: {e}", id.display()),
                ));
                continue;
            }
        };
        let mut map = Map::new();
        for (k, v) in header.iter().zip(rec.iter()) {
            map.insert(k.clone(), Value::from(v));
        }
        out.push(row_input(path, row, map, opts));
    }
    Ok(())
}

fn json_lines(path: &Path, force_lhotse: bool, opts: &SourceOptions, out: &mut Vec<Input>) -> Result<(), String> {
    let mut lines = open_lines(path)?;
    let mut lhotse: Option<bool> = force_lhotse.then_some(true);
    let mut line = String::new();
    let mut row = 0usize;
    loop {
        line.clear();
        let n = lines.read_line(&mut line).map_err(|e| format!("line {}: {e}", row + 1))?;
        if n == 0 {
            break;
        }
        if line.trim().is_empty() {
            continue;
        }
        let id = record_id(path, row);
        let parsed: Result<Map<String, Value>, String> = match serde_json::from_str::<Value>(&line) {
            Ok(Value::Object(m)) => Ok(m),
            Ok(_) => Err("not a JSON object".into()),
            Err(e) => Err(format!("not JSON: {e}")),
        };
        match parsed {
            Err(e) => out.push(Input::failed(
                id.clone(),
                record_rel(path, &row.to_string(), None),
                format!("{}: {e}", id.display()),
            )),
            Ok(map) => {
                let is_lhotse = *lhotse.get_or_insert_with(|| is_cut(&map) || is_recording(&map));
                out.push(if is_lhotse { lhotse_input(path, row, &map) } else { row_input(path, row, map, opts) });
            }
        }
        row += 1;
    }
    Ok(())
}

fn is_cut(m: &Map<String, Value>) -> bool {
    ["id", "start", "duration", "recording"].iter().all(|k| m.contains_key(*k))
}

fn is_recording(m: &Map<String, Value>) -> bool {
    ["id", "sources", "sampling_rate"].iter().all(|k| m.contains_key(*k))
}

/// A number of seconds from a cell: a JSON number or a numeric string; `None` when absent or
/// empty.
fn seconds(v: Option<&Value>) -> Result<Option<f64>, String> {
    let x = match v {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if s.trim().is_empty() => return Ok(None),
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    match x {
        Some(x) if x.is_finite() && x >= 0.0 => Ok(Some(x)),
        _ => Err(format!("{} is not a time in seconds", v.map_or_else(String::new, Value::to_string))),
    }
}

/// `p` as written in the manifest `manifest`: relative to its folder when it exists there, else
/// as given (relative to the working directory).
fn resolve(manifest: &Path, p: &str) -> PathBuf {
    let given = PathBuf::from(p);
    if given.is_absolute() {
        return given;
    }
    let beside = manifest.parent().unwrap_or(Path::new("")).join(&given);
    if beside.exists() || !given.exists() {
        beside
    } else {
        given
    }
}

/// A record of a CSV/TSV/JSONL manifest row.
fn row_input(manifest: &Path, row: usize, map: Map<String, Value>, opts: &SourceOptions) -> Input {
    let id = record_id(manifest, row);
    let fail = |reason: String, ext: Option<&str>| {
        Input::failed(id.clone(), record_rel(manifest, &row.to_string(), ext), format!("{}: {reason}", id.display()))
    };
    let col = match &opts.path_column {
        Some(c) => map.contains_key(c).then(|| c.clone()),
        None => PATH_COLUMNS.iter().find(|c| map.contains_key(**c)).map(|c| c.to_string()),
    };
    let Some(col) = col else {
        let cols: Vec<&str> = map.keys().map(String::as_str).collect();
        let wanted = opts.path_column.as_ref().map_or_else(|| PATH_COLUMNS.join(", "), |c| c.clone());
        return fail(format!("no path column ({wanted}) among {}; name it with --path-column", cols.join(", ")), None);
    };
    let p = match map.get(&col) {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return fail(format!("no path in column {col:?}"), None),
    };
    let ext = audio_ext(&p);
    let pick = |names: &[&str]| names.iter().find_map(|n| map.get(*n)).cloned();
    let (offset, duration) = match (seconds(pick(OFFSET_COLUMNS).as_ref()), seconds(pick(DURATION_COLUMNS).as_ref())) {
        (Ok(o), Ok(d)) => (o, d),
        (Err(e), _) | (_, Err(e)) => return fail(e, ext.as_deref()),
    };
    let file = resolve(manifest, &p);
    if let Err(e) = std::fs::metadata(&file) {
        return fail(format!("{}: {e}", file.display()), ext.as_deref());
    }
    let clip = (offset.is_some() || duration.is_some()).then(|| Clip {
        start_s: offset.unwrap_or(0.0),
        duration_s: duration,
        channel: None,
    });
    Input {
        origin: Origin::File(file),
        clip,
        meta: Some(Value::Object(map).to_string().into()),
        ..Input::found(id.clone(), record_rel(manifest, &row.to_string(), ext.as_deref()))
    }
}

/// A record of a lhotse cut (or recording) line.
fn lhotse_input(manifest: &Path, row: usize, m: &Map<String, Value>) -> Input {
    let cut_id = m.get("id").and_then(Value::as_str).map(str::to_string);
    let name = cut_id.clone().unwrap_or_else(|| row.to_string());
    let id = match &cut_id {
        Some(c) => PathBuf::from(c),
        None => record_id(manifest, row),
    };
    match lhotse_parts(manifest, m) {
        Ok((file, clip, meta)) => {
            let ext = audio_ext(&file.to_string_lossy());
            Input {
                origin: Origin::File(file),
                clip: Some(clip),
                meta: Some(meta.into()),
                ..Input::found(id, record_rel(manifest, &name, ext.as_deref()))
            }
        }
        Err(reason) => {
            let reason = format!("{} (cut {name}): {reason}", record_id(manifest, row).display());
            Input::failed(id, record_rel(manifest, &name, None), reason)
        }
    }
}

fn lhotse_parts(manifest: &Path, m: &Map<String, Value>) -> Result<(PathBuf, Clip, String), String> {
    let (recording, start, duration, channel) = if is_recording(m) && !m.contains_key("recording") {
        (m, 0.0, None, None)
    } else {
        if let Some(t) = m.get("type").and_then(Value::as_str) {
            if !matches!(t, "MonoCut" | "MultiCut") {
                return Err(format!("{t} is not supported (mono and multi-channel cuts of one recording are)"));
            }
        }
        let rec = m.get("recording").and_then(Value::as_object).ok_or("the cut has no recording")?;
        let start = seconds(m.get("start"))?.unwrap_or(0.0);
        let duration = seconds(m.get("duration"))?;
        (rec, start, duration, m.get("channel"))
    };
    if recording.get("transforms").and_then(Value::as_array).is_some_and(|t| !t.is_empty()) {
        return Err("recording transforms (speed, volume, resampling) are not supported".into());
    }
    let sources = recording.get("sources").and_then(Value::as_array).ok_or("the recording has no sources")?;
    let channels_of = |s: &Value| -> Vec<u64> {
        s.get("channels")
            .and_then(Value::as_array)
            .map(|c| c.iter().filter_map(Value::as_u64).collect())
            .unwrap_or_default()
    };
    // Which source holds the cut's channel, and which channel of that file it is.
    let wanted: Option<u64> = match channel {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(n.as_u64().ok_or("the channel is not a channel number")?),
        Some(Value::Array(list)) => {
            let list: Vec<u64> = list.iter().filter_map(Value::as_u64).collect();
            match list.as_slice() {
                [one] => Some(*one),
                _ => {
                    // All channels of one source: no channel selection.
                    let whole = sources.iter().any(|s| channels_of(s) == list);
                    if !whole {
                        return Err(format!("channels {list:?} span several sources or part of one"));
                    }
                    let src = sources.iter().find(|s| channels_of(s) == list).ok_or("no source")?;
                    return finish(manifest, src, start, duration, None, m);
                }
            }
        }
        Some(v) => return Err(format!("channel {v} is not a channel number")),
    };
    let (src, file_channel) = match wanted {
        None if sources.len() == 1 => (&sources[0], None),
        None => return Err("a recording of several sources: name a channel".into()),
        Some(c) => {
            let src =
                sources.iter().find(|s| channels_of(s).contains(&c)).ok_or(format!("no source holds channel {c}"))?;
            let pos = channels_of(src).iter().position(|&x| x == c).unwrap_or(0);
            (src, Some(pos))
        }
    };
    finish(manifest, src, start, duration, file_channel, m)
}

fn finish(
    manifest: &Path,
    src: &Value,
    start: f64,
    duration: Option<f64>,
    channel: Option<usize>,
    m: &Map<String, Value>,
) -> Result<(PathBuf, Clip, String), String> {
    let kind = src.get("type").and_then(Value::as_str).unwrap_or("file");
    if kind != "file" {
        return Err(format!("recording source of type {kind:?} is not supported (files are)"));
    }
    let p = src.get("source").and_then(Value::as_str).ok_or("the recording source names no file")?;
    let file = resolve(manifest, p);
    std::fs::metadata(&file).map_err(|e| format!("{}: {e}", file.display()))?;
    let mut meta = Map::new();
    if let Some(id) = m.get("id") {
        meta.insert("id".into(), id.clone());
    }
    let sups = m.get("supervisions").and_then(Value::as_array).cloned().unwrap_or_default();
    let texts: Vec<&str> = sups.iter().filter_map(|s| s.get("text").and_then(Value::as_str)).collect();
    if !texts.is_empty() {
        meta.insert("text".into(), Value::from(texts.join(" ")));
    }
    if !sups.is_empty() {
        meta.insert("supervisions".into(), Value::Array(sups.clone()));
    }
    if let Some(c) = m.get("custom") {
        meta.insert("custom".into(), c.clone());
    }
    Ok((file, Clip { start_s: start, duration_s: duration, channel }, Value::Object(meta).to_string()))
}
