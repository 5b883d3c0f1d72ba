//! Why the containers of a stack did not start or stop, worded for a failing scenario's
//! report (a container that never got ready brings its own output along).

use std::time::Duration;

/// Why the containers of a stack did not start or stop.
#[derive(Debug, thiserror::Error)]
pub enum ContainerError {
    #[error(transparent)]
    Engine(#[from] rocky::docker::DockerError),
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

impl ContainerError {
    /// A failed step that is not an engine call (reading a folder, an odd engine answer).
    pub(super) fn engine(step: impl Into<String>, message: impl Into<String>) -> ContainerError {
        ContainerError::Engine(rocky::docker::DockerError {
            step: step.into(),
            message: message.into(),
        })
    }
}
