#![no_main]
//! Slugs: validation agrees with the contract's regex, `^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let b = text.as_bytes();
        let inner = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
        let expected = !b.is_empty()
            && b.len() <= 32
            && inner(&b[0])
            && inner(&b[b.len() - 1])
            && b.iter().all(|c| inner(c) || *c == b'-');
        assert_eq!(rocky::slug::validate(text).is_ok(), expected, "{text:?}");
    }
});
