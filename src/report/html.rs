//! `target/rocky-e2e/report.html`: one self-contained page for a run.
//!
//! Inline CSS, no script, no external URL at all (a Content-Security-Policy of `default-src
//! 'none'` makes the browser refuse any fetch the page might try), so the file reads the same
//! from an artifact download as from disk. Failing scenarios come first, open, with the gap
//! report at the top of their card: at 1280×800 the first gap is visible without scrolling.
//! Passing and skipped scenarios are folded (`<details>`, no script needed).

use std::fmt::Write as _;

use crate::chain::report as gap_text;
use crate::report::acts::{Act, act_of};
use crate::report::model::{
    ActSpan, ChainEvent, GapView, RunReport, ScenarioReport, SnapshotChange, Verdict,
};
use crate::report::snapshot;

/// Styles only a merged report (several phases) needs.
const PHASE_CSS: &str = "table.phases{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
table.phases td,table.phases th{border:1px solid #ccc;padding:.15em .5em;text-align:left}\
table.phases tr.failed td{background:#fde8e8}\
.phase-tag{font-size:.8em;border:1px solid #888;border-radius:3px;padding:0 .3em;margin-right:.3em}\n";

/// Lines of a log shown at most (its tail); the rest is counted, not embedded.
const MAX_LOG_LINES: usize = 2000;

/// The whole page.
pub fn render(report: &RunReport) -> String {
    let mut scenarios: Vec<&ScenarioReport> = report.scenarios.iter().collect();
    // Stable: failed, flaky, passed, skipped; the runner's order within each. A merged report
    // keeps its phases in order (the verdict's first), and sorts so within each.
    let phases = &report.summary.phases;
    let phase_rank = |s: &ScenarioReport| {
        s.phase
            .as_ref()
            .and_then(|p| phases.iter().position(|q| &q.name == p))
            .unwrap_or(0)
    };
    scenarios.sort_by_key(|s| (phase_rank(s), s.verdict));
    let c = &report.summary.counts;
    let run_failed = c.failed > 0;

    let mut h = String::with_capacity(64 * 1024);
    h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; \
         style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'\">\n",
    );
    h.push_str("<link rel=\"icon\" href=\"data:,\">\n");
    let _ = writeln!(
        h,
        "<title>rocky-e2e: {} failed, {} passed{}</title>",
        c.failed,
        c.passed,
        if c.flaky > 0 {
            format!(", {} flaky", c.flaky)
        } else {
            String::new()
        }
    );
    h.push_str("<style>\n");
    h.push_str(CSS);
    if !phases.is_empty() {
        h.push_str(PHASE_CSS);
    }
    h.push_str("</style>\n</head>\n<body>\n");

    // Summary.
    let _ = writeln!(
        h,
        "<header class=\"run {}\">\n<h1>rocky-e2e <span class=\"badge {}\">{}</span></h1>",
        if run_failed { "failed" } else { "passed" },
        if run_failed { "failed" } else { "passed" },
        if run_failed {
            "run failed"
        } else {
            "run passed"
        }
    );
    h.push_str("<ul class=\"counts\">");
    for (n, v) in [
        (c.failed, Verdict::Failed),
        (c.flaky, Verdict::Flaky),
        (c.passed, Verdict::Passed),
        (c.skipped, Verdict::Skipped),
    ] {
        let _ = write!(
            h,
            "<li class=\"count {}{}\"><b>{n}</b> {}</li>",
            v.as_str(),
            if n == 0 { " zero" } else { "" },
            v.as_str()
        );
    }
    h.push_str("</ul>\n<p class=\"meta\">");
    let _ = write!(
        h,
        "<span>wall time <b>{}</b></span>",
        duration(report.summary.wall_ms)
    );
    if !report.summary.topology.is_empty() {
        let _ = write!(h, "<span>{}</span>", esc(&report.summary.topology));
    }
    if let Some(at) = &report.summary.started_at {
        let _ = write!(h, "<span>started {}</span>", esc(at));
    }
    h.push_str("</p>\n");
    if !phases.is_empty() {
        phase_table(&mut h, report);
    }
    h.push_str("</header>\n<div class=\"layout\">\n<main>\n");

    if scenarios.is_empty() {
        h.push_str("<p class=\"empty\">No scenario ran.</p>\n");
    }
    for (i, s) in scenarios.iter().enumerate() {
        scenario(&mut h, i, s);
    }
    h.push_str("</main>\n");

    // Index of every scenario, in the same order.
    h.push_str("<nav class=\"index\" aria-label=\"scenarios\">\n<h2>Scenarios</h2>\n<ol>\n");
    for (i, s) in scenarios.iter().enumerate() {
        let _ = writeln!(
            h,
            "<li class=\"{v}\"><a href=\"#s{i}\"><span class=\"dot {v}\" title=\"{v}\">{}</span> \
             <span class=\"feature\">{}</span> › {}</a></li>",
            icon(s.verdict),
            esc(&s.feature),
            esc(&s.name),
            v = s.verdict.as_str(),
        );
    }
    h.push_str("</ol>\n</nav>\n</div>\n");
    h.push_str(
        "<footer>rocky-e2e report: one self-contained file (no script, nothing fetched).\
         </footer>\n</body>\n</html>\n",
    );
    h
}

/// A merged report's phases, in order (the verdict's first), with their counts.
fn phase_table(h: &mut String, report: &RunReport) {
    h.push_str(
        "<table class=\"phases\">\n<tr><th>phase</th><th>failed</th><th>flaky</th>\
         <th>passed</th><th>skipped</th><th>wall</th><th>topology</th></tr>\n",
    );
    for (i, p) in report.summary.phases.iter().enumerate() {
        let c = &p.counts;
        let _ = writeln!(
            h,
            "<tr class=\"{}\" data-phase=\"{}\"><td><b>{}</b>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            if c.failed > 0 { "failed" } else { "passed" },
            esc(&p.name),
            esc(&p.name),
            if i == 0 { " (verdict)" } else { "" },
            c.failed,
            c.flaky,
            c.passed,
            c.skipped,
            duration(p.wall_ms),
            esc(&p.topology),
        );
    }
    h.push_str("</table>\n");
}

fn scenario(h: &mut String, i: usize, s: &ScenarioReport) {
    let v = s.verdict.as_str();
    let open = matches!(s.verdict, Verdict::Failed | Verdict::Flaky);
    let _ = writeln!(
        h,
        "<details class=\"scenario {v}\" id=\"s{i}\" data-verdict=\"{v}\"{}>",
        if open { " open" } else { "" }
    );
    let _ = writeln!(
        h,
        "<summary><span class=\"badge {v}\">{} {v}</span> {}<span class=\"title\"><span \
         class=\"feature\">{}</span> › {}</span> <span class=\"dur\">{}</span></summary>",
        icon(s.verdict),
        s.phase
            .as_ref()
            .map(|p| format!("<span class=\"phase-tag\">{}</span> ", esc(p)))
            .unwrap_or_default(),
        esc(&s.feature),
        esc(&s.name),
        if s.verdict == Verdict::Skipped {
            String::new()
        } else {
            duration(s.duration_ms)
        }
    );
    h.push_str("<div class=\"body\">\n");
    if let Some(reason) = &s.skip_reason {
        let _ = writeln!(h, "<p class=\"skip\">Skipped: {}</p>", esc(reason));
    }
    if let Some(gap) = &s.gap {
        gap_report(h, gap, !s.evidence.is_empty());
    }
    if let Some(change) = &s.snapshot {
        snapshot_diff(h, change);
    }
    if let Some(f) = &s.failure {
        let _ = writeln!(
            h,
            "<div class=\"failure\"><h3>{}</h3><pre>{}</pre></div>",
            if s.gap.is_some() {
                "failure"
            } else {
                "why it failed"
            },
            esc(f)
        );
    }
    if !s.evidence.is_empty() {
        h.push_str("<section class=\"evidence\"><h3>evidence</h3>\n<ul>\n");
        for e in &s.evidence {
            let _ = writeln!(
                h,
                "<li><span class=\"src\">{}</span> {}</li>",
                esc(&e.source),
                esc(&e.detail)
            );
        }
        h.push_str("</ul></section>\n");
    }
    if s.verdict != Verdict::Skipped || !s.chain.is_empty() || !s.acts.is_empty() {
        timeline(h, &s.acts, s.duration_ms);
        chain(h, &s.chain);
    }
    if !s.logs.is_empty() {
        h.push_str("<section class=\"logs\"><h3>logs</h3>\n");
        for log in &s.logs {
            let lines: Vec<&str> = log.text.lines().collect();
            let shown = &lines[lines.len().saturating_sub(MAX_LOG_LINES)..];
            let _ = write!(
                h,
                "<details class=\"log\"><summary>{} <span class=\"muted\">{} lines{}</span></summary><pre>",
                esc(&log.name),
                lines.len(),
                if shown.len() < lines.len() {
                    format!(", the last {} shown", shown.len())
                } else {
                    String::new()
                }
            );
            for l in shown {
                h.push_str(&esc(l));
                h.push('\n');
            }
            h.push_str("</pre></details>\n");
        }
        h.push_str("</section>\n");
    }
    h.push_str("</div>\n</details>\n");
}

/// The gap report: its first gap as a headline, the alignment below with the first gap's row
/// highlighted. Its evidence is left out when the evidence is listed separately.
fn gap_report(h: &mut String, gap: &GapView, evidence_listed: bool) {
    h.push_str("<section class=\"gap\">\n");
    if !gap.summary.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"gap-headline\"><span class=\"label\">HATCH chain gap</span> {}</p>",
            esc(&gap.summary)
        );
    }
    h.push_str("<pre>");
    let _ = writeln!(h, "expected ({}): {}", esc(&gap.mode), esc(&gap.expected));
    h.push('\n');
    let _ = writeln!(h, "{}", esc(&gap_text::header(gap.width)));
    for r in &gap.rows {
        let line = format!(
            "{}{}{}{}",
            esc(&gap_text::row_start(gap.width, &r.act, &r.expected)),
            if r.gap {
                "<span class=\"x\">✗</span> "
            } else {
                "  "
            },
            esc(&r.observed),
            if r.first_gap {
                esc(gap_text::FIRST_GAP)
            } else {
                String::new()
            }
        );
        if r.first_gap {
            let _ = writeln!(h, "<mark class=\"first-gap\">{line}</mark>");
        } else {
            let _ = writeln!(h, "{line}");
        }
    }
    if !evidence_listed {
        if gap.evidence.is_empty() {
            h.push_str("\nevidence: none collected\n");
        } else {
            h.push_str("\nevidence:\n");
            for e in &gap.evidence {
                let _ = writeln!(h, "  {}: {}", esc(&e.source), esc(&e.detail));
            }
        }
    }
    h.push_str("</pre>\n</section>\n");
}

/// A snapshot that did not match: the accepted chain and the new one side by side, aligned
/// by act, as `rocky-e2e snapshots summary` shows pending changes.
fn snapshot_diff(h: &mut String, change: &SnapshotChange) {
    let _ = writeln!(
        h,
        "<section class=\"snapdiff\"><h3>snapshot <code>{}</code>: {}</h3>",
        esc(&change.name),
        if change.old.is_some() {
            "the chain differs from the accepted one"
        } else {
            "no accepted snapshot yet"
        }
    );
    let old = change.old.as_deref().unwrap_or_default();
    let new = &change.new;
    h.push_str("<table>\n<thead><tr><th>act</th><th>accepted <code>.snap</code></th><th>change</th><th>new</th></tr></thead>\n<tbody>\n");
    let mut last_act = None;
    for row in snapshot::diff(old, new) {
        let event = row.old.map(|i| &old[i]).or(row.new.map(|j| &new[j]));
        let act = event.and_then(|e| e.act());
        let act_cell = match (act, last_act) {
            (a, Some(prev)) if a == prev => String::new(),
            (Some(a), _) => esc(&a.label()),
            (None, _) => "?".into(),
        };
        last_act = Some(act);
        let cell = |e: Option<&snapshot::SnapEvent>| match e {
            None => "—".to_owned(),
            Some(e) => {
                let mut s = format!("<code>{}</code>", esc(&e.kind));
                for extra in [&e.workspace, &e.node_id].into_iter().flatten() {
                    let _ = write!(s, " · {}", esc(extra));
                }
                s
            }
        };
        let class = if row.change == snapshot::Change::Same {
            ""
        } else {
            " class=\"changed\""
        };
        let _ = writeln!(
            h,
            "<tr{class}><th class=\"act\">{act_cell}</th><td>{}</td><td>{}</td><td>{}</td></tr>",
            cell(row.old.map(|i| &old[i])),
            row.change.describe(&|x| format!("<code>{}</code>", esc(x))),
            cell(row.new.map(|j| &new[j])),
        );
    }
    h.push_str("</tbody></table>\n</section>\n");
}

/// The HATCH chain, grouped by act.
fn chain(h: &mut String, events: &[ChainEvent]) {
    h.push_str("<section class=\"chain\"><h3>HATCH chain</h3>\n");
    if events.is_empty() {
        h.push_str("<p class=\"muted\">no record</p></section>\n");
        return;
    }
    h.push_str("<table>\n<thead><tr><th>act</th><th>seq</th><th>event</th><th>workspace</th><th>detail</th></tr></thead>\n<tbody>\n");
    let mut k = 0;
    while k < events.len() {
        let act = act_of(&events[k].kind);
        let run = events[k..]
            .iter()
            .take_while(|e| act_of(&e.kind) == act)
            .count();
        for (n, e) in events[k..k + run].iter().enumerate() {
            h.push_str(if n == 0 {
                "<tr class=\"first\">"
            } else {
                "<tr>"
            });
            if n == 0 {
                let _ = write!(
                    h,
                    "<th class=\"act\" rowspan=\"{run}\">{}</th>",
                    act.map(Act::label)
                        .map(|l| esc(&l))
                        .unwrap_or_else(|| "?".into())
                );
            }
            let class = if e.kind.ends_with(".failed") {
                "kind bad"
            } else {
                "kind"
            };
            let _ = writeln!(
                h,
                "<td class=\"seq\">{}</td><td class=\"{class}\">{}</td><td>{}</td><td class=\"detail\">{}</td></tr>",
                e.seq,
                esc(&e.kind),
                esc(e.workspace.as_deref().unwrap_or("")),
                esc(e.detail.as_deref().unwrap_or(""))
            );
        }
        k += run;
    }
    h.push_str("</tbody></table></section>\n");
}

/// The acts drawn to scale: one row per act, a bar per span, an axis in seconds.
fn timeline(h: &mut String, spans: &[ActSpan], duration_ms: u64) {
    h.push_str("<section class=\"timeline\"><h3>acts</h3>\n");
    if spans.is_empty() {
        h.push_str("<p class=\"muted\">no timings recorded</p></section>\n");
        return;
    }
    let total = spans
        .iter()
        .map(|s| s.end_ms)
        .max()
        .unwrap_or(0)
        .max(duration_ms)
        .max(1);
    let pct = |ms: u64| ms as f64 * 100.0 / total as f64;
    // Rows in the play's order of acts, unknown names after, each once.
    let mut names: Vec<&str> = Vec::new();
    for s in spans {
        if !names.contains(&s.act.as_str()) {
            names.push(&s.act);
        }
    }
    names.sort_by_key(|n| Act::named(n).map_or(u8::MAX, |a| a.number()));
    h.push_str("<div class=\"tl\">\n");
    for name in names {
        let mine: Vec<&ActSpan> = spans.iter().filter(|s| s.act == name).collect();
        let busy: u64 = mine
            .iter()
            .map(|s| s.end_ms.saturating_sub(s.start_ms))
            .sum();
        let color = act_color(name);
        let _ = write!(
            h,
            "<div class=\"tl-name\">{}</div><div class=\"tl-track\">",
            esc(name)
        );
        for s in mine {
            let (a, b) = (s.start_ms.min(s.end_ms), s.end_ms.max(s.start_ms));
            let _ = write!(
                h,
                "<span class=\"tl-bar\" style=\"left:{:.3}%;width:{:.3}%;background:{color}\" \
                 title=\"{}: {} to {} ({})\"></span>",
                pct(a),
                (pct(b) - pct(a)).max(0.4),
                esc(name),
                duration(a),
                duration(b),
                duration(b - a)
            );
        }
        let _ = writeln!(h, "</div><div class=\"tl-dur\">{}</div>", duration(busy));
    }
    // Axis.
    h.push_str("<div></div><div class=\"tl-axis\">");
    let step = nice_step(total);
    let mut t = 0;
    while t <= total {
        let _ = write!(
            h,
            "<span class=\"tick\" style=\"left:{:.3}%\">{}</span>",
            pct(t),
            duration(t)
        );
        t += step;
    }
    h.push_str("</div><div></div>\n</div></section>\n");
}

/// A round tick interval giving at most about five ticks.
fn nice_step(total_ms: u64) -> u64 {
    let raw = (total_ms as f64 / 5.0).max(1.0);
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    (step as u64).max(1)
}

fn act_color(name: &str) -> &'static str {
    match Act::named(name).map(|a| a.number()) {
        Some(1) => "#8c959f",
        Some(2) => "#0969da",
        Some(3) => "#8250df",
        Some(4) => "#1a7f37",
        Some(5) => "#bc4c00",
        Some(6) => "#9a6700",
        _ => "#57606a",
    }
}

fn icon(v: Verdict) -> &'static str {
    match v {
        Verdict::Failed => "✗",
        Verdict::Flaky => "↻",
        Verdict::Passed => "✓",
        Verdict::Skipped => "↷",
    }
}

/// `312 ms`, `1.8 s`, `2 m 05 s`.
fn duration(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} m {:02} s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

/// Escapes text for HTML content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + s.len() / 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // Control characters (terminal colours in logs) would only show as boxes.
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

const CSS: &str = r#":root {
  --bg: #f6f8fa; --card: #ffffff; --fg: #1f2328; --muted: #59636e; --line: #d1d9e0;
  --red: #cf222e; --red-bg: #ffebe9; --red-line: #ff8182; --mark: #ffcecb;
  --green: #1a7f37; --green-bg: #dafbe1; --amber: #9a6700; --amber-bg: #fff8c5;
  --grey: #6e7781; --grey-bg: #eaeef2; --track: #eef1f4; --code: #f6f8fa;
  color-scheme: light dark;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0d1117; --card: #161b22; --fg: #e6edf3; --muted: #9198a1; --line: #30363d;
    --red: #ff7b72; --red-bg: #2d1214; --red-line: #8e1519; --mark: #5a1e1e;
    --green: #3fb950; --green-bg: #12261e; --amber: #d29922; --amber-bg: #2b2111;
    --grey: #8b949e; --grey-bg: #21262d; --track: #21262d; --code: #0d1117;
  }
}
* { box-sizing: border-box; }
html { scroll-padding-top: 12px; }
body { margin: 0; background: var(--bg); color: var(--fg);
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", "DejaVu Sans", sans-serif; }
pre, .kind, .seq, code { font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace; }
header.run { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px;
  padding: 12px 24px; background: var(--card); border-bottom: 1px solid var(--line);
  border-top: 4px solid var(--green); }
header.run.failed { border-top-color: var(--red); }
h1 { font-size: 20px; margin: 0; display: flex; align-items: center; gap: 10px; }
.counts { display: flex; gap: 8px; list-style: none; margin: 0; padding: 0; }
.count { padding: 2px 10px; border-radius: 999px; background: var(--grey-bg); color: var(--grey); }
.count.failed { background: var(--red-bg); color: var(--red); }
.count.passed { background: var(--green-bg); color: var(--green); }
.count.flaky { background: var(--amber-bg); color: var(--amber); }
.count.zero { opacity: .55; }
.meta { margin: 0; color: var(--muted); display: flex; flex-wrap: wrap; gap: 4px 16px; }
.meta b { color: var(--fg); }
.layout { display: grid; grid-template-columns: minmax(0, 1fr) 280px; gap: 16px;
  padding: 14px 24px; max-width: 1500px; }
@media (max-width: 960px) { .layout { grid-template-columns: minmax(0, 1fr); } }
.scenario { background: var(--card); border: 1px solid var(--line); border-left: 4px solid var(--grey);
  border-radius: 6px; margin: 0 0 12px; }
.scenario.failed { border-left-color: var(--red); }
.scenario.passed { border-left-color: var(--green); }
.scenario.flaky { border-left-color: var(--amber); }
.scenario > summary { display: flex; align-items: baseline; gap: 10px; padding: 9px 14px;
  cursor: pointer; font-weight: 600; font-size: 15px; list-style-position: outside; }
.scenario > summary::-webkit-details-marker { color: var(--muted); }
.scenario[open] > summary { border-bottom: 1px solid var(--line); }
.title { flex: 1; min-width: 0; }
.feature { color: var(--muted); font-weight: 500; }
.dur { color: var(--muted); font-weight: 400; font-size: 13px; white-space: nowrap; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; text-transform: uppercase; letter-spacing: .02em; white-space: nowrap;
  background: var(--grey-bg); color: var(--grey); }
.badge.failed { background: var(--red); color: #fff; }
.badge.passed { background: var(--green-bg); color: var(--green); }
.badge.flaky { background: var(--amber-bg); color: var(--amber); }
.body { padding: 12px 14px 4px; }
.body > * { margin-top: 0; }
h3 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; }
.gap { border: 1px solid var(--red-line); background: var(--red-bg); border-radius: 6px; margin-bottom: 14px; }
.gap-headline { margin: 0; padding: 8px 12px; font-weight: 600; color: var(--red); font-size: 15px; }
.gap-headline .label { display: inline-block; background: var(--red); color: #fff; border-radius: 4px;
  padding: 0 6px; margin-right: 6px; font-size: 12px; text-transform: uppercase; vertical-align: 1px; }
.gap pre { margin: 0; padding: 8px 12px 10px; border-top: 1px solid var(--red-line); background: var(--card);
  border-radius: 0 0 6px 6px; font-size: 12.5px; line-height: 1.5; white-space: pre-wrap; overflow-wrap: anywhere; }
mark.first-gap { background: var(--mark); color: inherit; font-weight: 700; }
.x { color: var(--red); font-weight: 700; }
.failure pre, .log pre { background: var(--code); border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 12px; font-size: 12.5px; overflow-x: auto; white-space: pre-wrap; word-break: break-word; }
.failure { margin-bottom: 14px; }
.timeline, .chain, .evidence { margin-bottom: 14px; }
.chain { overflow-x: auto; }
.snapdiff { margin-bottom: 14px; overflow-x: auto; }
.snapdiff tr.changed > * { background: var(--mark); }
table { border-collapse: collapse; font-size: 13px; }
th, td { text-align: left; padding: 2px 18px 2px 0; vertical-align: top; }
thead th { color: var(--muted); font-weight: 500; border-bottom: 1px solid var(--line); }
tr.first > * { border-top: 1px solid var(--line); }
tbody tr:first-child > * { border-top: none; }
th.act { font-weight: 600; white-space: nowrap; padding-right: 12px; }
.seq { color: var(--muted); text-align: right; padding-right: 10px; }
.kind.bad { color: var(--red); font-weight: 600; }
.detail { color: var(--muted); }
.tl { display: grid; grid-template-columns: 110px minmax(0, 1fr) 64px; gap: 6px 10px; align-items: center; }
.tl-name { font-size: 13px; white-space: nowrap; }
.tl-track { position: relative; height: 14px; background: var(--track); border-radius: 3px; }
.tl-bar { position: absolute; top: 0; bottom: 0; border-radius: 3px; min-width: 2px; box-shadow: inset -1px 0 0 var(--card); }
.tl-dur { font-size: 12px; color: var(--muted); text-align: right; white-space: nowrap; }
.tl-axis { position: relative; height: 16px; border-top: 1px solid var(--line); font-size: 11px; color: var(--muted); }
.tick { position: absolute; top: 0; transform: translateX(-50%); padding-top: 1px; white-space: nowrap; }
.tick:first-child { transform: none; }
.tick::before { content: ""; position: absolute; left: 50%; top: -4px; height: 4px; border-left: 1px solid var(--line); }
.tick:first-child::before { left: 0; }
.evidence ul { margin: 0; padding-left: 18px; }
.evidence .src { font-weight: 600; }
.evidence .src::after { content: ":"; }
.logs { margin-bottom: 10px; }
.log > summary { cursor: pointer; padding: 2px 0; }
.muted { color: var(--muted); font-weight: 400; }
.skip { color: var(--muted); margin: 0 0 10px; }
.index { position: sticky; top: 14px; align-self: start; background: var(--card); border: 1px solid var(--line);
  border-radius: 6px; padding: 10px 12px; max-height: calc(100vh - 28px); overflow: auto; }
.index h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .04em; color: var(--muted); margin: 0 0 6px; }
.index ol { list-style: none; margin: 0; padding: 0; font-size: 13px; }
.index li { padding: 2px 0; }
.index a { color: inherit; text-decoration: none; }
.index a:hover { text-decoration: underline; }
.dot { display: inline-block; width: 1.2em; text-align: center; font-weight: 700; color: var(--grey); }
.dot.failed { color: var(--red); }
.dot.passed { color: var(--green); }
.dot.flaky { color: var(--amber); }
.empty { color: var(--muted); }
footer { color: var(--muted); font-size: 12px; padding: 4px 24px 20px; }
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::model::{EvidenceItem, Log};

    fn sample() -> RunReport {
        let mut bad = ScenarioReport {
            feature: "failure_drill".into(),
            name: "the <VAULT> bearer drifts & \"more\"".into(),
            duration_ms: 1804,
            chain: vec![ChainEvent {
                seq: 1,
                kind: "hearth.failed".into(),
                workspace: Some("drill".into()),
                detail: Some("<script>alert(1)</script>".into()),
            }],
            acts: ActSpan::end_to_end([("spawn hearth", 300), ("provision", 900)]),
            evidence: vec![EvidenceItem::from(("console POST /x", "502 <b>no</b>"))],
            logs: vec![Log {
                name: "hearth".into(),
                text: "a\n\u{1b}[31mred\u{1b}[0m\n".into(),
            }],
            ..Default::default()
        };
        let mut evidence = crate::chain::Evidence::default();
        evidence.add("console POST /x", "502");
        let gap = crate::chain::check(
            &crate::chain::ExpectedChain::parse("hearth.provisioning_started").unwrap(),
            &[],
            crate::chain::Mode::Exact,
            &evidence,
        )
        .unwrap_err();
        bad.fail(None, Some(GapView::from(&*gap)));
        let ok = ScenarioReport {
            feature: "play".into(),
            name: "provision, run four prompts, tear down".into(),
            ..Default::default()
        };
        RunReport::new("embedded topology", 4200, vec![ok, bad])
    }

    #[test]
    fn failures_first_and_everything_escaped() {
        let html = render(&sample());
        let first = html.find("class=\"scenario ").unwrap();
        assert!(
            html[first..].starts_with("class=\"scenario failed\""),
            "failed first"
        );
        assert!(!html.contains("<script"), "no script, and text is escaped");
        assert!(html.contains("the &lt;VAULT&gt; bearer drifts &amp; &quot;more&quot;"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("502 &lt;b&gt;no&lt;/b&gt;"));
        assert!(!html.contains('\u{1b}'), "control characters replaced");
        assert!(html.contains("<mark class=\"first-gap\">"));
        // The evidence is listed once, not again under the gap report.
        assert_eq!(html.matches("console POST /x").count(), 1);
    }

    #[test]
    fn nothing_is_fetched() {
        let html = render(&sample());
        for attr in ["src=", "href=", "url(", "@import"] {
            for (at, _) in html.match_indices(attr) {
                let value = html[at + attr.len()..].trim_start_matches(['"', '\'']);
                assert!(
                    value.starts_with('#') || value.starts_with("data:"),
                    "{attr} points outside the file: {}",
                    &html[at..(at + 60).min(html.len())]
                );
            }
        }
        assert!(html.contains("default-src 'none'"));
    }

    #[test]
    fn ticks_and_durations() {
        assert_eq!(nice_step(1200), 500);
        assert_eq!(nice_step(10), 2);
        assert_eq!(nice_step(0), 1);
        assert_eq!(duration(312), "312 ms");
        assert_eq!(duration(1804), "1.8 s");
        assert_eq!(duration(125_000), "2 m 05 s");
    }
}
