//! The `local-docker` driver: a workspace is a private bridge network plus the tier's services
//! as containers, all labelled with the session, created and started together.
//!
//! Every call goes to the engine through bollard. Provisioning that fails halfway removes what
//! it created before reporting the error, so a failed workspace leaves nothing behind.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
    StopContainerOptions,
};
use futures::future::join_all;
use tokio::sync::OnceCell;

use super::labels;
use super::{ServiceRef, process::wait_healthy};
use crate::tier::{ServiceSpec, TierProfile};

/// Seconds `docker stop` waits after SIGTERM before SIGKILL. The stand-in exits on SIGTERM at
/// once; a service that ignores it is what the teardown deadline exists to catch.
const STOP_GRACE_SECS: i32 = 10;

/// How long a single engine call may take before we call the engine unresponsive.
const ENGINE_CALL_TIMEOUT_SECS: u64 = 60;

/// A workspace as the engine knows it: what teardown must remove.
#[derive(Clone, Debug)]
pub struct DockerDeployment {
    pub network: String,
    pub containers: Vec<String>,
    pub services: Vec<ServiceRef>,
    /// Wall time spent waiting for health routes during provisioning (the rest was engine calls).
    pub health: Duration,
}

/// The driver. Cheap to share; the engine connection is made on first use so that hearth starts
/// (and can report `hearth.failed`) even when the engine is down.
pub struct DockerDriver {
    /// Session id written on every object, so a sweep can find what this hearth made.
    session: String,
    /// Negotiated client, made on first use.
    client: OnceCell<Docker>,
}

/// Whatever went wrong talking to the engine, with the step it happened in.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step}: {message}")]
pub struct DockerError {
    pub step: String,
    pub message: String,
}

fn err(step: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
    let step = step.into();
    move |e| DockerError {
        step,
        message: e.to_string(),
    }
}

/// Connects to `DOCKER_HOST` (or the local socket) and negotiates the API version, so that an
/// older engine (this one speaks 1.41) is not sent requests it rejects.
pub async fn connect() -> Result<Docker, DockerError> {
    let endpoint =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    let docker = Docker::connect_with_defaults()
        .map_err(err(format!("connect to the Docker engine at {endpoint}")))?
        .with_timeout(Duration::from_secs(ENGINE_CALL_TIMEOUT_SECS));
    docker.negotiate_version().await.map_err(err(format!(
        "reach the Docker engine at {endpoint} (is it running? check DOCKER_HOST)"
    )))
}

impl DockerDriver {
    pub fn new(session: String) -> DockerDriver {
        DockerDriver {
            session,
            client: OnceCell::new(),
        }
    }

    async fn docker(&self) -> Result<&Docker, DockerError> {
        self.client.get_or_try_init(connect).await
    }

    fn labels(&self, slug: &str) -> HashMap<String, String> {
        HashMap::from([
            (labels::MANAGED_BY.into(), labels::MANAGED_BY_VALUE.into()),
            (labels::WORKSPACE.into(), slug.into()),
            (labels::SESSION.into(), self.session.clone()),
            (labels::PID.into(), std::process::id().to_string()),
        ])
    }

    fn name(&self, slug: &str, service: Option<&str>) -> String {
        match service {
            Some(s) => format!("rocky-{}-{slug}-{s}", self.session),
            None => format!("rocky-{}-{slug}", self.session),
        }
    }

    /// Creates the network, then creates and starts every service concurrently, then waits for
    /// each to answer its health route. On any failure, removes what it made.
    pub async fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> Result<DockerDeployment, DockerError> {
        let docker = self.docker().await?.clone();
        let network = self.name(slug, None);
        let mut made = DockerDeployment {
            network: String::new(),
            containers: Vec::new(),
            services: Vec::new(),
            health: Duration::ZERO,
        };
        let result = self
            .provision_into(&docker, slug, profile, &network, health_timeout, &mut made)
            .await;
        match result {
            Ok(()) => Ok(made),
            Err(e) => {
                // Half-made workspaces are not left behind: remove whatever exists.
                let _ = remove_all(&docker, &made.containers, &made.network, 0).await;
                Err(e)
            }
        }
    }

    async fn provision_into(
        &self,
        docker: &Docker,
        slug: &str,
        profile: &TierProfile,
        network: &str,
        health_timeout: Duration,
        made: &mut DockerDeployment,
    ) -> Result<(), DockerError> {
        docker
            .create_network(NetworkCreateRequest {
                name: network.to_owned(),
                driver: Some("bridge".into()),
                labels: Some(self.labels(slug)),
                ..Default::default()
            })
            .await
            .map_err(err(format!("create network {network}")))?;
        made.network = network.to_owned();

        let creates = profile
            .services
            .iter()
            .map(|spec| self.create_service(docker, slug, network, spec));
        let mut first_error = None;
        for result in join_all(creates).await {
            match result {
                Ok(id) => made.containers.push(id),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            return Err(e);
        }

        let starts = made.containers.iter().map(|id| async move {
            docker
                .start_container(id, None::<bollard::query_parameters::StartContainerOptions>)
                .await
                .map_err(err(format!("start container {id}")))
        });
        for r in join_all(starts).await {
            r?;
        }

        let deadline = Instant::now() + health_timeout;
        let inspects = made
            .containers
            .iter()
            .zip(&profile.services)
            .map(|(id, spec)| published_port(docker, id, spec.port));
        let mut ports = Vec::new();
        for r in join_all(inspects).await {
            ports.push(r?);
        }
        // Everything so far was engine calls; from here on we wait for the services themselves.
        let health_started = Instant::now();
        let probes = profile
            .services
            .iter()
            .zip(ports)
            .map(|(spec, port)| async move {
                let addr = format!("127.0.0.1:{port}");
                wait_healthy(&addr, &spec.health, deadline)
                    .await
                    .map_err(|message| DockerError {
                        step: format!("health-check service {} ({addr}{})", spec.name, spec.health),
                        message,
                    })?;
                Ok::<_, DockerError>(ServiceRef {
                    name: spec.name.clone(),
                    image: spec.image.clone(),
                    endpoint: format!("http://{addr}"),
                })
            });
        for r in join_all(probes).await {
            made.services.push(r?);
        }
        made.health = health_started.elapsed();
        Ok(())
    }

    async fn create_service(
        &self,
        docker: &Docker,
        slug: &str,
        network: &str,
        spec: &ServiceSpec,
    ) -> Result<String, DockerError> {
        let name = self.name(slug, Some(&spec.name));
        let port_key = format!("{}/tcp", spec.port);
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("STANDIN_NAME={}", spec.name));
        env.push(format!("STANDIN_LISTEN=0.0.0.0:{}", spec.port));
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(env),
            labels: Some(self.labels(slug)),
            exposed_ports: Some(HashMap::from([(port_key.clone(), HashMap::new())])),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_owned()),
                // Published on loopback only, on a free port the engine picks.
                port_bindings: Some(HashMap::from([(
                    port_key,
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".into()),
                        host_port: Some(String::new()),
                    }]),
                )])),
                ..Default::default()
            }),
            networking_config: Some(NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.to_owned(),
                    EndpointSettings {
                        aliases: Some(vec![spec.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let created = docker
            .create_container(
                Some(CreateContainerOptions {
                    name: Some(name.clone()),
                    ..Default::default()
                }),
                body,
            )
            .await
            .map_err(err(format!(
                "create container {name} from image {}",
                spec.image
            )))?;
        Ok(created.id)
    }

    /// Stops (SIGTERM, grace [`STOP_GRACE_SECS`]) and removes every container, then the network.
    pub async fn teardown(&self, deployment: &DockerDeployment) -> Result<(), DockerError> {
        let docker = self.docker().await?;
        remove_all(
            docker,
            &deployment.containers,
            &deployment.network,
            STOP_GRACE_SECS,
        )
        .await
    }

    /// Force-removes everything labelled with this session (hearth shutting down).
    pub async fn sweep_session(&self) -> Result<SweepReport, DockerError> {
        let docker = self.docker().await?;
        sweep(docker, Some(&self.session)).await
    }
}

/// What a sweep removed.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
}

/// One labelled Docker object, as the sweeps and reports see it.
#[derive(Clone, Debug)]
pub struct LabelledObject {
    /// `container` or `network`.
    pub kind: &'static str,
    /// Container id or network name: what removal takes.
    pub id: String,
    /// Human name (container name without `/`, or the network name).
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// Every container and network carrying all of `labels` (`key=value`) plus
/// `rocky.managed-by=rocky-e2e`: the one query behind every sweep and "nothing remains" check.
pub async fn list_labelled_objects(
    docker: &Docker,
    labels: &[String],
) -> Result<Vec<LabelledObject>, DockerError> {
    let mut filters = vec![format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE
    )];
    filters.extend(labels.iter().cloned());
    let filter = HashMap::from([("label".to_owned(), filters)]);
    let mut out = Vec::new();
    for c in docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filter.clone()),
            ..Default::default()
        }))
        .await
        .map_err(err("list labelled containers"))?
    {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default();
        out.push(LabelledObject {
            kind: "container",
            id: c.id.unwrap_or_default(),
            name,
            labels: c.labels.unwrap_or_default(),
        });
    }
    for n in docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filter),
        }))
        .await
        .map_err(err("list labelled networks"))?
    {
        let name = n.name.unwrap_or_default();
        out.push(LabelledObject {
            kind: "network",
            id: name.clone(),
            name,
            labels: n.labels.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Force-removes every container (concurrently), then every network, carrying all of
/// `labels` plus `rocky.managed-by=rocky-e2e`. Objects already gone, or already being removed,
/// are not errors.
pub async fn sweep_labelled(
    docker: &Docker,
    labels: &[String],
) -> Result<SweepReport, DockerError> {
    let objects = list_labelled_objects(docker, labels).await?;
    let removals = objects
        .iter()
        .filter(|o| o.kind == "container")
        .map(|o| async move {
            docker
                .remove_container(
                    &o.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
                .map(|()| o.id.clone())
        });
    let mut report = SweepReport::default();
    for r in join_all(removals).await {
        match r {
            Ok(id) => report.containers.push(id),
            Err(e) if is_gone_or_going(&e) => {}
            Err(e) => return Err(err("remove a labelled container")(e)),
        }
    }
    for o in objects.iter().filter(|o| o.kind == "network") {
        match docker.remove_network(&o.id).await {
            Ok(()) => report.networks.push(o.id.clone()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(err(format!("remove network {}", o.id))(e)),
        }
    }
    Ok(report)
}

/// Force-removes everything of `session` (or, with `None`, everything this project made).
/// Used at hearth shutdown and by the harness after each scenario.
pub async fn sweep(docker: &Docker, session: Option<&str>) -> Result<SweepReport, DockerError> {
    let labels: Vec<String> = session
        .map(|s| format!("{}={s}", labels::SESSION))
        .into_iter()
        .collect();
    sweep_labelled(docker, &labels).await
}

/// Sessions with an object whose `rocky.pid` names a process that is gone.
pub fn stale_sessions(objects: &[LabelledObject]) -> std::collections::BTreeSet<String> {
    objects
        .iter()
        .filter(|o| !owner_alive(&o.labels))
        .filter_map(|o| o.labels.get(labels::SESSION).cloned())
        .collect()
}

/// Whether the process named by an object's `rocky.pid` label is alive.
pub fn owner_alive(labels: &HashMap<String, String>) -> bool {
    labels
        .get(labels::PID)
        .and_then(|p| p.parse::<i32>().ok())
        .is_some_and(process_alive)
}

/// Removes objects whose hearth is gone: `rocky.pid` names a process that no longer exists
/// (hearth was SIGKILLed and could not clean up). Live sessions, including concurrent runs, are
/// left alone.
pub async fn sweep_stale(docker: &Docker) -> Result<SweepReport, DockerError> {
    let objects = list_labelled_objects(docker, &[]).await?;
    let mut report = SweepReport::default();
    for session in stale_sessions(&objects) {
        let r = sweep(docker, Some(&session)).await?;
        report.containers.extend(r.containers);
        report.networks.extend(r.networks);
    }
    Ok(report)
}

/// Whether `pid` names a live process. A zombie (killed, not yet reaped: common here, where
/// PID 1 does not reap) counts as dead, since it will never clean up after itself.
pub fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces or parens, so read the state
    // after the last ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(|s| s == "Z"))
        })
        .unwrap_or(false)
}

/// Names of containers and networks labelled with `session` and `slug` (for "nothing remains").
pub async fn list_labelled(
    docker: &Docker,
    session: &str,
    slug: &str,
) -> Result<Vec<String>, DockerError> {
    let labels = [
        format!("{}={session}", labels::SESSION),
        format!("{}={slug}", labels::WORKSPACE),
    ];
    Ok(list_labelled_objects(docker, &labels)
        .await?
        .into_iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect())
}

/// 404 (already gone) or 409 (removal already in progress).
fn is_gone_or_going(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }
    )
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Stops all containers concurrently, removes them, then removes the network. `grace` 0 means
/// kill at once (used when undoing a failed provision).
async fn remove_all(
    docker: &Docker,
    containers: &[String],
    network: &str,
    grace: i32,
) -> Result<(), DockerError> {
    let stops = containers.iter().map(|id| async move {
        if grace > 0 {
            match docker
                .stop_container(
                    id,
                    Some(StopContainerOptions {
                        t: Some(grace),
                        signal: None,
                    }),
                )
                .await
            {
                Ok(()) => {}
                // 304: already stopped; 404: already gone. Both are what we wanted.
                Err(bollard::errors::Error::DockerResponseServerError {
                    status_code: 304 | 404,
                    ..
                }) => {}
                Err(e) => return Err(err(format!("stop container {id}"))(e)),
            }
        }
        match docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(err(format!("remove container {id}"))(e)),
        }
    });
    for r in join_all(stops).await {
        r?;
    }
    if !network.is_empty() {
        match docker.remove_network(network).await {
            Ok(()) => {}
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(err(format!("remove network {network}"))(e)),
        }
    }
    Ok(())
}

async fn published_port(docker: &Docker, id: &str, port: u16) -> Result<u16, DockerError> {
    let info = docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(err(format!("inspect container {id}")))?;
    let key = format!("{port}/tcp");
    info.network_settings
        .and_then(|n| n.ports)
        .and_then(|p| p.get(&key).cloned().flatten())
        .and_then(|b| b.into_iter().find_map(|b| b.host_port))
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| DockerError {
            step: format!("find the published port of container {id}"),
            message: format!("no host binding for {key}"),
        })
}
