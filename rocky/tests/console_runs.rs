//! The console's runs against a real worker: ended runs are evicted past the retention bound
//! (contract §9: a bound on what a server keeps), a worker that is gone at teardown still lets
//! the teardown end the run, and a worker that lost a run (killed and restarted) ends it
//! `failed` at once instead of leaving it running; a record the follower could not append shows
//! on the run's view, and such a run never reads `succeeded`.

use crate::support;

use rocky::api::console::paths;
use rocky::retention::MAX_FINISHED_RUNS;
use support::stack;

fn run_id(body: &serde_json::Value) -> String {
    body["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run_id in {body}"))
        .to_owned()
}

/// Provisions `slug` and submits a run whose node 2 holds until cancelled; returns the run id
/// once the console reports node 2 running.
async fn held_run(s: &support::Stack, slug: &str) -> String {
    s.provision(slug).await;
    let (status, body) = s
        .submit(slug, &["write the spec", "wait [ralph:hold]"])
        .await;
    assert_eq!(status, 202, "{body}");
    let id = run_id(&body);
    s.run_until(&id, "node 2 running", |v| {
        v["nodes"][1]["status"] == "running"
    })
    .await;
    id
}

#[tokio::test]
async fn ended_runs_are_evicted_past_the_retention_bound() {
    let s = stack().await;
    s.provision("ws-runs").await;
    let total = MAX_FINISHED_RUNS + 4;
    let mut ids = Vec::with_capacity(total);
    for i in 0..total {
        let (status, body) = s.submit("ws-runs", &["write the spec"]).await;
        assert_eq!(status, 202, "run {i}: {body}");
        let id = run_id(&body);
        // Each run ends before the next is submitted, so every earlier one is evictable.
        s.run_until(&id, "its end", |v| v["status"] != "running")
            .await;
        ids.push(id);
    }
    // At each submission the oldest ended runs beyond the bound go: the first
    // `total - MAX_FINISHED_RUNS - 1` are gone, the rest are still readable.
    let gone = total - MAX_FINISHED_RUNS - 1;
    for (i, id) in ids.iter().enumerate() {
        let (status, body) = s.call(reqwest::Method::GET, &paths::run(id), None).await;
        let expected = if i < gone { 404 } else { 200 };
        assert_eq!(status, expected, "run {i} ({id}): {body}");
    }
}

#[tokio::test]
async fn a_teardown_ends_a_run_whose_worker_is_gone() {
    let mut s = stack().await;
    let id = held_run(&s, "ws-gone").await;
    s.kill_worker().await;
    let (status, body) = s
        .call(reqwest::Method::DELETE, &paths::workspace("ws-gone"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    let view = s
        .run_until(&id, "its end", |v| v["status"] != "running")
        .await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(
        view["error"],
        "workspace ws-gone torn down; the cancel failed: the worker could not be reached",
        "{view}"
    );
    assert_eq!(
        s.kinds(),
        [
            "hearth.provisioning_started",
            "hearth.provisioned",
            "ralph.run.started",
            "ralph.node.succeeded",
            "ralph.run.ended",
            "hearth.decommission_started",
            "hearth.decommissioned",
        ]
    );
}

#[tokio::test]
async fn a_run_the_restarted_worker_lost_ends_failed_at_once() {
    let mut s = stack().await;
    let id = held_run(&s, "ws-lost").await;
    s.kill_worker().await;
    s.restart_worker().await;
    let view = s
        .run_until(&id, "its end", |v| v["status"] != "running")
        .await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(
        view["error"],
        "the worker no longer knows the run (404): it was restarted, or evicted the run",
        "{view}"
    );
    let events = s.worker_answers("/events");
    assert_eq!(
        events.last().map(|(_, status)| *status),
        Some(404),
        "the follow resumed against the restarted worker: {events:?}"
    );
    assert_eq!(
        s.kinds(),
        [
            "hearth.provisioning_started",
            "hearth.provisioned",
            "ralph.run.started",
            "ralph.node.succeeded",
            "ralph.run.ended",
        ]
    );
}

/// The test stack's own restart, where it went wrong once (32 tests at a time): a child
/// forked just before the kill, slow to exec, holds the killed worker's listener; the restart
/// waits for it instead of failing with "Address already in use".
#[tokio::test(flavor = "multi_thread")]
async fn the_worker_restarts_while_a_child_forked_before_the_kill_holds_its_listener() {
    let mut s = stack().await;
    let child =
        testkit::fork_slow_to_exec(std::time::Duration::from_millis(300)).expect("a forked child");
    s.kill_worker().await;
    s.restart_worker().await;
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .expect("the child")
        .expect("true ran");
    let id = held_run(&s, "ws-forked").await;
    assert!(!id.is_empty());
}

#[tokio::test]
async fn a_record_the_follower_could_not_append_shows_on_the_view() {
    let s = stack().await;
    s.provision("ws-gap").await;
    // provisioning_started, provisioned and run.started are written (seq 1..3); nothing after.
    s.hatch.fail_appends_from(4);
    let (status, body) = s.submit("ws-gap", &["write the spec"]).await;
    assert_eq!(status, 202, "{body}");
    let id = run_id(&body);
    let view = s
        .run_until(&id, "its end", |v| v["status"] != "running")
        .await;
    assert_eq!(
        view["status"], "failed",
        "the worker said succeeded, but the records are missing: {view}"
    );
    let unrecorded: Vec<&str> = view["unrecorded"]
        .as_array()
        .unwrap_or_else(|| panic!("no unrecorded field: {view}"))
        .iter()
        .map(|r| r["kind"].as_str().unwrap_or("?"))
        .collect();
    assert_eq!(
        unrecorded,
        ["ralph.node.succeeded", "ralph.run.ended"],
        "{view}"
    );
    let error = view["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with(
            "1 record(s) of the run could not be appended to the HATCH log (first: ralph.node.succeeded: "
        ),
        "{view}"
    );
    assert_eq!(
        s.kinds(),
        [
            "hearth.provisioning_started",
            "hearth.provisioned",
            "ralph.run.started",
        ]
    );
}

/// Bug: a prompt past the worker's size limit reached the worker, and the caller got 502
/// `worker_refused` for its own mistake. The console checks the worker's limits itself: 400,
/// naming the prompt and the limit, and nothing is recorded or sent to the worker.
#[tokio::test]
async fn a_prompt_past_the_workers_limit_is_the_callers_400() {
    use rocky::worker_limits::{MAX_PROMPT_BYTES, MAX_PROMPTS};
    let s = stack().await;
    s.provision("ws-big").await;
    let kinds = s.kinds();
    let big = "a".repeat(MAX_PROMPT_BYTES + 1);
    let too_many = vec!["p"; MAX_PROMPTS + 1];
    for (prompts, says) in [
        (
            vec!["a", big.as_str()],
            format!(
                "prompt 2 is {} bytes, more than {MAX_PROMPT_BYTES}",
                MAX_PROMPT_BYTES + 1
            ),
        ),
        (
            too_many,
            format!("a run needs 1..={MAX_PROMPTS} prompts, got 65"),
        ),
        (
            Vec::new(),
            format!("a run needs 1..={MAX_PROMPTS} prompts, got 0"),
        ),
    ] {
        let (status, body) = s.submit("ws-big", &prompts).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap_or_default()
                .contains(&says),
            "{body}"
        );
    }
    assert_eq!(s.kinds(), kinds, "a refused submission was recorded");
    assert_eq!(
        s.worker_answers("/v1/runs"),
        Vec::new(),
        "the worker was called"
    );
    // The limit itself is accepted.
    let at_limit = "a".repeat(MAX_PROMPT_BYTES);
    let (status, body) = s.submit("ws-big", &[at_limit.as_str()]).await;
    assert_eq!(status, 202, "{body}");
}
