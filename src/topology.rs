//! Which stack the scenarios run on, decided once per process.
//!
//! `ROCKY_E2E=1`: the container topology on the real engine, which must answer (a loud
//! failure naming `DOCKER_HOST` otherwise, never a skip): hearth on the host with the
//! `local-docker` driver, the console and the worker each in a container (see
//! `crate::containers`). Init first removes what killed runs left behind (and says what),
//! then makes sure the stand-in and services images exist. Unset: the embedded topology,
//! console and worker in-process, with the `process` driver running the stand-in as local
//! child processes; scenarios tagged `@docker` need an engine and are reported as skipped
//! with the reason.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Instant;

use crate::images::ServiceBinaries;
use crate::stack::{Services, StackOptions};
use rocky::hearth::DriverKind;

/// The tag of scenarios that need a Docker engine.
pub const DOCKER_TAG: &str = "docker";

pub use crate::images::STANDIN_LOCAL_TAG;

/// The chosen topology.
#[derive(Debug)]
pub struct Topology {
    pub driver: DriverKind,
    /// Where the console and the worker run.
    pub services: Services,
    /// The compiled stand-in, for the `process` driver.
    pub standin_bin: Option<PathBuf>,
    /// One line for the output: which topology and why.
    pub description: String,
    /// Why `@docker` scenarios are skipped, when they are.
    pub docker_skip_reason: Option<String>,
    /// Whether scenarios that fault no service share a stack (`crate::stack::shared`): on the
    /// container topology, where a console and worker pair costs two containers and seconds,
    /// unless `ROCKY_E2E_SHARED_STACKS=0`. Embedded, a pair is two threads of this process, and
    /// the `process` driver's "nothing remains" check tells a scenario's processes from others
    /// by the session, so each scenario keeps its own.
    pub shares_stacks: bool,
}

/// `ROCKY_E2E_SHARED_STACKS=0` gives every scenario a stack of its own (as before stacks were
/// shared: for comparison, or to rule sharing out).
pub fn sharing_allowed() -> bool {
    std::env::var("ROCKY_E2E_SHARED_STACKS").map_or(true, |v| v != "0")
}

static TOPOLOGY: OnceLock<Topology> = OnceLock::new();

/// The topology chosen by [`init`].
pub fn get() -> &'static Topology {
    TOPOLOGY
        .get()
        .expect("topology::init runs before any scenario")
}

/// True when `ROCKY_E2E=1`.
pub fn gate_open() -> bool {
    std::env::var("ROCKY_E2E").is_ok_and(|v| v == "1")
}

/// How the topology is chosen.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// `cargo test`: Docker exactly when `ROCKY_E2E=1` (then required), embedded otherwise.
    Gate,
    /// `rocky-e2e play`/`up`: Docker when `ROCKY_E2E=1` (required) or when an engine answers;
    /// embedded otherwise.
    Best,
}

/// Chooses the topology and prepares what it needs (image or stand-in binary).
pub async fn init(policy: Policy) -> Result<&'static Topology, String> {
    tokio::task::spawn_blocking(crate::binaries::ensure_built)
        .await
        .map_err(|e| format!("failed to build the service binaries: {e}"))??;
    if let Some(t) = TOPOLOGY.get() {
        return Ok(t);
    }
    sweep_scratch()?;
    let cache = crate::layout::target_dir().join("cache");
    let use_docker =
        gate_open() || (policy == Policy::Best && rocky::docker::connect().await.is_ok());
    let topology = if use_docker {
        let endpoint = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock (DOCKER_HOST unset)".into());
        let docker = rocky::docker::connect().await.map_err(|e| {
            format!(
                "ROCKY_E2E=1 requires a reachable Docker engine, and the engine at {endpoint} does not answer: {e}. Start the engine or point DOCKER_HOST at one; unset ROCKY_E2E to run on the embedded topology instead."
            )
        })?;
        sweep_leftovers(&docker).await?;
        let image = crate::images::ensure_standin_image(&docker, &cache)
            .await
            .map_err(|e| e.to_string())?;
        crate::images::tag_standin_local(&docker, &image.tag).await?;
        let bins = service_binaries().map_err(|e| e.to_string())?;
        let services = crate::images::ensure_services_image(&docker, &cache, &bins)
            .await
            .map_err(|e| e.to_string())?;
        let pruned = crate::images::prune_services_images(&docker, &services.tag)
            .await
            .map_err(|e| e.to_string())?;
        if !pruned.is_empty() {
            eprintln!(
                "rocky-e2e: removed {} older services image(s): {}",
                pruned.len(),
                pruned.join(", ")
            );
        }
        Topology {
            driver: DriverKind::LocalDocker,
            services: Services::Containers((&services).into()),
            standin_bin: None,
            description: format!(
                "topology: docker (driver local-docker, engine {endpoint}; console and worker in containers of {} {} in {:.2?} from {}; stand-in image {} {} in {:.2?})",
                services.tag,
                if services.built { "built" } else { "reused" },
                services.elapsed,
                bins.console
                    .parent()
                    .map(|d| d.display().to_string())
                    .unwrap_or_default(),
                image.tag,
                if image.built { "built" } else { "reused" },
                image.elapsed
            ),
            docker_skip_reason: None,
            shares_stacks: sharing_allowed(),
        }
    } else {
        let bin = crate::images::standin_binary(&cache).map_err(|e| e.to_string())?;
        Topology {
            driver: DriverKind::Process,
            services: Services::InProcess,
            standin_bin: Some(bin),
            description: match policy {
                Policy::Gate => {
                    "topology: embedded (driver process, console and worker in-process; ROCKY_E2E unset)".into()
                }
                Policy::Best => {
                    "topology: embedded (driver process, console and worker in-process; no Docker engine answered)".into()
                }
            },
            docker_skip_reason: Some(
                "needs a Docker engine: run with ROCKY_E2E=1 to include it".into(),
            ),
            shares_stacks: false,
        }
    };
    Ok(TOPOLOGY.get_or_init(|| topology))
}

/// Removes every object whose `rocky.pid` process is gone (a run killed with SIGKILL: its
/// console and worker containers, their network, and whatever its hearth could not tear
/// down), and says what it removed. Live sessions, including concurrent runs, are left alone.
async fn sweep_leftovers(docker: &bollard::Docker) -> Result<(), String> {
    let started = Instant::now();
    let stale = crate::containers::stale_objects(docker)
        .await
        .map_err(|e| e.to_string())?;
    let swept = rocky::docker::sweep::sweep_stale(docker)
        .await
        .map_err(|e| e.to_string())?;
    if swept.containers.is_empty() && swept.networks.is_empty() {
        eprintln!("rocky-e2e: start-of-run sweep: no leftovers of killed runs");
        return Ok(());
    }
    eprintln!(
        "rocky-e2e: start-of-run sweep removed {} containers and {} networks left by killed runs (in {:.2?}):",
        swept.containers.len(),
        swept.networks.len(),
        started.elapsed()
    );
    for line in &stale {
        eprintln!("  - {line}");
    }
    Ok(())
}

/// Removes the scratch folders of killed runs (their HATCH logs and keys, hearth's state, the
/// tokens and vaults) on either topology, and says what it removed.
fn sweep_scratch() -> Result<(), String> {
    let removed = crate::stack::scratch::sweep_stale()?;
    if !removed.is_empty() {
        eprintln!(
            "rocky-e2e: start-of-run sweep removed {} scratch folder(s) left by killed runs:",
            removed.len()
        );
        for path in &removed {
            eprintln!("  - {}", path.display());
        }
    }
    Ok(())
}

/// The `console` and `ralph` binaries the services image is made from.
fn service_binaries() -> Result<ServiceBinaries, crate::images::ImageError> {
    ServiceBinaries::locate(&crate::binaries::search_dirs())
}

impl Topology {
    /// Stack options for one scenario in `dir`.
    pub fn stack_options(&self, dir: PathBuf) -> StackOptions {
        let mut o = StackOptions::new(self.driver, dir);
        o.services = self.services.clone();
        o.standin_bin = self.standin_bin.clone();
        o
    }
}
