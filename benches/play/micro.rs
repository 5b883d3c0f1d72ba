//! The HATCH and KAHN micro-benchmarks: appending and verifying a HATCH file, validating KAHN
//! frames, each as a rate.

use std::path::Path;
use std::time::Instant;

use anyhow::{anyhow, ensure};
use rocky::hatch::{Event, EventKind, Hatch};
use rocky::kahn::{self, Frame, NodeState, RunStatus};

use crate::common::{Args, TARGET_APPEND_PER_S, TARGET_VERIFY_PER_S};
use crate::env::Env;
use crate::table::Table;

/// Records in the HATCH measurements; frames per KAHN measurement.
pub(crate) const HATCH_RECORDS: usize = 100_000;
pub(crate) const KAHN_FRAMES: usize = 100_000;

pub(crate) fn hatch_section(args: &Args, env: &Env, table: &mut Table) -> anyhow::Result<()> {
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
        "HATCH append, sealed (a write(2) per record + the seal replaced: new file, rename; no fsync)",
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

pub(crate) fn kahn_section(args: &Args, table: &mut Table) -> anyhow::Result<()> {
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

pub(crate) fn hatch_events() -> Vec<Event> {
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
pub(crate) fn hatch_once(path: &Path) -> anyhow::Result<(f64, f64)> {
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

/// A run's worth of frames as the worker encodes them: attempts, transitions, the end.
pub(crate) fn kahn_frames() -> Vec<String> {
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

pub(crate) fn kahn_once(frames: &[String]) -> anyhow::Result<f64> {
    let started = Instant::now();
    for data in frames.iter().cycle().take(KAHN_FRAMES) {
        let envelope = kahn::validate(std::hint::black_box(data))
            .map_err(|r| anyhow!("frame rejected: {r}"))?;
        std::hint::black_box(envelope);
    }
    Ok(KAHN_FRAMES as f64 / started.elapsed().as_secs_f64())
}
