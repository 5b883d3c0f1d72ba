//! One redactor for everything a snapshot shows: volatile values (timestamps, hashes, run ids,
//! the driver name) become fixed placeholders, so snapshots are byte-stable across runs,
//! machines and topologies while the chain's shape stays exact.

use serde::Serialize;
use serde_json::Value;

use rocky::hatch::{Record, Subject};

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

/// Replaces every occurrence of each `(value, placeholder)` pair in the strings of `v`
/// (e.g. a scenario's temporary directory inside an error reason).
fn replace_in(v: &mut Value, paths: &[(String, &'static str)]) {
    match v {
        Value::String(s) => {
            for (value, placeholder) in paths {
                if !value.is_empty() && s.contains(value.as_str()) {
                    *s = s.replace(value.as_str(), placeholder);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(|x| replace_in(x, paths)),
        Value::Object(o) => o.values_mut().for_each(|x| replace_in(x, paths)),
        _ => {}
    }
}

/// `seq`, `kind`, `actor`, `subject` and `data` kept; `ts`, `prev`, `hash` and run ids
/// replaced; `data.driver` replaced, since the same feature runs on both topologies and must
/// lock the same chain; `volatile` strings (temporary paths) replaced inside `data`.
pub fn record_with(r: &Record, volatile: &[(String, &'static str)]) -> Redacted {
    let mut out = record(r);
    replace_in(&mut out.data, volatile);
    out
}

/// [`record_with`] without volatile strings.
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
pub fn chain(records: &[Record], volatile: &[(String, &'static str)]) -> Vec<Redacted> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| Redacted {
            seq: i as u64 + 1,
            ..record_with(r, volatile)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rocky::hatch::{Event, EventKind, Hatch};

    #[test]
    fn volatile_values_become_placeholders() {
        let hatch = Hatch::in_memory();
        hatch
            .append(Event::new(EventKind::Failed, "admin").workspace("w").data(
                serde_json::json!({"reason": "no socket /tmp/x1/e.sock", "driver": "process"}),
            ))
            .unwrap();
        hatch
            .append(Event::new(EventKind::RunStarted, "admin").run_id("run-123"))
            .unwrap();
        let out = chain(
            &hatch.records().expect("records"),
            &[("/tmp/x1".into(), "[work_dir]")],
        );
        assert_eq!(out[0].data["reason"], "no socket [work_dir]/e.sock");
        assert_eq!(out[0].data["driver"], DRIVER);
        assert_eq!(out[1].subject.run_id.as_deref(), Some(RUN_ID));
        assert_eq!((out[0].ts, out[0].hash, out[1].prev), (TS, HASH, HASH));
        let yaml = yaml_serde::to_string(&out).unwrap();
        assert!(
            !yaml.contains("run-123") && !yaml.contains("/tmp/x1"),
            "{yaml}"
        );
    }
}
