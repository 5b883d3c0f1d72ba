//! `ralph serve`'s routes (contract §5): their paths and bodies.

use serde::{Deserialize, Serialize};

use crate::kahn::RunStatus;

pub use crate::api::console::RunAccepted;

/// The route paths.
/// A header on the worker's 401 to a bearer signed before the worker started: such a bearer
/// may be a replay of one the worker's previous run accepted, so it is refused, and an honest
/// caller (whose request waited out the restart) signs the request again and resends it once.
pub const SIGN_AGAIN_HEADER: &str = "x-rocky-sign-again";

pub mod paths {
    /// `POST`: submit a run.
    pub const RUNS: &str = "/v1/runs";
    /// `GET`: where a run is (axum pattern); reading it does not renew the follow lease.
    pub const RUN: &str = "/v1/runs/{run_id}";
    /// `GET`: a run's KAHN frames as SSE (axum pattern).
    pub const EVENTS: &str = "/v1/runs/{run_id}/events";
    /// `POST`: cancel a run (its workspace is being torn down) (axum pattern).
    pub const CANCEL: &str = "/v1/runs/{run_id}/cancel";

    /// `POST`: cancel the run a submission started, named by its bearer's nonce, for a caller
    /// that never got an authenticated answer to it (axum pattern).
    pub const CANCEL_SUBMISSION: &str = "/v1/submissions/{nonce}/cancel";

    /// The URL path that cancels the submission signed with `nonce`.
    pub fn cancel_submission(nonce: &str) -> String {
        format!("/v1/submissions/{nonce}/cancel")
    }

    /// The URL path that cancels run `run_id`.
    pub fn cancel(run_id: &str) -> String {
        format!("{RUNS}/{run_id}/cancel")
    }

    /// The URL path of run `run_id`.
    pub fn run(run_id: &str) -> String {
        format!("{RUNS}/{run_id}")
    }

    /// The URL path of run `run_id`'s event stream.
    pub fn events(run_id: &str) -> String {
        format!("{RUNS}/{run_id}/events")
    }
}

/// `POST /v1/runs` body.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubmitRun {
    pub workspace: String,
    pub prompts: Vec<String>,
    pub max_ralph_iters: u32,
}

/// `GET /v1/runs/{run_id}` answer: where the run is on the worker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    pub run_id: String,
    /// `running` until its `RunEnded` is written, then that frame's status.
    pub status: RunStatus,
    /// How many event streams of it are open (each renews its follow lease).
    pub followers: usize,
}
