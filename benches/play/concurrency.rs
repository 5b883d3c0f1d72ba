//! N plays at once against one stack, with N distinct workspaces, beside the floor at the same
//! concurrency on the engine.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use futures::future::try_join_all;
use rocky_e2e::stack::Stack;

use crate::common::floor_parts;
use crate::common::{
    Args, CONCURRENT_DEADLINE, TARGET_CONCURRENCY_RATIO, bounded, bounded_for, new_session, repeat,
};
use crate::cpu::{CPU_PLAYS, CpuMeter, cores, peak_memory, reset_peak_memory};
use crate::env::{Env, Topology};
use crate::floor::{Floor, FloorTimes, floor_once};
use crate::plays::play;
use crate::table::{Row, Table, fmt_ms, median, ms, spread, verdict};

/// The concurrency levels.
pub(crate) const LEVELS: [usize; 3] = [1, 4, 16];

pub(crate) async fn concurrency(
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

pub(crate) async fn plays_at_once(
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
