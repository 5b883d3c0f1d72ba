//! The console's route handlers. Each one checks auth, then input, and only then acts, so a
//! refused request changes nothing and writes no HATCH record.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::Console;
use crate::api::ErrorCode;
use crate::api::console::paths;
use crate::auth::{Principal, Right};
use crate::http::ApiError;

/// Request bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Default RALPH iteration cap when a submission names none.
pub(super) const DEFAULT_MAX_RALPH_ITERS: u32 = 5;
/// Most prompts one run may carry.
pub(super) const MAX_PROMPTS: usize = 64;

type Shared = Arc<Console>;

// `runs` is reached from `console::workspaces` for `cancel_at_worker` until that call moves
// beside the worker client.
pub(super) mod runs;
mod workspaces;

use runs::{get_run, submit_run};
use workspaces::{create_workspace, delete_workspace, get_workspace};

pub(super) fn router(console: Shared) -> Router {
    Router::new()
        .route(paths::HEALTHZ, get(|| async { StatusCode::OK }))
        .route(paths::WORKSPACES, post(create_workspace))
        .route(
            paths::WORKSPACE,
            get(get_workspace).delete(delete_workspace),
        )
        .route(paths::RUNS, post(submit_run))
        .route(paths::RUN, get(get_run))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(console)
}

pub(super) fn authorize(
    console: &Console,
    headers: &HeaderMap,
    right: Right,
) -> Result<Principal, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    console.config.auth.authorize(header, right).map_err(|e| {
        let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
        let code = if status == StatusCode::FORBIDDEN {
            ErrorCode::Forbidden
        } else {
            ErrorCode::Unauthorized
        };
        ApiError::new(status, code, e.to_string())
    })
}

/// Parses a JSON body strictly (unknown fields refused by the target type). A body over
/// [`MAX_BODY_BYTES`] is refused with 413 before any of it is parsed.
pub(super) fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = crate::http::body(body, MAX_BODY_BYTES)?;
    serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            ErrorCode::BadJson
        } else {
            ErrorCode::BadRequest
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("invalid request body: {e}"),
        )
    })
}
