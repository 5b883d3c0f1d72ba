//! Finding and removing labelled objects: everything of one session (hearth at shutdown, the
//! harness after a scenario) or of an owner that is gone (what a killed run left behind; who
//! is gone is [`super::owner`]'s decision).

use std::collections::HashMap;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use futures::future::join_all;

use super::{DockerError, err, is_gone_or_going, is_not_found, labels, owner};

/// What a sweep removed.
#[derive(Debug, Default, Clone)]
pub struct SweepReport {
    /// Ids of the containers removed.
    pub containers: Vec<String>,
    /// Names of the networks removed.
    pub networks: Vec<String>,
}

/// One labelled Docker object, as the sweeps and reports see it.
#[derive(Clone, Debug)]
pub struct LabelledObject {
    /// `container` or `network`.
    pub kind: &'static str,
    /// Container or network id: what removal takes.
    pub id: String,
    /// Human name (container name without `/`, or the network name).
    pub name: String,
    pub labels: HashMap<String, String>,
}

/// Every container and network carrying all of `labels` (`key=value`) plus
/// `rocky.managed-by=rocky-e2e`: the one query behind every sweep and "nothing remains" check.
pub async fn list_labelled_objects(
    docker: &Docker,
    labels: &[String],
) -> Result<Vec<LabelledObject>, DockerError> {
    let mut filters = vec![format!(
        "{}={}",
        labels::MANAGED_BY,
        labels::MANAGED_BY_VALUE
    )];
    filters.extend(labels.iter().cloned());
    let filter = HashMap::from([("label".to_owned(), filters)]);
    let mut out = Vec::new();
    for c in docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filter.clone()),
            ..Default::default()
        }))
        .await
        .map_err(err("list labelled containers"))?
    {
        let name = c
            .names
            .as_ref()
            .and_then(|n| n.first())
            .map(|n| n.trim_start_matches('/').to_owned())
            .unwrap_or_default();
        out.push(LabelledObject {
            kind: "container",
            id: c.id.unwrap_or_default(),
            name,
            labels: c.labels.unwrap_or_default(),
        });
    }
    for n in docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filter),
        }))
        .await
        .map_err(err("list labelled networks"))?
    {
        let name = n.name.unwrap_or_default();
        out.push(LabelledObject {
            kind: "network",
            // The id, not the name: an engine that speaks API 1.41 lets two networks share a
            // name, and removing by that name is then refused as ambiguous.
            id: n.id.unwrap_or_else(|| name.clone()),
            name,
            labels: n.labels.unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Force-removes every container (concurrently), then every network, carrying all of
/// `labels` plus `rocky.managed-by=rocky-e2e`. Objects already gone, or already being removed,
/// are not errors.
pub async fn sweep_labelled(
    docker: &Docker,
    labels: &[String],
) -> Result<SweepReport, DockerError> {
    let objects = list_labelled_objects(docker, labels).await?;
    remove_objects(docker, &objects).await
}

/// Force-removes exactly `objects`: containers concurrently, then networks.
pub async fn remove_objects(
    docker: &Docker,
    objects: &[LabelledObject],
) -> Result<SweepReport, DockerError> {
    let removals = objects
        .iter()
        .filter(|o| o.kind == "container")
        .map(|o| async move {
            docker
                .remove_container(
                    &o.id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await
                .map(|()| o.id.clone())
        });
    let mut report = SweepReport::default();
    for r in join_all(removals).await {
        match r {
            Ok(id) => report.containers.push(id),
            Err(e) if is_gone_or_going(&e) => {}
            Err(e) => return Err(err("remove a labelled container")(e)),
        }
    }
    for o in objects.iter().filter(|o| o.kind == "network") {
        match docker.remove_network(&o.id).await {
            Ok(()) => report.networks.push(o.name.clone()),
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(err(format!("remove network {}", o.id))(e)),
        }
    }
    Ok(report)
}

/// Force-removes everything of `session` (or, with `None`, everything this project made).
/// Used at hearth shutdown and by the harness after each scenario.
pub async fn sweep(docker: &Docker, session: Option<&str>) -> Result<SweepReport, DockerError> {
    let labels: Vec<String> = session.map(labels::session_filter).into_iter().collect();
    sweep_labelled(docker, &labels).await
}

/// Force-removes what of `session` this process may remove at its exit: objects it made, and
/// objects whose owner is gone (a workspace it adopted). An object whose owner is another
/// process that may be alive (the harness's own containers, a workspace held elsewhere) is
/// left to that owner.
pub async fn sweep_session_owned(
    docker: &Docker,
    session: &str,
) -> Result<SweepReport, DockerError> {
    let me = owner::Claim::from(&owner::ProcessId::this_process());
    let objects = list_labelled_objects(docker, &[labels::session_filter(session)])
        .await?
        .into_iter()
        .filter(|o| {
            let claim = owner::Claim::from_labels(&o.labels);
            claim == me || owner::judge(&claim) == owner::OwnerState::Gone
        })
        .collect::<Vec<_>>();
    remove_objects(docker, &objects).await
}

/// Sessions with an object whose owner ([`owner_alive`]) is on this host, in this PID
/// namespace and gone, and no object whose owner may be alive (a restarted hearth that adopted
/// the session marks it with an object of its own).
pub fn stale_sessions(objects: &[LabelledObject]) -> std::collections::BTreeSet<String> {
    let alive: std::collections::BTreeSet<&String> = objects
        .iter()
        .filter(|o| owner_alive(&o.labels))
        .filter_map(|o| o.labels.get(labels::SESSION))
        .collect();
    objects
        .iter()
        .filter(|o| !owner_alive(&o.labels))
        .filter_map(|o| o.labels.get(labels::SESSION))
        .filter(|s| !alive.contains(s))
        .cloned()
        .collect()
}

/// Whether the owner of an object may still be alive: anything but an owner on this host, in
/// this PID namespace, that is gone ([`owner::decide`]). An owner of another host or PID
/// namespace, or one not named, is never judged gone. An object whose labels name a keeper
/// ([`labels::KEEPER_PID`]) that may be alive counts as alive too: between a hearth's death
/// and its successor's adoption, what it made belongs to the process that restarts it.
pub fn owner_alive(labels: &HashMap<String, String>) -> bool {
    let alive = |claim: &owner::Claim| owner::judge(claim) != owner::OwnerState::Gone;
    alive(&owner::Claim::from_labels(labels))
        || owner::Claim::keeper_from_labels(labels).is_some_and(|k| alive(&k))
}

/// Removes objects whose owner is gone (hearth or the harness was SIGKILLed and could not
/// clean up): every object of a session in which no owner may be alive ([`stale_sessions`]).
/// Live sessions, including concurrent runs and runs of other PID namespaces, are left alone.
pub async fn sweep_stale(docker: &Docker) -> Result<SweepReport, DockerError> {
    sweep_stale_labelled(docker, &[]).await
}

/// [`sweep_stale`] among the objects carrying all of `labels`. What is removed is exactly what
/// was judged: an object made after the listing is never removed on an earlier verdict.
pub async fn sweep_stale_labelled(
    docker: &Docker,
    labels: &[String],
) -> Result<SweepReport, DockerError> {
    let objects = list_labelled_objects(docker, labels).await?;
    let stale = stale_sessions(&objects);
    let doomed: Vec<LabelledObject> = objects
        .into_iter()
        .filter(|o| {
            o.labels
                .get(labels::SESSION)
                .is_some_and(|s| stale.contains(s))
        })
        .collect();
    remove_objects(docker, &doomed).await
}

/// Whether `pid` names a live process. A zombie (killed, not yet reaped: common here, where
/// PID 1 does not reap) counts as dead, since it will never clean up after itself.
pub fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    let exists = rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM);
    exists && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    // /proc/<pid>/stat: "pid (comm) S ..."; comm may hold spaces or parens, so read the state
    // after the last ')'.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(|s| s == "Z"))
        })
        .unwrap_or(false)
}

/// Names of containers and networks labelled with `session` and `slug` (for "nothing remains").
pub async fn list_labelled(
    docker: &Docker,
    session: &str,
    slug: &str,
) -> Result<Vec<String>, DockerError> {
    let labels = [
        labels::session_filter(session),
        labels::workspace_filter(slug),
    ];
    Ok(list_labelled_objects(docker, &labels)
        .await?
        .into_iter()
        .map(|o| format!("{} {}", o.kind, o.name))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(session: &str, host: Option<&str>, pid: u32) -> LabelledObject {
        let mut l = HashMap::from([
            (labels::SESSION.to_owned(), session.to_owned()),
            (labels::PID.to_owned(), pid.to_string()),
        ]);
        if let Some(h) = host {
            l.insert(labels::HOST.to_owned(), h.to_owned());
        }
        LabelledObject {
            kind: "container",
            id: session.to_owned(),
            name: session.to_owned(),
            labels: l,
        }
    }

    #[test]
    fn only_this_hosts_gone_owners_are_stale() {
        // A pid far above pid_max: no such process exists on this host.
        let gone = 4_999_999;
        let me = labels::host_id();
        let objects = [
            object("mine-gone", Some(&me), gone),
            object("mine-alive", Some(&me), std::process::id()),
            object("other-host", Some("another-runner/boot/machine"), gone),
            object("unlabelled", None, gone),
            // Made by a hearth now gone, adopted by a live one (its marker).
            object("adopted", Some(&me), gone),
            object("adopted", Some(&me), std::process::id()),
        ];
        let stale = stale_sessions(&objects);
        assert_eq!(stale.into_iter().collect::<Vec<_>>(), vec!["mine-gone"]);
    }

    /// `object` with the full owner labels of this process, then `edit`ed.
    fn owned_object(
        session: &str,
        edit: impl FnOnce(&mut HashMap<String, String>),
    ) -> LabelledObject {
        let mut l = labels::owned(session);
        edit(&mut l);
        LabelledObject {
            kind: "network",
            id: session.to_owned(),
            name: session.to_owned(),
            labels: l,
        }
    }

    #[test]
    fn a_session_whose_keeper_lives_is_not_stale_while_its_hearth_is_gone() {
        let me = owner::ProcessId::this_process();
        let keeper = |pid: u32, start: u64| {
            move |l: &mut HashMap<String, String>| {
                l.insert(labels::PID.into(), "4999999".into());
                l.insert(labels::KEEPER_PID.into(), pid.to_string());
                l.insert(labels::KEEPER_START.into(), start.to_string());
            }
        };
        let objects = [
            // hearth killed, its keeper (this process) alive: the next hearth adopts it.
            owned_object("kept", keeper(me.pid, me.start)),
            // Both gone (the keeper's pid reused by another process): stale.
            owned_object("keeper-reused", keeper(me.pid, me.start + 1)),
            owned_object("keeper-gone", keeper(4_999_998, 1)),
        ];
        let stale = stale_sessions(&objects);
        assert_eq!(
            stale.into_iter().collect::<Vec<_>>(),
            vec!["keeper-gone", "keeper-reused"]
        );
    }

    #[test]
    fn only_gone_owners_of_this_pid_namespace_are_stale() {
        let me = owner::ProcessId::this_process();
        let set = |k: &'static str, v: String| {
            move |l: &mut HashMap<String, String>| {
                l.insert(k.to_owned(), v);
            }
        };
        let objects = [
            owned_object("alive", |_| {}),
            // This very pid, reused: the owner that started at another time is gone.
            owned_object("reused-pid", set(labels::START, (me.start + 1).to_string())),
            owned_object("gone-pid", set(labels::PID, "4999999".into())),
            // Another PID namespace of this host: whatever its pid, never judged here.
            owned_object("other-pidns-gone-pid", |l| {
                l.insert(labels::PIDNS.into(), (me.pidns + 1).to_string());
                l.insert(labels::PID.into(), "4999999".into());
            }),
            owned_object("other-pidns-reused-pid", |l| {
                l.insert(labels::PIDNS.into(), (me.pidns + 1).to_string());
                l.insert(labels::START.into(), "1".into());
            }),
            owned_object("other-host", |l| {
                l.insert(labels::HOST.into(), "another-runner/boot/machine".into());
                l.insert(labels::PID.into(), "4999999".into());
            }),
        ];
        let stale = stale_sessions(&objects);
        assert_eq!(
            stale.into_iter().collect::<Vec<_>>(),
            vec!["gone-pid", "reused-pid"]
        );
    }
}
