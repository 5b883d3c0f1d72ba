//! Talking to the Docker engine: one connection routine, one error type, the labels every
//! object carries, inspection, removal and the label sweeps. Used by hearth's `local-docker`
//! driver and by the harness for its own containers, so both speak to the engine the same way.
//!
//! - [`labels`]: the labels (contract §1) and object names.
//! - [`owner`]: who owns an object (host, PID namespace, pid, start time) and whether it is gone.
//! - [`inspect`]: reading what the engine made (published ports).
//! - [`remove`]: stopping and removing containers and networks.
//! - [`sweep`]: finding and removing labelled objects (a session's, or a dead owner's).

pub mod inspect;
pub mod labels;
pub mod owner;
pub mod remove;
pub mod sweep;

use std::time::Duration;

use bollard::Docker;

pub use sweep::{LabelledObject, SweepReport};

/// How long a single engine call may take before we call the engine unresponsive.
const ENGINE_CALL_TIMEOUT_SECS: u64 = 60;

/// Whatever went wrong talking to the engine, with the step it happened in.
#[derive(Debug, thiserror::Error)]
#[error("failed to {step}: {message}")]
pub struct DockerError {
    pub step: String,
    pub message: String,
}

pub fn err(step: impl Into<String>) -> impl FnOnce(bollard::errors::Error) -> DockerError {
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

/// 404 (already gone) or 409 (removal already in progress).
pub fn is_gone_or_going(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        }
    )
}

/// 404: the object does not exist.
pub fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}
