//! Runs, by resource: admission, the signed submission, reading a run, and every way the
//! console stops following one — each forward step beside the undo that cancels the run at
//! the worker, so no run outlives its follower (contract §5).
//!
//! | forward step | its undo |
//! | --- | --- |
//! | submit to the worker | a submission without an authenticated 202 is cancelled by its nonce |
//! | record `ralph.run.started` | the accepted run is cancelled when the record is refused |
//! | follow the run | when the follow ends without the worker's valid `RunEnded` (deadline, unresumable or unreadable stream), the run is cancelled |
//! | keep the run's view | a view evicted while the worker may still run it is cancelled |
//! | (teardown) | every run of the workspace the worker may still run is cancelled, concurrently, within the teardown's budget |
//!
//! The worker backs all of this up with its follow lease: a run nobody follows ends
//! `cancelled` on its own, so a cancel that could not be delivered still ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::http::StatusCode;

use super::{Console, RunEntry, RunView, WorkspaceView};
use crate::api::ErrorCode;
use crate::api::console::SubmitRequest;
use crate::api::worker::{RunAccepted, SubmitRun};
use crate::client::worker::{CancelError, SubmitError, Unconfirmed};
use crate::hatch::{Event, EventKind};
use crate::hearth::Status;
use crate::http::ApiError;
use crate::kahn::RunStatus;

/// Longest `?wait=` long-poll; longer ones are refused (400), under the request deadline.
pub const MAX_WAIT: Duration = Duration::from_secs(60);

impl Console {
    /// Admits a run in `req.workspace` while it is ready. Under the workspace's ops lock: a
    /// teardown queued before it wins (and the re-check refuses), one queued after it sees the
    /// run and cancels it. Detached, so a run the worker accepted is always recorded and
    /// followed (or cancelled) whoever hangs up.
    pub(crate) async fn submit_run(
        self: &Arc<Self>,
        req: SubmitRequest,
        who: String,
        max_iters: u32,
    ) -> Result<RunAccepted, ApiError> {
        not_ready(&self.known_workspace(&req.workspace).await?)?;
        let console = self.clone();
        let work = tokio::spawn(async move { console.admit(req, who, max_iters).await });
        work.await.unwrap_or_else(|e| {
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                ErrorCode::Internal,
                format!("the run admission ended without an answer: {e}"),
            ))
        })
    }

    async fn admit(
        self: Arc<Self>,
        req: SubmitRequest,
        who: String,
        max_iters: u32,
    ) -> Result<RunAccepted, ApiError> {
        let ops = self.ops(&req.workspace);
        let _guard = ops.lock().await;
        not_ready(&self.workspace_view(&req.workspace)?)?;
        let submission = SubmitRun {
            workspace: req.workspace.clone(),
            prompts: req.prompts.clone(),
            max_ralph_iters: max_iters,
        };
        // Forward: the submission. Undo: a submission the worker may have accepted without the
        // console knowing its run id is cancelled by its nonce.
        let accepted = match self.worker.submit(&submission).await {
            Ok(accepted) => accepted,
            Err(e) => {
                if let SubmitError::Unconfirmed { nonce, .. } = &e {
                    self.clone().cancel_submission(nonce.clone());
                }
                return Err(submit_refused(e));
            }
        };
        // Forward: `ralph.run.started`. Undo: fail closed, the accepted run is cancelled (the
        // refusal stands either way).
        if let Err(refused) = self.audit(
            Event::new(EventKind::RunStarted, who.as_str())
                .workspace(&req.workspace)
                .run_id(&accepted.run_id)
                .data(
                    serde_json::json!({"prompts": req.prompts.len(), "max_ralph_iters": max_iters}),
                ),
        ) {
            if let Err(why) = self.worker.cancel(&accepted.run_id).await {
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
                rejected_total: 0,
                unrecorded: Vec::new(),
                error: None,
            },
            req.prompts.len(),
        ));
        // Forward: keep the view. Undo: views evicted while the worker may still run them
        // are cancelled.
        for evicted in self.keep_run(accepted.run_id.clone(), entry.clone()) {
            self.clone()
                .cancel_abandoned(evicted, "its view was evicted");
        }
        // Forward: follow. Undo: at the follow's end (see `stop_following`).
        tokio::spawn(super::stream::follow(
            self.clone(),
            entry,
            req.prompts.len(),
        ));
        Ok(accepted)
    }

    /// The run's view, after waiting up to `wait` for its end when asked to.
    pub(crate) async fn read_run(
        &self,
        run_id: &str,
        wait: Option<Duration>,
    ) -> Result<RunView, ApiError> {
        let entry = self
            .runs
            .lock()
            .expect("console state lock")
            .get(run_id)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    format!("no run {run_id}"),
                )
            })?;
        if let Some(wait) = wait {
            let mut rx = entry.ended.subscribe();
            // Whether it ended or the wait passed, answer with the current view.
            let _ = tokio::time::timeout(wait, rx.wait_for(|ended| *ended)).await;
        }
        let view = entry.view.lock().expect("run view lock").clone();
        Ok(view)
    }

    /// The follow of `entry` is over: the run ends as `status` (recorded once), and unless the
    /// worker itself said the run is over, it is cancelled there.
    pub(super) async fn stop_following(
        self: &Arc<Self>,
        entry: &RunEntry,
        status: RunStatus,
        failure: Option<String>,
    ) {
        let run_id = entry.view.lock().expect("run view lock").run_id.clone();
        entry.close(self, status, failure);
        if !entry.worker_done() {
            match self.worker.cancel(&run_id).await {
                Ok(()) => entry.set_worker_done(),
                Err(why) => tracing::warn!(
                    run_id,
                    "the run the console stopped following could not be cancelled ({why}); \
                     the worker's follow lease ends it"
                ),
            }
        }
    }

    /// Cancels `run_id` at the worker in the background (the console no longer follows it).
    fn cancel_abandoned(self: Arc<Self>, run_id: String, why: &'static str) {
        tokio::spawn(async move {
            if let Err(e) = self.worker.cancel(&run_id).await {
                tracing::warn!(
                    run_id,
                    "cancel ({why}): {e}; the worker's follow lease ends it"
                );
            }
        });
    }

    /// Cancels, in the background, whatever run the submission signed with `nonce` started.
    fn cancel_submission(self: Arc<Self>, nonce: String) {
        tokio::spawn(async move {
            if let Err(e) = self.worker.cancel_submission(&nonce).await {
                tracing::warn!(
                    "an unconfirmed submission could not be cancelled: {e}; the worker's follow \
                     lease ends it"
                );
            }
        });
    }

    fn workspace_view(&self, slug: &str) -> Result<WorkspaceView, ApiError> {
        self.workspaces
            .lock()
            .expect("console state lock")
            .get(slug)
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::NotFound,
                    format!("no workspace {slug}"),
                )
            })
    }
}

/// Asks the worker to cancel every run of `slug` it may still be executing, all at once, and
/// waits (within the teardown's cancel budget) until each followed run has ended, so its
/// `ralph.run.ended` is recorded before the teardown's first record. A run the worker cannot
/// be asked to cancel (unreachable, refusing, paused) or that does not end in time is ended by
/// the console itself: `ralph.run.ended` with `cancelled` and the reason, and later frames of
/// it are ignored.
pub(crate) async fn cancel_workspace_runs(console: &Console, slug: &str) {
    let runs: Vec<(String, Arc<RunEntry>)> = console
        .runs
        .lock()
        .expect("console state lock")
        .iter()
        .filter(|(_, e)| {
            // A run whose view has ended may not have its `ralph.run.ended` written yet (the
            // view changes first): it is waited for too, so the teardown records after it.
            let recorded = *e.ended.borrow();
            let v = e.view.lock().expect("run view lock");
            v.workspace == slug && (v.status == RunStatus::Running || !e.worker_done() || !recorded)
        })
        .map(|(id, e)| (id.clone(), e.clone()))
        .collect();
    if runs.is_empty() {
        return;
    }
    let budget = cancel_budget(&console.config.deadlines);
    let until = tokio::time::Instant::now() + budget;
    let cancels = runs
        .into_iter()
        .map(|(run_id, entry)| cancel_one(console, slug, run_id, entry, until, budget));
    futures::future::join_all(cancels).await;
}

/// How long a teardown spends ending its workspace's runs: a cancel and the wait for its
/// `RunEnded`, but never more than a third of the teardown deadline, so hearth's half always
/// has time.
fn cancel_budget(deadlines: &super::Deadlines) -> Duration {
    (deadlines.worker_call * 2).min(deadlines.teardown / 3)
}

async fn cancel_one(
    console: &Console,
    slug: &str,
    run_id: String,
    entry: Arc<RunEntry>,
    until: tokio::time::Instant,
    budget: Duration,
) {
    let ending = entry.worker_done()
        && entry.view.lock().expect("run view lock").status != RunStatus::Running;
    if ending {
        // Over at the worker and at the console, its end being written: nothing to cancel,
        // only its record to wait for (model seeds 20683, 20811).
        let mut ended = entry.ended.subscribe();
        let _ = tokio::time::timeout_at(until, ended.wait_for(|e| *e)).await;
        return;
    }
    let following = !entry.is_closed();
    entry.cancel_requested.store(true, Ordering::SeqCst);
    let cancelled = tokio::time::timeout_at(until, console.worker.cancel(&run_id))
        .await
        .unwrap_or(Err(CancelError::Unreachable));
    let reason = match cancelled {
        Err(refused) => Some(refused.to_string()),
        Ok(()) => {
            entry.set_worker_done();
            let mut ended = entry.ended.subscribe();
            tokio::time::timeout_at(until, ended.wait_for(|e| *e))
                .await
                .is_err()
                .then(|| {
                    format!(
                        "the run did not end within {} of its cancel",
                        crate::duration::display(budget)
                    )
                })
        }
    };
    if let Some(reason) = reason {
        if !following {
            tracing::warn!(run_id, "{reason}; the worker's follow lease ends it");
            return;
        }
        tracing::warn!(run_id, "{reason}; the console ends it cancelled");
        entry.close(
            console,
            RunStatus::Cancelled,
            Some(format!("workspace {slug} torn down; {reason}")),
        );
    }
}

fn not_ready(ws: &WorkspaceView) -> Result<(), ApiError> {
    if ws.status != Status::Ready {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::WorkspaceNotReady,
            format!("workspace {} is {}, not ready", ws.slug, ws.status),
        ));
    }
    Ok(())
}

/// The 502 for a submission that started no run; its message quotes the worker's status and
/// reason (or why its answer was not taken), so the gap report can show it as evidence.
fn submit_refused(e: SubmitError) -> ApiError {
    let code = match &e {
        SubmitError::Unreachable { .. } => ErrorCode::WorkerUnreachable,
        SubmitError::Unconfirmed {
            why: Unconfirmed::NoAnswer { .. },
            ..
        } => ErrorCode::WorkerUnreachable,
        SubmitError::Unconfirmed {
            why: Unconfirmed::NotAuthenticated(_),
            ..
        } => ErrorCode::WorkerUnauthenticated,
        SubmitError::Unconfirmed {
            why: Unconfirmed::Unreadable(_),
            ..
        } => ErrorCode::WorkerRefused,
        SubmitError::Refused { status: 401, .. } => ErrorCode::WorkerUnauthorized,
        SubmitError::Refused { .. } => ErrorCode::WorkerRefused,
    };
    ApiError::new(StatusCode::BAD_GATEWAY, code, e.to_string())
}
