//! The single writer of a HATCH chain ([`Hatch`]): it assigns `seq`, `ts`, `prev` and
//! `hash`, feeds subscribers, and appends each record to the JSONL file when the log has one
//! (a log without a file keeps its chain in memory), sealing it per [`SyncMode`].
//!
//! Fail closed (contract §2): an append that returns an error leaves no record. When a write,
//! a sync or a seal update fails, the writer rolls the log back to what its seal on disk
//! covers: the seal is put back first (so a crash in between leaves an unsealed tail, which
//! `repair` may cut because none of it was answered as done), then the log is cut back
//! (`ftruncate`). If the disk refuses the rollback too, every later append first retries it
//! and is refused, naming why, until it succeeds: the writer recovers when the disk does. In
//! `batch` a failed group commit refuses every record it would have covered and every record
//! written after them (they are cut with it). A writer never has more than
//! [`MAX_UNSEALED_RECORDS`] written beyond its seal (`batch` appends wait for a commit first),
//! so that is the most a crash leaves for `repair` to cut. Every file operation goes through
//! [`Disk`], the seam the fault tests use.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tokio::sync::broadcast;

use super::disk::{Disk, RealDisk};
pub use super::error::HatchError;
use super::event::Event;
use super::jsonl::{JsonlFile, parse_records, read_file};
use super::lock::{Share, lock_appends, take_writer_lock, unlock_appends};
use super::record::{GENESIS, Record, hex_string, sha256_hex};
use super::seal::{default_key_path, load_or_create_key};
use super::seal_file::{SealFile, open_seal};
use super::verify::verify_bytes;
use crate::vault::Keyring;

/// Microseconds, fixed width: RFC 3339, UTC, and lexically sortable like the chain itself.
const TS_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// How many records a subscriber may fall behind before it starts missing some.
const SUBSCRIBER_BACKLOG: usize = 1024;

/// The most records a writer ever has written beyond what its seal on disk covers, and so the
/// most a crash of the writer leaves unsealed: what `hatch repair` may cut (it refuses more).
/// `always` and `none` write and seal one record at a time under the state lock (one at most,
/// its append not answered yet); `batch` lets appends write while a group commit syncs, and
/// makes an append wait for a commit before it writes a record beyond this many. Small, so a
/// seal put back more than a few records early is never taken for a crash's; the console
/// appends from its runtime's worker threads (one per core), so on up to 4 cores no append
/// ever waits for room, and on more a group commit still shares one `fdatasync` among up to 4.
pub const MAX_UNSEALED_RECORDS: u64 = 4;

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

crate::wire_enum! {
    /// When an append reaches the disk (`console --hatch-sync`).
    pub enum SyncMode {
        /// Every append `fdatasync`s the log, then replaces its seal (synced), before it returns.
        Always = "always",
        /// Group commit: concurrent appends share one `fdatasync` of the log and one seal
        /// replacement; each returns once a commit covering it has finished.
        Batch = "batch",
        /// Appends reach the operating system (the seal replaced unsynced), never wait for
        /// the disk.
        None = "none",
    }
}

/// How a log file is opened: its seal key and its durability.
#[derive(Clone, Debug)]
pub struct HatchOptions {
    /// The seal key; `None` keeps no seal (tests and tools only: the console always seals).
    pub seal_key: Option<Keyring>,
    pub sync: SyncMode,
}

impl HatchOptions {
    /// Sealed with the keyring at `key_path` (created when missing), with `sync`.
    pub fn sealed(key_path: &Path, sync: SyncMode) -> Result<HatchOptions, HatchError> {
        let seal_key = load_or_create_key(key_path).map_err(|reason| HatchError::SealKey {
            path: key_path.to_owned(),
            reason,
        })?;
        Ok(HatchOptions {
            seal_key: Some(seal_key),
            sync,
        })
    }
}

/// Group commit for [`SyncMode::Batch`].
#[derive(Default)]
struct Commit {
    /// Highest seq that is on disk and sealed.
    synced: u64,
    /// A leader is syncing now.
    syncing: bool,
    /// Rollbacks so far.
    epoch: u64,
    /// For each epoch that ended in a rollback, the records that rollback kept: a record of
    /// that epoch with a higher seq was cut (later rollbacks keep at least as many).
    kept: Vec<u64>,
}

/// What the seal on disk covers: the state every failure rolls back to.
#[derive(Clone, Debug)]
struct Sealed {
    records: u64,
    last_hash: String,
    /// The log's length at `records`.
    len: u64,
}

/// A rollback the disk refused: what every later append retries before it writes.
#[derive(Debug)]
struct Broken {
    /// The length the log must be cut back to.
    cut_to: u64,
    /// Whether the seal on disk may be a newer one than `State::sealed` (put it back).
    seal_uncertain: bool,
    /// Why the rollback failed, for the refusals.
    reason: String,
}

/// The single writer of a chain: assigns `seq`, `ts`, `prev` and `hash`, keeps every record
/// in memory, and optionally appends each one to a JSONL file. Share it behind an `Arc`.
pub struct Hatch {
    /// Everything `append` changes, under one lock so seq order, chain order and file order
    /// are the same order.
    state: Mutex<State>,
    /// Live feed of appended records for whoever waits on the chain.
    feed: broadcast::Sender<Record>,
    /// The JSONL file, if this log has one; kept outside the lock for cheap reporting.
    path: Option<PathBuf>,
    /// The seal, when the log is sealed.
    seal: Option<SealFile>,
    /// A second handle on the log, for syncing outside the state lock.
    sync_handle: Option<File>,
    sync: SyncMode,
    /// Every file operation (the fault tests' seam).
    disk: Arc<dyn Disk>,
    commit: Mutex<Commit>,
    committed: Condvar,
    /// `batch`: signalled (with `state`) when a commit or a rollback leaves room for more
    /// records beyond the seal ([`MAX_UNSEALED_RECORDS`]).
    room: Condvar,
    /// `batch`: appends waiting for room now (what a test watches).
    waiting_for_room: AtomicU64,
    /// Fault injection: appends from this seq on fail (`u64::MAX`: none); tests of the
    /// fail-closed paths.
    fail_from: AtomicU64,
}

struct State {
    /// The seq the next record gets.
    next_seq: u64,
    /// The hash the next record's `prev` carries.
    last_hash: String,
    /// The in-memory recorder of a log without a file: every record of the chain. A log with
    /// a file keeps none in memory (the console's memory stays flat however long it runs);
    /// its records are read back from the file.
    records: Vec<Record>,
    /// The append-only recorder, when there is one.
    file: Option<JsonlFile>,
    /// Reused for every line, so appending does not allocate for the encoding.
    line: Vec<u8>,
    /// What the seal on disk covers (a log with a file).
    sealed: Sealed,
    /// A rollback still to finish.
    broken: Option<Broken>,
    /// Rollbacks so far ([`Commit::epoch`] follows it).
    epoch: u64,
    /// Whether this writer holds the append lock (while records are not yet sealed).
    append_locked: bool,
}

impl Hatch {
    /// A log kept in memory only.
    pub fn in_memory() -> Hatch {
        Hatch::from_parts(&[], None, Arc::new(RealDisk))
    }

    /// A log recorded to the JSONL file at `path` as well as in memory.
    ///
    /// A missing or empty file starts a new chain. An existing file is verified first and its
    /// chain continued; a file that fails verification (a torn last line after a crash, a
    /// tampered record) is refused rather than appended to. The file stays exclusively locked
    /// while the `Hatch` lives, so two writers cannot interleave one chain.
    pub fn with_file(path: &Path) -> Result<Hatch, HatchError> {
        let options = HatchOptions::sealed(&default_key_path(path), SyncMode::None)?;
        Hatch::open(path, options)
    }

    /// A log at `path`, sealed at `path.seal` when `options` has a key (see [`Hatch::with_file`]).
    ///
    /// A sealed log is checked against its seal first: a log with records beyond the seal (a
    /// torn tail after a crash), fewer records than sealed, a changed record, a seal that is
    /// missing (for a log that has records) or forged is refused; `rocky-e2e hatch repair`
    /// cuts a torn tail back to the last sealed record. The log and its seal are mode 0600.
    pub fn open(path: &Path, options: HatchOptions) -> Result<Hatch, HatchError> {
        Hatch::open_with_disk(path, options, Arc::new(RealDisk))
    }

    /// [`Hatch::open`] with every file operation going through `disk` (fault tests).
    pub fn open_with_disk(
        path: &Path,
        options: HatchOptions,
        disk: Arc<dyn Disk>,
    ) -> Result<Hatch, HatchError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|source| HatchError::Open {
                path: path.to_owned(),
                source,
            })?;
        // A FIFO opened read-write does not block, but reading it would.
        if !file.metadata().is_ok_and(|m| m.is_file()) {
            return Err(HatchError::Open {
                path: path.to_owned(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"),
            });
        }
        take_writer_lock(&file).map_err(|source| HatchError::Lock {
            path: path.to_owned(),
            source,
        })?;
        // Read through the locked handle, so nothing can be appended between the check and
        // the first write.
        let mut content = Vec::new();
        file.read_to_end(&mut content)
            .map_err(|source| HatchError::Read {
                path: path.to_owned(),
                source,
            })?;
        verify_bytes(&content).map_err(|source| HatchError::Refused {
            path: path.to_owned(),
            source,
        })?;
        let seal = match options.seal_key {
            Some(key) => Some(open_seal(path, &content, key, disk.as_ref())?),
            None => None,
        };
        let records = parse_records(&content, path)?;
        let sync_handle = file.try_clone().map_err(|source| HatchError::Open {
            path: path.to_owned(),
            source,
        })?;
        let jsonl = JsonlFile {
            path: path.to_owned(),
            file,
            len: content.len() as u64,
        };
        let mut hatch = Hatch::from_parts(&records, Some(jsonl), disk);
        hatch.seal = seal;
        hatch.sync_handle = Some(sync_handle);
        hatch.sync = options.sync;
        {
            let state = hatch
                .state
                .get_mut()
                .unwrap_or_else(PoisonError::into_inner);
            state.sealed.len = content.len() as u64;
        }
        hatch
            .commit
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .synced = records.len() as u64;
        Ok(hatch)
    }

    fn from_parts(records: &[Record], file: Option<JsonlFile>, disk: Arc<dyn Disk>) -> Hatch {
        let (next_seq, last_hash) = match records.last() {
            Some(last) => (last.seq + 1, last.hash.clone()),
            None => (1, GENESIS.to_owned()),
        };
        let path = file.as_ref().map(|f| f.path.clone());
        let (feed, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
        Hatch {
            state: Mutex::new(State {
                next_seq,
                last_hash: last_hash.clone(),
                records: if file.is_some() {
                    Vec::new()
                } else {
                    records.to_vec()
                },
                file,
                line: Vec::with_capacity(512),
                sealed: Sealed {
                    records: next_seq - 1,
                    last_hash,
                    len: 0,
                },
                broken: None,
                epoch: 0,
                append_locked: false,
            }),
            feed,
            path,
            seal: None,
            sync_handle: None,
            sync: SyncMode::None,
            disk,
            commit: Mutex::new(Commit::default()),
            committed: Condvar::new(),
            room: Condvar::new(),
            waiting_for_room: AtomicU64::new(0),
            fail_from: AtomicU64::new(u64::MAX),
        }
    }

    /// The seal file of this log, when it is sealed.
    pub fn seal_path(&self) -> Option<&Path> {
        self.seal.as_ref().map(|s| s.path.as_path())
    }

    /// The log's identity (in every seal), when it is sealed.
    pub fn log_id(&self) -> Option<&str> {
        self.seal.as_ref().map(|s| s.log_id.as_str())
    }

    /// How appends reach the disk.
    pub fn sync_mode(&self) -> SyncMode {
        self.sync
    }

    /// Fault injection: while `on`, every append fails as a broken disk would.
    pub fn inject_append_failure(&self, on: bool) {
        self.fail_appends_from(if on { 0 } else { u64::MAX });
    }

    /// Fault injection: the append of record `seq` and every later one fails.
    pub fn fail_appends_from(&self, seq: u64) {
        self.fail_from.store(seq, Ordering::SeqCst);
    }

    /// The JSONL file this log records to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Chains `event` behind the last record and records it. With a file, the line has
    /// reached the operating system when this returns (see the module docs); an error means
    /// the record is not in the log.
    pub fn append(&self, event: Event) -> Result<Record, HatchError> {
        if !event.data.is_object() {
            return Err(HatchError::DataNotObject {
                kind: event.kind,
                found: json_type(&event.data),
            });
        }
        let mut guard = self.lock();
        if self.sync == SyncMode::Batch {
            // Never more than MAX_UNSEALED_RECORDS beyond the seal: a crash leaves no more.
            while guard.file.is_some() && guard.unsealed() >= MAX_UNSEALED_RECORDS {
                self.waiting_for_room.fetch_add(1, Ordering::SeqCst);
                guard = self
                    .room
                    .wait(guard)
                    .unwrap_or_else(PoisonError::into_inner);
                self.waiting_for_room.fetch_sub(1, Ordering::SeqCst);
            }
        }
        let state = &mut *guard;
        let seq = state.next_seq;
        if seq >= self.fail_from.load(Ordering::SeqCst) {
            return Err(HatchError::Injected { seq });
        }
        // Taken under the lock, so timestamps never run backwards along the chain.
        let ts = OffsetDateTime::now_utc()
            .format(TS_FORMAT)
            .map_err(|source| HatchError::Timestamp { seq, source })?;
        let mut record = Record {
            seq,
            ts,
            kind: event.kind.as_str().to_owned(),
            actor: event.actor,
            subject: event.subject,
            data: event.data,
            prev: state.last_hash.clone(),
            hash: String::new(),
        };
        state.line.clear();
        record.canonical().encode_into(&mut state.line);
        let hash = sha256_hex(&state.line);
        record.hash = hex_string(&hash);
        if state.file.is_some() {
            // The stored line is the canonical encoding with `hash` as one more field at the
            // end, which is byte for byte what serializing `Record` gives; splicing it in
            // saves encoding the record twice.
            let closing = state.line.pop();
            debug_assert_eq!(closing, Some(b'}'));
            state.line.extend_from_slice(b",\"hash\":\"");
            state.line.extend_from_slice(&hash);
            state.line.extend_from_slice(b"\"}\n");
            let written = self.write_record(state, seq, &record.hash);
            self.settle(state);
            written?;
        }
        state.next_seq += 1;
        state.last_hash.clone_from(&record.hash);
        if state.file.is_none() {
            state.records.push(record.clone());
        }
        let epoch = state.epoch;
        // Sent under the lock so subscribers see records in chain order, and so
        // `snapshot_and_subscribe` neither misses nor repeats one. (In `batch` a subscriber
        // may see a record that a failing group commit then refuses.)
        if self.feed.receiver_count() > 0 {
            // Nobody listening any more is not an error for the writer.
            let _ = self.feed.send(record.clone());
        }
        drop(guard);
        if self.sync == SyncMode::Batch && self.path.is_some() {
            self.commit_through(seq, epoch)?;
        }
        Ok(record)
    }

    /// Writes `state.line` (record `seq`, hashing to `hash`) and, outside `batch`, seals it;
    /// on any failure rolls the log back, so the record is not in it.
    fn write_record(&self, state: &mut State, seq: u64, hash: &str) -> Result<(), HatchError> {
        self.recover(state, seq)?;
        let file = state.file.as_ref().expect("a log with a file");
        if !state.append_locked {
            lock_appends(&file.file, Share::Exclusive).map_err(|source| {
                HatchError::AppendLock {
                    path: file.path.clone(),
                    source,
                }
            })?;
            state.append_locked = true;
        }
        let before = file.len;
        if let Err(source) = self.disk.write(&file.file, &state.line) {
            let err = HatchError::Write {
                seq,
                path: file.path.clone(),
                source,
            };
            // Only this line is cut: in `batch` the records before it may still commit.
            self.cut_back(state, before, false);
            return Err(err);
        }
        let file = state.file.as_mut().expect("a log with a file");
        file.len += state.line.len() as u64;
        let len = file.len;
        let result = match self.sync {
            SyncMode::Batch => return Ok(()),
            SyncMode::None => self.update_seal(seq, hash, false),
            SyncMode::Always => match self.disk.sync(&file.file) {
                Ok(()) => self.update_seal(seq, hash, true),
                Err(source) => Err((
                    HatchError::Sync {
                        seq,
                        path: file.path.clone(),
                        source,
                    },
                    false,
                )),
            },
        };
        match result {
            Ok(()) => {
                state.sealed = Sealed {
                    records: seq,
                    last_hash: hash.to_owned(),
                    len,
                };
                Ok(())
            }
            Err((err, seal_touched)) => {
                let to = state.sealed.len;
                self.cut_back(state, to, seal_touched);
                Err(err)
            }
        }
    }

    /// Replaces the seal with one covering `records` records ending in `hash`; on failure
    /// the error and whether the seal on disk may have changed (always: it is put back).
    fn update_seal(&self, records: u64, hash: &str, sync: bool) -> Result<(), (HatchError, bool)> {
        match &self.seal {
            Some(seal) => seal
                .update(self.disk.as_ref(), records, hash, sync)
                .map_err(|source| (seal.error(records, source), true)),
            None => Ok(()),
        }
    }

    /// Rolls the log back to `len` bytes, putting back the seal of `state.sealed` first when
    /// `seal_touched`. What the disk refuses is left in `state.broken` for the next append.
    fn cut_back(&self, state: &mut State, len: u64, seal_touched: bool) {
        let seal_uncertain =
            seal_touched || state.broken.as_ref().is_some_and(|b| b.seal_uncertain);
        let cut_to = state.broken.as_ref().map_or(len, |b| b.cut_to.min(len));
        state.broken = Some(Broken {
            cut_to,
            seal_uncertain,
            reason: String::new(),
        });
        let path = self.path.as_deref().unwrap_or(Path::new("?")).display();
        match self.finish_rollback(state) {
            Ok(()) => tracing::warn!(
                "hatch log {path}: an append failed; the log is cut back to {} bytes ({} sealed records), nothing refused stays in it",
                state.file.as_ref().map_or(0, |f| f.len),
                state.sealed.records
            ),
            Err(reason) => tracing::error!(
                "hatch log {path}: a refused record could not be cut off yet: {reason}; appends are refused until it can be"
            ),
        }
    }

    /// Does what `state.broken` says is left to undo; clears it when done.
    fn finish_rollback(&self, state: &mut State) -> Result<(), String> {
        let Some(broken) = state.broken.as_mut() else {
            return Ok(());
        };
        let file = state.file.as_mut().expect("a log with a file");
        if broken.seal_uncertain {
            let sync = self.sync != SyncMode::None;
            if let Err(e) = self.update_seal(state.sealed.records, &state.sealed.last_hash, sync) {
                broken.reason = format!(
                    "failed to put back the seal of record {}: {}",
                    state.sealed.records, e.0
                );
                return Err(broken.reason.clone());
            }
            broken.seal_uncertain = false;
        }
        if let Err(e) = self.disk.truncate(&file.file, broken.cut_to) {
            broken.reason = format!(
                "failed to cut {} back to {} bytes: {e}",
                file.path.display(),
                broken.cut_to
            );
            return Err(broken.reason.clone());
        }
        file.len = broken.cut_to;
        state.broken = None;
        Ok(())
    }

    /// Before a write: a rollback left unfinished is retried; the append is refused if it
    /// still fails.
    fn recover(&self, state: &mut State, seq: u64) -> Result<(), HatchError> {
        if state.broken.is_none() {
            return Ok(());
        }
        self.finish_rollback(state)
            .map_err(|reason| HatchError::Damaged {
                seq,
                path: self.path.clone().unwrap_or_default(),
                reason,
            })?;
        tracing::warn!(
            "hatch log {}: recovered: the refused record was cut off",
            self.path.as_deref().unwrap_or(Path::new("?")).display()
        );
        Ok(())
    }

    /// Releases the append lock once everything written is sealed (or cut off again).
    fn settle(&self, state: &mut State) {
        let Some(file) = state.file.as_ref() else {
            return;
        };
        if state.append_locked && state.broken.is_none() && file.len == state.sealed.len {
            // Closing the log releases it anyway; a failure here only delays readers.
            let _ = unlock_appends(&file.file);
            state.append_locked = false;
        }
    }

    /// `batch`: waits until a group commit covers `seq` (written in `epoch`), leading one if
    /// none is under way. The leader syncs the log, then seals everything written so far, so a
    /// seal on disk never covers a record that is not. A failed commit rolls the log back to
    /// the last commit: every record after it is refused.
    fn commit_through(&self, seq: u64, epoch: u64) -> Result<(), HatchError> {
        let lock_commit = || self.commit.lock().unwrap_or_else(PoisonError::into_inner);
        let cut = || HatchError::Sync {
            seq,
            path: self.path.clone().unwrap_or_default(),
            source: io::Error::other(
                "the group commit that would have covered it failed, and the record was cut off again",
            ),
        };
        let mut commit = lock_commit();
        loop {
            // The epoch first: after a rollback seqs are given again, so a later commit may
            // cover this seq with another record.
            if epoch < commit.epoch {
                let kept = commit.kept[usize::try_from(epoch).unwrap_or(usize::MAX)];
                return if seq <= kept { Ok(()) } else { Err(cut()) };
            }
            if commit.synced >= seq {
                return Ok(());
            }
            if !commit.syncing {
                commit.syncing = true;
                break;
            }
            commit = self
                .committed
                .wait(commit)
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(commit);
        let (through, last_hash, len) = {
            let state = self.lock();
            let len = state.file.as_ref().map_or(0, |f| f.len);
            (state.next_seq - 1, state.last_hash.clone(), len)
        };
        let result = (|| {
            if let Some(handle) = &self.sync_handle {
                self.disk.sync(handle).map_err(|source| {
                    (
                        HatchError::Sync {
                            seq,
                            path: self.path.clone().unwrap_or_default(),
                            source,
                        },
                        false,
                    )
                })?;
            }
            self.update_seal(through, &last_hash, true)
        })();
        let (new_epoch, kept) = {
            let mut state = self.lock();
            match &result {
                Ok(()) => {
                    state.sealed = Sealed {
                        records: through,
                        last_hash,
                        len,
                    };
                }
                Err((_, seal_touched)) => {
                    let to = state.sealed.len;
                    self.cut_back(&mut state, to, *seal_touched);
                    state.next_seq = state.sealed.records + 1;
                    state.last_hash = state.sealed.last_hash.clone();
                    state.epoch += 1;
                }
            }
            self.settle(&mut state);
            self.room.notify_all();
            (state.epoch, state.sealed.records)
        };
        let mut commit = lock_commit();
        commit.syncing = false;
        if new_epoch > commit.epoch {
            commit.kept.push(kept);
            commit.epoch = new_epoch;
        }
        if result.is_ok() {
            commit.synced = commit.synced.max(through);
        }
        self.committed.notify_all();
        result.map_err(|(e, _)| e)
    }

    /// A snapshot of every record of the chain so far (read back from the file, when the log
    /// has one).
    pub fn records(&self) -> Result<Vec<Record>, HatchError> {
        Self::records_of(&self.lock())
    }

    /// Under the state lock, so the file ends on a whole record.
    fn records_of(state: &State) -> Result<Vec<Record>, HatchError> {
        match &state.file {
            Some(file) => read_file(&file.path),
            None => Ok(state.records.clone()),
        }
    }

    /// Records appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Record> {
        let _guard = self.lock();
        self.feed.subscribe()
    }

    /// The records so far and a feed of every later one, with no gap and no overlap between
    /// the two: what a waiter needs to wait on a condition over the whole chain.
    pub fn snapshot_and_subscribe(
        &self,
    ) -> Result<(Vec<Record>, broadcast::Receiver<Record>), HatchError> {
        let guard = self.lock();
        Ok((Self::records_of(&guard)?, self.feed.subscribe()))
    }

    /// `batch`: how many appends wait for a commit to leave room beyond the seal.
    #[cfg(test)]
    pub(super) fn waiting_for_room(&self) -> u64 {
        self.waiting_for_room.load(Ordering::SeqCst)
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State only changes after the write succeeded, so a panic elsewhere while holding the
        // lock cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// Records written (and not cut off again) beyond what the seal on disk covers.
    fn unsealed(&self) -> u64 {
        (self.next_seq - 1).saturating_sub(self.sealed.records)
    }
}

impl fmt::Debug for Hatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hatch").field("path", &self.path).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hatch::fixtures::{file_lines, play_events, write_log};
    use crate::hatch::{EventKind, verify_file};
    use serde_json::json;

    #[test]
    fn append_then_verify_file_round_trips() {
        let (_dir, path, records) = write_log(9);
        let summary = verify_file(&path).expect("valid chain");
        assert_eq!(summary.records, 9);
        assert_eq!(summary.last_hash, records[8].hash);
        assert_eq!(read_file(&path).expect("read"), records);
        for (line, record) in file_lines(&path).iter().zip(&records) {
            // The spliced line must be exactly what serde makes of the record.
            assert_eq!(line, &serde_json::to_string(record).expect("encode"));
            assert_eq!(record.compute_hash(), record.hash);
            assert!(
                OffsetDateTime::parse(&record.ts, &time::format_description::well_known::Rfc3339)
                    .is_ok()
            );
            assert!(record.ts.ends_with('Z'));
        }
        assert_eq!(records[3].kind(), Some(EventKind::NodeSucceeded));
        assert_eq!(records[3].subject.node_id.as_deref(), Some("node-1"));
    }

    #[test]
    fn chain_starts_at_genesis_and_links_each_record() {
        let hatch = Hatch::in_memory();
        let records: Vec<Record> = play_events()
            .into_iter()
            .map(|e| hatch.append(e).expect("append"))
            .collect();
        assert_eq!(records[0].seq, 1);
        assert_eq!(records[0].prev, GENESIS);
        assert_eq!(GENESIS.len(), 64);
        for pair in records.windows(2) {
            assert_eq!(pair[1].seq, pair[0].seq + 1);
            assert_eq!(pair[1].prev, pair[0].hash);
        }
        assert_eq!(hatch.records().expect("read back"), records);
    }

    #[test]
    fn reopening_continues_the_chain() {
        let (dir, path, first) = write_log(2);
        let hatch = Hatch::with_file(&path).expect("reopen");
        assert_eq!(hatch.records().expect("read back"), first);
        let third = hatch
            .append(Event::new(EventKind::RunStarted, "admin"))
            .expect("append");
        assert_eq!(third.seq, 3);
        assert_eq!(third.prev, first[1].hash);
        drop(hatch);
        assert_eq!(verify_file(&path).expect("valid").records, 3);
        drop(dir);
    }

    #[test]
    fn reopening_a_torn_log_is_refused() {
        let (_dir, path, _) = write_log(3);
        let content = std::fs::read(&path).expect("read");
        std::fs::write(&path, &content[..content.len() - 10]).expect("tear");
        match Hatch::with_file(&path) {
            Err(HatchError::Refused { source, .. }) => assert_eq!(source.seq, 3),
            other => panic!("expected a refusal, got {other:?}"),
        }
        // Refusing must not have touched the file.
        assert_eq!(
            std::fs::read(&path).expect("read").len(),
            content.len() - 10
        );
    }

    #[test]
    fn a_second_writer_is_refused() {
        let (_dir, path, _) = write_log(1);
        let first = Hatch::with_file(&path).expect("first writer");
        assert!(matches!(
            Hatch::with_file(&path),
            Err(HatchError::Lock { .. })
        ));
        drop(first);
        assert!(Hatch::with_file(&path).is_ok());
    }

    #[test]
    fn data_must_be_an_object() {
        let hatch = Hatch::in_memory();
        let err = hatch
            .append(Event::new(EventKind::Failed, "system").data(json!("docker down")))
            .expect_err("string data");
        assert!(matches!(err, HatchError::DataNotObject { .. }));
        assert!(hatch.records().expect("read back").is_empty());
    }

    #[tokio::test]
    async fn subscribers_see_every_later_record_in_order() {
        let hatch = Hatch::in_memory();
        hatch
            .append(Event::new(EventKind::ProvisioningStarted, "admin"))
            .expect("append");
        let (seen, mut feed) = hatch.snapshot_and_subscribe().expect("snapshot");
        assert_eq!(seen.len(), 1);
        hatch
            .append(Event::new(EventKind::Provisioned, "system"))
            .expect("append");
        let next = feed.recv().await.expect("record");
        assert_eq!(next.seq, 2);
    }
}
