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
//! The modules, in the order the table shows them: `common` (the options, deadlines, sessions
//! and repetition every section shares; it imports no other section), `env` (what every measurement needs),
//! `measure` (the sections and the play against the floor), `engine` (what the floor's engine
//! time is spent on), `probe` (health probes of a late listener), `concurrency` (N plays at
//! once), `micro` (HATCH and KAHN throughput); below them `floor` (the play's Docker work done
//! directly with bollard), `plays` (the six acts against a stack), `cpu` (CPU and memory) and
//! `table` (statistics and the printed table).

mod common;
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

use common::{Args, parse_args};
use env::Env;
use table::Table;

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

async fn run(args: Args) -> anyhow::Result<()> {
    let mut env = Env::prepare(&args).await?;
    let mut table = Table::default();
    let result = measure::measure_all(&args, &env, &mut table).await;
    // Sweep what any failed run may have left, by this process's sessions only (other runs on
    // the same engine are left alone).
    if let Some(docker) = &env.docker {
        let sessions = common::take_sessions();
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
