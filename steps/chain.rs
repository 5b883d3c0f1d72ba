//! Steps that assert on the HATCH chain: exact sequence, the insta snapshot, the hash chain.
//! Every mismatch is reported through the gap report (`crate::chain`).

use crate::chain::{self, Expectation, ExpectedChain, Mode};
use crate::report::model::SnapshotChange;
use crate::report::snapshot::{self, Snapshot, snapshot_name};
use cucumber::gherkin::Step;
use cucumber::then;

use super::world::PlayWorld;

/// Reads a `| kind | count |` table into an expected chain.
fn table_chain(step: &Step) -> ExpectedChain {
    let table = step
        .table
        .as_ref()
        .expect("this step needs a table with columns `kind` and `count`");
    let mut out = Vec::new();
    for row in table.rows.iter().skip(1) {
        let pattern = row[0]
            .parse()
            .unwrap_or_else(|e| panic!("row {:?}: {e}", row));
        let count = match row.get(1) {
            Some(c) => c
                .trim()
                .trim_start_matches(['×', 'x'])
                .parse()
                .unwrap_or_else(|_| panic!("row {row:?}: count must be a number")),
            None => 1,
        };
        out.push(Expectation { pattern, count });
    }
    ExpectedChain(out)
}

/// The kinds of the chain, or of one workspace's slice of it.
fn observed(world: &PlayWorld, workspace: Option<&str>) -> Vec<String> {
    let records = world.chain();
    let records: Vec<_> = match workspace {
        Some(w) => records
            .into_iter()
            .filter(|r| r.subject.workspace.as_deref() == Some(w))
            .collect(),
        None => records,
    };
    chain::kinds(&records)
}

async fn assert_chain(world: &mut PlayWorld, expected: &ExpectedChain, mode: Mode) {
    assert_chain_of(world, None, expected, mode).await;
}

async fn assert_chain_of(
    world: &mut PlayWorld,
    workspace: Option<&str>,
    expected: &ExpectedChain,
    mode: Mode,
) {
    let observed = observed(world, workspace);
    if let Err(report) = chain::check(expected, &observed, mode, &world.collect_evidence().await) {
        world.fail_on_gap(None, &report);
    }
}

#[then("the HATCH chain is exactly:")]
async fn exactly_table(world: &mut PlayWorld, step: &Step) {
    assert_chain(world, &table_chain(step), Mode::Exact).await;
}

#[then(expr = "the HATCH chain is exactly {string}")]
async fn exactly_text(world: &mut PlayWorld, text: String) {
    let expected = ExpectedChain::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_chain(world, &expected, Mode::Exact).await;
}

#[then(expr = "the HATCH chain of workspace {string} is exactly:")]
async fn of_exactly_table(world: &mut PlayWorld, workspace: String, step: &Step) {
    assert_chain_of(world, Some(&workspace), &table_chain(step), Mode::Exact).await;
}

#[then(expr = "the HATCH chain of workspace {string} is exactly {string}")]
async fn of_exactly_text(world: &mut PlayWorld, workspace: String, text: String) {
    let expected = ExpectedChain::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_chain_of(world, Some(&workspace), &expected, Mode::Exact).await;
}

#[then(expr = "the HATCH chain contains in order {string}")]
async fn in_order(world: &mut PlayWorld, text: String) {
    let expected = ExpectedChain::parse(&text).unwrap_or_else(|e| panic!("{e}"));
    assert_chain(world, &expected, Mode::Subsequence).await;
}

#[then("the HATCH chain counts:")]
async fn counts(world: &mut PlayWorld, step: &Step) {
    let expected = table_chain(step);
    let observed = observed(world, None);
    if let Err(report) =
        chain::check_counts(&expected.0, &observed, &world.collect_evidence().await)
    {
        world.fail_on_gap(None, &report);
    }
}

#[then(expr = "{string} never fires")]
async fn never_fires(world: &mut PlayWorld, kind: String) {
    let pattern = kind.parse().unwrap_or_else(|e| panic!("{e}"));
    let observed = observed(world, None);
    if let Err(report) = chain::check_never(&pattern, &observed, &world.collect_evidence().await) {
        world.fail_on_gap(None, &report);
    }
}

#[then("the HATCH chain matches the snapshot")]
async fn matches_snapshot(world: &mut PlayWorld) {
    let records = world.chain();
    let work_dir = world.options.work_dir.display().to_string();
    // A shared stack's directory is its own, not the scenario's.
    let stack_dir = world
        .stack
        .as_ref()
        .and_then(|s| s.hatch_path.parent())
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let redacted = crate::redact::chain(
        &records,
        &[(work_dir, "[work_dir]"), (stack_dir, "[work_dir]")],
    );
    let name = snapshot_name(&world.feature, &world.scenario);
    let path = crate::layout::current().snapshots.clone();
    let asserted = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        insta::with_settings!({
            snapshot_path => path.clone(),
            prepend_module_to_snapshot => false,
            omit_expression => true,
            description => format!("HATCH chain of {} › {}", world.feature, world.scenario),
        }, {
            insta::assert_yaml_snapshot!(name.clone(), redacted);
        });
    }));
    if let Err(failure) = asserted {
        // For the report: the accepted chain beside the new one (insta has said why).
        world.snapshot_change = Some(snapshot_change(&path, &name, &redacted));
        std::panic::resume_unwind(failure);
    }
}

/// The accepted snapshot `name` (none when there is none yet, or it cannot be read) and the
/// chain the scenario recorded, as events of the diff.
fn snapshot_change(
    dir: &std::path::Path,
    name: &str,
    redacted: &[crate::redact::Redacted],
) -> SnapshotChange {
    let old = std::fs::read_to_string(dir.join(format!("{name}.snap")))
        .ok()
        .and_then(|text| Snapshot::parse(&text).ok())
        .map(|s| s.events);
    let new = yaml_serde::to_value(redacted)
        .map_err(|e| e.to_string())
        .and_then(snapshot::events_of)
        .unwrap_or_default();
    SnapshotChange {
        name: name.to_owned(),
        old,
        new,
    }
}

#[then("the HATCH log verifies")]
async fn log_verifies(world: &mut PlayWorld) {
    // Chain, seal and seal key (contract §2), as `rocky-e2e hatch verify --key` checks them.
    let path = world.stack().hatch_path.clone();
    crate::chain::seal_check::verify_now(&path).unwrap_or_else(|e| panic!("{e}"));
}
