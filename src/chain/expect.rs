//! Expected chains: the patterns a slot accepts, how many times in a row, and the text form
//! scenarios write them in (`a → b → ralph.node.* ×4 → c`).

use std::fmt;

use rocky::hatch::EventKind;

use super::Act;

/// Which kinds a slot of the expected chain accepts: one kind, or a family (`ralph.node.*`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KindPattern {
    Exact(EventKind),
    /// Every kind starting with this prefix (written `prefix*`, e.g. `ralph.node.*`).
    Family(String),
}

impl KindPattern {
    pub fn matches(&self, kind: &str) -> bool {
        match self {
            KindPattern::Exact(k) => k.as_str() == kind,
            KindPattern::Family(prefix) => kind.starts_with(prefix.as_str()),
        }
    }

    /// The act a slot of this pattern belongs to.
    pub fn act(&self) -> Act {
        match self {
            KindPattern::Exact(k) => Act::of(*k),
            KindPattern::Family(prefix) => EventKind::ALL
                .into_iter()
                .find(|k| k.as_str().starts_with(prefix.as_str()))
                .map(Act::of)
                .expect("families are checked to match a kind when parsed"),
        }
    }
}

impl fmt::Display for KindPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KindPattern::Exact(k) => f.write_str(k.as_str()),
            KindPattern::Family(p) => write!(f, "{p}*"),
        }
    }
}

impl std::str::FromStr for KindPattern {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if let Some(prefix) = s.strip_suffix('*') {
            if EventKind::ALL
                .iter()
                .any(|k| k.as_str().starts_with(prefix))
            {
                return Ok(KindPattern::Family(prefix.to_owned()));
            }
            return Err(format!("{s:?} matches no HATCH event kind"));
        }
        EventKind::parse(s).map(KindPattern::Exact).ok_or_else(|| {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            format!(
                "unknown HATCH event kind {s:?}; known kinds: {}",
                known.join(", ")
            )
        })
    }
}

/// One line of an expected chain: a pattern and how many times in a row it fires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    pub pattern: KindPattern,
    pub count: usize,
}

/// An expected chain, e.g. the contract's play chain.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExpectedChain(pub Vec<Expectation>);

impl ExpectedChain {
    /// The asserted chain of the six-act play with `nodes` prompts (contract §2).
    pub fn play(nodes: usize) -> ExpectedChain {
        let one = |k| Expectation {
            pattern: KindPattern::Exact(k),
            count: 1,
        };
        ExpectedChain(vec![
            one(EventKind::ProvisioningStarted),
            one(EventKind::Provisioned),
            one(EventKind::RunStarted),
            Expectation {
                pattern: KindPattern::Family("ralph.node.".into()),
                count: nodes,
            },
            one(EventKind::RunEnded),
            one(EventKind::DecommissionStarted),
            one(EventKind::Decommissioned),
        ])
    }

    /// Parses `a → b → ralph.node.* ×4 → c` (also `->` and `x4`).
    pub fn parse(text: &str) -> Result<ExpectedChain, String> {
        let mut out = Vec::new();
        for part in text.split(['→']).flat_map(|p| p.split("->")) {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            // A trailing ` ×N` (or ` xN`) token is a count.
            let (kind, count) = match part.rsplit_once(char::is_whitespace) {
                Some((k, n))
                    if n.trim_start_matches(['×', 'x']).parse::<usize>().is_ok()
                        && n.starts_with(['×', 'x']) =>
                {
                    let count = n.trim_start_matches(['×', 'x']).parse().expect("checked");
                    (k.trim(), count)
                }
                _ => (part, 1),
            };
            out.push(Expectation {
                pattern: kind.parse()?,
                count,
            });
        }
        if out.is_empty() {
            return Err("an expected chain needs at least one event".into());
        }
        Ok(ExpectedChain(out))
    }

    /// One slot per expected event, with its place within its expectation (`3/4`).
    pub(super) fn slots(&self) -> Vec<Slot> {
        let mut slots = Vec::new();
        for e in &self.0 {
            for i in 0..e.count {
                slots.push(Slot {
                    pattern: e.pattern.clone(),
                    label: if e.count > 1 {
                        format!("{} ({}/{})", e.pattern, i + 1, e.count)
                    } else {
                        e.pattern.to_string()
                    },
                });
            }
        }
        slots
    }
}

impl fmt::Display for ExpectedChain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" → ")?;
            }
            if e.count == 1 {
                write!(f, "{}", e.pattern)?;
            } else {
                write!(f, "{} ×{}", e.pattern, e.count)?;
            }
        }
        Ok(())
    }
}

/// One expected event of a chain, labelled for the alignment.
#[derive(Clone, Debug)]
pub(super) struct Slot {
    pub(super) pattern: KindPattern,
    pub(super) label: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_chains_and_rejects_unknown_kinds() {
        let c = ExpectedChain::parse("hearth.provisioning_started → hearth.provisioned → ralph.run.started → ralph.node.* ×4 → ralph.run.ended → hearth.decommission_started → hearth.decommissioned").unwrap();
        assert_eq!(c, ExpectedChain::play(4));
        assert!(
            ExpectedChain::parse("hearth.provisoned")
                .unwrap_err()
                .contains("unknown HATCH event kind")
        );
        assert!(ExpectedChain::parse("billing.*").is_err());
    }
}
