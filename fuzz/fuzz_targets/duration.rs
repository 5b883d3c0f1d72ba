#![no_main]
//! Duration parsing: any text is a duration or a named error, never a panic or a wrap.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(d) = rocky::duration::parse(text) {
            let _ = rocky::duration::display(d);
        }
        let _ = rocky::duration::parse_within(
            text,
            std::time::Duration::ZERO,
            std::time::Duration::from_secs(60),
        );
    }
});
