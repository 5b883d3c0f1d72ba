//! `rocky-e2e hatch repair` (contract §2): cuts the tail a crash leaves beyond the seal, and
//! nothing else. `hatch repair` never removes a record of something that happened, so it cuts
//! only what the writer can have left unsealed and unanswered, on the word of a seal it has
//! authenticated, and never below a checkpoint:
//!
//! - **The seal must authenticate** under the seal key (`--key`, else `FILE.key` beside the
//!   log, where the writer keeps it): anyone can write a seal claiming fewer records, so
//!   without a usable key, or with a MAC that does not verify, nothing is cut.
//! - **The sealed records must verify** and end in the sealed hash (else records were cut or
//!   changed, which no repair undoes).
//! - **At most [`MAX_UNSEALED_RECORDS`] whole records** beyond the seal are cut, plus a torn
//!   (partial) last line: that is all a crash of the writer leaves unsealed (`always` and
//!   `none` seal every record before the next is written: one; `batch` never has more than
//!   [`MAX_UNSEALED_RECORDS`] written and not yet sealed). More is not a crash's tail but an
//!   older seal put back (or records appended without the key): refused.
//! - **Never below a checkpoint**: every checkpoint given must authenticate under the key, be
//!   of this log, seal no more records than the seal, and hold the log's hash at its seq.
//!
//! Every refusal says why and cuts nothing.

use std::io::Read;
use std::path::Path;
use std::time::Duration;

use super::checkpoint::Checkpoint;
use super::lock::{DEFAULT_LOCK_PATIENCE, LockWait, Share, lock_appends_within, take_writer_lock};
use super::regular;
use super::seal::{Seal, default_key_path, hash_of_record, seal_path};
use super::verify::verify_bytes;
use super::writer::MAX_UNSEALED_RECORDS;
use crate::vault::Keyring;

/// What `repair` cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repaired {
    /// Records kept (the sealed ones).
    pub kept: u64,
    /// Bytes cut from the end of the log.
    pub cut_bytes: u64,
    /// Whole records cut (beyond the seal).
    pub cut_records: u64,
    /// Whether a torn (partial) last line was cut.
    pub torn_line: bool,
}

impl std::fmt::Display for Repaired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.cut_bytes == 0 {
            return write!(f, "nothing to cut: {} sealed records", self.kept);
        }
        write!(
            f,
            "cut {} bytes after sealed record {}: {} unsealed record(s)",
            self.cut_bytes, self.kept, self.cut_records
        )?;
        if self.torn_line {
            f.write_str(" and a torn last line")?;
        }
        Ok(())
    }
}

/// The length of `content` to keep so that it ends at the last sealed record: the sealed
/// prefix must verify and end in the sealed hash. What follows it (unsealed records, a torn
/// line) is what a crash leaves; anything else (a cut tail, a changed record) is refused.
pub fn repair_plan(content: &[u8], seal: &Seal) -> Result<(usize, Repaired), String> {
    let mut kept = 0usize;
    let mut count = 0u64;
    let mut rest = content;
    while count < seal.records {
        let Some(end) = rest.iter().position(|&b| b == b'\n') else {
            break;
        };
        kept += end + 1;
        rest = &rest[end + 1..];
        count += 1;
    }
    if count < seal.records {
        return Err(format!(
            "cannot repair: sealed {} records, the log has only {count} whole lines (records were cut, not torn)",
            seal.records
        ));
    }
    let prefix = &content[..kept];
    let summary = verify_bytes(prefix)
        .map_err(|e| format!("cannot repair: the sealed records do not verify: {e}"))?;
    if summary.last_hash != seal.last_hash {
        return Err(format!(
            "cannot repair: record {} hashes to {}, the seal holds {} (the chain was rewritten)",
            seal.records, summary.last_hash, seal.last_hash
        ));
    }
    let tail = &content[kept..];
    let whole = tail.iter().filter(|&&b| b == b'\n').count() as u64;
    let torn = !tail.is_empty() && tail.last() != Some(&b'\n');
    Ok((
        kept,
        Repaired {
            kept: seal.records,
            cut_bytes: tail.len() as u64,
            cut_records: whole,
            torn_line: torn,
        },
    ))
}

/// Cuts the log at `path` back to its last sealed record (see the module docs), with the
/// seal key `key` (`None`: `FILE.key` beside the log), no checkpoint and the default patience
/// for the append lock.
pub fn repair_file(path: &Path, key: Option<&Keyring>) -> Result<Repaired, String> {
    repair(path, key, &[], DEFAULT_LOCK_PATIENCE)
}

/// `rocky-e2e hatch repair FILE [--key KEYFILE] [--checkpoint SEAL…]`: cuts the log at `path`
/// back to its last sealed record under the rules of the module docs, or refuses, cutting
/// nothing. `key` `None` reads `FILE.key` beside the log. Refused while a writer holds the log:
/// repair takes the writer lock itself (waiting only for a holder on its way out), then the
/// append lock, exclusively, waiting at most `patience` for it.
pub fn repair(
    path: &Path,
    key: Option<&Keyring>,
    checkpoints: &[Checkpoint],
    patience: Duration,
) -> Result<Repaired, String> {
    let shown = path.display();
    let mut file = regular::open(path, true).map_err(|e| format!("failed to open {shown}: {e}"))?;
    let beside;
    let key = match key {
        Some(key) => key,
        None => {
            beside = key_beside(path)?;
            &beside
        }
    };
    match take_writer_lock(&file) {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(format!(
                "refusing to repair {shown}: a live writer holds it (is the console running?); stop it first, nothing was cut"
            ));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(format!("failed to lock {shown}: {e}"));
        }
    }
    lock_appends_within(&file, Share::Exclusive, patience).map_err(|e| match e {
        LockWait::Io(e) => format!("failed to take the append lock on {shown}: {e}"),
        timed_out => format!(
            "refusing to repair {shown}: {}; nothing was cut",
            timed_out.describe(path, patience)
        ),
    })?;
    let mut content = Vec::new();
    file.read_to_end(&mut content)
        .map_err(|e| format!("failed to read {shown}: {e}"))?;
    let seal_file = seal_path(path);
    let seal_bytes = regular::read(&seal_file).map_err(|e| {
        format!(
            "cannot repair without the seal {}: {e}",
            seal_file.display()
        )
    })?;
    let seal = Seal::parse(&seal_bytes)?;
    seal.authenticate(key).map_err(|e| {
        format!(
            "refusing to repair {shown}: the seal is forged or the key is wrong ({e}); a seal that does not authenticate is no reason to cut anything; pass the key the log is sealed under with --key KEYFILE (`hatch_key_path` in stack.json); nothing was cut"
        )
    })?;
    for checkpoint in checkpoints {
        below(&seal, checkpoint, key).map_err(|why| {
            format!(
                "refusing to repair {shown}: checkpoint {}: {why}; nothing was cut",
                checkpoint.path.display()
            )
        })?;
    }
    let (keep, repaired) = repair_plan(&content, &seal)?;
    for checkpoint in checkpoints {
        let found = hash_of_record(&content[..keep], checkpoint.seal.records);
        if found != checkpoint.seal.last_hash {
            return Err(format!(
                "refusing to repair {shown}: checkpoint {}: another history: record {} hashes to {found}, the checkpoint holds {} (the log was rewritten after the checkpoint); nothing was cut",
                checkpoint.path.display(),
                checkpoint.seal.records,
                checkpoint.seal.last_hash
            ));
        }
    }
    if repaired.cut_records > MAX_UNSEALED_RECORDS {
        return Err(format!(
            "refusing to repair {shown}: {} whole records follow sealed record {}, and a crash leaves at most {MAX_UNSEALED_RECORDS} unsealed (the records of an unfinished group commit); these are not a crash's tail but records of what happened under an older seal put back (or records appended without the key); check with `rocky-e2e hatch verify {shown} --key KEYFILE --checkpoint SEAL`; nothing was cut",
            repaired.cut_records, repaired.kept
        ));
    }
    if repaired.cut_bytes > 0 {
        file.set_len(keep as u64)
            .and_then(|()| file.sync_all())
            .map_err(|e| format!("failed to cut {shown}: {e}"))?;
    }
    Ok(repaired)
}

/// The seal key kept beside the log (`FILE.key`, see [`default_key_path`]), read the way
/// `--key` is; without one nothing may be cut.
fn key_beside(log: &Path) -> Result<Keyring, String> {
    let key_path = default_key_path(log);
    match std::fs::metadata(&key_path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(format!(
            "refusing to repair {}: its seal cannot be authenticated: no --key was given and there is no seal key {} beside the log; anyone can write a seal, so nothing is cut on the word of one that does not authenticate; pass the key the log is sealed under with --key KEYFILE (`hatch_key_path` in stack.json); nothing was cut",
            log.display(),
            key_path.display()
        )),
        _ => super::regular::read_key(&key_path).map_err(|e| {
            format!(
                "refusing to repair {}: {e}; pass the key the log is sealed under with --key KEYFILE; nothing was cut",
                log.display()
            )
        }),
    }
}

/// Why cutting back to `seal` would go below `checkpoint` (or the checkpoint is not one of
/// this log's under `key`).
fn below(seal: &Seal, checkpoint: &Checkpoint, key: &Keyring) -> Result<(), String> {
    let cp = &checkpoint.seal;
    cp.authenticate(key)
        .map_err(|e| format!("the checkpoint is forged or under another key: {e}"))?;
    if cp.log_id != seal.log_id {
        return Err(format!(
            "another log: the checkpoint seals log id {}, the seal is of log id {}",
            cp.log_id, seal.log_id
        ));
    }
    if cp.records > seal.records {
        return Err(format!(
            "the checkpoint sealed {} records, the seal only {}: cutting back to the seal would remove records the checkpoint witnessed (an older seal was put back)",
            cp.records, seal.records
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hatch::fixtures::{play_events, write_log};
    use crate::hatch::{Hatch, HatchOptions, SealError, SyncMode, verify_sealed_file};

    const PATIENCE: Duration = Duration::from_secs(5);

    fn key_of(path: &Path) -> Keyring {
        Keyring::from_file(&default_key_path(path)).expect("seal key")
    }

    fn records_in(path: &Path) -> usize {
        std::fs::read(path)
            .unwrap()
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
    }

    /// Appends `n` records to the sealed log at `path` without sealing them: what a crash
    /// between the writes and their seal leaves.
    fn append_unsealed(path: &Path, n: usize) {
        let options = HatchOptions {
            seal_key: None,
            sync: SyncMode::None,
        };
        let hatch = Hatch::open(path, options).expect("open unsealed");
        for e in play_events().into_iter().cycle().take(n) {
            hatch.append(e).expect("append");
        }
    }

    /// Appends `n` sealed records.
    fn append_sealed(path: &Path, n: usize) {
        let hatch = Hatch::with_file(path).expect("open");
        for e in play_events().into_iter().cycle().take(n) {
            hatch.append(e).expect("append");
        }
    }

    fn keep_seal(path: &Path, name: &str) -> Checkpoint {
        let at = path.with_file_name(name);
        std::fs::copy(seal_path(path), &at).unwrap();
        Checkpoint::load(&at).unwrap()
    }

    /// A seal claiming 8 records of a genuine 10-record log (within what a crash leaves), or 3
    /// (the tester's case), with an all-zero MAC: `verify` without a key must not recommend a
    /// repair, and `repair` must not cut on its word.
    #[test]
    fn a_seal_that_does_not_authenticate_cuts_nothing() {
        for claimed in [8, 3] {
            let (_dir, path, records) = write_log(10);
            let genuine = Seal::parse(&std::fs::read(seal_path(&path)).unwrap()).unwrap();
            let forged = Seal {
                records: claimed,
                last_hash: records[claimed as usize - 1].hash.clone(),
                mac: "0".repeat(64),
                ..genuine
            };
            std::fs::write(seal_path(&path), forged.encode()).unwrap();
            let before = std::fs::read(&path).unwrap();

            let err = verify_sealed_file(&path, None).unwrap_err();
            assert_eq!(
                err,
                SealError::UnsealedUnauthenticated {
                    sealed: claimed,
                    found: 10
                }
            );
            let text = err.to_string();
            assert!(
                text.contains("not authenticated (no --key)") && !text.contains("cuts back"),
                "{text}"
            );
            assert!(matches!(
                verify_sealed_file(&path, Some(&key_of(&path))).unwrap_err(),
                SealError::Forged(_)
            ));

            // The key beside the log (where the writer keeps it) is used when none is given.
            for key in [None, Some(key_of(&path))] {
                let err = repair_file(&path, key.as_ref()).unwrap_err();
                assert!(
                    err.contains("the seal is forged or the key is wrong")
                        && err.contains("--key KEYFILE")
                        && err.ends_with("nothing was cut"),
                    "{err}"
                );
            }
            // No key at all: refused, saying what to pass.
            std::fs::remove_file(default_key_path(&path)).unwrap();
            let err = repair_file(&path, None).unwrap_err();
            assert!(
                err.contains("no --key was given")
                    && err.contains("--key KEYFILE")
                    && err.ends_with("nothing was cut"),
                "{err}"
            );
            assert_eq!(std::fs::read(&path).unwrap(), before, "nothing was cut");
        }
    }

    /// What a crash leaves (whole unsealed records up to the writer's bound, a torn line) is
    /// cut; one record more is not a crash's tail and nothing is cut.
    #[test]
    fn no_more_is_cut_than_a_crash_leaves() {
        let n = usize::try_from(MAX_UNSEALED_RECORDS).unwrap();
        let (_dir, path, _) = write_log(5);
        let sealed_len = std::fs::read(&path).unwrap().len();
        append_unsealed(&path, n);
        let mut torn = std::fs::read(&path).unwrap();
        torn.extend_from_slice(b"{\"seq\":");
        std::fs::write(&path, &torn).unwrap();
        let repaired = repair_file(&path, None).expect("a crash's tail is cut");
        assert_eq!(
            (repaired.kept, repaired.cut_records, repaired.torn_line),
            (5, MAX_UNSEALED_RECORDS, true)
        );
        assert_eq!(std::fs::read(&path).unwrap().len(), sealed_len);

        append_unsealed(&path, n + 1);
        let before = std::fs::read(&path).unwrap();
        let err = repair_file(&path, None).unwrap_err();
        assert!(
            err.contains(&format!(
                "{} whole records follow sealed record 5, and a crash leaves at most {MAX_UNSEALED_RECORDS} unsealed",
                n + 1
            )) && err.ends_with("nothing was cut"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // `verify` says the same, and does not recommend the repair.
        let err = verify_sealed_file(&path, Some(&key_of(&path))).unwrap_err();
        assert_eq!(
            err,
            SealError::BeyondCrash {
                sealed: 5,
                found: 5 + n as u64 + 1
            }
        );
        assert!(err.to_string().contains("refuses to cut them"), "{err}");
    }

    /// An older genuine seal put back on a genuine log: the records after it happened. Far
    /// back, the bound refuses; within the bound only a checkpoint can tell, and repair never
    /// cuts below one.
    #[test]
    fn an_older_genuine_seal_put_back_cuts_nothing() {
        // The tester's case: a 10-record log, the seal taken at 2 put back.
        let (dir, path, _) = write_log(2);
        let at_two = std::fs::read(seal_path(&path)).unwrap();
        append_sealed(&path, 8);
        let at_ten = keep_seal(&path, "at-ten.seal");
        std::fs::write(seal_path(&path), &at_two).unwrap();
        let before = std::fs::read(&path).unwrap();
        let key = key_of(&path);
        let err = repair(&path, Some(&key), &[], PATIENCE).unwrap_err();
        assert!(
            err.contains("8 whole records follow sealed record 2"),
            "{err}"
        );
        let err = repair(&path, Some(&key), std::slice::from_ref(&at_ten), PATIENCE).unwrap_err();
        assert!(
            err.contains("checkpoint ")
                && err.contains("at-ten.seal")
                && err.contains("the checkpoint sealed 10 records, the seal only 2")
                && err.ends_with("nothing was cut"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        drop(dir);

        // Within the bound: a seal 2 records old looks like a crash, but not to a checkpoint.
        let (_dir, path, _) = write_log(8);
        let at_eight = std::fs::read(seal_path(&path)).unwrap();
        let early = keep_seal(&path, "at-eight.seal");
        append_sealed(&path, 2);
        let at_ten = keep_seal(&path, "at-ten.seal");
        std::fs::write(seal_path(&path), &at_eight).unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = repair(&path, None, &[early.clone(), at_ten], PATIENCE).unwrap_err();
        assert!(
            err.contains("at-ten.seal") && err.contains("the checkpoint sealed 10 records"),
            "{err}"
        );
        assert_eq!(std::fs::read(&path).unwrap(), before);
        // A checkpoint the seal covers does not stand in the way of a crash's repair.
        let repaired = repair(&path, None, &[early], PATIENCE).expect("cut");
        assert_eq!((repaired.kept, repaired.cut_records), (8, 2));
        assert_eq!(records_in(&path), 8);
    }

    /// A checkpoint is only a witness under the key and of this log.
    #[test]
    fn a_forged_or_foreign_checkpoint_is_refused() {
        let (_dir, path, _) = write_log(3);
        let mut forged = keep_seal(&path, "forged.seal");
        forged.seal.records = 1;
        append_unsealed(&path, 1);
        let err = repair(&path, None, &[forged], PATIENCE).unwrap_err();
        assert!(
            err.contains("forged.seal: the checkpoint is forged"),
            "{err}"
        );
        let (_other_dir, other, _) = write_log(1);
        // The other log's seal, under this log's key: another log id.
        let options = HatchOptions::sealed(&default_key_path(&path), SyncMode::None).expect("key");
        let foreign_log = other.with_file_name("foreign.jsonl");
        drop(Hatch::open(&foreign_log, options).unwrap());
        let foreign = keep_seal(&foreign_log, "foreign.seal");
        let err = repair(&path, None, &[foreign], PATIENCE).unwrap_err();
        assert!(err.contains("another log"), "{err}");
        assert_eq!(records_in(&path), 4);
    }
}
