//! KAHN — the frames a RALPH run streams as SSE `data:` JSON (contract §6).
//!
//! This module owns the `kahn/1` schema: the frame types, node states and run statuses (the
//! only place their wire names are spelled), the worker-side encoder, the deliberate schema
//! drift the failure drill injects, and the console-side strict validator whose rejection
//! reasons end up in the gap report.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// The one schema version this build speaks.
pub const SCHEMA: &str = "kahn/1";

/// Where a KAHN node (one prompt) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    Pending,
    Running,
    Succeeded,
    Failed,
}

impl NodeState {
    /// Every state, in lifecycle order.
    pub const ALL: [NodeState; 4] = [
        NodeState::Pending,
        NodeState::Running,
        NodeState::Succeeded,
        NodeState::Failed,
    ];

    /// The wire name; matches the serde encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Pending => "pending",
            NodeState::Running => "running",
            NodeState::Succeeded => "succeeded",
            NodeState::Failed => "failed",
        }
    }

    /// The state with this wire name, if any.
    pub fn parse(s: &str) -> Option<NodeState> {
        NodeState::ALL.into_iter().find(|state| state.as_str() == s)
    }

    /// Whether the node is done: its `ralph.node.*` event fires on reaching such a state.
    pub fn is_terminal(self) -> bool {
        matches!(self, NodeState::Succeeded | NodeState::Failed)
    }
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Succeeded,
    Failed,
    /// Its workspace was torn down while it ran.
    Cancelled,
}

impl RunStatus {
    /// Every status.
    pub const ALL: [RunStatus; 4] = [
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    /// The wire name; matches the serde encoding.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    /// The status with this wire name, if any.
    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `type` of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FrameType {
    NodeAttempt,
    NodeTransition,
    RunEnded,
}

impl FrameType {
    /// Every frame type.
    pub const ALL: [FrameType; 3] = [
        FrameType::NodeAttempt,
        FrameType::NodeTransition,
        FrameType::RunEnded,
    ];

    /// The wire name, e.g. `NodeAttempt`.
    pub fn as_str(self) -> &'static str {
        match self {
            FrameType::NodeAttempt => "NodeAttempt",
            FrameType::NodeTransition => "NodeTransition",
            FrameType::RunEnded => "RunEnded",
        }
    }

    /// The type with this wire name, if any.
    pub fn parse(s: &str) -> Option<FrameType> {
        FrameType::ALL.into_iter().find(|ty| ty.as_str() == s)
    }

    /// The type's own fields, in wire order (besides `schema` and `type`).
    fn fields(self) -> &'static [Field] {
        match self {
            FrameType::NodeAttempt => &[
                Field::RunId,
                Field::NodeId,
                Field::Seq,
                Field::Attempt,
                Field::Ts,
            ],
            FrameType::NodeTransition => &[
                Field::RunId,
                Field::NodeId,
                Field::Seq,
                Field::From,
                Field::To,
                Field::Ts,
            ],
            FrameType::RunEnded => &[Field::RunId, Field::Seq, Field::Status, Field::Ts],
        }
    }
}

impl fmt::Display for FrameType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every key a `kahn/1` frame may carry; the only place their names are spelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    Schema,
    Type,
    RunId,
    NodeId,
    Seq,
    Attempt,
    Ts,
    From,
    To,
    Status,
    Kiln,
}

impl Field {
    const ALL: [Field; 11] = [
        Field::Schema,
        Field::Type,
        Field::RunId,
        Field::NodeId,
        Field::Seq,
        Field::Attempt,
        Field::Ts,
        Field::From,
        Field::To,
        Field::Status,
        Field::Kiln,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Field::Schema => "schema",
            Field::Type => "type",
            Field::RunId => "run_id",
            Field::NodeId => "node_id",
            Field::Seq => "seq",
            Field::Attempt => "attempt",
            Field::Ts => "ts",
            Field::From => "from",
            Field::To => "to",
            Field::Status => "status",
            Field::Kiln => "kiln",
        }
    }

    fn parse(s: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|field| field.as_str() == s)
    }

    /// Position in [`Slots::values`].
    fn index(self) -> usize {
        self as usize
    }
}

/// One KAHN frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Frame {
    /// RALPH starts attempt `attempt` (1-based) of a node.
    NodeAttempt {
        run_id: String,
        node_id: String,
        seq: u64,
        attempt: u32,
        ts: String,
    },
    /// A node moves between states.
    NodeTransition {
        run_id: String,
        node_id: String,
        seq: u64,
        from: NodeState,
        to: NodeState,
        ts: String,
    },
    /// The run is over.
    RunEnded {
        run_id: String,
        seq: u64,
        status: RunStatus,
        ts: String,
    },
}

impl Frame {
    /// The frame's position in its run's stream; also its SSE `id:`.
    pub fn seq(&self) -> u64 {
        match self {
            Frame::NodeAttempt { seq, .. }
            | Frame::NodeTransition { seq, .. }
            | Frame::RunEnded { seq, .. } => *seq,
        }
    }

    /// The run the frame belongs to.
    pub fn run_id(&self) -> &str {
        match self {
            Frame::NodeAttempt { run_id, .. }
            | Frame::NodeTransition { run_id, .. }
            | Frame::RunEnded { run_id, .. } => run_id,
        }
    }

    /// The node the frame is about, if it is about one.
    pub fn node_id(&self) -> Option<&str> {
        match self {
            Frame::NodeAttempt { node_id, .. } | Frame::NodeTransition { node_id, .. } => {
                Some(node_id)
            }
            Frame::RunEnded { .. } => None,
        }
    }

    /// When the frame was emitted, RFC 3339.
    pub fn ts(&self) -> &str {
        match self {
            Frame::NodeAttempt { ts, .. }
            | Frame::NodeTransition { ts, .. }
            | Frame::RunEnded { ts, .. } => ts,
        }
    }

    /// The frame's `type`.
    pub fn frame_type(&self) -> FrameType {
        match self {
            Frame::NodeAttempt { .. } => FrameType::NodeAttempt,
            Frame::NodeTransition { .. } => FrameType::NodeTransition,
            Frame::RunEnded { .. } => FrameType::RunEnded,
        }
    }

    /// The wire name of the frame's `type`.
    pub fn type_name(&self) -> &'static str {
        self.frame_type().as_str()
    }
}

/// A validated frame with what rode along with it.
#[derive(Clone, Debug, PartialEq)]
pub struct Envelope {
    /// The frame itself.
    pub frame: Frame,
    /// The optional `kiln` object, passed through untouched; `kahn/1` tolerates but does not
    /// interpret it.
    pub kiln: Option<Value>,
}

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
        let expected = format!("one of {}", names(NodeState::ALL.map(NodeState::as_str)));
        Err(self.wrong(field, &expected, &raw))
    }

    fn run_status(&mut self) -> Result<RunStatus, Rejection> {
        let raw = self.take(Field::Status)?;
        if let Raw::Str(s) = &raw
            && let Some(status) = RunStatus::parse(s)
        {
            return Ok(status);
        }
        let expected = format!("one of {}", names(RunStatus::ALL.map(RunStatus::as_str)));
        Err(self.wrong(Field::Status, &expected, &raw))
    }
}

fn names<const N: usize>(names: [&str; N]) -> String {
    names.join(", ")
}

/// A field value as the validator needs it: scalars kept (strings borrowed from the payload
/// when they need no unescaping), containers only by kind. Reading frames this way instead
/// of into a `Value` avoids a map and an owned string per field, and keeps duplicate keys
/// visible, which a `Value` map would silently collapse.
#[derive(Clone, Debug)]
enum Raw<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(Cow<'a, str>),
    Array,
    Object,
}

impl Raw<'_> {
    fn from_value(value: &Value) -> Raw<'_> {
        match value {
            Value::Null => Raw::Null,
            Value::Bool(b) => Raw::Bool(*b),
            Value::Number(n) => match (n.as_u64(), n.as_i64(), n.as_f64()) {
                (Some(u), _, _) => Raw::U64(u),
                (_, Some(i), _) => Raw::I64(i),
                (_, _, f) => Raw::F64(f.unwrap_or(f64::NAN)),
            },
            Value::String(s) => Raw::Str(Cow::Borrowed(s)),
            Value::Array(_) => Raw::Array,
            Value::Object(_) => Raw::Object,
        }
    }

    /// The value as a reason shows it.
    fn describe(&self) -> String {
        match self {
            Raw::Null => "null".to_owned(),
            Raw::Bool(b) => b.to_string(),
            Raw::U64(n) => n.to_string(),
            Raw::I64(n) => n.to_string(),
            Raw::F64(n) => n.to_string(),
            Raw::Str(s) => format!("{:?}", &**s),
            Raw::Array => "an array".to_owned(),
            Raw::Object => "an object".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Raw<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RawVisitor)
    }
}

struct RawVisitor;

impl<'de> Visitor<'de> for RawVisitor {
    type Value = Raw<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_unit<E>(self) -> Result<Raw<'de>, E> {
        Ok(Raw::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Raw<'de>, E> {
        Ok(Raw::Bool(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Raw<'de>, E> {
        Ok(Raw::U64(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Raw<'de>, E> {
        Ok(Raw::I64(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Raw<'de>, E> {
        Ok(Raw::F64(v))
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Borrowed(v)))
    }

    fn visit_str<E>(self, v: &str) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Raw<'de>, E> {
        Ok(Raw::Str(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Raw<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Raw::Array)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Raw<'de>, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Raw::Object)
    }
}

/// An object key, borrowed when it needs no unescaping.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;

        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }

            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }

        deserializer.deserialize_str(KeyVisitor)
    }
}

/// The fields of one frame object, gathered in one pass. Problems are noted rather than
/// raised, so that serde never turns them into its own messages: the validator decides
/// which one to report.
#[derive(Default)]
struct Slots<'a> {
    /// Values of the known fields, indexed by [`Field::index`]; `kiln` lives apart.
    values: [Option<Raw<'a>>; Field::ALL.len()],
    /// `kiln`, whole, since it is passed through.
    kiln: Option<Value>,
    /// The first key that is no `kahn/1` field at all.
    unknown: Option<Cow<'a, str>>,
    /// The first known key that appeared twice.
    duplicate: Option<&'static str>,
}

impl<'a> Slots<'a> {
    fn get(&self, field: Field) -> Option<&Raw<'a>> {
        self.values[field.index()].as_ref()
    }
}

/// A payload: an object's fields, or the kind of the non-object it was.
#[expect(
    clippy::large_enum_variant,
    reason = "lives on the stack for one validation; boxing would allocate per frame"
)]
enum Top<'a> {
    Object(Slots<'a>),
    Other(&'static str),
}

impl<'de> Deserialize<'de> for Top<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(TopVisitor)
    }
}

struct TopVisitor;

impl<'de> Visitor<'de> for TopVisitor {
    type Value = Top<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a KAHN frame object")
    }

    fn visit_unit<E>(self) -> Result<Top<'de>, E> {
        Ok(Top::Other("null"))
    }

    fn visit_bool<E>(self, _: bool) -> Result<Top<'de>, E> {
        Ok(Top::Other("a boolean"))
    }

    fn visit_u64<E>(self, _: u64) -> Result<Top<'de>, E> {
        Ok(Top::Other("a number"))
    }

    fn visit_i64<E>(self, _: i64) -> Result<Top<'de>, E> {
        Ok(Top::Other("a number"))
    }

    fn visit_f64<E>(self, _: f64) -> Result<Top<'de>, E> {
        Ok(Top::Other("a number"))
    }

    fn visit_str<E>(self, _: &str) -> Result<Top<'de>, E> {
        Ok(Top::Other("a string"))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top<'de>, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Other("an array"))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Top<'de>, A::Error> {
        let mut slots = Slots::default();
        while let Some(Key(key)) = map.next_key()? {
            match Field::parse(&key) {
                Some(Field::Kiln) => {
                    let kiln: Value = map.next_value()?;
                    if slots.kiln.replace(kiln).is_some() {
                        slots.duplicate.get_or_insert(Field::Kiln.as_str());
                    }
                }
                Some(field) => {
                    let value: Raw<'de> = map.next_value()?;
                    if slots.values[field.index()].replace(value).is_some() {
                        slots.duplicate.get_or_insert(field.as_str());
                    }
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                    if slots.unknown.is_none() {
                        slots.unknown = Some(key);
                    }
                }
            }
        }
        Ok(Top::Object(slots))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const TS: &str = "2025-03-01T12:00:00.123456Z";

    fn frames() -> Vec<Frame> {
        vec![
            Frame::NodeAttempt {
                run_id: "run-1".into(),
                node_id: "node-1".into(),
                seq: 2,
                attempt: 1,
                ts: TS.into(),
            },
            Frame::NodeTransition {
                run_id: "run-1".into(),
                node_id: "node-1".into(),
                seq: 3,
                from: NodeState::Running,
                to: NodeState::Succeeded,
                ts: TS.into(),
            },
            Frame::RunEnded {
                run_id: "run-1".into(),
                seq: 9,
                status: RunStatus::Failed,
                ts: TS.into(),
            },
        ]
    }

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

    #[test]
    fn states_and_statuses_match_their_serde_names() {
        for state in NodeState::ALL {
            assert_eq!(serde_json::to_value(state).expect("encode"), state.as_str());
            assert_eq!(NodeState::parse(state.as_str()), Some(state));
        }
        for status in RunStatus::ALL {
            assert_eq!(
                serde_json::to_value(status).expect("encode"),
                status.as_str()
            );
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
        }
        assert!(NodeState::Failed.is_terminal() && NodeState::Succeeded.is_terminal());
        assert!(!NodeState::Pending.is_terminal() && !NodeState::Running.is_terminal());
        for ty in FrameType::ALL {
            assert_eq!(FrameType::parse(ty.as_str()), Some(ty));
        }
    }
}
