//! The operations the generator draws, each written as one short line (`provision w1`,
//! `fault sync teardown w2`, …) so a failing sequence prints as text that parses back: a kept
//! regression case is that text.

use std::fmt;
use std::str::FromStr;

/// The workspaces a stack's sequence plays with: few, so operations collide.
pub const SLUGS: [&str; 4] = ["w0", "w1", "w2", "w3"];

/// What a submitted run does at the worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunKind {
    /// Converges (after 1–3 iterations per prompt): ends `succeeded` unless something ends it.
    Normal,
    /// One prompt never converges: ends `failed` after `max_ralph_iters`.
    Never,
    /// `[ralph:hold]`: runs until cancelled or past the console's run deadline.
    Held,
}

/// Which append the disk refuses (the HATCH record of one lifecycle act).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultTarget {
    /// `hearth.provisioning_started` of a provision.
    ProvisionStart,
    /// `hearth.provisioned` of a provision.
    Provisioned,
    /// `hearth.decommission_started` of a teardown.
    Teardown,
    /// `ralph.run.started` of a submission.
    Submit,
}

/// Which disk operation fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FaultAt {
    /// The `write(2)` of the record's line.
    Write,
    /// The `fdatasync(2)` of the group commit that covers it.
    Sync,
}

/// One step of a sequence; `usize` fields index [`SLUGS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Provision(usize),
    /// A tier whose service never answers its health route: hearth reports `failed`.
    ProvisionBroken(usize),
    /// The caller hangs up once the console has taken the provision; it settles anyway.
    ProvisionHangUp(usize),
    /// A provision of a slow tier and a teardown sent while it is provisioning.
    ProvisionThenTeardown(usize),
    Teardown(usize),
    /// Several DELETEs at once.
    TeardownConcurrent(usize, u8),
    /// The caller hangs up once the console has started the teardown.
    TeardownHangUp(usize),
    Submit(usize, RunKind),
    /// Time passes the console's run deadline for every held run (the clock step the run
    /// deadline depends on): waits until each has ended.
    DeadlinePasses,
    KillWorker,
    RestartWorker,
    /// SIGKILL hearth, start it again on the same socket and session.
    CrashHearth,
    /// A second hearth on the live hearth's socket and session.
    SecondHearth,
    /// The disk refuses one append of the act, then works again.
    Fault(FaultAt, FaultTarget, usize),
    /// Reads only (the checks after every step do the reading).
    Read,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = |i: &usize| SLUGS[*i];
        match self {
            Op::Provision(w) => write!(f, "provision {}", s(w)),
            Op::ProvisionBroken(w) => write!(f, "provision-broken {}", s(w)),
            Op::ProvisionHangUp(w) => write!(f, "provision-hangup {}", s(w)),
            Op::ProvisionThenTeardown(w) => write!(f, "provision+teardown {}", s(w)),
            Op::Teardown(w) => write!(f, "teardown {}", s(w)),
            Op::TeardownConcurrent(w, k) => write!(f, "teardown {} x{k}", s(w)),
            Op::TeardownHangUp(w) => write!(f, "teardown-hangup {}", s(w)),
            Op::Submit(w, k) => {
                let k = match k {
                    RunKind::Normal => "normal",
                    RunKind::Never => "never",
                    RunKind::Held => "held",
                };
                write!(f, "submit {} {k}", s(w))
            }
            Op::DeadlinePasses => write!(f, "deadline-passes"),
            Op::KillWorker => write!(f, "kill-worker"),
            Op::RestartWorker => write!(f, "restart-worker"),
            Op::CrashHearth => write!(f, "crash-hearth"),
            Op::SecondHearth => write!(f, "second-hearth"),
            Op::Fault(at, target, w) => {
                let at = match at {
                    FaultAt::Write => "write",
                    FaultAt::Sync => "sync",
                };
                let target = match target {
                    FaultTarget::ProvisionStart => "provision",
                    FaultTarget::Provisioned => "provisioned",
                    FaultTarget::Teardown => "teardown",
                    FaultTarget::Submit => "submit",
                };
                write!(f, "fault {at} {target} {}", s(w))
            }
            Op::Read => write!(f, "read"),
        }
    }
}

impl FromStr for Op {
    type Err = String;

    fn from_str(line: &str) -> Result<Op, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        let slug = |i: usize| -> Result<usize, String> {
            let w = words
                .get(i)
                .ok_or_else(|| format!("{line:?}: a slug is missing"))?;
            SLUGS
                .iter()
                .position(|s| s == w)
                .ok_or_else(|| format!("{line:?}: unknown slug {w:?} (one of {SLUGS:?})"))
        };
        let op = match words.as_slice() {
            ["provision", _] => Op::Provision(slug(1)?),
            ["provision-broken", _] => Op::ProvisionBroken(slug(1)?),
            ["provision-hangup", _] => Op::ProvisionHangUp(slug(1)?),
            ["provision+teardown", _] => Op::ProvisionThenTeardown(slug(1)?),
            ["teardown", _] => Op::Teardown(slug(1)?),
            ["teardown", _, k] => {
                let k = k
                    .strip_prefix('x')
                    .and_then(|k| k.parse().ok())
                    .ok_or_else(|| format!("{line:?}: expected xN"))?;
                Op::TeardownConcurrent(slug(1)?, k)
            }
            ["teardown-hangup", _] => Op::TeardownHangUp(slug(1)?),
            ["submit", _, kind] => Op::Submit(
                slug(1)?,
                match *kind {
                    "normal" => RunKind::Normal,
                    "never" => RunKind::Never,
                    "held" => RunKind::Held,
                    other => return Err(format!("{line:?}: unknown run kind {other:?}")),
                },
            ),
            ["deadline-passes"] => Op::DeadlinePasses,
            ["kill-worker"] => Op::KillWorker,
            ["restart-worker"] => Op::RestartWorker,
            ["crash-hearth"] => Op::CrashHearth,
            ["second-hearth"] => Op::SecondHearth,
            ["fault", at, target, _] => Op::Fault(
                match *at {
                    "write" => FaultAt::Write,
                    "sync" => FaultAt::Sync,
                    other => return Err(format!("{line:?}: unknown fault point {other:?}")),
                },
                match *target {
                    "provision" => FaultTarget::ProvisionStart,
                    "provisioned" => FaultTarget::Provisioned,
                    "teardown" => FaultTarget::Teardown,
                    "submit" => FaultTarget::Submit,
                    other => return Err(format!("{line:?}: unknown fault target {other:?}")),
                },
                slug(3)?,
            ),
            ["read"] => Op::Read,
            _ => return Err(format!("{line:?}: not an operation")),
        };
        Ok(op)
    }
}

impl Op {
    /// The workspaces whose statuses the checks after this step ask the console and hearth
    /// about: the one it acts on, or every one after a step that could touch them all.
    pub fn touches(&self) -> Vec<usize> {
        match *self {
            Op::Provision(w)
            | Op::ProvisionBroken(w)
            | Op::ProvisionHangUp(w)
            | Op::ProvisionThenTeardown(w)
            | Op::Teardown(w)
            | Op::TeardownConcurrent(w, _)
            | Op::TeardownHangUp(w)
            | Op::Submit(w, _)
            | Op::Fault(_, _, w) => vec![w],
            Op::CrashHearth | Op::SecondHearth => (0..SLUGS.len()).collect(),
            Op::DeadlinePasses | Op::KillWorker | Op::RestartWorker | Op::Read => Vec::new(),
        }
    }

    /// The workspaces whose services' health routes the checks probe: where the step may
    /// have made or unmade services (a run never does).
    pub fn probes(&self) -> Vec<usize> {
        match self {
            Op::Submit(..) => Vec::new(),
            _ => self.touches(),
        }
    }
}

/// A sequence as one line (`a; b; c`), the form `--ops` and the kept cases take.
pub fn render(ops: &[Op]) -> String {
    ops.iter().map(Op::to_string).collect::<Vec<_>>().join("; ")
}

/// Parses [`render`]'s form back.
pub fn parse(text: &str) -> Result<Vec<Op>, String> {
    text.split([';', '\n'])
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::parse)
        .collect()
}
