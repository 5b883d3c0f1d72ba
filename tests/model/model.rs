//! The reference model: what should be true after each operation, as a function of the
//! sequence alone (never of what the real stack answered), so a seed fixes both the sequence
//! and every expectation. Where the real system may legitimately go two ways (a held run ends
//! by its deadline or by a teardown, whichever comes first), the model does not choose: the
//! checks accept either, and nothing the generator draws depends on it.

use rocky::hatch::EventKind;

use super::ops::{FaultAt, FaultTarget, Op, RunKind, SLUGS};
use super::rng::Rng;

/// A workspace as the console and hearth should both report it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ws {
    /// Never provisioned in this sequence: 404 everywhere.
    Absent,
    Ready,
    /// hearth reported the provision failed.
    Failed,
    /// Failed, and hearth restarted since: nothing of it existed to rediscover, so hearth no
    /// longer knows it while the console still shows `failed`. Its teardown is a 404 that
    /// records nothing (a decommission that begins is one that can end) and forgets it.
    Forgotten,
    /// Torn down (or rolled back): the console shows `tier_torn_down`, nothing of it exists.
    TornDown,
}

/// What one operation must come to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Expect {
    /// The HTTP status of each call the operation makes, in order.
    pub answers: Vec<u16>,
    /// The lifecycle records (`hearth.*`, `ralph.run.started`) it appends, in order; run
    /// records a follower appends later are checked per run instead.
    pub records: Vec<(EventKind, usize)>,
}

#[derive(Clone, Debug)]
pub struct Model {
    pub ws: [Ws; SLUGS.len()],
    pub worker_up: bool,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            ws: [Ws::Absent; SLUGS.len()],
            worker_up: true,
        }
    }
}

fn free(s: Ws) -> bool {
    matches!(s, Ws::Absent | Ws::TornDown | Ws::Failed | Ws::Forgotten)
}

impl Model {
    /// Applies `op`: what it must answer and record, and the state it leaves.
    pub fn step(&mut self, op: &Op) -> Expect {
        use EventKind::*;
        let mut e = Expect::default();
        match *op {
            Op::Provision(w) | Op::ProvisionHangUp(w) => {
                if free(self.ws[w]) {
                    e.answers.push(201);
                    e.records = vec![(ProvisioningStarted, w), (Provisioned, w)];
                    self.ws[w] = Ws::Ready;
                } else {
                    e.answers.push(409);
                }
            }
            Op::ProvisionBroken(w) => {
                if free(self.ws[w]) {
                    e.answers.push(502);
                    e.records = vec![(ProvisioningStarted, w), (Failed, w)];
                    self.ws[w] = Ws::Failed;
                } else {
                    e.answers.push(409);
                }
            }
            Op::ProvisionThenTeardown(w) => {
                if free(self.ws[w]) {
                    e.answers = vec![201, 200];
                    e.records = vec![
                        (ProvisioningStarted, w),
                        (Provisioned, w),
                        (DecommissionStarted, w),
                        (Decommissioned, w),
                    ];
                } else {
                    e.answers = vec![409, 200];
                    e.records = vec![(DecommissionStarted, w), (Decommissioned, w)];
                }
                self.ws[w] = Ws::TornDown;
            }
            Op::Teardown(w) | Op::TeardownHangUp(w) | Op::TeardownConcurrent(w, _) => {
                let k = match *op {
                    Op::TeardownConcurrent(_, k) => usize::from(k),
                    _ => 1,
                };
                match self.ws[w] {
                    Ws::Ready | Ws::Failed => {
                        e.answers = vec![200; k];
                        e.records = vec![(DecommissionStarted, w), (Decommissioned, w)];
                        self.ws[w] = Ws::TornDown;
                    }
                    Ws::TornDown => e.answers = vec![200; k],
                    Ws::Absent => e.answers = vec![404; k],
                    Ws::Forgotten => {
                        e.answers = vec![404; k];
                        self.ws[w] = Ws::Absent;
                    }
                }
            }
            Op::Submit(w, _) => self.submit(w, &mut e),
            Op::CrashHearth => {
                for s in &mut self.ws {
                    if *s == Ws::Failed {
                        *s = Ws::Forgotten;
                    }
                }
            }
            Op::DeadlinePasses | Op::SecondHearth | Op::Read => {}
            Op::KillWorker => self.worker_up = false,
            Op::RestartWorker => self.worker_up = true,
            Op::Fault(_, target, w) => match target {
                FaultTarget::ProvisionStart => {
                    e.answers.push(if free(self.ws[w]) { 503 } else { 409 });
                }
                FaultTarget::Provisioned => {
                    if free(self.ws[w]) {
                        // hearth made it, its record was refused: the console tears it down.
                        e.answers.push(503);
                        e.records = vec![(ProvisioningStarted, w)];
                        self.ws[w] = Ws::TornDown;
                    } else {
                        e.answers.push(409);
                    }
                }
                FaultTarget::Teardown => match self.ws[w] {
                    // Refused: the workspace keeps the status it had.
                    Ws::Ready | Ws::Failed => e.answers.push(503),
                    Ws::TornDown => e.answers.push(200),
                    Ws::Absent => e.answers.push(404),
                    // Forgotten before the record is tried: nothing to refuse.
                    Ws::Forgotten => {
                        e.answers.push(404);
                        self.ws[w] = Ws::Absent;
                    }
                },
                FaultTarget::Submit => {
                    if self.ws[w] == Ws::Ready && self.worker_up {
                        e.answers.push(503);
                    } else {
                        self.submit(w, &mut e);
                    }
                }
            },
        }
        e
    }

    fn submit(&mut self, w: usize, e: &mut Expect) {
        match self.ws[w] {
            Ws::Ready if self.worker_up => {
                e.answers.push(202);
                e.records = vec![(EventKind::RunStarted, w)];
            }
            Ws::Ready => e.answers.push(502),
            Ws::Failed | Ws::Forgotten | Ws::TornDown => e.answers.push(409),
            Ws::Absent => e.answers.push(404),
        }
    }

    /// Draws the next operation: weights lean on what the state makes interesting (runs in
    /// ready workspaces, teardowns of what exists) but every operation stays possible.
    pub fn draw(&self, rng: &mut Rng) -> Op {
        let w = rng.below(SLUGS.len() as u64) as usize;
        let ready = self.ws[w] == Ws::Ready;
        let table: &[(u32, Op)] = &[
            (if ready { 3 } else { 14 }, Op::Provision(w)),
            (1, Op::ProvisionBroken(w)),
            (3, Op::ProvisionHangUp(w)),
            (3, Op::ProvisionThenTeardown(w)),
            (if ready { 9 } else { 3 }, Op::Teardown(w)),
            (if ready { 4 } else { 1 }, Op::TeardownConcurrent(w, 3)),
            (if ready { 2 } else { 1 }, Op::TeardownHangUp(w)),
            (if ready { 22 } else { 3 }, Op::Submit(w, RunKind::Normal)),
            (if ready { 6 } else { 1 }, Op::Submit(w, RunKind::Never)),
            (if ready { 7 } else { 1 }, Op::Submit(w, RunKind::Held)),
            (2, Op::DeadlinePasses),
            (if self.worker_up { 1 } else { 0 }, Op::KillWorker),
            (if self.worker_up { 0 } else { 12 }, Op::RestartWorker),
            (1, Op::CrashHearth),
            (1, Op::SecondHearth),
            (2, Op::Fault(FaultAt::Sync, FaultTarget::ProvisionStart, w)),
            (1, Op::Fault(FaultAt::Write, FaultTarget::Provisioned, w)),
            (
                if ready || self.ws[w] == Ws::Failed {
                    4
                } else {
                    1
                },
                Op::Fault(FaultAt::Sync, FaultTarget::Teardown, w),
            ),
            (1, Op::Fault(FaultAt::Write, FaultTarget::Teardown, w)),
            (
                if ready { 2 } else { 0 },
                Op::Fault(FaultAt::Sync, FaultTarget::Submit, w),
            ),
            (8, Op::Read),
        ];
        let weights: Vec<u32> = table.iter().map(|(wt, _)| *wt).collect();
        table[rng.weighted(&weights)].1
    }
}

/// How a sequence's stack is set up, beside its operations: the HATCH sync mode, and whether
/// the console's clock runs fast — its provision deadline (100 ms) passes before hearth
/// settles a slow provision, so the console must ask hearth rather than decide (contract §9).
/// Written `none`, `batch/fast-clock`, … (`--setup`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setup {
    pub sync: rocky::hatch::SyncMode,
    pub fast_clock: bool,
}

impl std::fmt::Display for Setup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.sync)?;
        if self.fast_clock {
            write!(f, "/fast-clock")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for Setup {
    type Err = String;

    fn from_str(s: &str) -> Result<Setup, String> {
        let (sync, fast_clock) = match s.split_once('/') {
            Some((sync, "fast-clock")) => (sync, true),
            Some((_, other)) => return Err(format!("unknown setup {other:?} (fast-clock)")),
            None => (s, false),
        };
        Ok(Setup {
            sync: sync
                .parse()
                .map_err(|e| format!("sync mode {sync:?}: {e}"))?,
            fast_clock,
        })
    }
}

/// Seed `seed`'s setup: the sync mode mostly `none` (cheap steps), every fourth `batch` (the
/// console's default: group commit, fdatasync), every eighth `always`; a fast console clock
/// every third.
pub fn setup(seed: u64) -> Setup {
    use rocky::hatch::SyncMode;
    Setup {
        sync: match seed % 8 {
            0 | 4 => SyncMode::Batch,
            1 => SyncMode::Always,
            _ => SyncMode::None,
        },
        fast_clock: seed % 3 == 2,
    }
}

/// The sequence seed `seed` names: `len` operations drawn against the model.
pub fn generate(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut model = Model::default();
    (0..len)
        .map(|_| {
            let op = model.draw(&mut rng);
            model.step(&op);
            op
        })
        .collect()
}
