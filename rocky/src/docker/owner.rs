//! Who owns an object, and whether that owner is gone: the one decision behind every sweep of
//! Docker objects and every signal the process driver sends (contract §9).
//!
//! A pid means something only on the host (and boot) that issued it, in the PID namespace that
//! issued it, and only until it is reused. So an owner is named by all of them: the host id
//! (hostname, boot id, machine id), the inode of its PID namespace (`/proc/self/ns/pid`), its
//! pid, and its start time (field 22 of `/proc/<pid>/stat`: clock ticks since that boot). Two CI
//! jobs in containers sharing one engine and the host's network compute one host id but differ
//! in PID namespace; a pid reused by another program differs in start time.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::labels;

/// A process, named so that the name holds across PID namespaces and pid reuse.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// [`labels::host_id`] of the host it runs on.
    pub host: String,
    /// Inode of its PID namespace: pids of two namespaces are unrelated numbers.
    pub pidns: u64,
    /// Its pid in that namespace.
    pub pid: u32,
    /// Its start time in clock ticks since boot: a reused pid has another.
    pub start: u64,
}

/// What an object's owner labels (or a state record) claim; old objects lack some fields.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Claim {
    pub host: Option<String>,
    pub pidns: Option<u64>,
    pub pid: Option<u32>,
    pub start: Option<u64>,
}

/// Where an owner stands, as seen from this process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OwnerState {
    /// On this host, in this PID namespace, and running (with its start time, when known).
    Alive,
    /// On this host and in this PID namespace, and no longer running: what it made may go.
    Gone,
    /// On another host or in another PID namespace (or unnamed): its pid means nothing here,
    /// so it is never judged gone and nothing of it is ever removed or signalled.
    Elsewhere,
}

/// What `/proc/<pid>/stat` says of a live pid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 22: start time in clock ticks since boot.
    pub start: u64,
    /// State `Z`: killed but not reaped; it will never clean up after itself.
    pub zombie: bool,
}

/// Where this process stands: the host and PID namespace every claim is compared with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Here {
    pub host: String,
    pub pidns: u64,
}

impl Here {
    /// This process's host id and PID namespace.
    pub fn now() -> Here {
        Here {
            host: labels::host_id(),
            pidns: pid_namespace(),
        }
    }
}

/// The decision itself, pure so it can be tested with any `/proc`: `stat(pid)` is what
/// `/proc/<pid>/stat` says in this PID namespace (`None`: no such process).
///
/// Objects labelled before the PID namespace and start time were (no `rocky.pidns`): judged as
/// then, by host and pid alone: gone when no process has that pid here, alive otherwise.
/// That can remove the objects of an old-labelled owner in another PID namespace of this host,
/// exactly as the old code did, but no newer object; it keeps leftovers of old killed runs
/// from living forever.
pub fn decide(claim: &Claim, here: &Here, stat: impl Fn(u32) -> Option<ProcStat>) -> OwnerState {
    if claim.host.as_deref() != Some(here.host.as_str()) {
        return OwnerState::Elsewhere;
    }
    if claim.pidns.is_some_and(|ns| ns != here.pidns) {
        return OwnerState::Elsewhere;
    }
    let Some(pid) = claim.pid else {
        return OwnerState::Elsewhere;
    };
    match stat(pid) {
        None => OwnerState::Gone,
        Some(s) if s.zombie => OwnerState::Gone,
        Some(s) => match (claim.pidns, claim.start) {
            (Some(_), Some(start)) if start != s.start => OwnerState::Gone,
            // A new label without a start time cannot tell reuse: the process may be it.
            _ => OwnerState::Alive,
        },
    }
}

/// [`decide`] against this host's `/proc`.
pub fn judge(claim: &Claim) -> OwnerState {
    decide(claim, &Here::now(), proc_stat)
}

impl Claim {
    /// The owner an object's labels name.
    pub fn from_labels(l: &HashMap<String, String>) -> Claim {
        Claim {
            host: l.get(labels::HOST).cloned(),
            pidns: l.get(labels::PIDNS).and_then(|v| v.parse().ok()),
            pid: l.get(labels::PID).and_then(|v| v.parse().ok()),
            start: l.get(labels::START).and_then(|v| v.parse().ok()),
        }
    }

    /// The keeper an object's labels name ([`labels::KEEPER_PID`]), on the owner's host and in
    /// its PID namespace; `None` when they name none.
    pub fn keeper_from_labels(l: &HashMap<String, String>) -> Option<Claim> {
        Some(Claim {
            pid: Some(l.get(labels::KEEPER_PID)?.parse().ok()?),
            start: l.get(labels::KEEPER_START).and_then(|v| v.parse().ok()),
            ..Claim::from_labels(l)
        })
    }
}

impl From<&ProcessId> for Claim {
    fn from(p: &ProcessId) -> Claim {
        Claim {
            host: Some(p.host.clone()),
            pidns: Some(p.pidns),
            pid: Some(p.pid),
            start: Some(p.start),
        }
    }
}

impl ProcessId {
    /// This process.
    pub fn this_process() -> ProcessId {
        static ME: std::sync::OnceLock<ProcessId> = std::sync::OnceLock::new();
        ME.get_or_init(|| {
            // `/proc/self`, not `/proc/<pid>`: right even where `/proc` was mounted by another
            // PID namespace (whose `<pid>` would be some other process).
            let start = std::fs::read_to_string("/proc/self/stat")
                .ok()
                .and_then(|s| parse_stat(&s))
                .map(|s| s.start)
                .unwrap_or_default();
            ProcessId {
                host: labels::host_id(),
                pidns: pid_namespace(),
                pid: std::process::id(),
                start,
            }
        })
        .clone()
    }

    /// Process `pid` of this PID namespace as it runs now (`None`: no such process). For a
    /// child just spawned, this names it for good.
    pub fn of_pid(pid: u32) -> Option<ProcessId> {
        let stat = proc_stat(pid)?;
        Some(ProcessId {
            host: labels::host_id(),
            pidns: pid_namespace(),
            pid,
            start: stat.start,
        })
    }

    /// Whether this very process runs now: same host, same PID namespace, same start time.
    pub fn is_running(&self) -> bool {
        judge(&Claim::from(self)) == OwnerState::Alive
    }

    /// Sends `signal` to this process if, and only if, it is this very process (host, PID
    /// namespace and start time all match). The pid is pinned with a pidfd first, so it cannot
    /// be reused between the check and the signal. `false`: not sent (gone, or another).
    pub fn signal(&self, signal: i32) -> bool {
        if !self.is_running() {
            return false;
        }
        // SAFETY: pidfd_open(2) with a pid and no flags; the fd is closed below.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, self.pid as libc::pid_t, 0) };
        if fd < 0 {
            // No pidfd (kernel before 5.3): check and kill as close together as we can.
            if !self.is_running() {
                return false;
            }
            // SAFETY: kill(2) on a pid just checked to be this process.
            return unsafe { libc::kill(self.pid as i32, signal) } == 0;
        }
        let fd = fd as libc::c_int;
        // The pidfd names the process that had the pid when it was opened: check that one.
        let sent = self.is_running()
            // SAFETY: pidfd_send_signal(2) on the fd just opened, no siginfo, no flags.
            && unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd,
                    signal,
                    std::ptr::null::<libc::siginfo_t>(),
                    0,
                )
            } == 0;
        // SAFETY: closing the fd this function opened.
        unsafe { libc::close(fd) };
        sent
    }
}

/// What `/proc/<pid>/stat` of this PID namespace says of `pid` (`None`: no such process).
pub fn proc_stat(pid: u32) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&stat)
}

/// Parses `pid (comm) S ppid … starttime …`: comm may hold spaces or parens, so the fields
/// are counted after the last `)`. Field 3 is the state, field 22 the start time.
fn parse_stat(stat: &str) -> Option<ProcStat> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field 22 is fields[19].
    Some(ProcStat {
        zombie: *fields.first()? == "Z",
        start: fields.get(19)?.parse().ok()?,
    })
}

/// The inode of this process's PID namespace (`/proc/self/ns/pid` reads `pid:[<inode>]`).
pub fn pid_namespace() -> u64 {
    static NS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *NS.get_or_init(|| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata("/proc/self/ns/pid")
            .map(|m| m.ino())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "runner/boot/machine";
    const NS: u64 = 4026531836;

    fn here() -> Here {
        Here {
            host: HOST.into(),
            pidns: NS,
        }
    }

    fn claim(host: &str, pidns: Option<u64>, pid: u32, start: Option<u64>) -> Claim {
        Claim {
            host: Some(host.into()),
            pidns,
            pid: Some(pid),
            start,
        }
    }

    /// pid 100 runs, started at tick 5000; pid 200 is a zombie; nothing else runs.
    fn proc(pid: u32) -> Option<ProcStat> {
        match pid {
            100 => Some(ProcStat {
                start: 5000,
                zombie: false,
            }),
            200 => Some(ProcStat {
                start: 7000,
                zombie: true,
            }),
            _ => None,
        }
    }

    #[test]
    fn the_same_process_is_alive() {
        let c = claim(HOST, Some(NS), 100, Some(5000));
        assert_eq!(decide(&c, &here(), proc), OwnerState::Alive);
    }

    #[test]
    fn the_same_pid_with_another_start_time_is_gone() {
        // pid 100 was reused by a process that started later: the owner is gone.
        let c = claim(HOST, Some(NS), 100, Some(4200));
        assert_eq!(decide(&c, &here(), proc), OwnerState::Gone);
    }

    #[test]
    fn no_process_or_a_zombie_is_gone() {
        assert_eq!(
            decide(&claim(HOST, Some(NS), 300, Some(1)), &here(), proc),
            OwnerState::Gone
        );
        assert_eq!(
            decide(&claim(HOST, Some(NS), 200, Some(7000)), &here(), proc),
            OwnerState::Gone
        );
    }

    #[test]
    fn another_pid_namespace_is_never_gone() {
        // Whether its pid exists here or not, with whatever start time: never ours to judge.
        for (pid, start) in [(100, 5000), (100, 1), (300, 1)] {
            let c = claim(HOST, Some(NS + 1), pid, Some(start));
            assert_eq!(
                decide(&c, &here(), proc),
                OwnerState::Elsewhere,
                "pid {pid}"
            );
        }
    }

    #[test]
    fn another_host_or_no_host_is_never_gone() {
        let c = claim("other/boot/machine", Some(NS), 300, Some(1));
        assert_eq!(decide(&c, &here(), proc), OwnerState::Elsewhere);
        let mut unnamed = claim(HOST, Some(NS), 300, Some(1));
        unnamed.host = None;
        assert_eq!(decide(&unnamed, &here(), proc), OwnerState::Elsewhere);
        let mut no_pid = claim(HOST, Some(NS), 300, Some(1));
        no_pid.pid = None;
        assert_eq!(decide(&no_pid, &here(), proc), OwnerState::Elsewhere);
    }

    #[test]
    fn old_labels_are_judged_by_host_and_pid() {
        // No pidns, no start time: gone only when no process has the pid here.
        assert_eq!(
            decide(&claim(HOST, None, 300, None), &here(), proc),
            OwnerState::Gone
        );
        assert_eq!(
            decide(&claim(HOST, None, 100, None), &here(), proc),
            OwnerState::Alive
        );
        assert_eq!(
            decide(&claim("other/b/m", None, 300, None), &here(), proc),
            OwnerState::Elsewhere
        );
    }

    #[test]
    fn this_process_is_alive_and_a_reused_pid_is_not_it() {
        let me = ProcessId::this_process();
        assert!(me.pidns != 0 && me.start != 0, "{me:?}");
        assert!(me.is_running());
        let reused = ProcessId {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!reused.is_running());
        assert!(!reused.signal(0), "a signal to a reused pid is never sent");
        let elsewhere = ProcessId {
            pidns: me.pidns + 1,
            ..me.clone()
        };
        assert!(!elsewhere.signal(0), "nor to a pid of another namespace");
        assert!(me.signal(0), "signal 0 to this very process is sent");
    }

    #[test]
    fn stat_is_read_after_the_last_paren() {
        let line = "42 (a) b) c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        assert_eq!(
            parse_stat(line),
            Some(ProcStat {
                start: 987654,
                zombie: false
            })
        );
    }
}
