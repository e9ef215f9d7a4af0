//! A take's sound: an "audio-writer" thread places the microphone's buffers on the take's timeline
//! (`audio::timeline`: the samples are the master clock) and writes them to a 24-bit WAV as they come.
//! The video thread places its frames with the same timeline's clock ([`TakeClock`]). At the end the WAV
//! is cut or padded to the video's exact length, then muxed into the video (MP4, MOV, WebM) or kept beside
//! it (PNG frames, the track matte).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, bounded};

use crate::audio::capture::AudioSubscription;
use crate::audio::wav::WavWriter;
use crate::audio::{AudioChunk, AudioInput, AudioState, AudioTimeline};
use crate::sink::partial::{Partial, claim, rename_no_replace, tagged};
use crate::sink::{Format, SinkError};

/// Rate and channels when the device has not opened yet (it may open mid-take).
const FALLBACK_RATE: u32 = 48_000;
/// At the end, how long to wait for the device's buffers to reach the stop instant (its latency).
const TAIL_WAIT: Duration = Duration::from_millis(500);

/// The take's clock, shared with the video's thread: seconds since the take started, on the audio's
/// clock.
#[derive(Clone, Debug)]
pub struct TakeClock {
    started: Instant,
    /// [`AudioTimeline::origin_s`] in microseconds; 0 without sound.
    origin_us: Arc<AtomicI64>,
}

impl TakeClock {
    pub fn new(started: Instant) -> Self {
        Self { started, origin_us: Arc::new(AtomicI64::new(0)) }
    }

    pub fn time_ms(&self, at: Instant) -> f64 {
        let since_s = at.saturating_duration_since(self.started).as_secs_f64()
            - self.started.saturating_duration_since(at).as_secs_f64();
        (since_s - self.origin_us.load(Ordering::Relaxed) as f64 / 1e6) * 1000.0
    }
}

/// Something that happened to the sound during the take, for the sidecar and the user.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AudioEvent {
    /// Seconds into the take.
    pub at_s: f64,
    pub what: String,
}

/// The sound of a take, in the sidecar.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AudioReport {
    pub device: String,
    /// In the file: `aac`, `pcm_s24le`, `opus`, or `wav` beside it.
    pub codec: String,
    /// A WAV beside the take (PNG frames, the track matte, or when the sound could not be muxed).
    pub path: Option<PathBuf>,
    pub rate: u32,
    pub channels: u16,
    pub duration_s: f64,
    /// Silence written where the device gave nothing (its start, stalls, losses).
    pub silence_s: f64,
    /// Gaps filled with silence after the device had started.
    pub gaps: u64,
    /// Sound left out: captured before the take, or overlapping what was written.
    pub skipped_s: f64,
    /// Buffers lost because the writer fell behind (their time is silence).
    pub chunks_dropped: u64,
    /// The device was lost (or fell silent) during the take.
    pub device_lost: bool,
    pub events: Vec<AudioEvent>,
}

/// Where the WAV is written: made before the video's encoders start, so they know what to mux.
pub enum WavFile {
    /// The take's own WAV (`NAME.wav`: PNG frames, the track matte).
    Beside(Partial),
    /// A working file muxed into the video at the end, then removed.
    Muxed(PathBuf),
}

impl WavFile {
    /// A new working WAV for the take at `target`: `NAME.wav` itself for the formats that keep it beside
    /// (an existing one is refused unless `overwrite`), else a working file for the mux.
    pub fn create(target: &Path, format: Format, overwrite: bool) -> Result<Self, SinkError> {
        let wav_target = wav_path(target);
        if wav_beside(format) {
            return Ok(Self::Beside(Partial::file(&wav_target, overwrite)?));
        }
        let working = claim(&wav_target, "audio", false)
            .map_err(|err| SinkError::NotWritable { path: wav_target.clone(), reason: err.to_string() })?;
        Ok(Self::Muxed(working))
    }

    pub fn working(&self) -> &Path {
        match self {
            Self::Beside(partial) => partial.working(),
            Self::Muxed(path) => path,
        }
    }
}

/// Whether a format keeps its sound in a WAV beside it.
pub fn wav_beside(format: Format) -> bool {
    matches!(format, Format::Png | Format::Matte)
}

/// `take.mp4` -> `take.wav`; a folder `take` -> `take.wav`.
pub fn wav_path(path: &Path) -> PathBuf {
    path.with_extension("wav")
}

/// The take's sound as the status shows it.
#[derive(Clone)]
pub struct AudioWatch {
    shared: Arc<Shared>,
    rate: u32,
}

impl AudioWatch {
    pub fn written_s(&self) -> f64 {
        self.shared.written_frames.load(Ordering::Relaxed) as f64 / f64::from(self.rate)
    }

    /// What happened to the device so far.
    pub fn events(&self) -> Vec<AudioEvent> {
        self.shared.events.lock().expect("events lock").clone()
    }

    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().expect("failure lock").clone()
    }
}

struct Shared {
    failure: Mutex<Option<String>>,
    events: Mutex<Vec<AudioEvent>>,
    written_frames: AtomicU64,
}

/// What the writer thread ends with.
struct Written {
    timeline: AudioTimeline,
    device_lost: bool,
    chunks_dropped: u64,
}

pub struct AudioWriter {
    shared: Arc<Shared>,
    /// The end of the take, in frames, once known.
    end: Sender<u64>,
    thread: Option<JoinHandle<Result<Written, String>>>,
    wav: Option<WavFile>,
    device: String,
    rate: u32,
    channels: u16,
}

impl AudioWriter {
    /// Subscribes to `input` and starts writing the take (which started at `clock`'s start) into `wav`.
    pub fn start(input: &AudioInput, wav: WavFile, clock: &TakeClock) -> Result<Self, SinkError> {
        let status = input.status();
        let (rate, channels) = if status.rate > 0 { (status.rate, status.channels.max(1)) } else { (FALLBACK_RATE, 1) };
        let wav_target = wav.working().to_path_buf();
        let not_writable =
            |err: std::io::Error| SinkError::NotWritable { path: wav_target.clone(), reason: err.to_string() };
        let writer = WavWriter::create(wav.working(), rate, channels).map_err(not_writable)?;
        let chunks = input.subscribe();
        let shared = Arc::new(Shared {
            failure: Mutex::new(None),
            events: Mutex::new(Vec::new()),
            written_frames: AtomicU64::new(0),
        });
        let (end, end_rx) = bounded(1);
        let state_of: StateReader = Box::new(input.state_reader());
        let dropped_at_start = state_of().1;
        let job = Job {
            writer,
            timeline: AudioTimeline::new(rate, clock.started),
            origin_us: Arc::clone(&clock.origin_us),
            shared: Arc::clone(&shared),
            rate,
            channels,
            notified: None,
            format_told: false,
            dropped_at_start,
            clock: clock.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("audio-writer".into())
            .spawn(move || job.run(&chunks, &end_rx, &state_of))
            .map_err(|err| SinkError::NotWritable { path: wav_target.clone(), reason: err.to_string() })?;
        let device = if status.device.is_empty() { input.choice().to_string() } else { status.device };
        Ok(Self { shared, end, thread: Some(thread), wav: Some(wav), device, rate, channels })
    }

    /// Figures for the status, from any thread.
    pub fn watch(&self) -> AudioWatch {
        AudioWatch { shared: Arc::clone(&self.shared), rate: self.rate }
    }

    /// Why the sound stopped being written (a full disk), if it did.
    pub fn failure(&self) -> Option<String> {
        self.watch().failure()
    }

    fn events(&self) -> Vec<AudioEvent> {
        self.watch().events()
    }

    /// Ends the WAV at `duration_s` (the video's length), cut or padded with silence.
    pub fn finish(&mut self, duration_s: f64) -> Result<AudioReport, String> {
        let frames = (duration_s * f64::from(self.rate)).round().max(0.0) as u64;
        let _ = self.end.send(frames);
        let written = match self.thread.take().map(JoinHandle::join) {
            Some(Ok(result)) => result?,
            _ => return Err("the audio writer thread panicked".into()),
        };
        let t = &written.timeline;
        let rate = f64::from(self.rate);
        Ok(AudioReport {
            device: self.device.clone(),
            codec: String::new(),
            path: None,
            rate: self.rate,
            channels: self.channels,
            duration_s: t.placed() as f64 / rate,
            silence_s: t.silence_frames as f64 / rate,
            gaps: t.gaps,
            skipped_s: t.skipped_frames as f64 / rate,
            chunks_dropped: written.chunks_dropped,
            device_lost: written.device_lost,
            events: self.events(),
        })
    }

    /// After the video is final: the WAV beside the take is committed; a muxed one is removed, or, when
    /// the sound did not make it into the video, kept as `NAME.wav` (or a free name beside it).
    pub fn settle(&mut self, target: &Path, muxed: bool, complete: bool) -> Result<Option<PathBuf>, String> {
        match self.wav.take() {
            Some(WavFile::Beside(mut partial)) if complete => {
                partial.commit().map_err(|err| err.to_string())?;
                Ok(Some(partial.target().to_path_buf()))
            }
            Some(WavFile::Beside(mut partial)) => partial.keep_incomplete().map(Some).map_err(|err| err.to_string()),
            Some(WavFile::Muxed(working)) if muxed => {
                let _ = std::fs::remove_file(&working);
                Ok(None)
            }
            Some(WavFile::Muxed(working)) => {
                let wanted = wav_path(target);
                let kept = (1..100)
                    .map(|n| if n == 1 { wanted.clone() } else { tagged(&wanted, "sound", n) })
                    .find(|path| rename_no_replace(&working, path).is_ok())
                    .ok_or_else(|| format!("the sound is left in {}", crate::paths::display(&working)))?;
                Ok(Some(kept))
            }
            None => Ok(None),
        }
    }
}

impl Drop for AudioWriter {
    fn drop(&mut self) {
        if self.thread.is_some() {
            let _ = self.finish(0.0);
        }
        if let Some(WavFile::Muxed(working)) = self.wav.take() {
            let _ = std::fs::remove_file(working);
        }
    }
}

/// The device's state and the buffers it dropped so far, read by the writer thread.
type StateReader = Box<dyn Fn() -> (AudioState, u64) + Send>;

/// The writer thread's state.
struct Job {
    writer: WavWriter,
    timeline: AudioTimeline,
    origin_us: Arc<AtomicI64>,
    shared: Arc<Shared>,
    rate: u32,
    channels: u16,
    /// The device state last told (lost or stalled), to say when it changes.
    notified: Option<AudioState>,
    /// Whether a buffer in another format was reported.
    format_told: bool,
    dropped_at_start: u64,
    clock: TakeClock,
}

impl Job {
    fn run(
        mut self,
        chunks: &AudioSubscription,
        end: &crossbeam_channel::Receiver<u64>,
        state: &StateReader,
    ) -> Result<Written, String> {
        let mut device_lost = false;
        let mut failed = false;
        let end_frames = loop {
            if let Ok(frames) = end.try_recv() {
                break frames;
            }
            match chunks.chunks.recv_timeout(Duration::from_millis(50)) {
                Ok(chunk) if !failed => {
                    if let Err(err) = self.write(&chunk) {
                        failed = true;
                        let _ = self.writer.settle();
                        *self.shared.failure.lock().expect("failure lock") =
                            Some(format!("writing the sound failed: {err}"));
                    }
                }
                Ok(_) | Err(_) => {}
            }
            device_lost |= self.watch_device(state);
        };
        // The device's last buffers reach the stop instant a little after it (its latency).
        let waited = Instant::now();
        while !failed && self.timeline.placed() < end_frames && waited.elapsed() < TAIL_WAIT {
            let Ok(chunk) = chunks.chunks.recv_timeout(Duration::from_millis(20)) else { continue };
            if let Err(err) = self.write(&chunk) {
                failed = true;
                let _ = self.writer.settle();
                *self.shared.failure.lock().expect("failure lock") = Some(format!("writing the sound failed: {err}"));
            }
        }
        if failed {
            return Ok(Written { chunks_dropped: 0, timeline: self.timeline, device_lost });
        }
        let change = self.timeline.finish(end_frames);
        let result = if change >= 0 { self.writer.silence(change as u64) } else { self.writer.truncate(end_frames) };
        result.and_then(|()| self.writer.finish()).map_err(|err| format!("writing the sound failed: {err}"))?;
        let chunks_dropped = state().1 - self.dropped_at_start;
        Ok(Written { timeline: self.timeline, device_lost, chunks_dropped })
    }

    fn write(&mut self, chunk: &AudioChunk) -> std::io::Result<()> {
        if (chunk.rate, chunk.channels) != (self.rate, self.channels) {
            // The device came back in another format: its time becomes silence (said once).
            if !self.format_told {
                let what = format!(
                    "the microphone now gives {} Hz x{} (the take is {} Hz x{}): silence until it matches",
                    chunk.rate, chunk.channels, self.rate, self.channels
                );
                self.event(what, false);
                self.format_told = true;
            }
            return Ok(());
        }
        let placement = self.timeline.place(chunk.first_at, chunk.frames(), chunk.after_overrun);
        self.writer.silence(placement.silence_frames)?;
        self.writer.write(&chunk.samples[placement.skip_frames * usize::from(self.channels)..])?;
        self.origin_us.store((self.timeline.origin_s() * 1e6) as i64, Ordering::Relaxed);
        self.shared.written_frames.store(self.timeline.placed(), Ordering::Relaxed);
        Ok(())
    }

    /// Tells when the device is lost, stalls, or comes back; whether it is lost now.
    fn watch_device(&mut self, state: &StateReader) -> bool {
        let (now, _) = state();
        let bad = matches!(now, AudioState::Lost(_) | AudioState::Stalled);
        match (&self.notified, bad) {
            (None, true) => {
                let what = match &now {
                    AudioState::Lost(reason) => format!("the microphone was lost ({reason}): silence until it is back"),
                    _ => "the microphone stopped sending sound: silence until it does".to_string(),
                };
                self.event(what, true);
                self.notified = Some(now);
            }
            (Some(_), false) if now == AudioState::Running => {
                self.event("the microphone is back".to_string(), false);
                self.notified = None;
            }
            _ => {}
        }
        bad
    }

    /// Says `what` happened now (or, `at_sound_end`, where the sound stopped: a device that went away).
    fn event(&self, what: String, at_sound_end: bool) {
        let at_s = if at_sound_end {
            self.timeline.placed() as f64 / f64::from(self.rate)
        } else {
            self.clock.time_ms(Instant::now()) / 1000.0
        };
        tracing::warn!("sound at {at_s:.1} s: {what}");
        self.shared.events.lock().expect("events lock").push(AudioEvent { at_s, what });
    }
}
