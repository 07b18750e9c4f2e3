//! `audiotok count`: audio tokens per file for an encoder profile, totals and a length histogram.

use std::process::ExitCode;

use std::io::Write;

use anyhow::Result;
use audiotok_features::profiles::{Profile, NAMES};
use audiotok_pack::lengths::{audio_length, LengthMode};
use serde::Serialize;

use crate::runner::{self, BatchArgs, Summary};

/// Arguments of `audiotok count`.
#[derive(clap::Args)]
#[command(after_help = profile_help())]
pub struct Args {
    /// Encoder profile (see the list below).
    #[arg(long, short, value_parser = parse_profile)]
    profile: Profile,
    /// Print one JSON document (files, totals, histogram) on stdout instead of tables.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    batch: BatchArgs,
}

fn profile_help() -> String {
    format!("Profiles: {}", NAMES.join(", "))
}

fn parse_profile(s: &str) -> Result<Profile, String> {
    s.parse().map_err(|e: audiotok_features::FeatureError| e.to_string())
}

#[derive(Serialize)]
struct FileCount {
    path: String,
    samples: u64,
    duration_s: f64,
    tokens: Vec<u64>,
    codebooks: u32,
    total: u64,
}

#[derive(Serialize)]
struct Failure {
    path: String,
    error: String,
}

#[derive(Serialize)]
struct Bucket {
    from_s: f64,
    to_s: Option<f64>,
    files: usize,
}

#[derive(Serialize)]
struct Totals {
    files: usize,
    failed: usize,
    duration_s: f64,
    tokens: Vec<u64>,
    total: u64,
}

#[derive(Serialize)]
struct Report {
    profile: String,
    sample_rate: u32,
    files: Vec<FileCount>,
    failed: Vec<Failure>,
    totals: Totals,
    histogram: Vec<Bucket>,
}

/// Duration bucket edges in seconds.
const EDGES: &[f64] = &[0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0];

fn histogram(durations: impl Iterator<Item = f64>) -> Vec<Bucket> {
    let mut counts = vec![0usize; EDGES.len()];
    for d in durations {
        let i = EDGES.iter().rposition(|&e| d >= e).unwrap_or(0);
        counts[i] += 1;
    }
    EDGES
        .iter()
        .enumerate()
        .map(|(i, &from)| Bucket { from_s: from, to_s: EDGES.get(i + 1).copied(), files: counts[i] })
        .collect()
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let t0 = runner::start();
    let inputs = runner::collect(&args.batch.inputs)?;
    let profile = args.profile.clone();
    let rate = profile.sample_rate();
    let results = runner::run_parallel(
        &inputs.files,
        args.batch.jobs,
        "count",
        || (),
        |_, _, input| {
            // The verified header length where the container states one, else a decode that
            // keeps nothing: the same length as decoding and resampling, in constant memory.
            let n = audio_length(&input.path, rate, LengthMode::Header)?.samples;
            let c = profile.count(n);
            Ok(FileCount {
                path: runner::path_text(&input.path),
                samples: n,
                duration_s: n as f64 / f64::from(rate),
                total: c.total(),
                tokens: c.per_scale,
                codebooks: c.codebooks,
            })
        },
    )?;
    let mut files = Vec::new();
    let mut failures = Vec::new();
    for (input, r) in inputs.files.iter().zip(results) {
        match r {
            Ok(f) => files.push(f),
            Err(e) => failures.push((input.path.as_path(), e)),
        }
    }
    let failed: Vec<Failure> =
        failures.iter().map(|(p, e)| Failure { path: runner::path_text(p), error: e.clone() }).collect();
    let scales = files.first().map_or(1, |f| f.tokens.len());
    let mut tokens = vec![0u64; scales];
    for f in &files {
        for (t, v) in tokens.iter_mut().zip(&f.tokens) {
            *t += v;
        }
    }
    let duration_s: f64 = files.iter().map(|f| f.duration_s).sum();
    let report = Report {
        profile: profile.to_string(),
        sample_rate: rate,
        histogram: histogram(files.iter().map(|f| f.duration_s)),
        totals: Totals {
            files: files.len(),
            failed: failed.len(),
            duration_s,
            total: files.iter().map(|f| f.total).sum(),
            tokens,
        },
        files,
        failed,
    };
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_tables(&mut out, &report)?;
    }
    let summary = Summary {
        label: "count",
        done: report.files.len(),
        failed: failures,
        ignored: inputs.ignored,
        audio_secs: duration_s,
        elapsed: t0.elapsed(),
    };
    Ok(summary.finish(args.batch.keep_going))
}

fn join(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join("+")
}

fn print_tables(out: &mut impl Write, r: &Report) -> std::io::Result<()> {
    writeln!(out, "{:>10} {:>14}  path", "duration", "tokens")?;
    for f in &r.files {
        writeln!(out, "{:>9.3}s {:>14}  {}", f.duration_s, join(&f.tokens), f.path)?;
    }
    let t = &r.totals;
    let cb = r.files.first().map_or(1, |f| f.codebooks);
    let per_cb = if cb > 1 { format!(" per codebook x {cb} codebooks") } else { String::new() };
    writeln!(
        out,
        "\n{} ({} Hz): {} files, {:.2} h, {} tokens{per_cb} ({} in all), {:.1} tokens/s",
        r.profile,
        r.sample_rate,
        t.files,
        t.duration_s / 3600.0,
        join(&t.tokens),
        t.total,
        t.total as f64 / t.duration_s.max(1e-9)
    )?;
    writeln!(out, "\nlength histogram")?;
    let max = r.histogram.iter().map(|b| b.files).max().unwrap_or(0).max(1);
    for b in &r.histogram {
        let label = match b.to_s {
            Some(to) => format!("{:>4}-{:<4}s", b.from_s, to),
            None => format!("{:>4}+    s", b.from_s),
        };
        let bar = "#".repeat((b.files * 40).div_ceil(max));
        writeln!(out, "  {label} {:>7}  {bar}", b.files)?;
    }
    Ok(())
}
