//! `audiotok count`: audio tokens per file for an encoder profile, totals and a length histogram.

use std::process::ExitCode;

use std::io::Write;

use anyhow::Result;
use audiotok_features::profiles::{Profile, NAMES};
use audiotok_pack::count::{count_files, CountReport};

use crate::runner::{self, Bars, BatchArgs, Summary};

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

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let t0 = runner::start();
    let inputs = runner::collect(&args.batch.inputs, &args.batch.sources)?;
    let report = count_files(&inputs.files, &args.profile, args.batch.jobs, &Bars::default())?;
    let mut out = std::io::stdout().lock();
    if args.json {
        writeln!(out, "{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        print_tables(&mut out, &report)?;
    }
    let summary = Summary {
        label: "count",
        done: report.files.len(),
        failed: report.failed.iter().map(|f| (f.file.as_path(), f.error.clone())).collect(),
        ignored: inputs.ignored,
        audio_secs: report.totals.duration_s,
        elapsed: t0.elapsed(),
    };
    Ok(summary.finish(args.batch.keep_going))
}

fn join(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join("+")
}

fn print_tables(out: &mut impl Write, r: &CountReport) -> std::io::Result<()> {
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
