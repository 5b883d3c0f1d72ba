//! The one folder cucumber parses: the given one, or a temporary folder of links when several
//! paths are given (cucumber takes a single input).

use std::path::PathBuf;

/// A folder (or file) for cucumber, and the links that make it, removed on drop.
pub struct Input {
    pub path: PathBuf,
    _links: Option<tempfile::TempDir>,
}

impl Input {
    /// `paths` must exist; none means `default`.
    pub fn new(paths: &[PathBuf], default: PathBuf) -> Result<Input, String> {
        for p in paths {
            if !p.exists() {
                return Err(format!("{} does not exist", p.display()));
            }
        }
        match paths {
            [] => Ok(Input {
                path: default,
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
}
