//! The run routes: admission while the workspace is ready, the signed submission to the
//! worker, and reading a run (optionally waiting for its end).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::{Shared, authorize, parse};
use crate::api::console::SubmitRequest;
use crate::api::worker::{RunAccepted, SubmitRun};
use crate::auth::Right;
use crate::console::{Console, RunEntry, RunView, WorkspaceView};
use crate::hatch::{Event, EventKind};
use crate::hearth::Status;
use crate::http::ApiError;
use crate::kahn::RunStatus;

use super::{DEFAULT_MAX_RALPH_ITERS, MAX_PROMPTS};
use crate::console::{lost, workspace};

pub(super) async fn submit_run(
    State(console): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let who = authorize(&console, &headers, Right::SubmitRuns)?;
    let req: SubmitRequest = parse(body)?;
    if req.prompts.is_empty() || req.prompts.len() > MAX_PROMPTS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "a run needs 1..={MAX_PROMPTS} prompts, got {}",
                req.prompts.len()
            ),
        ));
    }
    let max_iters = req.max_ralph_iters.unwrap_or(DEFAULT_MAX_RALPH_ITERS);
    if max_iters == 0 || max_iters > crate::worker::MAX_RALPH_ITERS {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!(
                "max_ralph_iters must be 1..={}, got {max_iters}",
                crate::worker::MAX_RALPH_ITERS
            ),
        ));
    }
    not_ready(&workspace(&console, &req.workspace)?)?;
    // Admission under the workspace's ops lock: a teardown queued before it wins (and the
    // re-check below refuses), one queued after it sees this run and cancels it. Detached, so
    // a run the worker accepted is always recorded and followed.
    let work = tokio::spawn(admit(console.clone(), req, who.name, max_iters));
    work.await.unwrap_or_else(|e| Err(lost("run admission", e)))
}

fn not_ready(ws: &WorkspaceView) -> Result<(), ApiError> {
    if ws.status != Status::Ready {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "workspace_not_ready",
            format!("workspace {} is {}, not ready", ws.slug, ws.status),
        ));
    }
    Ok(())
}

async fn admit(
    console: Shared,
    req: SubmitRequest,
    who: String,
    max_iters: u32,
) -> Result<Response, ApiError> {
    let ops = console.ops(&req.workspace);
    let _guard = ops.lock().await;
    not_ready(&workspace(&console, &req.workspace)?)?;
    let submission = SubmitRun {
        workspace: req.workspace.clone(),
        prompts: req.prompts.clone(),
        max_ralph_iters: max_iters,
    };
    let accepted = submit_to_worker(&console, &submission).await?;
    // Fail closed: an unrecorded run is not followed and not reported as accepted, and the
    // worker is told to stop it (best effort: the refusal stands either way).
    if let Err(refused) = console.audit(
        Event::new(EventKind::RunStarted, who.as_str())
            .workspace(&req.workspace)
            .run_id(&accepted.run_id)
            .data(serde_json::json!({"prompts": req.prompts.len(), "max_ralph_iters": max_iters})),
    ) {
        if let Err(why) = cancel_at_worker(&console, &accepted.run_id).await {
            tracing::warn!(
                run_id = accepted.run_id,
                "the unrecorded run could not be cancelled: {why}"
            );
        }
        return Err(refused);
    }
    let entry = Arc::new(RunEntry::new(
        RunView {
            run_id: accepted.run_id.clone(),
            workspace: req.workspace.clone(),
            status: RunStatus::Running,
            nodes: Vec::new(),
            rejected_frames: Vec::new(),
            error: None,
        },
        req.prompts.len(),
    ));
    console.keep_run(accepted.run_id.clone(), entry.clone());
    tokio::spawn(crate::console::stream::follow(
        console.clone(),
        entry,
        req.prompts.len(),
    ));
    Ok((
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"run_id": accepted.run_id})),
    )
        .into_response())
}

/// `POST {worker}/v1/runs` with the HMAC bearer. A refusal becomes a 502 whose message quotes
/// the worker's status and reason, so the gap report can show it as evidence.
async fn submit_to_worker(console: &Console, run: &SubmitRun) -> Result<RunAccepted, ApiError> {
    let path = crate::api::worker::paths::RUNS;
    let body = serde_json::to_vec(run).expect("submission serializes");
    let bearer = console
        .config
        .keyring
        .sign("POST", path, &body, crate::vault::now_unix());
    let url = format!("{}{path}", console.config.worker_url);
    let response = console
        .http
        .post(&url)
        .header("authorization", bearer)
        .header("content-type", "application/json")
        .body(body)
        .timeout(console.config.deadlines.worker_call)
        .send()
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "worker_unreachable",
                format!("console→worker POST {url} failed: {e}"),
            )
        })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::ACCEPTED {
        return serde_json::from_str(&text).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_GATEWAY,
                "worker_refused",
                format!("console→worker returned an unreadable answer: {e}"),
            )
        });
    }
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or(text);
    let code = if status == reqwest::StatusCode::UNAUTHORIZED {
        "worker_unauthorized"
    } else {
        "worker_refused"
    };
    Err(ApiError::new(
        StatusCode::BAD_GATEWAY,
        code,
        format!("console→worker returned {} ({reason})", status.as_u16()),
    ))
}

/// `POST {worker}/v1/runs/{id}/cancel` with the HMAC bearer: the run ends `cancelled` at its
/// next step. `Err` is the fixed sentence saying why the worker did not take the cancel.
pub(crate) async fn cancel_at_worker(console: &Console, run_id: &str) -> Result<(), String> {
    let path = crate::api::worker::paths::cancel(run_id);
    let bearer = console
        .config
        .keyring
        .sign("POST", &path, b"", crate::vault::now_unix());
    let sent = console
        .http
        .post(format!("{}{path}", console.config.worker_url))
        .header("authorization", bearer)
        .timeout(console.config.deadlines.worker_call)
        .send()
        .await;
    match sent {
        Err(e) => {
            tracing::warn!(run_id, "cancel: {e}");
            Err(format!(
                "the cancel failed: {}",
                crate::console::WORKER_UNREACHABLE
            ))
        }
        Ok(r) if !r.status().is_success() => Err(format!(
            "the worker answered {} to the cancel",
            r.status().as_u16()
        )),
        Ok(_) => Ok(()),
    }
}

/// Longest `?wait=` long-poll; longer ones are refused (400), under the request deadline.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RunQuery {
    /// Long-poll: wait up to this long (e.g. `10s`) for the run to end before answering.
    wait: Option<String>,
}

pub(super) async fn get_run(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path(run_id): Path<String>,
    Query(query): Query<RunQuery>,
) -> Result<Json<RunView>, ApiError> {
    authorize(&console, &headers, Right::ReadRuns)?;
    let wait = query
        .wait
        .map(|wait| {
            crate::duration::parse_within(&wait, Duration::ZERO, MAX_WAIT).map_err(|e| {
                ApiError::new(StatusCode::BAD_REQUEST, "bad_request", format!("wait: {e}"))
            })
        })
        .transpose()?;
    let entry = console
        .runs
        .lock()
        .expect("console state lock")
        .get(&run_id)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no run {run_id}"),
            )
        })?;
    if let Some(wait) = wait {
        let mut rx = entry.ended.subscribe();
        // Whether it ended or the wait passed, answer with the current view.
        let _ = tokio::time::timeout(wait, rx.wait_for(|ended| *ended)).await;
    }
    let view = entry.view.lock().expect("run view lock").clone();
    Ok(Json(view))
}
