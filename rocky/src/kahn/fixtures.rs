//! Test fixtures shared by the encoder's and the validator's tests: one frame of each type.

use super::{Frame, NodeState, RunStatus};

pub(super) const TS: &str = "2025-03-01T12:00:00.123456Z";

pub(super) fn frames() -> Vec<Frame> {
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
