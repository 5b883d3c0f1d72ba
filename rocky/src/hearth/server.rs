//! hearth's HTTP routes (contract §3) and the workspace state machine behind them.
//!
//! One `Hearth` owns every workspace of this daemon. Routes never hold the state lock across a
//! driver call, so a slow teardown does not block `GET /v1/status`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// One workspace as hearth tracks it.
struct Entry<T> {
    /// The answer hearth gives about it (status, services, last error).
    reference: DeploymentRef,
    /// The driver's handle; `None` while provisioning, after teardown, or after a failure.
    deployment: Option<T>,
    /// Time spent in the driver for this workspace so far.
    timings: DriverTimings,
}

/// hearth's configuration and state.
pub struct Hearth<D: Driver> {
    /// Does the provisioning.
    driver: D,
    /// Deadline for a whole teardown; past it the workspace stays `tearing_down`.
    teardown_timeout: Duration,
    /// Deadline for every service of a workspace to answer its health route.
    health_timeout: Duration,
    /// Workspaces by slug.
    workspaces: Mutex<HashMap<String, Entry<D::Deployment>>>,
}

fn bad_json(rejection: JsonRejection) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "bad_request",
        rejection.body_text(),
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

    /// The router, ready to serve on a unix listener.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new()
            .route("/healthz", get(|| async { StatusCode::OK }))
            .route("/v1/provision", post(provision::<D>))
            .route("/v1/teardown", post(teardown::<D>))
            .route("/v1/status/{slug}", get(status::<D>))
            .with_state(self)
    }

    /// Tears down every workspace still up: hearth is exiting and must leave nothing behind.
    pub async fn shutdown(&self) {
        let slugs: Vec<String> = {
            let ws = self.workspaces.lock().expect("hearth state lock");
            ws.iter()
                .filter(|(_, e)| e.deployment.is_some())
                .map(|(s, _)| s.clone())
                .collect()
        };
        for slug in slugs {
            let report = self.teardown_slug(&slug).await;
            tracing::info!(slug, status = %report.status, "teardown at shutdown");
        }
        self.driver.sweep().await;
        // Process deployments that missed their deadline die with their `Child` handles.
        self.workspaces.lock().expect("hearth state lock").clear();
    }

    async fn teardown_slug(&self, slug: &str) -> StatusReport {
        let deployment = {
            let mut ws = self.workspaces.lock().expect("hearth state lock");
            let Some(entry) = ws.get_mut(slug) else {
                unreachable!("callers check the slug exists")
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
    {
        let mut ws = hearth.workspaces.lock().expect("hearth state lock");
        if let Some(existing) = ws.get(&req.slug)
            && !matches!(
                existing.reference.status,
                Status::TierTornDown | Status::Failed
            )
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
            },
        );
    }
    let started = std::time::Instant::now();
    let result = hearth
        .driver
        .provision(&req.slug, &req.profile, hearth.health_timeout)
        .await;
    let mut ws = hearth.workspaces.lock().expect("hearth state lock");
    let entry = ws.get_mut(&req.slug).expect("inserted above");
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
            tracing::warn!(slug = req.slug, "provision failed: {e}");
            entry.reference.status = Status::Failed;
            entry.reference.error = Some(e);
        }
    }
    Json(entry.reference.clone()).into_response()
}

async fn teardown<D: Driver>(
    State(hearth): State<Arc<Hearth<D>>>,
    body: Result<Json<TeardownRequest>, JsonRejection>,
) -> Response {
    let Json(req) = match body {
        Ok(b) => b,
        Err(r) => return bad_json(r),
    };
    let known = hearth
        .workspaces
        .lock()
        .expect("hearth state lock")
        .contains_key(&req.slug);
    if !known {
        return error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no workspace {}", req.slug),
        );
    }
    Json(hearth.teardown_slug(&req.slug).await).into_response()
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
