//! The gap report as text: the alignment side by side, one act label per act, the first gap
//! pointed at, and the evidence underneath.

use std::fmt;

use super::Act;
use super::gap::{GapReport, Mode, Row};

/// What points at the first gap's row.
pub const FIRST_GAP: &str = "   ← first gap";

/// One row of the alignment as it is laid out: its act label (empty under the act's first
/// row), the expected and observed event (`—` for none), whether it is a gap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlignedRow {
    pub act: String,
    pub expected: String,
    /// Marked `✗`: missing, replaced or unexpected.
    pub gap: bool,
    pub observed: String,
    pub first_gap: bool,
}

impl GapReport {
    /// `exact order` or `in order, others allowed`.
    pub fn mode_text(&self) -> &'static str {
        match self.mode {
            Mode::Exact => "exact order",
            Mode::Subsequence => "in order, others allowed",
        }
    }

    /// The alignment's expected column width and its rows, as every rendering lays them out.
    pub fn aligned(&self) -> (usize, Vec<AlignedRow>) {
        let width = self
            .rows
            .iter()
            .map(|r| match r {
                Row::Both { expected, .. }
                | Row::Missing { expected, .. }
                | Row::Replaced { expected, .. } => expected.len(),
                Row::Unexpected { .. } => 0,
            })
            .max()
            .unwrap_or(0)
            .max("expected".len());
        let mut last_act: Option<Act> = None;
        let rows = self
            .rows
            .iter()
            .enumerate()
            .map(|(i, row)| {
                let (act, expected, gap, observed) = match row {
                    Row::Both {
                        expected,
                        observed,
                        act,
                    } => (Some(*act), expected.as_str(), false, observed.as_str()),
                    Row::Missing { expected, act } => (Some(*act), expected.as_str(), true, "—"),
                    Row::Replaced {
                        expected,
                        observed,
                        act,
                    } => (Some(*act), expected.as_str(), true, observed.as_str()),
                    Row::Unexpected { observed, act } => (*act, "—", true, observed.as_str()),
                };
                let label = match act {
                    Some(a) if Some(a) != last_act => format!("{} {}", a.number(), a.name()),
                    Some(_) => String::new(),
                    None => "?".into(),
                };
                if act.is_some() {
                    last_act = act;
                }
                AlignedRow {
                    act: label,
                    expected: expected.to_owned(),
                    gap,
                    observed: observed.to_owned(),
                    first_gap: i == self.gap.row,
                }
            })
            .collect();
        (width, rows)
    }
}

/// The alignment's header line.
pub fn header(width: usize) -> String {
    format!("  {:<16} {:<width$}    observed", "act", "expected")
}

/// A row up to its mark: the act label and the expected event, padded.
pub fn row_start(width: usize, act: &str, expected: &str) -> String {
    format!("  {act:<16} {expected:<width$}  ")
}

/// One alignment row: `(act, expected, gap, observed, first_gap)`.
pub type RowParts<'a> = (&'a str, &'a str, bool, &'a str, bool);

/// The alignment and the evidence under the two headline lines, as every text rendering of a
/// gap report lays them out.
pub fn write_body<'a>(
    f: &mut impl fmt::Write,
    width: usize,
    rows: impl IntoIterator<Item = RowParts<'a>>,
    evidence: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> fmt::Result {
    writeln!(f, "{}", header(width))?;
    for (act, expected, gap, observed, first_gap) in rows {
        writeln!(
            f,
            "{}{}{}{}",
            row_start(width, act, expected),
            if gap { "✗ " } else { "  " },
            observed,
            if first_gap { FIRST_GAP } else { "" }
        )?;
    }
    let mut evidence = evidence.into_iter().peekable();
    if evidence.peek().is_none() {
        writeln!(f, "\nevidence: none collected")?;
    } else {
        writeln!(f, "\nevidence:")?;
        for (source, detail) in evidence {
            writeln!(f, "  {source}: {detail}")?;
        }
    }
    Ok(())
}

impl fmt::Display for GapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "HATCH chain gap: {}", self.gap.summary)?;
        writeln!(f, "expected ({}): {}", self.mode_text(), self.expected)?;
        writeln!(f)?;
        let (width, rows) = self.aligned();
        write_body(
            f,
            width,
            rows.iter().map(|r| {
                (
                    r.act.as_str(),
                    r.expected.as_str(),
                    r.gap,
                    r.observed.as_str(),
                    r.first_gap,
                )
            }),
            self.evidence
                .0
                .iter()
                .map(|(s, d)| (s.as_str(), d.as_str())),
        )
    }
}
