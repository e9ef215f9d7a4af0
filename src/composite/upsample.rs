//! Alpha from model resolution to frame resolution.

use crate::frame::Matte;
use crate::resample::{ResampleKind, Resampler};

/// Resizes mattes to frame size, reusing its tables while sizes stay the same.
pub struct AlphaUpsampler {
    kind: ResampleKind,
    resampler: Option<Resampler>,
    scratch: Vec<f32>,
}

impl AlphaUpsampler {
    pub fn new(kind: ResampleKind) -> Self {
        Self { kind, resampler: None, scratch: Vec::new() }
    }

    /// Alpha in [0, 1] at `width x height` into `out`.
    pub fn upsample_f32(&mut self, matte: &Matte, width: u32, height: u32, out: &mut Vec<f32>) {
        out.resize(width as usize * height as usize, 0.0);
        if (matte.width, matte.height) == (width, height) {
            out.copy_from_slice(&matte.alpha);
            return;
        }
        let fits = self.resampler.as_ref().is_some_and(|r| r.fits(self.kind, matte.width, matte.height, width, height));
        if !fits {
            self.resampler = Some(Resampler::new(self.kind, matte.width, matte.height, width, height));
        }
        self.resampler.as_mut().expect("set above").gray_f32(&matte.alpha, out);
    }

    /// Alpha as 8-bit (0..=255, rounded) at `width x height` into `out`.
    pub fn upsample_u8(&mut self, matte: &Matte, width: u32, height: u32, out: &mut Vec<u8>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        self.upsample_f32(matte, width, height, &mut scratch);
        out.clear();
        out.extend(scratch.iter().map(|a| (a.clamp(0.0, 1.0) * 255.0).round() as u8));
        self.scratch = scratch;
    }
}
