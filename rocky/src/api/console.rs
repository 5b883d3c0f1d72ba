//! The console's routes (contract §4): their paths and bodies.

use serde::{Deserialize, Serialize};

use crate::api::hearth::Status;
use crate::kahn::{NodeState, RunStatus};

/// The route paths, as axum patterns and as URLs for one workspace or run.
pub mod paths {
    /// `POST`: provision a workspace.
    pub const WORKSPACES: &str = "/api/hearth/workspaces";
    /// `GET`, `DELETE`: one workspace (axum pattern).
    pub const WORKSPACE: &str = "/api/hearth/workspaces/{slug}";
    /// `POST`: submit a run.
    pub const RUNS: &str = "/api/ralph/runs";
    /// `GET`: one run (axum pattern).
    pub const RUN: &str = "/api/ralph/runs/{run_id}";
    /// Liveness.
    pub const HEALTHZ: &str = "/healthz";

    /// The URL path of workspace `slug`.
    pub fn workspace(slug: &str) -> String {
        format!("{WORKSPACES}/{slug}")
    }

    /// The URL path of run `run_id`.
    pub fn run(run_id: &str) -> String {
        format!("{RUNS}/{run_id}")
    }
}

/// `POST /api/hearth/workspaces` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateWorkspace {
    pub slug: String,
    pub tier: String,
}

/// `POST /api/ralph/runs` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRequest {
    pub workspace: String,
    pub prompts: Vec<String>,
    /// The RALPH iteration cap per node; the console's default when omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ralph_iters: Option<u32>,
}

/// `POST /api/ralph/runs` answer (202).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunAccepted {
    pub run_id: String,
}

/// A workspace as the console shows it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct WorkspaceView {
    pub slug: String,
    pub tier: String,
    pub status: Status,
}

/// `DELETE /api/hearth/workspaces/{slug}` answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct TeardownView {
    pub slug: String,
    pub status: Status,
}

/// One node of a run as the console saw it in the stream.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeView {
    pub node_id: String,
    pub status: NodeState,
    pub attempts: u32,
}

/// A KAHN frame the console refused, kept as evidence for the gap report.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RejectedFrame {
    /// The SSE `id:` it came with.
    pub event_id: Option<String>,
    pub reason: String,
}

/// A record about a run that could not be appended to the HATCH log.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UnrecordedRecord {
    /// Its event kind, e.g. `ralph.node.succeeded`.
    pub kind: String,
    /// Why the append failed.
    pub error: String,
}

/// `GET /api/ralph/runs/{run_id}` answer.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct RunView {
    pub run_id: String,
    pub workspace: String,
    pub status: RunStatus,
    pub nodes: Vec<NodeView>,
    /// Frames refused (not authenticated, or not `kahn/1`), with why: the first 32.
    pub rejected_frames: Vec<RejectedFrame>,
    /// How many frames were refused in all (`rejected_frames` keeps only the first ones).
    #[serde(default)]
    pub rejected_total: u64,
    /// Records about the run the HATCH log refused to append (the follower has no caller to
    /// refuse): each is a gap in the log, so the run never reads `succeeded` with one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unrecorded: Vec<UnrecordedRecord>,
    /// Why the run ended the way it did, when the stream itself went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
