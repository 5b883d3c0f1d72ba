//! HATCH events as their producers state them: the event kinds (the only place their wire
//! names are spelled), the acts of the play they belong to, and the [`Event`] a producer
//! hands to [`Hatch::append`](super::Hatch::append).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

crate::wire_enum! {
    /// What happened, as the chain spells it. The names below are the only place in the crate
    /// where these strings appear; everything else goes through [`EventKind::as_str`].
    /// `ALL` lists the kinds in the order the play emits them.
    pub enum EventKind {
        /// Console accepted a provision request and is calling hearth.
        ProvisioningStarted = "hearth.provisioning_started",
        /// Hearth returned a DeploymentRef with status `ready`.
        Provisioned = "hearth.provisioned",
        /// Provisioning failed; `data.reason` says why.
        Failed = "hearth.failed",
        /// The worker accepted the submission and returned a run_id.
        RunStarted = "ralph.run.started",
        /// A KAHN node reached `succeeded`; `data.attempts`.
        NodeSucceeded = "ralph.node.succeeded",
        /// A KAHN node reached `failed`; `data.attempts`.
        NodeFailed = "ralph.node.failed",
        /// The run finished; `data.status`.
        RunEnded = "ralph.run.ended",
        /// Console accepted a delete and is calling hearth Teardown.
        DecommissionStarted = "hearth.decommission_started",
        /// Hearth reports the tier torn down.
        Decommissioned = "hearth.decommissioned",
    }
}

/// What a record is about; only the keys that are relevant are present on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subject {
    /// The workspace slug, for every event of a workspace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<String>,
    /// The RALPH run, for run and node events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    /// The KAHN node, for node events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_id: Option<String>,
}

/// An event as its producer states it; [`Hatch::append`](super::Hatch::append) turns it into a chained [`Record`](super::Record).
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The principal that caused it ("admin", "system").
    pub actor: String,
    /// What it happened to.
    pub subject: Subject,
    /// Kind-specific details; a JSON object, never a secret.
    pub data: Value,
}

impl Event {
    /// An event with an empty subject and empty `data` object.
    pub fn new(kind: EventKind, actor: impl Into<String>) -> Self {
        Event {
            kind,
            actor: actor.into(),
            subject: Subject::default(),
            data: Value::Object(Map::new()),
        }
    }

    /// Sets `subject.workspace`.
    pub fn workspace(mut self, workspace: impl Into<String>) -> Self {
        self.subject.workspace = Some(workspace.into());
        self
    }

    /// Sets `subject.run_id`.
    pub fn run_id(mut self, run_id: impl Into<String>) -> Self {
        self.subject.run_id = Some(run_id.into());
        self
    }

    /// Sets `subject.node_id`.
    pub fn node_id(mut self, node_id: impl Into<String>) -> Self {
        self.subject.node_id = Some(node_id.into());
        self
    }

    /// Sets `data`; [`Hatch::append`](super::Hatch::append) refuses anything but a JSON object.
    pub fn data(mut self, data: Value) -> Self {
        self.data = data;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_round_trip_through_their_names() {
        for kind in EventKind::ALL {
            assert_eq!(EventKind::parse(kind.as_str()), Some(kind));
            let wire = serde_json::to_string(&kind).expect("encode");
            assert_eq!(wire, format!("\"{}\"", kind.as_str()));
            assert_eq!(
                serde_json::from_str::<EventKind>(&wire).expect("decode"),
                kind
            );
        }
        assert_eq!(EventKind::parse("hearth.exploded"), None);
        assert!(serde_json::from_str::<EventKind>("\"hearth.exploded\"").is_err());
    }
}
