//! Every scenario verifies its HATCH log before it can pass (contract §2): the chain, the seal
//! and the seal key, and a checkpoint. Before the stack stops, the live seal is read (under the
//! writer's append lock, so between two appends) and verified; a copy of it becomes the
//! scenario's checkpoint, kept in `target/rocky-e2e/checkpoints/`. Once the stack has stopped,
//! the final log must still verify and extend that checkpoint: a console that stopped sealing,
//! sealed under another key, or put its log back on the way out fails the scenario, with
//! `rocky-e2e hatch verify`'s own message (the same [`rocky::hatch::verify_against`]).

use std::path::{Path, PathBuf};

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

/// Verifies the live log at `log` (chain, seal, key) and keeps its seal as the checkpoint
/// `target/rocky-e2e/checkpoints/NAME.seal`, `name` naming the scenario and its topology.
pub fn take(log: &Path, name: &str) -> Result<Taken, String> {
    let key = key_of(log)?;
    let summary = verify_against(log, Some(&key), &[])
        .map_err(|e| format!("HATCH log {} does not verify: {e}", log.display()))?;
    let dir = crate::layout::target_dir().join("checkpoints");
    let path = dir.join(format!("{}.seal", file_name(name)));
    std::fs::create_dir_all(&dir)
        .and_then(|()| rocky::secure_file::write_private(&path, &summary.seal.encode()))
        .map_err(|e| format!("failed to keep the checkpoint {}: {e}", path.display()))?;
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

/// The `the HATCH log verifies` step: chain, seal and key, now.
pub fn verify_now(log: &Path) -> Result<u64, String> {
    let key = key_of(log)?;
    verify_against(log, Some(&key), &[])
        .map(|s| s.chain.records)
        .map_err(|e| format!("HATCH log {} does not verify: {e}", log.display()))
}

/// A file name from a test name: letters, digits, `-`, `_` and `.`; the rest `-`.
fn file_name(name: &str) -> String {
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
        let (_dir, log, hatch) = log_with(2);
        let taken = take(&log, "seal_check::intact (unit)").unwrap();
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
        let (_dir, log, hatch) = log_with(1);
        let older = std::fs::read(seal_path(&log)).unwrap();
        let first_line = std::fs::read_to_string(&log).unwrap();
        hatch
            .append(Event::new(EventKind::Provisioned, "system"))
            .unwrap();
        let taken = take(&log, "seal_check::rolled back (unit)").unwrap();
        drop(hatch);
        std::fs::write(&log, first_line).unwrap();
        std::fs::write(seal_path(&log), older).unwrap();
        let err = verify(Ok(taken)).unwrap_err();
        assert!(err.contains("rolled back"), "{err}");
    }

    #[test]
    fn a_seal_under_another_key_fails_before_the_stop() {
        let (_dir, log, hatch) = log_with(1);
        drop(hatch);
        rocky::vault::write_keyring_file(&default_key_path(&log), "hatch-1", &[("hatch-1", "x")])
            .unwrap();
        let err = verify(take(&log, "seal_check::forged (unit)")).unwrap_err();
        assert!(err.contains("forged or the key is wrong"), "{err}");
    }

    #[test]
    fn test_names_make_plain_file_names() {
        assert_eq!(
            file_name("failure_drill::VAULT drift #2 (in-process)"),
            "failure_drill--VAULT-drift--2--in-process-"
        );
    }
}
