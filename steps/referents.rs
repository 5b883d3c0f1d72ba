//! What "the …" means in a scenario's prose (CONTRACT §10): the referents the World keeps.

/// What "the run" means at this point of a scenario (CONTRACT §10): the run the scenario last
/// named. Prose names a run by submitting it, waiting for it (`the run in workspace "x" ends`)
/// or checking it (`the run is accepted`, `the run status in workspace "x" is …`); runs
/// submitted one after another with nothing naming one in between are all candidates, and
/// "the run" is then ambiguous. So is "the run in workspace "x"" when two of the candidates
/// were submitted in workspace "x": the workspace does not tell them apart.
#[derive(Clone, Debug, Default)]
pub struct NamedRuns {
    /// Indices into [`super::world::PlayWorld::submissions`].
    candidates: Vec<usize>,
    /// Whether the candidates came from consecutive submissions (a further one joins them).
    by_submission: bool,
}

/// What a step's words mean (see [`NamedRuns::meant`]); runs are indices into the
/// submissions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Meant {
    /// No run was submitted (in the step's workspace, for a workspace-scoped step).
    Nothing,
    /// Exactly this run, which the step now names.
    One(usize),
    /// "the run", with candidates each in a workspace of its own: the workspace-scoped step
    /// tells them apart.
    InWorkspaces(Vec<usize>),
    /// Candidates of which several (`alike`) were submitted in `workspace`: the
    /// workspace-scoped step does not tell those apart, only naming each run as it is
    /// submitted does. `all` is every candidate "the run" could mean (for a
    /// workspace-scoped step, `alike` again).
    Alike {
        all: Vec<usize>,
        workspace: String,
        alike: Vec<usize>,
    },
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
    fn picked(&mut self, index: usize) {
        self.candidates = vec![index];
        self.by_submission = false;
    }

    /// The run "the run" means (`slug` `None`), or "the run in workspace `slug`";
    /// `workspaces[i]` is the workspace of submission `i`. A step that means exactly one run
    /// names it: a run submitted after it is then the only candidate.
    pub(super) fn meant(&mut self, slug: Option<&str>, workspaces: &[&str]) -> Meant {
        let meant = match slug {
            Some(s) => {
                let alike: Vec<usize> = self
                    .candidates
                    .iter()
                    .copied()
                    .filter(|&i| workspaces[i] == s)
                    .collect();
                if alike.len() > 1 {
                    return Meant::Alike {
                        all: alike.clone(),
                        workspace: s.to_owned(),
                        alike,
                    };
                }
                match workspaces.iter().rposition(|w| *w == s) {
                    Some(index) => Meant::One(index),
                    None => Meant::Nothing,
                }
            }
            None => match self.candidates.as_slice() {
                [] => Meant::Nothing,
                [one] => Meant::One(*one),
                several => {
                    let crowded = several.iter().find_map(|&i| {
                        let alike: Vec<usize> = several
                            .iter()
                            .copied()
                            .filter(|&j| workspaces[j] == workspaces[i])
                            .collect();
                        (alike.len() > 1).then(|| (workspaces[i].to_owned(), alike))
                    });
                    match crowded {
                        Some((workspace, alike)) => Meant::Alike {
                            all: several.to_vec(),
                            workspace,
                            alike,
                        },
                        None => Meant::InWorkspaces(several.to_vec()),
                    }
                }
            },
        };
        if let Meant::One(index) = meant {
            self.picked(index);
        }
        meant
    }
}

#[cfg(test)]
mod tests {
    use super::{Meant, NamedRuns};

    /// Submissions `from..from + count`, one after another.
    fn submitted(named: &mut NamedRuns, from: usize, count: usize) {
        for i in from..from + count {
            named.submitted(i);
        }
    }

    fn alike(all: &[usize], workspace: &str, alike: &[usize]) -> Meant {
        Meant::Alike {
            all: all.to_vec(),
            workspace: workspace.to_owned(),
            alike: alike.to_vec(),
        }
    }

    #[test]
    fn runs_in_workspaces_of_their_own_are_told_apart_by_the_workspace() {
        let ws = ["one", "two"];
        let mut named = NamedRuns::default();
        submitted(&mut named, 0, 2);
        assert_eq!(named.meant(None, &ws), Meant::InWorkspaces(vec![0, 1]));
        assert_eq!(named.meant(Some("two"), &ws), Meant::One(1));
        assert_eq!(named.meant(None, &ws), Meant::One(1));
        assert_eq!(named.meant(Some("one"), &ws), Meant::One(0));
        assert_eq!(named.meant(None, &ws), Meant::One(0));
        assert_eq!(named.meant(Some("three"), &ws), Meant::Nothing);
    }

    #[test]
    fn two_runs_in_one_workspace_are_not_told_apart_by_it() {
        let ws = ["one", "one"];
        let mut named = NamedRuns::default();
        submitted(&mut named, 0, 2);
        assert_eq!(named.meant(None, &ws), alike(&[0, 1], "one", &[0, 1]));
        assert_eq!(
            named.meant(Some("one"), &ws),
            alike(&[0, 1], "one", &[0, 1])
        );
        // Failing names nothing: the next step is just as ambiguous.
        assert_eq!(named.meant(None, &ws), alike(&[0, 1], "one", &[0, 1]));
    }

    #[test]
    fn a_crowded_workspace_among_others_is_named() {
        let ws = ["two", "one", "one"];
        let mut named = NamedRuns::default();
        submitted(&mut named, 0, 3);
        assert_eq!(named.meant(None, &ws), alike(&[0, 1, 2], "one", &[1, 2]));
        assert_eq!(
            named.meant(Some("one"), &ws),
            alike(&[1, 2], "one", &[1, 2])
        );
        assert_eq!(named.meant(Some("two"), &ws), Meant::One(0));
    }

    #[test]
    fn a_run_named_as_it_is_submitted_is_no_candidate_for_the_next_step() {
        let ws = ["one", "one"];
        for slug in [None, Some("one")] {
            let mut named = NamedRuns::default();
            submitted(&mut named, 0, 1);
            // `Then the run is accepted`: names the run.
            assert_eq!(named.meant(None, &ws), Meant::One(0));
            submitted(&mut named, 1, 1);
            assert_eq!(named.meant(slug, &ws), Meant::One(1), "{slug:?}");
        }
    }

    #[test]
    fn nothing_submitted_means_nothing() {
        let mut named = NamedRuns::default();
        assert_eq!(named.meant(None, &[]), Meant::Nothing);
        assert_eq!(named.meant(Some("one"), &[]), Meant::Nothing);
    }
}
