//! Live figures for the stats overlay: rates over the last seconds, recent timings for the frame-time
//! plot, and totals.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Rates are measured over this window.
const RATE_WINDOW: Duration = Duration::from_secs(2);
/// Presented frames kept for the plot and the percentiles.
pub const HISTORY_FRAMES: usize = 120;

#[derive(Default)]
pub struct LiveStats {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    captured: VecDeque<Instant>,
    presented: VecDeque<Instant>,
    infer_ms: VecDeque<f64>,
    history: VecDeque<FrameTimes>,
    frames_captured: u64,
    frames_inferred: u64,
    frames_presented: u64,
    /// Frames that arrived while no model was loaded.
    frames_skipped: u64,
}

/// One presented frame's times, for the plot.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct FrameTimes {
    /// Since the previously presented frame.
    pub interval_ms: f64,
    /// Capture timestamp to presentation.
    pub latency_ms: f64,
    pub composite_ms: f64,
}

/// A copy of the figures, taken once per window frame.
#[derive(Clone, Debug, Default)]
pub struct StatsView {
    pub capture_fps: f64,
    pub presented_fps: f64,
    /// Mean over the recent frames.
    pub infer_ms: f64,
    pub composite_ms: f64,
    pub latency_ms_p50: f64,
    pub latency_ms_max: f64,
    /// Camera frames replaced before inference took them (the model is slower than the camera), or that
    /// came while no model was loaded.
    pub dropped_before_infer: u64,
    /// Matted frames replaced before the window showed them (the window is slower than the model).
    pub dropped_before_present: u64,
    pub frames_captured: u64,
    pub frames_inferred: u64,
    pub frames_presented: u64,
    /// Oldest first, at most [`HISTORY_FRAMES`].
    pub history: Vec<FrameTimes>,
}

impl StatsView {
    pub fn dropped_frames(&self) -> u64 {
        self.dropped_before_infer + self.dropped_before_present
    }
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

impl LiveStats {
    pub fn record_captured(&self, at: Instant) {
        let mut inner = self.inner.lock().expect("stats lock");
        inner.frames_captured += 1;
        trim_window(&mut inner.captured, at);
        // Bounded so a fast source cannot grow it: 2 s at 500 fps.
        push_bounded(&mut inner.captured, at, 1000);
    }

    /// A frame passed over because no model is loaded yet (counted as dropped before the model).
    pub fn record_skipped(&self) {
        self.inner.lock().expect("stats lock").frames_skipped += 1;
    }

    pub fn record_inferred(&self, infer_ms: f64) {
        let mut inner = self.inner.lock().expect("stats lock");
        inner.frames_inferred += 1;
        push_bounded(&mut inner.infer_ms, infer_ms, HISTORY_FRAMES);
    }

    pub fn record_presented(&self, captured_at: Instant, composite_ms: f64) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("stats lock");
        inner.frames_presented += 1;
        let interval_ms = inner.presented.back().map_or(0.0, |last| now.duration_since(*last).as_secs_f64() * 1e3);
        trim_window(&mut inner.presented, now);
        push_bounded(&mut inner.presented, now, 1000);
        let latency_ms = now.duration_since(captured_at).as_secs_f64() * 1e3;
        push_bounded(&mut inner.history, FrameTimes { interval_ms, latency_ms, composite_ms }, HISTORY_FRAMES);
    }

    pub fn view(&self, dropped_before_infer: u64, dropped_before_present: u64) -> StatsView {
        let mut inner = self.inner.lock().expect("stats lock");
        let now = Instant::now();
        trim_window(&mut inner.captured, now);
        trim_window(&mut inner.presented, now);
        let mean = |values: &mut dyn Iterator<Item = f64>| {
            let (sum, n) = values.fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 { 0.0 } else { sum / n as f64 }
        };
        let mut latencies: Vec<f64> = inner.history.iter().map(|t| t.latency_ms).collect();
        latencies.sort_by(f64::total_cmp);
        StatsView {
            capture_fps: rate(&inner.captured),
            presented_fps: rate(&inner.presented),
            infer_ms: mean(&mut inner.infer_ms.iter().copied()),
            composite_ms: mean(&mut inner.history.iter().map(|t| t.composite_ms)),
            latency_ms_p50: latencies.get(latencies.len() / 2).copied().unwrap_or(0.0),
            latency_ms_max: latencies.last().copied().unwrap_or(0.0),
            dropped_before_infer: dropped_before_infer + inner.frames_skipped,
            dropped_before_present,
            frames_captured: inner.frames_captured,
            frames_inferred: inner.frames_inferred,
            frames_presented: inner.frames_presented,
            history: inner.history.iter().copied().collect(),
        }
    }
}
