//! Chaos (c): the harness is SIGKILLed mid-play, hearth with it, so nothing cleans up. The
//! next run's start-of-run sweep (`sweep_stale`) removes what they left: only objects of this
//! host whose owner pid is dead. Needs a Docker engine: runs with `ROCKY_E2E=1`, and says it is
//! skipped otherwise.

use std::io::BufRead;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rocky::client::ConsoleClient;
use rocky::docker::labels;
use rocky::docker::sweep::{list_labelled_objects, process_alive, sweep_stale};

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
        .with_token(stack["admin_token"].as_str().expect("admin_token"));
    let answer = console
        .send(
            reqwest::Method::POST,
            "/api/hearth/workspaces",
            Some(br#"{"slug":"killed","tier":"solo"}"#.to_vec()),
            None,
            DEADLINE,
        )
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
