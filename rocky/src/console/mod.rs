//! The console (contract §4): the HTTP API users and the harness drive. It authenticates with
//! LocalAuth, provisions through hearth, submits runs to the worker with the HMAC bearer,
//! follows each run's KAHN stream, and writes every lifecycle act to the HATCH log.
//!
//! Bad input is refused before anything happens: no provision call, no HATCH record.

mod audit;
mod routes;
mod runs;
mod stream;
mod workspaces;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::LocalAuth;
use crate::client::worker::WorkerClient;
use crate::hatch::Hatch;
use crate::hearth::client::HearthClient;

use crate::api::ErrorCode;
use crate::tier::TierProfile;
use crate::vault::Keyring;

pub use crate::api::console::{NodeView, RejectedFrame, RunView, UnrecordedRecord, WorkspaceView};
pub use routes::{MAX_BODY_BYTES, MAX_HEADER_BYTES, MAX_HEADERS};
use workspaces::Outcome;
pub(crate) use workspaces::workspace;

/// Everything the console needs, fixed at start.
pub struct ConsoleConfig {
    /// Tokens → principals and roles.
    pub auth: LocalAuth,
    /// The provisioner.
    pub hearth: HearthClient,
    /// Base URL of `ralph serve`, e.g. `http://127.0.0.1:7001`.
    pub worker_url: String,
    /// Secrets for the bearer the worker checks.
    pub keyring: Keyring,
    /// The audit log.
    pub hatch: Arc<Hatch>,
    /// Known tiers by name.
    pub tiers: BTreeMap<String, TierProfile>,
    /// Deadlines for calls to hearth and for a run to end.
    pub deadlines: Deadlines,
}

/// Every wait the console does is bounded by one of these.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// A provision call to hearth (covers image start and health checks).
    pub provision: Duration,
    /// Past `provision`, how long the console goes on asking hearth how the provision went
    /// (hearth carries on with it) before it answers 504 and leaves the status `provisioning`
    /// for a later read to settle: the console never records a failure hearth did not report.
    pub provision_follow: Duration,
    /// A teardown call to hearth (hearth enforces its own, shorter, deadline inside).
    pub teardown: Duration,
    /// From submission to `RunEnded`; past it the run ends `failed`.
    pub run: Duration,
    /// A single request to the worker.
    pub worker_call: Duration,
    /// How long a run's follow keeps resuming the event stream of a worker that does not
    /// answer (it may be restarting) before it ends the run `failed`. Longer than
    /// `worker_call`, so that a teardown's cancel to a worker that is gone (bounded by
    /// `worker_call`) ends the run first, `cancelled`.
    pub worker_gone: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            provision: Duration::from_secs(90),
            provision_follow: Duration::from_secs(90),
            teardown: Duration::from_secs(90),
            run: Duration::from_secs(60),
            worker_call: Duration::from_secs(10),
            worker_gone: Duration::from_secs(30),
        }
    }
}

/// A run the console follows: its view plus a signal for waiters.
struct RunEntry {
    view: Mutex<RunView>,
    /// Flips to true when the run has ended; `?wait=` requests wait on it.
    ended: watch::Sender<bool>,
    /// How many nodes (prompts) the run has.
    expected_nodes: usize,
    /// Set, under its lock, when `ralph.run.ended` is recorded: nothing about the run is
    /// recorded after it (a late frame of a run the console ended itself is ignored).
    closed: Mutex<bool>,
    /// For eviction once ended (see [`crate::retention`]).
    created: std::time::Instant,
    /// The worker's run is known to be over (a valid `RunEnded` arrived, or the worker took
    /// a cancel): nothing is left to cancel when the console stops following it.
    worker_done: AtomicBool,
    /// The console asked the worker to cancel the run (a teardown): a `RunEnded` `cancelled`
    /// is the answer, not the worker's own decision.
    cancel_requested: AtomicBool,
}

/// The console's shared state.
pub struct Console {
    config: ConsoleConfig,
    /// Every call to the worker, signed, with its answers authenticated.
    worker: WorkerClient,
    workspaces: Mutex<HashMap<String, WorkspaceView>>,
    runs: Mutex<HashMap<String, Arc<RunEntry>>>,
    /// Per workspace: held by a provision, a run admission or a teardown for as long as it
    /// acts, so the acts on one workspace (and their HATCH records) are ordered.
    ops: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Per workspace: the teardown in flight, joined by concurrent DELETEs.
    teardowns: Mutex<HashMap<String, watch::Receiver<Option<Outcome>>>>,
}

impl Console {
    pub fn new(config: ConsoleConfig) -> Arc<Console> {
        let worker = WorkerClient::new(
            config.worker_url.clone(),
            config.keyring.clone(),
            config.deadlines.worker_call,
        );
        Arc::new(Console {
            config,
            worker,
            workspaces: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            ops: Mutex::new(HashMap::new()),
            teardowns: Mutex::new(HashMap::new()),
        })
    }

    /// The routes of contract §4.
    pub fn router(self: Arc<Self>) -> axum::Router {
        routes::router(self)
    }

    /// The lock that orders the acts on workspace `slug`.
    fn ops(&self, slug: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.ops
            .lock()
            .expect("console ops lock")
            .entry(slug.to_owned())
            .or_default()
            .clone()
    }

    /// Rebuilds the console's view from hearth (a restarted console, or a workspace this
    /// console has not seen): hearth owns the state machine, the console only mirrors it.
    pub async fn reconcile(&self) -> Result<usize, crate::hearth::client::HearthError> {
        let known = self
            .config
            .hearth
            .list(self.config.deadlines.worker_call)
            .await?;
        let mut ws = self.workspaces.lock().expect("console state lock");
        let mut added = 0;
        for dep in known {
            ws.entry(dep.slug.clone()).or_insert_with(|| {
                added += 1;
                WorkspaceView {
                    slug: dep.slug,
                    tier: dep.tier,
                    status: dep.status,
                }
            });
        }
        Ok(added)
    }

    /// Keeps `entry` for readers, first dropping the ended runs past [`crate::retention`]'s
    /// bounds: the console's memory stays bounded however many runs pass through it. Returns
    /// the evicted runs the worker may still be executing (the caller cancels them).
    fn keep_run(&self, run_id: String, entry: Arc<RunEntry>) -> Vec<String> {
        use crate::retention::{RunAge, evictions};
        let mut runs = self.runs.lock().expect("console state lock");
        let ages = runs.iter().map(|(id, e)| {
            let age = RunAge {
                created: e.created,
                finished: e.is_closed(),
            };
            (id.clone(), age)
        });
        let mut live = Vec::new();
        for id in evictions(ages, std::time::Instant::now()) {
            if let Some(gone) = runs.remove(&id)
                && !gone.worker_done()
            {
                live.push(id);
            }
        }
        runs.insert(run_id, entry);
        live
    }
}

/// The 500 of a detached piece of work (a provision, a run admission) that ended without an
/// answer (it panicked): the caller learns it, the console keeps serving.
pub(crate) fn lost(what: &str, e: tokio::task::JoinError) -> crate::http::ApiError {
    crate::http::ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        format!("the {what} ended without an answer: {e}"),
    )
}

/// Most rejected frames a run's view keeps (the count goes on); the first is the evidence.
const MAX_REJECTED_KEPT: usize = 32;
/// Longest reason kept for a rejected frame or an unrecorded record: the peer chooses what
/// goes into some of them (a field name).
const MAX_REASON_LEN: usize = 240;

impl RunEntry {
    fn new(view: RunView, expected_nodes: usize) -> RunEntry {
        RunEntry {
            view: Mutex::new(view),
            ended: watch::channel(false).0,
            expected_nodes,
            closed: Mutex::new(false),
            created: std::time::Instant::now(),
            worker_done: AtomicBool::new(false),
            cancel_requested: AtomicBool::new(false),
        }
    }

    /// Whether `ralph.run.ended` was recorded.
    fn is_closed(&self) -> bool {
        *self.closed.lock().expect("run closed lock")
    }

    /// Whether the worker's run is known to be over.
    fn worker_done(&self) -> bool {
        self.worker_done.load(Ordering::SeqCst)
    }

    fn set_worker_done(&self) {
        self.worker_done.store(true, Ordering::SeqCst);
    }

    /// Appends a record the follower observed (no caller to refuse). A record that cannot be
    /// written is kept on the run's view (`unrecorded`), so the run cannot read `succeeded`
    /// with its records missing, and the report shows it.
    fn record(&self, console: &Console, event: crate::hatch::Event) {
        let kind = event.kind;
        if let Err(e) = console.config.hatch.append(event) {
            tracing::error!("failed to append {kind} to the HATCH log: {e}");
            self.view
                .lock()
                .expect("run view lock")
                .unrecorded
                .push(UnrecordedRecord {
                    kind: kind.to_string(),
                    error: crate::client::worker::truncate(e.to_string(), MAX_REASON_LEN),
                });
        }
    }

    /// Records `event` about this run unless it has ended.
    fn record_open(&self, console: &Console, event: crate::hatch::Event) {
        let closed = self.closed.lock().expect("run closed lock");
        if !*closed {
            self.record(console, event);
        }
    }

    /// Keeps a refused frame as evidence, within bounds: every one is counted, the first
    /// [`MAX_REJECTED_KEPT`] are kept with their reasons.
    fn reject(&self, event_id: Option<String>, reason: String) {
        let mut v = self.view.lock().expect("run view lock");
        v.rejected_total += 1;
        if v.rejected_frames.len() < MAX_REJECTED_KEPT {
            v.rejected_frames.push(RejectedFrame {
                event_id: event_id.map(|id| crate::client::worker::truncate(id, 32)),
                reason: crate::client::worker::truncate(reason, MAX_REASON_LEN),
            });
        }
    }

    /// Ends the run once: its view takes `status` (and `failure` as its error), and
    /// `ralph.run.ended` is recorded with the counts and the reason. A run some of whose
    /// records could not be written never ends `succeeded`. False if it had ended.
    fn close(
        &self,
        console: &Console,
        status: crate::kahn::RunStatus,
        failure: Option<String>,
    ) -> bool {
        use crate::kahn::RunStatus;
        let mut closed = self.closed.lock().expect("run closed lock");
        if *closed {
            return false;
        }
        let (run_id, workspace, nodes_seen, rejected, status, failure) = {
            let mut v = self.view.lock().expect("run view lock");
            let (status, failure) = match v.unrecorded.first() {
                Some(first) if status == RunStatus::Succeeded => (
                    RunStatus::Failed,
                    Some(unrecorded_reason(v.unrecorded.len(), first)),
                ),
                _ => (status, failure),
            };
            v.status = status;
            v.error = failure.clone();
            (
                v.run_id.clone(),
                v.workspace.clone(),
                v.nodes.len(),
                v.rejected_total,
                status,
                failure,
            )
        };
        let mut data = serde_json::json!({
            "status": status,
            "nodes": nodes_seen,
            "expected_nodes": self.expected_nodes,
            "rejected_frames": rejected,
        });
        if let Some(reason) = &failure {
            data["reason"] = serde_json::Value::String(reason.clone());
        }
        self.record(
            console,
            crate::hatch::Event::new(crate::hatch::EventKind::RunEnded, "system")
                .workspace(&workspace)
                .run_id(&run_id)
                .data(data),
        );
        {
            // Its own end could not be written: the view says so rather than `succeeded`.
            let mut v = self.view.lock().expect("run view lock");
            if v.status == RunStatus::Succeeded
                && let Some(first) = v.unrecorded.first()
            {
                let reason = unrecorded_reason(v.unrecorded.len(), first);
                v.status = RunStatus::Failed;
                v.error = Some(reason);
            }
        }
        *closed = true;
        drop(closed);
        self.ended.send_replace(true);
        true
    }

    /// How many frames the console refused so far.
    fn rejected(&self) -> u64 {
        self.view.lock().expect("run view lock").rejected_total
    }
}

/// The fixed sentence for a run some of whose records the HATCH log refused.
fn unrecorded_reason(count: usize, first: &UnrecordedRecord) -> String {
    format!(
        "{count} record(s) of the run could not be appended to the HATCH log (first: {}: {})",
        first.kind, first.error
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejected_frames_are_bounded_in_number_and_length() {
        let entry = RunEntry::new(
            RunView {
                run_id: "run-1".into(),
                workspace: "ws".into(),
                status: crate::kahn::RunStatus::Running,
                nodes: Vec::new(),
                rejected_frames: Vec::new(),
                rejected_total: 0,
                unrecorded: Vec::new(),
                error: None,
            },
            1,
        );
        let long = "é".repeat(10_000);
        for i in 0..1000 {
            entry.reject(Some(format!("{i}{}", "9".repeat(1000))), long.clone());
        }
        let v = entry.view.lock().expect("view");
        assert_eq!(v.rejected_total, 1000);
        assert_eq!(v.rejected_frames.len(), MAX_REJECTED_KEPT);
        for f in &v.rejected_frames {
            assert!(
                f.reason.len() <= MAX_REASON_LEN + '…'.len_utf8(),
                "{}",
                f.reason.len()
            );
            assert!(f.event_id.as_ref().is_some_and(|id| id.len() <= 32 + 3));
        }
        drop(v);
        assert_eq!(entry.rejected(), 1000);
    }
}
