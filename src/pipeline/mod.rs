//! The stage threads: source -> infer -> composite -> sinks, each named, joined on drop, linked by
//! bounded channels (a file source never loses a frame) or, after a live source, by a latest-frame slot
//! (a slow model drops stale camera frames instead of falling behind).

pub mod latest;
pub mod stats;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, bounded};

pub use latest::LatestSlot;
pub use stats::{PipelineStats, Stage, StageTime, StatsSnapshot};

use crate::composite::{Composite, CompositeError, Compositor};
use crate::filter::temporal::{TemporalFilter, TemporalMode};
use crate::frame::{Frame, Matte};
use crate::infer::{InferError, Matter, ProviderInUse};
use crate::record::{FramePacer, Placement};
use crate::sink::{Output, Sink, SinkError};
use crate::source::{FrameSource, SourceError, SourceInfo};

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Composite(#[from] CompositeError),
    #[error("the {0} stage panicked")]
    Panicked(String),
}

/// Frames a bounded channel holds between two stages.
const CHANNEL_FRAMES: usize = 2;

/// Buffers each stage reuses, handed back by the stages after it. Each pool holds more than can be in
/// flight at once (frames: one being read, two queued, one in the model, two queued, two held by the
/// temporal filter, one compositing, two queued, two at the sinks), so a stage never finds its pool empty
/// and, once every buffer has been sized by the first frames, a frame allocates nothing.
const FRAME_POOL: usize = 16;
const MATTE_POOL: usize = 10;
const OUTPUT_POOL: usize = 10;

/// A pool of `size` empty buffers (sized on first use).
fn pool<T: Default>(size: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = bounded(size);
    for _ in 0..size {
        tx.try_send(T::default()).expect("the pool has room for its own buffers");
    }
    (tx, rx)
}

pub struct PipelineConfig {
    /// One session, or several of a frame-independent model (`infer::open_matters`) that take frames in
    /// turn, each on its own thread, the mattes put back in order.
    pub matters: Vec<Box<dyn Matter>>,
    pub temporal: TemporalMode,
    /// Upsamples, shapes and composites the alpha (CPU or GPU).
    pub compositor: Compositor,
    pub sinks: Vec<Box<dyn Sink>>,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
}

/// How a pipeline ended.
#[derive(Clone, Debug)]
pub struct Summary {
    pub stats: StatsSnapshot,
    /// Per-frame times of each stage.
    pub stages: Vec<(Stage, StageTime)>,
    pub elapsed_s: f64,
    pub provider: ProviderInUse,
    pub source: SourceInfo,
}

impl Summary {
    pub fn fps(&self) -> f64 {
        if self.elapsed_s > 0.0 { self.stats.frames_written as f64 / self.elapsed_s } else { 0.0 }
    }
}

struct Shared {
    stats: PipelineStats,
    /// Set by `stop`: the source ends early, what was read is finished and the sinks are committed.
    stop: AtomicBool,
    /// Set by `cancel` or by any stage's error: nothing is committed.
    failed: AtomicBool,
    first_error: Mutex<Option<PipelineError>>,
}

impl Shared {
    fn fail(&self, error: PipelineError) {
        let mut first = self.first_error.lock().expect("error lock");
        if first.is_none() && !self.failed.load(Ordering::SeqCst) {
            *first = Some(error);
        }
        self.failed.store(true, Ordering::SeqCst);
    }

    fn report(&self, result: Result<(), PipelineError>) {
        if let Err(error) = result {
            self.fail(error);
        }
    }

    fn should_stop(&self) -> bool {
        self.stop.load(Ordering::SeqCst) || self.failed.load(Ordering::SeqCst)
    }
}

/// Where the source hands frames to inference.
enum FrameLink {
    Channel(Sender<Frame>),
    Latest(Arc<LatestSlot<Frame>>),
}

pub struct Pipeline {
    shared: Arc<Shared>,
    threads: Vec<(String, JoinHandle<()>)>,
    slot: Option<Arc<LatestSlot<Frame>>>,
    provider: ProviderInUse,
    source: SourceInfo,
    started: Instant,
}

/// Runs `body` on a named thread. The body reports its own error (`Shared::report`) before it returns, so
/// that the stages downstream see the failure before they see their input channel close.
fn spawn_stage(name: &str, body: impl FnOnce() + Send + 'static) -> (String, JoinHandle<()>) {
    let handle =
        std::thread::Builder::new().name(name.to_string()).spawn(body).expect("failed to spawn a pipeline thread");
    (name.to_string(), handle)
}

impl Pipeline {
    pub fn start(mut source: Box<dyn FrameSource>, config: PipelineConfig) -> Self {
        let shared = Arc::new(Shared {
            stats: PipelineStats::default(),
            stop: AtomicBool::new(false),
            failed: AtomicBool::new(false),
            first_error: Mutex::new(None),
        });
        let info = source.info().clone();
        let provider = config.matters.first().map_or_else(|| ProviderInUse::cpu(None), |m| m.provider().clone());
        let (frame_buffers_tx, frame_buffers_rx) = pool::<Vec<u8>>(FRAME_POOL);
        let (matte_buffers_tx, matte_buffers_rx) = pool::<Matte>(MATTE_POOL);
        let (inferred_tx, inferred_rx) = bounded::<(Frame, Matte)>(CHANNEL_FRAMES);
        let (output_tx, output_rx) = bounded::<Output>(CHANNEL_FRAMES);
        let (output_buffers_tx, output_buffers_rx) = pool::<(Vec<u8>, Composite)>(OUTPUT_POOL);

        let (link, frames_in): (FrameLink, FrameInput) = if info.live {
            let slot = Arc::new(LatestSlot::new());
            (FrameLink::Latest(Arc::clone(&slot)), FrameInput::Latest(slot))
        } else {
            let (tx, rx) = bounded(CHANNEL_FRAMES);
            (FrameLink::Channel(tx), FrameInput::Channel(rx))
        };
        let slot = match &frames_in {
            FrameInput::Latest(slot) => Some(Arc::clone(slot)),
            FrameInput::Channel(_) => None,
        };

        let mut threads = Vec::new();
        let max_frames = config.max_frames;
        let s = Arc::clone(&shared);
        threads.push(spawn_stage("source", move || {
            let result = source_stage(source.as_mut(), &link, &frame_buffers_rx, max_frames, &s);
            s.report(result);
            if let FrameLink::Latest(slot) = &link {
                slot.close();
            }
        }));
        let s = Arc::clone(&shared);
        let matters = config.matters;
        threads.push(spawn_stage("infer", move || {
            let result = if matters.len() == 1 {
                let matter = matters.into_iter().next().expect("one session");
                infer_stage(matter, &frames_in, &matte_buffers_rx, &inferred_tx, &s)
            } else {
                parallel_infer_stage(matters, &frames_in, &matte_buffers_rx, &inferred_tx, &s)
            };
            s.report(result);
        }));
        let s = Arc::clone(&shared);
        let post = PostStage {
            filter: TemporalFilter::new(config.temporal),
            compositor: config.compositor,
            spent_outputs: output_buffers_rx,
        };
        threads.push(spawn_stage("composite", move || {
            let result = post.run(&inferred_rx, &output_tx, &matte_buffers_tx, &s);
            s.report(result);
        }));
        let s = Arc::clone(&shared);
        let sinks = config.sinks;
        let pacer = info.live.then(|| FramePacer::new(info.fps.max(1.0)));
        threads.push(spawn_stage("sink", move || {
            let result = sink_stage(sinks, pacer, &output_rx, &frame_buffers_tx, &output_buffers_tx, &s);
            s.report(result);
        }));

        Self { shared, threads, slot, provider, source: info, started: Instant::now() }
    }

    /// Ends the stream early but keeps what was done: outputs are finished and committed.
    pub fn stop(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(slot) = &self.slot {
            slot.close();
        }
    }

    /// Abandons the run: nothing is committed and partial outputs are removed.
    pub fn cancel(&self) {
        self.shared.failed.store(true, Ordering::SeqCst);
        self.stop();
    }

    pub fn is_finished(&self) -> bool {
        self.threads.iter().all(|(_, handle)| handle.is_finished())
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.shared.stats.snapshot(self.dropped_frames())
    }

    pub fn source(&self) -> &SourceInfo {
        &self.source
    }

    fn dropped_frames(&self) -> u64 {
        self.slot.as_ref().map_or(0, |slot| slot.dropped())
    }

    /// Waits for every stage; the first error any stage met, if one did.
    pub fn wait(mut self) -> Result<Summary, PipelineError> {
        self.join_all();
        if let Some(error) = self.shared.first_error.lock().expect("error lock").take() {
            return Err(error);
        }
        Ok(Summary {
            stats: self.stats(),
            stages: self.shared.stats.stage_times(),
            elapsed_s: self.started.elapsed().as_secs_f64(),
            provider: self.provider.clone(),
            source: self.source.clone(),
        })
    }

    fn join_all(&mut self) {
        for (name, handle) in self.threads.drain(..) {
            if handle.join().is_err() {
                self.shared.fail(PipelineError::Panicked(name));
            }
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.cancel();
            self.join_all();
        }
    }
}

enum FrameInput {
    Channel(Receiver<Frame>),
    Latest(Arc<LatestSlot<Frame>>),
}

impl FrameInput {
    fn next(&self) -> Option<Frame> {
        match self {
            Self::Channel(rx) => rx.recv().ok(),
            Self::Latest(slot) => slot.take(),
        }
    }
}

fn source_stage(
    source: &mut dyn FrameSource,
    link: &FrameLink,
    buffers: &Receiver<Vec<u8>>,
    max_frames: Option<u64>,
    shared: &Shared,
) -> Result<(), PipelineError> {
    let mut read = 0u64;
    while !shared.should_stop() && max_frames.is_none_or(|max| read < max) {
        let buffer = buffers.try_recv().unwrap_or_default();
        let started = Instant::now();
        let Some(frame) = source.next_frame(buffer)? else {
            break;
        };
        read += 1;
        shared.stats.record_read(started.elapsed().as_secs_f64() * 1000.0);
        match link {
            FrameLink::Channel(tx) => {
                if tx.send(frame).is_err() {
                    break;
                }
            }
            FrameLink::Latest(slot) => {
                slot.put(frame);
            }
        }
    }
    Ok(())
}

/// One session, one frame after the other.
fn infer_stage(
    mut matter: Box<dyn Matter>,
    frames: &FrameInput,
    mattes: &Receiver<Matte>,
    out: &Sender<(Frame, Matte)>,
    shared: &Shared,
) -> Result<(), PipelineError> {
    let mut last_size = None;
    while let Some(frame) = frames.next() {
        if shared.failed.load(Ordering::SeqCst) {
            break;
        }
        let matte = infer_one(matter.as_mut(), &mut last_size, frame, mattes.try_recv().unwrap_or_default())?;
        shared.stats.record_infer(matte.1.infer_ms, matte.1.model_ms);
        if out.send(matte).is_err() {
            break;
        }
    }
    Ok(())
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
    Ok((frame, matte))
}

/// Several sessions of a frame-independent model, each on its own thread ("infer-1", ...): frame `i` goes
/// to session `i mod n`, and the mattes are collected in the same turn, so they leave in frame order.
fn parallel_infer_stage(
    matters: Vec<Box<dyn Matter>>,
    frames: &FrameInput,
    mattes: &Receiver<Matte>,
    out: &Sender<(Frame, Matte)>,
    shared: &Shared,
) -> Result<(), PipelineError> {
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
        let mut in_flight = std::collections::VecDeque::with_capacity(workers.len());
        let mut next = 0;
        let mut source_done = false;
        loop {
            while !source_done && in_flight.len() < workers.len() && !shared.failed.load(Ordering::SeqCst) {
                match frames.next() {
                    Some(frame) => {
                        let matte = mattes.try_recv().unwrap_or_default();
                        if workers[next].0.send((frame, matte)).is_err() {
                            source_done = true;
                            break;
                        }
                        in_flight.push_back(next);
                        next = (next + 1) % workers.len();
                    }
                    None => source_done = true,
                }
            }
            let Some(oldest) = in_flight.pop_front() else {
                break;
            };
            let Ok(done) = workers[oldest].1.recv() else {
                break;
            };
            let (frame, matte) = done?;
            shared.stats.record_infer(matte.infer_ms, matte.model_ms);
            if shared.failed.load(Ordering::SeqCst) || out.send((frame, matte)).is_err() {
                break;
            }
        }
        // Dropping the job senders ends the workers; the scope joins them.
        drop(workers);
        Ok(())
    })
}

struct PostStage {
    filter: TemporalFilter<Frame>,
    compositor: Compositor,
    /// Alpha and composite buffers the sinks are done with.
    spent_outputs: Receiver<(Vec<u8>, Composite)>,
}

impl PostStage {
    fn run(
        mut self,
        input: &Receiver<(Frame, Matte)>,
        output: &Sender<Output>,
        spent_mattes: &Sender<Matte>,
        shared: &Shared,
    ) -> Result<(), PipelineError> {
        for (frame, matte) in input.iter() {
            if shared.failed.load(Ordering::SeqCst) {
                return Ok(());
            }
            let started = Instant::now();
            let filtered = self.filter.push(frame, matte);
            shared.stats.record_filter(started.elapsed().as_secs_f64() * 1000.0);
            if let Some((frame, matte)) = filtered
                && !self.finish_frame(frame, matte, output, spent_mattes, shared)?
            {
                return Ok(());
            }
        }
        if let Some((frame, matte)) = self.filter.flush() {
            self.finish_frame(frame, matte, output, spent_mattes, shared)?;
        }
        Ok(())
    }

    /// Returns false when the sink stage has gone.
    fn finish_frame(
        &mut self,
        frame: Frame,
        matte: Matte,
        output: &Sender<Output>,
        spent: &Sender<Matte>,
        shared: &Shared,
    ) -> Result<bool, PipelineError> {
        let started = Instant::now();
        let (mut alpha, mut composite) = self.spent_outputs.try_recv().unwrap_or_default();
        self.compositor.composite(&frame, &matte, &mut alpha, &mut composite)?;
        shared.stats.record_composite(started.elapsed().as_secs_f64() * 1000.0, frame.captured_at);
        let _ = spent.try_send(matte);
        Ok(output.send(Output { frame, alpha, composite }).is_ok())
    }
}

fn sink_stage(
    mut sinks: Vec<Box<dyn Sink>>,
    mut pacer: Option<FramePacer>,
    input: &Receiver<Output>,
    spent_frames: &Sender<Vec<u8>>,
    spent_outputs: &Sender<(Vec<u8>, Composite)>,
    shared: &Shared,
) -> Result<(), PipelineError> {
    let started = Instant::now();
    let since_start_ms = |at: Instant| at.saturating_duration_since(started).as_secs_f64() * 1000.0;
    // The frame before, kept for the repeats that fill a live source's gaps.
    let mut last: Option<Output> = None;
    let recycle = |output: Output| {
        let _ = spent_frames.try_send(output.frame.rgb);
        let _ = spent_outputs.try_send((output.alpha, output.composite));
    };
    for output in input.iter() {
        if shared.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        let write_started = Instant::now();
        let repeat_previous = match pacer.as_mut().map(|p| p.place(since_start_ms(output.frame.captured_at))) {
            Some(Placement::Skip) => {
                recycle(output);
                continue;
            }
            Some(Placement::Write { repeat_previous }) => repeat_previous,
            None => 0,
        };
        for sink in sinks.iter_mut() {
            if let Some(previous) = &last {
                for _ in 0..repeat_previous {
                    sink.write(previous)?;
                }
            }
            sink.write(&output)?;
        }
        shared.stats.record_written(write_started.elapsed().as_secs_f64() * 1000.0);
        if let Some(previous) = last.replace(output) {
            recycle(previous);
        }
    }
    if shared.failed.load(Ordering::SeqCst) {
        return Ok(());
    }
    // A live take lasts until it was stopped, whatever the model's rate.
    if let (Some(pacer), Some(previous)) = (pacer.as_mut(), &last) {
        for _ in 0..pacer.finish(since_start_ms(Instant::now())) {
            for sink in sinks.iter_mut() {
                sink.write(previous)?;
            }
        }
    }
    // Only a run that every stage completed is committed; otherwise the sinks drop and remove their files.
    for sink in sinks.iter_mut() {
        sink.finish()?;
    }
    Ok(())
}
