//! `audiotok`: turn raw audio collections into training data for audio language models.
//!
//! A thin binary over the library crates: argument parsing here, one module per subcommand in
//! [`cmd`], the shared file walking and parallel runner in [`runner`]. Logs, progress and
//! summaries go to stderr; results go to stdout or to files.

mod cmd;
mod plot;
mod runner;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Turn raw audio collections into training data for audio language models.
#[derive(Parser)]
#[command(name = "audiotok", version, about, long_about = None, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show container, codec, sample rate, channels and duration of audio files.
    Info(cmd::info::Args),
    /// Decode, downmix and resample one file to a float32 WAV.
    Convert(cmd::convert::Args),
    /// Compute model input features (Whisper log-mel, wav2vec2, mel-dB) as one .npy per file.
    Features(cmd::features::Args),
    /// Embed audio with a continuous encoder (HuBERT, wav2vec2, Qwen2-Audio, Whisper) as one .npy per file.
    Embed(cmd::embed::Args),
    /// Count the audio tokens an encoder needs for each file (Qwen2-Audio, Whisper, SNAC, ...).
    Count(cmd::count::Args),
    /// Pack instruction rows with audio into fixed-length token blocks (MosaicML MDS shards).
    Pack(cmd::pack::Args),
    /// Inspect, verify, merge and show MosaicML MDS datasets.
    Mds(cmd::mds::Args),
    /// Statistics of discrete audio tokens (entropy, Gini, n-grams, runs) and a BPE recommendation.
    Analyze(cmd::analyze::Args),
    /// Learn, apply, inspect and export BPE merges over integer audio-token streams.
    Bpe(cmd::bpe::Args),
    /// Encode audio into SNAC codec tokens (a Parquet token store), resumably.
    Encode(cmd::codec::EncodeArgs),
    /// Decode SNAC tokens from a token store back to WAV files.
    Decode(cmd::codec::DecodeArgs),
    /// BSQ spectrogram tokenizer: train on your audio.
    Bsq(cmd::bsq::Args),
    /// Count a model's parameters by component, trainable versus frozen (LoRA), from its file headers.
    Params(cmd::params::Args),
    /// Draw audio as it goes through preprocessing (PNG): waveform, features, embeddings.
    Plot(cmd::plot::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => cmd::info::run(a),
        Command::Convert(a) => cmd::convert::run(a),
        Command::Features(a) => cmd::features::run(a),
        Command::Embed(a) => cmd::embed::run(a),
        Command::Count(a) => cmd::count::run(a),
        Command::Pack(a) => cmd::pack::run(a),
        Command::Mds(a) => cmd::mds::run(a),
        Command::Analyze(a) => cmd::analyze::run(a),
        Command::Bpe(a) => cmd::bpe::run(a),
        Command::Encode(a) => cmd::codec::run_encode(a),
        Command::Decode(a) => cmd::codec::run_decode(a),
        Command::Bsq(a) => cmd::bsq::run(a),
        Command::Params(a) => cmd::params::run(a),
        Command::Plot(a) => cmd::plot::run(a),
    };
    match result {
        Ok(code) => code,
        // A closed stdout (`audiotok count ... | head`) ends the program quietly, as in coreutils.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {}", error_text(&e));
            ExitCode::from(2)
        }
    }
}

/// The error and its causes as one line ([`audiotok_core::error_text`]).
fn error_text(e: &anyhow::Error) -> String {
    audiotok_core::error_text(e.as_ref())
}

#[cfg(test)]
mod tests {
    use super::error_text;

    /// An error that quotes its source in its message and also exposes it.
    #[derive(Debug)]
    struct Quoting {
        source: std::io::Error,
    }

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "a.bin: {}", self.source)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.source)
        }
    }

    #[test]
    fn causes_quoted_by_their_parent_are_not_repeated() {
        let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
        let e = anyhow::Error::new(Quoting { source: io() }).context("reading the store");
        assert_eq!(error_text(&e), "reading the store: a.bin: gone");
        let e = anyhow::Error::new(io()).context("reading a.bin");
        assert_eq!(error_text(&e), "reading a.bin: gone");
    }
}
