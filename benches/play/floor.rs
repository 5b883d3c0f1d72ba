//! The floor: the play's Docker work (a network, the tier's two containers, health checks,
//! teardown) done directly with bollard, the least the engine can take for it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use bollard::Docker;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::{
    CreateContainerOptions, InspectContainerOptions, RemoveContainerOptions, StartContainerOptions,
    StopContainerOptions,
};
use futures::future::{join_all, try_join_all};
use rocky::hearth::driver::docker::container_body;
use rocky::hearth::labels;
use rocky::tier::TierProfile;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::table::Part;

/// Same grace as hearth's `docker stop` (src/hearth/docker.rs).
pub(crate) const STOP_GRACE_SECS: i32 = 10;

#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct FloorTimes {
    pub(crate) network: Duration,
    pub(crate) create: Duration,
    pub(crate) start: Duration,
    pub(crate) inspect: Duration,
    pub(crate) health: Duration,
    pub(crate) stop_remove: Duration,
    pub(crate) network_rm: Duration,
    pub(crate) total: Duration,
}

impl FloorTimes {
    pub(crate) const PARTS: [Part<FloorTimes>; 7] = [
        ("create network", |s| s.network),
        ("create 2 containers (concurrent)", |s| s.create),
        ("start 2 containers (concurrent)", |s| s.start),
        ("inspect published ports", |s| s.inspect),
        ("GET /healthz until 200", |s| s.health),
        ("stop + remove containers", |s| s.stop_remove),
        ("remove network", |s| s.network_rm),
    ];
}

/// How the floor's workspace is made: the play's way ([`Floor::PLAY`]) or, for the `engine`
/// section, without one of the engine features it uses, to show what each costs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Floor {
    /// A private bridge network per workspace (else the engine's default `bridge`).
    pub(crate) own_network: bool,
    /// The service port published on 127.0.0.1 (else probed on the container's bridge IP).
    pub(crate) publish: bool,
    /// The private network is `internal` (no route out, no NAT rules, no published ports).
    pub(crate) internal: bool,
    /// The private network masquerades outgoing traffic (the engine's default).
    pub(crate) masquerade: bool,
}

impl Floor {
    pub(crate) const PLAY: Floor = Floor {
        own_network: true,
        publish: true,
        internal: false,
        masquerade: true,
    };

    /// The variants the `engine` section measures.
    pub(crate) const VARIANTS: [Floor; 6] = [
        Floor::PLAY,
        Floor {
            masquerade: false,
            ..Floor::PLAY
        },
        Floor {
            publish: false,
            ..Floor::PLAY
        },
        Floor {
            publish: false,
            internal: true,
            ..Floor::PLAY
        },
        Floor {
            own_network: false,
            ..Floor::PLAY
        },
        Floor {
            own_network: false,
            publish: false,
            ..Floor::PLAY
        },
    ];

    pub(crate) fn describe(self) -> &'static str {
        match (
            self.own_network,
            self.internal,
            self.masquerade,
            self.publish,
        ) {
            (true, false, true, true) => {
                "own network, port published on 127.0.0.1 (the play's way)"
            }
            (true, false, false, true) => "own network without masquerading, port published",
            (true, false, _, false) => "own network, no published port (probe the bridge IP)",
            (true, true, _, _) => "own internal network, no published port (probe the bridge IP)",
            (false, _, _, true) => "default bridge network, port published",
            (false, _, _, false) => "default bridge network, no published port",
        }
    }
}

pub(crate) async fn floor_once(
    docker: &Docker,
    session: &str,
    tier: &TierProfile,
    n: usize,
    how: Floor,
) -> anyhow::Result<FloorTimes> {
    let slug = format!("floor{n}");
    let network = format!("rocky-{session}-{slug}");
    let labels = labels::for_workspace(session, &slug);
    let mut containers = Vec::new();
    let result = floor_work(docker, tier, &network, &labels, how, &mut containers).await;
    if result.is_err() {
        // Leave nothing behind; the session sweep at the end catches anything this misses.
        for id in &containers {
            let _ = docker
                .remove_container(
                    id,
                    Some(RemoveContainerOptions {
                        force: true,
                        v: true,
                        ..Default::default()
                    }),
                )
                .await;
        }
        if how.own_network {
            let _ = docker.remove_network(&network).await;
        }
    }
    result
}

pub(crate) async fn floor_work(
    docker: &Docker,
    tier: &TierProfile,
    network: &str,
    labels: &HashMap<String, String>,
    how: Floor,
    containers: &mut Vec<String>,
) -> anyhow::Result<FloorTimes> {
    let mut t = FloorTimes::default();
    let started = Instant::now();
    let mut lap = Instant::now();
    let mut split = |d: &mut Duration| {
        *d = lap.elapsed();
        lap = Instant::now();
    };
    let network_mode = if how.own_network {
        docker
            .create_network(NetworkCreateRequest {
                name: network.to_owned(),
                driver: Some("bridge".into()),
                labels: Some(labels.clone()),
                internal: Some(how.internal),
                options: (!how.masquerade).then(|| {
                    HashMap::from([(
                        "com.docker.network.bridge.enable_ip_masquerade".to_owned(),
                        "false".to_owned(),
                    )])
                }),
                ..Default::default()
            })
            .await
            .context("create network")?;
        network
    } else {
        "bridge"
    };
    split(&mut t.network);

    let creates = tier.services.iter().map(|spec| {
        // Exactly the container hearth makes (one definition, in rocky), minus the engine
        // features this variant of the floor leaves out.
        let mut body = container_body(spec, network_mode, labels.clone());
        if let Some(host) = body.host_config.as_mut()
            && !how.publish
        {
            host.port_bindings = None;
        }
        if !how.own_network {
            // Aliases only exist on user-defined networks.
            body.networking_config = None;
        }
        let name = format!("{network}-{}", spec.name);
        async move {
            docker
                .create_container(
                    Some(CreateContainerOptions {
                        name: Some(name),
                        ..Default::default()
                    }),
                    body,
                )
                .await
                .map(|c| c.id)
        }
    });
    let mut first_error = None;
    for r in join_all(creates).await {
        match r {
            Ok(id) => containers.push(id),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e).context("create container");
    }
    split(&mut t.create);

    try_join_all(
        containers
            .iter()
            .map(|id| docker.start_container(id, None::<StartContainerOptions>)),
    )
    .await
    .context("start container")?;
    split(&mut t.start);

    let addrs = try_join_all(
        containers
            .iter()
            .zip(&tier.services)
            .map(|(id, spec)| async move {
                let info = docker
                    .inspect_container(id, None::<InspectContainerOptions>)
                    .await?;
                let settings = info.network_settings.unwrap_or_default();
                if how.publish {
                    let key = format!("{}/tcp", spec.port);
                    let port = settings
                        .ports
                        .and_then(|p| p.get(&key).cloned().flatten())
                        .and_then(|b| b.into_iter().find_map(|b| b.host_port))
                        .and_then(|p| p.parse::<u16>().ok())
                        .ok_or_else(|| anyhow!("no host binding for {key}"))?;
                    anyhow::Ok(SocketAddr::from(([127, 0, 0, 1], port)))
                } else {
                    let ip = settings
                        .networks
                        .and_then(|n| n.get(network_mode).and_then(|e| e.ip_address.clone()))
                        .and_then(|ip| ip.parse::<std::net::IpAddr>().ok())
                        .ok_or_else(|| anyhow!("no IP on {network_mode}"))?;
                    anyhow::Ok(SocketAddr::new(ip, spec.port))
                }
            }),
    )
    .await
    .context("inspect container")?;
    split(&mut t.inspect);

    let deadline = Instant::now() + Duration::from_secs(30);
    try_join_all(
        tier.services
            .iter()
            .zip(&addrs)
            .map(|(spec, addr)| until_healthy(*addr, &spec.health, deadline)),
    )
    .await?;
    split(&mut t.health);

    try_join_all(containers.iter().map(|id| async move {
        docker
            .stop_container(
                id,
                Some(StopContainerOptions {
                    t: Some(STOP_GRACE_SECS),
                    signal: None,
                }),
            )
            .await?;
        docker
            .remove_container(
                id,
                Some(RemoveContainerOptions {
                    force: true,
                    v: true,
                    ..Default::default()
                }),
            )
            .await
    }))
    .await
    .context("stop and remove container")?;
    containers.clear();
    split(&mut t.stop_remove);

    if how.own_network {
        docker
            .remove_network(network)
            .await
            .context("remove network")?;
    }
    split(&mut t.network_rm);
    t.total = started.elapsed();
    Ok(t)
}

/// `GET {path}` on `addr` until it answers 200, giving up at `deadline`. The service has no
/// readiness event to wait on (a fresh container's port is published by docker-proxy before the
/// service inside listens), so a refused or reset probe is retried after 1 ms: the floor sees
/// a service at most ~1 ms after it answers, without spinning a core the engine needs.
pub(crate) async fn until_healthy(
    addr: SocketAddr,
    path: &str,
    deadline: Instant,
) -> anyhow::Result<()> {
    loop {
        let answer = tokio::time::timeout(Duration::from_secs(2), http_status(addr, path)).await;
        match answer {
            Ok(Ok(200)) => return Ok(()),
            Ok(Ok(code)) if Instant::now() >= deadline => bail!("{addr}{path} answered {code}"),
            Ok(Err(e)) if Instant::now() >= deadline => bail!("{addr}{path}: {e}"),
            Err(_) if Instant::now() >= deadline => bail!("{addr}{path}: no answer within 2 s"),
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    }
}

pub(crate) async fn http_status(addr: SocketAddr, path: &str) -> std::io::Result<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream
        .write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    std::str::from_utf8(&head[9..12])
        .ok()
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other("not an HTTP answer"))
}
