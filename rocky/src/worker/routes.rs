//! The worker's routes: submit, stream, cancel (by run id, or by the submission's nonce when
//! its caller never learned the run id). Each checks the bearer first.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};

use super::run::{self, RunLog};
use super::{MAX_BODY_BYTES, MAX_RALPH_ITERS, RunAccepted, SubmitRun, Worker};
use crate::api::ErrorCode;
use crate::api::worker::RunState;
use crate::http::{ApiError, error};
use crate::vault::{self, ANSWER_MAC_HEADER, Answer};

/// Who signed a request: the key its answers are authenticated under and the nonce they are
/// bound to.
struct Signer {
    key_id: String,
    nonce: String,
}

impl Worker {
    fn check_bearer(
        &self,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<Signer, Box<Response>> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        let checked = self.config.keyring.verify_once(
            &self.replay,
            header,
            method.as_str(),
            uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()),
            body,
            vault::now_unix(),
            self.config.max_skew_secs,
        );
        match checked {
            Ok(key_id) => Ok(Signer {
                key_id,
                // A bearer that verified parses, so it has a nonce.
                nonce: header.and_then(vault::bearer_nonce).unwrap_or_default(),
            }),
            Err(e) => {
                tracing::warn!("bearer rejected: {e}");
                let mut answer = error(
                    StatusCode::UNAUTHORIZED,
                    e.code(),
                    format!("bearer rejected: {e}"),
                );
                if matches!(
                    e,
                    vault::BearerError::Replay(vault::ReplayError::BeforeStart(_))
                ) {
                    answer.headers_mut().insert(
                        crate::api::worker::SIGN_AGAIN_HEADER,
                        axum::http::HeaderValue::from_static("1"),
                    );
                }
                Err(Box::new(answer))
            }
        }
    }

    /// For a request about run `run_id` (no body): who signed it and the run's frame log, or
    /// the 401 or 404 to answer.
    fn signed_run(
        &self,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        run_id: &str,
    ) -> Result<(Signer, Arc<RunLog>), Box<Response>> {
        let signer = self.check_bearer(headers, method, uri, b"")?;
        let log = self
            .run_log(run_id)
            .map_err(|not_found| Box::new(not_found.into_response()))?;
        Ok((signer, log))
    }

    /// The frame log of `run_id`, or the 404 that names it.
    fn run_log(&self, run_id: &str) -> Result<Arc<RunLog>, ApiError> {
        self.runs
            .lock()
            .expect("worker state lock")
            .get(run_id)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    format!("no run {run_id}"),
                )
            })
    }

    /// Admits `log` as `run_id` unless the worker runs its most runs already: first drops the
    /// finished runs past [`crate::retention`]'s bounds.
    fn admit(&self, run_id: &str, log: Arc<RunLog>) -> Result<(), ApiError> {
        use crate::retention::{RunAge, evictions};
        use crate::worker_limits::MAX_ACTIVE_RUNS;
        let mut runs = self.runs.lock().expect("worker state lock");
        let ages = runs.iter().map(|(id, l)| {
            let age = RunAge {
                created: l.created,
                finished: l.finished(),
            };
            (id.clone(), age)
        });
        for id in evictions(ages, std::time::Instant::now()) {
            runs.remove(&id);
        }
        let active = runs.values().filter(|l| !l.finished()).count();
        if active >= MAX_ACTIVE_RUNS {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::TooManyRuns,
                format!("{active} runs are executing, the most this worker runs at once"),
            ));
        }
        runs.insert(run_id.to_owned(), log);
        Ok(())
    }
}

pub(super) async fn submit(
    State(worker): State<Arc<Worker>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A body over the limit cannot be hashed for the bearer: refused first, in the contract's
    // shape (axum's own rejection is plain text), as the console refuses one.
    let body = match crate::http::body(body, MAX_BODY_BYTES) {
        Ok(b) => b,
        Err(refused) => return refused.into_response(),
    };
    let signer = match worker.check_bearer(&headers, &method, &uri, &body) {
        Ok(s) => s,
        Err(r) => return *r,
    };
    let run: SubmitRun = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                e.to_string(),
            );
        }
    };
    if let Err(why) = crate::worker_limits::check_prompts(&run.prompts) {
        return error(StatusCode::BAD_REQUEST, ErrorCode::BadRequest, why);
    }
    if run.max_ralph_iters == 0 || run.max_ralph_iters > MAX_RALPH_ITERS {
        return error(
            StatusCode::BAD_REQUEST,
            ErrorCode::BadRequest,
            format!("max_ralph_iters must be 1..={MAX_RALPH_ITERS}"),
        );
    }
    if worker.nonce_forbidden(&signer.nonce) {
        return error(
            StatusCode::CONFLICT,
            ErrorCode::Cancelled,
            "this submission was cancelled before it arrived",
        );
    }
    let run_id = format!("run-{}", crate::ids::random_hex(8));
    let log = RunLog::new(signer.nonce.clone());
    if let Err(refused) = worker.admit(&run_id, log.clone()) {
        return refused.into_response();
    }
    let encoding = worker.config.encoding.clone();
    let id = run_id.clone();
    let executing = log.clone();
    tokio::spawn(async move { run::execute(&id, &run, &encoding, &executing).await });
    tokio::spawn(run::watch_lease(run_id.clone(), log, worker.follow_lease));
    let answer = serde_json::to_vec(&RunAccepted {
        run_id: run_id.clone(),
    })
    .expect("RunAccepted serialises");
    let tag = worker
        .config
        .keyring
        .answer_tag(
            &signer.key_id,
            &Answer::Accepted {
                nonce: &signer.nonce,
                run_id: &run_id,
                body: &answer,
            },
        )
        .unwrap_or_default();
    (
        StatusCode::ACCEPTED,
        [
            (
                axum::http::header::CONTENT_TYPE.as_str(),
                "application/json",
            ),
            (ANSWER_MAC_HEADER, tag.as_str()),
        ],
        answer,
    )
        .into_response()
}

/// `GET /v1/runs/{run_id}`: where the run is (it does not renew the follow lease).
pub(super) async fn state(
    State(worker): State<Arc<Worker>>,
    Path(run_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match worker.signed_run(&headers, &method, &uri, &run_id) {
        Ok((_, log)) => Json(RunState {
            run_id,
            status: log.status(),
            followers: log.followers(),
        })
        .into_response(),
        Err(refused) => *refused,
    }
}

/// `POST /v1/runs/{run_id}/cancel`: the run ends `cancelled` at its next step (202); a run
/// that already ended is left as it is.
pub(super) async fn cancel(
    State(worker): State<Arc<Worker>>,
    Path(run_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    match worker.signed_run(&headers, &method, &uri, &run_id) {
        Ok((_, log)) => {
            log.cancel();
            StatusCode::ACCEPTED.into_response()
        }
        Err(refused) => *refused,
    }
}

/// `POST /v1/submissions/{nonce}/cancel`: cancels the run the submission signed with `nonce`
/// started, or, when none has arrived (yet), makes sure that submission is refused if it does.
/// 202 `{"run_id": …}` (null when there was none); for a console whose submission got no
/// authenticated answer.
pub(super) async fn cancel_submission(
    State(worker): State<Arc<Worker>>,
    Path(nonce): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(r) = worker.check_bearer(&headers, &method, &uri, b"") {
        return *r;
    }
    let found = worker
        .runs
        .lock()
        .expect("worker state lock")
        .iter()
        .find(|(_, log)| log.nonce == nonce)
        .map(|(id, log)| (id.clone(), log.clone()));
    worker.forbid_nonce(&nonce);
    let run_id = found.map(|(id, log)| {
        log.cancel();
        id
    });
    (
        StatusCode::ACCEPTED,
        Json(serde_json::json!({"run_id": run_id})),
    )
        .into_response()
}

pub(super) async fn events(
    State(worker): State<Arc<Worker>>,
    Path(run_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let (signer, log) = match worker.signed_run(&headers, &method, &uri, &run_id) {
        Ok(found) => found,
        Err(refused) => return *refused,
    };
    // Resume after the last frame the reader saw (SSE `Last-Event-ID` = that frame's seq).
    let after = match headers.get("last-event-id").map(|v| v.to_str()) {
        None => 0,
        Some(Ok(v)) => match v.trim().parse::<usize>() {
            Ok(n) => n,
            Err(_) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    ErrorCode::BadRequest,
                    format!("Last-Event-ID {v:?} is not a frame seq"),
                );
            }
        },
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                "Last-Event-ID is not text",
            );
        }
    };
    let reader = super::stream::Reader {
        keyring: worker.config.keyring.clone(),
        key_id: signer.key_id,
        nonce: signer.nonce,
        run_id,
    };
    super::stream::response(reader, log, after, worker.keep_alive())
}
