//! The step reference (`features/STEPS.md`) for the current code and features.

use std::path::Path;

use crate::vocabulary;

/// Used by `rocky-e2e steps`: the reference text for the current code and features.
pub fn steps_reference() -> (String, Vec<String>) {
    vocabulary::steps_reference(
        &crate::steps::definitions(),
        &crate::layout::current().features,
    )
}

/// `true` when `path` holds exactly the current reference.
pub fn reference_is_current(path: &Path) -> bool {
    vocabulary::reference_is_current(
        path,
        &crate::steps::definitions(),
        &crate::layout::current().features,
    )
}
