//! The live app's engine, headless: a capture thread and an inference thread that keep running while the
//! user changes source, model or temporal filter, each change rebuilt in the background while the old
//! stage keeps going. Whoever shows the result (the window, a test) takes the newest matted frame from a
//! latest-frame slot and never waits for inference.

pub mod choice;
pub mod plate;
pub mod snapshot;
pub mod stats;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

pub use choice::{CameraMode, ModelChoice, SourceChoice};
pub use plate::{PlatePhase, PlateSettings, PlateStatus};
pub use stats::{LiveStats, StatsView};

use crate::filter::temporal::{TemporalFilter, TemporalMode};
use crate::frame::{Frame, Matte};
use crate::infer::{self, Matter, ProviderInUse};
use crate::models;
use crate::pipeline::LatestSlot;
use crate::plate::{Plate, PlateOptions, PlatedMatter};
use crate::record::{RecordError, RecordOptions, Recorder, RecorderStatus};
use crate::source::{SourceError, SourceInfo};
use plate::{PlateEvent, PlateKeeper};

/// How often a lost camera (or one that would not open) is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// A still image is shown as a stream at this rate, so recurrent models settle and the stats stay alive.
const IMAGE_FPS: f64 = 15.0;
/// How long the inference thread waits for a frame before it looks at its commands again.
const COMMAND_POLL: Duration = Duration::from_millis(50);

/// A frame and its (temporally filtered) matte, ready to composite.
pub struct LiveFrame {
    pub frame: Frame,
    pub matte: Matte,
}

/// What the capture side is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceState {
    Opening,
    Running,
    /// A camera that went away or would not open; tried again every [`RETRY_INTERVAL`].
    Lost {
        reason: String,
        retry_at: Instant,
    },
    /// A file that cannot be read; not retried: the user picks another source.
    Failed(String),
}

/// What the inference side is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    Loading,
    Ready,
    /// Loading or running failed; the previous model, if any, keeps running.
    Failed(String),
}

/// Everything the window shows about the session besides the picture.
#[derive(Clone, Debug)]
pub struct LiveStatus {
    pub source: SourceChoice,
    pub source_state: SourceState,
    /// Known once the source opened.
    pub source_info: Option<SourceInfo>,
    pub model: ModelChoice,
    pub model_state: ModelState,
    /// The provider the running model is on, with why it is not the requested one.
    pub provider: Option<ProviderInUse>,
    pub temporal: TemporalMode,
    pub plate: PlateStatus,
    /// BGMv2 is loaded but has no plate yet: frames are shown unmatted.
    pub needs_plate: bool,
}

impl LiveStatus {
    /// True while a stage is being rebuilt (the window shows a spinner).
    pub fn is_busy(&self) -> bool {
        self.model_state == ModelState::Loading || self.source_state == SourceState::Opening
    }
}

pub struct LiveConfig {
    pub source: SourceChoice,
    pub model: ModelChoice,
    pub temporal: TemporalMode,
    pub plate: PlateSettings,
    /// Called from the inference thread when a new frame is ready and when the status changes (the window
    /// asks egui to repaint).
    pub notify: Notify,
}

pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Handed to the inference thread.
enum InferCommand {
    Model {
        generation: u64,
        matter: Box<dyn Matter>,
    },
    Temporal(TemporalMode),
    CapturePlate,
    CancelPlate,
    /// Forget the plate of the current source and delete its file.
    ClearPlate,
    PlateSettings(PlateSettings),
}

struct Shared {
    status: Mutex<LiveStatus>,
    stats: LiveStats,
    frames: LatestSlot<Frame>,
    results: LatestSlot<LiveFrame>,
    /// Frame buffers the consumer is done with, back to the capture thread.
    spent_frames: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    spent_mattes: (Sender<Matte>, Receiver<Matte>),
    source_generation: AtomicU64,
    model_generation: AtomicU64,
    stop: AtomicBool,
    notify: Notify,
    /// The recording every matted frame also goes to, while one runs.
    recorder: Mutex<Option<Recorder>>,
}

impl Shared {
    fn update_status(&self, change: impl FnOnce(&mut LiveStatus)) {
        change(&mut self.status.lock().expect("status lock"));
        (self.notify)();
    }

    /// Applies `change` only while `generation` is still the current source.
    fn update_source_status(&self, generation: u64, change: impl FnOnce(&mut LiveStatus)) {
        if self.source_generation.load(Ordering::SeqCst) == generation {
            self.update_status(change);
        }
    }
}

/// A running live session; its threads stop and are joined on drop.
pub struct LiveSession {
    shared: Arc<Shared>,
    infer_commands: Sender<InferCommand>,
    capture: Option<(Arc<AtomicBool>, JoinHandle<()>)>,
    infer: Option<JoinHandle<()>>,
    /// Capture threads being stopped and model loaders still running: joined when finished, or on drop.
    retired: Vec<JoinHandle<()>>,
}

impl LiveSession {
    pub fn start(config: LiveConfig) -> Self {
        let status = LiveStatus {
            source: config.source.clone(),
            source_state: SourceState::Opening,
            source_info: None,
            model: config.model.clone(),
            model_state: ModelState::Loading,
            provider: None,
            temporal: config.temporal,
            plate: PlateStatus::default(),
            needs_plate: false,
        };
        let shared = Arc::new(Shared {
            status: Mutex::new(status),
            stats: LiveStats::default(),
            frames: LatestSlot::new(),
            results: LatestSlot::new(),
            spent_frames: bounded(4),
            spent_mattes: bounded(4),
            source_generation: AtomicU64::new(0),
            model_generation: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            notify: config.notify,
            recorder: Mutex::new(None),
        });
        let (infer_commands, commands) = bounded(4);
        let s = Arc::clone(&shared);
        let (temporal, plate) = (config.temporal, config.plate);
        let infer = std::thread::Builder::new()
            .name("infer".into())
            .spawn(move || infer_loop(&s, &commands, temporal, plate))
            .expect("failed to spawn the inference thread");
        let mut session = Self { shared, infer_commands, capture: None, infer: Some(infer), retired: Vec::new() };
        session.set_source(config.source);
        session.set_model(config.model);
        session
    }

    /// Switches to another source: opened on a new capture thread while the old one winds down.
    pub fn set_source(&mut self, choice: SourceChoice) {
        if let Some((stop, handle)) = self.capture.take() {
            stop.store(true, Ordering::SeqCst);
            self.retired.push(handle);
        }
        let generation = self.shared.source_generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.update_status(|status| {
            status.source = choice.clone();
            status.source_state = SourceState::Opening;
            status.source_info = None;
        });
        let stop = Arc::new(AtomicBool::new(false));
        let s = Arc::clone(&self.shared);
        let thread_stop = Arc::clone(&stop);
        let handle = std::thread::Builder::new()
            .name("capture".into())
            .spawn(move || capture_loop(&s, &choice, generation, &thread_stop))
            .expect("failed to spawn the capture thread");
        self.capture = Some((stop, handle));
        self.reap();
    }

    /// Loads another model on a loader thread; the current one keeps running until it is ready.
    pub fn set_model(&mut self, choice: ModelChoice) {
        let generation = self.shared.model_generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.update_status(|status| {
            status.model = choice.clone();
            status.model_state = ModelState::Loading;
        });
        let s = Arc::clone(&self.shared);
        let commands = self.infer_commands.clone();
        let handle = std::thread::Builder::new()
            .name("model-loader".into())
            .spawn(move || {
                let opened = models::default_model_file(choice.kind).map_err(|err| err.to_string()).and_then(|file| {
                    let matter =
                        infer::open_matter(choice.kind, &file, &choice.matter_options()).map_err(|e| e.to_string())?;
                    if let Some(notice) = models::note_user_model(&file) {
                        tracing::warn!("{notice}");
                    }
                    Ok(matter)
                });
                match opened {
                    Ok(matter) => {
                        let _ = commands.send(InferCommand::Model { generation, matter });
                    }
                    Err(reason) if s.model_generation.load(Ordering::SeqCst) == generation => {
                        s.update_status(|status| status.model_state = ModelState::Failed(reason));
                    }
                    Err(_) => {}
                }
            })
            .expect("failed to spawn the model loader");
        self.retired.push(handle);
        self.reap();
    }

    pub fn set_temporal(&mut self, mode: TemporalMode) {
        let _ = self.infer_commands.send(InferCommand::Temporal(mode));
        self.shared.update_status(|status| status.temporal = mode);
    }

    /// Captures a plate: after the countdown, the median of the set number of frames; saved for this source
    /// and resolution, and used at once.
    pub fn capture_plate(&self) {
        let _ = self.infer_commands.send(InferCommand::CapturePlate);
    }

    pub fn cancel_plate(&self) {
        let _ = self.infer_commands.send(InferCommand::CancelPlate);
    }

    pub fn clear_plate(&self) {
        let _ = self.infer_commands.send(InferCommand::ClearPlate);
    }

    pub fn set_plate_settings(&self, settings: PlateSettings) {
        let _ = self.infer_commands.send(InferCommand::PlateSettings(settings));
    }

    /// The newest matted frame, if one came since the last call; never waits.
    pub fn take_latest(&self) -> Option<LiveFrame> {
        self.shared.results.take_timeout(Duration::ZERO)
    }

    /// Gives a shown frame's buffers back for reuse.
    pub fn recycle(&self, done: LiveFrame) {
        let _ = self.shared.spent_frames.0.try_send(done.frame.rgb);
        let _ = self.shared.spent_mattes.0.try_send(done.matte);
    }

    /// Waits up to `timeout` for a matted frame (tests and headless consumers).
    pub fn wait_latest(&self, timeout: Duration) -> Option<LiveFrame> {
        self.shared.results.take_timeout(timeout)
    }

    pub fn status(&self) -> LiveStatus {
        self.shared.status.lock().expect("status lock").clone()
    }

    pub fn stats(&self) -> &LiveStats {
        &self.shared.stats
    }

    /// The stats as the window shows them, drop counters included.
    pub fn stats_view(&self) -> StatsView {
        self.shared.stats.view(self.shared.frames.dropped(), self.shared.results.dropped())
    }

    /// Records that `frame` reached the screen (or its consumer) after `composite_ms` of compositing.
    pub fn record_presented(&self, frame: &Frame, composite_ms: f64) {
        self.shared.stats.record_presented(frame.captured_at, composite_ms);
    }

    /// Starts recording every matted frame from now on (frame size and rate in `options` should be the
    /// running source's: [`LiveStatus::source_info`]).
    pub fn start_recording(&self, options: RecordOptions) -> Result<(), RecordError> {
        let mut slot = self.shared.recorder.lock().expect("recorder lock");
        if slot.is_some() {
            return Err(RecordError::AlreadyRecording);
        }
        *slot = Some(Recorder::start(options)?);
        Ok(())
    }

    /// Ends the recording: no frame goes to it from now on. The caller waits for its report
    /// ([`Recorder::try_report`] without blocking, or [`Recorder::stop`]).
    pub fn stop_recording(&self) -> Option<Recorder> {
        let mut recorder = self.shared.recorder.lock().expect("recorder lock").take()?;
        recorder.request_stop();
        Some(recorder)
    }

    pub fn recording_status(&self) -> Option<RecorderStatus> {
        self.shared.recorder.lock().expect("recorder lock").as_ref().map(Recorder::status)
    }

    pub fn recorder_pids(&self) -> Vec<u32> {
        self.shared.recorder.lock().expect("recorder lock").as_ref().map(Recorder::encoder_pids).unwrap_or_default()
    }

    /// The picture settings the recording composites with (the window's, as the user changes them).
    pub fn set_recording_settings(&self, settings: crate::composite::CompositeSettings) {
        if let Some(recorder) = self.shared.recorder.lock().expect("recorder lock").as_ref() {
            recorder.set_settings(settings);
        }
    }

    fn reap(&mut self) {
        let (finished, running): (Vec<_>, Vec<_>) = self.retired.drain(..).partition(|h| h.is_finished());
        self.retired = running;
        for handle in finished {
            let _ = handle.join();
        }
    }
}

impl Drop for LiveSession {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.frames.close();
        if let Some((stop, handle)) = self.capture.take() {
            stop.store(true, Ordering::SeqCst);
            let _ = handle.join();
        }
        if let Some(handle) = self.infer.take() {
            let _ = handle.join();
        }
        for handle in self.retired.drain(..) {
            let _ = handle.join();
        }
        // A recording still running is finished (its files finalised) before the session goes.
        if let Some(recorder) = self.stop_recording() {
            let report = recorder.stop();
            if let Some(error) = report.error {
                tracing::warn!("recording {}: {error}", crate::paths::display(&report.path));
            }
        }
    }
}

/// Opens, reads, paces and reopens the chosen source until told to stop.
fn capture_loop(shared: &Shared, choice: &SourceChoice, generation: u64, stop: &AtomicBool) {
    let stopping = || stop.load(Ordering::SeqCst) || shared.stop.load(Ordering::SeqCst);
    // A still image is decoded once and then repeated.
    let mut still: Option<Frame> = None;
    let mut seq = 0u64;
    while !stopping() {
        let mut source = match choice.open() {
            Ok(source) => source,
            Err(err) => {
                if !wait_to_retry(shared, choice, generation, &err, &stopping) {
                    return;
                }
                continue;
            }
        };
        let info = source.info().clone();
        shared.update_source_status(generation, |status| {
            status.source_state = SourceState::Running;
            status.source_info = Some(info.clone());
        });
        let fps = if choice.is_still() { IMAGE_FPS } else { info.fps.max(1.0) };
        let started = Instant::now();
        let mut delivered = 0u64;
        let ended = loop {
            if stopping() {
                return;
            }
            let buffer = shared.spent_frames.1.try_recv().unwrap_or_default();
            let next = match &still {
                Some(frame) => Ok(Some(Frame {
                    seq: 0,
                    captured_at: Instant::now(),
                    pts_ms: 0.0,
                    width: frame.width,
                    height: frame.height,
                    rgb: reuse_copy(buffer, &frame.rgb),
                })),
                None => source.next_frame(buffer),
            };
            let mut frame = match next {
                Ok(Some(frame)) => frame,
                Ok(None) => break None,
                Err(err) => break Some(err),
            };
            if choice.is_still() && still.is_none() {
                still = Some(frame.clone());
            }
            // Files play at their own rate, as a camera would deliver them.
            if !info.live {
                let due = started + Duration::from_secs_f64(delivered as f64 / fps);
                if let Some(wait) = due.checked_duration_since(Instant::now()) {
                    sleep_unless(wait, &stopping);
                }
            }
            delivered += 1;
            frame.seq = seq;
            seq += 1;
            frame.captured_at = Instant::now();
            shared.stats.record_captured(frame.captured_at);
            if let Some(stale) = shared.frames.put(frame) {
                let _ = shared.spent_frames.0.try_send(stale.rgb);
            }
        };
        let err = match ended {
            // End of a file: loop it (a still image never ends).
            None if !choice.is_live() => continue,
            None => SourceError::Camera { name: info.name.clone(), reason: "the stream ended".into() },
            Some(err) => err,
        };
        if !wait_to_retry(shared, choice, generation, &err, &stopping) {
            return;
        }
    }
}

/// Reports a source failure; for a camera, waits [`RETRY_INTERVAL`] and returns true (try again), for a
/// file returns false (nothing will change by retrying).
fn wait_to_retry(
    shared: &Shared,
    choice: &SourceChoice,
    generation: u64,
    err: &SourceError,
    stopping: &dyn Fn() -> bool,
) -> bool {
    let reason = err.to_string();
    if !choice.is_live() {
        tracing::warn!("source {choice}: {reason}");
        shared.update_source_status(generation, |status| status.source_state = SourceState::Failed(reason));
        return false;
    }
    let retry_at = Instant::now() + RETRY_INTERVAL;
    shared.update_source_status(generation, |status| {
        status.source_state = SourceState::Lost { reason, retry_at };
    });
    sleep_unless(RETRY_INTERVAL, stopping);
    !stopping()
}

fn sleep_unless(duration: Duration, stopping: &dyn Fn() -> bool) {
    let until = Instant::now() + duration;
    while !stopping() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}

fn reuse_copy(mut buffer: Vec<u8>, pixels: &[u8]) -> Vec<u8> {
    buffer.clear();
    buffer.extend_from_slice(pixels);
    buffer
}

/// Mattes the newest frame with the current model and filter, until the session stops.
fn infer_loop(shared: &Shared, commands: &Receiver<InferCommand>, temporal: TemporalMode, plate: PlateSettings) {
    let mut matter: Option<PlatedMatter> = None;
    let mut filter = TemporalFilter::<Frame>::new(temporal);
    let mut last_size = None;
    let mut plate_settings = plate;
    let mut keeper = PlateKeeper::new();
    // The plate of the current source, handed to each model that is loaded.
    let mut current_plate: Option<Plate> = None;
    let plate_options = |settings: &PlateSettings| PlateOptions { assist: settings.assist, ..PlateOptions::default() };
    while !shared.stop.load(Ordering::SeqCst) {
        for command in commands.try_iter() {
            match command {
                InferCommand::Model { generation, matter: new } => {
                    if shared.model_generation.load(Ordering::SeqCst) != generation {
                        continue;
                    }
                    let provider = new.provider().clone();
                    matter = Some(PlatedMatter::new(new, current_plate.clone(), plate_options(&plate_settings)));
                    filter.reset();
                    shared.update_status(|status| {
                        status.model_state = ModelState::Ready;
                        status.provider = Some(provider);
                    });
                }
                InferCommand::Temporal(mode) => filter = TemporalFilter::new(mode),
                InferCommand::CapturePlate => shared.update_status(|status| {
                    let countdown = Duration::from_secs(plate_settings.countdown_s.into());
                    keeper.start_capture(countdown, plate_settings.frames, &mut status.plate);
                }),
                InferCommand::CancelPlate => shared.update_status(|status| keeper.cancel_capture(&mut status.plate)),
                InferCommand::ClearPlate => {
                    current_plate = None;
                    if let Some(model) = matter.as_mut() {
                        model.replace_plate(None);
                    }
                    shared.update_status(|status| {
                        if let Some(path) = status.plate.path.take() {
                            let _ = std::fs::remove_file(path);
                        }
                        status.plate.plate = None;
                        status.plate.stale = false;
                    });
                }
                InferCommand::PlateSettings(settings) => {
                    plate_settings = settings;
                    if let Some(model) = matter.as_mut() {
                        model.set_options(plate_options(&settings));
                    }
                }
            }
        }
        let Some(frame) = shared.frames.take_timeout(COMMAND_POLL) else {
            continue;
        };
        // One look at the status before the frame and one write after it: the window reads it every repaint.
        let (source_name, mut plate_status, needed_plate) = {
            let status = shared.status.lock().expect("status lock");
            let name = status.source_info.as_ref().map_or_else(|| status.source.to_string(), |info| info.name.clone());
            (name, status.plate.clone(), status.needs_plate)
        };
        let phase_before = plate_status.phase.clone();
        if let PlateEvent::Replace(plate) = keeper.before(&source_name, &frame, &mut plate_status) {
            if let Some(model) = matter.as_mut() {
                model.replace_plate(plate.clone());
            }
            current_plate = plate;
        }
        let Some(model) = matter.as_mut() else {
            shared.update_status(|status| status.plate = plate_status);
            shared.stats.record_skipped();
            let _ = shared.spent_frames.0.try_send(frame.rgb);
            continue;
        };
        if last_size.is_some_and(|size| size != (frame.width, frame.height)) {
            model.reset();
            filter.reset();
        }
        last_size = Some((frame.width, frame.height));
        let mut matte = shared.spent_mattes.1.try_recv().unwrap_or_default();
        let needs_plate = model.needs_plate();
        if needs_plate {
            // BGMv2 before its plate: the frame as it is, so the user sees the room and can capture it.
            matte.seq = frame.seq;
            (matte.width, matte.height) = (frame.width, frame.height);
            matte.alpha.clear();
            matte.alpha.resize(frame.pixel_count(), 1.0);
            matte.foreground = None;
            matte.plate_check = None;
            matte.infer_ms = 0.0;
            matte.model_ms = 0.0;
        } else if let Err(err) = model.infer(&frame, &mut matte) {
            let kind = model.kind();
            tracing::warn!("{}: {err}", kind.name());
            matter = None;
            shared.update_status(|status| status.model_state = ModelState::Failed(err.to_string()));
            continue;
        }
        if !needs_plate {
            keeper.after(&matte, &plate_settings, &mut plate_status);
        }
        let changed = phase_before != plate_status.phase || needs_plate != needed_plate;
        {
            let mut status = shared.status.lock().expect("status lock");
            status.plate = plate_status;
            status.needs_plate = needs_plate;
        }
        if changed {
            (shared.notify)();
        }
        shared.stats.record_inferred(matte.infer_ms);
        let Some((frame, matte)) = filter.push(frame, matte) else {
            continue;
        };
        if let Some(recorder) = shared.recorder.lock().expect("recorder lock").as_ref() {
            recorder.push(&frame, &matte);
        }
        if let Some(stale) = shared.results.put(LiveFrame { frame, matte }) {
            let _ = shared.spent_frames.0.try_send(stale.frame.rgb);
            let _ = shared.spent_mattes.0.try_send(stale.matte);
        }
        (shared.notify)();
    }
    shared.results.close();
}
