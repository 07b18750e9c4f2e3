//! The fuzz campaigns: a short budget in every `cargo test`, a long one behind `--ignored`, and the
//! replay of one kept input (see the crate docs).

use std::path::PathBuf;

use audiotok_fuzz::harness::{self, Config};

fn campaign(default_cases: u64) {
    let cfg = Config::from_env(PathBuf::from(env!("CARGO_BIN_EXE_audiotok-fuzz")), default_cases);
    let reports = match harness::run_all(&cfg) {
        Ok(r) => r,
        Err(e) => panic!("the campaign did not run: {e}"),
    };
    let table = harness::table(&reports);
    println!("{table}");
    let failures: Vec<String> = reports.iter().flat_map(|r| &r.failures).map(ToString::to_string).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{table}\n{}",
        failures.len(),
        reports.iter().map(|r| r.cases).sum::<u64>(),
        failures.join("\n")
    );
    for r in &reports {
        assert_eq!(r.ok + r.errors, r.cases, "{}: every case accounted for", r.target);
    }
}

/// The short budget: every reader, a few hundred mutated inputs each (`AUDIOTOK_FUZZ_CASES` overrides).
#[test]
fn short_budget() {
    campaign(200);
}

/// The long budget (`cargo test -p audiotok-fuzz --release -- --ignored`, or `tools/fuzz.sh`).
#[test]
#[ignore = "long: minutes"]
fn long_budget() {
    campaign(5000);
}

/// Replays `AUDIOTOK_FUZZ_REPLAY` (a kept input) with `AUDIOTOK_FUZZ_TARGET`, in this process, so
/// a panic shows its backtrace: `AUDIOTOK_FUZZ_REPLAY=PATH AUDIOTOK_FUZZ_TARGET=T cargo test -p
/// audiotok-fuzz --test fuzz replay -- --ignored --nocapture`. A tool, not a check: ignored by default.
#[test]
#[ignore = "a replay tool: needs AUDIOTOK_FUZZ_REPLAY and AUDIOTOK_FUZZ_TARGET"]
fn replay() {
    let (Some(file), Ok(target)) = (std::env::var_os("AUDIOTOK_FUZZ_REPLAY"), std::env::var("AUDIOTOK_FUZZ_TARGET"))
    else {
        return;
    };
    match harness::replay(&target, std::path::Path::new(&file)) {
        Ok(outcome) => println!("{target} {}: {outcome:?}", PathBuf::from(file).display()),
        Err(e) => panic!("{e}"),
    }
}
