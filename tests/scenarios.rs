//! The `scenarios` test target (`harness = false`). It speaks two protocols:
//!
//! - cargo-nextest's custom-harness protocol: `--list --format terse [--ignored]` lists every
//!   scenario as a test (`NAME: test`), `--exact NAME` runs one, in its own process;
//! - plain `cargo test` (and `cargo test --test scenarios -- [OPTIONS] [PATH|WORD...]`): every
//!   selected scenario in this process, with the options of `rocky-e2e play`.
//!
//! Scenarios tagged `@docker` are nextest's ignored tests while the e2e gate is closed.

use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use rocky_e2e::runner::{self, RunOptions, Selection};
use rocky_e2e::topology::{self, Policy};

#[derive(Parser, Debug)]
#[command(
    name = "scenarios",
    about = "rocky-e2e scenarios (cargo test --test scenarios -- …, cargo nextest run --test scenarios)"
)]
struct Args {
    #[command(flatten)]
    run: RunOptions,
}

/// nextest's side of the protocol.
enum Nextest {
    List { ignored: bool },
    Exact { name: String, ignored: bool },
}

fn nextest_mode(args: &[String]) -> Option<Nextest> {
    let has = |flag: &str| args.iter().any(|a| a == flag);
    let ignored = has("--ignored") || has("--include-ignored");
    if has("--list") {
        return Some(Nextest::List { ignored });
    }
    if has("--exact") {
        // The name is the one argument that is neither a flag nor a flag's value.
        let mut name = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--format" | "--color" | "--test-threads" | "-Z" => {
                    it.next();
                }
                s if s.starts_with('-') => {}
                s => name = Some(s.to_owned()),
            }
        }
        return name.map(|name| Nextest::Exact { name, ignored });
    }
    None
}

/// Whether a scenario is one of nextest's ignored tests here: it needs Docker and the e2e gate
/// is closed.
fn ignored(entry: &runner::catalogue::Entry) -> bool {
    !topology::gate_open() && entry.has_tag(topology::DOCKER_TAG)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime starts");
    match nextest_mode(&args) {
        Some(Nextest::List { ignored: only }) => {
            // stdout carries only `NAME: test` lines: nextest parses every one.
            let plan = match runner::plan(&RunOptions::default(), &Selection::All) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("scenarios: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut out = std::io::stdout().lock();
            for e in plan.all.iter().filter(|e| !only || ignored(e)) {
                let _ = writeln!(out, "{}: test", e.name);
            }
            ExitCode::SUCCESS
        }
        Some(Nextest::Exact {
            name,
            ignored: run_ignored,
        }) => {
            let selection = Selection::Exact(name.clone());
            if !run_ignored
                && let Ok(plan) = runner::plan(&RunOptions::default(), &selection)
                && plan.selected.iter().any(ignored)
            {
                println!("test {name} ... ignored");
                return ExitCode::SUCCESS;
            }
            let ok = runtime.block_on(runner::run(RunOptions::default(), Policy::Gate, selection));
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        None => {
            let args = Args::parse();
            let ok = runtime.block_on(runner::run(args.run, Policy::Gate, Selection::All));
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
    }
}
