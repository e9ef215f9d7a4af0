//! The engine: one set of stage threads behind every output: the window, `record`, `process`, `bench`.
//!
//! ```text
//! source ("source") -> infer ("infer") -> composite, once ("composite") -> fan-out -> window, recorder,
//!                                                                                   snapshot, a file's sinks
//! ```
//!
//! A live source is paced by the source stage and handed on through latest-frame slots, so a slower stage
//! skips stale frames; a file run goes through bounded channels and loses nothing. Each frame is
//! composited once; every consumer gets the same [`Output`] (shared, never copied) and says whether it may
//! drop frames ([`Delivery`]). Settings reach the stages latest-wins: a setter never waits.

pub mod choice;
mod compose;
mod config;
pub mod fanout;
pub mod governor;
mod infer;
mod link;
pub mod plate;
pub mod snapshot;
mod source;
mod stage;
pub mod stats;
pub mod status;
mod writer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender, bounded};

pub use choice::{CameraMode, HoldRate, ModelChoice, SourceChoice};
pub use config::{CompositorSetup, EngineConfig, ModelInput, Notify, PlateSetup, SourceInput};
pub use fanout::{Delivery, Received, Subscription};
pub use plate::{PlatePhase, PlateSettings, PlateStatus};
pub use stats::{EngineStats, Stage, StageTime, StatsSnapshot, StatsView};
pub use status::{EngineStatus, ModelState, SourceState};
pub use writer::SinkWriter;

use crate::composite::CompositeSettings;
use crate::compositor::CompositorError;
use crate::filter::temporal::TemporalMode;
use crate::frame::{Matte, Output};
use crate::infer::{InferError, Matter, Precision, ProviderInUse};
use crate::latest::LatestSlot;
use crate::sink::SinkError;
use crate::source::{SourceError, SourceInfo};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Composite(#[from] CompositorError),
    #[error("the {0} stage panicked")]
    Panicked(String),
    #[error("the {thread} thread could not start ({reason}); close other programs and try again")]
    Spawn { thread: String, reason: String },
    #[error("{error}; {kept}")]
    Incomplete { error: Box<EngineError>, kept: String },
}

/// How a run ended.
#[derive(Clone, Debug)]
pub struct Summary {
    pub stats: StatsSnapshot,
    /// Per-frame times of each stage.
    pub stages: Vec<(Stage, StageTime)>,
    pub elapsed_s: f64,
    pub provider: ProviderInUse,
    pub source: SourceInfo,
    pub compositor: String,
}

impl Summary {
    pub fn fps(&self) -> f64 {
        let frames = self.stats.frames_written.max(self.stats.frames_composited);
        if self.elapsed_s > 0.0 { frames as f64 / self.elapsed_s } else { 0.0 }
    }
}

/// A one-off request to the plate keeper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlateRequest {
    Capture,
    Cancel,
    /// Forget the plate of the current source and delete its file.
    Clear,
}

/// Buffers the stages reuse, handed back by the stages after them. Each pool holds more than can be in
/// flight at once (frames: one being read, two queued, one in the model, two queued, two held by the
/// temporal filter, one compositing, and one in each of the compositor's eight reusable outputs; mattes:
/// from the model on), so that once every buffer has been sized by the first frames, a frame allocates
/// nothing.
const FRAME_POOL: usize = 24;
const MATTE_POOL: usize = 20;

/// What the stages share: inputs the UI sets latest-wins, the status, the figures, the fan-out.
pub(crate) struct Shared {
    pub stats: EngineStats,
    status: Mutex<EngineStatus>,
    notify: Notify,
    /// Set by `stop`: the source ends early, what was read is finished and the sinks are committed.
    stop: AtomicBool,
    /// Set by `cancel` or by any stage's error: nothing is committed.
    failed: AtomicBool,
    first_error: Mutex<Option<EngineError>>,
    /// Set by `cancel` alone: the run's files are removed, not kept as incomplete.
    cancelled: AtomicBool,
    /// What a failed run kept of its outputs, for the error.
    kept: Mutex<Vec<String>>,
    /// A file run's sinks have written everything and wait to be told whether to commit.
    writer_waiting: AtomicBool,
    pub fanout: fanout::Fanout,
    source_choice: LatestSlot<SourceChoice>,
    model_loaded: LatestSlot<(u64, Box<dyn Matter>, Precision)>,
    model_generation: AtomicU64,
    temporal: LatestSlot<TemporalMode>,
    plate_settings: LatestSlot<PlateSettings>,
    plate_request: LatestSlot<PlateRequest>,
    composite: LatestSlot<CompositeSettings>,
    spent_frames: (Sender<Vec<u8>>, Receiver<Vec<u8>>),
    spent_mattes: (Sender<Matte>, Receiver<Matte>),
}

impl Shared {
    fn fail(&self, error: EngineError) {
        let mut first = self.first_error.lock().expect("error lock");
        if first.is_none() && !self.failed.load(Ordering::SeqCst) {
            *first = Some(error);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    fn report(&self, result: Result<(), EngineError>) {
        if let Err(error) = result {
            self.fail(error);
        }
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::SeqCst)
    }

    fn cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.failed()
    }

    fn update_status(&self, change: impl FnOnce(&mut EngineStatus)) {
        change(&mut self.status.lock().expect("status lock"));
        (self.notify)();
    }

    fn status(&self) -> EngineStatus {
        self.status.lock().expect("status lock").clone()
    }

    fn recycle_frame(&self, rgb: Vec<u8>) {
        let _ = self.spent_frames.0.try_send(rgb);
    }

    fn recycle_matte(&self, mut matte: Matte) {
        // A reused matte says nothing until it is filled again (a model does not touch the flag).
        matte.unmatted = false;
        let _ = self.spent_mattes.0.try_send(matte);
    }
}

/// What the engine says before its stages have run: a file run's source and opened model are already
/// there, a live source and a model to load are on their way.
fn initial_status(
    source: &SourceInput,
    model: &ModelInput,
    temporal: TemporalMode,
    composite: &CompositeSettings,
    hold_rate: Option<HoldRate>,
) -> EngineStatus {
    let (source_choice, source_info) = match source {
        SourceInput::Live(choice) => (choice.clone(), None),
        SourceInput::File(source) => {
            let info = source.info().clone();
            (SourceChoice::Video { path: info.name.clone().into() }, Some(info))
        }
    };
    let (model_choice, provider) = match model {
        ModelInput::Load(choice) => (choice.clone(), None),
        ModelInput::Opened(matters) => {
            let first = matters.first().expect("at least one model session");
            let hold_rate = hold_rate.unwrap_or(HoldRate { enabled: false, ..HoldRate::default() });
            (ModelChoice { kind: first.kind(), hold_rate, ..ModelChoice::default() }, Some(first.provider().clone()))
        }
    };
    EngineStatus {
        source: source_choice,
        source_state: if source_info.is_some() { SourceState::Running } else { SourceState::Opening },
        source_info,
        model: model_choice,
        model_state: if provider.is_some() { ModelState::Ready } else { ModelState::Loading },
        provider,
        precision: None,
        governor: None,
        temporal,
        plate: PlateStatus::default(),
        needs_plate: false,
        composite: composite.clone(),
        composite_error: None,
        nonfinite_frames: 0,
        nonfinite_notice: None,
        compositor: String::new(),
    }
}

/// Subscribes consumers to an engine's outputs from any thread.
#[derive(Clone)]
pub struct Tap(Arc<Shared>);

impl Tap {
    pub fn subscribe(&self, name: &'static str, delivery: Delivery) -> Subscription {
        self.0.fanout.subscribe(name, delivery)
    }

    /// A consumer that sends the picture out of the machine (a virtual camera): see
    /// [`Engine::subscribe_private`].
    pub fn subscribe_private(&self, name: &'static str) -> Subscription {
        self.0.fanout.subscribe_private(name)
    }

    pub fn status(&self) -> EngineStatus {
        self.0.status()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.0.stats
    }
}

/// A pool of `size` empty buffers (sized on first use).
fn pool<T: Default>(size: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = bounded(size);
    for _ in 0..size {
        tx.try_send(T::default()).expect("the pool has room for its own buffers");
    }
    (tx, rx)
}

/// A running engine. Its stage threads stop and are joined on drop (or by [`Engine::wait`]).
pub struct Engine {
    shared: Arc<Shared>,
    /// In order: source, infer, composite, and a file run's sinks last.
    threads: Vec<(String, JoinHandle<()>)>,
    /// Tells a file run's sinks, once the stages before them are joined, whether to commit.
    commit: Option<Sender<bool>>,
    /// Model loaders still running: joined when finished, or on drop.
    loaders: Vec<JoinHandle<()>>,
    live: bool,
    source: Option<SourceInfo>,
    started: Instant,
}

impl Engine {
    pub fn start(config: EngineConfig) -> Self {
        let EngineConfig {
            source,
            model,
            temporal,
            composite,
            compositor,
            plate,
            writer,
            max_frames,
            notify,
            hold_rate,
        } = config;
        let source_info = match &source {
            SourceInput::Live(_) => None,
            SourceInput::File(source) => Some(source.info().clone()),
        };
        let live = matches!(source, SourceInput::Live(_)) || source_info.as_ref().is_some_and(|info| info.live);
        let status = initial_status(&source, &model, temporal, &composite, hold_rate);
        let shared = Arc::new(Shared {
            stats: EngineStats::default(),
            status: Mutex::new(status),
            notify,
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            first_error: Mutex::new(None),
            cancelled: AtomicBool::new(false),
            kept: Mutex::new(Vec::new()),
            writer_waiting: AtomicBool::new(false),
            fanout: fanout::Fanout::default(),
            source_choice: LatestSlot::new(),
            model_loaded: LatestSlot::new(),
            model_generation: AtomicU64::new(0),
            temporal: LatestSlot::new(),
            plate_settings: LatestSlot::new(),
            plate_request: LatestSlot::new(),
            composite: LatestSlot::new(),
            spent_frames: pool(FRAME_POOL),
            spent_mattes: pool(MATTE_POOL),
        });
        // A file run's writer subscribes before the first frame is composited.
        let written = writer.map(|writer| (writer, shared.fanout.subscribe("sinks", Delivery::Wait(2))));
        let (frames_out, frames_in) = link::link(live);
        let (matted_out, matted_in) = link::link(live);
        let mut threads = Vec::new();
        let s = Arc::clone(&shared);
        threads.extend(stage::spawn("source", &shared, move || source::run(&s, source, frames_out, max_frames)));
        let s = Arc::clone(&shared);
        let (models, to_load) = match model {
            ModelInput::Opened(matters) => (matters, None),
            ModelInput::Load(choice) => (Vec::new(), Some(choice)),
        };
        threads
            .extend(stage::spawn("infer", &shared, move || infer::run(&s, models, plate, live, frames_in, matted_out)));
        let s = Arc::clone(&shared);
        threads.extend(stage::spawn("composite", &shared, move || {
            compose::run(&s, compositor, composite, temporal, live, matted_in)
        }));
        let mut commit = None;
        if let Some((writer, subscription)) = written {
            let s = Arc::clone(&shared);
            let pacer = live.then(|| source_info.as_ref().map_or(30.0, |info| info.fps));
            let (decide, decision) = bounded(1);
            commit = Some(decide);
            threads.extend(stage::spawn("sink", &shared, move || writer.run(&s, subscription, pacer, &decision)));
        }
        let mut engine =
            Self { shared, threads, commit, loaders: Vec::new(), live, source: source_info, started: Instant::now() };
        if let Some(choice) = to_load {
            engine.set_model(choice);
        }
        engine
    }

    /// Subscribes a consumer to every frame composited from now on.
    pub fn subscribe(&self, name: &'static str, delivery: Delivery) -> Subscription {
        self.shared.fanout.subscribe(name, delivery)
    }

    /// A handle that subscribes consumers from another thread (a recording that starts in the background).
    pub fn tap(&self) -> Tap {
        Tap(Arc::clone(&self.shared))
    }

    /// Subscribes the screen: the newest frame, drawn from the GPU texture when the compositor runs on the
    /// window's device.
    pub fn subscribe_screen(&self) -> Subscription {
        self.shared.fanout.subscribe_screen("screen")
    }

    /// Subscribes a consumer that sends the picture out of the machine (a virtual camera): the newest
    /// frame, never the room unmatted (BGMv2 before its plate shows the background alone while it
    /// watches), and idle until it says an app is watching ([`Subscription::set_idle`]).
    pub fn subscribe_private(&self, name: &'static str) -> Subscription {
        self.shared.fanout.subscribe_private(name)
    }

    /// Switches to another source (the live engine): the source stage opens it between two frames.
    pub fn set_source(&self, choice: SourceChoice) {
        self.shared.update_status(|status| {
            status.source = choice.clone();
            status.source_state = SourceState::Opening;
            status.source_info = None;
        });
        self.shared.source_choice.put(choice);
    }

    /// Loads another model on a loader thread; the current one keeps running until it is ready.
    pub fn set_model(&mut self, choice: ModelChoice) {
        let generation = self.shared.model_generation.fetch_add(1, Ordering::SeqCst) + 1;
        self.shared.update_status(|status| {
            status.model = choice.clone();
            status.model_state = ModelState::Loading;
        });
        let s = Arc::clone(&self.shared);
        let spawned = std::thread::Builder::new().name("model-loader".into()).spawn(move || {
            match choice.open() {
                Ok((matter, precision)) => {
                    // A newer choice made meanwhile wins: this one is dropped unused.
                    if s.model_generation.load(Ordering::SeqCst) == generation {
                        s.model_loaded.put((generation, matter, precision));
                    }
                }
                Err(reason) if s.model_generation.load(Ordering::SeqCst) == generation => {
                    s.update_status(|status| status.model_state = ModelState::Failed(reason));
                }
                Err(_) => {}
            }
        });
        match spawned {
            Ok(handle) => self.loaders.push(handle),
            Err(err) => self.shared.update_status(|status| {
                status.model_state = ModelState::Failed(format!("the model loader could not start ({err})"))
            }),
        }
        self.reap();
    }

    pub fn set_temporal(&self, mode: TemporalMode) {
        self.shared.update_status(|status| status.temporal = mode);
        self.shared.temporal.put(mode);
    }

    /// New picture settings from the next frame on.
    pub fn set_composite(&self, settings: CompositeSettings) {
        self.shared.composite.put(settings);
    }

    pub fn set_plate_settings(&self, settings: PlateSettings) {
        self.shared.plate_settings.put(settings);
    }

    /// Captures a plate (after the countdown), cancels a capture, or clears the current source's plate.
    pub fn request_plate(&self, request: PlateRequest) {
        self.shared.plate_request.put(request);
    }

    pub fn status(&self) -> EngineStatus {
        self.shared.status()
    }

    pub fn stats(&self) -> &EngineStats {
        &self.shared.stats
    }

    /// The figures so far.
    pub fn snapshot(&self) -> StatsSnapshot {
        self.shared.stats.snapshot()
    }

    /// The live figures as the window shows them; `screen`: the window's subscription.
    pub fn stats_view(&self, screen: Option<&Subscription>) -> StatsView {
        self.shared.stats.view(screen.map_or(0, Subscription::dropped))
    }

    /// Records that `output` reached the screen (or the consumer that stands for it).
    pub fn record_shown(&self, output: &Output) {
        self.shared.stats.record_shown(output.frame.captured_at, output.composite_ms);
    }

    /// Whether every stage has ended (a file run's source ran out, or the run failed); a file run's sinks
    /// then wait for [`Engine::wait`] to commit them.
    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|(name, handle)| {
            handle.is_finished() || (name == "sink" && self.shared.writer_waiting.load(Ordering::SeqCst))
        })
    }

    /// Ends the stream early but keeps what was done: a file run's sinks are finished and committed.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
    }

    /// Abandons the run: nothing is committed and partial outputs are removed.
    pub fn cancel(&self) {
        self.shared.cancelled.store(true, Ordering::SeqCst);
        self.shared.failed.store(true, Ordering::SeqCst);
        self.stop();
    }

    /// Waits until the source and the model are running (the live engine), or one failed, or `give_up()`.
    pub fn wait_until_ready(&self, give_up: &dyn Fn() -> bool) -> Result<Option<SourceInfo>, String> {
        loop {
            let status = self.status();
            if let Some(failure) = status.failure() {
                return Err(failure);
            }
            if let SourceState::Lost { reason, .. } = &status.source_state {
                return Err(format!("source {}: {reason}", status.source));
            }
            if status.is_ready() && status.source_info.is_some() {
                return Ok(status.source_info);
            }
            if give_up() {
                return Ok(None);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for every stage; the first error any stage met, if one did.
    pub fn wait(mut self) -> Result<Summary, EngineError> {
        self.join_all();
        if let Some(error) = self.shared.first_error.lock().expect("error lock").take() {
            let kept = std::mem::take(&mut *self.shared.kept.lock().expect("kept lock"));
            if kept.is_empty() {
                return Err(error);
            }
            return Err(EngineError::Incomplete { error: Box::new(error), kept: kept.join("; ") });
        }
        let status = self.status();
        Ok(Summary {
            stats: self.snapshot(),
            stages: self.shared.stats.stage_times(),
            elapsed_s: self.started.elapsed().as_secs_f64(),
            provider: status.provider.clone().unwrap_or_else(|| ProviderInUse::cpu(None)),
            source: status.source_info.or_else(|| self.source.clone()).unwrap_or_else(|| SourceInfo {
                name: status.source.to_string(),
                width: 0,
                height: 0,
                fps: 0.0,
                frame_count: None,
                live: self.live,
            }),
            compositor: status.compositor,
        })
    }

    fn join_all(&mut self) {
        for (name, handle) in self.threads.drain(..) {
            // The sinks come last: by now every stage before them has reported how it ended.
            if name == "sink"
                && let Some(commit) = self.commit.take()
            {
                let _ = commit.send(!self.shared.failed());
            }
            if handle.join().is_err() {
                self.shared.fail(EngineError::Panicked(name));
            }
        }
        for handle in self.loaders.drain(..) {
            let _ = handle.join();
        }
    }

    fn reap(&mut self) {
        let (finished, running): (Vec<_>, Vec<_>) = self.loaders.drain(..).partition(|h| h.is_finished());
        self.loaders = running;
        for handle in finished {
            let _ = handle.join();
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            // A live engine is stopped (nothing of its own to commit); a file run dropped unfinished is
            // abandoned.
            if self.live {
                self.stop()
            } else {
                self.cancel()
            }
            self.join_all();
        }
    }
}
