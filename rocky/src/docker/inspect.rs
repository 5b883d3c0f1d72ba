//! Reading back what the engine made.

use bollard::Docker;

use super::{DockerError, err};

/// What the engine knows of container `id`.
async fn inspect(
    docker: &Docker,
    id: &str,
) -> Result<bollard::models::ContainerInspectResponse, DockerError> {
    docker
        .inspect_container(
            id,
            None::<bollard::query_parameters::InspectContainerOptions>,
        )
        .await
        .map_err(err(format!("inspect container {id}")))
}

/// Whether container `id` is running, as the engine says.
pub async fn is_running(docker: &Docker, id: &str) -> Result<bool, DockerError> {
    let info = inspect(docker, id).await?;
    Ok(info.state.and_then(|s| s.running).unwrap_or(false))
}

/// The host port the engine published for `port/tcp` of container `id`.
pub async fn published_port(docker: &Docker, id: &str, port: u16) -> Result<u16, DockerError> {
    let info = inspect(docker, id).await?;
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

/// The IP address of container `id` on `network`.
pub async fn network_ip(
    docker: &Docker,
    id: &str,
    network: &str,
) -> Result<std::net::IpAddr, DockerError> {
    let info = inspect(docker, id).await?;
    let ip = info
        .network_settings
        .and_then(|n| n.networks)
        .and_then(|mut n| n.remove(network))
        .and_then(|e| e.ip_address)
        .unwrap_or_default();
    ip.parse().map_err(|_| DockerError {
        step: format!("read the address of {id} on network {network}"),
        message: format!("the engine reported {ip:?}"),
    })
}
