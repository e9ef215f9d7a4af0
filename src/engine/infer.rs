//! The inference stage: mattes the frames it is handed with the current model, in small named steps: take
//! the changes the user made (a model loaded in the background, plate requests), keep the plate, matte,
//! report. With several sessions of a frame-independent model (a file run), frames go to the sessions in
//! turn and leave in order.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::governor::{Governor, ladder};
use super::link::{LinkIn, LinkOut, Recv};
use super::plate::{PlateEvent, PlateKeeper, PlatePhase, PlateSettings, PlateStatus};
use super::{EngineError, ModelState, PlateRequest, PlateSetup, Shared};
use crate::frame::{Frame, Matte};
use crate::infer::{InferError, Matter, Precision};
use crate::plate::{Plate, PlateOptions, PlatedMatter};

/// How long the stage waits for a frame before it looks at its inputs again.
const POLL: Duration = Duration::from_millis(50);
/// The longest a reused matte waits for the compositor to take the frame before it (a bound for a stuck
/// compositor; one takes a frame in milliseconds).
const REUSE_WAIT: Duration = Duration::from_millis(500);

/// A matted frame on its way to the compositor.
pub struct Matted {
    pub frame: Frame,
    pub matte: Matte,
    /// The model or the frame size changed: the temporal filter starts over.
    pub restart: bool,
}

pub fn run(
    shared: &Shared,
    models: Vec<Box<dyn Matter>>,
    plate: Option<PlateSetup>,
    live: bool,
    frames: LinkIn<Frame>,
    out: LinkOut<Matted>,
) -> Result<(), EngineError> {
    if models.len() > 1 {
        return run_sessions(shared, models, &frames, &out);
    }
    let mut stage = Inferring::new(models.into_iter().next(), plate, live);
    loop {
        stage.take_changes(shared);
        let frame = match frames.recv_timeout(POLL) {
            Recv::Value(frame) => frame,
            Recv::Empty => continue,
            Recv::Closed => break,
        };
        if shared.failed() {
            break;
        }
        super::stage::test_panic("infer", frame.seq);
        let Some(matted) = stage.matte(shared, frame)? else { continue };
        if std::mem::take(&mut stage.reused) {
            // A reused matte follows the matted frame at once: let the compositor take that one first, or
            // the newer frame would replace it unseen and nothing would be gained.
            let started = std::time::Instant::now();
            while out.waiting() > 0 && started.elapsed() < REUSE_WAIT && !shared.failed() {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        match out.send(matted) {
            Ok(Some(stale)) => {
                shared.stats.record_dropped_before_composite();
                shared.recycle_frame(stale.frame.rgb);
                shared.recycle_matte(stale.matte);
            }
            Ok(None) => {}
            Err(_) => break,
        }
    }
    Ok(())
}

/// One session (swapped when the user picks another model) and the plate it uses.
struct Inferring {
    model: Option<PlatedMatter>,
    /// The caller opened the model (a file run, the bench): a frame it fails on fails the run. A model the
    /// user picked is dropped instead, and the status says why.
    fixed: bool,
    keeper: Option<(PlateKeeper, PlateSettings)>,
    /// The plate of the current source, handed to each model that is loaded.
    plate: Option<Plate>,
    last_size: Option<(u32, u32)>,
    restart: bool,
    /// Live: frames without a model are shown as the background alone; a file run skips them.
    live: bool,
    /// "Hold frame rate" (live only): built on the first frame of each model and frame size.
    governor: Option<Governor>,
    /// The governor is to be built on the next frame.
    govern: bool,
    /// At the governor's last level: whether the next frame reuses `last_matte`.
    reuse_next: bool,
    last_matte: Option<Matte>,
    /// The frame just returned took `last_matte`.
    reused: bool,
    /// The precision of the model the user's choice loaded (`None` for a model the caller opened).
    loaded_precision: Option<Precision>,
    /// The governor switched the model to its INT8 file.
    running_int8: bool,
    /// A switch to start on the next turn (back to float when the governor starts over).
    swap_next: Option<bool>,
    /// The model's other precision, being opened for the governor.
    swap: Option<Swap>,
    /// Threads that opened (or open) a swapped model: joined when the stage ends.
    loaders: Vec<std::thread::JoinHandle<()>>,
}

/// What a model loader gives: the model and its precision, or why it did not open.
type Opened = Result<(Box<dyn Matter>, Precision), String>;

/// A model of the other precision being opened off the stage's thread, so that matting goes on meanwhile.
struct Swap {
    int8: bool,
    done: Receiver<Opened>,
}

impl Drop for Inferring {
    fn drop(&mut self) {
        for loader in self.loaders.drain(..) {
            let _ = loader.join();
        }
    }
}

impl Inferring {
    fn new(model: Option<Box<dyn Matter>>, plate: Option<PlateSetup>, live: bool) -> Self {
        let fixed = model.is_some();
        let keeper = plate.map(|setup| (PlateKeeper::new(setup.dir), setup.settings));
        let options = keeper.as_ref().map_or_else(PlateOptions::default, |(_, settings)| plate_options(settings));
        Self {
            model: model.map(|model| PlatedMatter::new(model, None, options)),
            fixed,
            keeper,
            plate: None,
            last_size: None,
            restart: true,
            live,
            governor: None,
            govern: live,
            loaded_precision: None,
            running_int8: false,
            swap_next: None,
            swap: None,
            loaders: Vec::new(),
            reuse_next: false,
            last_matte: None,
            reused: false,
        }
    }

    /// A model loaded in the background, new plate settings, a plate request.
    fn take_changes(&mut self, shared: &Shared) {
        if let Some((generation, matter, precision)) = shared.model_loaded.take_timeout(Duration::ZERO)
            && shared.model_generation.load(Ordering::SeqCst) == generation
        {
            let provider = matter.provider().clone();
            let options = self.keeper.as_ref().map_or_else(PlateOptions::default, |(_, s)| plate_options(s));
            self.model = Some(PlatedMatter::new(matter, self.plate.clone(), options));
            self.restart = true;
            self.govern = self.live;
            self.swap = None;
            self.loaded_precision = Some(precision);
            self.running_int8 = false;
            shared.update_status(|status| {
                status.model_state = ModelState::Ready;
                status.provider = Some(provider);
                status.precision = Some(precision);
            });
        }
        if let Some(int8) = self.swap_next.take() {
            self.start_swap(shared, int8);
        }
        self.take_swap(shared);
        let Some((keeper, settings)) = &mut self.keeper else { return };
        if let Some(new) = shared.plate_settings.take_timeout(Duration::ZERO) {
            *settings = new;
            if let Some(model) = self.model.as_mut() {
                model.set_options(plate_options(&new));
            }
        }
        match shared.plate_request.take_timeout(Duration::ZERO) {
            Some(PlateRequest::Capture) => shared.update_status(|status| {
                let countdown = Duration::from_secs(settings.countdown_s.into());
                keeper.start_capture(countdown, settings.frames, &mut status.plate);
            }),
            Some(PlateRequest::Cancel) => shared.update_status(|status| keeper.cancel_capture(&mut status.plate)),
            Some(PlateRequest::Clear) => {
                self.plate = None;
                if let Some(model) = self.model.as_mut() {
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
            None => {}
        }
    }

    /// Mattes one frame; `None` when there is no model to do it (the frame is counted and given back).
    fn matte(&mut self, shared: &Shared, frame: Frame) -> Result<Option<Matted>, EngineError> {
        let mut plate = self.plate_before(shared, &frame);
        let Some(model) = self.model.as_mut() else {
            if let Some((status, _, _)) = plate {
                shared.update_status(|s| s.plate = status);
            }
            shared.stats.record_skipped();
            if !self.live {
                shared.recycle_frame(frame.rgb);
                return Ok(None);
            }
            // Fail closed: until a model runs (loading, or failed), the picture is the background alone.
            let mut matte = shared.spent_mattes.1.try_recv().unwrap_or_default();
            veil(&frame, &mut matte);
            let restart = std::mem::take(&mut self.restart);
            return Ok(Some(Matted { frame, matte, restart }));
        };
        if self.last_size.is_some_and(|size| size != (frame.width, frame.height)) {
            model.reset();
            self.restart = true;
            self.govern = self.live;
        }
        self.last_size = Some((frame.width, frame.height));
        if std::mem::take(&mut self.govern) {
            let reloadable = if self.fixed { None } else { self.loaded_precision };
            self.governor = start_governor(shared, model, &frame, reloadable);
            // Starting over (a new frame size): the first level is the float model.
            if self.running_int8 && self.governor.as_ref().is_some_and(|g| !g.level().int8) {
                self.swap_next = Some(false);
            }
            self.reuse_next = false;
        }
        let mut matte = shared.spent_mattes.1.try_recv().unwrap_or_default();
        let needs_plate = model.needs_plate();
        // At the governor's last level, every second frame takes the latest matte instead of a new one.
        let skipping = self.governor.as_ref().is_some_and(|g| g.level().skip);
        if !needs_plate
            && skipping
            && std::mem::take(&mut self.reuse_next)
            && let Some(last) = self.last_matte.as_ref()
        {
            matte.clone_from(last);
            matte.seq = frame.seq;
            (matte.infer_ms, matte.model_ms) = (0.0, 0.0);
            if let Some((status, _, _)) = plate {
                shared.update_status(|s| s.plate = status);
            }
            let restart = std::mem::take(&mut self.restart);
            self.reused = true;
            return Ok(Some(Matted { frame, matte, restart }));
        }
        if needs_plate && shared.fanout.has_private() {
            veil(&frame, &mut matte);
        } else if needs_plate {
            show_unmatted(&frame, &mut matte);
        } else if let Err(err) = model.infer(&frame, &mut matte) {
            return self.failed(shared, err, frame, matte);
        } else if !is_finite(&matte) {
            let err = InferError::NonFinite { model: model.kind().title(), seq: frame.seq };
            if !self.live {
                return Err(err.into());
            }
            // Live: drop the frame, start the model's memory (RVM's) and the filters afresh, and say so.
            model.reset();
            self.restart = true;
            shared.recycle_frame(frame.rgb);
            shared.recycle_matte(matte);
            tracing::warn!("{err}");
            shared.update_status(|status| {
                status.nonfinite_frames += 1;
                status.nonfinite_notice = Some(format!("Dropped a frame: {err}"));
            });
            return Ok(None);
        }
        if let (Some((keeper, settings)), Some((status, phase_before, needed_plate))) = (&mut self.keeper, plate.take())
        {
            let mut status = status;
            if !needs_plate {
                keeper.after(&matte, model.last_check(), settings, &mut status);
            }
            let changed = phase_before != status.phase || needs_plate != needed_plate;
            {
                let mut shown = shared.status.lock().expect("status lock");
                shown.plate = status;
                shown.needs_plate = needs_plate;
            }
            if changed {
                (shared.notify)();
            }
        }
        let restart = std::mem::take(&mut self.restart);
        if !needs_plate {
            shared.stats.record_infer(matte.infer_ms, matte.model_ms);
            self.steer(shared, &matte);
        }
        Ok(Some(Matted { frame, matte, restart }))
    }

    /// Feeds the governor one matted frame's cost and applies the level it picks.
    fn steer(&mut self, shared: &Shared, matte: &Matte) {
        let (Some(governor), Some(model)) = (self.governor.as_mut(), self.model.as_mut()) else { return };
        if governor.level().skip {
            self.reuse_next = true;
            self.last_matte.get_or_insert_with(Matte::default).clone_from(matte);
        }
        // A model being swapped in: its costs are not this one's.
        if self.swap.is_some() {
            return;
        }
        if let Some(level) = governor.observe(matte.infer_ms) {
            model.set_work(level.work);
            let status = governor.status(model.kind());
            tracing::info!("hold frame rate: {} ({} fps)", status.label, status.target_fps);
            shared.update_status(|s| s.governor = Some(status));
            if level.int8 != self.running_int8 {
                self.start_swap(shared, level.int8);
            }
        }
    }

    /// Opens the model at the other precision on a loader thread.
    fn start_swap(&mut self, shared: &Shared, int8: bool) {
        let mut choice = shared.status.lock().expect("status lock").model.clone();
        choice.precision = if int8 { Precision::Int8 } else { Precision::Fp32 };
        let (tx, done) = bounded(1);
        let spawned = std::thread::Builder::new().name("model-loader".into()).spawn(move || {
            let _ = tx.send(choice.open());
        });
        match spawned {
            Ok(handle) => {
                self.loaders.push(handle);
                self.swap = Some(Swap { int8, done });
            }
            Err(err) => tracing::warn!("hold frame rate: could not start a model loader ({err})"),
        }
    }

    /// The swapped model, once open: it takes over at the governor's level.
    fn take_swap(&mut self, shared: &Shared) {
        let Some(swap) = &self.swap else { return };
        let Ok(opened) = swap.done.try_recv() else { return };
        let int8 = swap.int8;
        self.swap = None;
        match opened {
            Ok((matter, precision)) => {
                let options = self.keeper.as_ref().map_or_else(PlateOptions::default, |(_, s)| plate_options(s));
                let mut model = PlatedMatter::new(matter, self.plate.clone(), options);
                if let Some(governor) = &self.governor {
                    model.set_work(governor.level().work);
                }
                let provider = model.provider().clone();
                self.model = Some(model);
                self.running_int8 = int8;
                self.restart = true;
                shared.update_status(|status| {
                    status.precision = Some(precision);
                    status.provider = Some(provider);
                });
            }
            // The float model keeps running at the governor's resolution.
            Err(reason) => tracing::warn!("hold frame rate: the other precision did not load: {reason}"),
        }
    }

    /// With plate keeping (the live engine): one look at the status before the frame (the window reads it
    /// every repaint), the saved plate loaded for a new source or size, a capture fed. Returns the plate
    /// status to write back after the frame, the capture phase before it, and whether BGMv2 needed a plate.
    fn plate_before(&mut self, shared: &Shared, frame: &Frame) -> Option<(PlateStatus, PlatePhase, bool)> {
        let (keeper, _) = self.keeper.as_mut()?;
        let (source, mut status, needed_plate) = {
            let status = shared.status.lock().expect("status lock");
            let name = status.source_info.as_ref().map_or_else(|| status.source.to_string(), |info| info.name.clone());
            (name, status.plate.clone(), status.needs_plate)
        };
        let phase_before = status.phase.clone();
        if let PlateEvent::Replace(plate) = keeper.before(&source, frame, &mut status) {
            if let Some(model) = self.model.as_mut() {
                model.replace_plate(plate.clone());
            }
            self.plate = plate;
        }
        Some((status, phase_before, needed_plate))
    }

    /// A model that failed on a frame: a file run fails; the live engine drops the model, says why, and
    /// goes on showing nothing new until another model is picked.
    fn failed(
        &mut self,
        shared: &Shared,
        err: InferError,
        frame: Frame,
        matte: Matte,
    ) -> Result<Option<Matted>, EngineError> {
        if self.fixed {
            return Err(err.into());
        }
        tracing::warn!("{err}");
        self.model = None;
        shared.recycle_frame(frame.rgb);
        shared.recycle_matte(matte);
        shared.update_status(|status| status.model_state = ModelState::Failed(err.to_string()));
        Ok(None)
    }
}

/// The governor for the model the status names, when "Hold frame rate" is on for it; the first level is
/// applied at once (the user's own setting).
/// `loaded`: the precision the engine loaded this model at from the user's choice (`None`: the caller
/// opened it, so no other file can be loaded); a float one may be swapped for its INT8 file.
fn start_governor(
    shared: &Shared,
    model: &mut PlatedMatter,
    frame: &Frame,
    loaded: Option<Precision>,
) -> Option<Governor> {
    let (choice, source_fps) = {
        let status = shared.status.lock().expect("status lock");
        (status.model.clone(), status.source_info.as_ref().map(|info| info.fps))
    };
    if !choice.hold_rate.enabled {
        shared.update_status(|s| s.governor = None);
        return None;
    }
    let ratio = (choice.downsample_ratio > 0.0).then_some(choice.downsample_ratio);
    let int8_step =
        loaded == Some(Precision::Fp32) && !crate::infer::cuda_possible(choice.provider) && choice.int8_available();
    let levels = ladder(model.kind(), choice.ref_size, ratio, (frame.width, frame.height), int8_step);
    let target = if choice.hold_rate.target_fps > 0.0 {
        f64::from(choice.hold_rate.target_fps)
    } else {
        source_fps.filter(|fps| fps.is_finite() && *fps > 0.0).unwrap_or(30.0)
    };
    let governor = Governor::new(levels, target);
    model.set_work(governor.level().work);
    let status = governor.status(model.kind());
    shared.update_status(|s| s.governor = Some(status));
    Some(governor)
}

fn plate_options(settings: &PlateSettings) -> PlateOptions {
    PlateOptions { assist: settings.assist, ..PlateOptions::default() }
}

/// BGMv2 before its plate: the frame as it is, so the user sees the room and can capture it.
fn show_unmatted(frame: &Frame, matte: &mut Matte) {
    fill(frame, matte, 1.0);
    matte.unmatted = true;
}

/// No person: the picture is the background alone (the whole frame blurred, in blur mode).
fn veil(frame: &Frame, matte: &mut Matte) {
    fill(frame, matte, 0.0);
}

fn fill(frame: &Frame, matte: &mut Matte, alpha: f32) {
    matte.seq = frame.seq;
    (matte.width, matte.height) = (frame.width, frame.height);
    matte.alpha.clear();
    matte.alpha.resize(frame.pixel_count(), alpha);
    matte.foreground = None;
    matte.infer_ms = 0.0;
    matte.model_ms = 0.0;
}

fn infer_one(
    matter: &mut dyn Matter,
    last_size: &mut Option<(u32, u32)>,
    frame: Frame,
    mut matte: Matte,
) -> Result<(Frame, Matte), InferError> {
    if last_size.is_some_and(|size| size != (frame.width, frame.height)) {
        matter.reset();
    }
    *last_size = Some((frame.width, frame.height));
    matter.infer(&frame, &mut matte)?;
    if !is_finite(&matte) {
        return Err(InferError::NonFinite { model: matter.kind().title(), seq: frame.seq });
    }
    Ok((frame, matte))
}

/// Several sessions of a frame-independent model, each on its own thread ("infer-1", ...): frame `i` goes
/// to session `i mod n`, and the mattes are collected in the same turn, so they leave in frame order.
fn run_sessions(
    shared: &Shared,
    matters: Vec<Box<dyn Matter>>,
    frames: &LinkIn<Frame>,
    out: &LinkOut<Matted>,
) -> Result<(), EngineError> {
    type Done = Result<(Frame, Matte), InferError>;
    /// A session's thread: frames in, mattes out.
    type Worker = (Sender<(Frame, Matte)>, Receiver<Done>);
    std::thread::scope(|scope| {
        let mut workers: Vec<Worker> = Vec::with_capacity(matters.len());
        for (k, mut matter) in matters.into_iter().enumerate() {
            let (job_tx, job_rx) = bounded::<(Frame, Matte)>(1);
            let (done_tx, done_rx) = bounded::<Done>(1);
            std::thread::Builder::new()
                .name(format!("infer-{}", k + 1))
                .spawn_scoped(scope, move || {
                    let mut last_size = None;
                    for (frame, matte) in job_rx.iter() {
                        if done_tx.send(infer_one(matter.as_mut(), &mut last_size, frame, matte)).is_err() {
                            break;
                        }
                    }
                })
                .expect("failed to spawn an inference thread");
            workers.push((job_tx, done_rx));
        }
        // Sessions holding a frame, oldest first; the next frame goes to the session after the newest.
        let mut in_flight = VecDeque::with_capacity(workers.len());
        let mut next = 0;
        let mut source_done = false;
        let mut first = true;
        loop {
            while !source_done && in_flight.len() < workers.len() && !shared.failed() {
                match frames.recv_timeout(POLL) {
                    Recv::Value(frame) => {
                        super::stage::test_panic("infer", frame.seq);
                        let matte = shared.spent_mattes.1.try_recv().unwrap_or_default();
                        if workers[next].0.send((frame, matte)).is_err() {
                            source_done = true;
                            break;
                        }
                        in_flight.push_back(next);
                        next = (next + 1) % workers.len();
                    }
                    Recv::Empty if in_flight.is_empty() => {}
                    Recv::Empty => break,
                    Recv::Closed => source_done = true,
                }
            }
            let Some(oldest) = in_flight.pop_front() else {
                if source_done || shared.failed() {
                    break;
                }
                continue;
            };
            let Ok(done) = workers[oldest].1.recv() else {
                break;
            };
            let (frame, matte) = done?;
            shared.stats.record_infer(matte.infer_ms, matte.model_ms);
            let restart = std::mem::take(&mut first);
            if shared.failed() || out.send(Matted { frame, matte, restart }).is_err() {
                break;
            }
        }
        // Dropping the job senders ends the workers; the scope joins them.
        drop(workers);
        Ok(())
    })
}

/// Whether every alpha the model gave is a number: NaN would poison the filters and the picture, infinity
/// the compositing.
fn is_finite(matte: &Matte) -> bool {
    matte.alpha.iter().all(|a| a.is_finite())
}
