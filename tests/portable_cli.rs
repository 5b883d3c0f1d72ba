//! The CLI works away from the checkout it was built in: a copy of `rocky-e2e` (with the
//! service binaries beside it, as `cargo install` leaves them on the PATH) runs the play in
//! another folder holding only `features/` and `snapshots/`, reading nothing from the folder
//! it was compiled in; from a folder without `features/` it reads the features folder of the
//! paths it is given.

use std::path::{Path, PathBuf};

use crate::support;

use support::copy_dir;

#[test]
fn a_copied_binary_plays_in_another_checkout() {
    // This build's binaries (the harness builds them when run under cargo), copied elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let bin = support::install_binaries(elsewhere.path());
    let checkout = elsewhere.path().join("checkout");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&source.join("features"), &checkout.join("features"));
    copy_dir(&source.join("snapshots"), &checkout.join("snapshots"));

    // Nothing of cargo's: this is a binary on its own; the service binaries beside it first,
    // rustc (the stand-in is compiled) after.
    let run = |args: &[&str]| {
        let (out, text) =
            support::run(support::rocky_e2e(&bin.join("rocky-e2e"), &checkout).args(args));
        assert!(out.status.success(), "rocky-e2e {args:?} failed:\n{text}");
        text
    };
    let dry = run(&["play", "--dry-run"]);
    assert!(dry.contains("all defined, none ambiguous"), "{dry}");
    let steps = run(&["steps"]);
    assert!(
        steps.contains("`When I provision workspace {string} on tier {string}`"),
        "the reference reads the patterns as written, from the binary itself:\n{steps}"
    );
    // This play starts on Docker under ROCKY_E2E=1, and a run's start sweeps stale objects.
    let sweeps = support::DOCKER_SWEEPS.blocking_lock();
    let play = run(&["play", "features/play.feature"]);
    drop(sweeps);
    assert!(play.contains("1 scenarios: 1 passed"), "{play}");
    assert!(checkout.join("target/rocky-e2e/report.html").is_file());
}

#[test]
fn outside_a_checkout_every_command_says_what_to_do_without_a_panic() {
    let nowhere = tempfile::tempdir().unwrap();
    for args in [
        &["up", "--state-dir", "state"][..],
        &["steps"][..],
        &["play"][..],
        &["play", "--dry-run"][..],
    ] {
        let (out, _) = support::run(support::rocky_e2e(&this_build(), nowhere.path()).args(args));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "rocky-e2e {args:?} succeeded outside a checkout"
        );
        assert!(
            err.contains("no features folder at") && err.contains("--features-dir"),
            "rocky-e2e {args:?} does not say what to do:\n{err}"
        );
        assert!(
            !nowhere.path().join("state").exists(),
            "rocky-e2e {args:?} created its state dir before failing"
        );
    }
}

/// This build's `rocky-e2e`.
fn this_build() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_rocky-e2e"))
}

/// What `rocky-e2e` reads when the current directory has no `features/`: the features folder
/// of the paths it is given (a folder named `features`, or holding `tiers/`, at or above
/// them), its tiers included; `--dry-run` needs none; and with none, an error saying where it
/// looked.
#[test]
fn away_from_a_checkout_play_reads_the_features_folder_of_its_paths() {
    let elsewhere = tempfile::tempdir().unwrap();
    let bin = support::install_binaries(elsewhere.path());
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let features = elsewhere.path().join("x/features");
    support::seed_standin_cache(&elsewhere.path().join("x"));
    copy_dir(&source.join("features/tiers"), &features.join("tiers"));
    let passes = features.join("passes.feature");
    std::fs::write(
        &passes,
        "Feature: passes\n  Scenario: a workspace comes and goes\n    Given a rocky stack\n    When I provision workspace \"a\" on tier \"solo\"\n    Then workspace \"a\" is ready\n    When I tear down workspace \"a\"\n    Then nothing of workspace \"a\" remains\n",
    )
    .unwrap();
    let loose = elsewhere.path().join("loose/loose.feature");
    std::fs::create_dir_all(loose.parent().unwrap()).unwrap();
    std::fs::copy(&passes, &loose).unwrap();
    let cwd = elsewhere.path().join("empty");
    std::fs::create_dir(&cwd).unwrap();
    // As a user runs it there, with no engine (so `play` takes the embedded topology).
    let run = |args: &[&Path]| {
        let (out, text) = support::run(support::embedded(&bin.join("rocky-e2e"), &cwd).args(args));
        (out.status, text)
    };
    let (play, dry) = (Path::new("play"), Path::new("--dry-run"));

    // --dry-run: the given folder, and a file in no features folder at all (it reads no tiers).
    for target in [&features, &loose] {
        let (status, text) = run(&[play, dry, target]);
        assert!(status.success(), "play --dry-run {target:?}:\n{text}");
        assert!(text.contains("1 scenarios (1 selected)"), "{text}");
    }
    // A play of one file of that folder provisions on its tiers, and reports beside it.
    let (status, text) = run(&[play, &passes]);
    assert!(status.success(), "play {passes:?}:\n{text}");
    assert!(text.contains("1 scenarios: 1 passed"), "{text}");
    assert!(
        elsewhere
            .path()
            .join("x/target/rocky-e2e/report.html")
            .is_file()
    );
    assert!(
        !cwd.join("target").exists(),
        "the play wrote into the current directory"
    );
    // A play of a file in no features folder: where it looked, and what to do.
    let (status, text) = run(&[play, &loose]);
    assert!(!status.success(), "{text}");
    for needle in [
        format!("no features folder at {}", cwd.join("features").display()),
        format!("nor at or above {}", loose.display()),
        "--features-dir DIR".to_owned(),
    ] {
        assert!(text.contains(&needle), "{needle:?} not in:\n{text}");
    }
}

/// `snapshots summary` names the folder it read, and outside a checkout (or from inside
/// `features/`) says there is no snapshots folder there instead of "nothing pending".
#[test]
fn snapshots_summary_names_its_folder_and_refuses_one_that_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let top = std::fs::canonicalize(dir.path()).unwrap();
    let checkout = top.join("checkout");
    let snapshots = checkout.join("snapshots");
    std::fs::create_dir_all(checkout.join("features")).unwrap();
    // One pending change, as a run leaves it (the golden tests' fixture).
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/report/fixtures/pending");
    copy_dir(&fixtures, &snapshots);
    let mut pending = 0;
    for e in std::fs::read_dir(&snapshots).unwrap().flatten() {
        let name = e.file_name().into_string().unwrap();
        if let Some(stem) = name.strip_suffix(".snap.pending") {
            std::fs::rename(e.path(), snapshots.join(format!("{stem}.snap.new"))).unwrap();
            pending += 1;
        }
    }
    assert!(pending > 0, "the fixture holds no pending snapshot");
    let summary = |cwd: &Path, extra: &[&str]| {
        let (out, _) = support::run(
            support::rocky_e2e(&this_build(), cwd)
                .args(["snapshots", "summary"])
                .args(extra),
        );
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        );
        (out.status, stdout, stderr)
    };

    // The checkout: the changes, and where they were read.
    let (status, stdout, stderr) = summary(&checkout, &[]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.starts_with("## HATCH chain changes"), "{stdout}");
    let read = format!(
        "{pending} pending snapshot change(s) (*.snap.new) in {}",
        snapshots.display()
    );
    assert!(stderr.contains(&read), "{stderr}");
    // From features/ (and from an empty folder): no snapshots folder there, exit 2.
    let nowhere = top.join("empty");
    std::fs::create_dir(&nowhere).unwrap();
    for cwd in [checkout.join("features"), nowhere.clone()] {
        let (status, stdout, stderr) = summary(&cwd, &[]);
        assert_eq!(status.code(), Some(2), "{stdout}{stderr}");
        assert!(stdout.is_empty(), "{stdout}");
        let missing = format!(
            "no snapshots folder at {}: run rocky-e2e from a checkout (the folder holding features/ and snapshots/) or pass --dir DIR",
            cwd.join("snapshots").display()
        );
        assert!(stderr.contains(&missing), "{stderr}");
    }
    let (status, _, stderr) = summary(&nowhere, &["--dir", "../checkout/features/snapshots"]);
    assert_eq!(status.code(), Some(2), "{stderr}");
    // --dir from features/ reads it.
    let (status, stdout, stderr) = summary(&checkout.join("features"), &["--dir", "../snapshots"]);
    assert!(status.success(), "{stderr}");
    assert!(stdout.starts_with("## HATCH chain changes"), "{stdout}");
    assert!(stderr.contains(&read), "{stderr}");
    // A checkout with no snapshot yet: nothing pending, saying why.
    std::fs::remove_dir_all(&snapshots).unwrap();
    let (status, stdout, stderr) = summary(&checkout, &[]);
    assert!(status.success(), "{stderr}");
    assert_eq!(stdout, "No pending snapshot changes.\n");
    assert!(
        stderr.contains(&format!(
            "no snapshots folder at {} (this checkout has no snapshot yet)",
            snapshots.display()
        )),
        "{stderr}"
    );
}

/// A feature file gherkin cannot read, or one whose table row it would cut, fails `play` and
/// `play --dry-run` naming the file, the line and the reason, before anything starts.
#[test]
fn a_broken_feature_fails_naming_its_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let checkout = std::fs::canonicalize(dir.path()).unwrap();
    let features = checkout.join("features");
    std::fs::create_dir(&features).unwrap();
    let cases = [
        (
            "docstring",
            "Feature: F\n  Scenario: s\n    Given a rocky stack\n      \"\"\"\n      text\n    When the run ends\n",
            "4: the doc string opened here with \"\"\" is never closed; gherkin's own report: stopped at line 7",
        ),
        (
            "ragged_table",
            "Feature: F\n  Scenario: s\n    When I submit a run in workspace \"w\" with prompts:\n      | prompt | iterations |\n      | a      |\n",
            "5: this table row has 1 cell(s) but the table's first row (line 4) has 2",
        ),
        (
            "empty",
            "",
            "1: the file holds no feature: a feature file starts with `Feature:`",
        ),
        (
            "steps_first",
            "Given a rocky stack\nFeature: F\n  Scenario: s\n    Given a rocky stack\n",
            "1: `Given a rocky stack` comes before `Feature:`",
        ),
        (
            "ragged_examples",
            "Feature: F\n  Scenario Outline: provision <ws>\n    Given a rocky stack\n    When I provision workspace \"<ws>\" on tier \"solo\"\n\n    Examples:\n      | ws |\n      | a | b |\n",
            "8: this table row has 2 cell(s) but the table's first row (line 7) has 1: every row of a table needs as many cells as its first (gherkin would drop the extra ones)",
        ),
    ];
    for (name, text, want) in cases {
        let file = features.join(format!("{name}.feature"));
        std::fs::write(&file, text).unwrap();
        for args in [&["play", "--dry-run"][..], &["play"][..]] {
            let (out, text) = support::run(
                support::embedded(&this_build(), &checkout)
                    .args(args)
                    .arg(&file),
            );
            assert!(!out.status.success(), "{args:?} {name} passed:\n{text}");
            let want = format!("rocky-e2e: {}:{want}", file.display());
            assert!(
                text.contains(&want),
                "{args:?} {name}: {want:?} not in:\n{text}"
            );
            assert!(!text.contains("scenarios:"), "{args:?} {name} ran:\n{text}");
        }
        std::fs::remove_file(&file).unwrap();
    }
}

/// A `play` killed mid-scenario (SIGKILL: nothing of it runs again) leaves its scenario's
/// scratch folder (the HATCH log and its key, hearth's state), and the next run's start removes
/// it, naming it; a folder of a live run is never touched. Both runs use a temporary folder of
/// the test's own (`TMPDIR`), so no other test's folders are judged.
#[test]
fn the_next_run_removes_the_scratch_folder_of_a_killed_play() {
    use std::os::unix::process::CommandExt;
    use std::time::{Duration, Instant};
    const DEADLINE: Duration = Duration::from_secs(60);

    let root = tempfile::tempdir().unwrap();
    let tmp = root.path().join("t");
    std::fs::create_dir(&tmp).unwrap();
    let checkout = root.path().join("x");
    let features = checkout.join("features");
    copy_dir(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("features/tiers"),
        &features.join("tiers"),
    );
    support::seed_standin_cache(&checkout);
    std::fs::write(
        features.join("held.feature"),
        "Feature: held\n  Scenario: a provision that outlasts the harness\n    Given service \"lore\" of tier \"solo\" becomes healthy after 600000 ms\n    And a rocky stack\n    When I provision workspace \"a\" on tier \"solo\"\n",
    )
    .unwrap();
    std::fs::write(
        features.join("quick.feature"),
        "Feature: quick\n  Scenario: nothing to do\n    Given a rocky stack\n",
    )
    .unwrap();
    // A live run's folder, which the sweep must leave.
    let live = tmp.join("rocky-e2e-live00");
    std::fs::create_dir(&live).unwrap();
    let me = rocky::docker::owner::ProcessId::this_process();
    std::fs::write(
        live.join(".owner"),
        format!("{}\n{}\n{}\n{}\n", me.host, me.pidns, me.pid, me.start),
    )
    .unwrap();

    let scratch = |dir: &Path| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p != &live && p.join(".owner").is_file())
            .collect();
        found.sort();
        found
    };
    // In a process group of its own, so one SIGKILL takes the harness and its hearth at once.
    let mut held = support::embedded(&this_build(), &checkout)
        .args(["play", "features/held.feature"])
        .env("TMPDIR", &tmp)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let started = Instant::now();
    let left = loop {
        let found = scratch(&tmp);
        if !found.is_empty() {
            break found;
        }
        if let Some(status) = held.try_wait().unwrap() {
            panic!("the held play ended ({status}) before it made its scratch folder");
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the held play made no scratch folder in {} within {DEADLINE:?}",
            tmp.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // SAFETY: kill(2) on the process group this test made.
    unsafe {
        libc::kill(-(held.id() as i32), libc::SIGKILL);
    }
    held.wait().unwrap();
    assert_eq!(
        scratch(&tmp),
        left,
        "nothing cleans up after a SIGKILL: the folder is still there"
    );

    let (out, text) = support::run(
        support::embedded(&this_build(), &checkout)
            .args(["play", "features/quick.feature"])
            .env("TMPDIR", &tmp),
    );
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("start-of-run sweep removed 1 scratch folder(s) left by killed runs"),
        "{text}"
    );
    for path in &left {
        assert!(
            text.contains(&path.display().to_string()),
            "{path:?} not named in:\n{text}"
        );
    }
    assert_eq!(scratch(&tmp), Vec::<PathBuf>::new(), "{text}");
    assert!(live.is_dir(), "a live run's folder was removed:\n{text}");
}
