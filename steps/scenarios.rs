//! The scenario runner shared by `cargo test` (steps/main.rs) and `rocky-e2e play`.
//!
//! Step definitions are split by domain concept: workspaces, runs, the HATCH chain, faults.
//! This file wires them to cucumber-rs: strict about skipped steps, one fresh World per
//! scenario, cleanup in the `after` hook whether the scenario passed or not.

#[path = "chain.rs"]
pub mod chain;
#[path = "faults.rs"]
pub mod faults;
#[path = "runs.rs"]
pub mod runs;
#[path = "topology.rs"]
pub mod topology;
#[path = "workspaces.rs"]
pub mod workspaces;
#[path = "world.rs"]
pub mod world;

use std::path::PathBuf;

use cucumber::World as _;
use cucumber::event::ScenarioFinished;
use cucumber::gherkin;
use cucumber::tag::Ext as _;
use cucumber::writer::Stats as _;
use futures::FutureExt as _;

pub use world::PlayWorld;

/// Where the features live.
pub fn features_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("features")
}

/// All tags of a scenario, its feature's included, without the `@`.
pub fn tags<'a>(feature: &'a gherkin::Feature, scenario: &'a gherkin::Scenario) -> Vec<&'a str> {
    feature
        .tags
        .iter()
        .chain(&scenario.tags)
        .map(|t| t.trim_start_matches('@'))
        .collect()
}

/// The cucumber CLI type used by both entry points.
pub type Cli = cucumber::cli::Opts<
    cucumber::parser::basic::Cli,
    cucumber::runner::basic::Cli,
    cucumber::writer::basic::Cli,
>;

/// Runs the features under `input` with `cli`; returns true when everything passed.
pub async fn run(input: PathBuf, mut cli: Cli, policy: topology::Policy) -> bool {
    // cucumber applies `--tags`/`--name` *instead of* a custom filter; take them out and apply
    // them together with the topology's skip rule, so `--tags` never runs a scenario the
    // topology cannot.
    let tags_filter = cli.tags_filter.take();
    let name_filter = cli.re_filter.take();
    let topology = match topology::init(policy).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rocky-e2e: {e}");
            return false;
        }
    };
    println!("rocky-e2e {}", topology.description);
    let skip_reason = topology.docker_skip_reason.clone();
    let skip_note = skip_reason.clone();
    let writer = PlayWorld::cucumber()
        .before(|feature, _, scenario, world| {
            async move {
                world.feature = feature
                    .path
                    .as_ref()
                    .and_then(|p| p.file_stem())
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| feature.name.clone());
                world.scenario = scenario.name.clone();
            }
            .boxed_local()
        })
        .after(|_, _, _, finished, world| {
            async move {
                if let Some(world) = world {
                    let failed = matches!(finished, ScenarioFinished::StepFailed(..));
                    world::finish(world, failed).await;
                }
            }
            .boxed_local()
        })
        .fail_on_skipped()
        .with_cli(cli)
        .filter_run(input, move |feature, rule, scenario| {
            let selected = match (&name_filter, &tags_filter) {
                (Some(re), _) => re.is_match(&scenario.name),
                (None, Some(expr)) => expr.eval(
                    feature
                        .tags
                        .iter()
                        .chain(rule.iter().flat_map(|r| &r.tags))
                        .chain(&scenario.tags),
                ),
                (None, None) => true,
            };
            if !selected {
                return false;
            }
            let t = tags(feature, scenario);
            match &skip_note {
                Some(reason) if t.contains(&topology::DOCKER_TAG) => {
                    println!(
                        "⏭  skipped: {} › {} [@{}]: {reason}",
                        feature.name,
                        scenario.name,
                        topology::DOCKER_TAG
                    );
                    false
                }
                _ => true,
            }
        })
        .await;
    !writer.execution_has_failed()
}
