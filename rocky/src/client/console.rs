//! A client for the console's API (contract §4): what the harness, the benchmark and people's
//! scripts use. Every call answers with the status and body as the console sent them, so a
//! caller can assert on refusals as easily as on successes; every call has a deadline.

use std::time::Duration;

use serde::de::DeserializeOwned;

use crate::api::ErrorCode;
use crate::api::console::{CreateWorkspace, SubmitRequest, paths};

/// Longest any call waits unless told otherwise (a provision covers image start and health).
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(120);

/// A console endpoint and the bearer token to call it with.
#[derive(Clone, Debug)]
pub struct ConsoleClient {
    /// e.g. `http://127.0.0.1:7000`.
    base_url: String,
    /// `Authorization: Bearer` for every call that does not name its own.
    token: Option<String>,
    /// How long each typed call may take.
    deadline: Duration,
    /// One pool, connections kept alive.
    http: reqwest::Client,
}

/// The console's answer: status and body (JSON, or the raw text when it was not JSON).
#[derive(Clone, Debug, PartialEq)]
pub struct Answer {
    /// `METHOD /path` it answers.
    pub request: String,
    pub status: u16,
    pub body: serde_json::Value,
}

/// A call that got no answer.
#[derive(Debug, thiserror::Error)]
#[error("console {request}: no answer: {message}")]
pub struct ConsoleError {
    /// `METHOD /path`.
    pub request: String,
    pub message: String,
}

impl Answer {
    /// The body as `T`.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, serde_json::Error> {
        serde_json::from_value(self.body.clone())
    }

    /// `error.code` of an error answer (none when the body is not one, or names no known
    /// code).
    pub fn error_code(&self) -> Option<ErrorCode> {
        self.body["error"]["code"]
            .as_str()
            .and_then(ErrorCode::parse)
    }

    /// `code: message` of an error answer, or the raw body.
    pub fn error_text(&self) -> String {
        match (
            self.body["error"]["code"].as_str(),
            self.body["error"]["message"].as_str(),
        ) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => match &self.body {
                serde_json::Value::String(s) => s.clone(),
                other => other.to_string(),
            },
        }
    }
}

impl ConsoleClient {
    pub fn new(base_url: impl Into<String>) -> ConsoleClient {
        ConsoleClient {
            base_url: base_url.into(),
            token: None,
            deadline: DEFAULT_DEADLINE,
            http: crate::http::client(),
        }
    }

    /// Calls made with this client share `http`'s connection pool.
    pub fn with_http(mut self, http: reqwest::Client) -> ConsoleClient {
        self.http = http;
        self
    }

    /// Typed calls made with this client give up after `deadline`.
    pub fn with_deadline(mut self, deadline: Duration) -> ConsoleClient {
        self.deadline = deadline;
        self
    }

    /// Calls made with this client carry `token`.
    pub fn with_token(mut self, token: impl Into<String>) -> ConsoleClient {
        self.token = Some(token.into());
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Any request: `body` is sent as JSON as it is (so malformed bodies can be sent on
    /// purpose); `token` overrides the client's (`Some(None)`: no `Authorization` at all).
    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<Option<&str>>,
        deadline: Duration,
    ) -> Result<Answer, ConsoleError> {
        let request = format!("{method} {path}");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base_url))
            .timeout(deadline);
        if let Some(t) = token.unwrap_or(self.token.as_deref()) {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.header("content-type", "application/json").body(b);
        }
        let failed = |e: reqwest::Error| ConsoleError {
            request: request.clone(),
            message: e.to_string(),
        };
        let resp = req.send().await.map_err(failed)?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(failed)?;
        let body = serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text));
        Ok(Answer {
            request,
            status,
            body,
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ConsoleError> {
        self.send(method, path, body, None, self.deadline).await
    }

    /// `POST /api/hearth/workspaces`.
    pub async fn create_workspace(&self, slug: &str, tier: &str) -> Result<Answer, ConsoleError> {
        let body = CreateWorkspace {
            slug: slug.to_owned(),
            tier: tier.to_owned(),
        };
        self.call(
            reqwest::Method::POST,
            paths::WORKSPACES,
            Some(to_json(&body)),
        )
        .await
    }

    /// `GET /api/hearth/workspaces/{slug}`.
    pub async fn workspace(&self, slug: &str) -> Result<Answer, ConsoleError> {
        self.call(reqwest::Method::GET, &paths::workspace(slug), None)
            .await
    }

    /// `DELETE /api/hearth/workspaces/{slug}`.
    pub async fn delete_workspace(&self, slug: &str) -> Result<Answer, ConsoleError> {
        self.call(reqwest::Method::DELETE, &paths::workspace(slug), None)
            .await
    }

    /// `POST /api/ralph/runs`.
    pub async fn submit_run(&self, run: &SubmitRequest) -> Result<Answer, ConsoleError> {
        self.call(reqwest::Method::POST, paths::RUNS, Some(to_json(run)))
            .await
    }

    /// `GET /api/ralph/runs/{run_id}`, with `?wait=` (e.g. `30s`) to wait for the run's end.
    pub async fn run(&self, run_id: &str, wait: Option<&str>) -> Result<Answer, ConsoleError> {
        let path = match wait {
            Some(w) => format!("{}?wait={w}", paths::run(run_id)),
            None => paths::run(run_id),
        };
        self.call(reqwest::Method::GET, &path, None).await
    }
}

fn to_json<T: serde::Serialize>(body: &T) -> Vec<u8> {
    serde_json::to_vec(body).expect("request bodies serialise")
}
