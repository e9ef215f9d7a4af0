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
        let (width, height, rgb) = crate::imageio::load_rgb(path)
            .map_err(|err| PlateError::Unreadable { path: path.to_path_buf(), reason: err.to_string() })?;
        Ok(Self { width, height, rgb })
    }

    pub fn save(&self, path: &Path) -> Result<(), PlateError> {
        crate::imageio::write_png(path, self.width, self.height, 3, &self.rgb)
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
