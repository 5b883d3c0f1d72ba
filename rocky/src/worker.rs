//! The worker, `ralph serve` (contract §5): accepts runs behind the HMAC bearer, runs each
//! prompt as a KAHN node through the RALPH convergence loop, and streams the frames as SSE.
//!
//! The model is a deterministic mock ([`MockModel`]): a prompt says how many iterations its
//! answer needs, so scenarios can ask for slow convergence or none at all without flakiness.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;

use tokio::sync::watch;

use crate::api::worker::paths;
use crate::http::error;
use crate::kahn::{self, Encoding, Frame, NodeState, RunStatus};
use crate::vault::{self, Keyring};

/// Upper bound on a submission body: prompts are short; anything bigger is a mistake or abuse.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Upper bound on `max_ralph_iters`, so a typo cannot start a near-endless loop.
pub const MAX_RALPH_ITERS: u32 = 100;

pub use crate::api::worker::{RunAccepted, SubmitRun};

/// The deterministic stand-in for the model. A prompt containing `[ralph:converge=N]` needs N
/// iterations; `[ralph:never]` never converges; `[ralph:hold]` holds its node until the run is
/// cancelled (a run that is certainly active when its workspace is torn down); any other
/// prompt converges on the first.
pub struct MockModel;

impl MockModel {
    /// How many iterations `prompt` needs, or `None` for never.
    pub fn iterations_needed(prompt: &str) -> Option<u32> {
        if prompt.contains("[ralph:never]") {
            return None;
        }
        if let Some(start) = prompt.find("[ralph:converge=") {
            let rest = &prompt[start + "[ralph:converge=".len()..];
            if let Some(end) = rest.find(']')
                && let Ok(n) = rest[..end].parse::<u32>()
            {
                return Some(n.max(1));
            }
        }
        Some(1)
    }

    /// The RALPH check: does the answer at `attempt` converge?
    pub fn converges(prompt: &str, attempt: u32) -> bool {
        Self::iterations_needed(prompt).is_some_and(|n| attempt >= n)
    }
}

/// The worker's configuration.
pub struct WorkerConfig {
    /// Secrets read from VAULT; the console signs with the same.
    pub keyring: Keyring,
    /// Allowed clock skew of a bearer timestamp, both directions.
    pub max_skew_secs: i64,
    /// How frames are spelt (`kahn/1` as written by default).
    pub encoding: Encoding,
}

/// One run's frame log: frames are appended once and streamed to any number of readers.
struct RunLog {
    /// Encoded SSE payloads; frame `seq` n is at index n-1.
    frames: Mutex<Vec<String>>,
    /// (frames written, finished): readers wait on this instead of polling.
    progress: watch::Sender<(usize, bool)>,
    /// Set by `POST /v1/runs/{id}/cancel`; the run ends `cancelled` at its next step.
    cancel: watch::Sender<bool>,
    /// For eviction once finished (see [`crate::retention`]).
    created: std::time::Instant,
}

/// Shared worker state.
pub struct Worker {
    config: WorkerConfig,
    runs: Mutex<HashMap<String, Arc<RunLog>>>,
    /// Every bearer is accepted once.
    replay: vault::ReplayGuard,
}

impl Worker {
    pub fn new(config: WorkerConfig) -> Arc<Worker> {
        Arc::new(Worker {
            config,
            runs: Mutex::new(HashMap::new()),
            replay: vault::ReplayGuard::default(),
        })
    }

    /// The routes of contract §5.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { StatusCode::OK }))
            .route(paths::RUNS, post(submit))
            .route(paths::EVENTS, get(events))
            .route(paths::CANCEL, post(cancel))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }

    /// The frame log of `run_id` for a bodiless request whose bearer checks out, or the 401 or
    /// 404 that says why not.
    fn signed_run_log(
        &self,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        run_id: &str,
    ) -> Result<Arc<RunLog>, Box<Response>> {
        self.check_bearer(headers, method, uri, b"")?;
        self.run_log(run_id)
            .map_err(|not_found| Box::new(not_found.into_response()))
    }

    /// The frame log of `run_id`, or the 404 that names it.
    fn run_log(&self, run_id: &str) -> Result<Arc<RunLog>, crate::http::ApiError> {
        self.runs
            .lock()
            .expect("worker state lock")
            .get(run_id)
            .cloned()
            .ok_or_else(|| {
                crate::http::ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("no run {run_id}"),
                )
            })
    }

    fn check_bearer(
        &self,
        headers: &HeaderMap,
        method: &Method,
        uri: &Uri,
        body: &[u8],
    ) -> Result<(), Box<Response>> {
        let header = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|h| h.to_str().ok());
        self.config
            .keyring
            .verify_once(
                &self.replay,
                header,
                method.as_str(),
                uri.path_and_query().map_or(uri.path(), |pq| pq.as_str()),
                body,
                vault::now_unix(),
                self.config.max_skew_secs,
            )
            .map(|_| ())
            .map_err(|e| {
                tracing::warn!("bearer rejected: {e}");
                Box::new(error(
                    StatusCode::UNAUTHORIZED,
                    e.code(),
                    format!("bearer rejected: {e}"),
                ))
            })
    }
}

async fn submit(
    State(worker): State<Arc<Worker>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(r) = worker.check_bearer(&headers, &method, &uri, &body) {
        return *r;
    }
    let run: SubmitRun = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return error(StatusCode::BAD_REQUEST, "bad_request", e.to_string()),
    };
    if let Err(why) = crate::worker_limits::check_prompts(&run.prompts) {
        return error(StatusCode::BAD_REQUEST, "bad_request", why);
    }
    if run.max_ralph_iters == 0 || run.max_ralph_iters > MAX_RALPH_ITERS {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("max_ralph_iters must be 1..={MAX_RALPH_ITERS}"),
        );
    }
    let run_id = format!("run-{}", crate::ids::random_hex(8));
    let (progress, _) = watch::channel((0, false));
    let (cancel, _) = watch::channel(false);
    let log = Arc::new(RunLog {
        frames: Mutex::new(Vec::new()),
        progress,
        cancel,
        created: std::time::Instant::now(),
    });
    {
        use crate::retention::{RunAge, evictions};
        use crate::worker_limits::MAX_ACTIVE_RUNS;
        let mut runs = worker.runs.lock().expect("worker state lock");
        let ages = runs.iter().map(|(id, l)| {
            let age = RunAge {
                created: l.created,
                finished: l.progress.borrow().1,
            };
            (id.clone(), age)
        });
        for id in evictions(ages, std::time::Instant::now()) {
            runs.remove(&id);
        }
        let active = runs.values().filter(|l| !l.progress.borrow().1).count();
        if active >= MAX_ACTIVE_RUNS {
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too_many_runs",
                format!("{active} runs are executing, the most this worker runs at once"),
            );
        }
        runs.insert(run_id.clone(), log.clone());
    }
    let encoding = worker.config.encoding.clone();
    let id = run_id.clone();
    tokio::spawn(async move { execute(&id, &run, &encoding, &log).await });
    (StatusCode::ACCEPTED, Json(RunAccepted { run_id })).into_response()
}

/// The RALPH loop over every node, writing frames as they happen.
async fn execute(run_id: &str, run: &SubmitRun, encoding: &Encoding, log: &RunLog) {
    let mut seq = 0u64;
    let push = |frame: Frame| {
        let encoded = kahn::encode_with(&frame, encoding);
        let mut frames = log.frames.lock().expect("run log lock");
        frames.push(encoded);
        let n = frames.len();
        log.progress.send_modify(|p| p.0 = n);
    };
    let mut all_ok = true;
    let mut cancelled = log.cancel.subscribe();
    let is_cancelled = |rx: &watch::Receiver<bool>| *rx.borrow();
    'nodes: for (i, prompt) in run.prompts.iter().enumerate() {
        if is_cancelled(&cancelled) {
            break 'nodes;
        }
        let node_id = format!("node-{}", i + 1);
        seq += 1;
        push(Frame::NodeTransition {
            run_id: run_id.into(),
            node_id: node_id.clone(),
            seq,
            from: NodeState::Pending,
            to: NodeState::Running,
            ts: crate::clock::now_rfc3339(),
        });
        if prompt.contains("[ralph:hold]") {
            // Held until cancelled; the node never reaches a terminal state.
            let _ = cancelled.wait_for(|c| *c).await;
            break 'nodes;
        }
        let mut converged = false;
        for attempt in 1..=run.max_ralph_iters {
            if is_cancelled(&cancelled) {
                break 'nodes;
            }
            seq += 1;
            push(Frame::NodeAttempt {
                run_id: run_id.into(),
                node_id: node_id.clone(),
                seq,
                attempt,
                ts: crate::clock::now_rfc3339(),
            });
            if MockModel::converges(prompt, attempt) {
                converged = true;
                break;
            }
            // Let other runs and readers make progress between iterations.
            tokio::task::yield_now().await;
        }
        all_ok &= converged;
        seq += 1;
        push(Frame::NodeTransition {
            run_id: run_id.into(),
            node_id,
            seq,
            from: NodeState::Running,
            to: if converged {
                NodeState::Succeeded
            } else {
                NodeState::Failed
            },
            ts: crate::clock::now_rfc3339(),
        });
    }
    seq += 1;
    push(Frame::RunEnded {
        run_id: run_id.into(),
        seq,
        status: if is_cancelled(&cancelled) {
            RunStatus::Cancelled
        } else if all_ok {
            RunStatus::Succeeded
        } else {
            RunStatus::Failed
        },
        ts: crate::clock::now_rfc3339(),
    });
    log.progress.send_modify(|p| p.1 = true);
}

/// `POST /v1/runs/{run_id}/cancel`: the run ends `cancelled` at its next step (202); a run
/// that already ended is left as it is.
async fn cancel(
    State(worker): State<Arc<Worker>>,
    Path(run_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let log = match worker.signed_run_log(&headers, &method, &uri, &run_id) {
        Ok(log) => log,
        Err(refused) => return *refused,
    };
    log.cancel.send_replace(true);
    StatusCode::ACCEPTED.into_response()
}

async fn events(
    State(worker): State<Arc<Worker>>,
    Path(run_id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let log = match worker.signed_run_log(&headers, &method, &uri, &run_id) {
        Ok(log) => log,
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
                    "bad_request",
                    format!("Last-Event-ID {v:?} is not a frame seq"),
                );
            }
        },
        Some(Err(_)) => {
            return error(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Last-Event-ID is not text",
            );
        }
    };
    Sse::new(frame_stream(log, after))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn frame_stream(
    log: Arc<RunLog>,
    after: usize,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let rx = log.progress.subscribe();
    futures::stream::unfold((log, rx, after), |(log, mut rx, next)| async move {
        loop {
            let (written, finished) = *rx.borrow_and_update();
            if next < written {
                let data = log.frames.lock().expect("run log lock")[next].clone();
                let event = SseEvent::default().id((next + 1).to_string()).data(data);
                return Some((Ok(event), (log, rx, next + 1)));
            }
            if finished {
                return None;
            }
            if rx.changed().await.is_err() {
                return None;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mock_model_is_deterministic() {
        assert_eq!(MockModel::iterations_needed("plain"), Some(1));
        assert_eq!(
            MockModel::iterations_needed("x [ralph:converge=3] y"),
            Some(3)
        );
        assert_eq!(MockModel::iterations_needed("[ralph:never]"), None);
        assert!(!MockModel::converges("[ralph:converge=3]", 2));
        assert!(MockModel::converges("[ralph:converge=3]", 3));
        assert!(!MockModel::converges("[ralph:never]", 100));
    }
}
