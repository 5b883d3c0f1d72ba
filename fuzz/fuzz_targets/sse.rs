#![no_main]
//! The SSE parser: any byte stream, cut into chunks at arbitrary points, parses to the same
//! events as in one piece, within its bounds; never a panic.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&cut, body)) = data.split_first() else {
        return;
    };
    let mut whole = rocky::sse::SseParser::new(4096, 8192);
    let mut a = Vec::new();
    let ra = whole.push(body, &mut a);
    let mut split = rocky::sse::SseParser::new(4096, 8192);
    let mut b = Vec::new();
    let step = usize::from(cut).max(1);
    let mut rb = Ok(());
    for chunk in body.chunks(step) {
        rb = split.push(chunk, &mut b);
        if rb.is_err() {
            break;
        }
    }
    if ra.is_ok() && rb.is_ok() {
        assert_eq!(a, b, "chunking changed the events");
    }
});
