//! `audiotok analyze`: statistics of discrete audio tokens per scale and for the time-interleaved
//! stream, a BPE recommendation, JSON and PNG plots (`audiotok_tokens::stats`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use audiotok_tokens::input::{InputOptions, Piece, TokenInput, PIECE_TOKENS};
use audiotok_tokens::stats::{
    gini_band, sparsity_band, Analyzer, AnalyzerOptions, Report, StreamReport, DEFAULT_MEMORY_LIMIT, MAX_N,
};
use indicatif::{ProgressBar, ProgressStyle};

use crate::plot;

/// Arguments of `audiotok analyze`.
#[derive(clap::Args)]
#[command(after_help = "Inputs: text (one sequence per line, space-separated ids), .npy (1-D, or 2-D \
[T, codebooks] = one stream per codebook), a token store directory or .parquet file (one stream per \
scale), or directories of these. The interleaved stream puts each coarsest frame's codes together \
(SNAC 1:2:4 depth-first, as Orpheus orders them). N-grams of order 3 and up are counted by 64-bit hash.")]
pub struct Args {
    /// Token files or directories.
    #[arg(required = true)]
    input: Vec<PathBuf>,
    /// Scale to analyse (0, 1, ...) or `all` (every scale and the interleaved stream).
    #[arg(long, default_value = "all")]
    scale: String,
    /// Codebook size: ids must be below it; enables codebook utilisation.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    codebook_size: Option<u32>,
    /// Largest n-gram order (1-7); lower it for speed on very large high-entropy inputs.
    #[arg(long, default_value_t = MAX_N,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=MAX_N as u64))]
    max_n: usize,
    /// Write the full report as JSON to this file (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write PNG plots here: zipf.png (rank-frequency, log-log) and runs_<stream>.png.
    #[arg(long)]
    plots: Option<PathBuf>,
    /// Memory for counting n-grams (e.g. 512M, 2G, or `unlimited`; 1M to 64T). Past it, count
    /// tables are spilled to --tmp-dir as sorted runs and merged at the end: same figures, bounded
    /// memory.
    #[arg(long, default_value_t = Memory(Some(DEFAULT_MEMORY_LIMIT)), value_parser = parse_memory)]
    memory: Memory,
    /// Directory for spilled n-gram counts (default: the system's temporary directory).
    #[arg(long, value_name = "DIR")]
    tmp_dir: Option<PathBuf>,
    /// Print nothing but the JSON (with --json -) or errors.
    #[arg(long, short)]
    quiet: bool,
}

/// A memory size in bytes, or no limit.
#[derive(Clone, Copy, Debug)]
struct Memory(Option<u64>);

impl std::fmt::Display for Memory {
    /// As `parse_memory` reads it back: `2G`, `512M`, `1000K`, bytes, or `unlimited`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            None => f.write_str("unlimited"),
            Some(b) => match [(1u64 << 40, 'T'), (1 << 30, 'G'), (1 << 20, 'M'), (1 << 10, 'K')]
                .into_iter()
                .find(|&(unit, _)| b >= unit && b % unit == 0)
            {
                Some((unit, suffix)) => write!(f, "{}{suffix}", b / unit),
                None => write!(f, "{b}"),
            },
        }
    }
}

/// Smallest `--memory`: below it, spilled runs would be tiny and many.
const MIN_MEMORY: u64 = 1 << 20;
/// Largest `--memory` (use `unlimited` for no limit).
const MAX_MEMORY: u64 = 64 << 40;

/// Parses `512M`, `2G`, `1.5GiB`, `800000000`, or `unlimited`: a size from [`MIN_MEMORY`] to
/// [`MAX_MEMORY`].
fn parse_memory(s: &str) -> Result<Memory, String> {
    let t = s.trim();
    if t.eq_ignore_ascii_case("unlimited") || t.eq_ignore_ascii_case("none") {
        return Ok(Memory(None));
    }
    let upper = t.to_ascii_uppercase();
    let body = upper.trim_end_matches("IB").trim_end_matches('B');
    let (num, mult) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        Some('T') => (&body[..body.len() - 1], 1 << 40),
        _ => (body, 1),
    };
    match num.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (MIN_MEMORY as f64..=MAX_MEMORY as f64).contains(&(v * mult as f64)) => {
            Ok(Memory(Some((v * mult as f64) as u64)))
        }
        Ok(_) => Err(format!("'{s}': expected a size from 1M to 64T, or 'unlimited'")),
        _ => Err(format!("'{s}': expected a size such as 512M or 2G (a size from 1M to 64T), or 'unlimited'")),
    }
}

/// Runs the subcommand.
pub fn run(args: Args) -> Result<ExitCode> {
    let scales = match args.scale.as_str() {
        "all" => None,
        s => Some(vec![s.parse::<usize>().with_context(|| format!("--scale {s}: expected a scale index or 'all'"))?]),
    };
    if !(1..=MAX_N).contains(&args.max_n) {
        bail!("--max-n must be between 1 and {MAX_N}");
    }
    let t0 = std::time::Instant::now();
    let input = TokenInput::open(&args.input, InputOptions { codebook_size: args.codebook_size })?;
    if let Some(dir) = &args.tmp_dir {
        if !dir.is_dir() {
            bail!("--tmp-dir {}: not a directory", dir.display());
        }
    }
    let mut analyzer = Analyzer::new(AnalyzerOptions {
        max_n: args.max_n,
        codebook_size: args.codebook_size,
        scales,
        memory_limit: args.memory.0,
        spill_dir: args.tmp_dir.clone(),
    });
    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new_spinner() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} analyze: {pos} sequences, {msg} tokens  {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let mut tokens = 0u64;
    // Text lines come in pieces, so that one huge line costs bounded memory.
    for piece in input.pieces(PIECE_TOKENS) {
        let ended = match piece? {
            Piece::Whole(seq) => {
                tokens += seq.scales.iter().map(|s| s.len() as u64).sum::<u64>();
                analyzer.add(&seq)?;
                true
            }
            Piece::Part { source, tokens: ids, last } => {
                tokens += ids.len() as u64;
                analyzer.add_piece(&source, &ids, last)?;
                if !last {
                    bar.set_message(tokens.to_string());
                }
                last
            }
        };
        if ended {
            bar.inc(1);
            if bar.position() % 64 == 0 {
                bar.set_message(tokens.to_string());
            }
        }
    }
    // The last flush and the merge of spilled runs can take seconds on large inputs.
    bar.set_message(format!("{tokens}"));
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} analyze: {pos} sequences, {msg} tokens; counting n-grams  {elapsed_precise}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let report = analyzer.finish();
    bar.finish_and_clear();
    let report = report?;
    let secs = t0.elapsed().as_secs_f64();

    if let Some(j) = &args.json {
        let text = serde_json::to_string_pretty(&report)? + "\n";
        if j.as_os_str() == "-" {
            print!("{text}");
        } else {
            crate::runner::write_atomic(j, text.as_bytes())?;
        }
    }
    if let Some(dir) = &args.plots {
        std::fs::create_dir_all(dir).with_context(|| format!("{}: cannot create", dir.display()))?;
        write_plots(dir, &report)?;
    }
    if !args.quiet {
        let to_stdout = args.json.as_deref().is_some_and(|j| j.as_os_str() == "-");
        let text = render(&report);
        if to_stdout {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
        let c = report.counting;
        let spilled = if c.spilled_runs > 0 {
            format!(
                "; n-gram counts spilled to disk: {} run(s), {:.1} MiB",
                c.spilled_runs,
                c.spilled_bytes as f64 / 1048576.0
            )
        } else {
            String::new()
        };
        eprintln!(
            "analyze: {} sequences, {tokens} tokens from {} input(s) in {secs:.2} s ({:.1} M tokens/s){spilled}{}{}",
            report.sequences,
            input.paths().len(),
            tokens as f64 / secs.max(1e-9) / 1e6,
            args.json
                .as_ref()
                .filter(|j| j.as_os_str() != "-")
                .map_or(String::new(), |j| format!("; JSON -> {}", j.display())),
            args.plots.as_ref().map_or(String::new(), |d| format!("; plots -> {}", d.display())),
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn streams(r: &Report) -> Vec<&StreamReport> {
    r.scales.iter().chain(r.interleaved.as_ref()).collect()
}

/// The human-readable report.
fn render(r: &Report) -> String {
    let mut o = String::new();
    let ratios = r.scale_ratios.as_ref().map_or(String::new(), |v| format!(", ratios {v:?} per coarsest frame"));
    o += &format!("{} sequences, {} scale(s){ratios}\n", r.sequences, r.num_scales);
    for s in streams(r) {
        o += &format!("\n== {} ==\n", s.name);
        o += &format!("  tokens               {:>14}   unique {}", s.total_tokens, s.unique_tokens);
        if let (Some(c), Some(u)) = (s.codebook_size, s.utilisation) {
            o += &format!("   codebook {c}: {:.1}% used", 100.0 * u);
        }
        o += "\n";
        o += &format!("  entropy              {:>14.4} bits   perplexity {:.1}\n", s.entropy_bits, s.perplexity);
        o += &format!("  Gini                 {:>14.4}   {}\n", s.gini, gini_band(s.gini));
        o += "  top-K coverage       ";
        o += &s.top_k_coverage.iter().map(|(k, c)| format!("K={k}: {:.2}%", 100.0 * c)).collect::<Vec<_>>().join("  ");
        o += "\n";
        o += &format!(
            "  bigrams              {:>14}   diversity {:.3e} of V^2   transition sparsity {:.4} ({})\n",
            s.unique_bigrams,
            s.bigram_diversity,
            s.transition_sparsity,
            sparsity_band(s.transition_sparsity)
        );
        o += &format!(
            "  repetition rate      {:>14.4}   runs {}   mean run {:.3}   max run {}\n",
            s.repetition_rate, s.runs, s.mean_run_length, s.max_run_length
        );
        o += "  n   total n-grams      unique   diversity   top-10 coverage\n";
        for g in &s.ngrams {
            o += &format!(
                "  {}  {:>13} {:>11}   {:>9.4}   {:>14.2}%\n",
                g.n,
                g.total,
                g.unique,
                g.diversity,
                100.0 * g.top10_coverage
            );
        }
        let hist: Vec<String> = s.run_length_histogram.iter().take(8).map(|(l, c)| format!("{l}:{c}")).collect();
        let more = if s.run_length_histogram.len() > 8 { " ..." } else { "" };
        o += &format!("  run lengths (length:runs) {}{more}\n", hist.join(" "));
    }
    o += "\nRecommendation:\n";
    for line in &r.recommendation.text {
        o += &format!("  {line}\n");
    }
    o
}

/// Longest run length shown as its own bar; longer runs share the last bar.
const RUN_BARS: u64 = 40;

fn write_plots(dir: &Path, r: &Report) -> Result<()> {
    let ss = streams(r);
    let points: Vec<Vec<(f64, f64)>> = ss
        .iter()
        .map(|s| s.rank_frequency.iter().enumerate().map(|(i, &c)| ((i + 1) as f64, c as f64)).collect())
        .collect();
    let series: Vec<plot::Series<'_>> =
        ss.iter().zip(&points).map(|(s, p)| plot::Series { label: s.name.clone(), points: p }).collect();
    plot::loglog(&dir.join("zipf.png"), "RANK-FREQUENCY (ZIPF, LOG-LOG)", "rank", "count", &series)?;
    for s in &ss {
        let mut bars: Vec<(String, u64)> = (1..=RUN_BARS).map(|l| (l.to_string(), 0)).collect();
        let mut over = 0u64;
        for &(l, c) in &s.run_length_histogram {
            if l < RUN_BARS {
                bars[(l - 1) as usize].1 += c;
            } else {
                over += c;
            }
        }
        bars[(RUN_BARS - 1) as usize] = (format!("{RUN_BARS}+"), over);
        let max_used = s.run_length_histogram.last().map_or(1, |&(l, _)| l.min(RUN_BARS)) as usize;
        bars.truncate(max_used.max(1));
        let name = s.name.replace(' ', "_");
        let title = format!("RUN LENGTHS: {} (MAX {})", s.name, s.max_run_length);
        plot::bars_logy(&dir.join(format!("runs_{name}.png")), &title, "run length", "runs", &bars)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{parse_memory, Memory};

    #[test]
    fn memory_sizes_print_as_they_parse() {
        for m in [None, Some(2 << 30), Some(512 << 20), Some(3000 << 10), Some(1_500_000_001), Some(3 << 40)] {
            let text = Memory(m).to_string();
            assert_eq!(parse_memory(&text).map(|p| p.0), Ok(m), "{text}");
        }
        assert_eq!(Memory(Some(2 << 30)).to_string(), "2G");
        assert_eq!(parse_memory("1.5G").map(|p| p.0), Ok(Some(3 << 29)));
        assert_eq!(parse_memory("1M").map(|p| p.0), Ok(Some(1 << 20)));
        assert_eq!(parse_memory("64T").map(|p| p.0), Ok(Some(64 << 40)));
        for bad in ["0", "1", "1048575", "1e30", "65T", "-1G", "NaN", "x"] {
            assert!(parse_memory(bad).unwrap_err().contains("a size from 1M to 64T"), "{bad}");
        }
    }
}
