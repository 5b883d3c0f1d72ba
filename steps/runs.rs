//! Steps about RALPH runs: submitting prompts, waiting for the end, checking the outcome.

use std::time::{Duration, Instant};

use cucumber::gherkin::Step;
use cucumber::{then, when};
use rocky_e2e::hatch::Act;

use super::world::PlayWorld;

/// Longest a scenario waits for a run to end (the console's own run deadline is shorter).
const RUN_WAIT: Duration = Duration::from_secs(90);

async fn submit(world: &mut PlayWorld, slug: &str, prompts: Vec<String>, max_iters: Option<u32>) {
    let mut body = serde_json::json!({"workspace": slug, "prompts": prompts});
    if let Some(n) = max_iters {
        body["max_ralph_iters"] = n.into();
    }
    let token = world.admin();
    let start = Instant::now();
    let reply = world
        .call(
            reqwest::Method::POST,
            "/api/ralph/runs",
            Some(serde_json::to_vec(&body).unwrap()),
            token,
        )
        .await;
    world.add_time(Act::Submit, start);
    if let Some(id) = reply.body["run_id"].as_str() {
        world.runs.push((slug.to_owned(), id.to_owned()));
    }
}

#[when(expr = "I submit a run of {int} prompts in workspace {string}")]
async fn submit_n(world: &mut PlayWorld, n: usize, slug: String) {
    let prompts = (1..=n).map(|i| format!("prompt {i}")).collect();
    submit(world, &slug, prompts, None).await;
}

#[when(expr = "I submit a run in workspace {string} with prompts:")]
async fn submit_table(world: &mut PlayWorld, slug: String, step: &Step) {
    let table = step
        .table
        .as_ref()
        .expect("this step needs a table of prompts (one column `prompt`)");
    let prompts = table.rows.iter().skip(1).map(|r| r[0].clone()).collect();
    submit(world, &slug, prompts, None).await;
}

#[then("the run is accepted")]
async fn accepted(world: &mut PlayWorld) {
    let last = world.replies.last().cloned().expect("a run was submitted");
    assert_eq!(
        last.status,
        202,
        "{} answered {} ({})",
        last.request,
        last.status,
        last.error_text()
    );
}

#[when("the run ends")]
async fn run_ends(world: &mut PlayWorld) {
    let (_, run_id) = world
        .runs
        .last()
        .cloned()
        .expect("no run was accepted: the submission answered an error");
    let token = world.admin();
    let start = Instant::now();
    let deadline = start + RUN_WAIT;
    loop {
        // Long-poll: the console answers as soon as the run ends, or after `wait`.
        let reply = world
            .call(
                reqwest::Method::GET,
                &format!("/api/ralph/runs/{run_id}?wait=30s"),
                None,
                token.clone(),
            )
            .await;
        assert_eq!(
            reply.status,
            200,
            "GET run {run_id}: {}",
            reply.error_text()
        );
        let status = reply.body["status"].as_str().unwrap_or("").to_owned();
        world.run_views.insert(run_id.clone(), reply.body);
        if status != "running" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "run {run_id} did not end within {RUN_WAIT:?}"
        );
    }
    world.add_time(Act::Stream, start);
}

#[then(expr = "the run status is {string}")]
async fn run_status(world: &mut PlayWorld, status: String) {
    let (_, run_id) = world.runs.last().cloned().expect("a run was accepted");
    let view = world
        .run_views
        .get(&run_id)
        .cloned()
        .expect("wait for the run to end first (`When the run ends`)");
    assert_eq!(view["status"], status.as_str(), "run {run_id}: {view}");
}
