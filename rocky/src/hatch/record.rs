//! HATCH records: the line format of the log, and the canonical encoding a record's hash is
//! taken over. The writer and the verifier both hash through [`Canonical`], so the two cannot
//! drift apart.

use std::borrow::Cow;

use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::event::{EventKind, Subject};

/// `prev` of the first record of every chain: 64 zeros, the hex width of a SHA-256.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

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

    pub(super) fn canonical(&self) -> Canonical<'_> {
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
pub(super) struct Canonical<'a> {
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
    pub(super) fn encode_into(&self, buf: &mut Vec<u8>) {
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
pub(super) struct RecordRef<'a> {
    pub(super) seq: u64,
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
    pub(super) prev: Cow<'a, str>,
    #[serde(borrow)]
    pub(super) hash: Cow<'a, str>,
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
    pub(super) fn canonical(&self) -> Canonical<'_> {
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
pub(super) fn sha256_hex(bytes: &[u8]) -> [u8; 64] {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 64];
    for (pair, byte) in out.chunks_exact_mut(2).zip(digest.iter()) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0f)];
    }
    out
}

pub(super) fn hex_string(hex: &[u8; 64]) -> String {
    // Always ASCII, so the lossy conversion never replaces anything.
    String::from_utf8_lossy(hex).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Map, json};

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
}
