//! Where a run finds its scenarios, snapshots and tier profiles: always from the current
//! directory or the paths it is given, never from the folder the binary was compiled in, so a
//! copied or `cargo install`ed `rocky-e2e` works in any checkout.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The folders of one run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// `features/`: the `.feature` files, `tiers/`, `runs/`.
    pub features: PathBuf,
    /// `snapshots/`, beside `features/`.
    pub snapshots: PathBuf,
    /// The checkout's root (the folder holding `features/`): relative paths in steps resolve
    /// against it (e.g. `steps/fixtures/misspelt`).
    pub root: PathBuf,
}

impl Layout {
    /// `features_dir` when given, else `./features`.
    pub fn resolve(features_dir: Option<&Path>) -> Result<Layout, String> {
        let features = match features_dir {
            Some(dir) => dir.to_owned(),
            None => std::env::current_dir()
                .map_err(|e| format!("failed to read the current directory: {e}"))?
                .join("features"),
        };
        if !features.is_dir() {
            return Err(format!(
                "no features folder at {}: run rocky-e2e from a checkout (the folder holding features/) or pass --features-dir DIR",
                features.display()
            ));
        }
        let features = std::fs::canonicalize(&features)
            .map_err(|e| format!("failed to resolve {}: {e}", features.display()))?;
        let root = features
            .parent()
            .map(Path::to_owned)
            .unwrap_or_else(|| features.clone());
        Ok(Layout {
            snapshots: root.join("snapshots"),
            features,
            root,
        })
    }

    /// `features/tiers`: the tier profiles hearth is given.
    pub fn tiers(&self) -> PathBuf {
        self.features.join("tiers")
    }
}

static CURRENT: OnceLock<Layout> = OnceLock::new();

/// Fixes the layout for this process (the first call wins: one run, one checkout).
pub fn set(layout: Layout) -> &'static Layout {
    CURRENT.get_or_init(|| layout)
}

/// The layout of this process's run; resolved from the current directory if no run set it.
pub fn current() -> &'static Layout {
    CURRENT.get_or_init(|| Layout::resolve(None).unwrap_or_else(|e| panic!("rocky-e2e: {e}")))
}

/// `target/rocky-e2e`: caches, checkpoints and reports live beside the build.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| current().root.join("target"))
        .join("rocky-e2e")
}

/// The variable naming the phase of a run (a job's several runs, [`crate::runner::phases`]).
pub const PHASE_ENV: &str = "ROCKY_E2E_PHASE";

/// The phase this process runs as, if any. A name is a path segment of `[A-Za-z0-9._-]`.
pub fn phase() -> Result<Option<String>, String> {
    match std::env::var(PHASE_ENV) {
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(_)) => Err(format!("{PHASE_ENV} is not valid UTF-8")),
        Ok(p) if p.is_empty() => Ok(None),
        Ok(p) => valid_phase(&p).map(|()| Some(p)),
    }
}

/// A phase name names one folder: letters, digits, `.`, `_` and `-`, not starting with `.`.
pub fn valid_phase(phase: &str) -> Result<(), String> {
    if phase.starts_with('.')
        || !phase
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        return Err(format!(
            "{PHASE_ENV}={phase:?}: a phase name is letters, digits, `.`, `_` and `-` (it names a folder), not starting with `.`"
        ));
    }
    Ok(())
}

/// Where a phase writes its own reports: `root/phases/<phase>/`.
pub fn phase_dir(root: &Path, phase: &str) -> PathBuf {
    root.join("phases").join(phase)
}

/// The folder of the HATCH checkpoints beside a run's reports.
pub const CHECKPOINTS: &str = "checkpoints";

/// Where a run keeps its scenarios' HATCH checkpoints, beside its reports: `root/checkpoints/`,
/// or with a phase `root/phases/<phase>/checkpoints/`.
pub fn checkpoints(root: &Path, phase: Option<&str>) -> PathBuf {
    match phase {
        Some(p) => phase_dir(root, p).join(CHECKPOINTS),
        None => root.join(CHECKPOINTS),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_features_folder_says_what_to_do() {
        let dir = tempfile::tempdir().unwrap();
        let err = Layout::resolve(Some(&dir.path().join("features"))).unwrap_err();
        assert!(err.contains("--features-dir"), "{err}");
    }

    #[test]
    fn snapshots_sit_beside_features() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("features")).unwrap();
        let l = Layout::resolve(Some(&dir.path().join("features"))).unwrap();
        assert_eq!(l.snapshots, l.root.join("snapshots"));
        assert_eq!(l.tiers(), l.features.join("tiers"));
    }
}
