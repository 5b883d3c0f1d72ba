//! The model-based tester of the whole stack (issue 19): seeded random sequences of
//! provisions, teardowns, runs, hang-ups, deadlines, crashes and disk faults against a real
//! stack (hearth as a process, the console and the worker as real servers, the HATCH log in a
//! real file), every invariant of contract §2, §5 and §9 checked after every step, and a
//! failing sequence shrunk to a minimal one that replays with one command.
//!
//! ```text
//! cargo test --test model                                  # kept cases + 6 sequences
//! cargo test --test model -- --cases 50 --len 200          # the CI budget (> 10 000 steps)
//! cargo test --test model -- --seed 17 --len 200           # replay one sequence
//! cargo test --release --test model -- --no-kept --steps 1000000 --len 200 --stacks 10
//!                                                          # the long run (RELIABILITY.md)
//! cargo test --test model -- --setup none --ops 'provision w0; submit w0 held'
//! ROCKY_E2E=1 cargo test --test model -- --driver local-docker --cases 8 --len 70
//! ```
//!
//! - `rng`: splitmix64, the generator's only randomness.
//! - `ops`: the operations, as text that parses back.
//! - `model`: the reference model (expected answers, records and statuses) and the generator.
//! - `stack`: the real stack, and the disk that refuses one chosen append.
//! - `exec`: one operation against the stack.
//! - `check`: the invariants.

#[path = "model/check.rs"]
mod check;
#[path = "model/exec.rs"]
mod exec;
#[path = "model/model.rs"]
mod model;
#[path = "model/ops.rs"]
mod ops;
#[path = "model/rng.rs"]
mod rng;
#[path = "model/stack.rs"]
mod stack;

use std::time::{Duration, Instant};

use check::{Checker, Violation};
use model::{Model, Setup, Ws};
use ops::Op;
use stack::{Env, Stack};

/// Sequences that found a bug, kept as regression cases: (what it found, the stack's setup,
/// the shrunk sequence). Each runs first, every time.
const KEPT: &[(&str, &str, &str)] = &[
    (
        "abandoned-run lock-out: a run past its deadline keeps its worker slot (issue 18)",
        "always",
        "provision w1; submit w1 held",
    ),
    (
        "invented status: a refused teardown of a failed workspace reads ready (issue 18)",
        "none",
        "provision-broken w2; fault sync teardown w2",
    ),
    (
        "a refused action left in the log: a failed group commit keeps its record (issue 17)",
        "batch",
        "fault sync provision w1",
    ),
    (
        "a refused action left in the log, unsynced: a failed seal update keeps its record (issue 17)",
        "none",
        "fault sync provision w1",
    ),
    (
        "teardown records its start before the workspace's runs ended (issue 18, chaos drill)",
        "none",
        "provision-hangup w3; submit w3 held; teardown-hangup w3",
    ),
    (
        "a run's end recorded after its workspace's hearth.decommissioned (issue 18)",
        "always",
        "provision w1; submit w1 normal",
    ),
    (
        "a restarted hearth forgets a failed workspace: its DELETE recorded hearth.decommission_started, then answered 404 (issue 18, one decommission pair)",
        "none",
        "provision-broken w3; crash-hearth; teardown w3",
    ),
];

/// Sequences that find a bug not fixed yet (each moves to `KEPT` once it is): run with
/// `--open` and by nothing else, so the budget runs stay about what is fixed.
const OPEN: &[(&str, &str, &str)] = &[];

/// A sequence that ran: (label, seed to replay it, its setup, the sequence, its verdict).
type Ran = (String, Option<u64>, Setup, Vec<Op>, Outcome);

/// A sequence's verdict.
struct Outcome {
    /// Steps run (the epilogue's teardowns included).
    steps: usize,
    /// The first broken invariant: at which step (index into the sequence, or past its end
    /// for the epilogue), and what.
    failure: Option<(usize, String, Violation)>,
    /// Time per operation name (the step and its checks), for `--profile`.
    profile: std::collections::BTreeMap<String, (usize, Duration)>,
}

/// Runs `ops` on a fresh stack, then tears everything down and checks the end state.
async fn run_sequence(env: &Env, setup: Setup, ops: &[Op]) -> Outcome {
    let mut stack = match Stack::start(env, setup).await {
        Ok(s) => s,
        Err(e) => {
            return Outcome {
                steps: 0,
                failure: Some((0, "start".into(), Violation::new("start", e))),
                profile: Default::default(),
            };
        }
    };
    let mut model = Model::default();
    let mut checker = Checker::default();
    let mut steps = 0;
    let mut failure = None;
    let mut profile = std::collections::BTreeMap::new();
    let mut all: Vec<Op> = ops.to_vec();
    let mut epilogue_added = false;
    let mut i = 0;
    while i < all.len() || !epilogue_added {
        if i == all.len() {
            // The epilogue: the worker back, every held run past its deadline (so a run the
            // console gave up on must have given its slot back before any teardown could
            // cancel it), every workspace torn down.
            epilogue_added = true;
            if !model.worker_up {
                all.push(Op::RestartWorker);
            }
            all.push(Op::DeadlinePasses);
            for (w, s) in model.ws.iter().enumerate() {
                if matches!(s, Ws::Ready | Ws::Failed | Ws::Forgotten) {
                    all.push(Op::Teardown(w));
                }
            }
            continue;
        }
        let op = all[i];
        steps += 1;
        let expect = model.step(&op);
        let step_started = Instant::now();
        let result = async {
            let done = stack.run_op(&op, &expect).await?;
            checker.kinds.extend(done.runs.iter().cloned());
            if op == Op::DeadlinePasses {
                stack.deadline_passes(&checker.open_held()).await?;
            }
            checker
                .after_step(
                    &stack,
                    &model,
                    &expect,
                    &done.answers,
                    &op.touches(),
                    &op.probes(),
                )
                .await
        }
        .await;
        let name = op
            .to_string()
            .split(' ')
            .next()
            .unwrap_or_default()
            .to_owned();
        let slot = profile.entry(name).or_insert((0, Duration::ZERO));
        slot.0 += 1;
        slot.1 += step_started.elapsed();
        if let Err(v) = result {
            failure = Some((i, op.to_string(), v));
            break;
        }
        i += 1;
    }
    if failure.is_none()
        && let Err(v) = checker.at_end(&stack).await
    {
        failure = Some((all.len(), "(end)".into(), v));
    }
    if let Err(e) = stack.stop().await
        && failure.is_none()
    {
        failure = Some((all.len(), "(stop)".into(), Violation::new("stop", e)));
    }
    Outcome {
        steps,
        failure,
        profile,
    }
}

/// Shrinks a failing sequence (delta debugging: drop chunks, halving their size) while it
/// still fails the same check, within `budget`.
async fn shrink(
    env: &Env,
    setup: Setup,
    ops: Vec<Op>,
    check: &'static str,
    budget: Duration,
) -> (Vec<Op>, Violation) {
    let started = Instant::now();
    let mut best = ops;
    let mut best_violation = None;
    let mut chunk = best.len().div_ceil(2);
    while chunk >= 1 && started.elapsed() < budget {
        let mut start = 0;
        while start < best.len() && started.elapsed() < budget {
            let mut candidate = best.clone();
            candidate.drain(start..(start + chunk).min(candidate.len()));
            if candidate.is_empty() {
                start += chunk;
                continue;
            }
            let out = run_sequence(env, setup, &candidate).await;
            match out.failure {
                Some((at, _, v)) if v.check == check => {
                    candidate.truncate((at + 1).min(candidate.len()));
                    best = candidate;
                    best_violation = Some(v);
                }
                _ => start += chunk,
            }
        }
        if chunk == 1 {
            break;
        }
        chunk = chunk.div_ceil(2).max(1).min(chunk - 1).max(1);
    }
    let violation = match best_violation {
        Some(v) => v,
        None => run_sequence(env, setup, &best)
            .await
            .failure
            .map(|(_, _, v)| v)
            .unwrap_or_else(|| Violation::new(check, "(did not fail again when replayed)")),
    };
    (best, violation)
}

/// User + system CPU seconds of `who` (this process, or its waited-for children).
fn cpu_secs(who: libc::c_int) -> f64 {
    // SAFETY: getrusage writes one rusage into the zeroed value we own.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(who, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

/// Counts for a long run's progress lines.
#[derive(Default)]
struct Progress(std::sync::Mutex<(usize, usize, usize)>);

impl Progress {
    /// Steps run by the sequences finished so far.
    fn steps(&self) -> usize {
        self.0.lock().expect("progress lock").1
    }

    fn update(&self, ran: &Ran) -> (usize, usize, usize) {
        let mut p = self.0.lock().expect("progress lock");
        p.0 += 1;
        p.1 += ran.4.steps;
        p.2 += usize::from(ran.4.failure.is_some());
        *p
    }
}

struct Args {
    seed: Option<u64>,
    base_seed: u64,
    cases: usize,
    len: usize,
    stacks: usize,
    ops: Option<String>,
    driver: &'static str,
    shrink_secs: u64,
    kept: bool,
    /// For `--ops`: the stack's setup (a seed names its own).
    setup: Setup,
    /// Keep drawing sequences until this much time has passed (the long run).
    for_secs: Option<u64>,
    /// Keep drawing sequences until this many steps have run (the long run).
    steps: Option<usize>,
    profile: bool,
    /// Print the sequence `--seed` names, one step a line, and run nothing.
    print: bool,
    /// Run the `OPEN` cases (bugs not fixed yet) instead of anything else.
    open: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        seed: None,
        base_seed: 1,
        // One sequence per stack: a seventh would wait for a stack and double the wall.
        cases: 6,
        len: 100,
        stacks: 6,
        ops: None,
        driver: "process",
        shrink_secs: 120,
        kept: true,
        profile: false,
        setup: Setup {
            sync: rocky::hatch::SyncMode::Batch,
            fast_clock: false,
        },
        for_secs: None,
        steps: None,
        print: false,
        open: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let num =
            |v: String, name: &str| v.parse::<u64>().map_err(|e| format!("{name} {v:?}: {e}"));
        match a.as_str() {
            "--seed" => args.seed = Some(num(value("--seed")?, "--seed")?),
            "--base-seed" => args.base_seed = num(value("--base-seed")?, "--base-seed")?,
            "--cases" => args.cases = num(value("--cases")?, "--cases")? as usize,
            "--len" => args.len = num(value("--len")?, "--len")? as usize,
            "--stacks" => args.stacks = (num(value("--stacks")?, "--stacks")? as usize).max(1),
            "--shrink-secs" => args.shrink_secs = num(value("--shrink-secs")?, "--shrink-secs")?,
            "--ops" => args.ops = Some(value("--ops")?),
            "--no-kept" => args.kept = false,
            "--for" => args.for_secs = Some(num(value("--for")?, "--for")?),
            "--steps" => args.steps = Some(num(value("--steps")?, "--steps")? as usize),
            "--setup" | "--sync" => {
                let v = value("--setup")?;
                args.setup = v.parse().map_err(|e| format!("--setup {v:?}: {e}"))?;
            }
            "--profile" => args.profile = true,
            "--print" => args.print = true,
            "--open" => args.open = true,
            "--driver" => {
                args.driver = match value("--driver")?.as_str() {
                    "process" => "process",
                    "local-docker" => "local-docker",
                    other => return Err(format!("unknown driver {other:?}")),
                }
            }
            // What cargo test / libtest may pass along.
            "--nocapture" | "--quiet" | "-q" | "--color" | "--test-threads" | "--exact" => {}
            other if other.starts_with("--") => {}
            _ => {}
        }
    }
    Ok(args)
}

async fn environment(driver: &'static str) -> Result<Env, String> {
    rocky_e2e::binaries::ensure_built()?;
    let hearth_bin = rocky_e2e::stack::locate_hearth(&rocky_e2e::binaries::search_dirs())
        .map_err(|e| e.to_string())?;
    let cache = rocky_e2e::images::default_cache_dir();
    if driver == "process" {
        let standin = rocky_e2e::images::standin_binary(&cache).map_err(|e| e.to_string())?;
        return Ok(Env {
            hearth_bin,
            standin: Some(standin),
            driver,
            image: "standin".into(),
            docker: None,
        });
    }
    let docker = rocky::docker::connect()
        .await
        .map_err(|e| format!("ROCKY_E2E=1 needs a Docker engine: {e}"))?;
    let image = rocky_e2e::images::ensure_standin_image(&docker, &cache)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Env {
        hearth_bin,
        standin: None,
        driver,
        image: image.tag,
        docker: Some(docker),
    })
}

fn main() -> std::process::ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("model: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    if args.print {
        let seed = args.seed.unwrap_or(args.base_seed);
        println!("seed {seed}, setup {}:", model::setup(seed));
        for (i, op) in model::generate(seed, args.len).iter().enumerate() {
            println!("{i:>4}  {op}");
        }
        return std::process::ExitCode::SUCCESS;
    }
    if args.driver == "local-docker" && std::env::var("ROCKY_E2E").as_deref() != Ok("1") {
        println!("model: the local-docker driver runs with ROCKY_E2E=1 only; skipped");
        return std::process::ExitCode::SUCCESS;
    }
    // The console's HATCH appends block their thread while a commit syncs: enough threads
    // that one stack's fsync never stalls another's steps.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.stacks * 2 + 2)
        .enable_all()
        .build()
        .expect("a runtime builds");
    runtime.block_on(run(args))
}

async fn run(args: Args) -> std::process::ExitCode {
    for gone in stack::sweep_stale_dirs() {
        println!(
            "model: removed {} (left by a run that was stopped)",
            gone.display()
        );
    }
    let env = match environment(args.driver).await {
        Ok(e) => e,
        Err(e) => {
            eprintln!("model: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if args.kept && args.ops.is_none() && args.seed.is_none() && !args.open {
        if let Err(e) = stack::restart_beside_a_forked_child(&env).await {
            println!("\nmodel: FAILED the tester's own worker restart beside a forked child: {e}");
            return std::process::ExitCode::FAILURE;
        }
        println!("model: the tester's worker restart beside a forked child: ok");
    }
    // What to run: (label, seed to replay it, setup, the sequence), the seeded ones drawn
    // lazily (a long run draws as it goes).
    type Planned = (String, Option<u64>, Setup, Vec<Op>);
    let mut fixed: Vec<Planned> = Vec::new();
    let mut seeds: Box<dyn Iterator<Item = u64> + Send> = Box::new(std::iter::empty());
    if args.open {
        for (name, setup, text) in OPEN {
            let o = ops::parse(text).expect("an open case parses");
            let setup = setup.parse().expect("an open case names a setup");
            fixed.push((format!("open case: {name}"), None, setup, o));
        }
    } else if let Some(text) = &args.ops {
        match ops::parse(text) {
            Ok(o) => fixed.push(("--ops".into(), None, args.setup, o)),
            Err(e) => {
                eprintln!("model: {e}");
                return std::process::ExitCode::from(2);
            }
        }
    } else if let Some(seed) = args.seed {
        seeds = Box::new(std::iter::once(seed));
    } else {
        if args.kept {
            for (name, setup, text) in KEPT {
                let o = ops::parse(text).expect("a kept case parses");
                let setup = setup.parse().expect("a kept case names a setup");
                fixed.push((format!("kept case: {name}"), None, setup, o));
            }
        }
        let first = args.base_seed;
        seeds = match (args.for_secs, args.steps) {
            (None, None) => Box::new(first..first + args.cases as u64),
            _ => Box::new(first..),
        };
    }
    let len = args.len;
    let plan = fixed.into_iter().chain(seeds.map(move |seed| {
        (
            format!("seed {seed}"),
            Some(seed),
            model::setup(seed),
            model::generate(seed, len),
        )
    }));
    let started = Instant::now();
    let long = args.for_secs.is_some() || args.steps.is_some();
    println!(
        "model: {}, {} stack(s) at once, driver {}",
        match (args.for_secs, args.steps) {
            (Some(secs), _) => format!("sequences of {len} steps for {secs}s"),
            (None, Some(n)) => format!("sequences of {len} steps until {n} steps have run"),
            (None, None) => "the planned sequences".to_owned(),
        },
        args.stacks,
        env.driver
    );
    use futures::StreamExt;
    let for_secs = args.for_secs;
    let step_budget = args.steps;
    let progress = Progress::default();
    let results: Vec<Ran> = futures::stream::iter(plan.take_while(|_| {
        for_secs.is_none_or(|secs| started.elapsed() < Duration::from_secs(secs))
            && step_budget.is_none_or(|n| progress.steps() < n)
    }))
    .map(|(label, seed, sync, ops)| {
        let env = env.clone();
        async move {
            let out = run_sequence(&env, sync, &ops).await;
            (label, seed, sync, ops, out)
        }
    })
    // In order (several at once): the report reads the same however they interleave.
    .buffered(args.stacks)
    .inspect(|ran| {
        // A long run says how far it got as it goes (every 25 sequences, and each failure).
        let (n, steps, failed) = progress.update(ran);
        if long && (n % 25 == 0 || ran.4.failure.is_some()) {
            println!(
                "model: [{:.0}s] {n} sequences, {steps} steps, {failed} failed{}",
                started.elapsed().as_secs_f64(),
                ran.4
                    .failure
                    .as_ref()
                    .map(|(at, op, v)| format!(
                        "; {} failed at step {at} `{op}`: [{}] {}",
                        ran.0, v.check, v.detail
                    ))
                    .unwrap_or_default()
            );
        }
    })
    .collect()
    .await;
    let wall = started.elapsed();
    let steps: usize = results.iter().map(|r| r.4.steps).sum();
    if args.profile {
        let mut total: std::collections::BTreeMap<&str, (usize, Duration)> = Default::default();
        for r in &results {
            for (name, (n, d)) in &r.4.profile {
                let slot = total.entry(name.as_str()).or_default();
                slot.0 += n;
                slot.1 += *d;
            }
        }
        for (i, name) in ["log", "statuses", "slots"].iter().enumerate() {
            let us = check::SECTIONS[i].load(std::sync::atomic::Ordering::Relaxed);
            println!("  check {name:<14} {:>8.1}s", us as f64 / 1e6);
        }
        let mut rows: Vec<_> = total.into_iter().collect();
        rows.sort_by_key(|(_, (_, d))| std::cmp::Reverse(*d));
        for (name, (n, d)) in rows {
            println!(
                "  {name:<20} {n:>6} steps {:>8.1}s  {:>7.1} ms/step",
                d.as_secs_f64(),
                d.as_secs_f64() * 1000.0 / n as f64
            );
        }
    }
    let mut failed = 0;
    for (label, seed, setup, ops, out) in &results {
        let Some((at, op, v)) = &out.failure else {
            continue;
        };
        failed += 1;
        println!(
            "\nmodel: FAILED {label} (setup {setup}) at step {at} `{op}`: [{}] {}",
            v.check, v.detail
        );
        if let Some(seed) = seed {
            println!(
                "  replay: cargo test --test model -- --seed {seed} --len {}",
                ops.len()
            );
        }
        if failed > 2 {
            continue; // shrinking each failure costs minutes: the first two are shrunk
        }
        let cut: Vec<Op> = ops[..(*at + 1).min(ops.len())].to_vec();
        let budget = Duration::from_secs(args.shrink_secs);
        let (small, why) = shrink(&env, *setup, cut, v.check, budget).await;
        println!(
            "  shrunk to {} step(s): [{}] {}",
            small.len(),
            why.check,
            why.detail
        );
        println!(
            "  replay the shrunk sequence: cargo test --test model -- --setup {setup} --ops '{}'",
            ops::render(&small)
        );
    }
    println!(
        "\nmodel: {} sequence(s), {steps} steps in {:.1}s ({:.0} steps/s; CPU {:.1}s here, {:.1}s in hearth and the services), {failed} failed",
        results.len(),
        wall.as_secs_f64(),
        steps as f64 / wall.as_secs_f64(),
        cpu_secs(libc::RUSAGE_SELF),
        cpu_secs(libc::RUSAGE_CHILDREN),
    );
    if failed == 0 {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
