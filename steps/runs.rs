//! Steps about RALPH runs: submitting prompts, waiting for the end, checking the outcome.

use std::time::{Duration, Instant};

use cucumber::gherkin::Step;
use cucumber::{then, when};

use super::referents::Meant;
use super::world::PlayWorld;
use crate::chain::Act;
use crate::wait::{Poll, wait_for};
use rocky::api::console::{RunAccepted, RunView, SubmitRequest};
use rocky::kahn::RunStatus;

/// Longest a scenario waits for a run to end (the console's own run deadline is shorter).
const RUN_WAIT: Duration = Duration::from_secs(90);

async fn submit(world: &mut PlayWorld, slug: &str, prompts: Vec<String>, max_iters: Option<u32>) {
    let run = SubmitRequest {
        workspace: world.slug(slug),
        prompts,
        max_ralph_iters: max_iters,
    };
    let console = world.console();
    let start = Instant::now();
    let reply = world.record(console.submit_run(&run).await);
    world.add_time(Act::Submit, start);
    if let Some(accepted) = reply.json::<RunAccepted>() {
        world.runs.push((slug.to_owned(), accepted.run_id));
    }
    world.submissions.push((slug.to_owned(), reply));
    world.named_runs.submitted(world.submissions.len() - 1);
}

#[when(expr = "I submit a run of {int} prompts in workspace {string}")]
async fn submit_n(world: &mut PlayWorld, n: usize, slug: String) {
    let prompts = (1..=n).map(|i| format!("prompt {i}")).collect();
    submit(world, &slug, prompts, None).await;
}

#[when(expr = "I submit a run of {int} prompts in workspace {string} with max_ralph_iters {int}")]
async fn submit_n_iters(world: &mut PlayWorld, n: usize, slug: String, iters: u32) {
    let prompts = (1..=n).map(|i| format!("prompt {i}")).collect();
    submit(world, &slug, prompts, Some(iters)).await;
}

/// The prompt text the mock model reads: `iterations` is a number (converges after that many
/// RALPH iterations) or `never`.
fn with_iterations(prompt: &str, iterations: &str) -> String {
    match iterations.trim() {
        "" | "1" => prompt.to_owned(),
        "never" => format!("{prompt} [ralph:never]"),
        "hold" => format!("{prompt} [ralph:hold]"),
        n => {
            let n: u32 = n
                .parse()
                .unwrap_or_else(|_| panic!("iterations {n:?}: use a number, `never` or `hold`"));
            format!("{prompt} [ralph:converge={n}]")
        }
    }
}

/// Prompts from a table with a `prompt` column and an optional `iterations` column.
fn table_prompts(step: &Step) -> Vec<String> {
    let table = step
        .table
        .as_ref()
        .expect("this step needs a table with a `prompt` column (and optionally `iterations`)");
    let header = &table.rows[0];
    let col = |name: &str| header.iter().position(|h| h.trim() == name);
    let prompt = col("prompt").expect("the table needs a `prompt` column");
    let iterations = col("iterations");
    table
        .rows
        .iter()
        .skip(1)
        .map(|r| with_iterations(&r[prompt], iterations.map_or("", |i| r[i].as_str())))
        .collect()
}

#[when(expr = "I submit a run in workspace {string} with prompts:")]
async fn submit_table(world: &mut PlayWorld, slug: String, step: &Step) {
    let prompts = table_prompts(step);
    submit(world, &slug, prompts, None).await;
}

#[when(expr = "I submit a run in workspace {string} with max_ralph_iters {int} and prompts:")]
async fn submit_table_iters(world: &mut PlayWorld, slug: String, iters: u32, step: &Step) {
    let prompts = table_prompts(step);
    submit(world, &slug, prompts, Some(iters)).await;
}

/// A run definition file under `features/runs/` (YAML).
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunDefinition {
    /// Optional; the console's default applies when absent.
    max_ralph_iters: Option<u32>,
    prompts: Vec<PromptDefinition>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields, untagged)]
enum PromptDefinition {
    Text(String),
    Detailed {
        prompt: String,
        /// A number, or `never`.
        iterations: yaml_serde::Value,
    },
}

#[when(expr = "I submit the run {string} in workspace {string}")]
async fn submit_yaml(world: &mut PlayWorld, file: String, slug: String) {
    let path = crate::layout::current().features.join(&file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("failed to read run definition {}: {e}", path.display()));
    let def: RunDefinition = yaml_serde::from_str(&text)
        .unwrap_or_else(|e| panic!("failed to parse run definition {}: {e}", path.display()));
    let prompts = def
        .prompts
        .into_iter()
        .map(|p| match p {
            PromptDefinition::Text(t) => t,
            PromptDefinition::Detailed { prompt, iterations } => {
                let n = match iterations {
                    yaml_serde::Value::Number(n) => n.to_string(),
                    yaml_serde::Value::String(s) => s,
                    other => panic!(
                        "{}: iterations {other:?}: a number or `never`",
                        path.display()
                    ),
                };
                with_iterations(&prompt, &n)
            }
        })
        .collect();
    submit(world, &slug, prompts, def.max_ralph_iters).await;
}

/// The step that submits a run, for messages about steps used before it.
const SUBMIT_STEP: &str = "When I submit a run of {int} prompts in workspace {string}";

/// The step that names a run right after it is submitted, for messages about runs the
/// workspace does not tell apart.
const NAME_STEP: &str = "Then the run is accepted";

/// The run a step means: with `slug`, the last submission in that workspace (which the step
/// then names); without, the run the scenario last named. Where several could be meant the
/// step fails naming each: with the workspace-scoped step to use instead (`scoped`, with
/// `{workspace}` for the slug) when the candidates are in workspaces of their own, else with
/// how to name each run as it is submitted.
fn referent(world: &mut PlayWorld, slug: Option<&str>, scoped: &str) -> usize {
    let workspaces: Vec<&str> = world.submissions.iter().map(|(w, _)| w.as_str()).collect();
    match world.named_runs.meant(slug, &workspaces) {
        Meant::One(index) => index,
        Meant::Nothing => match slug {
            Some(s) => panic!(
                "no run was submitted in workspace {s:?}: submit one first with `{SUBMIT_STEP}`"
            ),
            None => panic!("no run was submitted: submit one first with `{SUBMIT_STEP}`"),
        },
        Meant::InWorkspaces(several) => {
            let names: Vec<String> = several.iter().map(|&i| describe(world, i)).collect();
            let (last_slug, _) = &world.submissions[*several.last().expect("several")];
            panic!(
                "\"the run\" could mean {}: say which, e.g. `{}`",
                names.join(" or "),
                scoped.replace("{workspace}", last_slug)
            )
        }
        Meant::Alike {
            all,
            workspace,
            alike,
        } => {
            let advice = format!(
                "they were submitted in workspace {workspace:?} one after the other, with no step \
                 naming one in between. Name each run right after submitting it, before \
                 submitting the next, e.g. `{NAME_STEP}`"
            );
            let alike: Vec<String> = alike.iter().map(|&i| short(world, i)).collect();
            match slug {
                Some(_) => panic!(
                    "\"the run\" in workspace {workspace:?} could mean {}: {advice}",
                    alike.join(" or ")
                ),
                None => {
                    let all: Vec<String> = all.iter().map(|&i| describe(world, i)).collect();
                    panic!(
                        "\"the run\" could mean {}, and the workspace-scoped step would not tell \
                         {} apart: {advice}",
                        all.join(" or "),
                        alike.join(" and ")
                    )
                }
            }
        }
    }
}

/// `run r-1 in workspace "one"`, or `the refused submission in workspace "one"`.
fn describe(world: &PlayWorld, index: usize) -> String {
    format!(
        "{} in workspace {:?}",
        short(world, index),
        world.submissions[index].0
    )
}

/// `run r-1`, or `the refused submission`.
fn short(world: &PlayWorld, index: usize) -> String {
    match world.submissions[index].1.json::<RunAccepted>() {
        Some(RunAccepted { run_id: id }) => format!("run {id}"),
        None => "the refused submission".to_owned(),
    }
}

/// The submission a step means (see [`referent`]).
fn submission(world: &mut PlayWorld, slug: Option<&str>, scoped: &str) -> super::world::Reply {
    let index = referent(world, slug, scoped);
    world.submissions[index].1.clone()
}

/// The id of the run a step means (see [`referent`]); a refused submission is named with what
/// the console said.
fn accepted_run(world: &mut PlayWorld, slug: Option<&str>, scoped: &str) -> String {
    let reply = submission(world, slug, scoped);
    match reply.json::<RunAccepted>() {
        Some(accepted) => accepted.run_id,
        None => panic!(
            "the run was not accepted: {} answered {} ({})",
            reply.request,
            reply.status,
            reply.error_text()
        ),
    }
}

/// The run id of "the run" for steps in other files (the chaos steps).
pub fn the_run(world: &mut PlayWorld, scoped: &str) -> String {
    accepted_run(world, None, scoped)
}

fn assert_accepted(reply: &super::world::Reply) {
    assert_eq!(
        reply.status,
        202,
        "{} answered {} ({})",
        reply.request,
        reply.status,
        reply.error_text()
    );
}

#[then("the run is accepted")]
async fn accepted(world: &mut PlayWorld) {
    let reply = submission(
        world,
        None,
        r#"Then the run in workspace "{workspace}" is accepted"#,
    );
    assert_accepted(&reply);
}

#[then(expr = "the run in workspace {string} is accepted")]
async fn accepted_in(world: &mut PlayWorld, slug: String) {
    assert_accepted(&submission(world, Some(&slug), ""));
}

#[when("the run ends")]
async fn run_ends(world: &mut PlayWorld) {
    let run_id = accepted_run(
        world,
        None,
        r#"When the run in workspace "{workspace}" ends"#,
    );
    wait_for_end(world, run_id).await;
}

#[when(expr = "the run in workspace {string} ends")]
async fn run_in_ends(world: &mut PlayWorld, slug: String) {
    let run_id = accepted_run(world, Some(&slug), "");
    wait_for_end(world, run_id).await;
}

async fn wait_for_end(world: &mut PlayWorld, run_id: String) {
    let console = world.console();
    let start = Instant::now();
    let ended = wait_for(
        format!("run {run_id} did not end"),
        RUN_WAIT,
        // Long-poll: the console answers as soon as the run ends, or after `wait`.
        Duration::ZERO,
        async || {
            let reply = world.record(console.run(&run_id, Some("30s")).await);
            assert_eq!(
                reply.status,
                200,
                "GET run {run_id}: {}",
                reply.error_text()
            );
            let view: RunView = reply
                .json()
                .unwrap_or_else(|| panic!("GET run {run_id}: not a run: {}", reply.body));
            let status = view.status;
            world.run_views.insert(run_id.clone(), view);
            match status {
                RunStatus::Running => Poll::Pending(status.to_string()),
                _ => Poll::Ready(()),
            }
        },
    )
    .await;
    if ended.is_err() {
        panic!("run {run_id} did not end within {RUN_WAIT:?}");
    }
    world.add_time(Act::Stream, start);
}

/// A run view as the console sent it (JSON), for messages.
fn shown<T: serde::Serialize>(view: &T) -> serde_json::Value {
    serde_json::to_value(view).expect("a view serialises")
}

/// The run a step means (in `slug`, when given) and the view the console gave when it ended.
fn run_view(world: &mut PlayWorld, slug: Option<&str>, scoped: &str) -> (String, RunView) {
    let index = referent(world, slug, scoped);
    let run_id = accepted_run(world, slug, scoped);
    let view = world.run_views.get(&run_id).cloned().unwrap_or_else(|| {
        let slug = &world.submissions[index].0;
        // The scoped step when the scenario has runs in more than one workspace.
        let several = world.submissions.iter().any(|(w, _)| w != slug);
        let wait = if several {
            format!("When the run in workspace \"{slug}\" ends")
        } else {
            "When the run ends".to_owned()
        };
        panic!("run {run_id} has not ended yet: wait for it first with `{wait}`")
    });
    (run_id, view)
}

fn check_node(view: &RunView, run_id: &str, node: usize, attempts: u32, outcome: &str) {
    let n = view.nodes.get(node.saturating_sub(1));
    assert_eq!(
        (
            n.map(|n| u64::from(n.attempts)),
            n.map(|n| n.status.as_str())
        ),
        (Some(u64::from(attempts)), Some(outcome)),
        "node {node} of run {run_id}: {}",
        n.map_or(serde_json::Value::Null, shown)
    );
}

#[then(expr = "node {int} of the run needed {int} RALPH iterations and {word}")]
async fn node_attempts(world: &mut PlayWorld, node: usize, attempts: u32, outcome: String) {
    let (run_id, view) = run_view(
        world,
        None,
        &format!(
            r#"Then node {node} of the run in workspace "{{workspace}}" needed {attempts} RALPH iterations and {outcome}"#
        ),
    );
    check_node(&view, &run_id, node, attempts, &outcome);
}

#[then(
    expr = "node {int} of the run in workspace {string} needed {int} RALPH iterations and {word}"
)]
async fn node_attempts_in(
    world: &mut PlayWorld,
    node: usize,
    slug: String,
    attempts: u32,
    outcome: String,
) {
    let (run_id, view) = run_view(world, Some(&slug), "");
    check_node(&view, &run_id, node, attempts, &outcome);
}

#[then(expr = "the run status is {string}")]
async fn run_status(world: &mut PlayWorld, status: String) {
    let (run_id, view) = run_view(
        world,
        None,
        &format!(r#"Then the run status in workspace "{{workspace}}" is "{status}""#),
    );
    assert_eq!(
        view.status.as_str(),
        status.as_str(),
        "run {run_id}: {}",
        shown(&view)
    );
}

#[then(expr = "the run ended because {string}")]
async fn run_reason(world: &mut PlayWorld, reason: String) {
    // No workspace-scoped form: scope the run first with `When the run in workspace … ends`.
    let (run_id, view) = run_view(
        world,
        None,
        r#"When the run in workspace "{workspace}" ends"#,
    );
    assert_eq!(
        view.error.as_deref(),
        Some(reason.as_str()),
        "the reason run {run_id} ended: {}",
        shown(&view)
    );
}

#[then(expr = "the run status in workspace {string} is {string}")]
async fn run_status_in(world: &mut PlayWorld, slug: String, status: String) {
    let (run_id, view) = run_view(world, Some(&slug), "");
    assert_eq!(
        view.status.as_str(),
        status.as_str(),
        "run {run_id}: {}",
        shown(&view)
    );
}
