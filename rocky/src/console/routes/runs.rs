//! The run routes: they parse, authorise and call the run logic in `console/runs.rs`
//! (admission, submission, reading a run, optionally waiting for its end).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Shared, authorize, parse};
use crate::api::ErrorCode;
use crate::api::console::SubmitRequest;
use crate::auth::Right;
use crate::console::RunView;
use crate::http::ApiError;

use super::DEFAULT_MAX_RALPH_ITERS;

pub(super) async fn submit_run(
    State(console): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let who = authorize(&console, &headers, Right::SubmitRuns)?;
    let req: SubmitRequest = parse(body)?;
    // The worker's own limits, checked here: a size out of range is the caller's 400, never
    // a 502 `worker_refused` after a call to the worker (contract §9).
    if let Err(why) = crate::worker_limits::check_prompts(&req.prompts) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            why,
        ));
    }
    let max_iters = req.max_ralph_iters.unwrap_or(DEFAULT_MAX_RALPH_ITERS);
    if max_iters == 0 || max_iters > crate::worker::MAX_RALPH_ITERS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!(
                "max_ralph_iters must be 1..={}, got {max_iters}",
                crate::worker::MAX_RALPH_ITERS
            ),
        ));
    }
    let accepted = console.submit_run(req, who.name, max_iters).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)).into_response())
}

pub use crate::console::runs::MAX_WAIT;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunQuery {
    /// Long-poll: wait up to this long (e.g. `10s`) for the run to end before answering.
    wait: Option<String>,
}

/// The path and the query are read after the right is checked (401 and 403 first), and a
/// rejection of either is a 400 `bad_request` in the contract's shape.
pub(super) async fn get_run(
    State(console): State<Shared>,
    headers: HeaderMap,
    run_id: Result<Path<String>, PathRejection>,
    query: Result<Query<RunQuery>, QueryRejection>,
) -> Result<Json<RunView>, ApiError> {
    authorize(&console, &headers, Right::ReadRuns)?;
    let Path(run_id) = run_id.map_err(crate::http::bad_path)?;
    let Query(query) = query.map_err(crate::http::bad_query)?;
    let wait = query
        .wait
        .map(|wait| {
            crate::duration::parse_within(&wait, Duration::ZERO, MAX_WAIT).map_err(|e| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    format!("wait: {e}"),
                )
            })
        })
        .transpose()?;
    console.read_run(&run_id, wait).await.map(Json)
}
