//! The virtual camera: the matted picture as a camera other apps open (a video call, a stream, a browser).
//! One more consumer of the engine's single composite, on its own thread ("virtual-camera"):
//!
//! - a PipeWire `Video/Source` node (`pipewire.rs`), where the consumer picks the format;
//! - a v4l2loopback device (`v4l2.rs`), YUYV, for apps that only know V4L2 (Zoom, Chrome without the
//!   portal);
//! - raw frames on stdout or a FIFO (`raw.rs`), for any other tool.
//!
//! It sends at a constant rate (the newest composite, repeated when the model is slower), never the room
//! unmatted (the engine shows the background alone until a model runs), and while no app has it open it
//! tells the engine it is idle, so inference pauses when nothing else watches.

pub mod convert;
mod feed;
#[cfg(feature = "pipewire")]
mod pipewire;
mod raw;
pub mod v4l2;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use convert::PixelFormat;
pub use feed::{CameraPicture, Feed};

use crate::engine::{StageTime, Tap};

/// The camera's frame rate when the source does not say.
pub const DEFAULT_FPS: f64 = 30.0;
/// Latency samples kept for the percentiles (a minute at 60 fps).
const LATENCY_SAMPLES: usize = 3600;
/// How often a waiting camera looks for the source's size or for a stop.
const POLL: Duration = Duration::from_millis(20);

/// Where the virtual camera's frames go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CameraOutput {
    /// A PipeWire node named "mattecam".
    PipeWire,
    /// A v4l2loopback device: the one given, or the first found.
    V4l2(Option<PathBuf>),
    /// Raw frames on stdout (`None`) or into a FIFO or file.
    Raw(Option<PathBuf>),
}

impl CameraOutput {
    /// PipeWire where it is built in, v4l2loopback otherwise.
    pub fn default_for_build() -> Self {
        if cfg!(feature = "pipewire") { Self::PipeWire } else { Self::V4l2(None) }
    }
}

impl std::fmt::Display for CameraOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PipeWire => write!(f, "pipewire"),
            Self::V4l2(None) => write!(f, "v4l2"),
            Self::V4l2(Some(path)) => write!(f, "v4l2:{}", path.display()),
            Self::Raw(None) => write!(f, "raw:-"),
            Self::Raw(Some(path)) => write!(f, "raw:{}", path.display()),
        }
    }
}

impl FromStr for CameraOutput {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.split_once(':') {
            None if text == "pipewire" => Ok(Self::PipeWire),
            None if text == "v4l2" => Ok(Self::V4l2(None)),
            Some(("v4l2", device)) if !device.is_empty() => Ok(Self::V4l2(Some(device.into()))),
            Some(("raw", "-")) => Ok(Self::Raw(None)),
            Some(("raw", path)) if !path.is_empty() => Ok(Self::Raw(Some(path.into()))),
            _ => Err(format!(
                "unknown camera output {text:?}: use pipewire, v4l2, v4l2:/dev/videoN, raw:- (stdout) or raw:PATH (a FIFO)"
            )),
        }
    }
}

/// How the virtual camera runs.
#[derive(Clone, Debug)]
pub struct CameraOptions {
    pub output: CameraOutput,
    /// The camera's size (made even); default: the source's.
    pub size: Option<(u32, u32)>,
    /// Frames a second; default: the source's.
    pub fps: Option<f64>,
    /// Mirror what the other side sees (by default they see you as your camera does, whatever the preview).
    pub mirror: bool,
    /// The raw output's format (v4l2 is always YUYV; on PipeWire the consumer picks).
    pub raw_format: PixelFormat,
    /// Stop after sending this many frames.
    pub max_frames: Option<u64>,
}

impl Default for CameraOptions {
    fn default() -> Self {
        Self {
            output: CameraOutput::default_for_build(),
            size: None,
            fps: None,
            mirror: false,
            raw_format: PixelFormat::Yuyv,
            max_frames: None,
        }
    }
}

/// What the virtual camera is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum CameraState {
    /// Waiting for the source's size, or connecting.
    Starting,
    /// Published; no app has it open (inference pauses unless something else watches).
    Waiting,
    Streaming {
        consumers: u32,
    },
    /// Cannot run now: why, and what to do about it. PipeWire is tried again until it comes back.
    Unavailable {
        reason: String,
        fix: Option<String>,
    },
    /// The camera stopped for good (the raw output's reader left, a device went away).
    Ended(String),
}

impl std::fmt::Display for CameraState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Starting => write!(f, "starting"),
            Self::Waiting => write!(f, "waiting for an app to open it"),
            Self::Streaming { consumers: 1 } => write!(f, "streaming to 1 app"),
            Self::Streaming { consumers } => write!(f, "streaming to {consumers} apps"),
            Self::Unavailable { reason, fix: None } => write!(f, "not available: {reason}"),
            Self::Unavailable { reason, fix: Some(fix) } => write!(f, "not available: {reason}. {fix}"),
            Self::Ended(reason) => write!(f, "stopped: {reason}"),
        }
    }
}

/// The camera's state and figures.
#[derive(Clone, Debug)]
pub struct CameraReport {
    pub state: CameraState,
    /// Where it goes ("PipeWire node mattecam", "/dev/video10", "stdout").
    pub target: String,
    /// Size and rate, once known.
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// The format in use (on PipeWire, the one the consumer picked).
    pub format: Option<PixelFormat>,
    /// Frames delivered: new composites, and repeats of the last one to keep the rate.
    pub sent: u64,
    pub repeated: u64,
    /// Composites replaced before the camera took them, and frames a slow consumer could not take.
    pub dropped: u64,
    /// From capture to delivery, over the last frames: median and 99th percentile.
    pub latency_p50_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
}

/// What the camera's thread and its handle share.
#[derive(Default)]
pub struct CameraShared {
    state: Mutex<Option<CameraState>>,
    target: Mutex<String>,
    format: Mutex<Option<PixelFormat>>,
    size: Mutex<(u32, u32, f64)>,
    sent: AtomicU64,
    repeated: AtomicU64,
    /// Frames the consumer could not take (no free buffer, a missed tick).
    sink_dropped: AtomicU64,
    /// Composites the camera's subscription lost (the model faster than the camera).
    pub(crate) engine_dropped: AtomicU64,
    latency_ms: Mutex<VecDeque<f32>>,
    stop: AtomicBool,
    /// Frames to send before stopping (0: no limit).
    limit: AtomicU64,
}

impl CameraShared {
    pub fn set_state(&self, state: CameraState) {
        let mut current = self.state.lock().expect("camera state lock");
        if current.as_ref() != Some(&state) {
            tracing::info!("virtual camera: {state}");
            *current = Some(state);
        }
    }

    pub fn set_target(&self, target: String) {
        *self.target.lock().expect("camera lock") = target;
    }

    pub fn set_format(&self, format: Option<PixelFormat>) {
        *self.format.lock().expect("camera lock") = format;
    }

    /// A frame was delivered: `captured_at` for a new composite, `None` for a repeat.
    pub fn record_sent(&self, captured_at: Option<Instant>) {
        let sent = self.sent.fetch_add(1, Ordering::Relaxed) + 1;
        let limit = self.limit.load(Ordering::Relaxed);
        if limit > 0 && sent >= limit {
            self.set_state(CameraState::Ended(format!("sent {sent} frames")));
            self.stop.store(true, Ordering::SeqCst);
        }
        match captured_at {
            Some(at) => {
                let mut samples = self.latency_ms.lock().expect("camera lock");
                if samples.len() == LATENCY_SAMPLES {
                    samples.pop_front();
                }
                samples.push_back(at.elapsed().as_secs_f32() * 1000.0);
            }
            None => {
                self.repeated.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Frames a slow consumer could not take.
    pub fn record_dropped(&self, frames: u64) {
        self.sink_dropped.fetch_add(frames, Ordering::Relaxed);
    }

    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    pub fn report(&self) -> CameraReport {
        let (width, height, fps) = *self.size.lock().expect("camera lock");
        let mut latency: Vec<f32> = self.latency_ms.lock().expect("camera lock").iter().copied().collect();
        let latency = (!latency.is_empty()).then(|| StageTime::of(&mut latency));
        CameraReport {
            state: self.state.lock().expect("camera lock").clone().unwrap_or(CameraState::Starting),
            target: self.target.lock().expect("camera lock").clone(),
            width,
            height,
            fps,
            format: *self.format.lock().expect("camera lock"),
            sent: self.sent.load(Ordering::Relaxed),
            repeated: self.repeated.load(Ordering::Relaxed),
            dropped: self.sink_dropped.load(Ordering::Relaxed) + self.engine_dropped.load(Ordering::Relaxed),
            latency_p50_ms: latency.map(|t| t.p50_ms),
            latency_p99_ms: latency.map(|t| t.p99_ms),
        }
    }
}

/// A running virtual camera; stopped and joined on drop.
pub struct VirtualCamera {
    shared: Arc<CameraShared>,
    thread: Option<JoinHandle<()>>,
}

impl VirtualCamera {
    /// Starts the camera on its own thread; what happens (waiting, streaming, unavailable and why) is in
    /// [`VirtualCamera::report`].
    pub fn start(tap: Tap, options: CameraOptions) -> Self {
        let shared = Arc::new(CameraShared::default());
        shared.limit.store(options.max_frames.unwrap_or(0), Ordering::Relaxed);
        let s = Arc::clone(&shared);
        let thread = std::thread::Builder::new().name("virtual-camera".into()).spawn(move || run(&tap, &options, &s));
        let thread = match thread {
            Ok(thread) => Some(thread),
            Err(err) => {
                shared.set_state(CameraState::Unavailable {
                    reason: format!("its thread could not start ({err})"),
                    fix: Some("close other programs and turn it on again".into()),
                });
                None
            }
        };
        Self { shared, thread }
    }

    pub fn report(&self) -> CameraReport {
        self.shared.report()
    }

    /// Whether the camera's thread ended (it stopped for good, or was asked to).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for VirtualCamera {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The camera's thread: its size and rate from the source, then the output's own loop.
fn run(tap: &Tap, options: &CameraOptions, shared: &Arc<CameraShared>) {
    shared.set_state(CameraState::Starting);
    shared.set_target(options.output.to_string());
    let (width, height, fps) = loop {
        if shared.stopping() {
            return;
        }
        let status = tap.status();
        if let Some(info) = status.source_info {
            let (w, h) = options.size.unwrap_or((info.width, info.height));
            let (w, h) = convert::even_size(w, h);
            let fps = options.fps.unwrap_or(if info.fps > 0.0 { info.fps } else { DEFAULT_FPS }).clamp(1.0, 240.0);
            break (w, h, fps);
        }
        std::thread::sleep(POLL);
    };
    *shared.size.lock().expect("camera lock") = (width, height, fps);
    // Subscribed once the source runs (a paused engine would not open it): from now on the engine pauses
    // while nobody watches.
    let subscription = tap.subscribe_private("virtual camera");
    let feed = Feed::new(subscription, tap.clone(), options.mirror, (width, height), Arc::clone(shared));
    match &options.output {
        #[cfg(feature = "pipewire")]
        CameraOutput::PipeWire => pipewire::run(feed, fps, shared),
        #[cfg(not(feature = "pipewire"))]
        CameraOutput::PipeWire => shared.set_state(CameraState::Unavailable {
            reason: "this build has no PipeWire support".into(),
            fix: Some("build with the `pipewire` feature (libpipewire-0.3-dev), or use --output v4l2".into()),
        }),
        CameraOutput::V4l2(device) => v4l2::run(feed, fps, device.as_deref(), shared),
        CameraOutput::Raw(path) => raw::run(feed, fps, path.as_deref(), options.raw_format, shared),
    }
}

/// The camera's constant rate: when each frame is due, and how many were missed because the consumer (or
/// the camera's thread) was late. The newest composite, or the last one again, goes out at each tick.
pub(crate) struct Clock {
    period: Duration,
    next: Instant,
}

impl Clock {
    pub fn new(fps: f64) -> Self {
        Self { period: Duration::from_secs_f64(1.0 / fps), next: Instant::now() }
    }

    /// How long until the next tick.
    pub fn until_next(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// If a tick is due: the ticks missed before it (counted as dropped), and the clock moves on.
    pub fn take_due(&mut self) -> Option<u64> {
        let now = Instant::now();
        if now < self.next {
            return None;
        }
        let mut missed = 0;
        if now > self.next + self.period {
            missed = ((now - self.next).as_secs_f64() / self.period.as_secs_f64()) as u64;
            self.next = now;
        }
        self.next += self.period;
        Some(missed)
    }

    /// Waits for the next tick (waking for a stop); the ticks missed before it.
    pub fn tick(&mut self, shared: &CameraShared) -> u64 {
        loop {
            if let Some(missed) = self.take_due() {
                return missed;
            }
            if shared.stopping() {
                return 0;
            }
            std::thread::sleep(self.until_next().min(POLL));
        }
    }

    /// Starts counting afresh (after a pause).
    pub fn restart(&mut self) {
        self.next = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_parse_and_print_back() {
        for text in ["pipewire", "v4l2", "v4l2:/dev/video10", "raw:-", "raw:/tmp/fifo"] {
            assert_eq!(text.parse::<CameraOutput>().unwrap().to_string(), text);
        }
        let err = "v4l2loopback".parse::<CameraOutput>().unwrap_err();
        assert!(err.contains("raw:-"), "{err}");
    }

    #[test]
    fn the_report_gives_percentiles_and_counts_repeats() {
        let shared = CameraShared::default();
        let now = Instant::now();
        shared.record_sent(Some(now));
        shared.record_sent(None);
        shared.record_dropped(2);
        let report = shared.report();
        assert_eq!((report.sent, report.repeated, report.dropped), (2, 1, 2));
        assert!(report.latency_p50_ms.is_some());
    }
}
