//! No run outlives its follower (contract §5): every run the console stops following is
//! cancelled at the worker, the worker cancels a run nobody follows once its lease lapses, so
//! the worker's slots always come back; a teardown cancels its workspace's runs concurrently,
//! within its own deadline, even when the worker does not answer. A submission, the one call
//! that cannot be sent twice, never rides a kept-alive connection.

use crate::support;

use std::time::{Duration, Instant};

use rocky::api::ErrorCode;
use rocky::api::console::paths;
use rocky::console::Deadlines;
use rocky::kahn::RunStatus;
use support::{Options, PATIENCE, Stack, stack_with};

fn run_id(body: &serde_json::Value) -> String {
    body["run_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no run_id in {body}"))
        .to_owned()
}

/// Waits until the worker itself (not through any proxy) reports run `id` as `status`.
async fn worker_says(s: &Stack, id: &str, status: RunStatus) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        let state = s.worker_client.run_state(id).await;
        if matches!(&state, Ok(st) if st.status == status) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not report run {id} {status} within {PATIENCE:?}: {state:?}"
        );
        tick.tick().await;
    }
}

/// A stack whose console reaches the worker through a proxy, each call bounded at 500 ms.
async fn proxied() -> Stack {
    stack_with(Options {
        proxy: true,
        deadlines: Deadlines {
            worker_call: Duration::from_millis(500),
            ..Deadlines::default()
        },
        ..Options::default()
    })
    .await
}

fn short_run_deadline() -> Options {
    Options {
        deadlines: Deadlines {
            run: Duration::from_millis(400),
            ..Deadlines::default()
        },
        ..Options::default()
    }
}

#[tokio::test]
async fn a_run_past_its_deadline_is_cancelled_at_the_worker() {
    let s = stack_with(short_run_deadline()).await;
    s.provision("ws-late").await;
    let (status, body) = s.submit("ws-late", &["wait [ralph:hold]"]).await;
    assert_eq!(status, 202, "{body}");
    let id = run_id(&body);
    let view = s
        .run_until(&id, "its end", |v| v["status"] != "running")
        .await;
    assert_eq!(view["status"], "failed", "{view}");
    assert_eq!(
        view["error"], "no valid RunEnded within the run deadline of 400ms",
        "{view}"
    );
    // Before any teardown: the follow's own end cancelled it.
    worker_says(&s, &id, RunStatus::Cancelled).await;
}

#[tokio::test]
async fn the_slots_of_64_abandoned_runs_come_back() {
    let s = stack_with(short_run_deadline()).await;
    s.provision("ws-abandon").await;
    let mut ids = Vec::new();
    for i in 0..rocky::worker_limits::MAX_ACTIVE_RUNS {
        let (status, body) = s.submit("ws-abandon", &["wait [ralph:hold]"]).await;
        assert_eq!(status, 202, "run {i}: {body}");
        ids.push(run_id(&body));
    }
    for id in &ids {
        let view = s
            .run_until(id, "its end", |v| v["status"] != "running")
            .await;
        assert_eq!(view["status"], "failed", "{view}");
    }
    let (status, body) = s
        .call(
            reqwest::Method::DELETE,
            &paths::workspace("ws-abandon"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{body}");
    for id in &ids {
        worker_says(&s, id, RunStatus::Cancelled).await;
    }
    s.provision("ws-fresh").await;
    let (status, body) = s.submit("ws-fresh", &["write the spec"]).await;
    assert_eq!(status, 202, "a fresh workspace's run is accepted: {body}");
    let view = s
        .run_until(&run_id(&body), "its end", |v| v["status"] != "running")
        .await;
    assert_eq!(view["status"], "succeeded", "{view}");
}

#[tokio::test]
async fn teardown_of_20_runs_on_a_paused_worker_answers_within_its_deadline() {
    let teardown = Duration::from_secs(6);
    let mut s = stack_with(Options {
        deadlines: Deadlines {
            worker_call: Duration::from_secs(1),
            teardown,
            ..Deadlines::default()
        },
        ..Options::default()
    })
    .await;
    s.provision("ws-paused").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, body) = s.submit("ws-paused", &["wait [ralph:hold]"]).await;
        assert_eq!(status, 202, "run {i}: {body}");
        ids.push(run_id(&body));
    }
    for id in &ids {
        s.run_until(id, "node 1 running", |v| {
            v["nodes"][0]["status"] == "running"
        })
        .await;
    }
    s.pause_worker().await;
    let started = Instant::now();
    let (status, body) = s
        .call(
            reqwest::Method::DELETE,
            &paths::workspace("ws-paused"),
            None,
        )
        .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert!(
        took < teardown,
        "the teardown took {took:?}, past its deadline of {teardown:?}"
    );
    for id in &ids {
        let view = s
            .run_until(id, "its end", |v| v["status"] != "running")
            .await;
        assert_eq!(view["status"], "cancelled", "{view}");
        assert_eq!(
            view["error"],
            "workspace ws-paused torn down; the cancel failed: the worker could not be reached",
            "{view}"
        );
    }
    let kinds = s.kinds();
    assert_eq!(
        kinds.iter().filter(|k| *k == "ralph.run.ended").count(),
        20,
        "{kinds:?}"
    );
    assert_eq!(
        kinds[kinds.len() - 2..],
        ["hearth.decommission_started", "hearth.decommissioned"],
        "every run ended before the teardown's first record: {kinds:?}"
    );
    println!("teardown of 20 runs on a paused worker: {took:?}");
}

#[tokio::test]
async fn teardown_cancels_its_runs_concurrently() {
    let mut opts = Options {
        proxy: true,
        deadlines: Deadlines {
            worker_call: Duration::from_secs(1),
            teardown: Duration::from_secs(6),
            ..Deadlines::default()
        },
        ..Options::default()
    };
    opts.follow_lease = Duration::from_secs(60);
    let s = stack_with(opts).await;
    let proxy = s.proxy.as_ref().expect("a proxy");
    s.provision("ws-slow").await;
    let mut ids = Vec::new();
    for i in 0..20 {
        let (status, body) = s.submit("ws-slow", &["wait [ralph:hold]"]).await;
        assert_eq!(status, 202, "run {i}: {body}");
        ids.push(run_id(&body));
    }
    for id in &ids {
        s.run_until(id, "node 1 running", |v| {
            v["nodes"][0]["status"] == "running"
        })
        .await;
    }
    // Each cancel takes 600 ms; the teardown's cancel budget is 2 s: one after the other, at
    // most three would reach the worker.
    *proxy.knobs.cancel_delay.lock().expect("delay lock") = Duration::from_millis(600);
    let (status, body) = s
        .call(reqwest::Method::DELETE, &paths::workspace("ws-slow"), None)
        .await;
    assert_eq!(status, 200, "{body}");
    for id in &ids {
        let view = s
            .run_until(id, "its end", |v| v["status"] != "running")
            .await;
        assert_eq!(view["status"], "cancelled", "{view}");
        assert_eq!(
            view["error"],
            serde_json::Value::Null,
            "the worker's own RunEnded ended it: {view}"
        );
        worker_says(&s, id, RunStatus::Cancelled).await;
    }
}

#[tokio::test]
async fn a_run_nobody_follows_is_cancelled_once_its_lease_lapses() {
    let lease = Duration::from_millis(300);
    let s = stack_with(Options {
        follow_lease: lease,
        ..Options::default()
    })
    .await;
    let submit = |prompt: &str| rocky::api::worker::SubmitRun {
        workspace: "ws-lease".into(),
        prompts: vec![prompt.into()],
        max_ralph_iters: 3,
    };
    // Never followed: cancelled after the lease.
    let lonely = s
        .worker_client
        .submit(&submit("[ralph:hold]"))
        .await
        .expect("accepted");
    worker_says(&s, &lonely.run_id, RunStatus::Cancelled).await;
    // Followed: an open stream renews the lease for as long as it is open.
    let followed = s
        .worker_client
        .submit(&submit("[ralph:hold]"))
        .await
        .expect("accepted");
    let stream = s
        .worker_client
        .events(&followed.run_id, None)
        .await
        .unwrap_or_else(|_| panic!("the event stream of {} opens", followed.run_id));
    // A bounded observation window (four leases), not a synchronisation: it must hold all along.
    let watched_until = Instant::now() + lease * 4;
    let mut tick = tokio::time::interval(lease / 4);
    while Instant::now() < watched_until {
        tick.tick().await;
        let state = s
            .worker_client
            .run_state(&followed.run_id)
            .await
            .expect("state");
        assert_eq!(
            state.status,
            RunStatus::Running,
            "a followed run was cancelled: {state:?}"
        );
        assert_eq!(state.followers, 1, "{state:?}");
    }
    drop(stream);
    worker_says(&s, &followed.run_id, RunStatus::Cancelled).await;
}

#[tokio::test]
async fn an_unconfirmed_submission_is_cancelled_by_its_nonce() {
    let s = proxied().await;
    let proxy = s.proxy.as_ref().expect("a proxy");
    proxy
        .knobs
        .hang_submissions
        .store(true, std::sync::atomic::Ordering::SeqCst);
    s.provision("ws-lost-answer").await;
    let (status, body) = s.submit("ws-lost-answer", &["wait [ralph:hold]"]).await;
    assert_eq!(status, 502, "{body}");
    assert_eq!(
        body["error"]["code"],
        ErrorCode::WorkerUnreachable.as_str(),
        "{body}"
    );
    support::wait_for("the worker's swallowed answer", || {
        !proxy.knobs.swallowed.lock().expect("lock").is_empty()
    })
    .await;
    let id = proxy.knobs.swallowed.lock().expect("lock")[0].clone();
    // The lease (30 s) is longer than the wait: this is the console's cancel by nonce.
    worker_says(&s, &id, RunStatus::Cancelled).await;
    assert_eq!(
        proxy.seen("/cancel").len(),
        1,
        "{:?}",
        proxy.seen("/cancel")
    );
    assert!(
        proxy.seen("/cancel")[0].starts_with("POST /v1/submissions/"),
        "{:?}",
        proxy.seen("/cancel")
    );
    assert_eq!(
        s.kinds(),
        ["hearth.provisioning_started", "hearth.provisioned"]
    );
}

/// A submission goes on a connection of its own: an idle connection the console's pool kept
/// may be one the worker has closed (restarted, or its idle timer) without the console having
/// seen it close yet, and a submission written there comes back unconfirmed (502) from a
/// healthy worker. The proxy never answers a submission that comes on a connection an earlier
/// request came on.
#[tokio::test]
async fn a_submission_never_rides_a_kept_alive_connection() {
    let s = proxied().await;
    let proxy = s.proxy.as_ref().expect("a proxy");
    proxy
        .knobs
        .hang_reused_submissions
        .store(true, std::sync::atomic::Ordering::SeqCst);
    s.provision("ws-fresh").await;
    for round in 0..3 {
        let (status, body) = s.submit("ws-fresh", &["write the spec"]).await;
        assert_eq!(status, 202, "round {round}: {body}");
        // Ended at the console: its event stream's connection is idle in the pool for the
        // next submission.
        let view = s
            .run_until(&run_id(&body), "its end", |v| v["status"] != "running")
            .await;
        assert_eq!(view["status"], "succeeded", "round {round}: {view}");
    }
}

#[tokio::test]
async fn the_console_records_a_lease_cancel_with_its_reason() {
    let s = stack_with(Options {
        proxy: true,
        follow_lease: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let proxy = s.proxy.as_ref().expect("a proxy");
    s.provision("ws-cut").await;
    let (status, body) = s.submit("ws-cut", &["wait [ralph:hold]"]).await;
    assert_eq!(status, 202, "{body}");
    let id = run_id(&body);
    s.run_until(&id, "node 1 running", |v| {
        v["nodes"][0]["status"] == "running"
    })
    .await;
    // The network cuts the follow and refuses it for as long as it takes the lease to lapse.
    proxy.events_open(false);
    worker_says(&s, &id, RunStatus::Cancelled).await;
    proxy.events_open(true);
    let view = s
        .run_until(&id, "its end", |v| v["status"] != "running")
        .await;
    assert_eq!(view["status"], "cancelled", "{view}");
    assert_eq!(
        view["error"], "the worker cancelled the run: no follower renewed its follow lease in time",
        "{view}"
    );
    let records = s.hatch.records().expect("records");
    let ended = records.last().expect("a record");
    assert_eq!(ended.kind, "ralph.run.ended");
    assert_eq!(ended.data["status"], "cancelled", "{:?}", ended.data);
    assert_eq!(
        ended.data["reason"],
        "the worker cancelled the run: no follower renewed its follow lease in time"
    );
}
