//! CPU and memory: the machine's and this process's CPU time over an interval, the load
//! average, and the peak RSS.

/// Plays over which the CPU of one embedded play is measured (/proc counts in 10 ms ticks).
pub(crate) const CPU_PLAYS: usize = 100;

/// CPU use since `start`: machine-wide from /proc/stat (the engine, hearth, the services and
/// this process, but also anything else running on the machine), and this process's with its
/// children's (the framework's own).
pub(crate) struct CpuMeter {
    pub(crate) start: Option<(u64, u64)>,
    pub(crate) own: f64,
}

impl CpuMeter {
    pub(crate) fn start() -> CpuMeter {
        CpuMeter {
            start: cpu_ticks(),
            own: own_cpu_ms(),
        }
    }

    /// CPU time of this process and its children since `start`, in core-milliseconds.
    pub(crate) fn own_ms(&self) -> f64 {
        own_cpu_ms() - self.own
    }

    /// Machine CPU time since `start`, in core-milliseconds.
    pub(crate) fn core_ms(&self) -> f64 {
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
        match (self.start, cpu_ticks()) {
            (Some((b0, _)), Some((b1, _))) => (b1 - b0) as f64 / hz * 1000.0,
            _ => f64::NAN,
        }
    }

    /// Machine CPU time over the interval divided by `runs`, e.g. "640 core-ms/run".
    pub(crate) fn per_run(&self, runs: usize) -> String {
        format!("{:.0} core-ms/run", self.core_ms() / runs.max(1) as f64)
    }

    /// "1.8/2 cores busy": average busy cores over the interval.
    pub(crate) fn busy_cores(&self) -> String {
        let cores = cores();
        match (self.start, cpu_ticks()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => format!(
                "{:.1}/{cores} cores busy",
                (b1 - b0) as f64 / (t1 - t0) as f64 * cores as f64
            ),
            _ => "– cores busy".into(),
        }
    }
}

/// CPU time of this process and its children (hearth, and through hearth's reaped children the
/// process driver's services), in core-milliseconds: the framework's own CPU, without the
/// engine's and without anything else running on the machine.
pub(crate) fn own_cpu_ms() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks = |pid: &str, fields: &[usize]| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|stat| {
                // Fields after the parenthesised command name, which may hold spaces.
                let rest = stat.rsplit_once(')')?.1;
                let f: Vec<&str> = rest.split_whitespace().collect();
                // `rest` starts at field 3 (state); utime is field 14.
                Some(
                    fields
                        .iter()
                        .filter_map(|&n| f.get(n - 3)?.parse::<u64>().ok())
                        .sum(),
                )
            })
            .unwrap_or(0)
    };
    let mut total = ticks("self", &[14, 15]);
    let children = std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("children")).ok())
        .flat_map(|c| c.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    for child in children {
        total += ticks(&child, &[14, 15, 16, 17]);
    }
    total as f64 / hz * 1000.0
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

/// (busy, total) jiffies of all CPUs.
pub(crate) fn cpu_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal
    let idle = fields.get(3)? + fields.get(4)?;
    let total: u64 = fields.iter().sum();
    Some((total - idle, total))
}

pub(crate) fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// Resets this process's peak RSS to its current RSS (Linux ≥ 4.0), so each concurrency level
/// reports its own peak.
pub(crate) fn reset_peak_memory() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// VmHWM of this process: the harness with the console and the worker in it (hearth and the
/// services are other processes).
pub(crate) fn peak_memory() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{:.1} MiB", kb as f64 / 1024.0))
}
