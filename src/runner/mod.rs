//! The scenario runner shared by `cargo test` (steps/main.rs) and `rocky-e2e play`.
//!
//! Step definitions are split by domain concept: workspaces, runs, the HATCH chain, faults.
//! This file wires them to cucumber-rs: strict about skipped steps, one fresh World per
//! scenario, cleanup in the `after` hook whether the scenario passed or not.

pub mod vocabulary;

use crate::steps::world;
use crate::topology;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use cucumber::World as _;
use cucumber::event::ScenarioFinished;
use cucumber::gherkin;
use cucumber::tag::Ext as _;
use cucumber::writer::Stats as _;
use cucumber::{WriterExt as _, writer};
use futures::FutureExt as _;

pub use crate::steps::world::PlayWorld;

/// Set in `--format json` runs: harness lines then go to stderr so stdout stays JSON.
pub static STDOUT_IS_JSON: AtomicBool = AtomicBool::new(false);

/// Prints a harness line: stdout normally, stderr when stdout carries libtest JSON.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {
        if $crate::runner::STDOUT_IS_JSON.load(std::sync::atomic::Ordering::Relaxed) {
            eprintln!($($arg)*);
        } else {
            println!($($arg)*);
        }
    };
}

/// Where the features live.
pub fn features_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("features")
}

/// Where snapshots live.
pub fn snapshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("snapshots")
}

/// All tags of a scenario, its feature's included, without the `@`.
pub fn tags<'a>(feature: &'a gherkin::Feature, scenario: &'a gherkin::Scenario) -> Vec<&'a str> {
    feature
        .tags
        .iter()
        .chain(&scenario.tags)
        .map(|t| t.trim_start_matches('@'))
        .collect()
}

/// Options shared by `cargo test --test scenarios -- …` and `rocky-e2e play …`.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct RunOptions {
    /// Feature files or folders; default: the crate's `features/`.
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose tags match this expression, e.g. `@drill and not @docker`.
    #[arg(long, short = 't')]
    pub tags: Option<String>,
    /// Only scenarios whose name matches this regex.
    #[arg(long, short = 'n')]
    pub name: Option<String>,
    /// Most scenarios running at once (default 64; each has its own stack).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// Parse every feature and check every step against the vocabulary; start nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Where the JUnit XML report goes (default `target/rocky-e2e/junit.xml`).
    #[arg(long)]
    pub junit: Option<PathBuf>,
    /// `json` for libtest's JSON lines (what IDEs read); the default is readable text.
    #[arg(long, value_parser = ["pretty", "json"])]
    pub format: Option<String>,
    /// Accepted for libtest compatibility (IDEs pass it with `--format json`).
    #[arg(short = 'Z', hide = true)]
    pub unstable: Option<String>,
    /// Accepted for libtest compatibility.
    #[arg(long, hide = true)]
    pub show_output: bool,
}

/// Runs the selected scenarios; returns true when everything passed.
pub async fn run(opts: RunOptions, policy: topology::Policy) -> bool {
    let started = Instant::now();
    STDOUT_IS_JSON.store(opts.format.as_deref() == Some("json"), Ordering::Relaxed);
    let input = match input_dir(&opts.paths) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("rocky-e2e: {e}");
            return false;
        }
    };
    let defs = vocabulary::definitions();
    let check = vocabulary::check(&input.path, &defs);
    if !check.problems.is_empty() {
        eprintln!("rocky-e2e: the features do not match the step vocabulary:\n");
        for p in &check.problems {
            eprintln!("{p}\n");
        }
        eprintln!(
            "{} problem(s); nothing was started. `rocky-e2e steps` lists every defined step.",
            check.problems.len()
        );
        return false;
    }
    if opts.dry_run {
        say!(
            "dry run: {} features, {} scenarios, {} steps, all defined, none ambiguous ({:.1?}); nothing started",
            check.features,
            check.scenarios,
            check.steps,
            started.elapsed()
        );
        return true;
    }
    let tags_filter = match opts
        .tags
        .as_deref()
        .map(str::parse::<gherkin::tagexpr::TagOperation>)
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!(
                "rocky-e2e: invalid tag expression {:?}: {e}",
                opts.tags.unwrap_or_default()
            );
            return false;
        }
    };
    let name_filter = match opts.name.as_deref().map(cucumber::codegen::Regex::new) {
        None => None,
        Some(Ok(r)) => Some(r),
        Some(Err(e)) => {
            eprintln!("rocky-e2e: invalid --name regex: {e}");
            return false;
        }
    };
    let unfiltered = opts.paths.is_empty() && tags_filter.is_none() && name_filter.is_none();

    let topology = match topology::init(policy).await {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rocky-e2e: {e}");
            return false;
        }
    };
    say!("rocky-e2e {}", topology.description);
    let skip_note = topology.docker_skip_reason.clone();
    // Scenarios the topology cannot run: reported as skipped, with the reason, in JUnit too.
    let skipped: Arc<std::sync::Mutex<Vec<String>>> = Arc::default();
    let skipped_in_filter = skipped.clone();

    let junit_path = opts
        .junit
        .clone()
        .unwrap_or_else(|| topology::target_dir().join("junit.xml"));
    if let Some(dir) = junit_path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    let junit_file = match std::fs::File::create(&junit_path) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("rocky-e2e: failed to create {}: {e}", junit_path.display());
            return false;
        }
    };
    let done = Arc::new(AtomicUsize::new(0));
    let total = check.scenarios;
    // The same run with either writer; cucumber's writers are distinct types.
    macro_rules! run_with {
        ($writer:expr) => {
            PlayWorld::cucumber()
        .max_concurrent_scenarios(opts.concurrency.unwrap_or(64))
        .with_writer($writer)
        .before(|feature, _, scenario, world| {
            async move {
                world.feature = feature
                    .path
                    .as_ref()
                    .and_then(|p| p.file_stem())
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| feature.name.clone());
                world.scenario = scenario.name.clone();
                world.started = Some(Instant::now());
            }
            .boxed_local()
        })
        .after(move |_, _, _, finished, world| {
            let done = done.clone();
            async move {
                let failed = matches!(finished, ScenarioFinished::StepFailed(..));
                if let Some(world) = world {
                    world::finish(world, failed).await;
                    let n = done.fetch_add(1, Ordering::SeqCst) + 1;
                    let took = world.started.map(|s| s.elapsed()).unwrap_or_default();
                    eprintln!(
                        "[{n}/{total}] {} {} › {} ({took:.1?})",
                        if failed { "✘" } else { "✔" },
                        world.feature,
                        world.scenario
                    );
                }
            }
            .boxed_local()
        })
        .fail_on_skipped()
        .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default())
        .filter_run(input.path.clone(), move |feature, rule, scenario| {
            let selected = match (&name_filter, &tags_filter) {
                (Some(re), _) => re.is_match(&scenario.name),
                (None, Some(expr)) => expr.eval(
                    feature
                        .tags
                        .iter()
                        .chain(rule.iter().flat_map(|r| &r.tags))
                        .chain(&scenario.tags),
                ),
                (None, None) => true,
            };
            if !selected {
                return false;
            }
            let t = tags(feature, scenario);
            match &skip_note {
                Some(reason) if t.contains(&topology::DOCKER_TAG) => {
                    say!(
                        "⏭  skipped: {} › {} [@{}]: {reason}",
                        feature.name,
                        scenario.name,
                        topology::DOCKER_TAG
                    );
                    let file = feature
                        .path
                        .as_ref()
                        .map(|p| p.display().to_string())
                        .unwrap_or_default();
                    skipped_in_filter.lock().expect("skip list lock").push(format!(
                        "<testcase name=\"Scenario: {}: {file}:{}:{}\" time=\"0\"><skipped message=\"{}\"/></testcase>",
                        xml_escape(&scenario.name),
                        scenario.position.line,
                        scenario.position.col,
                        xml_escape(&format!("@{}: {reason}", topology::DOCKER_TAG)),
                    ));
                    false
                }
                _ => true,
            }
        })
        .await
        .execution_has_failed()
        };
    }
    let failed = if opts.format.as_deref() == Some("json") {
        // libtest's JSON lines (`--format json`), which IDEs read; JUnit alongside.
        run_with!(
            writer::Libtest::raw(std::io::stdout())
                .tee::<PlayWorld, _>(writer::JUnit::for_tee(junit_file, 0))
                .normalized()
        )
    } else {
        run_with!(
            writer::Basic::raw(std::io::stdout(), writer::Coloring::Auto, 0)
                .summarized()
                .tee::<PlayWorld, _>(writer::JUnit::for_tee(junit_file, 0))
                .normalized()
        )
    };
    let skipped = std::mem::take(&mut *skipped.lock().expect("skip list lock"));
    if !skipped.is_empty()
        && let Err(e) = add_skipped_to_junit(&junit_path, &skipped)
    {
        eprintln!("rocky-e2e: failed to add skipped scenarios to the JUnit report: {e}");
    }
    say!("rocky-e2e: JUnit report {}", junit_path.display());
    let mut ok = !failed;
    if unfiltered {
        let orphans = orphan_snapshots(&check.snapshots);
        if !orphans.is_empty() {
            eprintln!(
                "rocky-e2e: snapshots no scenario asserts any more (delete them, or restore their scenario):"
            );
            for o in orphans {
                eprintln!("  {}", o.display());
            }
            ok = false;
        }
    }
    ok
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// cucumber's JUnit writer never sees filtered-out scenarios; list them as skipped.
fn add_skipped_to_junit(path: &Path, cases: &[String]) -> std::io::Result<()> {
    let xml = std::fs::read_to_string(path)?;
    let suite = format!(
        "<testsuite id=\"skipped\" name=\"skipped by topology\" tests=\"{n}\" skipped=\"{n}\" errors=\"0\" failures=\"0\">{}</testsuite>",
        cases.concat(),
        n = cases.len()
    );
    let xml = match xml.rfind("</testsuites>") {
        Some(i) => format!("{}{suite}{}", &xml[..i], &xml[i..]),
        None => xml,
    };
    std::fs::write(path, xml)
}

/// Snapshot files in `snapshots/` that no scenario asserts.
fn orphan_snapshots(referenced: &std::collections::BTreeSet<String>) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(snapshots_dir()) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "snap"))
        .filter(|p| {
            p.file_stem()
                .is_some_and(|s| !referenced.contains(s.to_string_lossy().as_ref()))
        })
        .collect();
    out.sort();
    out
}

/// The folder cucumber parses: the given one, or a temporary folder of links when several
/// paths are given (cucumber takes a single input).
struct Input {
    path: PathBuf,
    _links: Option<tempfile::TempDir>,
}

fn input_dir(paths: &[PathBuf]) -> Result<Input, String> {
    for p in paths {
        if !p.exists() {
            return Err(format!("{} does not exist", p.display()));
        }
    }
    match paths {
        [] => Ok(Input {
            path: features_dir(),
            _links: None,
        }),
        [one] => Ok(Input {
            path: one.clone(),
            _links: None,
        }),
        many => {
            let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
            for (i, p) in many.iter().enumerate() {
                let abs = std::fs::canonicalize(p).map_err(|e| e.to_string())?;
                let name = format!(
                    "{i:03}-{}",
                    abs.file_name().unwrap_or_default().to_string_lossy()
                );
                std::os::unix::fs::symlink(&abs, dir.path().join(name))
                    .map_err(|e| e.to_string())?;
            }
            Ok(Input {
                path: dir.path().to_owned(),
                _links: Some(dir),
            })
        }
    }
}

/// Used by `rocky-e2e steps`: the reference text for the current code and features.
pub fn steps_reference() -> (String, Vec<String>) {
    let defs = vocabulary::definitions();
    let check = vocabulary::check(&features_dir(), &defs);
    (
        vocabulary::reference(&defs, &check.examples),
        check.problems,
    )
}

/// `true` when `path` holds exactly the current reference.
pub fn reference_is_current(path: &Path) -> bool {
    std::fs::read_to_string(path).is_ok_and(|t| t == steps_reference().0)
}
