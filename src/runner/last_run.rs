//! What the last run of this checkout concluded about each scenario, kept in
//! `target/rocky-e2e/last-run.json` for `--last-failed` (Playwright's `.last-run.json` is the
//! model): every run writes the paths it was given and the verdicts of the scenarios it ran;
//! `--last-failed` reads those paths again (when given none) and selects the scenarios that
//! failed or were flaky.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::outcome::{Outcome, Verdict};

/// The file's name under `target/rocky-e2e/`.
pub const FILE: &str = "last-run.json";

/// The last run's paths and verdicts.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastRun {
    /// The files and folders the run was given, canonical; none: the whole features folder
    /// (and a file written before paths were recorded).
    #[serde(default)]
    pub paths: Vec<PathBuf>,
    /// By scenario test name (`x::scenario` for `features/x.feature`).
    pub verdicts: BTreeMap<String, Verdict>,
}

impl LastRun {
    /// The paths a run was given and the verdicts of its outcomes.
    pub fn of(paths: &[PathBuf], outcomes: &[Outcome]) -> LastRun {
        LastRun {
            paths: paths
                .iter()
                .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
                .collect(),
            verdicts: outcomes
                .iter()
                .map(|o| (o.entry.name.clone(), o.verdict()))
                .collect(),
        }
    }

    /// The scenarios to run again: those that failed or were flaky.
    pub fn to_rerun(&self) -> Vec<&str> {
        self.verdicts
            .iter()
            .filter(|(_, v)| matches!(v, Verdict::Failed | Verdict::Flaky))
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Where the last run's verdicts are.
pub fn path() -> PathBuf {
    crate::layout::target_dir().join(FILE)
}

/// Reads the last run's verdicts; no file is no last run (`None`), a malformed one an error.
pub fn read(path: &Path) -> Result<Option<LastRun>, String> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{} is not a last-run file: {e}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("failed to read {}: {e}", path.display())),
    }
}

/// Writes this run's verdicts (a later `--last-failed` reads them).
pub fn write(path: &Path, last: &LastRun) -> Result<(), String> {
    let text = serde_json::to_string_pretty(last).expect("verdicts serialise");
    std::fs::write(path, text + "\n")
        .map_err(|e| format!("failed to write {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_and_flaky_are_rerun_passed_and_skipped_are_not() {
        let last = LastRun {
            paths: vec![PathBuf::from("/elsewhere/ext.feature")],
            verdicts: [
                ("a::failed", Verdict::Failed),
                ("b::flaky", Verdict::Flaky),
                ("c::passed", Verdict::Passed),
                ("d::skipped", Verdict::Skipped),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect(),
        };
        assert_eq!(last.to_rerun(), ["a::failed", "b::flaky"]);
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE);
        assert_eq!(read(&file), Ok(None));
        write(&file, &last).unwrap();
        assert_eq!(read(&file), Ok(Some(last)));
        // A file from before the paths were recorded: the whole features folder.
        std::fs::write(&file, r#"{"verdicts":{"a::failed":"failed"}}"#).unwrap();
        let old = read(&file).unwrap().unwrap();
        assert!(old.paths.is_empty());
        assert_eq!(old.to_rerun(), ["a::failed"]);
        std::fs::write(&file, "[").unwrap();
        assert!(read(&file).unwrap_err().contains("is not a last-run file"));
    }
}
