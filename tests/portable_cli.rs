//! The CLI works away from the checkout it was built in: a copy of `rocky-e2e` (with the
//! service binaries beside it, as `cargo install` leaves them on the PATH) runs the play in
//! another folder holding only `features/` and `snapshots/`, reading nothing from the folder
//! it was compiled in.

use std::path::PathBuf;
use std::process::Command;

use crate::support;

use support::{copy_dir, path_with};

#[test]
fn a_copied_binary_plays_in_another_checkout() {
    // This build's binaries (the harness builds them when run under cargo), copied elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    let bin = support::install_binaries(elsewhere.path());
    let checkout = elsewhere.path().join("checkout");
    let source = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    copy_dir(&source.join("features"), &checkout.join("features"));
    copy_dir(&source.join("snapshots"), &checkout.join("snapshots"));

    let run = |args: &[&str]| {
        let out = Command::new(bin.join("rocky-e2e"))
            .args(args)
            .current_dir(&checkout)
            // Nothing of cargo's: this is a binary on its own.
            .env_remove("CARGO")
            .env_remove("CARGO_MANIFEST_DIR")
            .env_remove("CARGO_TARGET_DIR")
            // The service binaries beside it first; rustc (the stand-in is compiled) after.
            .env("PATH", path_with(&bin))
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
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
        let out = Command::new(env!("CARGO_BIN_EXE_rocky-e2e"))
            .args(args)
            .current_dir(nowhere.path())
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "rocky-e2e {args:?} succeeded outside a checkout"
        );
        assert!(
            !err.contains("panicked"),
            "rocky-e2e {args:?} panicked:\n{err}"
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
