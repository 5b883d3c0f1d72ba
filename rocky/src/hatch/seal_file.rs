//! The writer's handle on `FILE.seal`: checked against the log when the writer opens it, then
//! replaced whole (a new file, synced per sync mode, renamed over the old one) with every
//! update, so a crash leaves the old seal or the new one and never a torn or empty one.

use std::io;
use std::path::{Path, PathBuf};

use super::disk::Disk;
use super::error::HatchError;
use super::record::GENESIS;
use super::seal::{Seal, new_log_id, seal_path, verify_sealed_bytes};
use crate::vault::Keyring;

/// The seal of one log: where it lives, its key and the log's identity.
pub(super) struct SealFile {
    pub(super) path: PathBuf,
    key: Keyring,
    /// Fixed when the log was created; part of every seal's MAC.
    pub(super) log_id: String,
}

impl SealFile {
    /// Replaces the seal with one of `records` records ending in `last_hash`.
    pub(super) fn update(
        &self,
        disk: &dyn Disk,
        records: u64,
        last_hash: &str,
        sync: bool,
    ) -> io::Result<()> {
        let line = Seal::new(&self.key, &self.log_id, records, last_hash).encode();
        disk.replace_seal(&self.path, &line, sync)
    }

    pub(super) fn error(&self, seq: u64, source: io::Error) -> HatchError {
        HatchError::Seal {
            seq,
            path: self.path.clone(),
            source,
        }
    }
}

/// Checks the log whose verified content is `content` against its seal (a new log, no records
/// and no seal, gets a fresh log id), and writes the seal again in full: the active key (and
/// so the key id's length) may have changed.
pub(super) fn open_seal(
    path: &Path,
    content: &[u8],
    key: Keyring,
    disk: &dyn Disk,
) -> Result<SealFile, HatchError> {
    let seal_file = seal_path(path);
    // Never blocks on a FIFO put in the seal's place (see `regular`).
    let existing = match super::regular::read(&seal_file) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(HatchError::Read {
                path: seal_file,
                source,
            });
        }
    };
    let refused = |source| HatchError::Unsealed {
        path: path.to_owned(),
        source,
    };
    let (log_id, records, last_hash) = if existing.is_none() && content.is_empty() {
        (new_log_id(), 0, GENESIS.to_owned())
    } else {
        let s = verify_sealed_bytes(content, existing.as_deref(), &seal_file, Some(&key))
            .map_err(refused)?;
        (s.seal.log_id, s.chain.records, s.chain.last_hash)
    };
    let seal = SealFile {
        path: seal_file,
        key,
        log_id,
    };
    seal.update(disk, records, &last_hash, true)
        .map_err(|source| seal.error(records, source))?;
    Ok(seal)
}
