//! Temporal smoothing of alpha: off, the one-frame-delay (OFD) filter of the MODNet paper, or an
//! exponential moving average.

pub use crate::frame::Guide;
use crate::frame::Matte;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum TemporalMode {
    /// Each frame's alpha as the model gave it.
    #[default]
    Off,
    /// One-frame delay: a pixel whose neighbours in time agree and that differs from both takes their mean.
    Ofd,
    /// Exponential moving average: smooth, but lags behind fast motion.
    Ema,
    /// Motion-gated average: where the picture stood still since the last frame, alpha moves only part of
    /// the way to the new prediction; where the picture changed, it follows the model at once. No delay.
    Adaptive,
}

/// Tolerance of the OFD filter: neighbours "agree" within it, the middle "differs" beyond it.
pub const OFD_TOLERANCE: f32 = 0.1;
/// Weight of the newest frame in the EMA.
pub const EMA_WEIGHT: f32 = 0.5;

/// One-frame-delay filter of alpha(t) given alpha(t-1) and alpha(t+1), into `out`.
/// Returns how many pixels were replaced.
pub fn ofd(prev: &[f32], cur: &[f32], next: &[f32], tolerance: f32, out: &mut [f32]) -> usize {
    assert!(prev.len() == cur.len() && next.len() == cur.len() && out.len() == cur.len(), "alpha sizes differ");
    let mut replaced = 0;
    for (((o, &p), &c), &n) in out.iter_mut().zip(prev).zip(cur).zip(next) {
        if (p - n).abs() <= tolerance && (c - p).abs() > tolerance && (c - n).abs() > tolerance {
            *o = 0.5 * (p + n);
            replaced += 1;
        } else {
            *o = c;
        }
    }
    replaced
}

/// `out = weight * cur + (1 - weight) * prev`.
pub fn ema(prev: &[f32], cur: &[f32], weight: f32, out: &mut [f32]) {
    assert!(prev.len() == cur.len() && out.len() == cur.len(), "alpha sizes differ");
    for ((o, &p), &c) in out.iter_mut().zip(prev).zip(cur) {
        *o = weight * c + (1.0 - weight) * p;
    }
}

/// Weight of the new prediction where the picture stood still (adaptive mode).
/// Alpha as a filter may keep it: NaN and negative infinity become 0, positive infinity 1, and
/// everything is clamped to [0, 1] (`f32::clamp` passes NaN through).
pub fn sanitize(alpha: &mut [f32]) {
    for a in alpha {
        *a = if a.is_nan() { 0.0 } else { a.clamp(0.0, 1.0) };
    }
}

pub const ADAPTIVE_STILL_WEIGHT: f32 = 0.5;
/// Grey-level change (after a 3x3 mean, in 8-bit levels) below which a pixel counts as still, and above
/// which it counts as moving; in between the weight ramps.
pub const ADAPTIVE_STILL_LEVELS: f32 = 2.0;
pub const ADAPTIVE_MOVING_LEVELS: f32 = 8.0;

/// A payload that may carry the picture its matte was made from.
pub trait HasGuide {
    fn guide(&self) -> Option<Guide<'_>>;
}

impl HasGuide for () {
    fn guide(&self) -> Option<Guide<'_>> {
        None
    }
}

impl HasGuide for crate::frame::Frame {
    fn guide(&self) -> Option<Guide<'_>> {
        Some(crate::frame::Frame::guide(self))
    }
}

/// Alpha change below which the model is taken to jitter, and above which to see a real change, whatever
/// the picture did (adaptive mode): edges whose colours match the background barely change grey level.
pub const ADAPTIVE_JITTER_ALPHA: f32 = 0.05;
pub const ADAPTIVE_CHANGE_ALPHA: f32 = 0.25;

/// Motion-gated update: `out = prev + w * (cur - prev)`, `w` from [`ADAPTIVE_STILL_WEIGHT`] (still pixel,
/// small alpha change) to 1 (the picture moved there, or the model's alpha changed a lot).
pub fn adaptive(prev: &[f32], cur: &[f32], grey_prev: &[f32], grey: &[f32], out: &mut [f32]) {
    let span = ADAPTIVE_MOVING_LEVELS - ADAPTIVE_STILL_LEVELS;
    let alpha_span = ADAPTIVE_CHANGE_ALPHA - ADAPTIVE_JITTER_ALPHA;
    for i in 0..cur.len() {
        let picture = (((grey[i] - grey_prev[i]).abs() - ADAPTIVE_STILL_LEVELS) / span).clamp(0.0, 1.0);
        let model = (((cur[i] - prev[i]).abs() - ADAPTIVE_JITTER_ALPHA) / alpha_span).clamp(0.0, 1.0);
        let motion = picture.max(model);
        let weight = ADAPTIVE_STILL_WEIGHT + (1.0 - ADAPTIVE_STILL_WEIGHT) * motion;
        out[i] = prev[i] + weight * (cur[i] - prev[i]);
    }
}

/// Buffers for the grey level of the pictures (adaptive mode), kept between frames.
#[derive(Default)]
struct GreyScratch {
    full: Vec<f32>,
    small: Vec<f32>,
    resampler: Option<crate::resample::Resampler>,
}

impl GreyScratch {
    /// Grey level of `guide` at `width x height` (area resampled), smoothed by a 3x3 mean against sensor
    /// noise, into `out`.
    fn grey(&mut self, guide: &Guide, width: u32, height: u32, out: &mut Vec<f32>) {
        use crate::resample::{ResampleKind, Resampler};
        self.full.clear();
        self.full
            .extend(guide.rgb.chunks_exact(3).map(|p| 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32));
        let (w, h) = (width as usize, height as usize);
        self.small.resize(w * h, 0.0);
        if (guide.width, guide.height) == (width, height) {
            self.small.copy_from_slice(&self.full);
        } else {
            Resampler::reuse(&mut self.resampler, ResampleKind::Area, guide.width, guide.height, width, height)
                .gray_f32(&self.full, &mut self.small);
        }
        out.resize(w * h, 0.0);
        for y in 0..h {
            for x in 0..w {
                let (mut sum, mut n) = (0.0, 0.0);
                for yy in y.saturating_sub(1)..(y + 2).min(h) {
                    for xx in x.saturating_sub(1)..(x + 2).min(w) {
                        sum += self.small[yy * w + xx];
                        n += 1.0;
                    }
                }
                out[y * w + x] = sum / n;
            }
        }
    }
}

/// Applies a [`TemporalMode`] to a stream of mattes, each carried with a payload (its frame).
///
/// OFD holds one matte back: `push` of frame t+1 releases frame t, and `flush` releases the last one.
pub struct TemporalFilter<P> {
    mode: TemporalMode,
    pending: Option<(P, Matte)>,
    /// Raw alpha of the frame before `pending` (OFD) or the last output (EMA, adaptive); empty when there
    /// is none.
    previous: Vec<f32>,
    scratch: Vec<f32>,
    /// Adaptive mode: grey level of the previous and current picture at matte size.
    grey_previous: Vec<f32>,
    grey: Vec<f32>,
    grey_scratch: GreyScratch,
    /// Pixels replaced by OFD so far.
    pub replaced_pixels: u64,
}

impl<P: HasGuide> TemporalFilter<P> {
    pub fn new(mode: TemporalMode) -> Self {
        Self {
            mode,
            pending: None,
            previous: Vec::new(),
            scratch: Vec::new(),
            grey_previous: Vec::new(),
            grey: Vec::new(),
            grey_scratch: GreyScratch::default(),
            replaced_pixels: 0,
        }
    }

    pub fn mode(&self) -> TemporalMode {
        self.mode
    }

    /// How many frames `push` holds back.
    pub fn delay_frames(&self) -> u32 {
        u32::from(self.mode == TemporalMode::Ofd)
    }

    /// Forgets history (source change, seek): the next frame is treated as a first frame.
    pub fn reset(&mut self) {
        self.previous.clear();
        self.grey_previous.clear();
    }

    /// Feeds the next matte; returns the matte that is ready, if any.
    pub fn push(&mut self, payload: P, mut matte: Matte) -> Option<(P, Matte)> {
        // What a filter keeps must be a number in [0, 1]: one NaN would stay in EMA's memory for good.
        sanitize(&mut matte.alpha);
        match self.mode {
            TemporalMode::Off => Some((payload, matte)),
            TemporalMode::Adaptive => {
                let Some(guide) = payload.guide() else {
                    // Without a picture every pixel counts as moving: the model's alpha as it is.
                    return Some((payload, matte));
                };
                self.grey_scratch.grey(&guide, matte.width, matte.height, &mut self.grey);
                if self.previous.len() == matte.alpha.len() && self.grey_previous.len() == self.grey.len() {
                    self.scratch.clone_from(&matte.alpha);
                    adaptive(&self.previous, &self.scratch, &self.grey_previous, &self.grey, &mut matte.alpha);
                }
                self.previous.clone_from(&matte.alpha);
                std::mem::swap(&mut self.grey_previous, &mut self.grey);
                Some((payload, matte))
            }
            TemporalMode::Ema => {
                if self.previous.len() == matte.alpha.len() {
                    self.scratch.clone_from(&matte.alpha);
                    ema(&self.previous, &self.scratch, EMA_WEIGHT, &mut matte.alpha);
                }
                self.previous.clone_from(&matte.alpha);
                Some((payload, matte))
            }
            TemporalMode::Ofd => {
                let (ready_payload, mut ready) = self.pending.replace((payload, matte))?;
                let next = &self.pending.as_ref().expect("just set").1.alpha;
                // The raw alpha of `ready` becomes the previous frame of the next call.
                self.scratch.clone_from(&ready.alpha);
                if self.previous.len() == ready.alpha.len() && next.len() == ready.alpha.len() {
                    let replaced = ofd(&self.previous, &self.scratch, next, OFD_TOLERANCE, &mut ready.alpha);
                    self.replaced_pixels += replaced as u64;
                }
                std::mem::swap(&mut self.previous, &mut self.scratch);
                Some((ready_payload, ready))
            }
        }
    }

    /// At the end of a stream: releases the matte still held back, unchanged (it has no next frame).
    pub fn flush(&mut self) -> Option<(P, Matte)> {
        self.reset();
        self.pending.take()
    }
}
