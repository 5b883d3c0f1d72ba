//! The `kahn/1` frame types: node states, run statuses, frame types and the keys a frame may
//! carry (the only place their wire names are spelled), and the [`Frame`] itself.

use serde_json::Value;

/// The one schema version this build speaks.
pub const SCHEMA: &str = "kahn/1";

crate::wire_enum! {
    /// Where a KAHN node (one prompt) is; `ALL` is in lifecycle order.
    pub enum NodeState {
        Pending = "pending",
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl NodeState {
    /// Whether the node is done: its `ralph.node.*` event fires on reaching such a state.
    pub fn is_terminal(self) -> bool {
        matches!(self, NodeState::Succeeded | NodeState::Failed)
    }
}

crate::wire_enum! {
    /// Where a run is.
    pub enum RunStatus {
        Running = "running",
        Succeeded = "succeeded",
        Failed = "failed",
        /// Its workspace was torn down while it ran.
        Cancelled = "cancelled",
    }
}

crate::wire_enum! {
    /// The `type` of a frame.
    pub enum FrameType {
        NodeAttempt = "NodeAttempt",
        NodeTransition = "NodeTransition",
        RunEnded = "RunEnded",
    }
}

impl FrameType {
    /// The type's own fields, in wire order (besides `schema` and `type`).
    pub(super) fn fields(self) -> &'static [Field] {
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

crate::wire_enum! {
    /// Every key a `kahn/1` frame may carry; the only place their names are spelled.
    pub enum Field {
        Schema = "schema",
        Type = "type",
        RunId = "run_id",
        NodeId = "node_id",
        Seq = "seq",
        Attempt = "attempt",
        Ts = "ts",
        From = "from",
        To = "to",
        Status = "status",
        Kiln = "kiln",
    }
}

impl Field {
    /// Position in the validator's slots, which are indexed by field.
    pub(super) fn index(self) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

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
