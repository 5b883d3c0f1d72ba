//! Ownership across PID namespaces on the real engine (contract §9): the start-of-run sweep
//! removes what a gone owner of this PID namespace left, and never what an owner of another
//! PID namespace (or host) made, whatever its pid. Needs a Docker engine: runs with
//! `ROCKY_E2E=1`, and says it is skipped otherwise.
//!
//! The engine is shared: every object here carries a label of this test run alone, the sweep
//! is restricted to it, and the test removes what it made itself.

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use rocky::docker::labels;
use rocky::docker::owner::ProcessId;
use rocky::docker::sweep::{list_labelled_objects, sweep_stale_labelled};

/// The label marking this run's objects: the sweep looks at nothing else.
const PROBE: &str = "rocky.test-probe";

/// One owner: a name, the labels that differ from this process's, whether the sweep removes it.
type Case = (&'static str, Vec<(&'static str, String)>, bool);

/// A pid far above pid_max: no process has it.
const GONE_PID: &str = "4999999";

async fn network(docker: &Docker, name: &str, labels: HashMap<String, String>) {
    docker
        .create_network(NetworkCreateRequest {
            name: name.to_owned(),
            driver: Some("bridge".into()),
            labels: Some(labels),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|e| panic!("create network {name}: {e}"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_sweep_leaves_another_pid_namespaces_objects_alone() {
    if std::env::var("ROCKY_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: needs a Docker engine (set ROCKY_E2E=1)");
        return;
    }
    let docker = rocky::docker::connect()
        .await
        .expect("ROCKY_E2E=1 requires a reachable Docker engine");
    let run = rocky::ids::random_hex(6);
    let me = ProcessId::this_process();
    // Every case: a gone pid (or this pid reused), owners differing only in what names them.
    let cases: [Case; 5] = [
        ("gone", vec![(labels::PID, GONE_PID.into())], true),
        (
            "reused",
            vec![(labels::START, (me.start + 1).to_string())],
            true,
        ),
        (
            "pidns",
            vec![
                (labels::PID, GONE_PID.into()),
                (labels::PIDNS, (me.pidns + 1).to_string()),
            ],
            false,
        ),
        (
            "pidns-reused",
            vec![
                (labels::START, "1".into()),
                (labels::PIDNS, (me.pidns + 1).to_string()),
            ],
            false,
        ),
        (
            "host",
            vec![
                (labels::PID, GONE_PID.into()),
                (labels::HOST, "another-runner/boot/machine".into()),
            ],
            false,
        ),
    ];
    let name = |case: &str| format!("rocky-probe{run}-{case}");
    for (case, edits, _) in &cases {
        let mut l = labels::owned(&format!("probe{run}{case}"));
        l.insert(PROBE.into(), run.clone());
        for (k, v) in edits {
            l.insert((*k).to_owned(), v.clone());
        }
        network(&docker, &name(case), l).await;
    }
    let only_ours = [format!("{PROBE}={run}")];
    let swept = sweep_stale_labelled(&docker, &only_ours).await;
    let left: Vec<String> = list_labelled_objects(&docker, &only_ours)
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.name)
        .collect();
    // Clean up before judging, so a failure leaves nothing behind.
    for o in list_labelled_objects(&docker, &only_ours)
        .await
        .expect("list")
    {
        let _ = docker.remove_network(&o.id).await;
    }
    let swept = swept.expect("the sweep");
    let mut swept = swept.networks;
    swept.sort();
    let mut expected_swept: Vec<String> = cases
        .iter()
        .filter(|(_, _, gone)| *gone)
        .map(|(c, _, _)| name(c))
        .collect();
    expected_swept.sort();
    assert_eq!(swept, expected_swept, "what the sweep removed");
    for (case, _, gone) in &cases {
        assert_eq!(
            !left.contains(&name(case)),
            *gone,
            "network {} (case {case}) after the sweep; left: {left:?}",
            name(case)
        );
    }
}

/// A workspace of hearth's session whose objects a live process other than hearth owns (as a
/// hearth of the same session in another PID namespace would): hearth answers 503 for it,
/// never removes it, not at rediscovery and not at its exit.
#[tokio::test(flavor = "multi_thread")]
async fn hearth_leaves_a_workspace_a_live_owner_holds_alone() {
    use std::io::BufRead;
    use std::time::Duration;
    if std::env::var("ROCKY_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: needs a Docker engine (set ROCKY_E2E=1)");
        return;
    }
    let docker = rocky::docker::connect()
        .await
        .expect("ROCKY_E2E=1 requires a reachable Docker engine");
    let session = format!("held{}", rocky::ids::random_hex(4));
    let name = format!("rocky-{session}-held");
    // Owned by this test process: alive, and not the hearth below.
    let mut l = labels::for_workspace(&session, "held");
    l.insert(labels::TIER.into(), "solo".into());
    network(&docker, &name, l).await;

    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let args = rocky::cli::HearthArgs {
        session: Some(session.clone()),
        exit_on_stdin_eof: true,
        ..rocky::cli::HearthArgs::new(&socket)
    };
    let mut hearth = std::process::Command::new(env!("CARGO_BIN_EXE_hearth"))
        .args(args.to_args())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("spawn hearth");
    let stdout = hearth.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = std::io::BufReader::new(stdout).lines();
        let _ = tx.send(lines.next().and_then(Result::ok));
        for _ in lines {}
    });
    let ready = rx.recv_timeout(Duration::from_secs(30)).ok().flatten();
    let client = rocky::hearth::client::HearthClient::new(&socket);
    let status = client.status("held", Duration::from_secs(10)).await;
    let teardown = client.teardown("held", Duration::from_secs(10)).await;
    drop(hearth.stdin.take());
    let exited = hearth.wait().expect("wait for hearth");
    let left = list_labelled_objects(&docker, &[labels::session_filter(&session)])
        .await
        .expect("list")
        .into_iter()
        .map(|o| o.name)
        .collect::<Vec<_>>();
    let _ = docker.remove_network(&name).await;

    assert!(ready.is_some(), "hearth did not start");
    let refused = |r: Result<_, rocky::hearth::client::HearthError>| match r {
        Err(rocky::hearth::client::HearthError::Refused { status, code, .. }) => (status, code),
        Ok(answer) => panic!("hearth answered {answer:?}"),
        Err(e) => panic!("{e}"),
    };
    assert_eq!(
        refused(status.map(|_| ())),
        (503, rocky::api::ErrorCode::Rediscovering.to_string())
    );
    assert_eq!(
        refused(teardown.map(|_| ())),
        (503, rocky::api::ErrorCode::Rediscovering.to_string())
    );
    assert!(exited.success(), "hearth exited {exited}");
    assert_eq!(
        left,
        vec![name],
        "hearth removed a workspace a live owner holds"
    );
}
