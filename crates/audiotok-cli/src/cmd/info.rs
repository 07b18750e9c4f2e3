//! `audiotok info`: what the container says about each file, without decoding the audio. The
//! rows are `audiotok_audio::info`'s; this prints them as they come, as a table or JSON Lines.

use std::path::PathBuf;
use std::process::ExitCode;

use std::io::Write;

use anyhow::Result;
use audiotok_audio::InfoRow;

use crate::runner;

/// Arguments of `audiotok info`.
#[derive(clap::Args)]
pub struct Args {
    /// Audio files, directories (walked recursively) or sources (Parquet, Arrow, tars, lhotse
    /// cuts, manifests).
    #[arg(required = true, value_name = "FILE|DIR|SOURCE")]
    inputs: Vec<PathBuf>,
    #[command(flatten)]
    sources: runner::SourceArgs,
    /// Print one JSON object per file (JSON Lines) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let inputs = runner::collect(&args.inputs, &args.sources)?;
    let mut failed = 0;
    let mut out = std::io::stdout().lock();
    if !args.json {
        writeln!(out, "{:<8} {:<12} {:>7} {:>3} {:>10}  path", "format", "codec", "rate", "ch", "duration")?;
    }
    for input in &inputs.files {
        let row = InfoRow::probe(input);
        if row.failed() {
            failed += 1;
        }
        if args.json {
            writeln!(out, "{}", serde_json::to_string(&row)?)?;
        } else if let Some(err) = &row.error {
            writeln!(out, "{:<8} {:<12} {:>7} {:>3} {:>10}  {}  ({err})", "-", "-", "-", "-", "-", row.path)?;
        } else {
            let dur = row.duration_s.map_or("unknown".to_string(), |d| format!("{d:.3} s"));
            writeln!(
                out,
                "{:<8} {:<12} {:>7} {:>3} {:>10}  {}",
                row.container.as_deref().unwrap_or("-"),
                row.codec.as_deref().unwrap_or("-"),
                row.sample_rate.unwrap_or(0),
                row.channels.unwrap_or(0),
                dur,
                row.path
            )?;
        }
    }
    if failed > 0 {
        eprintln!("info: {failed} of {} files could not be read", inputs.files.len());
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
