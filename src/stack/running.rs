//! A running stack: hearth spawned as a binary on its unix socket, the console and the
//! worker started beside it ([`super::embedded`] or [`super::containerized`]), and what can be
//! done to it while it runs (kill and restart hearth or the worker, read the logs, stop).

use std::path::PathBuf;

use tokio::process::Child;

use super::containerized::start_containers;
use super::embedded::{InProcess, start_in_process};
use super::hearth;
use super::options::{Paths, Services, StackError, StackOptions};
use crate::containers::ServiceContainers;
use rocky::auth::{Principal, Role};
use rocky::hearth::DriverKind;
use rocky::hearth::client::HearthClient;

/// How long [`Stack::decommission_all`] waits for hearth's list of workspaces.
const DECOMMISSION_LIST_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// How much longer than the console's teardown deadline a decommission waits for its answer.
const DECOMMISSION_MARGIN: std::time::Duration = std::time::Duration::from_secs(5);

/// One workspace's teardown by [`Stack::decommission_all`].
#[derive(Debug)]
pub struct Decommission {
    pub slug: String,
    /// `Ok` once the console answered 200 (`tier_torn_down`, recorded in HATCH).
    pub outcome: Result<(), String>,
}

/// A running stack. Call [`Stack::stop`]. Dropping it instead kills hearth without cleanup
/// (and, on the container topology, removes the containers but not their network): the
/// harness's session sweep, or the next run's sweep of dead pids, removes what is left.
pub struct Stack {
    /// The console's base URL.
    pub console_url: String,
    /// The worker's base URL.
    pub worker_url: String,
    /// Bearer token of the `admin` principal.
    pub admin_token: String,
    /// Bearer token of a `viewer` principal (for 403 checks).
    pub viewer_token: String,
    /// The HATCH JSONL file the console writes.
    pub hatch_path: PathBuf,
    /// hearth's unix socket.
    pub hearth_socket: PathBuf,
    /// hearth's stderr, kept as evidence.
    pub hearth_log: PathBuf,
    /// Session id on every object hearth made (and on the stack's containers).
    pub session: String,
    /// Which driver hearth runs.
    pub driver: DriverKind,
    hearth: Child,
    services: Running,
    /// What the stack was started with (to restart hearth the same way).
    options: StackOptions,
}

/// The console and the worker as they run.
enum Running {
    InProcess(InProcess),
    Containers {
        containers: Box<ServiceContainers>,
        /// The tokens and VAULT files written for them; removed when the stack stops.
        secrets: Vec<PathBuf>,
    },
}

impl Stack {
    /// Spawns hearth, waits for its ready line, then starts the worker and the console
    /// (in-process or in containers, per [`StackOptions::services`]).
    pub async fn start(opts: &StackOptions) -> Result<Stack, StackError> {
        std::fs::create_dir_all(&opts.work_dir)
            .map_err(|e| StackError::Setup(format!("create {}: {e}", opts.work_dir.display())))?;
        let hearth_socket = opts.work_dir.join("hearth.sock");
        let hearth_log = opts.work_dir.join("hearth.log");
        let hatch_path = opts.work_dir.join("hatch.jsonl");
        let hearth = hearth::spawn(opts, &hearth_socket, &hearth_log).await?;

        let secret = hex::encode(rocky::vault::generate_secret());
        // Same key id, different secret: what a half-finished VAULT rotation looks like.
        let worker_secret = if opts.vault_drift {
            hex::encode(rocky::vault::generate_secret())
        } else {
            secret.clone()
        };
        let admin_token = rocky::ids::random_hex(16);
        let viewer_token = rocky::ids::random_hex(16);
        let tokens = vec![
            (
                admin_token.clone(),
                Principal {
                    name: "admin".into(),
                    role: Role::Admin,
                },
            ),
            (
                viewer_token.clone(),
                Principal {
                    name: "viewer".into(),
                    role: Role::Viewer,
                },
            ),
        ];
        let paths = Paths {
            hearth_socket: &hearth_socket,
            hatch_path: &hatch_path,
        };
        // On an error below, `hearth` drops and is killed (it has made nothing yet).
        let (console_url, worker_url, services) = match &opts.services {
            Services::InProcess => {
                let (console, worker, servers) =
                    start_in_process(opts, paths, &secret, &worker_secret, tokens).await?;
                (console, worker, Running::InProcess(servers))
            }
            Services::Containers(image) => {
                let (containers, secrets) =
                    start_containers(opts, paths, image, &secret, &worker_secret, &tokens).await?;
                (
                    containers.console_url.clone(),
                    containers.worker_url.clone(),
                    Running::Containers {
                        containers: Box::new(containers),
                        secrets,
                    },
                )
            }
        };
        Ok(Stack {
            console_url,
            worker_url,
            admin_token,
            viewer_token,
            hatch_path,
            hearth_socket,
            hearth_log,
            session: opts.session.clone(),
            driver: opts.driver,
            hearth,
            services,
            options: opts.clone(),
        })
    }

    /// Kills hearth with SIGKILL, as a crash would: it cleans nothing up. Its `local-docker`
    /// objects stay; its `process` services die with it (the kernel kills them).
    pub async fn kill_hearth(&mut self) -> Result<(), String> {
        hearth::kill(&mut self.hearth).await
    }

    /// Starts hearth again on the same socket and session (after [`Stack::kill_hearth`]); it
    /// rediscovers what the one before left.
    pub async fn restart_hearth(&mut self) -> Result<(), StackError> {
        self.hearth = hearth::spawn(&self.options, &self.hearth_socket, &self.hearth_log).await?;
        Ok(())
    }

    /// Kills the worker as a crash would (SIGKILL to its container, or, in process, its server
    /// and every connection dropped at once): its runs and frames are lost.
    pub async fn kill_worker(&mut self) -> Result<(), String> {
        match &self.services {
            Running::InProcess(servers) => servers.kill_worker().await,
            Running::Containers { containers, .. } => containers.kill_worker().await,
        }
    }

    /// Starts the worker again after [`Stack::kill_worker`], at the same address, with nothing
    /// in memory; returns once it answers.
    pub async fn restart_worker(&mut self) -> Result<(), String> {
        match &self.services {
            Running::InProcess(servers) => servers.restart_worker().await,
            Running::Containers { containers, .. } => containers.restart_worker().await,
        }
    }

    /// Where the console and the worker run: `in-process` or `containers`.
    pub fn services(&self) -> &'static str {
        self.options.services.as_str()
    }

    /// True when the console and the worker run in containers (the container topology).
    pub fn in_containers(&self) -> bool {
        matches!(self.services, Running::Containers { .. })
    }

    /// Output of the console and the worker so far, for a failing scenario's report: the
    /// containers' stdout/stderr (lines tagged `out|`/`err|`, a header per container), or, in
    /// process, their tracing output, which goes to this stack's own log file.
    pub fn logs(&self) -> String {
        match &self.services {
            Running::InProcess(servers) => std::fs::read_to_string(&servers.log)
                .map(|t| {
                    format!(
                        "── console and worker (in-process, {}) ──\n{t}",
                        servers.log.display()
                    )
                })
                .unwrap_or_default(),
            Running::Containers { containers, .. } => containers.logs(),
        }
    }

    /// The pid of this stack's hearth while it runs.
    pub fn hearth_pid(&self) -> Option<u32> {
        self.hearth.id()
    }

    /// A client for this stack's hearth.
    pub fn hearth(&self) -> HearthClient {
        HearthClient::new(&self.hearth_socket)
    }

    /// Tears down, through the console and concurrently, every workspace hearth still holds,
    /// so that HATCH records each one as for any other teardown: its runs ended (`cancelled`),
    /// then `hearth.decommission_started` and `hearth.decommissioned`. For whoever owns a
    /// stack users drove by hand (`rocky-e2e up`) before it stops: [`Stack::stop`] alone
    /// removes the workspaces through hearth, which records nothing. The stack keeps running;
    /// each workspace's outcome is returned (`Err` names what failed), in hearth's order.
    pub async fn decommission_all(&self) -> Result<Vec<Decommission>, String> {
        let workspaces = self
            .hearth()
            .list(DECOMMISSION_LIST_DEADLINE)
            .await
            .map_err(|e| format!("could not ask hearth which workspaces it holds: {e}"))?;
        // Longer than the console's own teardown deadline, so the console is the one to say
        // that a teardown passed it.
        let deadline =
            super::options::console_teardown_deadline(&self.options) + DECOMMISSION_MARGIN;
        let console = rocky::client::console::ConsoleClient::new(self.console_url.clone())
            .with_token(self.admin_token.clone())
            .with_deadline(deadline);
        let deletes = workspaces
            .into_iter()
            .filter(|w| w.status != rocky::api::hearth::Status::TierTornDown)
            .map(|w| {
                let console = console.clone();
                async move {
                    let outcome = match console.delete_workspace(&w.slug).await {
                        Ok(a) if a.status == 200 => Ok(()),
                        Ok(a) => Err(format!(
                            "the console answered {} ({})",
                            a.status,
                            a.error_text()
                        )),
                        Err(e) => Err(e.to_string()),
                    };
                    Decommission {
                        slug: w.slug,
                        outcome,
                    }
                }
            });
        Ok(futures::future::join_all(deletes).await)
    }

    /// Stops the console and worker (servers, or containers and their network), then asks
    /// hearth to exit (it tears down whatever is still up) and waits for it. Every step runs;
    /// the error names each one that failed (e.g. hearth had to be killed).
    pub async fn stop(mut self) -> Result<(), String> {
        let mut errors = Vec::new();
        match std::mem::replace(&mut self.services, Running::InProcess(InProcess::stopped())) {
            Running::InProcess(servers) => {
                if let Err(e) = servers.stop().await {
                    errors.push(e);
                }
            }
            Running::Containers {
                containers,
                secrets,
            } => {
                if let Err(e) = containers.stop().await {
                    errors.push(e);
                }
                for path in secrets {
                    if let Err(e) = std::fs::remove_file(&path)
                        && e.kind() != std::io::ErrorKind::NotFound
                    {
                        errors.push(format!("failed to remove {}: {e}", path.display()));
                    }
                }
            }
        }
        if let Err(e) = hearth::stop(&mut self.hearth).await {
            errors.push(e);
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }
}

// The container topology's stack as a whole (its containers are tested in `crate::containers`).
#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use bollard::Docker;
    use rocky::hearth::labels;

    use crate::containers::START_DEADLINE;
    use crate::containers::ServiceImage;
    use crate::stack::StackOptions;

    fn e2e_enabled() -> bool {
        if std::env::var("ROCKY_E2E").as_deref() == Ok("1") {
            return true;
        }
        eprintln!("skipped: set ROCKY_E2E=1 to start containers on the Docker engine");
        false
    }

    /// The services image of this build (`cargo test` builds the bins before running tests).
    async fn image(docker: &Docker, cache: &Path) -> ServiceImage {
        let bins = crate::images::ServiceBinaries::locate(&crate::binaries::search_dirs())
            .expect("cargo test builds console and ralph");
        let built = crate::images::ensure_services_image(docker, cache, &bins)
            .await
            .unwrap();
        (&built).into()
    }

    /// Everything labelled with `session`, as `kind name` lines.
    async fn leftovers(docker: &Docker, session: &str) -> Vec<String> {
        let labels = [labels::session_filter(session)];
        rocky::docker::sweep::list_labelled_objects(docker, &labels)
            .await
            .unwrap()
            .into_iter()
            .map(|o| format!("{} {}", o.kind, o.name))
            .collect()
    }

    /// A whole stack in containers: the console answers on 127.0.0.1 and reaches hearth
    /// through the mounted socket, the worker answers at its network address, both logs are
    /// captured, and stopping leaves nothing behind.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_container_stack_serves_logs_and_leaves_nothing() {
        if !e2e_enabled() {
            return;
        }
        let docker = rocky::docker::connect().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut opts = StackOptions::new(
            rocky::hearth::DriverKind::LocalDocker,
            dir.path().join("stack"),
        );
        opts.services = crate::stack::Services::Containers(image(&docker, dir.path()).await);
        let stack = crate::stack::Stack::start(&opts).await.unwrap();
        assert_eq!(stack.services(), "containers");
        assert!(
            stack.console_url.starts_with("http://127.0.0.1:"),
            "{}",
            stack.console_url
        );
        let http = rocky::http::client();
        let get = |url: String, token: Option<&str>| {
            let mut req = http.get(url).timeout(Duration::from_secs(10));
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send()
        };
        let health = get(format!("{}/healthz", stack.console_url), None)
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
        // Through LocalAuth (tokens file) and hearth (mounted socket): an unknown workspace.
        let missing = get(
            format!("{}/api/hearth/workspaces/nope", stack.console_url),
            Some(&stack.admin_token),
        )
        .await
        .unwrap();
        assert_eq!(missing.status(), 404, "{:?}", missing.text().await);
        let worker = get(format!("{}/healthz", stack.worker_url), None)
            .await
            .unwrap();
        assert_eq!(worker.status(), 200);

        let logs = stack.logs();
        eprintln!("{logs}");
        assert!(logs.contains("── console (container rocky-"), "{logs}");
        assert!(
            logs.contains("out| console listening on 0.0.0.0:8080"),
            "{logs}"
        );
        assert!(
            logs.contains("out| ralph listening on 0.0.0.0:8080"),
            "{logs}"
        );

        let session = stack.session.clone();
        assert_eq!(
            leftovers(&docker, &session).await.len(),
            3,
            "a network and two containers while it runs"
        );
        assert!(opts.work_dir.join("tokens.yaml").is_file());
        stack.stop().await.unwrap();
        assert_eq!(leftovers(&docker, &session).await, Vec::<String>::new());
        for secret in ["tokens.yaml", "console-vault.yaml", "worker-vault.yaml"] {
            assert!(
                !opts.work_dir.join(secret).exists(),
                "{secret} outlived the stack"
            );
        }
    }

    /// The chaos drill's worker restart on the embedded topology, where a child forked just
    /// before the kill (slow to exec) still holds the killed worker's listener: the restart
    /// waits for it instead of failing with "Address already in use".
    #[tokio::test(flavor = "multi_thread")]
    async fn an_embedded_worker_restarts_while_a_forked_child_holds_its_listener() {
        crate::binaries::ensure_built().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut opts =
            StackOptions::new(rocky::hearth::DriverKind::Process, dir.path().join("stack"));
        opts.standin_bin =
            Some(crate::images::standin_binary(&crate::images::default_cache_dir()).unwrap());
        let mut stack = crate::stack::Stack::start(&opts).await.unwrap();
        let child = testkit::fork_slow_to_exec(Duration::from_millis(300)).unwrap();
        stack.kill_worker().await.unwrap();
        let restarted = stack.restart_worker().await;
        tokio::task::spawn_blocking(move || child.wait())
            .await
            .unwrap()
            .unwrap();
        let stopped = stack.stop().await;
        restarted.unwrap();
        stopped.unwrap();
    }

    /// A console that cannot start (a broken tier profile) fails the stack with its own
    /// words, and what was made for the stack is removed.
    #[tokio::test(flavor = "multi_thread")]
    async fn a_console_that_exits_fails_the_start_with_its_output() {
        if !e2e_enabled() {
            return;
        }
        let docker = rocky::docker::connect().await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let tiers = dir.path().join("tiers");
        std::fs::create_dir_all(&tiers).unwrap();
        std::fs::write(tiers.join("solo.yaml"), "not: [a tier").unwrap();
        let mut opts = StackOptions::new(
            rocky::hearth::DriverKind::LocalDocker,
            dir.path().join("stack"),
        );
        opts.tiers_dir = tiers;
        opts.services = crate::stack::Services::Containers(image(&docker, dir.path()).await);
        let started = Instant::now();
        let err = match crate::stack::Stack::start(&opts).await {
            Ok(_) => panic!("the stack started with a broken tier profile"),
            Err(e) => e.to_string(),
        };
        eprintln!("{err}");
        assert!(
            started.elapsed() < START_DEADLINE,
            "an exited container is noticed at once, not at the deadline"
        );
        assert!(
            err.contains("the console container did not print \"console listening on\""),
            "{err}"
        );
        assert!(err.contains("err| console: "), "{err}");
        assert!(err.contains("solo.yaml"), "{err}");
        assert_eq!(
            leftovers(&docker, &opts.session).await,
            Vec::<String>::new()
        );
        assert!(!opts.work_dir.join("tokens.yaml").exists());
    }
}
