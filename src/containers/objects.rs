//! The objects of a stack on the engine (its network and two containers): their names and
//! labels, and the queries that remove them after a failed start or report a killed run's.

use std::collections::HashMap;

use bollard::Docker;
use rocky::hearth::labels;

use super::ContainerError;

/// Label naming what an object is to the stack: `console`, `worker` or `network`.
pub const COMPONENT: &str = "rocky.component";

/// Names of the stack's objects: `_` cannot occur in a slug, so they never collide with the
/// `rocky-<session>-<slug>` objects hearth makes for workspaces.
pub fn object_name(session: &str, component: &str) -> String {
    format!("rocky-{session}_{component}")
}

/// The labels of one of the stack's objects: managed, session, owning pid and component.
pub(super) fn labels_for(session: &str, component: &str) -> HashMap<String, String> {
    let mut all = labels::owned(session);
    all.insert(COMPONENT.into(), component.into());
    all
}

/// Force-removes the console and worker containers and the network of `session` (not
/// hearth's workspace objects of the same session). Used when a start fails halfway.
pub async fn remove_stack_objects(docker: &Docker, session: &str) -> Result<(), ContainerError> {
    let labels = [labels::session_filter(session), COMPONENT.to_owned()];
    rocky::docker::sweep::sweep_labelled(docker, &labels)
        .await
        .map(|_| ())
        .map_err(ContainerError::from)
}

/// What [`rocky::docker::sweep::sweep_stale`] is about to remove, one line per object
/// (`container NAME (stack console, session S, pid P gone)`), for the start-of-run report:
/// every object of every session in which some object's `rocky.pid` names a process that is
/// gone (the harness or hearth of a killed run).
pub async fn stale_objects(docker: &Docker) -> Result<Vec<String>, ContainerError> {
    use rocky::docker::sweep::{list_labelled_objects, owner_alive, stale_sessions};
    let objects = list_labelled_objects(docker, &[])
        .await
        .map_err(ContainerError::from)?;
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
    fn labels_carry_session_pid_and_component_but_no_workspace() {
        let l = labels_for("s1", "worker");
        assert_eq!(l[labels::MANAGED_BY], "rocky-e2e");
        assert_eq!(l[labels::SESSION], "s1");
        assert_eq!(l[labels::PID], std::process::id().to_string());
        assert_eq!(l[COMPONENT], "worker");
        assert!(!l.contains_key(labels::WORKSPACE));
    }
}
