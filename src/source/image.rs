//! Still images: one file (one frame) or a folder of frames in name order.

use std::path::{Path, PathBuf};
use std::time::Instant;

use super::{FrameSource, SourceError, SourceInfo, is_image_path};
use crate::frame::Frame;

/// Decodes an image file to packed RGB (see [`crate::imageio::load_rgb`]), its failure as a source's.
pub fn load_rgb(path: &Path) -> Result<(u32, u32, Vec<u8>), SourceError> {
    crate::imageio::load_rgb(path).map_err(SourceError::from)
}

/// One image, delivered once.
pub struct ImageSource {
    info: SourceInfo,
    pixels: Option<Vec<u8>>,
}

impl ImageSource {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        let (width, height, rgb) = load_rgb(path)?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let info = SourceInfo { name, width, height, fps: 1.0, frame_count: Some(1), live: false };
        Ok(Self { info, pixels: Some(rgb) })
    }
}

impl FrameSource for ImageSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self, _buf: Vec<u8>) -> Result<Option<Frame>, SourceError> {
        Ok(self.pixels.take().map(|rgb| Frame {
            seq: 0,
            captured_at: Instant::now(),
            pts_ms: 0.0,
            width: self.info.width,
            height: self.info.height,
            rgb,
        }))
    }
}

/// The PNG and JPEG files of a folder, in file-name order, as a 25 fps clip.
pub struct ImageFolderSource {
    info: SourceInfo,
    files: Vec<PathBuf>,
    next: usize,
}

impl ImageFolderSource {
    pub const FPS: f64 = 25.0;

    pub fn open(dir: &Path) -> Result<Self, SourceError> {
        let read = std::fs::read_dir(dir).map_err(|source| SourceError::Io { path: dir.to_path_buf(), source })?;
        let mut files: Vec<PathBuf> =
            read.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.is_file() && is_image_path(p)).collect();
        files.sort();
        let first = files.first().ok_or_else(|| SourceError::EmptyFolder(dir.to_path_buf()))?;
        let (width, height, _) = load_rgb(first)?;
        let name = dir.display().to_string();
        let frame_count = Some(files.len() as u64);
        let info = SourceInfo { name, width, height, fps: Self::FPS, frame_count, live: false };
        Ok(Self { info, files, next: 0 })
    }
}

impl FrameSource for ImageFolderSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self, _buf: Vec<u8>) -> Result<Option<Frame>, SourceError> {
        let Some(path) = self.files.get(self.next) else {
            return Ok(None);
        };
        let (width, height, rgb) = load_rgb(path)?;
        if (width, height) != (self.info.width, self.info.height) {
            return Err(SourceError::SizeChanged {
                path: path.clone(),
                got_w: width,
                got_h: height,
                want_w: self.info.width,
                want_h: self.info.height,
            });
        }
        let seq = self.next as u64;
        self.next += 1;
        Ok(Some(Frame {
            seq,
            captured_at: Instant::now(),
            pts_ms: seq as f64 * 1000.0 / Self::FPS,
            width,
            height,
            rgb,
        }))
    }
}
