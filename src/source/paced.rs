//! A file played at its own frame rate and looped, delivered as a camera delivers frames: for measuring
//! latency and dropped frames the way a live camera sees them (`mattecam bench`).

use std::time::{Duration, Instant};

use super::{FrameSource, SourceError, SourceInfo, SourceSpec};
use crate::frame::Frame;

pub struct PacedSource {
    spec: SourceSpec,
    inner: Box<dyn FrameSource>,
    info: SourceInfo,
    started: Option<Instant>,
    delivered: u64,
}

impl PacedSource {
    pub fn open(spec: &SourceSpec) -> Result<Self, SourceError> {
        let inner = super::open(spec)?;
        let mut info = inner.info().clone();
        info.live = true;
        info.frame_count = None;
        info.name = format!("{} (paced at {:.0} fps, looped)", info.name, info.fps);
        Ok(Self { spec: spec.clone(), inner, info, started: None, delivered: 0 })
    }
}

impl FrameSource for PacedSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self, buf: Vec<u8>) -> Result<Option<Frame>, SourceError> {
        let mut frame = match self.inner.next_frame(buf)? {
            Some(frame) => frame,
            None => {
                self.inner = super::open(&self.spec)?;
                let Some(frame) = self.inner.next_frame(Vec::new())? else {
                    return Ok(None);
                };
                frame
            }
        };
        let started = *self.started.get_or_insert_with(Instant::now);
        let due = started + Duration::from_secs_f64(self.delivered as f64 / self.info.fps.max(1.0));
        if let Some(wait) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
        frame.seq = self.delivered;
        frame.pts_ms = self.delivered as f64 * 1000.0 / self.info.fps.max(1.0);
        frame.captured_at = Instant::now();
        self.delivered += 1;
        Ok(Some(frame))
    }
}
