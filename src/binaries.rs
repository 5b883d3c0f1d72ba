//! The service binaries the harness starts (`hearth`, `console`, `ralph`, built by the `rocky`
//! crate): where they are looked for, and keeping them current when the harness runs under
//! cargo.
//!
//! They belong to another package, so `cargo test --test scenarios` (or `cargo bench`) of this
//! one does not build them. Run under cargo (`CARGO` and `CARGO_MANIFEST_DIR` are set at run
//! time), the harness first asks cargo to build them into its own target directory and
//! profile: a no-op when they are fresh, and never a stale `hearth` from an older build.
//!
//! It builds `--workspace --bins`, not `-p rocky --bins`: cargo resolves features over the
//! packages it is asked for, so building rocky alone gives bollard, clap, hyper … another
//! feature set than the test build's, compiles ~35 units a second time and makes binaries
//! (and a services image hash) that differ from `cargo build --bins`. With the whole
//! workspace selected, as `cargo test` selects it, every unit is the test build's own.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Where `hearth`, `console` and `ralph` are looked for: beside the running executable (and
/// its parent, for test binaries in `target/<profile>/deps`), then every `PATH` entry.
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Ok(exe) = std::env::current_exe()
        && let Some(dir) = exe.parent()
    {
        dirs.push(dir.to_owned());
        if dir.ends_with("deps")
            && let Some(up) = dir.parent()
        {
            dirs.push(up.to_owned());
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    dirs
}

/// Builds the service binaries once per process when running under cargo; elsewhere (an
/// installed CLI, a copied binary) it does nothing and [`search_dirs`] decides.
pub fn ensure_built() -> Result<(), String> {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    BUILT.get_or_init(build_under_cargo).clone()
}

/// What the harness asks cargo to build (see the module's docs for why the whole workspace).
pub const BUILD_ARGS: [&str; 4] = ["build", "--quiet", "--workspace", "--bins"];

fn build_under_cargo() -> Result<(), String> {
    let (Some(cargo), Some(manifest_dir)) = (
        std::env::var_os("CARGO"),
        std::env::var_os("CARGO_MANIFEST_DIR"),
    ) else {
        return Ok(());
    };
    let manifest = Path::new(&manifest_dir).join("Cargo.toml");
    if !Path::new(&manifest_dir).join("rocky/Cargo.toml").is_file() {
        return Ok(());
    }
    let Some((target_dir, profile)) = std::env::current_exe()
        .ok()
        .as_deref()
        .and_then(target_and_profile)
    else {
        return Ok(());
    };
    let mut cmd = Command::new(&cargo);
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_for_a_run) {
            cmd.env_remove(name);
        }
    }
    cmd.args(BUILD_ARGS)
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .args(["--profile", &profile]);
    if std::env::var_os("CARGO_NET_OFFLINE").is_none()
        && Path::new(&manifest_dir).join("Cargo.lock").is_file()
    {
        cmd.arg("--locked");
    }
    let status = cmd.status().map_err(|e| {
        format!(
            "failed to run `{}` to build the service binaries: {e}",
            Path::new(&cargo).display()
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "failed to build the service binaries: `cargo build --workspace --bins --profile {profile}` exited with {status}"
        ))
    }
}

/// The variables cargo sets for the test (or binary) it runs, which the nested build must not
/// see: build scripts such as ring's and cc's declare `rerun-if-env-changed=CARGO_PKG_NAME`,
/// `CARGO_MANIFEST_DIR` …, and cargo reads those from its own environment, so a build run from
/// inside `cargo test` would find them changed (rocky-e2e's values, not unset) and rebuild
/// ring, rustls, bollard, rocky and the harness, and the next plain `cargo build` rebuild
/// them back.
fn is_set_for_a_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_MANIFEST_")
        || name.starts_with("CARGO_BIN_")
        || matches!(
            name,
            "CARGO_CRATE_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "CARGO_RUSTC_CURRENT_DIR"
                | "OUT_DIR"
        )
}

/// `target/debug/deps/scenarios-…` → (`target`, `dev`); `target/release/rocky-e2e` →
/// (`target`, `release`).
fn target_and_profile(exe: &Path) -> Option<(PathBuf, String)> {
    let mut dir = exe.parent()?;
    if dir.ends_with("deps") {
        dir = dir.parent()?;
    }
    let profile = match dir.file_name()?.to_str()? {
        "debug" => "dev".to_owned(),
        other => other.to_owned(),
    };
    Some((dir.parent()?.to_owned(), profile))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nested_build_sees_no_variable_cargo_set_for_the_test() {
        for set in [
            "CARGO_PKG_NAME",
            "CARGO_PKG_VERSION_MAJOR",
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_LINKS",
            "CARGO_BIN_EXE_rocky-e2e",
            "CARGO_CRATE_NAME",
            "OUT_DIR",
        ] {
            assert!(is_set_for_a_run(set), "{set}");
        }
        // What configures the build itself stays.
        for kept in [
            "CARGO_HOME",
            "CARGO_TARGET_DIR",
            "CARGO_NET_OFFLINE",
            "CARGO",
            "PATH",
        ] {
            assert!(!is_set_for_a_run(kept), "{kept}");
        }
    }

    #[test]
    fn profile_from_the_executable_path() {
        assert_eq!(
            target_and_profile(Path::new("/w/target/debug/deps/scenarios-0a1b")),
            Some((PathBuf::from("/w/target"), "dev".to_owned()))
        );
        assert_eq!(
            target_and_profile(Path::new("/w/target/release/rocky-e2e")),
            Some((PathBuf::from("/w/target"), "release".to_owned()))
        );
    }
}
