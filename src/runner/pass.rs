//! One cucumber pass over a set of scenarios: a fresh World per scenario, strict about
//! skipped steps, each scenario's stack stopped in the `after` hook whether it passed or not.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use cucumber::World as _;
use cucumber::event::ScenarioFinished;
use futures::FutureExt as _;

use super::catalogue::{Entry, Key, key_of};
use super::output::BlockWriter;
use super::record::Attempt;
use crate::report::detail::Detail;
use crate::steps::world::{self, PlayWorld};

/// Runs `entries` (all under `input`) with at most `concurrency` at once; the attempt of each
/// scenario that ran, and what its World saw, by key.
pub async fn run(
    input: &Path,
    entries: &[Entry],
    concurrency: usize,
) -> HashMap<Key, (Attempt, Option<Detail>)> {
    let keys: HashSet<Key> = entries.iter().map(Entry::key).collect();
    let names: Arc<HashMap<Key, String>> =
        Arc::new(entries.iter().map(|e| (e.key(), e.name.clone())).collect());
    let (writer, details) =
        BlockWriter::new(names.clone(), crate::say::stdout_is_json(), entries.len());
    let finished = writer.finished.clone();
    PlayWorld::cucumber()
        .max_concurrent_scenarios(concurrency.max(1))
        .with_writer(writer)
        .before(move |feature, rule, scenario, world| {
            let name = names.get(&key_of(feature, scenario)).cloned();
            // Every step the scenario will run, backgrounds first: one that faults a service
            // gives it a stack of its own (see `crate::stack::shared`).
            let backgrounds = [
                feature.background.as_ref(),
                rule.and_then(|r| r.background.as_ref()),
            ];
            let faults = crate::steps::chaos::faulting_step(
                backgrounds
                    .into_iter()
                    .flatten()
                    .flat_map(|b| b.steps.iter())
                    .chain(scenario.steps.iter())
                    .map(|s| s.value.as_str()),
            )
            .map(str::to_owned);
            async move {
                world.faults_services = faults;
                // The file's own name: several paths reach cucumber as numbered links
                // (`000-play.feature`, see input.rs), which must not rename its snapshots.
                world.feature = feature
                    .path
                    .as_ref()
                    .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                    .as_ref()
                    .and_then(|p| p.file_stem())
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| feature.name.clone());
                world.scenario = scenario.name.clone();
                world.test_name = name.unwrap_or_default();
                world.started = Some(Instant::now());
            }
            .boxed_local()
        })
        .after(move |feature, _, scenario, finished, world| {
            let key = key_of(feature, scenario);
            let details = details.clone();
            async move {
                let failed = matches!(finished, ScenarioFinished::StepFailed(..));
                if let Some(world) = world {
                    let (detail, verdict) = world::finish(world, failed).await;
                    // The writer takes it at the scenario's `Finished` event, which follows.
                    let _ = details.send((key, detail));
                    if let Err(problem) = verdict {
                        // A cucumber hook fails by panicking: its runner catches it and reports
                        // the hook failed, which the writer turns into the scenario's verdict.
                        std::panic::panic_any(problem);
                    }
                }
            }
            .boxed_local()
        })
        .fail_on_skipped()
        .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default())
        .filter_run(input.to_owned(), move |feature, _, scenario| {
            keys.contains(&key_of(feature, scenario))
        })
        .await;
    let done = std::mem::take(&mut *finished.lock().expect("results lock"));
    done.into_iter()
        .map(|f| (f.key, (f.attempt, f.detail)))
        .collect()
}
