//! The step vocabulary, read from the step definitions themselves (cucumber's inventory), and
//! the static check of features against it.
//!
//! Before anything starts, every step of every selected scenario must match exactly one
//! definition: an undefined step fails the run naming the closest definitions and printing a
//! snippet to start from; an ambiguous one fails naming both definitions. `--dry-run` stops
//! after this check. `rocky-e2e steps` prints the vocabulary, each pattern with an example taken
//! from the features, so the reference cannot drift from the code.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use cucumber::codegen::{StepConstructor, WorldInventory};
use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, StepType};

use crate::report::snapshot::{SNAPSHOT_STEP, snapshot_name};

/// One step definition.
#[derive(Clone, Debug)]
pub struct Definition {
    pub kind: StepType,
    /// The cucumber expression or regex as written in the attribute.
    pub pattern: String,
    pub regex: cucumber::codegen::Regex,
    /// `steps/runs.rs:42`.
    pub location: String,
}

/// The source of each step file (`("runs.rs", text)`), compiled in: patterns are shown as
/// their authors wrote them, even from an installed binary far from the checkout.
pub type Sources = &'static [(&'static str, &'static str)];

/// Every definition of the World `W`, sorted by file and line.
pub fn definitions_of<W: WorldInventory + 'static>(sources: Sources) -> Vec<Definition> {
    fn collect<W, T>(kind: StepType, sources: Sources, out: &mut Vec<Definition>)
    where
        T: StepConstructor<W> + cucumber::codegen::inventory::Collect + 'static,
    {
        for item in cucumber::codegen::inventory::iter::<T> {
            let (loc, regex, _) = item.inner();
            let regex = regex();
            let pattern = pattern_from_source(sources, loc.path, loc.line)
                .unwrap_or_else(|| regex.as_str().to_owned());
            out.push(Definition {
                kind,
                pattern,
                regex,
                location: format!("{}:{}", relative(loc.path), loc.line),
            });
        }
    }
    let mut out = Vec::new();
    collect::<W, W::Given>(StepType::Given, sources, &mut out);
    collect::<W, W::When>(StepType::When, sources, &mut out);
    collect::<W, W::Then>(StepType::Then, sources, &mut out);
    out.sort_by_key(|d| {
        let (file, line) = d.location.rsplit_once(':').unwrap_or((&d.location, "0"));
        (file.to_owned(), line.parse::<u32>().unwrap_or(0))
    });
    out
}

/// A feature file as messages show it: relative to the checkout when it lies inside.
fn shown_path(file: &Path) -> String {
    let root = &crate::layout::current().root;
    let file = std::fs::canonicalize(file).unwrap_or_else(|_| file.to_owned());
    file.strip_prefix(root)
        .unwrap_or(&file)
        .display()
        .to_string()
}

/// `…/src/steps/runs.rs` → `steps/runs.rs`: `src/steps` is a symlink to `steps/`, named
/// where authors find it.
fn relative(path: &str) -> String {
    match path.rsplit_once("steps/") {
        Some((_, file)) => format!("steps/{file}"),
        None => path.to_owned(),
    }
}

/// The attribute text (`expr = "…"` or `"…"`) at `line` of `path`, so the reference shows the
/// pattern as its author wrote it rather than the compiled regex.
pub fn pattern_from_source(sources: Sources, path: &str, line: u32) -> Option<String> {
    let file = relative(path);
    let file = file.strip_prefix("steps/")?;
    let text = sources
        .iter()
        .find(|(name, _)| *name == file)
        .map(|(_, text)| *text)?;
    let lines: Vec<&str> = text.lines().collect();
    // The location points at the attribute or the fn below it: look a few lines up for the
    // attribute's first line, then read it to its `)]` (rustfmt wraps long ones).
    let start = (line as usize)
        .saturating_sub(1)
        .min(lines.len().saturating_sub(1));
    let first = (start.saturating_sub(6)..=start).rev().find(|&i| {
        let l = lines[i].trim();
        ["#[given(", "#[when(", "#[then("]
            .iter()
            .any(|p| l.starts_with(p))
    })?;
    let mut attr = String::new();
    for l in &lines[first..] {
        attr.push_str(l.trim());
        if l.trim_end().ends_with(")]") {
            break;
        }
    }
    let rest = attr
        .strip_prefix("#[given(")
        .or(attr.strip_prefix("#[when("))
        .or(attr.strip_prefix("#[then("))?;
    let rest = rest.trim_end_matches(")]").trim_end_matches(',');
    let rest = rest.strip_prefix("expr = ").unwrap_or(rest);
    serde_json::from_str::<String>(rest).ok()
}

pub fn kind_name(kind: StepType) -> &'static str {
    match kind {
        StepType::Given => "Given",
        StepType::When => "When",
        StepType::Then => "Then",
    }
}

/// What the static check found.
#[derive(Debug, Default)]
pub struct CheckReport {
    pub features: usize,
    pub scenarios: usize,
    pub steps: usize,
    pub problems: Vec<String>,
    /// Snapshot names the scenarios assert (`<feature>__<scenario>`).
    pub snapshots: BTreeSet<String>,
    /// First use of each definition (by location): `(step text, feature:line)`.
    pub examples: std::collections::BTreeMap<String, (String, String)>,
}

/// The `.feature` files under `input` (a file or a folder), sorted.
pub fn feature_files(input: &Path) -> Vec<PathBuf> {
    if input.is_file() {
        return vec![input.to_owned()];
    }
    let mut out = Vec::new();
    let mut dirs = vec![input.to_owned()];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "feature") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Parses every feature under `input` and checks each step against `defs`.
pub fn check(input: &Path, defs: &[Definition]) -> CheckReport {
    let mut report = CheckReport::default();
    for file in feature_files(input) {
        let shown = shown_path(&file);
        let feature = match crate::feature_file::parse(&file, &shown).and_then(|f| {
            f.expand_examples()
                .map_err(|e| format!("{shown}: failed to expand its examples: {e}"))
        }) {
            Ok(f) => f,
            Err(e) => {
                report.problems.push(e);
                continue;
            }
        };
        report.features += 1;
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let scenarios = feature
            .scenarios
            .iter()
            .chain(feature.rules.iter().flat_map(|r| &r.scenarios));
        let background: Vec<&gherkin::Step> =
            feature.background.iter().flat_map(|b| &b.steps).collect();
        for scenario in scenarios {
            report.scenarios += 1;
            for step in background.iter().copied().chain(&scenario.steps) {
                report.steps += 1;
                let at = format!("{shown}:{}", step.position.line);
                let matches: Vec<&Definition> = defs
                    .iter()
                    .filter(|d| d.kind == step.ty && d.regex.is_match(&step.value))
                    .collect();
                match matches.as_slice() {
                    [one] => {
                        report
                            .examples
                            .entry(one.location.clone())
                            .or_insert_with(|| {
                                (format!("{} {}", kind_name(step.ty), step.value), at.clone())
                            });
                        if one.pattern == SNAPSHOT_STEP {
                            report
                                .snapshots
                                .insert(snapshot_name(&stem, &scenario.name));
                        }
                    }
                    [] => report.problems.push(undefined(step, &at, defs)),
                    many => {
                        let mut msg = format!(
                            "{at}: ambiguous step `{} {}` matches {} definitions:",
                            step.keyword.trim(),
                            step.value,
                            many.len()
                        );
                        for d in many {
                            let _ = write!(
                                msg,
                                "\n    {} `{}` ({})",
                                kind_name(d.kind),
                                d.pattern,
                                d.location
                            );
                        }
                        report.problems.push(msg);
                    }
                }
            }
        }
    }
    report
}

/// The message for an undefined step: the closest definitions and a snippet.
fn undefined(step: &gherkin::Step, at: &str, defs: &[Definition]) -> String {
    let text = shape(&step.value);
    let mut ranked: Vec<(usize, &Definition)> = defs
        .iter()
        .map(|d| {
            let penalty = if d.kind == step.ty { 0 } else { 3 };
            (levenshtein(&text, &d.pattern.to_lowercase()) + penalty, d)
        })
        .collect();
    ranked.sort_by_key(|(dist, d)| (*dist, d.location.clone()));
    let mut msg = format!(
        "{at}: undefined step `{} {}`\n  closest defined steps:",
        step.keyword.trim(),
        step.value
    );
    for (_, d) in ranked.iter().take(3) {
        let _ = write!(
            msg,
            "\n    {} {}   ({})",
            kind_name(d.kind),
            d.pattern,
            d.location
        );
    }
    let (expr, params) = snippet_expr(&step.value);
    let attr = kind_name(step.ty).to_lowercase();
    let _ = write!(
        msg,
        "\n  or define it, e.g. in the steps/ file of its domain:\n    #[{attr}(expr = {expr:?})]\n    async fn new_step(world: &mut PlayWorld{params}) {{\n        todo!(\"{}\")\n    }}",
        step.value.replace('"', "'")
    );
    msg
}

/// The step text with literals replaced the way cucumber expressions name them.
fn shape(text: &str) -> String {
    snippet_expr(text).0.to_lowercase()
}

/// A cucumber expression for `text` (`"…"` → `{string}`, numbers → `{int}`) and the
/// parameters the step function needs.
fn snippet_expr(text: &str) -> (String, String) {
    let mut expr = String::new();
    let mut params = String::new();
    let mut n = 0;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '"' || c == '\'' {
            for d in chars.by_ref() {
                if d == c {
                    break;
                }
            }
            expr.push_str("{string}");
            n += 1;
            let _ = write!(params, ", arg{n}: String");
        } else if c.is_ascii_digit() && expr.chars().last().is_none_or(|p| p == ' ') {
            while chars.peek().is_some_and(char::is_ascii_digit) {
                chars.next();
            }
            expr.push_str("{int}");
            n += 1;
            let _ = write!(params, ", arg{n}: u64");
        } else {
            expr.push(c);
        }
    }
    (expr, params)
}

/// Edit distance over characters.
fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// The reference (`features/STEPS.md`): every pattern with one example and where it is defined.
pub fn reference(
    defs: &[Definition],
    examples: &std::collections::BTreeMap<String, (String, String)>,
) -> String {
    let mut out = String::from(
        "# Step vocabulary\n\nGenerated by `rocky-e2e steps` from the step definitions in `steps/`; CI checks it is current\n(`rocky-e2e steps --check features/STEPS.md`). Each example is the first use of the step in `features/`.\n",
    );
    let mut current_file = String::new();
    for d in defs {
        let file = d.location.split(':').next().unwrap_or_default().to_owned();
        if file != current_file {
            let _ = write!(
                out,
                "\n## `{file}`\n\n| step | example | defined at |\n| --- | --- | --- |\n"
            );
            current_file = file;
        }
        let example = examples
            .get(&d.location)
            .map(|(text, at)| format!("{} ({at})", code(text)))
            .unwrap_or_else(|| "— (not used by any feature)".into());
        let _ = writeln!(
            out,
            "| {} | {} | {} |",
            code(&format!("{} {}", kind_name(d.kind), d.pattern)).replace('|', "\\|"),
            example.replace('|', "\\|"),
            d.location
        );
    }
    out
}

/// Inline code that survives backticks inside the text.
fn code(text: &str) -> String {
    if text.contains('`') {
        format!("`` {text} ``")
    } else {
        format!("`{text}`")
    }
}

/// The reference text for `defs` and the features in `features`, with the problems the
/// check found there (used by `rocky-e2e steps`).
pub fn steps_reference(defs: &[Definition], features: &Path) -> (String, Vec<String>) {
    let check = check(features, defs);
    (reference(defs, &check.examples), check.problems)
}

/// `true` when `path` holds exactly the current reference.
pub fn reference_is_current(path: &Path, defs: &[Definition], features: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t == steps_reference(defs, features).0)
}
