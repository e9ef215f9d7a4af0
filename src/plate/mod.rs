//! The clean background plate: a picture of the scene without the person. Captured by averaging frames
//! (`average`), kept in step with the camera's exposure (`gain`), checked for staleness, and used by BGMv2
//! as its second input and by every model to push alpha toward 0 where the frame shows the plate
//! (`assist`).

pub mod assist;
pub mod average;
pub mod gain;
pub mod matter;

use std::path::{Path, PathBuf};

pub use assist::{AssistSettings, assist_alpha};
pub use average::PlateAverager;
pub use gain::{GainOffset, Staleness};
pub use matter::{PlateCheck, PlateOptions, PlatedMatter};

use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum PlateError {
    #[error("plate {}: {reason}", display(.path))]
    Unreadable { path: PathBuf, reason: String },
    #[error(
        "the plate is {plate_width}x{plate_height} but the frames are {width}x{height}; capture a plate at this resolution"
    )]
    SizeMismatch { plate_width: u32, plate_height: u32, width: u32, height: u32 },
    #[error("could not save the plate to {}: {reason}", display(.path))]
    Save { path: PathBuf, reason: String },
}

/// Frames a plate is the median of, unless the user says otherwise.
pub const DEFAULT_PLATE_FRAMES: usize = 30;

/// A clean background plate, packed RGB at the frame size.
#[derive(Clone, Debug, PartialEq)]
pub struct Plate {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Plate {
    /// Loads a plate image (PNG or JPEG); it must have the frames' size, since a rescaled plate no longer
    /// lines up with the scene.
    pub fn load(path: &Path) -> Result<Self, PlateError> {
        let (width, height, rgb) = crate::source::image::load_rgb(path)
            .map_err(|err| PlateError::Unreadable { path: path.to_path_buf(), reason: err.to_string() })?;
        Ok(Self { width, height, rgb })
    }

    pub fn save(&self, path: &Path) -> Result<(), PlateError> {
        crate::sink::png::write_png(path, self.width, self.height, 3, &self.rgb)
            .map_err(|err| PlateError::Save { path: path.to_path_buf(), reason: err.to_string() })
    }

    pub fn check_size(&self, width: u32, height: u32) -> Result<(), PlateError> {
        if (self.width, self.height) == (width, height) {
            Ok(())
        } else {
            Err(PlateError::SizeMismatch { plate_width: self.width, plate_height: self.height, width, height })
        }
    }

    /// Where the window keeps the plate of one camera at one resolution, so it comes back next time.
    pub fn file_name(source: &str, width: u32, height: u32) -> String {
        let slug: String = source
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '-' })
            .collect::<String>()
            .split('-')
            .filter(|part| !part.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        format!("plate-{slug}-{width}x{height}.png")
    }
}

/// Alpha (at any grid) looked up at a frame pixel: the grid cell the pixel falls in.
#[derive(Clone, Copy)]
pub struct AlphaGrid<'a> {
    pub alpha: &'a [f32],
    pub width: u32,
    pub height: u32,
}

impl AlphaGrid<'_> {
    /// Frame pixel to grid index, for a frame of `frame_width` x `frame_height`.
    pub fn cell(&self, x: u32, y: u32, frame_width: u32, frame_height: u32) -> usize {
        let gx = (x as u64 * self.width as u64 / frame_width as u64) as usize;
        let gy = (y as u64 * self.height as u64 / frame_height as u64) as usize;
        gy * self.width as usize + gx
    }
}

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
