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

/// Steps that kill, restart or stop a service of the running stack (any step that calls
/// `PlayWorld::own_stack`, or takes the stack to stop it). A scenario with one of them gets a
/// stack of its own; every other scenario shares one (`crate::stack::shared`), and a step
/// missing from this list fails on a shared stack instead of faulting the others' services.
pub const FAULTING_STEPS: &[&str] = &[
    "hearth is killed with SIGKILL",
    "hearth is restarted",
    "the worker is killed with SIGKILL",
    "the worker is restarted",
    "the stack stops",
];

/// The step among `steps` (texts without their keyword) that faults a service, if any.
pub fn faulting_step<'a>(mut steps: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    steps.find(|s| FAULTING_STEPS.contains(&s.trim()))
}

/// Polls hearth until it reports `slug` as `want`, or panics naming what it waited for.
async fn wait_hearth_status(world: &PlayWorld, slug: &str, want: Status) {
    let hearth = world.stack().hearth();
    let shared_name = world.slug(slug);
    wait_for(
        format!("hearth did not report workspace {slug} as {want}"),
        SETTLE,
        POLL,
        async || match hearth.status(&shared_name, Duration::from_secs(5)).await {
            Ok(r) if r.status == want => Poll::Ready(()),
            Ok(r) => Poll::Pending(format!("status {}", r.status)),
            Err(e) => Poll::Pending(world.unshare_text(&e.to_string())),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

/// Provisions `slug` on `tier` in the background.
fn provision_in_background(world: &mut PlayWorld, slug: String, tier: String) {
    world.name_workspace(&slug);
    let shared_name = world.slug(&slug);
    world.call_in_background(move |console| async move {
        console.create_workspace(&shared_name, &tier).await
    });
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
    let slug = world.slug(&slug);
    world.call_in_background(move |console| async move { console.delete_workspace(&slug).await });
}

#[when(expr = "I tear down workspace {string} {int} times at once")]
async fn teardown_many(world: &mut PlayWorld, slug: String, n: usize) {
    for _ in 0..n {
        let slug = world.slug(&slug);
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
    let shared_name = world.slug(&slug);
    wait_for(
        format!("the console did not report workspace {slug} as {status}"),
        SETTLE,
        POLL,
        async || match console.workspace(&shared_name).await {
            Ok(a)
                if a.status == 200
                    && a.json::<WorkspaceView>()
                        .is_ok_and(|v| v.status.as_str() == status) =>
            {
                Poll::Ready(())
            }
            Ok(a) => Poll::Pending(world.unshare_text(&format!("{} {}", a.status, a.body))),
            Err(e) => Poll::Pending(world.unshare_text(&e.to_string())),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[when("hearth is killed with SIGKILL")]
async fn kill_hearth(world: &mut PlayWorld) {
    let stack = world.own_stack("kill hearth");
    stack.kill_hearth().await.unwrap_or_else(|e| panic!("{e}"));
    world
        .evidence
        .add("hearth", "killed with SIGKILL (no cleanup)");
}

#[when("hearth is restarted")]
async fn restart_hearth(world: &mut PlayWorld) {
    let stack = world.own_stack("restart hearth");
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
    let stack = world.own_stack("kill the worker");
    stack.kill_worker().await.unwrap_or_else(|e| panic!("{e}"));
    world
        .evidence
        .add("worker", "killed with SIGKILL (its runs and frames lost)");
}

#[when("the worker is restarted")]
async fn restart_worker(world: &mut PlayWorld) {
    let stack = world.own_stack("restart the worker");
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
            Ok(a) => Poll::Pending(world.unshare_text(&format!("{} {}", a.status, a.body))),
            Err(e) => Poll::Pending(world.unshare_text(&e.to_string())),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
}

#[cfg(test)]
mod tests {
    /// Every step that faults or stops the stack is in `FAULTING_STEPS`, so its scenarios get
    /// a stack of their own: found in the sources as a step whose body asks for the stack as
    /// its own (`own_stack`, `into_own`).
    #[test]
    fn every_step_that_faults_a_service_is_listed() {
        let mut found = 0;
        for (file, source) in crate::steps::SOURCES {
            let mut pattern: Option<String> = None;
            for line in source.lines() {
                let line = line.trim();
                if line == "#[cfg(test)]" {
                    break;
                }
                if let Some(rest) = ["#[given(", "#[when(", "#[then("]
                    .iter()
                    .find_map(|a| line.strip_prefix(a))
                {
                    pattern = rest.split('"').nth(1).map(str::to_owned);
                }
                if line.contains(".own_stack(") || line.contains(".into_own(") {
                    let p = pattern
                        .clone()
                        .unwrap_or_else(|| panic!("{file}: own_stack outside a step"));
                    assert!(
                        super::FAULTING_STEPS.contains(&p.as_str()),
                        "{file}: step {p:?} faults or stops the stack but is not in FAULTING_STEPS"
                    );
                    found += 1;
                }
            }
        }
        assert_eq!(found, super::FAULTING_STEPS.len(), "one step per entry");
    }

    #[test]
    fn a_scenario_with_a_faulting_step_is_found_by_it() {
        let steps = ["a rocky stack", "the worker is killed with SIGKILL"];
        assert_eq!(
            super::faulting_step(steps.into_iter()),
            Some("the worker is killed with SIGKILL")
        );
        assert_eq!(super::faulting_step(["a rocky stack"].into_iter()), None);
    }
}
