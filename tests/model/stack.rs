//! The real stack one sequence runs against: hearth as its own process (the `process` driver,
//! or `local-docker`), the console and the worker as servers of this process on loopback
//! ports, and the console's HATCH log in a real file, sealed, synced in `batch` mode, every
//! file operation going through a [`FaultDisk`] that refuses one chosen append on demand.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rocky::auth::{LocalAuth, Principal, Role};
use rocky::console::{Console, ConsoleConfig, Deadlines};
use rocky::hatch::{Disk, Hatch, HatchOptions, RealDisk};
use rocky::hearth::client::HearthClient;
use rocky::tier::{ServiceSpec, TierProfile};
use rocky::vault::Keyring;
use rocky::worker::{Worker, WorkerConfig};
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

/// The console's run deadline: short, so held runs meet it within a sequence.
pub const RUN_DEADLINE: Duration = Duration::from_millis(800);
/// hearth's health deadline (what a broken tier costs): a stand-in process answers within
/// milliseconds, a container within a few seconds on a busy engine.
fn health_timeout(driver: &str) -> Duration {
    Duration::from_secs(if driver == "process" { 10 } else { 15 })
}
/// How long hearth may take to print its ready line.
const HEARTH_START: Duration = Duration::from_secs(15);
pub const TOKEN: &str = "model-admin-token";

/// Everything a stack needs that does not change between sequences.
#[derive(Clone)]
pub struct Env {
    pub hearth_bin: PathBuf,
    /// The compiled stand-in (process driver) — or `None` on the Docker topology.
    pub standin: Option<PathBuf>,
    /// `process` or `local-docker`.
    pub driver: &'static str,
    /// The image the tiers run (the stand-in image on Docker).
    pub image: String,
    /// The engine, on the Docker topology: what exists is asked of it.
    pub docker: Option<bollard::Docker>,
}

/// One refused append the disk is armed with: the record whose line holds every needle.
#[derive(Clone, Debug)]
struct Armed {
    needles: Vec<String>,
    at: super::ops::FaultAt,
    /// The line was written; the next sync fails.
    sync_pending: bool,
}

/// The writer's disk, refusing the one append it is armed for (EIO), otherwise the disk.
#[derive(Default)]
pub struct FaultDisk {
    armed: Mutex<Option<Armed>>,
    /// How many faults were injected (a fault armed but never hit is a model bug).
    pub hits: std::sync::atomic::AtomicUsize,
}

impl FaultDisk {
    pub fn arm(&self, at: super::ops::FaultAt, kind: &str, workspace: &str) {
        *self.armed.lock().expect("fault lock") = Some(Armed {
            needles: vec![
                format!("\"kind\":\"{kind}\""),
                format!("\"workspace\":\"{workspace}\""),
            ],
            at,
            sync_pending: false,
        });
    }

    pub fn disarm(&self) {
        *self.armed.lock().expect("fault lock") = None;
    }

    fn eio() -> std::io::Error {
        std::io::Error::from_raw_os_error(libc::EIO)
    }
}

impl Disk for FaultDisk {
    fn write(&self, log: &std::fs::File, line: &[u8]) -> std::io::Result<()> {
        {
            let mut armed = self.armed.lock().expect("fault lock");
            if let Some(a) = armed.as_mut()
                && !a.sync_pending
            {
                let text = String::from_utf8_lossy(line);
                if a.needles.iter().all(|n| text.contains(n.as_str())) {
                    match a.at {
                        super::ops::FaultAt::Write => {
                            *armed = None;
                            self.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            return Err(Self::eio());
                        }
                        super::ops::FaultAt::Sync => a.sync_pending = true,
                    }
                }
            }
        }
        RealDisk.write(log, line)
    }

    fn sync(&self, log: &std::fs::File) -> std::io::Result<()> {
        {
            let mut armed = self.armed.lock().expect("fault lock");
            if armed.as_ref().is_some_and(|a| a.sync_pending) {
                *armed = None;
                self.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Err(Self::eio());
            }
        }
        RealDisk.sync(log)
    }

    fn truncate(&self, log: &std::fs::File, len: u64) -> std::io::Result<()> {
        RealDisk.truncate(log, len)
    }

    /// In `none` mode nothing is synced: a `sync` fault hits the commit's seal update instead.
    fn replace_seal(&self, path: &Path, bytes: &[u8], sync: bool) -> std::io::Result<()> {
        {
            let mut armed = self.armed.lock().expect("fault lock");
            if armed.as_ref().is_some_and(|a| a.sync_pending) {
                *armed = None;
                self.hits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                return Err(Self::eio());
            }
        }
        RealDisk.replace_seal(path, bytes, sync)
    }
}

/// A running stack.
pub struct Stack {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub session: String,
    pub hearth: Option<Child>,
    pub console_url: String,
    pub hatch_path: PathBuf,
    pub seal_key: Keyring,
    pub disk: Arc<FaultDisk>,
    pub http: reqwest::Client,
    pub hearth_client: HearthClient,
    worker_addr: std::net::SocketAddr,
    worker_keyring: Keyring,
    /// The live worker and its server, `None` while killed.
    pub worker: Option<(Arc<Worker>, tokio::task::JoinHandle<std::io::Result<()>>)>,
    /// The live worker's open connections: a kill shuts them down before it returns.
    worker_connections: Arc<Connections>,
    /// While the worker is killed: a socket bound to its address and not listening, so
    /// connections are refused as by a dead process, and no other socket of this machine
    /// (another stack's listener, an outgoing connection's ephemeral port) takes the port
    /// before the worker comes back on it.
    worker_port_held: Option<tokio::net::TcpSocket>,
    console_task: tokio::task::JoinHandle<std::io::Result<()>>,
    env: Env,
    /// The console's error answers since the step began (evidence for a failed check).
    pub errors: Mutex<Vec<String>>,
}

fn tier(name: &str, image: &str, health: &str, env: &[(&str, &str)]) -> TierProfile {
    let service = |n: &str| ServiceSpec {
        name: n.into(),
        image: image.into(),
        port: 8080,
        health: health.into(),
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    TierProfile {
        name: name.into(),
        services: vec![service("cairnet"), service("lore")],
    }
}

/// The tiers the model uses: `solo` as shipped, `slow` (healthy after 250 ms: a provision a
/// teardown or a hang-up can land in), `broken` (hearth reports `failed`).
fn tiers(image: &str, driver: &str) -> BTreeMap<String, TierProfile> {
    // A service that cannot start, at once: an environment value past the kernel's limit for
    // one string (`execve` fails with E2BIG). On Docker, a health route that never answers.
    let huge = "x".repeat(200_000);
    let broken = if driver == "process" {
        tier(
            "broken",
            image,
            "/healthz",
            &[("STANDIN_UNSTARTABLE", huge.as_str())],
        )
    } else {
        tier("broken", image, "/never-healthy", &[])
    };
    [
        tier("solo", image, "/healthz", &[]),
        tier(
            "slow",
            image,
            "/healthz",
            &[("STANDIN_HEALTHY_AFTER_MS", "250")],
        ),
        broken,
    ]
    .into_iter()
    .map(|t| (t.name.clone(), t))
    .collect()
}

impl Stack {
    pub async fn start(env: &Env, setup: super::model::Setup) -> Result<Stack, String> {
        let dir = tempfile::Builder::new()
            .prefix("rocky-model-")
            .tempdir()
            .map_err(|e| format!("failed to make a temporary directory: {e}"))?;
        std::fs::write(dir.path().join(OWNER_FILE), std::process::id().to_string())
            .map_err(|e| format!("failed to write {}: {e}", dir.path().display()))?;
        let socket = dir.path().join("hearth.sock");
        let session = format!("model{}", rocky::ids::random_hex(4));
        let hearth = spawn_hearth(env, &socket, &session, dir.path()).await?;
        let secret = rocky::vault::generate_secret();
        let worker_keyring = Keyring::single("v1", &secret);
        let worker_listener = worker_socket("127.0.0.1:0".parse().expect("an address"))
            .and_then(|s| s.listen(1024))
            .map_err(|e| format!("failed to bind the worker: {e}"))?;
        let worker_addr = worker_listener.local_addr().map_err(|e| e.to_string())?;
        let worker_connections = Arc::new(Connections::default());
        let worker = serve_worker(&worker_keyring, worker_listener, &worker_connections);
        let hatch_path = dir.path().join("hatch.jsonl");
        let key_path = dir.path().join("hatch.key");
        let options = HatchOptions::sealed(&key_path, setup.sync)
            .map_err(|e| format!("failed to make the seal key: {e}"))?;
        let seal_key = options
            .seal_key
            .clone()
            .expect("sealed options carry a key");
        let disk = Arc::new(FaultDisk::default());
        let hatch = Arc::new(
            Hatch::open_with_disk(&hatch_path, options, disk.clone())
                .map_err(|e| format!("failed to open the HATCH log: {e}"))?,
        );
        let config = ConsoleConfig {
            auth: LocalAuth::from_tokens(vec![(
                TOKEN.into(),
                Principal {
                    name: "admin".into(),
                    role: Role::Admin,
                },
            )])
            .map_err(|e| e.to_string())?,
            hearth: HearthClient::new(&socket),
            worker_url: format!("http://{worker_addr}"),
            keyring: worker_keyring.clone(),
            hatch,
            tiers: tiers(&env.image, env.driver),
            deadlines: Deadlines {
                // A fast clock: past this, the console asks hearth how the provision went.
                provision: if setup.fast_clock {
                    Duration::from_millis(100)
                } else {
                    Duration::from_secs(20)
                },
                provision_follow: Duration::from_secs(10),
                teardown: Duration::from_secs(20),
                run: RUN_DEADLINE,
                worker_call: Duration::from_secs(2),
                worker_gone: Duration::from_secs(4),
            },
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(|e| format!("failed to bind the console: {e}"))?;
        let console_url = format!(
            "http://{}",
            listener.local_addr().map_err(|e| e.to_string())?
        );
        let console_task = tokio::spawn(rocky::http::serve(
            listener,
            Console::new(config).router(),
            std::future::pending(),
        ));
        Ok(Stack {
            hearth_client: HearthClient::new(&socket),
            dir,
            socket,
            session,
            hearth: Some(hearth),
            console_url,
            hatch_path,
            seal_key,
            disk,
            http: rocky::http::client_builder()
                .pool_max_idle_per_host(8)
                .build()
                .map_err(|e| e.to_string())?,
            worker_addr,
            worker_keyring,
            worker: Some(worker),
            worker_connections,
            worker_port_held: None,
            console_task,
            env: env.clone(),
            errors: Mutex::new(Vec::new()),
        })
    }

    /// Kills the worker as SIGKILL would: its listener and every connection are closed before
    /// this returns (aborting its tasks alone closes a connection only when the runtime next
    /// polls it: until then the dead worker would still answer on it), and what it kept in
    /// memory is gone.
    pub async fn kill_worker(&mut self) -> Result<(), String> {
        if let Some((_, task)) = self.worker.take() {
            // Held before the listener closes: the port is never free.
            let held = worker_socket(self.worker_addr);
            task.abort();
            let _ = task.await;
            self.worker_connections.shut_all();
            self.worker_port_held = Some(held.map_err(|e| {
                format!("failed to hold the worker's port {}: {e}", self.worker_addr)
            })?);
            wait_until_not_listening(self.worker_addr).await?;
        }
        Ok(())
    }

    /// A new worker (nothing in memory) on the killed one's address.
    pub async fn restart_worker(&mut self) -> Result<(), String> {
        if self.worker.is_some() {
            return Ok(());
        }
        // Listening beside the held socket (both SO_REUSEPORT), then letting that one go. The
        // kill returned only once the old listener was gone ([`wait_until_not_listening`]).
        let listener = worker_socket(self.worker_addr)
            .and_then(|s| s.listen(1024))
            .map_err(|e| format!("failed to rebind the worker at {}: {e}", self.worker_addr))?;
        self.worker_port_held = None;
        self.worker = Some(serve_worker(
            &self.worker_keyring,
            listener,
            &self.worker_connections,
        ));
        Ok(())
    }

    /// The runs the live worker executes (none while it is killed).
    pub fn executing(&self) -> Vec<String> {
        self.worker
            .as_ref()
            .map(|(w, _)| w.executing())
            .unwrap_or_default()
    }

    /// SIGKILL hearth (it cleans nothing up) and start it again on the same socket and
    /// session; it rediscovers what the one before left.
    pub async fn crash_hearth(&mut self) -> Result<(), String> {
        if let Some(mut h) = self.hearth.take() {
            h.start_kill()
                .map_err(|e| format!("failed to SIGKILL hearth: {e}"))?;
            tokio::time::timeout(Duration::from_secs(10), h.wait())
                .await
                .map_err(|_| "hearth did not die within 10s of SIGKILL".to_owned())?
                .map_err(|e| e.to_string())?;
        }
        self.hearth =
            Some(spawn_hearth(&self.env, &self.socket, &self.session, self.dir.path()).await?);
        Ok(())
    }

    /// A second hearth on this stack's socket and session: it must refuse to start (exit
    /// non-zero) within its start deadline. Returns its exit status and its stderr.
    pub async fn second_hearth(&self) -> Result<(std::process::ExitStatus, String), String> {
        let log = self.dir.path().join("second-hearth.log");
        let mut cmd = hearth_command(&self.env, &self.socket, &self.session, &log)?;
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("failed to spawn a second hearth: {e}"))?;
        let status = tokio::time::timeout(HEARTH_START, child.wait()).await;
        let stderr = std::fs::read_to_string(&log).unwrap_or_default();
        match status {
            Ok(Ok(status)) => Ok((status, stderr)),
            Ok(Err(e)) => Err(format!("failed to wait for the second hearth: {e}")),
            Err(_) => {
                let _ = child.kill().await;
                Err(format!(
                    "a second hearth on the live socket was still running after {HEARTH_START:?} (killed); its log: {stderr}"
                ))
            }
        }
    }

    /// Stops everything: the console and the worker, then hearth (closing its stdin: it tears
    /// down what is left and exits).
    pub async fn stop(mut self) -> Result<(), String> {
        self.console_task.abort();
        // Only the port is at stake, and the stack is going: nothing to report.
        let _ = self.kill_worker().await;
        if let Some(mut h) = self.hearth.take() {
            drop(h.stdin.take());
            match tokio::time::timeout(Duration::from_secs(30), h.wait()).await {
                Ok(_) => {}
                Err(_) => {
                    let _ = h.kill().await;
                    return Err("hearth did not exit within 30s of its stdin closing".into());
                }
            }
        }
        Ok(())
    }

    /// The process driver's state file (`<socket>.state.json`).
    pub fn state_file(&self) -> PathBuf {
        rocky::hearth::driver::process::state_path(&self.socket)
    }
}

/// The file in a stack's folder naming the process that made it.
const OWNER_FILE: &str = "owner.pid";

/// Removes the stack folders (`rocky-model-*` in the temporary folder) of model runs that are
/// gone: a run stopped by a signal drops nothing, so the next run removes what it left. Only
/// a folder whose `owner.pid` names no live process is removed. Returns what was removed.
pub fn sweep_stale_dirs() -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return removed;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with("rocky-model-")
        {
            continue;
        }
        let owner = std::fs::read_to_string(path.join(OWNER_FILE))
            .ok()
            .and_then(|p| p.trim().parse::<i32>().ok());
        if let Some(pid) = owner
            && !rocky::docker::sweep::process_alive(pid)
            && std::fs::remove_dir_all(&path).is_ok()
        {
            removed.push(path);
        }
    }
    removed
}

/// A socket for the worker's address with SO_REUSEADDR and SO_REUSEPORT, bound: the
/// listener, or (not listening) what holds the port while the worker is killed.
fn worker_socket(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    Ok(socket)
}

/// How long a killed worker's listener may outlive it: a child forked before the kill (a
/// hearth being started by another stack) holds a copy until it execs.
const LISTENER_GONE: Duration = Duration::from_secs(10);

/// Waits until nothing listens on `addr` (the held socket, bound but not listening, is
/// allowed). A child this process forked holds a copy of every socket until it execs, the
/// killed worker's listener too; a new listener in the same SO_REUSEPORT group would share
/// the incoming connections with it, and those queued on the old one are reset when the
/// child execs: a healthy restarted worker would answer a fresh connection with a reset
/// (long run K, seed 124437). A bind without SO_REUSEPORT fails while a listener is there.
async fn wait_until_not_listening(addr: std::net::SocketAddr) -> Result<(), String> {
    let until = Instant::now() + LISTENER_GONE;
    let mut pause = Duration::from_millis(1);
    loop {
        let probe = tokio::net::TcpSocket::new_v4()
            .and_then(|s| s.set_reuseaddr(true).map(|()| s))
            .map_err(|e| format!("failed to make a socket: {e}"))?;
        match probe.bind(addr) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {}
            Err(e) => return Err(format!("failed to probe {addr} for a listener: {e}")),
        }
        drop(probe);
        if Instant::now() >= until {
            return Err(format!(
                "waited {LISTENER_GONE:?} for the killed worker's listener at {addr} to close \
                 (a child forked before the kill holds it until it execs)"
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// A server's open connections, each as a duplicate of its socket (dropped with the
/// connection), so that all of them can be shut down at once, as the kernel does for a
/// process that dies.
#[derive(Default)]
struct Connections {
    next: std::sync::atomic::AtomicU64,
    open: Mutex<BTreeMap<u64, std::net::TcpStream>>,
}

impl Connections {
    /// Shuts every open connection down both ways: the peer reads its end at once, and what it
    /// writes after is refused.
    fn shut_all(&self) {
        let open = std::mem::take(&mut *self.open.lock().expect("connections lock"));
        for socket in open.values() {
            // A socket the peer already closed may refuse: it is down either way.
            let _ = socket.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// A listener whose connections are kept in [`Connections`] while open.
struct TrackedListener {
    inner: tokio::net::TcpListener,
    connections: Arc<Connections>,
}

/// An accepted connection; its entry in [`Connections`] goes with it.
struct Tracked {
    stream: tokio::net::TcpStream,
    id: u64,
    connections: Arc<Connections>,
}

impl Drop for Tracked {
    fn drop(&mut self) {
        if let Ok(mut open) = self.connections.open.lock() {
            open.remove(&self.id);
        }
    }
}

impl rocky::http::Listener for TrackedListener {
    type Io = Tracked;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Tracked, std::net::SocketAddr) {
        loop {
            let Ok((stream, addr)) = self.inner.accept().await else {
                // Out of descriptors or a connection reset before it was taken: the next
                // accept is tried, as axum's own listener does (without its pause: the
                // model's loads are small).
                tokio::task::yield_now().await;
                continue;
            };
            let id = self
                .connections
                .next
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let dup = {
                use std::os::fd::AsFd;
                stream.as_fd().try_clone_to_owned()
            };
            // A socket that cannot be duplicated (out of descriptors) is refused.
            let Ok(dup) = dup else { continue };
            self.connections
                .open
                .lock()
                .expect("connections lock")
                .insert(id, std::net::TcpStream::from(dup));
            let connections = self.connections.clone();
            return (
                Tracked {
                    stream,
                    id,
                    connections,
                },
                addr,
            );
        }
    }

    fn local_addr(&self) -> std::io::Result<std::net::SocketAddr> {
        self.inner.local_addr()
    }
}

impl tokio::io::AsyncRead for Tracked {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Tracked {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

fn serve_worker(
    keyring: &Keyring,
    listener: tokio::net::TcpListener,
    connections: &Arc<Connections>,
) -> (Arc<Worker>, tokio::task::JoinHandle<std::io::Result<()>>) {
    let listener = TrackedListener {
        inner: listener,
        connections: connections.clone(),
    };
    // The default follow lease (30 s): far longer than any check waits, so a run only the
    // lease would end shows as the lock-out it is.
    let worker = Worker::new(WorkerConfig {
        keyring: keyring.clone(),
        max_skew_secs: rocky::vault::DEFAULT_MAX_SKEW_SECS,
        encoding: Default::default(),
    });
    let task = tokio::spawn(rocky::http::serve(
        listener,
        worker.clone().router(),
        std::future::pending(),
    ));
    (worker, task)
}

fn hearth_command(env: &Env, socket: &Path, session: &str, log: &Path) -> Result<Command, String> {
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .map_err(|e| format!("failed to open {}: {e}", log.display()))?;
    let driver = env
        .driver
        .parse()
        .map_err(|e| format!("failed to start hearth: {e}"))?;
    let args = rocky::cli::HearthArgs {
        driver,
        teardown_timeout: Duration::from_secs(20),
        health_timeout: health_timeout(env.driver),
        session: Some(session.to_owned()),
        standin_bin: env.standin.clone(),
        exit_on_stdin_eof: true,
        keeper_pid: Some(std::process::id()),
        ..rocky::cli::HearthArgs::new(socket)
    };
    let mut cmd = Command::new(&env.hearth_bin);
    cmd.args(args.to_args())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .kill_on_drop(true);
    Ok(cmd)
}

async fn spawn_hearth(
    env: &Env,
    socket: &Path,
    session: &str,
    dir: &Path,
) -> Result<Child, String> {
    let log = dir.join("hearth.log");
    let mut child = hearth_command(env, socket, session, &log)?
        .spawn()
        .map_err(|e| format!("failed to spawn {}: {e}", env.hearth_bin.display()))?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    match tokio::time::timeout(HEARTH_START, lines.next_line()).await {
        Ok(Ok(Some(l))) if l.starts_with("hearth listening on") => {
            // Keep draining stdout so hearth never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            Ok(child)
        }
        other => Err(format!(
            "hearth did not print its ready line within {HEARTH_START:?} ({other:?}); its log: {}",
            std::fs::read_to_string(&log).unwrap_or_default()
        )),
    }
}

impl Stack {
    /// `process` or `local-docker`.
    pub fn env_driver(&self) -> &'static str {
        self.env.driver
    }

    /// On the Docker topology: the running containers of workspace `slug` of this session,
    /// and how many of its objects (containers of any state, networks) exist at all.
    pub async fn containers_of(&self, slug: &str) -> Result<(usize, usize), String> {
        use bollard::query_parameters::{ListContainersOptions, ListNetworksOptions};
        let Some(docker) = &self.env.docker else {
            return Ok((0, 0));
        };
        let filter = std::collections::HashMap::from([(
            "label".to_owned(),
            vec![
                rocky::docker::labels::session_filter(&self.session),
                rocky::docker::labels::workspace_filter(slug),
            ],
        )]);
        let containers = docker
            .list_containers(Some(ListContainersOptions {
                all: true,
                filters: Some(filter.clone()),
                ..Default::default()
            }))
            .await
            .map_err(|e| format!("failed to list the containers of {slug}: {e}"))?;
        let running = containers
            .iter()
            .filter(|c| c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING))
            .count();
        let networks = docker
            .list_networks(Some(ListNetworksOptions {
                filters: Some(filter),
            }))
            .await
            .map_err(|e| format!("failed to list the networks of {slug}: {e}"))?;
        Ok((running, containers.len() + networks.len()))
    }
}

/// The tester's own kill and restart, checked where they went wrong once (long run K): a
/// child forked just before a kill and slow to exec holds the killed worker's listener; the
/// restarted worker must be the only one listening, so that no fresh connection is queued on
/// the old listener and reset when the child execs. Fresh connections made while the child
/// holds its copies must all be answered. Fails without [`wait_until_not_listening`]
/// (checked: 8 of 16 reset, in each of three runs).
pub async fn restart_beside_a_forked_child(env: &Env) -> Result<(), String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let setup = "none".parse().expect("a setup");
    let mut stack = Stack::start(env, setup).await?;
    // The child is forked (it holds a copy of the worker's listener) before the kill.
    let child = testkit::fork_slow_to_exec(Duration::from_millis(300))
        .map_err(|e| format!("failed to fork a child slow to exec: {e}"))?;
    stack.kill_worker().await?;
    stack.restart_worker().await?;
    let mut sent = Vec::new();
    for _ in 0..16 {
        let mut c = tokio::net::TcpStream::connect(stack.worker_addr)
            .await
            .map_err(|e| format!("failed to connect to the restarted worker: {e}"))?;
        c.write_all(b"GET /healthz HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n")
            .await
            .map_err(|e| format!("failed to send to the restarted worker: {e}"))?;
        sent.push(c);
    }
    tokio::task::spawn_blocking(move || child.wait())
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("failed to run the forked child: {e}"))?;
    let mut reset = 0;
    for mut c in sent {
        let mut answer = Vec::new();
        match tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut answer)).await {
            Ok(Ok(_)) if answer.starts_with(b"HTTP/1.1 ") => {}
            Ok(Ok(_)) => return Err("the restarted worker closed without an answer".into()),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionReset => reset += 1,
            Ok(Err(e)) => return Err(format!("reading the restarted worker's answer: {e}")),
            Err(_) => return Err("waited 10s for the restarted worker's answer".into()),
        }
    }
    stack.stop().await?;
    if reset > 0 {
        return Err(format!(
            "{reset} of 16 fresh connections to the restarted worker were reset: they were \
             queued on the killed worker's listener, which a forked child still held"
        ));
    }
    Ok(())
}
