//! One hearth per socket, and a view it does not have is never "gone" (contract §9), against
//! the real `hearth` binary:
//! - a second hearth on a live socket (or session) exits before touching anything, naming the
//!   socket (or session) and the live one's pid, and the first one's provisioning completes;
//! - while the engine does not answer, hearth answers 503 `rediscovering` about a workspace it
//!   cannot place, never 404; once the engine answers (with `ROCKY_E2E=1`), it can say;
//! - a hearth killed mid-provision: the next adopts a workspace whose services all listen, and
//!   reports one whose services were still starting `failed`, none of its stand-ins left.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use rocky::api::hearth::{DriverKind, Status};
use rocky::cli::HearthArgs;
use rocky::hearth::client::{HearthClient, HearthError};
use rocky::tier::{ServiceSpec, TierProfile};

/// How long any wait of these tests may take before it fails, naming what it waited for.
const PATIENCE: Duration = Duration::from_secs(30);

/// The stand-in, compiled once per build directory from the project's own source (once per
/// process: the tests of this file run at once and share it).
fn standin() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT.get_or_init(compile_standin).clone()
}

fn compile_standin() -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../standin/standin.rs");
    let text = std::fs::read(&source).expect("standin/standin.rs");
    use sha2::Digest;
    let key = &hex::encode(sha2::Sha256::digest(&text))[..16];
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let binary = dir.join(format!("standin-{key}"));
    if binary.is_file() {
        executable(&binary);
        return binary;
    }
    // A folder of this process's own: rustc names its intermediate objects after the output's
    // stem, so two compiles writing beside each other would delete each other's objects.
    let work = dir.join(format!("standin-{key}-build-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("the stand-in's build folder");
    let partial = work.join("standin");
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .args(["-O", "--edition", "2021"])
        .arg(&source)
        .arg("-o")
        .arg(&partial)
        .output()
        .unwrap_or_else(|e| panic!("failed to run {rustc}: {e}"));
    assert!(
        out.status.success(),
        "compiling the stand-in failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    executable(&partial);
    std::fs::rename(&partial, &binary).expect("the stand-in into place");
    let _ = std::fs::remove_dir_all(&work);
    binary
}

/// Mode 0755, whatever the umask was: the in-process hearths of this binary's other tests
/// narrow the process-wide umask while they bind their sockets, and rustc, started in that
/// window, wrote a stand-in nobody could execute (every start then failed with "Permission
/// denied"; seen in a fresh clone).
fn executable(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("make {} executable: {e}", path.display()));
}

/// A tier whose `lore` answers its health route only after `lore_after_ms`.
fn tier(lore_after_ms: u64) -> TierProfile {
    let service = |name: &str, env: &[(&str, String)]| ServiceSpec {
        name: name.into(),
        image: "rocky-e2e/standin:local".into(),
        port: 8080,
        health: "/healthz".into(),
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    };
    TierProfile {
        name: "solo".into(),
        services: vec![
            service("cairnet", &[]),
            service(
                "lore",
                &[("STANDIN_HEALTHY_AFTER_MS", lore_after_ms.to_string())],
            ),
        ],
    }
}

/// A hearth this test started: killed (and its services with it, by its own shutdown) on drop.
struct Hearth {
    child: Child,
    stderr: PathBuf,
}

impl Hearth {
    /// Spawns `hearth` with `args` (exiting when its stdin closes); returns it with the first
    /// line it printed (or `None` if it exited without one), waiting at most [`PATIENCE`].
    fn spawn(
        dir: &Path,
        name: &str,
        args: &HearthArgs,
        env: &[(&str, &str)],
    ) -> (Hearth, Option<String>) {
        let stderr = dir.join(format!("{name}.log"));
        let args = HearthArgs {
            exit_on_stdin_eof: true,
            ..args.clone()
        };
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hearth"));
        cmd.args(args.to_args())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).expect("a log file"));
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn hearth");
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next().and_then(Result::ok));
            for _ in lines {}
        });
        let line = rx.recv_timeout(PATIENCE).unwrap_or_else(|_| {
            panic!("hearth {name} printed nothing and did not exit within {PATIENCE:?}")
        });
        (Hearth { child, stderr }, line)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Waits (bounded) for it to exit; its exit status.
    fn exited(&mut self, within: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait for hearth") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hearth did not exit within {within:?}; its log: {}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Closes its stdin (its signal to tear everything down and exit) and waits.
    fn stop(mut self) {
        drop(self.child.stdin.take());
        let status = self.exited(PATIENCE);
        assert!(status.success(), "hearth exited {status}: {}", self.log());
    }
}

impl Drop for Hearth {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            drop(self.child.stdin.take());
            let deadline = Instant::now() + PATIENCE;
            while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Polls hearth's status of `slug` until `want`, or fails naming what it saw.
async fn wait_status(client: &HearthClient, slug: &str, want: Status) {
    let deadline = Instant::now() + PATIENCE;
    let mut last = String::new();
    while Instant::now() < deadline {
        match client.status(slug, Duration::from_secs(5)).await {
            Ok(r) if r.status == want => return,
            Ok(r) => last = format!("{} ({})", r.status, r.error.unwrap_or_default()),
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("workspace {slug} never reached {want} within {PATIENCE:?}; last: {last}");
}

/// (inode, mtime) of `path`: whether anyone rewrote it.
fn identity(path: &Path) -> (u64, std::time::SystemTime) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    (m.ino(), m.modified().expect("mtime"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_second_hearth_on_a_live_socket_exits_before_touching_anything() {
    let standin = standin();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let socket_arg = socket.display().to_string();
    let session = format!("lock{}", std::process::id());
    let args = |socket: &Path, session: &str| HearthArgs {
        driver: DriverKind::Process,
        standin_bin: Some(standin.clone()),
        session: Some(session.to_owned()),
        ..HearthArgs::new(socket)
    };
    let (first, line) = Hearth::spawn(dir.path(), "first", &args(&socket, &session), &[]);
    assert_eq!(
        line.as_deref(),
        Some(format!("hearth listening on {socket_arg}").as_str()),
        "{}",
        first.log()
    );
    let client = HearthClient::new(&socket);

    // One workspace ready (in the state file), one still provisioning: its lore is slow.
    let ready = client
        .provision("done", &tier(0), PATIENCE)
        .await
        .expect("provision done");
    assert_eq!(ready.status, Status::Ready, "{ready:?}");
    let state = rocky::hearth::driver::process::state_path(&socket);
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.provision("slow", &tier(3000), PATIENCE).await })
    };
    wait_status(&client, "slow", Status::Provisioning).await;
    wait_recorded(&state, "slow").await;
    let state_before = identity(&state);

    // Same socket, another session.
    let (mut second, line) = Hearth::spawn(dir.path(), "second", &args(&socket, "another"), &[]);
    assert_eq!(
        line, None,
        "a second hearth on {socket_arg} said it listens"
    );
    let status = second.exited(PATIENCE);
    let log = second.log();
    // Nothing was touched: the state file is still the one the first hearth wrote.
    assert_eq!(
        identity(&state),
        state_before,
        "the refused hearth rewrote the state file {}: {log}",
        state.display()
    );
    assert!(!status.success(), "the second hearth exited {status}");
    let holder = format!("pid {} ", first.child.id());
    assert!(
        log.contains(&format!("socket {socket_arg}")) && log.contains(&holder),
        "the refusal names the socket and the live hearth's {holder}: {log}"
    );
    // Same session, another socket.
    let other_socket = dir.path().join("other.sock").display().to_string();
    let (mut third, line) = Hearth::spawn(
        dir.path(),
        "third",
        &args(Path::new(&other_socket), &session),
        &[],
    );
    assert_eq!(
        line, None,
        "a second hearth of session {session} said it listens"
    );
    assert!(!third.exited(PATIENCE).success());
    let log = third.log();
    assert!(
        log.contains(&format!("session {session}")) && log.contains(&holder),
        "the refusal names the session and the live hearth's {holder}: {log}"
    );
    assert!(
        !Path::new(&other_socket).exists(),
        "the refused hearth bound its socket"
    );

    // Nothing was touched: the state file is the first hearth's, and its work goes on.
    assert_eq!(
        identity(&state),
        state_before,
        "a refused hearth rewrote the state file {}",
        state.display()
    );
    let slow = slow
        .await
        .expect("the provision task")
        .expect("the slow provision is answered");
    assert_eq!(slow.status, Status::Ready, "{slow:?}");
    assert_eq!(
        client
            .status("done", PATIENCE)
            .await
            .expect("status of done")
            .status,
        Status::Ready
    );
    for slug in ["done", "slow"] {
        let report = client.teardown(slug, PATIENCE).await.expect("teardown");
        assert_eq!(report.status, Status::TierTornDown, "{report:?}");
    }
    first.stop();
    assert!(
        !rocky::hearth::lock::socket_lock_path(&socket).exists(),
        "hearth removes its lock file at exit"
    );
}

/// What a refused call answered: (HTTP status, error code).
fn refusal<T: std::fmt::Debug>(r: Result<T, HearthError>) -> (u16, String) {
    match r {
        Err(HearthError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_does_not_answer_at_first_is_never_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let engine = dir.path().join("engine.sock");
    let docker_host = format!("unix://{}", engine.display());
    let session = format!("noeng{}", std::process::id());
    let (hearth, line) = Hearth::spawn(
        dir.path(),
        "hearth",
        &HearthArgs {
            session: Some(session.clone()),
            ..HearthArgs::new(&socket)
        },
        &[("DOCKER_HOST", &docker_host)],
    );
    assert!(line.is_some(), "hearth did not start: {}", hearth.log());
    let client = HearthClient::new(&socket);
    let quick = Duration::from_secs(10);

    // Whether "ghost" exists cannot be known: 503, never 404.
    assert_eq!(
        refusal(client.status("ghost", quick).await),
        (503, rocky::api::ErrorCode::Rediscovering.to_string())
    );
    assert_eq!(
        refusal(client.teardown("ghost", quick).await),
        (503, rocky::api::ErrorCode::Rediscovering.to_string())
    );
    assert_eq!(
        refusal(client.list(quick).await),
        (503, rocky::api::ErrorCode::Rediscovering.to_string())
    );
    // A provision meanwhile fails with the engine's own words, touching nothing.
    let failed = client
        .provision("p", &tier(0), PATIENCE)
        .await
        .expect("the provision is answered");
    assert_eq!(failed.status, Status::Failed);
    let why = failed.error.unwrap_or_default();
    assert!(why.contains("engine.sock"), "{why}");
    assert_eq!(
        client.status("p", quick).await.expect("status p").status,
        Status::Failed
    );

    // The engine answers (where this host has one): the view completes, "ghost" is gone.
    let real = match std::env::var("DOCKER_HOST") {
        Ok(h) => h.strip_prefix("unix://").map(PathBuf::from),
        Err(_) => Some(PathBuf::from("/var/run/docker.sock")),
    };
    if std::env::var("ROCKY_E2E").as_deref() != Ok("1") {
        eprintln!("the engine's return is skipped: set ROCKY_E2E=1 to include it");
        hearth.stop();
        return;
    }
    let real = real.expect("ROCKY_E2E=1 with a unix DOCKER_HOST");
    std::os::unix::fs::symlink(&real, &engine).expect("point the endpoint at the engine");
    let deadline = Instant::now() + PATIENCE;
    loop {
        match client.status("ghost", quick).await {
            Err(HearthError::Refused { status: 404, .. }) => break,
            Err(HearthError::Refused { status: 503, .. }) => {}
            other => panic!("expected 503 then 404, got {other:?}"),
        }
        assert!(
            Instant::now() < deadline,
            "hearth still rediscovering {PATIENCE:?} after the engine answered: {}",
            hearth.log()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(client.list(quick).await.expect("list").len(), 1);
    hearth.stop();
}

/// Waits until the state file names both service processes of `slug`; their pids.
async fn wait_recorded(state: &Path, slug: &str) -> Vec<u32> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let pids = recorded_pids(state, slug);
        if pids.len() == 2 {
            return pids;
        }
        assert!(
            Instant::now() < deadline,
            "{} never named the 2 services of {slug} within {PATIENCE:?}",
            state.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// pids the process driver's state file names for `slug`.
fn recorded_pids(state: &Path, slug: &str) -> Vec<u32> {
    let text = std::fs::read(state).unwrap_or_default();
    let all: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
    all[slug]["pids"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| p.as_u64())
                .map(|p| p as u32)
                .collect()
        })
        .unwrap_or_default()
}

/// A hearth SIGKILLed while a workspace is still becoming healthy: the next hearth on the
/// socket adopts the workspace (`provisioning`, then `ready`), never removes or forgets it.
#[tokio::test(flavor = "multi_thread")]
async fn a_restarted_hearth_adopts_a_workspace_still_provisioning() {
    let standin = standin();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let session = format!("adopt{}", std::process::id());
    let args = HearthArgs {
        driver: DriverKind::Process,
        standin_bin: Some(standin.clone()),
        session: Some(session.clone()),
        ..HearthArgs::new(&socket)
    };
    let (mut first, line) = Hearth::spawn(dir.path(), "first", &args, &[]);
    assert!(line.is_some(), "{}", first.log());
    let client = HearthClient::new(&socket);
    let slow = {
        let client = client.clone();
        tokio::spawn(async move { client.provision("slow", &tier(3000), PATIENCE).await })
    };
    wait_status(&client, "slow", Status::Provisioning).await;
    let state = rocky::hearth::driver::process::state_path(&socket);
    let pids = wait_recorded(&state, "slow").await;
    let at_kill = client
        .status("slow", PATIENCE)
        .await
        .expect("status of slow");
    assert_eq!(
        at_kill.status,
        Status::Provisioning,
        "slow must be recorded while it still provisions"
    );

    first.child.kill().expect("SIGKILL the first hearth");
    first.child.wait().expect("reap it");
    let _ = slow.await;
    let (second, line) = Hearth::spawn(dir.path(), "second", &args, &[]);
    assert!(line.is_some(), "{}", second.log());
    let report = client
        .status("slow", PATIENCE)
        .await
        .expect("status of slow");
    assert!(
        matches!(report.status, Status::Provisioning | Status::Ready),
        "the restarted hearth reports slow as {} ({})",
        report.status,
        report.error.unwrap_or_default()
    );
    wait_status(&client, "slow", Status::Ready).await;
    let report = client.teardown("slow", PATIENCE).await.expect("teardown");
    assert_eq!(report.status, Status::TierTornDown, "{report:?}");
    for pid in pids {
        assert!(
            !rocky::docker::sweep::process_alive(pid as i32),
            "service process {pid} outlived the teardown"
        );
    }
    second.stop();
}

/// A caller whose provision went unanswered asks hearth how it went (the console past its
/// provision deadline): hearth reports the provision's `attempt`, so what it says about the
/// slug's previous life (torn down under another attempt) is never taken for the new
/// provision; and a provision whose caller hung up is taken all the same.
#[tokio::test(flavor = "multi_thread")]
async fn hearth_reports_which_provision_a_status_is_about() {
    let standin = standin();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let args = HearthArgs {
        driver: DriverKind::Process,
        standin_bin: Some(standin.clone()),
        session: Some(format!("attempt{}", std::process::id())),
        ..HearthArgs::new(&socket)
    };
    let (hearth, line) = Hearth::spawn(dir.path(), "hearth", &args, &[]);
    assert!(line.is_some(), "hearth did not start: {}", hearth.log());
    let client = HearthClient::new(&socket);

    let first = client
        .provision_as("again", &tier(0), Some("first"), PATIENCE)
        .await
        .expect("the first provision");
    assert_eq!(first.status, Status::Ready, "{first:?}");
    let gone = client
        .teardown("again", PATIENCE)
        .await
        .expect("the teardown");
    assert_eq!(
        (gone.status, gone.attempt.as_deref()),
        (Status::TierTornDown, Some("first"))
    );
    let before = client.status("again", PATIENCE).await.expect("status");
    assert_eq!(before.attempt.as_deref(), Some("first"), "{before:?}");

    // The caller gives up long before the slow provision settles; hearth carries on.
    let hung_up = client
        .provision_as(
            "again",
            &tier(1500),
            Some("second"),
            Duration::from_millis(200),
        )
        .await;
    assert!(
        matches!(hung_up, Err(HearthError::Deadline { .. })),
        "{hung_up:?}"
    );
    wait_status(&client, "again", Status::Ready).await;
    let after = client.status("again", PATIENCE).await.expect("status");
    assert_eq!(after.attempt.as_deref(), Some("second"), "{after:?}");
    // A provision that names no attempt reports none.
    let plain = client
        .provision("plain", &tier(0), PATIENCE)
        .await
        .expect("a plain provision");
    assert_eq!(plain.status, Status::Ready);
    let plain = client.status("plain", PATIENCE).await.expect("status");
    assert_eq!(plain.attempt, None, "{plain:?}");
}

/// The live processes whose environment holds `mark` (`KEY=VALUE`): (pid, start time).
fn marked(mark: &str) -> Vec<(u32, u64)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|e| e == mark.as_bytes()))
        })
        .filter_map(|pid| {
            let stat = rocky::docker::owner::proc_stat(pid)?;
            (!stat.zombie).then_some((pid, stat.start))
        })
        .collect()
}

/// Whether process `pid` started at `start` still runs (not a zombie, not a reused pid).
fn still_runs((pid, start): (u32, u64)) -> bool {
    rocky::docker::owner::proc_stat(pid).is_some_and(|s| !s.zombie && s.start == start)
}

/// SIGKILLs, on drop, every process marked `0` that still runs: a test that fails leaves no
/// stand-in behind.
struct KillMarked(String);

impl Drop for KillMarked {
    fn drop(&mut self) {
        for p in marked(&self.0) {
            let id = rocky::docker::owner::ProcessId::of_pid(p.0);
            if let Some(id) = id.filter(|id| id.start == p.1) {
                id.signal(libc::SIGKILL);
            }
        }
    }
}

/// A hearth SIGKILLed while a workspace's services are still starting (cairnet listens; lore
/// has not printed its address yet): the state file named every stand-in before it ran, so
/// the next hearth on the socket reports the workspace `failed` ("found incomplete … removed")
/// having stopped exactly those processes: none is left, the ready workspace beside it is
/// adopted with its processes untouched, and the slug provisions and tears down again.
#[tokio::test(flavor = "multi_thread")]
async fn a_hearth_killed_while_services_start_leaves_none_of_them_running() {
    let standin = standin();
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let args = HearthArgs {
        driver: DriverKind::Process,
        standin_bin: Some(standin.clone()),
        session: Some(format!("midstart{}", std::process::id())),
        ..HearthArgs::new(&socket)
    };
    // Found from /proc, not from hearth: what a hearth forgot is found all the same.
    let mark = format!(
        "ROCKY_TEST_MARK=midstart-{}-{}",
        std::process::id(),
        rocky::ids::random_hex(4)
    );
    let _cleanup = KillMarked(mark.clone());
    let (key, value) = mark.split_once('=').expect("KEY=VALUE");
    let starting = {
        let mut t = tier(0);
        for s in &mut t.services {
            s.env.insert(key.into(), value.into());
        }
        // lore sleeps before it binds: hearth waits for its address for the whole test.
        t.services[1]
            .env
            .insert("STANDIN_LISTEN_AFTER_MS".into(), "60000".into());
        t
    };

    let (mut first, line) = Hearth::spawn(dir.path(), "first", &args, &[]);
    assert!(line.is_some(), "{}", first.log());
    let client = HearthClient::new(&socket);
    let ready = client
        .provision("done", &tier(0), PATIENCE)
        .await
        .expect("provision done");
    assert_eq!(ready.status, Status::Ready, "{ready:?}");
    let state = rocky::hearth::driver::process::state_path(&socket);
    let bystanders: Vec<(u32, u64)> = wait_recorded(&state, "done")
        .await
        .into_iter()
        .filter_map(|pid| Some((pid, rocky::docker::owner::proc_stat(pid)?.start)))
        .collect();
    let mid = {
        let client = client.clone();
        let starting = starting.clone();
        tokio::spawn(async move { client.provision("mid", &starting, PATIENCE).await })
    };
    // Both stand-ins run (lore asleep before it binds): kill hearth now.
    let deadline = Instant::now() + PATIENCE;
    let forked = loop {
        let found = marked(&mark);
        if found.len() == 2 {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "the 2 stand-ins of mid never ran within {PATIENCE:?} (found {found:?}): {}",
            first.log()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let at_kill = client.status("mid", PATIENCE).await.expect("status of mid");
    assert_eq!(at_kill.status, Status::Provisioning, "{at_kill:?}");
    first.child.kill().expect("SIGKILL the first hearth");
    first.child.wait().expect("reap it");
    let _ = mid.await;

    let (second, line) = Hearth::spawn(dir.path(), "second", &args, &[]);
    assert!(line.is_some(), "{}", second.log());
    let report = client.status("mid", PATIENCE).await;
    let report = report.unwrap_or_else(|e| {
        panic!(
            "the restarted hearth does not report mid ({e}); its stand-ins {forked:?} left: {:?}",
            forked
                .iter()
                .filter(|p| still_runs(**p))
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(report.status, Status::Failed, "{report:?}");
    let why = report.error.clone().unwrap_or_default();
    assert!(
        why.contains("found incomplete when hearth restarted") && why.ends_with("removed"),
        "{why}"
    );
    let deadline = Instant::now() + PATIENCE;
    while forked.iter().any(|p| still_runs(*p)) {
        assert!(
            Instant::now() < deadline,
            "stand-ins of mid still run {PATIENCE:?} after hearth reported it {report:?}: {:?}",
            forked
                .iter()
                .filter(|p| still_runs(**p))
                .collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Exactly those: the ready workspace's processes were adopted, not stopped.
    for p in &bystanders {
        assert!(
            still_runs(*p),
            "the restarted hearth stopped done's process {p:?}"
        );
    }
    wait_status(&client, "done", Status::Ready).await;

    let again = client
        .provision("mid", &tier(0), PATIENCE)
        .await
        .expect("provision mid again");
    assert_eq!(again.status, Status::Ready, "{again:?}");
    for slug in ["mid", "done"] {
        let down = client.teardown(slug, PATIENCE).await.expect("teardown");
        assert_eq!(down.status, Status::TierTornDown, "{slug}: {down:?}");
    }
    assert_eq!(marked(&mark), Vec::new(), "stand-ins of mid outlived it");
    second.stop();
}
