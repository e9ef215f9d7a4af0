//! `mattecam eval`: matte quality measured the way the matting papers measure it, on data with exact
//! ground truth (and flicker on real video, which has none).

pub mod dataset;
pub mod metrics;
pub mod perturb;
pub mod report;
pub mod synth;

use std::path::{Path, PathBuf};

use crate::compositor::{AlphaStage, CompositorError};
use crate::filter::temporal::{TemporalFilter, TemporalMode};
use crate::frame::{Frame, Matte};
use crate::infer::{InferError, Matter};
use crate::paths::display;
use crate::plate::Plate;
use crate::source::{FrameSource, SourceError};
use dataset::{EvalImage, EvalSet};
use metrics::Plane;
pub use perturb::Perturbation;
pub use report::{ItemScores, Report};

#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{} cannot be used for evaluation ({reason})", display(.path))]
    BadInput { path: PathBuf, reason: String },
    #[error("{} is not an evaluation set: it needs `com/` (inputs) and `pha/` (ground-truth alpha) with matching file names", display(.0))]
    BadLayout(PathBuf),
    #[error("writing {}: {reason}", display(.path))]
    Write { path: PathBuf, reason: String },
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Composite(#[from] CompositorError),
}

/// Which pixels the metrics cover.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Region {
    /// Every pixel.
    Whole,
    /// The unknown band of a trimap made from the ground truth (10 px each side of the soft edge).
    Trimap,
}

/// Width of each side of the trimap's unknown band, in pixels.
pub const TRIMAP_RADIUS_PX: usize = 10;

/// How predictions are made, as `process` makes them.
pub struct Predictor {
    pub matter: Box<dyn Matter>,
    pub temporal: TemporalMode,
    /// Alpha to image size, on the CPU or with the GPU compositor's shaders.
    pub alpha: AlphaStage,
    /// Give the model each sample's own background (perturbed so) as its plate.
    pub sample_plate: Option<Perturbation>,
}

/// Sets `matter`'s plate from `image`'s background, when the plates come from the samples.
fn plate_from(matter: &mut dyn Matter, sample_plate: Option<Perturbation>, image: &EvalImage) -> Result<(), EvalError> {
    let Some(perturbation) = sample_plate else { return Ok(()) };
    let Some(bgr) = &image.bgr else {
        return Err(EvalError::BadInput {
            path: PathBuf::from(&image.name),
            reason: "no clean background (`bgr/`) to use as the plate".to_string(),
        });
    };
    let plate = perturbation.apply(&Plate { width: image.width, height: image.height, rgb: bgr.clone() });
    matter.set_plate(Some((plate.width, plate.height, &plate.rgb)));
    Ok(())
}

/// Runs the model on one image and returns alpha at image size, 8-bit as the app outputs it.
fn predict_still(matter: &mut dyn Matter, upsampler: &mut AlphaStage, image: &EvalImage) -> Result<Vec<u8>, EvalError> {
    let frame = frame_of(image, 0);
    let mut matte = Matte::default();
    matter.reset();
    matter.infer(&frame, &mut matte)?;
    let mut alpha = Vec::new();
    upsampler.upsample_u8(&matte, image.guide(), &mut alpha)?;
    Ok(alpha)
}

fn frame_of(image: &EvalImage, seq: u64) -> Frame {
    Frame {
        seq,
        captured_at: std::time::Instant::now(),
        pts_ms: 0.0,
        width: image.width,
        height: image.height,
        rgb: image.com.clone(),
    }
}

fn unit(alpha: &[u8]) -> Vec<f64> {
    alpha.iter().map(|a| *a as f64 / 255.0).collect()
}

/// The metrics of one prediction against its ground truth.
pub fn score(name: &str, pred: &[u8], gt: &[u8], width: u32, height: u32, region: Region) -> ItemScores {
    let (w, h) = (width as usize, height as usize);
    let mask = match region {
        Region::Whole => None,
        Region::Trimap => Some(metrics::unknown_band(gt, w, h, TRIMAP_RADIUS_PX)),
    };
    let (p, g) = (unit(pred), unit(gt));
    let (pp, gp) = (Plane::new(w, h, &p), Plane::new(w, h, &g));
    let m = mask.as_deref();
    ItemScores {
        name: name.to_string(),
        width,
        height,
        sad: metrics::sad(&p, &g, m),
        mse_x1e3: metrics::mse(&p, &g, m) * 1e3,
        mad_x1e3: metrics::mad(&p, &g, m) * 1e3,
        grad: metrics::grad(&pp, &gp, m),
        conn: metrics::conn(&pp, &gp, m),
        dtssd_x100: None,
        flicker_x1e3: None,
    }
}

/// Where the predictions and comparison images go, if anywhere.
pub struct SaveTo<'a>(pub Option<&'a Path>);

impl SaveTo<'_> {
    fn save(&self, name: &str, image: &EvalImage, pred: &[u8]) -> Result<(), EvalError> {
        let Some(dir) = self.0 else { return Ok(()) };
        report::save_prediction(dir, name, image.width, image.height, pred, &image.pha)
    }
}

/// Scores each still independently (recurrent state reset before each).
pub fn eval_stills(
    predictor: &mut Predictor,
    items: &[dataset::ItemSource],
    region: Region,
    save: &SaveTo,
    mut progress: impl FnMut(&ItemScores),
) -> Result<Vec<ItemScores>, EvalError> {
    let mut scores = Vec::new();
    for item in items {
        let image = item.load()?;
        plate_from(predictor.matter.as_mut(), predictor.sample_plate, &image)?;
        let pred = predict_still(predictor.matter.as_mut(), &mut predictor.alpha, &image)?;
        save.save(&image.name, &image, &pred)?;
        let s = score(&image.name, &pred, &image.pha, image.width, image.height, region);
        progress(&s);
        scores.push(s);
    }
    Ok(scores)
}

/// Scores a clip frame by frame, in order, through the temporal filter, with dtSSD between frames.
pub fn eval_clip(
    predictor: &mut Predictor,
    name: &str,
    frames: &[dataset::ItemSource],
    region: Region,
    save: &SaveTo,
    mut progress: impl FnMut(&ItemScores),
) -> Result<Vec<ItemScores>, EvalError> {
    predictor.matter.reset();
    let mut filter: TemporalFilter<EvalImage> = TemporalFilter::new(predictor.temporal);
    let upsampler = &mut predictor.alpha;
    let mut scores = Vec::new();
    // The previous frame's prediction and truth in [0, 1], kept so each frame is converted once.
    let mut previous: Option<(Vec<f64>, Vec<f64>)> = None;
    let mut finish = |image: EvalImage, matte: Matte, scores: &mut Vec<ItemScores>| -> Result<(), EvalError> {
        let mut pred = Vec::new();
        upsampler.upsample_u8(&matte, image.guide(), &mut pred)?;
        let item_name = format!("{name}/{}", image.name);
        save.save(&item_name, &image, &pred)?;
        let mut s = score(&item_name, &pred, &image.pha, image.width, image.height, region);
        let (pred, gt) = (unit(&pred), unit(&image.pha));
        if let Some((prev_pred, prev_gt)) = &previous {
            s.dtssd_x100 = Some(metrics::dtssd(&pred, prev_pred, &gt, prev_gt));
        }
        progress(&s);
        scores.push(s);
        previous = Some((pred, gt));
        Ok(())
    };
    for (t, item) in frames.iter().enumerate() {
        let image = item.load()?;
        if t == 0 {
            plate_from(predictor.matter.as_mut(), predictor.sample_plate, &image)?;
        }
        let mut matte = Matte::default();
        predictor.matter.infer(&frame_of(&image, t as u64), &mut matte)?;
        if let Some((image, matte)) = filter.push(image, matte) {
            finish(image, matte, &mut scores)?;
        }
    }
    if let Some((image, matte)) = filter.flush() {
        finish(image, matte, &mut scores)?;
    }
    Ok(scores)
}

/// No-reference flicker of the first `max_frames` frames of a video: alpha change where the picture stood
/// still.
pub fn eval_flicker(
    predictor: &mut Predictor,
    source: &mut dyn FrameSource,
    max_frames: Option<u64>,
    mut progress: impl FnMut(&ItemScores),
) -> Result<Vec<ItemScores>, EvalError> {
    predictor.matter.reset();
    let mut filter: TemporalFilter<Frame> = TemporalFilter::new(predictor.temporal);
    let upsampler = &mut predictor.alpha;
    let mut scores = Vec::new();
    let mut previous: Option<(Vec<f64>, Vec<u8>)> = None;
    let mut finish = |frame: Frame, matte: Matte, scores: &mut Vec<ItemScores>| -> Result<(), EvalError> {
        let mut alpha = Vec::new();
        upsampler.upsample_u8(&matte, frame.guide(), &mut alpha)?;
        let alpha = unit(&alpha);
        let mut grey = Vec::new();
        metrics::grey_from_rgb(&frame.rgb, &mut grey);
        let flicker = previous.as_ref().and_then(|(pa, pg)| metrics::flicker(&alpha, pa, &grey, pg));
        let s = ItemScores::flicker_only(format!("{:06}", frame.seq), frame.width, frame.height, flicker);
        progress(&s);
        scores.push(s);
        previous = Some((alpha, grey));
        Ok(())
    };
    let mut read = 0;
    while max_frames.is_none_or(|max| read < max) {
        let Some(frame) = source.next_frame(Vec::new())? else { break };
        read += 1;
        let mut matte = Matte::default();
        predictor.matter.infer(&frame, &mut matte)?;
        if let Some((frame, matte)) = filter.push(frame, matte) {
            finish(frame, matte, &mut scores)?;
        }
    }
    if let Some((frame, matte)) = filter.flush() {
        finish(frame, matte, &mut scores)?;
    }
    Ok(scores)
}

/// Evaluates a set (stills or a clip).
pub fn eval_set(
    predictor: &mut Predictor,
    set: &EvalSet,
    region: Region,
    save: &SaveTo,
    progress: impl FnMut(&ItemScores),
) -> Result<Vec<ItemScores>, EvalError> {
    match set {
        EvalSet::Stills(items) => eval_stills(predictor, items, region, save, progress),
        EvalSet::Clip { name, frames } => eval_clip(predictor, name, frames, region, save, progress),
    }
}
