//! hearth's HTTP routes (contract §3) and the workspace state machine behind them.
//!
//! One `Hearth` owns every workspace of this daemon. Routes never hold the state lock across a
//! driver call, so a slow teardown does not block `GET /v1/status`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path as UrlPath, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};

use super::driver::{Driver, Provisioned};
use super::{
    DeploymentRef, DriverTimings, ProvisionRequest, Status, StatusReport, TeardownRequest,
};
use crate::http::error;

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
}

/// hearth's configuration and state.
pub struct Hearth<D: Driver> {
    /// Does the provisioning.
    driver: D,
    /// Deadline for a whole teardown; past it the workspace stays `tearing_down`.
    teardown_timeout: Duration,
    /// Deadline for every service of a workspace to answer its health route.
    health_timeout: Duration,
    /// Workspaces by slug, under one lock: every state change is made holding it.
    workspaces: Mutex<HashMap<String, Entry<D::Deployment>>>,
}

fn bad_json(rejection: JsonRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
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
        "internal",
        format!("the {what} of {slug} ended without an answer"),
    )
}

impl<D: Driver> Hearth<D> {
    pub fn new(driver: D, teardown_timeout: Duration, health_timeout: Duration) -> Hearth<D> {
        Hearth {
            driver,
            teardown_timeout,
            health_timeout,
            workspaces: Mutex::new(HashMap::new()),
        }
    }

    /// Adopts deployments the driver found from an earlier hearth (its labels or state file), so
    /// a restarted hearth reports the workspaces it had and can tear them down.
    pub async fn rediscover(&self) {
        let found = self.driver.rediscover().await;
        let mut ws = self.workspaces.lock().expect("hearth state lock");
        for (reference, deployment) in found {
            tracing::info!(
                slug = reference.slug,
                status = %reference.status,
                "rediscovered workspace"
            );
            ws.insert(
                reference.slug.clone(),
                Entry {
                    reference,
                    deployment,
                    timings: DriverTimings::default(),
                    provisioning: None,
                    teardown: None,
                },
            );
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
            .with_state(self)
    }

    /// Tears down every workspace still up (waiting for provisions in flight first): hearth is
    /// exiting and must leave nothing behind.
    pub async fn shutdown(self: &Arc<Self>) {
        let slugs: Vec<String> = {
            let ws = self.workspaces.lock().expect("hearth state lock");
            ws.iter()
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
        self.workspaces.lock().expect("hearth state lock").clear();
    }

    /// Starts (or joins) the teardown of `slug`; `None` if hearth knows no such workspace. The
    /// work is detached from the caller: it runs to its end whoever waits for it. A teardown
    /// of a workspace still provisioning waits for the provision to settle first.
    fn begin_teardown(self: &Arc<Self>, slug: &str) -> Option<Settled<StatusReport>> {
        let mut ws = self.workspaces.lock().expect("hearth state lock");
        let entry = ws.get_mut(slug)?;
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
            if let Some(e) = hearth
                .workspaces
                .lock()
                .expect("hearth state lock")
                .get_mut(&slug)
            {
                e.teardown = None;
            }
            tx.send_replace(Some(report));
        });
        Some(rx)
    }

    async fn teardown_slug(&self, slug: &str) -> StatusReport {
        let deployment = {
            let mut ws = self.workspaces.lock().expect("hearth state lock");
            let Some(entry) = ws.get_mut(slug) else {
                unreachable!("entries are never removed while a teardown is in flight")
            };
            entry.reference.status = Status::TearingDown;
            entry.deployment.take()
        };
        let Some(mut deployment) = deployment else {
            // Nothing running (provision failed, or already torn down): nothing to stop.
            let mut ws = self.workspaces.lock().expect("hearth state lock");
            let entry = ws.get_mut(slug).expect("entry exists");
            entry.reference.status = Status::TierTornDown;
            entry.reference.services.clear();
            return StatusReport {
                slug: slug.into(),
                status: Status::TierTornDown,
                error: None,
                timings: entry.timings,
            };
        };
        let work = self.driver.teardown(&mut deployment);
        let started = std::time::Instant::now();
        let outcome = tokio::time::timeout(self.teardown_timeout, work).await;
        let mut ws = self.workspaces.lock().expect("hearth state lock");
        let entry = ws.get_mut(slug).expect("entry exists");
        entry.timings.driver_ms += started.elapsed().as_secs_f64() * 1000.0;
        match outcome {
            Ok(Ok(())) => {
                entry.reference.status = Status::TierTornDown;
                entry.reference.services.clear();
                entry.reference.error = None;
            }
            Ok(Err(e)) => {
                entry.reference.error = Some(format!("teardown failed: {e}"));
                entry.deployment = Some(deployment);
            }
            Err(_) => {
                entry.reference.error = Some(format!(
                    "teardown deadline {} passed; services still stopping",
                    crate::duration::display(self.teardown_timeout)
                ));
                // Keep the handle: shutdown (or the harness's sweep) removes it later.
                entry.deployment = Some(deployment);
            }
        }
        StatusReport {
            slug: slug.into(),
            status: entry.reference.status,
            error: entry.reference.error.clone(),
            timings: entry.timings,
        }
    }

    /// The provision itself, detached from the request that asked for it.
    async fn run_provision(
        &self,
        slug: String,
        profile: crate::tier::TierProfile,
        done: watch::Sender<Option<DeploymentRef>>,
    ) {
        let started = std::time::Instant::now();
        let result = self
            .driver
            .provision(&slug, &profile, self.health_timeout)
            .await;
        let mut ws = self.workspaces.lock().expect("hearth state lock");
        let entry = ws.get_mut(&slug).expect("inserted by the handler");
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
            Err(e) => {
                tracing::warn!(slug, "provision failed: {e}");
                entry.reference.status = Status::Failed;
                entry.reference.error = Some(e);
            }
        }
        entry.provisioning = None;
        done.send_replace(Some(entry.reference.clone()));
    }
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
        return error(StatusCode::BAD_REQUEST, "bad_slug", e.to_string());
    }
    if let Err(e) = req.profile.check() {
        return error(StatusCode::BAD_REQUEST, "bad_profile", e);
    }
    let (tx, rx) = watch::channel(None);
    {
        let mut ws = hearth.workspaces.lock().expect("hearth state lock");
        if let Some(existing) = ws.get(&req.slug)
            && (existing.teardown.is_some()
                || !matches!(
                    existing.reference.status,
                    Status::TierTornDown | Status::Failed
                ))
        {
            return error(
                StatusCode::CONFLICT,
                "slug_in_use",
                format!(
                    "workspace {} exists with status {}",
                    req.slug, existing.reference.status
                ),
            );
        }
        ws.insert(
            req.slug.clone(),
            Entry {
                reference: DeploymentRef {
                    slug: req.slug.clone(),
                    tier: req.profile.name.clone(),
                    driver: D::KIND,
                    status: Status::Provisioning,
                    services: Vec::new(),
                    error: None,
                },
                deployment: None,
                timings: DriverTimings::default(),
                provisioning: Some(rx.clone()),
                teardown: None,
            },
        );
    }
    // Detached: a caller that hangs up ends this handler, not the provision.
    let worker = hearth.clone();
    let slug = req.slug.clone();
    tokio::spawn(async move { worker.run_provision(slug, req.profile, tx).await });
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
    let Some(rx) = hearth.begin_teardown(&req.slug) else {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
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
    let ws = hearth.workspaces.lock().expect("hearth state lock");
    let mut all: Vec<DeploymentRef> = ws.values().map(|e| e.reference.clone()).collect();
    all.sort_by(|a, b| a.slug.cmp(&b.slug));
    Json(all).into_response()
}

async fn status<D: Driver>(
    State(hearth): State<Arc<Hearth<D>>>,
    UrlPath(slug): UrlPath<String>,
) -> Response {
    let ws = hearth.workspaces.lock().expect("hearth state lock");
    match ws.get(&slug) {
        Some(e) => Json(StatusReport {
            slug,
            status: e.reference.status,
            error: e.reference.error.clone(),
            timings: e.timings,
        })
        .into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no workspace {slug}"),
        ),
    }
}
