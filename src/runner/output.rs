//! The scenario writer: cucumber's events, buffered per scenario and printed as one whole
//! block when the scenario finishes, so concurrent scenarios never interleave. It also
//! records each attempt (verdict, time, first failure, the block) for the run's reports.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cucumber::event::{self, Cucumber, Feature, Rule, Scenario, Step};
use cucumber::{Event, Writer, cli, gherkin, parser};

use super::catalogue::{Key, key_of};
use super::record::{Attempt, unix_ns_now};
use crate::report::detail::Detail;
use crate::report::model::{StepReport, StepStatus};

/// One finished attempt, with the scenario it belongs to and what its World handed over.
#[derive(Clone, Debug)]
pub struct Finished {
    pub key: Key,
    pub attempt: Attempt,
    pub detail: Option<Detail>,
}

/// Where the `after` hook hands each scenario's [`Detail`] to the writer: sent before the
/// scenario's `Finished` event, so the writer always has it when it prints the block.
pub type Details = std::sync::mpsc::Sender<(Key, Detail)>;

/// Prints one libtest JSON line on stdout (`--format json`): the suite and test events IDEs
/// read, in libtest's own shape.
pub fn libtest_line(line: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// A scenario being written.
struct Block {
    started: Instant,
    started_unix_ns: u64,
    text: String,
    failed: bool,
    failure: Option<String>,
    /// The steps so far; the last one may still be running.
    steps: Vec<StepReport>,
    /// When the running step started.
    step_started: Option<Instant>,
    hook_failure: Option<String>,
}

/// Writes whole scenario blocks to stdout (stderr when stdout carries libtest JSON).
pub struct BlockWriter {
    /// Scenarios in flight.
    open: HashMap<Key, Block>,
    /// Every finished attempt, in finishing order.
    pub finished: Arc<Mutex<Vec<Finished>>>,
    /// Test names by key, for libtest JSON lines and progress.
    names: Arc<HashMap<Key, String>>,
    /// `--format json`: libtest's JSON lines on stdout.
    json: bool,
    /// Parse errors of feature files.
    pub parse_errors: Arc<Mutex<Vec<String>>>,
    /// Scenarios expected in this pass, for the `[n/total]` progress.
    total: usize,
    done: usize,
    /// What the `after` hooks handed over, and what of it no `Finished` event took yet.
    details: std::sync::mpsc::Receiver<(Key, Detail)>,
    received: HashMap<Key, Detail>,
}

impl BlockWriter {
    /// A writer for `total` scenarios, and the sender their `after` hooks hand details to.
    pub fn new(
        names: Arc<HashMap<Key, String>>,
        json: bool,
        total: usize,
    ) -> (BlockWriter, Details) {
        let (send, details) = std::sync::mpsc::channel();
        let writer = BlockWriter {
            open: HashMap::new(),
            finished: Arc::default(),
            names,
            json,
            parse_errors: Arc::default(),
            total,
            done: 0,
            details,
            received: HashMap::new(),
        };
        (writer, send)
    }

    fn on_scenario<W>(
        &mut self,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
        ev: &Scenario<W>,
    ) {
        let key = key_of(feature, scenario);
        match ev {
            Scenario::Started => {
                if self.json {
                    let name = self.names.get(&key).cloned().unwrap_or_default();
                    libtest_line(
                        &serde_json::json!({"type": "test", "event": "started", "name": name}),
                    );
                }
                let at = feature
                    .path
                    .as_ref()
                    .map(|p| format!("{}:{}", p.display(), scenario.position.line))
                    .unwrap_or_default();
                self.open.insert(
                    key,
                    Block {
                        started: Instant::now(),
                        started_unix_ns: unix_ns_now(),
                        text: format!(
                            "Feature: {}\n  {}: {}   ({at})\n",
                            feature.name, scenario.keyword, scenario.name
                        ),
                        failed: false,
                        failure: None,
                        steps: Vec::new(),
                        step_started: None,
                        hook_failure: None,
                    },
                );
            }
            Scenario::Background(step, ev) => self.on_step(&key, step, ev, true),
            Scenario::Step(step, ev) => self.on_step(&key, step, ev, false),
            Scenario::Hook(which, event::Hook::Failed(_, info)) => {
                let msg = format!("{which:?} hook failed: {}", panic_text(info));
                if let Some(b) = self.open.get_mut(&key) {
                    b.text.push_str(&format!("   ✘  {msg}\n"));
                    b.failed = true;
                    b.hook_failure.get_or_insert(msg.clone());
                    b.failure.get_or_insert(msg);
                }
            }
            Scenario::Hook(..) => {}
            Scenario::Log(msg) => {
                if let Some(b) = self.open.get_mut(&key) {
                    b.text.push_str(&indent(msg, "      "));
                }
            }
            Scenario::Finished => self.finish(key),
        }
    }

    fn on_step<W>(&mut self, key: &Key, step: &gherkin::Step, ev: &Step<W>, background: bool) {
        let Some(b) = self.open.get_mut(key) else {
            return;
        };
        let ok_mark = if background { "✔>" } else { "✔ " };
        let text = format!("{}{}", step.keyword, step.value);
        let line = u32::try_from(step.position.line).unwrap_or(u32::MAX);
        let open = b
            .steps
            .last()
            .is_some_and(|s| s.line == line && b.step_started.is_some());
        if !open {
            b.step_started = Some(Instant::now());
            b.steps.push(StepReport {
                keyword: step.keyword.clone(),
                text: step.value.clone(),
                line,
                background,
                status: StepStatus::Passed,
                started_unix_ns: unix_ns_now(),
                duration_ns: 0,
                error: None,
            });
        }
        if let Step::Started = ev {
            return;
        }
        // The step's result, on the report its `Started` opened (one step runs at a time per
        // scenario).
        let duration = b.step_started.take().map_or(0, |t| {
            u64::try_from(t.elapsed().as_nanos()).unwrap_or(u64::MAX)
        });
        if let Some(s) = b.steps.last_mut() {
            s.duration_ns = duration;
            match ev {
                Step::Started | Step::Passed(..) => {}
                Step::Skipped => s.status = StepStatus::Undefined,
                Step::Failed(_, _, _, err) => {
                    s.status = StepStatus::Failed;
                    s.error = Some(err.to_string());
                }
            }
        }
        match ev {
            Step::Started => {}
            Step::Passed(..) => b.text.push_str(&format!("   {ok_mark} {text}\n")),
            Step::Skipped => {
                b.text.push_str(&format!(
                    "   ?   {text}\n      (no step definition matches)\n"
                ));
                b.failed = true;
                b.failure
                    .get_or_insert_with(|| format!("{text}: no step definition matches"));
            }
            Step::Failed(_, _, _, err) => {
                b.text.push_str(&format!("   ✘  {text}\n"));
                b.text.push_str(&indent(&err.to_string(), "      "));
                b.failed = true;
                b.failure.get_or_insert_with(|| format!("{text}: {err}"));
            }
        }
    }

    fn finish(&mut self, key: Key) {
        let Some(mut b) = self.open.remove(&key) else {
            return;
        };
        let duration = b.started.elapsed();
        let name = self.names.get(&key).cloned().unwrap_or_default();
        self.received.extend(self.details.try_iter());
        let detail = self.received.remove(&key);
        if let Some(detail) = &detail {
            b.text.push_str(&world_block(detail));
        }
        self.done += 1;
        b.text.push_str(&format!(
            "[{}/{}] {} {name} ({duration:.1?})\n",
            self.done,
            self.total,
            if b.failed { "✘" } else { "✔" },
        ));
        if self.json {
            // libtest's JSON line per test; the readable block goes to stderr.
            let line = serde_json::json!({
                "type": "test",
                "event": if b.failed { "failed" } else { "ok" },
                "name": name,
                "exec_time": duration.as_secs_f64(),
                "stdout": b.text,
            });
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = std::io::stderr().lock().write_all(b.text.as_bytes());
        } else {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(b.text.as_bytes());
            let _ = out.flush();
        }
        self.finished.lock().expect("results lock").push(Finished {
            key,
            attempt: Attempt {
                passed: !b.failed,
                duration,
                failure: b.failure,
                output: b.text,
                started_unix_ns: b.started_unix_ns,
                steps: b.steps,
                hook_failure: b.hook_failure,
            },
            detail,
        });
    }
}

/// The suite's Docker work against its wall, once per run on the Docker driver: the
/// workspaces' own engine calls (hearth's driver time less its health checks, every
/// scenario's workspaces whole), summed and the longest scenario's, and the suite's wall as a
/// multiple of that longest: no schedule can end the suite before its longest scenario's
/// engine calls, so the multiple is the suite's overhead over its floor. `None` when no
/// scenario ran on Docker.
pub fn docker_share_line(details: &[&Detail], wall: std::time::Duration) -> Option<String> {
    let engine: Vec<f64> = details
        .iter()
        .filter_map(|d| d.summary.as_ref())
        .filter(|s| {
            s.stack
                .as_ref()
                .is_some_and(|st| st.docker_stack_ms.is_some())
        })
        .map(|s| (s.driver_ms - s.health_ms).max(0.0))
        .collect();
    let longest = engine.iter().copied().fold(0.0_f64, f64::max);
    if engine.is_empty() || longest <= 0.0 {
        return None;
    }
    let total: f64 = engine.iter().sum();
    Some(format!(
        "rocky-e2e: Docker: the workspaces' engine calls {:.1}s summed over {} scenarios, the longest scenario's {:.1}s; the suite's wall {:.1}s = {:.2} × that longest",
        total / 1000.0,
        engine.len(),
        longest / 1000.0,
        wall.as_secs_f64(),
        wall.as_secs_f64() * 1000.0 / longest,
    ))
}

/// The World's own block, printed inside the scenario's: its chain, act times and driver
/// shares, the tails of the stack's logs (failures), and what the clean-up said.
pub fn world_block(d: &Detail) -> String {
    let mut text = String::new();
    if let Some(s) = &d.summary {
        text.push_str(&format!(
            "  ┌ {} › {}\n  │ HATCH chain:\n",
            s.feature, s.scenario
        ));
        for (seq, kind) in d.chain_rows() {
            text.push_str(&format!("  │   {seq:>3} {kind}\n"));
        }
        let total: std::time::Duration = s.timings.iter().map(|t| t.2).sum();
        text.push_str("  │ timings (act 1 = stack start):");
        for (number, name, d) in &s.timings {
            text.push_str(&format!(" {number} {name}={d:.1?}"));
        }
        text.push_str(&format!(" total={total:.1?}\n"));
        let (driver, health) = (s.driver_ms, s.health_ms);
        let total_ms = total.as_secs_f64() * 1000.0;
        if driver > 0.0 {
            text.push_str(&format!(
                "  │ hearth driver: {driver:.1}ms of {total_ms:.1}ms ({:.0}%): engine/process calls {:.1}ms ({:.0}%), health checks {health:.1}ms\n",
                100.0 * driver / total_ms,
                driver - health,
                100.0 * (driver - health) / total_ms,
            ));
        }
        if let Some(stack) = &s.stack {
            if let Some(stack_ms) = stack.docker_stack_ms
                && total_ms > 0.0
            {
                let engine = driver - health + stack_ms;
                text.push_str(&format!(
                    "  │ Docker: {engine:.1}ms of {total_ms:.1}ms ({:.0}%) = workspace engine calls {:.1}ms + stack containers {stack_ms:.1}ms\n",
                    100.0 * engine / total_ms,
                    driver - health,
                ));
            }
            text.push_str(&format!(
                "  └ driver {}, console and worker {}\n",
                stack.driver, stack.services
            ));
        }
    }
    for (title, log) in &d.logs {
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(40)..];
        text.push_str(&format!(
            "  ── {title}: last {} of {} lines ──\n",
            tail.len(),
            lines.len()
        ));
        for l in tail {
            text.push_str(&format!("    {l}\n"));
        }
    }
    for note in &d.notes {
        text.push_str(&format!("  {note}\n"));
    }
    text
}

fn indent(text: &str, by: &str) -> String {
    text.lines().map(|l| format!("{by}{l}\n")).collect()
}

fn panic_text(info: &event::Info) -> String {
    if let Some(s) = info.downcast_ref::<String>() {
        s.clone()
    } else if let Some(s) = info.downcast_ref::<&str>() {
        (*s).to_owned()
    } else {
        "(a non-string panic)".to_owned()
    }
}

impl<W: 'static> Writer<W> for BlockWriter {
    type Cli = cli::Empty;

    async fn handle_event(&mut self, event: parser::Result<Event<Cucumber<W>>>, _cli: &Self::Cli) {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                let msg = format!("failed to parse a feature file: {e}");
                eprintln!("rocky-e2e: {msg}");
                self.parse_errors.lock().expect("errors lock").push(msg);
                return;
            }
        };
        if let Cucumber::Feature(feature, ev) = &event.value {
            match ev {
                Feature::Scenario(scenario, ev) => self.on_scenario(feature, scenario, &ev.event),
                Feature::Rule(_, Rule::Scenario(scenario, ev)) => {
                    self.on_scenario(feature, scenario, &ev.event)
                }
                _ => {}
            }
        }
    }
}

impl cucumber::writer::NonTransforming for BlockWriter {}

// Events of concurrent scenarios arrive interleaved; the writer buffers per scenario and
// prints each block whole, which is what normalization would otherwise be for.
impl cucumber::writer::Normalized for BlockWriter {}

#[cfg(test)]
mod tests {
    use super::docker_share_line;
    use crate::report::detail::{Detail, StackShare, Summary};
    use std::time::Duration;

    fn scenario(driver_ms: f64, health_ms: f64, docker: bool) -> Detail {
        Detail {
            summary: Some(Summary {
                driver_ms,
                health_ms,
                stack: Some(StackShare {
                    docker_stack_ms: docker.then_some(1000.0),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// The workspaces' engine calls are hearth's driver time less its health checks; the
    /// wall is set against the longest scenario's, and scenarios off Docker do not count.
    #[test]
    fn the_docker_line_sets_the_wall_against_the_longest_engine_calls() {
        let (a, b, off) = (
            scenario(9000.0, 1000.0, true),
            scenario(4500.0, 500.0, true),
            scenario(50_000.0, 0.0, false),
        );
        assert_eq!(
            docker_share_line(&[&a, &b, &off], Duration::from_secs(12)).as_deref(),
            Some(
                "rocky-e2e: Docker: the workspaces' engine calls 12.0s summed over 2 scenarios, the longest scenario's 8.0s; the suite's wall 12.0s = 1.50 × that longest"
            )
        );
        assert_eq!(docker_share_line(&[&off], Duration::from_secs(12)), None);
        assert_eq!(docker_share_line(&[], Duration::from_secs(12)), None);
    }
}
