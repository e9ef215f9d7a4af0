//! Recording: every matted frame the live pipeline produces goes through a bounded queue to a "recorder"
//! thread that composites it (as the user set the picture, or as a cutout for the alpha formats), places
//! it on a constant-rate timeline and writes it through ffmpeg. The queue absorbs an encoder that falls
//! behind; only beyond its bound are frames dropped, and then they are counted and reported. On stop, the
//! queue is drained, the files are finalised and a sidecar JSON says what happened.

pub mod pacer;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded};

pub use pacer::{FramePacer, Placement};

use crate::composite::{Composite, CompositeError, CompositeSettings, Compositor, CompositorKind, View};
use crate::frame::{Frame, Matte};
use crate::paths::display;
use crate::sink::{Output, OutputSpec, Sink, SinkError};

/// Frames the queue holds by default: a few seconds of a live camera, a few hundred MB at 720p.
pub const DEFAULT_QUEUE_FRAMES: usize = 90;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Composite(#[from] CompositeError),
    #[error(
        "the source changed size to {width}x{height} while recording at {was_width}x{was_height}; the recording was stopped"
    )]
    SizeChanged { width: u32, height: u32, was_width: u32, was_height: u32 },
    #[error("a recording is already running; stop it first")]
    AlreadyRecording,
    #[error("nothing to record yet: {0}")]
    NotReady(String),
    #[error("the recorder thread panicked")]
    Panicked,
}

/// Which clock places frames on the timeline.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    /// When each frame was captured: a live source, where jitter and gaps are real.
    Capture,
    /// The frame's position in its file.
    Media,
}

#[derive(Clone, Debug)]
pub struct RecordOptions {
    pub output: OutputSpec,
    pub width: u32,
    pub height: u32,
    /// Rate of the file: the source's own.
    pub fps: f64,
    pub clock: Clock,
    /// The picture to record (its view is always the composite): for the window, the picture as shown
    /// with [`crate::sink::Format::recorded_background`].
    pub settings: CompositeSettings,
    pub compositor: CompositorKind,
    pub queue_frames: usize,
    /// For the sidecar.
    pub model: String,
    pub provider: String,
    pub source: String,
    /// Test hook: an encoder this much slower per frame, to show the queue filling and the drops beyond it.
    pub encode_delay: Duration,
}

/// What a recording did, written beside it as JSON.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RecordingReport {
    pub path: PathBuf,
    /// The source video written beside it, if asked for.
    pub source_path: Option<PathBuf>,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Frames the pipeline handed to the recorder.
    pub frames_in: u64,
    /// Distinct frames in the file.
    pub frames_written: u64,
    /// Copies of the previous frame that fill gaps so the rate stays constant.
    pub frames_repeated: u64,
    /// Frames dropped because the queue was full (the encoder could not keep up).
    pub frames_dropped: u64,
    /// Frames left out because the source ran ahead of the file's rate.
    pub frames_skipped: u64,
    pub duration_s: f64,
    pub bytes: u64,
    pub model: String,
    pub provider: String,
    pub source: String,
    pub compositor: String,
    /// Seconds since the Unix epoch when the recording started.
    pub started_unix_s: f64,
    /// True when the recording was stopped by the user and every file finished normally.
    pub complete: bool,
    pub error: Option<String>,
}

impl RecordingReport {
    /// Where the sidecar goes: `take.mp4` -> `take.json`, a folder `take` -> `take.json`.
    pub fn sidecar_path(path: &Path) -> PathBuf {
        path.with_extension("json")
    }

    fn write_sidecar(&self) -> Result<PathBuf, String> {
        let path = Self::sidecar_path(&self.path);
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&path, json + "\n").map_err(|e| {
            let _ = std::fs::remove_file(&path);
            format!("{}: {e}", display(&path))
        })?;
        Ok(path)
    }
}

/// What the window shows while recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecorderStatus {
    /// Since the take started (until it was stopped).
    pub elapsed_s: f64,
    /// How much of the take is in the file so far: behind `elapsed_s` by what is queued.
    pub written_s: f64,
    /// Frames of the pipeline written (not counting repeats that keep the rate).
    pub frames_written: u64,
    pub frames_dropped: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub bytes: u64,
    /// Set when the recording stopped by itself (ffmpeg died, the disk filled); `stop` gives the report.
    pub failure: Option<String>,
}

#[derive(Default)]
struct Counters {
    frames_in: AtomicU64,
    frames_written: AtomicU64,
    frames_dropped: AtomicU64,
    timeline_ms: AtomicU64,
    bytes: AtomicU64,
}

struct Shared {
    counters: Counters,
    /// Newer picture settings, applied before the next frame.
    settings: Mutex<Option<CompositeSettings>>,
    failure: Mutex<Option<String>>,
    /// When the user stopped: where the timeline ends.
    stopped_at: Mutex<Option<Instant>>,
    encoder_pids: Vec<u32>,
}

struct Job {
    frame: Frame,
    matte: Matte,
}

/// A running recording. Push frames from any thread; `stop` finishes it. Dropping it stops it too.
pub struct Recorder {
    jobs: Option<Sender<Job>>,
    spent: Receiver<(Vec<u8>, Matte)>,
    shared: Arc<Shared>,
    thread: Option<JoinHandle<RecordingReport>>,
    /// For the queue's depth, also after the take was stopped and while it drains.
    queued: Receiver<Job>,
    capacity: usize,
    path: PathBuf,
    started: Instant,
}

impl Recorder {
    /// Opens the outputs (so a bad folder, a missing ffmpeg or an unsuitable background is an error now)
    /// and starts the "recorder" thread.
    pub fn start(options: RecordOptions) -> Result<Self, RecordError> {
        options.output.check_background(&options.settings.background)?;
        let settings = CompositeSettings { view: View::Composite, ..options.settings.clone() };
        let (compositor, _notice) = Compositor::open(options.compositor, settings)?;
        let sinks = options.output.open(options.width, options.height, options.fps)?;
        let capacity = options.queue_frames.max(1);
        let (jobs, job_rx) = bounded::<Job>(capacity);
        let (spent_tx, spent) = bounded(8);
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            settings: Mutex::new(None),
            failure: Mutex::new(None),
            stopped_at: Mutex::new(None),
            encoder_pids: sinks.iter().filter_map(|sink| sink.encoder_pid()).collect(),
        });
        let path = options.output.path.clone();
        let s = Arc::clone(&shared);
        let queued = job_rx.clone();
        // The take starts now: frames captured before are not part of it.
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                let worker = Worker { options, compositor, sinks, shared: s, spent: spent_tx };
                worker.run(&job_rx, started)
            })
            .expect("failed to spawn the recorder thread");
        Ok(Self { jobs: Some(jobs), spent, shared, thread: Some(thread), queued, capacity, path, started })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues a copy of a matted frame; false when the queue is full (the frame is counted as dropped) or
    /// the recording has stopped by itself.
    pub fn push(&self, frame: &Frame, matte: &Matte) -> bool {
        let Some(jobs) = &self.jobs else {
            return false;
        };
        if self.shared.failure.lock().expect("failure lock").is_some() {
            return false;
        }
        self.shared.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        if jobs.is_full() {
            self.shared.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
            return false;
        }
        let (mut rgb, mut copy) = self.spent.try_recv().unwrap_or_default();
        rgb.clear();
        rgb.extend_from_slice(&frame.rgb);
        copy.seq = matte.seq;
        copy.width = matte.width;
        copy.height = matte.height;
        copy.infer_ms = matte.infer_ms;
        copy.model_ms = matte.model_ms;
        copy.alpha.clear();
        copy.alpha.extend_from_slice(&matte.alpha);
        copy.foreground = matte.foreground.as_ref().map(|fg| {
            let mut buffer = copy.foreground.take().unwrap_or_default();
            buffer.clear();
            buffer.extend_from_slice(fg);
            buffer
        });
        let job = Job { frame: Frame { rgb, ..frame.clone_header() }, matte: copy };
        match jobs.try_send(job) {
            Ok(()) => true,
            Err(TrySendError::Full(_)) => {
                self.shared.counters.frames_dropped.fetch_add(1, Ordering::Relaxed);
                false
            }
            Err(TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queues a frame without copying, waiting while the queue is full (a file source, which loses nothing).
    pub fn push_blocking(&self, frame: Frame, matte: Matte) -> bool {
        let Some(jobs) = &self.jobs else {
            return false;
        };
        self.shared.counters.frames_in.fetch_add(1, Ordering::Relaxed);
        jobs.send(Job { frame, matte }).is_ok()
    }

    /// New picture settings (background, edges, mirror) from the next frame on; a background the format
    /// cannot hold ends the recording with an error.
    pub fn set_settings(&self, settings: CompositeSettings) {
        *self.shared.settings.lock().expect("settings lock") = Some(settings);
    }

    pub fn status(&self) -> RecorderStatus {
        let c = &self.shared.counters;
        let stopped_at = *self.shared.stopped_at.lock().expect("stop lock");
        let elapsed = stopped_at.unwrap_or_else(Instant::now).saturating_duration_since(self.started);
        RecorderStatus {
            elapsed_s: elapsed.as_secs_f64(),
            written_s: c.timeline_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            frames_written: c.frames_written.load(Ordering::Relaxed),
            frames_dropped: c.frames_dropped.load(Ordering::Relaxed),
            queue_depth: self.queued.len(),
            queue_capacity: self.capacity,
            bytes: c.bytes.load(Ordering::Relaxed),
            failure: self.shared.failure.lock().expect("failure lock").clone(),
        }
    }

    /// Ends the take now and waits: what is queued is still written, the files are finalised, the sidecar
    /// written.
    pub fn stop(mut self) -> RecordingReport {
        self.finish()
    }

    /// Ends the take now without waiting; [`Self::try_report`] gives the report once the files are final.
    pub fn request_stop(&mut self) {
        self.shared.stopped_at.lock().expect("stop lock").get_or_insert_with(Instant::now);
        self.jobs = None;
    }

    /// The report, once the recorder thread has finished (after `request_stop`, or a failure).
    pub fn try_report(&mut self) -> Option<RecordingReport> {
        if self.thread.as_ref().is_some_and(JoinHandle::is_finished) { Some(self.finish()) } else { None }
    }

    /// The encoder processes' ids (tests kill one to check what a crash leaves).
    pub fn encoder_pids(&self) -> Vec<u32> {
        self.shared.encoder_pids.clone()
    }

    fn finish(&mut self) -> RecordingReport {
        self.shared.stopped_at.lock().expect("stop lock").get_or_insert_with(Instant::now);
        self.jobs = None;
        let thread = self.thread.take().expect("finished once");
        thread.join().unwrap_or_else(|_| RecordingReport {
            path: self.path.clone(),
            source_path: None,
            format: String::new(),
            width: 0,
            height: 0,
            fps: 0.0,
            frames_in: 0,
            frames_written: 0,
            frames_repeated: 0,
            frames_dropped: 0,
            frames_skipped: 0,
            duration_s: 0.0,
            bytes: 0,
            model: String::new(),
            provider: String::new(),
            source: String::new(),
            compositor: String::new(),
            started_unix_s: 0.0,
            complete: false,
            error: Some(RecordError::Panicked.to_string()),
        })
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

struct Worker {
    options: RecordOptions,
    compositor: Compositor,
    sinks: Vec<Box<dyn Sink>>,
    shared: Arc<Shared>,
    spent: Sender<(Vec<u8>, Matte)>,
}

impl Worker {
    fn run(mut self, jobs: &Receiver<Job>, started: Instant) -> RecordingReport {
        let started_unix_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let mut pacer = match self.options.clock {
            Clock::Capture => FramePacer::starting_at(self.options.fps, 0.0),
            Clock::Media => FramePacer::new(self.options.fps),
        };
        let mut last: Option<Output> = None;
        let mut spare: Option<Output> = None;
        let mut last_media_ms = 0.0;
        let mut error: Option<String> = None;
        for job in jobs.iter() {
            if let Err(err) = self.write_job(job, &mut pacer, started, &mut last, &mut spare, &mut last_media_ms) {
                error = Some(err.to_string());
                *self.shared.failure.lock().expect("failure lock") = Some(err.to_string());
                break;
            }
        }
        // Drain what a failure left queued, so the pushing side sees the queue empty.
        for job in jobs.try_iter() {
            let _ = self.spent.try_send((job.frame.rgb, job.matte));
        }
        let end_ms = match self.options.clock {
            Clock::Capture => {
                let stopped = self.shared.stopped_at.lock().expect("stop lock").unwrap_or_else(Instant::now);
                stopped.saturating_duration_since(started).as_secs_f64() * 1000.0
            }
            Clock::Media => last_media_ms + 1000.0 / self.options.fps,
        };
        if error.is_none()
            && let Some(output) = &last
        {
            let repeat = pacer.finish(end_ms);
            for _ in 0..repeat {
                if let Err(err) = self.write_all(output) {
                    error = Some(err.to_string());
                    break;
                }
            }
        }
        let mut complete = error.is_none();
        for mut sink in std::mem::take(&mut self.sinks) {
            if let Err(err) = sink.finish() {
                complete = false;
                error.get_or_insert(err.to_string());
            }
        }
        let output = &self.options.output;
        let source_path = output.with_source.then(|| crate::sink::Format::source_path(&output.path));
        let bytes = file_bytes(&output.path) + source_path.as_deref().map_or(0, file_bytes);
        let mut report = RecordingReport {
            path: output.path.clone(),
            source_path,
            format: output.format.name().to_string(),
            width: self.options.width,
            height: self.options.height,
            fps: self.options.fps,
            frames_in: self.shared.counters.frames_in.load(Ordering::Relaxed),
            frames_written: self.shared.counters.frames_written.load(Ordering::Relaxed),
            frames_repeated: pacer.frames_repeated,
            frames_dropped: self.shared.counters.frames_dropped.load(Ordering::Relaxed),
            frames_skipped: pacer.frames_skipped,
            duration_s: pacer.duration_s(),
            bytes,
            model: self.options.model.clone(),
            provider: self.options.provider.clone(),
            source: self.options.source.clone(),
            compositor: self.compositor.describe(),
            started_unix_s,
            complete,
            error,
        };
        if let Err(reason) = report.write_sidecar() {
            let note = format!("the sidecar could not be written ({reason})");
            report.error = Some(match report.error.take() {
                Some(error) => format!("{error}; {note}"),
                None => note,
            });
        }
        report
    }

    fn write_job(
        &mut self,
        job: Job,
        pacer: &mut FramePacer,
        started: Instant,
        last: &mut Option<Output>,
        spare: &mut Option<Output>,
        last_media_ms: &mut f64,
    ) -> Result<(), RecordError> {
        let Job { frame, matte } = job;
        let (w, h) = (self.options.width, self.options.height);
        if (frame.width, frame.height) != (w, h) {
            return Err(RecordError::SizeChanged {
                width: frame.width,
                height: frame.height,
                was_width: w,
                was_height: h,
            });
        }
        if let Some(settings) = self.shared.settings.lock().expect("settings lock").take() {
            self.options.output.check_background(&settings.background)?;
            self.compositor.set_settings(CompositeSettings { view: View::Composite, ..settings })?;
        }
        if !self.options.encode_delay.is_zero() {
            std::thread::sleep(self.options.encode_delay);
        }
        let time_ms = match self.options.clock {
            Clock::Capture => {
                frame.captured_at.saturating_duration_since(started).as_secs_f64() * 1000.0
                    - started.saturating_duration_since(frame.captured_at).as_secs_f64() * 1000.0
            }
            Clock::Media => frame.pts_ms,
        };
        *last_media_ms = frame.pts_ms;
        let repeat_previous = match pacer.place(time_ms) {
            Placement::Skip => {
                let _ = self.spent.try_send((frame.rgb, matte));
                return Ok(());
            }
            Placement::Write { repeat_previous } => repeat_previous,
        };
        let first = last.is_none();
        if let Some(previous) = last.as_ref() {
            for _ in 0..repeat_previous {
                self.write_all(previous)?;
            }
        }
        let mut output = spare.take().or_else(|| last.take()).unwrap_or_else(|| Output {
            frame: frame.clone_header(),
            alpha: Vec::new(),
            composite: Composite::default(),
        });
        self.compositor.composite(&frame, &matte, &mut output.alpha, &mut output.composite)?;
        let old_rgb = std::mem::replace(&mut output.frame, frame).rgb;
        // The take's first frame also covers the moment between pressing record and its arrival.
        let copies = if first { repeat_previous + 1 } else { 1 };
        for _ in 0..copies {
            self.write_all(&output)?;
        }
        self.shared.counters.frames_written.fetch_add(1, Ordering::Relaxed);
        if let Some(previous) = last.replace(output) {
            *spare = Some(previous);
        }
        let _ = self.spent.try_send((old_rgb, matte));
        self.shared.counters.timeline_ms.store((pacer.duration_s() * 1000.0) as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write_all(&mut self, output: &Output) -> Result<(), RecordError> {
        let mut bytes = 0;
        for index in 0..self.sinks.len() {
            if let Err(err) = self.sinks[index].write(output) {
                // The failing sink kept what it could; the others are finished as usual at the end.
                drop(self.sinks.remove(index));
                return Err(err.into());
            }
            bytes += self.sinks[index].bytes_written();
        }
        self.shared.counters.bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }
}

fn file_bytes(path: &Path) -> u64 {
    match std::fs::metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::read_dir(path)
            .map(|entries| entries.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
            .unwrap_or(0),
        Ok(meta) => meta.len(),
        Err(_) => 0,
    }
}
