//! The `process` driver: each service of a workspace is a child process of the stand-in
//! program on a free loopback port. Real processes, real health checks, SIGTERM on teardown;
//! it is how scenarios run where no Docker engine answers.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::health::wait_healthy;
use super::{Driver, Provisioned};
use crate::api::hearth::{DriverKind, ServiceRef};
use crate::tier::{ServiceSpec, TierProfile};

/// A workspace's running processes.
#[derive(Debug)]
pub struct ProcessDeployment {
    pub children: Vec<Child>,
    pub services: Vec<ServiceRef>,
}

/// The driver: knows where the stand-in program is.
pub struct ProcessDriver {
    /// Path of the compiled stand-in (see `crate::images::standin_binary`).
    pub standin: PathBuf,
}

impl Driver for ProcessDriver {
    type Deployment = ProcessDeployment;
    const KIND: DriverKind = DriverKind::Process;

    /// Starts every service concurrently and waits for each to answer its health route.
    /// On failure the processes already started are killed (dropping a child kills it).
    async fn provision(
        &self,
        _slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> Result<Provisioned<ProcessDeployment>, String> {
        let deadline = Instant::now() + health_timeout;
        let starts = profile
            .services
            .iter()
            .map(|spec| self.start_service(spec, deadline));
        let mut deployment = ProcessDeployment {
            children: Vec::new(),
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
        Ok(())
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
        // A hearth killed with SIGKILL cannot run `kill_on_drop`: have the kernel kill the
        // service when hearth goes, so no stand-in outlives it. (The spawning thread is a
        // runtime worker, which lives as long as hearth does.)
        // SAFETY: prctl is async-signal-safe and touches only the child being set up.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) == -1 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
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
