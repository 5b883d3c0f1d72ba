//! The worker's bearer over HTTP: the same signed request sent five times starts one run;
//! the query string is signed; bad input names its limit.

use rocky::kahn::Encoding;
use rocky::vault::Keyring;
use rocky::worker::{Worker, WorkerConfig};

async fn worker() -> (String, Keyring) {
    let keyring = Keyring::single("v1", b"worker secret");
    let w = Worker::new(WorkerConfig {
        keyring: keyring.clone(),
        max_skew_secs: 30,
        encoding: Encoding::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(rocky::http::serve(
        listener,
        w.router(),
        std::future::pending(),
    ));
    (url, keyring)
}

#[tokio::test]
async fn a_replayed_submission_starts_one_run() {
    let (url, keyring) = worker().await;
    let body = br#"{"workspace":"ws","prompts":["p"],"max_ralph_iters":3}"#;
    let bearer = keyring.sign("POST", "/v1/runs", body, rocky::vault::now_unix());
    let http = rocky::http::client();
    let mut answers = Vec::new();
    for _ in 0..5 {
        let r = http
            .post(format!("{url}/v1/runs"))
            .header("authorization", &bearer)
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("worker answers");
        let status = r.status().as_u16();
        let v: serde_json::Value = r.json().await.expect("json");
        answers.push((status, v["error"]["code"].as_str().unwrap_or("").to_owned()));
    }
    assert_eq!(answers[0].0, 202, "{answers:?}");
    for a in &answers[1..] {
        assert_eq!(
            a,
            &(401, rocky::api::ErrorCode::Replayed.to_string()),
            "{answers:?}"
        );
    }
}

#[tokio::test]
async fn the_query_is_signed() {
    let (url, keyring) = worker().await;
    let signed = "/v1/runs/run-x/events";
    let bearer = keyring.sign("GET", signed, b"", rocky::vault::now_unix());
    let r = rocky::http::client()
        .get(format!("{url}{signed}?evil=1"))
        .header("authorization", &bearer)
        .send()
        .await
        .expect("worker answers");
    assert_eq!(r.status().as_u16(), 401);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("signature mismatch"),
        "{v}"
    );
}

#[tokio::test]
async fn oversized_input_is_refused_by_name() {
    let (url, keyring) = worker().await;
    let big = "x".repeat(5000);
    let body = serde_json::to_vec(&serde_json::json!({
        "workspace": "ws", "prompts": [big], "max_ralph_iters": 3
    }))
    .expect("encode");
    let bearer = keyring.sign("POST", "/v1/runs", &body, rocky::vault::now_unix());
    let r = rocky::http::client()
        .post(format!("{url}/v1/runs"))
        .header("authorization", &bearer)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("worker answers");
    assert_eq!(r.status().as_u16(), 400);
    let v: serde_json::Value = r.json().await.expect("json");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("more than 4096"),
        "{v}"
    );
}
