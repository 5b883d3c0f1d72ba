//! HATCH — the audit log of the play (contract §2): one hash-chained JSON record per line.
//!
//! Durability promise: [`Hatch::append`] hands each record to the operating system (one
//! `write` of the whole line, newline included) before it returns, so a record survives a crash
//! of the process. It does not `fsync`, so a crash of the machine may lose the tail; what is
//! lost is always a suffix, and a torn last line is caught by the verifier, which names its
//! `seq`. A log with a torn tail is never appended to: [`Hatch::with_file`] refuses it.
//!
//! One job a file:
//!
//! - `event`: the event kinds (the only place their names are spelled), the acts they
//!   belong to, and the [`Event`] a producer states.
//! - `record`: the [`Record`] line format and the canonical encoding its hash is taken over.
//! - `writer`: [`Hatch`], the single writer of a chain, in memory or to a JSONL file.
//! - `jsonl`: the log file, written one whole line at a time, and read back.
//! - `seal_file`: the writer's handle on `FILE.seal`, checked when the log is opened.
//! - `error`: [`HatchError`].
//! - `seal`: the [`Seal`] kept at `FILE.seal` (count, last hash, HMAC under a VAULT key),
//!   checking a log against it, and repairing a torn tail.
//! - `verify`: [`verify_bytes`] and [`verify_file`], which name the first bad `seq`.

mod error;
mod event;
mod jsonl;
mod record;
mod seal;
mod seal_file;
mod verify;
mod writer;

#[cfg(test)]
mod fixtures;

pub use error::HatchError;
pub use event::{Event, EventKind, Subject};
pub use jsonl::read_file;
pub use record::{GENESIS, Record};
pub use seal::{
    DEFAULT_SEAL_KEY_ID, Repaired, SEAL_FORMAT, Seal, SealError, SealedSummary, default_key_path,
    load_or_create_key, repair_file, repair_plan, seal_path, verify_sealed_bytes,
    verify_sealed_file,
};
pub use verify::{VerifyError, VerifyReason, VerifySummary, verify_bytes, verify_file};
pub use writer::{Hatch, HatchOptions, SyncMode};
