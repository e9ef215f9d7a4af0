//! Temporal smoothing of alpha: off, the one-frame-delay (OFD) filter of the MODNet paper, or an
//! exponential moving average.

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

/// Applies a [`TemporalMode`] to a stream of mattes, each carried with a payload (its frame).
///
/// OFD holds one matte back: `push` of frame t+1 releases frame t, and `flush` releases the last one.
pub struct TemporalFilter<P> {
    mode: TemporalMode,
    pending: Option<(P, Matte)>,
    /// Raw alpha of the frame before `pending` (OFD) or the last output (EMA); empty when there is none.
    previous: Vec<f32>,
    scratch: Vec<f32>,
    /// Pixels replaced by OFD so far.
    pub replaced_pixels: u64,
}

impl<P> TemporalFilter<P> {
    pub fn new(mode: TemporalMode) -> Self {
        Self { mode, pending: None, previous: Vec::new(), scratch: Vec::new(), replaced_pixels: 0 }
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
    }

    /// Feeds the next matte; returns the matte that is ready, if any.
    pub fn push(&mut self, payload: P, mut matte: Matte) -> Option<(P, Matte)> {
        match self.mode {
            TemporalMode::Off => Some((payload, matte)),
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
        self.previous.clear();
        self.pending.take()
    }
}
