//! The container topology's console and worker: their secrets written to files in the work
//! directory, then both started through [`crate::containers`].

use std::path::{Path, PathBuf};

use super::options::{Paths, StackError, StackOptions, console_teardown_deadline};
use crate::containers::{ServiceContainers, ServiceImage};
use rocky::auth::Principal;

/// The worker, then the console, each in its own container; their configuration goes
/// through files in the work directory (tokens and VAULT files, mode 0600).
pub(super) async fn start_containers(
    opts: &StackOptions,
    paths: Paths<'_>,
    image: &ServiceImage,
    secret: &str,
    worker_secret: &str,
    tokens: &[(String, Principal)],
) -> Result<(ServiceContainers, Vec<PathBuf>), StackError> {
    let write = |path: &Path, r: std::io::Result<()>| {
        r.map_err(|e| StackError::Setup(format!("write {}: {e}", path.display())))
    };
    let tokens_path = opts.work_dir.join("tokens.yaml");
    write(
        &tokens_path,
        rocky::auth::write_tokens_file(&tokens_path, tokens),
    )?;
    let console_vault = opts.work_dir.join("console-vault.yaml");
    write(
        &console_vault,
        rocky::vault::write_keyring_file(&console_vault, "v1", &[("v1", secret)]),
    )?;
    let worker_vault = opts.work_dir.join("worker-vault.yaml");
    write(
        &worker_vault,
        rocky::vault::write_keyring_file(&worker_vault, "v1", &[("v1", worker_secret)]),
    )?;
    let started = ServiceContainers::start(&crate::containers::Config {
        image,
        session: &opts.session,
        work_dir: &opts.work_dir,
        hearth_socket: paths.hearth_socket,
        hatch_path: paths.hatch_path,
        tokens: &tokens_path,
        console_vault: &console_vault,
        worker_vault: &worker_vault,
        tiers_dir: &opts.tiers_dir,
        run_timeout: opts.run_timeout,
        teardown_timeout: console_teardown_deadline(opts),
        drift: &opts.worker_drift,
        shared: opts.shared,
    })
    .await;
    let secrets = vec![tokens_path, console_vault, worker_vault];
    match started {
        Ok(containers) => Ok((containers, secrets)),
        Err(e) => {
            for path in &secrets {
                let _ = std::fs::remove_file(path);
            }
            Err(e.into())
        }
    }
}
