//! A source as the live engine plays it, the one place where pacing, looping and retrying live: a camera
//! delivers at its own rate and is opened again when it goes away; a video file, an image or the synthetic
//! scene is played at its own frame rate, as a camera would deliver it, and looped.

use std::time::{Duration, Instant};

use super::{FrameSource, SourceError, SourceInfo};
use crate::frame::Frame;

/// How often a lost camera (or one that would not open) is tried again.
pub const RETRY_INTERVAL: Duration = Duration::from_secs(2);
/// A still image is shown as a stream at this rate, so recurrent models settle and the stats stay alive.
pub const IMAGE_FPS: f64 = 15.0;
/// Behind schedule by more than this (a stalled decoder, a suspended machine), pacing starts over instead
/// of delivering a burst of frames to catch up.
const MAX_LAG: Duration = Duration::from_millis(250);

/// What opens a source: the engine's choice of source, as a function so this module does not depend on
/// where choices are kept.
pub type Opener = Box<dyn Fn() -> Result<Box<dyn FrameSource>, SourceError> + Send>;

/// What happened to the source, for the status line.
#[derive(Clone, Debug)]
pub enum FeedEvent {
    Opened(SourceInfo),
    /// A camera went away or would not open: tried again at `retry_at`.
    Lost {
        reason: String,
        retry_at: Instant,
    },
    /// A file that cannot be read: not retried.
    Failed(String),
}

struct Opened {
    source: Box<dyn FrameSource>,
    fps: f64,
    live: bool,
    started: Instant,
    delivered: u64,
}

pub struct LiveFeed {
    open_source: Opener,
    /// A camera: failures are retried, and it is never looped.
    camera: bool,
    /// An image: decoded once, then repeated.
    still: bool,
    opened: Option<Opened>,
    still_frame: Option<Frame>,
    failed: bool,
    seq: u64,
}

impl LiveFeed {
    pub fn new(open_source: Opener, camera: bool, still: bool) -> Self {
        Self { open_source, camera, still, opened: None, still_frame: None, failed: false, seq: 0 }
    }

    /// The next frame at the source's pace; `None` once `stopping()` says so, or after a file failed for
    /// good (reported through `events`).
    pub fn next(
        &mut self,
        buffer: Vec<u8>,
        stopping: &dyn Fn() -> bool,
        events: &mut dyn FnMut(FeedEvent),
    ) -> Option<Frame> {
        let mut buffer = Some(buffer);
        while !stopping() && !self.failed {
            if self.opened.is_none() && !self.open(stopping, events) {
                continue;
            }
            let opened = self.opened.as_mut().expect("opened above");
            let next = match &self.still_frame {
                Some(still) => Ok(Some(copy_of(still, buffer.take().unwrap_or_default()))),
                None => opened.source.next_frame(buffer.take().unwrap_or_default()),
            };
            match next {
                Ok(Some(mut frame)) => {
                    if self.still && self.still_frame.is_none() {
                        self.still_frame = Some(frame.clone());
                    }
                    if !opened.live {
                        pace(opened, stopping);
                    }
                    frame.seq = self.seq;
                    self.seq += 1;
                    frame.captured_at = Instant::now();
                    return Some(frame);
                }
                // The end of a file: play it again, without probing it again where the source can.
                Ok(None) if !self.camera => {
                    let again = opened.source.reopen().map(|source| source.map(|source| (source, opened.fps)));
                    match again {
                        Ok(Some((source, fps))) => {
                            self.opened =
                                Some(Opened { source, fps, live: false, started: Instant::now(), delivered: 0 })
                        }
                        Ok(None) => self.opened = None,
                        Err(err) => self.fail(&err, stopping, events),
                    }
                }
                Ok(None) => {
                    let err = SourceError::Camera { name: "the camera".into(), reason: "the stream ended".into() };
                    self.fail(&err, stopping, events);
                }
                Err(err) => self.fail(&err, stopping, events),
            }
        }
        None
    }

    /// Opens the source; false when it failed (reported, and for a camera waited out).
    fn open(&mut self, stopping: &dyn Fn() -> bool, events: &mut dyn FnMut(FeedEvent)) -> bool {
        match (self.open_source)() {
            Ok(source) => {
                let info = source.info().clone();
                let fps = if self.still { IMAGE_FPS } else { info.fps.max(1.0) };
                events(FeedEvent::Opened(info.clone()));
                self.opened = Some(Opened { source, fps, live: info.live, started: Instant::now(), delivered: 0 });
                true
            }
            Err(err) => {
                self.fail(&err, stopping, events);
                false
            }
        }
    }

    /// A camera is tried again after [`RETRY_INTERVAL`]; a file fails for good.
    fn fail(&mut self, err: &SourceError, stopping: &dyn Fn() -> bool, events: &mut dyn FnMut(FeedEvent)) {
        self.opened = None;
        let reason = err.to_string();
        if !self.camera {
            tracing::warn!("source: {reason}");
            events(FeedEvent::Failed(reason));
            self.failed = true;
            return;
        }
        events(FeedEvent::Lost { reason, retry_at: Instant::now() + RETRY_INTERVAL });
        sleep_unless(RETRY_INTERVAL, stopping);
    }
}

/// Waits until the next frame is due at the source's rate.
fn pace(opened: &mut Opened, stopping: &dyn Fn() -> bool) {
    let due = opened.started + Duration::from_secs_f64(opened.delivered as f64 / opened.fps);
    let now = Instant::now();
    if now > due + MAX_LAG {
        opened.started = now;
        opened.delivered = 1;
        return;
    }
    opened.delivered += 1;
    sleep_unless(due.saturating_duration_since(now), stopping);
}

/// Sleeps for `duration`, waking early when `stopping()` says so.
pub fn sleep_unless(duration: Duration, stopping: &dyn Fn() -> bool) {
    let until = Instant::now() + duration;
    while !stopping() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(20)));
    }
}

fn copy_of(frame: &Frame, mut buffer: Vec<u8>) -> Frame {
    buffer.clear();
    buffer.extend_from_slice(&frame.rgb);
    Frame { rgb: buffer, ..frame.clone_header() }
}
