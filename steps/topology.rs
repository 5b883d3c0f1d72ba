//! Which stack the scenarios run on, decided once per process.
//!
//! `ROCKY_E2E=1`: the `local-docker` driver on the real engine, which must answer (a loud
//! failure naming `DOCKER_HOST` otherwise, never a skip). Unset: the embedded topology, with
//! the `process` driver running the stand-in as local child processes; scenarios tagged
//! `@docker` need an engine and are reported as skipped with the reason.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use rocky_e2e::hearth::DriverKind;
use rocky_e2e::stack::StackOptions;

/// The tag of scenarios that need a Docker engine.
pub const DOCKER_TAG: &str = "docker";

/// The image tag tier profiles name for the stand-in (see `features/tiers/solo.yaml`).
pub const STANDIN_LOCAL_TAG: &str = "rocky-e2e/standin:local";

/// The chosen topology.
#[derive(Debug)]
pub struct Topology {
    pub driver: DriverKind,
    /// The compiled stand-in, for the `process` driver.
    pub standin_bin: Option<PathBuf>,
    /// One line for the output: which topology and why.
    pub description: String,
    /// Why `@docker` scenarios are skipped, when they are.
    pub docker_skip_reason: Option<String>,
}

static TOPOLOGY: OnceLock<Topology> = OnceLock::new();

/// The topology chosen by [`init`].
pub fn get() -> &'static Topology {
    TOPOLOGY
        .get()
        .expect("topology::init runs before any scenario")
}

/// `target/rocky-e2e`: caches and reports live beside the build.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("rocky-e2e")
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
    if let Some(t) = TOPOLOGY.get() {
        return Ok(t);
    }
    let cache = target_dir().join("cache");
    let use_docker = gate_open()
        || (policy == Policy::Best && rocky_e2e::hearth::docker::connect().await.is_ok());
    let topology = if use_docker {
        let endpoint = std::env::var("DOCKER_HOST")
            .unwrap_or_else(|_| "unix:///var/run/docker.sock (DOCKER_HOST unset)".into());
        let docker = rocky_e2e::hearth::docker::connect().await.map_err(|e| {
            format!(
                "ROCKY_E2E=1 requires a reachable Docker engine, and the engine at {endpoint} does not answer: {e}. Start the engine or point DOCKER_HOST at one; unset ROCKY_E2E to run on the embedded topology instead."
            )
        })?;
        let swept = rocky_e2e::hearth::docker::sweep_stale(&docker)
            .await
            .map_err(|e| e.to_string())?;
        if !swept.containers.is_empty() || !swept.networks.is_empty() {
            eprintln!(
                "rocky-e2e: removed leftovers of killed runs: {} containers, {} networks",
                swept.containers.len(),
                swept.networks.len()
            );
        }
        let image = rocky_e2e::images::ensure_standin_image(&docker, &cache)
            .await
            .map_err(|e| e.to_string())?;
        let (repo, tag) = STANDIN_LOCAL_TAG.split_once(':').expect("tag has a colon");
        docker
            .tag_image(
                &image.tag,
                Some(bollard::query_parameters::TagImageOptions {
                    repo: Some(repo.into()),
                    tag: Some(tag.into()),
                }),
            )
            .await
            .map_err(|e| format!("failed to tag {} as {STANDIN_LOCAL_TAG}: {e}", image.tag))?;
        Topology {
            driver: DriverKind::LocalDocker,
            standin_bin: None,
            description: format!(
                "topology: docker (driver local-docker, engine {endpoint}; stand-in image {} {} in {:?})",
                image.tag,
                if image.built { "built" } else { "reused" },
                image.elapsed
            ),
            docker_skip_reason: None,
        }
    } else {
        let bin = rocky_e2e::images::standin_binary(&cache).map_err(|e| e.to_string())?;
        Topology {
            driver: DriverKind::Process,
            standin_bin: Some(bin),
            description: match policy {
                Policy::Gate => "topology: embedded (driver process; ROCKY_E2E unset)".into(),
                Policy::Best => {
                    "topology: embedded (driver process; no Docker engine answered)".into()
                }
            },
            docker_skip_reason: Some(
                "needs a Docker engine: run with ROCKY_E2E=1 to include it".into(),
            ),
        }
    };
    Ok(TOPOLOGY.get_or_init(|| topology))
}

impl Topology {
    /// Stack options for one scenario in `dir`.
    pub fn stack_options(&self, dir: PathBuf) -> StackOptions {
        let mut o = StackOptions::new(self.driver, dir);
        o.standin_bin = self.standin_bin.clone();
        o
    }
}
