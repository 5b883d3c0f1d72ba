//! Steps about the stack and workspaces: starting the stack, provisioning, teardown, hearth's
//! status, and what must be gone afterwards.

use std::time::{Duration, Instant};

use cucumber::{given, then, when};
use rocky::api::ErrorBody;
use rocky::hearth::{DriverKind, Status};

use super::world::PlayWorld;
use crate::chain::Act;
use crate::wait::{Poll, wait_for};
use rocky::api::console::WorkspaceView;

#[given("a rocky stack")]
async fn a_stack(world: &mut PlayWorld) {
    if let Err(e) = world.start_stack().await {
        panic!("{e}");
    }
}

#[when(expr = "I provision workspace {string} on tier {string}")]
async fn provision(world: &mut PlayWorld, slug: String, tier: String) {
    let console = world.console();
    let start = Instant::now();
    let reply = world.record(console.create_workspace(&world.slug(&slug), &tier).await);
    world.add_time(Act::Provision, start);
    world.provisions.insert(slug.clone(), reply.clone());
    world.name_workspace(&slug);
    if reply.status == 201 && world.options.driver == DriverKind::Process {
        // The leftover checks find the workspace's processes from outside hearth, by the
        // session marker they inherit: make sure they can see the ones just made.
        let session = world.session().to_owned();
        let all = crate::stack::processes::of_session(&session).await;
        for endpoint in world.services.get(&slug).into_iter().flatten() {
            assert!(
                all.iter().any(|p| p.serves(endpoint)),
                "no process carrying {}={session} serves {endpoint} of workspace {slug}: the harness cannot see what it must check is gone (processes of the session: {all:?})",
                crate::stack::processes::SESSION_ENV
            );
        }
    }
}

#[then(expr = "workspace {string} is ready")]
async fn is_ready(world: &mut PlayWorld, slug: String) {
    let last = world.provisions.get(&slug).cloned().unwrap_or_else(|| {
        panic!(
            "workspace {slug:?} was never provisioned: provision it first with `When I provision workspace \"{slug}\" on tier \"solo\"`"
        )
    });
    assert_eq!(
        last.status,
        201,
        "provisioning {slug} answered {} ({})",
        last.status,
        last.error_text()
    );
    let console = world.console();
    let reply = world.record(console.workspace(&world.slug(&slug)).await);
    assert_eq!(
        reply.status,
        200,
        "GET workspace {slug}: {}",
        reply.error_text()
    );
    let view = reply.json::<WorkspaceView>();
    assert_eq!(
        view.map(|v| v.status),
        Some(Status::Ready),
        "workspace {slug}: {}",
        reply.body
    );
}

#[when(expr = "I tear down workspace {string}")]
async fn tear_down(world: &mut PlayWorld, slug: String) {
    let console = world.console();
    let start = Instant::now();
    world.record(console.delete_workspace(&world.slug(&slug)).await);
    world.add_time(Act::Teardown, start);
}

#[then(expr = "hearth reports workspace {string} as {string}")]
async fn hearth_reports(world: &mut PlayWorld, slug: String, status: String) {
    let want =
        Status::parse(&status).unwrap_or_else(|| panic!("{status:?} is not a hearth status"));
    let hearth = world.stack().hearth();
    let start = Instant::now();
    let report = hearth
        .status(&world.slug(&slug), Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("{}", world.unshare_text(&e.to_string())));
    world.add_time(Act::Status, start);
    world.driver_timings.insert(slug.clone(), report.timings);
    assert_eq!(
        report.status,
        want,
        "hearth status of {slug}: {} ({})",
        report.status,
        world.unshare_text(&report.error.unwrap_or_default())
    );
}

#[then(expr = "nothing of workspace {string} remains")]
async fn nothing_remains(world: &mut PlayWorld, slug: String) {
    use crate::stack::leftovers::{GONE_DEADLINE, processes_of};
    match world.options.driver {
        DriverKind::LocalDocker => {
            let docker = rocky::docker::connect()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let labelled = world.slug(&slug);
            let left = rocky::docker::sweep::list_labelled(&docker, world.session(), &labelled)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(
                left.is_empty(),
                "Docker objects labelled rocky.session={} rocky.workspace={labelled} remain: {left:?}",
                world.session()
            );
        }
        DriverKind::Process => {
            // Its processes, found from outside hearth (the session marker), whoever
            // provisioned it and whatever hearth remembers; with the stack stopped, every
            // process of the session is a leftover.
            let left = match &world.stack {
                Some(stack) => processes_of(stack, &slug, &world.services).await,
                None => crate::stack::processes::wait_gone(
                    &world.options.session,
                    |_| true,
                    GONE_DEADLINE,
                )
                .await
                .into_iter()
                .map(|process| crate::stack::leftovers::LeftProcess {
                    process,
                    why: "the stack has stopped".into(),
                })
                .collect(),
            };
            assert!(
                left.is_empty(),
                "processes of workspace {slug} (session {}) remain: {}",
                world.options.session,
                left.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
    }
    // Every service endpoint any answer reported for it (foreground or background) refuses
    // connections: at once, or within the moment a killed service takes to go.
    let endpoints = world.services.get(&slug).cloned().unwrap_or_default();
    let until = tokio::time::Instant::now() + GONE_DEADLINE;
    for endpoint in &endpoints {
        let addr = endpoint.trim_start_matches("http://");
        let refused = wait_for(
            format!("service {endpoint} of workspace {slug} did not go"),
            until.saturating_duration_since(tokio::time::Instant::now()),
            Duration::from_millis(20),
            async || {
                let connect = tokio::net::TcpStream::connect(addr);
                match tokio::time::timeout(Duration::from_secs(2), connect).await {
                    Ok(Ok(_)) => Poll::Pending("it accepts connections".into()),
                    _ => Poll::Ready(()),
                }
            },
        )
        .await;
        if refused.is_err() {
            panic!(
                "service {endpoint} of workspace {slug} still accepts connections {}s after it should be gone",
                GONE_DEADLINE.as_secs()
            );
        }
    }
}

#[then(expr = "the console answers {int} with code {string}")]
async fn console_answers(world: &mut PlayWorld, status: u16, code: String) {
    let last = world.replies.last().cloned().expect("no request was made to the console yet: make one first (e.g. `When I POST {string} to {string}`)");
    assert_eq!(
        (
            last.status,
            last.json::<ErrorBody>()
                .map_or("", |b| b.error.code.as_str())
        ),
        (status, code.as_str()),
        "{} answered {} ({})",
        last.request,
        last.status,
        last.error_text()
    );
}

#[then(expr = "the console answers {int}")]
async fn console_answers_status(world: &mut PlayWorld, status: u16) {
    let last = world.replies.last().cloned().expect("no request was made to the console yet: make one first (e.g. `When I POST {string} to {string}`)");
    assert_eq!(
        last.status,
        status,
        "{} answered {} ({})",
        last.request,
        last.status,
        last.error_text()
    );
}

/// A token for `who`: `admin`, `viewer`, `nobody` (no header) or `stranger` (unknown token).
fn token_for(world: &PlayWorld, who: &str) -> Option<String> {
    match who {
        "admin" => Some(world.stack().admin_token.clone()),
        "viewer" => Some(world.stack().viewer_token.clone()),
        "nobody" => None,
        "stranger" => Some("not-a-known-token".into()),
        other => panic!("unknown caller {other:?}: use admin, viewer, nobody or stranger"),
    }
}

#[when(expr = "I POST {string} to {string}")]
async fn post_raw(world: &mut PlayWorld, body: String, path: String) {
    let token = world.admin();
    let (body, path) = (world.slug_in_body(&body), world.slug_in_path(&path));
    world
        .call(reqwest::Method::POST, &path, Some(body.into_bytes()), token)
        .await;
}

#[when(expr = "I POST {string} to {string} as {word}")]
async fn post_raw_as(world: &mut PlayWorld, body: String, path: String, who: String) {
    let token = token_for(world, &who);
    let (body, path) = (world.slug_in_body(&body), world.slug_in_path(&path));
    world
        .call(reqwest::Method::POST, &path, Some(body.into_bytes()), token)
        .await;
}

#[when(expr = "I GET {string} as {word}")]
async fn get_as(world: &mut PlayWorld, path: String, who: String) {
    let token = token_for(world, &who);
    let path = world.slug_in_path(&path);
    world.call(reqwest::Method::GET, &path, None, token).await;
}

#[when(expr = "I POST a body of {int} KiB to {string}")]
async fn post_big(world: &mut PlayWorld, kib: usize, path: String) {
    let filler = "x".repeat(kib * 1024);
    let body = world.slug_in_body(&format!(
        r#"{{"slug":"big","tier":"solo","pad":"{filler}"}}"#
    ));
    let token = world.admin();
    world
        .call(reqwest::Method::POST, &path, Some(body.into_bytes()), token)
        .await;
}

#[then(expr = "hearth knows no workspace {string}")]
async fn hearth_knows_nothing(world: &mut PlayWorld, slug: String) {
    match world
        .stack()
        .hearth()
        .status(&world.slug(&slug), Duration::from_secs(10))
        .await
    {
        Err(rocky::hearth::client::HearthError::Refused { status: 404, .. }) => {}
        Ok(report) => panic!("hearth knows workspace {slug}: status {}", report.status),
        Err(e) => panic!("{e}"),
    }
}

#[then(expr = "the HATCH log has {int} records")]
async fn hatch_count(world: &mut PlayWorld, n: usize) {
    let chain = world.chain();
    let kinds: Vec<&str> = chain.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(chain.len(), n, "HATCH log holds {kinds:?}");
}
