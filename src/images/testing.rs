//! What the images' tests share: the engine, and whether they may use it.

use bollard::Docker;

pub(super) fn e2e_enabled() -> bool {
    if std::env::var("ROCKY_E2E").as_deref() == Ok("1") {
        return true;
    }
    eprintln!("skipped: set ROCKY_E2E=1 to build images against the Docker engine");
    false
}

pub(super) async fn docker() -> Docker {
    Docker::connect_with_defaults()
        .expect("ROCKY_E2E=1 needs a Docker engine")
        .negotiate_version()
        .await
        .expect("ROCKY_E2E=1 needs a reachable Docker engine")
}
