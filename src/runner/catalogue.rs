//! Every scenario as one named test, listed without running anything: what nextest lists,
//! shards split, and `--exact` runs. A name is the feature file's path under `features/`
//! (`failure_drill`, `sub::x`) and the scenario's name, joined by `::`; an outline row's name
//! is its expanded name (or `#K` when the outline's name has no placeholder). Names are unique
//! or the catalogue refuses to list.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use cucumber::feature::Ext as _;
use cucumber::gherkin;

/// One test: a scenario, or one row of a Scenario Outline.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The stable, unique test name.
    pub name: String,
    /// The feature file (canonical), where cucumber finds it.
    pub path: PathBuf,
    /// The scenario's (or outline row's) position after expansion: its identity in the file.
    pub line: usize,
    pub col: usize,
    /// Tags of the feature, rule, scenario and examples, without `@`.
    pub tags: Vec<String>,
}

impl Entry {
    /// Whether the scenario carries `tag` (without `@`).
    pub fn has_tag(&self, tag: &str) -> bool {
        self.tags.iter().any(|t| t == tag)
    }

    /// What identifies the scenario in cucumber's events.
    pub fn key(&self) -> Key {
        (self.path.clone(), self.line, self.col)
    }
}

/// (feature file, line, column) of a scenario as cucumber reports it.
pub type Key = (PathBuf, usize, usize);

/// The key of a scenario in a parsed feature.
pub fn key_of(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> Key {
    let path = feature
        .path
        .as_ref()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .unwrap_or_default();
    (path, scenario.position.line, scenario.position.col)
}

/// Every scenario of the `.feature` files under each of `inputs` (files or folders), in file
/// order. Names are relative to `features_dir` when a file lies under it.
pub fn catalogue(inputs: &[PathBuf], features_dir: &Path) -> Result<Vec<Entry>, String> {
    let mut files = Vec::new();
    for input in inputs {
        let input =
            std::fs::canonicalize(input).map_err(|e| format!("{}: {e}", input.display()))?;
        if input.is_dir() {
            walk(&input, &mut files).map_err(|e| format!("{}: {e}", input.display()))?;
        } else {
            files.push(input);
        }
    }
    files.sort();
    files.dedup();
    let mut out = Vec::new();
    for file in files {
        let feature = crate::feature_file::parse(&file, &file.display().to_string())?;
        let before = out.len();
        let prefix = test_prefix(&file, features_dir);
        let groups = std::iter::once((None, &feature.scenarios))
            .chain(feature.rules.iter().map(|r| (Some(r), &r.scenarios)));
        for (rule, scenarios) in groups {
            for scenario in scenarios {
                let expanded_all = expand(&feature, scenario)?;
                if expanded_all.is_empty() {
                    return Err(format!(
                        "{}:{}: the outline {:?} has no Examples row, so it would run nothing: give its Examples a row under the header",
                        file.display(),
                        scenario.position.line,
                        scenario.name.trim()
                    ));
                }
                for (row, expanded) in expanded_all.into_iter().enumerate() {
                    let mut name = prefix.clone();
                    if let Some(r) = rule {
                        name.push_str("::");
                        name.push_str(r.name.trim());
                    }
                    name.push_str("::");
                    name.push_str(expanded.name.trim());
                    if !scenario.examples.is_empty() && expanded.name == scenario.name {
                        name.push_str(&format!(" #{}", row + 1));
                    }
                    let tags = feature
                        .tags
                        .iter()
                        .chain(rule.iter().flat_map(|r| &r.tags))
                        .chain(&expanded.tags)
                        .map(|t| t.trim_start_matches('@').to_owned())
                        .collect();
                    out.push(Entry {
                        name,
                        path: file.clone(),
                        line: expanded.position.line,
                        col: expanded.position.col,
                        tags,
                    });
                }
            }
        }
        if out.len() == before {
            return Err(format!(
                "{}:{}: the feature {:?} holds no scenario, so nothing of it would run: a file a run is given must hold at least one",
                file.display(),
                feature.position.line,
                feature.name.trim()
            ));
        }
    }
    let mut seen = HashSet::new();
    let mut files = std::collections::HashMap::new();
    for e in &out {
        if !seen.insert(e.name.as_str()) {
            return Err(format!(
                "two scenarios are both named {:?} ({}:{}): scenario names must be unique within a feature (put a <placeholder> in an outline's name)",
                e.name,
                e.path.display(),
                e.line
            ));
        }
        // Each scenario keeps its HATCH checkpoint in a file named after it.
        let file = crate::chain::seal_check::file_name(&e.name);
        if let Some(other) = files.insert(file.clone(), e) {
            return Err(format!(
                "scenarios {:?} ({}:{}) and {:?} ({}:{}) differ only in characters a file name cannot hold, so their HATCH checkpoints would share one file ({file}…seal): name them apart in letters, digits, `-`, `_` or `.`",
                other.name,
                other.path.display(),
                other.line,
                e.name,
                e.path.display(),
                e.line
            ));
        }
    }
    Ok(out)
}

/// `features/sub/x.feature` → `sub::x`; a file elsewhere → its stem.
fn test_prefix(file: &Path, features_dir: &Path) -> String {
    let features_dir = std::fs::canonicalize(features_dir).unwrap_or_else(|_| features_dir.into());
    match file.strip_prefix(&features_dir) {
        Ok(rel) => rel
            .with_extension("")
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("::"),
        Err(_) => file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default(),
    }
}

/// The scenario itself, or its outline rows, expanded exactly as cucumber expands them.
fn expand(
    feature: &gherkin::Feature,
    scenario: &gherkin::Scenario,
) -> Result<Vec<gherkin::Scenario>, String> {
    if scenario.examples.is_empty() {
        return Ok(vec![scenario.clone()]);
    }
    let mut one = feature.clone();
    one.rules.clear();
    one.scenarios = vec![scenario.clone()];
    one.expand_examples()
        .map(|f| f.scenarios)
        .map_err(|e| e.to_string())
}

/// `*.feature` files under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path
            .extension()
            .is_some_and(|x| x.eq_ignore_ascii_case("feature"))
        {
            out.push(path);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = dir.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        dir
    }

    #[test]
    fn names_are_path_and_scenario_and_outline_rows_expand() {
        let dir = dir_with(&[
            (
                "a.feature",
                "Feature: A\n  @x\n  Scenario: one\n    Given g\n",
            ),
            (
                "sub/b.feature",
                "Feature: B\n  Scenario Outline: case <n>\n    Given <n>\n\n    Examples:\n      | n |\n      | 1 |\n      | 2 |\n",
            ),
        ]);
        let all = catalogue(&[dir.path().to_owned()], dir.path()).unwrap();
        let names: Vec<_> = all.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a::one", "sub::b::case 1", "sub::b::case 2"]);
        assert!(all[0].has_tag("x"));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = dir_with(&[(
            "f.feature",
            "Feature: F\n  Scenario: same\n    Given a\n  Scenario: same\n    Given b\n",
        )]);
        let err = catalogue(&[dir.path().to_owned()], dir.path()).unwrap_err();
        assert!(err.contains("\"f::same\""), "{err}");
    }

    /// Bug: each of these ran nothing and the run was green ("0 scenarios: 0 passed"): a file
    /// with CR-only line ends (its scenarios read as the feature's title), a feature without a
    /// scenario, and an outline whose Examples have no row.
    #[test]
    fn a_file_that_would_run_nothing_is_refused_naming_its_line() {
        for (text, line, reason) in [
            (
                "Feature: cr\r  Scenario: y\r    Given a rocky stack\r",
                1,
                "carriage return without a line feed",
            ),
            (
                "Feature: ok\n  Scenario: x\n    Given a\r\n  Scenario: y\r    Given b\n",
                4,
                "carriage return without a line feed",
            ),
            (
                "# a comment\nFeature: empty\n  Some words.\n",
                2,
                "holds no scenario",
            ),
            (
                "Feature: F\n\n  Scenario Outline: case <n>\n    Given <n>\n\n    Examples:\n      | n |\n",
                3,
                "has no Examples row",
            ),
        ] {
            let dir = dir_with(&[("f.feature", text)]);
            let err = catalogue(&[dir.path().to_owned()], dir.path()).unwrap_err();
            assert!(
                err.contains(&format!("f.feature:{line}: ")) && err.contains(reason),
                "{text:?}: {err}"
            );
        }
        // CRLF line ends are fine.
        let dir = dir_with(&[(
            "f.feature",
            "Feature: ok\r\n  Scenario: x\r\n    Given a\r\n",
        )]);
        assert_eq!(
            catalogue(&[dir.path().to_owned()], dir.path())
                .unwrap()
                .len(),
            1
        );
    }

    /// Bug: `a b` and `a/b` both kept their checkpoint in `f--a-b--….seal`, so one of them
    /// silently lost it.
    #[test]
    fn names_that_would_share_a_checkpoint_file_are_refused() {
        let dir = dir_with(&[(
            "f.feature",
            "Feature: F\n  Scenario: a b\n    Given a\n  Scenario: a/b\n    Given b\n",
        )]);
        let err = catalogue(&[dir.path().to_owned()], dir.path()).unwrap_err();
        for needle in [
            "\"f::a b\"",
            "f.feature:2",
            "\"f::a/b\"",
            "f.feature:4",
            "f--a-b",
        ] {
            assert!(err.contains(needle), "{needle} not in {err}");
        }
    }
}
