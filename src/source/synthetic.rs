//! A deterministic moving scene, for tests and benchmarks: a gradient backdrop with a bright disc and a
//! bar that move a fixed amount per frame.

use std::time::Instant;

use super::{FrameSource, SourceError, SourceInfo};
use crate::frame::Frame;

/// Delivered as fast as it is read, like a file; the live engine paces it (`source::live`).
pub struct SyntheticSource {
    info: SourceInfo,
    next_seq: u64,
    /// `None` for an endless stream.
    limit: Option<u64>,
}

impl SyntheticSource {
    pub fn new(width: u32, height: u32, fps: f64, limit: Option<u64>) -> Self {
        let name = format!("synthetic {width}x{height}@{fps}");
        let info = SourceInfo { name, width, height, fps, frame_count: limit, live: false };
        Self { info, next_seq: 0, limit }
    }

    /// Renders frame `seq` into `rgb` (resized to fit); the same `seq` always gives the same pixels.
    pub fn render(width: u32, height: u32, seq: u64, rgb: &mut Vec<u8>) {
        let (w, h) = (width as i64, height as i64);
        rgb.resize((w * h * 3) as usize, 0);
        let t = seq as i64;
        let radius = (h / 4).max(1);
        let cx = (w / 4 + t * 7) % w;
        let cy = h / 2 + ((t * 5) % (h / 4 + 1)) - h / 8;
        let bar_x = (w - (t * 11) % w) % w;
        let bar_w = (w / 16).max(1);
        for y in 0..h {
            for x in 0..w {
                let i = ((y * w + x) * 3) as usize;
                let (dx, dy) = (x - cx, y - cy);
                let pixel = if dx * dx + dy * dy <= radius * radius {
                    [240, 200, 160]
                } else if (x - bar_x).rem_euclid(w) < bar_w {
                    [40, 40, 200]
                } else {
                    [(x * 200 / w) as u8 + 20, (y * 200 / h) as u8 + 20, 90]
                };
                rgb[i..i + 3].copy_from_slice(&pixel);
            }
        }
    }
}

impl FrameSource for SyntheticSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self, mut buf: Vec<u8>) -> Result<Option<Frame>, SourceError> {
        if self.limit.is_some_and(|limit| self.next_seq >= limit) {
            return Ok(None);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Self::render(self.info.width, self.info.height, seq, &mut buf);
        Ok(Some(Frame {
            seq,
            captured_at: Instant::now(),
            pts_ms: seq as f64 * 1000.0 / self.info.fps,
            width: self.info.width,
            height: self.info.height,
            rgb: buf,
        }))
    }
}
