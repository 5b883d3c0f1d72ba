//! The worker, `ralph serve` (contract §5): accepts runs behind the HMAC bearer, runs each
//! prompt as a KAHN node through the RALPH convergence loop, and streams the frames as SSE.
//! Its word is authenticated too: the 202 to a submission and every frame carry a MAC bound to
//! the request they answer ([`crate::vault::answer`]).
//!
//! - `model`: the deterministic mock model ([`MockModel`]).
//! - `run`: one run's frame log, the RALPH loop, and the follow lease that cancels a run
//!   nobody follows.
//! - `stream`: the authenticated SSE stream of a run's frames.
//! - `routes`: the HTTP routes.

mod model;
mod routes;
mod run;
mod stream;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, post};

use crate::api::worker::paths;
use crate::kahn::Encoding;
use crate::vault::{self, Keyring};

pub use crate::api::worker::{RunAccepted, SubmitRun};
pub use model::MockModel;

/// Upper bound on a submission body: prompts are short; anything bigger is a mistake or abuse.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Upper bound on `max_ralph_iters`, so a typo cannot start a near-endless loop.
pub const MAX_RALPH_ITERS: u32 = 100;
/// How long a run may go without an open event stream before the worker cancels it
/// (`ralph serve --follow-lease`).
pub const DEFAULT_FOLLOW_LEASE: Duration = Duration::from_secs(30);
/// Most submission nonces remembered as cancelled before they arrived.
const MAX_CANCELLED_NONCES: usize = 4096;

/// The worker's configuration.
pub struct WorkerConfig {
    /// Secrets read from VAULT; the console signs with the same.
    pub keyring: Keyring,
    /// Allowed clock skew of a bearer timestamp, both directions.
    pub max_skew_secs: i64,
    /// How frames are spelt (`kahn/1` as written by default).
    pub encoding: Encoding,
}

/// Shared worker state.
pub struct Worker {
    config: WorkerConfig,
    /// See [`DEFAULT_FOLLOW_LEASE`].
    follow_lease: Duration,
    runs: Mutex<HashMap<String, Arc<run::RunLog>>>,
    /// Submissions cancelled (by their bearer nonce) before they arrived, with when: one that
    /// arrives later is refused. Kept past the bearer's skew window, after which it would be
    /// refused anyway.
    cancelled_nonces: Mutex<VecDeque<(String, Instant)>>,
    /// Every bearer is accepted once.
    replay: vault::ReplayGuard,
}

impl Worker {
    /// A worker with the default follow lease.
    pub fn new(config: WorkerConfig) -> Arc<Worker> {
        Worker::with_follow_lease(config, DEFAULT_FOLLOW_LEASE)
    }

    /// A worker that cancels a run after `lease` without an open event stream.
    pub fn with_follow_lease(config: WorkerConfig, lease: Duration) -> Arc<Worker> {
        Arc::new(Worker {
            config,
            follow_lease: lease,
            runs: Mutex::new(HashMap::new()),
            cancelled_nonces: Mutex::new(VecDeque::new()),
            // Bearers signed before this worker started may have been accepted by the worker
            // that ran on this address before it: refused (see `vault::replay`).
            replay: vault::ReplayGuard::since(vault::DEFAULT_REPLAY_CAPACITY, vault::now_unix()),
        })
    }

    /// The routes of contract §5.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { StatusCode::OK }))
            .route(paths::RUNS, post(routes::submit))
            .route(paths::RUN, get(routes::state))
            .route(paths::EVENTS, get(routes::events))
            .route(paths::CANCEL, post(routes::cancel))
            .route(paths::CANCEL_SUBMISSION, post(routes::cancel_submission))
            .method_not_allowed_fallback(crate::http::wrong_method)
            .fallback(crate::http::no_such_route)
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(self)
    }

    /// The runs executing now, each holding one of the worker's slots: what a test checks
    /// against the runs the console still follows (slots come back).
    pub fn executing(&self) -> Vec<String> {
        let runs = self.runs.lock().expect("worker state lock");
        runs.iter()
            .filter(|(_, l)| !l.finished())
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// How often an idle event stream says it is alive: often enough that a follower that
    /// went away is noticed well within the lease.
    fn keep_alive(&self) -> Duration {
        (self.follow_lease / 3).clamp(Duration::from_millis(50), Duration::from_secs(15))
    }

    /// How long a cancelled submission nonce is remembered.
    fn nonce_memory(&self) -> Duration {
        Duration::from_secs(self.config.max_skew_secs.unsigned_abs().saturating_mul(2) + 1)
    }

    /// Remembers `nonce` as cancelled, forgetting the ones past [`Self::nonce_memory`].
    fn forbid_nonce(&self, nonce: &str) {
        let mut nonces = self.cancelled_nonces.lock().expect("worker nonce lock");
        let memory = self.nonce_memory();
        while nonces
            .front()
            .is_some_and(|(_, at)| at.elapsed() > memory || nonces.len() >= MAX_CANCELLED_NONCES)
        {
            nonces.pop_front();
        }
        nonces.push_back((nonce.to_owned(), Instant::now()));
    }

    fn nonce_forbidden(&self, nonce: &str) -> bool {
        let memory = self.nonce_memory();
        self.cancelled_nonces
            .lock()
            .expect("worker nonce lock")
            .iter()
            .any(|(n, at)| n == nonce && at.elapsed() <= memory)
    }
}
