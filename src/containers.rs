//! containers: the console and the worker each in their own container, started with
//! testcontainers on a Docker network made for one stack (the container topology).
//!
//! Layout of one stack (`<s>` is its session id):
//!
//! - network `rocky-<s>_stack`: a bridge whose published ports bind 127.0.0.1 only
//!   (`com.docker.network.bridge.host_binding_ipv4`), since testcontainers cannot name a host
//!   IP for a port binding;
//! - container `rocky-<s>_worker`: `ralph serve` on port 8080, not published; the console (and
//!   the host) reach it at its IP address on the network, so no DNS is involved (the image is
//!   `FROM scratch`: no resolver configuration);
//! - container `rocky-<s>_console`: the console on port 8080, published on a random
//!   127.0.0.1 port for the harness. The stack's work directory is bind-mounted at the same
//!   path, so hearth's unix socket, the HATCH log, the tokens and the VAULT file have the same
//!   paths inside and outside; so has the tiers directory (read-only). The worker only gets
//!   its own VAULT file, read-only.
//!
//! Both run as the owner of the work directory, so every file they write there stays the
//! harness's to read and delete. Every object carries `rocky.managed-by`, `rocky.session`,
//! `rocky.pid` (this process: a run killed with SIGKILL leaves objects whose pid is dead, and
//! [`rocky::docker::sweep::sweep_stale`] removes them at the next start) and
//! `rocky.component`. They carry no `rocky.workspace`: they belong to the stack, not to a
//! workspace, and must not match a workspace's "nothing remains" check.
//!
//! Readiness is the line each binary prints once its listener is bound (`console listening
//! on`, `ralph listening on`), within [`START_DEADLINE`]. Nothing is ever pulled: the image is
//! built locally before any container starts (testcontainers 0.25 pulls only when creating a
//! container answers 404, and has no reaper container).
//!
//! An engine's default address pools hold about 30 bridge networks (Docker 20.10: 15 /16s
//! and 16 /20s, the default bridge included), and every running stack takes one on top of
//! its workspaces' networks. So a process runs at most [`max_stacks`] container stacks at
//! once; a further stack waits (up to [`SLOT_DEADLINE`]) for one of them to stop.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{AccessMode, IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use rocky::hearth::labels;
use rocky::kahn::Drift;

/// Label naming what an object is to the stack: `console`, `worker` or `network`.
pub const COMPONENT: &str = "rocky.component";

/// Port the console and the worker listen on inside their containers.
pub const SERVICE_PORT: u16 = 8080;

/// How long a container may take from creation to its ready line.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// Seconds `docker stop` waits after SIGTERM before SIGKILL. Both binaries shut down on
/// SIGTERM at once; the grace only matters for a worker still streaming a run.
const STOP_GRACE_SECS: i32 = 5;

/// The worker's VAULT file inside its container.
const WORKER_VAULT: &str = "/run/rocky/vault.yaml";

/// Most bytes of log kept per container; older output is dropped first.
const LOG_CAP: usize = 1 << 20;

/// Default of [`max_stacks`].
pub const DEFAULT_MAX_STACKS: usize = 12;

/// How long a stack may wait for a free slot (see [`max_stacks`]).
pub const SLOT_DEADLINE: Duration = Duration::from_secs(180);

/// Container stacks this process runs at once: `ROCKY_E2E_MAX_STACKS`, else
/// [`DEFAULT_MAX_STACKS`], which leaves more than half of an engine's default address pools
/// to the workspaces' networks.
pub fn max_stacks() -> usize {
    std::env::var("ROCKY_E2E_MAX_STACKS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|n| *n > 0)
        .unwrap_or(DEFAULT_MAX_STACKS)
}

fn stack_slots() -> &'static Arc<tokio::sync::Semaphore> {
    static SLOTS: std::sync::OnceLock<Arc<tokio::sync::Semaphore>> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| Arc::new(tokio::sync::Semaphore::new(max_stacks())))
}

/// The image both containers run, as the topology prepared it
/// ([`crate::images::ensure_services_image`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceImage {
    /// `repository:tag`; must exist in the engine (nothing is pulled).
    pub tag: String,
    /// `LD_LIBRARY_PATH` inside the containers.
    pub library_path: String,
}

impl From<&crate::images::ServicesImage> for ServiceImage {
    fn from(i: &crate::images::ServicesImage) -> ServiceImage {
        ServiceImage {
            tag: i.tag.clone(),
            library_path: i.library_path.clone(),
        }
    }
}

/// What the two containers of one stack need; every path is a host path.
#[derive(Clone, Debug)]
pub struct Config<'a> {
    pub image: &'a ServiceImage,
    /// The stack's session id: names and labels.
    pub session: &'a str,
    /// Bind-mounted into the console at the same path; holds everything below but the tiers.
    pub work_dir: &'a Path,
    pub hearth_socket: &'a Path,
    pub hatch_path: &'a Path,
    /// LocalAuth tokens (YAML).
    pub tokens: &'a Path,
    pub console_vault: &'a Path,
    pub worker_vault: &'a Path,
    /// Mounted read-only into the console, at the same path.
    pub tiers_dir: &'a Path,
    pub run_timeout: Duration,
    /// The console's deadline for its teardown call to hearth.
    pub teardown_timeout: Duration,
    pub drift: &'a Drift,
}

/// Why the containers of a stack did not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error("failed to {step}: {message}")]
    Engine { step: String, message: String },
    #[error(
        "the {component} container did not print {ready:?} within {deadline:?}: {detail}{}",
        logs_suffix(logs)
    )]
    NotReady {
        component: &'static str,
        ready: &'static str,
        deadline: Duration,
        detail: String,
        logs: String,
    },
    #[error(
        "no free container stack slot within {deadline:?}: this process runs at most {max} stacks at once (ROCKY_E2E_MAX_STACKS), and none stopped"
    )]
    NoSlot { max: usize, deadline: Duration },
}

fn logs_suffix(logs: &str) -> String {
    if logs.trim().is_empty() {
        "; it wrote no output".into()
    } else {
        format!("; its output:\n{}", logs.trim_end())
    }
}

fn engine(step: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> ContainerError {
    let step = step.into();
    move |e| ContainerError::Engine {
        step,
        message: e.to_string(),
    }
}

/// Output of one container, kept as it arrives (testcontainers log consumer).
#[derive(Default)]
struct LogBuffer(Mutex<String>);

impl LogBuffer {
    fn push(&self, frame: &LogFrame) {
        let (tag, bytes) = match frame {
            LogFrame::StdOut(b) => ("out", b),
            LogFrame::StdErr(b) => ("err", b),
        };
        let text = String::from_utf8_lossy(bytes);
        let mut buf = self.0.lock().unwrap_or_else(|p| p.into_inner());
        for line in text.lines() {
            buf.push_str(tag);
            buf.push_str("| ");
            buf.push_str(line);
            buf.push('\n');
        }
        if buf.len() > LOG_CAP {
            let mut cut = buf.len() - LOG_CAP / 2;
            while !buf.is_char_boundary(cut) {
                cut += 1;
            }
            buf.replace_range(..cut, "[… earlier output dropped]\n");
        }
    }

    fn text(&self) -> String {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// One running container and its captured output.
struct Service {
    component: &'static str,
    name: String,
    container: ContainerAsync<GenericImage>,
    logs: Arc<LogBuffer>,
}

/// The console and worker containers of one stack, and their network.
pub struct ServiceContainers {
    /// `http://127.0.0.1:<published port>`.
    pub console_url: String,
    /// `http://<worker IP on the stack network>:8080`, reachable from the console and from
    /// this host.
    pub worker_url: String,
    /// Name of the stack's network.
    pub network: String,
    docker: Docker,
    console: Service,
    worker: Service,
    /// Held while the stack runs (see [`max_stacks`]).
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// Names of the stack's objects: `_` cannot occur in a slug, so they never collide with the
/// `rocky-<session>-<slug>` objects hearth makes for workspaces.
pub fn object_name(session: &str, component: &str) -> String {
    format!("rocky-{session}_{component}")
}

fn labels_for(session: &str, component: &str) -> HashMap<String, String> {
    HashMap::from([
        (labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
        (labels::SESSION.into(), session.into()),
        (labels::PID.into(), std::process::id().to_string()),
        (labels::HOST.into(), labels::host_id()),
        (COMPONENT.into(), component.into()),
    ])
}

/// `uid:gid` of the work directory's owner: the user the containers run as.
fn owner_of(dir: &Path) -> Result<String, ContainerError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| ContainerError::Engine {
        step: format!("read the owner of {}", dir.display()),
        message: e.to_string(),
    })?;
    Ok(format!("{}:{}", meta.uid(), meta.gid()))
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

impl ServiceContainers {
    /// Creates the stack's network, starts the worker, then the console (it needs the worker's
    /// address), each ready by its log line. On failure everything made so far is removed and
    /// the error carries the failing container's output.
    pub async fn start(cfg: &Config<'_>) -> Result<ServiceContainers, ContainerError> {
        let waiting = Instant::now();
        let slot = tokio::time::timeout(SLOT_DEADLINE, stack_slots().clone().acquire_owned())
            .await
            .map_err(|_| ContainerError::NoSlot {
                max: max_stacks(),
                deadline: SLOT_DEADLINE,
            })?
            .expect("the stack semaphore is never closed");
        if waiting.elapsed() > Duration::from_millis(100) {
            tracing::info!(
                session = cfg.session,
                waited_ms = waiting.elapsed().as_millis() as u64,
                "waited for a container stack slot"
            );
        }
        let docker = rocky::docker::connect()
            .await
            .map_err(|e| ContainerError::Engine {
                step: "connect to the Docker engine for the console and worker containers".into(),
                message: e.to_string(),
            })?;
        let network = object_name(cfg.session, "stack");
        docker
            .create_network(NetworkCreateRequest {
                name: network.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels_for(cfg.session, "network")),
                options: Some(HashMap::from([(
                    "com.docker.network.bridge.host_binding_ipv4".to_string(),
                    "127.0.0.1".to_string(),
                )])),
                ..Default::default()
            })
            .await
            .map_err(|e| {
                let mut message = e.to_string();
                if message.contains("address pool") {
                    message.push_str(
                        " (the engine's address pools are used up: every stack and every workspace takes a bridge network; lower ROCKY_E2E_MAX_STACKS or --concurrency, or widen default-address-pools in the engine's daemon.json)",
                    );
                }
                ContainerError::Engine {
                    step: format!("create network {network}"),
                    message,
                }
            })?;
        match Self::start_services(&docker, cfg, &network).await {
            Ok((worker, worker_ip, console, console_port)) => Ok(ServiceContainers {
                console_url: format!("http://127.0.0.1:{console_port}"),
                worker_url: format!("http://{worker_ip}:{SERVICE_PORT}"),
                network,
                docker,
                console,
                worker,
                _slot: slot,
            }),
            Err(e) => {
                if let Err(cleanup) = remove_stack_objects(&docker, cfg.session).await {
                    tracing::warn!(
                        session = cfg.session,
                        "cleanup after a failed start: {cleanup}"
                    );
                }
                Err(e)
            }
        }
    }

    async fn start_services(
        docker: &Docker,
        cfg: &Config<'_>,
        network: &str,
    ) -> Result<(Service, std::net::IpAddr, Service, u16), ContainerError> {
        let user = owner_of(cfg.work_dir)?;
        let worker = start_service(
            cfg,
            network,
            &user,
            "worker",
            "ralph listening on",
            false,
            "ralph",
            vec![
                "serve".into(),
                "--listen".into(),
                format!("0.0.0.0:{SERVICE_PORT}"),
                "--vault".into(),
                WORKER_VAULT.into(),
                "--kahn-drift".into(),
                cfg.drift.to_string(),
            ],
            vec![
                Mount::bind_mount(path_str(cfg.worker_vault), WORKER_VAULT)
                    .with_access_mode(AccessMode::ReadOnly),
            ],
        )
        .await?;
        let worker_ip = worker_address(docker, &worker.name, network).await?;
        let console = start_service(
            cfg,
            network,
            &user,
            "console",
            "console listening on",
            true,
            "console",
            vec![
                "--listen".into(),
                format!("0.0.0.0:{SERVICE_PORT}"),
                "--hearth-socket".into(),
                path_str(cfg.hearth_socket),
                "--worker-url".into(),
                format!("http://{worker_ip}:{SERVICE_PORT}"),
                "--hatch".into(),
                path_str(cfg.hatch_path),
                "--tokens".into(),
                path_str(cfg.tokens),
                "--vault".into(),
                path_str(cfg.console_vault),
                "--tiers".into(),
                path_str(cfg.tiers_dir),
                "--run-timeout".into(),
                rocky::duration::display(cfg.run_timeout),
                "--teardown-timeout".into(),
                rocky::duration::display(cfg.teardown_timeout),
            ],
            vec![
                Mount::bind_mount(path_str(cfg.work_dir), path_str(cfg.work_dir)),
                // At its own path too (read-only), so messages name the paths the user has.
                Mount::bind_mount(path_str(cfg.tiers_dir), path_str(cfg.tiers_dir))
                    .with_access_mode(AccessMode::ReadOnly),
            ],
        )
        .await?;
        let port = console
            .container
            .get_host_port_ipv4(SERVICE_PORT.tcp())
            .await
            .map_err(|e| ContainerError::Engine {
                step: format!("read the published port of {}", console.name),
                message: e.to_string(),
            })?;
        Ok((worker, worker_ip, console, port))
    }

    /// Output of both containers so far, stdout lines tagged `out|`, stderr `err|`, each
    /// container under a header naming it. For a failing scenario's report.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for s in [&self.console, &self.worker] {
            out.push_str(&format!(
                "── {} (container {}, id {}) ──\n",
                s.component,
                s.name,
                &s.container.id()[..12.min(s.container.id().len())]
            ));
            let text = s.logs.text();
            if text.is_empty() {
                out.push_str("(no output)\n");
            } else {
                out.push_str(&text);
            }
        }
        out
    }

    /// Stops both containers (SIGTERM, then SIGKILL after a grace), removes them, then the
    /// network. Every step is tried; the errors are joined.
    pub async fn stop(self) -> Result<(), String> {
        let ServiceContainers {
            docker,
            network,
            console,
            worker,
            ..
        } = self;
        let (a, b) = futures::join!(stop_service(console), stop_service(worker));
        let mut errors: Vec<String> = [a, b].into_iter().filter_map(Result::err).collect();
        match docker.remove_network(&network).await {
            Ok(()) => {}
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => {}
            Err(e) => errors.push(format!("failed to remove network {network}: {e}")),
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn start_service(
    cfg: &Config<'_>,
    network: &str,
    user: &str,
    component: &'static str,
    ready: &'static str,
    publish: bool,
    binary: &str,
    args: Vec<String>,
    mounts: Vec<Mount>,
) -> Result<Service, ContainerError> {
    let (repository, tag) = cfg
        .image
        .tag
        .rsplit_once(':')
        .unwrap_or((cfg.image.tag.as_str(), "latest"));
    let entrypoint = format!("{}/{binary}", crate::images::SERVICES_BIN_DIR);
    let mut image = GenericImage::new(repository, tag)
        .with_entrypoint(&entrypoint)
        .with_wait_for(WaitFor::message_on_stdout(ready));
    if publish {
        // Published on a random host port; the network binds it to 127.0.0.1.
        image = image.with_exposed_port(SERVICE_PORT.tcp());
    }
    let name = object_name(cfg.session, component);
    let logs = Arc::new(LogBuffer::default());
    let sink = logs.clone();
    let mut request = image
        .with_cmd(args)
        .with_container_name(&name)
        .with_network(network)
        .with_labels(labels_for(cfg.session, component))
        .with_env_var("LD_LIBRARY_PATH", &cfg.image.library_path)
        .with_user(user)
        .with_startup_timeout(START_DEADLINE)
        .with_log_consumer(move |frame: &LogFrame| sink.push(frame));
    for m in mounts {
        request = request.with_mount(m);
    }
    let started = Instant::now();
    match request.start().await {
        Ok(container) => {
            tracing::debug!(
                component,
                name,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "container ready"
            );
            Ok(Service {
                component,
                name,
                container,
                logs,
            })
        }
        Err(e) => Err(ContainerError::NotReady {
            component,
            ready,
            deadline: START_DEADLINE,
            detail: format!("{e} (after {:.1?})", started.elapsed()),
            logs: logs.text(),
        }),
    }
}

/// The worker's IP address on the stack network.
async fn worker_address(
    docker: &Docker,
    name: &str,
    network: &str,
) -> Result<std::net::IpAddr, ContainerError> {
    let inspect = docker
        .inspect_container(
            name,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(engine(format!("inspect container {name}")))?;
    let ip = inspect
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut n| n.remove(network))
        .and_then(|e| e.ip_address)
        .unwrap_or_default();
    ip.parse().map_err(|_| ContainerError::Engine {
        step: format!("read the address of {name} on network {network}"),
        message: format!("the engine reported {ip:?}"),
    })
}

async fn stop_service(s: Service) -> Result<(), String> {
    let Service {
        name, container, ..
    } = s;
    let stopped = container
        .stop_with_timeout(Some(STOP_GRACE_SECS))
        .await
        .map_err(|e| format!("failed to stop container {name}: {e}"));
    // Removed even when the stop failed (force), so nothing outlives the stack.
    let removed = container
        .rm()
        .await
        .map_err(|e| format!("failed to remove container {name}: {e}"));
    stopped.and(removed)
}

/// Force-removes the console and worker containers and the network of `session` (not
/// hearth's workspace objects of the same session). Used when a start fails halfway.
pub async fn remove_stack_objects(docker: &Docker, session: &str) -> Result<(), ContainerError> {
    let labels = [
        format!("{}={session}", labels::SESSION),
        COMPONENT.to_owned(),
    ];
    rocky::docker::sweep::sweep_labelled(docker, &labels)
        .await
        .map(|_| ())
        .map_err(|e| ContainerError::Engine {
            step: "remove the stack's containers and network".into(),
            message: e.to_string(),
        })
}

/// What [`rocky::docker::sweep::sweep_stale`] is about to remove, one line per object
/// (`container NAME (stack console, session S, pid P gone)`), for the start-of-run report:
/// every object of every session in which some object's `rocky.pid` names a process that is
/// gone (the harness or hearth of a killed run).
pub async fn stale_objects(docker: &Docker) -> Result<Vec<String>, ContainerError> {
    use rocky::docker::sweep::{list_labelled_objects, owner_alive, stale_sessions};
    let objects = list_labelled_objects(docker, &[])
        .await
        .map_err(|e| ContainerError::Engine {
            step: "list labelled objects".into(),
            message: e.to_string(),
        })?;
    let stale = stale_sessions(&objects);
    Ok(objects
        .iter()
        .filter_map(|o| {
            let l = &o.labels;
            let session = l.get(labels::SESSION).filter(|s| stale.contains(*s))?;
            let what = l
                .get(COMPONENT)
                .map(|c| format!("stack {c}"))
                .or_else(|| l.get(labels::WORKSPACE).map(|w| format!("workspace {w}")))
                .unwrap_or_else(|| "unknown".into());
            let pid = l.get(labels::PID).map(String::as_str).unwrap_or("?");
            let state = if owner_alive(l) { "alive" } else { "gone" };
            Some(format!(
                "{} {} ({what}, session {session}, pid {pid} {state})",
                o.kind, o.name
            ))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_never_collide_with_workspace_objects() {
        assert_eq!(object_name("abc123", "console"), "rocky-abc123_console");
        // hearth names workspace objects `rocky-<session>-<slug>[-<service>]`, and a slug
        // cannot hold `_`.
        assert!(rocky::slug::validate("stack_console").is_err());
    }

    #[test]
    fn log_buffer_tags_streams_and_stays_bounded() {
        let buf = LogBuffer::default();
        buf.push(&LogFrame::StdOut(
            "console listening on 0.0.0.0:8080\n".into(),
        ));
        buf.push(&LogFrame::StdErr("a\nb\n".into()));
        assert_eq!(
            buf.text(),
            "out| console listening on 0.0.0.0:8080\nerr| a\nerr| b\n"
        );
        let line = "x".repeat(1000);
        for _ in 0..3000 {
            buf.push(&LogFrame::StdOut(line.clone().into()));
        }
        let text = buf.text();
        assert!(text.len() <= LOG_CAP, "{}", text.len());
        assert!(text.starts_with("[… earlier output dropped]\n"));
    }

    fn e2e_enabled() -> bool {
        if std::env::var("ROCKY_E2E").as_deref() == Ok("1") {
            return true;
        }
        eprintln!("skipped: set ROCKY_E2E=1 to start containers on the Docker engine");
        false
    }

    /// The services image of this build (`cargo test` builds the bins before running tests).
    async fn image(docker: &Docker, cache: &Path) -> ServiceImage {
        let bins = crate::images::ServiceBinaries::locate(&crate::binaries::search_dirs())
            .expect("cargo test builds console and ralph");
        let built = crate::images::ensure_services_image(docker, cache, &bins)
            .await
            .unwrap();
        (&built).into()
    }

    /// Everything labelled with `session`, as `kind name` lines.
    async fn leftovers(docker: &Docker, session: &str) -> Vec<String> {
        let labels = [format!("{}={session}", labels::SESSION)];
        rocky::docker::sweep::list_labelled_objects(docker, &labels)
            .await
            .unwrap()
            .into_iter()
            .map(|o| format!("{} {}", o.kind, o.name))
            .collect()
    }

    /// A whole stack in containers: the console answers on 127.0.0.1 and reaches hearth
    /// through the mounted socket, the worker answers at its network address, both logs are
    /// captured, and stopping leaves nothing behind.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_container_stack_serves_logs_and_leaves_nothing() {
        if !e2e_enabled() {
            return;
        }
        let docker = rocky::docker::connect().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = crate::stack::StackOptions::new(
            rocky::hearth::DriverKind::LocalDocker,
            dir.path().join("stack"),
        );
        opts.services = crate::stack::Services::Containers(image(&docker, dir.path()).await);
        let stack = crate::stack::Stack::start(&opts).await.unwrap();
        assert_eq!(stack.services(), "containers");
        assert!(
            stack.console_url.starts_with("http://127.0.0.1:"),
            "{}",
            stack.console_url
        );
        let http = reqwest::Client::new();
        let get = |url: String, token: Option<&str>| {
            let mut req = http.get(url).timeout(Duration::from_secs(10));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let health = get(format!("{}/healthz", stack.console_url), None)
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        // Through LocalAuth (tokens file) and hearth (mounted socket): an unknown workspace.
        let missing = get(
            format!("{}/api/hearth/workspaces/nope", stack.console_url),
            Some(&stack.admin_token),
        )
        .await
        .unwrap();
        assert_eq!(missing.status(), 404, "{:?}", missing.text().await);
        let worker = get(format!("{}/healthz", stack.worker_url), None)
            .await
            .unwrap();
        assert_eq!(worker.status(), 200);

        let logs = stack.logs();
        eprintln!("{logs}");
        assert!(logs.contains("── console (container rocky-"), "{logs}");
        assert!(
            logs.contains("out| console listening on 0.0.0.0:8080"),
            "{logs}"
        );
        assert!(
            logs.contains("out| ralph listening on 0.0.0.0:8080"),
            "{logs}"
        );

        let session = stack.session.clone();
        assert_eq!(
            leftovers(&docker, &session).await.len(),
            3,
            "a network and two containers while it runs"
        );
        assert!(opts.work_dir.join("tokens.yaml").is_file());
        stack.stop().await.unwrap();
        assert_eq!(leftovers(&docker, &session).await, Vec::<String>::new());
        for secret in ["tokens.yaml", "console-vault.yaml", "worker-vault.yaml"] {
            assert!(
                !opts.work_dir.join(secret).exists(),
                "{secret} outlived the stack"
            );
        }
    }

    /// A console that cannot start (a broken tier profile) fails the stack with its own
    /// words, and what was made for the stack is removed.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_console_that_exits_fails_the_start_with_its_output() {
        if !e2e_enabled() {
            return;
        }
        let docker = rocky::docker::connect().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tiers = dir.path().join("tiers");
        std::fs::create_dir_all(&tiers).unwrap();
        std::fs::write(tiers.join("solo.yaml"), "not: [a tier").unwrap();
        let mut opts = crate::stack::StackOptions::new(
            rocky::hearth::DriverKind::LocalDocker,
            dir.path().join("stack"),
        );
        opts.tiers_dir = tiers;
        opts.services = crate::stack::Services::Containers(image(&docker, dir.path()).await);
        let started = Instant::now();
        let err = match crate::stack::Stack::start(&opts).await {
            Ok(_) => panic!("the stack started with a broken tier profile"),
            Err(e) => e.to_string(),
        };
        eprintln!("{err}");
        assert!(
            started.elapsed() < START_DEADLINE,
            "an exited container is noticed at once, not at the deadline"
        );
        assert!(
            err.contains("the console container did not print \"console listening on\""),
            "{err}"
        );
        assert!(err.contains("err| console: "), "{err}");
        assert!(err.contains("solo.yaml"), "{err}");
        assert_eq!(
            leftovers(&docker, &opts.session).await,
            Vec::<String>::new()
        );
        assert!(!opts.work_dir.join("tokens.yaml").exists());
    }

    #[test]
    fn labels_carry_session_pid_and_component_but_no_workspace() {
        let l = labels_for("s1", "worker");
        assert_eq!(l[labels::MANAGED_BY], "rocky-e2e");
        assert_eq!(l[labels::SESSION], "s1");
        assert_eq!(l[labels::PID], std::process::id().to_string());
        assert_eq!(l[COMPONENT], "worker");
        assert!(!l.contains_key(labels::WORKSPACE));
    }
}
