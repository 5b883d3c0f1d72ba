//! `cargo bench --bench play`: the play against the raw Docker floor, concurrency scaling, and
//! HATCH/KAHN throughput, printed as one table (issue 6; the latest output is in BENCHMARKS.md).
//!
//! Every figure is the median of several runs taken after a warm-up run, and every ratio is
//! taken between medians measured in this same process run, so machine drift between runs does
//! not enter a ratio. Options (after `--`):
//!
//! ```text
//! --runs N        measured runs per single measurement (default 7)
//! --conc-runs N   measured runs per concurrency level (default 3)
//! --no-docker     skip everything that needs a Docker engine
//! --keep          keep the work directories (hearth logs) under target/rocky-e2e/bench-*
//! --only LIST     run only these sections: start,play,floor,engine,probe,concurrency,hatch,kahn
//!                 (`play` includes the floor, which its ratio needs; `engine`, the floor
//!                 without each engine feature the play uses, runs only when named)
//! ```
//!
//! Bounds: traffic goes only to loopback and to containers this process made; every play,
//! floor run and stack start has a deadline; every Docker object is labelled
//! `rocky.managed-by=rocky-e2e` with a `bench-…` session and this process's pid, swept by
//! session at the end (even after an error) and by `sweep_stale` at the next start if this
//! process was killed.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail, ensure};
use bollard::Docker;
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, NetworkCreateRequest, NetworkingConfig,
    PortBinding,
};
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, RemoveContainerOptions, StartContainerOptions,
    StopContainerOptions, TagImageOptions,
};
use futures::future::{join_all, try_join_all};
use rocky::hatch::{Event, EventKind, Hatch};
use rocky::hearth::client::HearthClient;
use rocky::hearth::{DriverKind, Status, labels};
use rocky::kahn::{self, Frame, NodeState, RunStatus};
use rocky::tier::TierProfile;
use rocky_e2e::containers::ServiceImage;
use rocky_e2e::stack::{Services, Stack, StackOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The image tier profiles name for the stand-in (features/tiers/solo.yaml).
const STANDIN_LOCAL_TAG: &str = "rocky-e2e/standin:local";
/// Same grace as hearth's `docker stop` (src/hearth/docker.rs).
const STOP_GRACE_SECS: i32 = 10;
/// Longest one play, one floor run or one stack start may take.
const DEADLINE: Duration = Duration::from_secs(120);
/// Longest a concurrency level may take as a whole.
const CONCURRENT_DEADLINE: Duration = Duration::from_secs(300);
/// Records in the HATCH measurements; frames per KAHN measurement.
const HATCH_RECORDS: usize = 100_000;
const KAHN_FRAMES: usize = 100_000;
/// The concurrency levels.
const LEVELS: [usize; 3] = [1, 4, 16];
/// The prompts of the play's run.
const PROMPTS: usize = 4;
/// Plays over which the CPU of one embedded play is measured (/proc counts in 10 ms ticks).
const CPU_PLAYS: usize = 100;

/// Targets from the issue (2-core machine).
const TARGET_FLOOR_RATIO: f64 = 1.15;
const TARGET_EMBEDDED_MS: f64 = 150.0;
const TARGET_CONCURRENCY_RATIO: f64 = 4.0;
const TARGET_APPEND_PER_S: f64 = 100_000.0;
const TARGET_VERIFY_PER_S: f64 = 1_000_000.0;

struct Args {
    runs: usize,
    conc_runs: usize,
    docker: bool,
    /// Sections to run; empty means all.
    only: Vec<String>,
    /// Keep the work directories (hearth logs, HATCH files) instead of removing them.
    keep: bool,
}

/// The sections, in the order they run.
const SECTIONS: [&str; 8] = [
    "start",
    "play",
    "floor",
    "engine",
    "probe",
    "concurrency",
    "hatch",
    "kahn",
];

impl Args {
    /// Whether `section` runs: every one but `engine` by default, else those named by `--only`.
    fn wants(&self, section: &str) -> bool {
        if self.only.is_empty() {
            section != "engine"
        } else {
            self.only.iter().any(|s| s == section)
        }
    }
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        runs: 7,
        conc_runs: 3,
        docker: true,
        only: Vec::new(),
        keep: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut count = |name: &str| -> anyhow::Result<usize> {
            let n: usize = it
                .next()
                .ok_or_else(|| anyhow!("{name} needs a number"))?
                .parse()
                .with_context(|| format!("{name} needs a number"))?;
            ensure!((1..=50).contains(&n), "{name} must be 1..=50");
            Ok(n)
        };
        match a.as_str() {
            "--runs" => args.runs = count("--runs")?,
            "--conc-runs" => args.conc_runs = count("--conc-runs")?,
            "--no-docker" => args.docker = false,
            "--keep" => args.keep = true,
            "--only" => {
                let list = it
                    .next()
                    .ok_or_else(|| anyhow!("--only needs a section list"))?;
                for section in list.split(',') {
                    ensure!(
                        SECTIONS.contains(&section),
                        "unknown section {section:?}; sections: {}",
                        SECTIONS.join(",")
                    );
                    args.only.push(section.to_owned());
                }
            }
            // `cargo bench` passes `--bench`; a name filter may follow it.
            _ => {}
        }
    }
    Ok(args)
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("bench: {e:#}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Sessions this process gave to Docker objects, swept at the end whatever happened.
static SESSIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn new_session(what: &str) -> String {
    let s = format!("bench-{what}-{}", rocky::ids::random_hex(4));
    SESSIONS.lock().expect("sessions").push(s.clone());
    s
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mut env = Env::prepare(&args).await?;
    let mut table = Table::default();
    let result = measure_all(&args, &env, &mut table).await;
    // Sweep what any failed run may have left, by this process's sessions only (other runs on
    // the same engine are left alone).
    if let Some(docker) = &env.docker {
        let sessions = std::mem::take(&mut *SESSIONS.lock().expect("sessions"));
        for s in sessions {
            match rocky::docker::sweep::sweep(docker, Some(&s)).await {
                Ok(r) if !r.containers.is_empty() || !r.networks.is_empty() => eprintln!(
                    "bench: swept leftovers of {s}: {} containers, {} networks",
                    r.containers.len(),
                    r.networks.len()
                ),
                Ok(_) => {}
                Err(e) => eprintln!("bench: sweep of {s} failed: {e}"),
            }
        }
    }
    if args.keep
        && let Some(dir) = env.scratch_guard.take()
    {
        eprintln!("bench: work directories kept in {}", dir.keep().display());
    }
    println!("{}", env.header(&args));
    println!();
    print!("{}", table.render());
    result
}

/// What every measurement needs: the engine, the stand-in, hearth, the tier.
struct Env {
    /// /proc/loadavg before anything ran: other work on the machine skews every figure.
    load_before: String,
    /// What preparing took, once: (step, wall time).
    setup: Vec<(String, Duration)>,
    docker: Option<Docker>,
    docker_note: String,
    /// The console+worker image of the container topology (built from this build's binaries).
    services_image: Option<ServiceImage>,
    standin_bin: PathBuf,
    hearth_dir: PathBuf,
    tier: TierProfile,
    tiers_dir: PathBuf,
    /// Work directories of stacks and HATCH files; removed at the end unless `--keep`.
    scratch: PathBuf,
    scratch_guard: Option<tempfile::TempDir>,
}

impl Env {
    async fn prepare(args: &Args) -> anyhow::Result<Env> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"))
            .join("rocky-e2e");
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
                    let (repo, tag) = STANDIN_LOCAL_TAG.split_once(':').expect("a colon");
                    d.tag_image(
                        &image.tag,
                        Some(TagImageOptions {
                            repo: Some(repo.into()),
                            tag: Some(tag.into()),
                        }),
                    )
                    .await
                    .with_context(|| format!("tag {} as {STANDIN_LOCAL_TAG}", image.tag))?;
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

    fn header(&self, args: &Args) -> String {
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

    fn options(&self, topology: Topology, name: &str) -> StackOptions {
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

async fn engine_note(docker: &Docker) -> String {
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
enum Topology {
    /// hearth with the `process` driver; console and worker in this process.
    Embedded,
    /// hearth with the `local-docker` driver; console and worker in this process.
    Docker,
    /// hearth with the `local-docker` driver; console and worker each in a container (what
    /// `ROCKY_E2E=1 cargo test` runs).
    Containers,
}

impl Topology {
    fn driver(self) -> DriverKind {
        match self {
            Topology::Embedded => DriverKind::Process,
            Topology::Docker | Topology::Containers => DriverKind::LocalDocker,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Topology::Embedded => "embedded",
            Topology::Docker => "LocalDocker",
            Topology::Containers => "containers",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Topology::Embedded => "process driver, console+worker in process",
            Topology::Docker => "docker driver, console+worker in process",
            Topology::Containers => "docker driver, console+worker in containers",
        }
    }
}

async fn measure_all(args: &Args, env: &Env, table: &mut Table) -> anyhow::Result<()> {
    let http = reqwest::Client::builder()
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?;

    // --- setup, once ---
    table.section("setup (once per run, not repeated): images and the stand-in");
    for (step, took) in &env.setup {
        table.row(Row {
            name: step.clone(),
            median: fmt_ms(*took),
            spread: "1 run".into(),
            ratio: String::new(),
            target: String::new(),
            verdict: String::new(),
        });
    }

    // --- stack start ---
    if args.wants("start") {
        table.section("stack start: hearth spawned, console and worker ready");
    }
    for topology in topologies(env).into_iter().filter(|_| args.wants("start")) {
        eprintln!("bench: stack start, {}…", topology.name());
        let mut n = 0;
        let samples = repeat(args.runs, || {
            n += 1;
            bounded(start_stop(env, topology, n))
        })
        .await?;
        table.duration(
            &format!("stack start/{}", topology.name()),
            &samples,
            |s| s.0,
            "",
            topology.describe(),
        );
        table.part("stop", &samples, |s| s.1);
    }

    // --- the play on the embedded topology ---
    if args.wants("play") {
        eprintln!("bench: play, embedded…");
        table.section("play/embedded: the six acts on a running stack, one at a time");
        let stack = Stack::start(&env.options(Topology::Embedded, "play-embedded"))
            .await
            .context("start the stack")?;
        let mut n = 0;
        let samples = repeat(args.runs, || {
            n += 1;
            let slug = format!("p{n}");
            let (http, stack) = (&http, &stack);
            async move { bounded(play(http, stack, &slug)).await }
        })
        .await;
        let cpu = match samples {
            Ok(_) => embedded_cpu(&http, &stack).await,
            Err(_) => Ok(String::new()),
        };
        let stopped = stack.stop().await;
        let cpu = cpu?;
        let samples = samples?;
        stopped.map_err(|e| anyhow!("stop the stack: {e}"))?;
        let total = median(samples.iter().map(|s| s.total));
        table.row(Row {
            name: "play/embedded".into(),
            median: fmt_ms(total),
            spread: spread(samples.iter().map(|s| s.total)),
            ratio: cpu,
            target: format!("< {TARGET_EMBEDDED_MS} ms"),
            verdict: verdict(ms(total) < TARGET_EMBEDDED_MS),
        });
        play_parts(table, &samples);
    }

    // --- the floor and the play on the engine, alternating ---
    if let Some(docker) = env.docker.as_ref() {
        if args.wants("play") {
            floor_and_play(args, env, docker, &http, table).await?;
        } else if args.wants("floor") {
            eprintln!("bench: floor…");
            table.section("floor: network + 2 containers, raw bollard");
            let session = new_session("floor");
            let mut n = 0;
            let cpu = CpuMeter::start();
            let samples = repeat(args.runs, || {
                n += 1;
                bounded(floor_once(docker, &session, &env.tier, n, Floor::PLAY))
            })
            .await?;
            let cpu = format!("machine CPU {}", cpu.per_run(args.runs + 1));
            table.duration("floor", &samples, |s| s.total, "", &cpu);
            floor_parts(table, &samples);
        }
        if args.wants("engine") {
            engine_costs(args, env, docker, table).await?;
        }
    }

    // --- health probes of a service that is slow to listen ---
    if args.wants("probe") {
        probe_lag(args, table).await?;
    }

    // --- concurrency ---
    let mut floor_at = HashMap::new();
    for topology in topologies(env)
        .into_iter()
        .filter(|_| args.wants("concurrency"))
    {
        eprintln!("bench: concurrency, {}…", topology.name());
        table.section(&format!(
            "concurrency/{}: N plays at once against one stack, N distinct workspaces",
            topology.name()
        ));
        let stack = Stack::start(&env.options(topology, &format!("conc-{}", topology.name())))
            .await
            .context("start the stack")?;
        let result = concurrency(args, env, &http, &stack, topology, &mut floor_at, table).await;
        let stopped = stack.stop().await;
        result?;
        stopped.map_err(|e| anyhow!("stop the stack: {e}"))?;
    }

    // --- HATCH ---
    if args.wants("hatch") {
        hatch_section(args, env, table)?;
    }
    if args.wants("kahn") {
        kahn_section(args, table)?;
    }
    Ok(())
}

/// CPU of one embedded play, over more plays than are timed: /proc counts in 10 ms ticks.
async fn embedded_cpu(http: &reqwest::Client, stack: &Stack) -> anyhow::Result<String> {
    let meter = CpuMeter::start();
    for i in 0..CPU_PLAYS {
        bounded(play(http, stack, &format!("cpu{i}"))).await?;
    }
    Ok(format!(
        "CPU/play (over {CPU_PLAYS}): framework {:.1}, machine {:.1} core-ms",
        meter.own_ms() / CPU_PLAYS as f64,
        meter.core_ms() / CPU_PLAYS as f64
    ))
}

fn play_parts(table: &mut Table, samples: &[PlayTimes]) {
    for (part, f) in PlayTimes::PARTS {
        table.part(part, samples, f);
    }
    table.part_ms("hearth driver (provision+teardown)", samples, |s| {
        s.driver_ms
    });
    table.part_ms("of which health checks", samples, |s| s.health_ms);
}

fn floor_parts(table: &mut Table, samples: &[FloorTimes]) {
    for (name, f) in FloorTimes::PARTS {
        table.part(name, samples, f);
    }
}

/// The floor and the play on each Docker topology, one run of each in turn (the order rotating
/// every round), so all of them see the same engine and the same machine load; each play's
/// ratio is of its median to the floor's.
async fn floor_and_play(
    args: &Args,
    env: &Env,
    docker: &Docker,
    http: &reqwest::Client,
    table: &mut Table,
) -> anyhow::Result<()> {
    let topologies: Vec<Topology> = topologies(env)
        .into_iter()
        .filter(|t| *t != Topology::Embedded)
        .collect();
    eprintln!("bench: floor and the play on the engine, alternating…");
    let session = new_session("floor");
    let mut stacks = Vec::new();
    let mut started = Ok(());
    for t in &topologies {
        match Stack::start(&env.options(*t, &format!("play-{}", t.name()))).await {
            Ok(s) => stacks.push(s),
            Err(e) => {
                started = Err(anyhow!(e).context(format!("start the {} stack", t.name())));
                break;
            }
        }
    }
    let mut floors = Vec::new();
    let mut plays: Vec<Vec<PlayTimes>> = vec![Vec::new(); stacks.len()];
    // CPU time (core-ms) of the floor's runs and of each topology's plays: the machine's, and
    // this process's with its children's (hearth; the framework's own share).
    let mut cpu = vec![0.0; stacks.len() + 1];
    let mut own = vec![0.0; stacks.len() + 1];
    let runs = async {
        started?;
        for round in 0..=args.runs {
            // Slot 0 is the floor, slot k the play on stacks[k - 1].
            let slots = stacks.len() + 1;
            for step in 0..slots {
                let slot = (round + step) % slots;
                let meter = CpuMeter::start();
                if slot == 0 {
                    let f = bounded(floor_once(docker, &session, &env.tier, round, Floor::PLAY))
                        .await?;
                    if round > 0 {
                        floors.push(f);
                    }
                } else {
                    let p = bounded(play(http, &stacks[slot - 1], &format!("p{round}"))).await?;
                    if round > 0 {
                        plays[slot - 1].push(p);
                    }
                }
                cpu[slot] += meter.core_ms();
                own[slot] += meter.own_ms();
            }
        }
        anyhow::Ok(())
    }
    .await;
    let mut stop_errors = Vec::new();
    for stack in stacks {
        if let Err(e) = stack.stop().await {
            stop_errors.push(e);
        }
    }
    runs?;
    ensure!(
        stop_errors.is_empty(),
        "stop a stack: {}",
        stop_errors.join("; ")
    );
    let per_run = |slot: usize| {
        let runs = (args.runs + 1) as f64;
        format!(
            "CPU: framework {:.0}, machine {:.0} core-ms/run",
            own[slot] / runs,
            cpu[slot] / runs
        )
    };
    table.section("floor vs the play on the engine: alternating runs, one at a time");
    let floor = median(floors.iter().map(|s| s.total));
    table.duration(
        "floor (raw bollard: network + 2 containers)",
        &floors,
        |s| s.total,
        "",
        &per_run(0),
    );
    floor_parts(table, &floors);
    for (k, t) in topologies.iter().enumerate() {
        let samples = &plays[k];
        let total = median(samples.iter().map(|s| s.total));
        let ratio = ms(total) / ms(floor);
        table.row(Row {
            name: format!("play/{}", t.name()),
            median: fmt_ms(total),
            spread: spread(samples.iter().map(|s| s.total)),
            ratio: format!("{ratio:.2} × floor; {}", per_run(k + 1)),
            target: format!("≤ {TARGET_FLOOR_RATIO} × floor"),
            verdict: verdict(ratio <= TARGET_FLOOR_RATIO),
        });
        play_parts(table, samples);
    }
    Ok(())
}

/// What the floor's engine time is spent on: the floor without each engine feature the play
/// uses, one workspace and 16 at once (opt-in: `--only engine`).
async fn engine_costs(
    args: &Args,
    env: &Env,
    docker: &Docker,
    table: &mut Table,
) -> anyhow::Result<()> {
    table.section("engine: the floor without each feature the play uses, 1 and 16 at once");
    let session = new_session("engine");
    let mut batch = 0;
    for how in Floor::VARIANTS {
        eprintln!("bench: engine, {}…", how.describe());
        let mut one = Duration::ZERO;
        for n in [1, 16] {
            let cpu = CpuMeter::start();
            let samples = repeat(args.conc_runs, || {
                batch += 1;
                let (session, tier) = (&session, &env.tier);
                bounded_for(CONCURRENT_DEADLINE, async move {
                    let started = Instant::now();
                    let each = try_join_all(
                        (0..n).map(|i| floor_once(docker, session, tier, batch * 100 + i, how)),
                    )
                    .await?;
                    anyhow::Ok((started.elapsed(), each))
                })
            })
            .await?;
            let per_ws = cpu.core_ms() / ((args.conc_runs + 1) * n) as f64;
            let each: Vec<FloorTimes> = samples.iter().flat_map(|(_, e)| e.clone()).collect();
            let part = |f: fn(&FloorTimes) -> Duration| fmt_ms(median(each.iter().map(f)));
            let phases = format!(
                "network {}+{}, start {}, stop+rm {}",
                part(|t| t.network),
                part(|t| t.network_rm),
                part(|t| t.start),
                part(|t| t.stop_remove)
            );
            let samples: Vec<Duration> = samples.iter().map(|(wall, _)| *wall).collect();
            let wall = median(samples.iter().copied());
            if n == 1 {
                one = wall;
            }
            table.row(Row {
                name: format!("{n} at once: {}", how.describe()),
                median: fmt_ms(wall),
                spread: spread(samples.iter().copied()),
                ratio: format!(
                    "{:.2} × one; machine CPU {per_ws:.0} core-ms/workspace; medians: {phases}",
                    ms(wall) / ms(one)
                ),
                target: String::new(),
                verdict: String::new(),
            });
        }
    }
    Ok(())
}

fn hatch_section(args: &Args, env: &Env, table: &mut Table) -> anyhow::Result<()> {
    eprintln!("bench: HATCH…");
    table.section(&format!("HATCH: {HATCH_RECORDS} records, JSONL file"));
    let dir = env.scratch.join("hatch");
    std::fs::create_dir_all(&dir)?;
    let mut appends = Vec::new();
    let mut verifies = Vec::new();
    for i in 0..=args.runs {
        let (append, verify) = hatch_once(&dir.join(format!("h{i}.jsonl")))?;
        if i > 0 {
            appends.push(append);
            verifies.push(verify);
        }
    }
    table.rate(
        "HATCH append, sealed (a write(2) per record + a pwrite(2) of the seal, no fsync)",
        &appends,
        TARGET_APPEND_PER_S,
    );
    table.rate("HATCH verify_bytes", &verifies, TARGET_VERIFY_PER_S);
    // Durability modes (console --hatch-sync), sealed, at 1 and 16 writer threads.
    for sync in rocky::hatch::SyncMode::ALL {
        for writers in [1usize, 16] {
            let mut rates = Vec::new();
            for i in 0..=args.runs {
                let path = dir.join(format!("s-{sync}-{writers}-{i}.jsonl"));
                let rate = hatch_sync_once(&path, sync, writers)?;
                if i > 0 {
                    rates.push(rate);
                }
            }
            let target = if sync == rocky::hatch::SyncMode::None {
                TARGET_APPEND_PER_S
            } else {
                0.0
            };
            table.rate(
                &format!("HATCH append, sealed, --hatch-sync {sync}, {writers} writer(s)"),
                &rates,
                target,
            );
        }
    }
    Ok(())
}

/// Records per mode: fsync-bound modes get fewer so the bench stays short.
fn sync_records(sync: rocky::hatch::SyncMode) -> usize {
    match sync {
        rocky::hatch::SyncMode::None => HATCH_RECORDS,
        rocky::hatch::SyncMode::Batch => 20_000,
        rocky::hatch::SyncMode::Always => 2_000,
    }
}

/// Appends records from `writers` threads to a new sealed log with `sync`; records/s.
fn hatch_sync_once(
    path: &Path,
    sync: rocky::hatch::SyncMode,
    writers: usize,
) -> anyhow::Result<f64> {
    let total = sync_records(sync);
    let key = rocky::hatch::default_key_path(path);
    let options = rocky::hatch::HatchOptions::sealed(&key, sync)?;
    let hatch = std::sync::Arc::new(Hatch::open(path, options)?);
    let per = total / writers;
    let events = hatch_events();
    let started = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let handles: Vec<_> = (0..writers)
            .map(|_| {
                let hatch = hatch.clone();
                let events = events.clone();
                scope.spawn(move || -> anyhow::Result<()> {
                    for e in events.into_iter().cycle().take(per) {
                        hatch.append(e)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for h in handles {
            h.join().map_err(|_| anyhow!("writer panicked"))??;
        }
        Ok(())
    })?;
    let rate = (per * writers) as f64 / started.elapsed().as_secs_f64();
    drop(hatch);
    let summary = rocky::hatch::verify_sealed_file(path, None)?;
    ensure!(
        summary.seal.records == (per * writers) as u64,
        "sealed {summary:?}"
    );
    for p in [path.to_owned(), rocky::hatch::seal_path(path), key] {
        std::fs::remove_file(p)?;
    }
    Ok(rate)
}

fn kahn_section(args: &Args, table: &mut Table) -> anyhow::Result<()> {
    eprintln!("bench: KAHN…");
    table.section(&format!("KAHN: {KAHN_FRAMES} frames"));
    let frames = kahn_frames();
    let mut rates = Vec::new();
    for i in 0..=args.runs {
        let rate = kahn_once(&frames)?;
        if i > 0 {
            rates.push(rate);
        }
    }
    table.rate("KAHN validate", &rates, 0.0);
    Ok(())
}

fn topologies(env: &Env) -> Vec<Topology> {
    let mut t = vec![Topology::Embedded];
    if env.docker.is_some() {
        t.push(Topology::Docker);
    }
    if env.services_image.is_some() {
        t.push(Topology::Containers);
    }
    t
}

async fn concurrency(
    args: &Args,
    env: &Env,
    http: &reqwest::Client,
    stack: &Stack,
    topology: Topology,
    floor_at: &mut HashMap<usize, Duration>,
    table: &mut Table,
) -> anyhow::Result<()> {
    let floor_session = new_session("cfloor");
    // The CPU one embedded play needs alone (hearth and the stand-in processes included),
    // over enough plays for /proc's 10 ms ticks: N = 1 alone is too few.
    let mut alone = None;
    if topology == Topology::Embedded {
        let meter = CpuMeter::start();
        for i in 0..CPU_PLAYS {
            bounded(play(http, stack, &format!("cpu{i}"))).await?;
        }
        alone = Some(meter.own_ms() / CPU_PLAYS as f64);
    }
    let mut one = None;
    let mut floor_one = None;
    let mut batch = 0;
    for n in LEVELS {
        // The floor at the same concurrency: what the engine alone takes for N workspaces.
        let floor = match (&env.docker, topology) {
            (Some(docker), Topology::Docker) => {
                let cpu = CpuMeter::start();
                let samples = repeat(args.conc_runs, || {
                    batch += 1;
                    let (session, tier) = (&floor_session, &env.tier);
                    bounded_for(CONCURRENT_DEADLINE, async move {
                        let started = Instant::now();
                        let each = try_join_all((0..n).map(|i| {
                            floor_once(docker, session, tier, batch * 100 + i, Floor::PLAY)
                        }))
                        .await?;
                        anyhow::Ok((started.elapsed(), each))
                    })
                })
                .await?;
                let each: Vec<FloorTimes> = samples
                    .iter()
                    .flat_map(|(_, e)| e.iter().copied())
                    .collect();
                let samples: Vec<Duration> = samples.iter().map(|(wall, _)| *wall).collect();
                let cpu = format!(
                    "{}; machine {:.0} core-ms/workspace",
                    cpu.busy_cores(),
                    cpu.core_ms() / ((args.conc_runs + 1) * n) as f64
                );
                let wall = median(samples.iter().copied());
                let one = *floor_one.get_or_insert(wall);
                table.row(Row {
                    name: format!("{n} floors at once (raw bollard)"),
                    median: fmt_ms(wall),
                    spread: spread(samples.iter().copied()),
                    ratio: format!("{:.2} × one floor; {cpu}", ms(wall) / ms(one)),
                    target: String::new(),
                    verdict: String::new(),
                });
                if n == LEVELS[LEVELS.len() - 1] {
                    // Where a workspace's time goes when the engine has n of them at once.
                    table.part("one workspace's lifecycle, all at once", &each, |s| s.total);
                    floor_parts(table, &each);
                }
                floor_at.insert(n, wall);
                Some(wall)
            }
            _ => floor_at.get(&n).copied(),
        };
        reset_peak_memory();
        let meter = CpuMeter::start();
        let samples = repeat(args.conc_runs, || {
            batch += 1;
            let prefix = format!("c{batch}-");
            bounded_for(CONCURRENT_DEADLINE, plays_at_once(http, stack, n, prefix))
        })
        .await?;
        let plays = ((args.conc_runs + 1) * n) as f64;
        let (own, machine) = (meter.own_ms(), meter.core_ms());
        let wall = median(samples.iter().copied());
        let one = *one.get_or_insert(wall);
        let ratio = ms(wall) / ms(one);
        // Below ~100 core-ms in all, the 10 ms ticks make a per-play figure meaningless.
        let readable = |total: f64| (total >= 100.0).then_some(total / plays);
        let per_play = |total: f64| {
            readable(total).map_or("–".into(), |c| {
                if c >= 100.0 {
                    format!("{c:.0}")
                } else {
                    format!("{c:.1}")
                }
            })
        };
        let cpu = format!(
            "CPU/play: framework {}, machine {} core-ms",
            per_play(own),
            per_play(machine)
        );
        // The CPU a play took at this level: n plays cannot end before the cores have done n
        // times that work. At N = 1 too few ticks may have passed; the batch above then says
        // what a play costs alone. At N > 1 only this level's own figure is a bound.
        let work = if topology == Topology::Embedded {
            readable(own)
        } else {
            readable(machine)
        };
        let work = work.or(if n == 1 { alone } else { None });
        let bound = work.map_or("–".into(), |w| {
            format!("{:.2}", n as f64 * w / cores() as f64 / ms(one))
        });
        let (target, ok) = if n == 16 {
            (
                format!("< {TARGET_CONCURRENCY_RATIO} × one play"),
                Some(ratio < TARGET_CONCURRENCY_RATIO),
            )
        } else {
            (String::new(), None)
        };
        let vs_floor = floor.map_or(String::new(), |f| {
            format!("; {:.2} × floor at {n}", ms(wall) / ms(f))
        });
        table.row(Row {
            name: format!("{n} plays at once/{}", topology.name()),
            median: fmt_ms(wall),
            spread: spread(samples.iter().copied()),
            ratio: format!(
                "{ratio:.2} × one (CPU bound ≥ {bound}){vs_floor}; {}; {cpu}; peak RSS {}",
                meter.busy_cores(),
                peak_memory()
            ),
            target,
            verdict: ok.map(verdict).unwrap_or_default(),
        });
    }
    Ok(())
}

/// How late hearth's health probing (`wait_healthy`, both drivers) sees a service that starts
/// listening some time after it was started: a real service boots for a while, the stand-in
/// does not, so the play itself never shows this cost.
async fn probe_lag(args: &Args, table: &mut Table) -> anyhow::Result<()> {
    eprintln!("bench: health probe lag…");
    table.section("health probe: a service that listens late, seen how much later");
    for delay_ms in [0u64, 30, 100, 230, 500] {
        let delay = Duration::from_millis(delay_ms);
        let samples = repeat(args.runs, || bounded(probe_once(delay))).await?;
        table.duration(
            &format!("listening after {delay_ms} ms"),
            &samples,
            |d| *d,
            "",
            "time from listening to healthy",
        );
    }
    Ok(())
}

async fn probe_once(delay: Duration) -> anyhow::Result<Duration> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let addr = socket.local_addr()?;
    // Bound but not listening yet: connections are refused, as with a booting service.
    let listening_at = Instant::now() + delay;
    let server = tokio::spawn(listen_late(socket, listening_at));
    let result = rocky::hearth::driver::health::wait_healthy(
        &addr.to_string(),
        "/healthz",
        Instant::now() + Duration::from_secs(10),
    )
    .await;
    let lag = listening_at.elapsed();
    server.abort();
    result.map_err(|e| anyhow!("{e}"))?;
    Ok(lag)
}

/// Starts listening at `at`, then answers every request 200.
async fn listen_late(
    socket: tokio::net::TcpSocket,
    at: Instant,
) -> std::io::Result<std::convert::Infallible> {
    tokio::time::sleep_until(at.into()).await;
    let listener = socket.listen(16)?;
    loop {
        let (mut conn, _) = listener.accept().await?;
        let mut head = [0u8; 512];
        let _ = conn.read(&mut head).await;
        let _ = conn
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            .await;
    }
}

async fn plays_at_once(
    http: &reqwest::Client,
    stack: &Stack,
    n: usize,
    prefix: String,
) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let plays = (0..n).map(|i| {
        let slug = format!("{prefix}{i}");
        async move { play(http, stack, &slug).await }
    });
    try_join_all(plays).await?;
    Ok(started.elapsed())
}

/// One warm-up run, then `runs` measured ones.
async fn repeat<T, F, Fut>(runs: usize, mut once: F) -> anyhow::Result<Vec<T>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<T>>,
{
    once().await.context("warm-up run")?;
    let mut samples = Vec::with_capacity(runs);
    for i in 0..runs {
        samples.push(once().await.with_context(|| format!("run {}", i + 1))?);
    }
    Ok(samples)
}

async fn bounded<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    bounded_for(DEADLINE, f).await
}

async fn bounded_for<T>(
    deadline: Duration,
    f: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(deadline, f)
        .await
        .map_err(|_| anyhow!("did not finish within {deadline:?}"))?
}

// ---------------------------------------------------------------------------------------------
// The floor: the play's Docker work done directly with bollard.

#[derive(Clone, Copy, Debug, Default)]
struct FloorTimes {
    network: Duration,
    create: Duration,
    start: Duration,
    inspect: Duration,
    health: Duration,
    stop_remove: Duration,
    network_rm: Duration,
    total: Duration,
}

type Part<T> = (&'static str, fn(&T) -> Duration);

impl FloorTimes {
    const PARTS: [Part<FloorTimes>; 7] = [
        ("create network", |s| s.network),
        ("create 2 containers (concurrent)", |s| s.create),
        ("start 2 containers (concurrent)", |s| s.start),
        ("inspect published ports", |s| s.inspect),
        ("GET /healthz until 200", |s| s.health),
        ("stop + remove containers", |s| s.stop_remove),
        ("remove network", |s| s.network_rm),
    ];
}

/// How the floor's workspace is made: the play's way ([`Floor::PLAY`]) or, for the `engine`
/// section, without one of the engine features it uses, to show what each costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Floor {
    /// A private bridge network per workspace (else the engine's default `bridge`).
    own_network: bool,
    /// The service port published on 127.0.0.1 (else probed on the container's bridge IP).
    publish: bool,
    /// The private network is `internal` (no route out, no NAT rules, no published ports).
    internal: bool,
    /// The private network masquerades outgoing traffic (the engine's default).
    masquerade: bool,
}

impl Floor {
    const PLAY: Floor = Floor {
        own_network: true,
        publish: true,
        internal: false,
        masquerade: true,
    };

    /// The variants the `engine` section measures.
    const VARIANTS: [Floor; 6] = [
        Floor::PLAY,
        Floor {
            masquerade: false,
            ..Floor::PLAY
        },
        Floor {
            publish: false,
            ..Floor::PLAY
        },
        Floor {
            publish: false,
            internal: true,
            ..Floor::PLAY
        },
        Floor {
            own_network: false,
            ..Floor::PLAY
        },
        Floor {
            own_network: false,
            publish: false,
            ..Floor::PLAY
        },
    ];

    fn describe(self) -> &'static str {
        match (
            self.own_network,
            self.internal,
            self.masquerade,
            self.publish,
        ) {
            (true, false, true, true) => {
                "own network, port published on 127.0.0.1 (the play's way)"
            }
            (true, false, false, true) => "own network without masquerading, port published",
            (true, false, _, false) => "own network, no published port (probe the bridge IP)",
            (true, true, _, _) => "own internal network, no published port (probe the bridge IP)",
            (false, _, _, true) => "default bridge network, port published",
            (false, _, _, false) => "default bridge network, no published port",
        }
    }
}

async fn floor_once(
    docker: &Docker,
    session: &str,
    tier: &TierProfile,
    n: usize,
    how: Floor,
) -> anyhow::Result<FloorTimes> {
    let slug = format!("floor{n}");
    let network = format!("rocky-{session}-{slug}");
    let labels = HashMap::from([
        (
            labels::MANAGED_BY.to_owned(),
            labels::MANAGED_BY_VALUE.to_owned(),
        ),
        (labels::WORKSPACE.to_owned(), slug.clone()),
        (labels::SESSION.to_owned(), session.to_owned()),
        (labels::PID.to_owned(), std::process::id().to_string()),
    ]);
    let mut containers = Vec::new();
    let result = floor_work(docker, tier, &network, &labels, how, &mut containers).await;
    if result.is_err() {
        // Leave nothing behind; the session sweep at the end catches anything this misses.
        for id in &containers {
            let _ = docker
                .remove_container(
                    id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
        }
        if how.own_network {
            let _ = docker.remove_network(&network).await;
        }
    }
    result
}

async fn floor_work(
    docker: &Docker,
    tier: &TierProfile,
    network: &str,
    labels: &HashMap<String, String>,
    how: Floor,
    containers: &mut Vec<String>,
) -> anyhow::Result<FloorTimes> {
    let mut t = FloorTimes::default();
    let started = Instant::now();
    let mut lap = Instant::now();
    let mut split = |d: &mut Duration| {
        *d = lap.elapsed();
        lap = Instant::now();
    };
    let network_mode = if how.own_network {
        docker
            .create_network(NetworkCreateRequest {
                name: network.to_owned(),
                driver: Some("bridge".into()),
                labels: Some(labels.clone()),
                internal: Some(how.internal),
                options: (!how.masquerade).then(|| {
                    HashMap::from([(
                        "com.docker.network.bridge.enable_ip_masquerade".to_owned(),
                        "false".to_owned(),
                    )])
                }),
                ..Default::default()
            })
            .await
            .context("create network")?;
        network
    } else {
        "bridge"
    };
    split(&mut t.network);

    let creates = tier.services.iter().map(|spec| {
        let port_key = format!("{}/tcp", spec.port);
        let mut env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        env.push(format!("STANDIN_NAME={}", spec.name));
        env.push(format!("STANDIN_LISTEN=0.0.0.0:{}", spec.port));
        let body = ContainerCreateBody {
            image: Some(spec.image.clone()),
            env: Some(env),
            labels: Some(labels.clone()),
            exposed_ports: Some(vec![port_key.clone()]),
            host_config: Some(HostConfig {
                network_mode: Some(network_mode.to_owned()),
                port_bindings: how.publish.then(|| {
                    HashMap::from([(
                        port_key,
                        Some(vec![PortBinding {
                            host_ip: Some("127.0.0.1".into()),
                            host_port: Some(String::new()),
                        }]),
                    )])
                }),
                ..Default::default()
            }),
            // Aliases only exist on user-defined networks.
            networking_config: how.own_network.then(|| NetworkingConfig {
                endpoints_config: Some(HashMap::from([(
                    network.to_owned(),
                    EndpointSettings {
                        aliases: Some(vec![spec.name.clone()]),
                        ..Default::default()
                    },
                )])),
            }),
            ..Default::default()
        };
        let name = format!("{network}-{}", spec.name);
        async move {
            docker
                .create_container(
                    Some(CreateContainerOptions {
                        name: Some(name),
                        ..Default::default()
                    }),
                    body,
                )
                .await
                .map(|c| c.id)
        }
    });
    let mut first_error = None;
    for r in join_all(creates).await {
        match r {
            Ok(id) => containers.push(id),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e).context("create container");
    }
    split(&mut t.create);

    try_join_all(
        containers
            .iter()
            .map(|id| docker.start_container(id, None::<StartContainerOptions>)),
    )
    .await
    .context("start container")?;
    split(&mut t.start);

    let addrs = try_join_all(
        containers
            .iter()
            .zip(&tier.services)
            .map(|(id, spec)| async move {
                let info = docker
                    .inspect_container(id, None::<InspectContainerOptions>)
                    .await?;
                let settings = info.network_settings.unwrap_or_default();
                if how.publish {
                    let key = format!("{}/tcp", spec.port);
                    let port = settings
                        .ports
                        .and_then(|p| p.get(&key).cloned().flatten())
                        .and_then(|b| b.into_iter().find_map(|b| b.host_port))
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(|| anyhow!("no host binding for {key}"))?;
                    anyhow::Ok(SocketAddr::from(([127, 0, 0, 1], port)))
                } else {
                    let ip = settings
                        .networks
                        .and_then(|n| n.get(network_mode).and_then(|e| e.ip_address.clone()))
                        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                        .ok_or_else(|| anyhow!("no IP on {network_mode}"))?;
                    anyhow::Ok(SocketAddr::new(ip, spec.port))
                }
            }),
    )
    .await
    .context("inspect container")?;
    split(&mut t.inspect);

    let deadline = Instant::now() + Duration::from_secs(30);
    try_join_all(
        tier.services
            .iter()
            .zip(&addrs)
            .map(|(spec, addr)| until_healthy(*addr, &spec.health, deadline)),
    )
    .await?;
    split(&mut t.health);

    try_join_all(containers.iter().map(|id| async move {
        docker
            .stop_container(
                id,
                Some(StopContainerOptions {
                    t: Some(STOP_GRACE_SECS),
                    signal: None,
                }),
            )
            .await?;
        docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
    }))
    .await
    .context("stop and remove container")?;
    containers.clear();
    split(&mut t.stop_remove);

    if how.own_network {
        docker
            .remove_network(network)
            .await
            .context("remove network")?;
    }
    split(&mut t.network_rm);
    t.total = started.elapsed();
    Ok(t)
}

/// `GET {path}` on `addr` until it answers 200, giving up at `deadline`. The service has no
/// readiness event to wait on (a fresh container's port is published by docker-proxy before the
/// service inside listens), so a refused or reset probe is retried after 1 ms: the floor sees
/// a service at most ~1 ms after it answers, without spinning a core the engine needs.
async fn until_healthy(addr: SocketAddr, path: &str, deadline: Instant) -> anyhow::Result<()> {
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(2), http_status(addr, path)).await;
        match answer {
            Ok(Ok(200)) => return Ok(()),
            Ok(Ok(code)) if Instant::now() >= deadline => bail!("{addr}{path} answered {code}"),
            Ok(Err(e)) if Instant::now() >= deadline => bail!("{addr}{path}: {e}"),
            Err(_) if Instant::now() >= deadline => bail!("{addr}{path}: no answer within 2 s"),
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

async fn http_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}

// ---------------------------------------------------------------------------------------------
// Stacks and plays.

async fn start_stop(
    env: &Env,
    topology: Topology,
    n: usize,
) -> anyhow::Result<(Duration, Duration)> {
    let opts = env.options(topology, &format!("start-{}-{n}", topology.name()));
    let started = Instant::now();
    let stack = Stack::start(&opts).await?;
    let start = started.elapsed();
    let stopping = Instant::now();
    stack.stop().await.map_err(|e| anyhow!("stop: {e}"))?;
    Ok((start, stopping.elapsed()))
}

#[derive(Clone, Copy, Debug, Default)]
struct PlayTimes {
    provision: Duration,
    submit: Duration,
    wait: Duration,
    teardown: Duration,
    status: Duration,
    total: Duration,
    driver_ms: f64,
    health_ms: f64,
}

impl PlayTimes {
    const PARTS: [Part<PlayTimes>; 5] = [
        ("POST workspace (provision)", |s| s.provision),
        ("POST run", |s| s.submit),
        ("GET run?wait=30s (until ended)", |s| s.wait),
        ("DELETE workspace (teardown)", |s| s.teardown),
        ("hearth GET /v1/status", |s| s.status),
    ];
}

/// The six acts against a running stack: provision, submit, wait for the end, tear down, ask
/// hearth. Fails unless each answers as the play requires.
async fn play(http: &reqwest::Client, stack: &Stack, slug: &str) -> anyhow::Result<PlayTimes> {
    let console = &stack.console_url;
    let bearer = format!("Bearer {}", stack.admin_token);
    let mut t = PlayTimes::default();
    let started = Instant::now();
    let mut lap = Instant::now();
    let mut split = |d: &mut Duration| {
        *d = lap.elapsed();
        lap = Instant::now();
    };

    let r = http
        .post(format!("{console}/api/hearth/workspaces"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"slug": slug, "tier": "solo"}))
        .send()
        .await?;
    expect(r, 201, "POST workspace").await?;
    split(&mut t.provision);

    let prompts: Vec<String> = (1..=PROMPTS).map(|i| format!("prompt {i}")).collect();
    let r = http
        .post(format!("{console}/api/ralph/runs"))
        .header("authorization", &bearer)
        .json(&serde_json::json!({"workspace": slug, "prompts": prompts}))
        .send()
        .await?;
    let accepted = expect(r, 202, "POST run").await?;
    let run_id = accepted["run_id"]
        .as_str()
        .ok_or_else(|| anyhow!("POST run answered without run_id: {accepted}"))?
        .to_owned();
    split(&mut t.submit);

    let r = http
        .get(format!("{console}/api/ralph/runs/{run_id}?wait=30s"))
        .header("authorization", &bearer)
        .send()
        .await?;
    let view = expect(r, 200, "GET run").await?;
    ensure!(
        view["status"] == "succeeded",
        "run {run_id} did not succeed: {view}"
    );
    split(&mut t.wait);

    let r = http
        .delete(format!("{console}/api/hearth/workspaces/{slug}"))
        .header("authorization", &bearer)
        .send()
        .await?;
    expect(r, 200, "DELETE workspace").await?;
    split(&mut t.teardown);

    let report = HearthClient::new(&stack.hearth_socket)
        .status(slug, Duration::from_secs(10))
        .await?;
    ensure!(
        report.status == Status::TierTornDown,
        "hearth reports {slug} as {}",
        report.status
    );
    split(&mut t.status);
    t.total = started.elapsed();
    t.driver_ms = report.timings.driver_ms;
    t.health_ms = report.timings.health_ms;
    Ok(t)
}

async fn expect(r: reqwest::Response, want: u16, what: &str) -> anyhow::Result<serde_json::Value> {
    let status = r.status().as_u16();
    let body = r.bytes().await?;
    ensure!(
        status == want,
        "{what} answered {status}, not {want}: {}",
        String::from_utf8_lossy(&body)
    );
    Ok(serde_json::from_slice(&body)?)
}

// ---------------------------------------------------------------------------------------------
// HATCH and KAHN.

fn hatch_events() -> Vec<Event> {
    use serde_json::json;
    let mut events = vec![
        Event::new(EventKind::ProvisioningStarted, "admin")
            .workspace("bench")
            .data(json!({"tier": "solo"})),
        Event::new(EventKind::Provisioned, "admin")
            .workspace("bench")
            .data(json!({"tier": "solo", "driver": "process", "services": ["cairnet", "lore"]})),
        Event::new(EventKind::RunStarted, "admin")
            .workspace("bench")
            .run_id("run-0123456789abcdef")
            .data(json!({"prompts": 4, "max_ralph_iters": 5})),
    ];
    for n in 1..=4 {
        events.push(
            Event::new(EventKind::NodeSucceeded, "system")
                .workspace("bench")
                .run_id("run-0123456789abcdef")
                .node_id(format!("node-{n}"))
                .data(json!({"attempts": n})),
        );
    }
    events.push(
        Event::new(EventKind::RunEnded, "system")
            .workspace("bench")
            .run_id("run-0123456789abcdef")
            .data(json!({"status": "succeeded"})),
    );
    events.push(Event::new(EventKind::DecommissionStarted, "admin").workspace("bench"));
    events.push(
        Event::new(EventKind::Decommissioned, "admin")
            .workspace("bench")
            .data(json!({"status": "tier_torn_down"})),
    );
    events
}

/// Appends [`HATCH_RECORDS`] records to a new file-backed log, then verifies the file.
/// Returns (appends/s, verified records/s).
fn hatch_once(path: &Path) -> anyhow::Result<(f64, f64)> {
    let events: Vec<Event> = hatch_events()
        .into_iter()
        .cycle()
        .take(HATCH_RECORDS)
        .collect();
    let hatch = Hatch::with_file(path)?;
    let started = Instant::now();
    for e in events {
        hatch.append(e)?;
    }
    let append = HATCH_RECORDS as f64 / started.elapsed().as_secs_f64();
    drop(hatch);
    let content = std::fs::read(path)?;
    std::fs::remove_file(rocky::hatch::seal_path(path))?;
    std::fs::remove_file(rocky::hatch::default_key_path(path))?;
    let started = Instant::now();
    let summary = rocky::hatch::verify_bytes(std::hint::black_box(&content))?;
    let verify = HATCH_RECORDS as f64 / started.elapsed().as_secs_f64();
    ensure!(
        summary.records == HATCH_RECORDS as u64,
        "verified {summary:?}"
    );
    std::fs::remove_file(path)?;
    Ok((append, verify))
}

/// A run's worth of frames as the worker encodes them: attempts, transitions, the end.
fn kahn_frames() -> Vec<String> {
    let run_id = "run-0123456789abcdef".to_owned();
    let ts = "2025-01-01T00:00:00.000000Z".to_owned();
    let mut frames = Vec::new();
    let mut seq = 0;
    for node in 1..=4 {
        let node_id = format!("node-{node}");
        seq += 1;
        frames.push(Frame::NodeTransition {
            run_id: run_id.clone(),
            node_id: node_id.clone(),
            seq,
            from: NodeState::Pending,
            to: NodeState::Running,
            ts: ts.clone(),
        });
        seq += 1;
        frames.push(Frame::NodeAttempt {
            run_id: run_id.clone(),
            node_id: node_id.clone(),
            seq,
            attempt: 1,
            ts: ts.clone(),
        });
        seq += 1;
        frames.push(Frame::NodeTransition {
            run_id: run_id.clone(),
            node_id,
            seq,
            from: NodeState::Running,
            to: NodeState::Succeeded,
            ts: ts.clone(),
        });
    }
    seq += 1;
    frames.push(Frame::RunEnded {
        run_id,
        seq,
        status: RunStatus::Succeeded,
        ts,
    });
    frames.iter().map(kahn::encode).collect()
}

fn kahn_once(frames: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    for data in frames.iter().cycle().take(KAHN_FRAMES) {
        let envelope = kahn::validate(std::hint::black_box(data))
            .map_err(|r| anyhow!("frame rejected: {r}"))?;
        std::hint::black_box(envelope);
    }
    Ok(KAHN_FRAMES as f64 / started.elapsed().as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// CPU and memory.

/// CPU use since `start`: machine-wide from /proc/stat (the engine, hearth, the services and
/// this process, but also anything else running on the machine), and this process's with its
/// children's (the framework's own).
struct CpuMeter {
    start: Option<(u64, u64)>,
    own: f64,
}

impl CpuMeter {
    fn start() -> CpuMeter {
        CpuMeter {
            start: cpu_ticks(),
            own: own_cpu_ms(),
        }
    }

    /// CPU time of this process and its children since `start`, in core-milliseconds.
    fn own_ms(&self) -> f64 {
        own_cpu_ms() - self.own
    }

    /// Machine CPU time since `start`, in core-milliseconds.
    fn core_ms(&self) -> f64 {
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        match (self.start, cpu_ticks()) {
            (Some((b0, _)), Some((b1, _))) => (b1 - b0) as f64 / hz * 1000.0,
            _ => f64::NAN,
        }
    }

    /// Machine CPU time over the interval divided by `runs`, e.g. "640 core-ms/run".
    fn per_run(&self, runs: usize) -> String {
        format!("{:.0} core-ms/run", self.core_ms() / runs.max(1) as f64)
    }

    /// "1.8/2 cores busy": average busy cores over the interval.
    fn busy_cores(&self) -> String {
        let cores = cores();
        match (self.start, cpu_ticks()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => format!(
                "{:.1}/{cores} cores busy",
                (b1 - b0) as f64 / (t1 - t0) as f64 * cores as f64
            ),
            _ => "– cores busy".into(),
        }
    }
}

/// CPU time of this process and its children (hearth, and through hearth's reaped children the
/// process driver's services), in core-milliseconds: the framework's own CPU, without the
/// engine's and without anything else running on the machine.
fn own_cpu_ms() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks = |pid: &str, fields: &[usize]| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // Fields after the parenthesised command name, which may hold spaces.
                let rest = stat.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                // `rest` starts at field 3 (state); utime is field 14.
                Some(
                    fields
                        .iter()
                        .filter_map(|&n| f.get(n - 3)?.parse::<u64>().ok())
                        .sum(),
                )
            })
            .unwrap_or(0)
    };
    let mut total = ticks("self", &[14, 15]);
    let children = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    for child in children {
        total += ticks(&child, &[14, 15, 16, 17]);
    }
    total as f64 / hz * 1000.0
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// (busy, total) jiffies of all CPUs.
fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = fields.get(3)? + fields.get(4)?;
    let total: u64 = fields.iter().sum();
    Some((total - idle, total))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// Resets this process's peak RSS to its current RSS (Linux ≥ 4.0), so each concurrency level
/// reports its own peak.
fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// VmHWM of this process: the harness with the console and the worker in it (hearth and the
/// services are other processes).
fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0))
}

// ---------------------------------------------------------------------------------------------
// Statistics and the table.

fn median(samples: impl Iterator<Item = Duration>) -> Duration {
    let mut v: Vec<Duration> = samples.collect();
    v.sort_unstable();
    match v.len() {
        0 => Duration::ZERO,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2,
    }
}

fn median_f64(samples: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = samples.collect();
    v.sort_unstable_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn fmt_ms(d: Duration) -> String {
    format_ms(ms(d))
}

fn format_ms(ms: f64) -> String {
    if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn spread(samples: impl Iterator<Item = Duration>) -> String {
    let v: Vec<f64> = samples.map(ms).collect();
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(0.0, f64::max);
    format!("{}–{}", format_ms(lo), format_ms(hi))
}

fn verdict(met: bool) -> String {
    if met { "met" } else { "MISSED" }.into()
}

struct Row {
    name: String,
    median: String,
    spread: String,
    ratio: String,
    target: String,
    verdict: String,
}

#[derive(Default)]
struct Table {
    rows: Vec<Row>,
}

impl Table {
    fn row(&mut self, row: Row) {
        self.rows.push(row);
    }

    fn section(&mut self, title: &str) {
        self.rows.push(Row {
            name: format!("**{title}**"),
            median: String::new(),
            spread: String::new(),
            ratio: String::new(),
            target: String::new(),
            verdict: String::new(),
        });
    }

    fn duration<T>(
        &mut self,
        name: &str,
        samples: &[T],
        f: impl Fn(&T) -> Duration,
        target: &str,
        note: &str,
    ) {
        self.row(Row {
            name: name.into(),
            median: fmt_ms(median(samples.iter().map(&f))),
            spread: spread(samples.iter().map(&f)),
            ratio: note.into(),
            target: target.into(),
            verdict: String::new(),
        });
    }

    /// A breakdown row under the previous one.
    fn part<T>(&mut self, name: &str, samples: &[T], f: impl Fn(&T) -> Duration) {
        self.row(Row {
            name: format!("  ↳ {name}"),
            median: fmt_ms(median(samples.iter().map(&f))),
            spread: spread(samples.iter().map(&f)),
            ratio: String::new(),
            target: String::new(),
            verdict: String::new(),
        });
    }

    fn part_ms<T>(&mut self, name: &str, samples: &[T], f: impl Fn(&T) -> f64) {
        self.part(name, samples, |s| Duration::from_secs_f64(f(s) / 1000.0));
    }

    fn rate(&mut self, name: &str, samples: &[f64], target: f64) {
        let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = samples.iter().copied().fold(0.0, f64::max);
        let med = median_f64(samples.iter().copied());
        self.row(Row {
            name: name.into(),
            median: format_rate(med),
            spread: format!("{}–{}", format_rate(lo), format_rate(hi)),
            ratio: String::new(),
            target: if target > 0.0 {
                format!("≥ {}", format_rate(target))
            } else {
                String::new()
            },
            verdict: if target > 0.0 {
                verdict(med >= target)
            } else {
                String::new()
            },
        });
    }

    fn render(&self) -> String {
        let header = [
            "measurement",
            "median",
            "min–max",
            "ratio / note",
            "target",
            "",
        ];
        let cells = |r: &Row| {
            [
                r.name.clone(),
                r.median.clone(),
                r.spread.clone(),
                r.ratio.clone(),
                r.target.clone(),
                r.verdict.clone(),
            ]
        };
        let mut width = header.map(|h| h.chars().count());
        for r in &self.rows {
            for (w, c) in width.iter_mut().zip(cells(r)) {
                *w = (*w).max(c.chars().count());
            }
        }
        let line = |cells: [String; 6]| {
            let mut s = String::from("|");
            for (c, w) in cells.iter().zip(width) {
                s.push(' ');
                s.push_str(c);
                s.push_str(&" ".repeat(w - c.chars().count()));
                s.push_str(" |");
            }
            s.push('\n');
            s
        };
        let mut out = line(header.map(String::from));
        out.push_str(&line(width.map(|w| "-".repeat(w))));
        for r in &self.rows {
            out.push_str(&line(cells(r)));
        }
        out
    }
}

fn format_rate(per_s: f64) -> String {
    if per_s >= 1e6 {
        format!("{:.2} M/s", per_s / 1e6)
    } else {
        format!("{:.0} k/s", per_s / 1e3)
    }
}
