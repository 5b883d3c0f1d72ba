//! The console (contract §4): the HTTP API users and the harness drive. It authenticates with
//! LocalAuth, provisions through hearth, submits runs to the worker with the HMAC bearer,
//! follows each run's KAHN stream, and writes every lifecycle act to the HATCH log.
//!
//! Bad input is refused before anything happens: no provision call, no HATCH record.

mod audit;
mod routes;
mod stream;

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
    /// A teardown call to hearth (hearth enforces its own, shorter, deadline inside).
    pub teardown: Duration,
    /// From submission to `RunEnded`; past it the run ends `failed`.
    pub run: Duration,
    /// A single request to the worker.
    pub worker_call: Duration,
}

impl Default for Deadlines {
    fn default() -> Self {
        Deadlines {
            provision: Duration::from_secs(90),
            teardown: Duration::from_secs(90),
            run: Duration::from_secs(60),
            worker_call: Duration::from_secs(10),
        }
    }
}

/// A run the console follows: its view plus a signal for waiters.
struct RunEntry {
    view: Mutex<RunView>,
    /// Flips to true when the run has ended; `?wait=` requests wait on it.
    ended: watch::Sender<bool>,
}

/// The console's shared state.
pub struct Console {
    config: ConsoleConfig,
    /// Reused for every worker call: one connection pool, kept alive.
    http: reqwest::Client,
    workspaces: Mutex<HashMap<String, WorkspaceView>>,
    runs: Mutex<HashMap<String, Arc<RunEntry>>>,
}

impl Console {
    pub fn new(config: ConsoleConfig) -> Arc<Console> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .expect("a plain HTTP client builds");
        Arc::new(Console {
            config,
            http,
            workspaces: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
        })
    }

    /// The routes of contract §4.
    pub fn router(self: Arc<Self>) -> axum::Router {
        routes::router(self)
    }

    /// Appends a lifecycle record, failing closed: when the append fails the action must be
    /// refused (503 `audit_unavailable`) and undone, so an audit gap is never silent.
    fn audit(&self, event: crate::hatch::Event) -> Result<(), crate::http::ApiError> {
        let kind = event.kind;
        self.config.hatch.append(event).map(|_| ()).map_err(|e| {
            tracing::error!("refusing {kind}: the HATCH append failed: {e}");
            audit_unavailable(kind, &e)
        })
    }

    /// Appends a record the stream follower observed (no caller to refuse). A record that
    /// cannot be written is logged loudly and kept on the run's view as its error.
    fn record(&self, event: crate::hatch::Event) {
        if let Err(e) = self.config.hatch.append(event) {
            tracing::error!("failed to append to the HATCH log: {e}");
        }
    }
}

/// The 503 a lifecycle action gets when its audit record cannot be written.
pub(crate) fn audit_unavailable(
    kind: crate::hatch::EventKind,
    e: &crate::hatch::HatchError,
) -> crate::http::ApiError {
    crate::http::ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "audit_unavailable",
        format!("refused: the audit record {kind} could not be written ({e}); nothing was changed"),
    )
}

impl RunEntry {
    /// How many frames the console refused so far.
    fn rejected(&self) -> usize {
        self.view
            .lock()
            .expect("run view lock")
            .rejected_frames
            .len()
    }
}
