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

use crate::containers::{ContainerError, ServiceContainers, ServiceImage};
use rocky::auth::{LocalAuth, Principal, Role};
use rocky::console::{Console, ConsoleConfig, Deadlines};
use rocky::hatch::Hatch;
use rocky::hearth::DriverKind;
use rocky::hearth::client::HearthClient;
use rocky::kahn::Drift;
use rocky::vault::Keyring;
use rocky::worker::{Worker, WorkerConfig};

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
            hearth_search: crate::binaries::search_dirs(),
            standin_bin: None,
            session: rocky::ids::random_hex(6),
            work_dir,
            tiers_dir: crate::runner::layout::current().tiers(),
            teardown_timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(60),
            worker_drift: Drift::None,
            vault_drift: false,
            docker_host: None,
        }
    }
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
    InProcess(InProcess),
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
        })
    }

    /// Where the console and the worker run: `in-process` or `containers`.
    pub fn services(&self) -> &'static str {
        match self.services {
            Running::InProcess(_) => "in-process",
            Running::Containers { .. } => "containers",
        }
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

/// The console and the worker of an embedded stack: served by a thread of their own with a
/// single-threaded runtime, so that their tracing output (a thread-local subscriber) goes to
/// this stack's log file and to no other scenario's.
struct InProcess {
    /// Tells the servers to shut down gracefully.
    stop: Option<oneshot::Sender<()>>,
    /// Fires when the thread has finished.
    done: Option<oneshot::Receiver<()>>,
    /// `services.log` in the work directory.
    log: PathBuf,
}

/// The console waits for hearth's teardown answer longer than hearth's own deadline, so that
/// hearth, not the console, is the one to report a missed deadline.
fn console_teardown_deadline(opts: &StackOptions) -> Duration {
    opts.teardown_timeout + Duration::from_secs(30)
}

/// How long the in-process servers may take to finish after being told to stop.
const SERVERS_STOP_DEADLINE: Duration = Duration::from_secs(30);

impl InProcess {
    fn stopped() -> InProcess {
        InProcess {
            stop: None,
            done: None,
            log: PathBuf::new(),
        }
    }

    async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(SERVERS_STOP_DEADLINE, done)
                .await
                .map_err(|_| {
                    format!("the in-process console and worker did not stop within {SERVERS_STOP_DEADLINE:?}")
                })?
                .map_err(|_| "the in-process servers' thread ended abnormally".to_owned())?;
        }
        Ok(())
    }
}

/// The worker, then the console, as servers of this process on loopback listeners (bound
/// before serving, mini-redis style, so nothing races for ports).
async fn start_in_process(
    opts: &StackOptions,
    paths: Paths<'_>,
    secret: &str,
    worker_secret: &str,
    tokens: Vec<(String, Principal)>,
) -> Result<(String, String, Running), StackError> {
    let setup = |e: String| StackError::Setup(e);
    let worker = Worker::new(WorkerConfig {
        keyring: Keyring::single("v1", worker_secret.as_bytes()),
        max_skew_secs: rocky::vault::DEFAULT_MAX_SKEW_SECS,
        drift: opts.worker_drift.clone(),
    });
    let auth = LocalAuth::from_tokens(tokens).map_err(|e| setup(e.to_string()))?;
    let hatch = Arc::new(Hatch::with_file(paths.hatch_path).map_err(|e| setup(e.to_string()))?);
    let tiers = rocky::tier::load_dir(&opts.tiers_dir).map_err(|e| setup(e.to_string()))?;
    let worker_listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| setup(format!("bind a loopback port: {e}")))?;
    let console_listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| setup(format!("bind a loopback port: {e}")))?;
    let worker_url = format!(
        "http://{}",
        worker_listener
            .local_addr()
            .map_err(|e| setup(e.to_string()))?
    );
    let console_url = format!(
        "http://{}",
        console_listener
            .local_addr()
            .map_err(|e| setup(e.to_string()))?
    );
    let console = Console::new(ConsoleConfig {
        auth,
        hearth: HearthClient::new(paths.hearth_socket),
        worker_url: worker_url.clone(),
        keyring: Keyring::single("v1", secret.as_bytes()),
        hatch,
        tiers,
        deadlines: Deadlines {
            run: opts.run_timeout,
            teardown: console_teardown_deadline(opts),
            ..Deadlines::default()
        },
    });
    let log = opts.work_dir.join("services.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| setup(format!("create {}: {e}", log.display())))?;
    for l in [&worker_listener, &console_listener] {
        l.set_nonblocking(true).map_err(|e| setup(e.to_string()))?;
    }
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    std::thread::Builder::new()
        .name(format!("stack-{}", opts.session))
        .spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("ROCKY_LOG")
                        .unwrap_or_else(|_| "rocky_e2e=info".into()),
                )
                .with_writer(std::sync::Mutex::new(log_file))
                .with_ansi(false)
                .finish();
            let _guard = tracing::subscriber::set_default(subscriber);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            runtime.block_on(async move {
                let (worker_l, console_l) = match (
                    tokio::net::TcpListener::from_std(worker_listener),
                    tokio::net::TcpListener::from_std(console_listener),
                ) {
                    (Ok(w), Ok(c)) => (w, c),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!("failed to adopt the listeners: {e}");
                        return;
                    }
                };
                let (tx, _) = tokio::sync::watch::channel(false);
                let tx = Arc::new(tx);
                let shutdown = |tx: &Arc<tokio::sync::watch::Sender<bool>>| {
                    let mut rx = tx.subscribe();
                    async move {
                        let _ = rx.wait_for(|stop| *stop).await;
                    }
                };
                let worker_task = rocky::http::serve(worker_l, worker.router(), shutdown(&tx));
                let console_task = rocky::http::serve(console_l, console.router(), shutdown(&tx));
                let trigger = {
                    let tx = tx.clone();
                    async move {
                        let _ = stop_rx.await;
                        tx.send_replace(true);
                    }
                };
                let (w, c, ()) = tokio::join!(worker_task, console_task, trigger);
                for (name, r) in [("worker", w), ("console", c)] {
                    if let Err(e) = r {
                        tracing::error!("the {name} failed: {e}");
                    }
                }
            });
            let _ = done_tx.send(());
        })
        .map_err(|e| setup(format!("spawn the servers' thread: {e}")))?;
    Ok((
        console_url,
        worker_url,
        Running::InProcess(InProcess {
            stop: Some(stop_tx),
            done: Some(done_rx),
            log,
        }),
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
        .arg(rocky::duration::display(opts.teardown_timeout))
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
