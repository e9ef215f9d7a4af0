//! Keeping the plate in step with the camera: a per-channel gain and offset fitted on pixels the model is
//! confident are background (auto exposure and white balance change the whole picture that way), and a
//! staleness check on what the fit cannot explain (the camera moved, the scene changed).

use super::{AlphaGrid, Plate};

/// Alpha below this is "confidently background".
pub const BACKGROUND_ALPHA: f32 = 0.05;
/// Every this many pixels in each direction are sampled for the fit and the check.
const SAMPLE_STEP: u32 = 4;
/// Fewer background samples than this say nothing: keep the identity and do not judge staleness.
const MIN_SAMPLES: usize = 400;

/// `frame = gain * plate + offset`, per RGB channel, in 8-bit levels.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GainOffset {
    pub gain: [f32; 3],
    pub offset: [f32; 3],
}

impl Default for GainOffset {
    fn default() -> Self {
        Self { gain: [1.0; 3], offset: [0.0; 3] }
    }
}

/// Background samples: (plate, frame) values per channel.
fn background_samples(frame: &[u8], plate: &Plate, alpha: AlphaGrid<'_>) -> Vec<([f32; 3], [f32; 3])> {
    let (w, h) = (plate.width, plate.height);
    let mut samples = Vec::new();
    for y in (SAMPLE_STEP / 2..h).step_by(SAMPLE_STEP as usize) {
        for x in (SAMPLE_STEP / 2..w).step_by(SAMPLE_STEP as usize) {
            if alpha.alpha[alpha.cell(x, y, w, h)] >= BACKGROUND_ALPHA {
                continue;
            }
            let i = (y * w + x) as usize * 3;
            let p = [plate.rgb[i], plate.rgb[i + 1], plate.rgb[i + 2]].map(f32::from);
            let f = [frame[i], frame[i + 1], frame[i + 2]].map(f32::from);
            samples.push((p, f));
        }
    }
    samples
}

/// `f = g * p + o` for one channel by matching quantiles (10%, 50%, 90%) of plate and frame values. Unlike
/// least squares it is not fooled by a plate a pixel or two off the scene (a shift decorrelates texture
/// pixel by pixel, which drags a regression's gain toward 0, but leaves the value distribution as it was).
/// `None` without samples; a flat plate gets the offset only.
fn fit_quantiles(pairs: impl Iterator<Item = (f32, f32)>, values: &mut (Vec<f32>, Vec<f32>)) -> Option<(f32, f32)> {
    let (plate, frame) = values;
    plate.clear();
    frame.clear();
    for (p, f) in pairs {
        plate.push(p);
        frame.push(f);
    }
    if plate.len() < 2 {
        return None;
    }
    let quantiles = |v: &mut Vec<f32>| {
        let n = v.len() - 1;
        [n / 10, n / 2, n * 9 / 10].map(|k| *v.select_nth_unstable_by(k, f32::total_cmp).1)
    };
    let ([p10, p50, p90], [f10, f50, f90]) = (quantiles(plate), quantiles(frame));
    if p90 - p10 < 8.0 {
        return Some((1.0, f50 - p50));
    }
    let gain = (f90 - f10) / (p90 - p10);
    Some((gain, f50 - gain * p50))
}

impl GainOffset {
    /// Fits the plate to the frame on confident background (alpha from any grid over the frame), twice:
    /// the second time without the samples the first fit explains worst (a shadow, a missed hand).
    pub fn fit(frame: &[u8], plate: &Plate, alpha: AlphaGrid<'_>) -> Option<Self> {
        let samples = background_samples(frame, plate, alpha);
        if samples.len() < MIN_SAMPLES {
            return None;
        }
        let mut fit = Self::default();
        let mut values = (Vec::new(), Vec::new());
        for c in 0..3 {
            let (g, o) = fit_quantiles(samples.iter().map(|(p, f)| (p[c], f[c])), &mut values)?;
            fit.gain[c] = g;
            fit.offset[c] = o;
        }
        let mut residuals: Vec<f32> = samples.iter().map(|(p, f)| fit.residual(p, f)).collect();
        let mut sorted = residuals.clone();
        let median = *sorted.select_nth_unstable_by(residuals.len() / 2, f32::total_cmp).1;
        let limit = 3.0 * median + 2.0;
        let kept: Vec<&([f32; 3], [f32; 3])> =
            samples.iter().zip(residuals.drain(..)).filter(|(_, r)| *r <= limit).map(|(s, _)| s).collect();
        if kept.len() >= MIN_SAMPLES {
            for c in 0..3 {
                if let Some((g, o)) = fit_quantiles(kept.iter().map(|(p, f)| (p[c], f[c])), &mut values) {
                    fit.gain[c] = g;
                    fit.offset[c] = o;
                }
            }
        }
        Some(fit)
    }

    /// Largest channel difference between the frame and the compensated plate.
    fn residual(&self, p: &[f32; 3], f: &[f32; 3]) -> f32 {
        (0..3).map(|c| (f[c] - (self.gain[c] * p[c] + self.offset[c])).abs()).fold(0.0, f32::max)
    }

    /// The plate as the camera would see it now, into `out` (resized to fit).
    pub fn apply(&self, plate: &Plate, out: &mut Vec<u8>) {
        let lut: [[u8; 256]; 3] = std::array::from_fn(|c| {
            std::array::from_fn(|v| (self.gain[c] * v as f32 + self.offset[c]).round().clamp(0.0, 255.0) as u8)
        });
        out.clear();
        out.extend(plate.rgb.iter().enumerate().map(|(i, &v)| lut[i % 3][v as usize]));
    }
}

/// How far the live background has moved away from the (compensated) plate.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Staleness {
    /// Share of sampled background pixels that differ by more than [`Staleness::CHANGED_LEVELS`].
    pub changed_fraction: f32,
    /// Mean of the largest channel difference on sampled background, in levels.
    pub mean_difference: f32,
    pub samples: usize,
}

impl Staleness {
    /// A background pixel this far from the compensated plate has changed: six sigmas of sensor noise at
    /// sigma 2, while a 2 px camera shift moves 9-19% of the pixels of real rooms (the shared evaluation
    /// backgrounds) by more than this.
    pub const CHANGED_LEVELS: f32 = 12.0;
    /// Above this share of changed background, the plate is stale.
    pub const STALE_FRACTION: f32 = 0.05;

    pub fn measure(frame: &[u8], plate: &Plate, fit: &GainOffset, alpha: AlphaGrid<'_>) -> Self {
        let samples = background_samples(frame, plate, alpha);
        if samples.is_empty() {
            return Self::default();
        }
        let residuals: Vec<f32> = samples.iter().map(|(p, f)| fit.residual(p, f)).collect();
        let changed = residuals.iter().filter(|&&r| r > Self::CHANGED_LEVELS).count();
        Self {
            changed_fraction: changed as f32 / residuals.len() as f32,
            mean_difference: residuals.iter().sum::<f32>() / residuals.len() as f32,
            samples: residuals.len(),
        }
    }

    /// Whether to warn and offer a new plate (only with enough background seen to judge).
    pub fn is_stale(&self) -> bool {
        self.samples >= MIN_SAMPLES && self.changed_fraction > Self::STALE_FRACTION
    }
}
