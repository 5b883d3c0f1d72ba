#![no_main]
//! HATCH verify over a log and its seal: the input is split at the first NUL into log and
//! seal. Anything is verified or refused by name; never a panic.
use std::sync::LazyLock;

static KEY: LazyLock<rocky::vault::Keyring> =
    LazyLock::new(|| rocky::vault::Keyring::single("hatch-1", b"fuzz seal key"));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (log, seal) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let _ = rocky::hatch::verify_bytes(log);
    let path = std::path::Path::new("fuzz.jsonl.seal");
    let _ = rocky::hatch::verify_sealed_bytes(log, seal, path, Some(&KEY));
    let _ = rocky::hatch::verify_sealed_bytes(log, seal, path, None);
    if let Some(seal) = seal.and_then(|s| rocky::hatch::Seal::parse(s).ok()) {
        let _ = rocky::hatch::repair_plan(log, &seal);
    }
});
