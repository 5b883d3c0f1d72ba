//! `ralph serve --listen ADDR`: the RALPH worker (contract §5).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use rocky::kahn::Encoding;
use rocky::vault::{self, Keyring};
use rocky::worker::{Worker, WorkerConfig};

#[derive(Parser, Debug)]
#[command(name = "ralph", about = "rocky's RALPH worker")]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve runs over HTTP.
    Serve {
        /// Address to listen on, e.g. 127.0.0.1:7001 (port 0 picks a free one; the bound
        /// address is printed on stdout).
        #[arg(long)]
        listen: String,
        /// VAULT keyring file (YAML); defaults to $ROCKY_VAULT_FILE.
        #[arg(long)]
        vault: Option<PathBuf>,
        /// Allowed bearer clock skew, seconds, both directions.
        #[arg(long, default_value_t = vault::DEFAULT_MAX_SKEW_SECS)]
        max_skew_secs: i64,
        /// The `schema` written into every KAHN frame (default `kahn/1`).
        #[arg(long)]
        kahn_schema: Option<String>,
        /// Write KAHN field FROM under the name TO (`FROM:TO`).
        #[arg(long, value_parser = parse_rename)]
        kahn_rename: Option<(String, String)>,
        /// How long a run may have no open event stream before it is cancelled, e.g. `30s`
        /// (an open stream renews it).
        #[arg(long, default_value = "30s", value_parser = parse_lease)]
        follow_lease: std::time::Duration,
    },
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rocky::logging::init("ralph=info,rocky_e2e=info");
    let Command::Serve {
        listen,
        vault,
        max_skew_secs,
        kahn_schema,
        kahn_rename,
        follow_lease,
    } = Args::parse().command;
    let keyring = match vault {
        Some(path) => Keyring::from_file(&path),
        None => Keyring::from_env(),
    };
    let keyring = match keyring {
        Ok(k) => k,
        Err(e) => {
            eprintln!("ralph: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("ralph: failed to listen on {listen}: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    println!(
        "ralph listening on {}",
        listener
            .local_addr()
            .expect("bound listener has an address")
    );
    let config = WorkerConfig {
        keyring,
        max_skew_secs,
        encoding: Encoding {
            schema: kahn_schema,
            rename: kahn_rename,
        },
    };
    let worker = Worker::with_follow_lease(config, follow_lease);
    match rocky::http::serve(listener, worker.router(), rocky::shutdown::signalled()).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ralph: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// A lease between 100 ms and an hour: shorter would cancel a run between two reconnects.
fn parse_lease(s: &str) -> Result<std::time::Duration, String> {
    use std::time::Duration;
    rocky::duration::parse_within(s, Duration::from_millis(100), Duration::from_secs(3600))
        .map_err(|e| e.to_string())
}

/// `FROM:TO`, both non-empty.
fn parse_rename(s: &str) -> Result<(String, String), String> {
    match s.split_once(':') {
        Some((from, to)) if !from.is_empty() && !to.is_empty() => Ok((from.into(), to.into())),
        _ => Err(format!("expected FROM:TO, got {s:?}")),
    }
}
