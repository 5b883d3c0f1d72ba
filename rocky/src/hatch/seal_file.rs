//! The writer's handle on `FILE.seal`: opened (mode 0600) and checked against the log when the
//! writer opens it, then overwritten in place with every seal.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::error::HatchError;
use super::record::GENESIS;
use super::seal::{Seal, seal_path, verify_sealed_bytes};
use crate::vault::Keyring;

/// The seal file, overwritten in place with every seal.
pub(super) struct SealFile {
    pub(super) path: PathBuf,
    pub(super) file: File,
    key: Keyring,
}

impl SealFile {
    pub(super) fn write(&self, records: u64, last_hash: &str, seq: u64) -> Result<(), HatchError> {
        let line = Seal::new(&self.key, records, last_hash).encode();
        // The seal never shrinks (its count only grows), so overwriting from offset 0 leaves
        // no stale bytes behind.
        self.file
            .write_all_at(&line, 0)
            .map_err(|source| HatchError::Seal {
                seq,
                path: self.path.clone(),
                source,
            })
    }

    pub(super) fn sync(&self, seq: u64) -> Result<(), HatchError> {
        self.file.sync_data().map_err(|source| HatchError::Sync {
            seq,
            path: self.path.clone(),
            source,
        })
    }
}

/// Opens (creating, mode 0600) the seal of the log whose verified content is `content`, checks
/// the log against it, and rewrites it in full.
pub(super) fn open_seal(path: &Path, content: &[u8], key: Keyring) -> Result<SealFile, HatchError> {
    let seal_file = seal_path(path);
    let existing = match std::fs::read(&seal_file) {
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
    // A new log (no records, no seal) starts sealed at zero; any other state must verify.
    let summary = if existing.is_none() && content.is_empty() {
        None
    } else {
        Some(
            verify_sealed_bytes(content, existing.as_deref(), &seal_file, Some(&key))
                .map_err(refused)?,
        )
    };
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&seal_file)
        .map_err(|source| HatchError::Open {
            path: seal_file.clone(),
            source,
        })?;
    let seal = SealFile {
        path: seal_file,
        file,
        key,
    };
    let (records, last_hash) = summary.map_or((0, GENESIS.to_owned()), |s| {
        (s.chain.records, s.chain.last_hash)
    });
    // Rewritten in full: the active key (and so the key id's length) may have changed.
    let line = Seal::new(&seal.key, records, &last_hash).encode();
    seal.file
        .set_len(0)
        .and_then(|()| seal.file.write_all_at(&line, 0))
        .and_then(|()| seal.file.sync_data())
        .map_err(|source| HatchError::Seal {
            seq: records,
            path: seal.path.clone(),
            source,
        })?;
    Ok(seal)
}
