//! Why the containers of a stack did not start or stop, worded for a failing scenario's
//! report (a container that never got ready brings its own output along).

use std::time::Duration;

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

pub(super) fn engine(
    step: impl Into<String>,
) -> impl FnOnce(bollard::errors::Error) -> ContainerError {
    let step = step.into();
    move |e| ContainerError::Engine {
        step,
        message: e.to_string(),
    }
}
