//! `cargo test` entry point for the scenarios in `features/` (a `harness = false` target).
//! Flags after `--`: `--tags @drill`, `--name REGEX`, `--concurrency N`, `--dry-run`, paths.

mod scenarios;

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "scenarios",
    about = "rocky-e2e scenarios (cargo test --test scenarios -- …)"
)]
struct Args {
    #[command(flatten)]
    run: scenarios::RunOptions,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if scenarios::run(args.run, scenarios::topology::Policy::Gate).await {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
