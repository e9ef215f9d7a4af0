//! Where composited frames go: video files, PNG sequences, single PNGs, alpha PNGs.

mod partial;
pub mod png;
pub mod video;

use std::path::{Path, PathBuf};

pub use partial::Partial;

use crate::composite::Composite;
use crate::frame::Frame;
use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot write {} ({reason}); choose a path in a writable folder", display(.path))]
    NotWritable { path: PathBuf, reason: String },
    #[error("output folder {} already holds files; choose a new or empty folder", display(.0))]
    FolderNotEmpty(PathBuf),
    #[error("{} is a single image but the input has more than one frame; give a folder (PNG sequence) or a .mp4 file", display(.0))]
    SingleImageOverflow(PathBuf),
    #[error("{} cannot hold transparency (H.264 has no alpha); write a PNG sequence (a folder) or a .png, or pick another background", display(.0))]
    NoAlpha(PathBuf),
    #[error("unsupported output {}: use a .mp4 file, a .png file or a folder", display(.0))]
    UnsupportedFormat(PathBuf),
    #[error("writing {} failed: {reason}", display(.path))]
    Write { path: PathBuf, reason: String },
    #[error("ffmpeg stopped while writing {} ({reason}); the disk may be full, or ffmpeg was killed", display(.path))]
    Encoder { path: PathBuf, reason: String },
    #[error(transparent)]
    Ffmpeg(#[from] crate::ffmpeg::FfmpegError),
}

/// One frame's results, as the sinks receive them.
pub struct Output {
    pub frame: Frame,
    /// Alpha at frame size, 8-bit.
    pub alpha: Vec<u8>,
    pub composite: Composite,
}

/// A destination for results. Nothing it writes is visible under its final name until `finish` succeeds:
/// a sink dropped without `finish` removes what it wrote.
pub trait Sink: Send {
    fn write(&mut self, output: &Output) -> Result<(), SinkError>;
    fn finish(&mut self) -> Result<(), SinkError>;
    /// Where the result will be, for messages.
    fn path(&self) -> &Path;
}

/// What kind of output a path asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Video,
    SinglePng,
    PngSequence,
}

pub fn output_kind(path: &Path) -> Result<OutputKind, SinkError> {
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some("mp4" | "mov" | "mkv") => Ok(OutputKind::Video),
        Some("png") => Ok(OutputKind::SinglePng),
        None => Ok(OutputKind::PngSequence),
        Some(_) if path.is_dir() => Ok(OutputKind::PngSequence),
        Some(_) => Err(SinkError::UnsupportedFormat(path.to_path_buf())),
    }
}

/// Opens the sink for the composited result at `path`.
pub fn open_composite_sink(
    path: &Path,
    width: u32,
    height: u32,
    fps: f64,
    with_alpha: bool,
) -> Result<Box<dyn Sink>, SinkError> {
    Ok(match output_kind(path)? {
        OutputKind::Video if with_alpha => return Err(SinkError::NoAlpha(path.to_path_buf())),
        OutputKind::Video => Box::new(video::H264Sink::create(path, width, height, fps)?),
        OutputKind::SinglePng => Box::new(png::SinglePngSink::create(path)?),
        OutputKind::PngSequence => Box::new(png::PngSequenceSink::create(path, png::Content::Composite)?),
    })
}
