//! The invariants (contract §2, §5, §9), checked after every step against the real processes
//! and the HATCH log:
//!
//! - every status agrees with the model and with what exists (the console's, hearth's, the
//!   service processes and their health routes);
//! - the step appended exactly the lifecycle records the model says — so every refused action
//!   left no record — and one decommission pair per teardown;
//! - nothing about a workspace is recorded after its `hearth.decommissioned`; its runs ended
//!   before its `hearth.decommission_started`; every run record follows its `ralph.run.started`
//!   and precedes its one `ralph.run.ended`;
//! - no run is executing at the worker that the console no longer follows (so the worker's
//!   slots come back), and none for a workspace torn down;
//! - the log verifies with its seal under its key, extending the checkpoint (the seal) kept
//!   after the previous step.

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use rocky::hatch::{Checkpoint, EventKind, Record};

use super::model::{Expect, Model, Ws};
use super::ops::{RunKind, SLUGS};
use super::stack::Stack;

/// Microseconds spent in the log, status and slot checks (`--profile`).
pub static SECTIONS: [std::sync::atomic::AtomicU64; 3] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// How often (in steps) the whole log goes through `rocky::hatch::verify_against`.
const FULL_EVERY: u64 = 20;

/// Takes the HATCH writer's append lock on `file` shared, waiting for the writer (an
/// open-file-description record lock on the log's first byte, `rocky::hatch`'s `lock`).
fn append_lock_shared(file: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `flock` is plain data; zeroed is a valid value (OFD locks need l_pid = 0).
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_RDLCK as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = 0;
    lock.l_len = 1;
    loop {
        // SAFETY: a valid descriptor for as long as `file` lives, and a valid `flock`.
        if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLKW, &mut lock) } == 0 {
            return Ok(());
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// A broken invariant: which, and the evidence.
#[derive(Clone, Debug)]
pub struct Violation {
    pub check: &'static str,
    pub detail: String,
}

impl Violation {
    pub fn new(check: &'static str, detail: impl Into<String>) -> Violation {
        Violation {
            check,
            detail: detail.into(),
        }
    }
}

/// Polls `cond` until it holds, for at most `within`; the violation names `what`.
pub async fn wait_for<F, Fut>(what: &str, within: Duration, mut cond: F) -> Result<(), Violation>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<bool, Violation>>,
{
    let until = Instant::now() + within;
    let mut pause = Duration::from_millis(2);
    loop {
        if cond().await? {
            return Ok(());
        }
        if Instant::now() >= until {
            return Err(Violation::new(
                "settle",
                format!("waited {within:?} for {what}"),
            ));
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// One run as the log tells it.
#[derive(Debug)]
struct RunTrack {
    ws: String,
    prompts: u64,
    nodes: u64,
    ended: Option<String>,
}

/// What the checks remember between steps.
#[derive(Default)]
pub struct Checker {
    /// Bytes of the log already read.
    offset: u64,
    /// Every record's hash, by seq - 1.
    hashes: Vec<String>,
    /// Calls of `read_log` so far; every `FULL_EVERY`th verifies the whole file too.
    calls: u64,
    /// The next `read_log` verifies the whole file (the end of a sequence).
    pub full_next: bool,
    /// The seal after the previous step: the log must extend it.
    checkpoint: Option<Checkpoint>,
    runs: HashMap<String, RunTrack>,
    /// Per slug: its `hearth.decommissioned` is the last thing recorded about it (until a new
    /// `hearth.provisioning_started`).
    closed: [bool; SLUGS.len()],
    /// The run kinds, from the submissions' answers.
    pub kinds: HashMap<String, RunKind>,
    /// Per slug: the service processes (pid, start time) seen while it was ready.
    procs: [Vec<(u32, u64)>; SLUGS.len()],
    /// Runs the log shows open at their workspace's `hearth.decommission_started` (its seq):
    /// each must have ended with its missing records on its view.
    suspects: Vec<(u64, String, String)>,
}

fn slug_index(s: &str) -> Option<usize> {
    SLUGS.iter().position(|x| *x == s)
}

/// `(state, start time)` of process `pid`, from `/proc/<pid>/stat`; `None` when gone.
fn proc_stat(pid: u32) -> Option<(char, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields after the command: state is field 3 of stat, starttime field 22.
    Some((
        fields.first()?.chars().next()?,
        fields.get(19)?.parse().ok()?,
    ))
}

fn alive(pid: u32, start: u64) -> bool {
    proc_stat(pid).is_some_and(|(state, s)| s == start && state != 'Z' && state != 'X')
}

impl Checker {
    /// Every check after one step. `expect` is the model's word on the step, `answers` what the
    /// stack answered, `model` the state after it.
    pub async fn after_step(
        &mut self,
        stack: &Stack,
        model: &Model,
        expect: &Expect,
        answers: &[u16],
        touched: &[usize],
        probe: &[usize],
    ) -> Result<(), Violation> {
        let errors = std::mem::take(&mut *stack.errors.lock().expect("errors lock"));
        if answers != expect.answers.as_slice() {
            return Err(Violation::new(
                "answers",
                format!(
                    "answered {answers:?}, the model says {:?} (errors: {errors:?})",
                    expect.answers
                ),
            ));
        }
        let t0 = Instant::now();
        let fresh = self.read_log(stack)?;
        SECTIONS[0].fetch_add(
            t0.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let lifecycle: Vec<(String, String)> = fresh
            .iter()
            .filter(|r| r.kind.starts_with("hearth.") || r.kind == EventKind::RunStarted.as_str())
            .map(|r| {
                (
                    r.kind.clone(),
                    r.subject.workspace.clone().unwrap_or_default(),
                )
            })
            .collect();
        let wanted: Vec<(String, String)> = expect
            .records
            .iter()
            .map(|(k, w)| (k.as_str().to_owned(), SLUGS[*w].to_owned()))
            .collect();
        if lifecycle != wanted {
            return Err(Violation::new(
                "records",
                format!("the step appended {lifecycle:?}, the model says {wanted:?}"),
            ));
        }
        self.walk(&fresh)?;
        self.excuse(stack).await?;
        let t1 = Instant::now();
        self.statuses(stack, model, touched, probe).await?;
        SECTIONS[1].fetch_add(
            t1.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        let t2 = Instant::now();
        self.worker_slots(stack).await?;
        SECTIONS[2].fetch_add(
            t2.elapsed().as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        Ok(())
    }

    /// Verifies the log and returns the records appended since the last call. Every call:
    /// the new records chain on (seq, `prev`, `hash` recomputed), the seal is authenticated
    /// under the key and covers a prefix of the chain ending at its `last_hash`, and the log
    /// extends the checkpoint kept at the previous call (same log id, at least its records,
    /// its hash at its seq); the seal is then the next checkpoint. Every `FULL_EVERY` calls,
    /// and at the end, the whole file goes through `rocky::hatch::verify_against` as well.
    fn read_log(&mut self, stack: &Stack) -> Result<Vec<Record>, Violation> {
        use std::io::{Read, Seek};
        let bad = |what: String| Violation::new("seal", what);
        self.calls += 1;
        let seal_path = rocky::hatch::seal_path(&stack.hatch_path);
        if self.calls.is_multiple_of(FULL_EVERY) || self.full_next {
            self.full_next = false;
            let checkpoints: Vec<Checkpoint> = self.checkpoint.iter().cloned().collect();
            rocky::hatch::verify_against(&stack.hatch_path, Some(&stack.seal_key), &checkpoints)
                .map_err(|e| bad(format!("the log does not verify: {e}")))?;
        }
        // Under the writer's append lock, taken shared (as `hatch verify` does): the writer
        // holds it exclusively from the moment it writes a record until a seal covers it or
        // the record is cut off again. Read without it, a record in flight (the run follower
        // appends concurrently with every step) would be taken as part of the log, and a
        // group commit that then fails cuts it back, rightly: it was never answered as done.
        // Closing `lock` releases the lock.
        let lock = std::fs::File::open(&stack.hatch_path)
            .map_err(|e| bad(format!("failed to open the log: {e}")))?;
        append_lock_shared(&lock)
            .map_err(|e| bad(format!("failed to take the append lock (shared): {e}")))?;
        // The seal first: the writer writes a line before it seals it, so the file read after
        // holds at least what this seal covers.
        let seal_bytes =
            std::fs::read(&seal_path).map_err(|e| bad(format!("failed to read the seal: {e}")))?;
        let seal = Checkpoint::parse(&seal_path, &seal_bytes)
            .map_err(|e| bad(format!("the seal is unreadable: {e}")))?;
        seal.seal
            .authenticate(&stack.seal_key)
            .map_err(|e| bad(format!("the seal does not authenticate under its key: {e}")))?;
        let mut file = std::fs::File::open(&stack.hatch_path)
            .map_err(|e| bad(format!("failed to open the log: {e}")))?;
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        if len < self.offset {
            return Err(bad(format!(
                "the log shrank from {} to {len} bytes: records it held were cut",
                self.offset
            )));
        }
        file.seek(std::io::SeekFrom::Start(self.offset))
            .map_err(|e| bad(e.to_string()))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|e| bad(format!("failed to read the log: {e}")))?;
        let mut fresh = Vec::new();
        for line in text.split_inclusive('\n').filter(|l| l.ends_with('\n')) {
            // Only what the seal covers is part of the log: a record written but not yet
            // committed may still be refused (its group commit fails) and cut.
            if self.hashes.len() as u64 >= seal.seal.records {
                break;
            }
            self.offset += line.len() as u64;
            let r: Record = serde_json::from_str(line)
                .map_err(|e| bad(format!("an unreadable record: {e}")))?;
            let prev = self
                .hashes
                .last()
                .map_or(rocky::hatch::GENESIS, String::as_str);
            if r.seq != self.hashes.len() as u64 + 1 || r.prev != prev || r.compute_hash() != r.hash
            {
                return Err(bad(format!(
                    "record {} does not chain on (seq, prev or hash)",
                    r.seq
                )));
            }
            self.hashes.push(r.hash.clone());
            fresh.push(r);
        }
        let covers = |records: u64, hash: &str| -> bool {
            match records {
                0 => hash == rocky::hatch::GENESIS,
                n => self.hashes.get(n as usize - 1).is_some_and(|h| h == hash),
            }
        };
        if !covers(seal.seal.records, &seal.seal.last_hash) {
            return Err(bad(format!(
                "the seal covers {} records ending at {}, the log has {} that do not",
                seal.seal.records,
                seal.seal.last_hash,
                self.hashes.len()
            )));
        }
        if let Some(cp) = &self.checkpoint {
            if cp.seal.log_id != seal.seal.log_id {
                return Err(bad(format!(
                    "another log: log id {} after {}",
                    seal.seal.log_id, cp.seal.log_id
                )));
            }
            if seal.seal.records < cp.seal.records || !covers(cp.seal.records, &cp.seal.last_hash) {
                return Err(bad(format!(
                    "rolled back: the previous checkpoint sealed {} records, the seal now {}",
                    cp.seal.records, seal.seal.records
                )));
            }
        }
        self.checkpoint = Some(seal);
        drop(lock);
        Ok(fresh)
    }

    /// The order of things in the log, record by record.
    fn walk(&mut self, fresh: &[Record]) -> Result<(), Violation> {
        for r in fresh {
            let ws = r.subject.workspace.clone().unwrap_or_default();
            let w = slug_index(&ws);
            let at =
                |what: String| Violation::new("order", format!("seq {} {}: {what}", r.seq, r.kind));
            if r.kind == EventKind::ProvisioningStarted.as_str() {
                if let Some(w) = w {
                    self.closed[w] = false;
                }
                continue;
            }
            if let Some(w) = w
                && self.closed[w]
            {
                return Err(at(format!(
                    "recorded about {ws} after its hearth.decommissioned"
                )));
            }
            let run = r.subject.run_id.clone().unwrap_or_default();
            match r.kind.as_str() {
                k if k == EventKind::DecommissionStarted.as_str() => {
                    // A run whose end the log refused (a group commit another act's fault
                    // failed) must say so on its view: checked by `excuse`.
                    for (id, t) in &self.runs {
                        if t.ws == ws && t.ended.is_none() {
                            self.suspects.push((r.seq, id.clone(), ws.clone()));
                        }
                    }
                }
                k if k == EventKind::Decommissioned.as_str() => {
                    if let Some(w) = w {
                        self.closed[w] = true;
                    }
                }
                k if k == EventKind::RunStarted.as_str() => {
                    let prompts = r.data["prompts"].as_u64().unwrap_or(0);
                    if self.runs.contains_key(&run) {
                        return Err(at(format!("run {run} started twice")));
                    }
                    self.runs.insert(
                        run,
                        RunTrack {
                            ws,
                            prompts,
                            nodes: 0,
                            ended: None,
                        },
                    );
                }
                k if k.starts_with("ralph.node.") || k == EventKind::RunEnded.as_str() => {
                    let kind = self.kinds.get(&run).copied();
                    let Some(t) = self.runs.get_mut(&run) else {
                        return Err(at(format!("about run {run}, never started")));
                    };
                    if let Some(status) = &t.ended {
                        return Err(at(format!("about run {run}, which had ended {status}")));
                    }
                    if k == EventKind::RunEnded.as_str() {
                        let status = r.data["status"].as_str().unwrap_or("?").to_owned();
                        let allowed: &[&str] = match kind {
                            Some(RunKind::Normal) | None => &["succeeded", "failed", "cancelled"],
                            Some(RunKind::Never) | Some(RunKind::Held) => &["failed", "cancelled"],
                        };
                        if !allowed.contains(&status.as_str()) {
                            return Err(at(format!("run {run} ({kind:?}) ended {status}")));
                        }
                        if status == "succeeded" && t.nodes != t.prompts {
                            return Err(at(format!(
                                "run {run} succeeded with {} of {} node records",
                                t.nodes, t.prompts
                            )));
                        }
                        t.ended = Some(status);
                    } else {
                        t.nodes += 1;
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Every status agrees with the model and with what exists: the console's and hearth's
    /// word for every slug, the service processes of every ready workspace alive (and none of
    /// any other), and the health routes of the workspaces in `probe` answering.
    async fn statuses(
        &mut self,
        stack: &Stack,
        model: &Model,
        touched: &[usize],
        probe: &[usize],
    ) -> Result<(), Violation> {
        let state: HashMap<String, rocky::hearth::driver::process::StateEntry> =
            std::fs::read(stack.state_file())
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_default();
        // The console and hearth are asked about the workspaces the step touched, and about
        // all of them after a step that could touch any and every `FULL_EVERY` steps; the
        // processes of every workspace are checked every step.
        let every = self.calls.is_multiple_of(FULL_EVERY) || touched.len() == SLUGS.len();
        let asked: Vec<usize> = (0..SLUGS.len())
            .filter(|w| every || touched.contains(w))
            .collect();
        let mut hearth: HashMap<String, Option<String>> = HashMap::new();
        for w in &asked {
            let said = match stack
                .hearth_client
                .status(SLUGS[*w], Duration::from_secs(5))
                .await
            {
                Ok(r) => Some(r.status.as_str().to_owned()),
                Err(rocky::hearth::client::HearthError::Refused { status: 404, .. }) => None,
                Err(e) => {
                    return Err(Violation::new(
                        "status",
                        format!("hearth about {}: {e}", SLUGS[*w]),
                    ));
                }
            };
            hearth.insert(SLUGS[*w].to_owned(), said);
        }
        let mut consoles: Vec<Option<Result<Option<String>, Violation>>> = vec![None; SLUGS.len()];
        for (w, answer) in asked
            .iter()
            .zip(futures::future::join_all(asked.iter().map(|w| stack.console_status(*w))).await)
        {
            consoles[*w] = Some(answer);
        }
        let mut probes = Vec::new();
        for (w, slug) in SLUGS.iter().enumerate() {
            // Not asked this step: nothing to compare.
            let console = consoles[w].clone().transpose()?.flatten();
            let asked_here = hearth.contains_key(*slug);
            let said = hearth.get(*slug).cloned().flatten();
            let said = said.as_deref();
            let (want_console, want_hearth): (Option<&str>, &[Option<&str>]) = match model.ws[w] {
                Ws::Absent => (None, &[None]),
                Ws::Ready => (Some("ready"), &[Some("ready")]),
                Ws::Failed => (Some("failed"), &[Some("failed"), None]),
                Ws::Forgotten => (Some("failed"), &[None]),
                Ws::TornDown => (Some("tier_torn_down"), &[Some("tier_torn_down"), None]),
            };
            if asked_here && (console.as_deref() != want_console || !want_hearth.contains(&said)) {
                return Err(Violation::new(
                    "status",
                    format!(
                        "{slug}: the console says {console:?}, hearth {said:?}; the model says {:?}",
                        model.ws[w]
                    ),
                ));
            }
            let entry = state.get(*slug);
            if model.ws[w] == Ws::Ready && probe.contains(&w) {
                let services = match entry {
                    Some(e) => e.services.clone(),
                    // No state file (the Docker topology): hearth's list names the services.
                    None => stack
                        .hearth_client
                        .list(Duration::from_secs(5))
                        .await
                        .map_err(|e| Violation::new("status", format!("hearth's list: {e}")))?
                        .into_iter()
                        .find(|d| d.slug == *slug)
                        .map(|d| d.services)
                        .unwrap_or_default(),
                };
                for s in services {
                    probes.push((slug, s.name, format!("{}/healthz", s.endpoint)));
                }
            }
            if stack.env_driver() != "process" {
                // What exists, asked of the engine: a ready workspace runs its two services;
                // any other has no container or network left.
                if !every && !touched.contains(&w) {
                    continue;
                }
                let (running, objects) = stack
                    .containers_of(slug)
                    .await
                    .map_err(|e| Violation::new("exists", e))?;
                let ok = match model.ws[w] {
                    Ws::Ready => running == 2,
                    _ => objects == 0,
                };
                if !ok {
                    return Err(Violation::new(
                        "exists",
                        format!(
                            "{slug} is {:?} but the engine holds {objects} object(s) of it, {running} container(s) running",
                            model.ws[w]
                        ),
                    ));
                }
                continue;
            }
            if model.ws[w] == Ws::Ready {
                let Some(entry) = entry else {
                    return Err(Violation::new(
                        "exists",
                        format!("{slug} is ready but hearth's state names no process of it"),
                    ));
                };
                let procs: Vec<(u32, u64)> =
                    entry.processes.iter().map(|p| (p.pid, p.start)).collect();
                if let Some((pid, _)) = procs.iter().find(|(p, s)| !alive(*p, *s)) {
                    return Err(Violation::new(
                        "exists",
                        format!("{slug} is ready but its service process {pid} is gone"),
                    ));
                }
                self.procs[w] = procs;
            } else {
                if entry.is_some() {
                    return Err(Violation::new(
                        "exists",
                        format!(
                            "{slug} is {:?} but hearth's state still names its processes",
                            model.ws[w]
                        ),
                    ));
                }
                if let Some((pid, _)) = self.procs[w].iter().find(|(p, s)| alive(*p, *s)) {
                    return Err(Violation::new(
                        "exists",
                        format!(
                            "{slug} is {:?} but its service process {pid} still runs",
                            model.ws[w]
                        ),
                    ));
                }
            }
        }
        let answers = futures::future::join_all(probes.iter().map(|(_, _, url)| {
            stack
                .http
                .get(url.as_str())
                .timeout(Duration::from_secs(5))
                .send()
        }))
        .await;
        for ((slug, name, url), answer) in probes.iter().zip(answers) {
            if !answer.is_ok_and(|r| r.status().is_success()) {
                return Err(Violation::new(
                    "exists",
                    format!("{slug} is ready but its service {name} ({url}) is not healthy"),
                ));
            }
        }
        Ok(())
    }

    /// No run executes at the worker that the console no longer follows, or whose workspace
    /// is torn down: a slot held by such a run never comes back.
    async fn worker_slots(&mut self, stack: &Stack) -> Result<(), Violation> {
        let stray = |me: &Checker| -> Option<String> {
            stack
                .executing()
                .into_iter()
                .find_map(|id| match me.runs.get(&id) {
                    None => Some(format!(
                        "run {id} executes at the worker, and the log never started it"
                    )),
                    Some(t) if t.ended.is_some() => Some(format!(
                        "run {id} of {} executes at the worker, though the console ended it {}",
                        t.ws,
                        t.ended.as_deref().unwrap_or_default()
                    )),
                    Some(t) if slug_index(&t.ws).is_some_and(|w| me.closed[w]) => Some(format!(
                        "run {id} executes at the worker, though {} is torn down",
                        t.ws
                    )),
                    Some(_) => None,
                })
        };
        if stray(self).is_none() {
            return Ok(());
        }
        // The console ends a run first and cancels it after: give the cancel its moment.
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            let Some(why) = stray(self) else {
                return Ok(());
            };
            if Instant::now() >= until {
                return Err(Violation::new("slots", why));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            let fresh = self.read_log(stack)?;
            self.walk(&fresh)?;
            self.excuse(stack).await?;
        }
    }

    /// Each suspect (a run the log never ended before its workspace's teardown) is excused
    /// only when the console ended it and its view names the records the log refused
    /// (contract §2: a follower's failed append shows on the run view).
    async fn excuse(&mut self, stack: &Stack) -> Result<(), Violation> {
        for (seq, id, ws) in std::mem::take(&mut self.suspects) {
            let (status, view) = stack.run_view(&id).await?;
            let gaps = view["unrecorded"].as_array().map_or(0, Vec::len);
            if status == "running" || gaps == 0 {
                return Err(Violation::new(
                    "order",
                    format!(
                        "seq {seq} hearth.decommission_started: teardown of {ws} recorded while its run {id} had not ended (its view: {status}, {gaps} unrecorded)"
                    ),
                ));
            }
            if let Some(t) = self.runs.get_mut(&id) {
                t.ended = Some(format!("{status} (unrecorded)"));
            }
        }
        Ok(())
    }

    /// Open held runs (started, not ended), for `deadline-passes`.
    pub fn open_held(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .runs
            .iter()
            .filter(|(id, t)| t.ended.is_none() && self.kinds.get(*id) == Some(&RunKind::Held))
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// At the end of a sequence, once everything is torn down: every run ended, and the
    /// worker executes nothing (its slots came back).
    pub async fn at_end(&mut self, stack: &Stack) -> Result<(), Violation> {
        let until = Instant::now() + Duration::from_secs(10);
        self.full_next = true;
        loop {
            let fresh = self.read_log(stack)?;
            self.walk(&fresh)?;
            self.excuse(stack).await?;
            let unended: Vec<String> = self
                .runs
                .iter()
                .filter(|(_, t)| t.ended.is_none())
                .map(|(id, t)| id.clone() + " " + &t.ws)
                .collect();
            for run in unended {
                let (id, ws) = run.split_once(' ').expect("id and workspace");
                let (status, view) = stack.run_view(id).await?;
                if status != "running"
                    && view["unrecorded"].as_array().is_some_and(|a| !a.is_empty())
                {
                    self.suspects.push((0, id.to_owned(), ws.to_owned()));
                }
            }
            self.excuse(stack).await?;
            let open: Vec<&String> = self
                .runs
                .iter()
                .filter(|(_, t)| t.ended.is_none())
                .map(|(id, _)| id)
                .collect();
            let executing = stack.executing();
            if open.is_empty() && executing.is_empty() {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(Violation::new(
                    "slots",
                    format!(
                        "after every teardown, runs {open:?} never ended in the log and the worker still executes {executing:?}"
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
