//! Test support shared by the tests of both wings (`rocky`'s and the harness's): a
//! dev-dependency only, so `rocky/` itself holds nothing test-only.

use std::io::{self, Read as _};
use std::os::fd::AsRawFd as _;
use std::os::unix::process::CommandExt as _;
use std::process::{Command, ExitStatus};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A child of this process (`true`) that pauses between its fork and its exec. Until it execs
/// it holds a copy of every descriptor this process had at the fork: a listener, a locked
/// file. The races this recreates were found with tests run many at a time, where another
/// test's child (a hearth, a stand-in) is forked at just the wrong moment.
pub struct SlowToExec {
    thread: JoinHandle<io::Result<(ExitStatus, Instant)>>,
}

/// Forks a [`SlowToExec`] child that pauses `pause` before its exec, and returns once it is
/// forked (it holds its copies from then on).
pub fn fork_slow_to_exec(pause: Duration) -> io::Result<SlowToExec> {
    let (mut forked, tell) = io::pipe()?;
    let tell_fd = tell.as_raw_fd();
    let pause = libc::timespec {
        tv_sec: pause.as_secs() as libc::time_t,
        tv_nsec: libc::c_long::from(pause.subsec_nanos()),
    };
    let thread = std::thread::spawn(move || {
        let mut cmd = Command::new("true");
        // SAFETY: between fork and exec only async-signal-safe calls: write, nanosleep.
        unsafe {
            cmd.pre_exec(move || {
                libc::write(tell_fd, b"f".as_ptr().cast(), 1);
                libc::nanosleep(&pause, std::ptr::null_mut());
                Ok(())
            });
        }
        // `spawn` returns once the child has exec'd (std reads its close-on-exec error pipe
        // to the end): then the child's copies are closed.
        let spawned = cmd.spawn();
        let execd = Instant::now();
        drop(tell);
        Ok((spawned?.wait()?, execd))
    });
    let child = SlowToExec { thread };
    match forked.read_exact(&mut [0u8; 1]) {
        Ok(()) => Ok(child),
        // The pipe closed unwritten: the child never forked; the spawn's own error says why.
        Err(read) => Err(child.wait().err().unwrap_or(read)),
    }
}

impl SlowToExec {
    /// Waits until the child has exec'd and exited: its exit status.
    pub fn wait(self) -> io::Result<ExitStatus> {
        self.wait_execd().map(|(status, _)| status)
    }

    /// [`Self::wait`], and when the child was seen to have exec'd (no later than this, its
    /// copies of this process's descriptors were closed).
    pub fn wait_execd(self) -> io::Result<(ExitStatus, Instant)> {
        self.thread
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the thread running the child panicked")))
    }
}
