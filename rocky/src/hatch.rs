//! HATCH — the audit log of the play (contract §2): one hash-chained JSON record per line.
//!
//! This module owns the event kinds (the only place their names are spelled), the acts they
//! belong to, the record format and its canonical hash encoding, the single writer of a chain
//! ([`Hatch`]) and the verifier that names the first bad `seq` ([`verify_bytes`],
//! [`verify_file`]).
//!
//! Durability promise: [`Hatch::append`] hands each record to the operating system (one
//! `write` of the whole line, newline included) before it returns, so a record survives a crash
//! of the process. It does not `fsync`, so a crash of the machine may lose the tail; what is
//! lost is always a suffix, and a torn last line is caught by the verifier, which names its
//! `seq`. A log with a torn tail is never appended to: [`Hatch::with_file`] refuses it.

use std::borrow::Cow;
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use serde::de::{self, Unexpected, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use tokio::sync::broadcast;

/// `prev` of the first record of every chain: 64 zeros, the hex width of a SHA-256.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Microseconds, fixed width: RFC 3339, UTC, and lexically sortable like the chain itself.
const TS_FORMAT: &[BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// How many records a subscriber may fall behind before it starts missing some.
const SUBSCRIBER_BACKLOG: usize = 1024;

/// Below this size a verification is faster on one thread than the cost of spawning more.
const PARALLEL_VERIFY_MIN_BYTES: usize = 256 * 1024;

/// Upper bound on verifier threads: hashing is per line, but the gain flattens quickly.
const MAX_VERIFY_THREADS: usize = 8;

/// What happened, as the chain spells it. The names below are the only place in the crate
/// where these strings appear; everything else goes through [`EventKind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// Console accepted a provision request and is calling hearth.
    ProvisioningStarted,
    /// Hearth returned a DeploymentRef with status `ready`.
    Provisioned,
    /// Provisioning failed; `data.reason` says why.
    Failed,
    /// The worker accepted the submission and returned a run_id.
    RunStarted,
    /// A KAHN node reached `succeeded`; `data.attempts`.
    NodeSucceeded,
    /// A KAHN node reached `failed`; `data.attempts`.
    NodeFailed,
    /// The run finished; `data.status`.
    RunEnded,
    /// Console accepted a delete and is calling hearth Teardown.
    DecommissionStarted,
    /// Hearth reports the tier torn down.
    Decommissioned,
}

impl EventKind {
    /// Every kind, in the order the play emits them.
    pub const ALL: [EventKind; 9] = [
        EventKind::ProvisioningStarted,
        EventKind::Provisioned,
        EventKind::Failed,
        EventKind::RunStarted,
        EventKind::NodeSucceeded,
        EventKind::NodeFailed,
        EventKind::RunEnded,
        EventKind::DecommissionStarted,
        EventKind::Decommissioned,
    ];

    /// The wire name, e.g. `hearth.provisioned`.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ProvisioningStarted => "hearth.provisioning_started",
            EventKind::Provisioned => "hearth.provisioned",
            EventKind::Failed => "hearth.failed",
            EventKind::RunStarted => "ralph.run.started",
            EventKind::NodeSucceeded => "ralph.node.succeeded",
            EventKind::NodeFailed => "ralph.node.failed",
            EventKind::RunEnded => "ralph.run.ended",
            EventKind::DecommissionStarted => "hearth.decommission_started",
            EventKind::Decommissioned => "hearth.decommissioned",
        }
    }

    /// The kind with this wire name, if any.
    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|kind| kind.as_str() == s)
    }

    /// The act of the play in which this event fires.
    pub fn act(self) -> Act {
        match self {
            EventKind::ProvisioningStarted | EventKind::Provisioned | EventKind::Failed => {
                Act::Provision
            }
            EventKind::RunStarted => Act::Submit,
            EventKind::NodeSucceeded | EventKind::NodeFailed | EventKind::RunEnded => Act::Stream,
            EventKind::DecommissionStarted | EventKind::Decommissioned => Act::Teardown,
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

// On the wire a kind is its name, so records stay readable by anything that reads JSON.
impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for EventKind {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KindVisitor;

        impl Visitor<'_> for KindVisitor {
            type Value = EventKind;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a HATCH event kind")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<EventKind, E> {
                EventKind::parse(v).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &self))
            }
        }

        deserializer.deserialize_str(KindVisitor)
    }
}

/// The six acts of the play, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Act {
    Spawn,
    Provision,
    Submit,
    Stream,
    Teardown,
    Status,
}

impl Act {
    /// Every act, in the order the play performs them.
    pub const ALL: [Act; 6] = [
        Act::Spawn,
        Act::Provision,
        Act::Submit,
        Act::Stream,
        Act::Teardown,
        Act::Status,
    ];

    /// The act's number in the play, 1 to 6.
    pub fn number(self) -> u8 {
        match self {
            Act::Spawn => 1,
            Act::Provision => 2,
            Act::Submit => 3,
            Act::Stream => 4,
            Act::Teardown => 5,
            Act::Status => 6,
        }
    }

    /// What the act is called when the play is printed.
    pub fn name(self) -> &'static str {
        match self {
            Act::Spawn => "spawn hearth",
            Act::Provision => "provision",
            Act::Submit => "submit run",
            Act::Stream => "stream nodes",
            Act::Teardown => "teardown",
            Act::Status => "status",
        }
    }
}

impl fmt::Display for Act {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a record is about; only the keys that are relevant are present on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The workspace slug, for every event of a workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The RALPH run, for run and node events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The KAHN node, for node events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// An event as its producer states it; [`Hatch::append`] turns it into a chained [`Record`].
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The principal that caused it ("admin", "system").
    pub actor: String,
    /// What it happened to.
    pub subject: Subject,
    /// Kind-specific details; a JSON object, never a secret.
    pub data: Value,
}

impl Event {
    /// An event with an empty subject and empty `data` object.
    pub fn new(kind: EventKind, actor: impl Into<String>) -> Self {
        Event {
            kind,
            actor: actor.into(),
            subject: Subject::default(),
            data: Value::Object(Map::new()),
        }
    }

    /// Sets `subject.workspace`.
    pub fn workspace(mut self, workspace: impl Into<String>) -> Self {
        self.subject.workspace = Some(workspace.into());
        self
    }

    /// Sets `subject.run_id`.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.subject.run_id = Some(run_id.into());
        self
    }

    /// Sets `subject.node_id`.
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.subject.node_id = Some(node_id.into());
        self
    }

    /// Sets `data`; [`Hatch::append`] refuses anything but a JSON object.
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
}

/// One line of the log. Field order is the wire order, and serializing a `Record` gives
/// exactly the line the writer stores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// 1-based, contiguous per log.
    pub seq: u64,
    /// When the record was appended, RFC 3339 UTC.
    pub ts: String,
    /// The event kind's wire name; a string so that logs with kinds unknown to this build
    /// still read and verify.
    pub kind: String,
    /// The principal that caused the event.
    pub actor: String,
    /// What the event is about.
    pub subject: Subject,
    /// Kind-specific details.
    pub data: Value,
    /// `hash` of the previous record, [`GENESIS`] for seq 1.
    pub prev: String,
    /// Hex SHA-256 over the canonical encoding of every other field.
    pub hash: String,
}

impl Record {
    /// The kind, if this build knows it.
    pub fn kind(&self) -> Option<EventKind> {
        EventKind::parse(&self.kind)
    }

    /// Hex SHA-256 over the canonical encoding of this record without `hash`.
    pub fn compute_hash(&self) -> String {
        let mut buf = Vec::with_capacity(256);
        self.canonical().encode_into(&mut buf);
        hex_string(&sha256_hex(&buf))
    }

    fn canonical(&self) -> Canonical<'_> {
        Canonical {
            seq: self.seq,
            ts: &self.ts,
            kind: &self.kind,
            actor: &self.actor,
            subject: CanonicalSubject {
                workspace: self.subject.workspace.as_deref(),
                run_id: self.subject.run_id.as_deref(),
                node_id: self.subject.node_id.as_deref(),
            },
            data: Sorted(&self.data),
            prev: &self.prev,
        }
    }
}

/// The bytes a record's hash is taken over: the record without `hash`, as compact JSON with
/// the fields in this fixed order. The same struct serves the writer and the verifier, so the
/// two cannot drift apart.
#[derive(Serialize)]
struct Canonical<'a> {
    seq: u64,
    ts: &'a str,
    kind: &'a str,
    actor: &'a str,
    subject: CanonicalSubject<'a>,
    data: Sorted<'a>,
    prev: &'a str,
}

impl Canonical<'_> {
    /// Appends the canonical bytes to `buf`; the result always ends with `}`.
    fn encode_into(&self, buf: &mut Vec<u8>) {
        // Writing into a Vec cannot fail, and nothing in `Canonical` can refuse to serialize
        // (string keys only; a `Value` cannot hold NaN), so an error here is a bug.
        serde_json::to_writer(buf, self).expect("canonical encoding into memory cannot fail");
    }
}

#[derive(Serialize)]
struct CanonicalSubject<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    workspace: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    run_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node_id: Option<&'a str>,
}

/// `data` with object keys in sorted order, so the hash does not depend on the order in
/// which a producer inserted them. serde_json's map is a `BTreeMap` (this crate does not
/// enable `preserve_order`), so keys already iterate sorted and this costs one comparison per
/// key; the fallback sort only runs if some dependency ever turns `preserve_order` on through
/// feature unification, which would otherwise silently change every hash.
struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            Value::Object(map) if map.keys().is_sorted() => {
                serializer.collect_map(map.iter().map(|(k, v)| (k, Sorted(v))))
            }
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                serializer.collect_map(entries.into_iter().map(|(k, v)| (k, Sorted(v))))
            }
            scalar => scalar.serialize(serializer),
        }
    }
}

/// A record as the verifier reads it: strings borrowed from the line when they need no
/// unescaping, so verifying a large log does not allocate per field.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RecordRef<'a> {
    seq: u64,
    #[serde(borrow)]
    ts: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    actor: Cow<'a, str>,
    #[serde(borrow)]
    subject: SubjectRef<'a>,
    data: Value,
    #[serde(borrow)]
    prev: Cow<'a, str>,
    #[serde(borrow)]
    hash: Cow<'a, str>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SubjectRef<'a> {
    #[serde(default, borrow)]
    workspace: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    run_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    node_id: Option<Cow<'a, str>>,
}

impl RecordRef<'_> {
    fn canonical(&self) -> Canonical<'_> {
        Canonical {
            seq: self.seq,
            ts: &self.ts,
            kind: &self.kind,
            actor: &self.actor,
            subject: CanonicalSubject {
                workspace: self.subject.workspace.as_deref(),
                run_id: self.subject.run_id.as_deref(),
                node_id: self.subject.node_id.as_deref(),
            },
            data: Sorted(&self.data),
            prev: &self.prev,
        }
    }
}

/// Lower-case hex of SHA-256, on the stack: the verifier compares it byte-wise and only
/// allocates a `String` when it reports a mismatch.
fn sha256_hex(bytes: &[u8]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest.iter()) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

fn hex_string(hex: &[u8; 64]) -> String {
    // Always ASCII, so the lossy conversion never replaces anything.
    String::from_utf8_lossy(hex).into_owned()
}

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
        "failed to append hatch record seq {seq} to {}: an earlier failed write left a torn line that could not be cut off",
        path.display()
    )]
    Damaged { seq: u64, path: PathBuf },
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
}

struct State {
    /// The seq the next record gets.
    next_seq: u64,
    /// The hash the next record's `prev` carries.
    last_hash: String,
    /// The in-memory recorder: every record of the chain, the file's earlier ones included.
    records: Vec<Record>,
    /// The append-only recorder, when there is one.
    file: Option<JsonlFile>,
    /// Reused for every line, so appending does not allocate for the encoding.
    line: Vec<u8>,
}

struct JsonlFile {
    /// Where the log lives, for error messages.
    path: PathBuf,
    /// Opened for append and exclusively locked for as long as this writer lives.
    file: File,
    /// Length of the verified content, so a failed write can be cut off again.
    len: u64,
    /// Set when a failed write could not be cut off: the file then ends in a torn line and
    /// any further record would be chained behind garbage.
    damaged: bool,
}

impl JsonlFile {
    fn write_line(&mut self, line: &[u8], seq: u64) -> Result<(), HatchError> {
        if self.damaged {
            return Err(HatchError::Damaged {
                seq,
                path: self.path.clone(),
            });
        }
        // One buffer, one write_all: a concurrent reader never sees half a record unless the
        // process dies inside this call, and then the verifier names the torn line.
        match self.file.write_all(line).and_then(|()| self.file.flush()) {
            Ok(()) => {
                self.len += line.len() as u64;
                Ok(())
            }
            Err(source) => {
                if self.file.set_len(self.len).is_err() {
                    self.damaged = true;
                }
                Err(HatchError::Write {
                    seq,
                    path: self.path.clone(),
                    source,
                })
            }
        }
    }
}

impl Hatch {
    /// A log kept in memory only.
    pub fn in_memory() -> Hatch {
        Hatch::from_parts(Vec::new(), None)
    }

    /// A log recorded to the JSONL file at `path` as well as in memory.
    ///
    /// A missing or empty file starts a new chain. An existing file is verified first and its
    /// chain continued; a file that fails verification (a torn last line after a crash, a
    /// tampered record) is refused rather than appended to. The file stays exclusively locked
    /// while the `Hatch` lives, so two writers cannot interleave one chain.
    pub fn with_file(path: &Path) -> Result<Hatch, HatchError> {
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(|source| HatchError::Open {
                path: path.to_owned(),
                source,
            })?;
        file.try_lock().map_err(|source| HatchError::Lock {
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
        let records = parse_records(&content, path)?;
        let jsonl = JsonlFile {
            path: path.to_owned(),
            file,
            len: content.len() as u64,
            damaged: false,
        };
        Ok(Hatch::from_parts(records, Some(jsonl)))
    }

    fn from_parts(records: Vec<Record>, file: Option<JsonlFile>) -> Hatch {
        let (next_seq, last_hash) = match records.last() {
            Some(last) => (last.seq + 1, last.hash.clone()),
            None => (1, GENESIS.to_owned()),
        };
        let path = file.as_ref().map(|f| f.path.clone());
        let (feed, _) = broadcast::channel(SUBSCRIBER_BACKLOG);
        Hatch {
            state: Mutex::new(State {
                next_seq,
                last_hash,
                records,
                file,
                line: Vec::with_capacity(512),
            }),
            feed,
            path,
        }
    }

    /// The JSONL file this log records to, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// Chains `event` behind the last record and records it. With a file, the line has
    /// reached the operating system when this returns (see the module docs).
    pub fn append(&self, event: Event) -> Result<Record, HatchError> {
        if !event.data.is_object() {
            return Err(HatchError::DataNotObject {
                kind: event.kind,
                found: json_type(&event.data),
            });
        }
        let mut guard = self.lock();
        let state = &mut *guard;
        let seq = state.next_seq;
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
        if let Some(file) = state.file.as_mut() {
            // The stored line is the canonical encoding with `hash` as one more field at the
            // end, which is byte for byte what serializing `Record` gives; splicing it in
            // saves encoding the record twice.
            let closing = state.line.pop();
            debug_assert_eq!(closing, Some(b'}'));
            state.line.extend_from_slice(b",\"hash\":\"");
            state.line.extend_from_slice(&hash);
            state.line.extend_from_slice(b"\"}\n");
            file.write_line(&state.line, seq)?;
        }
        state.next_seq += 1;
        state.last_hash.clone_from(&record.hash);
        state.records.push(record.clone());
        // Sent under the lock so subscribers see records in chain order, and so
        // `snapshot_and_subscribe` neither misses nor repeats one.
        if self.feed.receiver_count() > 0 {
            // Nobody listening any more is not an error for the writer.
            let _ = self.feed.send(record.clone());
        }
        Ok(record)
    }

    /// A snapshot of every record of the chain so far.
    pub fn records(&self) -> Vec<Record> {
        self.lock().records.clone()
    }

    /// Records appended from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Record> {
        let _guard = self.lock();
        self.feed.subscribe()
    }

    /// The records so far and a feed of every later one, with no gap and no overlap between
    /// the two: what a waiter needs to wait on a condition over the whole chain.
    pub fn snapshot_and_subscribe(&self) -> (Vec<Record>, broadcast::Receiver<Record>) {
        let guard = self.lock();
        (guard.records.clone(), self.feed.subscribe())
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // State only changes after the write succeeded, so a panic elsewhere while holding the
        // lock cannot leave it half-updated.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl fmt::Debug for Hatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hatch").field("path", &self.path).finish()
    }
}

/// Every record of a log file, without checking the chain (see [`verify_file`]).
pub fn read_file(path: &Path) -> Result<Vec<Record>, HatchError> {
    let content = std::fs::read(path).map_err(|source| HatchError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_records(&content, path)
}

fn parse_records(content: &[u8], path: &Path) -> Result<Vec<Record>, HatchError> {
    let mut records = Vec::with_capacity(content.len() / 256);
    for (index, line) in lines(content).enumerate() {
        let record = serde_json::from_slice(line.bytes).map_err(|source| HatchError::Parse {
            path: path.to_owned(),
            line: index + 1,
            source,
        })?;
        records.push(record);
    }
    Ok(records)
}

/// What a verified chain holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifySummary {
    /// How many records the chain holds.
    pub records: u64,
    /// `hash` of the last record, [`GENESIS`] for an empty log.
    pub last_hash: String,
}

/// The first place where a chain breaks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct VerifyError {
    /// The first bad seq: the seq the bad line has, or should have had when it cannot be read
    /// or is out of place.
    pub seq: u64,
    /// 1-based line of the file.
    pub line: usize,
    /// What is wrong with it.
    pub reason: VerifyReason,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.reason {
            // The log could not be read at all, so there is no record to point at.
            VerifyReason::Io(message) => f.write_str(message),
            reason => write!(
                f,
                "first bad record: seq {} (line {}): {reason}",
                self.seq, self.line
            ),
        }
    }
}

/// Why a record breaks the chain.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyReason {
    /// The line is not a record, e.g. a partial JSON line left by a torn write.
    #[error("{0}")]
    Unparseable(String),
    /// The last line is a whole record but its newline never reached the file.
    #[error("last line is not terminated by a newline (torn write?)")]
    MissingNewline,
    /// A record is missing, duplicated or out of order.
    #[error("seq gap: expected seq {expected}, found {found}")]
    SeqGap { expected: u64, found: u64 },
    /// `prev` is not the previous record's `hash`.
    #[error("prev mismatch: expected {expected}, found {found}")]
    PrevMismatch { expected: String, found: String },
    /// The record's content does not hash to its stored `hash`: it was altered.
    #[error("hash mismatch (stored {stored}, computed {computed})")]
    HashMismatch { stored: String, computed: String },
    /// The log could not be read.
    #[error("{0}")]
    Io(String),
}

/// Verifies the log file at `path`.
pub fn verify_file(path: &Path) -> Result<VerifySummary, VerifyError> {
    let content = std::fs::read(path).map_err(|e| VerifyError {
        seq: 0,
        line: 0,
        reason: VerifyReason::Io(format!("failed to read hatch log {}: {e}", path.display())),
    })?;
    verify_bytes(&content)
}

/// Verifies a whole log: every line a record, seqs contiguous from 1, each `prev` the
/// previous `hash`, each `hash` recomputed. An empty log is valid.
///
/// Large logs are checked on several threads, each taking a run of whole lines; the
/// threads' runs are stitched together by their boundary records. Any failure is then
/// located by one sequential pass, so the error always names the first bad record.
pub fn verify_bytes(content: &[u8]) -> Result<VerifySummary, VerifyError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MAX_VERIFY_THREADS);
    if threads > 1
        && content.len() >= PARALLEL_VERIFY_MIN_BYTES
        && let Some(summary) = verify_parallel(content, &split_at_lines(content, threads))
    {
        return Ok(summary);
    }
    let scanned = scan(content, Some(Anchor::genesis()))?;
    Ok(scanned.summary())
}

/// The record a run of lines continues from.
#[derive(Clone, Copy)]
struct Anchor {
    seq: u64,
    hash: [u8; 64],
}

impl Anchor {
    fn genesis() -> Anchor {
        Anchor {
            seq: 0,
            hash: [b'0'; 64],
        }
    }
}

/// A run of lines that checked out on its own.
struct Scanned {
    /// Lines (= records) in the run.
    lines: u64,
    /// seq and prev of the first record, when the run was scanned without an anchor.
    first: Option<(u64, String)>,
    /// The run's last record.
    last: Option<Anchor>,
}

impl Scanned {
    fn summary(&self) -> VerifySummary {
        VerifySummary {
            records: self.lines,
            last_hash: hex_string(&self.last.unwrap_or_else(Anchor::genesis).hash),
        }
    }
}

fn verify_parallel(content: &[u8], runs: &[Range<usize>]) -> Option<VerifySummary> {
    let results: Vec<Option<Scanned>> = std::thread::scope(|scope| {
        let pending: Vec<_> = runs
            .iter()
            .enumerate()
            .map(|(index, run)| {
                let chunk = &content[run.clone()];
                let anchor = (index == 0).then(Anchor::genesis);
                let job = move || scan(chunk, anchor).ok();
                // If no thread can be had, the run is simply checked on this one.
                std::thread::Builder::new()
                    .spawn_scoped(scope, job)
                    .map_err(|_| job)
            })
            .collect();
        pending
            .into_iter()
            .map(|handle| match handle {
                Ok(handle) => handle.join().ok().flatten(),
                Err(job) => job(),
            })
            .collect()
    });
    let mut anchor = Anchor::genesis();
    let mut total = 0;
    for scanned in results {
        let scanned = scanned?;
        if let Some((seq, prev)) = &scanned.first
            && (*seq != anchor.seq + 1 || prev.as_bytes() != anchor.hash)
        {
            return None;
        }
        if let Some(last) = scanned.last {
            anchor = last;
        }
        total += scanned.lines;
    }
    Some(VerifySummary {
        records: total,
        last_hash: hex_string(&anchor.hash),
    })
}

/// Cuts `content` into up to `parts` runs of whole lines of about equal size.
fn split_at_lines(content: &[u8], parts: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::with_capacity(parts);
    let mut start = 0;
    for part in 1..=parts {
        if start >= content.len() {
            break;
        }
        let target = (content.len() * part / parts).max(start);
        let end = if part == parts {
            content.len()
        } else {
            content[target..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(content.len(), |i| target + i + 1)
        };
        if end > start {
            runs.push(start..end);
        }
        start = end;
    }
    runs
}

struct Line<'a> {
    bytes: &'a [u8],
    /// False only for a last line whose newline never reached the file.
    terminated: bool,
}

fn lines(content: &[u8]) -> impl Iterator<Item = Line<'_>> {
    let mut rest = content;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let line = match rest.iter().position(|&b| b == b'\n') {
            Some(end) => {
                let line = Line {
                    bytes: &rest[..end],
                    terminated: true,
                };
                rest = &rest[end + 1..];
                line
            }
            None => {
                let line = Line {
                    bytes: rest,
                    terminated: false,
                };
                rest = &[];
                line
            }
        };
        Some(line)
    })
}

/// Checks a run of lines. With an anchor the run is checked against it and errors are exact;
/// without one (a later run of a parallel check) the first record is only noted for
/// stitching, and errors only matter as "something is wrong".
fn scan(chunk: &[u8], anchor: Option<Anchor>) -> Result<Scanned, VerifyError> {
    let mut canonical = Vec::with_capacity(512);
    let mut previous = anchor;
    let mut first = None;
    let mut count = 0u64;
    for (index, line) in lines(chunk).enumerate() {
        count += 1;
        let expected = previous.map_or(0, |p| p.seq + 1);
        let fail = |seq: u64, reason: VerifyReason| VerifyError {
            seq,
            line: index + 1,
            reason,
        };
        let record: RecordRef<'_> = match serde_json::from_slice(line.bytes) {
            Ok(record) => record,
            Err(e) => return Err(fail(expected, unparseable(&line, &e))),
        };
        if previous.is_some() && record.seq != expected {
            return Err(fail(
                expected,
                VerifyReason::SeqGap {
                    expected,
                    found: record.seq,
                },
            ));
        }
        if !line.terminated {
            return Err(fail(record.seq, VerifyReason::MissingNewline));
        }
        canonical.clear();
        record.canonical().encode_into(&mut canonical);
        let computed = sha256_hex(&canonical);
        if record.hash.as_bytes() != computed {
            return Err(fail(
                record.seq,
                VerifyReason::HashMismatch {
                    stored: record.hash.into_owned(),
                    computed: hex_string(&computed),
                },
            ));
        }
        match previous {
            Some(p) if record.prev.as_bytes() != p.hash => {
                return Err(fail(
                    record.seq,
                    VerifyReason::PrevMismatch {
                        expected: hex_string(&p.hash),
                        found: record.prev.into_owned(),
                    },
                ));
            }
            Some(_) => {}
            None => first = Some((record.seq, record.prev.into_owned())),
        }
        previous = Some(Anchor {
            seq: record.seq,
            hash: computed,
        });
    }
    Ok(Scanned {
        lines: count,
        first,
        last: previous.filter(|_| count > 0),
    })
}

fn unparseable(line: &Line<'_>, error: &serde_json::Error) -> VerifyReason {
    use serde_json::error::Category;
    let torn = if line.terminated {
        ""
    } else {
        " (torn write?)"
    };
    let what = if line.bytes.is_empty() {
        "line is empty".to_owned()
    } else if error.classify() == Category::Data {
        format!("line is not a hatch record: {error}")
    } else {
        format!("line is not valid JSON: {error}")
    };
    VerifyReason::Unparseable(format!("{what}{torn}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The play's chain, with the subjects and data the actors give it.
    fn play_events() -> Vec<Event> {
        let mut events = vec![
            Event::new(EventKind::ProvisioningStarted, "admin").workspace("ws-1"),
            Event::new(EventKind::Provisioned, "system")
                .workspace("ws-1")
                .data(json!({"tier": "solo", "services": ["cairnet", "lore"]})),
            Event::new(EventKind::RunStarted, "admin")
                .workspace("ws-1")
                .run_id("run-1"),
        ];
        for n in 1..=4 {
            events.push(
                Event::new(EventKind::NodeSucceeded, "system")
                    .workspace("ws-1")
                    .run_id("run-1")
                    .node_id(format!("node-{n}"))
                    .data(json!({"attempts": n})),
            );
        }
        events.push(
            Event::new(EventKind::RunEnded, "system")
                .workspace("ws-1")
                .run_id("run-1")
                .data(json!({"status": "succeeded"})),
        );
        events
    }

    fn write_log(count: usize) -> (tempfile::TempDir, PathBuf, Vec<Record>) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("hatch.jsonl");
        let hatch = Hatch::with_file(&path).expect("open new log");
        let records = play_events()
            .into_iter()
            .cycle()
            .take(count)
            .map(|event| hatch.append(event).expect("append"))
            .collect();
        (dir, path, records)
    }

    fn file_lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path)
            .expect("read log")
            .lines()
            .map(str::to_owned)
            .collect()
    }

    fn join_lines(lines: &[String]) -> Vec<u8> {
        lines
            .iter()
            .flat_map(|l| format!("{l}\n").into_bytes())
            .collect()
    }

    fn in_memory_log(count: usize) -> Vec<u8> {
        let hatch = Hatch::in_memory();
        let mut content = Vec::new();
        for event in play_events().into_iter().cycle().take(count) {
            let record = hatch.append(event).expect("append");
            serde_json::to_writer(&mut content, &record).expect("encode");
            content.push(b'\n');
        }
        content
    }

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
        assert_eq!(hatch.records(), records);
    }

    #[test]
    fn tampered_data_is_a_hash_mismatch_at_its_seq() {
        let (_dir, path, _) = write_log(5);
        let mut lines = file_lines(&path);
        lines[1] = lines[1].replace("\"tier\":\"solo\"", "\"tier\":\"gold\"");
        let err = verify_bytes(&join_lines(&lines)).expect_err("tampered");
        assert_eq!((err.seq, err.line), (2, 2));
        assert!(
            matches!(err.reason, VerifyReason::HashMismatch { .. }),
            "{err}"
        );
        assert!(
            err.to_string()
                .starts_with("first bad record: seq 2 (line 2): hash mismatch")
        );
    }

    #[test]
    fn rehashed_tampering_breaks_the_next_link() {
        let (_dir, _path, mut records) = write_log(5);
        records[1].data = json!({"tier": "gold"});
        records[1].hash = records[1].compute_hash();
        let lines: Vec<String> = records
            .iter()
            .map(|r| serde_json::to_string(r).expect("encode"))
            .collect();
        let err = verify_bytes(&join_lines(&lines)).expect_err("relinked");
        assert_eq!((err.seq, err.line), (3, 3));
        assert!(
            matches!(err.reason, VerifyReason::PrevMismatch { .. }),
            "{err}"
        );
    }

    #[test]
    fn deleted_line_is_a_seq_gap() {
        let (_dir, path, _) = write_log(5);
        let mut lines = file_lines(&path);
        lines.remove(1);
        let err = verify_bytes(&join_lines(&lines)).expect_err("gap");
        assert_eq!((err.seq, err.line), (2, 2));
        assert_eq!(
            err.reason,
            VerifyReason::SeqGap {
                expected: 2,
                found: 3
            }
        );
    }

    #[test]
    fn swapped_lines_are_reported() {
        let (_dir, path, _) = write_log(5);
        let mut lines = file_lines(&path);
        lines.swap(2, 3);
        let err = verify_bytes(&join_lines(&lines)).expect_err("swapped");
        assert_eq!((err.seq, err.line), (3, 3));
        assert_eq!(
            err.reason,
            VerifyReason::SeqGap {
                expected: 3,
                found: 4
            }
        );
    }

    #[test]
    fn torn_last_line_is_named_by_seq() {
        let (_dir, path, _) = write_log(3);
        let content = std::fs::read(&path).expect("read");
        // Cut in the middle of the third record.
        let third_start = content[..content.len() - 1]
            .iter()
            .rposition(|&b| b == b'\n')
            .expect("three lines")
            + 1;
        let torn = &content[..third_start + 40];
        let err = verify_bytes(torn).expect_err("torn");
        assert_eq!((err.seq, err.line), (3, 3));
        match &err.reason {
            VerifyReason::Unparseable(why) => assert!(why.contains("torn write"), "{why}"),
            other => panic!("expected Unparseable, got {other:?}"),
        }
        // The whole record is there but its newline is not.
        let err = verify_bytes(&content[..content.len() - 1]).expect_err("no newline");
        assert_eq!((err.seq, err.line), (3, 3));
        assert_eq!(err.reason, VerifyReason::MissingNewline);
    }

    #[test]
    fn empty_log_is_valid() {
        let summary = verify_bytes(b"").expect("empty is valid");
        assert_eq!(summary.records, 0);
        assert_eq!(summary.last_hash, GENESIS);
        let err = verify_bytes(b"\n").expect_err("blank line");
        assert_eq!((err.seq, err.line), (1, 1));
    }

    #[test]
    fn a_foreign_field_is_not_a_record() {
        let (_dir, path, _) = write_log(2);
        let mut lines = file_lines(&path);
        lines[1] = lines[1].replacen('{', "{\"extra\":1,", 1);
        let err = verify_bytes(&join_lines(&lines)).expect_err("extra field");
        assert_eq!((err.seq, err.line), (2, 2));
        match &err.reason {
            VerifyReason::Unparseable(why) => assert!(why.contains("extra"), "{why}"),
            other => panic!("expected Unparseable, got {other:?}"),
        }
    }

    #[test]
    fn reopening_continues_the_chain() {
        let (dir, path, first) = write_log(2);
        let hatch = Hatch::with_file(&path).expect("reopen");
        assert_eq!(hatch.records(), first);
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
        assert!(hatch.records().is_empty());
    }

    #[test]
    fn event_kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let wire = serde_json::to_string(&kind).expect("encode");
            assert_eq!(wire, format!("\"{}\"", kind.as_str()));
            assert_eq!(
                serde_json::from_str::<EventKind>(&wire).expect("decode"),
                kind
            );
        }
        assert_eq!(EventKind::parse("hearth.exploded"), None);
        assert!(serde_json::from_str::<EventKind>("\"hearth.exploded\"").is_err());
    }

    #[test]
    fn kinds_belong_to_their_acts() {
        let numbers: Vec<u8> = Act::ALL.into_iter().map(Act::number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
        assert!(Act::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(EventKind::Failed.act(), Act::Provision);
        assert_eq!(EventKind::RunStarted.act(), Act::Submit);
        assert_eq!(EventKind::RunEnded.act(), Act::Stream);
        assert_eq!(EventKind::NodeFailed.act(), Act::Stream);
        assert_eq!(EventKind::Decommissioned.act(), Act::Teardown);
        // The play emits its events in act order.
        assert!(EventKind::ALL.windows(2).all(|w| w[0].act() <= w[1].act()));
    }

    #[test]
    fn canonical_hash_ignores_key_insertion_order() {
        let mut ab = Map::new();
        ab.insert("a".into(), json!(1));
        ab.insert("b".into(), json!({"y": 2, "x": 1}));
        let mut ba = Map::new();
        ba.insert("b".into(), json!({"x": 1, "y": 2}));
        ba.insert("a".into(), json!(1));
        let record = |data: Map<String, Value>| Record {
            seq: 1,
            ts: "2025-01-01T00:00:00.000000Z".into(),
            kind: EventKind::Provisioned.as_str().into(),
            actor: "system".into(),
            subject: Subject::default(),
            data: Value::Object(data),
            prev: GENESIS.into(),
            hash: String::new(),
        };
        let (first, second) = (record(ab), record(ba));
        assert_eq!(first.compute_hash(), second.compute_hash());
        let mut bytes = Vec::new();
        first.canonical().encode_into(&mut bytes);
        assert_eq!(
            String::from_utf8(bytes).expect("utf8"),
            format!(
                "{{\"seq\":1,\"ts\":\"2025-01-01T00:00:00.000000Z\",\"kind\":\"hearth.provisioned\",\
                 \"actor\":\"system\",\"subject\":{{}},\"data\":{{\"a\":1,\"b\":{{\"x\":1,\"y\":2}}}},\
                 \"prev\":\"{GENESIS}\"}}"
            )
        );
    }

    #[test]
    fn large_logs_verify_in_parallel_and_still_name_the_first_bad_record() {
        let content = in_memory_log(4000);
        assert!(content.len() > PARALLEL_VERIFY_MIN_BYTES);
        let summary = verify_bytes(&content).expect("valid");
        assert_eq!(summary.records, 4000);
        // Tamper late in the log, where another thread owns the lines.
        let text = String::from_utf8(content).expect("utf8");
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        lines[3499] = lines[3499].replace("\"attempts\":", "\"attempts\":1");
        let err = verify_bytes(&join_lines(&lines)).expect_err("tampered");
        assert_eq!((err.seq, err.line), (3500, 3500));
    }

    #[test]
    fn a_gap_at_a_run_boundary_is_caught_when_stitching() {
        let content = in_memory_log(4000);
        let runs = split_at_lines(&content, 2);
        // Drop the first line of the second run: each run is fine on its own.
        let boundary = runs[1].start;
        let line_len = content[boundary..]
            .iter()
            .position(|&b| b == b'\n')
            .expect("line")
            + 1;
        let mut gapped = content[..boundary].to_vec();
        gapped.extend_from_slice(&content[boundary + line_len..]);
        let mut stitched_runs = runs.clone();
        stitched_runs[1] = boundary..gapped.len();
        stitched_runs.truncate(2);
        assert!(scan(&gapped[stitched_runs[1].clone()], None).is_ok());
        assert!(verify_parallel(&gapped, &stitched_runs).is_none());
        let missing = content[..boundary].iter().filter(|&&b| b == b'\n').count() as u64 + 1;
        let err = verify_bytes(&gapped).expect_err("gap");
        assert_eq!(err.seq, missing);
        assert_eq!(
            err.reason,
            VerifyReason::SeqGap {
                expected: missing,
                found: missing + 1
            }
        );
    }

    #[test]
    fn split_at_lines_covers_everything_on_line_boundaries() {
        let content = in_memory_log(50);
        for parts in 1..6 {
            let runs = split_at_lines(&content, parts);
            assert_eq!(runs.first().map(|r| r.start), Some(0));
            assert_eq!(runs.last().map(|r| r.end), Some(content.len()));
            for pair in runs.windows(2) {
                assert_eq!(pair[0].end, pair[1].start);
                assert_eq!(content[pair[0].end - 1], b'\n');
            }
        }
    }

    #[tokio::test]
    async fn subscribers_see_every_later_record_in_order() {
        let hatch = Hatch::in_memory();
        hatch
            .append(Event::new(EventKind::ProvisioningStarted, "admin"))
            .expect("append");
        let (seen, mut feed) = hatch.snapshot_and_subscribe();
        assert_eq!(seen.len(), 1);
        hatch
            .append(Event::new(EventKind::Provisioned, "system"))
            .expect("append");
        let next = feed.recv().await.expect("record");
        assert_eq!(next.seq, 2);
    }
}
