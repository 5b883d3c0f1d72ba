//! The container topology's console and worker: their secrets written to files in the work
//! directory, then both started through [`crate::containers`].

use std::path::Path;

use super::{Paths, Running, StackError, StackOptions, console_teardown_deadline};
use crate::containers::{ServiceContainers, ServiceImage};
use rocky::auth::Principal;

/// The worker, then the console, each in its own container; their configuration goes
/// through files in the work directory (tokens and VAULT files, mode 0600).
pub(super) async fn start_containers(
    opts: &StackOptions,
    paths: Paths<'_>,
    image: &ServiceImage,
    secret: &str,
    worker_secret: &str,
    tokens: &[(String, Principal)],
) -> Result<(String, String, Running), StackError> {
    let write = |path: &Path, r: std::io::Result<()>| {
        r.map_err(|e| StackError::Setup(format!("write {}: {e}", path.display())))
    };
    let tokens_path = opts.work_dir.join("tokens.yaml");
    write(
        &tokens_path,
        rocky::auth::write_tokens_file(&tokens_path, tokens),
    )?;
    let console_vault = opts.work_dir.join("console-vault.yaml");
    write(
        &console_vault,
        rocky::vault::write_keyring_file(&console_vault, "v1", &[("v1", secret)]),
    )?;
    let worker_vault = opts.work_dir.join("worker-vault.yaml");
    write(
        &worker_vault,
        rocky::vault::write_keyring_file(&worker_vault, "v1", &[("v1", worker_secret)]),
    )?;
    let started = ServiceContainers::start(&crate::containers::Config {
        image,
        session: &opts.session,
        work_dir: &opts.work_dir,
        hearth_socket: paths.hearth_socket,
        hatch_path: paths.hatch_path,
        tokens: &tokens_path,
        console_vault: &console_vault,
        worker_vault: &worker_vault,
        tiers_dir: &opts.tiers_dir,
        run_timeout: opts.run_timeout,
        teardown_timeout: console_teardown_deadline(opts),
        drift: &opts.worker_drift,
    })
    .await;
    let secrets = vec![tokens_path, console_vault, worker_vault];
    match started {
        Ok(containers) => Ok((
            containers.console_url.clone(),
            containers.worker_url.clone(),
            Running::Containers {
                containers: Box::new(containers),
                secrets,
            },
        )),
        Err(e) => {
            for path in &secrets {
                let _ = std::fs::remove_file(path);
            }
            Err(e.into())
        }
    }
}

// The container topology's stack as a whole (its pieces are tested in `crate::containers`).
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
        let labels = [format!("{}={session}", labels::SESSION)];
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
        let http = reqwest::Client::new();
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
