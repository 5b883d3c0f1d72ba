//! The processes of a stack's session, seen from outside hearth (Linux `/proc`).
//!
//! hearth is spawned with [`SESSION_ENV`]`=<session>` in its environment, and every process
//! it starts (the `process` driver's stand-ins) inherits it. So the harness finds what a
//! scenario made without asking hearth or reading hearth's state: a hearth that forgot its
//! children, or was killed, cannot hide them. Each process is named by pid *and* start time,
//! and signalled only while both (and the marker) still match, so a reused pid is never hit.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

/// The environment variable that marks every process of a stack's session.
pub const SESSION_ENV: &str = "ROCKY_E2E_SESSION";

/// How often [`wait_gone`] looks again.
const POLL: Duration = Duration::from_millis(20);

/// One live process carrying a session's marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionProcess {
    pub pid: u32,
    /// Start time (clock ticks since boot, `/proc/<pid>/stat` field 22): with the pid, which
    /// process this is, whatever later reuses the pid.
    pub started: u64,
    /// Its command line, for messages.
    pub command: String,
    /// The TCP addresses it listens on.
    pub listening: Vec<SocketAddr>,
}

impl std::fmt::Display for SessionProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({}", self.pid, self.command)?;
        if !self.listening.is_empty() {
            let addrs: Vec<String> = self.listening.iter().map(ToString::to_string).collect();
            write!(f, ", listening on {}", addrs.join(", "))?;
        }
        write!(f, ")")
    }
}

impl SessionProcess {
    /// Whether it listens on `endpoint` (`http://host:port`).
    pub fn serves(&self, endpoint: &str) -> bool {
        endpoint
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse::<SocketAddr>()
            .is_ok_and(|a| self.listening.contains(&a))
    }

    /// Whether this very process (same pid, same start time, still marked) is alive. Reads
    /// one process only, on the calling thread.
    fn still(&self, session: &str) -> bool {
        read(self.pid, &marker(session)).is_some_and(|p| p.started == self.started)
    }
}

fn marker(session: &str) -> Vec<u8> {
    format!("{SESSION_ENV}={session}").into_bytes()
}

/// Every live process of `session` (zombies excluded: they hold nothing but a pid). The scan
/// runs on a blocking thread: reading another process's environment waits for its memory map
/// lock, which a busy process (a linker beside us) can hold for long, and the scenarios
/// sharing this runtime must not stall meanwhile.
pub async fn of_session(session: &str) -> Vec<SessionProcess> {
    let session = session.to_owned();
    tokio::task::spawn_blocking(move || scan(&session))
        .await
        .unwrap_or_default()
}

/// [`of_session`], on the calling thread.
fn scan(session: &str) -> Vec<SessionProcess> {
    let marker = marker(session);
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found: Vec<SessionProcess> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| read(pid, &marker))
        .collect();
    found.sort_by_key(|p| p.pid);
    found
}

/// Process `pid` if it is alive and carries `marker` in its environment.
fn read(pid: u32, marker: &[u8]) -> Option<SessionProcess> {
    // Unreadable (another user's process, or gone) or empty (a zombie's): not ours.
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    if !environ.split(|b| *b == 0).any(|entry| entry == marker) {
        return None;
    }
    let (state, started) = stat(pid)?;
    if matches!(state, 'Z' | 'X') {
        return None;
    }
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            c.split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    Some(SessionProcess {
        pid,
        started,
        command,
        listening: listening(pid),
    })
}

/// `(state, start time)` from `/proc/<pid>/stat`.
fn stat(pid: u32) -> Option<(char, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command (field 2) is in parentheses and may hold spaces: count from its end.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Field 22 overall is the 20th after the command.
    let started = fields.get(19)?.parse().ok()?;
    Some((state, started))
}

/// The TCP addresses `pid` listens on: its socket inodes, looked up in its network
/// namespace's `tcp` and `tcp6` tables.
fn listening(pid: u32) -> Vec<SocketAddr> {
    let inodes: BTreeSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .filter_map(|fd| {
            let link = std::fs::read_link(fd.ok()?.path()).ok()?;
            let link = link.to_str()?;
            link.strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    if inodes.is_empty() {
        return Vec::new();
    }
    let mut addrs = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")) else {
            continue;
        };
        addrs.extend(text.lines().skip(1).filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            const LISTEN: &str = "0A";
            if f.len() < 10 || f[3] != LISTEN || !inodes.contains(&f[9].parse().ok()?) {
                return None;
            }
            parse_addr(f[1])
        }));
    }
    addrs
}

/// `0100007F:1F90` (the kernel's words in host byte order, then the port) → `127.0.0.1:8080`.
fn parse_addr(hex: &str) -> Option<SocketAddr> {
    let (ip, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        Some(
            u32::from_str_radix(ip.get(i * 8..i * 8 + 8)?, 16)
                .ok()?
                .to_ne_bytes(),
        )
    };
    let ip = match ip.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            IpAddr::V6(Ipv6Addr::from(bytes))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Waits until no process of `session` that `matters` holds remains, within `deadline`;
/// returns those that remain. A process just sent SIGKILL (hearth's exit kills its children)
/// takes a moment to go; a leaked one stays.
pub async fn wait_gone(
    session: &str,
    matters: impl Fn(&SessionProcess) -> bool,
    deadline: Duration,
) -> Vec<SessionProcess> {
    let until = tokio::time::Instant::now() + deadline;
    loop {
        let left: Vec<SessionProcess> = of_session(session)
            .await
            .into_iter()
            .filter(&matters)
            .collect();
        if left.is_empty() || tokio::time::Instant::now() >= until {
            return left;
        }
        tokio::time::sleep(POLL).await;
    }
}

/// SIGKILL to each of `procs` that is still the very process found (pid, start time and
/// marker all match), then waits (within `deadline`) until they are gone. Returns what
/// still runs.
pub async fn kill(
    session: &str,
    procs: &[SessionProcess],
    deadline: Duration,
) -> Vec<SessionProcess> {
    for p in procs.iter().filter(|p| p.still(session)) {
        // SAFETY: kill(2) on a pid that is, as just checked, the marked process found.
        unsafe {
            libc::kill(p.pid as i32, libc::SIGKILL);
        }
    }
    let pids: BTreeSet<(u32, u64)> = procs.iter().map(|p| (p.pid, p.started)).collect();
    wait_gone(session, |p| pids.contains(&(p.pid, p.started)), deadline).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    #[test]
    fn kernel_addresses_parse() {
        assert_eq!(
            parse_addr("0100007F:1F90"),
            Some("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            parse_addr("00000000000000000000000001000000:0050"),
            Some("[::1]:80".parse().unwrap())
        );
        assert_eq!(parse_addr("zz:1"), None);
    }

    /// A stand-in started with a session's marker is found (with the address it listens on),
    /// nothing of another session is, and a kill removes it.
    #[tokio::test]
    async fn a_marked_standin_is_found_by_its_session_and_killed() {
        // The cache every run uses: compiled once, not by each test (`images::standin`'s
        // own test compiles into a fresh one).
        let standin = crate::images::standin_binary(&crate::images::default_cache_dir()).unwrap();
        let session = rocky::ids::random_hex(6);
        let mut child = tokio::process::Command::new(&standin)
            .args(["--listen", "127.0.0.1:0", "--name", "lore"])
            .env(SESSION_ENV, &session)
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let line = tokio::io::BufReader::new(stdout)
            .lines()
            .next_line()
            .await
            .unwrap()
            .unwrap();
        let addr = line.rsplit(' ').next().unwrap().to_owned();
        let found = of_session(&session).await;
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].pid, child.id().unwrap());
        assert!(found[0].serves(&format!("http://{addr}")), "{found:?}");
        assert!(found[0].to_string().contains("--name lore"), "{}", found[0]);
        assert!(of_session(&rocky::ids::random_hex(6)).await.is_empty());
        let left = kill(&session, &found, Duration::from_secs(5)).await;
        assert!(left.is_empty(), "{left:?}");
        let _ = child.wait().await;
        assert!(of_session(&session).await.is_empty());
    }
}
