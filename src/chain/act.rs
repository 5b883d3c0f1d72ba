//! The six acts of the play, and which act each HATCH event kind fires in.
//!
//! The acts are how the harness reads a chain (the gap report names the act of every row, the
//! world times every act); the services need no such notion, so the harness keeps its own.

use rocky::hatch::EventKind;

rocky::wire_enum! {
    /// The six acts of the play, in order; an act's name is what the play prints.
    pub enum Act {
        Spawn = "spawn hearth",
        Provision = "provision",
        Submit = "submit run",
        Stream = "stream nodes",
        Teardown = "teardown",
        Status = "status",
    }
}

impl Act {
    /// The act of the play in which events of `kind` fire.
    pub fn of(kind: EventKind) -> Act {
        match kind {
            EventKind::ProvisioningStarted | EventKind::Provisioned | EventKind::Failed => {
                Act::Provision
            }
            EventKind::RunStarted => Act::Submit,
            EventKind::NodeSucceeded | EventKind::NodeFailed | EventKind::RunEnded => Act::Stream,
            EventKind::DecommissionStarted | EventKind::Decommissioned => Act::Teardown,
        }
    }

    /// The act's number in the play, 1 to 6.
    pub fn number(self) -> u8 {
        match self {
            Act::Spawn => 1,
            Act::Provision => 2,
            Act::Submit => 3,
            Act::Stream => 4,
            Act::Teardown => 5,
            Act::Status => 6,
        }
    }

    /// What the act is called when the play is printed.
    pub fn name(self) -> &'static str {
        self.as_str()
    }

    /// `2 provision`, as the gap report labels an act.
    pub fn label(self) -> String {
        format!("{} {}", self.number(), self.name())
    }

    /// The act with this name (`provision`) or label (`2 provision`), if any.
    pub fn named(name: &str) -> Option<Act> {
        let name = name.trim();
        Act::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name) || a.label().eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_fire_in_the_acts_between_spawn_and_status() {
        let acts: Vec<Act> = EventKind::ALL.into_iter().map(Act::of).collect();
        assert!(
            acts.iter()
                .all(|a| (Act::Provision..=Act::Teardown).contains(a))
        );
        assert_eq!(Act::of(EventKind::Failed), Act::Provision);
        assert_eq!(Act::of(EventKind::NodeFailed), Act::Stream);
        let numbers: Vec<u8> = Act::ALL.into_iter().map(Act::number).collect();
        assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);
    }
}
