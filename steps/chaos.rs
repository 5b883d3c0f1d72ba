//! Steps of the chaos drill: requests in the background, racing each other and the lifecycle,
//! hang-ups, and waiting for statuses to settle. Every wait polls a condition under a deadline
//! that names what it waited for; none sleeps to synchronise.

use std::time::Duration;

use cucumber::{then, when};
use rocky::api::console::{RunView, WorkspaceView};
use rocky::hearth::Status;

use super::world::PlayWorld;
use crate::wait::{Poll, wait_for};

/// Longest a chaos step waits for a condition.
const SETTLE: Duration = Duration::from_secs(60);
/// How often a condition is polled.
const POLL: Duration = Duration::from_millis(10);

/// Polls hearth until it reports `slug` as `want`, or panics naming what it waited for.
async fn wait_hearth_status(world: &PlayWorld, slug: &str, want: Status) {
    let hearth = world.stack().hearth();
    wait_for(
        format!("hearth did not report workspace {slug} as {want}"),
        SETTLE,
        POLL,
        async || match hearth.status(slug, Duration::from_secs(5)).await {
            Ok(r) if r.status == want => Poll::Ready(()),
            Ok(r) => Poll::Pending(format!("status {}", r.status)),
            Err(e) => Poll::Pending(e.to_string()),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Provisions `slug` on `tier` in the background.
fn provision_in_background(world: &mut PlayWorld, slug: String, tier: String) {
    world.name_workspace(&slug);
    world.call_in_background(
        move |console| async move { console.create_workspace(&slug, &tier).await },
    );
}

#[when(expr = "I start provisioning workspace {string} on tier {string} in the background")]
async fn provision_background(world: &mut PlayWorld, slug: String, tier: String) {
    provision_in_background(world, slug, tier);
}

#[when(expr = "hearth reports workspace {string} as {string} in time")]
async fn hearth_reaches(world: &mut PlayWorld, slug: String, status: String) {
    let want =
        Status::parse(&status).unwrap_or_else(|| panic!("{status:?} is not a hearth status"));
    wait_hearth_status(world, &slug, want).await;
}

#[when(expr = "I tear down workspace {string} in the background")]
async fn teardown_background(world: &mut PlayWorld, slug: String) {
    world.call_in_background(move |console| async move { console.delete_workspace(&slug).await });
}

#[when(expr = "I tear down workspace {string} {int} times at once")]
async fn teardown_many(world: &mut PlayWorld, slug: String, n: usize) {
    for _ in 0..n {
        let slug = slug.clone();
        world.call_in_background(
            move |console| async move { console.delete_workspace(&slug).await },
        );
    }
    world.finish_background().await;
}

#[when("the background requests are answered")]
async fn finish(world: &mut PlayWorld) {
    world.finish_background().await;
}

#[when(
    expr = "I provision workspace {string} on tier {string} and hang up once hearth is provisioning it"
)]
async fn provision_and_hang_up(world: &mut PlayWorld, slug: String, tier: String) {
    provision_in_background(world, slug.clone(), tier);
    wait_hearth_status(world, &slug, Status::Provisioning).await;
    let task = world.background.pop().expect("the request was just sent");
    task.abort();
    // The abort drops the request (and its connection) before this returns.
    let _ = task.await;
    world.evidence.add(
        format!("hang-up {slug}"),
        "client closed its connection while provisioning",
    );
}

#[then(expr = "the background answers were {string}")]
async fn background_answers(world: &mut PlayWorld, list: String) {
    let want: Vec<u16> = list
        .split(',')
        .map(|s| {
            s.trim()
                .parse()
                .expect("a comma-separated list of HTTP statuses")
        })
        .collect();
    let replies = &world.replies[world.replies.len().saturating_sub(want.len())..];
    let got: Vec<u16> = replies.iter().map(|r| r.status).collect();
    let detail: Vec<String> = replies
        .iter()
        .map(|r| format!("{} → {} ({})", r.request, r.status, r.error_text()))
        .collect();
    assert_eq!(got, want, "answers: {detail:#?}");
}

#[then(expr = "the last {int} answers were {int}")]
async fn last_answers(world: &mut PlayWorld, n: usize, status: u16) {
    let replies = &world.replies[world.replies.len().saturating_sub(n)..];
    assert_eq!(
        replies.len(),
        n,
        "only {} answers were recorded",
        replies.len()
    );
    for r in replies {
        assert_eq!(
            r.status,
            status,
            "{} answered {} ({})",
            r.request,
            r.status,
            r.error_text()
        );
    }
}

#[then(expr = "workspace {string} settles as {string}")]
async fn settles(world: &mut PlayWorld, slug: String, status: String) {
    let console = world.console().with_deadline(Duration::from_secs(5));
    wait_for(
        format!("the console did not report workspace {slug} as {status}"),
        SETTLE,
        POLL,
        async || match console.workspace(&slug).await {
            Ok(a)
                if a.status == 200
                    && a.json::<WorkspaceView>()
                        .is_ok_and(|v| v.status.as_str() == status) =>
            {
                Poll::Ready(())
            }
            Ok(a) => Poll::Pending(format!("{} {}", a.status, a.body)),
            Err(e) => Poll::Pending(e.to_string()),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[when("hearth is killed with SIGKILL")]
async fn kill_hearth(world: &mut PlayWorld) {
    let stack = world
        .stack
        .as_mut()
        .expect("no stack is running: start one with `Given a rocky stack`");
    stack.kill_hearth().await.unwrap_or_else(|e| panic!("{e}"));
    world
        .evidence
        .add("hearth", "killed with SIGKILL (no cleanup)");
}

#[when("hearth is restarted")]
async fn restart_hearth(world: &mut PlayWorld) {
    let stack = world
        .stack
        .as_mut()
        .expect("no stack is running: start one with `Given a rocky stack`");
    stack
        .restart_hearth()
        .await
        .unwrap_or_else(|e| panic!("hearth did not restart: {e}"));
    world
        .evidence
        .add("hearth", "restarted on the same socket and session");
}

#[when("the worker is killed with SIGKILL")]
async fn kill_worker(world: &mut PlayWorld) {
    let stack = world
        .stack
        .as_mut()
        .expect("no stack is running: start one with `Given a rocky stack`");
    stack.kill_worker().await.unwrap_or_else(|e| panic!("{e}"));
    world
        .evidence
        .add("worker", "killed with SIGKILL (its runs and frames lost)");
}

#[when("the worker is restarted")]
async fn restart_worker(world: &mut PlayWorld) {
    let stack = world
        .stack
        .as_mut()
        .expect("no stack is running: start one with `Given a rocky stack`");
    stack
        .restart_worker()
        .await
        .unwrap_or_else(|e| panic!("the worker did not restart: {e}"));
    world
        .evidence
        .add("worker", "restarted at the same address, with no runs");
}

#[when(expr = "the console reports node {int} of the run as {string} in time")]
async fn node_reaches(world: &mut PlayWorld, node: usize, status: String) {
    let run_id = super::runs::the_run(world, r#"When the run in workspace "{workspace}" ends"#);
    let console = world.console().with_deadline(Duration::from_secs(5));
    wait_for(
        format!("the console did not report node {node} of run {run_id} as {status}"),
        SETTLE,
        POLL,
        async || match console.run(&run_id, None).await {
            Ok(a)
                if a.status == 200
                    && a.json::<RunView>().is_ok_and(|v| {
                        v.nodes
                            .get(node - 1)
                            .is_some_and(|n| n.status.as_str() == status)
                    }) =>
            {
                Poll::Ready(())
            }
            Ok(a) => Poll::Pending(format!("{} {}", a.status, a.body)),
            Err(e) => Poll::Pending(e.to_string()),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}
