//! Fail closed (contract §2): a lifecycle action whose HATCH append fails is refused with 503
//! `audit_unavailable` and leaves no half-state. hearth runs with a counting fake driver on a
//! real unix socket; the console and a real worker are served on loopback and driven over HTTP.

use crate::support;

use std::sync::atomic::Ordering;

use rocky::api::ErrorCode;
use rocky::api::console::paths;
use support::stack;

fn create() -> Option<serde_json::Value> {
    Some(support::create_body("ws-audit", "solo"))
}

#[tokio::test]
async fn provision_is_refused_when_its_first_record_cannot_be_written() {
    let s = stack().await;
    s.hatch.inject_append_failure(true);
    let (status, body) = s
        .call(reqwest::Method::POST, paths::WORKSPACES, create())
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::AuditUnavailable.as_str(),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("hearth.provisioning_started"),
        "{body}"
    );
    assert_eq!(
        s.counts.provisions.load(Ordering::SeqCst),
        0,
        "hearth never called"
    );
    let (status, _) = s
        .call(reqwest::Method::GET, &paths::workspace("ws-audit"), None)
        .await;
    assert_eq!(status, 404, "the slug was released");
    // Once the sink works again the same request succeeds.
    s.hatch.inject_append_failure(false);
    let (status, body) = s
        .call(reqwest::Method::POST, paths::WORKSPACES, create())
        .await;
    assert_eq!(status, 201, "{body}");
}

#[tokio::test]
async fn an_unrecorded_provision_is_rolled_back() {
    let s = stack().await;
    // provisioning_started (seq 1) is written, provisioned (seq 2) is not.
    s.hatch.fail_appends_from(2);
    let (status, body) = s
        .call(reqwest::Method::POST, paths::WORKSPACES, create())
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], ErrorCode::AuditUnavailable.as_str());
    assert_eq!(s.counts.provisions.load(Ordering::SeqCst), 1);
    assert_eq!(s.counts.teardowns.load(Ordering::SeqCst), 1, "rolled back");
    let (_, view) = s
        .call(reqwest::Method::GET, &paths::workspace("ws-audit"), None)
        .await;
    assert_eq!(view["status"], "tier_torn_down", "{view}");
    assert_eq!(s.kinds(), ["hearth.provisioning_started"]);
}

#[tokio::test]
async fn teardown_is_refused_when_its_record_cannot_be_written() {
    let s = stack().await;
    let (status, _) = s
        .call(reqwest::Method::POST, paths::WORKSPACES, create())
        .await;
    assert_eq!(status, 201);
    s.hatch.inject_append_failure(true);
    let (status, body) = s
        .call(reqwest::Method::DELETE, &paths::workspace("ws-audit"), None)
        .await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"]["code"], ErrorCode::AuditUnavailable.as_str());
    assert_eq!(
        s.counts.teardowns.load(Ordering::SeqCst),
        0,
        "hearth never called"
    );
    let (_, view) = s
        .call(reqwest::Method::GET, &paths::workspace("ws-audit"), None)
        .await;
    assert_eq!(view["status"], "ready", "{view}");
}

#[tokio::test]
async fn an_unrecorded_run_is_refused_and_cancelled_at_the_worker() {
    let s = stack().await;
    s.provision("ws-audit").await;
    s.hatch.inject_append_failure(true);
    let (status, body) = s.submit("ws-audit", &["hold [ralph:hold]"]).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::AuditUnavailable.as_str(),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("ralph.run.started"),
        "{body}"
    );
    let submitted = s.worker_answers("/v1/runs");
    assert_eq!(submitted.len(), 1, "{submitted:?}");
    assert_eq!(submitted[0].1, 202, "the worker accepted it: {submitted:?}");
    let cancels = s.worker_answers("/cancel");
    assert_eq!(
        cancels.len(),
        1,
        "the console cancels the run it could not record: {cancels:?}"
    );
    assert_eq!(cancels[0].1, 202, "{cancels:?}");
    assert_eq!(
        s.kinds(),
        ["hearth.provisioning_started", "hearth.provisioned"]
    );
}

#[tokio::test]
async fn out_of_range_durations_from_a_request_get_400() {
    let s = stack().await;
    for wait in [
        "307445734561825861m",
        "61s",
        "99999999999999999999999s",
        "-1s",
        "5h",
    ] {
        let (status, body) = s
            .call(
                reqwest::Method::GET,
                &format!("{}?wait={wait}", paths::run("run-x")),
                None,
            )
            .await;
        assert_eq!(status, 400, "{wait}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("wait: "),
            "{body}"
        );
    }
}
