//! `cargo test` entry point for the scenarios in `features/` (a `harness = false` target).
//! Flags after `--`: `--tags @drill`, `--name REGEX`, `--concurrency N`, `--dry-run`, paths.

use clap::Parser;

#[derive(Parser, Debug)]
#[command(
    name = "scenarios",
    about = "rocky-e2e scenarios (cargo test --test scenarios -- …)"
)]
struct Args {
    #[command(flatten)]
    run: rocky_e2e::runner::RunOptions,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if rocky_e2e::runner::run(args.run, rocky_e2e::topology::Policy::Gate).await {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
