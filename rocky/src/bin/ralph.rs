//! `ralph serve --listen ADDR`: the RALPH worker (contract §5).

use clap::Parser;
use rocky::cli::{RalphArgs, RalphCommand, ServeArgs};
use rocky::kahn::Encoding;
use rocky::vault::Keyring;
use rocky::worker::{Worker, WorkerConfig};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rocky::logging::init("ralph=info,rocky_e2e=info");
    let RalphCommand::Serve(ServeArgs {
        listen,
        vault,
        max_skew_secs,
        kahn_schema,
        kahn_rename,
        follow_lease,
    }) = RalphArgs::parse().command;
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
