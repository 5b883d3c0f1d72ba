//! The `process` driver: each service of a workspace is a child process of the stand-in
//! program on a free loopback port. Real processes, real health checks, SIGTERM on teardown;
//! it is how scenarios run where no Docker engine answers.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use super::ServiceRef;
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

impl ProcessDriver {
    /// Starts every service concurrently and waits for each to answer its health route.
    /// On failure the processes already started are killed (dropping a child kills it).
    pub async fn provision(
        &self,
        _slug: &str,
        profile: &TierProfile,
        health_timeout: Duration,
    ) -> Result<ProcessDeployment, String> {
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
            None => Ok(deployment),
            Some(e) => Err(e),
        }
    }

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

    /// SIGTERM to every process, then waits for all of them to exit. The caller bounds it with
    /// the teardown deadline; a process that ignores SIGTERM keeps this waiting.
    pub async fn teardown(&self, deployment: &mut ProcessDeployment) -> Result<(), String> {
        for child in &deployment.children {
            if let Some(pid) = child.id() {
                // SAFETY: kill(2) with a pid we spawned and still own (not yet reaped).
                unsafe {
                    libc::kill(pid as i32, libc::SIGTERM);
                }
            }
        }
        for child in &mut deployment.children {
            child
                .wait()
                .await
                .map_err(|e| format!("failed to wait for a service process: {e}"))?;
        }
        Ok(())
    }
}

/// First pause between health probes; doubled after each failed probe up to [`PROBE_MAX_PAUSE`].
const PROBE_FIRST_PAUSE: Duration = Duration::from_millis(1);

/// Longest pause between health probes: a service that becomes healthy is seen at most about
/// this long after. A probe costs one loopback connection, so probing 100 times a second while
/// a slow service boots is cheap; the former 50 ms cap saw a service that listens after
/// 100–500 ms 20–44 ms late (`cargo bench --bench play -- --only probe`, BENCHMARKS.md).
const PROBE_MAX_PAUSE: Duration = Duration::from_millis(10);

/// Probes `GET {path}` on `addr` until it answers 200 or `deadline` passes. The service is
/// started just before, so the first probes may be refused; the pause between probes grows
/// from [`PROBE_FIRST_PAUSE`] to [`PROBE_MAX_PAUSE`]. (The service offers no readiness event:
/// a Docker container's published port accepts connections before the service inside does.)
pub async fn wait_healthy(addr: &str, path: &str, deadline: Instant) -> Result<(), String> {
    let mut delay = PROBE_FIRST_PAUSE;
    let mut last;
    loop {
        match probe(addr, path).await {
            Ok(200) => return Ok(()),
            Ok(code) => last = format!("health route answered {code}"),
            Err(e) => last = e,
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(format!("not healthy before the deadline: {last}"));
        }
        tokio::time::sleep(delay.min(deadline - now)).await;
        delay = (delay * 2).min(PROBE_MAX_PAUSE);
    }
}

async fn probe(addr: &str, path: &str) -> Result<u16, String> {
    let io = async {
        let mut stream = TcpStream::connect(addr).await?;
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await?;
        let mut head = [0u8; 32];
        let mut n = 0;
        while n < 12 {
            let read = stream.read(&mut head[n..]).await?;
            if read == 0 {
                break;
            }
            n += read;
        }
        Ok::<_, std::io::Error>(head[..n].to_vec())
    };
    let head = tokio::time::timeout(Duration::from_secs(2), io)
        .await
        .map_err(|_| "health probe timed out after 2s".to_owned())?
        .map_err(|e| format!("health probe failed: {e}"))?;
    let text = String::from_utf8_lossy(&head);
    text.strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("health route answered {text:?}, not HTTP"))
}
