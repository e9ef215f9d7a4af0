//! A plate from N frames: the per-pixel, per-channel median, so that someone walking through during the
//! capture (a few frames per pixel) and sensor noise are both rejected.

use super::Plate;
use crate::frame::Frame;

pub struct PlateAverager {
    frames_wanted: usize,
    width: u32,
    height: u32,
    /// Frames kept as they came; the median needs them all.
    frames: Vec<Vec<u8>>,
}

impl PlateAverager {
    pub fn new(frames_wanted: usize) -> Self {
        Self { frames_wanted: frames_wanted.max(1), width: 0, height: 0, frames: Vec::new() }
    }

    /// Adds a frame; a frame of another size starts the capture over (the camera changed mode).
    pub fn push(&mut self, frame: &Frame) {
        if (frame.width, frame.height) != (self.width, self.height) {
            self.frames.clear();
            (self.width, self.height) = (frame.width, frame.height);
        }
        if self.frames.len() < self.frames_wanted {
            self.frames.push(frame.rgb.clone());
        }
    }

    pub fn frames_taken(&self) -> usize {
        self.frames.len()
    }

    pub fn frames_wanted(&self) -> usize {
        self.frames_wanted
    }

    pub fn is_complete(&self) -> bool {
        self.frames.len() >= self.frames_wanted
    }

    /// The median of the frames taken (the lower middle value for an even count).
    pub fn finish(&self) -> Option<Plate> {
        let first = self.frames.first()?;
        let n = self.frames.len();
        let mut values = vec![0u8; n];
        let rgb = (0..first.len())
            .map(|i| {
                for (value, frame) in values.iter_mut().zip(&self.frames) {
                    *value = frame[i];
                }
                let (_, median, _) = values.select_nth_unstable((n - 1) / 2);
                *median
            })
            .collect();
        Some(Plate { width: self.width, height: self.height, rgb })
    }
}
