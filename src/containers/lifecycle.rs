//! The console and the worker containers of one stack: the network made for them, starting
//! each until its ready line, their captured output, and stopping and removing them.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use testcontainers::core::logs::LogFrame;
use testcontainers::core::{AccessMode, IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt};

use super::logs::LogBuffer;
use super::objects::{labels_for, object_name, remove_stack_objects};
use super::slots::{Claim, Slot, take_slot};
use super::{Config, ContainerError};

/// Port the console and the worker listen on inside their containers.
pub const SERVICE_PORT: u16 = 8080;

/// How long a container may take from creation to its ready line.
pub const START_DEADLINE: Duration = Duration::from_secs(30);

/// How long a killed worker may take to stop, and a restarted one to answer its health check.
const WORKER_RESTART_DEADLINE: Duration = Duration::from_secs(30);

/// How often a killed worker is checked on.
const POLL: Duration = Duration::from_millis(50);

/// Seconds `docker stop` waits after SIGTERM before SIGKILL. Both binaries shut down on
/// SIGTERM at once; the grace only matters for a worker still streaming a run.
const STOP_GRACE_SECS: i32 = 5;

/// The worker's VAULT file inside its container.
const WORKER_VAULT: &str = "/run/rocky/vault.yaml";

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
    _slot: Slot,
}

/// `uid:gid` of the work directory's owner: the user the containers run as.
fn owner_of(dir: &Path) -> Result<String, ContainerError> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(dir).map_err(|e| {
        ContainerError::engine(
            format!("read the owner of {}", dir.display()),
            e.to_string(),
        )
    })?;
    Ok(format!("{}:{}", meta.uid(), meta.gid()))
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

/// `ralph serve` in its container: the worker's VAULT file mounted, the drift applied.
fn worker_args(cfg: &Config<'_>) -> Vec<String> {
    let mut serve = rocky::cli::ServeArgs::new(format!("0.0.0.0:{SERVICE_PORT}"));
    serve.vault = Some(WORKER_VAULT.into());
    cfg.drift.apply_to(&mut serve);
    strings(serve.to_args())
}

/// `console` in its container: the paths are the host's, mounted at the same place.
fn console_args(cfg: &Config<'_>, worker_ip: std::net::IpAddr) -> Vec<String> {
    let console = rocky::cli::ConsoleArgs {
        vault: Some(cfg.console_vault.to_owned()),
        tiers: cfg.tiers_dir.to_owned(),
        run_timeout: cfg.run_timeout,
        teardown_timeout: cfg.teardown_timeout,
        ..rocky::cli::ConsoleArgs::new(
            format!("0.0.0.0:{SERVICE_PORT}"),
            cfg.hearth_socket,
            format!("http://{worker_ip}:{SERVICE_PORT}"),
            cfg.hatch_path,
            cfg.tokens,
        )
    };
    strings(console.to_args())
}

/// A command line as the strings a container's command takes.
fn strings(args: Vec<std::ffi::OsString>) -> Vec<String> {
    args.into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect()
}

impl ServiceContainers {
    /// Creates the stack's network, starts the worker, then the console (it needs the worker's
    /// address), each ready by its log line. On failure everything made so far is removed and
    /// the error carries the failing container's output.
    pub async fn start(cfg: &Config<'_>) -> Result<ServiceContainers, ContainerError> {
        let claim = if cfg.shared {
            Claim::SharedStack
        } else {
            Claim::OwnStack
        };
        let slot = take_slot(cfg.session, claim).await?;
        let docker = rocky::docker::connect().await.map_err(|e| {
            ContainerError::engine(
                "connect to the Docker engine for the console and worker containers",
                e.to_string(),
            )
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
                ContainerError::engine(format!("create network {network}"), message)
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
            worker_args(cfg),
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
            console_args(cfg, worker_ip),
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
            .map_err(|e| {
                ContainerError::engine(
                    format!("read the published port of {}", console.name),
                    e.to_string(),
                )
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

    /// Kills the worker container with SIGKILL, as a crash would (no shutdown, its runs and
    /// frames lost), and waits until the engine reports it stopped.
    pub async fn kill_worker(&self) -> Result<(), String> {
        let name = &self.worker.name;
        let options = bollard::query_parameters::KillContainerOptionsBuilder::new()
            .signal("SIGKILL")
            .build();
        self.docker
            .kill_container(name, Some(options))
            .await
            .map_err(|e| format!("failed to SIGKILL container {name}: {e}"))?;
        let deadline = Instant::now() + WORKER_RESTART_DEADLINE;
        loop {
            let running = rocky::docker::inspect::is_running(&self.docker, name)
                .await
                .map_err(|e| e.to_string())?;
            if !running {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "container {name} still runs {WORKER_RESTART_DEADLINE:?} after SIGKILL"
                ));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Starts the killed worker container again (a fresh process: nothing of its runs) and
    /// waits until it answers `/healthz` at the address the console was given. The engine may
    /// hand a restarted container another address; the console cannot follow that, so it is
    /// an error that names both.
    pub async fn restart_worker(&self) -> Result<(), String> {
        let name = &self.worker.name;
        self.docker
            .start_container(
                name,
                None::<bollard::query_parameters::StartContainerOptions>,
            )
            .await
            .map_err(|e| format!("failed to start container {name} again: {e}"))?;
        let ip = worker_address(&self.docker, name, &self.network)
            .await
            .map_err(|e| e.to_string())?;
        let addr = format!("{ip}:{SERVICE_PORT}");
        let url = format!("http://{addr}");
        if url != self.worker_url {
            return Err(format!(
                "the restarted worker came back at {url}, not {}: the console was started with the old address",
                self.worker_url
            ));
        }
        let deadline = Instant::now() + WORKER_RESTART_DEADLINE;
        rocky::hearth::driver::health::wait_healthy(&addr, "/healthz", deadline)
            .await
            .map_err(|e| {
                format!(
                    "the restarted worker {name} did not answer {url}/healthz within {WORKER_RESTART_DEADLINE:?}: {e}"
                )
            })
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

#[expect(
    clippy::too_many_arguments,
    reason = "one container's whole description, named at each call"
)]
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
    Ok(rocky::docker::inspect::network_ip(docker, name, network).await?)
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
