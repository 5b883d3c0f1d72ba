//! The seal of a HATCH log (contract §2): `FILE.seal` holds the log's identity, the record
//! count and the last `hash`, authenticated with HMAC-SHA256 under a VAULT key of its own
//! (with a key id for rotation). The writer brings it up to date with every append; the
//! verifier checks the log against it, which is what shows a cut tail, an emptied log or a
//! rewritten chain, and against checkpoints (copies of earlier seals kept elsewhere, see
//! `checkpoint`), which is what shows a rollback.
//!
//! ```text
//! FILE.seal: {"seal":"hatch-seal/2","log_id":"…","key_id":"hatch-1","records":10,"last_hash":"…","mac":"…"}\n
//! mac input: "hatch-seal/2\n{log_id}\n{key_id}\n{records}\n{last_hash}"
//! ```
//!
//! `log_id` is 16 random bytes (hex) drawn when the log is created and kept for its life, so
//! the zero seal of one empty log differs from another's and a seal of one log never
//! authenticates another under the same key. Seals of the first format (`hatch-seal/1`, no
//! log id) are refused with a message saying so, not read: accepting them would let any log's
//! old seal, the zero seal included, stand for any other log under the same key.
//!
//! The writer replaces the seal whole with every update (a new file, synced, renamed over the
//! old one), so a crash leaves the old seal or the new one, never a torn or empty one.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::record::GENESIS;
use super::verify::{VerifyError, VerifySummary, lines, verify_bytes};
use super::writer::MAX_UNSEALED_RECORDS;
use crate::vault::{Keyring, MacError};

/// Version tag of the seal format and of its MAC input.
pub const SEAL_FORMAT: &str = "hatch-seal/2";

/// The first seal format, without a log id: refused (see the module docs).
const SEAL_FORMAT_V1: &str = "hatch-seal/1";

/// Bytes of a log id (hex in the seal).
const LOG_ID_BYTES: usize = 16;

/// Key id of a freshly generated seal key.
pub const DEFAULT_SEAL_KEY_ID: &str = "hatch-1";

/// Upper bound on a seal file: anything bigger is not a seal.
const MAX_SEAL_BYTES: usize = 4096;

/// Where the seal of the log at `log` lives: `FILE.seal`.
pub fn seal_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".seal");
    PathBuf::from(name)
}

/// Where the seal key of the log at `log` lives when none is given: `FILE.key`.
pub fn default_key_path(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".key");
    PathBuf::from(name)
}

/// Loads the seal keyring at `path` (a VAULT keyring YAML), creating it with a fresh secret
/// under [`DEFAULT_SEAL_KEY_ID`] (mode 0600) when it does not exist.
pub fn load_or_create_key(path: &Path) -> Result<Keyring, String> {
    if !path.exists() {
        let secret = hex::encode(crate::vault::generate_secret());
        crate::vault::write_keyring_file(
            path,
            DEFAULT_SEAL_KEY_ID,
            &[(DEFAULT_SEAL_KEY_ID, secret.as_str())],
        )
        .map_err(|e| {
            format!(
                "failed to create the HATCH seal key {}: {e}",
                path.display()
            )
        })?;
    }
    Keyring::from_file(path).map_err(|e| e.to_string())
}

/// A seal as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seal {
    /// Always [`SEAL_FORMAT`].
    pub seal: String,
    /// The log's identity, drawn when it was created ([`new_log_id`]).
    pub log_id: String,
    /// The VAULT key id the MAC is under.
    pub key_id: String,
    /// How many records the log held when sealed.
    pub records: u64,
    /// `hash` of the last record ([`GENESIS`] for an empty log).
    pub last_hash: String,
    /// Hex HMAC-SHA256 of [`Seal::mac_input`].
    pub mac: String,
}

/// A fresh log id: 16 random bytes, hex.
pub fn new_log_id() -> String {
    crate::ids::random_hex(LOG_ID_BYTES)
}

/// Only the format tag, read first so an old seal is named as such.
#[derive(Deserialize)]
struct FormatTag {
    seal: String,
}

impl Seal {
    /// Seals `records` records ending in `last_hash` of the log `log_id` with the keyring's
    /// active key.
    pub fn new(key: &Keyring, log_id: &str, records: u64, last_hash: &str) -> Seal {
        let input = mac_input_for(log_id, key.active_key_id(), records, last_hash);
        let (key_id, tag) = key.mac_active(input.as_bytes());
        Seal {
            seal: SEAL_FORMAT.to_owned(),
            log_id: log_id.to_owned(),
            key_id: key_id.to_owned(),
            records,
            last_hash: last_hash.to_owned(),
            mac: hex::encode(tag),
        }
    }

    /// The line stored in `FILE.seal`, newline included.
    pub fn encode(&self) -> Vec<u8> {
        let mut line = serde_json::to_vec(self).expect("a seal encodes");
        line.push(b'\n');
        line
    }

    /// Reads a seal file's content; says what is wrong with it otherwise.
    pub fn parse(content: &[u8]) -> Result<Seal, String> {
        if content.len() > MAX_SEAL_BYTES {
            return Err(format!(
                "seal is {} bytes, more than a seal can be ({MAX_SEAL_BYTES})",
                content.len()
            ));
        }
        let text = content.strip_suffix(b"\n").unwrap_or(content);
        if let Ok(tag) = serde_json::from_slice::<FormatTag>(text)
            && tag.seal == SEAL_FORMAT_V1
        {
            return Err(format!(
                "seal format {SEAL_FORMAT_V1:?} predates log ids ({SEAL_FORMAT:?}) and is refused: it does not name the log it seals, so it cannot show a rollback or another log's seal"
            ));
        }
        let seal: Seal =
            serde_json::from_slice(text).map_err(|e| format!("seal is not readable: {e}"))?;
        if seal.seal != SEAL_FORMAT {
            return Err(format!(
                "seal format {:?} is not {SEAL_FORMAT:?}",
                seal.seal
            ));
        }
        if !is_hex(&seal.log_id, 2 * LOG_ID_BYTES) {
            return Err(format!(
                "seal log_id is not {} hex digits",
                2 * LOG_ID_BYTES
            ));
        }
        if !is_hex(&seal.last_hash, 64) {
            return Err("seal last_hash is not 64 hex digits".into());
        }
        if !is_hex(&seal.mac, 64) {
            return Err("seal mac is not 64 hex digits".into());
        }
        Ok(seal)
    }

    /// The string the MAC is taken over.
    pub fn mac_input(&self) -> String {
        mac_input_for(&self.log_id, &self.key_id, self.records, &self.last_hash)
    }

    /// Checks the MAC under `key`.
    pub fn authenticate(&self, key: &Keyring) -> Result<(), MacError> {
        let tag = hex::decode(&self.mac).map_err(|_| MacError::Mismatch(self.key_id.clone()))?;
        key.mac_verify(&self.key_id, self.mac_input().as_bytes(), &tag)
    }
}

fn mac_input_for(log_id: &str, key_id: &str, records: u64, last_hash: &str) -> String {
    let mut s = String::with_capacity(160);
    let _ = write!(
        s,
        "{SEAL_FORMAT}\n{log_id}\n{key_id}\n{records}\n{last_hash}"
    );
    s
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What is wrong with a sealed log.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// The chain itself breaks (a changed record without recomputed hashes, a torn line).
    #[error("{0}")]
    Chain(VerifyError),
    #[error("the seal {} is missing: the log cannot be checked for a cut tail or a rewrite", path.display())]
    Missing { path: PathBuf },
    #[error("the seal {} is unreadable: {reason}", path.display())]
    Unreadable { path: PathBuf, reason: String },
    #[error("records missing at the tail: sealed {sealed} records, the log has {found}")]
    Truncated { sealed: u64, found: u64 },
    #[error(
        "unsealed tail: the log has {found} records, sealed {sealed} (a crash between a write and its seal, or records appended by hand; `rocky-e2e hatch repair` cuts back to the sealed records)"
    )]
    Unsealed { sealed: u64, found: u64 },
    /// An unsealed tail seen without the key: the seal may be anyone's, so nothing may be cut
    /// on its word.
    #[error(
        "unsealed tail: the log has {found} records, sealed {sealed}, but the seal is not authenticated (no --key): it may be forged or an older seal put back, so it cannot say that any record may be cut; verify with --key KEYFILE (`hatch_key_path` in stack.json) first, and `rocky-e2e hatch repair` cuts only on a seal that authenticates"
    )]
    UnsealedUnauthenticated { sealed: u64, found: u64 },
    /// More records beyond an authentic seal than a crash leaves.
    #[error(
        "{} records beyond the seal: the log has {found} records, sealed {sealed}, and a crash leaves at most {MAX_UNSEALED_RECORDS} unsealed, so these are not a crash's tail (an older seal put back, or records appended without the seal); `rocky-e2e hatch repair` refuses to cut them", found - sealed
    )]
    BeyondCrash { sealed: u64, found: u64 },
    /// The log's append lock was not free within the patience given (a stuck live writer).
    #[error("{0}")]
    Busy(String),
    #[error(
        "a record changed: record {seq} hashes to {found}, the seal holds {sealed} (the chain was rewritten)"
    )]
    Changed {
        seq: u64,
        sealed: String,
        found: String,
    },
    #[error("the seal is forged or the key is wrong: {0}")]
    Forged(MacError),
    /// The log does not extend a checkpoint (a rollback, or another log).
    #[error("checkpoint {}: {how}", path.display())]
    Checkpoint {
        path: PathBuf,
        how: super::checkpoint::Rollback,
    },
}

/// What a sealed log holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSummary {
    pub chain: VerifySummary,
    pub seal: Seal,
    /// Whether the seal's MAC was checked (a key was given).
    pub authenticated: bool,
}

/// Checks `content` (a whole log) against `seal_content` (its seal file's content, `None` when
/// missing), and the seal's MAC when `key` is given.
pub fn verify_sealed_bytes(
    content: &[u8],
    seal_content: Option<&[u8]>,
    seal_file: &Path,
    key: Option<&Keyring>,
) -> Result<SealedSummary, SealError> {
    let chain = verify_bytes(content).map_err(SealError::Chain)?;
    let seal_content = seal_content.ok_or_else(|| SealError::Missing {
        path: seal_file.to_owned(),
    })?;
    let seal = Seal::parse(seal_content).map_err(|reason| SealError::Unreadable {
        path: seal_file.to_owned(),
        reason,
    })?;
    if let Some(key) = key {
        seal.authenticate(key).map_err(SealError::Forged)?;
    }
    check_against(&chain, &seal, content, key.is_some())?;
    Ok(SealedSummary {
        chain,
        seal,
        authenticated: key.is_some(),
    })
}

fn check_against(
    chain: &VerifySummary,
    seal: &Seal,
    content: &[u8],
    authenticated: bool,
) -> Result<(), SealError> {
    if chain.records < seal.records {
        return Err(SealError::Truncated {
            sealed: seal.records,
            found: chain.records,
        });
    }
    if chain.records > seal.records {
        // The sealed prefix must still end in the sealed hash, or the chain was rewritten.
        let at = hash_of_record(content, seal.records);
        if at != seal.last_hash {
            return Err(SealError::Changed {
                seq: seal.records,
                sealed: seal.last_hash.clone(),
                found: at,
            });
        }
        let (sealed, found) = (seal.records, chain.records);
        return Err(if !authenticated {
            SealError::UnsealedUnauthenticated { sealed, found }
        } else if found - sealed > MAX_UNSEALED_RECORDS {
            SealError::BeyondCrash { sealed, found }
        } else {
            SealError::Unsealed { sealed, found }
        });
    }
    if chain.last_hash != seal.last_hash {
        return Err(SealError::Changed {
            seq: seal.records,
            sealed: seal.last_hash.clone(),
            found: chain.last_hash.clone(),
        });
    }
    Ok(())
}

/// `hash` of record `seq` (1-based) of a verified log, [`GENESIS`] for 0.
pub(super) fn hash_of_record(content: &[u8], seq: u64) -> String {
    if seq == 0 {
        return GENESIS.to_owned();
    }
    lines(content)
        .nth(usize::try_from(seq - 1).unwrap_or(usize::MAX))
        .and_then(|l| serde_json::from_slice::<super::Record>(l.bytes).ok())
        .map(|r| r.hash)
        .unwrap_or_default()
}

/// Verifies the log at `path` against `path.seal`, and the seal's MAC when `key` is given,
/// reading both under the writer's append lock (shared): see [`super::verify_against`].
pub fn verify_sealed_file(path: &Path, key: Option<&Keyring>) -> Result<SealedSummary, SealError> {
    super::checkpoint::verify_against(path, key, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hatch::fixtures::write_log;
    use crate::hatch::{
        Event, EventKind, Hatch, HatchError, HatchOptions, Record, SyncMode, repair_file,
    };

    fn key_of(path: &Path) -> Keyring {
        Keyring::from_file(&default_key_path(path)).expect("seal key")
    }

    fn verify(path: &Path) -> Result<SealedSummary, SealError> {
        verify_sealed_file(path, Some(&key_of(path)))
    }

    fn keep_lines(path: &Path, n: usize) {
        let content = std::fs::read_to_string(path).expect("read");
        let kept: String = content.lines().take(n).map(|l| format!("{l}\n")).collect();
        std::fs::write(path, kept).expect("write");
    }

    /// Rewrites the log as a forger would: edit records, drop some, recompute every hash.
    fn rewrite(path: &Path, edit: impl Fn(Vec<Record>) -> Vec<Record>) {
        let records = edit(crate::hatch::read_file(path).expect("read"));
        let mut prev = crate::hatch::GENESIS.to_owned();
        let mut out = String::new();
        for (i, mut r) in records.into_iter().enumerate() {
            r.seq = i as u64 + 1;
            r.prev = prev;
            r.hash = r.compute_hash();
            prev = r.hash.clone();
            out.push_str(&serde_json::to_string(&r).expect("encode"));
            out.push('\n');
        }
        std::fs::write(path, out).expect("write");
    }

    #[test]
    fn an_intact_log_verifies_against_its_seal() {
        let (_dir, path, records) = write_log(10);
        let s = verify(&path).expect("intact");
        assert_eq!(s.seal.records, 10);
        assert_eq!(s.seal.last_hash, records[9].hash);
        assert!(s.authenticated);
        assert_eq!(s.seal.key_id, DEFAULT_SEAL_KEY_ID);
        // Without the key the seal is still compared, only not authenticated.
        assert!(
            !verify_sealed_file(&path, None)
                .expect("intact")
                .authenticated
        );
    }

    #[test]
    fn a_cut_tail_is_named() {
        for keep in [7, 9, 0] {
            let (_dir, path, _) = write_log(10);
            keep_lines(&path, keep);
            let err = verify(&path).unwrap_err();
            assert_eq!(
                err,
                SealError::Truncated {
                    sealed: 10,
                    found: keep as u64
                }
            );
            assert!(
                err.to_string()
                    .contains(&format!("sealed 10 records, the log has {keep}")),
                "{err}"
            );
            // The console refuses to start on it, and repair refuses to "fix" it.
            assert!(matches!(
                Hatch::with_file(&path),
                Err(HatchError::Unsealed { .. })
            ));
            assert!(
                repair_file(&path, None)
                    .unwrap_err()
                    .contains("cannot repair")
            );
        }
    }

    #[test]
    fn a_rewritten_chain_is_named() {
        let (_dir, path, _) = write_log(9);
        // Run status changed, node records removed, hashes recomputed: the chain is intact.
        rewrite(&path, |records| {
            records
                .into_iter()
                .filter(|r| !r.kind.starts_with("ralph.node."))
                .map(|mut r| {
                    if r.kind == "ralph.run.ended" {
                        r.data = serde_json::json!({"status": "failed"});
                    }
                    r
                })
                .collect()
        });
        assert!(
            crate::hatch::verify_file(&path).is_ok(),
            "the chain alone passes"
        );
        let err = verify(&path).unwrap_err();
        assert_eq!(
            err,
            SealError::Truncated {
                sealed: 9,
                found: 5
            }
        );
        // Same length, one record changed and the chain recomputed.
        let (_dir2, path2, records) = write_log(9);
        rewrite(&path2, |mut r| {
            r[8].data = serde_json::json!({"status": "failed"});
            r
        });
        let err = verify(&path2).unwrap_err();
        assert!(matches!(err, SealError::Changed { seq: 9, .. }), "{err:?}");
        assert!(err.to_string().contains("a record changed"), "{err}");
        assert!(err.to_string().contains(&records[8].hash), "{err}");
    }

    #[test]
    fn a_missing_or_forged_seal_is_named() {
        let (_dir, path, _) = write_log(4);
        let seal_file = seal_path(&path);
        let real = std::fs::read(&seal_file).expect("seal");
        // Forged: the forger rewrites the log and re-seals it without the key.
        rewrite(&path, |mut r| {
            r.pop();
            r
        });
        let chain = crate::hatch::verify_file(&path).expect("chain");
        let forger = Keyring::single(DEFAULT_SEAL_KEY_ID, b"the forger's guess");
        std::fs::write(
            &seal_file,
            Seal::new(&forger, &new_log_id(), chain.records, &chain.last_hash).encode(),
        )
        .expect("forge");
        // Without the key the forgery is consistent; with it, it is caught.
        assert!(verify_sealed_file(&path, None).is_ok());
        let err = verify(&path).unwrap_err();
        assert!(
            matches!(err, SealError::Forged(MacError::Mismatch(_))),
            "{err:?}"
        );
        assert!(err.to_string().contains("forged"), "{err}");
        // A seal under an unknown key id.
        let other = Keyring::single("hatch-9", b"x");
        std::fs::write(
            &seal_file,
            Seal::new(&other, &new_log_id(), 3, &chain.last_hash).encode(),
        )
        .expect("w");
        assert!(matches!(
            verify(&path).unwrap_err(),
            SealError::Forged(MacError::UnknownKeyId(id)) if id == "hatch-9"
        ));
        // Missing.
        std::fs::remove_file(&seal_file).expect("rm");
        let err = verify(&path).unwrap_err();
        assert!(matches!(err, SealError::Missing { .. }));
        assert!(err.to_string().contains("is missing"), "{err}");
        // Unreadable.
        std::fs::write(&seal_file, b"{\"seal\":").expect("w");
        assert!(matches!(
            verify(&path).unwrap_err(),
            SealError::Unreadable { .. }
        ));
        drop(real);
    }

    #[test]
    fn a_torn_tail_is_refused_then_repaired_to_the_last_sealed_record() {
        let (_dir, path, records) = write_log(5);
        let mut content = std::fs::read(&path).expect("read");
        let whole = content.len();
        // A crash: one whole unsealed record, then half of another.
        let extra = Record {
            seq: 6,
            prev: records[4].hash.clone(),
            ..records[4].clone()
        };
        let mut extra = extra;
        extra.hash = extra.compute_hash();
        let line = serde_json::to_string(&extra).expect("encode");
        content.extend_from_slice(line.as_bytes());
        content.push(b'\n');
        content.extend_from_slice(&line.as_bytes()[..20]);
        std::fs::write(&path, &content).expect("tear");
        // The torn line breaks the chain itself: refused, naming it.
        match Hatch::with_file(&path) {
            Err(HatchError::Refused { source, .. }) => assert_eq!(source.seq, 7),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Without the torn line, the whole unsealed record is refused against the seal.
        std::fs::write(&path, &content[..content.len() - 20]).expect("tear");
        let err = verify(&path).unwrap_err();
        assert_eq!(
            err,
            SealError::Unsealed {
                sealed: 5,
                found: 6
            }
        );
        assert!(matches!(
            Hatch::with_file(&path),
            Err(HatchError::Unsealed { .. })
        ));
        std::fs::write(&path, &content).expect("tear");
        let repaired = repair_file(&path, Some(&key_of(&path))).expect("repair");
        assert_eq!(repaired.kept, 5);
        assert_eq!(repaired.cut_records, 1);
        assert!(repaired.torn_line);
        assert_eq!(repaired.cut_bytes as usize, content.len() - whole);
        assert!(
            repaired.to_string().contains("after sealed record 5"),
            "{repaired}"
        );
        assert_eq!(std::fs::read(&path).expect("read").len(), whole);
        verify(&path).expect("intact after repair");
        let hatch = Hatch::with_file(&path).expect("opens after repair");
        assert_eq!(
            hatch
                .append(Event::new(EventKind::RunStarted, "admin"))
                .expect("append")
                .seq,
            6
        );
        drop(hatch);
        verify(&path).expect("intact");
        assert_eq!(
            repair_file(&path, None).expect("no-op").to_string(),
            "nothing to cut: 6 sealed records"
        );
    }

    #[test]
    fn log_seal_and_key_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path, _) = write_log(1);
        for p in [path.clone(), seal_path(&path), default_key_path(&path)] {
            let mode = std::fs::metadata(&p).expect("stat").permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", p.display());
        }
    }

    #[test]
    fn every_sync_mode_seals_every_append_under_concurrency() {
        for sync in SyncMode::ALL {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("hatch.jsonl");
            let options = HatchOptions::sealed(&default_key_path(&path), sync).expect("key");
            let hatch = std::sync::Arc::new(Hatch::open(&path, options).expect("open"));
            std::thread::scope(|scope| {
                for _ in 0..8 {
                    let hatch = hatch.clone();
                    scope.spawn(move || {
                        for _ in 0..25 {
                            hatch
                                .append(Event::new(EventKind::RunStarted, "admin"))
                                .expect("append");
                        }
                    });
                }
            });
            let s = verify(&path).unwrap_or_else(|e| panic!("{sync}: {e}"));
            assert_eq!(s.seal.records, 200, "{sync}");
        }
    }

    #[test]
    fn an_injected_append_failure_leaves_no_record() {
        let (_dir, path, _) = write_log(2);
        let hatch = Hatch::with_file(&path).expect("open");
        hatch.inject_append_failure(true);
        let err = hatch
            .append(Event::new(EventKind::RunStarted, "admin"))
            .unwrap_err();
        assert!(matches!(err, HatchError::Injected { seq: 3 }), "{err}");
        hatch.inject_append_failure(false);
        assert_eq!(
            hatch
                .append(Event::new(EventKind::RunStarted, "admin"))
                .expect("append")
                .seq,
            3
        );
        drop(hatch);
        assert_eq!(verify(&path).expect("intact").seal.records, 3);
    }

    #[test]
    fn seal_parsing_refuses_junk() {
        for junk in [
            &b""[..],
            b"{}",
            b"null",
            b"{\"seal\":\"hatch-seal/3\",\"key_id\":\"k\",\"records\":1,\"last_hash\":\"00\",\"mac\":\"00\"}",
        ] {
            assert!(Seal::parse(junk).is_err(), "{junk:?}");
        }
        assert!(
            Seal::parse(&vec![b' '; 5000])
                .unwrap_err()
                .contains("more than a seal")
        );
    }
}
