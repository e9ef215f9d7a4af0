//! `mattecam record`'s take, without a window: wait until the source and the model run, record for the
//! time asked (or until interrupted), finish the files.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::{Clock, RecordError, RecordOptions, Recorder, RecorderStatus, RecordingReport};
use crate::audio::AudioInput;
use crate::engine::{Delivery, Engine};
use crate::sink::OutputSpec;
use crate::source::SourceInfo;

/// How often the progress callback hears of the take.
const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);

/// What the caller hears while the take runs.
pub enum TakeProgress<'a> {
    /// Recording from this source.
    Started(&'a SourceInfo),
    /// Every second.
    Running(&'a RecorderStatus),
    /// The take ended; the queue is being written.
    Finishing(&'a RecorderStatus),
    /// Something happened to the microphone (lost, back); said once.
    Notice(&'a str),
}

/// What the take records.
pub struct TakeSpec {
    pub output: OutputSpec,
    pub seconds: f64,
    pub queue_frames: usize,
    pub queue_bytes: u64,
    /// The microphone, when the take has sound.
    pub audio: Option<Arc<AudioInput>>,
}

/// How a take ended.
pub enum TakeEnd {
    Recorded(Box<RecordingReport>),
    /// Interrupted before the source and the model were running: nothing was written.
    NotStarted,
}

/// Records `spec.seconds` of what `engine` composites into `spec.output` (or less, if `interrupted` is
/// set).
pub fn record_take(
    engine: &Engine,
    spec: TakeSpec,
    interrupted: &AtomicBool,
    progress: &mut dyn FnMut(TakeProgress<'_>),
) -> Result<TakeEnd, RecordError> {
    let TakeSpec { output, seconds, queue_frames, queue_bytes, audio } = spec;
    let give_up = || interrupted.load(Ordering::SeqCst);
    let Some(info) = engine.wait_until_ready(&give_up).map_err(RecordError::NotReady)? else {
        return Ok(TakeEnd::NotStarted);
    };
    let status = engine.status();
    let options = RecordOptions {
        output,
        width: info.width,
        height: info.height,
        fps: info.fps,
        clock: Clock::Capture,
        queue_frames,
        queue_bytes,
        model: status.model.kind.name().to_string(),
        provider: status.provider.as_ref().map(ToString::to_string).unwrap_or_default(),
        source: info.name.clone(),
        compositor: status.compositor.clone(),
        started_at: None,
        gate: None,
        audio,
    };
    let tap = engine.tap();
    let delivery = Delivery::Bounded { frames: queue_frames.max(1), bytes: queue_bytes };
    let recorder = Recorder::start(options, || tap.subscribe("recorder", delivery))?;
    progress(TakeProgress::Started(&info));
    let started = Instant::now();
    let mut last_report = started;
    let mut told = 0;
    while started.elapsed().as_secs_f64() < seconds && !give_up() {
        std::thread::sleep(Duration::from_millis(20));
        let status = recorder.status();
        if status.failure.is_some() {
            break;
        }
        for event in status.audio_events.iter().skip(told) {
            progress(TakeProgress::Notice(&format!("at {:.1} s: {}", event.at_s, event.what)));
        }
        told = status.audio_events.len();
        if last_report.elapsed() >= PROGRESS_INTERVAL {
            last_report = Instant::now();
            progress(TakeProgress::Running(&status));
        }
    }
    let mut recorder = recorder;
    recorder.request_stop();
    let status = recorder.status();
    if status.queue_depth > 0 {
        progress(TakeProgress::Finishing(&status));
    }
    Ok(TakeEnd::Recorded(Box::new(recorder.stop())))
}
