//! `console --listen ADDR --hearth-socket PATH --worker-url URL --hatch FILE ...`: the HTTP API
//! (contract §4).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use rocky::auth::LocalAuth;
use rocky::console::{Console, ConsoleConfig, Deadlines};
use rocky::hatch::{Hatch, HatchOptions};
use rocky::hearth::client::HearthClient;
use rocky::vault::Keyring;

#[derive(Parser, Debug)]
#[command(name = "console", about = "rocky's console API")]
struct Args {
    /// Address to listen on (port 0 picks one; the bound address is printed on stdout).
    #[arg(long)]
    listen: String,
    /// hearth's unix socket.
    #[arg(long)]
    hearth_socket: PathBuf,
    /// Base URL of `ralph serve`.
    #[arg(long)]
    worker_url: String,
    /// HATCH log (JSONL, append-only, mode 0600); sealed at `FILE.seal`.
    #[arg(long)]
    hatch: PathBuf,
    /// The seal key (VAULT keyring YAML; its active key id seals). Default `FILE.key`, created
    /// with a fresh secret when missing; keep it off the log's disk in production.
    #[arg(long)]
    hatch_key: Option<PathBuf>,
    /// When an append reaches the disk: `always` (fsync each), `batch` (group commit: concurrent
    /// appends share one fsync) or `none` (the OS page cache).
    #[arg(long, default_value = "batch")]
    hatch_sync: rocky::hatch::SyncMode,
    /// LocalAuth tokens file (YAML).
    #[arg(long)]
    tokens: PathBuf,
    /// VAULT keyring file (YAML); defaults to $ROCKY_VAULT_FILE.
    #[arg(long)]
    vault: Option<PathBuf>,
    /// Directory of tier profiles (`*.yaml`).
    #[arg(long, default_value = "features/tiers")]
    tiers: PathBuf,
    /// Deadline from run submission to its end.
    #[arg(long, default_value = "60s", value_parser = rocky::duration::parse)]
    run_timeout: Duration,
    /// Deadline for hearth to answer a teardown (hearth enforces its own, shorter one inside).
    #[arg(long, default_value = "90s", value_parser = rocky::duration::parse)]
    teardown_timeout: Duration,
}

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
