//! What the bench's sections share: the options, the deadlines and targets, the Docker
//! sessions this process made, and running a measurement repeatedly under a deadline. It
//! imports no other module of the bench, so every section can import it without a cycle.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context, anyhow, ensure};

use crate::floor::FloorTimes;
use crate::table::Table;

/// Longest one play, one floor run or one stack start may take.
pub(crate) const DEADLINE: Duration = Duration::from_secs(120);
/// Longest a concurrency level may take as a whole.
pub(crate) const CONCURRENT_DEADLINE: Duration = Duration::from_secs(300);

/// Targets from the issue (2-core machine).
pub(crate) const TARGET_FLOOR_RATIO: f64 = 1.15;
pub(crate) const TARGET_EMBEDDED_MS: f64 = 150.0;
pub(crate) const TARGET_CONCURRENCY_RATIO: f64 = 4.0;
pub(crate) const TARGET_APPEND_PER_S: f64 = 100_000.0;
pub(crate) const TARGET_VERIFY_PER_S: f64 = 1_000_000.0;

pub(crate) struct Args {
    pub(crate) runs: usize,
    pub(crate) conc_runs: usize,
    pub(crate) docker: bool,
    /// Sections to run; empty means all.
    pub(crate) only: Vec<String>,
    /// Keep the work directories (hearth logs, HATCH files) instead of removing them.
    pub(crate) keep: bool,
}

/// The sections, in the order they run.
pub(crate) const SECTIONS: [&str; 8] = [
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
    pub(crate) fn wants(&self, section: &str) -> bool {
        if self.only.is_empty() {
            section != "engine"
        } else {
            self.only.iter().any(|s| s == section)
        }
    }
}

pub(crate) fn parse_args() -> anyhow::Result<Args> {
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

/// Sessions this process gave to Docker objects, swept at the end whatever happened.
static SESSIONS: Mutex<Vec<String>> = Mutex::new(Vec::new());

pub(crate) fn new_session(what: &str) -> String {
    let s = format!("bench-{what}-{}", rocky::ids::random_hex(4));
    SESSIONS.lock().expect("sessions").push(s.clone());
    s
}

/// Every session [`new_session`] gave out since the last call, to sweep.
pub(crate) fn take_sessions() -> Vec<String> {
    std::mem::take(&mut *SESSIONS.lock().expect("sessions"))
}

/// One warm-up run, then `runs` measured ones.
pub(crate) async fn repeat<T, F, Fut>(runs: usize, mut once: F) -> anyhow::Result<Vec<T>>
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

pub(crate) async fn bounded<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    bounded_for(DEADLINE, f).await
}

pub(crate) async fn bounded_for<T>(
    deadline: Duration,
    f: impl Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    tokio::time::timeout(deadline, f)
        .await
        .map_err(|_| anyhow!("did not finish within {deadline:?}"))?
}

/// The floor's parts (network, create, start, health…) as rows of the table.
pub(crate) fn floor_parts(table: &mut Table, samples: &[FloorTimes]) {
    for (name, f) in FloorTimes::PARTS {
        table.part(name, samples, f);
    }
}
