//! Image files in and out: decoding a PNG or JPEG to packed RGB, and writing 8-bit PNGs. The bottom layer
//! every module that touches image files uses; it imports nothing of ours but `paths`.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{ExtendedColorType, ImageEncoder};

use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("input {} does not exist; check the path", display(.0))]
    NotFound(PathBuf),
    #[error("reading {}: {source}", display(.path))]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{} is not a readable image ({reason}); use a PNG or JPEG file", display(.path))]
    Bad { path: PathBuf, reason: String },
    #[error("writing {} failed: {reason}", display(.path))]
    Write { path: PathBuf, reason: String },
}

/// Decodes an image file to packed RGB: `(width, height, pixels)`.
pub fn load_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>), ImageError> {
    if !path.exists() {
        return Err(ImageError::NotFound(path.to_path_buf()));
    }
    let io = |source| ImageError::Io { path: path.to_path_buf(), source };
    let reader = image::ImageReader::open(path).map_err(io)?.with_guessed_format().map_err(io)?;
    let image = reader
        .decode()
        .map_err(|err| ImageError::Bad { path: path.to_path_buf(), reason: err.to_string() })?
        .into_rgb8();
    let (width, height) = image.dimensions();
    Ok((width, height, image.into_raw()))
}

/// Writes 8-bit gray, RGB or RGBA pixels as a PNG file, synced to the disk.
pub fn write_png(path: &Path, width: u32, height: u32, channels: u8, pixels: &[u8]) -> Result<(), ImageError> {
    let failed = |reason: String| ImageError::Write { path: path.to_path_buf(), reason };
    let color = match channels {
        1 => ExtendedColorType::L8,
        3 => ExtendedColorType::Rgb8,
        4 => ExtendedColorType::Rgba8,
        n => return Err(failed(format!("{n} channels cannot be written as PNG"))),
    };
    let file = std::fs::File::create(path).map_err(|err| failed(err.to_string()))?;
    let mut writer = BufWriter::new(file);
    PngEncoder::new_with_quality(&mut writer, CompressionType::Fast, FilterType::Adaptive)
        .write_image(pixels, width, height, color)
        .map_err(|err| failed(err.to_string()))?;
    let file = writer.into_inner().map_err(|err| failed(err.to_string()))?;
    file.sync_data().map_err(|err| failed(err.to_string()))
}
