//! The workspace routes: each one authorises, checks its input, and calls the console's
//! workspace logic ([`crate::console::workspaces`]), which provisions and tears down.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
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

/// The path is read after the right is checked (401 and 403 first); one that cannot be read
/// is a 400 `bad_request` in the contract's shape.
pub(super) async fn get_workspace(
    State(console): State<Shared>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
) -> Result<Json<WorkspaceView>, ApiError> {
    authorize(&console, &headers, Right::ReadWorkspaces)?;
    let Path(slug) = slug.map_err(crate::http::bad_path)?;
    console.known_workspace(&slug).await?;
    console.settle(&slug).await;
    workspace(&console, &slug).map(Json)
}

/// Like [`get_workspace`]: the right, then the path.
pub(super) async fn delete_workspace(
    State(console): State<Shared>,
    headers: HeaderMap,
    slug: Result<Path<String>, PathRejection>,
) -> Result<Json<TeardownView>, ApiError> {
    let who = authorize(&console, &headers, Right::ManageWorkspaces)?;
    let Path(slug) = slug.map_err(crate::http::bad_path)?;
    console.teardown(&slug, who.name).await?;
    Ok(Json(TeardownView {
        slug,
        status: Status::TierTornDown,
    }))
}
