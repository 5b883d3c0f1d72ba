//! The labels every Docker object of the project carries (contract §1), and object names.
//! Ownership is (host, PID namespace, pid, start time), see [`super::owner`]: a sweep removes a
//! session whose owning process is on this host, in this PID namespace and gone, never one of
//! another host or namespace sharing the engine (whose pids mean nothing here).

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
/// Inode of the owner's PID namespace: its [`PID`] means nothing in another namespace.
pub const PIDNS: &str = "rocky.pidns";
/// The owner's start time (clock ticks since the boot named in [`HOST`]): a reused pid has
/// another.
pub const START: &str = "rocky.start";

/// pid of the session's keeper, when hearth was given one (`hearth --keeper-pid`): the
/// process that started hearth and restarts it. While the keeper lives, a sweep leaves the
/// session alone even when the hearth that made an object is gone: the next hearth adopts it.
/// The keeper is on the owner's host and in its PID namespace.
pub const KEEPER_PID: &str = "rocky.keeper.pid";
/// The keeper's start time (as [`START`]).
pub const KEEPER_START: &str = "rocky.keeper.start";

/// `rocky.tier`: the tier a workspace was provisioned on (on its network), so a restarted
/// hearth can report it.
pub const TIER: &str = "rocky.tier";
/// `rocky.service`: the tier service a container runs.
pub const SERVICE: &str = "rocky.service";
/// `rocky.port`: the port the service listens on inside its container.
pub const PORT: &str = "rocky.port";
/// `rocky.health`: the service's health route.
pub const HEALTH: &str = "rocky.health";

/// `rocky.host`: identity of the host (kernel boot and UTS name) whose [`PID`] made the object.
pub const HOST: &str = "rocky.host";

/// This host's identity for [`HOST`]: `<hostname>/<boot id>`. A pid is meaningful only on
/// the host (and boot) that issued it; two CI runners sharing one `DOCKER_HOST` differ here.
pub fn host_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_owned())
                .unwrap_or_default()
        };
        let host = read("/proc/sys/kernel/hostname");
        let boot = read("/proc/sys/kernel/random/boot_id");
        let machine = read("/etc/machine-id");
        format!("{host}/{boot}/{machine}")
    })
    .clone()
}

/// `rocky.managed-by=rocky-e2e` as a `key=value` filter.
pub fn managed_by_filter() -> String {
    format!("{MANAGED_BY}={MANAGED_BY_VALUE}")
}

/// The `key=value` filter that finds the objects of `session`.
pub fn session_filter(session: &str) -> String {
    format!("{SESSION}={session}")
}

/// The `key=value` filter that finds the objects of workspace `slug`.
pub fn workspace_filter(slug: &str) -> String {
    format!("{WORKSPACE}={slug}")
}

/// The keeper named on every object this process makes from now on ([`KEEPER_PID`]); set
/// once, by hearth at its start.
static KEEPER: std::sync::OnceLock<super::owner::ProcessId> = std::sync::OnceLock::new();

/// Names `keeper` on every object this process makes from now on; the first call wins.
pub fn set_keeper(keeper: super::owner::ProcessId) {
    let _ = KEEPER.set(keeper);
}

/// The labels of an object this process makes for `session`.
pub fn owned(session: &str) -> HashMap<String, String> {
    let me = super::owner::ProcessId::this_process();
    let mut labels = HashMap::from([
        (MANAGED_BY.to_owned(), MANAGED_BY_VALUE.to_owned()),
        (SESSION.to_owned(), session.to_owned()),
        (PID.to_owned(), me.pid.to_string()),
        (PIDNS.to_owned(), me.pidns.to_string()),
        (START.to_owned(), me.start.to_string()),
        (HOST.to_owned(), me.host),
    ]);
    if let Some(keeper) = KEEPER.get() {
        labels.insert(KEEPER_PID.to_owned(), keeper.pid.to_string());
        labels.insert(KEEPER_START.to_owned(), keeper.start.to_string());
    }
    labels
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
        assert_eq!(l[HOST], host_id());
        let me = crate::docker::owner::ProcessId::this_process();
        assert_eq!(l[PIDNS], me.pidns.to_string());
        assert_eq!(l[START], me.start.to_string());
        assert_eq!(object_name("s1", "ws", Some("lore")), "rocky-s1-ws-lore");
        assert_eq!(object_name("s1", "ws", None), "rocky-s1-ws");
    }
}
