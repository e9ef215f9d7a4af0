//! Evaluation data: folders in the layout of the RVM and BGMv2 evaluation sets, or samples generated from
//! cutouts.

use std::path::{Path, PathBuf};

use super::EvalError;
use super::synth::{self, Cutout, Rng};

/// One input image with its exact alpha.
pub struct EvalImage {
    /// File name without extension (dataset) or a generated name.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub com: Vec<u8>,
    pub pha: Vec<u8>,
    /// Clean plate, when the set has one.
    pub bgr: Option<Vec<u8>>,
}

impl EvalImage {
    pub fn guide(&self) -> crate::frame::Guide<'_> {
        crate::frame::Guide { rgb: &self.com, width: self.width, height: self.height }
    }
}

impl crate::filter::temporal::HasGuide for EvalImage {
    fn guide(&self) -> Option<crate::frame::Guide<'_>> {
        Some(EvalImage::guide(self))
    }
}

/// A set of images, evaluated one by one (`Stills`) or in order as one clip (`Clip`).
pub enum EvalSet {
    Stills(Vec<ItemSource>),
    Clip { name: String, frames: Vec<ItemSource> },
}

impl EvalSet {
    pub fn len(&self) -> usize {
        match self {
            Self::Stills(items) => items.len(),
            Self::Clip { frames, .. } => frames.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How to get an image when its turn comes (so a long clip is never all in memory).
pub enum ItemSource {
    Files { name: String, com: PathBuf, pha: PathBuf, bgr: Option<PathBuf> },
    Generated(Box<dyn Fn() -> Result<EvalImage, EvalError> + Send + Sync>),
}

impl ItemSource {
    pub fn load(&self) -> Result<EvalImage, EvalError> {
        match self {
            Self::Files { name, com, pha, bgr } => {
                let (width, height, com_rgb) = read_rgb(com)?;
                let pha_image = image::open(pha)
                    .map_err(|err| EvalError::BadInput { path: pha.clone(), reason: err.to_string() })?
                    .into_luma8();
                if pha_image.dimensions() != (width, height) {
                    return Err(EvalError::BadInput {
                        path: pha.clone(),
                        reason: format!("it is {:?} but its input is {width}x{height}", pha_image.dimensions()),
                    });
                }
                let bgr = bgr.as_ref().map(|p| read_rgb(p).map(|(_, _, rgb)| rgb)).transpose()?;
                Ok(EvalImage { name: name.clone(), width, height, com: com_rgb, pha: pha_image.into_raw(), bgr })
            }
            Self::Generated(make) => make(),
        }
    }
}

fn read_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>), EvalError> {
    let image = image::open(path)
        .map_err(|err| EvalError::BadInput { path: path.to_path_buf(), reason: err.to_string() })?
        .into_rgb8();
    let (w, h) = image.dimensions();
    Ok((w, h, image.into_raw()))
}

fn image_files(dir: &Path) -> Result<Vec<PathBuf>, EvalError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|err| EvalError::BadInput { path: dir.to_path_buf(), reason: err.to_string() })?;
    let mut files: Vec<PathBuf> =
        entries.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| crate::source::is_image_path(p)).collect();
    files.sort();
    Ok(files)
}

/// Reads a folder with `com/` and `pha/` (and optionally `bgr/`), files matched by name. It is a clip when
/// every name is a frame index (`0000.png`), stills otherwise, or stills when `force_stills`.
pub fn read_folder(dir: &Path, force_stills: bool) -> Result<EvalSet, EvalError> {
    let com_dir = dir.join("com");
    let pha_dir = dir.join("pha");
    for needed in [&com_dir, &pha_dir] {
        if !needed.is_dir() {
            return Err(EvalError::BadLayout(dir.to_path_buf()));
        }
    }
    let bgr_dir = dir.join("bgr");
    let mut items = Vec::new();
    let mut all_indices = true;
    for com in image_files(&com_dir)? {
        let stem = com.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let file = com.file_name().expect("a file").to_owned();
        let pha = pha_dir.join(&file);
        if !pha.is_file() {
            return Err(EvalError::BadInput { path: pha, reason: "its ground-truth alpha is missing".into() });
        }
        let bgr = Some(bgr_dir.join(&file)).filter(|p| p.is_file());
        all_indices &= !stem.is_empty() && stem.chars().all(|c| c.is_ascii_digit());
        items.push(ItemSource::Files { name: stem, com, pha, bgr });
    }
    if items.is_empty() {
        return Err(EvalError::BadLayout(dir.to_path_buf()));
    }
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "clip".into());
    Ok(if all_indices && !force_stills { EvalSet::Clip { name, frames: items } } else { EvalSet::Stills(items) })
}

/// Where generated samples come from.
#[derive(Clone, Debug)]
pub struct SynthSpec {
    pub cutouts: Vec<PathBuf>,
    pub backgrounds: Vec<PathBuf>,
    pub width: u32,
    pub height: u32,
    pub seed: u64,
    /// Camera-like noise on the composites: sensor noise sigma (levels) and JPEG quality.
    pub noise: Option<(f64, u8)>,
}

/// Every cutout over every background, each placed at a random (seeded) height and position.
pub fn generated_stills(spec: &SynthSpec) -> Vec<ItemSource> {
    let mut rng = Rng::new(spec.seed);
    let mut items = Vec::new();
    for cutout_path in &spec.cutouts {
        for background in &spec.backgrounds {
            let (bg_x, height_frac, centre_x) = (rng.uniform(0.2, 0.8), rng.uniform(0.6, 0.95), rng.uniform(0.3, 0.7));
            let noise_seed = rng.next_u64();
            let name = format!("{}_{}", stem(cutout_path), stem(background));
            let (cutout_path, background) = (cutout_path.clone(), background.clone());
            let (w, h, noise) = (spec.width, spec.height, spec.noise);
            items.push(ItemSource::Generated(Box::new(move || {
                let cutout = Cutout::load(&cutout_path)?;
                let bgr = synth::cover_background(&background, w, h, bg_x)?;
                let place = synth::placement(&cutout, w, h, height_frac, centre_x);
                let sample = synth::compose(&cutout, &bgr, w, h, place);
                Ok(to_image(name.clone(), sample, noise, noise_seed))
            })));
        }
    }
    items
}

/// One clip per cutout (over the backgrounds in turn), `frames` long, the person moving over a static
/// background.
pub fn generated_clips(spec: &SynthSpec, frames: usize) -> Vec<(String, Vec<ItemSource>)> {
    let mut rng = Rng::new(spec.seed);
    spec.cutouts
        .iter()
        .enumerate()
        .map(|(i, cutout_path)| {
            let background = spec.backgrounds[i % spec.backgrounds.len()].clone();
            let clip_name = format!("{}_{}", stem(cutout_path), stem(&background));
            let shared = std::sync::Arc::new(std::sync::OnceLock::new());
            let items = (0..frames)
                .map(|t| {
                    let (cutout_path, background, shared) = (cutout_path.clone(), background.clone(), shared.clone());
                    let (w, h, noise) = (spec.width, spec.height, spec.noise);
                    let noise_seed = rng.next_u64();
                    ItemSource::Generated(Box::new(move || {
                        // The cutout and background are loaded once per clip.
                        let loaded: &Result<(Cutout, Vec<u8>), String> = shared.get_or_init(|| {
                            let cutout = Cutout::load(&cutout_path).map_err(|e| e.to_string())?;
                            let bgr = synth::cover_background(&background, w, h, 0.5).map_err(|e| e.to_string())?;
                            Ok((cutout, bgr))
                        });
                        let (cutout, bgr) = loaded.as_ref().map_err(|reason| EvalError::BadInput {
                            path: cutout_path.clone(),
                            reason: reason.clone(),
                        })?;
                        let place = synth::clip_placement(cutout, w, h, t, frames);
                        let sample = synth::compose(cutout, bgr, w, h, place);
                        Ok(to_image(format!("{t:04}"), sample, noise, noise_seed))
                    })) as ItemSource
                })
                .collect();
            (clip_name, items)
        })
        .collect()
}

fn to_image(name: String, sample: synth::Sample, noise: Option<(f64, u8)>, noise_seed: u64) -> EvalImage {
    let mut com = sample.com;
    if let Some((sigma, quality)) = noise {
        synth::add_camera_noise(&mut com, sample.width, sample.height, sigma, quality, &mut Rng::new(noise_seed));
    }
    EvalImage { name, width: sample.width, height: sample.height, com, pha: sample.pha, bgr: Some(sample.bgr) }
}

fn stem(path: &Path) -> String {
    path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default()
}

/// The image files a path names: the file itself, or a folder's PNG and JPEG files in name order.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, EvalError> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            out.extend(image_files(path)?);
        } else if path.is_file() {
            out.push(path.clone());
        } else {
            return Err(EvalError::BadInput { path: path.clone(), reason: "it does not exist".into() });
        }
    }
    Ok(out)
}
