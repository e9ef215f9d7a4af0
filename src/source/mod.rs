//! Where frames come from: a video file, an image, a folder of images, a synthetic scene or a camera.

pub mod camera;
pub mod image;
pub mod live;
pub mod synthetic;
pub mod video;

use std::path::{Path, PathBuf};

use crate::frame::Frame;
use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("input {} does not exist; check the path", display(.0))]
    NotFound(PathBuf),
    #[error("{} is not a readable image ({reason}); use a PNG or JPEG file", display(.path))]
    BadImage { path: PathBuf, reason: String },
    #[error("folder {} holds no PNG or JPEG images; point at a folder of frames", display(.0))]
    EmptyFolder(PathBuf),
    #[error(
        "image {} is {got_w}x{got_h} but the sequence started at {want_w}x{want_h}; all images of a folder must have one size",
        display(.path)
    )]
    SizeChanged { path: PathBuf, got_w: u32, got_h: u32, want_w: u32, want_h: u32 },
    #[error(transparent)]
    Ffmpeg(#[from] crate::ffmpeg::FfmpegError),
    #[error("{} is truncated or corrupt: decoding stopped after {decoded} frames ({reason}); re-export or re-download it", display(.path))]
    Truncated { path: PathBuf, decoded: u64, reason: String },
    #[error("reading {}: {source}", display(.path))]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no camera was found; plug one in, or use a video file, an image or `demo` as the source")]
    NoCamera,
    #[error("camera {index} does not exist ({count} found); `mattecam sources` lists them")]
    NoSuchCamera { index: u32, count: usize },
    #[error("camera {name}: {reason}; check that it is plugged in and not used by another program")]
    Camera { name: String, reason: String },
    #[error("unknown source `{0}`; use a file or folder path, `demo`, `synthetic[:WxH[@FPS]]` or `camera[:N]`")]
    BadSpec(String),
    #[error("source `{spec}`: {reason}")]
    OutOfRange { spec: String, reason: String },
}

impl From<crate::imageio::ImageError> for SourceError {
    fn from(err: crate::imageio::ImageError) -> Self {
        use crate::imageio::ImageError;
        match err {
            ImageError::NotFound(path) => Self::NotFound(path),
            ImageError::Io { path, source } => Self::Io { path, source },
            ImageError::Bad { path, reason } | ImageError::Write { path, reason } => Self::BadImage { path, reason },
        }
    }
}

/// What a source delivers, known before the first frame.
#[derive(Clone, Debug)]
pub struct SourceInfo {
    /// Shown to the user and written in reports.
    pub name: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Known for files; `None` for live and endless sources.
    pub frame_count: Option<u64>,
    /// A live source produces frames whether or not we keep up; the pipeline drops stale ones for it.
    pub live: bool,
}

impl SourceInfo {
    /// How many frames a run will read when stopped after `max_frames`: `None` for an endless source
    /// without a limit.
    pub fn frames_to_read(&self, max_frames: Option<u64>) -> Option<u64> {
        match (self.frame_count, max_frames) {
            (Some(n), Some(max)) => Some(n.min(max)),
            (n, max) => n.or(max),
        }
    }
}

/// A stream of RGB frames.
pub trait FrameSource: Send {
    fn info(&self) -> &SourceInfo;
    /// The next frame, reusing `buf` for its pixels when it can; `None` at the end of a file.
    fn next_frame(&mut self, buf: Vec<u8>) -> Result<Option<Frame>, SourceError>;
    /// The same source from its start, for looping, when it can be had more cheaply than opening it
    /// again (a video that need not be probed again); `None` otherwise.
    fn reopen(&self) -> Result<Option<Box<dyn FrameSource>>, SourceError> {
        Ok(None)
    }
}

/// A source as the user names it on the command line.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceSpec {
    Demo,
    Synthetic { width: u32, height: u32, fps: f64 },
    Camera { index: u32 },
    Path(PathBuf),
}

impl std::str::FromStr for SourceSpec {
    type Err = SourceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || SourceError::BadSpec(text.to_string());
        match text.split_once(':').map_or((text, None), |(k, v)| (k, Some(v))) {
            ("demo", None) => Ok(Self::Demo),
            ("synthetic", None) => Ok(Self::Synthetic { width: 1280, height: 720, fps: 30.0 }),
            ("synthetic", Some(args)) => {
                let (size, fps) = args.split_once('@').map_or((args, None), |(s, f)| (s, Some(f)));
                let (w, h) = size.split_once('x').ok_or_else(bad)?;
                let width: u32 = w.parse().map_err(|_| bad())?;
                let height: u32 = h.parse().map_err(|_| bad())?;
                let fps = fps.map_or(Ok(30.0), |f| f.parse().map_err(|_| bad()))?;
                let out_of_range = |reason: String| SourceError::OutOfRange { spec: text.to_string(), reason };
                crate::limits::check_size("the synthetic size", width, height)
                    .map_err(|err| out_of_range(err.to_string()))?;
                if width < 2 || height < 2 {
                    return Err(out_of_range("the synthetic size must be at least 2x2".into()));
                }
                let fps =
                    crate::limits::check_fps("the synthetic rate", fps).map_err(|e| out_of_range(e.to_string()))?;
                Ok(Self::Synthetic { width, height, fps })
            }
            ("camera", None) => Ok(Self::Camera { index: 0 }),
            ("camera", Some(n)) => Ok(Self::Camera { index: n.parse().map_err(|_| bad())? }),
            _ => Ok(Self::Path(PathBuf::from(text))),
        }
    }
}

const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

pub fn is_image_path(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Opens the source a spec names.
pub fn open(spec: &SourceSpec) -> Result<Box<dyn FrameSource>, SourceError> {
    match spec {
        SourceSpec::Demo => {
            let clip = crate::paths::demo_clip();
            if !clip.is_file() {
                return Err(SourceError::NotFound(clip));
            }
            Ok(Box::new(video::VideoSource::open(&clip)?))
        }
        SourceSpec::Synthetic { width, height, fps } => {
            Ok(Box::new(synthetic::SyntheticSource::new(*width, *height, *fps, None)))
        }
        SourceSpec::Camera { index } => Ok(Box::new(camera::CameraSource::open(*index)?)),
        SourceSpec::Path(path) if path.is_dir() => Ok(Box::new(image::ImageFolderSource::open(path)?)),
        SourceSpec::Path(path) if !path.exists() => Err(SourceError::NotFound(path.clone())),
        SourceSpec::Path(path) if is_image_path(path) => Ok(Box::new(image::ImageSource::open(path)?)),
        SourceSpec::Path(path) => Ok(Box::new(video::VideoSource::open(path)?)),
    }
}
