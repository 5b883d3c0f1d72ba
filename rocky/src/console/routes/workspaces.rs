//! The workspace routes: each one authorises, checks its input, and calls the console's
//! workspace logic ([`crate::console::workspaces`]), which provisions and tears down.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::{Shared, authorize, parse};
use crate::api::ErrorCode;
use crate::api::console::{CreateWorkspace, TeardownView};
use crate::auth::Right;
use crate::console::{WorkspaceView, workspace};
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
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadSlug, e.to_string()))?;
    let profile = console
        .config
        .tiers
        .get(&req.tier)
        .cloned()
        .ok_or_else(|| {
            let known: Vec<&str> = console.config.tiers.keys().map(String::as_str).collect();
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::UnknownTier,
                format!(
                    "unknown tier {:?}; known tiers: {}",
                    req.tier,
                    known.join(", ")
                ),
            )
        })?;
    let dep = console.provision(req.slug, profile, who.name).await?;
    let body = serde_json::json!({
        "slug": dep.slug,
        "tier": dep.tier,
        "status": Status::Ready,
        "driver": dep.driver,
        "services": dep.services,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

pub(super) async fn get_workspace(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Json<WorkspaceView>, ApiError> {
    authorize(&console, &headers, Right::ReadWorkspaces)?;
    console.known_workspace(&slug).await?;
    console.settle(&slug).await;
    workspace(&console, &slug).map(Json)
}

pub(super) async fn delete_workspace(
    State(console): State<Shared>,
    headers: HeaderMap,
    Path(slug): Path<String>,
) -> Result<Json<TeardownView>, ApiError> {
    let who = authorize(&console, &headers, Right::ManageWorkspaces)?;
    console.teardown(&slug, who.name).await?;
    Ok(Json(TeardownView {
        slug,
        status: Status::TierTornDown,
    }))
}
