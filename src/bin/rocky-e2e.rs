//! `rocky-e2e`: the command users run (contract §7).
//!
//! - `play [PATH...] [--tags EXPR]`: runs the scenarios and prints each act, the chain, timings.
//! - `up --state-dir DIR`: a stack for manual use, until SIGINT/SIGTERM.
//! - `hatch verify FILE`: checks a HATCH log's hash chain.

// The scenario code is shared with the `cargo test` target; some of it only that target uses.
#[allow(dead_code)]
#[path = "../../steps/scenarios.rs"]
mod scenarios;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use scenarios::topology::{self, Policy};

#[derive(Parser, Debug)]
#[command(
    name = "rocky-e2e",
    about = "rocky's end-to-end play and its tools",
    version
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the scenarios in features/ (or the given files/folders) on the best topology.
    Play {
        /// Feature files or folders; default: the crate's features/.
        paths: Vec<PathBuf>,
        /// Only scenarios matching this tag expression, e.g. `@e2e and not @drill`.
        #[arg(long)]
        tags: Option<String>,
        /// Most scenarios running at once.
        #[arg(long)]
        concurrency: Option<usize>,
    },
    /// Start hearth, console and worker for manual use; tear down on SIGINT/SIGTERM.
    Up {
        /// Where the stack keeps its socket, logs and `stack.json`.
        #[arg(long)]
        state_dir: PathBuf,
    },
    /// HATCH log tools.
    Hatch {
        #[command(subcommand)]
        command: HatchCommand,
    },
}

#[derive(Subcommand, Debug)]
enum HatchCommand {
    /// Recompute the hash chain of a HATCH log and name the first bad record.
    Verify { file: PathBuf },
}

#[tokio::main]
async fn main() -> ExitCode {
    rocky_e2e::logging::init("warn");
    match Args::parse().command {
        Command::Play {
            paths,
            tags,
            concurrency,
        } => play(paths, tags, concurrency).await,
        Command::Up { state_dir } => match up(state_dir).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rocky-e2e up: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Hatch {
            command: HatchCommand::Verify { file },
        } => match rocky_e2e::hatch::verify_file(&file) {
            Ok(s) => {
                println!(
                    "ok: {} records, chain intact (last hash {})",
                    s.records, s.last_hash
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                ExitCode::FAILURE
            }
        },
    }
}

async fn play(paths: Vec<PathBuf>, tags: Option<String>, concurrency: Option<usize>) -> ExitCode {
    let mut cli = scenarios::Cli::default();
    if let Some(t) = tags {
        match t.parse() {
            Ok(op) => cli.tags_filter = Some(op),
            Err(e) => {
                eprintln!("rocky-e2e play: invalid tag expression {t:?}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    cli.runner.concurrency = concurrency;
    let paths = if paths.is_empty() {
        vec![scenarios::features_dir()]
    } else {
        paths
    };
    let started = std::time::Instant::now();
    let mut ok = true;
    for path in paths {
        if !path.exists() {
            eprintln!("rocky-e2e play: {} does not exist", path.display());
            return ExitCode::from(2);
        }
        ok &= scenarios::run(path, cli.clone(), Policy::Best).await;
    }
    println!("rocky-e2e play: wall time {:.2?}", started.elapsed());
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn up(state_dir: PathBuf) -> anyhow::Result<()> {
    let topology = topology::init(Policy::Best)
        .await
        .map_err(|e| anyhow::anyhow!(e))?;
    println!("rocky-e2e {}", topology.description);
    std::fs::create_dir_all(&state_dir)?;
    let state_dir = std::fs::canonicalize(&state_dir)?;
    let options = topology.stack_options(state_dir.clone());
    let stack = rocky_e2e::stack::Stack::start(&options).await?;
    let info = serde_json::json!({
        "console_url": stack.console_url,
        "worker_url": stack.worker_url,
        "admin_token": stack.admin_token,
        "hatch_path": stack.hatch_path,
        "hearth_socket": stack.hearth_socket,
        "driver": stack.driver.as_str(),
        "session": stack.session,
    });
    let path = state_dir.join("stack.json");
    write_private(&path, &serde_json::to_vec_pretty(&info)?)?;
    println!("stack up: {}", path.display());
    println!("  console  {}", stack.console_url);
    println!("  worker   {}", stack.worker_url);
    println!("  hatch    {}", stack.hatch_path.display());
    println!("Ctrl-C (SIGINT) or SIGTERM tears everything down.");
    rocky_e2e::shutdown::signalled().await;
    println!("tearing down…");
    let result = stack.stop().await;
    let _ = std::fs::remove_file(&path);
    result.map_err(|e| anyhow::anyhow!(e))?;
    println!("done: nothing left running");
    Ok(())
}

/// `stack.json` holds the admin token: readable by its owner only.
fn write_private(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)
}
