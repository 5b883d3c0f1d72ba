//! What every measurement needs, prepared once: the engine, the stand-in and its image, the
//! services image, hearth, the tier; and the topologies a measurement can run on.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bollard::Docker;
use rocky::hearth::DriverKind;
use rocky::tier::TierProfile;
use rocky_e2e::containers::ServiceImage;
use rocky_e2e::stack::{Services, StackOptions};

use crate::common::{Args, new_session};
use crate::cpu::load_average;

/// What every measurement needs: the engine, the stand-in, hearth, the tier.
pub(crate) struct Env {
    /// /proc/loadavg before anything ran: other work on the machine skews every figure.
    pub(crate) load_before: String,
    /// What preparing took, once: (step, wall time).
    pub(crate) setup: Vec<(String, Duration)>,
    pub(crate) docker: Option<Docker>,
    pub(crate) docker_note: String,
    /// The console+worker image of the container topology (built from this build's binaries).
    pub(crate) services_image: Option<ServiceImage>,
    pub(crate) standin_bin: PathBuf,
    pub(crate) hearth_dir: PathBuf,
    pub(crate) tier: TierProfile,
    pub(crate) tiers_dir: PathBuf,
    /// Work directories of stacks and HATCH files; removed at the end unless `--keep`.
    pub(crate) scratch: PathBuf,
    pub(crate) scratch_guard: Option<tempfile::TempDir>,
}

impl Env {
    pub(crate) async fn prepare(args: &Args) -> anyhow::Result<Env> {
        let root = rocky_e2e::layout::current().root.clone();
        let target = rocky_e2e::layout::target_dir();
        let cache = target.join("cache");
        let load_before = load_average();
        let mut setup = Vec::new();
        let started = Instant::now();
        let standin_bin = rocky_e2e::images::standin_binary(&cache)?;
        setup.push((
            "stand-in binary (rustc, cached by content)".to_owned(),
            started.elapsed(),
        ));
        rocky_e2e::binaries::ensure_built().map_err(anyhow::Error::msg)?;
        let hearth_dir = rocky_e2e::stack::locate_hearth(&rocky_e2e::binaries::search_dirs())?
            .parent()
            .expect("hearth has a directory")
            .to_owned();
        let tiers_dir = root.join("features/tiers");
        let tier = TierProfile::from_file(&tiers_dir.join("solo.yaml"))?;
        std::fs::create_dir_all(&target)?;
        let scratch = tempfile::Builder::new()
            .prefix("bench-")
            .tempdir_in(&target)?;
        let (docker, docker_note) = if args.docker {
            match rocky::docker::connect().await {
                Ok(d) => {
                    let stale = rocky::docker::sweep::sweep_stale(&d).await?;
                    if !stale.containers.is_empty() || !stale.networks.is_empty() {
                        eprintln!(
                            "bench: removed leftovers of killed runs: {} containers, {} networks",
                            stale.containers.len(),
                            stale.networks.len()
                        );
                    }
                    let image = rocky_e2e::images::ensure_standin_image(&d, &cache).await?;
                    setup.push((
                        format!(
                            "stand-in image ({})",
                            if image.built {
                                "built"
                            } else {
                                "unchanged: reused"
                            }
                        ),
                        image.elapsed,
                    ));
                    rocky_e2e::images::tag_standin_local(&d, &image.tag)
                        .await
                        .map_err(anyhow::Error::msg)?;
                    let note = engine_note(&d).await;
                    (Some(d), note)
                }
                Err(e) => (None, format!("no Docker engine ({e}); docker rows skipped")),
            }
        } else {
            (None, "docker rows skipped (--no-docker)".into())
        };
        let services_image = match &docker {
            Some(d) => {
                let bins =
                    rocky_e2e::images::ServiceBinaries::locate(std::slice::from_ref(&hearth_dir))?;
                let image = rocky_e2e::images::ensure_services_image(d, &cache, &bins).await?;
                setup.push((
                    format!(
                        "console+worker image ({})",
                        if image.built {
                            "built"
                        } else {
                            "unchanged: reused"
                        }
                    ),
                    image.elapsed,
                ));
                // The harness's policy: keep the newest few services images, never this one.
                rocky_e2e::images::prune_services_images(d, &image.tag).await?;
                Some(ServiceImage::from(&image))
            }
            None => None,
        };
        Ok(Env {
            load_before,
            setup,
            docker,
            docker_note,
            services_image,
            standin_bin,
            hearth_dir,
            tier,
            tiers_dir,
            scratch: scratch.path().to_owned(),
            scratch_guard: Some(scratch),
        })
    }

    pub(crate) fn header(&self, args: &Args) -> String {
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        let mem = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|m| {
                m.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<u64>().ok())
            })
            .map_or("?".into(), |kb| format!("{:.1} GiB", kb as f64 / 1048576.0));
        format!(
            "rocky-e2e bench: medians of {} runs ({} per concurrency level) after 1 warm-up; \
             {cores} cores, {mem} RAM, load average before the run {}; {}",
            args.runs, args.conc_runs, self.load_before, self.docker_note
        )
    }

    pub(crate) fn options(&self, topology: Topology, name: &str) -> StackOptions {
        let dir = self.scratch.join(name);
        let mut o = StackOptions::new(topology.driver(), dir);
        o.hearth_search = vec![self.hearth_dir.clone()];
        o.tiers_dir = self.tiers_dir.clone();
        o.session = new_session(name);
        match topology {
            Topology::Embedded => o.standin_bin = Some(self.standin_bin.clone()),
            Topology::Docker => {}
            Topology::Containers => {
                o.services = Services::Containers(
                    self.services_image
                        .clone()
                        .expect("the container topology is only listed with its image"),
                );
            }
        }
        o
    }
}

pub(crate) async fn engine_note(docker: &Docker) -> String {
    match docker.info().await {
        Ok(info) => format!(
            "Docker {} (API {}), storage driver {}",
            info.server_version.unwrap_or_default(),
            docker.client_version(),
            info.driver.unwrap_or_default()
        ),
        Err(e) => format!("Docker engine info unavailable: {e}"),
    }
}

/// Which stack a measurement runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Topology {
    /// hearth with the `process` driver; console and worker in this process.
    Embedded,
    /// hearth with the `local-docker` driver; console and worker in this process.
    Docker,
    /// hearth with the `local-docker` driver; console and worker each in a container (what
    /// `ROCKY_E2E=1 cargo test` runs).
    Containers,
}

impl Topology {
    pub(crate) fn driver(self) -> DriverKind {
        match self {
            Topology::Embedded => DriverKind::Process,
            Topology::Docker | Topology::Containers => DriverKind::LocalDocker,
        }
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Topology::Embedded => "embedded",
            Topology::Docker => "LocalDocker",
            Topology::Containers => "containers",
        }
    }

    pub(crate) fn describe(self) -> &'static str {
        match self {
            Topology::Embedded => "process driver, console+worker in process",
            Topology::Docker => "docker driver, console+worker in process",
            Topology::Containers => "docker driver, console+worker in containers",
        }
    }
}

pub(crate) fn topologies(env: &Env) -> Vec<Topology> {
    let mut t = vec![Topology::Embedded];
    if env.docker.is_some() {
        t.push(Topology::Docker);
    }
    if env.services_image.is_some() {
        t.push(Topology::Containers);
    }
    t
}
