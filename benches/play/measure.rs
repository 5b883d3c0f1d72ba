//! The sections in the order they run: stack start, the play on the embedded topology, the
//! floor and the play on the engine (alternating), then the other sections in turn.

use std::collections::HashMap;

use anyhow::{Context, anyhow, ensure};
use bollard::Docker;
use rocky_e2e::stack::Stack;

use crate::common::{
    Args, TARGET_EMBEDDED_MS, TARGET_FLOOR_RATIO, bounded, floor_parts, new_session, repeat,
};
use crate::concurrency::concurrency;
use crate::cpu::{CPU_PLAYS, CpuMeter};
use crate::engine::engine_costs;
use crate::env::{Env, Topology, topologies};
use crate::floor::{Floor, floor_once};
use crate::micro::{hatch_section, kahn_section};
use crate::plays::{PlayTimes, play, start_stop};
use crate::probe::probe_lag;
use crate::table::{Row, Table, fmt_ms, median, ms, spread, verdict};

pub(crate) async fn measure_all(args: &Args, env: &Env, table: &mut Table) -> anyhow::Result<()> {
    let http = rocky::http::client_builder().build()?;

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
pub(crate) async fn embedded_cpu(http: &reqwest::Client, stack: &Stack) -> anyhow::Result<String> {
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

pub(crate) fn play_parts(table: &mut Table, samples: &[PlayTimes]) {
    for (part, f) in PlayTimes::PARTS {
        table.part(part, samples, f);
    }
    table.part_ms("hearth driver (provision+teardown)", samples, |s| {
        s.driver_ms
    });
    table.part_ms("of which health checks", samples, |s| s.health_ms);
}

/// The floor and the play on each Docker topology, one run of each in turn (the order rotating
/// every round), so all of them see the same engine and the same machine load; each play's
/// ratio is of its median to the floor's.
pub(crate) async fn floor_and_play(
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
