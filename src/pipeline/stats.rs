//! Counters and timings shared by the stage threads: running sums for the progress line, and the last
//! [`SAMPLE_CAPACITY`] per-frame times of each stage for medians and tails (`mattecam bench`).

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Per-frame times kept per stage; older ones are overwritten, so a long run costs no memory per frame.
pub const SAMPLE_CAPACITY: usize = 8192;

/// Frames written before the steady rate is measured: the first ones pay for start-up (the decoder's
/// launch, the model's first run, buffers being sized).
pub const WARMUP_FRAMES: u64 = 3;

/// The timed steps of one frame's way through the pipeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Stage {
    /// Decoding or capturing the frame.
    Read,
    /// Everything the model's thread does for a frame: `PrePost` + `Model`.
    Infer,
    /// Inside the ONNX Runtime session alone.
    Model,
    /// Resizing and normalising in, copying and clamping out (and plate assistance when on).
    PrePost,
    /// The temporal filter.
    Filter,
    /// Upsampling alpha, edge controls, compositing over the background.
    Composite,
    /// Handing the result to every sink (encoding, writing, or nothing).
    Sink,
    /// From the frame's capture to its composite being ready: what a viewer waits.
    Latency,
}

impl Stage {
    pub const ALL: [Stage; 8] =
        [Self::Read, Self::Infer, Self::Model, Self::PrePost, Self::Filter, Self::Composite, Self::Sink, Self::Latency];

    pub fn name(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Infer => "infer",
            Self::Model => "model",
            Self::PrePost => "pre_post",
            Self::Filter => "filter",
            Self::Composite => "composite",
            Self::Sink => "sink",
            Self::Latency => "latency",
        }
    }
}

/// The newest [`SAMPLE_CAPACITY`] values of one timing, in storage allocated once.
#[derive(Debug)]
struct Samples {
    values: Vec<f32>,
    next: usize,
}

impl Samples {
    fn new() -> Self {
        Self { values: Vec::with_capacity(SAMPLE_CAPACITY), next: 0 }
    }

    fn push(&mut self, value: f64) {
        if self.values.len() < SAMPLE_CAPACITY {
            self.values.push(value as f32);
        } else {
            self.values[self.next] = value as f32;
        }
        self.next = (self.next + 1) % SAMPLE_CAPACITY;
    }
}

/// Median, tail and mean of one stage's per-frame times.
#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize)]
pub struct StageTime {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub frames: usize,
}

impl StageTime {
    /// Nearest-rank percentiles of `values` (reordered).
    pub fn of(values: &mut [f32]) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_unstable_by(f32::total_cmp);
        let rank = |q: f64| values[((q * values.len() as f64).ceil() as usize).clamp(1, values.len()) - 1] as f64;
        let mean = values.iter().map(|&v| v as f64).sum::<f64>() / values.len() as f64;
        Self { p50_ms: rank(0.5), p99_ms: rank(0.99), mean_ms: mean, frames: values.len() }
    }
}

/// Per-stage sums, so means and rates can be read while the pipeline runs.
#[derive(Debug)]
pub struct PipelineStats {
    pub frames_read: AtomicU64,
    pub frames_inferred: AtomicU64,
    pub frames_composited: AtomicU64,
    pub frames_written: AtomicU64,
    timings: Mutex<Timings>,
    samples: Mutex<Vec<(Stage, Samples)>>,
}

impl Default for PipelineStats {
    fn default() -> Self {
        Self {
            frames_read: AtomicU64::default(),
            frames_inferred: AtomicU64::default(),
            frames_composited: AtomicU64::default(),
            frames_written: AtomicU64::default(),
            timings: Mutex::default(),
            samples: Mutex::new(Stage::ALL.iter().map(|&stage| (stage, Samples::new())).collect()),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Timings {
    infer_ms_sum: f64,
    composite_ms_sum: f64,
    sink_ms_sum: f64,
    latency_ms_sum: f64,
    latency_ms_max: f64,
    /// When frame [`WARMUP_FRAMES`] was written, and the last one.
    steady_from: Option<Instant>,
    last_written: Option<Instant>,
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
    /// Frames written per second after the first [`WARMUP_FRAMES`]; `None` until enough were written.
    pub steady_fps: Option<f64>,
}

impl PipelineStats {
    fn sample(&self, stage: Stage, ms: f64) {
        let mut samples = self.samples.lock().expect("stats lock");
        if let Some((_, kept)) = samples.iter_mut().find(|(s, _)| *s == stage) {
            kept.push(ms);
        }
    }

    pub fn record_read(&self, ms: f64) {
        self.frames_read.fetch_add(1, Ordering::Relaxed);
        self.sample(Stage::Read, ms);
    }

    pub fn record_infer(&self, infer_ms: f64, model_ms: f64) {
        self.frames_inferred.fetch_add(1, Ordering::Relaxed);
        self.timings.lock().expect("stats lock").infer_ms_sum += infer_ms;
        self.sample(Stage::Infer, infer_ms);
        self.sample(Stage::Model, model_ms);
        self.sample(Stage::PrePost, (infer_ms - model_ms).max(0.0));
    }

    pub fn record_filter(&self, ms: f64) {
        self.sample(Stage::Filter, ms);
    }

    /// A frame's composite is ready: `captured_at` gives its end-to-end latency.
    pub fn record_composite(&self, ms: f64, captured_at: Instant) {
        self.frames_composited.fetch_add(1, Ordering::Relaxed);
        let latency_ms = captured_at.elapsed().as_secs_f64() * 1000.0;
        {
            let mut t = self.timings.lock().expect("stats lock");
            t.composite_ms_sum += ms;
            t.latency_ms_sum += latency_ms;
            t.latency_ms_max = t.latency_ms_max.max(latency_ms);
        }
        self.sample(Stage::Composite, ms);
        self.sample(Stage::Latency, latency_ms);
    }

    /// A frame reached every sink.
    pub fn record_written(&self, sink_ms: f64) {
        let written = self.frames_written.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        {
            let mut t = self.timings.lock().expect("stats lock");
            t.sink_ms_sum += sink_ms;
            t.last_written = Some(now);
            if written == WARMUP_FRAMES {
                t.steady_from = Some(now);
            }
        }
        self.sample(Stage::Sink, sink_ms);
    }

    pub fn snapshot(&self, frames_dropped: u64) -> StatsSnapshot {
        let t = self.timings.lock().expect("stats lock").clone();
        let mean = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        let inferred = self.frames_inferred.load(Ordering::Relaxed);
        let composited = self.frames_composited.load(Ordering::Relaxed);
        let written = self.frames_written.load(Ordering::Relaxed);
        let steady_fps = match (t.steady_from, t.last_written) {
            (Some(from), Some(last)) if written > WARMUP_FRAMES && last > from => {
                Some((written - WARMUP_FRAMES) as f64 / last.duration_since(from).as_secs_f64())
            }
            _ => None,
        };
        StatsSnapshot {
            frames_read: self.frames_read.load(Ordering::Relaxed),
            frames_written: written,
            frames_dropped,
            infer_ms_mean: mean(t.infer_ms_sum, inferred),
            composite_ms_mean: mean(t.composite_ms_sum, composited),
            sink_ms_mean: mean(t.sink_ms_sum, written),
            latency_ms_mean: mean(t.latency_ms_sum, composited),
            latency_ms_max: t.latency_ms_max,
            steady_fps,
        }
    }

    /// Median, tail and mean of every stage over the kept samples.
    pub fn stage_times(&self) -> Vec<(Stage, StageTime)> {
        let samples = self.samples.lock().expect("stats lock");
        samples.iter().map(|(stage, kept)| (*stage, StageTime::of(&mut kept.values.clone()))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut values: Vec<f32> = (1..=100).rev().map(|v| v as f32).collect();
        let time = StageTime::of(&mut values);
        assert_eq!((time.p50_ms, time.p99_ms, time.frames), (50.0, 99.0, 100));
        assert!((time.mean_ms - 50.5).abs() < 1e-9);
        assert_eq!(StageTime::of(&mut []), StageTime::default());
    }

    #[test]
    fn samples_keep_the_newest_in_fixed_storage() {
        let mut samples = Samples::new();
        for v in 0..(SAMPLE_CAPACITY + 10) {
            samples.push(v as f64);
        }
        assert_eq!(samples.values.len(), SAMPLE_CAPACITY);
        assert_eq!(samples.values.capacity(), SAMPLE_CAPACITY);
        assert!(!samples.values.contains(&9.0) && samples.values.contains(&10.0));
    }
}
