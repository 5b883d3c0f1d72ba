//! Stacks shared by the scenarios that fault neither the console nor the worker: one hearth,
//! console and worker per configuration (the [`StackOptions`] but the session and the work
//! directory), started by the first scenario that needs it and stopped at the end of the run
//! ([`stop_all`]). Starting the console and worker containers is most of a Docker scenario's
//! time; the workspaces, the scenario's slice of the HATCH log and its snapshot stay its own
//! ([`super::tenant`]).
//!
//! A scenario that faults the console, the worker or hearth (its options differ from the
//! topology's, or a step kills or stops a service) keeps a stack of its own: [`StackRef`]
//! gives such a step the stack only when the scenario owns it.
//!
//! Cleanup is as for a stack of one's own: every object carries this process's labels
//! (`rocky.pid`), hearth exits when this process goes, and the next run's sweep removes what a
//! killed run left.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::{Stack, StackError, StackOptions};

/// A scenario's stack: its own, or one it shares.
pub enum StackRef {
    Own(Box<Stack>),
    /// With the scenario's slot of [`crate::containers::max_stacks`] (its workspaces'
    /// networks), held while it runs.
    Shared {
        stack: Arc<Stack>,
        slot: Option<crate::containers::Slot>,
    },
}

impl std::ops::Deref for StackRef {
    type Target = Stack;
    fn deref(&self) -> &Stack {
        match self {
            StackRef::Own(s) => s,
            StackRef::Shared { stack, .. } => stack,
        }
    }
}

impl StackRef {
    /// True when other scenarios run on this stack too.
    pub fn is_shared(&self) -> bool {
        matches!(self, StackRef::Shared { .. })
    }

    /// The stack, to fault or stop it (`what`): only a stack the scenario owns.
    pub fn own_mut(&mut self, what: &str) -> Result<&mut Stack, String> {
        match self {
            StackRef::Own(s) => Ok(&mut **s),
            StackRef::Shared { .. } => Err(shared_refusal(what)),
        }
    }

    /// The stack itself, to stop it: only a stack the scenario owns.
    pub fn into_own(self, what: &str) -> Result<Stack, String> {
        match self {
            StackRef::Own(s) => Ok(*s),
            StackRef::Shared { .. } => Err(shared_refusal(what)),
        }
    }
}

fn shared_refusal(what: &str) -> String {
    format!(
        "cannot {what}: this scenario shares its stack with other scenarios; a step that faults or stops a service must be listed in `steps::FAULTING_STEPS`, so that its scenarios get a stack of their own"
    )
}

/// The configuration a stack is shared by: every option but the session and the work
/// directory.
pub fn configuration(opts: &StackOptions) -> String {
    let mut o = opts.clone();
    o.session = String::new();
    o.work_dir = Default::default();
    o.shared = false;
    format!("{o:?}")
}

/// One shared stack and what it was started in.
struct Entry {
    stack: tokio::sync::OnceCell<Arc<Stack>>,
    /// The stack's directory (socket, HATCH log, secrets); removed once it stopped.
    dir: Mutex<Option<tempfile::TempDir>>,
    /// Its options, once started (for the cleanup of its session).
    options: Mutex<Option<StackOptions>>,
    /// Scenarios that ran on it.
    tenants: std::sync::atomic::AtomicUsize,
}

fn registry() -> &'static Mutex<HashMap<String, Arc<Entry>>> {
    static SHARED: std::sync::OnceLock<Mutex<HashMap<String, Arc<Entry>>>> =
        std::sync::OnceLock::new();
    SHARED.get_or_init(Default::default)
}

/// The shared stack of the configuration of `opts`, started now if none runs yet (the others
/// asking meanwhile wait for it; a start that fails is tried again by the next scenario); on
/// the container topology, once a slot is free for the scenario's workspaces (taken first: the
/// shared stack takes none, so the slot is held while it starts, not behind every stack of
/// a scenario's own that asked meanwhile).
pub async fn join(opts: &StackOptions) -> Result<StackRef, StackError> {
    let slot = match opts.services {
        super::Services::Containers(_) => Some(
            crate::containers::take_slot(&opts.session, crate::containers::Claim::Tenant).await?,
        ),
        super::Services::InProcess => None,
    };
    let stack = acquire(opts).await?;
    Ok(StackRef::Shared { stack, slot })
}

async fn acquire(opts: &StackOptions) -> Result<Arc<Stack>, StackError> {
    let entry = registry()
        .lock()
        .expect("shared stacks lock")
        .entry(configuration(opts))
        .or_insert_with(|| {
            Arc::new(Entry {
                stack: tokio::sync::OnceCell::new(),
                dir: Mutex::new(None),
                options: Mutex::new(None),
                tenants: Default::default(),
            })
        })
        .clone();
    let stack = entry
        .stack
        .get_or_try_init(|| async {
            let dir = super::scratch::create(super::scratch::Kind::Shared)
                .map_err(|e| StackError::Setup(format!("create a shared stack directory: {e}")))?;
            let mut shared = opts.clone();
            shared.session = rocky::ids::random_hex(6);
            shared.shared = true;
            shared.work_dir = dir.path().join("stack");
            let stack = Stack::start(&shared).await?;
            *entry.dir.lock().expect("shared stack lock") = Some(dir);
            *entry.options.lock().expect("shared stack lock") = Some(shared);
            Ok::<_, StackError>(Arc::new(stack))
        })
        .await?
        .clone();
    entry
        .tenants
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(stack)
}

/// What stopping the shared stacks said.
#[derive(Debug, Default)]
pub struct Stopped {
    /// One line per stack stopped: its session and how many scenarios ran on it.
    pub stacks: Vec<String>,
    /// What went wrong: a stop that failed, a scenario still holding a stack, what was left
    /// of a session and removed.
    pub problems: Vec<String>,
}

/// Stops every shared stack (the end of a run): each scenario has already removed its own
/// workspaces, so whatever its session still holds once the stack stopped is a problem, named
/// and removed.
pub async fn stop_all() -> Stopped {
    let entries: Vec<Arc<Entry>> = registry()
        .lock()
        .expect("shared stacks lock")
        .drain()
        .map(|(_, e)| e)
        .collect();
    let mut stopped = Stopped::default();
    for entry in entries {
        let Some(options) = entry.options.lock().expect("shared stack lock").take() else {
            continue;
        };
        // Kept until the stack has stopped: it holds the stack's socket and HATCH log.
        let dir = entry.dir.lock().expect("shared stack lock").take();
        let tenants = entry.tenants.load(std::sync::atomic::Ordering::Relaxed);
        let session = options.session.clone();
        let stack = Arc::into_inner(entry)
            .and_then(|e| e.stack.into_inner())
            .and_then(Arc::into_inner);
        match stack {
            Some(stack) => {
                if let Err(e) = stack.stop().await {
                    stopped
                        .problems
                        .push(format!("the shared stack of session {session}: {e}"));
                }
            }
            None => stopped.problems.push(format!(
                "the shared stack of session {session} was still held after the run, so it was not stopped"
            )),
        }
        let (removed, errors) = super::leftovers::remove_session_leftovers(&options).await;
        if !removed.is_empty() {
            stopped.problems.push(format!(
                "the shared stack of session {session} left {} thing(s) behind, removed: {}",
                removed.len(),
                removed.join("; ")
            ));
        }
        stopped.problems.extend(errors);
        stopped
            .stacks
            .push(format!("session {session}, {tenants} scenario(s)"));
        drop(dir);
    }
    stopped
}
