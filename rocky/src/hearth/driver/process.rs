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
use super::{Driver, Provisioned};
use crate::api::hearth::{DeploymentRef, DriverKind, ServiceRef, Status};
use crate::tier::{ServiceSpec, TierProfile};
use serde::{Deserialize, Serialize};

/// A workspace's running processes.
#[derive(Debug)]
pub struct ProcessDeployment {
    /// The workspace, to keep the state file current.
    pub slug: String,
    pub children: Vec<Child>,
    /// Processes an earlier hearth started and this one re-adopted: not its children, so
    /// tracked and signalled by pid.
    pub adopted: Vec<u32>,
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
    pub pids: Vec<u32>,
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

    /// Whether `pid` is a live stand-in (not a reused pid of some other program).
    fn is_ours(&self, pid: u32) -> bool {
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        let standin = std::fs::canonicalize(&self.standin).ok();
        crate::docker::sweep::process_alive(pid as i32) && exe.is_some() && exe == standin
    }

    /// Reads the state an earlier hearth left: workspaces whose processes all live and answer
    /// their health route are re-adopted `ready`; of the others, surviving processes are
    /// stopped and the workspace is reported `failed` with why.
    async fn find_left(&self) -> Vec<(DeploymentRef, Option<ProcessDeployment>)> {
        let Some(path) = &self.state else {
            return Vec::new();
        };
        let left: BTreeMap<String, StateEntry> = match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                tracing::warn!("ignoring the unreadable state file {}: {e}", path.display());
                BTreeMap::new()
            }),
            Err(_) => BTreeMap::new(),
        };
        let mut found = Vec::new();
        let mut kept = BTreeMap::new();
        for (slug, entry) in left {
            let dead: Vec<u32> = entry
                .pids
                .iter()
                .copied()
                .filter(|p| !self.is_ours(*p))
                .collect();
            let mut why =
                (!dead.is_empty()).then(|| format!("service processes {dead:?} were gone"));
            if why.is_none() {
                let deadline = Instant::now() + REDISCOVER_HEALTH_TIMEOUT;
                for (service, health) in entry.services.iter().zip(&entry.health) {
                    let addr = service.endpoint.trim_start_matches("http://");
                    if let Err(e) = wait_healthy(addr, health, deadline).await {
                        why = Some(format!("service {} at {addr}: {e}", service.name));
                        break;
                    }
                }
            }
            let mut reference = DeploymentRef {
                slug: slug.clone(),
                tier: entry.tier.clone(),
                driver: DriverKind::Process,
                status: Status::Ready,
                services: entry.services.clone(),
                error: None,
            };
            let mut deployment = ProcessDeployment {
                slug: slug.clone(),
                children: Vec::new(),
                adopted: entry
                    .pids
                    .iter()
                    .copied()
                    .filter(|p| self.is_ours(*p))
                    .collect(),
                services: entry.services.clone(),
            };
            match why {
                None => {
                    kept.insert(slug, entry);
                    found.push((reference, Some(deployment)));
                }
                Some(why) => {
                    tracing::warn!(slug, "incomplete at rediscovery ({why}); stopping it");
                    stop_adopted(&mut deployment.adopted).await;
                    reference.status = Status::Failed;
                    reference.services.clear();
                    reference.error = Some(format!(
                        "found incomplete when hearth restarted ({why}); stopped"
                    ));
                    found.push((reference, None));
                }
            }
        }
        let mut ws = self.workspaces.lock().expect("process state lock");
        *ws = kept;
        self.save(&ws);
        found
    }
}

/// `<socket>.state.json`: where the process driver of the hearth on `socket` keeps its state.
pub fn state_path(socket: &std::path::Path) -> PathBuf {
    let mut name = socket.as_os_str().to_owned();
    name.push(".state.json");
    PathBuf::from(name)
}

/// Stops (SIGKILL) every stand-in the state file at `state` names that still runs: what a
/// hearth killed and never restarted left. Returns their pids.
pub fn stop_left(state: &std::path::Path, standin: &std::path::Path) -> Vec<u32> {
    let driver = ProcessDriver::new(standin.to_owned(), None);
    let left: BTreeMap<String, StateEntry> = std::fs::read(state)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    let mut stopped = Vec::new();
    for pid in left.values().flat_map(|e| e.pids.iter().copied()) {
        if driver.is_ours(pid) {
            // SAFETY: kill(2) on a live stand-in that the state file names.
            unsafe {
                libc::kill(pid as i32, libc::SIGKILL);
            }
            stopped.push(pid);
        }
    }
    stopped
}

/// How long a restarted hearth waits for a rediscovered workspace's services to answer.
const REDISCOVER_HEALTH_TIMEOUT: Duration = Duration::from_secs(10);

/// SIGTERM to every adopted pid, SIGKILL to those alive after [`KILL_GRACE`]; waits (bounded)
/// until each is gone. They are not our children: their exit is seen by polling.
async fn stop_adopted(pids: &mut Vec<u32>) {
    use crate::docker::sweep::process_alive;
    for pid in pids.iter() {
        // SAFETY: kill(2) on a pid checked to be a stand-in this hearth's session started.
        unsafe {
            libc::kill(*pid as i32, libc::SIGTERM);
        }
    }
    let gone = |pids: &Vec<u32>| pids.iter().all(|p| !process_alive(*p as i32));
    let grace = tokio::time::Instant::now() + KILL_GRACE;
    while !gone(pids) && tokio::time::Instant::now() < grace {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for pid in pids.iter().filter(|p| process_alive(**p as i32)) {
        tracing::warn!(pid, "adopted service ignored SIGTERM; sending SIGKILL");
        // SAFETY: as above.
        unsafe {
            libc::kill(*pid as i32, libc::SIGKILL);
        }
    }
    let killed = tokio::time::Instant::now() + KILL_GRACE;
    while !gone(pids) && tokio::time::Instant::now() < killed {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    pids.retain(|p| process_alive(*p as i32));
}

impl Driver for ProcessDriver {
    type Deployment = ProcessDeployment;
    const KIND: DriverKind = DriverKind::Process;

    /// Starts every service concurrently and waits for each to answer its health route.
    /// On failure the processes already started are killed (dropping a child kills it).
    async fn provision(
        &self,
        slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> Result<Provisioned<ProcessDeployment>, String> {
        let deadline = Instant::now() + health_timeout;
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
        if first_error.is_none() {
            let mut ws = self.workspaces.lock().expect("process state lock");
            ws.insert(
                slug.to_owned(),
                StateEntry {
                    tier: profile.name.clone(),
                    services: deployment.services.clone(),
                    health: profile.services.iter().map(|s| s.health.clone()).collect(),
                    pids: deployment.children.iter().filter_map(Child::id).collect(),
                },
            );
            self.save(&ws);
        }
        match first_error {
            None => Ok(Provisioned {
                services: deployment.services.clone(),
                health: Duration::ZERO,
                deployment,
            }),
            Some(e) => Err(e),
        }
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

    async fn rediscover(&self) -> Vec<(DeploymentRef, Option<ProcessDeployment>)> {
        self.find_left().await
    }
}

/// How long a service may take to exit after SIGTERM before it gets SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(5);

impl ProcessDriver {
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
        wait_healthy(&addr, &spec.health, deadline)
            .await
            .map_err(|e| format!("service {} at {addr}: {e}", spec.name))?;
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
