//! What the containers of one stack are made from: the services image, and the paths and
//! settings the console and the worker are started with.

use std::path::Path;
use std::time::Duration;

use crate::faults::Drift;

/// The image both containers run, as the topology prepared it
/// ([`crate::images::ensure_services_image`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceImage {
    /// `repository:tag`; must exist in the engine (nothing is pulled).
    pub tag: String,
    /// `LD_LIBRARY_PATH` inside the containers.
    pub library_path: String,
}

impl From<&crate::images::ServicesImage> for ServiceImage {
    fn from(i: &crate::images::ServicesImage) -> ServiceImage {
        ServiceImage {
            tag: i.tag.clone(),
            library_path: i.library_path.clone(),
        }
    }
}

/// What the two containers of one stack need; every path is a host path.
#[derive(Clone, Debug)]
pub struct Config<'a> {
    pub image: &'a ServiceImage,
    /// The stack's session id: names and labels.
    pub session: &'a str,
    /// Bind-mounted into the console at the same path; holds everything below but the tiers.
    pub work_dir: &'a Path,
    pub hearth_socket: &'a Path,
    pub hatch_path: &'a Path,
    /// LocalAuth tokens (YAML).
    pub tokens: &'a Path,
    pub console_vault: &'a Path,
    pub worker_vault: &'a Path,
    /// Mounted read-only into the console, at the same path.
    pub tiers_dir: &'a Path,
    pub run_timeout: Duration,
    /// The console's deadline for its teardown call to hearth.
    pub teardown_timeout: Duration,
    pub drift: &'a Drift,
    /// A stack several scenarios share: its slot is theirs ([`super::Claim::SharedStack`]).
    pub shared: bool,
}
