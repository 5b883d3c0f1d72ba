//! A running stack: hearth spawned as a binary on its unix socket, plus the console and the
//! worker, either as in-process servers on loopback listeners (embedded topology) or each in
//! its own container on a network made for the stack (container topology, see
//! [`crate::containers`]). The harness, `rocky-e2e play` and `rocky-e2e up` all start stacks
//! through here.
//!
//! Faults of the failure drill are options of the stack (a wrong worker secret, a drifting
//! KAHN encoder, a hearth search path without hearth), so they hit the real components in
//! either topology.
//!
//! - `options`: what shapes a stack ([`StackOptions`], [`Services`]) and why it fails to start.
//! - `hearth`: spawning hearth, waiting for its ready line, asking it to exit.
//! - `embedded`: the console and the worker as servers of this process.
//! - `containerized`: the console and the worker as containers (through [`crate::containers`]).
//! - [`processes`]: the session's processes, found from outside hearth by the marker hearth is
//!   started with; [`leftovers`]: what of a workspace or a session remains, and removing it.

mod containerized;
mod embedded;
mod hearth;
pub mod leftovers;
mod options;
pub mod processes;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::process::Child;

use crate::containers::ServiceContainers;
use rocky::auth::{Principal, Role};
use rocky::hearth::DriverKind;
use rocky::hearth::client::HearthClient;

use containerized::start_containers;
use embedded::{InProcess, start_in_process};
pub use hearth::locate_hearth;
pub use leftovers::{Cleanup, cleanup};
pub use options::{Services, StackError, StackOptions};

/// A running stack. Call [`Stack::stop`]. Dropping it instead kills hearth without cleanup
/// (and, on the container topology, removes the containers but not their network): the
/// harness's session sweep, or the next run's sweep of dead pids, removes what is left.
pub struct Stack {
    /// The console's base URL.
    pub console_url: String,
    /// The worker's base URL.
    pub worker_url: String,
    /// Bearer token of the `admin` principal.
    pub admin_token: String,
    /// Bearer token of a `viewer` principal (for 403 checks).
    pub viewer_token: String,
    /// The HATCH JSONL file the console writes.
    pub hatch_path: PathBuf,
    /// hearth's unix socket.
    pub hearth_socket: PathBuf,
    /// hearth's stderr, kept as evidence.
    pub hearth_log: PathBuf,
    /// Session id on every object hearth made (and on the stack's containers).
    pub session: String,
    /// Which driver hearth runs.
    pub driver: DriverKind,
    hearth: Child,
    services: Running,
    /// What the stack was started with (to restart hearth the same way).
    options: StackOptions,
}

/// The console and the worker as they run.
enum Running {
    InProcess(InProcess),
    Containers {
        containers: Box<ServiceContainers>,
        /// The tokens and VAULT files written for them; removed when the stack stops.
        secrets: Vec<PathBuf>,
    },
}

impl Stack {
    /// Spawns hearth, waits for its ready line, then starts the worker and the console
    /// (in-process or in containers, per [`StackOptions::services`]).
    pub async fn start(opts: &StackOptions) -> Result<Stack, StackError> {
        std::fs::create_dir_all(&opts.work_dir)
            .map_err(|e| StackError::Setup(format!("create {}: {e}", opts.work_dir.display())))?;
        let hearth_socket = opts.work_dir.join("hearth.sock");
        let hearth_log = opts.work_dir.join("hearth.log");
        let hatch_path = opts.work_dir.join("hatch.jsonl");
        let hearth = hearth::spawn(opts, &hearth_socket, &hearth_log).await?;

        let secret = hex::encode(rocky::vault::generate_secret());
        // Same key id, different secret: what a half-finished VAULT rotation looks like.
        let worker_secret = if opts.vault_drift {
            hex::encode(rocky::vault::generate_secret())
        } else {
            secret.clone()
        };
        let admin_token = rocky::ids::random_hex(16);
        let viewer_token = rocky::ids::random_hex(16);
        let tokens = vec![
            (
                admin_token.clone(),
                Principal {
                    name: "admin".into(),
                    role: Role::Admin,
                },
            ),
            (
                viewer_token.clone(),
                Principal {
                    name: "viewer".into(),
                    role: Role::Viewer,
                },
            ),
        ];
        let paths = Paths {
            hearth_socket: &hearth_socket,
            hatch_path: &hatch_path,
        };
        // On an error below, `hearth` drops and is killed (it has made nothing yet).
        let (console_url, worker_url, services) = match &opts.services {
            Services::InProcess => {
                start_in_process(opts, paths, &secret, &worker_secret, tokens).await?
            }
            Services::Containers(image) => {
                start_containers(opts, paths, image, &secret, &worker_secret, &tokens).await?
            }
        };
        Ok(Stack {
            console_url,
            worker_url,
            admin_token,
            viewer_token,
            hatch_path,
            hearth_socket,
            hearth_log,
            session: opts.session.clone(),
            driver: opts.driver,
            hearth,
            services,
            options: opts.clone(),
        })
    }

    /// Kills hearth with SIGKILL, as a crash would: it cleans nothing up. Its `local-docker`
    /// objects stay; its `process` services die with it (the kernel kills them).
    pub async fn kill_hearth(&mut self) -> Result<(), String> {
        hearth::kill(&mut self.hearth).await
    }

    /// Starts hearth again on the same socket and session (after [`Stack::kill_hearth`]); it
    /// rediscovers what the one before left.
    pub async fn restart_hearth(&mut self) -> Result<(), StackError> {
        self.hearth = hearth::spawn(&self.options, &self.hearth_socket, &self.hearth_log).await?;
        Ok(())
    }

    /// Kills the worker as a crash would (SIGKILL to its container, or, in process, its server
    /// and every connection dropped at once): its runs and frames are lost.
    pub async fn kill_worker(&mut self) -> Result<(), String> {
        match &self.services {
            Running::InProcess(servers) => servers.kill_worker().await,
            Running::Containers { containers, .. } => containers.kill_worker().await,
        }
    }

    /// Starts the worker again after [`Stack::kill_worker`], at the same address, with nothing
    /// in memory; returns once it answers.
    pub async fn restart_worker(&mut self) -> Result<(), String> {
        match &self.services {
            Running::InProcess(servers) => servers.restart_worker().await,
            Running::Containers { containers, .. } => containers.restart_worker().await,
        }
    }

    /// Where the console and the worker run: `in-process` or `containers`.
    pub fn services(&self) -> &'static str {
        self.options.services.as_str()
    }

    /// True when the console and the worker run in containers (the container topology).
    pub fn in_containers(&self) -> bool {
        matches!(self.services, Running::Containers { .. })
    }

    /// Output of the console and the worker so far, for a failing scenario's report: the
    /// containers' stdout/stderr (lines tagged `out|`/`err|`, a header per container), or, in
    /// process, their tracing output, which goes to this stack's own log file.
    pub fn logs(&self) -> String {
        match &self.services {
            Running::InProcess(servers) => std::fs::read_to_string(&servers.log)
                .map(|t| {
                    format!(
                        "── console and worker (in-process, {}) ──\n{t}",
                        servers.log.display()
                    )
                })
                .unwrap_or_default(),
            Running::Containers { containers, .. } => containers.logs(),
        }
    }

    /// The pid of this stack's hearth while it runs.
    pub fn hearth_pid(&self) -> Option<u32> {
        self.hearth.id()
    }

    /// A client for this stack's hearth.
    pub fn hearth(&self) -> HearthClient {
        HearthClient::new(&self.hearth_socket)
    }

    /// Stops the console and worker (servers, or containers and their network), then asks
    /// hearth to exit (it tears down whatever is still up) and waits for it. Every step runs;
    /// the error names each one that failed (e.g. hearth had to be killed).
    pub async fn stop(mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        match std::mem::replace(&mut self.services, Running::InProcess(InProcess::stopped())) {
            Running::InProcess(servers) => {
                if let Err(e) = servers.stop().await {
                    errors.push(e);
                }
            }
            Running::Containers {
                containers,
                secrets,
            } => {
                if let Err(e) = containers.stop().await {
                    errors.push(e);
                }
                for path in secrets {
                    if let Err(e) = std::fs::remove_file(&path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        errors.push(format!("failed to remove {}: {e}", path.display()));
                    }
                }
            }
        }
        if let Err(e) = hearth::stop(&mut self.hearth).await {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

/// Paths every topology shares.
#[derive(Clone, Copy)]
struct Paths<'a> {
    hearth_socket: &'a Path,
    hatch_path: &'a Path,
}

/// The console waits for hearth's teardown answer longer than hearth's own deadline, so that
/// hearth, not the console, is the one to report a missed deadline.
fn console_teardown_deadline(opts: &StackOptions) -> Duration {
    opts.teardown_timeout + Duration::from_secs(30)
}
