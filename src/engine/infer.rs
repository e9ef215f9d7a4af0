//! The inference stage: mattes the frames it is handed with the current model, in small named steps: take
//! the changes the user made (a model loaded in the background, plate requests), keep the plate, matte,
//! report. With several sessions of a frame-independent model (a file run), frames go to the sessions in
//! turn and leave in order.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender, bounded};

use super::link::{LinkIn, LinkOut, Recv};
use super::plate::{PlateEvent, PlateKeeper, PlatePhase, PlateSettings, PlateStatus};
use super::{EngineError, ModelState, PlateRequest, PlateSetup, Shared};
use crate::frame::{Frame, Matte};
use crate::infer::{InferError, Matter};
use crate::plate::{Plate, PlateOptions, PlatedMatter};

/// How long the stage waits for a frame before it looks at its inputs again.
const POLL: Duration = Duration::from_millis(50);

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
        }
    }

    /// A model loaded in the background, new plate settings, a plate request.
    fn take_changes(&mut self, shared: &Shared) {
        if let Some((generation, matter)) = shared.model_loaded.take_timeout(Duration::ZERO)
            && shared.model_generation.load(Ordering::SeqCst) == generation
        {
            let provider = matter.provider().clone();
            let options = self.keeper.as_ref().map_or_else(PlateOptions::default, |(_, s)| plate_options(s));
            self.model = Some(PlatedMatter::new(matter, self.plate.clone(), options));
            self.restart = true;
            shared.update_status(|status| {
                status.model_state = ModelState::Ready;
                status.provider = Some(provider);
            });
        }
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
        }
        self.last_size = Some((frame.width, frame.height));
        let mut matte = shared.spent_mattes.1.try_recv().unwrap_or_default();
        let needs_plate = model.needs_plate();
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
        }
        Ok(Some(Matted { frame, matte, restart }))
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
