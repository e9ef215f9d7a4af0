//! The engine's figures, one type for every run: counters and running sums (the progress line and the
//! summary), the last [`SAMPLE_CAPACITY`] per-frame times of each stage (medians and tails for
//! `mattecam bench`), and the live figures the window's overlay shows (rates over the last seconds, the
//! frame-time plot). Every buffer is allocated once: recording a frame allocates nothing.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Per-frame times kept per stage; older ones are overwritten, so a long run costs no memory per frame.
pub const SAMPLE_CAPACITY: usize = 8192;

/// Frames composited before the steady rate is measured: the first ones pay for start-up (the decoder's
/// launch, the model's first run, buffers being sized).
pub const WARMUP_FRAMES: u64 = 3;

/// Rates are measured over this window.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// Timestamps kept for the rates: 2 s at 500 fps.
const RATE_CAPACITY: usize = 1000;
/// Shown frames kept for the plot and the percentiles.
pub const HISTORY_FRAMES: usize = 120;

/// The timed steps of one frame's way through the engine.
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
    /// Handing the result to a file run's sinks (encoding, writing, or nothing).
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

/// One shown frame's times, for the plot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameTimes {
    /// Since the previously shown frame.
    pub interval_ms: f64,
    /// Capture timestamp to being shown.
    pub latency_ms: f64,
    pub composite_ms: f64,
}

#[derive(Debug)]
struct Timings {
    infer_ms_sum: f64,
    composite_ms_sum: f64,
    sink_ms_sum: f64,
    latency_ms_sum: f64,
    latency_ms_max: f64,
    /// When frame [`WARMUP_FRAMES`] was composited, and the last one.
    steady_from: Option<Instant>,
    last_composited: Option<Instant>,
}

/// What moves at the rate of a live source and of the screen.
#[derive(Debug)]
struct Live {
    captured: VecDeque<Instant>,
    shown: VecDeque<Instant>,
    infer_ms: VecDeque<f64>,
    composite_ms: VecDeque<f64>,
    history: VecDeque<FrameTimes>,
}

fn push_bounded<T>(queue: &mut VecDeque<T>, value: T, bound: usize) {
    if queue.len() == bound {
        queue.pop_front();
    }
    queue.push_back(value);
}

fn trim_window(times: &mut VecDeque<Instant>, now: Instant) {
    while times.front().is_some_and(|t| now.duration_since(*t) > RATE_WINDOW) {
        times.pop_front();
    }
}

fn rate(times: &VecDeque<Instant>) -> f64 {
    match (times.front(), times.back()) {
        (Some(first), Some(last)) if times.len() > 1 => {
            let span_s = last.duration_since(*first).as_secs_f64();
            if span_s > 0.0 { (times.len() - 1) as f64 / span_s } else { 0.0 }
        }
        _ => 0.0,
    }
}

fn mean(values: &VecDeque<f64>) -> f64 {
    if values.is_empty() { 0.0 } else { values.iter().sum::<f64>() / values.len() as f64 }
}

/// The engine's counters and timings; see the module docs.
#[derive(Debug)]
pub struct EngineStats {
    frames_read: AtomicU64,
    frames_inferred: AtomicU64,
    frames_composited: AtomicU64,
    frames_written: AtomicU64,
    frames_shown: AtomicU64,
    /// Frames that arrived while no model was loaded.
    frames_skipped: AtomicU64,
    /// Frames replaced in the latest-frame slots before the next stage took them.
    dropped_before_infer: AtomicU64,
    dropped_before_composite: AtomicU64,
    /// Nobody watches: nothing is read or matted (see `Fanout::unwatched`).
    paused: AtomicBool,
    /// Times the engine paused, and resumed.
    pauses: AtomicU64,
    resumes: AtomicU64,
    timings: Mutex<Timings>,
    samples: Mutex<Vec<(Stage, Samples)>>,
    live: Mutex<Live>,
}

impl Default for EngineStats {
    fn default() -> Self {
        Self {
            frames_read: AtomicU64::default(),
            frames_inferred: AtomicU64::default(),
            frames_composited: AtomicU64::default(),
            frames_written: AtomicU64::default(),
            frames_shown: AtomicU64::default(),
            frames_skipped: AtomicU64::default(),
            dropped_before_infer: AtomicU64::default(),
            dropped_before_composite: AtomicU64::default(),
            paused: AtomicBool::new(false),
            pauses: AtomicU64::default(),
            resumes: AtomicU64::default(),
            timings: Mutex::new(Timings {
                infer_ms_sum: 0.0,
                composite_ms_sum: 0.0,
                sink_ms_sum: 0.0,
                latency_ms_sum: 0.0,
                latency_ms_max: 0.0,
                steady_from: None,
                last_composited: None,
            }),
            samples: Mutex::new(Stage::ALL.iter().map(|&stage| (stage, Samples::new())).collect()),
            live: Mutex::new(Live {
                captured: VecDeque::with_capacity(RATE_CAPACITY),
                shown: VecDeque::with_capacity(RATE_CAPACITY),
                infer_ms: VecDeque::with_capacity(HISTORY_FRAMES),
                composite_ms: VecDeque::with_capacity(HISTORY_FRAMES),
                history: VecDeque::with_capacity(HISTORY_FRAMES),
            }),
        }
    }
}

/// What a finished (or running) run did: the summary lines and `mattecam bench`.
#[derive(Clone, Debug, serde::Serialize)]
pub struct StatsSnapshot {
    pub frames_read: u64,
    pub frames_inferred: u64,
    pub frames_composited: u64,
    /// Frames a file run's sinks wrote.
    pub frames_written: u64,
    /// Frames the model skipped (a live source outran it) or that came while no model was loaded.
    pub frames_dropped: u64,
    pub infer_ms_mean: f64,
    pub composite_ms_mean: f64,
    pub sink_ms_mean: f64,
    pub latency_ms_mean: f64,
    pub latency_ms_max: f64,
    /// Frames composited per second after the first [`WARMUP_FRAMES`]; `None` until enough were.
    pub steady_fps: Option<f64>,
}

/// The figures as the window's overlay shows them, taken once per window frame.
#[derive(Clone, Debug, Default)]
pub struct StatsView {
    pub capture_fps: f64,
    pub shown_fps: f64,
    /// Means over the recent frames.
    pub infer_ms: f64,
    pub composite_ms: f64,
    /// Capture to being shown, over the recent shown frames.
    pub latency_ms_p50: f64,
    pub latency_ms_max: f64,
    /// Camera frames replaced before inference took them (the model is slower than the camera), or that
    /// came while no model was loaded.
    pub dropped_before_infer: u64,
    /// Matted frames that never reached the screen (compositing or the window is slower than the model).
    pub dropped_before_screen: u64,
    pub frames_captured: u64,
    pub frames_inferred: u64,
    pub frames_composited: u64,
    pub frames_shown: u64,
    /// Oldest first, at most [`HISTORY_FRAMES`].
    pub history: Vec<FrameTimes>,
}

impl StatsView {
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_before_infer + self.dropped_before_screen
    }
}

impl EngineStats {
    fn sample(&self, stage: Stage, ms: f64) {
        let mut samples = self.samples.lock().expect("stats lock");
        if let Some((_, kept)) = samples.iter_mut().find(|(s, _)| *s == stage) {
            kept.push(ms);
        }
    }

    /// A frame came from the source after `read_ms`; a live source's frames also count for its rate.
    pub fn record_read(&self, read_ms: f64, live_at: Option<Instant>) {
        self.frames_read.fetch_add(1, Ordering::Relaxed);
        self.sample(Stage::Read, read_ms);
        if let Some(at) = live_at {
            let mut live = self.live.lock().expect("stats lock");
            trim_window(&mut live.captured, at);
            push_bounded(&mut live.captured, at, RATE_CAPACITY);
        }
    }

    /// The engine paused (nobody watches) or resumed.
    pub fn set_paused(&self, paused: bool) {
        if self.paused.swap(paused, Ordering::SeqCst) != paused {
            let counter = if paused { &self.pauses } else { &self.resumes };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Whether the engine is paused because nobody watches.
    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::SeqCst)
    }

    /// How many times the engine paused and resumed.
    pub fn pauses(&self) -> (u64, u64) {
        (self.pauses.load(Ordering::SeqCst), self.resumes.load(Ordering::SeqCst))
    }

    /// A frame passed over because no model is loaded yet (counted as dropped before the model).
    pub fn record_skipped(&self) {
        self.frames_skipped.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_dropped_before_infer(&self) {
        self.dropped_before_infer.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_dropped_before_composite(&self) {
        self.dropped_before_composite.fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_infer(&self, infer_ms: f64, model_ms: f64) {
        self.frames_inferred.fetch_add(1, Ordering::Relaxed);
        self.timings.lock().expect("stats lock").infer_ms_sum += infer_ms;
        self.sample(Stage::Infer, infer_ms);
        self.sample(Stage::Model, model_ms);
        self.sample(Stage::PrePost, (infer_ms - model_ms).max(0.0));
        push_bounded(&mut self.live.lock().expect("stats lock").infer_ms, infer_ms, HISTORY_FRAMES);
    }

    pub fn record_filter(&self, ms: f64) {
        self.sample(Stage::Filter, ms);
    }

    /// A frame's composite is ready: `captured_at` gives its end-to-end latency.
    pub fn record_composite(&self, ms: f64, captured_at: Instant) {
        let composited = self.frames_composited.fetch_add(1, Ordering::Relaxed) + 1;
        let now = Instant::now();
        let latency_ms = now.saturating_duration_since(captured_at).as_secs_f64() * 1000.0;
        {
            let mut t = self.timings.lock().expect("stats lock");
            t.composite_ms_sum += ms;
            t.latency_ms_sum += latency_ms;
            t.latency_ms_max = t.latency_ms_max.max(latency_ms);
            t.last_composited = Some(now);
            if composited == WARMUP_FRAMES {
                t.steady_from = Some(now);
            }
        }
        self.sample(Stage::Composite, ms);
        self.sample(Stage::Latency, latency_ms);
        push_bounded(&mut self.live.lock().expect("stats lock").composite_ms, ms, HISTORY_FRAMES);
    }

    /// A frame reached every sink of a file run.
    pub fn record_written(&self, sink_ms: f64) {
        self.frames_written.fetch_add(1, Ordering::Relaxed);
        self.timings.lock().expect("stats lock").sink_ms_sum += sink_ms;
        self.sample(Stage::Sink, sink_ms);
    }

    /// A frame reached the screen (or the consumer that stands for it), `composite_ms` after its
    /// composite started.
    pub fn record_shown(&self, captured_at: Instant, composite_ms: f64) {
        self.frames_shown.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut live = self.live.lock().expect("stats lock");
        let interval_ms = live.shown.back().map_or(0.0, |last| now.duration_since(*last).as_secs_f64() * 1e3);
        trim_window(&mut live.shown, now);
        push_bounded(&mut live.shown, now, RATE_CAPACITY);
        let latency_ms = now.saturating_duration_since(captured_at).as_secs_f64() * 1e3;
        push_bounded(&mut live.history, FrameTimes { interval_ms, latency_ms, composite_ms }, HISTORY_FRAMES);
    }

    pub fn frames_written(&self) -> u64 {
        self.frames_written.load(Ordering::Relaxed)
    }

    pub fn frames_composited(&self) -> u64 {
        self.frames_composited.load(Ordering::Relaxed)
    }

    pub fn frames_inferred(&self) -> u64 {
        self.frames_inferred.load(Ordering::Relaxed)
    }

    fn dropped_before_infer(&self) -> u64 {
        self.dropped_before_infer.load(Ordering::Relaxed) + self.frames_skipped.load(Ordering::Relaxed)
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        let t = self.timings.lock().expect("stats lock");
        let average = |sum: f64, n: u64| if n == 0 { 0.0 } else { sum / n as f64 };
        let inferred = self.frames_inferred.load(Ordering::Relaxed);
        let composited = self.frames_composited.load(Ordering::Relaxed);
        let written = self.frames_written.load(Ordering::Relaxed);
        let steady_fps = match (t.steady_from, t.last_composited) {
            (Some(from), Some(last)) if composited > WARMUP_FRAMES && last > from => {
                Some((composited - WARMUP_FRAMES) as f64 / last.duration_since(from).as_secs_f64())
            }
            _ => None,
        };
        StatsSnapshot {
            frames_read: self.frames_read.load(Ordering::Relaxed),
            frames_inferred: inferred,
            frames_composited: composited,
            frames_written: written,
            frames_dropped: self.dropped_before_infer(),
            infer_ms_mean: average(t.infer_ms_sum, inferred),
            composite_ms_mean: average(t.composite_ms_sum, composited),
            sink_ms_mean: average(t.sink_ms_sum, written),
            latency_ms_mean: average(t.latency_ms_sum, composited),
            latency_ms_max: t.latency_ms_max,
            steady_fps,
        }
    }

    /// The overlay's figures; `dropped_by_screen`: matted frames the screen's subscription replaced before
    /// the window took them.
    pub fn view(&self, dropped_by_screen: u64) -> StatsView {
        let mut live = self.live.lock().expect("stats lock");
        let now = Instant::now();
        trim_window(&mut live.captured, now);
        trim_window(&mut live.shown, now);
        let mut latencies: Vec<f64> = live.history.iter().map(|t| t.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        StatsView {
            capture_fps: rate(&live.captured),
            shown_fps: rate(&live.shown),
            infer_ms: mean(&live.infer_ms),
            composite_ms: mean(&live.composite_ms),
            latency_ms_p50: latencies.get(latencies.len() / 2).copied().unwrap_or(0.0),
            latency_ms_max: latencies.last().copied().unwrap_or(0.0),
            dropped_before_infer: self.dropped_before_infer(),
            dropped_before_screen: self.dropped_before_composite.load(Ordering::Relaxed) + dropped_by_screen,
            frames_captured: self.frames_read.load(Ordering::Relaxed),
            frames_inferred: self.frames_inferred.load(Ordering::Relaxed),
            frames_composited: self.frames_composited.load(Ordering::Relaxed),
            frames_shown: self.frames_shown.load(Ordering::Relaxed),
            history: live.history.iter().copied().collect(),
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

    #[test]
    fn rates_and_drops_reach_the_view() {
        let stats = EngineStats::default();
        let start = Instant::now();
        for i in 0..11 {
            stats.record_read(1.0, Some(start + Duration::from_millis(100 * i)));
        }
        stats.record_skipped();
        stats.record_dropped_before_infer();
        stats.record_dropped_before_composite();
        let view = stats.view(2);
        assert!((view.capture_fps - 10.0).abs() < 1e-6, "{}", view.capture_fps);
        assert_eq!((view.dropped_before_infer, view.dropped_before_screen, view.frames_captured), (2, 3, 11));
    }
}
