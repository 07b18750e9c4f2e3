//! `params_json [--config-only] MODEL...`: the `audiotok params --json` report of the library job,
//! for tools/bench_params.py (a release build of this crate alone, without the CLI's dependencies).

use audiotok_inspect::job::{default_name, params, ParamsOptions, PartSpec};

fn main() -> std::process::ExitCode {
    let mut opts = ParamsOptions::default();
    for a in std::env::args().skip(1) {
        if a == "--config-only" {
            opts.config_only = true;
        } else {
            opts.parts.push(PartSpec { name: default_name(&a), model: a });
        }
    }
    match params(&opts).map(|r| serde_json::to_string(&r)) {
        Ok(Ok(json)) => {
            println!("{json}");
            std::process::ExitCode::SUCCESS
        }
        Ok(Err(e)) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::from(2)
        }
    }
}
