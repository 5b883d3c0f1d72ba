//! What the tests that copy a checkout share: the copy, a `PATH` that finds the copied
//! binaries first, and `rocky-e2e` run as a user runs it.

use std::path::Path;
use std::process::{Command, Output};

/// Copies the tree `from` to `to`, folders and files.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `PATH` with `dir` first.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_owned()).chain(std::env::split_paths(&rest)))
        .unwrap()
}

/// `program` (a `rocky-e2e`) as a user runs it from `cwd`: nothing of cargo's or of the test
/// runner's in its environment (`CARGO`, `CARGO_MANIFEST_DIR`, `CARGO_TARGET_DIR`, every
/// `NEXTEST*`: under `cargo nextest` it would take itself for one of nextest's tests), no
/// `ROCKY_E2E_PHASE`, and the binaries beside it first on `PATH`. The e2e gate (`ROCKY_E2E`)
/// and the engine are the caller's: see [`embedded`].
#[allow(
    dead_code,
    reason = "not every test binary that shares this module runs one"
)]
pub fn rocky_e2e(program: &Path, cwd: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .current_dir(cwd)
        .env_remove("CARGO")
        .env_remove("CARGO_MANIFEST_DIR")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("ROCKY_E2E_PHASE");
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("NEXTEST") {
            command.env_remove(name);
        }
    }
    if let Some(dir) = program.parent() {
        command.env("PATH", path_with(dir));
    }
    command
}

/// [`rocky_e2e`] with no engine answering and no e2e gate demanding one, so `play` and `up`
/// take the embedded topology.
#[allow(
    dead_code,
    reason = "not every test binary that shares this module runs one"
)]
pub fn embedded(program: &Path, cwd: &Path) -> Command {
    let mut command = rocky_e2e(program, cwd);
    command.env_remove("ROCKY_E2E").env(
        "DOCKER_HOST",
        "unix:///nonexistent/rocky-e2e-test/docker.sock",
    );
    command
}

/// Runs `command` to its end: its output, and its stdout and stderr as one text. A panic in
/// it fails the test (no panic reaches a user).
#[allow(
    dead_code,
    reason = "not every test binary that shares this module runs one"
)]
pub fn run(command: &mut Command) -> (Output, String) {
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("failed to run {command:?}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("panicked at"),
        "a panic reached the user of {:?}:\n{text}",
        command.get_args().collect::<Vec<_>>()
    );
    (out, text)
}

/// `dir/bin` holding this build's `rocky-e2e` and the service binaries (built first if
/// need be), as an installed copy far from the checkout would have them.
#[allow(
    dead_code,
    reason = "not every test binary that shares this module installs one"
)]
pub fn install_binaries(dir: &Path) -> std::path::PathBuf {
    rocky_e2e::binaries::ensure_built().unwrap();
    let hearth = rocky_e2e::stack::locate_hearth(&rocky_e2e::binaries::search_dirs()).unwrap();
    let built = hearth.parent().unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    link_or_copy(
        Path::new(env!("CARGO_BIN_EXE_rocky-e2e")),
        &bin.join("rocky-e2e"),
    );
    for name in ["hearth", "console", "ralph"] {
        link_or_copy(&built.join(name), &bin.join(name));
    }
    bin
}

/// Gives the checkout at `root` this machine's compiled stand-in in its cache
/// (`root/target/rocky-e2e/cache/`, keyed by source, toolchain and flags), as a checkout that
/// has played once has it. Compiling it (static, LTO) took ~1.2 CPU-s of each test's first
/// play; that compile is `images::standin`'s unit tests' to check, and
/// `portable_cli::a_copied_binary_plays_in_another_checkout` still plays from an empty cache.
#[allow(
    dead_code,
    reason = "not every test binary that shares this module plays"
)]
pub fn seed_standin_cache(root: &Path) {
    let built = rocky_e2e::images::standin_binary(&rocky_e2e::images::default_cache_dir())
        .unwrap_or_else(|e| panic!("the stand-in does not compile: {e}"));
    let cache = root.join("target/rocky-e2e/cache");
    std::fs::create_dir_all(&cache).unwrap();
    link_or_copy(&built, &cache.join(built.file_name().unwrap()));
}

/// A hard link where `from` and `to` share a file system, else a copy. The debug binaries are
/// ≈ 290 MB together and three tests install them at once: linking spares the required check
/// a gigabyte of copying. Another path is what an install is (cargo replaces the files it
/// rebuilds, so a link keeps this build's binary).
fn link_or_copy(from: &Path, to: &Path) {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), to.display()));
    }
}

/// Held by the test that SIGKILLs a harness on Docker and by those whose runs sweep stale
/// Docker objects (a run's start, `sweep_stale`), so they never overlap:
/// `the_next_run_sweeps_what_a_killed_harness_left` checks that what a killed harness left is
/// still there until *its* sweep, which another test's sweep would make untrue. (A sweep
/// between a hearth's death and the next hearth's adoption no longer removes what is being
/// adopted: hearth's objects name the harness as their keeper, `rocky.keeper.pid`, and
/// `a_hearth_killed_mid_provision_leaves_the_workspace_to_the_next` sweeps in that window,
/// without this lock.)
#[allow(
    dead_code,
    reason = "not every test binary that shares this module sweeps"
)]
pub static DOCKER_SWEEPS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
