//! The `process` driver: each service of a workspace is a child process of the stand-in
//! program on a free loopback port. Real processes, real health checks, SIGTERM on teardown;
//! it is how scenarios run where no Docker engine answers.
//!
//! Every process is in the state file before it runs the stand-in: the child, between its fork
//! and its exec, hands hearth its pid and waits at a gate; hearth records it (pid and start
//! time, which the exec keeps) and only then opens the gate. A hearth killed in between takes
//! its end of the gate with it and the child exits without running anything. So a restarted
//! hearth knows every stand-in an earlier one started, even one killed while its services
//! were still starting (the workspace is then reported `failed`, its processes stopped), and a
//! teardown stops every process the state names for the workspace before it says it is gone.

use std::collections::BTreeMap;
use std::os::fd::{AsRawFd, RawFd};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::health::wait_healthy;
use super::{Driver, Found, HealthCheck, Provisioned};
use crate::api::hearth::{DeploymentRef, DriverKind, ServiceRef, Status};
use crate::docker::owner::ProcessId;
use crate::tier::{ServiceSpec, TierProfile};
use serde::{Deserialize, Serialize};

/// A workspace's running processes.
#[derive(Debug)]
pub struct ProcessDeployment {
    /// The workspace, to keep the state file current.
    pub slug: String,
    pub children: Vec<Child>,
    /// Processes an earlier hearth started and this one re-adopted: not its children, so
    /// tracked by pid with what makes it theirs (host, PID namespace, start time), and
    /// signalled only while all of it matches.
    pub adopted: Vec<ProcessId>,
    pub services: Vec<ServiceRef>,
}

/// The driver: knows where the stand-in program is, and where it keeps its state.
pub struct ProcessDriver {
    /// Path of the compiled stand-in (see `crate::images::standin_binary`).
    pub standin: PathBuf,
    /// `<socket>.state.json`: every workspace's tier, services and pids, rewritten on each
    /// provision and teardown, so a restarted hearth finds what it had. `None`: no state kept.
    pub state: Option<PathBuf>,
    /// The state file's content.
    pub workspaces: std::sync::Mutex<BTreeMap<String, StateEntry>>,
    /// Held while a stand-in is forked, recorded and let through its gate: a child forked
    /// meanwhile by another spawn would hold a copy of the gate's open end, and after hearth's
    /// death the two could wait at each other's gates until [`GATE_BACKSTOP`].
    spawning: std::sync::Mutex<()>,
}

/// One workspace in the state file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateEntry {
    pub tier: String,
    pub services: Vec<ServiceRef>,
    /// Each service's health route, in the order of `services`.
    pub health: Vec<String>,
    /// The service processes' pids, written once every service listens (kept for older
    /// readers, to whom an entry with pids is a started workspace; never signalled on their
    /// own).
    pub pids: Vec<u32>,
    /// The service processes, each named before it runs, so that a reused pid or one of
    /// another PID namespace is never taken for them. Empty in a state file of an older
    /// hearth: those pids cannot be verified, so they are never signalled.
    #[serde(default)]
    pub processes: Vec<ProcessId>,
    /// The services are still being started: each process is named as it is forked, but not
    /// every address is known yet. A hearth that finds a workspace so was killed while starting
    /// it: it stops the processes named and reports the workspace `failed`.
    #[serde(default)]
    pub starting: bool,
}

impl ProcessDriver {
    /// A driver running `standin`, keeping its state in `state`.
    pub fn new(standin: PathBuf, state: Option<PathBuf>) -> ProcessDriver {
        ProcessDriver {
            standin,
            state,
            workspaces: Default::default(),
            spawning: Default::default(),
        }
    }

    /// Adds `process` to workspace `slug`'s record and writes the state file: done while the
    /// process waits at its gate, before it may run the stand-in.
    fn record(&self, slug: &str, process: &ProcessId) {
        let mut ws = self.workspaces.lock().expect("process state lock");
        if let Some(entry) = ws.get_mut(slug) {
            entry.processes.push(process.clone());
            self.save(&ws);
        }
    }

    /// Stops every process the state names for `slug` that still runs (this very stand-in:
    /// [`Self::is_ours`]), SIGTERM then SIGKILL, and forgets the record once none runs. Returns
    /// what it stopped; `Err` naming those that survived SIGKILL (the record is kept).
    async fn stop_recorded(&self, slug: &str) -> Result<Vec<String>, String> {
        let recorded = self
            .workspaces
            .lock()
            .expect("process state lock")
            .get(slug)
            .map(|e| e.processes.clone());
        let Some(recorded) = recorded else {
            return Ok(Vec::new());
        };
        let mut live: Vec<ProcessId> = recorded.into_iter().filter(|p| self.is_ours(p)).collect();
        let stopped = live.iter().map(|p| format!("process {}", p.pid)).collect();
        stop_adopted(&mut live).await;
        if !live.is_empty() {
            let pids: Vec<u32> = live.iter().map(|p| p.pid).collect();
            return Err(format!(
                "service processes {pids:?} of {slug} survived SIGKILL"
            ));
        }
        self.forget(slug);
        Ok(stopped)
    }

    /// Spawns `command` so that workspace `slug`'s record names the process before it runs
    /// anything: the child, between fork and exec, writes its pid to hearth and waits at a gate
    /// ([`gate`]); a thread of hearth's records it and opens the gate; the exec follows. If
    /// hearth dies first, the gate's open end dies with it and the child exits unrun.
    fn spawn_recorded(&self, slug: &str, command: &mut Command) -> std::io::Result<Child> {
        use std::io::{Read, Write};
        let _one_at_a_time = self
            .spawning
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // Both pipes close on exec: the stand-in inherits neither.
        let (mut announced, announce) = std::io::pipe()?;
        let (gate_end, mut open) = std::io::pipe()?;
        let fds = (announce.as_raw_fd(), gate_end.as_raw_fd(), open.as_raw_fd());
        // SAFETY: the hook runs in the child between fork and exec; `gate` makes only
        // async-signal-safe calls (close, getpid, write, poll, read) and allocates nothing.
        unsafe {
            command.pre_exec(move || gate(fds.0, fds.1, fds.2));
        }
        std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut pid = [0u8; 4];
                // EOF: the child never reached its gate (the fork failed).
                announced.read_exact(&mut pid).ok()?;
                let process = ProcessId::of_pid(u32::from_ne_bytes(pid))?;
                self.record(slug, &process);
                // Not recorded, not opened: `open` drops, and the child exits unrun.
                open.write_all(b"g").ok()
            });
            let spawned = command.spawn();
            // The reader sees EOF if the child never wrote (the fork failed).
            drop(announce);
            drop(gate_end);
            spawned
        })
    }

    /// Rewrites the state file (atomically: a new private file renamed over it; unsynced, as
    /// before: it outlives a crash of hearth, not of the machine).
    fn save(&self, workspaces: &BTreeMap<String, StateEntry>) {
        let Some(path) = &self.state else { return };
        let text = serde_json::to_vec_pretty(workspaces).expect("the state serialises");
        if let Err(e) = crate::secure_file::replace_private(path, &text, false) {
            tracing::warn!("cannot write the state file {}: {e}", path.display());
        }
    }

    fn forget(&self, slug: &str) {
        let mut ws = self.workspaces.lock().expect("process state lock");
        if ws.remove(slug).is_some() {
            self.save(&ws);
        }
    }

    /// Whether `process` is a live stand-in this session started: the very process (host, PID
    /// namespace, start time), running the stand-in program.
    fn is_ours(&self, process: &ProcessId) -> bool {
        let exe = std::fs::read_link(format!("/proc/{}/exe", process.pid)).ok();
        let standin = std::fs::canonicalize(&self.standin).ok();
        process.is_running() && exe.is_some() && exe == standin
    }

    /// Reads the state an earlier hearth left: workspaces whose processes all live are adopted
    /// to settle (hearth waits for their health routes: they may still be becoming healthy);
    /// of the others, surviving processes are stopped and the workspace is reported `failed`
    /// with why. `Err`: the state file exists but cannot be read (nothing is touched).
    async fn find_left(&self) -> Result<Vec<Found<ProcessDeployment>>, String> {
        let Some(path) = &self.state else {
            return Ok(Vec::new());
        };
        let left: BTreeMap<String, StateEntry> = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| format!("failed to read the state file {}: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => {
                return Err(format!(
                    "failed to read the state file {}: {e}",
                    path.display()
                ));
            }
        };
        let mut found = Vec::new();
        let mut kept = BTreeMap::new();
        for (slug, entry) in left {
            let (ours, dead): (Vec<ProcessId>, Vec<ProcessId>) = entry
                .processes
                .iter()
                .cloned()
                .partition(|p| self.is_ours(p));
            let why = if entry.processes.is_empty() && !entry.pids.is_empty() {
                // An older hearth's record names pids only: whether they are still its stand-ins
                // cannot be known, so they are neither adopted nor signalled.
                Some(format!(
                    "its service processes {:?} are recorded without their start time; not adopted, not stopped",
                    entry.pids
                ))
            } else if entry.starting {
                // Killed while its services started: some addresses were never read, so it
                // cannot be adopted; its processes were named before they ran.
                let pids: Vec<u32> = entry.processes.iter().map(|p| p.pid).collect();
                Some(format!(
                    "hearth was killed while its services started; processes {pids:?}"
                ))
            } else if !dead.is_empty() {
                let pids: Vec<u32> = dead.iter().map(|p| p.pid).collect();
                Some(format!("service processes {pids:?} were gone"))
            } else {
                None
            };
            let mut reference = DeploymentRef {
                slug: slug.clone(),
                tier: entry.tier.clone(),
                driver: DriverKind::Process,
                status: Status::Provisioning,
                services: entry.services.clone(),
                error: None,
            };
            let mut deployment = ProcessDeployment {
                slug: slug.clone(),
                children: Vec::new(),
                adopted: ours,
                services: entry.services.clone(),
            };
            match why {
                None => {
                    let checks = entry
                        .services
                        .iter()
                        .zip(&entry.health)
                        .map(|(service, health)| HealthCheck {
                            service: service.name.clone(),
                            addr: service.endpoint.trim_start_matches("http://").to_owned(),
                            path: health.clone(),
                        })
                        .collect();
                    kept.insert(slug, entry);
                    found.push(Found::Settling {
                        reference,
                        deployment,
                        checks,
                    });
                }
                Some(why) => {
                    tracing::warn!(slug, "incomplete at rediscovery ({why}); stopping it");
                    stop_adopted(&mut deployment.adopted).await;
                    let outcome = if !deployment.adopted.is_empty() {
                        // Kept in the state: a teardown of the slug tries again.
                        let pids: Vec<u32> = deployment.adopted.iter().map(|p| p.pid).collect();
                        kept.insert(
                            slug,
                            StateEntry {
                                processes: deployment.adopted.clone(),
                                pids: pids.clone(),
                                starting: true,
                                ..entry
                            },
                        );
                        format!("processes {pids:?} survived SIGKILL")
                    } else if entry.processes.is_empty() && !entry.pids.is_empty() {
                        "nothing stopped".to_owned()
                    } else {
                        "removed".to_owned()
                    };
                    reference.status = Status::Failed;
                    reference.services.clear();
                    reference.error = Some(format!(
                        "found incomplete when hearth restarted ({why}); {outcome}"
                    ));
                    found.push(Found::Failed { reference });
                }
            }
        }
        let mut ws = self.workspaces.lock().expect("process state lock");
        *ws = kept;
        self.save(&ws);
        Ok(found)
    }
}

/// `<socket>.state.json`: where the process driver of the hearth on `socket` keeps its state.
pub fn state_path(socket: &std::path::Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".state.json");
    PathBuf::from(name)
}

/// Stops (SIGKILL) every stand-in the state file at `state` names that still runs: what a
/// hearth killed and never restarted left. Only processes recorded with their host, PID
/// namespace and start time, all matching, are signalled. Returns their pids.
pub fn stop_left(state: &std::path::Path, standin: &std::path::Path) -> Vec<u32> {
    let driver = ProcessDriver::new(standin.to_owned(), None);
    let left: BTreeMap<String, StateEntry> = std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut stopped = Vec::new();
    for process in left.values().flat_map(|e| e.processes.iter()) {
        if driver.is_ours(process) && process.signal(libc::SIGKILL) {
            stopped.push(process.pid);
        }
    }
    stopped
}

/// SIGTERM to every adopted process, SIGKILL to those alive after [`KILL_GRACE`]; waits
/// (bounded) until each is gone. They are not our children: their exit is seen by polling.
/// Each signal goes only to the very process recorded ([`ProcessId::signal`]).
async fn stop_adopted(processes: &mut Vec<ProcessId>) {
    for p in processes.iter() {
        p.signal(libc::SIGTERM);
    }
    let gone = |ps: &Vec<ProcessId>| ps.iter().all(|p| !p.is_running());
    let grace = tokio::time::Instant::now() + KILL_GRACE;
    while !gone(processes) && tokio::time::Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for p in processes.iter().filter(|p| p.is_running()) {
        tracing::warn!(
            pid = p.pid,
            "adopted service ignored SIGTERM; sending SIGKILL"
        );
        p.signal(libc::SIGKILL);
    }
    let killed = tokio::time::Instant::now() + KILL_GRACE;
    while !gone(processes) && tokio::time::Instant::now() < killed {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    processes.retain(ProcessId::is_running);
}

impl Driver for ProcessDriver {
    type Deployment = ProcessDeployment;
    const KIND: DriverKind = DriverKind::Process;

    /// Starts every service and waits for each to answer its health route. The workspace is in
    /// the state file, `starting`, before its first process is forked, and each process is
    /// named there before it runs ([`ProcessDriver::spawn_recorded`]); once every address is
    /// known it is no longer `starting`, so a hearth restarted while the services become
    /// healthy adopts them to settle, and one restarted before stops them and reports the
    /// workspace `failed`. On failure the processes already started are killed (dropping a
    /// child kills it) and forgotten.
    async fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> Result<Provisioned<ProcessDeployment>, String> {
        let deadline = crate::duration::deadline(Instant::now(), health_timeout);
        // What an earlier life of the slug left recorded goes first: the record is now this one's.
        self.stop_recorded(slug).await?;
        {
            let mut ws = self.workspaces.lock().expect("process state lock");
            ws.insert(
                slug.to_owned(),
                StateEntry {
                    tier: profile.name.clone(),
                    services: Vec::new(),
                    health: profile.services.iter().map(|s| s.health.clone()).collect(),
                    pids: Vec::new(),
                    processes: Vec::new(),
                    starting: true,
                },
            );
            self.save(&ws);
        }
        // The spawns run one after another (each in its future's first poll); the waits for
        // the addresses overlap.
        let starts = profile
            .services
            .iter()
            .map(|spec| self.start_service(slug, spec, deadline));
        let mut deployment = ProcessDeployment {
            slug: slug.to_owned(),
            children: Vec::new(),
            adopted: Vec::new(),
            services: Vec::new(),
        };
        let mut first_error = None;
        for r in futures::future::join_all(starts).await {
            match r {
                Ok((child, service)) => {
                    deployment.children.push(child);
                    deployment.services.push(service);
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        if let Some(e) = first_error {
            // The children get SIGKILL (on drop) before their record goes.
            drop(deployment);
            self.forget(slug);
            return Err(e);
        }
        {
            let mut ws = self.workspaces.lock().expect("process state lock");
            if let Some(entry) = ws.get_mut(slug) {
                entry.services = deployment.services.clone();
                entry.pids = entry.processes.iter().map(|p| p.pid).collect();
                entry.starting = false;
            }
            self.save(&ws);
        }
        let probes =
            deployment
                .services
                .iter()
                .zip(&profile.services)
                .map(|(service, spec)| async move {
                    let addr = service.endpoint.trim_start_matches("http://");
                    wait_healthy(addr, &spec.health, deadline)
                        .await
                        .map_err(|e| format!("service {} at {addr}: {e}", spec.name))
                });
        let unhealthy = futures::future::join_all(probes)
            .await
            .into_iter()
            .find_map(Result::err);
        if let Some(e) = unhealthy {
            drop(deployment);
            self.forget(slug);
            return Err(e);
        }
        Ok(Provisioned {
            services: deployment.services.clone(),
            health: Duration::ZERO,
            deployment,
        })
    }

    /// SIGTERM to every process, then waits for all of them to exit; one still running after
    /// [`KILL_GRACE`] gets SIGKILL. The caller bounds it with the teardown deadline (shorter
    /// deadlines answer `tearing_down`; the escalation then happens on the next attempt or at
    /// shutdown, where the `Child` handles kill on drop).
    async fn teardown(&self, deployment: &mut ProcessDeployment) -> Result<(), String> {
        let adopted = stop_adopted(&mut deployment.adopted);
        for child in &deployment.children {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
        }
        let grace = tokio::time::Instant::now() + KILL_GRACE;
        for child in &mut deployment.children {
            if tokio::time::timeout_at(grace, child.wait()).await.is_err() {
                tracing::warn!(
                    pid = child.id(),
                    "service ignored SIGTERM for {}; sending SIGKILL",
                    crate::duration::display(KILL_GRACE)
                );
                let _ = child.start_kill();
            }
            child
                .wait()
                .await
                .map_err(|e| format!("failed to wait for a service process: {e}"))?;
        }
        adopted.await;
        if !deployment.adopted.is_empty() {
            return Err(format!(
                "adopted service processes {:?} survived SIGKILL",
                deployment.adopted
            ));
        }
        // Any other process the state names for the workspace goes too before it is gone.
        self.stop_recorded(&deployment.slug).await.map(|_| ())
    }

    /// The processes the state names for `slug` that still run (a handle lost with a provision
    /// that ended without an answer): stopped like adopted ones, then the record goes.
    async fn remove_remains(&self, slug: &str) -> Result<Vec<String>, String> {
        self.stop_recorded(slug).await
    }

    async fn rediscover(&self) -> Result<Vec<Found<ProcessDeployment>>, String> {
        self.find_left().await
    }

    /// hearth is exiting: every process its state still names is killed at once (SIGKILL, as
    /// the `Child` handles' `kill_on_drop` does), and the records of those gone are dropped.
    async fn sweep(&self) {
        let left: Vec<(String, Vec<ProcessId>)> = self
            .workspaces
            .lock()
            .expect("process state lock")
            .iter()
            .map(|(slug, e)| (slug.clone(), e.processes.clone()))
            .collect();
        for (slug, processes) in left {
            let mut live: Vec<ProcessId> =
                processes.into_iter().filter(|p| self.is_ours(p)).collect();
            for p in &live {
                p.signal(libc::SIGKILL);
            }
            let until = tokio::time::Instant::now() + KILL_GRACE;
            while live.iter().any(ProcessId::is_running) && tokio::time::Instant::now() < until {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            live.retain(ProcessId::is_running);
            if live.is_empty() {
                self.forget(&slug);
            } else {
                tracing::warn!(slug, ?live, "service processes survived SIGKILL at exit");
            }
        }
    }
}

/// How long a service may take to exit after SIGTERM before it gets SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

/// How long a child waits at its gate for hearth to record it before it gives up and exits
/// unrun. Only a backstop: recording is one small file write, and a hearth that dies closes
/// the gate at once.
const GATE_BACKSTOP: Duration = Duration::from_secs(30);

/// The child's side of [`ProcessDriver::spawn_recorded`], between fork and exec: closes its
/// copy of the gate's open end (only hearth's may keep it open), writes its pid to `announce`,
/// and waits until hearth writes a byte to the gate. End of file there (hearth is gone, or did
/// not record it) or [`GATE_BACKSTOP`] passing: an error, and the child exits without running
/// the program. Async-signal-safe calls only; nothing is allocated.
fn gate(announce: RawFd, gate: RawFd, open: RawFd) -> std::io::Result<()> {
    // SAFETY: plain syscalls on descriptors this child inherited, with buffers on its stack.
    unsafe {
        libc::close(open);
        let pid = libc::getpid().to_ne_bytes();
        if libc::write(announce, pid.as_ptr().cast(), pid.len()) != pid.len() as isize {
            return Err(std::io::Error::from_raw_os_error(libc::EPIPE));
        }
        let mut wait = libc::pollfd {
            fd: gate,
            events: libc::POLLIN,
            revents: 0,
        };
        loop {
            match libc::poll(&mut wait, 1, GATE_BACKSTOP.as_millis() as libc::c_int) {
                1 => break,
                -1 if std::io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) => {}
                _ => return Err(std::io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            }
        }
        let mut byte = 0u8;
        if libc::read(gate, (&raw mut byte).cast(), 1) != 1 {
            return Err(std::io::Error::from_raw_os_error(libc::ECANCELED));
        }
    }
    Ok(())
}

impl ProcessDriver {
    /// Starts the service and waits (until `deadline`) for the line naming its address; its
    /// health is the caller's to wait for.
    async fn start_service(
        &self,
        slug: &str,
        spec: &ServiceSpec,
        deadline: Instant,
    ) -> Result<(Child, ServiceRef), String> {
        let mut command = Command::new(&self.standin);
        command
            .args(["--listen", "127.0.0.1:0", "--name", &spec.name])
            .envs(&spec.env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        // A hearth killed with SIGKILL cannot run `kill_on_drop`: its services outlive it, by
        // design, and the state file names them (from before they run), so a restarted hearth
        // re-adopts or stops them and whoever started hearth can stop them (`stop_left`).
        let mut child = self.spawn_recorded(slug, &mut command).map_err(|e| {
            format!(
                "failed to start service {} from {}: {e}",
                spec.name,
                self.standin.display()
            )
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout_at(deadline.into(), lines.next_line())
            .await
            .map_err(|_| {
                format!(
                    "service {} did not print its address before the health deadline",
                    spec.name
                )
            })?
            .map_err(|e| format!("failed to read service {} output: {e}", spec.name))?
            .ok_or_else(|| format!("service {} exited before listening", spec.name))?;
        let addr = line
            .rsplit(' ')
            .next()
            .filter(|a| a.contains(':'))
            .ok_or_else(|| format!("service {} printed {line:?}, not its address", spec.name))?
            .to_owned();
        // Keep draining stdout so the child never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok((
            child,
            ServiceRef {
                name: spec.name.clone(),
                image: spec.image.clone(),
                endpoint: format!("http://{addr}"),
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(pids: Vec<u32>, processes: Vec<ProcessId>) -> StateEntry {
        StateEntry {
            tier: "solo".into(),
            services: Vec::new(),
            health: Vec::new(),
            pids,
            processes,
            starting: false,
        }
    }

    fn write(state: &std::path::Path, entries: &[(&str, StateEntry)]) {
        let map: BTreeMap<String, StateEntry> = entries
            .iter()
            .map(|(s, e)| (s.to_string(), e.clone()))
            .collect();
        std::fs::write(state, serde_json::to_vec(&map).unwrap()).unwrap();
    }

    /// Runs `sh -c "touch <file>"` behind a [`gate`]; `open` says whether the parent (hearth)
    /// opens the gate once it has the child's pid, or closes its end unopened, as its death
    /// does. Returns whether the spawn succeeded and whether the program ran.
    fn behind_a_gate(open: bool) -> (bool, bool) {
        use std::io::{Read, Write};
        use std::os::unix::process::CommandExt;
        let dir = tempfile::tempdir().unwrap();
        let ran = dir.path().join("ran");
        let (mut announced, announce) = std::io::pipe().unwrap();
        let (gate_end, mut opener) = std::io::pipe().unwrap();
        let fds = (
            announce.as_raw_fd(),
            gate_end.as_raw_fd(),
            opener.as_raw_fd(),
        );
        let mut command = std::process::Command::new("/bin/sh");
        command.arg("-c").arg(format!("touch {}", ran.display()));
        // SAFETY: as in `spawn_recorded`: `gate` is async-signal-safe.
        unsafe {
            command.pre_exec(move || gate(fds.0, fds.1, fds.2));
        }
        let spawned = std::thread::scope(|scope| {
            scope.spawn(move || {
                let mut pid = [0u8; 4];
                announced
                    .read_exact(&mut pid)
                    .expect("the child announces its pid");
                if open {
                    opener.write_all(b"g").unwrap();
                }
            });
            let spawned = command.spawn();
            drop(announce);
            drop(gate_end);
            spawned
        });
        let ok = match spawned {
            Ok(mut child) => child.wait().unwrap().success(),
            Err(_) => false,
        };
        (ok, ran.exists())
    }

    /// A child whose gate is closed unopened (hearth died before it recorded it) exits
    /// without running the program; opened, it runs it.
    #[test]
    fn a_child_runs_the_program_only_once_hearth_opens_its_gate() {
        assert_eq!(behind_a_gate(false), (false, false), "closed unopened");
        assert_eq!(behind_a_gate(true), (true, true), "opened");
    }

    /// `stop_left` signals a recorded process only when host, PID namespace and start time all
    /// match the live one: never a reused pid, one of another namespace, or an unverifiable one.
    #[test]
    fn stop_left_signals_only_the_very_process_recorded() {
        // `sleep` plays the stand-in: `is_ours` also wants the program to match.
        let program = std::fs::canonicalize("/bin/sleep").expect("/bin/sleep");
        let mut child = std::process::Command::new(&program)
            .arg("60")
            .spawn()
            .expect("spawn sleep");
        let pid = child.id();
        let me = ProcessId::of_pid(pid).expect("the child runs");
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path().join("hearth.sock.state.json");
        write(
            &state,
            &[
                (
                    "reused",
                    entry(
                        vec![pid],
                        vec![ProcessId {
                            start: me.start + 1,
                            ..me.clone()
                        }],
                    ),
                ),
                (
                    "elsewhere",
                    entry(
                        vec![pid],
                        vec![ProcessId {
                            pidns: me.pidns + 1,
                            ..me.clone()
                        }],
                    ),
                ),
                (
                    "other-host",
                    entry(
                        vec![pid],
                        vec![ProcessId {
                            host: "another-runner/boot/machine".into(),
                            ..me.clone()
                        }],
                    ),
                ),
                ("old-record", entry(vec![pid], Vec::new())),
            ],
        );
        let stopped = stop_left(&state, &program);
        let still_running = child.try_wait().unwrap().is_none();
        write(&state, &[("mine", entry(vec![pid], vec![me.clone()]))]);
        let stopped_mine = stop_left(&state, &program);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut exit = None;
        while exit.is_none() && std::time::Instant::now() < deadline {
            exit = child.try_wait().unwrap();
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(
            stopped,
            Vec::<u32>::new(),
            "signalled a process not recorded"
        );
        assert!(still_running, "a mismatched record killed the process");
        assert_eq!(stopped_mine, vec![pid]);
        use std::os::unix::process::ExitStatusExt;
        let exit = exit.expect("the recorded process exits within 10 s of stop_left");
        assert_eq!(exit.signal(), Some(libc::SIGKILL));
    }
}
