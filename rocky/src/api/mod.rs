//! The wire contract's request and response bodies, one file per server, shared by the
//! servers and by the clients (`crate::client`) so a body is declared exactly once.
//!
//! - [`hearth`]: `POST /v1/provision`, `/v1/teardown`, `GET /v1/status/{slug}` (contract §3).
//! - [`console`]: the `/api` routes users call (contract §4) and their paths.
//! - [`worker`]: `POST /v1/runs` of `ralph serve` (contract §5).

pub mod console;
pub mod hearth;
pub mod worker;

use serde::{Deserialize, Serialize};

crate::wire_enum! {
    /// Every `error.code` any server answers (console, hearth, worker): the only place a code's
    /// wire name is written. `docs/authoring.md` lists the console's (tests/authoring_doc.rs).
    pub enum ErrorCode {
        /// The body is not JSON.
        BadJson = "bad_json",
        /// An unknown or missing field, a value out of range, an unreadable body.
        BadRequest = "bad_request",
        /// The slug is not a DNS label.
        BadSlug = "bad_slug",
        /// No such tier (console).
        UnknownTier = "unknown_tier",
        /// A tier profile hearth cannot use (hearth).
        BadProfile = "bad_profile",
        /// No token, an unknown one, or a bearer that did not verify.
        Unauthorized = "unauthorized",
        /// A bearer the worker has seen before.
        Replayed = "replayed",
        /// The worker remembers too many bearers to take another.
        ReplayMemoryFull = "replay_memory_full",
        /// The role lacks the right.
        Forbidden = "forbidden",
        /// No such workspace or run, or no such route.
        NotFound = "not_found",
        /// The route exists but not for this method.
        MethodNotAllowed = "method_not_allowed",
        /// The workspace exists.
        SlugInUse = "slug_in_use",
        /// A run for a workspace that is not `ready`.
        WorkspaceNotReady = "workspace_not_ready",
        /// The worker's submission was cancelled before it arrived.
        Cancelled = "cancelled",
        /// The body is over the server's limit.
        BodyTooLarge = "body_too_large",
        /// The request's header fields are over the server's limit (in number or in bytes).
        HeadersTooLarge = "headers_too_large",
        /// A task was lost (it panicked); the server keeps serving.
        Internal = "internal",
        /// hearth reported the provision failed.
        ProvisioningFailed = "provisioning_failed",
        /// hearth refused the teardown or could not answer.
        TeardownFailed = "teardown_failed",
        /// The worker answered 401.
        WorkerUnauthorized = "worker_unauthorized",
        /// The worker refused the submission, or its answer could not be read.
        WorkerRefused = "worker_refused",
        /// The worker could not be reached (or did not answer).
        WorkerUnreachable = "worker_unreachable",
        /// The worker answered 202 without a valid MAC.
        WorkerUnauthenticated = "worker_unauthenticated",
        /// The HATCH append failed, so the action was refused (fail closed).
        AuditUnavailable = "audit_unavailable",
        /// The request was not answered within the server's request deadline.
        DeadlineExceeded = "deadline_exceeded",
        /// hearth cannot say yet whether the workspace exists.
        Rediscovering = "rediscovering",
        /// The worker executes as many runs as it may.
        TooManyRuns = "too_many_runs",
        /// hearth had not settled the provision when the console's deadlines passed.
        ProvisioningUnsettled = "provisioning_unsettled",
        /// The teardown passed its deadline.
        TeardownTimeout = "teardown_timeout",
    }
}

/// Every error answer of every server: `{"error":{"code","message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `{"code","message"}` inside [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable, e.g. `slug_in_use`.
    pub code: ErrorCode,
    /// For people.
    pub message: String,
}
