//! Stopping and removing what a workspace made: containers (SIGTERM with a grace, or at once)
//! and its network. Objects already gone are what we wanted, not errors.

use bollard::Docker;
use bollard::query_parameters::{RemoveContainerOptions, StopContainerOptions};
use futures::future::join_all;

use super::{DockerError, err, is_not_found};

/// Stops all containers concurrently, removes them, then removes the network. `grace` 0 means
/// kill at once (used when undoing a failed provision).
pub async fn remove_all(
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
