//! A whole run: the plan, the vocabulary check, the topology, the attempts, the reports and
//! the verdict, with the libtest JSON events IDEs read around it.

use std::collections::BTreeMap;
use std::time::Instant;

use super::options::{RunOptions, Selection};
use super::outcome::{self, Outcome};
use super::reports::{orphan_snapshots, write_reports};
use super::selection::{plan, under_nextest};
use super::{attempts, input, output, record};
use crate::say;
use crate::topology;
use crate::vocabulary;

/// Runs the selected scenarios; returns true when the run passes.
pub async fn run(opts: RunOptions, policy: topology::Policy, selection: Selection) -> bool {
    match run_inner(opts, policy, selection).await {
        Ok(ok) => ok,
        Err(e) => {
            eprintln!("rocky-e2e: {e}");
            false
        }
    }
}

async fn run_inner(
    opts: RunOptions,
    policy: topology::Policy,
    selection: Selection,
) -> Result<bool, String> {
    let started = Instant::now();
    let started_unix_ns = record::unix_ns_now();
    crate::say::STDOUT_IS_JSON.store(
        opts.format.as_deref() == Some("json"),
        std::sync::atomic::Ordering::Relaxed,
    );
    let plan = plan(&opts, &selection)?;
    if let Some(why) = &plan.nothing_failed {
        say!("rocky-e2e: {why}");
        return Ok(true);
    }
    if opts.last_failed {
        say!(
            "rocky-e2e: --last-failed: {} scenario(s) that failed or were flaky in the last run",
            plan.selected.len()
        );
    }
    let layout = crate::layout::current();
    let input = input::Input::new(&plan.paths, layout.features.clone())?;
    let defs = crate::steps::definitions();
    let check = vocabulary::check(&input.path, &defs);
    if !check.problems.is_empty() {
        let mut msg = String::from("the features do not match the step vocabulary:\n\n");
        for p in &check.problems {
            msg.push_str(&format!("{p}\n\n"));
        }
        msg.push_str(&format!(
            "{} problem(s); nothing was started. `rocky-e2e steps` lists every defined step.",
            check.problems.len()
        ));
        return Err(msg);
    }
    if opts.dry_run {
        say!(
            "dry run: {} features, {} scenarios ({} selected{}), {} steps, all defined, none ambiguous ({:.1?}); nothing started",
            check.features,
            check.scenarios,
            plan.selected.len(),
            opts.shard
                .map(|s| format!(" in shard {s}"))
                .unwrap_or_default(),
            check.steps,
            started.elapsed()
        );
        return Ok(true);
    }
    let topology = topology::init(policy).await?;
    say!("rocky-e2e {}", topology.description);
    if let Some(shard) = opts.shard {
        say!(
            "rocky-e2e: shard {shard}: {} of {} scenarios (packing: longest shard / ideal = {:.3})",
            plan.selected.len(),
            plan.all.len(),
            plan.packing.unwrap_or(1.0)
        );
    }

    let json = crate::say::stdout_is_json();
    if json {
        output::libtest_line(&serde_json::json!({
            "type": "suite",
            "event": "started",
            "test_count": plan.selected.len(),
        }));
    }
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut runnable = Vec::new();
    for e in &plan.selected {
        match &topology.docker_skip_reason {
            Some(reason) if e.has_tag(topology::DOCKER_TAG) => {
                say!(
                    "⏭  skipped: {} [@{}]: {reason}",
                    e.name,
                    topology::DOCKER_TAG
                );
                if json {
                    output::libtest_line(
                        &serde_json::json!({"type": "test", "event": "ignored", "name": e.name}),
                    );
                }
                outcomes.push(Outcome {
                    entry: e.clone(),
                    attempts: Vec::new(),
                    skipped: Some(format!("@{}: {reason}", topology::DOCKER_TAG)),
                    detail: None,
                });
            }
            _ => runnable.push(e.clone()),
        }
    }
    let repeat = opts.repeat.max(1);
    outcomes.extend(attempts::run_all(&input.path, runnable, &opts).await);
    // The stacks scenarios shared: stopped once every attempt is over; what they left behind
    // (nothing, when each scenario removed its own) fails the run.
    let shared = crate::stack::shared::stop_all().await;
    for stack in &shared.stacks {
        say!("rocky-e2e: shared stack stopped ({stack})");
    }
    for problem in &shared.problems {
        eprintln!("rocky-e2e: {problem}");
    }
    let order: BTreeMap<&str, usize> = plan
        .all
        .iter()
        .enumerate()
        .map(|(i, e)| (e.name.as_str(), i))
        .collect();
    outcomes.sort_by_key(|o| order.get(o.entry.name.as_str()).copied());

    let wall = started.elapsed();
    let mut ok = !outcomes.iter().any(Outcome::fails_run) && shared.problems.is_empty();
    if repeat > 1 {
        // A stress run passes only when every round of every scenario passed.
        ok &= outcomes
            .iter()
            .all(|o| o.skipped.is_some() || o.passes() == o.attempts.len());
    }
    if !under_nextest() {
        // nextest writes its own JUnit; one process per scenario must not clobber ours.
        write_reports(
            &opts,
            &plan.paths,
            &outcomes,
            wall,
            started_unix_ns,
            topology,
        )?;
    }
    say!("{}", outcome::summary(&outcomes, repeat));
    // Of one round only: with --repeat the wall holds every round, a detail the last one's.
    let details: Vec<&crate::report::detail::Detail> =
        outcomes.iter().filter_map(|o| o.detail.as_ref()).collect();
    if repeat == 1
        && let Some(line) = output::docker_share_line(&details, wall)
    {
        say!("{line}");
    }
    if plan.whole_suite && selection == Selection::All {
        let orphans = orphan_snapshots(&check.snapshots);
        if !orphans.is_empty() {
            eprintln!(
                "rocky-e2e: snapshots no scenario asserts any more (delete them, or restore their scenario):"
            );
            for o in orphans {
                eprintln!("  {}", o.display());
            }
            ok = false;
        }
    }
    if json {
        let count = |v: outcome::Verdict| outcomes.iter().filter(|o| o.verdict() == v).count();
        output::libtest_line(&serde_json::json!({
            "type": "suite",
            "event": if ok { "ok" } else { "failed" },
            "passed": count(outcome::Verdict::Passed) + count(outcome::Verdict::Flaky),
            "failed": count(outcome::Verdict::Failed),
            "ignored": count(outcome::Verdict::Skipped),
            "measured": 0,
            "filtered_out": plan.all.len() - plan.selected.len(),
            "exec_time": wall.as_secs_f64(),
        }));
    }
    Ok(ok)
}
