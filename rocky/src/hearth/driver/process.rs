//! The `process` driver: each service of a workspace is a child process of the stand-in
//! program on a free loopback port. Real processes, real health checks, SIGTERM on teardown;
//! it is how scenarios run where no Docker engine answers.

use std::collections::BTreeMap;
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
}

/// One workspace in the state file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StateEntry {
    pub tier: String,
    pub services: Vec<ServiceRef>,
    /// Each service's health route, in the order of `services`.
    pub health: Vec<String>,
    /// The service processes' pids (kept for older readers; never signalled on their own).
    pub pids: Vec<u32>,
    /// The service processes, named so that a reused pid or one of another PID namespace is
    /// never taken for them. Empty in a state file of an older hearth: those pids cannot be
    /// verified, so they are never signalled.
    #[serde(default)]
    pub processes: Vec<ProcessId>,
}

impl ProcessDriver {
    /// A driver running `standin`, keeping its state in `state`.
    pub fn new(standin: PathBuf, state: Option<PathBuf>) -> ProcessDriver {
        ProcessDriver {
            standin,
            state,
            workspaces: Default::default(),
        }
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
                    reference.status = Status::Failed;
                    reference.services.clear();
                    reference.error = Some(format!(
                        "found incomplete when hearth restarted ({why}); stopped"
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

    /// Starts every service concurrently and waits for each to answer its health route.
    /// The processes are in the state file from the moment they listen, before they are
    /// healthy, so a hearth restarted meanwhile adopts them to settle instead of losing them.
    /// On failure the processes already started are killed (dropping a child kills it) and
    /// forgotten.
    async fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> Result<Provisioned<ProcessDeployment>, String> {
        let deadline = crate::duration::deadline(Instant::now(), health_timeout);
        let starts = profile
            .services
            .iter()
            .map(|spec| self.start_service(spec, deadline));
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
            return Err(e);
        }
        {
            let mut ws = self.workspaces.lock().expect("process state lock");
            ws.insert(
                slug.to_owned(),
                StateEntry {
                    tier: profile.name.clone(),
                    services: deployment.services.clone(),
                    health: profile.services.iter().map(|s| s.health.clone()).collect(),
                    pids: deployment.children.iter().filter_map(Child::id).collect(),
                    processes: deployment
                        .children
                        .iter()
                        .filter_map(Child::id)
                        .filter_map(ProcessId::of_pid)
                        .collect(),
                },
            );
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
        self.forget(&deployment.slug);
        Ok(())
    }

    /// The processes the state names for `slug` that still run (a handle lost with a provision
    /// that ended without an answer): stopped like adopted ones, then the record goes.
    async fn remove_remains(&self, slug: &str) -> Result<Vec<String>, String> {
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
        let removed = live.iter().map(|p| format!("process {}", p.pid)).collect();
        stop_adopted(&mut live).await;
        if !live.is_empty() {
            let pids: Vec<u32> = live.iter().map(|p| p.pid).collect();
            return Err(format!("service processes {pids:?} survived SIGKILL"));
        }
        self.forget(slug);
        Ok(removed)
    }

    async fn rediscover(&self) -> Result<Vec<Found<ProcessDeployment>>, String> {
        self.find_left().await
    }
}

/// How long a service may take to exit after SIGTERM before it gets SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

impl ProcessDriver {
    /// Starts the service and waits (until `deadline`) for the line naming its address; its
    /// health is the caller's to wait for.
    async fn start_service(
        &self,
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
        // design, and the state file names them, so a restarted hearth re-adopts them and
        // whoever started hearth can stop them (`stop_left`).
        let mut child = command.spawn().map_err(|e| {
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
        }
    }

    fn write(state: &std::path::Path, entries: &[(&str, StateEntry)]) {
        let map: BTreeMap<String, StateEntry> = entries
            .iter()
            .map(|(s, e)| (s.to_string(), e.clone()))
            .collect();
        std::fs::write(state, serde_json::to_vec(&map).unwrap()).unwrap();
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
