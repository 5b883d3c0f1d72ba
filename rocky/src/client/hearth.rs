//! A client for hearth's unix socket: what the console and the harness use to reach it.
//!
//! One short HTTP/1.1 exchange per call (connecting to a unix socket costs microseconds), each
//! bounded by a deadline that names the route it waited for.

use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::api::ErrorBody;
use crate::api::hearth::{DeploymentRef, ProvisionRequest, StatusReport, TeardownRequest};
use crate::tier::TierProfile;

/// A hearth endpoint.
#[derive(Clone, Debug)]
pub struct HearthClient {
    /// The unix socket hearth listens on.
    socket: PathBuf,
}

/// Why a hearth call failed.
#[derive(Debug, thiserror::Error)]
pub enum HearthError {
    #[error("failed to connect to hearth at {socket}: {source}")]
    Connect {
        socket: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to call hearth {route}: {message}")]
    Transport { route: String, message: String },
    #[error("hearth {route} did not answer within {}", crate::duration::display(*.deadline))]
    Deadline { route: String, deadline: Duration },
    #[error("hearth {route} answered {status}: {code}: {message}")]
    Refused {
        route: String,
        status: u16,
        code: String,
        message: String,
    },
}

impl HearthClient {
    pub fn new(socket: impl Into<PathBuf>) -> HearthClient {
        HearthClient {
            socket: socket.into(),
        }
    }

    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// `POST /v1/provision`.
    pub async fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        deadline: Duration,
    ) -> Result<DeploymentRef, HearthError> {
        self.provision_as(slug, profile, None, deadline).await
    }

    /// `POST /v1/provision` under the caller's id `attempt`, which hearth then reports on the
    /// workspace's status ([`crate::api::hearth::StatusReport::attempt`]).
    pub async fn provision_as(
        &self,
        slug: &str,
        profile: &TierProfile,
        attempt: Option<&str>,
        deadline: Duration,
    ) -> Result<DeploymentRef, HearthError> {
        let body = ProvisionRequest {
            slug: slug.into(),
            profile: profile.clone(),
            attempt: attempt.map(str::to_owned),
        };
        self.call(Method::POST, "/v1/provision", Some(&body), deadline)
            .await
    }

    /// `POST /v1/teardown`.
    pub async fn teardown(
        &self,
        slug: &str,
        deadline: Duration,
    ) -> Result<StatusReport, HearthError> {
        let body = TeardownRequest { slug: slug.into() };
        self.call(Method::POST, "/v1/teardown", Some(&body), deadline)
            .await
    }

    /// `GET /v1/status/{slug}`.
    pub async fn status(
        &self,
        slug: &str,
        deadline: Duration,
    ) -> Result<StatusReport, HearthError> {
        self.call::<(), _>(Method::GET, &format!("/v1/status/{slug}"), None, deadline)
            .await
    }

    /// `GET /v1/workspaces`: every workspace hearth knows.
    pub async fn list(&self, deadline: Duration) -> Result<Vec<DeploymentRef>, HearthError> {
        self.call::<(), _>(Method::GET, "/v1/workspaces", None, deadline)
            .await
    }

    /// `GET /healthz`: true once hearth answers.
    pub async fn healthy(&self) -> bool {
        self.raw(Method::GET, "/healthz", Vec::new())
            .await
            .is_ok_and(|(status, _)| status == 200)
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        route: &str,
        body: Option<&B>,
        deadline: Duration,
    ) -> Result<T, HearthError> {
        let bytes = match body {
            Some(b) => serde_json::to_vec(b).expect("request types serialize"),
            None => Vec::new(),
        };
        let (status, answer) = tokio::time::timeout(deadline, self.raw(method, route, bytes))
            .await
            .map_err(|_| HearthError::Deadline {
                route: route.into(),
                deadline,
            })??;
        if (200..300).contains(&status) {
            serde_json::from_slice(&answer).map_err(|e| HearthError::Transport {
                route: route.into(),
                message: format!("unreadable answer: {e}"),
            })
        } else {
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&answer) {
                Ok(b) => (b.error.code.to_string(), b.error.message),
                Err(_) => (
                    "unknown".into(),
                    String::from_utf8_lossy(&answer).into_owned(),
                ),
            };
            Err(HearthError::Refused {
                route: route.into(),
                status,
                code,
                message,
            })
        }
    }

    async fn raw(
        &self,
        method: Method,
        route: &str,
        body: Vec<u8>,
    ) -> Result<(u16, Bytes), HearthError> {
        let transport = |message: String| HearthError::Transport {
            route: route.into(),
            message,
        };
        let stream = tokio::net::UnixStream::connect(&self.socket)
            .await
            .map_err(|source| HearthError::Connect {
                socket: self.socket.clone(),
                source,
            })?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| transport(e.to_string()))?;
        tokio::spawn(conn);
        let request = Request::builder()
            .method(method)
            .uri(route)
            .header("host", "hearth")
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .expect("static request parts are valid");
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let answer = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(e.to_string()))?
            .to_bytes();
        Ok((status, answer))
    }
}
