//! One redactor for everything a snapshot shows: volatile values (timestamps, hashes, run ids,
//! the driver name) become fixed placeholders, so snapshots are byte-stable across runs,
//! machines and topologies while the chain's shape stays exact.

use serde::Serialize;
use serde_json::Value;

use crate::hatch::{Record, Subject};

/// Placeholders, so a reviewer sees at a glance what was redacted.
pub const TS: &str = "[ts]";
pub const HASH: &str = "[hash]";
pub const RUN_ID: &str = "[run_id]";
pub const DRIVER: &str = "[driver]";

/// A record as a snapshot shows it, fields in reading order.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Redacted {
    pub seq: u64,
    pub kind: String,
    pub actor: String,
    pub subject: Subject,
    pub data: Value,
    pub ts: &'static str,
    pub prev: &'static str,
    pub hash: &'static str,
}

/// `seq`, `kind`, `actor`, `subject` and `data` kept; `ts`, `prev`, `hash` and run ids
/// replaced; `data.driver` replaced, since the same feature runs on both topologies and must
/// lock the same chain.
pub fn record(r: &Record) -> Redacted {
    let mut subject = r.subject.clone();
    if subject.run_id.is_some() {
        subject.run_id = Some(RUN_ID.into());
    }
    let mut data = r.data.clone();
    if let Some(driver) = data.get_mut("driver") {
        *driver = Value::String(DRIVER.into());
    }
    Redacted {
        seq: r.seq,
        kind: r.kind.clone(),
        actor: r.actor.clone(),
        subject,
        data,
        ts: TS,
        prev: HASH,
        hash: HASH,
    }
}

/// Every record of a chain, renumbered from 1 so a scenario's slice of a shared log snapshots
/// the same as a log of its own.
pub fn chain(records: &[Record]) -> Vec<Redacted> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| Redacted {
            seq: i as u64 + 1,
            ..record(r)
        })
        .collect()
}
