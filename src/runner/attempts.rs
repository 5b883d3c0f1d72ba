//! The attempts of a run: `--repeat` rounds of every runnable scenario, each round retrying
//! what failed up to `--retries` times; every attempt kept, and what the World saw last.

use std::collections::BTreeMap;
use std::path::Path;

use super::catalogue::Entry;
use super::options::RunOptions;
use super::outcome::Outcome;
use crate::say;

/// Runs `runnable` (under `input`) as `opts` says; one outcome per scenario, in its order.
pub async fn run_all(input: &Path, runnable: Vec<Entry>, opts: &RunOptions) -> Vec<Outcome> {
    let mut attempts: BTreeMap<String, Vec<super::record::Attempt>> = BTreeMap::new();
    let mut details = BTreeMap::new();
    let repeat = opts.repeat.max(1);
    for round in 1..=repeat {
        if repeat > 1 {
            say!("rocky-e2e: round {round} of {repeat}");
        }
        let mut pending = runnable.clone();
        for attempt in 0..=opts.retries {
            if pending.is_empty() {
                break;
            }
            if attempt > 0 {
                say!(
                    "rocky-e2e: retry {attempt} of {}: {} scenario(s)",
                    opts.retries,
                    pending.len()
                );
            }
            let mut results =
                super::pass::run(input, &pending, opts.concurrency.unwrap_or(64)).await;
            let mut failed = Vec::new();
            for e in pending {
                let (a, detail) = results.remove(&e.key()).unwrap_or_else(|| {
                    let a = super::record::Attempt {
                        failure: Some(
                            "the scenario did not run (cucumber never started it)".into(),
                        ),
                        started_unix_ns: super::record::unix_ns_now(),
                        ..Default::default()
                    };
                    (a, None)
                });
                if let Some(d) = detail {
                    details.insert(e.name.clone(), d);
                }
                let passed = a.passed;
                attempts.entry(e.name.clone()).or_default().push(a);
                if !passed {
                    failed.push(e);
                }
            }
            pending = failed;
        }
    }
    runnable
        .into_iter()
        .map(|e| Outcome {
            attempts: attempts.remove(&e.name).unwrap_or_default(),
            detail: details.remove(&e.name),
            skipped: None,
            entry: e,
        })
        .collect()
}
