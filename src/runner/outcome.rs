//! Each scenario's verdict over its attempts, and what a run reports from them: the JUnit file
//! (with `flakyFailure` for a pass after a failure) and the summary lines.

use std::fmt::Write as _;
use std::time::Duration;

use super::catalogue::Entry;
use super::record::Attempt;
use crate::report::detail::Detail;
use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestRerun, TestSuite};

pub use crate::report::model::FLAKY_TAG;

pub use crate::report::model::Verdict;

/// One scenario of the run.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub entry: Entry,
    /// Every attempt, in order (several with `--retries` or `--repeat`).
    pub attempts: Vec<Attempt>,
    /// Why it did not run (e.g. it needs Docker and the gate is closed).
    pub skipped: Option<String>,
    /// What its World saw on its last attempt.
    pub detail: Option<Detail>,
}

impl Outcome {
    /// Failed when its last attempt failed (or it never ran); flaky when it passed after a
    /// failure.
    pub fn verdict(&self) -> Verdict {
        if self.skipped.is_some() {
            return Verdict::Skipped;
        }
        match self.attempts.last() {
            None => Verdict::Failed,
            Some(a) if !a.passed => Verdict::Failed,
            Some(_) if self.attempts.iter().any(|a| !a.passed) => Verdict::Flaky,
            Some(_) => Verdict::Passed,
        }
    }

    /// Whether this outcome fails the run.
    pub fn fails_run(&self) -> bool {
        match self.verdict() {
            Verdict::Failed => true,
            Verdict::Flaky => !self.entry.has_tag(FLAKY_TAG),
            Verdict::Passed | Verdict::Skipped => false,
        }
    }

    pub fn duration(&self) -> Duration {
        self.attempts.iter().map(|a| a.duration).sum()
    }

    pub fn passes(&self) -> usize {
        self.attempts.iter().filter(|a| a.passed).count()
    }
}

/// The JUnit XML of a run: one testcase per scenario; a flaky one passes and carries a
/// `flakyFailure` per failed attempt (the convention nextest and Maven Surefire use).
pub fn junit(outcomes: &[Outcome], wall: Duration) -> Result<String, String> {
    junit_of_phase(outcomes, wall, None)
}

/// [`junit`] for one phase of a job (`ROCKY_E2E_PHASE`): the suite is named
/// `phase: <name>` and every case `[<name>] <feature>::<scenario>`, so a merged file (and the
/// annotations made from it) says which phase each result came from.
pub fn junit_of_phase(
    outcomes: &[Outcome],
    wall: Duration,
    phase: Option<&str>,
) -> Result<String, String> {
    let suite_name = match phase {
        Some(p) => crate::report::junit::phase_suite(p),
        None => "scenarios".to_owned(),
    };
    let mut suite = TestSuite::new(suite_name);
    suite.set_time(wall);
    for o in outcomes {
        let e = &o.entry;
        let classname = e.name.rsplit_once("::").map_or("", |(f, _)| f);
        let name = match phase {
            Some(p) => format!("[{p}] {}", e.name),
            None => e.name.clone(),
        };
        // One failed attempt as a `rerunFailure` / `flakyFailure`.
        let rerun = |a: &Attempt| {
            let mut r = TestRerun::new(NonSuccessKind::Failure);
            r.set_message(first_line(a.failure.as_deref().unwrap_or("")));
            r.set_type("scenario failed");
            r.set_system_out(a.output.as_str());
            r
        };
        let status = match o.verdict() {
            Verdict::Skipped => {
                let mut s = TestCaseStatus::skipped();
                s.set_message(o.skipped.as_deref().unwrap_or(""));
                s
            }
            Verdict::Failed => {
                let last = o.attempts.last();
                let message = last
                    .and_then(|a| a.failure.clone())
                    .unwrap_or_else(|| "the scenario did not run".into());
                let mut s = TestCaseStatus::non_success(NonSuccessKind::Failure);
                s.set_message(first_line(&message));
                s.set_type("scenario failed");
                s.set_description(last.map_or("", |a| a.output.as_str()));
                s.add_reruns(
                    o.attempts[..o.attempts.len().saturating_sub(1)]
                        .iter()
                        .map(rerun),
                );
                s
            }
            Verdict::Flaky => {
                let mut s = TestCaseStatus::success();
                s.add_reruns(o.attempts.iter().filter(|a| !a.passed).map(rerun));
                s
            }
            Verdict::Passed => TestCaseStatus::success(),
        };
        let mut case = TestCase::new(name, status);
        case.set_classname(classname);
        case.set_time(o.duration());
        case.extra
            .insert("file".into(), shown(&e.path).as_str().into());
        case.extra
            .insert("line".into(), e.line.to_string().as_str().into());
        if let Some(a) = o.attempts.last() {
            case.set_system_out(a.output.as_str());
        }
        suite.add_test_case(case);
    }
    let mut report = Report::new("rocky-e2e");
    report.set_time(wall);
    report.add_test_suite(suite);
    crate::report::junit::write(&report)
}

/// A feature file relative to the checkout when it lies inside, as reviewers read it.
pub fn shown(path: &std::path::Path) -> String {
    let root = &crate::layout::current().root;
    path.strip_prefix(root)
        .unwrap_or(path)
        .display()
        .to_string()
}

fn first_line(s: &str) -> &str {
    s.lines().next().unwrap_or("")
}

/// The summary lines printed at the end of a run.
pub fn summary(outcomes: &[Outcome], repeat: u32) -> String {
    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict() == v).count();
    let mut out = format!(
        "rocky-e2e: {} scenarios: {} passed, {} failed, {} flaky, {} skipped\n",
        outcomes.len(),
        count(Verdict::Passed),
        count(Verdict::Failed),
        count(Verdict::Flaky),
        count(Verdict::Skipped),
    );
    for o in outcomes.iter().filter(|o| o.verdict() == Verdict::Flaky) {
        let quarantined = o.entry.has_tag(FLAKY_TAG);
        let _ = writeln!(
            out,
            "  FLAKY {} (passed on attempt {} of {}){}",
            o.entry.name,
            o.attempts.len(),
            o.attempts.len(),
            if quarantined {
                ": quarantined by @flaky, the run does not fail"
            } else {
                ": fails the run (tag it @flaky to quarantine it)"
            }
        );
    }
    for o in outcomes.iter().filter(|o| o.verdict() == Verdict::Failed) {
        let _ = writeln!(out, "  FAILED {}", o.entry.name);
    }
    if repeat > 1 {
        let _ = writeln!(out, "  passes of {repeat} rounds:");
        for o in outcomes.iter().filter(|o| o.skipped.is_none()) {
            let _ = writeln!(out, "    {:>3}/{repeat}  {}", o.passes(), o.entry.name);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(tags: &[&str], passes: &[bool]) -> Outcome {
        Outcome {
            entry: Entry {
                name: "f::s <1>".into(),
                path: "f.feature".into(),
                line: 3,
                col: 3,
                tags: tags.iter().map(|t| t.to_string()).collect(),
            },
            attempts: passes
                .iter()
                .map(|&passed| Attempt {
                    passed,
                    duration: Duration::from_millis(10),
                    failure: (!passed).then(|| "Then x: boom".into()),
                    output: "block".into(),
                    ..Default::default()
                })
                .collect(),
            skipped: None,
            detail: None,
        }
    }

    #[test]
    fn a_pass_after_a_failure_is_flaky_and_fails_the_run_unless_quarantined() {
        let o = outcome(&[], &[false, true]);
        assert_eq!(o.verdict(), Verdict::Flaky);
        assert!(o.fails_run());
        assert!(!outcome(&["flaky"], &[false, true]).fails_run());
        assert_eq!(outcome(&[], &[false, false]).verdict(), Verdict::Failed);
        assert_eq!(outcome(&[], &[true]).verdict(), Verdict::Passed);
        assert_eq!(outcome(&[], &[]).verdict(), Verdict::Failed);
    }

    #[test]
    fn junit_marks_flaky_attempts_and_escapes() {
        let xml = junit(&[outcome(&[], &[false, true])], Duration::from_secs(1)).unwrap();
        assert!(
            xml.contains("<flakyFailure message=\"Then x: boom\""),
            "{xml}"
        );
        assert!(xml.contains("name=\"f::s &lt;1&gt;\""), "{xml}");
        assert!(xml.contains("failures=\"0\""), "{xml}");
        let failed = junit(&[outcome(&[], &[false, false])], Duration::from_secs(1)).unwrap();
        assert!(
            failed.contains("<failure message=\"Then x: boom\""),
            "{failed}"
        );
        assert!(failed.contains("<rerunFailure"), "{failed}");
    }
}
