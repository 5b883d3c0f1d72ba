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
use bollard::query_parameters::CreateContainerOptions;
use futures::future::join_all;
use tokio::sync::OnceCell;

use super::health::wait_healthy;
use super::{Driver, Found, HealthCheck, Provisioned};
use crate::api::hearth::{DeploymentRef, DriverKind, ServiceRef, Status};
use crate::docker::inspect::published_port;
use crate::docker::owner::{Claim, OwnerState, ProcessId, judge};
use crate::docker::remove::remove_all;
use crate::docker::{DockerError, SweepReport, connect, err, labels, sweep};
use crate::tier::{ServiceSpec, TierProfile};

/// Seconds `docker stop` waits after SIGTERM before SIGKILL. The stand-in exits on SIGTERM at
/// once; a service that ignores it is what the teardown deadline exists to catch.
const STOP_GRACE_SECS: i32 = 10;

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
        labels::for_workspace(&self.session, slug)
    }

    fn name(&self, slug: &str, service: Option<&str>) -> String {
        labels::object_name(&self.session, slug, service)
    }

    /// Creates the network, then creates and starts every service concurrently, then waits for
    /// each to answer its health route. On any failure, removes what it made.
    async fn make(
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
                labels: Some({
                    let mut l = self.labels(slug);
                    l.insert(labels::TIER.to_owned(), profile.name.clone());
                    l
                }),
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

        let deadline = crate::duration::deadline(Instant::now(), health_timeout);
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
        let mut labels = self.labels(slug);
        labels.extend([
            (labels::SERVICE.to_owned(), spec.name.clone()),
            (labels::PORT.to_owned(), spec.port.to_string()),
            (labels::HEALTH.to_owned(), spec.health.clone()),
        ]);
        let body = container_body(spec, network, labels);
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
    async fn remove(&self, deployment: &DockerDeployment) -> Result<(), DockerError> {
        let docker = self.docker().await?;
        remove_all(
            docker,
            &deployment.containers,
            &deployment.network,
            STOP_GRACE_SECS,
        )
        .await
    }

    /// What an earlier hearth of this session left, by workspace: its network (with the tier
    /// label) and its service containers. A workspace whose owner may be alive elsewhere is
    /// left alone ([`Found::Held`]). Of those whose owner is gone, one whose every service
    /// runs is adopted to settle (it may still be becoming healthy); one whose network, tier or
    /// any service is missing or stopped is removed and reported `failed`.
    async fn find_left(&self) -> Result<Vec<Found<DockerDeployment>>, DockerError> {
        let docker = self.docker().await?.clone();
        let objects =
            sweep::list_labelled_objects(&docker, &[labels::session_filter(&self.session)]).await?;
        let mut by_slug: std::collections::BTreeMap<String, Vec<sweep::LabelledObject>> =
            Default::default();
        for o in objects {
            if let Some(slug) = o.labels.get(labels::WORKSPACE) {
                by_slug.entry(slug.clone()).or_default().push(o);
            }
        }
        let me = ProcessId::this_process();
        let mut found = Vec::new();
        for (slug, objects) in by_slug {
            // Made by another process that may be alive (another host or PID namespace of
            // this session, where this hearth's lock does not reach): never ours to remove.
            let live_owner = objects.iter().find_map(|o| {
                let claim = Claim::from_labels(&o.labels);
                let mine = claim == Claim::from(&me);
                (!mine && judge(&claim) != OwnerState::Gone).then(|| {
                    format!(
                        "its {} {} is owned by pid {} of host {} (PID namespace {}), which may be alive",
                        o.kind,
                        o.name,
                        claim.pid.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                        claim.host.as_deref().unwrap_or("?"),
                        claim.pidns.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
                    )
                })
            });
            if let Some(reason) = live_owner {
                found.push(Found::Held { slug, reason });
                continue;
            }
            let network = objects.iter().find(|o| o.kind == "network");
            let containers: Vec<&sweep::LabelledObject> =
                objects.iter().filter(|o| o.kind == "container").collect();
            let tier = network
                .and_then(|n| n.labels.get(labels::TIER).cloned())
                .unwrap_or_default();
            let mut deployment = DockerDeployment {
                network: network.map(|n| n.id.clone()).unwrap_or_default(),
                containers: containers.iter().map(|c| c.id.clone()).collect(),
                services: Vec::new(),
                health: Duration::ZERO,
            };
            let checked = if network.is_none() || tier.is_empty() || containers.is_empty() {
                Ok(Err(
                    "its network, tier label or containers are missing".to_owned()
                ))
            } else {
                self.check_left(&docker, &containers).await
            };
            let mut reference = DeploymentRef {
                slug: slug.clone(),
                tier,
                driver: DriverKind::LocalDocker,
                status: Status::Provisioning,
                services: Vec::new(),
                error: None,
            };
            match checked? {
                Ok((services, checks)) => {
                    reference.services = services.clone();
                    deployment.services = services;
                    found.push(Found::Settling {
                        reference,
                        deployment,
                        checks,
                    });
                }
                Err(why) => {
                    tracing::warn!(slug, "incomplete at rediscovery ({why}); removing it");
                    remove_all(&docker, &deployment.containers, &deployment.network, 0).await?;
                    reference.status = Status::Failed;
                    reference.error = Some(format!(
                        "found incomplete when hearth restarted ({why}); removed"
                    ));
                    found.push(Found::Failed { reference });
                }
            }
        }
        if !found.is_empty()
            && let Err(e) = self.mark_adopted(&docker).await
        {
            // The marker only shields the adopted objects from another run's sweep of gone
            // owners; an engine out of address pools must not keep hearth from its view.
            tracing::warn!("adopted workspaces are not marked as this hearth's: {e}");
        }
        Ok(found)
    }

    /// Every container running and labelled with its service: the services and the health
    /// routes they must answer. `Ok(Err(why))`: the workspace is incomplete; `Err`: the engine
    /// did not answer.
    async fn check_left(
        &self,
        docker: &Docker,
        containers: &[&sweep::LabelledObject],
    ) -> Result<Result<(Vec<ServiceRef>, Vec<HealthCheck>), String>, DockerError> {
        let mut services = Vec::new();
        let mut checks = Vec::new();
        for c in containers {
            let label = |key: &str| {
                c.labels
                    .get(key)
                    .cloned()
                    .ok_or_else(|| format!("container {} has no {key} label", c.name))
            };
            let (name, health, port) = match (
                label(labels::SERVICE),
                label(labels::HEALTH),
                label(labels::PORT),
            ) {
                (Ok(n), Ok(h), Ok(p)) => (n, h, p),
                (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => return Ok(Err(e)),
            };
            let Ok(port) = port.parse::<u16>() else {
                return Ok(Err(format!(
                    "container {} has a bad {} label",
                    c.name,
                    labels::PORT
                )));
            };
            let info = match docker
                .inspect_container(
                    &c.id,
                    None::<bollard::query_parameters::InspectContainerOptions>,
                )
                .await
            {
                Ok(info) => info,
                Err(e) if crate::docker::is_not_found(&e) => {
                    return Ok(Err(format!("container {} is gone", c.name)));
                }
                Err(e) => return Err(err(format!("inspect container {}", c.name))(e)),
            };
            if !info.state.and_then(|s| s.running).unwrap_or(false) {
                return Ok(Err(format!("container {} is not running", c.name)));
            }
            let image = info.config.and_then(|c| c.image).unwrap_or_default();
            let host_port = published_port(docker, &c.id, port).await?;
            let addr = format!("127.0.0.1:{host_port}");
            checks.push(HealthCheck {
                service: name.clone(),
                addr: addr.clone(),
                path: health,
            });
            services.push(ServiceRef {
                name,
                image,
                endpoint: format!("http://{addr}"),
            });
        }
        services.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Ok((services, checks)))
    }

    /// Objects of this session now belong to this hearth, but their `rocky.pid` names the
    /// hearth that made them (labels cannot change). A small network labelled with this pid
    /// marks the session as owned by a live process, so no sweep of dead owners removes it;
    /// it goes with the session's sweep at shutdown.
    async fn mark_adopted(&self, docker: &Docker) -> Result<(), DockerError> {
        let name = format!("rocky-{}-adopted-{}", self.session, std::process::id());
        // Already made by an earlier attempt: the engine (API 1.41) would make a second one of
        // the same name rather than refuse.
        match docker
            .inspect_network(
                &name,
                None::<bollard::query_parameters::InspectNetworkOptions>,
            )
            .await
        {
            Ok(_) => return Ok(()),
            Err(e) if crate::docker::is_not_found(&e) => {}
            Err(e) => return Err(err(format!("inspect network {name}"))(e)),
        }
        match docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(labels::owned(&self.session)),
                ..Default::default()
            })
            .await
        {
            Ok(_) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 409, ..
            }) => Ok(()),
            Err(e) => Err(err(format!("create network {name}"))(e)),
        }
    }

    /// Every object of workspace `slug` of this session, found by its labels and force-removed:
    /// what no handle names. An object whose owner is a live process other than this hearth
    /// (another PID namespace or host of the session) is never touched, and makes it an error:
    /// the workspace is not gone.
    async fn remove_labelled(&self, slug: &str) -> Result<Vec<String>, DockerError> {
        let docker = self.docker().await?;
        let filter = [
            labels::session_filter(&self.session),
            labels::workspace_filter(slug),
        ];
        let objects = sweep::list_labelled_objects(docker, &filter).await?;
        let me = Claim::from(&ProcessId::this_process());
        let (ours, held): (Vec<_>, Vec<_>) = objects.into_iter().partition(|o| {
            let claim = Claim::from_labels(&o.labels);
            claim == me || judge(&claim) == OwnerState::Gone
        });
        if let Some(o) = held.first() {
            return Err(DockerError {
                step: format!("remove what remains of workspace {slug}"),
                message: format!(
                    "its {} {} is owned by another process, which may be alive; not removed",
                    o.kind, o.name
                ),
            });
        }
        sweep::remove_objects(docker, &ours).await?;
        Ok(ours
            .iter()
            .map(|o| format!("{} {}", o.kind, o.name))
            .collect())
    }

    /// Force-removes what of this session is this hearth's (hearth shutting down): what it made
    /// and what it adopted from a gone owner, never what a live owner elsewhere holds.
    async fn sweep_session(&self) -> Result<SweepReport, DockerError> {
        let docker = self.docker().await?;
        sweep::sweep_session_owned(docker, &self.session).await
    }
}

impl Driver for DockerDriver {
    type Deployment = DockerDeployment;
    const KIND: DriverKind = DriverKind::LocalDocker;

    async fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> Result<Provisioned<DockerDeployment>, String> {
        let made = self
            .make(slug, profile, health_timeout)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Provisioned {
            services: made.services.clone(),
            health: made.health,
            deployment: made,
        })
    }

    async fn teardown(&self, deployment: &mut DockerDeployment) -> Result<(), String> {
        self.remove(deployment).await.map_err(|e| e.to_string())
    }

    async fn remove_remains(&self, slug: &str) -> Result<Vec<String>, String> {
        self.remove_labelled(slug).await.map_err(|e| e.to_string())
    }

    async fn rediscover(&self) -> Result<Vec<Found<DockerDeployment>>, String> {
        // The engine's own words: a provision refused meanwhile gives them as its reason.
        self.find_left().await.map_err(|e| e.to_string())
    }

    async fn sweep(&self) {
        match self.sweep_session().await {
            Ok(r) if !r.containers.is_empty() || !r.networks.is_empty() => {
                tracing::warn!(?r, "removed leftovers at shutdown")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

/// The container a service of a workspace runs as: its image, the stand-in's environment, the
/// labels, the workspace network (with the service's name as alias) and its port published on
/// loopback at a free port the engine picks. Public so the benchmark's raw-engine floor makes
/// exactly the containers hearth makes.
pub fn container_body(
    spec: &ServiceSpec,
    network: &str,
    labels: HashMap<String, String>,
) -> ContainerCreateBody {
    let port_key = format!("{}/tcp", spec.port);
    let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("STANDIN_NAME={}", spec.name));
    env.push(format!("STANDIN_LISTEN=0.0.0.0:{}", spec.port));
    ContainerCreateBody {
        image: Some(spec.image.clone()),
        env: Some(env),
        labels: Some(labels),
        exposed_ports: Some(vec![port_key.clone()]),
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
    }
}
