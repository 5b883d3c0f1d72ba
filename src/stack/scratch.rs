//! The scratch folders of a run: one per scenario (`rocky-e2e-…`, its HATCH log, seal and key,
//! hearth's state, on Docker the tokens and vaults) and one per shared stack
//! (`rocky-e2e-shared-…`), in the system's temporary folder.
//!
//! A run removes its own as each scenario ends. A run that is killed cannot, so every folder
//! names its owner, as the Docker objects' labels do (`rocky::docker::owner`): its file
//! [`OWNER`] holds the host id, the PID namespace, the pid and the start time. The next run
//! removes those whose owner is on this host and gone ([`sweep_stale`]), and never one of a
//! live run, of another host or PID namespace, or one whose owner it cannot read (an older
//! run's, or one being made). The name stays short: hearth's socket is inside, and a socket's
//! path holds at most 107 bytes.

use std::path::{Path, PathBuf};

use rocky::docker::owner::{Claim, OwnerState, ProcessId};

/// What every scratch folder's name starts with.
const PREFIX: &str = "rocky-e2e-";

/// The file in a scratch folder naming its owner.
pub const OWNER: &str = ".owner";

/// Which scratch folder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One scenario's.
    Scenario,
    /// One shared stack's.
    Shared,
}

/// A new scratch folder of this process, removed when dropped.
pub fn create(kind: Kind) -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix(match kind {
            Kind::Scenario => PREFIX,
            Kind::Shared => "rocky-e2e-shared-",
        })
        .tempdir()?;
    std::fs::write(
        dir.path().join(OWNER),
        owner_text(&ProcessId::this_process()),
    )?;
    Ok(dir)
}

/// What [`OWNER`] holds: one field a line.
fn owner_text(p: &ProcessId) -> String {
    format!("{}\n{}\n{}\n{}\n", p.host, p.pidns, p.pid, p.start)
}

/// The owner [`OWNER`]'s text claims; `None` when it is not that file's shape.
fn parse_owner(text: &str) -> Option<Claim> {
    let mut lines = text.lines();
    let claim = Claim {
        host: Some(lines.next()?.to_owned()),
        pidns: Some(lines.next()?.parse().ok()?),
        pid: Some(lines.next()?.parse().ok()?),
        start: Some(lines.next()?.parse().ok()?),
    };
    lines.next().is_none().then_some(claim)
}

/// The owner the scratch folder `dir` names; `None` for another folder, or when it names none.
fn owner_of(dir: &Path) -> Option<Claim> {
    let name = dir.file_name()?.to_str()?;
    if !name.starts_with(PREFIX) {
        return None;
    }
    // At most a few hundred bytes: a bigger file is not ours.
    let meta = std::fs::symlink_metadata(dir.join(OWNER)).ok()?;
    if !meta.is_file() || meta.len() > 4096 {
        return None;
    }
    parse_owner(&std::fs::read_to_string(dir.join(OWNER)).ok()?)
}

/// Removes every scratch folder in `dir` whose owner is on this host and gone, and returns
/// them; one that cannot be removed is named in the error, after the others went.
pub fn sweep_stale_in(
    dir: &Path,
    judge: impl Fn(&Claim) -> OwnerState,
) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => return Err(format!("cannot list {}: {e}", dir.display())),
    };
    let mut removed = Vec::new();
    let mut failed = Vec::new();
    for entry in entries.flatten() {
        // A folder, not a link to one: nothing outside the temporary folder is ever removed.
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = entry.path();
        if owner_of(&path).is_none_or(|claim| judge(&claim) != OwnerState::Gone) {
            continue;
        }
        match std::fs::remove_dir_all(&path) {
            Ok(()) => removed.push(path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failed.push(format!("{}: {e}", path.display())),
        }
    }
    removed.sort();
    if failed.is_empty() {
        Ok(removed)
    } else {
        Err(format!(
            "cannot remove the scratch folders of killed runs: {}",
            failed.join("; ")
        ))
    }
}

/// [`sweep_stale_in`] the system's temporary folder, against this host's processes.
pub fn sweep_stale() -> Result<Vec<PathBuf>, String> {
    sweep_stale_in(&std::env::temp_dir(), rocky::docker::owner::judge)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_names_its_owner_this_process() {
        let me = Claim::from(&ProcessId::this_process());
        for kind in [Kind::Scenario, Kind::Shared] {
            let dir = create(kind).unwrap();
            assert_eq!(owner_of(dir.path()), Some(me.clone()), "{:?}", dir.path());
        }
        assert_eq!(rocky::docker::owner::judge(&me), OwnerState::Alive);
        assert_eq!(
            parse_owner("h\n1\n2\n3\n"),
            Some(Claim {
                host: Some("h".into()),
                pidns: Some(1),
                pid: Some(2),
                start: Some(3)
            })
        );
        for bad in ["", "h\n1\n2\n", "h\n1\nx\n3\n", "h\n1\n2\n3\nmore\n"] {
            assert_eq!(parse_owner(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn only_the_folders_of_gone_owners_are_swept() {
        let tmp = tempfile::tempdir().unwrap();
        let me = ProcessId::this_process();
        // This pid with another start time: a process that was, and whose pid was reused.
        let reused = ProcessId {
            start: me.start + 1,
            ..me.clone()
        };
        let folder = |name: &str, owner: Option<&ProcessId>| {
            let p = tmp.path().join(name);
            std::fs::create_dir(&p).unwrap();
            std::fs::write(p.join("hatch.jsonl.key"), "secret").unwrap();
            if let Some(owner) = owner {
                std::fs::write(p.join(OWNER), owner_text(owner)).unwrap();
            }
            p
        };
        let gone = folder("rocky-e2e-aaaaaa", Some(&reused));
        let gone_shared = folder("rocky-e2e-shared-bbbbbb", Some(&reused));
        let live = folder("rocky-e2e-cccccc", Some(&me));
        let elsewhere = folder(
            "rocky-e2e-dddddd",
            Some(&ProcessId {
                host: "another host".into(),
                ..reused.clone()
            }),
        );
        let other_pidns = folder(
            "rocky-e2e-eeeeee",
            Some(&ProcessId {
                pidns: me.pidns + 1,
                ..reused.clone()
            }),
        );
        let unowned = folder("rocky-e2e-ffffff", None);
        let cache = folder("rocky-e2e-cache", None);
        let not_ours = folder("something-else", Some(&reused));
        let removed = sweep_stale_in(tmp.path(), rocky::docker::owner::judge).unwrap();
        assert_eq!(removed, vec![gone.clone(), gone_shared.clone()]);
        for kept in [&live, &elsewhere, &other_pidns, &unowned, &cache, &not_ours] {
            assert!(kept.exists(), "{} was removed", kept.display());
        }
        // A link to a gone owner's folder is not followed.
        let target = folder("target-of-link", None);
        let linked = target.join("rocky-e2e-gggggg");
        std::fs::create_dir(&linked).unwrap();
        std::fs::write(linked.join(OWNER), owner_text(&reused)).unwrap();
        std::os::unix::fs::symlink(&linked, tmp.path().join("rocky-e2e-hhhhhh")).unwrap();
        assert_eq!(
            sweep_stale_in(tmp.path(), rocky::docker::owner::judge).unwrap(),
            Vec::<PathBuf>::new()
        );
        assert!(linked.exists());
    }
}
