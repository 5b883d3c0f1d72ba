//! What the three HTTP servers (hearth, console, worker) share: the contract's error body and
//! serving a router until shutdown.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::sync::Semaphore;

use crate::api::ErrorCode;

pub use crate::api::{ErrorBody, ErrorDetail};
/// What [`serve`] accepts connections from.
pub use axum::serve::Listener;

/// An error answer: a status plus the contract's `{"error":{"code","message"}}`.
#[derive(Clone, Debug)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// Machine-readable code, e.g. `slug_in_use`.
    pub code: ErrorCode,
    /// What a person reads.
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: ErrorDetail {
                    code: self.code,
                    message: self.message,
                },
            }),
        )
            .into_response()
    }
}

/// Shorthand for an error [`Response`].
pub fn error(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Response {
    ApiError::new(status, code, message).into_response()
}

/// A request body as the console and the worker take it (`Result<Bytes, BytesRejection>`,
/// under `DefaultBodyLimit::max(limit)`), or the contract's error instead of axum's plain-text
/// rejection: 413 `body_too_large` naming `limit` for a body over it (whether its
/// `Content-Length` said so or a chunked body grew past it), 400 `bad_request` for a body that
/// could not be read.
pub fn body(body: Result<Bytes, BytesRejection>, limit: usize) -> Result<Bytes, ApiError> {
    body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorCode::BodyTooLarge,
                format!("request bodies are limited to {limit} bytes"),
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BadRequest,
                r.body_text(),
            )
        }
    })
}

/// Longest piece of a request (a path, a rejection naming a query field) an error message
/// repeats: the caller chooses it, and the header bound lets it be hundreds of KiB.
const MAX_ECHO: usize = 240;

/// `text` cut at [`MAX_ECHO`] bytes (on a character boundary), with `…` when cut.
fn echo(text: &str) -> String {
    if text.len() <= MAX_ECHO {
        return text.to_owned();
    }
    let mut end = MAX_ECHO;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// A router's `fallback`: 404 `not_found` in the contract's shape (axum's own 404 has an
/// empty body).
pub async fn no_such_route(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("no route for {method} {}", echo(uri.path())),
    )
}

/// A router's `method_not_allowed_fallback`: 405 `method_not_allowed` in the contract's shape;
/// axum adds the route's `Allow` header.
pub async fn wrong_method(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorCode::MethodNotAllowed,
        format!("{} does not take {method}", echo(uri.path())),
    )
}

/// A path that could not be read (a parameter that is not UTF-8 once percent-decoded): 400
/// `bad_request` in the contract's shape (axum's own rejection is text/plain).
pub fn bad_path(rejection: PathRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        echo(&rejection.body_text()),
    )
}

/// A query string that could not be read (an unknown or repeated field, a value of the wrong
/// type): 400 `bad_request` in the contract's shape.
pub fn bad_query(rejection: QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::BadRequest,
        echo(&rejection.body_text()),
    )
}

/// The bounds every server keeps (contract §9): how long a client may take to send its
/// headers, how long a request may take to be answered, how many connections are served at
/// once (further ones wait in the accept backlog), and how long shutdown waits for
/// connections in flight before it cuts them.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read: Duration,
    pub request: Duration,
    pub max_connections: usize,
    pub shutdown: Duration,
}

/// The servers' default header-read timeout. hyper's timer for it runs while a kept-alive
/// connection waits for its next request too, so it is also how long a server keeps an idle
/// connection before it closes it.
pub const HEADER_READ: Duration = Duration::from_secs(10);

/// How long a client of ours keeps an idle pooled connection: well under [`HEADER_READ`], so
/// it lets go of a connection before the server closes it. Kept longer, a request can be
/// written on a connection the server is closing at that moment: it is lost with no answer,
/// and hyper retries only what it had not started to write (a POST to the worker came back as
/// 502 `worker_unreachable` to a healthy worker; the model tester found it, RELIABILITY.md).
pub const CLIENT_POOL_IDLE: Duration = Duration::from_secs(4);

const _: () = assert!(CLIENT_POOL_IDLE.as_millis() * 2 <= HEADER_READ.as_millis());

/// An error with every cause under it (`reqwest` shows none of them: "error sending request
/// for url (…)" is all it says of a reset, a timeout or a connection closed before the
/// answer), each cause once.
pub fn describe(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let said = c.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        cause = c.source();
    }
    text
}

/// A `reqwest` client builder for calls to our servers: pooled connections are dropped after
/// [`CLIENT_POOL_IDLE`]. Every HTTP client of the project starts here (the harness's
/// `tests/module_graph.rs` checks the sources).
pub fn client_builder() -> reqwest::ClientBuilder {
    reqwest::Client::builder().pool_idle_timeout(CLIENT_POOL_IDLE)
}

/// [`client_builder`] as it is.
pub fn client() -> reqwest::Client {
    client_builder()
        .build()
        .expect("a plain HTTP client builds")
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read: HEADER_READ,
            // Above the longest long-poll (`?wait=` is capped at 60 s) and hearth's deadlines.
            request: Duration::from_secs(150),
            max_connections: 512,
            shutdown: Duration::from_secs(10),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight end,
/// within the default [`Limits`].
pub async fn serve<L>(
    listener: L,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    serve_with(listener, router, shutdown, Limits::default()).await
}

/// [`serve`] within the given [`Limits`]. HTTP/1.1 only (every client of these servers
/// speaks it). A response's head must be ready within `limits.request` (503
/// `deadline_exceeded` otherwise); a streamed body (SSE) is not cut by it.
pub async fn serve_with<L>(
    mut listener: L,
    router: axum::Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    limits: Limits,
) -> std::io::Result<()>
where
    L: axum::serve::Listener,
    L::Addr: std::fmt::Debug,
{
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;

    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = tokio::task::JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = slots.clone().acquire_owned() => permit.expect("the semaphore is never closed"),
            () = &mut shutdown => break,
        };
        let (io, _addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        // Reap finished connections so the set stays as small as the connection limit.
        while connections.try_join_next().is_some() {}
        let router = router.clone();
        let deadline = limits.request;
        let service =
            hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                let router = router.clone();
                async move {
                    let answer = tokio::time::timeout(
                        deadline,
                        router.oneshot(req.map(axum::body::Body::new)),
                    )
                    .await;
                    Ok::<_, std::convert::Infallible>(match answer {
                        Ok(Ok(response)) => response,
                        Ok(Err(never)) => match never {},
                        Err(_) => error(
                            StatusCode::SERVICE_UNAVAILABLE,
                            ErrorCode::DeadlineExceeded,
                            format!(
                                "the request was not answered within its deadline ({})",
                                crate::duration::display(deadline)
                            ),
                        ),
                    })
                }
            });
        let mut stop = stop_rx.clone();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read);
        connections.spawn(async move {
            let _permit = permit;
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            let stopped = tokio::select! {
                _ = connection.as_mut() => false,
                _ = stop.wait_for(|stop| *stop) => true,
            };
            if stopped {
                connection.as_mut().graceful_shutdown();
                let _ = connection.await;
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            "shutdown deadline ({}) passed with {} connection(s) open: cutting them",
            crate::duration::display(limits.shutdown),
            connections.len()
        );
        connections.abort_all();
    }
    Ok(())
}

#[cfg(test)]
mod describe_tests {
    #[derive(Debug, thiserror::Error)]
    #[error("error sending request for url (http://w/v1/runs)")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn every_cause_is_named_once() {
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ));
        assert_eq!(
            super::describe(&e),
            "error sending request for url (http://w/v1/runs): connection reset by peer"
        );
    }
}
