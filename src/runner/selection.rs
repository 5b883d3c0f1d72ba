//! Which scenarios a run selects: everything under its inputs (the current checkout's
//! `features/` or the paths given), then the tag filter, `--last-failed` and the shard.

use std::collections::BTreeSet;
use std::path::PathBuf;

use super::catalogue::{self, Entry};
use super::options::{RunOptions, Selection};
use super::{last_run, shard};
use cucumber::gherkin;
use cucumber::tag::Ext as _;

/// Whether this process runs one test for cargo-nextest.
pub fn under_nextest() -> bool {
    std::env::var_os("NEXTEST").is_some()
}

/// The scenarios a run selects: everything under its inputs, then its filters and shard.
pub struct Plan {
    /// The files and folders cucumber reads (none: the features folder): those given, or
    /// with `--last-failed` and none given, the last run's.
    pub paths: Vec<PathBuf>,
    /// Every scenario of the inputs (what nextest lists).
    pub all: Vec<Entry>,
    /// The ones to run.
    pub selected: Vec<Entry>,
    /// Whether the whole of `features/` was read (the orphan-snapshot check needs it).
    pub whole_suite: bool,
    /// With `--last-failed` and nothing to run again: why (the run then starts nothing).
    pub nothing_failed: Option<String>,
    /// With `--shard`: the packing's longest shard ÷ the ideal (1.0 is perfect), by the
    /// durations given (every scenario weighs 1 without them).
    pub packing: Option<f64>,
}

/// Resolves the layout and the catalogue, and applies the options' filters.
pub fn plan(opts: &RunOptions, selection: &Selection) -> Result<Plan, String> {
    let (paths, words): (Vec<PathBuf>, Vec<PathBuf>) =
        opts.paths.iter().cloned().partition(|p| p.exists());
    let words: Vec<String> = words
        .iter()
        .map(|w| w.to_string_lossy().into_owned())
        .collect();
    if let Some(missing) = words
        .iter()
        .find(|w| w.contains('/') || w.ends_with(".feature"))
    {
        return Err(format!("{missing} does not exist"));
    }
    let features_dir = opts.features_dir.as_deref();
    let layout = crate::layout::set(if opts.dry_run {
        crate::layout::Layout::resolve_for_check(features_dir, &paths)?
    } else {
        crate::layout::Layout::resolve_for(features_dir, &paths)?
    });
    // With --last-failed: the last run, and its paths when none are given now (a failed
    // scenario outside features/ is found where it ran).
    let last = match opts.last_failed {
        false => None,
        true => {
            let file = last_run::path();
            match last_run::read(&file)? {
                Some(last) => Some((file, last)),
                None => {
                    return Err(format!(
                        "--last-failed: no last run is recorded for this checkout ({} does not exist): run `rocky-e2e play` first; nothing was run",
                        file.display()
                    ));
                }
            }
        }
    };
    let given = !paths.is_empty();
    let (run_paths, gone): (Vec<PathBuf>, Vec<PathBuf>) = match &last {
        Some((_, last)) if !given => last.paths.iter().cloned().partition(|p| p.exists()),
        _ => (paths.clone(), Vec::new()),
    };
    let inputs = match (run_paths.is_empty(), gone.is_empty()) {
        (true, true) => vec![layout.features.clone()],
        _ => run_paths.clone(),
    };
    let all = catalogue::catalogue(&inputs, &layout.features)?;
    let tags = match opts.tags.as_deref() {
        None => None,
        Some(t) => Some(
            t.parse::<gherkin::tagexpr::TagOperation>()
                .map_err(|e| format!("invalid tag expression {t:?}: {e}"))?,
        ),
    };
    let name = match opts.name.as_deref() {
        None => None,
        Some(n) => Some(
            cucumber::codegen::Regex::new(n).map_err(|e| format!("invalid --name regex: {e}"))?,
        ),
    };
    let mut selected: Vec<Entry> = all
        .iter()
        .filter(|e| match selection {
            Selection::All => true,
            Selection::Exact(n) => &e.name == n,
        })
        .filter(|e| words.is_empty() || words.iter().any(|w| e.name.contains(w.as_str())))
        .filter(|e| {
            // gherkin keeps tags without their `@`, as the catalogue does.
            tags.as_ref().is_none_or(|t| t.eval(e.tags.iter()))
        })
        .filter(|e| {
            name.as_ref()
                .is_none_or(|re| re.is_match(e.name.rsplit_once("::").map_or("", |(_, s)| s)))
        })
        .cloned()
        .collect();
    if let Selection::Exact(n) = selection
        && selected.is_empty()
    {
        return Err(format!("no scenario is named {n:?}"));
    }
    if selected.is_empty() && (!words.is_empty() || tags.is_some() || name.is_some()) {
        // A filter that selects nothing is a typo, not a green run.
        return Err(format!(
            "no scenario matches the filters (tags {:?}, name {:?}, words {words:?}) among {} scenarios",
            opts.tags.as_deref().unwrap_or("-"),
            opts.name.as_deref().unwrap_or("-"),
            all.len()
        ));
    }
    let mut nothing_failed = None;
    if let Some((file, last)) = &last {
        let rerun: BTreeSet<&str> = last.to_rerun().into_iter().collect();
        if !given {
            // Read where the last run read: a scenario missing there was renamed or removed,
            // and a rerun that skips it would pass having rerun less than what failed.
            let known: BTreeSet<&str> = all.iter().map(|e| e.name.as_str()).collect();
            let missing: Vec<&str> = rerun.difference(&known).copied().collect();
            if !missing.is_empty() {
                let shown = |ps: &[PathBuf]| {
                    ps.iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                return Err(format!(
                    "--last-failed: {} scenario(s) that failed or were flaky in the last run are not in {}{} any more: {}; nothing was run (give paths to rerun the failed scenarios still there, or run `rocky-e2e play` to record a new last run)",
                    missing.len(),
                    shown(&inputs),
                    if gone.is_empty() {
                        String::new()
                    } else {
                        format!(" ({} no longer exists)", shown(&gone))
                    },
                    missing.join(", ")
                ));
            }
        }
        selected.retain(|e| rerun.contains(e.name.as_str()));
        if selected.is_empty() {
            nothing_failed = Some(if rerun.is_empty() {
                format!(
                    "--last-failed: no scenario failed or was flaky in the last run ({}): nothing to run",
                    file.display()
                )
            } else {
                format!(
                    "--last-failed: the scenarios that failed last time ({}) are not among those selected now: nothing to run",
                    rerun.into_iter().collect::<Vec<_>>().join(", ")
                )
            });
        }
    }
    let mut packing = None;
    if let Some(shard) = opts.shard {
        let durations = match &opts.durations {
            Some(p) => shard::read_durations(p)?,
            None => shard::Durations::new(),
        };
        packing = Some(shard::packing_ratio(&selected, shard.count, &durations));
        selected = shard::select(selected, shard, &durations);
    }
    Ok(Plan {
        paths: run_paths,
        all,
        selected,
        whole_suite: paths.is_empty() && !opts.last_failed,
        nothing_failed,
        packing,
    })
}
