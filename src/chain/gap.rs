//! Comparing an observed chain with an expected one: the alignment, the first gap and the
//! report every failed chain assertion returns (its rendering is in `report.rs`).

use rocky::hatch::{EventKind, Record};

use super::Act;
use super::expect::{Expectation, ExpectedChain, KindPattern, Slot};

/// Facts the harness collected from the stack, printed under a gap report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Evidence(pub Vec<(String, String)>);

impl Evidence {
    /// Adds one fact: where it came from and what it says.
    pub fn add(&mut self, source: impl Into<String>, detail: impl Into<String>) {
        self.0.push((source.into(), detail.into()));
    }
}

/// How the observed chain is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Exactly these events, in this order, nothing else.
    Exact,
    /// These events in this order; others may come between.
    Subsequence,
}

/// One row of the side-by-side alignment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Row {
    Both {
        expected: String,
        observed: String,
        act: Act,
    },
    Missing {
        expected: String,
        act: Act,
    },
    /// An expected event did not fire and another of the same act fired in its place.
    Replaced {
        expected: String,
        observed: String,
        act: Act,
    },
    Unexpected {
        observed: String,
        act: Option<Act>,
    },
}

/// The first difference, in words.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Gap {
    /// Index into the rows.
    pub row: usize,
    pub act: Option<Act>,
    pub summary: String,
}

/// Why a chain assertion failed: the alignment, the first gap and the evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GapReport {
    pub mode: Mode,
    pub expected: String,
    pub rows: Vec<Row>,
    pub gap: Gap,
    pub evidence: Evidence,
}

impl std::error::Error for GapReport {}

/// The kinds of `records`, in order.
pub fn kinds(records: &[Record]) -> Vec<String> {
    records.iter().map(|r| r.kind.clone()).collect()
}

/// Checks `observed` against `expected` in `mode`.
pub fn check(
    expected: &ExpectedChain,
    observed: &[String],
    mode: Mode,
    evidence: &Evidence,
) -> Result<(), Box<GapReport>> {
    let slots = expected.slots();
    let rows = align(&slots, observed);
    let first = rows.iter().position(|r| match r {
        Row::Both { .. } => false,
        Row::Missing { .. } | Row::Replaced { .. } => true,
        Row::Unexpected { .. } => mode == Mode::Exact,
    });
    let Some(row) = first else { return Ok(()) };
    let gap = describe(&rows, row, &slots);
    Err(Box::new(GapReport {
        mode,
        expected: expected.to_string(),
        rows,
        gap,
        evidence: evidence.clone(),
    }))
}

/// Whether the chain holds an event of the slot labelled `label` that the alignment placed
/// nowhere in the expected order (it fired, out of order), rather than none at all.
fn fired_elsewhere(rows: &[Row], slots: &[Slot], label: &str) -> bool {
    let Some(slot) = slots.iter().find(|s| s.label == label) else {
        return false;
    };
    rows.iter().any(|r| match r {
        Row::Unexpected { observed, .. } | Row::Replaced { observed, .. } => {
            slot.pattern.matches(observed)
        }
        _ => false,
    })
}

fn describe(rows: &[Row], row: usize, slots: &[Slot]) -> Gap {
    let observed_after: Vec<&str> = rows[row..]
        .iter()
        .filter_map(|r| match r {
            Row::Both { observed, .. }
            | Row::Unexpected { observed, .. }
            | Row::Replaced { observed, .. } => Some(observed.as_str()),
            Row::Missing { .. } => None,
        })
        .collect();
    match &rows[row] {
        Row::Replaced {
            expected,
            observed,
            act,
        } => Gap {
            row,
            act: Some(*act),
            summary: format!(
                "{expected} never fired (act {} {}); {observed} fired in its place",
                act.number(),
                act.name()
            ),
        },
        Row::Missing { expected, act } => {
            let tail = match observed_after.first() {
                Some(next) => format!("; the chain went on with {next}"),
                None => "; nothing was recorded after it".into(),
            };
            // It fired, but not where the expected order puts it: "never fired" would be false.
            let what = if fired_elsewhere(rows, slots, expected) {
                "fired out of the expected order (the chain holds it elsewhere)"
            } else {
                "never fired"
            };
            Gap {
                row,
                act: Some(*act),
                summary: format!(
                    "{expected} {what} (act {} {}){tail}",
                    act.number(),
                    act.name()
                ),
            }
        }
        Row::Unexpected { observed, act } => Gap {
            row,
            act: *act,
            summary: format!(
                "unexpected {observed}{}",
                act.map(|a| format!(" (act {} {})", a.number(), a.name()))
                    .unwrap_or_default()
            ),
        },
        Row::Both { .. } => unreachable!("a gap is never a matching row"),
    }
}

/// Longest-common-subsequence alignment of slots and observed kinds (chains are short).
fn align(slots: &[Slot], observed: &[String]) -> Vec<Row> {
    let (n, m) = (slots.len(), observed.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if slots[i].pattern.matches(&observed[j]) {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let act_of = |kind: &str| EventKind::parse(kind).map(Act::of);
    let (mut i, mut j) = (0, 0);
    let mut rows = Vec::new();
    while i < n || j < m {
        if i < n
            && j < m
            && slots[i].pattern.matches(&observed[j])
            && lcs[i][j] == lcs[i + 1][j + 1] + 1
        {
            rows.push(Row::Both {
                expected: slots[i].label.clone(),
                observed: observed[j].clone(),
                act: slots[i].pattern.act(),
            });
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            rows.push(Row::Missing {
                expected: slots[i].label.clone(),
                act: slots[i].pattern.act(),
            });
            i += 1;
        } else {
            rows.push(Row::Unexpected {
                observed: observed[j].clone(),
                act: act_of(&observed[j]),
            });
            j += 1;
        }
    }
    pair_replacements(rows)
}

/// Shows an unexpected event beside the missing one it replaced (same act, nothing matched in
/// between), e.g. `hearth.provisioned ✗ hearth.failed`, instead of on a row of its own.
fn pair_replacements(rows: Vec<Row>) -> Vec<Row> {
    let mut out: Vec<Row> = Vec::with_capacity(rows.len());
    // Index in `out` of the first unpaired Missing row since the last matching row.
    let mut open: Vec<usize> = Vec::new();
    for row in rows {
        match row {
            Row::Both { .. } => {
                open.clear();
                out.push(row);
            }
            Row::Missing { .. } => {
                open.push(out.len());
                out.push(row);
            }
            Row::Unexpected {
                observed,
                act: Some(act),
            } if open
                .iter()
                .any(|&i| matches!(&out[i], Row::Missing { act: a, .. } if *a == act)) =>
            {
                let pos = open
                    .iter()
                    .position(|&i| matches!(&out[i], Row::Missing { act: a, .. } if *a == act))
                    .expect("checked above");
                let i = open.remove(pos);
                let Row::Missing { expected, .. } = out[i].clone() else {
                    unreachable!("open holds Missing rows")
                };
                out[i] = Row::Replaced {
                    expected,
                    observed,
                    act,
                };
            }
            other => out.push(other),
        }
    }
    out
}

/// Per-pattern counts: fails naming the first pattern whose count differs.
pub fn check_counts(
    expected: &[Expectation],
    observed: &[String],
    evidence: &Evidence,
) -> Result<(), Box<GapReport>> {
    for e in expected {
        let n = observed.iter().filter(|k| e.pattern.matches(k)).count();
        if n != e.count {
            let chain = ExpectedChain(vec![e.clone()]);
            let matching: Vec<String> = observed
                .iter()
                .filter(|k| e.pattern.matches(k))
                .cloned()
                .collect();
            let rows = align(&chain.slots(), &matching);
            let row = rows
                .iter()
                .position(|r| !matches!(r, Row::Both { .. }))
                .unwrap_or(0);
            let gap = Gap {
                row,
                act: Some(e.pattern.act()),
                summary: format!(
                    "{} fired {n} times, expected {} (act {} {})",
                    e.pattern,
                    e.count,
                    e.pattern.act().number(),
                    e.pattern.act().name()
                ),
            };
            return Err(Box::new(GapReport {
                mode: Mode::Subsequence,
                expected: format!("count of {} = {}", e.pattern, e.count),
                rows,
                gap,
                evidence: evidence.clone(),
            }));
        }
    }
    Ok(())
}

/// `kind` never fires.
pub fn check_never(
    pattern: &KindPattern,
    observed: &[String],
    evidence: &Evidence,
) -> Result<(), Box<GapReport>> {
    let Some(at) = observed.iter().position(|k| pattern.matches(k)) else {
        return Ok(());
    };
    let rows: Vec<Row> = observed
        .iter()
        .map(|k| Row::Unexpected {
            observed: k.clone(),
            act: EventKind::parse(k).map(Act::of),
        })
        .collect();
    let act = EventKind::parse(&observed[at]).map(Act::of);
    Err(Box::new(GapReport {
        mode: Mode::Subsequence,
        expected: format!("{pattern} never fires"),
        rows,
        gap: Gap {
            row: at,
            act,
            summary: format!(
                "{} fired at position {}, expected never",
                observed[at],
                at + 1
            ),
        },
        evidence: evidence.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn play() -> Vec<String> {
        [
            "hearth.provisioning_started",
            "hearth.provisioned",
            "ralph.run.started",
            "ralph.node.succeeded",
            "ralph.node.succeeded",
            "ralph.node.failed",
            "ralph.node.succeeded",
            "ralph.run.ended",
            "hearth.decommission_started",
            "hearth.decommissioned",
        ]
        .map(String::from)
        .to_vec()
    }

    fn exact(observed: &[String]) -> Result<(), Box<GapReport>> {
        check(
            &ExpectedChain::play(4),
            observed,
            Mode::Exact,
            &Evidence::default(),
        )
    }

    #[test]
    fn the_full_play_passes() {
        exact(&play()).unwrap();
    }

    #[test]
    fn missing_middle_event_is_named_with_its_act() {
        let mut chain = play();
        chain.remove(1);
        let report = exact(&chain).unwrap_err();
        assert_eq!(report.gap.act, Some(Act::Provision));
        assert!(
            report
                .gap
                .summary
                .starts_with("hearth.provisioned never fired (act 2 provision)")
        );
        assert!(
            report
                .gap
                .summary
                .contains("went on with ralph.run.started")
        );
        let text = report.to_string();
        assert!(text.contains("✗ —   ← first gap"), "{text}");
    }

    #[test]
    fn extra_event_is_unexpected() {
        let mut chain = play();
        chain.insert(2, "hearth.failed".into());
        let report = exact(&chain).unwrap_err();
        assert_eq!(
            report.gap.summary,
            "unexpected hearth.failed (act 2 provision)"
        );
        // An extra event is fine for an ordered subsequence.
        check(
            &ExpectedChain::play(4),
            &chain,
            Mode::Subsequence,
            &Evidence::default(),
        )
        .unwrap();
    }

    #[test]
    fn wrong_order_is_reported() {
        let mut chain = play();
        chain.swap(8, 9);
        let report = exact(&chain).unwrap_err();
        assert!(matches!(
            report.rows[report.gap.row],
            Row::Missing { .. } | Row::Unexpected { .. }
        ));
        assert_eq!(report.gap.act, Some(Act::Teardown));
    }

    /// Bug: `hearth.decommissioned → hearth.provisioned` against a chain that provisioned,
    /// then tore down, said "hearth.decommissioned never fired", beside a chain showing it.
    #[test]
    fn an_event_that_fired_out_of_order_is_not_said_never_to_have_fired() {
        let observed = [
            "hearth.provisioning_started",
            "hearth.provisioned",
            "hearth.decommission_started",
            "hearth.decommissioned",
        ]
        .map(String::from);
        let expected = ExpectedChain::parse("hearth.decommissioned → hearth.provisioned").unwrap();
        let report = check(
            &expected,
            &observed,
            Mode::Subsequence,
            &Evidence::default(),
        )
        .unwrap_err();
        assert!(
            report.gap.summary.starts_with(
                "hearth.decommissioned fired out of the expected order (the chain holds it elsewhere)"
            ),
            "{}",
            report.gap.summary
        );
        // One that is nowhere in the chain still never fired.
        let expected = ExpectedChain::parse("hearth.provisioned → hearth.failed").unwrap();
        let report = check(
            &expected,
            &observed,
            Mode::Subsequence,
            &Evidence::default(),
        )
        .unwrap_err();
        assert!(
            report.gap.summary.starts_with("hearth.failed never fired"),
            "{}",
            report.gap.summary
        );
    }

    #[test]
    fn node_count_under_four() {
        let mut chain = play();
        chain.drain(4..6);
        let report = exact(&chain).unwrap_err();
        assert_eq!(
            report.gap.summary,
            "ralph.node.* (3/4) never fired (act 4 stream nodes); the chain went on with ralph.run.ended"
        );
        let counts = check_counts(
            &ExpectedChain::play(4).0[3..4],
            &chain,
            &Evidence::default(),
        )
        .unwrap_err();
        assert_eq!(
            counts.gap.summary,
            "ralph.node.* fired 2 times, expected 4 (act 4 stream nodes)"
        );
    }

    #[test]
    fn chain_ends_early_and_evidence_is_printed() {
        let chain = play()[..2].to_vec();
        let mut evidence = Evidence::default();
        evidence.add("console POST /api/ralph/runs", "502 worker_unauthorized");
        let report = check(&ExpectedChain::play(4), &chain, Mode::Exact, &evidence).unwrap_err();
        assert_eq!(
            report.gap.summary,
            "ralph.run.started never fired (act 3 submit run); nothing was recorded after it"
        );
        assert!(
            report
                .to_string()
                .contains("  console POST /api/ralph/runs: 502 worker_unauthorized")
        );
    }

    #[test]
    fn a_failure_in_place_of_an_event_is_shown_beside_it() {
        let chain = ["hearth.provisioning_started", "hearth.failed"].map(String::from);
        let report = exact(&chain).unwrap_err();
        assert_eq!(
            report.gap.summary,
            "hearth.provisioned never fired (act 2 provision); hearth.failed fired in its place"
        );
        assert!(
            matches!(&report.rows[1], Row::Replaced { observed, .. } if observed == "hearth.failed")
        );
        assert_eq!(
            report.rows.len(),
            10,
            "one row per expected slot, the failure paired"
        );
    }

    #[test]
    fn never_fires() {
        let p: KindPattern = "hearth.failed".parse().unwrap();
        check_never(&p, &play(), &Evidence::default()).unwrap();
        let p: KindPattern = "ralph.node.*".parse().unwrap();
        assert!(check_never(&p, &play(), &Evidence::default()).is_err());
    }
}
