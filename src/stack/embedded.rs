//! The embedded topology's console and worker: servers of this process on loopback listeners,
//! on a thread of their own.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{oneshot, watch};

use super::options::{Paths, StackError, StackOptions, console_teardown_deadline};
use rocky::auth::{LocalAuth, Principal};
use rocky::console::{Console, ConsoleConfig, Deadlines};
use rocky::hatch::Hatch;
use rocky::hearth::client::HearthClient;
use rocky::vault::Keyring;
use rocky::worker::{Worker, WorkerConfig};

/// The console and the worker of an embedded stack: served by a thread of their own with a
/// single-threaded runtime, so that their tracing output (a thread-local subscriber) goes to
/// this stack's log file and to no other scenario's.
pub(super) struct InProcess {
    /// Tells the servers to shut down gracefully.
    stop: Option<oneshot::Sender<()>>,
    /// Kills and restarts the worker (the chaos drill).
    worker: Option<tokio::sync::mpsc::UnboundedSender<WorkerCommand>>,
    /// Fires when the thread has finished.
    done: Option<oneshot::Receiver<()>>,
    /// `services.log` in the work directory.
    pub(super) log: PathBuf,
}

/// How long the in-process servers may take to finish after being told to stop.
const SERVERS_STOP_DEADLINE: Duration = Duration::from_secs(30);

/// How long a restart waits for the killed worker's address to be free again.
const REBIND_DEADLINE: Duration = Duration::from_secs(10);

impl InProcess {
    pub(super) fn stopped() -> InProcess {
        InProcess {
            stop: None,
            worker: None,
            done: None,
            log: PathBuf::new(),
        }
    }

    /// Kills the worker as a SIGKILL would: its listener and every connection are dropped at
    /// once, and what it kept in memory (runs, frames) is gone. The console keeps running.
    pub(super) async fn kill_worker(&self) -> Result<(), String> {
        self.worker_command(WorkerCommand::Kill).await
    }

    /// Starts a new worker (with nothing in memory, as after a restart) on the killed one's
    /// address.
    pub(super) async fn restart_worker(&self) -> Result<(), String> {
        self.worker_command(WorkerCommand::Restart).await
    }

    async fn worker_command(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<(), String>>) -> WorkerCommand,
    ) -> Result<(), String> {
        let control = self
            .worker
            .as_ref()
            .ok_or("the in-process servers are stopped")?;
        let (reply, answer) = oneshot::channel();
        control
            .send(command(reply))
            .map_err(|_| "the in-process servers' thread has ended".to_owned())?;
        tokio::time::timeout(SERVERS_STOP_DEADLINE, answer)
            .await
            .map_err(|_| {
                format!("the in-process worker did not answer a kill or restart within {SERVERS_STOP_DEADLINE:?}")
            })?
            .map_err(|_| "the in-process servers' thread has ended".to_owned())?
    }

    pub(super) async fn stop(mut self) -> Result<(), String> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(done) = self.done.take() {
            tokio::time::timeout(SERVERS_STOP_DEADLINE, done)
                .await
                .map_err(|_| {
                    format!("the in-process console and worker did not stop within {SERVERS_STOP_DEADLINE:?}")
                })?
                .map_err(|_| "the in-process servers' thread ended abnormally".to_owned())?;
        }
        Ok(())
    }
}

/// What the servers' thread is asked to do with the worker.
pub(super) enum WorkerCommand {
    Kill(oneshot::Sender<Result<(), String>>),
    Restart(oneshot::Sender<Result<(), String>>),
}

/// The worker's server task and what it takes to start a new one in its place.
struct WorkerSlot {
    addr: std::net::SocketAddr,
    config: Box<dyn Fn() -> WorkerConfig + Send>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl WorkerSlot {
    fn serve(&mut self, listener: tokio::net::TcpListener, stop: watch::Receiver<bool>) {
        let worker = Worker::new((self.config)());
        self.task = Some(tokio::spawn(rocky::http::serve(
            listener,
            worker.router(),
            stopped(stop),
        )));
    }

    async fn kill(&mut self) -> Result<(), String> {
        let task = self.task.take().ok_or("the worker is not running")?;
        task.abort();
        // Awaited so that its listener and connections are closed when the kill answers.
        let _ = task.await;
        Ok(())
    }

    /// Listens on the killed worker's address again. A child this process forked just before
    /// the kill (a hearth, a scenario's process) holds a copy of the old listener until it
    /// execs: until then the bind fails with "Address already in use", so it is retried
    /// within [`REBIND_DEADLINE`].
    async fn restart(&mut self, stop: watch::Receiver<bool>) -> Result<(), String> {
        if self.task.is_some() {
            return Err("the worker is running: kill it first".into());
        }
        let bind = || -> std::io::Result<tokio::net::TcpListener> {
            let listener = std::net::TcpListener::bind(self.addr)?;
            listener.set_nonblocking(true)?;
            tokio::net::TcpListener::from_std(listener)
        };
        let until = tokio::time::Instant::now() + REBIND_DEADLINE;
        let mut pause = Duration::from_millis(1);
        let listener = loop {
            match bind() {
                Ok(listener) => break listener,
                Err(e)
                    if e.kind() == std::io::ErrorKind::AddrInUse
                        && tokio::time::Instant::now() < until =>
                {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    return Err(format!(
                        "rebind the worker's address {} (waited up to {REBIND_DEADLINE:?} for \
                         a child forked before the kill to exec and let go of the old \
                         listener): {e}",
                        self.addr
                    ));
                }
            }
        };
        self.serve(listener, stop);
        Ok(())
    }

    /// Serves the worker, obeying `control`, until the stack is told to stop; then waits for
    /// the worker's graceful shutdown.
    async fn run(
        mut self,
        listener: tokio::net::TcpListener,
        stop: watch::Receiver<bool>,
        mut control: tokio::sync::mpsc::UnboundedReceiver<WorkerCommand>,
    ) -> std::io::Result<()> {
        self.serve(listener, stop.clone());
        let mut stopping = stop.clone();
        loop {
            tokio::select! {
                _ = stopping.wait_for(|s| *s) => break,
                Some(command) = control.recv() => match command {
                    WorkerCommand::Kill(reply) => {
                        let _ = reply.send(self.kill().await);
                    }
                    WorkerCommand::Restart(reply) => {
                        let _ = reply.send(self.restart(stop.clone()).await);
                    }
                },
            }
        }
        match self.task.take() {
            Some(task) => task.await.unwrap_or(Ok(())),
            None => Ok(()),
        }
    }
}

/// Resolves once `stop` turns true.
async fn stopped(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// The worker, then the console, as servers of this process on loopback listeners (bound
/// before serving, mini-redis style, so nothing races for ports).
pub(super) async fn start_in_process(
    opts: &StackOptions,
    paths: Paths<'_>,
    secret: &str,
    worker_secret: &str,
    tokens: Vec<(String, Principal)>,
) -> Result<(String, String, InProcess), StackError> {
    let setup = |e: String| StackError::Setup(e);
    let worker_keyring = Keyring::single("v1", worker_secret.as_bytes());
    let encoding = opts.worker_drift.encoding();
    let worker_config = move || WorkerConfig {
        keyring: worker_keyring.clone(),
        max_skew_secs: rocky::vault::DEFAULT_MAX_SKEW_SECS,
        encoding: encoding.clone(),
    };
    let auth = LocalAuth::from_tokens(tokens).map_err(|e| setup(e.to_string()))?;
    let hatch = Arc::new(Hatch::with_file(paths.hatch_path).map_err(|e| setup(e.to_string()))?);
    let tiers = rocky::tier::load_dir(&opts.tiers_dir).map_err(|e| setup(e.to_string()))?;
    let worker_listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| setup(format!("bind a loopback port: {e}")))?;
    let console_listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| setup(format!("bind a loopback port: {e}")))?;
    let worker_addr = worker_listener
        .local_addr()
        .map_err(|e| setup(e.to_string()))?;
    let worker_url = format!("http://{worker_addr}");
    let console_url = format!(
        "http://{}",
        console_listener
            .local_addr()
            .map_err(|e| setup(e.to_string()))?
    );
    let console = Console::new(ConsoleConfig {
        auth,
        hearth: HearthClient::new(paths.hearth_socket),
        worker_url: worker_url.clone(),
        keyring: Keyring::single("v1", secret.as_bytes()),
        hatch,
        tiers,
        deadlines: Deadlines {
            run: opts.run_timeout,
            teardown: console_teardown_deadline(opts),
            ..Deadlines::default()
        },
    });
    let log = opts.work_dir.join("services.log");
    let log_file =
        std::fs::File::create(&log).map_err(|e| setup(format!("create {}: {e}", log.display())))?;
    for l in [&worker_listener, &console_listener] {
        l.set_nonblocking(true).map_err(|e| setup(e.to_string()))?;
    }
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let (control_tx, control_rx) = tokio::sync::mpsc::unbounded_channel();
    let slot = WorkerSlot {
        addr: worker_addr,
        config: Box::new(worker_config),
        task: None,
    };
    std::thread::Builder::new()
        .name(format!("stack-{}", opts.session))
        .spawn(move || {
            let subscriber = tracing_subscriber::fmt()
                .with_env_filter(
                    tracing_subscriber::EnvFilter::try_from_env("ROCKY_LOG")
                        .unwrap_or_else(|_| "rocky_e2e=info".into()),
                )
                .with_writer(std::sync::Mutex::new(log_file))
                .with_ansi(false)
                .finish();
            let _guard = tracing::subscriber::set_default(subscriber);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a current-thread runtime builds");
            runtime.block_on(async move {
                let (worker_l, console_l) = match (
                    tokio::net::TcpListener::from_std(worker_listener),
                    tokio::net::TcpListener::from_std(console_listener),
                ) {
                    (Ok(w), Ok(c)) => (w, c),
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::error!("failed to adopt the listeners: {e}");
                        return;
                    }
                };
                let (tx, _) = watch::channel(false);
                let worker_task = slot.run(worker_l, tx.subscribe(), control_rx);
                let console_task =
                    rocky::http::serve(console_l, console.router(), stopped(tx.subscribe()));
                let trigger = async move {
                    let _ = stop_rx.await;
                    tx.send_replace(true);
                };
                let (w, c, ()) = tokio::join!(worker_task, console_task, trigger);
                for (name, r) in [("worker", w), ("console", c)] {
                    if let Err(e) = r {
                        tracing::error!("the {name} failed: {e}");
                    }
                }
            });
            let _ = done_tx.send(());
        })
        .map_err(|e| setup(format!("spawn the servers' thread: {e}")))?;
    Ok((
        console_url,
        worker_url,
        InProcess {
            stop: Some(stop_tx),
            worker: Some(control_tx),
            done: Some(done_rx),
            log,
        },
    ))
}
