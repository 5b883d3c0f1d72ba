//! HATCH — the audit log of the play (contract §2): one hash-chained JSON record per line.
//!
//! Durability promise: [`Hatch::append`] hands each record to the operating system (one
//! `write` of the whole line, newline included) before it returns, so a record survives a crash
//! of the process. It does not `fsync`, so a crash of the machine may lose the tail; what is
//! lost is always a suffix, and a torn last line is caught by the verifier, which names its
//! `seq`. A log with a torn tail is never appended to: [`Hatch::with_file`] refuses it.
//! (`console --hatch-sync batch|always` syncs before an append returns; see [`SyncMode`].) An
//! append that returns an error leaves no record, whatever failed (see `writer`).
//!
//! One job a file:
//!
//! - `event`: the event kinds (the only place their names are spelled), the acts they
//!   belong to, and the [`Event`] a producer states.
//! - `record`: the [`Record`] line format and the canonical encoding its hash is taken over.
//! - `writer`: [`Hatch`], the single writer of a chain, in memory or to a JSONL file.
//! - `jsonl`: the log file, written one whole line at a time, and read back.
//! - `seal_file`: the writer's handle on `FILE.seal`, checked when the log is opened and
//!   replaced whole (new file, synced, renamed) with every update.
//! - `disk`: [`Disk`], the seam every file operation of the writer goes through (faults).
//! - `lock`: the writer lock (one writer; `repair` refuses under it) and the append lock
//!   (`verify` takes it shared, so a live log is read between appends; waited for within a
//!   deadline, never forever).
//! - `regular`: opening the files `verify` and `repair` read without ever blocking on a FIFO.
//! - `checkpoint`: [`Checkpoint`] and [`verify_against`]: rollback is evident.
//! - `error`: [`HatchError`].
//! - `seal`: the [`Seal`] kept at `FILE.seal` (log id, count, last hash, HMAC under a key),
//!   and checking a log against it.
//! - `repair`: cutting the tail a crash leaves beyond an authenticated seal, and nothing else.
//! - `verify`: [`verify_bytes`] and [`verify_file`], which name the first bad `seq`.

mod checkpoint;
mod disk;
mod error;
mod event;
mod jsonl;
mod lock;
mod record;
mod regular;
mod repair;
mod seal;
mod seal_file;
mod verify;
mod writer;

#[cfg(test)]
mod fault_tests;
#[cfg(test)]
mod fixtures;

pub use checkpoint::{
    Checkpoint, Rollback, verify_against, verify_against_within, verify_sealed_bytes_against,
};
pub use disk::{Disk, RealDisk};
pub use error::HatchError;
pub use event::{Event, EventKind, Subject};
pub use jsonl::read_file;
pub use lock::DEFAULT_LOCK_PATIENCE;
pub use record::{GENESIS, Record};
pub use regular::read_key;
pub use repair::{Repaired, repair, repair_file, repair_plan};
pub use seal::{
    DEFAULT_SEAL_KEY_ID, SEAL_FORMAT, Seal, SealError, SealedSummary, default_key_path,
    load_or_create_key, new_log_id, seal_path, verify_sealed_bytes, verify_sealed_file,
};
pub use verify::{VerifyError, VerifyReason, VerifySummary, verify_bytes, verify_file};
pub use writer::{Hatch, HatchOptions, MAX_UNSEALED_RECORDS, SyncMode};
