//! The act an event kind belongs to, for reports that read kinds as text (snapshot files,
//! chains): the harness's one mapping ([`crate::chain::Act::of`]).

pub use crate::chain::Act;

/// The act in which an event of this kind fires; `None` for a kind the play does not know.
pub fn act_of(kind: &str) -> Option<Act> {
    rocky::hatch::EventKind::parse(kind).map(Act::of)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_map_to_the_acts_of_the_play() {
        assert_eq!(act_of("hearth.failed"), Some(Act::Provision));
        assert_eq!(
            act_of("ralph.run.ended").map(Act::label).as_deref(),
            Some("4 stream nodes")
        );
        assert_eq!(act_of("billing.charged"), None);
        assert_eq!(Act::named("teardown"), Some(Act::Teardown));
        assert_eq!(Act::named("1 spawn hearth"), Some(Act::Spawn));
    }
}
