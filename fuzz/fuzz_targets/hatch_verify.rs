#![no_main]
//! HATCH verify over a log, its seal and checkpoints: the input is split at NULs into the log,
//! the seal, then any number of checkpoints (copies of earlier seals). Anything is verified or
//! refused by name; never a panic. A log that verifies against checkpoints also verifies
//! without them, and the order of the checkpoints never changes whether it verifies.
use std::path::Path;
use std::sync::LazyLock;

static KEY: LazyLock<rocky::vault::Keyring> =
    LazyLock::new(|| rocky::vault::Keyring::single("hatch-1", b"fuzz seal key"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|&b| b == 0);
    let log = parts.next().unwrap_or_default();
    let seal = parts.next();
    let checkpoints: Vec<_> = parts
        .take(4)
        .filter_map(|c| rocky::hatch::Checkpoint::parse(Path::new("fuzz.checkpoint"), c).ok())
        .collect();
    let _ = rocky::hatch::verify_bytes(log);
    let path = Path::new("fuzz.jsonl.seal");
    let _ = rocky::hatch::verify_sealed_bytes(log, seal, path, None);
    let alone = rocky::hatch::verify_sealed_bytes(log, seal, path, Some(&KEY));
    if let Some(seal) = seal.and_then(|s| rocky::hatch::Seal::parse(s).ok()) {
        let _ = rocky::hatch::repair_plan(log, &seal);
    }
    if checkpoints.is_empty() {
        // Against no checkpoint is the verification above: nothing more to compare.
        return;
    }
    for key in [None, Some(&*KEY)] {
        let against =
            rocky::hatch::verify_sealed_bytes_against(log, seal, path, key, &checkpoints);
        let mut reversed = checkpoints.clone();
        reversed.reverse();
        let other_order =
            rocky::hatch::verify_sealed_bytes_against(log, seal, path, key, &reversed);
        assert_eq!(against.is_ok(), other_order.is_ok());
        if key.is_some() && against.is_ok() {
            assert!(alone.is_ok(), "verified against checkpoints but not alone");
        }
        if let Ok(summary) = &against {
            for c in &checkpoints {
                assert_eq!(c.seal.log_id, summary.seal.log_id);
                assert!(c.seal.records <= summary.chain.records);
            }
        }
    }
});
