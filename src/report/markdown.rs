//! Markdown for the pull request: the pending snapshot changes (`rocky-e2e snapshots summary`)
//! and the results table from the JUnit report. Both go to the job summary; the first is also
//! the body of the pull-request comment.
//!
//! Output is deterministic (files sorted by name, no times or absolute paths), so it has golden
//! tests (`tests/golden.rs`).

use std::fmt::Write as _;
use std::path::Path;

use crate::report::acts::Act;
use crate::report::junit::{self, Outcome};
use crate::report::snapshot::{Change, DiffRow, SnapEvent, Snapshot, diff};

/// What the summary says when no `.snap.new` is waiting.
pub const NOTHING_PENDING: &str = "No pending snapshot changes.";

/// GitHub refuses comments over 65,536 characters; stop adding sections well before that.
const MAX_SUMMARY_CHARS: usize = 60_000;

/// One Markdown section per pending `snapshots/*.snap.new`: the accepted chain and the new one
/// side by side, aligned by act like the gap report, with added, missing, moved, replaced and
/// changed events marked; then the `cargo insta review` command. [`NOTHING_PENDING`] (one
/// line) when nothing is pending. A folder that cannot be read is an error, never "nothing
/// pending".
pub fn snapshot_summary(snapshots_dir: &Path) -> Result<String, String> {
    let pending = pending_snapshots(snapshots_dir)?;
    if pending.is_empty() {
        return Ok(format!("{NOTHING_PENDING}\n"));
    }
    let sections: Vec<String> = pending
        .iter()
        .map(|name| {
            let accepted_name = name.strip_suffix(".new").expect("filtered on .snap.new");
            let new = std::fs::read_to_string(snapshots_dir.join(name));
            let accepted = std::fs::read_to_string(snapshots_dir.join(accepted_name)).ok();
            section(
                name,
                accepted.as_deref(),
                new.as_deref().map_err(|e| e.to_string()),
            )
        })
        .collect();

    let mut out = String::new();
    let n = sections.len();
    let _ = writeln!(out, "## HATCH chain changes\n");
    let _ = writeln!(
        out,
        "{n} {} a HATCH chain that differs from the accepted snapshot (or {} none yet). Read \
         each as a change in the audit log a reviewer would see: an added, missing or moved \
         event is a behaviour change, not noise.\n",
        if n == 1 {
            "scenario recorded"
        } else {
            "scenarios recorded"
        },
        if n == 1 { "has" } else { "have" }
    );
    let footer = "---\n\nTo accept, put the `.snap.new` files in `snapshots/` (this run's \
                  `pending-snapshots` artifact, or run `cargo test --test scenarios` locally), \
                  then from the crate root:\n\n```sh\ncargo insta review\n```\n";
    let mut shown = 0;
    for s in &sections {
        if out.len() + s.len() + footer.len() > MAX_SUMMARY_CHARS {
            break;
        }
        out.push_str(s);
        shown += 1;
    }
    if shown < n {
        let _ = writeln!(
            out,
            "_{} more pending snapshot(s) not shown here (too long for one comment): see the \
             `pending-snapshots` artifact._\n",
            n - shown
        );
    }
    out.push_str(footer);
    Ok(out)
}

/// The names of the pending files (`*.snap.new`) in `snapshots_dir`, sorted.
pub fn pending_snapshots(snapshots_dir: &Path) -> Result<Vec<String>, String> {
    let entries = std::fs::read_dir(snapshots_dir)
        .map_err(|e| format!("failed to read {}: {e}", snapshots_dir.display()))?;
    let mut pending: Vec<String> = entries
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| n.ends_with(".snap.new"))
        .collect();
    pending.sort();
    Ok(pending)
}

/// The section of one pending file.
fn section(new_name: &str, accepted: Option<&str>, new: Result<&str, String>) -> String {
    let mut out = String::new();
    let new = new.and_then(Snapshot::parse);
    let accepted = accepted.map(Snapshot::parse);
    let stem = new_name.trim_end_matches(".snap.new");
    let title = match (&new, &accepted) {
        (Ok(s), _) | (_, Some(Ok(s))) => s.title().unwrap_or(stem).to_owned(),
        _ => stem.to_owned(),
    };
    let _ = writeln!(out, "### {}\n", text(&title));
    let new = match new {
        Ok(s) => s,
        Err(e) => {
            let _ = writeln!(
                out,
                "`{new_name}` could not be read as a HATCH chain: {}\n",
                code(&e)
            );
            return out;
        }
    };
    let (old_events, note) = match accepted {
        None => (
            Vec::new(),
            Some("new snapshot: no accepted chain yet".to_owned()),
        ),
        Some(Err(e)) => (
            Vec::new(),
            Some(format!(
                "the accepted `.snap` could not be read ({})",
                code(&e)
            )),
        ),
        Some(Ok(s)) => (s.events, None),
    };
    let rows = diff(&old_events, &new.events);
    let _ = writeln!(
        out,
        "`{new_name}` · {} → {} events · {}\n",
        old_events.len(),
        new.events.len(),
        note.unwrap_or_else(|| tally(&rows))
    );
    table(&mut out, &rows, &old_events, &new.events);
    out.push('\n');
    out
}

/// `1 missing, 1 added, 1 moved`.
fn tally(rows: &[DiffRow]) -> String {
    let count = |f: fn(&Change) -> bool| rows.iter().filter(|r| f(&r.change)).count();
    let parts = [
        (count(|c| matches!(c, Change::Missing)), "missing"),
        (count(|c| matches!(c, Change::Added)), "added"),
        (count(|c| matches!(c, Change::MovedAway { .. })), "moved"),
        (count(|c| matches!(c, Change::Replaced)), "replaced"),
        (
            count(|c| {
                matches!(c, Change::Changed(_))
                    || matches!(c, Change::MovedAway { changes, .. } if !changes.is_empty())
            }),
            "changed",
        ),
    ];
    let said: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, what)| format!("{n} {what}"))
        .collect();
    if said.is_empty() {
        "same events, same data: the file differs elsewhere (its header)".into()
    } else {
        said.join(", ")
    }
}

/// The side-by-side table. Runs of unchanged rows of one kind collapse to `kind ×N`.
fn table(out: &mut String, rows: &[DiffRow], old: &[SnapEvent], new: &[SnapEvent]) {
    let workspaces: std::collections::BTreeSet<&str> = old
        .iter()
        .chain(new)
        .filter_map(|e| e.workspace.as_deref())
        .collect();
    let many_ws = workspaces.len() > 1;
    let label = |e: &SnapEvent, with_node: bool, times: usize| {
        let mut s = format!("`{}`", e.kind);
        if times > 1 {
            let _ = write!(s, " ×{times}");
        }
        if many_ws && let Some(w) = &e.workspace {
            let _ = write!(s, " · {}", text(w));
        }
        if with_node && let Some(n) = &e.node_id {
            let _ = write!(s, " · {}", text(n));
        }
        s
    };
    let _ = writeln!(out, "| act | accepted `.snap` | change | new `.snap.new` |");
    let _ = writeln!(out, "| --- | --- | --- | --- |");
    let mut last_act: Option<Option<Act>> = None;
    let mut k = 0;
    while k < rows.len() {
        let row = &rows[k];
        let event = row
            .old
            .map(|i| &old[i])
            .or(row.new.map(|j| &new[j]))
            .expect("a row has an event");
        // Collapse a run of unchanged rows of the same kind and workspace.
        let mut times = 1;
        if row.change == Change::Same {
            while let Some(next) = rows.get(k + times) {
                let same = next.change == Change::Same
                    && next.old.is_some_and(|i| {
                        old[i].kind == event.kind && old[i].workspace == event.workspace
                    });
                if !same {
                    break;
                }
                times += 1;
            }
        }
        let act = event.act();
        let act_cell = match (act, last_act) {
            (a, Some(prev)) if a == prev => String::new(),
            (Some(a), _) => a.label(),
            (None, _) => "?".into(),
        };
        last_act = Some(act);
        let with_node = row.change != Change::Same;
        let old_cell = row
            .old
            .map_or("—".into(), |i| label(&old[i], with_node, times));
        let new_cell = row
            .new
            .map_or("—".into(), |j| label(&new[j], with_node, times));
        let _ = writeln!(
            out,
            "| {act_cell} | {old_cell} | {} | {new_cell} |",
            mark(&row.change)
        );
        k += times;
    }
}

fn mark(change: &Change) -> String {
    change.describe(&|x| code(x))
}

/// A Markdown results table from a JUnit report: totals, then the failed (and flaky) scenarios
/// with where they are and the first line of why.
pub fn junit_table(junit_xml: &str) -> String {
    let cases = match junit::parse(junit_xml) {
        Ok(c) => c,
        Err(e) => return format!("The JUnit report could not be read: {}\n", code(&e)),
    };
    let mut out = String::from("## rocky-e2e results\n\n");
    if cases.is_empty() {
        out.push_str("No scenario ran.\n");
        return out;
    }
    let count = |f: fn(Outcome) -> bool| cases.iter().filter(|c| f(c.outcome)).count();
    let failed = count(|o| matches!(o, Outcome::Failed | Outcome::Errored));
    let flaky = count(|o| o == Outcome::Flaky);
    let passed = count(|o| o == Outcome::Passed);
    let skipped = count(|o| o == Outcome::Skipped);
    let ran = cases.len() - skipped;
    if failed > 0 {
        let _ = writeln!(out, "**❌ {failed} of {ran} scenarios failed.**\n");
    } else {
        let _ = writeln!(out, "**✅ All {ran} scenarios that ran passed.**\n");
    }
    let time: f64 = cases.iter().map(|c| c.time_s).sum();
    let _ = writeln!(
        out,
        "| ✅ passed | ❌ failed | 🔁 flaky | ⏭️ skipped | total | scenario time (sum) |"
    );
    let _ = writeln!(out, "| ---: | ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        out,
        "| {passed} | {failed} | {flaky} | {skipped} | {} | {} |",
        cases.len(),
        seconds(time)
    );
    // A merged report (`ROCKY_E2E_PHASE`): one row per phase, in the file's order (the
    // verdict's phase first).
    let mut phases: Vec<&str> = Vec::new();
    for c in &cases {
        if let Some(p) = junit::phase_of_suite(&c.suite)
            && !phases.contains(&p)
        {
            phases.push(p);
        }
    }
    if !phases.is_empty() {
        let _ = writeln!(
            out,
            "\n| phase | ✅ passed | ❌ failed | 🔁 flaky | ⏭️ skipped | total | scenario time (sum) |"
        );
        let _ = writeln!(out, "| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
        for p in &phases {
            let of: Vec<&junit::Case> = cases
                .iter()
                .filter(|c| junit::phase_of_suite(&c.suite) == Some(*p))
                .collect();
            let n = |f: fn(Outcome) -> bool| of.iter().filter(|c| f(c.outcome)).count();
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                text(p),
                n(|o| o == Outcome::Passed),
                n(|o| matches!(o, Outcome::Failed | Outcome::Errored)),
                n(|o| o == Outcome::Flaky),
                n(|o| o == Outcome::Skipped),
                of.len(),
                seconds(of.iter().map(|c| c.time_s).sum())
            );
        }
    }
    for (title, wanted) in [
        ("Failed", [Outcome::Failed, Outcome::Errored]),
        ("Flaky", [Outcome::Flaky; 2]),
    ] {
        let listed: Vec<&junit::Case> = cases
            .iter()
            .filter(|c| wanted.contains(&c.outcome))
            .collect();
        if listed.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {title}\n");
        let _ = writeln!(out, "| scenario | where | why |");
        let _ = writeln!(out, "| --- | --- | --- |");
        for c in listed {
            let phase = junit::phase_of_suite(&c.suite);
            let bare = match phase {
                Some(p) => c.name.strip_prefix(&format!("[{p}] ")).unwrap_or(&c.name),
                None => c.name.as_str(),
            };
            let (name, location) = case_name(bare);
            let location = location.or_else(|| c.location.clone());
            let feature = location
                .as_deref()
                .and_then(|l| l.rsplit('/').next())
                .and_then(|f| f.split(".feature").next())
                .map(str::to_owned)
                .unwrap_or_else(|| suite_feature(&c.suite));
            let why = c.message.as_deref().map(first_line).unwrap_or_default();
            let _ = writeln!(
                out,
                "| {}{} › {} | {} | {} |",
                phase.map(|p| format!("{}: ", text(p))).unwrap_or_default(),
                text(&feature),
                text(&name),
                location.map(|l| code(&l)).unwrap_or_default(),
                if why.is_empty() {
                    String::new()
                } else {
                    code(&why)
                }
            );
        }
    }
    out
}

/// Cucumber names a case `[Rule: R: ]Scenario: NAME: features/x.feature:LINE:COL`; returns the
/// name and `features/x.feature:LINE`.
fn case_name(full: &str) -> (String, Option<String>) {
    let s = match full.find("Scenario: ") {
        Some(at) => &full[at + "Scenario: ".len()..],
        None => full,
    };
    // The location is the last `: ` tail of the form `path:line:col`.
    let mut search = s.len();
    while let Some(at) = s[..search].rfind(": ") {
        let tail = &s[at + 2..];
        let mut parts = tail.rsplitn(3, ':');
        let (col, line, path) = (parts.next(), parts.next(), parts.next());
        let numeric = |p: Option<&str>| {
            p.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        };
        if numeric(col) && numeric(line) && path.is_some_and(|p| !p.is_empty()) {
            let location = format!("{}:{}", path.unwrap_or_default(), line.unwrap_or_default());
            return (s[..at].to_owned(), Some(location));
        }
        search = at;
    }
    (s.to_owned(), None)
}

/// `Feature: The failure drill: features/failure_drill.feature` → `The failure drill`.
fn suite_feature(suite: &str) -> String {
    let s = suite.strip_prefix("Feature: ").unwrap_or(suite);
    match s.rfind(": ") {
        Some(at) if s[at..].ends_with(".feature") => s[..at].to_owned(),
        _ => s.to_owned(),
    }
}

/// The first line worth reading of a failure message, at most 160 characters.
fn first_line(message: &str) -> String {
    let m = message.trim();
    let m = m
        .strip_prefix("Step panicked. Captured output:")
        .unwrap_or(m);
    let line = m
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(159).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn seconds(s: f64) -> String {
    if s >= 60.0 {
        format!("{} m {:.0} s", (s / 60.0).floor(), s % 60.0)
    } else {
        format!("{s:.1} s")
    }
}

/// Text in a table cell or heading: no table breaks, no raw HTML, no @mentions, no emphasis.
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let chars: Vec<char> = s.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let word = |k: Option<usize>| {
            k.and_then(|k| chars.get(k))
                .is_some_and(|c| c.is_alphanumeric())
        };
        match c {
            // Inside a word (`max_ralph_iters`) an underscore is never emphasis.
            '_' if word(i.checked_sub(1)) && word(Some(i + 1)) => out.push('_'),
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '\n' | '\r' => out.push(' '),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' => {
                out.push('\\');
                out.push(c);
            }
            // A zero-width joiner keeps `@docker` from mentioning a GitHub user.
            '@' => out.push_str("@\u{2060}"),
            c => out.push(c),
        }
    }
    out
}

/// A code span holding `s` verbatim (on one line, `|` escaped for tables).
fn code(s: &str) -> String {
    let s = s.replace(['\n', '\r'], " ").replace('|', "\\|");
    let longest = s.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    let pad = if s.starts_with('`') || s.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{s}{pad}{fence}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn case_names_split_at_their_location() {
        assert_eq!(
            case_name(
                "Scenario: the KAHN schema drifts: schema=kahn/2: features/failure_drill.feature:44:3"
            ),
            (
                "the KAHN schema drifts: schema=kahn/2".to_owned(),
                Some("features/failure_drill.feature:44".to_owned())
            )
        );
        assert_eq!(case_name("plain"), ("plain".to_owned(), None));
        assert_eq!(
            suite_feature("Feature: The failure drill: features/failure_drill.feature"),
            "The failure drill"
        );
    }

    #[test]
    fn escaping() {
        assert_eq!(
            text("a|b <x> @docker *y*"),
            "a\\|b &lt;x&gt; @\u{2060}docker \\*y\\*"
        );
        assert_eq!(text("max_ralph_iters _x_"), "max_ralph_iters \\_x\\_");
        assert_eq!(code("a`b"), "``a`b``");
        assert_eq!(code("`x`"), "`` `x` ``");
        assert_eq!(code("a|b"), "`a\\|b`");
        assert_eq!(
            first_line("Step panicked. Captured output: HATCH chain gap: x\nmore"),
            "HATCH chain gap: x"
        );
    }

    #[test]
    fn nothing_pending_is_one_line() {
        let dir = std::env::temp_dir().join(format!("rocky-report-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(
            snapshot_summary(&dir).as_deref(),
            Ok("No pending snapshot changes.\n")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_folder_that_cannot_be_read_is_an_error_not_nothing_pending() {
        let err = snapshot_summary(Path::new("/nonexistent/snapshots")).unwrap_err();
        assert!(
            err.starts_with("failed to read /nonexistent/snapshots: "),
            "{err}"
        );
    }
}
