//! The worker-side `kahn/1` encoder, with the encoding options a producer can be run with.

use super::frame::{Field, Frame, SCHEMA};

/// The frame as `kahn/1` compact JSON, fields in contract order.
pub fn encode(frame: &Frame) -> String {
    encode_with(frame, &Encoding::default())
}

/// How a producer spells its frames. The default is `kahn/1` as written; the options exist so
/// that a producer speaking another version, or naming a field differently, can be run against
/// the console (which must refuse such frames: the failure drill's schema drift).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoding {
    /// The `schema` written into every frame; `None` is `kahn/1`.
    pub schema: Option<String>,
    /// A field written under another name: `(from, to)`. Frame types without `from` are
    /// unaffected.
    pub rename: Option<(String, String)>,
}

/// The frame as compact JSON, spelt as `encoding` says.
pub fn encode_with(frame: &Frame, encoding: &Encoding) -> String {
    let schema = encoding.schema.as_deref().unwrap_or(SCHEMA);
    let rename = encoding
        .rename
        .as_ref()
        .map(|(from, to)| (from.as_str(), to.as_str()));
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
        use std::fmt::Write as _;
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
    fn every_other_encoding_yields_a_rejected_frame() {
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
            let encoding = match spec.split_once('=') {
                Some(("schema", v)) => Encoding {
                    schema: Some(v.to_owned()),
                    rename: None,
                },
                Some(("rename", v)) => {
                    let (from, to) = v.split_once(':').expect("FROM:TO");
                    Encoding {
                        schema: None,
                        rename: Some((from.to_owned(), to.to_owned())),
                    }
                }
                _ => unreachable!("{spec}"),
            };
            let wire = encode_with(&frames()[1], &encoding);
            assert_eq!(rejected(&wire).reason, reason, "{spec}: {wire}");
        }
        assert_eq!(
            encode_with(&frames()[1], &Encoding::default()),
            encode(&frames()[1])
        );
    }
}
