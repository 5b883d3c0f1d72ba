//! What the tests that copy a checkout share: the copy, and a `PATH` that finds the copied
//! binaries first.

use std::path::Path;

/// Copies the tree `from` to `to`, folders and files.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// `PATH` with `dir` first.
pub fn path_with(dir: &Path) -> std::ffi::OsString {
    let rest = std::env::var_os("PATH").unwrap_or_default();
    std::env::join_paths(std::iter::once(dir.to_owned()).chain(std::env::split_paths(&rest)))
        .unwrap()
}

/// `dir/bin` holding this build's `rocky-e2e` and the service binaries (built first if
/// need be), as an installed copy far from the checkout would have them.
#[allow(
    dead_code,
    reason = "not every test binary that shares this module installs one"
)]
pub fn install_binaries(dir: &Path) -> std::path::PathBuf {
    rocky_e2e::binaries::ensure_built().unwrap();
    let hearth = rocky_e2e::stack::locate_hearth(&rocky_e2e::binaries::search_dirs()).unwrap();
    let built = hearth.parent().unwrap();
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::copy(env!("CARGO_BIN_EXE_rocky-e2e"), bin.join("rocky-e2e")).unwrap();
    for name in ["hearth", "console", "ralph"] {
        std::fs::copy(built.join(name), bin.join(name)).unwrap();
    }
    bin
}
