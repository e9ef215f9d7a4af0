//! A stand-in model for tests of everything around the model: deterministic (the same frame always gives
//! the same matte) and as slow as asked, so that engine, window and recording tests hold on any machine.
//! It mattes what the synthetic scene draws as its "person" (the warm disc of
//! `source::synthetic::SyntheticSource`), at half the frame's resolution so upsampling runs too.
//!
//! The tests choose it directly, or for a whole process with `MATTECAM_TEST_MATTER_DELAY_MS` (any model
//! asked for is then this one, taking that many milliseconds a frame).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::{InferError, Matter, ModelKind, ProviderInUse, Work};
use crate::frame::{Frame, Matte};

/// The variable that makes every model a [`SyntheticMatter`] with this delay, in milliseconds.
pub const DELAY_ENV: &str = "MATTECAM_TEST_MATTER_DELAY_MS";
/// With [`DELAY_ENV`]: opening the stand-in waits until this file exists (a model that loads for as long as
/// a test wants, whatever the machine's speed).
pub const LOAD_GATE_ENV: &str = "MATTECAM_TEST_MATTER_LOAD_GATE";

/// The disc's colour in the synthetic scene.
const PERSON: [u8; 3] = [240, 200, 160];

pub struct SyntheticMatter {
    kind: ModelKind,
    /// Microseconds a frame at full work; shared, so a test can make the model slower mid-run.
    delay_us: Arc<AtomicU64>,
    /// The work asked for ([`Work::cost_fraction`]): the delay scales with it, as a real model's time
    /// scales with its input size.
    work_fraction: f64,
    /// A fixed factor on the delay (the stand-in's "INT8 file" is faster).
    cost_factor: f64,
    provider: ProviderInUse,
}

impl SyntheticMatter {
    /// Stands in for `kind`, taking `delay` a frame.
    pub fn new(kind: ModelKind, delay: Duration) -> Self {
        Self::with_shared_delay(kind, Arc::new(AtomicU64::new(delay.as_micros() as u64)))
    }

    /// Takes the microseconds in `delay_us` a frame (at full work), read afresh for each frame.
    pub fn with_shared_delay(kind: ModelKind, delay_us: Arc<AtomicU64>) -> Self {
        Self {
            kind,
            delay_us,
            work_fraction: 1.0,
            cost_factor: 1.0,
            provider: ProviderInUse::cpu(Some("test matter".into())),
        }
    }

    /// Takes `factor` times as long.
    pub fn with_cost_factor(mut self, factor: f64) -> Self {
        self.cost_factor = factor;
        self
    }

    fn delay(&self) -> Duration {
        let us = self.delay_us.load(Ordering::SeqCst) as f64 * self.work_fraction * self.cost_factor;
        Duration::from_secs_f64(us * 1e-6)
    }

    /// The stand-in [`DELAY_ENV`] asks for, if it is set.
    pub fn from_env(kind: ModelKind) -> Option<Self> {
        let ms: u64 = std::env::var(DELAY_ENV).ok()?.trim().parse().ok()?;
        if let Some(gate) = std::env::var_os(LOAD_GATE_ENV) {
            while !std::path::Path::new(&gate).exists() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        Some(Self::new(kind, Duration::from_millis(ms)))
    }

    /// The alpha this matter gives a pixel.
    pub fn alpha_of(rgb: &[u8]) -> f32 {
        let near = rgb.iter().zip(PERSON).all(|(&v, p)| v.abs_diff(p) <= 8);
        if near { 1.0 } else { 0.0 }
    }
}

impl Matter for SyntheticMatter {
    fn infer(&mut self, frame: &Frame, out: &mut Matte) -> Result<(), InferError> {
        let delay = self.delay();
        std::thread::sleep(delay);
        let (w, h) = ((frame.width / 2).max(1), (frame.height / 2).max(1));
        out.seq = frame.seq;
        (out.width, out.height) = (w, h);
        out.alpha.clear();
        for y in 0..h {
            for x in 0..w {
                let i = ((2 * y).min(frame.height - 1) * frame.width + (2 * x).min(frame.width - 1)) as usize * 3;
                out.alpha.push(Self::alpha_of(&frame.rgb[i..i + 3]));
            }
        }
        out.foreground = None;
        // Its nominal cost, not the time it took: what the governor sees must not depend on how loaded
        // the machine running the test is.
        out.model_ms = delay.as_secs_f64() * 1000.0;
        out.infer_ms = out.model_ms;
        Ok(())
    }

    fn run_model_only(&mut self) -> Result<(), InferError> {
        std::thread::sleep(self.delay());
        Ok(())
    }

    fn reset(&mut self) {}

    fn set_work(&mut self, work: Work) {
        self.work_fraction = f64::from(work.cost_fraction);
    }

    fn kind(&self) -> ModelKind {
        self.kind
    }

    fn provider(&self) -> &ProviderInUse {
        &self.provider
    }
}
