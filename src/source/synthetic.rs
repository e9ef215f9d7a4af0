//! A deterministic moving scene, for tests and benchmarks: a gradient backdrop with a bright disc and a
//! bar that move a fixed amount per frame.

use std::time::Instant;

use super::{FrameSource, SourceError, SourceInfo};
use crate::frame::Frame;

/// Sync tests: `EPOCH_NS:PERIOD_NS` (nanoseconds on CLOCK_MONOTONIC; the period 1 s when left out): a
/// frame captured within half a frame of the epoch or a whole number of periods after it is white, so a
/// click played at those instants can be lined up with it.
pub const FLASH_ENV: &str = "MATTECAM_TEST_FLASH_EPOCH_NS";

/// Delivered as fast as it is read, like a file; the live engine paces it (`source::live`).
pub struct SyntheticSource {
    info: SourceInfo,
    next_seq: u64,
    /// `None` for an endless stream.
    limit: Option<u64>,
    /// When the flashes start, and their period ([`FLASH_ENV`]).
    flash_epoch: Option<(Instant, f64)>,
    /// When the first frame was read (flashing: each frame is made at its own time, `seq / fps` after).
    first_at: Option<Instant>,
}

/// [`FLASH_ENV`] as an instant (Rust's `Instant` is CLOCK_MONOTONIC on Linux) and a period in seconds.
fn flash_epoch() -> Option<(Instant, f64)> {
    let text = std::env::var(FLASH_ENV).ok()?;
    let (epoch, period) = text.trim().split_once(':').unwrap_or((text.trim(), "1000000000"));
    let epoch_ns: i128 = epoch.parse().ok()?;
    let period_s = period.parse::<f64>().ok().filter(|p| *p > 0.0)? / 1e9;
    let now = Instant::now();
    let mut spec = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `spec` is a valid timespec for clock_gettime to fill.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut spec) } != 0 {
        return None;
    }
    let now_ns = i128::from(spec.tv_sec) * 1_000_000_000 + i128::from(spec.tv_nsec);
    let ago_ns = now_ns - epoch_ns;
    let offset = std::time::Duration::from_nanos(ago_ns.unsigned_abs() as u64);
    let epoch = if ago_ns >= 0 { now.checked_sub(offset) } else { now.checked_add(offset) }?;
    Some((epoch, period_s))
}

impl SyntheticSource {
    pub fn new(width: u32, height: u32, fps: f64, limit: Option<u64>) -> Self {
        let name = format!("synthetic {width}x{height}@{fps}");
        let flash_epoch = flash_epoch();
        // Flashing, it paces itself (each frame made at its own time), as a camera does.
        let live = flash_epoch.is_some();
        let info = SourceInfo { name, width, height, fps, frame_count: limit, live };
        Self { info, next_seq: 0, limit, flash_epoch, first_at: None }
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
        if self.flash_epoch.is_some() {
            // The live engine stamps a frame as it comes: whether it flashes is decided at that instant
            // too, not ahead of it.
            let first_at = *self.first_at.get_or_insert_with(Instant::now);
            let due = first_at + std::time::Duration::from_secs_f64(seq as f64 / self.info.fps);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
        let captured_at = Instant::now();
        if let Some((epoch, period_s)) = self.flash_epoch {
            let periods = captured_at.saturating_duration_since(epoch).as_secs_f64() / period_s;
            let from_flash_s = (periods - periods.round()).abs() * period_s;
            if captured_at >= epoch && from_flash_s < 0.5 / self.info.fps {
                buf.fill(255);
            }
        }
        Ok(Some(Frame {
            seq,
            captured_at,
            pts_ms: seq as f64 * 1000.0 / self.info.fps,
            width: self.info.width,
            height: self.info.height,
            rgb: buf,
        }))
    }
}
