//! The World: one fresh per scenario, holding that scenario's stack and what it observed.
//!
//! Expensive shared fixtures (the stand-in image, the compiled stand-in) live in the topology
//! chosen once per process. A scenario that faults no service runs on the stack it shares with
//! the others of its configuration (`crate::stack::shared`), as a tenant: its workspaces have
//! names of their own there, and it reads only its own slice of the HATCH log, with the names
//! it used ([`PlayWorld::chain`]). A scenario that faults one gets a stack, hearth session,
//! HATCH log and temporary directory of its own. Either way, concurrent scenarios never see
//! each other's workspaces or events.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::chain::seal_check;
use crate::chain::{Act, Evidence};
use crate::report::detail::{Detail, StackShare, Summary};
use crate::stack::{StackOptions, StackRef, Tenant};
use rocky::api::console::RunView;
use rocky::api::hearth::DeploymentRef;
use rocky::client::ConsoleClient;
use rocky::client::console::{Answer, ConsoleError};
use rocky::hatch::Record;

use crate::topology;

/// The console's answer to the last request, kept for assertions and as evidence.
#[derive(Clone, Debug)]
pub struct Reply {
    /// `POST /api/hearth/workspaces` and the like.
    pub request: String,
    pub status: u16,
    pub body: serde_json::Value,
}

impl Reply {
    /// `code: message` of an error body, or the body itself.
    pub fn error_text(&self) -> String {
        match (
            self.body["error"]["code"].as_str(),
            self.body["error"]["message"].as_str(),
        ) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            _ => self.body.to_string(),
        }
    }
}

impl Reply {
    /// Sends one request through `client` as `token` (none: no `Authorization`) and keeps
    /// the answer, or why there was none (status 0).
    async fn of(
        client: &ConsoleClient,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<String>,
    ) -> Reply {
        Reply::from(
            client
                .send(method, path, body, Some(token.as_deref()), CALL_DEADLINE)
                .await,
        )
    }

    /// The body as `T`, when it is one (a typed answer: `WorkspaceView`, `RunView`, …).
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_value(self.body.clone()).ok()
    }
}

impl From<Result<Answer, ConsoleError>> for Reply {
    /// The answer a typed client call got, or why there was none (status 0).
    fn from(answer: Result<Answer, ConsoleError>) -> Reply {
        match answer {
            Ok(answer) => Reply {
                request: answer.request,
                status: answer.status,
                body: answer.body,
            },
            Err(e) => Reply {
                request: e.request.clone(),
                status: 0,
                body: serde_json::Value::String(e.to_string()),
            },
        }
    }
}

/// Longest a single console call of a step may take.
const CALL_DEADLINE: Duration = Duration::from_secs(120);

#[derive(cucumber::World)]
#[world(init = Self::new)]
pub struct PlayWorld {
    /// Feature file stem and scenario name: the snapshot's name.
    pub feature: String,
    pub scenario: String,
    /// How this scenario's stack will start; fault steps change it before the stack starts.
    pub options: StackOptions,
    /// The running stack, once started: its own, or the one it shares.
    pub stack: Option<StackRef>,
    /// Its part of the stack, when it shares one: its workspaces' names there.
    pub tenant: Option<Tenant>,
    /// The step (text) that faults a service, when the scenario has one: it needs a stack of
    /// its own (set before the scenario starts, from its steps and its background's).
    pub faults_services: Option<String>,
    /// Why the stack failed to start, when a scenario expects that.
    pub start_error: Option<String>,
    /// The console's client, once the stack runs (connections kept alive).
    pub console: Option<ConsoleClient>,
    /// Every console answer, in order (evidence for the gap report).
    pub replies: Vec<Reply>,
    /// Every workspace the scenario named (provisioned in the foreground or the background)
    /// → every service endpoint any answer reported for it: what `nothing of workspace X
    /// remains` checks, whoever made it.
    pub services: BTreeMap<String, BTreeSet<String>>,
    /// Runs submitted, in order: (workspace, run_id).
    pub runs: Vec<(String, String)>,
    /// Every submission's answer, in order: (workspace, reply), accepted or not.
    pub submissions: Vec<(String, Reply)>,
    /// What "the run" means now (CONTRACT §10): the submissions (indices into
    /// `submissions`) the scenario last named. One after a step names a run; several after
    /// runs were submitted one after another, until a step picks one.
    pub named_runs: super::referents::NamedRuns,
    /// The answer to each workspace's provision request, by workspace.
    pub provisions: BTreeMap<String, Reply>,
    /// The last run view the console gave.
    pub run_views: BTreeMap<String, RunView>,
    /// Facts for the gap report beyond the replies.
    pub evidence: Evidence,
    /// Time spent per act.
    pub timings: BTreeMap<Act, Duration>,
    /// When each act ran, from the scenario's start: the report's timeline.
    pub spans: Vec<crate::report::model::ActSpan>,
    /// Problems the last vocabulary check reported.
    pub check_problems: Vec<String>,
    /// When the scenario started (for its progress line).
    pub started: Option<Instant>,
    /// The scenario's test name (`feature::scenario`).
    pub test_name: String,
    /// Driver time per workspace, as hearth last reported it.
    pub driver_timings: BTreeMap<String, rocky::hearth::DriverTimings>,
    /// The failed chain assertion's gap report and the step's words beside it, for the report.
    pub gap: Option<(Option<String>, crate::report::model::GapView)>,
    /// The failed snapshot assertion's accepted and new chain, for the report.
    pub snapshot_change: Option<crate::report::model::SnapshotChange>,
    /// Console requests sent in the background (chaos steps), awaited by a later step.
    pub background: Vec<tokio::task::JoinHandle<Reply>>,
    /// This scenario's directory (socket, HATCH log, hearth log); removed when the World drops.
    _dir: tempfile::TempDir,
}

impl std::fmt::Debug for PlayWorld {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlayWorld")
            .field("feature", &self.feature)
            .field("scenario", &self.scenario)
            .field("session", &self.options.session)
            .finish_non_exhaustive()
    }
}

impl PlayWorld {
    /// Fails the step on a chain assertion's gap report: the report reaches the run's reports
    /// as data, its text the terminal. `note` is what the step says beside it.
    pub fn fail_on_gap(&mut self, note: Option<String>, report: &crate::chain::GapReport) -> ! {
        self.gap = Some((note.clone(), report.into()));
        match note {
            Some(note) => panic!("{note}\n{report}"),
            None => panic!("{report}"),
        }
    }

    fn new() -> PlayWorld {
        let dir = crate::stack::scratch::create(crate::stack::scratch::Kind::Scenario)
            .expect("create a scenario directory");
        let options = topology::get().stack_options(dir.path().to_owned());
        PlayWorld {
            feature: String::new(),
            scenario: String::new(),
            options,
            stack: None,
            tenant: None,
            faults_services: None,
            start_error: None,
            console: None,
            replies: Vec::new(),
            services: BTreeMap::new(),
            runs: Vec::new(),
            submissions: Vec::new(),
            named_runs: Default::default(),
            provisions: BTreeMap::new(),
            run_views: BTreeMap::new(),
            evidence: Evidence::default(),
            timings: BTreeMap::new(),
            spans: Vec::new(),
            check_problems: Vec::new(),
            started: None,
            test_name: String::new(),
            driver_timings: BTreeMap::new(),
            background: Vec::new(),
            gap: None,
            snapshot_change: None,
            _dir: dir,
        }
    }

    /// The running stack; steps that need one say so plainly when it is missing.
    pub fn stack(&self) -> &crate::stack::Stack {
        self.stack
            .as_ref()
            .expect("no stack is running: start one with `Given a rocky stack`")
    }

    /// The running stack, to fault or stop it (`what`): panics unless the scenario owns it
    /// (see [`crate::stack::shared`]).
    pub fn own_stack(&mut self, what: &str) -> &mut crate::stack::Stack {
        self.stack
            .as_mut()
            .expect("no stack is running: start one with `Given a rocky stack`")
            .own_mut(what)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// The session of the running stack (shared or not), else of the options.
    pub fn session(&self) -> &str {
        match &self.stack {
            Some(s) => &s.session,
            None => &self.options.session,
        }
    }

    /// Whether this scenario's stack is to be shared: the topology shares stacks, no step of
    /// the scenario faults a service, and its options are the topology's (no fault set).
    fn shares_stack(&self) -> bool {
        let topology = topology::get();
        topology.shares_stacks
            && self.faults_services.is_none()
            && crate::stack::shared::configuration(&self.options)
                == crate::stack::shared::configuration(
                    &topology.stack_options(self.options.work_dir.clone()),
                )
    }

    /// Starts this scenario's stack with its (possibly faulted) options, or joins the shared
    /// stack of its configuration when it faults nothing; timed as act 1.
    pub async fn start_stack(&mut self) -> Result<(), crate::stack::StackError> {
        let start = Instant::now();
        let started = if self.shares_stack() {
            crate::stack::shared::join(&self.options).await
        } else {
            crate::stack::Stack::start(&self.options)
                .await
                .map(|s| StackRef::Own(Box::new(s)))
        };
        self.add_time(Act::Spawn, start);
        let stack = started?;
        if stack.is_shared() {
            self.tenant = Some(Tenant::new());
        }
        self.console = Some(
            ConsoleClient::new(stack.console_url.clone())
                .with_token(stack.admin_token.clone())
                .with_deadline(CALL_DEADLINE),
        );
        self.stack = Some(stack);
        Ok(())
    }

    /// Adds the time since `start` to `act`.
    pub fn add_time(&mut self, act: Act, start: Instant) {
        *self.timings.entry(act).or_default() += start.elapsed();
        if let Some(began) = self.started {
            let ms = |t: Instant| t.saturating_duration_since(began).as_millis() as u64;
            self.spans.push(crate::report::model::ActSpan {
                act: act.name().to_owned(),
                start_ms: ms(start),
                end_ms: ms(Instant::now()),
            });
        }
    }

    /// Sends a request to the console as `token` and records the answer.
    pub async fn call(
        &mut self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
        token: Option<String>,
    ) -> Reply {
        let client = self
            .console
            .as_ref()
            .expect("no stack is running: start one with `Given a rocky stack`");
        let reply = Reply::of(client, method, path, body, token).await;
        self.record(reply)
    }

    /// The console's client, calling as the admin: what steps that are not about raw
    /// requests call through.
    pub fn console(&self) -> ConsoleClient {
        self.console
            .clone()
            .expect("no stack is running: start one with `Given a rocky stack`")
    }

    /// Records the answer to a typed call (see [`PlayWorld::console`]).
    pub fn record(&mut self, reply: impl Into<Reply>) -> Reply {
        let reply = self.unshare(reply.into());
        self.note(&reply);
        self.replies.push(reply.clone());
        reply
    }

    /// The name workspace `name` has on the console and in hearth: on a shared stack, the
    /// tenant's ([`Tenant::slug`]); on a stack of its own, `name`.
    pub fn slug(&self, name: &str) -> String {
        match &self.tenant {
            Some(t) => t.slug(name),
            None => name.to_owned(),
        }
    }

    /// A raw request body with its workspace names as the console knows them.
    pub fn slug_in_body(&self, body: &str) -> String {
        match &self.tenant {
            Some(t) => t.slug_in_body(body),
            None => body.to_owned(),
        }
    }

    /// A raw request path with its workspace name as the console knows it.
    pub fn slug_in_path(&self, path: &str) -> String {
        match &self.tenant {
            Some(t) => t.slug_in_path(path),
            None => path.to_owned(),
        }
    }

    /// `text` with the scenario's own workspace names (see [`Tenant::unshare`]).
    pub fn unshare_text(&self, text: &str) -> String {
        match &self.tenant {
            Some(t) => t.unshare(text).into_owned(),
            None => text.to_owned(),
        }
    }

    /// An answer with the scenario's own workspace names in it, as on a stack of its own.
    fn unshare(&self, mut reply: Reply) -> Reply {
        if let Some(t) = &self.tenant {
            reply.request = t.unshare(&reply.request).into_owned();
            t.unshare_value(&mut reply.body);
        }
        reply
    }

    /// Names workspace `slug` as one this scenario made (however it is provisioned).
    pub fn name_workspace(&mut self, slug: &str) {
        self.services.entry(slug.to_owned()).or_default();
    }

    /// Keeps the service endpoints a provision's answer reports, foreground or background.
    fn note(&mut self, reply: &Reply) {
        let provision = format!(
            "{} {}",
            reqwest::Method::POST,
            rocky::api::console::paths::WORKSPACES
        );
        if reply.request != provision {
            return;
        }
        let Some(deployment) = reply.json::<DeploymentRef>() else {
            return;
        };
        self.services
            .entry(deployment.slug)
            .or_default()
            .extend(deployment.services.into_iter().map(|s| s.endpoint));
    }

    /// Makes a typed call (as the admin, see [`PlayWorld::console`]) on a task of its own;
    /// the answer is collected by [`PlayWorld::finish_background`]. Aborting the task hangs up.
    pub fn call_in_background<F, Fut>(&mut self, call: F) -> &tokio::task::JoinHandle<Reply>
    where
        F: FnOnce(ConsoleClient) -> Fut,
        Fut: std::future::Future<Output = Result<Answer, ConsoleError>> + Send + 'static,
    {
        let answer = call(self.console());
        self.background
            .push(tokio::spawn(async move { Reply::from(answer.await) }));
        self.background.last().expect("just pushed")
    }

    /// Waits for every background request and records their answers in the order sent.
    pub async fn finish_background(&mut self) {
        for task in std::mem::take(&mut self.background) {
            match task.await {
                Ok(reply) => {
                    let reply = self.unshare(reply);
                    self.note(&reply);
                    self.replies.push(reply)
                }
                Err(e) if e.is_cancelled() => {}
                Err(e) => panic!("a background request panicked: {e}"),
            }
        }
    }

    /// The admin's token.
    pub fn admin(&self) -> Option<String> {
        Some(self.stack().admin_token.clone())
    }

    /// This scenario's HATCH records, read back from the JSONL file the console wrote: on a
    /// shared stack, the records of its own workspaces alone, with the names it used (their
    /// `seq` is the shared log's; a snapshot numbers them from 1).
    pub fn chain(&self) -> Vec<Record> {
        let records = match &self.stack {
            Some(s) => rocky::hatch::read_file(&s.hatch_path).unwrap_or_else(|e| {
                panic!(
                    "failed to read the HATCH log {}: {e}",
                    s.hatch_path.display()
                )
            }),
            None => Vec::new(),
        };
        match &self.tenant {
            Some(tenant) => tenant.slice(records),
            None => records,
        }
    }

    /// Evidence for a gap report: what the harness saw, collected now.
    pub async fn collect_evidence(&self) -> Evidence {
        let mut ev = self.evidence.clone();
        if let Some(err) = &self.start_error {
            ev.add("stack start", err.clone());
        }
        for r in self
            .replies
            .iter()
            .filter(|r| r.status >= 400 || r.status == 0)
        {
            ev.add(
                format!("console {}", r.request),
                format!("{} {}", r.status, r.error_text()),
            );
        }
        for (run, view) in &self.run_views {
            if let Some(first) = view.rejected_frames.first() {
                ev.add(
                    format!("run {run}"),
                    format!(
                        "{} KAHN frames rejected; first: {}",
                        view.rejected_total, first.reason
                    ),
                );
            }
            if let Some(first) = view.unrecorded.first() {
                ev.add(
                    format!("run {run}"),
                    format!(
                        "{} records not appended to the HATCH log; first: {}: {}",
                        view.unrecorded.len(),
                        first.kind,
                        first.error
                    ),
                );
            }
            if let Some(e) = &view.error {
                // The status as JSON (quoted), as the evidence has always shown it.
                ev.add(
                    format!("run {run}"),
                    format!(
                        "ended {}: {e}",
                        serde_json::Value::from(view.status.as_str())
                    ),
                );
            }
        }
        if let Some(stack) = &self.stack {
            let hearth = stack.hearth();
            for slug in self.services.keys() {
                match hearth
                    .status(&self.slug(slug), Duration::from_secs(5))
                    .await
                {
                    Ok(s) => ev.add(
                        format!("hearth status {slug}"),
                        match s.error {
                            Some(e) => format!("{} ({})", s.status, self.unshare_text(&e)),
                            None => s.status.to_string(),
                        },
                    ),
                    Err(e) => ev.add(
                        format!("hearth status {slug}"),
                        self.unshare_text(&e.to_string()),
                    ),
                }
            }
        }
        ev
    }
}

/// The `after` hook: what the scenario saw, as a [`Detail`] for the runner (which prints its
/// summary), with its stack stopped and anything it created removed, even when a step failed.
/// `Err` names what is wrong with the evidence or what the hook had to remove: a scenario whose
/// log does not verify, or that left anything behind, fails for it.
pub async fn finish(world: &mut PlayWorld, failed: bool) -> (Detail, Result<(), String>) {
    let chain = world.chain();
    // Evidence for the report, while the stack can still answer (failures only: it asks hearth).
    let evidence = if failed {
        world.collect_evidence().await.0
    } else {
        Vec::new()
    };
    if !chain.is_empty() {
        refresh_driver_timings(world).await;
    }
    let summary = (!chain.is_empty()).then(|| summary_of(world));
    let mut logs = Vec::new();
    if failed && let Some(stack) = &world.stack {
        // What the stack's own processes said, attached to the failure: hearth's log, and the
        // console's and worker's (their containers' output, or their in-process tracing).
        let hearth = std::fs::read_to_string(&stack.hearth_log).unwrap_or_default();
        let shared = if stack.is_shared() {
            ", shared with the other scenarios that fault no service"
        } else {
            ""
        };
        for (title, log) in [
            (
                format!("hearth ({}{shared})", stack.hearth_log.display()),
                hearth,
            ),
            (format!("console and worker{shared}"), stack.logs()),
        ] {
            let lines: Vec<&str> = log.lines().collect();
            if !lines.is_empty() {
                logs.push((title, lines.join("\n")));
            }
        }
    }
    // Contract §2: the live log verifies (chain, seal, key); its seal is the checkpoint.
    let seal = world.stack.as_ref().map(|s| {
        let name = seal_check::name(
            &world.test_name,
            &world.feature,
            &world.scenario,
            s.services(),
        );
        seal_check::take(&s.hatch_path, &name)
    });
    // hearth removes what it made on exit; whatever is left (a hearth that was killed or
    // forgot a child, a service stuck past the teardown deadline) is removed by the clean-up,
    // found from outside hearth, and fails the scenario.
    let cleanup = match (world.stack.take(), &world.tenant) {
        // A shared stack runs on: the scenario's own workspaces are torn down and looked for.
        (Some(shared @ StackRef::Shared { .. }), Some(tenant)) => {
            crate::stack::leftovers::release_tenant(&shared, tenant, world.services.keys().cloned())
                .await
        }
        (Some(StackRef::Own(stack)), _) => {
            crate::stack::cleanup(Some(*stack), &world.options).await
        }
        (Some(StackRef::Shared { .. }), None) => {
            unreachable!("a shared stack always has a tenant")
        }
        (None, _) => crate::stack::cleanup(None, &world.options).await,
    };
    let leftovers = (!cleanup.removed.is_empty()).then(|| {
        format!(
            "the scenario left {} thing(s) of session {} behind, removed by the after-hook: {}",
            cleanup.removed.len(),
            world.options.session,
            cleanup.removed.join("; ")
        )
    });
    let mut notes = cleanup.notes;
    if let Some(l) = &leftovers {
        notes.push(format!("cleanup: {l}"));
    }
    let detail = Detail {
        chain: chain.iter().map(chain_event).collect(),
        acts: world.spans.clone(),
        evidence,
        logs,
        summary,
        notes,
        gap: world.gap.take(),
        snapshot: world.snapshot_change.take(),
    };
    // After the stop: the final log still verifies and extends the checkpoint.
    let unverified = match seal.map(seal_check::verify) {
        Some(Err(problem)) => Some(problem),
        _ => None,
    };
    let verdict = match (unverified, leftovers) {
        (None, None) => Ok(()),
        (Some(one), None) | (None, Some(one)) => Err(one),
        (Some(log), Some(left)) => Err(format!("{log}\n{left}")),
    };
    (detail, verdict)
}

/// hearth's engine time for every workspace the scenario named, read now (after its last
/// act), so the summary's "workspace engine calls" count each workspace whole, teardown
/// included, and not only those a step asked hearth about. A hearth that does not answer (one
/// a scenario killed) leaves what was read before.
async fn refresh_driver_timings(world: &mut PlayWorld) {
    let Some(stack) = &world.stack else {
        return;
    };
    let hearth = stack.hearth();
    for slug in world.services.keys().cloned().collect::<Vec<_>>() {
        if let Ok(report) = hearth
            .status(&world.slug(&slug), DRIVER_TIMINGS_DEADLINE)
            .await
        {
            world.driver_timings.insert(slug, report.timings);
        }
    }
}

/// How long the after-hook waits for hearth's figures of one workspace.
const DRIVER_TIMINGS_DEADLINE: Duration = Duration::from_secs(2);

/// The figures of the scenario's printed summary: act times, hearth's driver time and, on the
/// Docker driver, how much of the scenario was Docker work.
fn summary_of(world: &PlayWorld) -> Summary {
    let stack = world.stack.as_ref().map(|stack| {
        let docker_driver = stack.driver == rocky::hearth::DriverKind::LocalDocker;
        let containers = stack.in_containers();
        // Act 1 on the container topology is Docker work too: the stack's network and the
        // console and worker containers (until their ready lines).
        let stack_ms = if containers {
            world
                .timings
                .get(&Act::Spawn)
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        } else {
            0.0
        };
        StackShare {
            driver: stack.driver.as_str().to_owned(),
            services: if stack.is_shared() {
                format!("{} (shared)", stack.services())
            } else {
                stack.services().to_owned()
            },
            docker_stack_ms: docker_driver.then_some(stack_ms),
        }
    });
    Summary {
        feature: world.feature.clone(),
        scenario: world.scenario.clone(),
        timings: world
            .timings
            .iter()
            .map(|(act, d)| (act.number(), act.name().to_owned(), *d))
            .collect(),
        driver_ms: world.driver_timings.values().map(|t| t.driver_ms).sum(),
        health_ms: world.driver_timings.values().map(|t| t.health_ms).sum(),
        stack,
    }
}

/// A HATCH record as the report shows it: kind, workspace, and the detail that tells it apart.
fn chain_event(r: &Record) -> crate::report::model::ChainEvent {
    let detail = [
        r.subject.node_id.clone(),
        r.data.get("attempts").map(|a| format!("attempts {a}")),
        r.data
            .get("status")
            .and_then(|s| s.as_str())
            .map(|s| format!("status {s}")),
        r.data
            .get("reason")
            .and_then(|s| s.as_str())
            .map(str::to_owned),
    ]
    .into_iter()
    .flatten()
    .collect::<Vec<_>>()
    .join(", ");
    crate::report::model::ChainEvent {
        seq: r.seq,
        kind: r.kind.to_string(),
        workspace: r.subject.workspace.clone(),
        detail: (!detail.is_empty()).then_some(detail),
    }
}
