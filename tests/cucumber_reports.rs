//! The Cucumber Messages (`messages.ndjson`) and Cucumber JSON (`cucumber.json`) reports of
//! real runs, read as their consumers read them: `rocky-e2e play` on a checkout of its own (a
//! temporary folder, on the embedded topology) with a passing, a failing (a HATCH chain gap)
//! and a skipped (`@docker`) scenario, in two phases (`ROCKY_E2E_PHASE=one` runs all three,
//! `two` the passing one again).
//!
//! - Every line of phase one's and of the merged `messages.ndjson` must match the official
//!   schema (cucumber/messages v34.2.0, vendored in `tests/fixtures/cucumber-messages/`,
//!   checked with PyPI `jsonschema`) and be read by PyPI `cucumber-messages` 34.2.0.
//! - `cucumber.json` is checked for its structure here, and read by two PyPI consumers:
//!   `cucumber-json-aggregator`'s loader (strict: any warning fails) and
//!   `cucumber-json-to-junit-xml`. All four files are read in one Python process
//!   (`tests/fixtures/cucumber-messages/check.py`), so each consumer's import is paid once.
//! - The merged set at `target/rocky-e2e/` holds every scenario of both phases, in both files.
//! - Each phase keeps its scenarios' HATCH checkpoints beside its reports
//!   (`phases/<phase>/checkpoints/`): phase two's run of a scenario does not overwrite phase
//!   one's checkpoint of it, and the merged set shows both (`checkpoints/<phase>/`).
//!
//! The consumers run in a Python virtualenv: `ROCKY_E2E_PYTHON`, else `<target dir>/py`, made
//! and given the pinned consumers from PyPI on first use (`.ci/run` makes it beforehand). When
//! that cannot be done (no `python3 -m venv`, no PyPI) the test says why and passes, except
//! under `ROCKY_E2E=1` (the required job), where a missing consumer fails the test.

use crate::support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const FEATURE: &str = "@e2e
Feature: two
  # one passes, one fails with a gap report, one needs Docker
  Scenario: a workspace comes and goes
    Given a rocky stack
    When I provision workspace \"a\" on tier \"solo\"
    Then workspace \"a\" is ready
    When I tear down workspace \"a\"
    Then nothing of workspace \"a\" remains

  @gap
  Scenario: a chain with a gap
    Given a rocky stack
    When I provision workspace \"b\" on tier \"solo\"
    Then the HATCH chain of workspace \"b\" is exactly \"hearth.provisioning_started → hearth.decommissioned\"
    When I tear down workspace \"b\"

  @docker
  Scenario: only on Docker
    Given a rocky stack
";

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The consumers, pinned: what `.ci/run` installs, and what this test installs itself into
/// `<target dir>/py` when neither that nor `ROCKY_E2E_PYTHON` has them.
const CONSUMERS: &[&str] = &[
    "jsonschema==4.26.0",
    "cucumber-messages==34.2.0",
    "cucumber-json-aggregator==0.1.0",
    "cucumber-json-to-junit-xml==0.0.10",
];

/// The virtualenv's Python, or why there is none. Without `ROCKY_E2E_PYTHON`, a virtualenv at
/// `<target dir>/py` is made and the pinned consumers installed from PyPI on first use, so the
/// README's test command needs no step of its own.
fn python() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("ROCKY_E2E_PYTHON") {
        let p = PathBuf::from(p);
        return if p.is_file() {
            Ok(p)
        } else {
            Err(format!("ROCKY_E2E_PYTHON={} is no file", p.display()))
        };
    }
    static INSTALLED: std::sync::Mutex<Option<Result<PathBuf, String>>> =
        std::sync::Mutex::new(None);
    let mut installed = INSTALLED.lock().unwrap_or_else(|e| e.into_inner());
    installed.get_or_insert_with(install).clone()
}

fn install() -> Result<PathBuf, String> {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest().join("target"));
    let venv = target.join("py");
    let py = venv.join("bin/python3");
    let run = |what: &str, cmd: &mut Command| -> Result<(), String> {
        let out = cmd.output().map_err(|e| format!("failed to {what}: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "failed to {what} ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    };
    if !py.is_file() {
        run(
            &format!("make a virtualenv at {}", venv.display()),
            Command::new("python3").arg("-m").arg("venv").arg(&venv),
        )?;
    }
    // pip checking pins it already holds costs 1.5 s of CPU a run: a marker written after an
    // install names the pins the virtualenv holds, and pip runs only when they differ.
    let marker = venv.join("rocky-e2e-consumers.txt");
    let pins = CONSUMERS.join("\n");
    if std::fs::read_to_string(&marker).ok().as_deref() != Some(pins.as_str()) {
        run(
            &format!("install {} into {}", CONSUMERS.join(" "), venv.display()),
            Command::new(venv.join("bin/pip"))
                .args(["install", "--quiet", "--disable-pip-version-check"])
                .args(CONSUMERS),
        )?;
        std::fs::write(&marker, &pins)
            .map_err(|e| format!("failed to write {}: {e}", marker.display()))?;
    }
    Ok(py)
}

/// Runs the consumer script on `files` (each read by its kind, in one Python process): each
/// file's summary, by file; `Err` when a consumer is not installed.
fn consume(python: &Path, schema: &Path, files: &[&Path]) -> Result<Value, String> {
    let script = manifest().join("tests/fixtures/cucumber-messages/check.py");
    let out = Command::new(python)
        .arg(&script)
        .arg(schema)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    match out.status.code() {
        Some(0) => Ok(serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "{} printed no summary ({e}):\n{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout)
            )
        })),
        Some(3) => Err(stderr.trim().to_owned()),
        _ => panic!("a consumer refused one of {files:?}:\n{stderr}"),
    }
}

/// The gate: under `ROCKY_E2E=1` a missing consumer fails, elsewhere it is reported.
fn consumer_missing(why: &str) {
    if std::env::var("ROCKY_E2E").is_ok_and(|v| v == "1") {
        panic!("ROCKY_E2E=1: the report consumers must be installed: {why}");
    }
    eprintln!("cucumber_reports: consumers not checked: {why}");
}

struct Checkout {
    _dir: tempfile::TempDir,
    bin: PathBuf,
    root: PathBuf,
}

impl Checkout {
    fn new() -> Checkout {
        let dir = tempfile::tempdir().unwrap();
        let bin = support::install_binaries(dir.path());
        let root = dir.path().join("checkout");
        support::seed_standin_cache(&root);
        let features = root.join("features");
        std::fs::create_dir_all(features.join("tiers")).unwrap();
        for tier in std::fs::read_dir(manifest().join("features/tiers")).unwrap() {
            let tier = tier.unwrap();
            std::fs::copy(tier.path(), features.join("tiers").join(tier.file_name())).unwrap();
        }
        std::fs::write(features.join("two.feature"), FEATURE).unwrap();
        Checkout {
            _dir: dir,
            bin,
            root,
        }
    }

    /// `rocky-e2e play ARGS` as phase `phase`, on the embedded topology; whether it passed.
    fn play(&self, phase: &str, args: &[&str]) -> bool {
        let (out, text) = support::run(
            support::embedded(&self.bin.join("rocky-e2e"), &self.root)
                .env("ROCKY_E2E_PHASE", phase)
                .arg("play")
                .args(args),
        );
        assert!(
            text.contains("topology: embedded"),
            "phase {phase} did not run embedded:\n{text}"
        );
        out.status.success()
    }

    fn reports(&self) -> PathBuf {
        self.root.join("target/rocky-e2e")
    }
}

/// Every envelope of a `messages.ndjson`, each line JSON.
fn envelopes(file: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", file.display()));
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{}:{}: not JSON ({e}): {l}", file.display(), i + 1))
        })
        .collect()
}

fn of_kind<'a>(envelopes: &'a [Value], kind: &str) -> Vec<&'a Value> {
    envelopes.iter().filter_map(|e| e.get(kind)).collect()
}

/// What the stream must hold whatever reads it: the order cucumber writes, unique ids, every
/// reference resolved, `rocky-e2e` as the implementation; the pickles' names.
fn check_stream(file: &Path) -> Vec<String> {
    let all = envelopes(file);
    let kinds: Vec<&str> = all
        .iter()
        .map(|e| e.as_object().unwrap().keys().next().unwrap().as_str())
        .collect();
    assert_eq!(kinds.first(), Some(&"meta"), "{}", file.display());
    assert_eq!(kinds.last(), Some(&"testRunFinished"), "{}", file.display());
    assert_eq!(
        all[0]["meta"]["implementation"]["name"],
        "rocky-e2e",
        "{}",
        file.display()
    );
    let ids = |kind: &str| -> BTreeSet<String> {
        let list: Vec<String> = of_kind(&all, kind)
            .iter()
            .map(|v| v["id"].as_str().unwrap().to_owned())
            .collect();
        let set: BTreeSet<String> = list.iter().cloned().collect();
        assert_eq!(
            set.len(),
            list.len(),
            "{}: duplicate {kind} ids",
            file.display()
        );
        set
    };
    let pickles = ids("pickle");
    let cases = ids("testCase");
    let started = ids("testCaseStarted");
    let mut steps = BTreeMap::new();
    for c in of_kind(&all, "testCase") {
        assert!(pickles.contains(c["pickleId"].as_str().unwrap()), "{c}");
        for s in c["testSteps"].as_array().unwrap() {
            steps.insert(s["id"].as_str().unwrap().to_owned(), ());
        }
    }
    for s in of_kind(&all, "testCaseStarted") {
        assert!(cases.contains(s["testCaseId"].as_str().unwrap()), "{s}");
    }
    for kind in ["testStepStarted", "testStepFinished"] {
        for s in of_kind(&all, kind) {
            assert!(
                started.contains(s["testCaseStartedId"].as_str().unwrap()),
                "{s}"
            );
            assert!(steps.contains_key(s["testStepId"].as_str().unwrap()), "{s}");
        }
    }
    assert_eq!(
        of_kind(&all, "testCaseFinished").len(),
        started.len(),
        "{}: every attempt finishes",
        file.display()
    );
    of_kind(&all, "pickle")
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_owned())
        .collect()
}

/// The scenario elements of a `cucumber.json`, after checking every step's structure.
fn check_cucumber_json(file: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(file)
        .unwrap_or_else(|e| panic!("failed to read {}: {e}", file.display()));
    let doc: Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
    let mut out = Vec::new();
    for f in doc.as_array().expect("an array of features") {
        for key in ["uri", "name", "keyword", "id"] {
            assert!(
                f[key].is_string(),
                "{}: feature without {key}",
                file.display()
            );
        }
        for e in f["elements"].as_array().expect("elements") {
            assert!(e["line"].is_u64() && e["type"].is_string(), "{e}");
            let mut statuses = Vec::new();
            for s in e["steps"].as_array().expect("steps") {
                assert!(
                    s["keyword"].is_string() && s["name"].is_string() && s["line"].is_u64(),
                    "{}: a step without keyword, name or line: {s}",
                    file.display()
                );
                let status = s["result"]["status"].as_str().expect("result.status");
                assert!(s["result"]["duration"].is_u64(), "duration in ns: {s}");
                if status == "failed" {
                    assert!(s["result"]["error_message"].is_string(), "{s}");
                }
                statuses.push(status.to_owned());
            }
            if e["type"] == "scenario" {
                assert!(e["tags"].is_array() && e["id"].is_string(), "{e}");
                out.push((e["name"].as_str().unwrap().to_owned(), statuses));
            }
        }
    }
    out
}

#[test]
fn messages_and_cucumber_json_of_two_phases_are_valid_and_merged() {
    let checkout = Checkout::new();
    assert!(
        !checkout.play("one", &[]),
        "phase one passed, though a scenario has a gap"
    );
    assert!(
        checkout.play("two", &["--name", "comes and goes"]),
        "phase two failed"
    );
    let reports = checkout.reports();
    let one = reports.join("phases/one");

    // Phase one: each scenario a pickle, its steps' results as they ran.
    let names = check_stream(&one.join("messages.ndjson"));
    assert_eq!(
        names,
        [
            "a workspace comes and goes",
            "a chain with a gap",
            "only on Docker"
        ]
    );
    let all = envelopes(&one.join("messages.ndjson"));
    let results: Vec<&str> = of_kind(&all, "testStepFinished")
        .iter()
        .map(|f| f["testStepResult"]["status"].as_str().unwrap())
        .collect();
    // 5 steps + the after hook; 3 steps ran (the third failed), 1 skipped, the hook; the
    // @docker one skipped whole.
    assert_eq!(
        results,
        [
            "PASSED", "PASSED", "PASSED", "PASSED", "PASSED", "PASSED", // passes
            "PASSED", "PASSED", "FAILED", "SKIPPED", "PASSED", // the gap
            "SKIPPED", "SKIPPED", // @docker
        ]
    );
    let attachments: Vec<&str> = of_kind(&all, "attachment")
        .iter()
        .map(|a| a["fileName"].as_str().unwrap())
        .collect();
    assert_eq!(
        attachments,
        ["hatch-chain.txt", "hatch-chain.txt", "gap-report.txt"]
    );
    assert_eq!(all.last().unwrap()["testRunFinished"]["success"], false);
    let scenarios = check_cucumber_json(&one.join("cucumber.json"));
    assert_eq!(
        scenarios,
        [
            (
                "a workspace comes and goes".to_owned(),
                vec!["passed".to_owned(); 5]
            ),
            (
                "a chain with a gap".to_owned(),
                ["passed", "passed", "failed", "skipped"]
                    .map(String::from)
                    .to_vec()
            ),
            ("only on Docker".to_owned(), vec!["skipped".to_owned()]),
        ]
    );

    // The merged set: every scenario of both phases, phase one's first, each id and (in
    // cucumber.json, as in the merged JUnit) each name carrying its phase.
    let merged_names = check_stream(&reports.join("messages.ndjson"));
    assert_eq!(
        merged_names,
        [
            "a workspace comes and goes",
            "a chain with a gap",
            "only on Docker",
            "a workspace comes and goes"
        ],
        "the merged messages.ndjson lacks a phase's scenarios"
    );
    let merged = envelopes(&reports.join("messages.ndjson"));
    let pickle_ids: Vec<&str> = of_kind(&merged, "pickle")
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert!(
        pickle_ids[0].contains("one/") && pickle_ids[3].contains("two/"),
        "{pickle_ids:?}"
    );
    let merged_json: Vec<String> = check_cucumber_json(&reports.join("cucumber.json"))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        merged_json,
        [
            "[one] a workspace comes and goes",
            "[one] a chain with a gap",
            "[one] only on Docker",
            "[two] a workspace comes and goes"
        ],
        "the merged cucumber.json lacks a phase's scenarios"
    );

    // The HATCH checkpoints (contract §2), kept beside each phase's reports: phase two ran
    // "a workspace comes and goes" again and must not overwrite phase one's checkpoint of it;
    // the merged set shows both phases', apart.
    let seals = |dir: &Path| -> BTreeMap<String, Vec<u8>> {
        std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("no checkpoints at {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "seal"))
            .map(|p| {
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                (name, std::fs::read(&p).unwrap())
            })
            .collect()
    };
    let one_seals = seals(&one.join("checkpoints"));
    let two_seals = seals(&reports.join("phases/two/checkpoints"));
    // Phase one: the two scenarios that had a stack (the @docker one was skipped).
    assert_eq!(one_seals.len(), 2, "{:?}", one_seals.keys());
    assert_eq!(two_seals.len(), 1, "{:?}", two_seals.keys());
    let (again, two_seal) = two_seals.iter().next().unwrap();
    assert!(
        again.contains("comes-and-goes"),
        "phase two's checkpoint is of another scenario: {again}"
    );
    let one_seal = one_seals
        .get(again)
        .unwrap_or_else(|| panic!("phase one kept no {again}: {:?}", one_seals.keys()));
    assert_ne!(
        one_seal, two_seal,
        "phase one's checkpoint of {again} is phase two's (another run, another log)"
    );
    assert_eq!(seals(&reports.join("checkpoints/one")), one_seals);
    assert_eq!(seals(&reports.join("checkpoints/two")), two_seals);
    assert!(
        seals(&reports.join("checkpoints")).is_empty(),
        "a checkpoint outside the phases' folders of the merged set"
    );

    // The consumers.
    let python = match python() {
        Ok(p) => p,
        Err(why) => return consumer_missing(&why),
    };
    let schema = manifest().join("tests/fixtures/cucumber-messages/messages.schema.json");
    let (one_messages, merged_messages) =
        (one.join("messages.ndjson"), reports.join("messages.ndjson"));
    let (one_cucumber, merged_cucumber) =
        (one.join("cucumber.json"), reports.join("cucumber.json"));
    let summaries = match consume(
        &python,
        &schema,
        &[
            &one_messages,
            &merged_messages,
            &one_cucumber,
            &merged_cucumber,
        ],
    ) {
        Ok(s) => s,
        Err(why) => return consumer_missing(&why),
    };
    let of = |file: &Path| {
        let summary = &summaries[file.to_str().unwrap()];
        assert!(
            !summary.is_null(),
            "no summary of {}: {summaries}",
            file.display()
        );
        summary.clone()
    };
    for file in [&one_messages, &merged_messages] {
        let summary = of(file);
        assert!(
            summary["counts"]["testStepFinished"].as_u64() > Some(10),
            "{}: {summary}",
            file.display()
        );
    }
    for (file, cases, failures) in [(&one_cucumber, 3, 1), (&merged_cucumber, 4, 1)] {
        let summary = of(file);
        assert_eq!(
            (
                summary["scenarios"].as_array().map(Vec::len),
                summary["junit_tests"].as_u64(),
                summary["junit_failures"].as_u64()
            ),
            (Some(cases), Some(cases as u64), Some(failures)),
            "{}: {summary}",
            file.display()
        );
    }
}
