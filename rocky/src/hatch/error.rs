//! [`HatchError`]: why a log could not be opened, read, sealed or appended to.

use std::fs::TryLockError;
use std::io;
use std::path::PathBuf;

use super::event::EventKind;
use super::seal::SealError;
use super::verify::VerifyError;

/// Why the log could not be opened, read or appended to.
#[derive(Debug, thiserror::Error)]
pub enum HatchError {
    #[error("failed to open hatch log {}: {source}", path.display())]
    Open { path: PathBuf, source: io::Error },
    #[error(
        "failed to lock hatch log {} for writing (is another writer using it?): {source}",
        path.display()
    )]
    Lock { path: PathBuf, source: TryLockError },
    #[error("failed to read hatch log {}: {source}", path.display())]
    Read { path: PathBuf, source: io::Error },
    #[error("failed to parse hatch log {} line {line}: {source}", path.display())]
    Parse {
        path: PathBuf,
        line: usize,
        source: serde_json::Error,
    },
    #[error("refusing to append to {}: {source}", path.display())]
    Refused { path: PathBuf, source: VerifyError },
    #[error("failed to append {kind}: data must be a JSON object, got {found}")]
    DataNotObject {
        kind: EventKind,
        found: &'static str,
    },
    #[error("failed to timestamp hatch record seq {seq}: {source}")]
    Timestamp {
        seq: u64,
        source: time::error::Format,
    },
    #[error("failed to write hatch record seq {seq} to {}: {source}", path.display())]
    Write {
        seq: u64,
        path: PathBuf,
        source: io::Error,
    },
    #[error(
        "failed to append hatch record seq {seq} to {}: an earlier refused record could not be undone yet ({reason}); appends are refused until the disk lets it be (retried with every append) or the console restarts",
        path.display()
    )]
    Damaged {
        seq: u64,
        path: PathBuf,
        reason: String,
    },
    #[error("failed to take the append lock on hatch log {}: {source}", path.display())]
    AppendLock { path: PathBuf, source: io::Error },
    #[error("refusing to append to {}: {source}", path.display())]
    Unsealed { path: PathBuf, source: SealError },
    #[error("failed to load the seal key for {}: {reason}", path.display())]
    SealKey { path: PathBuf, reason: String },
    #[error("failed to seal hatch record seq {seq} in {}: {source}", path.display())]
    Seal {
        seq: u64,
        path: PathBuf,
        source: io::Error,
    },
    #[error("failed to sync hatch record seq {seq} to disk ({}): {source}", path.display())]
    Sync {
        seq: u64,
        path: PathBuf,
        source: io::Error,
    },
    #[error("failed to append hatch record seq {seq}: the audit sink is failing (injected fault)")]
    Injected { seq: u64 },
}
