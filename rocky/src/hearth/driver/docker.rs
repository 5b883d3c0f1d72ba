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
use super::{Driver, Provisioned};
use crate::api::hearth::{DriverKind, ServiceRef};
use crate::docker::inspect::published_port;
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
        let body = container_body(spec, network, self.labels(slug));
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

    /// Force-removes everything labelled with this session (hearth shutting down).
    async fn sweep_session(&self) -> Result<SweepReport, DockerError> {
        let docker = self.docker().await?;
        sweep::sweep(docker, Some(&self.session)).await
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
