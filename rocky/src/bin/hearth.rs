//! `hearth --socket PATH [--driver local-docker|process] [--teardown-timeout DURATION]`:
//! the provisioner daemon (contract §3).
//!
//! The order matters (contract §9, one hearth per socket): first the locks (the socket's and
//! the session's; a second hearth exits here having touched nothing), then the socket, then
//! rediscovery in the background (503 `rediscovering` until it completes), then the ready line.

use std::sync::Arc;

use clap::Parser;
use rocky::cli::HearthArgs as Args;
use rocky::hearth::DriverKind;
use rocky::hearth::driver::Driver;
use rocky::hearth::driver::docker::DockerDriver;
use rocky::hearth::driver::process::ProcessDriver;
use rocky::hearth::lock::{self, HearthLock};
use rocky::hearth::server::Hearth;
use rocky::hearth::socket::bind_socket;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    rocky::logging::init("hearth=info,rocky_e2e=info");
    let args = Args::parse();
    match run(args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let session = args
        .session
        .clone()
        .unwrap_or_else(|| rocky::ids::random_hex(6));
    // Before anything else: no rediscovery, no engine call, no socket until both are ours.
    let _socket_lock = HearthLock::acquire(
        &lock::socket_lock_path(&args.socket),
        &format!("socket {}", args.socket.display()),
    )?;
    let _session_lock = HearthLock::acquire(
        &lock::session_lock_path(&session),
        &format!("session {session}"),
    )?;
    if let Some(pid) = args.keeper_pid {
        let keeper = rocky::docker::owner::ProcessId::of_pid(pid).ok_or_else(|| {
            anyhow::anyhow!("--keeper-pid {pid}: no such process in hearth's PID namespace")
        })?;
        rocky::docker::labels::set_keeper(keeper);
    }
    match args.driver {
        DriverKind::LocalDocker => serve(DockerDriver::new(session.clone()), &args, &session).await,
        DriverKind::Process => {
            let standin = args.standin_bin.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "the process driver needs --standin-bin PATH (the compiled stand-in)"
                )
            })?;
            let state = rocky::hearth::driver::process::state_path(&args.socket);
            serve(ProcessDriver::new(standin, Some(state)), &args, &session).await
        }
    }
}

async fn serve<D: Driver>(driver: D, args: &Args, session: &str) -> anyhow::Result<()> {
    let hearth = Arc::new(Hearth::new(
        driver,
        args.teardown_timeout,
        args.health_timeout,
    ));
    let listener = bind_socket(&args.socket)
        .map_err(|e| anyhow::anyhow!("failed to bind {}: {e}", args.socket.display()))?;
    // Served meanwhile: a request about a workspace not placed yet gets 503, never 404.
    hearth.begin_rediscovery();
    let announce = async {
        hearth.first_attempt().await;
        tracing::info!(driver = D::KIND.as_str(), session, "hearth ready");
        // The one line on stdout: whoever spawned us waits for it instead of polling the socket.
        println!("hearth listening on {}", args.socket.display());
    };
    let exit_on_eof = args.exit_on_stdin_eof;
    let stop = async move {
        if exit_on_eof {
            tokio::select! {
                _ = rocky::shutdown::signalled() => {}
                _ = rocky::shutdown::stdin_closed() => {}
            }
        } else {
            rocky::shutdown::signalled().await;
        }
    };
    let (served, ()) = tokio::join!(
        rocky::http::serve(listener, hearth.clone().router(), stop),
        announce
    );
    served?;
    hearth.shutdown().await;
    rocky::hearth::socket::remove_socket(&args.socket);
    Ok(())
}
