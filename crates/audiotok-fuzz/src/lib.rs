//! A fuzz harness for every audiotok reader that runs on stable Rust.
//!
//! Each target ([`targets::all`]) reads seeded mutations ([`mutate`]) of committed fixtures through
//! the public API of its crate, the way the CLI does; every input must end in `Ok` or a typed error,
//! within bounded memory and time. Cases run in child processes ([`harness`]) so that an abort
//! (allocation failure, stack overflow) or a hang is reported with its case instead of killing the
//! run.
//!
//! - `cargo test -p audiotok-fuzz`: the short budget (fails on any panic, abort or timeout);
//! - `cargo test -p audiotok-fuzz -- --ignored`, or `AUDIOTOK_FUZZ_CASES=N`: longer budgets;
//! - `tools/fuzz.sh [CASES]`: the long budget in release mode, with the table of results;
//! - `AUDIOTOK_FUZZ_REPLAY=FILE AUDIOTOK_FUZZ_TARGET=T cargo test -p audiotok-fuzz --test fuzz replay`
//!   (or `audiotok-fuzz replay T FILE`): one kept input again, in-process.

pub mod harness;
pub mod mutate;
pub mod targets;
