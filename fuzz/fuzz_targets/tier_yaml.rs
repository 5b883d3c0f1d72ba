#![no_main]
//! Tier profiles from YAML: parsed and checked, or refused; never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Ok(profile) = yaml_serde::from_str::<rocky::tier::TierProfile>(text)
    {
        let _ = profile.check();
    }
});
