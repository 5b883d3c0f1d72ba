//! The console (contract §4): the HTTP API users and the harness drive. It authenticates with
//! LocalAuth, provisions through hearth, submits runs to the worker with the HMAC bearer,
//! follows each run's KAHN stream, and writes every lifecycle act to the HATCH log.
//!
//! Bad input is refused before anything happens: no provision call, no HATCH record.

mod audit;
mod routes;
mod stream;
mod workspaces;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use crate::auth::LocalAuth;
use crate::hatch::Hatch;
use crate::hearth::client::HearthClient;

use crate::tier::TierProfile;
use crate::vault::Keyring;

pub use crate::api::console::{NodeView, RejectedFrame, RunView, WorkspaceView};
pub use routes::MAX_BODY_BYTES;
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
}

/// The console's shared state.
pub struct Console {
    config: ConsoleConfig,
    /// Reused for every worker call: one connection pool, kept alive.
    http: reqwest::Client,
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
        // A worker address that swallows packets (a killed container's) fails a connect at
        // the worker-call deadline, not at the kernel's minutes of SYN retries.
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(config.deadlines.worker_call)
            .build()
            .expect("a plain HTTP client builds");
        Arc::new(Console {
            config,
            http,
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
    /// bounds: the console's memory stays bounded however many runs pass through it.
    fn keep_run(&self, run_id: String, entry: Arc<RunEntry>) {
        use crate::retention::{RunAge, evictions};
        let mut runs = self.runs.lock().expect("console state lock");
        let ages = runs.iter().map(|(id, e)| {
            let age = RunAge {
                created: e.created,
                finished: e.is_closed(),
            };
            (id.clone(), age)
        });
        for id in evictions(ages, std::time::Instant::now()) {
            runs.remove(&id);
        }
        runs.insert(run_id, entry);
    }
}

/// The fixed sentence for a call to the worker that got no answer, for records and snapshots.
/// Whether the connection was refused, timed out or dropped depends on how the worker went
/// away and on the network (a dead container's address may swallow packets or answer with an
/// unreachable host), so the record does not say; the full error goes to the log.
pub(crate) const WORKER_UNREACHABLE: &str = "the worker could not be reached";

/// The 500 of a detached piece of work (a provision, a run admission) that ended without an
/// answer (it panicked): the caller learns it, the console keeps serving.
pub(crate) fn lost(what: &str, e: tokio::task::JoinError) -> crate::http::ApiError {
    crate::http::ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the {what} ended without an answer: {e}"),
    )
}

impl RunEntry {
    fn new(view: RunView, expected_nodes: usize) -> RunEntry {
        RunEntry {
            view: Mutex::new(view),
            ended: watch::channel(false).0,
            expected_nodes,
            closed: Mutex::new(false),
            created: std::time::Instant::now(),
        }
    }

    /// Whether `ralph.run.ended` was recorded.
    fn is_closed(&self) -> bool {
        *self.closed.lock().expect("run closed lock")
    }

    /// Records `event` about this run unless it has ended.
    fn record_open(&self, console: &Console, event: crate::hatch::Event) {
        let closed = self.closed.lock().expect("run closed lock");
        if !*closed {
            console.record(event);
        }
    }

    /// Ends the run once: its view takes `status` (and `failure` as its error), and
    /// `ralph.run.ended` is recorded with the counts and the reason. False if it had ended.
    fn close(
        &self,
        console: &Console,
        status: crate::kahn::RunStatus,
        failure: Option<String>,
    ) -> bool {
        let mut closed = self.closed.lock().expect("run closed lock");
        if *closed {
            return false;
        }
        let (run_id, workspace, nodes_seen, rejected) = {
            let mut v = self.view.lock().expect("run view lock");
            v.status = status;
            v.error = failure.clone();
            (
                v.run_id.clone(),
                v.workspace.clone(),
                v.nodes.len(),
                v.rejected_frames.len(),
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
        console.record(
            crate::hatch::Event::new(crate::hatch::EventKind::RunEnded, "system")
                .workspace(&workspace)
                .run_id(&run_id)
                .data(data),
        );
        *closed = true;
        drop(closed);
        self.ended.send_replace(true);
        true
    }

    /// How many frames the console refused so far.
    fn rejected(&self) -> usize {
        self.view
            .lock()
            .expect("run view lock")
            .rejected_frames
            .len()
    }
}
