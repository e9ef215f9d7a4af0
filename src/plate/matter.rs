//! Any model with a plate: every frame, the plate is fitted to the camera's exposure on what the previous
//! frame's matte called background; BGMv2 gets the compensated plate as its second input, the others get
//! plate assistance (when on); the background the model is sure of is checked against the plate, and the
//! verdict is kept for whoever shows it ([`PlatedMatter::last_check`]).

use super::assist::AssistScratch;
use super::{AlphaGrid, AssistSettings, GainOffset, Plate, Staleness, assist_alpha};
use crate::composite::{AlphaUpsampler, Upsample};
use crate::frame::{Frame, Matte};
use crate::infer::{InferError, Matter, ModelKind, ProviderInUse};

/// A compensated plate that moved less than this (in levels, anywhere in the range) is not sent to BGMv2
/// again: converting a 1080p plate costs more than such a change is worth.
const REFEED_LEVELS: f32 = 0.75;

/// What the plate stage saw on one frame.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlateCheck {
    /// The exposure fit in use (the identity until enough background was seen).
    pub fit: GainOffset,
    pub staleness: Staleness,
    /// Whether plate assistance changed this frame's alpha.
    pub assisted: bool,
    /// Mean alpha over the frame, before assistance: how much of the picture the model calls person.
    pub coverage: f32,
}

/// Plate use, as the user sets it.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PlateOptions {
    /// Plate assistance for plate-free models (BGMv2 always uses the plate).
    pub assist: bool,
    pub assist_settings: AssistSettings,
}

impl Default for PlateOptions {
    fn default() -> Self {
        Self { assist: true, assist_settings: AssistSettings::default() }
    }
}

pub struct PlatedMatter {
    inner: Box<dyn Matter>,
    plate: Option<Plate>,
    options: PlateOptions,
    fit: GainOffset,
    /// The fit BGMv2 was last given the plate with.
    fed_fit: Option<GainOffset>,
    compensated: Vec<u8>,
    /// The previous frame's alpha: where to fit the next frame's exposure.
    previous_alpha: Vec<f32>,
    previous_size: (u32, u32),
    /// Assistance works at frame size: the model's alpha is brought there first.
    upsampler: AlphaUpsampler,
    full_alpha: Vec<f32>,
    scratch: AssistScratch,
    /// What the plate stage saw on the last frame (`None` when it had no plate for it).
    last_check: Option<PlateCheck>,
}

impl PlatedMatter {
    pub fn new(inner: Box<dyn Matter>, plate: Option<Plate>, options: PlateOptions) -> Self {
        Self {
            inner,
            plate,
            options,
            fit: GainOffset::default(),
            fed_fit: None,
            compensated: Vec::new(),
            previous_alpha: Vec::new(),
            previous_size: (0, 0),
            upsampler: AlphaUpsampler::new(Upsample::Bilinear),
            full_alpha: Vec::new(),
            scratch: AssistScratch::default(),
            last_check: None,
        }
    }

    /// What the plate stage saw on the last frame matted, when it had a plate for it.
    pub fn last_check(&self) -> Option<PlateCheck> {
        self.last_check
    }

    /// Replaces the plate (`None` removes it); the exposure fit starts over.
    pub fn replace_plate(&mut self, plate: Option<Plate>) {
        self.plate = plate;
        self.fit = GainOffset::default();
        self.fed_fit = None;
        self.previous_size = (0, 0);
        if self.plate.is_none() {
            self.inner.set_plate(None);
        }
    }

    pub fn set_options(&mut self, options: PlateOptions) {
        self.options = options;
    }

    /// BGMv2 without a plate cannot run: the caller shows the frame and asks for one.
    pub fn needs_plate(&self) -> bool {
        self.inner.kind() == ModelKind::Bgmv2 && self.plate.is_none()
    }

    /// Fits the exposure on the previous frame's background (all of the frame on the first one: the
    /// fit's second pass drops the person as outliers). The compensated plate is made only where it is
    /// used (a BGMv2 refeed, assistance).
    fn refit(&mut self, frame: &Frame, plate: &Plate) {
        let everything = [0.0f32];
        let guide = if self.previous_size == (0, 0) {
            AlphaGrid { alpha: &everything, width: 1, height: 1 }
        } else {
            AlphaGrid { alpha: &self.previous_alpha, width: self.previous_size.0, height: self.previous_size.1 }
        };
        if let Some(fit) = GainOffset::fit(&frame.rgb, plate, guide) {
            self.fit = fit;
        }
    }
}

/// Largest change of the compensated value over the 8-bit range between two fits.
fn fit_change(a: &GainOffset, b: &GainOffset) -> f32 {
    (0..3)
        .flat_map(|c| [0.0f32, 255.0].map(|v| (a.gain[c] * v + a.offset[c] - b.gain[c] * v - b.offset[c]).abs()))
        .fold(0.0, f32::max)
}

impl Matter for PlatedMatter {
    fn infer(&mut self, frame: &Frame, out: &mut Matte) -> Result<(), InferError> {
        self.last_check = None;
        let Some(plate) = self.plate.take() else {
            return self.inner.infer(frame, out);
        };
        let result = self.infer_with_plate(frame, &plate, out);
        self.plate = Some(plate);
        result
    }

    fn set_plate(&mut self, plate: Option<(u32, u32, &[u8])>) {
        self.replace_plate(plate.map(|(width, height, rgb)| Plate { width, height, rgb: rgb.to_vec() }));
    }

    fn run_model_only(&mut self) -> Result<(), InferError> {
        self.inner.run_model_only()
    }

    fn reset(&mut self) {
        self.inner.reset();
        self.previous_size = (0, 0);
    }

    fn set_work(&mut self, work: crate::infer::Work) {
        self.inner.set_work(work);
    }

    fn kind(&self) -> ModelKind {
        self.inner.kind()
    }

    fn provider(&self) -> &ProviderInUse {
        self.inner.provider()
    }
}

impl PlatedMatter {
    fn infer_with_plate(&mut self, frame: &Frame, plate: &Plate, out: &mut Matte) -> Result<(), InferError> {
        let takes_plate = self.inner.kind() == ModelKind::Bgmv2;
        if plate.check_size(frame.width, frame.height).is_err() {
            if takes_plate {
                return Err(InferError::PlateSize {
                    plate_width: plate.width,
                    plate_height: plate.height,
                    width: frame.width,
                    height: frame.height,
                });
            }
            // Another resolution than the plate's: the plate says nothing about these frames.
            return self.inner.infer(frame, out);
        }
        let started = std::time::Instant::now();
        self.refit(frame, plate);
        if takes_plate && self.fed_fit.is_none_or(|fed| fit_change(&fed, &self.fit) > REFEED_LEVELS) {
            self.fit.apply(plate, &mut self.compensated);
            self.inner.set_plate(Some((plate.width, plate.height, &self.compensated)));
            self.fed_fit = Some(self.fit);
        }
        self.inner.infer(frame, out)?;
        let grid = AlphaGrid { alpha: &out.alpha, width: out.width, height: out.height };
        let staleness = Staleness::measure(&frame.rgb, plate, &self.fit, grid);
        let coverage = out.alpha.iter().sum::<f32>() / out.alpha.len().max(1) as f32;
        self.previous_alpha.clear();
        self.previous_alpha.extend_from_slice(&out.alpha);
        self.previous_size = (out.width, out.height);
        let assisted = self.options.assist && !takes_plate;
        if assisted {
            self.fit.apply(plate, &mut self.compensated);
            self.upsampler.upsample_f32(out, frame.guide(), &mut self.full_alpha);
            assist_alpha(
                &mut self.full_alpha,
                &frame.rgb,
                &self.compensated,
                frame.width,
                frame.height,
                &self.options.assist_settings,
                &mut self.scratch,
            );
            std::mem::swap(&mut out.alpha, &mut self.full_alpha);
            (out.width, out.height) = (frame.width, frame.height);
        }
        // The plate's share of the work counts as inference: it is on the same thread, per frame.
        out.infer_ms = started.elapsed().as_secs_f64() * 1000.0;
        tracing::debug!("plate fit {:?}, {staleness:?}, coverage {coverage:.3}", self.fit);
        self.last_check = Some(PlateCheck { fit: self.fit, staleness, assisted, coverage });
        Ok(())
    }
}
