//! hearth's HTTP routes (contract §3) and the workspace state machine behind them.
//!
//! One `Hearth` owns every workspace of this daemon. Routes never hold the state lock across a
//! driver call, so a slow teardown does not block `GET /v1/status`.
//!
//! A restarted hearth first rediscovers what an earlier one left ([`Hearth::begin_rediscovery`]),
//! retrying with backoff while the engine does not answer. Until its view is complete it
//! answers 503 `rediscovering` about any slug it cannot place, never 404: a workspace it has
//! not found yet may well exist.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::driver::{Driver, Found, HealthCheck, Provisioned};
use super::{
    DeploymentRef, DriverTimings, ProvisionRequest, Status, StatusReport, TeardownRequest,
};
use crate::api::ErrorCode;
use crate::http::error;

/// How a provision ended: what it made, or why not with what of it could not be removed.
type ProvisionResult<T> = Result<Provisioned<T>, (String, Option<T>)>;

/// The result of an operation in flight: `None` until it settles. Every caller interested in
/// it (the request that started it, a concurrent teardown joining it) holds a receiver.
type Settled<T> = watch::Receiver<Option<T>>;

/// One workspace as hearth tracks it: its state machine
/// (`provisioning → ready | failed → tearing_down → tier_torn_down`).
struct Entry<T> {
    /// The answer hearth gives about it (status, services, last error).
    reference: DeploymentRef,
    /// The driver's handle; `None` while provisioning, after teardown, or after a failure.
    deployment: Option<T>,
    /// Time spent in the driver for this workspace so far.
    timings: DriverTimings,
    /// The provision in flight; settles with the final reference.
    provisioning: Option<Settled<DeploymentRef>>,
    /// The teardown in flight; a concurrent teardown joins it and shares its result.
    teardown: Option<Settled<StatusReport>>,
    /// A provision refused because the view was incomplete: it touched nothing, and what
    /// rediscovery finds of the slug replaces it.
    placeholder: bool,
    /// The caller's id of the provision this entry is ([`ProvisionRequest::attempt`]).
    attempt: Option<String>,
}

impl<T> Entry<T> {
    fn new(reference: DeploymentRef) -> Entry<T> {
        Entry {
            reference,
            deployment: None,
            timings: DriverTimings::default(),
            provisioning: None,
            teardown: None,
            placeholder: false,
            attempt: None,
        }
    }

    /// What hearth answers about this workspace (status route, end of a teardown).
    fn report(&self, slug: &str) -> StatusReport {
        StatusReport {
            slug: slug.into(),
            status: self.reference.status,
            error: self.reference.error.clone(),
            attempt: self.attempt.clone(),
            timings: self.timings,
        }
    }
}

/// How complete hearth's picture of what exists is.
#[derive(Clone, Debug)]
enum View {
    /// Rediscovery has not succeeded yet; `failures` attempts have failed so far.
    Rediscovering {
        failures: u32,
        last_error: Option<String>,
    },
    /// Every workspace that exists is in the book (or held elsewhere).
    Complete,
    /// Rediscovery's retries passed [`REDISCOVER_DEADLINE`]; the view stays incomplete.
    GaveUp { error: String },
}

/// Everything hearth knows, under one lock so that a rediscovery and a request never
/// interleave halfway.
struct Book<T> {
    /// Workspaces by slug: every state change is made holding the lock.
    workspaces: HashMap<String, Entry<T>>,
    /// Slugs a live owner elsewhere holds (another host or PID namespace), with why: never
    /// touched, answered 503.
    held: HashMap<String, String>,
    /// Whether rediscovery is complete.
    view: View,
}

impl<T> Book<T> {
    /// Why hearth cannot say whether `slug` exists (`None`: it can).
    fn unplaceable(&self, slug: &str) -> Option<String> {
        if let Some(reason) = self.held.get(slug) {
            return Some(format!("hearth cannot place workspace {slug}: {reason}"));
        }
        match &self.view {
            View::Complete => None,
            View::Rediscovering {
                failures,
                last_error,
            } => Some(format!(
                "hearth is still rediscovering the workspaces an earlier hearth left ({failures} attempts failed{}), so it cannot say whether {slug} exists; try again",
                last_error
                    .as_deref()
                    .map(|e| format!("; the last: {e}"))
                    .unwrap_or_default()
            )),
            View::GaveUp { error } => Some(format!(
                "hearth could not rediscover the workspaces an earlier hearth left ({error}), so it cannot say whether {slug} exists; restart hearth once the engine answers"
            )),
        }
    }
}

/// First pause between rediscovery attempts; doubled after each failure up to [`RETRY_MAX_PAUSE`].
const RETRY_FIRST_PAUSE: Duration = Duration::from_millis(100);
/// Longest pause between rediscovery attempts.
const RETRY_MAX_PAUSE: Duration = Duration::from_secs(5);
/// How long one rediscovery attempt may take: an engine that accepts but never answers. As
/// long as one engine call may (`docker::connect`'s per-call timeout): an attempt cut short
/// midway would be retried on a half-done adoption, so a slow engine under load is waited for.
const ATTEMPT_DEADLINE: Duration = Duration::from_secs(60);
/// How long rediscovery is retried before hearth gives up (and keeps answering 503).
const REDISCOVER_DEADLINE: Duration = Duration::from_secs(300);
/// How long hearth waits, before it says it is listening, for rediscovery's first attempt and
/// for the workspaces it adopted whose services already answer to be reported `ready` (as the
/// hearth before waited for them before it bound its socket). Under the harness's 10 s start
/// deadline; past it hearth says it listens and answers 503 / `provisioning` meanwhile. A
/// provision arriving while rediscovery runs waits for it as long.
const READY_WAIT: Duration = Duration::from_secs(8);

/// hearth's configuration and state.
pub struct Hearth<D: Driver> {
    /// Does the provisioning.
    driver: D,
    /// Deadline for a whole teardown; past it the workspace stays `tearing_down`.
    teardown_timeout: Duration,
    /// Deadline for every service of a workspace to answer its health route.
    health_timeout: Duration,
    /// Workspaces and the view, under one lock: every state change is made holding it.
    book: Mutex<Book<D::Deployment>>,
    /// Bumped on every change of the view, for whoever waits on rediscovery.
    view_changed: watch::Sender<u64>,
    /// Wakes the rediscovery loop early (a provision waits for a fresh attempt).
    poke: tokio::sync::Notify,
    /// The rediscovery loop, stopped at shutdown.
    rediscovery: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

fn bad_json(rejection: JsonRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        rejection.body_text(),
    )
}

/// Waits until `rx` settles. `None` if the work ended without an answer (it panicked).
async fn settled<T: Clone>(mut rx: Settled<T>) -> Option<T> {
    rx.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|v| v.clone())
}

fn lost(what: &str, slug: &str) -> Response {
    error(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Internal,
        format!("the {what} of {slug} ended without an answer"),
    )
}

/// A provision (or settling) in flight that has not been answered yet. Dropped unanswered (its
/// supervisor cancelled, as at runtime shutdown), it settles the workspace `failed`, so that
/// no one waits on it for ever and a teardown is not answered before it: the teardown then
/// removes what the driver finds of the workspace.
struct Unanswered<D: Driver> {
    hearth: Arc<Hearth<D>>,
    slug: String,
    /// When the work began: its time counts as the driver's.
    started: std::time::Instant,
    /// Taken when the answer is given; still here on drop means it never was.
    done: Option<watch::Sender<Option<DeploymentRef>>>,
}

impl<D: Driver> Drop for Unanswered<D> {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let why = "the provision ended without an answer (it was cancelled); a teardown removes what it made";
            self.hearth.finish_provision(
                &self.slug,
                Err((why.to_owned(), None)),
                self.started,
                done,
            );
        }
    }
}

impl<D: Driver> Hearth<D> {
    /// A hearth with nothing to rediscover: its view is complete from the start.
    pub fn new(driver: D, teardown_timeout: Duration, health_timeout: Duration) -> Hearth<D> {
        Hearth {
            driver,
            teardown_timeout,
            health_timeout,
            book: Mutex::new(Book {
                workspaces: HashMap::new(),
                held: HashMap::new(),
                view: View::Complete,
            }),
            view_changed: watch::channel(0).0,
            poke: tokio::sync::Notify::new(),
            rediscovery: Mutex::new(None),
        }
    }

    fn book(&self) -> std::sync::MutexGuard<'_, Book<D::Deployment>> {
        self.book.lock().expect("hearth state lock")
    }

    fn set_view(&self, book: &mut Book<D::Deployment>, view: View) {
        book.view = view;
        self.view_changed.send_modify(|v| *v += 1);
    }

    /// Starts adopting what an earlier hearth left (the driver's [`Found`]), in the background:
    /// from now until it succeeds the view is incomplete. An attempt that fails (the engine
    /// does not answer) is retried with backoff until [`REDISCOVER_DEADLINE`].
    pub fn begin_rediscovery(self: &Arc<Self>) {
        {
            let mut book = self.book();
            self.set_view(
                &mut book,
                View::Rediscovering {
                    failures: 0,
                    last_error: None,
                },
            );
        }
        let hearth = self.clone();
        let task = tokio::spawn(async move { hearth.rediscovery_loop().await });
        *self.rediscovery.lock().expect("hearth task lock") = Some(task);
    }

    /// Rediscovers and waits for the first attempt to end, and for what it found running to
    /// settle (bounded by [`READY_WAIT`]).
    pub async fn rediscover(self: &Arc<Self>) {
        self.begin_rediscovery();
        self.first_attempt().await;
    }

    /// Waits until rediscovery's first attempt has ended (succeeded, or failed and is being
    /// retried), then for the workspaces it adopted to settle, all within [`READY_WAIT`], so
    /// that whoever waits for hearth's ready line finds those that answer `ready`.
    pub async fn first_attempt(&self) {
        let mut changes = self.view_changed.subscribe();
        let attempt_then_settles = async {
            loop {
                let done = !matches!(self.book().view, View::Rediscovering { failures: 0, .. });
                if done || changes.changed().await.is_err() {
                    break;
                }
            }
            let settling: Vec<Settled<DeploymentRef>> = self
                .book()
                .workspaces
                .values()
                .filter_map(|e| e.provisioning.clone())
                .collect();
            futures::future::join_all(settling.into_iter().map(settled)).await;
        };
        if tokio::time::timeout(READY_WAIT, attempt_then_settles)
            .await
            .is_err()
        {
            tracing::warn!(
                "rediscovery not settled within {}; serving meanwhile",
                crate::duration::display(READY_WAIT)
            );
        }
    }

    async fn rediscovery_loop(self: Arc<Self>) {
        let deadline = tokio::time::Instant::now() + REDISCOVER_DEADLINE;
        let mut pause = RETRY_FIRST_PAUSE;
        let mut failures = 0;
        loop {
            let outcome = tokio::time::timeout(ATTEMPT_DEADLINE, self.driver.rediscover())
                .await
                .unwrap_or_else(|_| {
                    Err(format!(
                        "rediscovery did not finish within {}",
                        crate::duration::display(ATTEMPT_DEADLINE)
                    ))
                });
            let error = match outcome {
                Ok(found) => return self.install(found),
                Err(e) => e,
            };
            failures += 1;
            tracing::warn!(failures, "cannot rediscover workspaces yet: {error}");
            let view = if tokio::time::Instant::now() >= deadline {
                tracing::error!(
                    "giving up rediscovery after {}; answering 503 for unknown workspaces",
                    crate::duration::display(REDISCOVER_DEADLINE)
                );
                View::GaveUp {
                    error: format!(
                        "{failures} attempts over {} failed; the last: {error}",
                        crate::duration::display(REDISCOVER_DEADLINE)
                    ),
                }
            } else {
                View::Rediscovering {
                    failures,
                    last_error: Some(error),
                }
            };
            let gave_up = matches!(view, View::GaveUp { .. });
            self.set_view(&mut self.book(), view);
            if gave_up {
                return;
            }
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = self.poke.notified() => {}
            }
            pause = (pause * 2).min(RETRY_MAX_PAUSE);
        }
    }

    /// Enters what rediscovery found and completes the view, in one step under the lock.
    fn install(self: &Arc<Self>, found: Vec<Found<D::Deployment>>) {
        let mut book = self.book();
        for f in found {
            match f {
                Found::Settling {
                    mut reference,
                    deployment,
                    checks,
                } => {
                    tracing::info!(slug = reference.slug, "rediscovered workspace; settling");
                    let slug = reference.slug.clone();
                    reference.status = Status::Provisioning;
                    let (tx, rx) = watch::channel(None);
                    let mut entry = Entry::new(reference);
                    entry.provisioning = Some(rx);
                    book.workspaces.insert(slug.clone(), entry);
                    let hearth = self.clone();
                    let work = hearth.clone().settle(slug.clone(), deployment, checks);
                    tokio::spawn(hearth.supervise(slug, tx, work));
                }
                Found::Failed { reference } => {
                    tracing::info!(
                        slug = reference.slug,
                        "rediscovered workspace left incomplete: {}",
                        reference.error.as_deref().unwrap_or_default()
                    );
                    book.workspaces
                        .insert(reference.slug.clone(), Entry::new(reference));
                }
                Found::Held { slug, reason } => {
                    tracing::warn!(slug, "not adopting workspace: {reason}");
                    book.workspaces.remove(&slug);
                    book.held.insert(slug, reason);
                }
            }
        }
        self.set_view(&mut book, View::Complete);
    }

    /// Waits for the health routes of a rediscovered workspace; `ready` when they all answer
    /// within the health deadline, else it is torn down and `failed`.
    async fn settle(
        self: Arc<Self>,
        slug: String,
        mut deployment: D::Deployment,
        checks: Vec<HealthCheck>,
    ) -> ProvisionResult<D::Deployment> {
        let started = std::time::Instant::now();
        let deadline = crate::duration::deadline(started, self.health_timeout);
        let probes = checks.iter().map(|c| async move {
            super::driver::health::wait_healthy(&c.addr, &c.path, deadline)
                .await
                .map_err(|e| format!("service {} ({}{}): {e}", c.service, c.addr, c.path))
        });
        let failed = futures::future::join_all(probes)
            .await
            .into_iter()
            .find_map(Result::err);
        let services = self
            .book()
            .workspaces
            .get(&slug)
            .map(|e| e.reference.services.clone())
            .unwrap_or_default();
        match failed {
            None => Ok(Provisioned {
                services,
                health: started.elapsed(),
                deployment,
            }),
            Some(why) => {
                let undo = tokio::time::timeout(
                    self.teardown_timeout,
                    self.driver.teardown(&mut deployment),
                )
                .await;
                let kept = match undo {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => {
                        tracing::warn!(slug, "removing the unhealthy workspace failed: {e}");
                        Some(deployment)
                    }
                    Err(_) => Some(deployment),
                };
                Err((
                    format!(
                        "found provisioning when hearth restarted; not healthy within {}: {why}; {}",
                        crate::duration::display(self.health_timeout),
                        if kept.is_none() {
                            "removed"
                        } else {
                            "its removal did not finish"
                        }
                    ),
                    kept,
                ))
            }
        }
    }

    /// The router, ready to serve on a unix listener.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { StatusCode::OK }))
            .route("/v1/provision", post(provision::<D>))
            .route("/v1/teardown", post(teardown::<D>))
            .route("/v1/status/{slug}", get(status::<D>))
            .route("/v1/workspaces", get(list::<D>))
            // After every route; the same `{"error":…}` shape as every other answer, where
            // axum's own 404 and 405 have empty bodies.
            .method_not_allowed_fallback(crate::http::wrong_method)
            .fallback(crate::http::no_such_route)
            .with_state(self)
    }

    /// Tears down every workspace still up (waiting for provisions in flight first): hearth is
    /// exiting and must leave nothing behind.
    pub async fn shutdown(self: &Arc<Self>) {
        if let Some(task) = self.rediscovery.lock().expect("hearth task lock").take() {
            task.abort();
        }
        let slugs: Vec<String> = {
            let book = self.book();
            book.workspaces
                .iter()
                .filter(|(_, e)| e.deployment.is_some() || e.provisioning.is_some())
                .map(|(s, _)| s.clone())
                .collect()
        };
        for slug in slugs {
            if let Some(rx) = self.begin_teardown(&slug)
                && let Some(report) = settled(rx).await
            {
                tracing::info!(slug, status = %report.status, "teardown at shutdown");
            }
        }
        self.driver.sweep().await;
        // Process deployments that missed their deadline die with their `Child` handles.
        self.book().workspaces.clear();
    }

    /// Starts (or joins) the teardown of `slug`; `None` if hearth knows no such workspace. The
    /// work is detached from the caller: it runs to its end whoever waits for it. A teardown
    /// of a workspace still provisioning waits for the provision to settle first.
    fn begin_teardown(self: &Arc<Self>, slug: &str) -> Option<Settled<StatusReport>> {
        let mut book = self.book();
        let entry = book.workspaces.get_mut(slug)?;
        if let Some(rx) = &entry.teardown {
            return Some(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        entry.teardown = Some(rx.clone());
        let provisioning = entry.provisioning.clone();
        let hearth = self.clone();
        let slug = slug.to_owned();
        tokio::spawn(async move {
            if let Some(p) = provisioning {
                settled(p).await;
            }
            let report = hearth.teardown_slug(&slug).await;
            if let Some(e) = hearth.book().workspaces.get_mut(&slug) {
                e.teardown = None;
            }
            tx.send_replace(Some(report));
        });
        Some(rx)
    }

    /// Tears down what the workspace's handle names, then what the driver finds of it beyond
    /// that (a provision that ended without an answer leaves no handle): `tier_torn_down` only
    /// once both are gone. On error or past the deadline the status stays `tearing_down` and
    /// the handle is kept for a later attempt.
    async fn teardown_slug(&self, slug: &str) -> StatusReport {
        let mut deployment = {
            let mut book = self.book();
            let Some(entry) = book.workspaces.get_mut(slug) else {
                unreachable!("entries are never removed while a teardown is in flight")
            };
            entry.reference.status = Status::TearingDown;
            entry.deployment.take()
        };
        let had_handle = deployment.is_some();
        let work = async {
            if let Some(d) = deployment.as_mut() {
                self.driver.teardown(d).await?;
            }
            self.driver.remove_remains(slug).await
        };
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(self.teardown_timeout, work).await;
        let mut book = self.book();
        let entry = book.workspaces.get_mut(slug).expect("entry exists");
        entry.timings.driver_ms += started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(Ok(removed)) => {
                if !removed.is_empty() {
                    tracing::warn!(slug, ?removed, "teardown removed what no handle named");
                }
                entry.reference.status = Status::TierTornDown;
                entry.reference.services.clear();
                if !had_handle {
                    // Nothing was running (the provision failed): the answer carries no error,
                    // the status keeps why the provision failed.
                    return StatusReport {
                        error: None,
                        ..entry.report(slug)
                    };
                }
                entry.reference.error = None;
            }
            Ok(Err(e)) => {
                entry.reference.error = Some(format!("teardown failed: {e}"));
                entry.deployment = deployment;
            }
            Err(_) => {
                entry.reference.error = Some(format!(
                    "teardown deadline {} passed; services still stopping",
                    crate::duration::display(self.teardown_timeout)
                ));
                // Keep the handle: shutdown (or the harness's sweep) removes it later.
                entry.deployment = deployment;
            }
        }
        entry.report(slug)
    }

    /// The provision itself, detached from the request that asked for it.
    async fn run_provision(
        self: Arc<Self>,
        slug: String,
        profile: crate::tier::TierProfile,
        done: watch::Sender<Option<DeploymentRef>>,
    ) {
        let hearth = self.clone();
        let target = slug.clone();
        let work = async move {
            hearth
                .driver
                .provision(&target, &profile, hearth.health_timeout)
                .await
                .map_err(|e| (e, None))
        };
        self.supervise(slug, done, work).await;
    }

    /// Runs `work` (a provision, or the settling of a rediscovered workspace) on a task of its
    /// own and records how it ended, whatever ends it: a task that panics or is cancelled
    /// settles the workspace `failed`, saying so, once what the driver finds of it is removed
    /// ([`Driver::remove_remains`]); and should this supervisor itself be dropped, [`Unanswered`]
    /// settles it `failed` on the way out (a teardown then removes what remains). A workspace
    /// is never left `provisioning` with nobody to settle it.
    async fn supervise(
        self: Arc<Self>,
        slug: String,
        done: watch::Sender<Option<DeploymentRef>>,
        work: impl Future<Output = ProvisionResult<D::Deployment>> + Send + 'static,
    ) {
        let mut answer = Unanswered {
            hearth: self.clone(),
            slug: slug.clone(),
            started: std::time::Instant::now(),
            done: Some(done),
        };
        let result = match tokio::spawn(work).await {
            Ok(result) => result,
            Err(lost) => Err((self.after_lost_task(&slug, lost).await, None)),
        };
        if let Some(done) = answer.done.take() {
            self.finish_provision(&slug, result, answer.started, done);
        }
    }

    /// The reason a provision whose task ended without an answer is `failed`: how it ended
    /// (its panic's message, or cancelled), and what became of what it made, which the driver
    /// looks for and removes first (within the teardown deadline).
    async fn after_lost_task(&self, slug: &str, lost: tokio::task::JoinError) -> String {
        let how = if lost.is_panic() {
            let panic = lost.into_panic();
            let message = panic
                .downcast_ref::<&str>()
                .map(|m| (*m).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "no message".to_owned());
            format!("it panicked: {message}")
        } else {
            "it was cancelled".to_owned()
        };
        tracing::error!(
            slug,
            "the provision ended without an answer ({how}); removing what it made"
        );
        let removal =
            tokio::time::timeout(self.teardown_timeout, self.driver.remove_remains(slug)).await;
        let what = match removal {
            Ok(Ok(removed)) if removed.is_empty() => "nothing of it remained".to_owned(),
            Ok(Ok(removed)) => format!("removed {}", removed.join(", ")),
            Ok(Err(e)) => format!("removing what it made failed ({e}); a teardown tries again"),
            Err(_) => format!(
                "removing what it made did not finish within {}; a teardown tries again",
                crate::duration::display(self.teardown_timeout)
            ),
        };
        format!("the provision ended without an answer ({how}); {what}")
    }

    /// Records how a provision (or the settling of a rediscovered workspace) ended and tells
    /// whoever waits. On failure, a deployment whose removal did not finish is kept for teardown.
    fn finish_provision(
        &self,
        slug: &str,
        result: ProvisionResult<D::Deployment>,
        started: std::time::Instant,
        done: watch::Sender<Option<DeploymentRef>>,
    ) {
        let mut book = self.book();
        let entry = book
            .workspaces
            .get_mut(slug)
            .expect("entries are never removed while a provision is in flight");
        entry.timings.driver_ms += started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(Provisioned {
                services,
                health,
                deployment,
            }) => {
                entry.timings.health_ms += health.as_secs_f64() * 1000.0;
                entry.reference.status = Status::Ready;
                entry.reference.services = services;
                entry.deployment = Some(deployment);
            }
            Err((e, kept)) => {
                tracing::warn!(slug, "provision failed: {e}");
                entry.reference.status = Status::Failed;
                entry.reference.error = Some(e);
                entry.deployment = kept;
            }
        }
        entry.provisioning = None;
        done.send_replace(Some(entry.reference.clone()));
    }

    /// Waits (bounded) for a rediscovery attempt that starts after now, so a provision is
    /// never refused on a stale failure. `None`: the view is complete; else why not.
    async fn fresh_view(&self) -> Option<String> {
        let mut changes = self.view_changed.subscribe();
        let seen = match &self.book().view {
            View::Complete => return None,
            View::GaveUp { .. } => u32::MAX,
            View::Rediscovering { failures, .. } => *failures,
        };
        self.poke.notify_one();
        let wait = async {
            loop {
                let moved = match &self.book().view {
                    View::Complete | View::GaveUp { .. } => true,
                    View::Rediscovering { failures, .. } => *failures > seen,
                };
                if moved || changes.changed().await.is_err() {
                    break;
                }
            }
        };
        let _ = tokio::time::timeout(READY_WAIT, wait).await;
        match &self.book().view {
            View::Complete => None,
            View::GaveUp { error } => Some(error.clone()),
            View::Rediscovering { last_error, .. } => Some(
                last_error
                    .clone()
                    .unwrap_or_else(|| "hearth is still rediscovering its workspaces".into()),
            ),
        }
    }
}

/// 503 `rediscovering`: hearth cannot say whether the workspace exists (yet).
fn rediscovering(why: String) -> Response {
    error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Rediscovering,
        why,
    )
}

async fn provision<D: Driver>(
    State(hearth): State<Arc<Hearth<D>>>,
    body: Result<Json<ProvisionRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(r) => return bad_json(r),
    };
    if let Err(e) = crate::slug::validate(&req.slug) {
        return error(StatusCode::BAD_REQUEST, ErrorCode::BadSlug, e.to_string());
    }
    if let Err(e) = req.profile.check() {
        return error(StatusCode::BAD_REQUEST, ErrorCode::BadProfile, e);
    }
    // Detached from here on: a caller that hangs up (its own deadline passed) ends this
    // handler, not the provision it sent, so what it asks hearth next is about a provision
    // hearth took (or refused), never one dropped half-way.
    let slug = req.slug.clone();
    match tokio::spawn(take_provision(hearth, req)).await {
        Ok(answer) => answer,
        Err(_) => lost("provision", &slug),
    }
}

/// The provision `req` from the check of the slug on: refused, or placed in the book and
/// started, and answered once it settles.
async fn take_provision<D: Driver>(hearth: Arc<Hearth<D>>, req: ProvisionRequest) -> Response {
    if let Some(why) = hearth.book().held.get(&req.slug) {
        return rediscovering(format!("hearth cannot place workspace {}: {why}", req.slug));
    }
    // Until rediscovery is complete the slug may exist: refuse the provision without touching
    // anything, with the reason (the engine's own error when it does not answer).
    let incomplete = hearth.fresh_view().await;
    let (tx, rx) = watch::channel(None);
    {
        let mut book = hearth.book();
        let ws = &mut book.workspaces;
        if let Some(existing) = ws.get(&req.slug)
            && (existing.teardown.is_some()
                || !matches!(
                    existing.reference.status,
                    Status::TierTornDown | Status::Failed
                ))
        {
            return error(
                StatusCode::CONFLICT,
                ErrorCode::SlugInUse,
                format!(
                    "workspace {} exists with status {}",
                    req.slug, existing.reference.status
                ),
            );
        }
        let reference = DeploymentRef {
            slug: req.slug.clone(),
            tier: req.profile.name.clone(),
            driver: D::KIND,
            status: Status::Provisioning,
            services: Vec::new(),
            error: None,
        };
        let view_now_complete = matches!(book.view, View::Complete);
        if let Some(why) = incomplete.filter(|_| !view_now_complete) {
            let mut entry = Entry::new(DeploymentRef {
                status: Status::Failed,
                error: Some(why),
                ..reference
            });
            entry.placeholder = true;
            entry.attempt = req.attempt.clone();
            let answer = entry.reference.clone();
            book.workspaces.insert(req.slug.clone(), entry);
            return Json(answer).into_response();
        }
        let mut entry = Entry::new(reference);
        entry.provisioning = Some(rx.clone());
        entry.attempt = req.attempt.clone();
        book.workspaces.insert(req.slug.clone(), entry);
    }
    // Detached: a caller that hangs up ends this handler, not the provision.
    tokio::spawn(
        hearth
            .clone()
            .run_provision(req.slug.clone(), req.profile, tx),
    );
    match settled(rx).await {
        Some(reference) => Json(reference).into_response(),
        None => lost("provision", &req.slug),
    }
}

async fn teardown<D: Driver>(
    State(hearth): State<Arc<Hearth<D>>>,
    body: Result<Json<TeardownRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(r) => return bad_json(r),
    };
    {
        let book = hearth.book();
        let placeable = match book.workspaces.get(&req.slug) {
            Some(e) => !e.placeholder,
            None => false,
        };
        if !placeable && let Some(why) = book.unplaceable(&req.slug) {
            return rediscovering(why);
        }
    }
    let Some(rx) = hearth.begin_teardown(&req.slug) else {
        return error(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            format!("no workspace {}", req.slug),
        );
    };
    match settled(rx).await {
        Some(report) => Json(report).into_response(),
        None => lost("teardown", &req.slug),
    }
}

/// `GET /v1/workspaces`: every workspace hearth knows, for a console rebuilding its view.
async fn list<D: Driver>(State(hearth): State<Arc<Hearth<D>>>) -> Response {
    let book = hearth.book();
    // A partial list would make a console forget workspaces that exist.
    if !matches!(book.view, View::Complete) {
        return rediscovering(
            book.unplaceable("any workspace")
                .unwrap_or_else(|| "hearth is rediscovering".into()),
        );
    }
    let mut all: Vec<DeploymentRef> = book
        .workspaces
        .values()
        .map(|e| e.reference.clone())
        .collect();
    all.sort_by(|a, b| a.slug.cmp(&b.slug));
    Json(all).into_response()
}

async fn status<D: Driver>(
    State(hearth): State<Arc<Hearth<D>>>,
    slug: Result<UrlPath<String>, PathRejection>,
) -> Response {
    let slug = match slug {
        Ok(UrlPath(slug)) => slug,
        Err(r) => return crate::http::bad_path(r).into_response(),
    };
    let book = hearth.book();
    match book.workspaces.get(&slug) {
        Some(e) => Json(e.report(&slug)).into_response(),
        None => match book.unplaceable(&slug) {
            Some(why) => rediscovering(why),
            None => error(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("no workspace {slug}"),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::client::hearth::HearthClient;
    use crate::tier::{ServiceSpec, TierProfile};

    /// How the fake driver's provisions end.
    #[derive(Clone, Copy, Debug)]
    enum Ends {
        Ready,
        /// After making its objects, adds the health deadline to a clock unchecked: with
        /// `Duration::MAX` the task panics (what `--health-timeout 18446744073709551615s` did
        /// in the Docker driver).
        Panics,
        /// Fails and says nothing remains, though its objects do (a rollback that missed).
        FailsLeavingObjects,
    }

    /// A driver over a fake engine: a set of `<slug>/<object>` names.
    struct Fake {
        engine: Arc<Mutex<BTreeSet<String>>>,
        ends: Mutex<Ends>,
        /// `false`: the engine does not answer (remove_remains cannot tell what exists).
        answers: std::sync::atomic::AtomicBool,
    }

    impl Fake {
        fn new(ends: Ends) -> (Fake, Arc<Mutex<BTreeSet<String>>>) {
            let engine = Arc::new(Mutex::new(BTreeSet::new()));
            let fake = Fake {
                engine: engine.clone(),
                ends: Mutex::new(ends),
                answers: true.into(),
            };
            (fake, engine)
        }
    }

    impl Driver for Fake {
        type Deployment = Vec<String>;
        const KIND: crate::api::hearth::DriverKind = crate::api::hearth::DriverKind::Process;

        async fn provision(
            &self,
            slug: &str,
            _profile: &TierProfile,
            health_timeout: Duration,
        ) -> Result<Provisioned<Vec<String>>, String> {
            let made = vec![format!("{slug}/network"), format!("{slug}/cairnet")];
            self.engine.lock().unwrap().extend(made.iter().cloned());
            tokio::task::yield_now().await;
            let ends = *self.ends.lock().unwrap();
            match ends {
                Ends::Ready => Ok(Provisioned {
                    services: Vec::new(),
                    health: Duration::ZERO,
                    deployment: made,
                }),
                Ends::Panics => {
                    let deadline = std::time::Instant::now() + health_timeout;
                    Err(format!("unreachable with Duration::MAX: {deadline:?}"))
                }
                Ends::FailsLeavingObjects => Err("the engine refused a container".into()),
            }
        }

        async fn teardown(&self, deployment: &mut Vec<String>) -> Result<(), String> {
            let mut engine = self.engine.lock().unwrap();
            for o in deployment.iter() {
                engine.remove(o);
            }
            Ok(())
        }

        async fn remove_remains(&self, slug: &str) -> Result<Vec<String>, String> {
            if !self.answers.load(std::sync::atomic::Ordering::SeqCst) {
                return Err("the engine does not answer".into());
            }
            let mut engine = self.engine.lock().unwrap();
            let remains: Vec<String> = engine
                .iter()
                .filter(|o| o.starts_with(&format!("{slug}/")))
                .cloned()
                .collect();
            for o in &remains {
                engine.remove(o);
            }
            Ok(remains)
        }
    }

    fn profile() -> TierProfile {
        TierProfile {
            name: "solo".into(),
            services: vec![ServiceSpec {
                name: "cairnet".into(),
                image: "standin".into(),
                port: 8080,
                health: "/healthz".into(),
                env: Default::default(),
            }],
        }
    }

    /// `hearth` served on a socket in `dir`, and a client of it.
    fn serve(hearth: Arc<Hearth<Fake>>, dir: &std::path::Path) -> HearthClient {
        let socket = dir.join("hearth.sock");
        let listener = crate::hearth::socket::bind_socket(&socket).expect("bind hearth");
        tokio::spawn(crate::http::serve(
            listener,
            hearth.router(),
            std::future::pending(),
        ));
        HearthClient::new(&socket)
    }

    const PATIENCE: Duration = Duration::from_secs(20);

    /// A provision task that panics (the overflow the black-box tester found) is answered
    /// `failed`, saying why, with what it made removed; the slug is not stuck `provisioning`
    /// (a new provision is taken), and its teardown is `tier_torn_down` with nothing left.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_provision_whose_task_panics_settles_failed_and_removes_what_it_made() {
        let (fake, engine) = Fake::new(Ends::Panics);
        let hearth = Arc::new(Hearth::new(fake, Duration::from_secs(5), Duration::MAX));
        let dir = tempfile::tempdir().unwrap();
        let client = serve(hearth.clone(), dir.path());

        let answer = client
            .provision("t3", &profile(), PATIENCE)
            .await
            .expect("the provision is answered");
        assert_eq!(answer.status, Status::Failed, "{answer:?}");
        let why = answer.error.unwrap_or_default();
        assert!(
            why.contains(
                "ended without an answer (it panicked: overflow when adding duration to instant)"
            ) && why.contains("removed t3/cairnet, t3/network"),
            "{why}"
        );
        assert!(engine.lock().unwrap().is_empty(), "left: {engine:?}");
        let status = client.status("t3", PATIENCE).await.expect("status");
        assert_eq!(status.status, Status::Failed);

        *hearth.driver.ends.lock().unwrap() = Ends::Ready;
        let again = client
            .provision("t3", &profile(), PATIENCE)
            .await
            .expect("a new provision of t3 is taken");
        assert_eq!(again.status, Status::Ready, "{again:?}");
        let down = client.teardown("t3", PATIENCE).await.expect("teardown");
        assert_eq!(down.status, Status::TierTornDown, "{down:?}");
        assert!(engine.lock().unwrap().is_empty(), "left: {engine:?}");
    }

    /// A workspace whose objects no handle names (its provision failed and claimed to have
    /// removed them) is not `tier_torn_down` until the driver has looked for them and removed
    /// them: while it cannot tell (the engine does not answer), the teardown says so and the
    /// status stays `tearing_down`.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_teardown_is_never_torn_down_while_something_of_the_workspace_remains() {
        let (fake, engine) = Fake::new(Ends::FailsLeavingObjects);
        let hearth = Arc::new(Hearth::new(
            fake,
            Duration::from_secs(5),
            Duration::from_secs(5),
        ));
        let dir = tempfile::tempdir().unwrap();
        let client = serve(hearth.clone(), dir.path());

        let failed = client
            .provision("x", &profile(), PATIENCE)
            .await
            .expect("the provision is answered");
        assert_eq!(failed.status, Status::Failed, "{failed:?}");
        assert_eq!(engine.lock().unwrap().len(), 2);

        hearth
            .driver
            .answers
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let blind = client.teardown("x", PATIENCE).await.expect("teardown");
        assert_eq!(blind.status, Status::TearingDown, "{blind:?}");
        assert!(
            blind
                .error
                .as_deref()
                .is_some_and(|e| e.contains("the engine does not answer")),
            "{blind:?}"
        );
        assert_eq!(engine.lock().unwrap().len(), 2);

        hearth
            .driver
            .answers
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let down = client.teardown("x", PATIENCE).await.expect("teardown");
        assert_eq!(down.status, Status::TierTornDown, "{down:?}");
        assert!(engine.lock().unwrap().is_empty(), "left: {engine:?}");
    }

    /// A provision whose supervising task is dropped (cancelled, as at runtime shutdown)
    /// settles `failed` all the same: whoever waits on it gets an answer.
    #[tokio::test]
    async fn a_provision_whose_supervisor_is_cancelled_settles_failed() {
        let (fake, _engine) = Fake::new(Ends::Ready);
        let hearth = Arc::new(Hearth::new(
            fake,
            Duration::from_secs(5),
            Duration::from_secs(5),
        ));
        let (tx, rx) = watch::channel(None);
        {
            let mut entry = Entry::new(DeploymentRef {
                slug: "c".into(),
                tier: "solo".into(),
                driver: Fake::KIND,
                status: Status::Provisioning,
                services: Vec::new(),
                error: None,
            });
            entry.provisioning = Some(rx.clone());
            hearth.book().workspaces.insert("c".into(), entry);
        }
        let supervisor = tokio::spawn(hearth.clone().supervise(
            "c".into(),
            tx,
            std::future::pending(),
        ));
        tokio::task::yield_now().await;
        supervisor.abort();
        let _ = supervisor.await;
        let settled = tokio::time::timeout(PATIENCE, settled(rx))
            .await
            .expect("settled within the patience")
            .expect("with an answer");
        assert_eq!(settled.status, Status::Failed, "{settled:?}");
        assert!(
            settled
                .error
                .as_deref()
                .is_some_and(|e| e.contains("it was cancelled")),
            "{settled:?}"
        );
        let book = hearth.book();
        assert!(book.workspaces["c"].provisioning.is_none());
    }
}
