//! Fault steps: each injects one real fault into the real stack before it starts, and the
//! steps that read the resulting gap against the play's chain.
//!
//! No event is faked: hearth really is missing, the engine endpoint really does not answer,
//! the worker really holds another secret or really encodes frames wrongly, and a service
//! really ignores SIGTERM.

use crate::chain::{self, ExpectedChain, Mode, Row};
use cucumber::{given, then, when};

use super::world::PlayWorld;

#[given("hearth is not on the search path")]
async fn hearth_missing(world: &mut PlayWorld) {
    // An existing, empty directory: the search really happens and really finds nothing.
    let empty = world.options.work_dir.join("empty-path");
    std::fs::create_dir_all(&empty).unwrap();
    world.options.hearth_search = vec![empty];
}

#[given("the Docker engine does not answer")]
async fn docker_down(world: &mut PlayWorld) {
    let socket = world.options.work_dir.join("no-engine.sock");
    world.options.docker_host = Some(format!("unix://{}", socket.display()));
}

#[given("the worker reads a different VAULT secret than the console")]
async fn vault_drift(world: &mut PlayWorld) {
    world.options.vault_drift = true;
}

#[given(expr = "the worker emits KAHN frames with drift {string}")]
async fn kahn_drift(world: &mut PlayWorld, drift: String) {
    world.options.worker_drift = drift
        .parse()
        .unwrap_or_else(|e| panic!("drift {drift:?}: {e}"));
}

/// Changes one service of a tier in a private copy of the tiers, so the fault never leaks
/// into another scenario.
fn edit_service(
    world: &mut PlayWorld,
    tier: &str,
    service: &str,
    edit: impl FnOnce(&mut rocky::tier::ServiceSpec),
) {
    let dir = world.options.work_dir.join("tiers");
    std::fs::create_dir_all(&dir).unwrap();
    let mut tiers = rocky::tier::load_dir(&world.options.tiers_dir).unwrap();
    let profile = tiers
        .get_mut(tier)
        .unwrap_or_else(|| panic!("no tier {tier:?}"));
    let spec = profile
        .services
        .iter_mut()
        .find(|s| s.name == service)
        .unwrap_or_else(|| panic!("tier {tier} has no service {service:?}"));
    edit(spec);
    for (name, profile) in &tiers {
        std::fs::write(
            dir.join(format!("{name}.yaml")),
            yaml_serde::to_string(profile).unwrap(),
        )
        .unwrap();
    }
    world.options.tiers_dir = dir;
}

#[given(expr = "service {string} of tier {string} ignores SIGTERM")]
async fn ignores_sigterm(world: &mut PlayWorld, service: String, tier: String) {
    edit_service(world, &tier, &service, |spec| {
        spec.env.insert("STANDIN_IGNORE_SIGTERM".into(), "1".into());
    });
}

#[given(expr = "service {string} of tier {string} becomes healthy after {int} ms")]
async fn slow_health(world: &mut PlayWorld, service: String, tier: String, ms: u64) {
    edit_service(world, &tier, &service, |spec| {
        spec.env
            .insert("STANDIN_HEALTHY_AFTER_MS".into(), ms.to_string());
    });
}

#[given(expr = "service {string} of tier {string} runs image {string}")]
async fn runs_image(world: &mut PlayWorld, service: String, tier: String, image: String) {
    edit_service(world, &tier, &service, |spec| spec.image = image);
}

#[given(expr = "hearth's teardown deadline is {string}")]
async fn teardown_deadline(world: &mut PlayWorld, deadline: String) {
    world.options.teardown_timeout =
        rocky::duration::parse(&deadline).unwrap_or_else(|e| panic!("{e}"));
}

#[when("the stack starts")]
async fn stack_starts(world: &mut PlayWorld) {
    if let Err(e) = world.start_stack().await {
        world.start_error = Some(e.to_string());
    }
}

#[then(expr = "the stack fails to start with an error naming {string}")]
async fn start_fails(world: &mut PlayWorld, needle: String) {
    let err = world
        .start_error
        .clone()
        .unwrap_or_else(|| panic!("the stack started; expected a failure naming {needle:?}"));
    assert!(
        err.contains(&needle),
        "the start error does not name {needle:?}: {err}"
    );
}

#[when("the stack stops")]
async fn stack_stops(world: &mut PlayWorld) {
    let stack = world
        .stack
        .take()
        .expect("a running stack")
        .into_own("stop the stack")
        .unwrap_or_else(|e| panic!("{e}"));
    if let Err(e) = stack.stop().await {
        panic!("the stack did not stop cleanly: {e}");
    }
}

/// Checks the observed chain against the six-act play's and returns the report.
async fn play_gap(world: &PlayWorld) -> Box<chain::GapReport> {
    let observed = chain::kinds(&world.chain());
    let evidence = world.collect_evidence().await;
    match chain::check(&ExpectedChain::play(4), &observed, Mode::Exact, &evidence) {
        Ok(()) => panic!("the chain is the full play chain: there is no gap"),
        Err(report) => report,
    }
}

#[then(expr = "against the play chain the first gap is {string} missing in act {string}")]
async fn first_gap(world: &mut PlayWorld, kind: String, act: String) {
    let report = play_gap(world).await;
    crate::say!("{report}");
    let row = &report.rows[report.gap.row];
    let wrong = match row {
        Row::Missing { expected, act: a }
        | Row::Replaced {
            expected, act: a, ..
        } => {
            if !expected.starts_with(&kind) {
                Some(format!("first gap is {expected}, not {kind}"))
            } else if a.name() != act {
                Some(format!(
                    "first gap is in act {}, not in act {act}",
                    a.name()
                ))
            } else {
                None
            }
        }
        other => Some(format!("first gap is {other:?}, not a missing {kind}")),
    };
    if let Some(note) = wrong {
        world.fail_on_gap(Some(note), &report);
    }
}

#[then(expr = "the gap report's evidence says {string}")]
async fn evidence_says(world: &mut PlayWorld, needle: String) {
    let report = play_gap(world).await;
    let found = report
        .evidence
        .0
        .iter()
        .any(|(source, detail)| format!("{source}: {detail}").contains(&needle));
    if !found {
        world.fail_on_gap(
            Some(format!("no evidence line contains {needle:?}")),
            &report,
        );
    }
}
