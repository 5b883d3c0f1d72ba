//! Where a run finds its scenarios, snapshots and tier profiles: always from the current
//! directory or the paths it is given, never from the folder the binary was compiled in, so a
//! copied or `cargo install`ed `rocky-e2e` works in any checkout.
//!
//! The features folder (the `.feature` files, `tiers/`, `runs/`) is, first that applies:
//!
//! 1. `--features-dir DIR`;
//! 2. `./features` of the current directory;
//! 3. found from the paths `play` is given: for each, the nearest folder at or above it (the
//!    path itself when it is a folder) that is named `features`, holds `tiers/`, or holds
//!    `features/` (a checkout's root: its `features/` then). The paths must agree on one.
//!
//! When nothing applies the run fails saying where it looked, except `play --dry-run` with
//! paths: it reads no tiers, runs or snapshots, so it checks the files it is given anyway.

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
    /// against it (e.g. `steps/fixtures/misspelt`), and reports go to its `target/rocky-e2e/`.
    pub root: PathBuf,
}

impl Layout {
    /// `features_dir` when given, else `./features`.
    pub fn resolve(features_dir: Option<&Path>) -> Result<Layout, String> {
        Layout::resolve_for(features_dir, &[])
    }

    /// The layout of a run given `paths` (existing files or folders; none: the whole
    /// `features/`): `features_dir`, else `./features`, else the features folder of the paths
    /// (see the module's rule).
    pub fn resolve_for(features_dir: Option<&Path>, paths: &[PathBuf]) -> Result<Layout, String> {
        let cwd = std::env::current_dir()
            .map_err(|e| format!("failed to read the current directory: {e}"))?;
        Layout::resolve_in(&cwd, features_dir, paths)
    }

    /// [`Layout::resolve_for`] from the directory `cwd`.
    pub fn resolve_in(
        cwd: &Path,
        features_dir: Option<&Path>,
        paths: &[PathBuf],
    ) -> Result<Layout, String> {
        let features = match features_dir {
            Some(dir) => {
                let dir = cwd.join(dir);
                if !dir.is_dir() {
                    return Err(format!(
                        "no features folder at {} (--features-dir): pass the folder holding the .feature files and tiers/",
                        dir.display()
                    ));
                }
                dir
            }
            None if cwd.join("features").is_dir() => cwd.join("features"),
            None if paths.is_empty() => {
                return Err(format!(
                    "no features folder at {}: run rocky-e2e from a checkout (the folder holding features/) or pass --features-dir DIR",
                    cwd.join("features").display()
                ));
            }
            None => features_of_paths(cwd, paths)?,
        };
        Layout::at(&features)
    }

    /// For `play --dry-run`, which reads no tiers, runs or snapshots: the layout of
    /// [`Layout::resolve_for`] when there is one, else one around the first given path (its
    /// folder, or the folder holding it) that only names files.
    pub fn resolve_for_check(
        features_dir: Option<&Path>,
        paths: &[PathBuf],
    ) -> Result<Layout, String> {
        match (
            Layout::resolve_for(features_dir, paths),
            features_dir,
            paths,
        ) {
            (Err(_), None, [first, ..]) => {
                let first = std::fs::canonicalize(first)
                    .map_err(|e| format!("failed to resolve {}: {e}", first.display()))?;
                let folder = if first.is_dir() {
                    first
                } else {
                    first.parent().map(Path::to_owned).unwrap_or(first)
                };
                Layout::at(&folder)
            }
            (resolved, _, _) => resolved,
        }
    }

    fn at(features: &Path) -> Result<Layout, String> {
        let features = std::fs::canonicalize(features)
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

/// The one features folder `paths` lie in (the module's rule 3), or what was looked for.
fn features_of_paths(cwd: &Path, paths: &[PathBuf]) -> Result<PathBuf, String> {
    let mut found: Vec<PathBuf> = paths
        .iter()
        .filter_map(|p| features_of(&cwd.join(p)))
        .collect();
    found.sort();
    found.dedup();
    let shown = |ps: &[PathBuf]| {
        ps.iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    match found.as_slice() {
        [one] => Ok(one.clone()),
        [] => Err(format!(
            "no features folder at {} nor at or above {} (a folder named features, or holding tiers/ or features/): run rocky-e2e from a checkout (the folder holding features/) or pass --features-dir DIR (play --dry-run needs none)",
            cwd.join("features").display(),
            shown(paths)
        )),
        many => Err(format!(
            "the given paths lie in different features folders ({}): pass --features-dir DIR to say whose tiers/ and runs/ the run reads",
            shown(many)
        )),
    }
}

/// The nearest folder at or above `path` that is named `features` or holds `tiers/`, or the
/// `features/` of the nearest one holding it.
fn features_of(path: &Path) -> Option<PathBuf> {
    let path = std::fs::canonicalize(path).ok()?;
    let start = if path.is_dir() {
        path.as_path()
    } else {
        path.parent()?
    };
    start.ancestors().find_map(|dir| {
        if dir.file_name().is_some_and(|n| n == "features") || dir.join("tiers").is_dir() {
            Some(dir.to_owned())
        } else if dir.join("features").is_dir() {
            Some(dir.join("features"))
        } else {
            None
        }
    })
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

    fn tree(dirs: &[&str], files: &[&str]) -> tempfile::TempDir {
        let t = tempfile::tempdir().unwrap();
        for d in dirs {
            std::fs::create_dir_all(t.path().join(d)).unwrap();
        }
        for f in files {
            let p = t.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "Feature: f\n").unwrap();
        }
        t
    }

    #[test]
    fn without_features_here_the_given_paths_name_the_features_folder() {
        let t = tree(
            &[
                "empty",
                "x/features/tiers",
                "y/profiles/tiers",
                "z/features",
                "z/other",
            ],
            &[
                "x/features/sub/a.feature",
                "y/profiles/b.feature",
                "z/other/c.feature",
            ],
        );
        let cwd = t.path().join("empty");
        let at = |paths: &[&str]| {
            let paths: Vec<PathBuf> = paths.iter().map(|p| t.path().join(p)).collect();
            Layout::resolve_in(&cwd, None, &paths).map(|l| l.features)
        };
        let canon = |p: &str| std::fs::canonicalize(t.path().join(p)).unwrap();
        // A folder named features, the given one or the nearest above a file.
        assert_eq!(at(&["x/features"]), Ok(canon("x/features")));
        assert_eq!(at(&["x/features/sub/a.feature"]), Ok(canon("x/features")));
        // A folder holding tiers/.
        assert_eq!(at(&["y/profiles/b.feature"]), Ok(canon("y/profiles")));
        // A checkout's root, above the path: its features/.
        assert_eq!(at(&["z/other/c.feature"]), Ok(canon("z/features")));
        assert_eq!(at(&["z"]), Ok(canon("z/features")));
        // Paths that agree, and paths that do not.
        assert_eq!(
            at(&["x/features", "x/features/sub/a.feature"]),
            Ok(canon("x/features"))
        );
        let err = at(&["x/features", "y/profiles"]).unwrap_err();
        assert!(err.contains("different features folders"), "{err}");
        assert!(err.contains("--features-dir"), "{err}");
        // ./features wins over the paths; --features-dir over both.
        std::fs::create_dir(cwd.join("features")).unwrap();
        assert_eq!(at(&["x/features"]), Ok(canon("empty/features")));
        let given = Layout::resolve_in(&cwd, Some(Path::new("../y/profiles")), &[]).unwrap();
        assert_eq!(given.features, canon("y/profiles"));
        assert_eq!(given.root, canon("y"));
    }

    #[test]
    fn paths_in_no_features_folder_fail_saying_where_it_looked() {
        let t = tree(&["empty"], &["loose/a.feature"]);
        assert_eq!(
            features_of(t.path()),
            None,
            "a folder above the temporary folder qualifies as a features folder: this test needs none"
        );
        let cwd = t.path().join("empty");
        let err = Layout::resolve_in(&cwd, None, &[t.path().join("loose/a.feature")]).unwrap_err();
        for needle in [
            &format!("no features folder at {}", cwd.join("features").display())[..],
            &format!(
                "nor at or above {}",
                t.path().join("loose/a.feature").display()
            ),
            "a folder named features, or holding tiers/ or features/",
            "--features-dir DIR",
        ] {
            assert!(err.contains(needle), "{needle:?} not in: {err}");
        }
    }
}
