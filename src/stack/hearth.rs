//! hearth as a child process of the harness: found on the search path, spawned on the stack's
//! unix socket, ready by its first line, and asked to exit by closing its stdin.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use super::{StackError, StackOptions};

/// How long hearth may take to print its ready line.
const HEARTH_START_DEADLINE: Duration = Duration::from_secs(10);
/// How long hearth may take to tear everything down and exit when asked to.
const HEARTH_STOP_DEADLINE: Duration = Duration::from_secs(60);

/// Finds `hearth` in `search`.
pub fn locate_hearth(search: &[PathBuf]) -> Result<PathBuf, StackError> {
    search
        .iter()
        .map(|d| d.join("hearth"))
        .find(|p| p.is_file())
        .ok_or_else(|| StackError::HearthNotFound {
            looked_in: search.to_vec(),
        })
}

/// Spawns hearth for `opts` and waits for its ready line; its stderr goes to `log`.
pub(super) async fn spawn(
    opts: &StackOptions,
    socket: &Path,
    log: &Path,
) -> Result<Child, StackError> {
    let path = locate_hearth(&opts.hearth_search)?;
    // Appended to: a hearth restarted by a chaos step writes after the one it replaces.
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| StackError::Setup(format!("create {}: {e}", log.display())))?;
    let args = rocky::cli::HearthArgs {
        driver: opts.driver,
        teardown_timeout: opts.teardown_timeout,
        session: Some(opts.session.clone()),
        standin_bin: opts.standin_bin.clone(),
        exit_on_stdin_eof: true,
        // The harness keeps the session: a hearth it kills and restarts (a chaos step) finds
        // what the one before made, whatever another run's sweep meanwhile judges.
        keeper_pid: Some(std::process::id()),
        ..rocky::cli::HearthArgs::new(socket)
    };
    let mut cmd = Command::new(&path);
    cmd.args(args.to_args())
        // Inherited by everything hearth starts: how the harness finds them from outside.
        .env(super::processes::SESSION_ENV, &opts.session)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true);
    if let Some(host) = &opts.docker_host {
        cmd.env("DOCKER_HOST", host);
    }
    let mut child = cmd.spawn().map_err(|source| StackError::HearthSpawn {
        path: path.clone(),
        source,
    })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let started = Instant::now();
    let line = tokio::time::timeout(HEARTH_START_DEADLINE, lines.next_line()).await;
    let detail = match line {
        Ok(Ok(Some(l))) if l.starts_with("hearth listening on") => return Ok(child),
        Ok(Ok(Some(l))) => format!("unexpected first line {l:?}"),
        Ok(Ok(None)) => format!(
            "hearth exited at once; its log ({}) says: {}",
            log.display(),
            std::fs::read_to_string(log).unwrap_or_default().trim()
        ),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no ready line after {:?}", started.elapsed()),
    };
    Err(StackError::HearthNotReady {
        deadline: HEARTH_START_DEADLINE,
        detail,
    })
}

/// Kills hearth with SIGKILL (no cleanup: what it made stays) and waits until it is gone.
pub(super) async fn kill(hearth: &mut Child) -> Result<(), String> {
    hearth
        .start_kill()
        .map_err(|e| format!("failed to SIGKILL hearth: {e}"))?;
    tokio::time::timeout(HEARTH_STOP_DEADLINE, hearth.wait())
        .await
        .map_err(|_| format!("hearth did not die within {HEARTH_STOP_DEADLINE:?} of SIGKILL"))?
        .map_err(|e| format!("failed to wait for hearth: {e}"))?;
    Ok(())
}

/// Asks hearth to exit and waits for it, killing it after [`HEARTH_STOP_DEADLINE`].
pub(super) async fn stop(hearth: &mut Child) -> Result<(), String> {
    // Closing hearth's stdin is its signal to clean up and exit.
    drop(hearth.stdin.take());
    match tokio::time::timeout(HEARTH_STOP_DEADLINE, hearth.wait()).await {
        Ok(Ok(status)) if status.success() => Ok(()),
        Ok(Ok(status)) => Err(format!("hearth exited with {status}")),
        Ok(Err(e)) => Err(format!("failed to wait for hearth: {e}")),
        Err(_) => {
            let _ = hearth.kill().await;
            Err(format!(
                "hearth did not exit within {HEARTH_STOP_DEADLINE:?} of being asked; killed"
            ))
        }
    }
}
