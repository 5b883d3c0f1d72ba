//! A proxy between the console and the worker, for what only the network can do to them: strip
//! the MACs off a genuine stream (the old frame format), swallow the answer to a submission the
//! worker accepted, hang a submission sent on a kept-alive connection, or cut and refuse event
//! streams for a while. Everything else is relayed.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use tokio::sync::watch;

/// The proxy's knobs and what it saw.
pub struct Knobs {
    /// Drop every `mac:` line of event streams.
    pub strip_macs: AtomicBool,
    /// Relay submissions to the worker but never answer the console.
    pub hang_submissions: AtomicBool,
    /// Never answer (nor relay) a submission that arrives on a connection an earlier request
    /// came on: a kept-alive connection the worker has closed, as the console would find it.
    pub hang_reused_submissions: AtomicBool,
    /// The console's side of every connection a request came on.
    peers: Mutex<std::collections::HashSet<std::net::SocketAddr>>,
    /// How long a cancel of a run is held before it is relayed (a slow worker).
    pub cancel_delay: Mutex<std::time::Duration>,
    /// Event streams pass while true; closing it cuts the open ones and refuses new ones (503).
    gate: watch::Sender<bool>,
    /// `METHOD /path` of every request, in order.
    pub seen: Mutex<Vec<String>>,
    /// Run ids the worker accepted whose answers were swallowed.
    pub swallowed: Mutex<Vec<String>>,
    upstream: String,
    http: reqwest::Client,
}

pub struct Proxy {
    pub url: String,
    pub knobs: Arc<Knobs>,
}

impl Proxy {
    pub async fn start(upstream: &str) -> Proxy {
        let knobs = Arc::new(Knobs {
            strip_macs: AtomicBool::new(false),
            hang_submissions: AtomicBool::new(false),
            hang_reused_submissions: AtomicBool::new(false),
            peers: Mutex::new(Default::default()),
            cancel_delay: Mutex::new(std::time::Duration::ZERO),
            gate: watch::channel(true).0,
            seen: Mutex::new(Vec::new()),
            swallowed: Mutex::new(Vec::new()),
            upstream: upstream.to_owned(),
            http: rocky::http::client(),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(knobs.clone());
        tokio::spawn(async move {
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<std::net::SocketAddr>(),
            )
            .await
        });
        Proxy { url, knobs }
    }

    /// Opens (true) or closes (false) the gate for event streams.
    pub fn events_open(&self, open: bool) {
        self.knobs.gate.send_replace(open);
    }

    /// The requests seen whose path ends with `suffix`.
    pub fn seen(&self, suffix: &str) -> Vec<String> {
        self.knobs
            .seen
            .lock()
            .expect("seen lock")
            .iter()
            .filter(|r| r.ends_with(suffix))
            .cloned()
            .collect()
    }
}

async fn forward(
    State(knobs): State<Arc<Knobs>>,
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<std::net::SocketAddr>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let reused = !knobs.peers.lock().expect("peers lock").insert(peer);
    let body = axum::body::to_bytes(body, 1 << 20)
        .await
        .unwrap_or_default();
    let target = parts
        .uri
        .path_and_query()
        .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned());
    knobs
        .seen
        .lock()
        .expect("seen lock")
        .push(format!("{} {}", parts.method, parts.uri.path()));
    let submission = parts.method == axum::http::Method::POST && parts.uri.path() == "/v1/runs";
    if submission && reused && knobs.hang_reused_submissions.load(Ordering::SeqCst) {
        return std::future::pending().await;
    }
    let events = parts.uri.path().ends_with("/events");
    if events && !*knobs.gate.borrow() {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    if parts.uri.path().starts_with("/v1/runs/") && parts.uri.path().ends_with("/cancel") {
        // Fault injection (a slow worker), not a synchronisation.
        let delay = *knobs.cancel_delay.lock().expect("delay lock");
        tokio::time::sleep(delay).await;
    }
    let mut upstream = knobs
        .http
        .request(parts.method.clone(), format!("{}{target}", knobs.upstream));
    for name in ["authorization", "content-type", "last-event-id", "accept"] {
        if let Some(v) = parts.headers.get(name) {
            upstream = upstream.header(name, v.as_bytes());
        }
    }
    let answer = match upstream.body(body).send().await {
        Ok(a) => a,
        Err(e) => return (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    };
    if submission && knobs.hang_submissions.load(Ordering::SeqCst) {
        let text = answer.text().await.unwrap_or_default();
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&text)
            && let Some(id) = v["run_id"].as_str()
        {
            knobs
                .swallowed
                .lock()
                .expect("swallowed lock")
                .push(id.to_owned());
        }
        return std::future::pending().await;
    }
    let mut response = Response::builder().status(answer.status().as_u16());
    for name in ["content-type", rocky::vault::ANSWER_MAC_HEADER] {
        if let Some(v) = answer.headers().get(name) {
            response = response.header(name, v.as_bytes());
        }
    }
    let body = if events {
        Body::from_stream(relay(knobs.clone(), answer))
    } else {
        Body::from(answer.bytes().await.unwrap_or_default())
    };
    response.body(body).expect("a relayed response builds")
}

/// The upstream event stream, line by line (without `mac:` lines when stripping), until the
/// upstream ends or the gate closes.
fn relay(
    knobs: Arc<Knobs>,
    answer: reqwest::Response,
) -> impl futures::Stream<Item = Result<Bytes, std::io::Error>> {
    let gate = knobs.gate.subscribe();
    let upstream = answer.bytes_stream().boxed();
    futures::stream::unfold(
        (knobs, gate, upstream, Vec::<u8>::new()),
        |(knobs, mut gate, mut upstream, mut pending)| async move {
            loop {
                if !*gate.borrow_and_update() {
                    return None;
                }
                let chunk = tokio::select! {
                    chunk = upstream.next() => chunk,
                    _ = gate.changed() => continue,
                };
                let chunk = match chunk {
                    Some(Ok(c)) => c,
                    _ => return None,
                };
                pending.extend_from_slice(&chunk);
                let mut out = Vec::new();
                while let Some(end) = pending.iter().position(|&b| b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    if knobs.strip_macs.load(Ordering::SeqCst) && line.starts_with(b"mac:") {
                        continue;
                    }
                    out.extend_from_slice(&line);
                }
                if !out.is_empty() {
                    return Some((Ok(Bytes::from(out)), (knobs, gate, upstream, pending)));
                }
            }
        },
    )
}
