//! What a provision leaves without a handle, on the real engine (contract §9: a status never
//! lies). hearth in process over the `local-docker` driver, wrapped so a provision makes its
//! workspace's network (labelled as hearth labels it) and then loses the handle:
//! - a provision task that panics is answered `failed`, saying so, with what it made removed
//!   (found by the engine's labels), and the slug can be provisioned again;
//! - a teardown of a workspace whose objects no handle names removes them before it answers
//!   `tier_torn_down`, and never removes (nor reports gone) an object a live owner elsewhere
//!   holds.
//!
//! Needs a Docker engine: runs with `ROCKY_E2E=1`, and says it is skipped otherwise. The
//! engine is shared: everything here carries a session of this test alone.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use rocky::api::hearth::{DriverKind, Status};
use rocky::docker::labels;
use rocky::docker::sweep::list_labelled_objects;
use rocky::hearth::client::HearthClient;
use rocky::hearth::driver::docker::{DockerDeployment, DockerDriver};
use rocky::hearth::driver::{Driver, Provisioned};
use rocky::hearth::server::Hearth;
use rocky::tier::TierProfile;

const PATIENCE: Duration = Duration::from_secs(30);

/// What the next provision does once it has made the workspace's network.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Then {
    /// Panics: the task ends without an answer.
    Panics,
    /// Answers `failed`, claiming nothing remains.
    FailsLosingIt,
    /// The same, but the network names a live owner in another PID namespace.
    FailsLosingAHeldOne,
    /// Answers `ready` with the network as its handle.
    Ready,
}

/// The `local-docker` driver, except for how a provision ends.
struct Lossy {
    docker: Docker,
    driver: DockerDriver,
    session: String,
    then: Arc<Mutex<Then>>,
}

impl Driver for Lossy {
    type Deployment = DockerDeployment;
    const KIND: DriverKind = DriverKind::LocalDocker;

    async fn provision(
        &self,
        slug: &str,
        _profile: &TierProfile,
        _health: Duration,
    ) -> Result<Provisioned<DockerDeployment>, String> {
        let then = *self.then.lock().unwrap();
        let mut l = labels::for_workspace(&self.session, slug);
        if then == Then::FailsLosingAHeldOne {
            let me = rocky::docker::owner::ProcessId::this_process();
            l.insert(labels::PIDNS.into(), (me.pidns + 1).to_string());
        }
        let name = labels::object_name(&self.session, slug, None);
        self.docker
            .create_network(NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(l),
                ..Default::default()
            })
            .await
            .map_err(|e| format!("create network {name}: {e}"))?;
        match then {
            Then::Panics => panic!("the provision of {slug} panicked after making {name}"),
            Then::FailsLosingIt | Then::FailsLosingAHeldOne => {
                Err("failed, and lost the handle of what it made".into())
            }
            Then::Ready => Ok(Provisioned {
                services: Vec::new(),
                health: Duration::ZERO,
                deployment: DockerDeployment {
                    network: name,
                    containers: Vec::new(),
                    services: Vec::new(),
                    health: Duration::ZERO,
                },
            }),
        }
    }

    async fn teardown(&self, deployment: &mut DockerDeployment) -> Result<(), String> {
        self.driver.teardown(deployment).await
    }

    async fn remove_remains(&self, slug: &str) -> Result<Vec<String>, String> {
        self.driver.remove_remains(slug).await
    }
}

/// Names of the objects of `slug` in `session` the engine holds.
async fn left(docker: &Docker, session: &str, slug: &str) -> Vec<String> {
    list_labelled_objects(
        docker,
        &[
            labels::session_filter(session),
            labels::workspace_filter(slug),
        ],
    )
    .await
    .expect("list the workspace's objects")
    .into_iter()
    .map(|o| o.name)
    .collect()
}

/// A tier of one service (the wrapped provision makes only the network).
fn tier() -> TierProfile {
    TierProfile {
        name: "solo".into(),
        services: vec![rocky::tier::ServiceSpec {
            name: "cairnet".into(),
            image: "rocky-e2e/standin:local".into(),
            port: 8080,
            health: "/healthz".into(),
            env: Default::default(),
        }],
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn what_a_provision_leaves_without_a_handle_is_removed_before_it_is_reported_gone() {
    if std::env::var("ROCKY_E2E").as_deref() != Ok("1") {
        eprintln!("skipped: needs a Docker engine (set ROCKY_E2E=1)");
        return;
    }
    let docker = rocky::docker::connect()
        .await
        .expect("ROCKY_E2E=1 requires a reachable Docker engine");
    let session = format!("remains{}", rocky::ids::random_hex(4));
    let then = Arc::new(Mutex::new(Then::Panics));
    let hearth = Arc::new(Hearth::new(
        Lossy {
            docker: docker.clone(),
            driver: DockerDriver::new(session.clone()),
            session: session.clone(),
            then: then.clone(),
        },
        Duration::from_secs(20),
        Duration::from_secs(20),
    ));
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("hearth.sock");
    let listener = rocky::hearth::socket::bind_socket(&socket).expect("bind hearth");
    tokio::spawn(rocky::http::serve(
        listener,
        hearth.router(),
        std::future::pending(),
    ));
    let client = HearthClient::new(&socket);
    let set = |next| *then.lock().unwrap() = next;

    // The task panics after making the network: `failed`, with the network removed.
    let panicked = client.provision("p", &tier(), PATIENCE).await;
    let panicked_left = left(&docker, &session, "p").await;
    set(Then::Ready);
    let again = client.provision("p", &tier(), PATIENCE).await;
    let again_down = client.teardown("p", PATIENCE).await;
    let again_left = left(&docker, &session, "p").await;

    // Failed without a handle of what it made: the teardown finds it by its labels.
    set(Then::FailsLosingIt);
    let lost = client.provision("l", &tier(), PATIENCE).await;
    let lost_before = left(&docker, &session, "l").await;
    let lost_down = client.teardown("l", PATIENCE).await;
    let lost_left = left(&docker, &session, "l").await;

    // The same, but what remains is a live owner's elsewhere: never removed, never "gone".
    set(Then::FailsLosingAHeldOne);
    let held = client.provision("h", &tier(), PATIENCE).await;
    let held_down = client.teardown("h", PATIENCE).await;
    let held_left = left(&docker, &session, "h").await;

    // Clean up before judging, so a failure leaves nothing behind.
    let _ = rocky::docker::sweep::sweep(&docker, Some(&session)).await;

    let panicked = panicked.expect("the panicked provision is answered");
    assert_eq!(panicked.status, Status::Failed, "{panicked:?}");
    let why = panicked.error.unwrap_or_default();
    let network = labels::object_name(&session, "p", None);
    assert!(
        why.contains("ended without an answer (it panicked: the provision of p panicked")
            && why.contains(&format!("removed network {network}")),
        "{why}"
    );
    assert_eq!(panicked_left, Vec::<String>::new(), "left after the panic");
    assert_eq!(again.expect("provision p again").status, Status::Ready);
    assert_eq!(again_down.expect("teardown p").status, Status::TierTornDown);
    assert_eq!(again_left, Vec::<String>::new(), "left after p's teardown");

    assert_eq!(lost.expect("provision l").status, Status::Failed);
    assert_eq!(
        lost_before.len(),
        1,
        "the lost network exists: {lost_before:?}"
    );
    let lost_down = lost_down.expect("teardown l");
    assert_eq!(lost_down.status, Status::TierTornDown, "{lost_down:?}");
    assert_eq!(
        lost_left,
        Vec::<String>::new(),
        "the teardown answered tier_torn_down with objects of l left"
    );

    assert_eq!(held.expect("provision h").status, Status::Failed);
    let held_down = held_down.expect("teardown h");
    assert_eq!(held_down.status, Status::TearingDown, "{held_down:?}");
    assert!(
        held_down
            .error
            .as_deref()
            .is_some_and(|e| e.contains("owned by another process")),
        "{held_down:?}"
    );
    assert_eq!(held_left.len(), 1, "a live owner's network was removed");
}
