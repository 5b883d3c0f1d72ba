//! A client for the worker (`ralph serve`, contract §5): what the console uses for every call
//! to it. Each request carries the HMAC bearer; each answer the console could record anything
//! on (the 202 to a submission, every frame of an event stream) is checked against its MAC,
//! bound to that request's nonce ([`crate::vault::answer`]). Nothing unauthenticated comes out
//! of this client as the worker's word.

use std::time::Duration;

use futures::StreamExt;
use futures::stream::BoxStream;

use crate::api::worker::{RunAccepted, RunState, SIGN_AGAIN_HEADER, SubmitRun, paths};
use crate::sse::{SseError, SseMessage, SseParser};
use crate::vault::{ANSWER_MAC_HEADER, Answer, AnswerError, Keyring};

/// The fixed sentence for a call to the worker that got no answer, for records and snapshots.
/// Whether the connection was refused, timed out or dropped depends on how the worker went
/// away and on the network, so the sentence does not say; the full error goes to the log.
pub const WORKER_UNREACHABLE: &str = "the worker could not be reached";

/// Longest reason kept from a worker's error answer: it lands in records and gap reports.
const MAX_REASON_LEN: usize = 240;

/// A worker endpoint and the keyring both sides share.
#[derive(Clone, Debug)]
pub struct WorkerClient {
    /// e.g. `http://127.0.0.1:7001`.
    base_url: String,
    /// Signs requests and checks the answers' MACs.
    keyring: Keyring,
    /// One pool, connections kept alive.
    http: reqwest::Client,
    /// No pool: every submission on a connection of its own. A submission is the one call
    /// that cannot be sent again, and an idle pooled connection may be one the worker has
    /// already closed (restarted, or its idle timer) that the client has not yet seen close:
    /// written there, the submission comes back unconfirmed from a healthy worker.
    fresh: reqwest::Client,
    /// Bound on each call (an event stream's connection and headers, not its whole body).
    deadline: Duration,
}

/// Why a submission has no run to show for it.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// No connection was made: the submission certainly did not arrive.
    #[error("console→worker POST {url} failed: {detail}")]
    Unreachable { url: String, detail: String },
    /// Sent, but without an authenticated 202: the worker may have accepted it, so the caller
    /// cancels it by `nonce` ([`WorkerClient::cancel_submission`]).
    #[error("{why}")]
    Unconfirmed { nonce: String, why: Unconfirmed },
    /// The worker said no (its status and reason).
    #[error("console→worker returned {status} ({reason})")]
    Refused { status: u16, reason: String },
}

/// Why a submission that was sent is not confirmed.
#[derive(Debug, thiserror::Error)]
pub enum Unconfirmed {
    #[error("console→worker POST {url} got no answer: {detail}")]
    NoAnswer { url: String, detail: String },
    #[error("console→worker: the worker's 202 is {0}; no run is recorded on it")]
    NotAuthenticated(AnswerError),
    #[error("console→worker returned an unreadable answer: {0}")]
    Unreadable(String),
}

/// Why the worker did not take a cancel; the `Display` is the fixed sentence records carry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CancelError {
    #[error("the cancel failed: {WORKER_UNREACHABLE}")]
    Unreachable,
    #[error("the worker answered {0} to the cancel")]
    Refused(u16),
}

/// Why an event stream could not be opened.
#[derive(Debug)]
pub enum EventsError {
    /// No answer (connection refused, dropped, timed out): the full error, for the log.
    Transport(String),
    /// The worker answered with this status instead of a stream.
    Status(u16),
}

/// A frame as it arrived, with what its MAC says about it.
#[derive(Debug)]
pub struct Received {
    /// The SSE event (its `id:`, `data:` and `mac:`).
    pub message: SseMessage,
    /// The frame's `seq` (its SSE `id:`) when the MAC authenticates it for this run and this
    /// stream, or why not (a fixed sentence).
    pub authenticated: Result<u64, String>,
}

/// What one read of an event stream gave.
#[derive(Debug)]
pub enum Read {
    /// Events, and whether the stream broke the SSE rules after them (it cannot be read on).
    Frames {
        received: Vec<Received>,
        broken: Option<SseError>,
    },
    /// The worker closed the stream cleanly.
    Closed,
    /// The connection failed mid-stream (the full error, for the log).
    Failed(String),
}

/// An open event stream of one run.
pub struct EventStream {
    run_id: String,
    /// The nonce of this stream's request: every frame's MAC is bound to it.
    nonce: String,
    keyring: Keyring,
    body: BoxStream<'static, reqwest::Result<axum::body::Bytes>>,
    parser: SseParser,
}

impl WorkerClient {
    /// A client for `base_url`; every call is bounded by `deadline` (and a connect by it too,
    /// so an address that swallows packets fails at the deadline, not after minutes of SYNs).
    pub fn new(base_url: impl Into<String>, keyring: Keyring, deadline: Duration) -> WorkerClient {
        let http = crate::http::client_builder()
            .connect_timeout(deadline)
            .build()
            .expect("a plain HTTP client builds");
        let fresh = crate::http::client_builder()
            .connect_timeout(deadline)
            .pool_max_idle_per_host(0)
            .build()
            .expect("a plain HTTP client builds");
        WorkerClient {
            base_url: base_url.into(),
            keyring,
            http,
            fresh,
            deadline,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// [`WorkerClient::signed`] sent through `http`.
    fn signed_on(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        target: &str,
        body: &[u8],
    ) -> (reqwest::RequestBuilder, String) {
        let bearer = self
            .keyring
            .sign(method.as_str(), target, body, crate::vault::now_unix());
        let nonce = crate::vault::bearer_nonce(&bearer).unwrap_or_default();
        let request = http
            .request(method, format!("{}{target}", self.base_url))
            .header("authorization", bearer);
        (request, nonce)
    }

    /// Sends the request `build` makes of a freshly signed one, and its nonce. When the worker
    /// answers 401 with [`SIGN_AGAIN_HEADER`] (it started after the bearer was signed: the
    /// request waited out a worker restart, and the bearer could be a replay to it), signs it
    /// again and sends it once more; that answer is the answer.
    async fn send_signed(
        &self,
        http: &reqwest::Client,
        method: reqwest::Method,
        target: &str,
        body: &[u8],
        build: impl Fn(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    ) -> (Result<reqwest::Response, reqwest::Error>, String) {
        let mut again = true;
        loop {
            let (request, nonce) = self.signed_on(http, method.clone(), target, body);
            let sent = build(request).send().await;
            match &sent {
                Ok(r)
                    if again
                        && r.status() == reqwest::StatusCode::UNAUTHORIZED
                        && r.headers().contains_key(SIGN_AGAIN_HEADER) =>
                {
                    again = false;
                }
                _ => return (sent, nonce),
            }
        }
    }

    /// `POST /v1/runs`: the run id, once the worker's 202 is authenticated.
    pub async fn submit(&self, run: &SubmitRun) -> Result<RunAccepted, SubmitError> {
        let body = serde_json::to_vec(run).expect("a submission serialises");
        let url = format!("{}{}", self.base_url, paths::RUNS);
        let (sent, nonce) = self
            .send_signed(
                &self.fresh,
                reqwest::Method::POST,
                paths::RUNS,
                &body,
                |request| {
                    request
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .timeout(self.deadline)
                },
            )
            .await;
        let unconfirmed = |why| SubmitError::Unconfirmed {
            nonce: nonce.clone(),
            why,
        };
        let response = match sent {
            Ok(r) => r,
            Err(e) if e.is_connect() => {
                return Err(SubmitError::Unreachable {
                    url,
                    detail: crate::http::describe(&e),
                });
            }
            Err(e) => {
                return Err(unconfirmed(Unconfirmed::NoAnswer {
                    url,
                    detail: crate::http::describe(&e),
                }));
            }
        };
        let status = response.status();
        let tag = response
            .headers()
            .get(ANSWER_MAC_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = match response.bytes().await {
            Ok(b) => b,
            Err(e) if status == reqwest::StatusCode::ACCEPTED => {
                return Err(unconfirmed(Unconfirmed::NoAnswer {
                    url,
                    detail: crate::http::describe(&e),
                }));
            }
            Err(_) => axum::body::Bytes::new(),
        };
        if status != reqwest::StatusCode::ACCEPTED {
            return Err(SubmitError::Refused {
                status: status.as_u16(),
                reason: reason(&text),
            });
        }
        let accepted: RunAccepted = serde_json::from_slice(&text)
            .map_err(|e| unconfirmed(Unconfirmed::Unreadable(e.to_string())))?;
        self.keyring
            .verify_answer(
                tag.as_deref(),
                &Answer::Accepted {
                    nonce: &nonce,
                    run_id: &accepted.run_id,
                    body: &text,
                },
            )
            .map_err(|e| unconfirmed(Unconfirmed::NotAuthenticated(e)))?;
        Ok(accepted)
    }

    /// `GET /v1/runs/{id}`: where the run is on the worker (this does not renew its lease).
    pub async fn run_state(&self, run_id: &str) -> Result<RunState, String> {
        let (sent, _) = self
            .send_signed(
                &self.http,
                reqwest::Method::GET,
                &paths::run(run_id),
                b"",
                |request| request.timeout(self.deadline),
            )
            .await;
        let response = sent.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if status != 200 {
            return Err(format!("the worker answered {status}: {}", reason(&body)));
        }
        serde_json::from_slice(&body).map_err(|e| e.to_string())
    }

    /// `POST /v1/runs/{id}/cancel`: the run ends `cancelled` at its next step.
    pub async fn cancel(&self, run_id: &str) -> Result<(), CancelError> {
        self.post_cancel(&paths::cancel(run_id)).await
    }

    /// `POST /v1/submissions/{nonce}/cancel`: cancels whatever run the submission signed with
    /// `nonce` started, and makes the worker refuse that submission if it has not arrived.
    pub async fn cancel_submission(&self, nonce: &str) -> Result<(), CancelError> {
        self.post_cancel(&paths::cancel_submission(nonce)).await
    }

    async fn post_cancel(&self, target: &str) -> Result<(), CancelError> {
        let (sent, _) = self
            .send_signed(&self.http, reqwest::Method::POST, target, b"", |request| {
                request.timeout(self.deadline)
            })
            .await;
        match sent {
            Err(e) => {
                tracing::warn!("cancel {target}: {e}");
                Err(CancelError::Unreachable)
            }
            Ok(r) if !r.status().is_success() => Err(CancelError::Refused(r.status().as_u16())),
            Ok(_) => Ok(()),
        }
    }

    /// `GET /v1/runs/{id}/events`, resuming after `last_event_id` when given.
    pub async fn events(
        &self,
        run_id: &str,
        last_event_id: Option<&str>,
    ) -> Result<EventStream, EventsError> {
        let target = paths::events(run_id);
        let sent = self.send_signed(&self.http, reqwest::Method::GET, &target, b"", |request| {
            let request = request.header("accept", "text/event-stream");
            match last_event_id {
                Some(id) => request.header("last-event-id", id),
                None => request,
            }
        });
        // The deadline covers the answer's headers only: the stream itself lasts the run.
        let (sent, nonce) = tokio::time::timeout(self.deadline, sent)
            .await
            .map_err(|_| {
                EventsError::Transport("no answer within the worker-call deadline".into())
            })?;
        let response = sent.map_err(|e| EventsError::Transport(crate::http::describe(&e)))?;
        if !response.status().is_success() {
            return Err(EventsError::Status(response.status().as_u16()));
        }
        Ok(EventStream {
            run_id: run_id.to_owned(),
            nonce,
            keyring: self.keyring.clone(),
            body: response.bytes_stream().boxed(),
            parser: SseParser::default(),
        })
    }
}

impl EventStream {
    /// The reconnection time the worker asked for (`retry:`), if any.
    pub fn retry(&self) -> Option<Duration> {
        self.parser.retry()
    }

    /// Reads the next chunk of the stream: its events, each with its MAC checked.
    pub async fn read(&mut self) -> Read {
        let chunk = match self.body.next().await {
            None => return Read::Closed,
            Some(Err(e)) => return Read::Failed(crate::http::describe(&e)),
            Some(Ok(chunk)) => chunk,
        };
        let mut messages = Vec::new();
        let broken = self.parser.push(&chunk, &mut messages).err();
        let received = messages
            .into_iter()
            .map(|message| {
                let authenticated = self.authenticate(&message);
                Received {
                    message,
                    authenticated,
                }
            })
            .collect();
        Read::Frames { received, broken }
    }

    fn authenticate(&self, message: &SseMessage) -> Result<u64, String> {
        let seq = message
            .id
            .as_deref()
            .and_then(|id| id.parse::<u64>().ok())
            .ok_or_else(|| "frame not authenticated: its SSE id is not a seq".to_owned())?;
        self.keyring
            .verify_answer(
                message.mac.as_deref(),
                &Answer::Frame {
                    nonce: &self.nonce,
                    run_id: &self.run_id,
                    seq,
                    data: &message.data,
                },
            )
            .map(|()| seq)
            .map_err(|e| format!("frame {e}"))
    }
}

/// The `error.message` of an error answer, or its text, bounded.
fn reason(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["error"]["message"].as_str().map(str::to_owned))
        .unwrap_or_else(|| text.into_owned());
    truncate(reason, MAX_REASON_LEN)
}

/// `text` cut to at most `max` bytes on a character boundary, with `…` when cut.
pub fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}
