//! With `autotests = false` a file under `tests/` runs only if something names it. Every
//! `tests/*.rs` of both packages is therefore a `[[test]]` target of its package's manifest or
//! a `mod` of the package's one test binary of many files (`tests/harness.rs`,
//! `rocky/tests/services.rs`), so a new test file cannot be skipped without a word.

use std::path::Path;

/// The `tests/*.rs` files of the package at `package` that neither a `[[test]]` `path` of its
/// manifest nor a `mod` line of `collector` names.
fn unnamed_test_files(package: &Path, collector: &str) -> Vec<String> {
    let manifest = std::fs::read_to_string(package.join("Cargo.toml")).expect("the manifest");
    let modules = std::fs::read_to_string(package.join("tests").join(collector))
        .expect("the test binary of many files");
    let mut unnamed = Vec::new();
    for entry in std::fs::read_dir(package.join("tests")).expect("tests/") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .expect("a UTF-8 file name");
        let module = file.trim_end_matches(".rs");
        let target = manifest.contains(&format!("path = \"tests/{file}\""));
        let included = modules
            .lines()
            .any(|l| l.trim() == format!("mod {module};"));
        if !target && !included {
            unnamed.push(format!("tests/{file}"));
        }
    }
    unnamed.sort();
    unnamed
}

#[test]
fn every_test_file_of_the_harness_is_a_target_or_a_module_of_one() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert_eq!(
        unnamed_test_files(root, "harness.rs"),
        Vec::<String>::new(),
        "add each file as `mod <name>;` to tests/harness.rs (or a [[test]] in Cargo.toml)"
    );
}

#[test]
fn every_test_file_of_the_services_is_a_target_or_a_module_of_one() {
    let rocky = Path::new(env!("CARGO_MANIFEST_DIR")).join("rocky");
    assert_eq!(
        unnamed_test_files(&rocky, "services.rs"),
        Vec::<String>::new(),
        "add each file as `mod <name>;` to rocky/tests/services.rs (or a [[test]] in rocky/Cargo.toml)"
    );
}

/// The binaries are `test = false` (no test binary is linked for them), so a test written in
/// one would never run: their files hold none.
#[test]
fn no_binary_holds_a_test() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut holding = Vec::new();
    for dir in ["src/bin", "rocky/src/bin"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("a bin folder") {
            let path = entry.expect("a directory entry").path();
            let text = std::fs::read_to_string(&path).expect("a binary's source");
            if text.contains("#[test]") || text.contains("#[cfg(test)]") {
                holding.push(path.display().to_string());
            }
        }
    }
    assert_eq!(
        holding,
        Vec::<String>::new(),
        "move the tests into the library, or set `test = true` for the binary"
    );
}
