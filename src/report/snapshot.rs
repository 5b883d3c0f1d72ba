//! Reading insta's YAML snapshots of a HATCH chain, and diffing two of them.
//!
//! A snapshot file is a YAML header between two `---` lines (`source`, `assertion_line`,
//! `description: HATCH chain of <feature> › <scenario>`), then the body: the redacted
//! records, a YAML sequence of `{seq, kind, actor, subject: {workspace, run_id, node_id}, data,
//! ts, prev, hash}`.

use yaml_serde::Value;

use crate::report::acts::{Act, act_of};

/// One record of a snapshot, as much as the diff needs.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapEvent {
    pub kind: String,
    pub workspace: Option<String>,
    pub node_id: Option<String>,
    /// The rest of the record that can change: `actor`, `data`, `subject.run_id` (seq,
    /// timestamps and hashes left out: they are redacted or shift with every insertion).
    pub data: Value,
}

impl SnapEvent {
    /// What identifies an event across two versions of a chain (seq, hashes and timestamps
    /// are redacted or shift with every insertion).
    fn key(&self) -> (&str, Option<&str>, Option<&str>) {
        (
            &self.kind,
            self.workspace.as_deref(),
            self.node_id.as_deref(),
        )
    }

    pub fn act(&self) -> Option<Act> {
        act_of(&self.kind)
    }
}

/// A parsed snapshot file.
#[derive(Clone, Debug, PartialEq)]
pub struct Snapshot {
    /// The header's `description`, e.g. `HATCH chain of play › provision, …`.
    pub description: Option<String>,
    pub events: Vec<SnapEvent>,
}

impl Snapshot {
    /// `feature › scenario`, from the description insta wrote.
    pub fn title(&self) -> Option<&str> {
        let d = self.description.as_deref()?;
        Some(d.strip_prefix("HATCH chain of ").unwrap_or(d))
    }

    /// Reads a snapshot file's text.
    pub fn parse(text: &str) -> Result<Snapshot, String> {
        let text = text.replace("\r\n", "\n");
        let (header, body) = split_header(&text);
        let description = match header {
            Some(h) => {
                let v: Value = yaml_serde::from_str(h).map_err(|e| format!("header: {e}"))?;
                v.get("description")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            }
            None => None,
        };
        let body: Value = yaml_serde::from_str(body).map_err(|e| format!("body: {e}"))?;
        let items = match body {
            Value::Sequence(items) => items,
            Value::Null => Vec::new(),
            _ => return Err("the body is not a list of HATCH records".into()),
        };
        let mut events = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let kind = item
                .get("kind")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("record {} has no kind", i + 1))?;
            let subject = |k: &str| {
                item.get("subject")
                    .and_then(|s| s.get(k))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            };
            let mut rest = item.clone();
            if let Value::Mapping(m) = &mut rest {
                for k in ["seq", "kind", "ts", "prev", "hash"] {
                    m.remove(k);
                }
                if let Some(Value::Mapping(s)) = m.get_mut("subject") {
                    s.remove("workspace");
                    s.remove("node_id");
                    if s.is_empty() {
                        m.remove("subject");
                    }
                }
            }
            events.push(SnapEvent {
                kind: kind.to_owned(),
                workspace: subject("workspace"),
                node_id: subject("node_id"),
                data: rest,
            });
        }
        Ok(Snapshot {
            description,
            events,
        })
    }
}

/// Splits `---\nheader\n---\nbody` into its parts; a file with no header is all body.
fn split_header(text: &str) -> (Option<&str>, &str) {
    if let Some(rest) = text.strip_prefix("---\n") {
        if let Some(end) = rest.find("\n---\n") {
            return (Some(&rest[..end]), &rest[end + 5..]);
        }
        if let Some(h) = rest.strip_suffix("\n---") {
            return (Some(h), "");
        }
    }
    (None, text)
}

/// How a row of the diff differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Change {
    /// In both, same place, same data.
    Same,
    /// In both, same place; `data` differs (`data.attempts: 3 → 1`, …).
    Changed(Vec<String>),
    /// Only in the accepted chain.
    Missing,
    /// Only in the new chain.
    Added,
    /// An accepted event that no longer fired, with another of the same act in its place.
    Replaced,
    /// The accepted event's old place; it fires elsewhere in the new chain (`later`: further
    /// down).
    MovedAway { later: bool, changes: Vec<String> },
    /// The new place of a moved event (`from_earlier`: it used to fire further up).
    MovedHere { from_earlier: bool },
}

/// One row of the side-by-side diff: the accepted event, the new one, or both.
#[derive(Clone, Debug, PartialEq)]
pub struct DiffRow {
    pub old: Option<usize>,
    pub new: Option<usize>,
    pub change: Change,
}

/// Aligns two chains (longest common subsequence on kind + workspace + node), then names what
/// moved (dropped in one place, found in another), what replaced what (a missing and an added
/// event of the same act between the same two common events) and whose data changed.
pub fn diff(old: &[SnapEvent], new: &[SnapEvent]) -> Vec<DiffRow> {
    let (n, m) = (old.len(), new.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if old[i].key() == new[j].key() {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut rows = Vec::new();
    while i < n || j < m {
        if i < n && j < m && old[i].key() == new[j].key() && lcs[i][j] == lcs[i + 1][j + 1] + 1 {
            let changes = data_changes(&old[i].data, &new[j].data);
            rows.push(DiffRow {
                old: Some(i),
                new: Some(j),
                change: if changes.is_empty() {
                    Change::Same
                } else {
                    Change::Changed(changes)
                },
            });
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            rows.push(DiffRow {
                old: Some(i),
                new: None,
                change: Change::Missing,
            });
            i += 1;
        } else {
            rows.push(DiffRow {
                old: None,
                new: Some(j),
                change: Change::Added,
            });
            j += 1;
        }
    }
    mark_moves(&mut rows, old, new);
    pair_replacements(rows, old, new)
}

/// A missing event and an added one with the same key are one event that moved.
fn mark_moves(rows: &mut [DiffRow], old: &[SnapEvent], new: &[SnapEvent]) {
    for a in 0..rows.len() {
        if rows[a].change != Change::Missing {
            continue;
        }
        let i = rows[a].old.expect("a missing row has an old event");
        let Some(b) = rows.iter().position(|r| {
            r.change == Change::Added && r.new.is_some_and(|j| new[j].key() == old[i].key())
        }) else {
            continue;
        };
        let j = rows[b].new.expect("an added row has a new event");
        rows[a].change = Change::MovedAway {
            later: b > a,
            changes: data_changes(&old[i].data, &new[j].data),
        };
        rows[b].change = Change::MovedHere {
            from_earlier: a < b,
        };
    }
}

/// Shows an added event beside the missing one it replaced (same act, no common event in
/// between), as the gap report does: `hearth.provisioned ✗ hearth.failed`.
fn pair_replacements(rows: Vec<DiffRow>, old: &[SnapEvent], new: &[SnapEvent]) -> Vec<DiffRow> {
    let mut out: Vec<DiffRow> = Vec::with_capacity(rows.len());
    let mut open: Vec<usize> = Vec::new();
    for row in rows {
        match row.change {
            Change::Same | Change::Changed(_) => {
                open.clear();
                out.push(row);
            }
            Change::Missing => {
                open.push(out.len());
                out.push(row);
            }
            Change::Added => {
                let j = row.new.expect("an added row has a new event");
                let act = new[j].act();
                let pos = open.iter().position(|&k| {
                    let i = out[k].old.expect("open rows are missing rows");
                    act.is_some() && old[i].act() == act
                });
                match pos {
                    Some(p) => {
                        let k = open.remove(p);
                        out[k].new = Some(j);
                        out[k].change = Change::Replaced;
                    }
                    None => out.push(row),
                }
            }
            _ => out.push(row),
        }
    }
    out
}

/// `data.attempts: 3 → 1` for every leaf that differs.
fn data_changes(old: &Value, new: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk("", old, new, &mut out);
    out
}

fn walk(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    if old == new {
        return;
    }
    match (old, new) {
        (Value::Mapping(a), Value::Mapping(b)) => {
            let mut keys: Vec<String> = a.keys().chain(b.keys()).map(inline).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let key = Value::String(k.clone());
                let (x, y) = (
                    a.get(&key).unwrap_or(&Value::Null),
                    b.get(&key).unwrap_or(&Value::Null),
                );
                let path = if path.is_empty() {
                    k
                } else {
                    format!("{path}.{k}")
                };
                walk(&path, x, y, out);
            }
        }
        _ if path.is_empty() => out.push(format!("{} → {}", shown(old), shown(new))),
        _ => out.push(format!("{path}: {} → {}", shown(old), shown(new))),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::Null => "(none)".into(),
        other => inline(other),
    }
}

/// A value on one line: scalars as themselves, the rest as flow YAML.
fn inline(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Null => "null".into(),
        other => serde_json::to_string(other).unwrap_or_else(|_| "…".into()),
    }
}

/// The snapshot step's text: the vocabulary check uses it to know which scenarios own which
/// snapshot (for the orphan check).
pub const SNAPSHOT_STEP: &str = "the HATCH chain matches the snapshot";

/// `feature__scenario-name`, from the feature file and the scenario: never insta's automatic
/// name, so renaming a step function does not orphan a snapshot.
pub fn snapshot_name(feature: &str, scenario: &str) -> String {
    let slug: String = scenario
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let slug = slug
        .split('-')
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    format!("{feature}__{slug}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(kind: &str) -> SnapEvent {
        SnapEvent {
            kind: kind.into(),
            workspace: Some("w".into()),
            node_id: None,
            data: Value::Null,
        }
    }

    fn changes(rows: &[DiffRow]) -> Vec<&Change> {
        rows.iter().map(|r| &r.change).collect()
    }

    #[test]
    fn parses_a_real_snapshot() {
        let text = "---\nsource: steps/chain.rs\nassertion_line: 64\ndescription: \"HATCH chain of play › a: b\"\n---\n- seq: 1\n  kind: hearth.provisioning_started\n  actor: admin\n  subject:\n    workspace: test\n  data:\n    tier: solo\n- seq: 2\n  kind: ralph.node.succeeded\n  subject:\n    workspace: test\n    node_id: node-1\n  data: {}\n";
        let s = Snapshot::parse(text).unwrap();
        assert_eq!(s.title(), Some("play › a: b"));
        assert_eq!(s.events.len(), 2);
        assert_eq!(s.events[1].node_id.as_deref(), Some("node-1"));
        let rest: Value = yaml_serde::from_str("actor: admin\ndata: {tier: solo}").unwrap();
        assert_eq!(s.events[0].data, rest);
        assert!(Snapshot::parse("---\na: 1\n---\nfoo: bar\n").is_err());
        assert!(Snapshot::parse("---\na: 1\n---\n- seq: 1\n").is_err());
        assert_eq!(Snapshot::parse("---\na: 1\n---\n").unwrap().events, vec![]);
    }

    #[test]
    fn missing_added_moved_replaced() {
        let old = [
            ev("a.x"),
            ev("hearth.provisioned"),
            ev("c.x"),
            ev("d.x"),
            ev("e.x"),
        ];
        let new = [
            ev("a.x"),
            ev("hearth.failed"),
            ev("d.x"),
            ev("c.x"),
            ev("f.x"),
        ];
        let rows = diff(&old, &new);
        let c = changes(&rows);
        assert_eq!(c[0], &Change::Same);
        assert_eq!(c[1], &Change::Replaced, "{rows:?}");
        assert!(c.contains(&&Change::Missing), "{rows:?}");
        assert!(c.contains(&&Change::Added), "{rows:?}");
        assert_eq!(
            c.iter()
                .filter(|c| matches!(c, Change::MovedAway { .. }))
                .count(),
            1,
            "{rows:?}"
        );
        assert_eq!(
            c.iter()
                .filter(|c| matches!(c, Change::MovedHere { .. }))
                .count(),
            1,
            "{rows:?}"
        );
    }

    #[test]
    fn data_changes_are_named_by_path() {
        let mut a = ev("ralph.node.succeeded");
        let mut b = a.clone();
        a.data = yaml_serde::from_str("data: {attempts: 3, x: {y: 1}}").unwrap();
        b.data = yaml_serde::from_str("data: {attempts: 1, x: {y: 1}, z: new}").unwrap();
        let rows = diff(&[a], &[b]);
        assert_eq!(
            rows[0].change,
            Change::Changed(vec![
                "data.attempts: 3 → 1".into(),
                "data.z: (none) → new".into()
            ])
        );
    }
}
