//! The gap report as text: the alignment side by side, one act label per act, the first gap
//! pointed at, and the evidence underneath.

use std::fmt;

use super::Act;
use super::gap::{GapReport, Mode, Row};

impl fmt::Display for GapReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.mode {
            Mode::Exact => "exact order",
            Mode::Subsequence => "in order, others allowed",
        };
        writeln!(f, "HATCH chain gap: {}", self.gap.summary)?;
        writeln!(f, "expected ({mode}): {}", self.expected)?;
        writeln!(f)?;
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
        writeln!(f, "  {:<16} {:<width$}    observed", "act", "expected")?;
        let mut last_act: Option<Act> = None;
        for (i, row) in self.rows.iter().enumerate() {
            let (act, expected, mark, observed) = match row {
                Row::Both {
                    expected,
                    observed,
                    act,
                } => (Some(*act), expected.as_str(), "  ", observed.as_str()),
                Row::Missing { expected, act } => (Some(*act), expected.as_str(), "✗ ", "—"),
                Row::Replaced {
                    expected,
                    observed,
                    act,
                } => (Some(*act), expected.as_str(), "✗ ", observed.as_str()),
                Row::Unexpected { observed, act } => (*act, "—", "✗ ", observed.as_str()),
            };
            let act_label = match act {
                Some(a) if Some(a) != last_act => format!("{} {}", a.number(), a.name()),
                Some(_) => String::new(),
                None => "?".into(),
            };
            if act.is_some() {
                last_act = act;
            }
            let pointer = if i == self.gap.row {
                "   ← first gap"
            } else {
                ""
            };
            let mark = if matches!(row, Row::Both { .. }) {
                "  "
            } else {
                mark
            };
            writeln!(
                f,
                "  {act_label:<16} {expected:<width$}  {mark}{observed}{pointer}"
            )?;
        }
        if self.evidence.0.is_empty() {
            writeln!(f, "\nevidence: none collected")?;
        } else {
            writeln!(f, "\nevidence:")?;
            for (source, detail) in &self.evidence.0 {
                writeln!(f, "  {source}: {detail}")?;
            }
        }
        Ok(())
    }
}
