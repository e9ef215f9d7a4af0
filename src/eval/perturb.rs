//! Plates as a real capture gets them: how a plate drifts from the scene, for measuring what a plate is
//! worth (`mattecam eval --sample-plate perturbed`).

use crate::plate::Plate;

/// How a plate drifts from the scene in real use, for measuring what a plate is worth: the camera moved,
/// the exposure changed, and the capture has its own sensor noise.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Perturbation {
    /// The plate shows the scene moved this far (x, y), edges repeated.
    pub shift_px: (i32, i32),
    /// Multiplies every channel.
    pub gain: f32,
    /// Gaussian noise, in 8-bit levels.
    pub noise_sigma: f32,
    pub seed: u64,
}

impl Default for Perturbation {
    /// The exact plate.
    fn default() -> Self {
        Self { shift_px: (0, 0), gain: 1.0, noise_sigma: 0.0, seed: 0 }
    }
}

impl Perturbation {
    /// The drift the plate issue measures with: 2 px shift, gain 1.03, noise sigma 2.
    pub fn drifted(seed: u64) -> Self {
        Self { shift_px: (2, 0), gain: 1.03, noise_sigma: 2.0, seed }
    }

    pub fn apply(&self, plate: &Plate) -> Plate {
        let (w, h) = (plate.width as i64, plate.height as i64);
        let mut rng = crate::eval::synth::Rng::new(self.seed);
        let mut rgb = Vec::with_capacity(plate.rgb.len());
        for y in 0..h {
            let sy = (y - self.shift_px.1 as i64).clamp(0, h - 1);
            for x in 0..w {
                let sx = (x - self.shift_px.0 as i64).clamp(0, w - 1);
                let i = ((sy * w + sx) * 3) as usize;
                for &v in &plate.rgb[i..i + 3] {
                    let noise = if self.noise_sigma > 0.0 { rng.normal() as f32 * self.noise_sigma } else { 0.0 };
                    rgb.push((v as f32 * self.gain + noise).round().clamp(0.0, 255.0) as u8);
                }
            }
        }
        Plate { width: plate.width, height: plate.height, rgb }
    }
}
