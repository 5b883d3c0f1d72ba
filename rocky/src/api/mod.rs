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

/// Every error answer of every server: `{"error":{"code","message"}}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// `{"code","message"}` inside [`ErrorBody`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorDetail {
    /// Machine-readable, e.g. `slug_in_use`.
    pub code: String,
    /// For people.
    pub message: String,
}
