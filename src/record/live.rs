//! Recording from the live engine without ever making the caller wait: a take is started on a thread of
//! its own ("recorder-start": ffmpeg is spawned there) and joins the engine's consumers when ready; a take
//! stopped finishes (drains its queue, finalises its files) on the recorder's thread while the caller
//! polls for the report.

use crossbeam_channel::{Receiver, bounded};

use super::{RecordError, RecordOptions, Recorder, RecorderStatus, RecordingReport};
use crate::engine::{Delivery, Engine};
use crate::sink::Format;

/// What the record panel shows.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RecordingView {
    #[default]
    Idle,
    /// ffmpeg is being started.
    Starting,
    Running(RecorderStatus),
    /// Stopped; the queue is being written and the files finalised.
    Finishing(RecorderStatus),
}

/// What happened since the last [`Recordings::poll`].
#[derive(Debug)]
pub enum RecordingEvent {
    Started,
    /// The take could not start (a bad folder, no ffmpeg).
    NotStarted(RecordError),
    /// A take ended (stopped, or it failed by itself: ffmpeg died, the disk filled) and its files are final.
    Finished(Box<RecordingReport>),
}

/// A take being started on its own thread.
struct Starting {
    started: Receiver<Result<Recorder, RecordError>>,
    format: Format,
    /// Stopped before it started: it is finished as soon as it exists.
    stop: bool,
}

/// The takes of one engine: at most one running, any number finishing.
#[derive(Default)]
pub struct Recordings {
    starting: Option<Starting>,
    running: Option<(Recorder, Format)>,
    finishing: Vec<Recorder>,
}

impl Recordings {
    /// Starts a take on a thread of its own; the caller does not wait for ffmpeg.
    pub fn start(&mut self, engine: &Engine, options: RecordOptions) -> Result<(), RecordError> {
        if self.starting.is_some() || self.running.is_some() {
            return Err(RecordError::AlreadyRecording);
        }
        let tap = engine.tap();
        let (tx, rx) = bounded(1);
        let format = options.output.format;
        std::thread::Builder::new()
            .name("recorder-start".into())
            .spawn(move || {
                let delivery = Delivery::Bounded { frames: options.queue_frames.max(1), bytes: options.queue_bytes };
                let started = Recorder::start(options, || tap.subscribe("recorder", delivery));
                let _ = tx.send(started);
            })
            .map_err(|err| RecordError::NotReady(format!("could not start the recorder thread: {err}")))?;
        self.starting = Some(Starting { started: rx, format, stop: false });
        Ok(())
    }

    /// Ends the running take (or the one starting, once it has started); its files are finalised in the
    /// background.
    pub fn stop(&mut self) {
        if let Some((mut recorder, _)) = self.running.take() {
            recorder.request_stop();
            self.finishing.push(recorder);
        }
        // ffmpeg is already on its way: the take is stopped as soon as it exists.
        if let Some(starting) = &mut self.starting {
            starting.stop = true;
        }
    }

    /// Whether a take is running, or starting and not stopped.
    pub fn is_recording(&self) -> bool {
        self.running.is_some() || self.starting.as_ref().is_some_and(|starting| !starting.stop)
    }

    /// The running take's format.
    pub fn format(&self) -> Option<Format> {
        self.running.as_ref().map(|(_, format)| *format).or(self.starting.as_ref().map(|starting| starting.format))
    }

    /// Takes that started, failed to start, or finished; never waits.
    pub fn poll(&mut self) -> Vec<RecordingEvent> {
        let mut events = Vec::new();
        if let Some(starting) = &self.starting
            && let Ok(started) = starting.started.try_recv()
        {
            let (format, stop) = (starting.format, starting.stop);
            self.starting = None;
            self.started(started, format, stop, &mut events);
        }
        // A take that failed by itself stops taking frames; it is finished like a stopped one.
        if self.running.as_ref().is_some_and(|(recorder, _)| recorder.status().failure.is_some()) {
            self.stop();
        }
        let mut still = Vec::with_capacity(self.finishing.len());
        for mut recorder in self.finishing.drain(..) {
            match recorder.try_report() {
                Some(report) => events.push(RecordingEvent::Finished(Box::new(report))),
                None => still.push(recorder),
            }
        }
        self.finishing = still;
        events
    }

    fn started(
        &mut self,
        started: Result<Recorder, RecordError>,
        format: Format,
        stop: bool,
        events: &mut Vec<RecordingEvent>,
    ) {
        match started {
            Ok(mut recorder) => {
                events.push(RecordingEvent::Started);
                if stop {
                    recorder.request_stop();
                    self.finishing.push(recorder);
                } else {
                    self.running = Some((recorder, format));
                }
            }
            Err(err) => events.push(RecordingEvent::NotStarted(err)),
        }
    }

    pub fn view(&self) -> RecordingView {
        match (&self.running, &self.starting, self.finishing.last()) {
            (Some((recorder, _)), _, _) => RecordingView::Running(recorder.status()),
            (None, Some(_), _) => RecordingView::Starting,
            (None, None, Some(recorder)) => RecordingView::Finishing(recorder.status()),
            (None, None, None) => RecordingView::Idle,
        }
    }

    /// The running take's encoder processes (tests kill one).
    pub fn encoder_pids(&self) -> Vec<u32> {
        self.running.as_ref().map(|(recorder, _)| recorder.encoder_pids()).unwrap_or_default()
    }

    /// Stops every take and waits until each is finalised (after the window has closed, or at the end of
    /// `record`). Calls `finishing` first when there is something to wait for.
    pub fn finish_all(mut self, finishing: impl FnOnce(&RecordingView)) -> Vec<RecordingReport> {
        self.stop();
        if let Some(starting) = self.starting.take() {
            let mut events = Vec::new();
            if let Ok(started) = starting.started.recv() {
                self.started(started, starting.format, true, &mut events);
            }
        }
        let view = self.view();
        if view != RecordingView::Idle {
            finishing(&view);
        }
        self.finishing.into_iter().map(Recorder::stop).collect()
    }
}
