//! CPU time and memory of this process, from `/proc` (Linux).

/// Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on every Linux architecture we build for).
const TICKS_PER_S: f64 = 100.0;

/// CPU time used so far, in milliseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CpuTime {
    /// This process's threads (user + system).
    pub own_ms: f64,
    /// Its child processes that have been waited for (ffmpeg decoding and encoding).
    pub children_ms: f64,
}

impl CpuTime {
    /// `None` where `/proc` is not available.
    pub fn now() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The command name (field 2) may hold spaces: count fields after its closing parenthesis.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // After the name: state is field 3, so utime (14) .. cstime (17) are at 11..=14.
        let tick = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok());
        let (utime, stime, cutime, cstime) = (tick(11)?, tick(12)?, tick(13)?, tick(14)?);
        Some(Self {
            own_ms: (utime + stime) * 1000.0 / TICKS_PER_S,
            children_ms: (cutime + cstime) * 1000.0 / TICKS_PER_S,
        })
    }

    pub fn total_ms(&self) -> f64 {
        self.own_ms + self.children_ms
    }

    pub fn since(&self, earlier: &Self) -> Self {
        Self { own_ms: self.own_ms - earlier.own_ms, children_ms: self.children_ms - earlier.children_ms }
    }
}

/// Peak resident memory of this process so far (`VmHWM`), in MiB.
pub fn peak_rss_mb() -> Option<f64> {
    status_kib("VmHWM:").map(|kib| kib / 1024.0)
}

/// Resident memory now (`VmRSS`), in MiB.
pub fn rss_mb() -> Option<f64> {
    status_kib("VmRSS:").map(|kib| kib / 1024.0)
}

fn status_kib(key: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| line.strip_prefix(key)?.split_whitespace().next()?.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_grows_with_work_and_memory_is_read() {
        let before = CpuTime::now().expect("/proc/self/stat");
        let started = std::time::Instant::now();
        let mut x = 0u64;
        while started.elapsed().as_millis() < 100 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
        }
        std::hint::black_box(x);
        let used = CpuTime::now().expect("/proc/self/stat").since(&before);
        assert!(used.own_ms >= 50.0, "{used:?}");
        let (rss, peak) = (rss_mb().expect("VmRSS"), peak_rss_mb().expect("VmHWM"));
        assert!(rss > 0.0 && peak >= rss, "rss {rss} peak {peak}");
    }
}
