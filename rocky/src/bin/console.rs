//! `console --listen ADDR --hearth-socket PATH --worker-url URL --hatch FILE ...`: the HTTP API
//! (contract §4).

use std::sync::Arc;

use clap::Parser;
use rocky::auth::LocalAuth;
use rocky::cli::ConsoleArgs as Args;
use rocky::console::{Console, ConsoleConfig, Deadlines};
use rocky::hatch::{Hatch, HatchOptions};
use rocky::hearth::client::HearthClient;
use rocky::vault::Keyring;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rocky::logging::init("console=info,rocky_e2e=info");
    match run(Args::parse()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("console: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let keyring = match &args.vault {
        Some(p) => Keyring::from_file(p)?,
        None => Keyring::from_env()?,
    };
    let config = ConsoleConfig {
        auth: LocalAuth::from_file(&args.tokens)?,
        hearth: HearthClient::new(&args.hearth_socket),
        worker_url: args.worker_url.trim_end_matches('/').to_owned(),
        keyring,
        hatch: Arc::new(Hatch::open(
            &args.hatch,
            HatchOptions::sealed(
                &args
                    .hatch_key
                    .clone()
                    .unwrap_or_else(|| rocky::hatch::default_key_path(&args.hatch)),
                args.hatch_sync,
            )?,
        )?),
        tiers: rocky::tier::load_dir(&args.tiers)?,
        deadlines: Deadlines {
            run: args.run_timeout,
            teardown: args.teardown_timeout,
            ..Deadlines::default()
        },
    };
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .map_err(|e| anyhow::anyhow!("failed to listen on {}: {e}", args.listen))?;
    println!("console listening on {}", listener.local_addr()?);
    rocky::http::serve(
        listener,
        Console::new(config).router(),
        rocky::shutdown::signalled(),
    )
    .await?;
    Ok(())
}
