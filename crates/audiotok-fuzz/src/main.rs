//! `audiotok-fuzz`: the harness's command line (see the crate docs).
//!
//! - `audiotok-fuzz run [CASES]`: every target (environment as in `harness::Config::from_env`),
//!   the table on stdout, failures on stderr; exit 1 on any failure;
//! - `audiotok-fuzz replay TARGET FILE`: one input, in-process;
//! - `audiotok-fuzz child TARGET BASE FROM TO WORK`: the child process (internal);
//! - `audiotok-fuzz list`: the targets.

use std::path::Path;
use std::process::ExitCode;

use audiotok_fuzz::harness::{self, Config};

fn usage() -> ExitCode {
    eprintln!("usage: audiotok-fuzz run [CASES] | replay TARGET FILE | list | child TARGET BASE FROM TO WORK");
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let strs: Vec<&str> = args.iter().map(String::as_str).collect();
    match strs.as_slice() {
        ["child", target, base, from, to, work] => {
            let (Ok(base), Ok(from), Ok(to)) = (base.parse(), from.parse(), to.parse()) else {
                return usage();
            };
            ExitCode::from(harness::child(target, base, from, to, Path::new(work)) as u8)
        }
        ["list"] => {
            for t in audiotok_fuzz::targets::all() {
                println!("{:12} {}", t.name, t.what);
            }
            ExitCode::SUCCESS
        }
        ["replay", target, file] => match harness::replay(target, Path::new(file)) {
            Ok(Ok(s)) => {
                println!("Ok: {s}");
                ExitCode::SUCCESS
            }
            Ok(Err(e)) => {
                println!("typed error: {e}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        ["run", rest @ ..] if rest.len() <= 1 => {
            let exe = match std::env::current_exe() {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("finding this executable: {e}");
                    return ExitCode::from(2);
                }
            };
            let default = rest.first().and_then(|c| c.parse().ok()).unwrap_or(5000);
            let mut cfg = Config::from_env(exe, default);
            if let Some(c) = rest.first().and_then(|c| c.parse().ok()) {
                cfg.cases = c;
            }
            match harness::run_all(&cfg) {
                Ok(reports) => {
                    print!("{}", harness::table(&reports));
                    let failures: Vec<_> = reports.iter().flat_map(|r| &r.failures).collect();
                    for f in &failures {
                        eprintln!("{f}");
                    }
                    if failures.is_empty() {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(1)
                    }
                }
                Err(e) => {
                    eprintln!("{e}");
                    ExitCode::from(2)
                }
            }
        }
        _ => usage(),
    }
}
