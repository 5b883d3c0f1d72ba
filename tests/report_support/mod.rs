//! What the report tests share: a DevTools-protocol client for headless Chromium, and a run
//! with one failing scenario as the runner would fill it.

pub mod cdp;
pub mod sample;
