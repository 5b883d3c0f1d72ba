//! What shapes a stack: where the console and the worker run, the paths and deadlines, the
//! faults of the failure drill; and why a stack did not start.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::containers::{ContainerError, ServiceImage};
use crate::faults::Drift;
use rocky::hearth::DriverKind;

/// Where the console and the worker run.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Services {
    /// In this process, as servers on 127.0.0.1 listeners (the embedded topology).
    #[default]
    InProcess,
    /// Each in its own container of this image, on a Docker network made for the stack (the
    /// container topology). The engine is the harness's (`DOCKER_HOST` or the local socket),
    /// whatever [`StackOptions::docker_host`] tells hearth.
    Containers(ServiceImage),
}

impl Services {
    /// `in-process` or `containers`, for reports.
    pub fn as_str(&self) -> &'static str {
        match self {
            Services::InProcess => "in-process",
            Services::Containers(_) => "containers",
        }
    }
}

/// Everything that shapes a stack.
#[derive(Clone, Debug)]
pub struct StackOptions {
    /// `local-docker` or `process`.
    pub driver: DriverKind,
    /// Where the console and the worker run.
    pub services: Services,
    /// Directories searched for the `hearth` binary, in order.
    pub hearth_search: Vec<PathBuf>,
    /// Compiled stand-in, for the `process` driver.
    pub standin_bin: Option<PathBuf>,
    /// Session id for hearth's labels; unique per scenario.
    pub session: String,
    /// Where the socket, HATCH log and logs go.
    pub work_dir: PathBuf,
    /// Tier profiles directory.
    pub tiers_dir: PathBuf,
    /// hearth's teardown deadline.
    pub teardown_timeout: Duration,
    /// The console's run deadline.
    pub run_timeout: Duration,
    /// Fault: the worker encodes frames wrongly.
    pub worker_drift: Drift,
    /// Fault: the worker reads a different VAULT secret than the console.
    pub vault_drift: bool,
    /// Engine endpoint for hearth (`DOCKER_HOST`); `None` inherits ours.
    pub docker_host: Option<String>,
    /// A stack several scenarios share (set by `crate::stack::shared`, never by a scenario).
    pub shared: bool,
}

impl StackOptions {
    /// Defaults for a stack in `work_dir` with the crate's own tiers.
    pub fn new(driver: DriverKind, work_dir: PathBuf) -> StackOptions {
        StackOptions {
            driver,
            services: Services::InProcess,
            hearth_search: crate::binaries::search_dirs(),
            standin_bin: None,
            session: rocky::ids::random_hex(6),
            work_dir,
            tiers_dir: crate::layout::current().tiers(),
            teardown_timeout: Duration::from_secs(30),
            run_timeout: Duration::from_secs(60),
            worker_drift: Drift::None,
            vault_drift: false,
            docker_host: None,
            shared: false,
        }
    }
}

/// Why a stack did not start.
#[derive(Debug, thiserror::Error)]
pub enum StackError {
    #[error(
        "failed to spawn hearth: no `hearth` binary in any of {looked_in:?}; build it with `cargo build --bin hearth`"
    )]
    HearthNotFound { looked_in: Vec<PathBuf> },
    #[error("failed to spawn hearth from {path}: {source}")]
    HearthSpawn {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("hearth did not become ready within {deadline:?}: {detail}")]
    HearthNotReady { deadline: Duration, detail: String },
    #[error("failed to set up the stack: {0}")]
    Setup(String),
    #[error("failed to start the console and worker containers: {0}")]
    Containers(#[from] ContainerError),
}

/// Paths every topology shares.
#[derive(Clone, Copy)]
pub(super) struct Paths<'a> {
    pub(super) hearth_socket: &'a Path,
    pub(super) hatch_path: &'a Path,
}

/// The console waits for hearth's teardown answer longer than hearth's own deadline, so that
/// hearth, not the console, is the one to report a missed deadline; within the range the
/// console's flag takes (`rocky::cli::MAX_DEADLINE`).
pub(super) fn console_teardown_deadline(opts: &StackOptions) -> Duration {
    (opts.teardown_timeout + Duration::from_secs(30)).min(rocky::cli::MAX_DEADLINE)
}
