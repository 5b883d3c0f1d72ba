//! Failing closed when the HATCH append of a lifecycle action fails (contract §2): the action
//! is refused with 503 `audit_unavailable` and its caller undoes what it did (each act's undo
//! sits beside its forward step, see [`super::workspaces`]), so no half-state outlives the
//! refusal.

use super::Console;
use crate::api::ErrorCode;
use crate::hatch::{Event, EventKind, HatchError};
use crate::http::ApiError;

impl Console {
    /// Appends a lifecycle record, failing closed: when the append fails the action must be
    /// refused (503 `audit_unavailable`) and undone, so an audit gap is never silent.
    pub(super) fn audit(&self, event: Event) -> Result<(), ApiError> {
        let kind = event.kind;
        self.config.hatch.append(event).map(|_| ()).map_err(|e| {
            tracing::error!("refusing {kind}: the HATCH append failed: {e}");
            audit_unavailable(kind, &e)
        })
    }
}

/// The 503 a lifecycle action gets when its audit record cannot be written.
fn audit_unavailable(kind: EventKind, e: &HatchError) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::AuditUnavailable,
        format!("refused: the audit record {kind} could not be written ({e}); nothing was changed"),
    )
}
