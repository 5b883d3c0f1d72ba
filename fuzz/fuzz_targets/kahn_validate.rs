#![no_main]
//! KAHN validation: any text is a frame or a named rejection, never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = rocky::kahn::validate(text);
    }
});
