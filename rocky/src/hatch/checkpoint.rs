//! Checkpoints (contract §2): a checkpoint is a copy of a seal taken at some moment and kept
//! elsewhere, a witness of what the log was then. A log extends a checkpoint when it is the
//! same log (same log id), holds at least the checkpoint's records, and its record number
//! `records` has the checkpoint's `last_hash`. A log put back to an earlier genuine state
//! (cut back with an older seal restored, emptied with the zero seal restored) still verifies
//! against its own seal, but not against a later checkpoint; a log replaced by another log
//! under the same key fails on the log id.
//!
//! [`verify_against`] is the one check, used by `rocky-e2e hatch verify --checkpoint` and by the
//! harness after every scenario.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::lock::{DEFAULT_LOCK_PATIENCE, LockWait, Share, lock_appends_within};
use super::seal::{Seal, SealError, SealedSummary, hash_of_record, seal_path, verify_sealed_bytes};
use super::verify::{VerifyError, VerifyReason};
use crate::vault::{Keyring, MacError};

/// A seal kept as a witness, and where it was kept (named in every refusal).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub path: PathBuf,
    pub seal: Seal,
}

impl Checkpoint {
    /// Reads the checkpoint at `path` (a seal file's content).
    pub fn load(path: &Path) -> Result<Checkpoint, SealError> {
        let refused = |how| SealError::Checkpoint {
            path: path.to_owned(),
            how,
        };
        let bytes = super::regular::read(path)
            .map_err(|e| refused(Rollback::Unreadable(format!("failed to read it: {e}"))))?;
        Checkpoint::parse(path, &bytes)
    }

    /// A checkpoint from the content of a seal file kept at `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Checkpoint, SealError> {
        let seal = Seal::parse(bytes).map_err(|reason| SealError::Checkpoint {
            path: path.to_owned(),
            how: Rollback::Unreadable(reason),
        })?;
        Ok(Checkpoint {
            path: path.to_owned(),
            seal,
        })
    }
}

/// How a log fails to extend a checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rollback {
    #[error("the checkpoint is unreadable: {0}")]
    Unreadable(String),
    #[error("the checkpoint is forged or under another key: {0}")]
    Forged(MacError),
    #[error(
        "another log: the checkpoint seals log id {checkpoint}, this log is {log} (a seal of another log, or the log was replaced)"
    )]
    OtherLog { checkpoint: String, log: String },
    #[error(
        "rolled back: the checkpoint sealed {checkpoint} records, the log has {found} (records were cut and an older seal restored)"
    )]
    Fewer { checkpoint: u64, found: u64 },
    #[error(
        "another history: record {seq} hashes to {found}, the checkpoint holds {checkpoint} (the log was rewritten after the checkpoint)"
    )]
    OtherHash {
        seq: u64,
        checkpoint: String,
        found: String,
    },
}

/// Verifies the log at `path` against its seal (and the seal's MAC when `key` is given), then
/// against every checkpoint, reading log and seal under the writer's append lock (shared), so a
/// live log is seen between two appends. The first failure is returned: the log's own, or the
/// first checkpoint it does not extend, by path.
///
/// The lock is waited for at most [`DEFAULT_LOCK_PATIENCE`]; see [`verify_against_within`].
pub fn verify_against(
    path: &Path,
    key: Option<&Keyring>,
    checkpoints: &[Checkpoint],
) -> Result<SealedSummary, SealError> {
    verify_against_within(path, key, checkpoints, DEFAULT_LOCK_PATIENCE)
}

/// [`verify_against`], waiting at most `patience` for the append lock: a writer that holds it
/// longer (a stuck one) is named ([`SealError::Busy`]), never waited for forever. Only regular
/// files are read (the log, its seal): a FIFO or a device is refused, never blocked on.
pub fn verify_against_within(
    path: &Path,
    key: Option<&Keyring>,
    checkpoints: &[Checkpoint],
    patience: Duration,
) -> Result<SealedSummary, SealError> {
    let (content, seal) = read_locked(path, patience)?;
    verify_sealed_bytes_against(
        &content,
        seal.as_deref(),
        &seal_path(path),
        key,
        checkpoints,
    )
}

/// [`verify_against`] over bytes already read: a whole log and its seal file's content.
pub fn verify_sealed_bytes_against(
    content: &[u8],
    seal_content: Option<&[u8]>,
    seal_file: &Path,
    key: Option<&Keyring>,
    checkpoints: &[Checkpoint],
) -> Result<SealedSummary, SealError> {
    let summary = verify_sealed_bytes(content, seal_content, seal_file, key)?;
    for checkpoint in checkpoints {
        extends(content, &summary, &checkpoint.seal, key).map_err(|how| SealError::Checkpoint {
            path: checkpoint.path.clone(),
            how,
        })?;
    }
    Ok(summary)
}

/// Whether the verified log `content` (summed up by `summary`) extends `checkpoint`.
fn extends(
    content: &[u8],
    summary: &SealedSummary,
    checkpoint: &Seal,
    key: Option<&Keyring>,
) -> Result<(), Rollback> {
    if let Some(key) = key {
        checkpoint.authenticate(key).map_err(Rollback::Forged)?;
    }
    if checkpoint.log_id != summary.seal.log_id {
        return Err(Rollback::OtherLog {
            checkpoint: checkpoint.log_id.clone(),
            log: summary.seal.log_id.clone(),
        });
    }
    if summary.chain.records < checkpoint.records {
        return Err(Rollback::Fewer {
            checkpoint: checkpoint.records,
            found: summary.chain.records,
        });
    }
    let found = if summary.chain.records == checkpoint.records {
        summary.chain.last_hash.clone()
    } else {
        hash_of_record(content, checkpoint.records)
    };
    if found != checkpoint.last_hash {
        return Err(Rollback::OtherHash {
            seq: checkpoint.records,
            checkpoint: checkpoint.last_hash.clone(),
            found,
        });
    }
    Ok(())
}

/// The log and its seal (`None` when missing), read under the append lock, shared, waited for
/// at most `patience`.
pub(super) fn read_locked(
    path: &Path,
    patience: Duration,
) -> Result<(Vec<u8>, Option<Vec<u8>>), SealError> {
    use std::io::Read;
    let io = |what: &str, e: std::io::Error| {
        SealError::Chain(VerifyError {
            seq: 0,
            line: 0,
            reason: VerifyReason::Io(format!(
                "failed to {what} hatch log {}: {e}",
                path.display()
            )),
        })
    };
    let mut file = super::regular::open(path, false).map_err(|e| io("read", e))?;
    lock_appends_within(&file, Share::Shared, patience).map_err(|e| match e {
        LockWait::Io(e) => io("take the append lock (shared) on", e),
        timed_out => SealError::Busy(timed_out.describe(path, patience)),
    })?;
    let mut content = Vec::new();
    file.read_to_end(&mut content).map_err(|e| io("read", e))?;
    let seal_file = seal_path(path);
    let seal = match super::regular::read(&seal_file) {
        Ok(s) => Some(s),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => {
            return Err(SealError::Unreadable {
                path: seal_file,
                reason: e.to_string(),
            });
        }
    };
    // Closing `file` releases the lock.
    drop(file);
    Ok((content, seal))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hatch::fixtures::play_events;
    use crate::hatch::{
        Event, EventKind, GENESIS, Hatch, HatchOptions, Record, SyncMode, default_key_path,
        read_file, repair_file, verify_sealed_file,
    };

    struct Log {
        dir: tempfile::TempDir,
        path: PathBuf,
        key: Keyring,
    }

    fn new_log() -> Log {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hatch.jsonl");
        let key = crate::hatch::load_or_create_key(&default_key_path(&path)).unwrap();
        Log { dir, path, key }
    }

    impl Log {
        fn append(&self, n: usize) {
            let hatch = Hatch::with_file(&self.path).expect("open");
            for e in play_events().into_iter().cycle().take(n) {
                hatch.append(e).expect("append");
            }
        }
        fn seal(&self) -> Vec<u8> {
            std::fs::read(seal_path(&self.path)).unwrap()
        }
        /// Keeps a copy of the seal now, as a witness would.
        fn checkpoint(&self, name: &str) -> Checkpoint {
            let at = self.dir.path().join(name);
            std::fs::write(&at, self.seal()).unwrap();
            Checkpoint::load(&at).unwrap()
        }
        fn verify(&self, checkpoints: &[Checkpoint]) -> Result<SealedSummary, SealError> {
            verify_against(&self.path, Some(&self.key), checkpoints)
        }
        fn keep_lines(&self, n: usize) {
            let text = std::fs::read_to_string(&self.path).unwrap();
            let kept: String = text.lines().take(n).map(|l| format!("{l}\n")).collect();
            std::fs::write(&self.path, kept).unwrap();
        }
    }

    fn rollback(err: SealError) -> (PathBuf, Rollback) {
        match err {
            SealError::Checkpoint { path, how } => (path, how),
            other => panic!("expected a checkpoint refusal, got {other:?}"),
        }
    }

    #[test]
    fn zero_seals_differ_per_log_under_one_key() {
        let (a, b) = (new_log(), new_log());
        a.append(0);
        // Same key for both: the zero seal must still tell the logs apart.
        let options = HatchOptions::sealed(&default_key_path(&a.path), SyncMode::None).unwrap();
        drop(Hatch::open(&b.path, options).unwrap());
        let (sa, sb) = (
            Seal::parse(&a.seal()).unwrap(),
            Seal::parse(&b.seal()).unwrap(),
        );
        assert_eq!((sa.records, sb.records), (0, 0));
        assert_ne!(sa.log_id, sb.log_id);
        assert_ne!(a.seal(), b.seal());
        // The log id survives reopening.
        a.append(2);
        assert_eq!(Seal::parse(&a.seal()).unwrap().log_id, sa.log_id);
    }

    #[test]
    fn an_intact_log_extends_every_checkpoint() {
        let log = new_log();
        log.append(0);
        let zero = log.checkpoint("zero.seal");
        log.append(3);
        let three = log.checkpoint("three.seal");
        log.append(5);
        let eight = log.checkpoint("eight.seal");
        let s = log.verify(&[zero, three, eight]).expect("extends all");
        assert_eq!(s.chain.records, 8);
        assert!(s.authenticated);
    }

    #[test]
    fn a_log_cut_back_with_an_older_seal_restored_is_refused() {
        let log = new_log();
        log.append(2);
        let older = log.seal();
        log.append(6);
        let later = log.checkpoint("later.seal");
        log.keep_lines(2);
        std::fs::write(seal_path(&log.path), older).unwrap();
        // Against its own (genuine, older) seal the rollback is invisible…
        assert_eq!(log.verify(&[]).expect("own seal").chain.records, 2);
        // …against the later checkpoint it is not.
        let (path, how) = rollback(log.verify(std::slice::from_ref(&later)).unwrap_err());
        assert_eq!(path, later.path);
        assert_eq!(
            how,
            Rollback::Fewer {
                checkpoint: 8,
                found: 2
            }
        );
        let text = SealError::Checkpoint { path, how }.to_string();
        assert!(
            text.contains("later.seal") && text.contains("rolled back"),
            "{text}"
        );
    }

    #[test]
    fn an_emptied_log_with_its_zero_seal_restored_is_refused() {
        let log = new_log();
        log.append(0);
        let zero = log.seal();
        log.append(8);
        let later = log.checkpoint("later.seal");
        std::fs::write(&log.path, b"").unwrap();
        std::fs::write(seal_path(&log.path), zero).unwrap();
        assert_eq!(log.verify(&[]).expect("own seal").chain.records, 0);
        let (_, how) = rollback(log.verify(&[later]).unwrap_err());
        assert_eq!(
            how,
            Rollback::Fewer {
                checkpoint: 8,
                found: 0
            }
        );
    }

    #[test]
    fn a_seal_of_another_log_under_the_same_key_is_refused() {
        let (a, b) = (new_log(), new_log());
        a.append(4);
        let options = HatchOptions::sealed(&default_key_path(&a.path), SyncMode::None).unwrap();
        let hatch = Hatch::open(&b.path, options).unwrap();
        for e in play_events().into_iter().take(4) {
            hatch.append(e).unwrap();
        }
        drop(hatch);
        let of_a = a.checkpoint("a.seal");
        // B, a genuine log under the same key, put where A was.
        std::fs::copy(&b.path, &a.path).unwrap();
        std::fs::copy(seal_path(&b.path), seal_path(&a.path)).unwrap();
        a.verify(&[]).expect("B verifies against its own seal");
        let (_, how) = rollback(a.verify(&[of_a]).unwrap_err());
        assert!(matches!(how, Rollback::OtherLog { .. }), "{how:?}");
        assert!(how.to_string().contains("another log"), "{how}");
    }

    #[test]
    fn a_rewrite_after_the_checkpoint_is_named_by_seq() {
        let log = new_log();
        log.append(5);
        let five = log.checkpoint("five.seal");
        log.append(3);
        // Whoever holds the key rewrites records 3.. and re-seals: the own seal verifies.
        let mut records: Vec<Record> = read_file(&log.path).unwrap();
        let mut prev = GENESIS.to_owned();
        let mut out = String::new();
        for (i, r) in records.iter_mut().enumerate() {
            if i >= 2 {
                r.actor = "mallory".into();
            }
            r.prev = prev;
            r.hash = r.compute_hash();
            prev = r.hash.clone();
            out.push_str(&serde_json::to_string(r).unwrap());
            out.push('\n');
        }
        std::fs::write(&log.path, out).unwrap();
        let log_id = Seal::parse(&log.seal()).unwrap().log_id;
        std::fs::write(
            seal_path(&log.path),
            Seal::new(&log.key, &log_id, 8, &prev).encode(),
        )
        .unwrap();
        log.verify(&[]).expect("re-sealed under the key");
        let (_, how) = rollback(log.verify(std::slice::from_ref(&five)).unwrap_err());
        assert_eq!(
            how,
            Rollback::OtherHash {
                seq: 5,
                checkpoint: five.seal.last_hash.clone(),
                found: records[4].hash.clone(),
            }
        );
    }

    #[test]
    fn a_forged_or_unreadable_checkpoint_is_refused() {
        let log = new_log();
        log.append(3);
        let mut cp = log.checkpoint("cp.seal");
        cp.seal.records = 2;
        let (_, how) = rollback(log.verify(&[cp]).unwrap_err());
        assert!(matches!(how, Rollback::Forged(_)), "{how:?}");
        let junk = log.dir.path().join("junk.seal");
        std::fs::write(&junk, b"{}").unwrap();
        assert!(matches!(
            Checkpoint::load(&junk),
            Err(SealError::Checkpoint {
                how: Rollback::Unreadable(_),
                ..
            })
        ));
    }

    #[test]
    fn a_first_format_seal_is_refused_by_name() {
        let v1 = br#"{"seal":"hatch-seal/1","key_id":"hatch-1","records":0,"last_hash":"0000000000000000000000000000000000000000000000000000000000000000","mac":"0000000000000000000000000000000000000000000000000000000000000000"}"#;
        let err = Seal::parse(v1).unwrap_err();
        assert!(err.contains("predates log ids"), "{err}");
    }

    /// A verify racing a live writer, in every sync mode, never reports what did not happen.
    #[test]
    fn verify_of_a_live_log_never_reports_tampering() {
        for sync in SyncMode::ALL {
            let log = new_log();
            let options = HatchOptions::sealed(&default_key_path(&log.path), sync).unwrap();
            let hatch = std::sync::Arc::new(Hatch::open(&log.path, options).unwrap());
            let done = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|scope| {
                for _ in 0..3 {
                    let (hatch, done) = (hatch.clone(), &done);
                    scope.spawn(move || {
                        for _ in 0..100 {
                            hatch
                                .append(Event::new(EventKind::RunStarted, "admin"))
                                .unwrap();
                        }
                        done.store(true, std::sync::atomic::Ordering::SeqCst);
                    });
                }
                let mut seen = 0;
                let mut verifies = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) || verifies == 0 {
                    let s = verify_sealed_file(&log.path, Some(&log.key))
                        .unwrap_or_else(|e| panic!("{sync}: a live log reported {e}"));
                    assert!(s.chain.records >= seen, "{sync}");
                    seen = s.chain.records;
                    verifies += 1;
                }
            });
            assert_eq!(log.verify(&[]).unwrap().chain.records, 300, "{sync}");
        }
    }

    #[test]
    fn repair_refuses_to_cut_under_a_live_writer() {
        let log = new_log();
        log.append(2);
        let hatch = Hatch::with_file(&log.path).unwrap();
        let err = repair_file(&log.path, Some(&log.key)).unwrap_err();
        assert!(err.contains("a live writer holds it"), "{err}");
        drop(hatch);
        assert_eq!(
            repair_file(&log.path, Some(&log.key)).unwrap().to_string(),
            "nothing to cut: 2 sealed records"
        );
    }
}
