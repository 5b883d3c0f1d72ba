//! Every scenario verifies its HATCH log before it can pass (contract §2): the chain, the seal
//! and the seal key, and a checkpoint. Before the stack stops, the live seal is read (under the
//! writer's append lock, so between two appends) and verified; a copy of it becomes the
//! scenario's checkpoint, kept beside the run's reports: `target/rocky-e2e/checkpoints/`, or
//! with `ROCKY_E2E_PHASE` `target/rocky-e2e/phases/<phase>/checkpoints/` (so one phase never
//! overwrites another's; the merged set shows each phase's, see [`crate::runner::phases`]).
//! Once the stack has stopped, the final log must still verify and extend that checkpoint: a
//! console that stopped sealing, sealed under another key, or put its log back on the way out
//! fails the scenario, with `rocky-e2e hatch verify`'s own message (the same
//! [`rocky::hatch::verify_against`]).
//!
//! A scenario run several times in one run (`--repeat`, `--retries`) keeps one checkpoint,
//! its last attempt's: every attempt first removes the one an earlier attempt kept, so an
//! attempt whose log does not verify leaves none rather than an older attempt's. When the run
//! writes its reports, [`prune`] removes the seals no scenario of this run kept, so the
//! folder holds the checkpoints of the scenarios its reports show.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rocky::hatch::{Checkpoint, default_key_path, verify_against};
use rocky::vault::Keyring;

/// What the check took before the stack stopped.
pub struct Taken {
    log: PathBuf,
    key: Keyring,
    checkpoint: Checkpoint,
}

/// The key of the log at `log`, where the stack keeps it (`hatch_key_path` in stack.json).
fn key_of(log: &Path) -> Result<Keyring, String> {
    let key_path = default_key_path(log);
    Keyring::from_file(&key_path).map_err(|e| {
        format!(
            "HATCH log {} cannot be verified: its seal key {}: {e}",
            log.display(),
            key_path.display()
        )
    })
}

/// The checkpoints this process kept (every attempt's path), for [`prune`].
static KEPT: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// Where this run keeps its checkpoints: beside its reports, `target/rocky-e2e/checkpoints/`,
/// or with `ROCKY_E2E_PHASE` `target/rocky-e2e/phases/<phase>/checkpoints/`.
pub fn dir() -> Result<PathBuf, String> {
    let phase = crate::layout::phase()?;
    Ok(crate::layout::checkpoints(
        &crate::layout::target_dir(),
        phase.as_deref(),
    ))
}

/// Verifies the live log at `log` (chain, seal, key) and keeps its seal as the checkpoint
/// `NAME.seal` in [`dir`], `name` naming the scenario and its topology.
pub fn take(log: &Path, name: &str) -> Result<Taken, String> {
    take_in(&dir()?, log, name)
}

fn take_in(dir: &Path, log: &Path, name: &str) -> Result<Taken, String> {
    let path = dir.join(format!("{}.seal", file_name(name)));
    // An earlier attempt's (or run's) checkpoint is not this attempt's: gone before anything
    // can fail.
    match std::fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "failed to remove the earlier checkpoint {}: {e}",
                path.display()
            ));
        }
    }
    let key = key_of(log)?;
    let summary = verify_against(log, Some(&key), &[])
        .map_err(|e| format!("HATCH log {} does not verify: {e}", log.display()))?;
    std::fs::create_dir_all(dir)
        .and_then(|()| rocky::secure_file::write_private(&path, &summary.seal.encode()))
        .map_err(|e| format!("failed to keep the checkpoint {}: {e}", path.display()))?;
    KEPT.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(path.clone());
    Ok(Taken {
        log: log.to_owned(),
        key,
        checkpoint: Checkpoint {
            path,
            seal: summary.seal,
        },
    })
}

/// The checkpoint's name: the scenario's test name (unique in a run) and where its console ran.
pub fn name(test_name: &str, feature: &str, scenario: &str, services: &str) -> String {
    match test_name {
        "" => format!("{feature}::{scenario} ({services})"),
        name => format!("{name} ({services})"),
    }
}

/// After the stack stopped: the log verifies and extends the checkpoint taken before. The
/// checkpoint is the copy held in memory, so another run writing the same file cannot change
/// what this scenario is checked against.
pub fn verify(taken: Result<Taken, String>) -> Result<(), String> {
    let taken = taken?;
    let summary = verify_against(
        &taken.log,
        Some(&taken.key),
        std::slice::from_ref(&taken.checkpoint),
    )
    .map_err(|e| format!("HATCH log {} does not verify: {e}", taken.log.display()))?;
    // The final seal (it extends the one taken before) is what the scenario leaves behind.
    let path = &taken.checkpoint.path;
    rocky::secure_file::write_private(path, &summary.seal.encode())
        .map_err(|e| format!("failed to keep the checkpoint {}: {e}", path.display()))
}

/// Removes the seals in `dir` that no scenario of this process kept: what an earlier run
/// left there (a scenario this run did not select) would sit beside reports that do not show
/// it. Returns what it removed. Called when a run writes its reports (never under nextest,
/// where every scenario is a process of its own).
pub fn prune(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let kept = KEPT.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut removed = Vec::new();
    for seal in seals(dir)? {
        if !kept.contains(&seal) {
            match std::fs::remove_file(&seal) {
                Ok(()) => removed.push(seal),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("failed to remove {}: {e}", seal.display())),
            }
        }
    }
    Ok(removed)
}

/// Whether `path` is a seal file (`*.seal`).
pub fn is_seal(path: &Path) -> bool {
    path.extension().is_some_and(|x| x == "seal") && path.is_file()
}

/// The seals (`*.seal`) in `dir`, sorted; none if there is no such folder.
pub fn seals(dir: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("failed to read {}: {e}", dir.display())),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| format!("failed to read {}: {e}", dir.display()))?
            .path();
        if is_seal(&path) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

/// The `the HATCH log verifies` step: chain, seal and key, now.
pub fn verify_now(log: &Path) -> Result<u64, String> {
    let key = key_of(log)?;
    verify_against(log, Some(&key), &[])
        .map(|s| s.chain.records)
        .map_err(|e| format!("HATCH log {} does not verify: {e}", log.display()))
}

/// A file name from a test name: letters, digits, `-`, `_` and `.`; the rest `-`. The
/// catalogue refuses two scenarios with one file name, so no checkpoint replaces another's.
pub(crate) fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '-'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocky::hatch::{Event, EventKind, Hatch, seal_path};

    fn log_with(records: usize) -> (tempfile::TempDir, PathBuf, Hatch) {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("hatch.jsonl");
        let hatch = Hatch::with_file(&log).unwrap();
        for _ in 0..records {
            hatch
                .append(Event::new(EventKind::ProvisioningStarted, "admin"))
                .unwrap();
        }
        (dir, log, hatch)
    }

    #[test]
    fn an_intact_log_passes_and_leaves_its_final_seal_as_the_checkpoint() {
        let (dir, log, hatch) = log_with(2);
        let taken = take_in(
            &dir.path().join("checkpoints"),
            &log,
            "seal_check::intact (unit)",
        )
        .unwrap();
        let kept = taken.checkpoint.path.clone();
        hatch
            .append(Event::new(EventKind::Provisioned, "system"))
            .unwrap();
        drop(hatch);
        verify(Ok(taken)).unwrap();
        assert_eq!(
            std::fs::read(&kept).unwrap(),
            std::fs::read(seal_path(&log)).unwrap()
        );
    }

    #[test]
    fn a_log_put_back_after_the_checkpoint_fails() {
        let (dir, log, hatch) = log_with(1);
        let older = std::fs::read(seal_path(&log)).unwrap();
        let first_line = std::fs::read_to_string(&log).unwrap();
        hatch
            .append(Event::new(EventKind::Provisioned, "system"))
            .unwrap();
        let taken = take_in(
            &dir.path().join("checkpoints"),
            &log,
            "seal_check::rolled back (unit)",
        )
        .unwrap();
        drop(hatch);
        std::fs::write(&log, first_line).unwrap();
        std::fs::write(seal_path(&log), older).unwrap();
        let err = verify(Ok(taken)).unwrap_err();
        assert!(err.contains("rolled back"), "{err}");
    }

    #[test]
    fn a_seal_under_another_key_fails_before_the_stop() {
        let (dir, log, hatch) = log_with(1);
        drop(hatch);
        rocky::vault::write_keyring_file(&default_key_path(&log), "hatch-1", &[("hatch-1", "x")])
            .unwrap();
        let err = verify(take_in(
            &dir.path().join("checkpoints"),
            &log,
            "seal_check::forged (unit)",
        ))
        .unwrap_err();
        assert!(err.contains("forged or the key is wrong"), "{err}");
    }

    /// `--repeat`/`--retries`: the scenario's checkpoint is its last attempt's; an attempt
    /// whose log does not verify leaves none, never an earlier attempt's seal of another log.
    #[test]
    fn a_later_attempt_that_does_not_verify_leaves_no_earlier_checkpoint() {
        let checkpoints = tempfile::tempdir().unwrap();
        let (_one, log, hatch) = log_with(2);
        drop(hatch);
        let first = take_in(checkpoints.path(), &log, "seal_check::repeated (unit)").unwrap();
        let kept = first.checkpoint.path.clone();
        verify(Ok(first)).unwrap();
        assert!(kept.is_file());

        let (_two, other, hatch) = log_with(1);
        drop(hatch);
        rocky::vault::write_keyring_file(&default_key_path(&other), "hatch-1", &[("hatch-1", "x")])
            .unwrap();
        let err = take_in(checkpoints.path(), &other, "seal_check::repeated (unit)")
            .err()
            .expect("a seal under another key does not verify");
        assert!(err.contains("forged or the key is wrong"), "{err}");
        assert!(
            !kept.exists(),
            "the first attempt's checkpoint is left as if it were the last attempt's"
        );
    }

    /// A run's checkpoints folder holds its own scenarios' seals: what an earlier run kept for
    /// a scenario this run did not select goes when the run writes its reports.
    #[test]
    fn prune_removes_only_the_seals_this_run_did_not_keep() {
        let checkpoints = tempfile::tempdir().unwrap();
        let stale = checkpoints.path().join("earlier-run.seal");
        std::fs::write(&stale, "hatch-seal/2 …").unwrap();
        let other = checkpoints.path().join("notes.txt");
        std::fs::write(&other, "not a seal").unwrap();
        let (_dir, log, hatch) = log_with(1);
        drop(hatch);
        let taken = take_in(checkpoints.path(), &log, "seal_check::pruned (unit)").unwrap();
        let kept = taken.checkpoint.path.clone();
        verify(Ok(taken)).unwrap();
        assert_eq!(prune(checkpoints.path()).unwrap(), vec![stale.clone()]);
        assert!(kept.is_file() && other.is_file() && !stale.exists());
    }

    #[test]
    fn test_names_make_plain_file_names() {
        assert_eq!(
            file_name("failure_drill::VAULT drift #2 (in-process)"),
            "failure_drill--VAULT-drift--2--in-process-"
        );
    }
}
