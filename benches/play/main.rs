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
//!
//! The modules, in the order the table shows them: `env` (what every measurement needs),
//! `measure` (the sections and the play against the floor), `engine` (what the floor's engine
//! time is spent on), `probe` (health probes of a late listener), `concurrency` (N plays at
//! once), `micro` (HATCH and KAHN throughput); below them `floor` (the play's Docker work done
//! directly with bollard), `plays` (the six acts against a stack), `cpu` (CPU and memory) and
//! `table` (statistics and the printed table).

mod concurrency;
mod cpu;
mod engine;
mod env;
mod floor;
mod measure;
mod micro;
mod plays;
mod probe;
mod table;

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};

use env::Env;
use table::Table;

/// Longest one play, one floor run or one stack start may take.
const DEADLINE: Duration = Duration::from_secs(120);
/// Longest a concurrency level may take as a whole.
const CONCURRENT_DEADLINE: Duration = Duration::from_secs(300);

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
    let result = measure::measure_all(&args, &env, &mut table).await;
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
