//! Tier profiles: which services a workspace of a tier runs, read from YAML under `features/tiers/`.
//!
//! The profile names each service's image, so swapping a stand-in for the real CAIRNET or LORE
//! image is a one-line change in the YAML, not in code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// One tier, e.g. `solo`: the services every workspace of this tier gets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TierProfile {
    /// The tier's name, as callers pass it in `{"tier": ...}`.
    pub name: String,
    /// The services, started together and health-checked before the workspace is `ready`.
    pub services: Vec<ServiceSpec>,
}

/// One service of a tier.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// Service name (`cairnet`, `lore`); also its DNS alias on the workspace network.
    pub name: String,
    /// Image the `local-docker` driver runs; the `process` driver runs the stand-in program.
    pub image: String,
    /// Port the service listens on inside its container.
    #[serde(default = "default_port")]
    pub port: u16,
    /// Path answering 200 once the service is healthy.
    #[serde(default = "default_health")]
    pub health: String,
    /// Extra environment for the service (the failure drill uses it to inject faults).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

fn default_port() -> u16 {
    8080
}

fn default_health() -> String {
    "/healthz".to_owned()
}

/// Why a tier profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error("failed to read tier profile {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to parse tier profile {path}: {source}")]
    Parse {
        path: PathBuf,
        source: yaml_serde::Error,
    },
    #[error("invalid tier profile {path}: {reason}")]
    Invalid { path: PathBuf, reason: String },
}

impl TierProfile {
    /// Reads and checks one profile file.
    pub fn from_file(path: &Path) -> Result<TierProfile, TierError> {
        let text = std::fs::read_to_string(path).map_err(|source| TierError::Read {
            path: path.to_owned(),
            source,
        })?;
        let profile: TierProfile =
            yaml_serde::from_str(&text).map_err(|source| TierError::Parse {
                path: path.to_owned(),
                source,
            })?;
        profile.check().map_err(|reason| TierError::Invalid {
            path: path.to_owned(),
            reason,
        })?;
        Ok(profile)
    }

    /// Structural checks serde cannot express.
    pub fn check(&self) -> Result<(), String> {
        crate::slug::validate(&self.name).map_err(|e| format!("tier name: {e}"))?;
        if self.services.is_empty() {
            return Err("a tier needs at least one service".into());
        }
        let mut seen = std::collections::BTreeSet::new();
        for s in &self.services {
            crate::slug::validate(&s.name).map_err(|e| format!("service name: {e}"))?;
            if !seen.insert(&s.name) {
                return Err(format!("service {:?} is listed twice", s.name));
            }
            if s.image.trim().is_empty() {
                return Err(format!("service {:?} has no image", s.name));
            }
            if !s.health.starts_with('/') {
                return Err(format!("service {:?}: health must be a path", s.name));
            }
        }
        Ok(())
    }
}

/// All tiers found in a directory (`*.yaml`), keyed by tier name.
pub fn load_dir(dir: &Path) -> Result<BTreeMap<String, TierProfile>, TierError> {
    let entries = std::fs::read_dir(dir).map_err(|source| TierError::Read {
        path: dir.to_owned(),
        source,
    })?;
    let mut tiers = BTreeMap::new();
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    paths.sort();
    for path in paths {
        let profile = TierProfile::from_file(&path)?;
        if tiers.contains_key(&profile.name) {
            return Err(TierError::Invalid {
                path,
                reason: format!("tier {:?} is defined twice", profile.name),
            });
        }
        tiers.insert(profile.name.clone(), profile);
    }
    Ok(tiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_unknown_fields_and_duplicates() {
        let bad: Result<TierProfile, _> =
            yaml_serde::from_str("name: solo\nservices: []\nbilling: polar\n");
        assert!(bad.unwrap_err().to_string().contains("billing"));
        let dup: TierProfile = yaml_serde::from_str(
            "name: solo\nservices:\n - {name: a, image: x}\n - {name: a, image: y}\n",
        )
        .unwrap();
        assert!(dup.check().unwrap_err().contains("twice"));
        let ok: TierProfile =
            yaml_serde::from_str("name: solo\nservices:\n - {name: cairnet, image: x}\n").unwrap();
        assert_eq!(ok.services[0].port, 8080);
        assert!(ok.check().is_ok());
    }

    #[test]
    fn the_shipped_solo_tier_loads() {
        // The profiles ship with the scenarios, at the top of the workspace.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../features/tiers");
        let tiers = load_dir(&dir).unwrap();
        let solo = &tiers["solo"];
        let names: Vec<_> = solo.services.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["cairnet", "lore"]);
    }
}
