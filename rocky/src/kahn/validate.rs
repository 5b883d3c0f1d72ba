//! The console-side strict `kahn/1` validator: one payload in, an [`Envelope`] or a
//! [`Rejection`] whose reason names the offending field or value (it ends up in the gap
//! report).

use std::borrow::Cow;

use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::frame::{Envelope, Field, Frame, FrameType, NodeState, RunStatus, SCHEMA};
use super::raw::{Raw, Slots, Top};

/// A frame the validator refused, with what could still be read of it for the gap report.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Rejection {
    /// Why, naming the offending field or value.
    pub reason: String,
    /// The frame's `seq`, if it could be read.
    pub seq: Option<u64>,
    /// The frame's `type`, if it was a string (even an unknown one).
    pub frame_type: Option<String>,
}

/// Validates one SSE `data:` payload strictly against `kahn/1`.
///
/// Checked in this order, so the reason names the most fundamental problem: JSON at all, an
/// object, no key twice, `schema` exactly `kahn/1`, a known `type`, no field outside the
/// type's set (`kiln` aside, which must be an object), then each field present with the
/// right type and value range.
pub fn validate(data: &str) -> Result<Envelope, Rejection> {
    let top: Top<'_> = serde_json::from_str(data).map_err(|e| Rejection {
        reason: format!("frame is not valid JSON: {e}"),
        seq: None,
        frame_type: None,
    })?;
    let mut slots = match top {
        Top::Object(slots) => slots,
        Top::Other(kind) => {
            return Err(Rejection {
                reason: format!("frame is not a JSON object, got {kind}"),
                seq: None,
                frame_type: None,
            });
        }
    };
    let reject = Rejector {
        seq: match slots.get(Field::Seq) {
            Some(Raw::U64(seq)) => Some(*seq),
            _ => None,
        },
        frame_type: match slots.get(Field::Type) {
            Some(Raw::Str(ty)) => Some(ty.clone().into_owned()),
            _ => None,
        },
    };
    if let Some(duplicate) = &slots.duplicate {
        return Err(reject.with(format!("duplicate field `{duplicate}`")));
    }
    match slots.get(Field::Schema) {
        None => return Err(reject.with("missing field `schema`".to_owned())),
        Some(Raw::Str(schema)) if schema == SCHEMA => {}
        Some(Raw::Str(schema)) => {
            return Err(reject.with(format!("schema {:?} is not {SCHEMA}", &**schema)));
        }
        Some(other) => {
            return Err(reject.with(format!(
                "field `schema` must be a string, got {}",
                other.describe()
            )));
        }
    }
    let ty = match slots.get(Field::Type) {
        None => return Err(reject.with("missing field `type`".to_owned())),
        Some(Raw::Str(name)) => match FrameType::parse(name) {
            Some(ty) => ty,
            None => return Err(reject.with(format!("unknown frame type {:?}", &**name))),
        },
        Some(other) => {
            return Err(reject.with(format!(
                "field `type` must be a string, got {}",
                other.describe()
            )));
        }
    };
    if let Some(unknown) = &slots.unknown {
        return Err(reject.with(format!("unknown field `{unknown}` in {ty}")));
    }
    // Fields of kahn/1 that belong to another frame type are just as foreign to this one.
    if let Some(foreign) = Field::ALL.into_iter().find(|&field| {
        !matches!(field, Field::Schema | Field::Type | Field::Kiln)
            && !ty.fields().contains(&field)
            && slots.get(field).is_some()
    }) {
        return Err(reject.with(format!("unknown field `{}` in {ty}", foreign.as_str())));
    }
    let kiln = match slots.kiln.take() {
        None => None,
        Some(kiln @ Value::Object(_)) => Some(kiln),
        Some(other) => {
            return Err(reject.with(format!(
                "field `kiln` must be an object, got {}",
                Raw::from_value(&other).describe()
            )));
        }
    };
    let mut fields = FieldReader {
        slots: &mut slots,
        ty,
        reject: &reject,
    };
    let frame = match ty {
        FrameType::NodeAttempt => Frame::NodeAttempt {
            run_id: fields.id(Field::RunId)?,
            node_id: fields.id(Field::NodeId)?,
            seq: fields.seq()?,
            attempt: fields.attempt()?,
            ts: fields.ts()?,
        },
        FrameType::NodeTransition => Frame::NodeTransition {
            run_id: fields.id(Field::RunId)?,
            node_id: fields.id(Field::NodeId)?,
            seq: fields.seq()?,
            from: fields.node_state(Field::From)?,
            to: fields.node_state(Field::To)?,
            ts: fields.ts()?,
        },
        FrameType::RunEnded => Frame::RunEnded {
            run_id: fields.id(Field::RunId)?,
            seq: fields.seq()?,
            status: fields.run_status()?,
            ts: fields.ts()?,
        },
    };
    Ok(Envelope { frame, kiln })
}

/// What every rejection of one frame carries besides its reason.
struct Rejector {
    seq: Option<u64>,
    frame_type: Option<String>,
}

impl Rejector {
    fn with(&self, reason: String) -> Rejection {
        Rejection {
            reason,
            seq: self.seq,
            frame_type: self.frame_type.clone(),
        }
    }
}

/// Takes the fields of a frame of known type out of its slots, checking each.
struct FieldReader<'s, 'a> {
    slots: &'s mut Slots<'a>,
    ty: FrameType,
    reject: &'s Rejector,
}

impl<'a> FieldReader<'_, 'a> {
    fn take(&mut self, field: Field) -> Result<Raw<'a>, Rejection> {
        self.slots.values[field.index()].take().ok_or_else(|| {
            self.reject
                .with(format!("missing field `{}` in {}", field.as_str(), self.ty))
        })
    }

    fn wrong(&self, field: Field, expected: &str, got: &Raw<'_>) -> Rejection {
        self.reject.with(format!(
            "field `{}` in {} must be {expected}, got {}",
            field.as_str(),
            self.ty,
            got.describe()
        ))
    }

    fn string(&mut self, field: Field) -> Result<Cow<'a, str>, Rejection> {
        match self.take(field)? {
            Raw::Str(s) => Ok(s),
            other => Err(self.wrong(field, "a string", &other)),
        }
    }

    fn id(&mut self, field: Field) -> Result<String, Rejection> {
        let id = self.string(field)?.into_owned();
        if id.is_empty() {
            return Err(self.reject.with(format!(
                "field `{}` in {} must not be empty",
                field.as_str(),
                self.ty
            )));
        }
        Ok(id)
    }

    fn seq(&mut self) -> Result<u64, Rejection> {
        match self.take(Field::Seq)? {
            Raw::U64(seq) => Ok(seq),
            other => Err(self.wrong(Field::Seq, "a non-negative integer", &other)),
        }
    }

    fn attempt(&mut self) -> Result<u32, Rejection> {
        match self.take(Field::Attempt)? {
            Raw::U64(n) if n >= 1 => match u32::try_from(n) {
                Ok(n) => Ok(n),
                Err(_) => Err(self.wrong(
                    Field::Attempt,
                    "an integer from 1 to 4294967295",
                    &Raw::U64(n),
                )),
            },
            other => Err(self.wrong(Field::Attempt, "an integer from 1 to 4294967295", &other)),
        }
    }

    fn ts(&mut self) -> Result<String, Rejection> {
        let ts = self.string(Field::Ts)?.into_owned();
        if OffsetDateTime::parse(&ts, &Rfc3339).is_err() {
            return Err(self.wrong(Field::Ts, "an RFC 3339 timestamp", &Raw::Str(ts.into())));
        }
        Ok(ts)
    }

    fn node_state(&mut self, field: Field) -> Result<NodeState, Rejection> {
        let raw = self.take(field)?;
        if let Raw::Str(s) = &raw
            && let Some(state) = NodeState::parse(s)
        {
            return Ok(state);
        }
        let expected = format!("one of {}", NodeState::names());
        Err(self.wrong(field, &expected, &raw))
    }

    fn run_status(&mut self) -> Result<RunStatus, Rejection> {
        let raw = self.take(Field::Status)?;
        if let Raw::Str(s) = &raw
            && let Some(status) = RunStatus::parse(s)
        {
            return Ok(status);
        }
        let expected = format!("one of {}", RunStatus::names());
        Err(self.wrong(Field::Status, &expected, &raw))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kahn::encode;
    use crate::kahn::fixtures::frames;
    use serde_json::json;

    fn attempt_json() -> serde_json::Map<String, Value> {
        match serde_json::from_str(&encode(&frames()[0])).expect("json") {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    fn rejected(payload: &str) -> Rejection {
        validate(payload).expect_err("should be rejected")
    }

    #[test]
    fn kiln_objects_are_tolerated_and_other_kilns_rejected() {
        let mut map = attempt_json();
        map.insert("kiln".into(), json!({"model": "mock", "tokens": [1, 2]}));
        let envelope = validate(&Value::Object(map.clone()).to_string()).expect("valid");
        assert_eq!(
            envelope.kiln,
            Some(json!({"model": "mock", "tokens": [1, 2]}))
        );
        map.insert("kiln".into(), json!("hot"));
        let rejection = rejected(&Value::Object(map).to_string());
        assert_eq!(
            rejection.reason,
            "field `kiln` must be an object, got \"hot\""
        );
        assert_eq!(rejection.seq, Some(2));
        assert_eq!(rejection.frame_type.as_deref(), Some("NodeAttempt"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let mut map = attempt_json();
        map.insert("nodeId".into(), json!("node-1"));
        let rejection = rejected(&Value::Object(map).to_string());
        assert_eq!(rejection.reason, "unknown field `nodeId` in NodeAttempt");
        // A kahn/1 field of another frame type is foreign too.
        let mut map = attempt_json();
        map.insert("status".into(), json!("failed"));
        assert_eq!(
            rejected(&Value::Object(map).to_string()).reason,
            "unknown field `status` in NodeAttempt"
        );
    }

    #[test]
    fn missing_fields_are_named() {
        for field in ["run_id", "node_id", "seq", "attempt", "ts"] {
            let mut map = attempt_json();
            map.remove(field);
            let rejection = rejected(&Value::Object(map).to_string());
            assert_eq!(
                rejection.reason,
                format!("missing field `{field}` in NodeAttempt")
            );
        }
        let rejection = rejected(r#"{"type":"RunEnded"}"#);
        assert_eq!(rejection.reason, "missing field `schema`");
        assert_eq!(rejection.frame_type.as_deref(), Some("RunEnded"));
        assert_eq!(
            rejected(r#"{"schema":"kahn/1"}"#).reason,
            "missing field `type`"
        );
    }

    #[test]
    fn mistyped_fields_are_named() {
        let cases = [
            (
                "seq",
                json!("2"),
                "field `seq` in NodeAttempt must be a non-negative integer, got \"2\"",
            ),
            (
                "seq",
                json!(-1),
                "field `seq` in NodeAttempt must be a non-negative integer, got -1",
            ),
            (
                "seq",
                json!(2.5),
                "field `seq` in NodeAttempt must be a non-negative integer, got 2.5",
            ),
            (
                "attempt",
                json!(0),
                "field `attempt` in NodeAttempt must be an integer from 1 to 4294967295, got 0",
            ),
            (
                "attempt",
                json!(4_294_967_296_u64),
                "field `attempt` in NodeAttempt must be an integer from 1 to 4294967295, got 4294967296",
            ),
            (
                "run_id",
                json!(7),
                "field `run_id` in NodeAttempt must be a string, got 7",
            ),
            (
                "node_id",
                json!(""),
                "field `node_id` in NodeAttempt must not be empty",
            ),
            (
                "ts",
                json!("yesterday"),
                "field `ts` in NodeAttempt must be an RFC 3339 timestamp, got \"yesterday\"",
            ),
            (
                "ts",
                json!(null),
                "field `ts` in NodeAttempt must be a string, got null",
            ),
        ];
        for (field, value, reason) in cases {
            let mut map = attempt_json();
            map.insert(field.into(), value);
            assert_eq!(rejected(&Value::Object(map).to_string()).reason, reason);
        }
        let transition = encode(&frames()[1]).replace("\"succeeded\"", "\"done\"");
        assert_eq!(
            rejected(&transition).reason,
            "field `to` in NodeTransition must be one of pending, running, succeeded, failed, got \"done\""
        );
        let ended = encode(&frames()[2]).replace("\"failed\"", "true");
        assert_eq!(
            rejected(&ended).reason,
            "field `status` in RunEnded must be one of running, succeeded, failed, cancelled, got true"
        );
    }

    #[test]
    fn other_schemas_types_and_non_json_are_rejected() {
        let other = encode(&frames()[2]).replace("kahn/1", "kahn/2");
        let rejection = rejected(&other);
        assert_eq!(rejection.reason, "schema \"kahn/2\" is not kahn/1");
        assert_eq!(rejection.seq, Some(9));
        let unknown = encode(&frames()[2]).replace("RunEnded", "RunExploded");
        let rejection = rejected(&unknown);
        assert_eq!(rejection.reason, "unknown frame type \"RunExploded\"");
        assert_eq!(rejection.frame_type.as_deref(), Some("RunExploded"));
        assert!(
            rejected("{\"schema\":")
                .reason
                .starts_with("frame is not valid JSON")
        );
        assert!(rejected("").reason.starts_with("frame is not valid JSON"));
        assert_eq!(
            rejected("[1]").reason,
            "frame is not a JSON object, got an array"
        );
        assert_eq!(
            rejected(r#"{"schema":1,"type":"RunEnded"}"#).reason,
            "field `schema` must be a string, got 1"
        );
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let wire = encode(&frames()[0]).replacen("\"seq\":2", "\"seq\":2,\"seq\":3", 1);
        assert_eq!(rejected(&wire).reason, "duplicate field `seq`");
    }
}
