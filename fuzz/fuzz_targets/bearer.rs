#![no_main]
//! Bearer parsing and verification (with the replay memory): any header is accepted only if
//! it is a valid signature, refused by name otherwise, never a panic.
use std::sync::LazyLock;

static RING: LazyLock<rocky::vault::Keyring> =
    LazyLock::new(|| rocky::vault::Keyring::single("v1", b"fuzz secret"));
static GUARD: LazyLock<rocky::vault::ReplayGuard> =
    LazyLock::new(|| rocky::vault::ReplayGuard::new(1024));

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = rocky::vault::parse_bearer(text);
    let (header, rest) = text.split_once('\n').unwrap_or((text, ""));
    let r = RING.verify_once(&GUARD, Some(header), "POST", rest, b"{}", 1_750_000_000, 30);
    assert!(r.is_err(), "a random header verified: {header:?}");
});
