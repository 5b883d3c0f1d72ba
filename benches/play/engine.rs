//! What the floor's engine time is spent on: the floor without each engine feature the play
//! uses, one workspace and 16 at once.

use std::time::{Duration, Instant};

use bollard::Docker;
use futures::future::try_join_all;

use crate::common::{Args, CONCURRENT_DEADLINE, bounded_for, new_session, repeat};
use crate::cpu::CpuMeter;
use crate::env::Env;
use crate::floor::{Floor, FloorTimes, floor_once};
use crate::table::{Row, Table, fmt_ms, median, ms, spread};

/// What the floor's engine time is spent on: the floor without each engine feature the play
/// uses, one workspace and 16 at once (opt-in: `--only engine`).
pub(crate) async fn engine_costs(
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
