//! `cargo test` entry point for the scenarios in `features/` (a `harness = false` target).
//! Flags after `--` are cucumber-rs's: `--tags @drill`, `--name REGEX`, `--concurrency N`.

mod scenarios;

use cucumber::cli;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = cli::Opts::parsed();
    if scenarios::run(
        scenarios::features_dir(),
        cli,
        scenarios::topology::Policy::Gate,
    )
    .await
    {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
