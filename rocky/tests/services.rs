//! The services' integration tests, one module per file, in one test binary: `cargo test`
//! runs test binaries one after another, and these tests mostly wait (on sockets, processes
//! and deadlines), so in one binary libtest overlaps the waits of one file with another's.
//! Run one file's tests with `cargo test -p rocky --test services <file>::`.

mod support;

mod api_errors;
mod bounded;
mod console_runs;
mod fail_closed;
mod hatch_disk_faults;
mod hearth_lock;
mod hearth_ownership;
mod hearth_remains;
mod runs_end_with_follower;
mod worker_answers;
mod worker_bearer;
mod workspace_status;
