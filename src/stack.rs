//! A running stack: hearth spawned as a binary on its unix socket, plus the console and the
//! worker, either as in-process servers on loopback listeners (embedded topology) or each in
//! its own container on a network made for the stack (container topology, see
//! [`crate::containers`]). The harness, `rocky-e2e play` and `rocky-e2e up` all start stacks
//! through here.
//!
//! Faults of the failure drill are options of the stack (a wrong worker secret, a drifting
//! KAHN encoder, a hearth search path without hearth), so they hit the real components in
//! either topology.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::auth::{LocalAuth, Principal, Role};
use crate::console::{Console, ConsoleConfig, Deadlines};
use crate::containers::{ContainerError, ServiceContainers, ServiceImage};
use crate::hatch::Hatch;
use crate::hearth::DriverKind;
use crate::hearth::client::HearthClient;
use crate::kahn::Drift;
use crate::vault::Keyring;
use crate::worker::{Worker, WorkerConfig};

/// How long hearth may take to print its ready line.
const HEARTH_START_DEADLINE: Duration = Duration::from_secs(10);
/// How long hearth may take to tear everything down and exit when asked to.
const HEARTH_STOP_DEADLINE: Duration = Duration::from_secs(60);

/// Where the console and the worker run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Services {
    /// In this process, as servers on 127.0.0.1 listeners (the embedded topology).
    #[default]
    InProcess,
    /// Each in its own container of this image, on a Docker network made for the stack (the
    /// container topology). The engine is the harness's (`DOCKER_HOST` or the local socket),
    /// whatever [`StackOptions::docker_host`] tells hearth.
    Containers(ServiceImage),
}

impl Services {
    /// `in-process` or `containers`, for reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Services::InProcess => "in-process",
            Services::Containers(_) => "containers",
        }
    }
}

/// Everything that shapes a stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// `local-docker` or `process`.
    pub driver: DriverKind,
    /// Where the console and the worker run.
    pub services: Services,
    /// Directories searched for the `hearth` binary, in order.
    pub hearth_search: Vec<PathBuf>,
    /// Compiled stand-in, for the `process` driver.
    pub standin_bin: Option<PathBuf>,
    /// Session id for hearth's labels; unique per scenario.
    pub session: String,
    /// Where the socket, HATCH log and logs go.
    pub work_dir: PathBuf,
    /// Tier profiles directory.
    pub tiers_dir: PathBuf,
    /// hearth's teardown deadline.
    pub teardown_timeout: Duration,
    /// The console's run deadline.
    pub run_timeout: Duration,
    /// Fault: the worker encodes frames wrongly.
    pub worker_drift: Drift,
    /// Fault: the worker reads a different VAULT secret than the console.
    pub vault_drift: bool,
    /// Engine endpoint for hearth (`DOCKER_HOST`); `None` inherits ours.
    pub docker_host: Option<String>,
}

impl StackOptions {
    /// Defaults for a stack in `work_dir` with the crate's own tiers.
    pub fn new(driver: DriverKind, work_dir: PathBuf) -> StackOptions {
        StackOptions {
            driver,
            services: Services::InProcess,
            hearth_search: default_hearth_search(),
            standin_bin: None,
            session: crate::ids::random_hex(6),
            work_dir,
            tiers_dir: Path::new(env!("CARGO_MANIFEST_DIR")).join("features/tiers"),
            teardown_timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(60),
            worker_drift: Drift::None,
            vault_drift: false,
            docker_host: None,
        }
    }
}

/// Where `hearth` is looked for: beside the running executable (and its parent, for test
/// binaries in `target/<profile>/deps`), then every `PATH` entry.
pub fn default_hearth_search() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_owned());
        if dir.ends_with("deps")
            && let Some(up) = dir.parent()
        {
            dirs.push(up.to_owned());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// Why a stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "failed to spawn hearth: no `hearth` binary in any of {looked_in:?}; build it with `cargo build --bin hearth`"
    )]
    HearthNotFound { looked_in: Vec<PathBuf> },
    #[error("failed to spawn hearth from {path}: {source}")]
    HearthSpawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hearth did not become ready within {deadline:?}: {detail}")]
    HearthNotReady { deadline: Duration, detail: String },
    #[error("failed to set up the stack: {0}")]
    Setup(String),
    #[error("failed to start the console and worker containers: {0}")]
    Containers(#[from] ContainerError),
}

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
}

/// The console and the worker as they run.
enum Running {
    InProcess {
        stops: Vec<oneshot::Sender<()>>,
        servers: Vec<ServerTask>,
    },
    Containers {
        containers: Box<ServiceContainers>,
        /// The tokens and VAULT files written for them; removed when the stack stops.
        secrets: Vec<PathBuf>,
    },
}

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

impl Stack {
    /// Spawns hearth, waits for its ready line, then starts the worker and the console
    /// (in-process or in containers, per [`StackOptions::services`]).
    pub async fn start(opts: &StackOptions) -> Result<Stack, StackError> {
        std::fs::create_dir_all(&opts.work_dir)
            .map_err(|e| StackError::Setup(format!("create {}: {e}", opts.work_dir.display())))?;
        let hearth_socket = opts.work_dir.join("hearth.sock");
        let hearth_log = opts.work_dir.join("hearth.log");
        let hatch_path = opts.work_dir.join("hatch.jsonl");
        let hearth = spawn_hearth(opts, &hearth_socket, &hearth_log).await?;

        let secret = hex::encode(crate::vault::generate_secret());
        // Same key id, different secret: what a half-finished VAULT rotation looks like.
        let worker_secret = if opts.vault_drift {
            hex::encode(crate::vault::generate_secret())
        } else {
            secret.clone()
        };
        let admin_token = crate::ids::random_hex(16);
        let viewer_token = crate::ids::random_hex(16);
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
        })
    }

    /// Where the console and the worker run: `in-process` or `containers`.
    pub fn services(&self) -> &'static str {
        match self.services {
            Running::InProcess { .. } => "in-process",
            Running::Containers { .. } => "containers",
        }
    }

    /// Output of the console and worker containers so far (stdout lines tagged `out|`, stderr
    /// `err|`, under a header per container), for a failing scenario's report. Empty on the
    /// embedded topology, where both log to this process's stderr.
    pub fn logs(&self) -> String {
        match &self.services {
            Running::InProcess { .. } => String::new(),
            Running::Containers { containers, .. } => containers.logs(),
        }
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
        match std::mem::replace(
            &mut self.services,
            Running::InProcess {
                stops: Vec::new(),
                servers: Vec::new(),
            },
        ) {
            Running::InProcess { stops, servers } => {
                for stop in stops {
                    let _ = stop.send(());
                }
                for task in servers {
                    let _ = task.await;
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
        // Closing hearth's stdin is its signal to clean up and exit.
        drop(self.hearth.stdin.take());
        match tokio::time::timeout(HEARTH_STOP_DEADLINE, self.hearth.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => errors.push(format!("hearth exited with {status}")),
            Ok(Err(e)) => errors.push(format!("failed to wait for hearth: {e}")),
            Err(_) => {
                let _ = self.hearth.kill().await;
                errors.push(format!(
                    "hearth did not exit within {HEARTH_STOP_DEADLINE:?} of being asked; killed"
                ));
            }
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

/// The worker, then the console, as servers of this process on loopback listeners.
async fn start_in_process(
    opts: &StackOptions,
    paths: Paths<'_>,
    secret: &str,
    worker_secret: &str,
    tokens: Vec<(String, Principal)>,
) -> Result<(String, String, Running), StackError> {
    let mut stops = Vec::new();
    let mut servers = Vec::new();
    let worker = Worker::new(WorkerConfig {
        keyring: Keyring::single("v1", worker_secret.as_bytes()),
        max_skew_secs: crate::vault::DEFAULT_MAX_SKEW_SECS,
        drift: opts.worker_drift.clone(),
    });
    let (worker_url, stop, task) = serve_local(|l, s| crate::worker::serve(l, worker, s)).await?;
    stops.push(stop);
    servers.push(task);

    let auth = LocalAuth::from_tokens(tokens).map_err(|e| StackError::Setup(e.to_string()))?;
    let hatch =
        Arc::new(Hatch::with_file(paths.hatch_path).map_err(|e| StackError::Setup(e.to_string()))?);
    let tiers =
        crate::tier::load_dir(&opts.tiers_dir).map_err(|e| StackError::Setup(e.to_string()))?;
    let console = Console::new(ConsoleConfig {
        auth,
        hearth: HearthClient::new(paths.hearth_socket),
        worker_url: worker_url.clone(),
        keyring: Keyring::single("v1", secret.as_bytes()),
        hatch,
        tiers,
        deadlines: Deadlines {
            run: opts.run_timeout,
            teardown: opts.teardown_timeout + Duration::from_secs(30),
            ..Deadlines::default()
        },
    });
    let (console_url, stop, task) =
        serve_local(|l, s| crate::console::serve(l, console, s)).await?;
    stops.push(stop);
    servers.push(task);
    Ok((
        console_url,
        worker_url,
        Running::InProcess { stops, servers },
    ))
}

/// The worker, then the console, each in its own container; their configuration goes
/// through files in the work directory (tokens and VAULT files, mode 0600).
async fn start_containers(
    opts: &StackOptions,
    paths: Paths<'_>,
    image: &ServiceImage,
    secret: &str,
    worker_secret: &str,
    tokens: &[(String, Principal)],
) -> Result<(String, String, Running), StackError> {
    let write = |path: &Path, r: std::io::Result<()>| {
        r.map_err(|e| StackError::Setup(format!("write {}: {e}", path.display())))
    };
    let tokens_path = opts.work_dir.join("tokens.yaml");
    write(
        &tokens_path,
        crate::auth::write_tokens_file(&tokens_path, tokens),
    )?;
    let console_vault = opts.work_dir.join("console-vault.yaml");
    write(
        &console_vault,
        crate::vault::write_keyring_file(&console_vault, "v1", &[("v1", secret)]),
    )?;
    let worker_vault = opts.work_dir.join("worker-vault.yaml");
    write(
        &worker_vault,
        crate::vault::write_keyring_file(&worker_vault, "v1", &[("v1", worker_secret)]),
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
        drift: &opts.worker_drift,
    })
    .await;
    let secrets = vec![tokens_path, console_vault, worker_vault];
    match started {
        Ok(containers) => Ok((
            containers.console_url.clone(),
            containers.worker_url.clone(),
            Running::Containers {
                containers: Box::new(containers),
                secrets,
            },
        )),
        Err(e) => {
            for path in &secrets {
                let _ = std::fs::remove_file(path);
            }
            Err(e.into())
        }
    }
}

async fn spawn_hearth(opts: &StackOptions, socket: &Path, log: &Path) -> Result<Child, StackError> {
    let path = locate_hearth(&opts.hearth_search)?;
    let log_file = std::fs::File::create(log)
        .map_err(|e| StackError::Setup(format!("create {}: {e}", log.display())))?;
    let mut cmd = Command::new(&path);
    cmd.arg("--socket")
        .arg(socket)
        .args(["--driver", opts.driver.as_str()])
        .args(["--session", &opts.session])
        .arg("--teardown-timeout")
        .arg(crate::duration::display(opts.teardown_timeout))
        .arg("--exit-on-stdin-eof")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true);
    if let Some(standin) = &opts.standin_bin {
        cmd.arg("--standin-bin").arg(standin);
    }
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

type ServerTask = tokio::task::JoinHandle<std::io::Result<()>>;

/// Binds 127.0.0.1:0 and serves on it until the returned sender fires (mini-redis style: the
/// server takes a bound listener, so nothing races for ports).
async fn serve_local<F, Fut>(
    serve: F,
) -> Result<(String, oneshot::Sender<()>, ServerTask), StackError>
where
    F: FnOnce(
        tokio::net::TcpListener,
        futures::future::Map<oneshot::Receiver<()>, fn(Result<(), oneshot::error::RecvError>)>,
    ) -> Fut,
    Fut: std::future::Future<Output = std::io::Result<()>> + Send + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| StackError::Setup(format!("bind a loopback port: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| StackError::Setup(e.to_string()))?;
    let (tx, rx) = oneshot::channel();
    use futures::FutureExt;
    let ignore: fn(Result<(), oneshot::error::RecvError>) = |_| ();
    let task = tokio::spawn(serve(listener, rx.map(ignore)));
    Ok((format!("http://{addr}"), tx, task))
}
