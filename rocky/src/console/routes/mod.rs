//! The console's route handlers. Each one checks auth, then input, and only then acts, so a
//! refused request changes nothing and writes no HATCH record.
//!
//! In front of every route (and of the fallbacks) [`guard`] authenticates each `/api` request,
//! whatever its path, query or method, then bounds its header fields; so a caller without a
//! valid token learns nothing but 401, and every answer, a rejection by axum's extractors and
//! routing included, is `{"error":{"code","message"}}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::de::DeserializeOwned;

use super::Console;
use crate::api::ErrorCode;
use crate::api::console::paths;
use crate::auth::{Principal, Right};
use crate::http::ApiError;

/// Request bodies above this are refused with 413 before parsing.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// A request whose header fields take more bytes than this (each counted as
/// `name: value` and its line end) is refused with 431 `headers_too_large`. Far under hyper's
/// own bound on a request head (about 408 KiB), which hyper answers itself, with an empty
/// 431, before the console sees the request.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// A request with more header fields than this is refused with 431 `headers_too_large`. Under
/// hyper's own bound (100 fields), which hyper answers itself, with an empty 431.
pub const MAX_HEADERS: usize = 64;
/// Default RALPH iteration cap when a submission names none.
pub(super) const DEFAULT_MAX_RALPH_ITERS: u32 = 5;

type Shared = Arc<Console>;

// `runs` is reached from `console::workspaces` for `cancel_at_worker` until that call moves
// beside the worker client.
pub(super) mod runs;
mod workspaces;

use runs::{get_run, submit_run};
use workspaces::{create_workspace, delete_workspace, get_workspace};

pub(super) fn router(console: Shared) -> Router {
    Router::new()
        .route(paths::HEALTHZ, get(|| async { StatusCode::OK }))
        .route(paths::WORKSPACES, post(create_workspace))
        .route(
            paths::WORKSPACE,
            get(get_workspace).delete(delete_workspace),
        )
        .route(paths::RUNS, post(submit_run))
        .route(paths::RUN, get(get_run))
        // After every route: it is set on the routes there are when it is called.
        .method_not_allowed_fallback(crate::http::wrong_method)
        .fallback(crate::http::no_such_route)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        // Last, so it wraps every route and both fallbacks (and runs before their extractors).
        .layer(axum::middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console)
}

/// Whether `path` is under `/api` (every route there needs the bearer, contract §4).
fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// Before any route, fallback or extractor: an `/api` request without a known token is 401
/// (whatever its path, query, method or headers), then a request whose header fields are over
/// [`MAX_HEADERS`] or [`MAX_HEADER_BYTES`] is 431 `headers_too_large`. The handlers check the
/// principal's right themselves (403), then their input (400).
async fn guard(State(console): State<Shared>, request: Request, next: Next) -> Response {
    if is_api(request.uri().path())
        && let Err(e) = authenticate(&console, request.headers())
    {
        return e.into_response();
    }
    if let Err(e) = bounded_headers(request.headers()) {
        return e.into_response();
    }
    next.run(request).await
}

/// 431 `headers_too_large` when `headers` are over [`MAX_HEADERS`] or [`MAX_HEADER_BYTES`].
fn bounded_headers(headers: &HeaderMap) -> Result<(), ApiError> {
    let too_large = |what: String| {
        ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            ErrorCode::HeadersTooLarge,
            what,
        )
    };
    if headers.len() > MAX_HEADERS {
        return Err(too_large(format!(
            "a request may carry at most {MAX_HEADERS} header fields, this one has {}",
            headers.len()
        )));
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return Err(too_large(format!(
            "a request's header fields may take at most {MAX_HEADER_BYTES} bytes, this one's take {bytes}"
        )));
    }
    Ok(())
}

/// The `Authorization` header's value, if it is text.
fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
}

/// LocalAuth's refusal as the console answers it: 401 `unauthorized` or 403 `forbidden`.
fn refused(e: &crate::auth::AuthError) -> ApiError {
    let status = StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::UNAUTHORIZED);
    let code = if status == StatusCode::FORBIDDEN {
        ErrorCode::Forbidden
    } else {
        ErrorCode::Unauthorized
    };
    ApiError::new(status, code, e.to_string())
}

/// 401 unless `headers` carry a token LocalAuth knows (any role).
fn authenticate(console: &Console, headers: &HeaderMap) -> Result<Principal, ApiError> {
    console
        .config
        .auth
        .resolve(authorization(headers))
        .map_err(|e| refused(&e))
}

pub(super) fn authorize(
    console: &Console,
    headers: &HeaderMap,
    right: Right,
) -> Result<Principal, ApiError> {
    console
        .config
        .auth
        .authorize(authorization(headers), right)
        .map_err(|e| refused(&e))
}

/// Parses a JSON body strictly (unknown fields refused by the target type). A body over
/// [`MAX_BODY_BYTES`] is refused with 413 before any of it is parsed.
pub(super) fn parse<T: DeserializeOwned>(
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let body = crate::http::body(body, MAX_BODY_BYTES)?;
    serde_json::from_slice(&body).map_err(|e| {
        let code = if e.is_syntax() || e.is_eof() {
            ErrorCode::BadJson
        } else {
            ErrorCode::BadRequest
        };
        ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("invalid request body: {e}"),
        )
    })
}
