//! The worker-side `kahn/1` encoder, and the deliberate schema [`Drift`] the failure drill
//! injects into it.

use std::fmt;
use std::str::FromStr;

use super::frame::{Field, Frame, SCHEMA};

/// The frame as `kahn/1` compact JSON, fields in contract order.
pub fn encode(frame: &Frame) -> String {
    encode_with(frame, &Drift::None)
}

/// What the worker may do wrong on purpose (the failure drill's "KAHN schema drift" fault):
/// emit another schema version, or rename a field.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum Drift {
    /// Speak `kahn/1` as written.
    #[default]
    None,
    /// Put this string in `schema`, e.g. `kahn/2`.
    Schema(String),
    /// Write field `from` under the name `to`. Frame types without `from` are unaffected
    /// (e.g. `attempt` only drifts NodeAttempt frames).
    RenameField { from: String, to: String },
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Drift::None => f.write_str("none"),
            Drift::Schema(schema) => write!(f, "schema={schema}"),
            Drift::RenameField { from, to } => write!(f, "rename={from}:{to}"),
        }
    }
}

/// Why a drift spec (`none`, `schema=VERSION`, `rename=FROM:TO`) did not parse.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "failed to parse KAHN drift {input:?}: {problem} (expected `none`, `schema=VERSION` or `rename=FROM:TO`)"
)]
pub struct DriftParseError {
    /// The spec as given.
    pub input: String,
    /// What is wrong with it.
    pub problem: String,
}

impl FromStr for Drift {
    type Err = DriftParseError;

    fn from_str(s: &str) -> Result<Drift, DriftParseError> {
        let fail = |problem: String| DriftParseError {
            input: s.to_owned(),
            problem,
        };
        if s == "none" {
            return Ok(Drift::None);
        }
        if let Some(schema) = s.strip_prefix("schema=") {
            if schema.is_empty() {
                return Err(fail("the schema is empty".to_owned()));
            }
            return Ok(Drift::Schema(schema.to_owned()));
        }
        if let Some(rename) = s.strip_prefix("rename=") {
            let Some((from, to)) = rename.split_once(':') else {
                return Err(fail("a rename needs FROM:TO".to_owned()));
            };
            // A drift that changes nothing would make the drill pass for the wrong reason.
            match Field::parse(from) {
                Some(Field::Kiln) | None => {
                    return Err(fail(format!("`{from}` is not a field the worker writes")));
                }
                Some(_) => {}
            }
            if to.is_empty() || to == from {
                return Err(fail(format!("`{to}` is not a new name for `{from}`")));
            }
            return Ok(Drift::RenameField {
                from: from.to_owned(),
                to: to.to_owned(),
            });
        }
        Err(fail("unknown drift".to_owned()))
    }
}

/// The frame as compact JSON, with `drift` applied.
pub fn encode_with(frame: &Frame, drift: &Drift) -> String {
    let schema = match drift {
        Drift::Schema(schema) => schema.as_str(),
        _ => SCHEMA,
    };
    let rename = match drift {
        Drift::RenameField { from, to } => Some((from.as_str(), to.as_str())),
        _ => None,
    };
    let mut out = ObjectWriter::new(rename);
    out.string(Field::Schema, schema);
    out.string(Field::Type, frame.type_name());
    match frame {
        Frame::NodeAttempt {
            run_id,
            node_id,
            seq,
            attempt,
            ts,
        } => {
            out.string(Field::RunId, run_id);
            out.string(Field::NodeId, node_id);
            out.number(Field::Seq, *seq);
            out.number(Field::Attempt, u64::from(*attempt));
            out.string(Field::Ts, ts);
        }
        Frame::NodeTransition {
            run_id,
            node_id,
            seq,
            from,
            to,
            ts,
        } => {
            out.string(Field::RunId, run_id);
            out.string(Field::NodeId, node_id);
            out.number(Field::Seq, *seq);
            out.string(Field::From, from.as_str());
            out.string(Field::To, to.as_str());
            out.string(Field::Ts, ts);
        }
        Frame::RunEnded {
            run_id,
            seq,
            status,
            ts,
        } => {
            out.string(Field::RunId, run_id);
            out.number(Field::Seq, *seq);
            out.string(Field::Status, status.as_str());
            out.string(Field::Ts, ts);
        }
    }
    out.finish()
}

/// Writes one flat JSON object in a fixed key order, which a `Map` would not keep.
struct ObjectWriter<'a> {
    out: String,
    rename: Option<(&'a str, &'a str)>,
}

impl<'a> ObjectWriter<'a> {
    fn new(rename: Option<(&'a str, &'a str)>) -> Self {
        let mut out = String::with_capacity(192);
        out.push('{');
        ObjectWriter { out, rename }
    }

    fn key(&mut self, field: Field) {
        if self.out.len() > 1 {
            self.out.push(',');
        }
        let name = match self.rename {
            Some((from, to)) if from == field.as_str() => to,
            _ => field.as_str(),
        };
        push_json_string(&mut self.out, name);
        self.out.push(':');
    }

    fn string(&mut self, field: Field, value: &str) {
        self.key(field);
        push_json_string(&mut self.out, value);
    }

    fn number(&mut self, field: Field, value: u64) {
        use fmt::Write as _;
        self.key(field);
        // Writing into a String cannot fail.
        let _ = write!(self.out, "{value}");
    }

    fn finish(mut self) -> String {
        self.out.push('}');
        self.out
    }
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut clean = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            '\u{08}' => "\\b",
            '\u{0c}' => "\\f",
            c if u32::from(c) < 0x20 => "",
            _ => continue,
        };
        out.push_str(&s[clean..i]);
        if escape.is_empty() {
            out.push_str(&format!("\\u{:04x}", u32::from(c)));
        } else {
            out.push_str(escape);
        }
        clean = i + c.len_utf8();
    }
    out.push_str(&s[clean..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kahn::fixtures::{TS, frames};
    use crate::kahn::{Rejection, validate};
    use serde_json::Value;

    fn rejected(payload: &str) -> Rejection {
        validate(payload).expect_err("should be rejected")
    }

    #[test]
    fn every_frame_type_round_trips() {
        for frame in frames() {
            let wire = encode(&frame);
            let envelope = validate(&wire).expect("valid");
            assert_eq!(envelope.frame, frame);
            assert_eq!(envelope.kiln, None);
            // Whatever serde_json makes of it agrees on every field.
            let value: Value = serde_json::from_str(&wire).expect("json");
            assert_eq!(value["schema"], SCHEMA);
            assert_eq!(value["type"], frame.type_name());
            assert_eq!(value["seq"], frame.seq());
            assert_eq!(value["run_id"], frame.run_id());
        }
        assert_eq!(
            encode(&frames()[0]),
            format!(
                r#"{{"schema":"kahn/1","type":"NodeAttempt","run_id":"run-1","node_id":"node-1","seq":2,"attempt":1,"ts":"{TS}"}}"#
            )
        );
    }

    #[test]
    fn strings_needing_escapes_round_trip() {
        let frame = Frame::NodeAttempt {
            run_id: "run \"quoted\" \\ back\nslash\u{1} ünï".into(),
            node_id: "n\t1".into(),
            seq: u64::MAX,
            attempt: u32::MAX,
            ts: TS.into(),
        };
        let wire = encode(&frame);
        assert_eq!(validate(&wire).expect("valid").frame, frame);
        for text in [frame.run_id(), "n\t1", "\u{7f}\u{1f}/"] {
            let mut escaped = String::new();
            push_json_string(&mut escaped, text);
            assert_eq!(escaped, serde_json::to_string(text).expect("encode"));
        }
    }

    #[test]
    fn every_drift_yields_a_rejected_frame() {
        let cases = [
            ("schema=kahn/2", "schema \"kahn/2\" is not kahn/1"),
            (
                "rename=node_id:nodeId",
                "unknown field `nodeId` in NodeTransition",
            ),
            (
                "rename=seq:sequence",
                "unknown field `sequence` in NodeTransition",
            ),
            ("rename=type:kind", "missing field `type`"),
        ];
        for (spec, reason) in cases {
            let drift: Drift = spec.parse().expect("drift");
            let wire = encode_with(&frames()[1], &drift);
            assert_eq!(rejected(&wire).reason, reason, "{spec}: {wire}");
        }
        assert_eq!(
            encode_with(&frames()[1], &Drift::None),
            encode(&frames()[1])
        );
    }

    #[test]
    fn drift_specs_parse_and_print() {
        assert_eq!("none".parse::<Drift>(), Ok(Drift::None));
        assert_eq!(
            "schema=kahn/2".parse::<Drift>(),
            Ok(Drift::Schema("kahn/2".into()))
        );
        assert_eq!(
            "rename=node_id:nodeId".parse::<Drift>(),
            Ok(Drift::RenameField {
                from: "node_id".into(),
                to: "nodeId".into()
            })
        );
        for spec in ["none", "schema=kahn/2", "rename=node_id:nodeId"] {
            assert_eq!(spec.parse::<Drift>().expect("drift").to_string(), spec);
        }
        for bad in [
            "",
            "None",
            "schema=",
            "rename=node_id",
            "rename=nodeid:x",
            "rename=node_id:",
            "rename=node_id:node_id",
            "rename=kiln:k",
            "upside-down",
        ] {
            let err = bad.parse::<Drift>().expect_err(bad);
            assert!(
                err.to_string().starts_with("failed to parse KAHN drift"),
                "{err}"
            );
        }
    }
}
