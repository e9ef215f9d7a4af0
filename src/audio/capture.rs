//! The microphone: an "audio-capture" thread opens the input with cpal (ALSA; PipeWire and PulseAudio
//! desktops answer through their ALSA plugins), reopens it when it is lost, and reports its state. cpal's
//! own thread runs the callback: it applies mute and gain, keeps the peak for the meter, timestamps each
//! buffer on the monotonic clock (the one video frames use) and hands it to the subscribers' bounded
//! queues.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};
use cpal::{FromSample, SizedSample};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use super::AudioChoice;

/// Buffers a subscriber may have waiting: about 10 s at ALSA's usual periods. A recorder that falls
/// further behind loses buffers, which its timeline fills with silence and counts.
const QUEUE_CHUNKS: usize = 1000;
/// How long the device gets to open.
const OPEN_TIMEOUT: Duration = Duration::from_secs(3);
/// Between attempts to reopen a lost device.
const RETRY: Duration = Duration::from_secs(1);
/// No sound for this long from a running device: it is reported as stalled.
const STALL: Duration = Duration::from_secs(2);
/// Most channels kept (the first ones): microphones are mono or stereo.
const MAX_CHANNELS: u16 = 2;

#[derive(Debug, thiserror::Error)]
pub enum AudioError {
    #[error(
        "no microphone could be opened ({0}); pick another with --audio NAME (see `mattecam sources`), or --audio none"
    )]
    Open(String),
    #[error("no audio input is called {name:?}; the inputs are: {known}")]
    NoSuchDevice { name: String, known: String },
    #[error("could not start the audio capture thread: {0}")]
    Thread(String),
}

/// One buffer from the device: interleaved samples, -1..1, after mute and gain.
#[derive(Clone, Debug)]
pub struct AudioChunk {
    /// When its first sample was captured, on the monotonic clock.
    pub first_at: Instant,
    /// The first after an overrun: samples were lost just before it.
    pub after_overrun: bool,
    pub rate: u32,
    pub channels: u16,
    pub samples: Vec<f32>,
}

impl AudioChunk {
    pub fn frames(&self) -> usize {
        self.samples.len() / usize::from(self.channels.max(1))
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum AudioState {
    /// `--audio none`.
    Off,
    Opening,
    Running,
    /// Open, but nothing came for a while.
    Stalled,
    /// Could not be opened, or went away; retried every second.
    Lost(String),
}

#[derive(Clone, Debug, PartialEq)]
pub struct AudioStatus {
    pub choice: AudioChoice,
    /// The device's name once opened.
    pub device: String,
    pub rate: u32,
    pub channels: u16,
    pub state: AudioState,
    /// Times the device was lost after it had run.
    pub losses: u64,
    /// Buffers a subscriber's full queue turned away.
    pub chunks_dropped: u64,
}

struct Shared {
    choice: AudioChoice,
    stop: AtomicBool,
    muted: AtomicBool,
    gain: AtomicU32,
    /// The highest |sample| since the meter last looked (f32 bits).
    peak: AtomicU32,
    status: Mutex<AudioStatus>,
    subscribers: Mutex<Vec<(u64, Sender<AudioChunk>)>>,
    next_id: AtomicU64,
    chunks_dropped: AtomicU64,
    /// An overrun was reported: samples were lost before the next buffer.
    overrun: AtomicBool,
    /// When the last buffer came, as microseconds after `epoch`.
    last_data_us: AtomicU64,
    epoch: Instant,
}

impl Shared {
    fn set_state(&self, state: AudioState) {
        self.status.lock().expect("audio status lock").state = state;
    }
}

/// The capture, while it lives; dropping it stops the thread and closes the device.
pub struct AudioInput {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// A subscriber's queue of buffers; unsubscribes when dropped.
pub struct AudioSubscription {
    id: u64,
    shared: Arc<Shared>,
    pub chunks: Receiver<AudioChunk>,
}

impl Drop for AudioSubscription {
    fn drop(&mut self) {
        self.shared.subscribers.lock().expect("subscribers lock").retain(|(id, _)| *id != self.id);
    }
}

impl AudioInput {
    /// Starts capturing from `choice` (nothing for `None`) without waiting: a device that cannot be opened
    /// shows as [`AudioState::Lost`] and is retried.
    pub fn start(choice: AudioChoice) -> Result<Self, AudioError> {
        Self::spawn(choice).map(|(input, _)| input)
    }

    /// Starts capturing and waits for the device to open: an error names what went wrong (`record`).
    pub fn open(choice: AudioChoice) -> Result<Self, AudioError> {
        if let AudioChoice::Named(name) = &choice {
            find_device(name)?;
        }
        let (input, opened) = Self::spawn(choice)?;
        match opened.recv() {
            Ok(Ok(())) => Ok(input),
            Ok(Err(reason)) => Err(AudioError::Open(reason)),
            Err(_) => Err(AudioError::Open("the capture thread ended".into())),
        }
    }

    fn spawn(choice: AudioChoice) -> Result<(Self, Receiver<Result<(), String>>), AudioError> {
        let state = if choice == AudioChoice::None { AudioState::Off } else { AudioState::Opening };
        let shared = Arc::new(Shared {
            choice: choice.clone(),
            stop: AtomicBool::new(false),
            muted: AtomicBool::new(false),
            gain: AtomicU32::new(1f32.to_bits()),
            peak: AtomicU32::new(0),
            status: Mutex::new(AudioStatus {
                choice,
                device: String::new(),
                rate: 0,
                channels: 0,
                state,
                losses: 0,
                chunks_dropped: 0,
            }),
            subscribers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            chunks_dropped: AtomicU64::new(0),
            overrun: AtomicBool::new(false),
            last_data_us: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let (opened_tx, opened) = bounded(1);
        let thread = if shared.choice == AudioChoice::None {
            let _ = opened_tx.send(Err("--audio none".into()));
            None
        } else {
            let for_thread = Arc::clone(&shared);
            let thread = std::thread::Builder::new()
                .name("audio-capture".into())
                .spawn(move || capture_thread(&for_thread, opened_tx))
                .map_err(|err| AudioError::Thread(err.to_string()))?;
            Some(thread)
        };
        Ok((Self { shared, thread }, opened))
    }

    pub fn choice(&self) -> &AudioChoice {
        &self.shared.choice
    }

    pub fn status(&self) -> AudioStatus {
        let mut status = self.shared.status.lock().expect("audio status lock").clone();
        status.chunks_dropped = self.shared.chunks_dropped.load(Ordering::Relaxed);
        status
    }

    /// Reads the device's state and the buffers dropped so far, from any thread.
    pub fn state_reader(&self) -> impl Fn() -> (AudioState, u64) + Send + 'static {
        let shared = Arc::clone(&self.shared);
        move || {
            let state = shared.status.lock().expect("audio status lock").state.clone();
            (state, shared.chunks_dropped.load(Ordering::Relaxed))
        }
    }

    /// A queue of every buffer from now on.
    pub fn subscribe(&self) -> AudioSubscription {
        let (tx, chunks) = bounded(QUEUE_CHUNKS);
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        self.shared.subscribers.lock().expect("subscribers lock").push((id, tx));
        AudioSubscription { id, shared: Arc::clone(&self.shared), chunks }
    }

    /// The highest level (0..1, after gain) since the last call: the meter.
    pub fn take_peak(&self) -> f32 {
        f32::from_bits(self.shared.peak.swap(0, Ordering::Relaxed))
    }

    pub fn set_muted(&self, muted: bool) {
        self.shared.muted.store(muted, Ordering::Relaxed);
    }

    pub fn set_gain_db(&self, db: f32) {
        self.shared.gain.store(super::db_to_gain(db).to_bits(), Ordering::Relaxed);
    }
}

impl std::fmt::Debug for AudioInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AudioInput").field("choice", &self.shared.choice).finish_non_exhaustive()
    }
}

impl Drop for AudioInput {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The audio inputs' names, as `--audio NAME` takes them (ALSA's; may take a moment: call it off the UI
/// thread).
pub fn input_devices() -> Vec<String> {
    let host = cpal::default_host();
    let Ok(devices) = host.input_devices() else { return Vec::new() };
    let mut names: Vec<String> = devices.map(|device| device.to_string()).collect();
    names.dedup();
    names
}

fn find_device(name: &str) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let devices: Vec<cpal::Device> = host.input_devices().map(Iterator::collect).unwrap_or_default();
    if let Some(device) = devices.iter().find(|device| device.to_string() == name) {
        return Ok(device.clone());
    }
    let known: Vec<String> = devices.iter().map(ToString::to_string).collect();
    let known = if known.is_empty() { "none found".to_string() } else { known.join(", ") };
    Err(AudioError::NoSuchDevice { name: name.to_string(), known })
}

/// Opens the device, then watches it until asked to stop: a lost device is reopened every second.
fn capture_thread(shared: &Arc<Shared>, opened: Sender<Result<(), String>>) {
    let mut opened = Some(opened);
    let mut ran = false;
    while !shared.stop.load(Ordering::SeqCst) {
        match open_stream(shared) {
            Ok(stream) => {
                if let Some(opened) = opened.take() {
                    let _ = opened.send(Ok(()));
                }
                if ran {
                    tracing::info!("the microphone is back");
                }
                ran = true;
                let reason = watch(shared, &stream.errors);
                drop(stream);
                let Some(reason) = reason else { break };
                tracing::warn!("the microphone was lost: {reason}");
                shared.status.lock().expect("audio status lock").losses += 1;
                shared.set_state(AudioState::Lost(reason));
            }
            Err(reason) => {
                if let Some(opened) = opened.take() {
                    let _ = opened.send(Err(reason.clone()));
                }
                shared.set_state(AudioState::Lost(reason));
            }
        }
        let retry_at = Instant::now() + RETRY;
        while Instant::now() < retry_at && !shared.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

struct OpenStream {
    _stream: cpal::Stream,
    errors: Receiver<cpal::Error>,
}

/// Until stopped (`None`) or the device fails (why).
fn watch(shared: &Shared, errors: &Receiver<cpal::Error>) -> Option<String> {
    loop {
        if shared.stop.load(Ordering::SeqCst) {
            return None;
        }
        match errors.recv_timeout(Duration::from_millis(50)) {
            Ok(err) if err.kind() == cpal::ErrorKind::Xrun => tracing::debug!("audio overrun: {err}"),
            Ok(err) => return Some(err.to_string()),
            Err(RecvTimeoutError::Disconnected) => return Some("the stream ended".into()),
            Err(RecvTimeoutError::Timeout) => {}
        }
        let last = Duration::from_micros(shared.last_data_us.load(Ordering::Relaxed));
        let quiet = shared.epoch.elapsed().saturating_sub(last) > STALL;
        let mut status = shared.status.lock().expect("audio status lock");
        match (&status.state, quiet) {
            (AudioState::Running, true) => status.state = AudioState::Stalled,
            (AudioState::Stalled, false) => status.state = AudioState::Running,
            _ => {}
        }
    }
}

fn open_stream(shared: &Arc<Shared>) -> Result<OpenStream, String> {
    let host = cpal::default_host();
    let device = match &shared.choice {
        AudioChoice::Named(name) => find_device(name).map_err(|err| err.to_string())?,
        _ => host.default_input_device().ok_or("the system has no default audio input")?,
    };
    let supported = device.default_input_config().map_err(|err| format!("{device}: {err}"))?;
    let config = supported.config();
    let (tx, errors) = bounded(16);
    let flag = Arc::clone(shared);
    let on_error = move |err: cpal::Error| {
        if err.kind() == cpal::ErrorKind::Xrun {
            flag.overrun.store(true, Ordering::Relaxed);
        }
        let _ = tx.try_send(err);
    };
    use cpal::SampleFormat as F;
    let stream = match supported.sample_format() {
        F::F32 => build::<f32>(&device, &config, shared, on_error),
        F::I16 => build::<i16>(&device, &config, shared, on_error),
        F::I32 => build::<i32>(&device, &config, shared, on_error),
        F::U16 => build::<u16>(&device, &config, shared, on_error),
        F::U8 => build::<u8>(&device, &config, shared, on_error),
        F::F64 => build::<f64>(&device, &config, shared, on_error),
        other => return Err(format!("{device} gives {other} samples, which this app does not read")),
    }
    .map_err(|err| format!("{device}: {err}"))?;
    stream.play().map_err(|err| format!("{device}: {err}"))?;
    {
        let mut status = shared.status.lock().expect("audio status lock");
        status.device = device.to_string();
        status.rate = config.sample_rate;
        status.channels = config.channels.min(MAX_CHANNELS);
        status.state = AudioState::Running;
    }
    shared.last_data_us.store(shared.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    Ok(OpenStream { _stream: stream, errors })
}

fn build<T>(
    device: &cpal::Device,
    config: &cpal::StreamConfig,
    shared: &Arc<Shared>,
    on_error: impl FnMut(cpal::Error) + Send + 'static,
) -> Result<cpal::Stream, cpal::Error>
where
    T: SizedSample,
    f32: FromSample<T>,
{
    let shared = Arc::clone(shared);
    let (rate, channels) = (config.sample_rate, config.channels);
    let kept = channels.min(MAX_CHANNELS);
    let callback = move |data: &[T], info: &cpal::InputCallbackInfo| {
        let stamp = info.timestamp();
        // How long ago the first sample was captured (the ALSA delay), on the monotonic clock.
        let age = stamp.callback.saturating_duration_since(stamp.capture);
        let first_at = Instant::now().checked_sub(age).unwrap_or_else(Instant::now);
        deliver(&shared, data, channels, kept, rate, first_at);
    };
    device.build_input_stream(*config, callback, on_error, Some(OPEN_TIMEOUT))
}

/// Runs on cpal's thread for each buffer.
fn deliver<T>(shared: &Shared, data: &[T], channels: u16, kept: u16, rate: u32, first_at: Instant)
where
    T: SizedSample,
    f32: FromSample<T>,
{
    shared.last_data_us.store(shared.epoch.elapsed().as_micros() as u64, Ordering::Relaxed);
    let after_overrun = shared.overrun.swap(false, Ordering::Relaxed);
    let gain =
        if shared.muted.load(Ordering::Relaxed) { 0.0 } else { f32::from_bits(shared.gain.load(Ordering::Relaxed)) };
    let mut samples = Vec::with_capacity(data.len() / usize::from(channels) * usize::from(kept));
    let mut peak = 0f32;
    for frame in data.chunks_exact(usize::from(channels)) {
        for &sample in &frame[..usize::from(kept)] {
            let value = sample.to_sample::<f32>() * gain;
            peak = peak.max(value.abs());
            samples.push(value);
        }
    }
    let _ = shared.peak.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |was| {
        (peak > f32::from_bits(was)).then_some(peak.to_bits())
    });
    let subscribers = shared.subscribers.lock().expect("subscribers lock");
    if subscribers.is_empty() {
        return;
    }
    let chunk = AudioChunk { first_at, after_overrun, rate, channels: kept, samples };
    for (_, tx) in subscribers.iter() {
        if tx.try_send(chunk.clone()).is_err() {
            shared.chunks_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}
