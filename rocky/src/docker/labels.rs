//! The labels every Docker object of the project carries (contract §1), and object names.
//! Ownership is (session, pid): a sweep removes a session whose owning process is gone.

use std::collections::HashMap;

/// `rocky.managed-by`: marks everything this project made.
pub const MANAGED_BY: &str = "rocky.managed-by";
/// The value of [`MANAGED_BY`].
pub const MANAGED_BY_VALUE: &str = "rocky-e2e";
/// `rocky.workspace`: the workspace slug an object belongs to.
pub const WORKSPACE: &str = "rocky.workspace";
/// `rocky.session`: the hearth (or harness) session that made it.
pub const SESSION: &str = "rocky.session";
/// pid of the process that made the object: a reaper removes objects whose owner is dead.
pub const PID: &str = "rocky.pid";

/// `rocky.managed-by=rocky-e2e` as a `key=value` filter.
pub fn managed_by_filter() -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE}")
}

/// The labels of an object this process makes for `session`.
pub fn owned(session: &str) -> HashMap<String, String> {
    HashMap::from([
        (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (SESSION.to_owned(), session.to_owned()),
        (PID.to_owned(), std::process::id().to_string()),
    ])
}

/// The labels of an object of workspace `slug` that this process makes for `session`.
pub fn for_workspace(session: &str, slug: &str) -> HashMap<String, String> {
    let mut labels = owned(session);
    labels.insert(WORKSPACE.to_owned(), slug.to_owned());
    labels
}

/// The name of a workspace's network (`service: None`) or of one of its service containers.
pub fn object_name(session: &str, slug: &str, service: Option<&str>) -> String {
    match service {
        Some(s) => format!("rocky-{session}-{slug}-{s}"),
        None => format!("rocky-{session}-{slug}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workspace_labels_name_owner_session_and_slug() {
        let l = for_workspace("s1", "ws");
        assert_eq!(l[MANAGED_BY], "rocky-e2e");
        assert_eq!(l[SESSION], "s1");
        assert_eq!(l[WORKSPACE], "ws");
        assert_eq!(l[PID], std::process::id().to_string());
        assert_eq!(object_name("s1", "ws", Some("lore")), "rocky-s1-ws-lore");
        assert_eq!(object_name("s1", "ws", None), "rocky-s1-ws");
    }
}
