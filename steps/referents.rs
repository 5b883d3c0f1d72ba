//! What "the …" means in a scenario's prose (CONTRACT §10): the referents the World keeps.

/// What "the run" means at this point of a scenario (CONTRACT §10): the run the scenario last
/// named. Prose names a run by submitting it, waiting for it (`the run in workspace "x" ends`)
/// or checking it (`the run status in workspace "x" is …`); runs submitted one after another
/// with nothing naming one in between are all candidates, and "the run" is then ambiguous.
#[derive(Clone, Debug, Default)]
pub struct NamedRuns {
    /// Indices into [`super::world::PlayWorld::submissions`].
    pub(super) candidates: Vec<usize>,
    /// Whether the candidates came from consecutive submissions (a further one joins them).
    by_submission: bool,
}

impl NamedRuns {
    /// A run was just submitted (accepted or not).
    pub(super) fn submitted(&mut self, index: usize) {
        if !self.by_submission {
            self.candidates.clear();
        }
        self.candidates.push(index);
        self.by_submission = true;
    }

    /// A step named this submission explicitly.
    pub(super) fn picked(&mut self, index: usize) {
        self.candidates = vec![index];
        self.by_submission = false;
    }
}
