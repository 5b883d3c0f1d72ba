//! The workspace routes: provision (detached, fail-closed audit), read, and teardown
//! (joined when concurrent, runs ended first).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Shared, authorize, parse};
use crate::api::console::CreateWorkspace;
use crate::auth::Right;
use crate::console::{Console, Outcome, WorkspaceView};
use crate::hatch::{Event, EventKind};
use crate::hearth::Status;
use crate::http::ApiError;

pub(super) async fn create_workspace(
    State(console): State<Shared>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let who = authorize(&console, &headers, Right::ManageWorkspaces)?;
    let req: CreateWorkspace = parse(body)?;
    crate::slug::validate(&req.slug)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_slug", e.to_string()))?;
    let profile = console
        .config
        .tiers
        .get(&req.tier)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = console.config.tiers.keys().map(String::as_str).collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "unknown_tier",
                format!(
                    "unknown tier {:?}; known tiers: {}",
                    req.tier,
                    known.join(", ")
                ),
            )
        })?;
    if workspace(&console, &req.slug).is_err() {
        // Unknown here: a restarted console learns what hearth already has before deciding.
        if let Err(e) = console.reconcile().await {
            tracing::warn!("cannot rebuild the view from hearth: {e}");
        }
    }
    let (guard, previous) = {
        // Reserve the slug (and take the workspace's ops lock) before calling hearth, so two
        // racing requests cannot both provision and a DELETE is ordered after this provision.
        let mut ws = console.workspaces.lock().expect("console state lock");
        if let Some(existing) = ws.get(&req.slug)
            && !matches!(existing.status, Status::TierTornDown | Status::Failed)
        {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "slug_in_use",
                format!(
                    "workspace {} exists with status {}",
                    req.slug, existing.status
                ),
            ));
        }
        let guard = console.ops(&req.slug).try_lock_owned().map_err(|_| {
            ApiError::new(
                StatusCode::CONFLICT,
                "slug_in_use",
                format!("workspace {} is busy", req.slug),
            )
        })?;
        let previous = ws.insert(
            req.slug.clone(),
            WorkspaceView {
                slug: req.slug.clone(),
                tier: req.tier.clone(),
                status: Status::Provisioning,
            },
        );
        (guard, previous)
    };
    // Detached: a caller that hangs up ends this handler, not the provision; the status
    // settles either way.
    let work = tokio::spawn(provision_work(
        console.clone(),
        req,
        profile,
        who.name,
        guard,
        previous,
    ));
    work.await.unwrap_or_else(|e| Err(lost("provision", e)))
}

pub(super) fn lost(what: &str, e: tokio::task::JoinError) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal",
        format!("the {what} ended without an answer: {e}"),
    )
}

async fn provision_work(
    console: Shared,
    req: CreateWorkspace,
    profile: crate::tier::TierProfile,
    who: String,
    _ops: tokio::sync::OwnedMutexGuard<()>,
    previous: Option<WorkspaceView>,
) -> Result<Response, ApiError> {
    if let Err(refused) = console.audit(
        Event::new(EventKind::ProvisioningStarted, who.as_str())
            .workspace(&req.slug)
            .data(serde_json::json!({"tier": req.tier})),
    ) {
        // Fail closed: release the reservation, nothing was provisioned.
        crate::console::audit::release(&console, &req.slug, previous);
        return Err(refused);
    }
    let outcome = console
        .config
        .hearth
        .provision(&req.slug, &profile, console.config.deadlines.provision)
        .await;
    let failure = match outcome {
        Ok(dep) if dep.status == Status::Ready => {
            let services: Vec<&str> = dep.services.iter().map(|s| s.name.as_str()).collect();
            if let Err(refused) = console.audit(
                Event::new(EventKind::Provisioned, who.as_str())
                    .workspace(&req.slug)
                    .data(serde_json::json!({
                        "tier": dep.tier,
                        "driver": dep.driver.as_str(),
                        "services": services,
                    })),
            ) {
                // Fail closed: an unrecorded workspace must not stay up.
                crate::console::audit::roll_back_provisioning(&console, &req.slug).await;
                return Err(refused);
            }
            set_status(&console, &req.slug, Status::Ready);
            let body = serde_json::json!({
                "slug": dep.slug,
                "tier": dep.tier,
                "status": Status::Ready,
                "driver": dep.driver,
                "services": dep.services,
            });
            return Ok((StatusCode::CREATED, Json(body)).into_response());
        }
        Ok(dep) => dep
            .error
            .unwrap_or_else(|| format!("hearth answered status {} without an error", dep.status)),
        Err(e) => e.to_string(),
    };
    set_status(&console, &req.slug, Status::Failed);
    console.audit(
        Event::new(EventKind::Failed, who.as_str())
            .workspace(&req.slug)
            .data(serde_json::json!({"reason": failure})),
    )?;
    Err(ApiError::new(
        StatusCode::BAD_GATEWAY,
        "provisioning_failed",
        format!("provisioning {} failed: {failure}", req.slug),
    ))
}

fn set_status(console: &Console, slug: &str, status: Status) {
    if let Some(w) = console
        .workspaces
        .lock()
        .expect("console state lock")
        .get_mut(slug)
    {
        w.status = status;
    }
}

pub(super) fn workspace(console: &Console, slug: &str) -> Result<WorkspaceView, ApiError> {
    console
        .workspaces
        .lock()
        .expect("console state lock")
        .get(slug)
        .cloned()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no workspace {slug}"),
            )
        })
}

pub(super) async fn get_workspace(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Json<WorkspaceView>, ApiError> {
    authorize(&console, &headers, Right::ReadWorkspaces)?;
    workspace(&console, &slug).map(Json)
}

pub(super) async fn delete_workspace(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Response, ApiError> {
    let who = authorize(&console, &headers, Right::ManageWorkspaces)?;
    if workspace(&console, &slug).is_err()
        && let Err(e) = console.reconcile().await
    {
        tracing::warn!("cannot rebuild the view from hearth: {e}");
    }
    let mut rx = {
        let mut teardowns = console.teardowns.lock().expect("console teardown lock");
        match teardowns.get(&slug) {
            // A teardown is in flight: join it and share its result.
            Some(rx) => rx.clone(),
            None => {
                let current = workspace(&console, &slug)?;
                if current.status == Status::TierTornDown {
                    // Idempotent: a DELETE that lands just after another finished shares its
                    // result; nothing happens, so nothing is recorded.
                    return Ok(Json(
                        serde_json::json!({"slug": slug, "status": Status::TierTornDown}),
                    )
                    .into_response());
                }
                let (tx, rx) = tokio::sync::watch::channel(None);
                teardowns.insert(slug.clone(), rx.clone());
                // Detached: it runs to its end whoever hangs up.
                tokio::spawn(teardown_work(console.clone(), slug.clone(), who.name, tx));
                rx
            }
        }
    };
    let outcome = rx
        .wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|o| o.clone())
        .unwrap_or(Outcome {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: "internal",
            message: format!("the teardown of {slug} ended without an answer"),
        });
    if outcome.status == StatusCode::OK {
        Ok(Json(serde_json::json!({"slug": slug, "status": Status::TierTornDown})).into_response())
    } else {
        Err(ApiError::new(outcome.status, outcome.code, outcome.message))
    }
}

/// One teardown: after the provision or run admission in flight (the ops lock), end the
/// workspace's active runs, then record `hearth.decommission_started` and call hearth.
async fn teardown_work(
    console: Shared,
    slug: String,
    who: String,
    done: tokio::sync::watch::Sender<Option<Outcome>>,
) {
    let ops = console.ops(&slug);
    let guard = ops.lock_owned().await;
    set_status(&console, &slug, Status::TearingDown);
    crate::console::runs::cancel_workspace_runs(&console, &slug).await;
    let outcome = match console
        .audit(Event::new(EventKind::DecommissionStarted, who.as_str()).workspace(&slug))
    {
        Err(refused) => {
            // Fail closed: hearth is not called; the workspace stays up and says so.
            set_status(&console, &slug, Status::Ready);
            Outcome {
                status: refused.status,
                code: refused.code,
                message: refused.message,
            }
        }
        Ok(()) => decommission(&console, &slug, &who).await,
    };
    drop(guard);
    console
        .teardowns
        .lock()
        .expect("console teardown lock")
        .remove(&slug);
    done.send_replace(Some(outcome));
}

/// hearth's half of a recorded teardown: the call, and the status and record it leads to.
async fn decommission(console: &Console, slug: &str, who: &str) -> Outcome {
    let report = console
        .config
        .hearth
        .teardown(slug, console.config.deadlines.teardown)
        .await;
    let fail = |status, code, message: String| Outcome {
        status,
        code,
        message,
    };
    match report {
        Ok(report) if report.status == Status::TierTornDown => {
            set_status(console, slug, Status::TierTornDown);
            // The tier is gone whatever the log says; the status stays true, the caller learns
            // that the record is missing.
            match console.audit(
                Event::new(EventKind::Decommissioned, who)
                    .workspace(slug)
                    .data(serde_json::json!({"status": Status::TierTornDown})),
            ) {
                Ok(()) => fail(StatusCode::OK, "ok", String::new()),
                Err(refused) => fail(refused.status, refused.code, refused.message),
            }
        }
        Ok(report) if report.status == Status::TearingDown => fail(
            StatusCode::GATEWAY_TIMEOUT,
            "teardown_timeout",
            format!(
                "hearth status stays tearing_down: {}",
                report
                    .error
                    .unwrap_or_else(|| "teardown deadline passed".into())
            ),
        ),
        Ok(report) => {
            set_status(console, slug, report.status);
            fail(
                StatusCode::BAD_GATEWAY,
                "teardown_failed",
                format!(
                    "hearth answered status {}: {}",
                    report.status,
                    report.error.unwrap_or_default()
                ),
            )
        }
        Err(crate::hearth::client::HearthError::Refused { status: 404, .. }) => {
            // hearth (restarted without it, or never had it) knows no such workspace: it is
            // gone. The console mirrors that and forgets it, so every later DELETE is a 404.
            console
                .workspaces
                .lock()
                .expect("console state lock")
                .remove(slug);
            fail(
                StatusCode::NOT_FOUND,
                "not_found",
                format!("hearth knows no workspace {slug}: nothing of it is left to tear down"),
            )
        }
        Err(e) => fail(
            StatusCode::BAD_GATEWAY,
            "teardown_failed",
            format!("teardown of {slug} failed: {e}"),
        ),
    }
}
