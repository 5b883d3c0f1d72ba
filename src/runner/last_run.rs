//! What the last run of this checkout concluded about each scenario, kept in
//! `target/rocky-e2e/last-run.json` for `--last-failed` (Playwright's `.last-run.json` is the
//! model): every run writes the verdicts of the scenarios it ran; `--last-failed` selects the
//! ones that failed or were flaky.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::outcome::{Outcome, Verdict};

/// The file's name under `target/rocky-e2e/`.
pub const FILE: &str = "last-run.json";

/// The last run's verdicts, by scenario test name (`features/x.feature::scenario`).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastRun {
    pub verdicts: BTreeMap<String, Verdict>,
}

impl LastRun {
    /// The verdicts of a run's outcomes.
    pub fn of(outcomes: &[Outcome]) -> LastRun {
        LastRun {
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
        std::fs::write(&file, "[").unwrap();
        assert!(read(&file).unwrap_err().contains("is not a last-run file"));
    }
}
