//! What a scenario's session left behind, found from outside hearth: the `process` driver's
//! stand-ins by the session marker ([`super::processes`]), Docker objects by the session
//! label. The `nothing of workspace X remains` step asks which of them are workspace X's; the
//! World's after-hook removes whatever is left once the stack has stopped and names it, and
//! the scenario fails for it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use rocky::hearth::Status;

use super::processes::{self, SessionProcess};
use super::{Stack, StackOptions};

/// How long a process just killed (or a service just stopped) may take to go.
pub const GONE_DEADLINE: Duration = Duration::from_secs(5);

/// How long the check waits for hearth to finish provisioning other workspaces, whose
/// processes it could not yet tell apart from the workspace's own.
const SETTLE_DEADLINE: Duration = Duration::from_secs(60);

/// One process of the session that may be workspace X's, and why the harness thinks so.
#[derive(Clone, Debug)]
pub struct LeftProcess {
    pub process: SessionProcess,
    pub why: String,
}

impl std::fmt::Display for LeftProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.process, self.why)
    }
}

/// Which workspace each process of the session belongs to, from every source the harness has:
/// the endpoints the scenario saw (`seen`), what hearth lists now, and the `process` driver's
/// state file. `None`: no source claims it.
struct Owners {
    endpoints: BTreeMap<String, BTreeSet<String>>,
    pids: BTreeMap<u32, String>,
}

impl Owners {
    fn of(&self, p: &SessionProcess) -> Option<&str> {
        if let Some(slug) = self.pids.get(&p.pid) {
            return Some(slug);
        }
        self.endpoints
            .iter()
            .find(|(_, eps)| eps.iter().any(|e| p.serves(e)))
            .map(|(slug, _)| slug.as_str())
    }
}

/// The stand-ins of workspace `slug` that remain on the `process` driver: every live process
/// of the session (but the stack's hearth) that is `slug`'s, or that no live workspace claims.
/// Waits, within [`GONE_DEADLINE`], for those on their way out. `seen`: every endpoint the
/// scenario saw reported, by workspace (hearth's list and state file are added to it).
pub async fn processes_of(
    stack: &Stack,
    slug: &str,
    seen: &BTreeMap<String, BTreeSet<String>>,
) -> Vec<LeftProcess> {
    let hearth = stack.hearth();
    let mut endpoints = seen.clone();
    // A workspace hearth is still provisioning has processes no source names yet: wait
    // until hearth has none (hearth gone or silent: nothing is being provisioned by it).
    let until = tokio::time::Instant::now() + SETTLE_DEADLINE;
    loop {
        match hearth.list(Duration::from_secs(5)).await {
            Ok(all) => {
                for dep in &all {
                    endpoints
                        .entry(dep.slug.clone())
                        .or_default()
                        .extend(dep.services.iter().map(|s| s.endpoint.clone()));
                }
                let busy = all.iter().any(|d| d.status == Status::Provisioning);
                if !busy || tokio::time::Instant::now() >= until {
                    break;
                }
            }
            Err(_) => break,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let owners = Owners {
        endpoints,
        pids: state_pids(&rocky::hearth::driver::process::state_path(
            &stack.hearth_socket,
        )),
    };
    let hearth_pid = stack.hearth_pid();
    let left = processes::wait_gone(
        &stack.session,
        |p| Some(p.pid) != hearth_pid && owners.of(p).is_none_or(|o| o == slug),
        GONE_DEADLINE,
    )
    .await;
    left.into_iter()
        .map(|process| {
            let why = match owners.of(&process) {
                Some(_) => format!("workspace {slug}'s"),
                None => "of no live workspace of the session".to_owned(),
            };
            LeftProcess { process, why }
        })
        .collect()
}

/// Workspace → pids, as the `process` driver's state file at `path` names them (an entry's
/// pids may be plain numbers or objects with a `pid`). Only used to tell live workspaces'
/// processes apart: what exists is found from `/proc`, not from here.
fn state_pids(path: &Path) -> BTreeMap<u32, String> {
    let Ok(bytes) = std::fs::read(path) else {
        return BTreeMap::new();
    };
    let Ok(serde_json::Value::Object(state)) = serde_json::from_slice(&bytes) else {
        return BTreeMap::new();
    };
    let mut pids = BTreeMap::new();
    for (slug, entry) in state {
        for p in entry["pids"].as_array().into_iter().flatten() {
            if let Some(pid) = p.as_u64().or_else(|| p["pid"].as_u64()) {
                pids.insert(pid as u32, slug.clone());
            }
        }
    }
    pids
}

/// What the clean-up of a scenario's stack had to say and remove.
#[derive(Clone, Debug, Default)]
pub struct Cleanup {
    /// `warning: …` lines: a stop that went wrong, a leftover that could not be checked.
    pub notes: Vec<String>,
    /// What was left and removed (`process pid …`, `container rocky-…`).
    pub removed: Vec<String>,
}

/// Stops `stack` if it still runs, then removes whatever of its session remains (found from
/// outside hearth, see [`remove_session_leftovers`]), even after a failed scenario.
pub async fn cleanup(stack: Option<super::Stack>, opts: &StackOptions) -> Cleanup {
    let mut notes = Vec::new();
    if let Some(stack) = stack
        && let Err(e) = stack.stop().await
    {
        notes.push(format!("warning: {e}"));
    }
    let (removed, errors) = remove_session_leftovers(opts).await;
    notes.extend(errors.iter().map(|e| format!("warning: {e}")));
    Cleanup { notes, removed }
}

/// How long the after-hook's teardown of a workspace a scenario left up on a shared stack may
/// take (the console's own teardown deadline is shorter).
const RELEASE_DEADLINE: Duration = Duration::from_secs(120);

/// The after-hook of a scenario on a shared stack (its part of the stack, `tenant`): what
/// hearth's exit does for a stack of one's own, done for the scenario's workspaces alone.
/// Every workspace of the tenant still up (named by the scenario in `named`, or listed by
/// hearth under the tenant's prefix) is torn down through the console; then whatever Docker
/// object of the session still carries one of the tenant's workspaces is a leftover: removed
/// and named, and the scenario fails for it. Other scenarios' workspaces are not touched.
pub async fn release_tenant(
    stack: &Stack,
    tenant: &super::tenant::Tenant,
    named: impl IntoIterator<Item = String>,
) -> Cleanup {
    let mut notes = Vec::new();
    let mut removed = Vec::new();
    let hearth = stack.hearth();
    // A name that cannot be a workspace's on the shared stack was never made there.
    let mut slugs: BTreeSet<String> = named
        .into_iter()
        .filter(|n| rocky::slug::validate(n).is_ok())
        .map(|n| format!("{}{n}", tenant.prefix()))
        .filter(|slug| rocky::slug::validate(slug).is_ok())
        .collect();
    match hearth.list(Duration::from_secs(10)).await {
        Ok(all) => slugs.extend(
            all.into_iter()
                .filter(|d| tenant.name_of(&d.slug).is_some())
                .map(|d| d.slug),
        ),
        Err(e) => notes.push(format!("warning: cannot list hearth's workspaces: {e}")),
    }
    let console = rocky::client::ConsoleClient::new(stack.console_url.clone())
        .with_token(stack.admin_token.clone())
        .with_deadline(RELEASE_DEADLINE);
    for slug in &slugs {
        let down = matches!(
            hearth.status(slug, Duration::from_secs(10)).await,
            Ok(ref r) if r.status == Status::TierTornDown
        );
        if down {
            continue;
        }
        match console.delete_workspace(slug).await {
            Ok(a) if a.status == 200 || a.status == 404 => {}
            Ok(a) => notes.push(format!(
                "warning: tearing down workspace {} after the scenario answered {}: {}",
                tenant.unshare(slug),
                a.status,
                tenant.unshare(&a.body.to_string())
            )),
            Err(e) => notes.push(format!(
                "warning: tearing down workspace {} after the scenario: {}",
                tenant.unshare(slug),
                tenant.unshare(&e.to_string())
            )),
        }
    }
    if stack.driver == rocky::hearth::DriverKind::LocalDocker {
        match rocky::docker::connect().await {
            Ok(docker) => {
                let session = [rocky::hearth::labels::session_filter(&stack.session)];
                let objects = rocky::docker::sweep::list_labelled_objects(&docker, &session)
                    .await
                    .unwrap_or_default();
                let left: BTreeSet<String> = objects
                    .iter()
                    .filter_map(|o| o.labels.get(rocky::hearth::labels::WORKSPACE))
                    .filter(|w| tenant.name_of(w).is_some())
                    .cloned()
                    .collect();
                for slug in left {
                    let labels = [
                        session[0].clone(),
                        format!("{}={slug}", rocky::hearth::labels::WORKSPACE),
                    ];
                    match rocky::docker::sweep::sweep_labelled(&docker, &labels).await {
                        Ok(r) => removed.extend(named_removed(&r, &objects)),
                        Err(e) => notes.push(format!(
                            "warning: cleanup of workspace {} failed: {e}",
                            tenant.unshare(&slug)
                        )),
                    }
                }
            }
            Err(e) => notes.push(format!(
                "warning: cleanup of the scenario's workspaces: {e}"
            )),
        }
    }
    Cleanup { notes, removed }
}

/// What a sweep removed, each named from `listed` (the objects as listed before it, since a
/// sweep reports ids): `container NAME`, `network NAME`, or the id when it was not listed.
fn named_removed(
    swept: &rocky::docker::sweep::SweepReport,
    listed: &[rocky::docker::sweep::LabelledObject],
) -> Vec<String> {
    swept
        .containers
        .iter()
        .chain(&swept.networks)
        .map(
            |id| match listed.iter().find(|o| &o.id == id || &o.name == id) {
                Some(o) => format!("{} {}", o.kind, o.name),
                None => format!("Docker object {id}"),
            },
        )
        .collect()
}

/// Removes whatever of the session of `opts` remains once its stack has stopped, and names
/// each: the `process` driver's stand-ins (anything carrying the session marker, a hearth
/// that outlived its stop included), then every Docker object labelled with the session.
/// Returns what it removed, and what it could not check or remove.
pub async fn remove_session_leftovers(opts: &StackOptions) -> (Vec<String>, Vec<String>) {
    remove_session_leftovers_within(opts, GONE_DEADLINE).await
}

/// [`remove_session_leftovers`], giving processes on their way out `going` to go before they
/// are killed.
async fn remove_session_leftovers_within(
    opts: &StackOptions,
    going: Duration,
) -> (Vec<String>, Vec<String>) {
    let session = &opts.session;
    let mut removed = Vec::new();
    let mut errors = Vec::new();
    // Processes killed by hearth's exit take a moment to go; a leaked one stays.
    let left = processes::wait_gone(session, |_| true, going).await;
    if !left.is_empty() {
        let stuck = processes::kill(session, &left, GONE_DEADLINE).await;
        for p in &left {
            removed.push(format!("process {p}"));
        }
        for p in stuck {
            errors.push(format!("process {p} survived SIGKILL"));
        }
    }
    if opts.driver == rocky::hearth::DriverKind::LocalDocker {
        match rocky::docker::connect().await {
            Ok(docker) => {
                let label = [format!("{}={session}", rocky::hearth::labels::SESSION)];
                // Listed first for their names (the sweep reports ids).
                let named = rocky::docker::sweep::list_labelled_objects(&docker, &label)
                    .await
                    .unwrap_or_default();
                match rocky::docker::sweep::sweep(&docker, Some(session)).await {
                    Ok(r) => removed.extend(named_removed(&r, &named)),
                    Err(e) => errors.push(format!("cleanup of session {session} failed: {e}")),
                }
            }
            Err(e) => errors.push(format!("cleanup of session {session}: {e}")),
        }
    }
    (removed, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncBufReadExt;

    /// What the after-hook finds of a stopped session is removed and named; another
    /// session's process is left alone.
    #[tokio::test]
    async fn a_session_leftover_is_removed_and_named() {
        // The cache every run uses: compiled once, not by each test (`images::standin`'s
        // own test compiles into a fresh one).
        let standin = crate::images::standin_binary(&crate::images::default_cache_dir()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let opts = StackOptions::new(rocky::hearth::DriverKind::Process, dir.path().into());
        let other = rocky::ids::random_hex(6);
        let spawn = |session: &str| {
            let mut child = tokio::process::Command::new(&standin)
                .args(["--listen", "127.0.0.1:0", "--name", "lore"])
                .env(processes::SESSION_ENV, session)
                .stdout(std::process::Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .unwrap();
            let stdout = child.stdout.take().unwrap();
            (child, tokio::io::BufReader::new(stdout).lines())
        };
        let (mut leaked, mut leaked_out) = spawn(&opts.session);
        let (_kept, mut kept_out) = spawn(&other);
        leaked_out.next_line().await.unwrap().unwrap();
        kept_out.next_line().await.unwrap().unwrap();
        // The leaked process is not on its way out: it is only waited for this long.
        let (removed, errors) =
            remove_session_leftovers_within(&opts, Duration::from_millis(200)).await;
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(removed.len(), 1, "{removed:?}");
        let pid = leaked.id().unwrap();
        assert!(
            removed[0].starts_with(&format!("process pid {pid} (")) && removed[0].contains("lore"),
            "{removed:?}"
        );
        let _ = leaked.wait().await;
        assert!(processes::of_session(&opts.session).await.is_empty());
        assert_eq!(
            processes::of_session(&other).await.len(),
            1,
            "another session's stays"
        );
    }
}
