//! `rocky-e2e up` stopped by a signal tears its workspaces down through the console, so HATCH
//! records every run's end and every decommission (CONTRACT §9: teardown first ends the
//! workspace's runs, then records `hearth.decommission_started`; §2: an audit gap is never
//! silent). Before, `up` stopped the services and let hearth remove the workspaces as it
//! exited: nothing was left running, and the log still claimed a running run and two ready
//! workspaces. Runs on the embedded topology (the engine is hidden from `up`), so it needs no
//! Docker engine and runs in every `cargo test`.

use std::io::BufRead;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use rocky::api::console::SubmitRequest;
use rocky::client::ConsoleClient;

use crate::support;

const DEADLINE: Duration = Duration::from_secs(60);

/// SIGTERMs `rocky-e2e up` if the test fails before it does so on purpose.
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

/// `(kind, workspace)` of every record of the HATCH log at `path`.
fn records(path: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .expect("the HATCH log")
        .lines()
        .map(|l| {
            let r: serde_json::Value = serde_json::from_str(l).expect("a HATCH record");
            (
                r["kind"].as_str().unwrap_or_default().to_owned(),
                r["subject"]["workspace"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn up_stopped_by_a_signal_records_every_teardown_in_hatch() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let state_dir = dir.path().join("state");
    let err_log = dir.path().join("up.err");
    // No engine answers, and no e2e gate demands one: `up` takes the embedded topology.
    let mut child = support::embedded(
        Path::new(env!("CARGO_BIN_EXE_rocky-e2e")),
        Path::new(env!("CARGO_MANIFEST_DIR")),
    )
    .arg("up")
    .arg("--state-dir")
    .arg(&state_dir)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::from(
        std::fs::File::create(&err_log).expect("a log file"),
    ))
    .spawn()
    .expect("spawn rocky-e2e up");
    let stdout = child.stdout.take().expect("piped");
    let pid = child.id();
    let mut up = Up(Some(child));
    // Reads every line (so `up` never writes into a closed pipe), telling when it is up and
    // keeping what it printed.
    let (tx, rx) = std::sync::mpsc::channel();
    let printed = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if line.starts_with("stack up:") {
                let _ = tx.send(());
            }
            all.push(line);
        }
        all
    });
    rx.recv_timeout(DEADLINE).unwrap_or_else(|e| {
        panic!(
            "rocky-e2e up printed no `stack up:` line within {DEADLINE:?} ({e}): {}",
            std::fs::read_to_string(&err_log).unwrap_or_default()
        )
    });
    let stack: serde_json::Value = serde_json::from_slice(
        &std::fs::read(state_dir.join("stack.json")).expect("stack.json is written"),
    )
    .expect("stack.json is JSON");
    let hatch = std::path::PathBuf::from(stack["hatch_path"].as_str().expect("hatch_path"));
    let key = stack["hatch_key_path"]
        .as_str()
        .expect("hatch_key_path")
        .to_owned();
    let console = ConsoleClient::new(stack["console_url"].as_str().expect("console_url"))
        .with_token(stack["admin_token"].as_str().expect("admin_token"))
        .with_deadline(DEADLINE);
    for slug in ["idle", "busy"] {
        let answer = console
            .create_workspace(slug, "solo")
            .await
            .expect("the console answers");
        assert_eq!(answer.status, 201, "provision {slug}: {}", answer.body);
    }
    // A run that holds its node until it is cancelled: running when `up` is stopped.
    let answer = console
        .submit_run(&SubmitRequest {
            workspace: "busy".into(),
            prompts: vec!["write the spec".into(), "wait [ralph:hold]".into()],
            max_ralph_iters: None,
        })
        .await
        .expect("the console answers");
    assert_eq!(answer.status, 202, "submit: {}", answer.body);

    // SAFETY: kill(2) on the child this test spawned.
    assert_eq!(unsafe { libc::kill(pid as i32, libc::SIGTERM) }, 0);
    let mut child = up.0.take().expect("running");
    let status = child.wait().expect("wait for rocky-e2e up");
    let printed = printed.join().expect("the reader thread").join("\n");
    let errors = std::fs::read_to_string(&err_log).unwrap_or_default();
    assert!(
        status.success(),
        "rocky-e2e up exited {status} after SIGTERM:\n{printed}\n{errors}"
    );

    let records = records(&hatch);
    let kinds = |slug: &str| -> Vec<&str> {
        records
            .iter()
            .filter(|(_, w)| w == slug)
            .map(|(k, _)| k.as_str())
            .collect()
    };
    assert_eq!(
        kinds("idle"),
        [
            "hearth.provisioning_started",
            "hearth.provisioned",
            "hearth.decommission_started",
            "hearth.decommissioned"
        ],
        "HATCH of workspace idle after `up` was stopped:\n{printed}\n{errors}"
    );
    let busy = kinds("busy");
    assert_eq!(
        busy.first().copied(),
        Some("hearth.provisioning_started"),
        "{busy:?}"
    );
    assert_eq!(
        busy[busy.len().saturating_sub(3)..],
        [
            "ralph.run.ended",
            "hearth.decommission_started",
            "hearth.decommissioned"
        ],
        "HATCH of workspace busy after `up` was stopped (its run ended, then its teardown):\n{printed}\n{errors}"
    );
    let ended = std::fs::read_to_string(&hatch)
        .expect("the HATCH log")
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).expect("a record"))
        .find(|r| r["kind"] == "ralph.run.ended")
        .expect("a ralph.run.ended record");
    assert_eq!(ended["data"]["status"], "cancelled", "{ended}");
    assert!(
        printed.contains("workspace busy: tier_torn_down")
            && printed.contains("done: nothing left running"),
        "{printed}"
    );

    // The log still verifies, chain, seal and key.
    let (verify, text) = support::run(
        support::rocky_e2e(
            Path::new(env!("CARGO_BIN_EXE_rocky-e2e")),
            Path::new(env!("CARGO_MANIFEST_DIR")),
        )
        .args(["hatch", "verify"])
        .arg(&hatch)
        .args(["--key", &key]),
    );
    assert!(verify.status.success(), "hatch verify: {text}");
}
