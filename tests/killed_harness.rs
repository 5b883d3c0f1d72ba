//! Chaos (c): the harness is SIGKILLed mid-play, hearth with it, so nothing cleans up. The
//! next run's start-of-run sweep (`sweep_stale`) removes what they left: only objects of this
//! host and PID namespace whose owner is gone. And a hearth SIGKILLed mid-provision: the next
//! one adopts the workspace still becoming healthy, never removes it. Needs a Docker engine:
//! runs with `ROCKY_E2E=1`, and says it is skipped otherwise.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocky::client::ConsoleClient;
use rocky::docker::labels;
use rocky::docker::sweep::{
    list_labelled_objects, process_alive, sweep_stale, sweep_stale_labelled,
};

const DEADLINE: Duration = Duration::from_secs(180);

/// Children of `pid` (from `/proc/*/stat`: the fourth field is the parent pid).
fn children(pid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) else {
            continue;
        };
        let ppid = stat
            .rfind(')')
            .and_then(|i| stat[i + 1..].split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) {
            out.push(child);
        }
    }
    out
}

/// Stops `rocky-e2e up` with SIGTERM (it tears its stack down) if the test fails before it
/// kills it on purpose.
struct Up(Option<std::process::Child>);

impl Drop for Up {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            // SAFETY: kill(2) on the child this test spawned.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_next_run_sweeps_what_a_killed_harness_left() {
    if std::env::var("ROCKY_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: needs a Docker engine (set ROCKY_E2E=1)");
        return;
    }
    let docker = rocky::docker::connect()
        .await
        .expect("ROCKY_E2E=1 requires a reachable Docker engine");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state_dir = dir.path().join("state");
    let log = std::fs::File::create(dir.path().join("up.log")).expect("a log file");
    // In a process group of its own, so one SIGKILL takes the harness and its hearth at once.
    let mut up = Command::new(env!("CARGO_BIN_EXE_rocky-e2e"))
        .arg("up")
        .arg("--state-dir")
        .arg(&state_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log))
        .process_group(0)
        .spawn()
        .expect("spawn rocky-e2e up");
    let pid = up.id();
    let stdout = up.stdout.take().expect("piped");
    let mut up = Up(Some(up));
    // Reads every line (so `up` never writes into a closed pipe), telling when it is up.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("stack up:") {
                let _ = tx.send(());
            }
        }
    });
    rx.recv_timeout(DEADLINE).unwrap_or_else(|e| {
        panic!(
            "rocky-e2e up printed no `stack up:` line within {DEADLINE:?} ({e}); see {}",
            dir.path().join("up.log").display()
        )
    });
    let stack: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state_dir.join("stack.json")).expect("stack.json is written"),
    )
    .expect("stack.json is JSON");
    let console = ConsoleClient::new(stack["console_url"].as_str().expect("console_url"))
        .with_token(stack["admin_token"].as_str().expect("admin_token"))
        .with_deadline(DEADLINE);
    let answer = console
        .create_workspace("killed", "solo")
        .await
        .expect("the console answers");
    assert_eq!(answer.status, 201, "provision: {}", answer.body);

    let owners: Vec<String> = std::iter::once(pid)
        .chain(children(pid))
        .map(|p| p.to_string())
        .collect();
    let mine = |objects: Vec<rocky::docker::LabelledObject>| -> Vec<String> {
        objects
            .into_iter()
            .filter(|o| {
                // Named across PID namespaces and pid reuse, not by pid alone.
                assert!(
                    !owners.contains(&o.labels[labels::PID])
                        || (o.labels.get(labels::PIDNS)
                            == Some(&rocky::docker::owner::pid_namespace().to_string())
                            && o.labels.contains_key(labels::START)),
                    "{} {} lacks its owner's PID namespace or start time: {:?}",
                    o.kind,
                    o.name,
                    o.labels
                );
                o.labels.get(labels::HOST) == Some(&labels::host_id())
                    && o.labels
                        .get(labels::PID)
                        .is_some_and(|p| owners.contains(p))
            })
            .map(|o| format!("{} {}", o.kind, o.name))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect()
    };
    let before = mine(list_labelled_objects(&docker, &[]).await.expect("list"));
    assert!(
        before.iter().filter(|o| o.starts_with("container")).count() >= 4,
        "expected the workspace's services and the stack's console and worker, found {before:?}"
    );

    // From the kill on, what it left is stale to any run's sweep: no other test's sweep may
    // run until this test's own has (before the kill, its owners live and every sweep spares
    // it, so the lock is taken only now).
    let _sweeps = crate::support::DOCKER_SWEEPS.lock().await;
    // SAFETY: kill(2) on the process group this test made.
    unsafe {
        libc::kill(-(pid as i32), libc::SIGKILL);
    }
    up.0.take()
        .expect("still running")
        .wait()
        .expect("wait for rocky-e2e up");
    let gone = Instant::now();
    while owners
        .iter()
        .any(|p| process_alive(p.parse().expect("a pid")))
    {
        assert!(
            gone.elapsed() < DEADLINE,
            "processes {owners:?} outlived SIGKILL by {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let left = mine(list_labelled_objects(&docker, &[]).await.expect("list"));
    assert_eq!(
        left, before,
        "nothing cleans up after a SIGKILL: everything is still there"
    );

    let swept = sweep_stale(&docker).await.expect("the start-of-run sweep");
    let after = mine(list_labelled_objects(&docker, &[]).await.expect("list"));
    assert!(
        after.is_empty(),
        "the sweep ({swept:?}) left objects of the killed run: {after:?}"
    );
}

/// hearth on Docker as a child of this test, for `session` on `socket`, ready by its line.
fn spawn_hearth(socket: &std::path::Path, session: &str, log: &std::path::Path) -> Up {
    rocky_e2e::binaries::ensure_built().expect("build hearth");
    let hearth = rocky_e2e::stack::locate_hearth(&rocky_e2e::binaries::search_dirs())
        .expect("cargo test builds hearth");
    let args = rocky::cli::HearthArgs {
        health_timeout: std::time::Duration::from_secs(60),
        session: Some(session.to_owned()),
        exit_on_stdin_eof: true,
        keeper_pid: Some(std::process::id()),
        ..rocky::cli::HearthArgs::new(socket)
    };
    let mut child = Command::new(hearth)
        .args(args.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)
                .expect("a log file"),
        ))
        .spawn()
        .expect("spawn hearth");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    let line = rx.recv_timeout(DEADLINE).ok().flatten();
    assert!(
        line.as_deref()
            .is_some_and(|l| l.starts_with("hearth listening on")),
        "hearth did not start ({line:?}); its log: {}",
        std::fs::read_to_string(log).unwrap_or_default()
    );
    Up(Some(child))
}

/// Removes everything of `session` (this test's own objects only) when dropped.
struct SweepSession(String);

impl Drop for SweepSession {
    fn drop(&mut self) {
        let session = self.0.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Runtime::new().expect("a runtime");
            rt.block_on(async {
                if let Ok(docker) = rocky::docker::connect().await {
                    let _ = rocky::docker::sweep::sweep(&docker, Some(&session)).await;
                }
            })
        })
        .join();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hearth_killed_mid_provision_leaves_the_workspace_to_the_next() {
    if std::env::var("ROCKY_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: needs a Docker engine (set ROCKY_E2E=1)");
        return;
    }
    // No DOCKER_SWEEPS: another run's sweep spares this session while this test (its
    // keeper) lives, and this test's own sweep judges its session only.
    let docker = rocky::docker::connect()
        .await
        .expect("ROCKY_E2E=1 requires a reachable Docker engine");
    let dir = tempfile::tempdir().expect("a temporary directory");
    let image = rocky_e2e::images::ensure_standin_image(&docker, &dir.path().join("cache"))
        .await
        .expect("the stand-in image");
    let session = format!("inflight{}", rocky::ids::random_hex(3));
    let _cleanup = SweepSession(session.clone());
    let socket = dir.path().join("hearth.sock");
    let log = dir.path().join("hearth.log");
    let service = |name: &str, env: &[(&str, &str)]| rocky::tier::ServiceSpec {
        name: name.into(),
        image: image.tag.clone(),
        port: 8080,
        health: "/healthz".into(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    };
    // lore answers its health route only after 4 s: long after hearth is killed.
    let tier = rocky::tier::TierProfile {
        name: "solo".into(),
        services: vec![
            service("cairnet", &[]),
            service("lore", &[("STANDIN_HEALTHY_AFTER_MS", "4000")]),
        ],
    };
    let mut first = spawn_hearth(&socket, &session, &log);
    let client = rocky::hearth::client::HearthClient::new(&socket);
    let provision = {
        let client = client.clone();
        tokio::spawn(async move { client.provision("slow", &tier, DEADLINE).await })
    };
    // Provisioning, with both containers made and running: killed while it waits on lore.
    let session_label = [labels::session_filter(&session)];
    let waited = Instant::now();
    loop {
        let objects = list_labelled_objects(&docker, &session_label)
            .await
            .expect("list");
        let mut running = 0;
        for o in objects.iter().filter(|o| o.kind == "container") {
            if rocky::docker::inspect::is_running(&docker, &o.id)
                .await
                .unwrap_or(false)
            {
                running += 1;
            }
        }
        if running == 2 {
            break;
        }
        assert!(
            waited.elapsed() < DEADLINE,
            "the two service containers of slow never ran within {DEADLINE:?}: {objects:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = client
        .status("slow", DEADLINE)
        .await
        .expect("status of slow");
    assert_eq!(status.status, rocky::api::hearth::Status::Provisioning);
    let mut child = first.0.take().expect("running");
    child.kill().expect("SIGKILL hearth");
    child.wait().expect("reap hearth");
    let _ = provision.await;
    // A start-of-run sweep, between the kill and the next hearth, judging this session (as
    // any run's sweep judges every session): this test (hearth's keeper) lives, so nothing of
    // it is stale.
    let before = list_labelled_objects(&docker, &session_label)
        .await
        .expect("list");
    let swept = sweep_stale_labelled(&docker, &session_label)
        .await
        .expect("a sweep");
    let after = list_labelled_objects(&docker, &session_label)
        .await
        .expect("list");
    assert_eq!(
        after.len(),
        before.len(),
        "a sweep between a hearth's kill and its successor removed the session's objects \
         ({swept:?}) while its keeper lives"
    );

    let second = spawn_hearth(&socket, &session, &log);
    let report = client.status("slow", DEADLINE).await.expect("status");
    assert!(
        matches!(
            report.status,
            rocky::api::hearth::Status::Provisioning | rocky::api::hearth::Status::Ready
        ),
        "the next hearth reports slow {} ({})",
        report.status,
        report.error.unwrap_or_default()
    );
    let waited = Instant::now();
    loop {
        let report = client.status("slow", DEADLINE).await.expect("status");
        match report.status {
            rocky::api::hearth::Status::Ready => break,
            rocky::api::hearth::Status::Provisioning => {}
            other => panic!(
                "slow settled as {other}, not ready: {}",
                report.error.unwrap_or_default()
            ),
        }
        assert!(
            waited.elapsed() < DEADLINE,
            "slow still provisioning after {DEADLINE:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let down = client.teardown("slow", DEADLINE).await.expect("teardown");
    assert_eq!(down.status, rocky::api::hearth::Status::TierTornDown);
    drop(second);
    let left = list_labelled_objects(&docker, &session_label)
        .await
        .expect("list");
    assert!(left.is_empty(), "left after hearth exited: {left:?}");
}
