//! Counters and timings shared by the stage threads.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Per-stage sums, so means and rates can be read while the pipeline runs.
#[derive(Debug, Default)]
pub struct PipelineStats {
    pub frames_read: AtomicU64,
    pub frames_inferred: AtomicU64,
    pub frames_composited: AtomicU64,
    pub frames_written: AtomicU64,
    timings: Mutex<Timings>,
}

#[derive(Clone, Debug, Default)]
struct Timings {
    infer_ms_sum: f64,
    composite_ms_sum: f64,
    sink_ms_sum: f64,
    latency_ms_sum: f64,
    latency_ms_max: f64,
}

/// What a finished (or running) pipeline did.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatsSnapshot {
    pub frames_read: u64,
    pub frames_written: u64,
    pub frames_dropped: u64,
    pub infer_ms_mean: f64,
    pub composite_ms_mean: f64,
    pub sink_ms_mean: f64,
    pub latency_ms_mean: f64,
    pub latency_ms_max: f64,
}

impl PipelineStats {
    pub fn record_infer(&self, ms: f64) {
        self.frames_inferred.fetch_add(1, Ordering::Relaxed);
        self.timings.lock().expect("stats lock").infer_ms_sum += ms;
    }

    pub fn record_composite(&self, ms: f64) {
        self.frames_composited.fetch_add(1, Ordering::Relaxed);
        self.timings.lock().expect("stats lock").composite_ms_sum += ms;
    }

    /// A frame reached every sink: `captured_at` gives its end-to-end latency.
    pub fn record_written(&self, sink_ms: f64, captured_at: Instant) {
        self.frames_written.fetch_add(1, Ordering::Relaxed);
        let latency_ms = captured_at.elapsed().as_secs_f64() * 1000.0;
        let mut t = self.timings.lock().expect("stats lock");
        t.sink_ms_sum += sink_ms;
        t.latency_ms_sum += latency_ms;
        t.latency_ms_max = t.latency_ms_max.max(latency_ms);
    }

    pub fn snapshot(&self, frames_dropped: u64) -> StatsSnapshot {
        let t = self.timings.lock().expect("stats lock").clone();
        let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        let inferred = self.frames_inferred.load(Ordering::Relaxed);
        let composited = self.frames_composited.load(Ordering::Relaxed);
        let written = self.frames_written.load(Ordering::Relaxed);
        StatsSnapshot {
            frames_read: self.frames_read.load(Ordering::Relaxed),
            frames_written: written,
            frames_dropped,
            infer_ms_mean: mean(t.infer_ms_sum, inferred),
            composite_ms_mean: mean(t.composite_ms_sum, composited),
            sink_ms_mean: mean(t.sink_ms_sum, written),
            latency_ms_mean: mean(t.latency_ms_sum, written),
            latency_ms_max: t.latency_ms_max,
        }
    }
}
