//! The worker's word is authenticated (contract §5): the console records nothing on an answer
//! or a frame without a valid MAC. An impostor that ignores the bearer and answers like a
//! worker gets no `ralph.*` record and no `succeeded` run; the genuine worker's own frames
//! without their MACs (the old frame format) are refused and counted, each with its reason.

use crate::support;

use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use axum::response::IntoResponse;
use rocky::api::ErrorCode;
use rocky::api::console::paths;
use rocky::kahn::{Frame, NodeState, RunStatus};
use support::{Options, stack_with};

/// The run id the impostor hands out.
const IMPOSTOR_RUN: &str = "run-impostor";

/// A plain HTTP server where the worker should be: it ignores the bearer, answers every
/// submission 202 `{"run_id"}` and streams four nodes running→succeeded and a `RunEnded`, all
/// perfect `kahn/1`. Returns its URL and the requests it saw.
async fn impostor() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let log = log.clone();
        async move {
            let path = req.uri().path().to_owned();
            log.lock()
                .expect("seen lock")
                .push(format!("{} {path}", req.method()));
            if path == "/v1/runs" {
                let body = serde_json::json!({ "run_id": IMPOSTOR_RUN }).to_string();
                return (
                    StatusCode::ACCEPTED,
                    [("content-type", "application/json")],
                    body,
                )
                    .into_response();
            }
            if path.ends_with("/events") {
                return ([("content-type", "text/event-stream")], frames()).into_response();
            }
            StatusCode::ACCEPTED.into_response()
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the impostor");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, seen)
}

/// Four NodeTransition running→succeeded and a RunEnded succeeded, as SSE.
fn frames() -> String {
    let ts = "2026-01-01T00:00:00Z".to_owned();
    let mut frames: Vec<Frame> = (1..=4)
        .map(|n| Frame::NodeTransition {
            run_id: IMPOSTOR_RUN.into(),
            node_id: format!("node-{n}"),
            seq: n,
            from: NodeState::Running,
            to: NodeState::Succeeded,
            ts: ts.clone(),
        })
        .collect();
    frames.push(Frame::RunEnded {
        run_id: IMPOSTOR_RUN.into(),
        seq: 5,
        status: RunStatus::Succeeded,
        ts,
    });
    frames
        .iter()
        .map(|f| format!("id: {}\ndata: {}\n\n", f.seq(), rocky::kahn::encode(f)))
        .collect()
}

#[tokio::test]
async fn an_impostor_without_the_key_gets_no_record_and_no_run() {
    let (url, seen) = impostor().await;
    let s = stack_with(Options {
        worker_url: Some(url),
        ..Options::default()
    })
    .await;
    s.provision("ws-imp").await;
    let prompts = ["a", "b", "c", "d"];
    let (status, body) = s.submit("ws-imp", &prompts).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::WorkerUnauthenticated.as_str(),
        "{body}"
    );
    assert_eq!(
        body["error"]["message"],
        "console→worker: the worker's 202 is not authenticated: it carries no MAC; no run is \
         recorded on it",
        "{body}"
    );
    // No run view for the impostor's run id.
    let (status, view) = s
        .call(reqwest::Method::GET, &paths::run(IMPOSTOR_RUN), None)
        .await;
    assert_eq!(status, 404, "{view}");
    assert_eq!(
        s.kinds(),
        ["hearth.provisioning_started", "hearth.provisioned"],
        "nothing ralph.* is recorded on the impostor's word"
    );
    // The console did not follow the unconfirmed run; it asked for it to be cancelled by the
    // submission's nonce (the impostor just says 202 to that too).
    support::wait_for("the cancel of the unconfirmed submission", || {
        seen.lock()
            .expect("seen lock")
            .iter()
            .any(|r| r.starts_with("POST /v1/submissions/") && r.ends_with("/cancel"))
    })
    .await;
    let seen = seen.lock().expect("seen lock").clone();
    assert!(
        !seen.iter().any(|r| r.ends_with("/events")),
        "the console followed an unauthenticated run: {seen:?}"
    );
}

#[tokio::test]
async fn frames_without_their_mac_are_refused_and_counted() {
    let s = stack_with(Options {
        proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = s.proxy.as_ref().expect("a proxy");
    proxy
        .knobs
        .strip_macs
        .store(true, std::sync::atomic::Ordering::SeqCst);
    s.provision("ws-old").await;
    let (status, body) = s.submit("ws-old", &["a", "b", "c", "d"]).await;
    assert_eq!(status, 202, "the genuine 202 is authenticated: {body}");
    let id = body["run_id"].as_str().expect("run_id").to_owned();
    let view = s
        .run_until(&id, "its end", |v| v["status"] != "running")
        .await;
    assert_eq!(view["status"], "failed", "{view}");
    // 4 nodes × (running, attempt, succeeded) + RunEnded, every one refused.
    assert_eq!(view["rejected_total"], 13, "{view}");
    let frames = view["rejected_frames"].as_array().expect("rejected_frames");
    assert_eq!(frames.len(), 13, "{view}");
    for f in frames {
        assert_eq!(
            f["reason"], "frame not authenticated: it carries no MAC",
            "{view}"
        );
    }
    assert_eq!(
        s.kinds(),
        [
            "hearth.provisioning_started",
            "hearth.provisioned",
            "ralph.run.started",
            "ralph.run.ended",
        ],
        "no ralph.node.* on unauthenticated frames"
    );
    let ended = s.hatch.records().expect("records");
    let data = &ended.last().expect("run.ended").data;
    assert_eq!(data["status"], "failed", "{data}");
    assert_eq!(data["rejected_frames"], 13, "{data}");
}

#[tokio::test]
async fn every_refused_frame_is_counted_and_the_first_ones_kept() {
    let s = stack_with(Options {
        proxy: true,
        ..Options::default()
    })
    .await;
    let proxy = s.proxy.as_ref().expect("a proxy");
    proxy
        .knobs
        .strip_macs
        .store(true, std::sync::atomic::Ordering::SeqCst);
    s.provision("ws-flood").await;
    let (status, body) = s
        .call(
            reqwest::Method::POST,
            paths::RUNS,
            Some(serde_json::json!({
                "workspace": "ws-flood",
                "prompts": ["[ralph:never]"],
                "max_ralph_iters": 100,
            })),
        )
        .await;
    assert_eq!(status, 202, "{body}");
    let id = body["run_id"].as_str().expect("run_id").to_owned();
    let view = s
        .run_until(&id, "its end", |v| v["status"] != "running")
        .await;
    // running, 100 attempts, failed, RunEnded.
    assert_eq!(view["rejected_total"], 103, "{view}");
    assert_eq!(
        view["rejected_frames"].as_array().map(Vec::len),
        Some(32),
        "{view}"
    );
    let records = s.hatch.records().expect("records");
    let data = &records.last().expect("a record").data;
    assert_eq!(data["rejected_frames"], 103, "{data}");
}
