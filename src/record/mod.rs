//! Recording: a consumer of the engine's outputs. Each composited frame is queued (shared, not copied) for a
//! "recorder" thread that takes the picture its format records, places it on a constant-rate timeline and
//! writes it through ffmpeg. The queue absorbs an encoder that falls behind; only beyond its bound are
//! frames dropped, and then they are counted and reported. On stop, what is queued is written, the files
//! are finalised and a sidecar JSON says what happened.

pub mod audio;
pub mod live;
mod report;
pub mod take;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use crate::sink::pacer::{FramePacer, Placement};
pub use audio::{AudioEvent, AudioReport, AudioWatch, TakeClock};
pub use report::RecordingReport;

use crate::audio::AudioInput;
use crate::composite::output::{cutout, over_colour};
use crate::engine::fanout::{Received, Subscription, Watch};
use crate::frame::{Composite, Output};
use crate::sink::{Format, OutputSpec, Sink, SinkError, SinkFrame};

/// Frames the queue holds by default: a few seconds of a live camera (each holds its frame, matte and
/// picture until written: about 9 MB at 720p).
pub const DEFAULT_QUEUE_FRAMES: usize = 90;

/// Memory the queue may hold by default, whatever the frame size (90 frames of 4K would be 7.5 GB).
pub const DEFAULT_QUEUE_BYTES: u64 = 1 << 30;

/// How long the recorder waits for a frame before it looks at its stop request again.
const POLL: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Sink(#[from] SinkError),
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
    pub queue_frames: usize,
    /// Memory the queue may hold; beyond it, frames are dropped and counted, as beyond `queue_frames`.
    pub queue_bytes: u64,
    /// For the sidecar.
    pub model: String,
    pub provider: String,
    pub source: String,
    pub compositor: String,
    /// When the take starts, on the capture clock (default: when the recorder starts).
    pub started_at: Option<Instant>,
    /// Test hook: the encoder waits while this gate is closed, to show the queue filling and the drops
    /// beyond it whatever the machine's speed.
    pub gate: Option<Arc<EncoderGate>>,
    /// The microphone, when the take has sound (a live take: its samples become the take's clock).
    pub audio: Option<Arc<AudioInput>>,
}

/// Holds the encoder back while closed (tests).
#[derive(Debug, Default)]
pub struct EncoderGate {
    closed: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl EncoderGate {
    pub fn closed() -> Arc<Self> {
        Arc::new(Self { closed: Mutex::new(true), changed: std::sync::Condvar::new() })
    }

    pub fn open(&self) {
        *self.closed.lock().expect("gate lock") = false;
        self.changed.notify_all();
    }

    fn pass(&self) {
        let closed = self.closed.lock().expect("gate lock");
        drop(self.changed.wait_while(closed, |closed| *closed).expect("gate lock"));
    }
}

/// The picture `format` records of an output: the composite as composited, except that the alpha formats
/// take the person alone (the reason to pick one; straight, unless the picture is premultiplied) and the
/// opaque formats show a transparent picture over black. Both come from the composite's own alpha.
pub fn recorded_picture<'a>(format: Format, output: &'a Output, scratch: &'a mut Composite) -> &'a Composite {
    let (frame, alpha) = (&output.frame, &output.picture.alpha);
    let fg = output.matte.foreground_for(frame);
    match (format.has_alpha(), output.transparent) {
        (true, None) => {
            cutout(fg, alpha, frame.width, frame.height, output.mirror, false, scratch);
            scratch
        }
        (false, Some(_)) => {
            over_colour(fg, alpha, frame.width, frame.height, [0, 0, 0], output.mirror, scratch);
            scratch
        }
        _ => &output.picture.composite,
    }
}

/// What the window shows while recording.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct RecorderStatus {
    /// Since the take started (until it was stopped).
    pub elapsed_s: f64,
    /// How much of the take is in the file so far: behind `elapsed_s` by what is queued.
    pub written_s: f64,
    /// Frames of the engine written (not counting repeats that keep the rate).
    pub frames_written: u64,
    pub frames_dropped: u64,
    pub queue_depth: usize,
    pub queue_capacity: usize,
    pub bytes: u64,
    /// Set when the recording stopped by itself (ffmpeg died, the disk filled); `stop` gives the report.
    pub failure: Option<String>,
    /// Seconds of sound written, when the take has sound.
    pub audio_s: Option<f64>,
    /// What happened to the microphone during the take (lost, back).
    pub audio_events: Vec<AudioEvent>,
}

#[derive(Default)]
struct Counters {
    frames_written: AtomicU64,
    timeline_ms: AtomicU64,
    bytes: AtomicU64,
}

struct Shared {
    counters: Counters,
    failure: Mutex<Option<String>>,
    /// When the user stopped: where the timeline ends.
    stopped_at: Mutex<Option<Instant>>,
    encoder_pids: Vec<u32>,
    /// The queue's figures (the recorder thread owns the subscription, and lets go of it when done).
    queue: Watch,
    /// The take's sound, figures for the status (the writer itself is the recorder thread's).
    audio: Option<AudioWatch>,
}

/// A running recording. `stop` finishes it; dropping it stops it too.
pub struct Recorder {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<Option<RecordingReport>>>,
    path: PathBuf,
    started: Instant,
}

impl Recorder {
    /// Opens the outputs (so a bad folder or a missing ffmpeg is an error now), then subscribes with
    /// `subscribe` and starts the "recorder" thread. The take starts now: frames captured before are not
    /// part of it.
    pub fn start(options: RecordOptions, subscribe: impl FnOnce() -> Subscription) -> Result<Self, RecordError> {
        // Spawn first: a thread that cannot start is an error, and nothing has been opened yet.
        let (hand_over, handed) = crossbeam_channel::bounded::<(Writer, Subscription, Instant)>(1);
        let thread = std::thread::Builder::new()
            .name("recorder".into())
            .spawn(move || {
                let (writer, frames, started) = handed.recv().ok()?;
                Some(record_thread(writer, frames, started))
            })
            .map_err(|err| RecordError::NotReady(format!("could not start the recorder thread: {err}")))?;
        let output = &options.output;
        output.format.check_path(&output.path)?;
        crate::sink::create_parent(&output.path)?;
        let wav = match &options.audio {
            Some(_) => Some(audio::WavFile::create(&output.path, output.format, output.overwrite)?),
            None => None,
        };
        let track = wav.as_ref().map(|wav| crate::sink::AudioTrack { wav: wav.working().to_path_buf() });
        let sinks = output.open_with_audio(options.width, options.height, options.fps, track.as_ref())?;
        let started = options.started_at.unwrap_or_else(Instant::now);
        let clock = TakeClock::new(started);
        // The sound starts with the take; the video's frames are placed on its clock.
        let audio = match (&options.audio, wav) {
            (Some(input), Some(wav)) => Some(audio::AudioWriter::start(input, wav, &clock)?),
            _ => None,
        };
        let frames = subscribe();
        let shared = Arc::new(Shared {
            counters: Counters::default(),
            failure: Mutex::new(None),
            stopped_at: Mutex::new(None),
            encoder_pids: sinks.iter().filter_map(|sink| sink.encoder_pid()).collect(),
            queue: frames.watch(),
            audio: audio.as_ref().map(audio::AudioWriter::watch),
        });
        let path = options.output.path.clone();
        let writer = Writer {
            options,
            sinks,
            shared: Arc::clone(&shared),
            picture: Composite::default(),
            audio,
            clock,
            audio_muxed: false,
        };
        if hand_over.send((writer, frames, started)).is_err() {
            return Err(RecordError::Panicked);
        }
        Ok(Self { shared, thread: Some(thread), path, started })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn status(&self) -> RecorderStatus {
        let c = &self.shared.counters;
        let stopped_at = *self.shared.stopped_at.lock().expect("stop lock");
        let elapsed = stopped_at.unwrap_or_else(Instant::now).saturating_duration_since(self.started);
        let frames = &self.shared.queue;
        RecorderStatus {
            elapsed_s: elapsed.as_secs_f64(),
            written_s: c.timeline_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            frames_written: c.frames_written.load(Ordering::Relaxed),
            frames_dropped: frames.dropped(),
            queue_depth: frames.queued(),
            queue_capacity: frames.capacity(),
            bytes: c.bytes.load(Ordering::Relaxed),
            failure: self.shared.failure.lock().expect("failure lock").clone(),
            audio_s: self.shared.audio.as_ref().map(AudioWatch::written_s),
            audio_events: self.shared.audio.as_ref().map(AudioWatch::events).unwrap_or_default(),
        }
    }

    /// Ends the take now and waits: what is queued is still written, the files are finalised, the sidecar
    /// written.
    pub fn stop(mut self) -> RecordingReport {
        self.finish()
    }

    /// Ends the take now without waiting; [`Self::try_report`] gives the report once the files are final.
    pub fn request_stop(&mut self) {
        self.request_stop_at(Instant::now());
    }

    /// Ends the take at `at` on the capture clock: frames captured later are not part of it, and the file
    /// lasts until then.
    pub fn request_stop_at(&mut self, at: Instant) {
        self.shared.stopped_at.lock().expect("stop lock").get_or_insert(at);
    }

    /// [`Self::request_stop_at`], then waits for the report.
    pub fn stop_at(mut self, at: Instant) -> RecordingReport {
        self.request_stop_at(at);
        self.finish()
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
        self.request_stop();
        let thread = self.thread.take().expect("finished once");
        thread
            .join()
            .ok()
            .flatten()
            .unwrap_or_else(|| RecordingReport::failed(&self.path, RecordError::Panicked.to_string()))
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.finish();
        }
    }
}

/// Where the writing is on the timeline.
struct Timeline {
    pacer: FramePacer,
    last: Option<Arc<Output>>,
    last_media_ms: f64,
}

/// The "recorder" thread: writes the take, lets go of the queue as soon as the take ends (later frames
/// are not counted as dropped), and reports.
fn record_thread(mut writer: Writer, frames: Subscription, started: Instant) -> RecordingReport {
    let queue = frames.watch();
    let (pacer, started_unix_s, complete, error, audio) = writer.record(&frames, started);
    drop(frames);
    writer.report(&pacer, &queue, started_unix_s, complete, error, audio)
}

/// What became of the take's sound.
struct AudioOutcome {
    report: Option<AudioReport>,
    error: Option<String>,
}

/// The recorder thread's writing side.
struct Writer {
    options: RecordOptions,
    sinks: Vec<Box<dyn Sink>>,
    shared: Arc<Shared>,
    /// The picture the format records, when it is not the composite itself.
    picture: Composite,
    /// The take's sound; its samples are the take's clock.
    audio: Option<audio::AudioWriter>,
    clock: TakeClock,
    /// Whether the main output holds the sound (it was muxed in, or into what a failure kept).
    audio_muxed: bool,
}

impl Writer {
    fn record(
        &mut self,
        frames: &Subscription,
        _started: Instant,
    ) -> (FramePacer, f64, bool, Option<String>, AudioOutcome) {
        let started_unix_s = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        let pacer = match self.options.clock {
            Clock::Capture => FramePacer::starting_at(self.options.fps, 0.0),
            Clock::Media => FramePacer::new(self.options.fps),
        };
        let mut timeline = Timeline { pacer, last: None, last_media_ms: 0.0 };
        let mut error: Option<String> = None;
        while let Some(output) = self.next_output(frames) {
            let written = match self.audio.as_ref().and_then(audio::AudioWriter::failure) {
                // No sound can be written (a full disk): the take ends here, its video with it.
                Some(failure) => Err(failure),
                None => self.write_output(output, &mut timeline).map_err(|err| err.to_string()),
            };
            if let Err(err) = written {
                error = Some(err.clone());
                *self.shared.failure.lock().expect("failure lock") = Some(err);
                break;
            }
        }
        let end_ms = match self.options.clock {
            Clock::Capture => {
                let stopped = self.shared.stopped_at.lock().expect("stop lock").unwrap_or_else(Instant::now);
                self.clock.time_ms(stopped)
            }
            Clock::Media => timeline.last_media_ms + 1000.0 / self.options.fps,
        };
        if error.is_none()
            && let Some(output) = timeline.last.take()
        {
            let repeat = timeline.pacer.finish(end_ms);
            if let Err(err) = self.write_all(&output, repeat) {
                error = Some(err.to_string());
            }
        }
        // The sound is cut or padded to the video's length before the video files mux it in.
        let mut audio = AudioOutcome { report: None, error: None };
        if let Some(writer) = self.audio.as_mut() {
            match writer.finish(timeline.pacer.duration_s()) {
                Ok(report) => audio.report = Some(report),
                Err(err) => audio.error = Some(err),
            }
        }
        let mut complete = error.is_none();
        for mut sink in std::mem::take(&mut self.sinks) {
            let result = sink.finish();
            if sink.path() == self.options.output.path {
                self.audio_muxed |= sink.audio_muxed();
            }
            if let Err(err) = result {
                complete = false;
                error.get_or_insert(err.to_string());
            }
        }
        self.settle_audio(&mut audio, complete);
        (timeline.pacer, started_unix_s, complete, error, audio)
    }

    /// The sound's WAV once the video is final: committed beside it, removed when muxed, or kept.
    fn settle_audio(&mut self, audio: &mut AudioOutcome, complete: bool) {
        let Some(writer) = self.audio.as_mut() else { return };
        let format = self.options.output.format;
        let beside = audio::wav_beside(format);
        match writer.settle(&self.options.output.path, self.audio_muxed, complete && audio.error.is_none()) {
            Ok(path) => {
                if let Some(report) = audio.report.as_mut() {
                    report.codec = match (beside || !self.audio_muxed, self.video_codec()) {
                        (false, Some(codec)) => codec.to_string(),
                        _ => "wav".to_string(),
                    };
                    report.path = path;
                }
            }
            Err(err) => {
                audio.error.get_or_insert(err);
            }
        }
    }

    /// The codec of the sound the main output carries.
    fn video_codec(&self) -> Option<&'static str> {
        let kind = self.options.output.format.video_kind(self.options.output.crf)?;
        kind.audio_codec().map(crate::audio::AudioCodec::name)
    }

    /// The next queued output; `None` once the take was stopped and the queue is empty, or the engine ended.
    fn next_output(&self, frames: &Subscription) -> Option<Arc<Output>> {
        loop {
            let stopped = self.shared.stopped_at.lock().expect("stop lock").is_some();
            let wait = if stopped { Duration::ZERO } else { POLL };
            match frames.recv_timeout(wait) {
                Received::Value(output) => return Some(output),
                Received::Empty if stopped => return None,
                Received::Empty => {}
                Received::Closed => return None,
            }
        }
    }

    fn write_output(&mut self, output: Arc<Output>, timeline: &mut Timeline) -> Result<(), RecordError> {
        let (w, h) = (self.options.width, self.options.height);
        let frame = &output.frame;
        if (frame.width, frame.height) != (w, h) {
            return Err(RecordError::SizeChanged {
                width: frame.width,
                height: frame.height,
                was_width: w,
                was_height: h,
            });
        }
        if let Some(gate) = &self.options.gate {
            gate.pass();
        }
        let time_ms = match self.options.clock {
            Clock::Capture => self.clock.time_ms(frame.captured_at),
            Clock::Media => frame.pts_ms,
        };
        // Captured after the take was stopped: not part of it.
        let stopped_at = *self.shared.stopped_at.lock().expect("stop lock");
        if stopped_at.is_some_and(|at| frame.captured_at > at) {
            return Ok(());
        }
        timeline.last_media_ms = frame.pts_ms;
        let repeat_previous = match timeline.pacer.place(time_ms) {
            Placement::Skip => return Ok(()),
            Placement::Write { repeat_previous } => repeat_previous,
        };
        // The take's first frame also covers the moment between pressing record and its arrival.
        let copies = match &timeline.last {
            Some(previous) => {
                self.write_all(previous, repeat_previous)?;
                1
            }
            None => repeat_previous + 1,
        };
        self.write_all(&output, copies)?;
        self.shared.counters.frames_written.fetch_add(1, Ordering::Relaxed);
        timeline.last = Some(output);
        self.shared.counters.timeline_ms.store((timeline.pacer.duration_s() * 1000.0) as u64, Ordering::Relaxed);
        Ok(())
    }

    fn write_all(&mut self, output: &Output, times: u64) -> Result<(), RecordError> {
        if times == 0 {
            return Ok(());
        }
        let picture = recorded_picture(self.options.output.format, output, &mut self.picture);
        let frame = SinkFrame { frame: &output.frame, alpha: &output.picture.alpha, picture };
        let mut bytes = 0;
        for index in 0..self.sinks.len() {
            for _ in 0..times {
                if let Err(err) = self.sinks[index].write(frame) {
                    // The failing sink kept what it could; the others are finished as usual at the end.
                    let failed = self.sinks.remove(index);
                    if failed.path() == self.options.output.path {
                        self.audio_muxed |= failed.audio_muxed();
                    }
                    return Err(err.into());
                }
            }
            bytes += self.sinks[index].bytes_written();
        }
        self.shared.counters.bytes.store(bytes, Ordering::Relaxed);
        Ok(())
    }

    fn report(
        &self,
        pacer: &FramePacer,
        frames: &Watch,
        started_unix_s: f64,
        complete: bool,
        error: Option<String>,
        audio: AudioOutcome,
    ) -> RecordingReport {
        let error = match (error, audio.error) {
            (Some(error), Some(sound)) => Some(format!("{error}; {sound}")),
            (error, sound) => error.or(sound),
        };
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
            frames_in: frames.delivered() + frames.dropped(),
            frames_written: self.shared.counters.frames_written.load(Ordering::Relaxed),
            frames_repeated: pacer.frames_repeated,
            frames_dropped: frames.dropped(),
            frames_skipped: pacer.frames_skipped,
            duration_s: pacer.duration_s(),
            bytes,
            model: self.options.model.clone(),
            provider: self.options.provider.clone(),
            source: self.options.source.clone(),
            compositor: self.options.compositor.clone(),
            started_unix_s,
            complete,
            error,
            audio: audio.report,
        };
        if let Err(reason) = report.write_sidecar(output.overwrite) {
            let note = format!("the sidecar could not be written ({reason})");
            report.error = Some(match report.error.take() {
                Some(error) => format!("{error}; {note}"),
                None => note,
            });
        }
        report
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
