//! Where composited frames go: video files in the formats editors import, PNG sequences, single PNGs.

pub mod pacer;
pub mod partial;
pub mod png;
pub mod video;

use std::path::{Path, PathBuf};

pub use pacer::{FramePacer, Placement};
pub use partial::Partial;
pub use video::{AudioTrack, DEFAULT_CRF, VideoKind, VideoSink};

use crate::composite::Background;
use crate::frame::{Composite, Frame, Output};
use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot write {} ({reason}); choose a path in a writable folder", display(.path))]
    NotWritable { path: PathBuf, reason: String },
    #[error("{} already exists; choose another name, or pass --overwrite to replace it", display(.0))]
    Exists(PathBuf),
    #[error("output folder {} already holds files; choose a new or empty folder", display(.0))]
    FolderNotEmpty(PathBuf),
    #[error("{} is a single image but the input has more than one frame; give a folder (PNG sequence) or a video file", display(.0))]
    SingleImageOverflow(PathBuf),
    #[error("{} cannot hold transparency (H.264 has no alpha); use --format prores, webm-alpha or png, or pick another background", display(.0))]
    NoAlpha(PathBuf),
    #[error("unsupported output {}: use a .mp4, .mov or .webm file, a .png file or a folder", display(.0))]
    UnsupportedFormat(PathBuf),
    #[error("{format} writes {expected}: name the output {}", display(.suggested))]
    FormatMismatch { format: &'static str, expected: &'static str, suggested: PathBuf },
    #[error("writing {} failed: {reason}", display(.path))]
    Write { path: PathBuf, reason: String },
    #[error("ffmpeg stopped while writing {} ({reason}); the disk may be full, or ffmpeg was killed; {kept}", display(.path))]
    Encoder { path: PathBuf, reason: String, kept: String },
    #[error(transparent)]
    Ffmpeg(#[from] crate::ffmpeg::FfmpegError),
}

/// One frame as the sinks write it: the source frame, the frame-size alpha, and the picture this output
/// records (the composite, or a cutout derived from the same alpha).
#[derive(Clone, Copy)]
pub struct SinkFrame<'a> {
    pub frame: &'a Frame,
    pub alpha: &'a [u8],
    pub picture: &'a Composite,
}

impl<'a> SinkFrame<'a> {
    /// The engine's output as composited.
    pub fn of(output: &'a Output) -> Self {
        Self { frame: &output.frame, alpha: &output.picture.alpha, picture: &output.picture.composite }
    }
}

/// A destination for results. Nothing it writes is visible under its final name until `finish` succeeds:
/// a sink dropped without `finish` removes what it wrote. A sink whose `write` fails (ffmpeg died, the disk
/// filled) keeps what it wrote as `NAME.incomplete.EXT`, playable, and its error says so.
pub trait Sink: Send {
    fn write(&mut self, output: SinkFrame<'_>) -> Result<(), SinkError>;
    fn finish(&mut self) -> Result<(), SinkError>;
    /// Where the result will be, for messages.
    fn path(&self) -> &Path;
    /// Bytes on disk so far (shown while recording).
    fn bytes_written(&self) -> u64 {
        0
    }
    /// The run failed elsewhere: keep what was written as `NAME.incomplete.EXT` and say what was kept
    /// (`None`: nothing was written, or this output is not worth keeping alone).
    fn keep_incomplete(&mut self) -> Option<String> {
        None
    }
    /// The ffmpeg process behind the sink, if there is one.
    fn encoder_pid(&self) -> Option<u32> {
        None
    }
    /// Whether the finished (or kept) output holds the take's sound.
    fn audio_muxed(&self) -> bool {
        false
    }
}

/// What a recording or a `process` run writes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// The composite, H.264 MP4 (yuv420p): plays everywhere.
    #[default]
    Mp4,
    /// The cutout with alpha, ProRes 4444 MOV (yuva444p10le): for editing.
    Prores,
    /// The cutout with alpha, VP9 WebM (yuva420p): for editing and the web.
    WebmAlpha,
    /// A folder of PNGs, one per frame: lossless.
    Png,
    /// The alpha alone as an 8-bit gray H.264 MP4: an editor's track matte.
    Matte,
}

impl Format {
    pub const ALL: [Format; 5] = [Self::Mp4, Self::Prores, Self::WebmAlpha, Self::Png, Self::Matte];

    pub fn label(self) -> &'static str {
        match self {
            Self::Mp4 => "MP4 (H.264)",
            Self::Prores => "ProRes 4444 with alpha (MOV)",
            Self::WebmAlpha => "VP9 with alpha (WebM)",
            Self::Png => "PNG sequence (RGBA)",
            Self::Matte => "Matte only (gray MP4)",
        }
    }

    /// The name used on the command line and in the sidecar.
    pub fn name(self) -> &'static str {
        match self {
            Self::Mp4 => "mp4",
            Self::Prores => "prores",
            Self::WebmAlpha => "webm-alpha",
            Self::Png => "png",
            Self::Matte => "matte",
        }
    }

    /// The file extension, or `None` for a folder.
    pub fn extension(self) -> Option<&'static str> {
        match self {
            Self::Mp4 | Self::Matte => Some("mp4"),
            Self::Prores => Some("mov"),
            Self::WebmAlpha => Some("webm"),
            Self::Png => None,
        }
    }

    /// The video file this format writes (`None`: a folder of PNGs).
    pub fn video_kind(self, crf: u8) -> Option<VideoKind> {
        match self {
            Self::Mp4 => Some(VideoKind::H264 { crf }),
            Self::Prores => Some(VideoKind::ProRes4444),
            Self::WebmAlpha => Some(VideoKind::Vp9Alpha { crf }),
            Self::Matte => Some(VideoKind::MatteH264 { crf }),
            Self::Png => None,
        }
    }

    /// Formats that carry the person's alpha in the picture: recorded from the cutout.
    pub fn has_alpha(self) -> bool {
        matches!(self, Self::Prores | Self::WebmAlpha | Self::Png)
    }

    /// The format a path asks for by its extension (`.png` is a single image, not a format).
    pub fn from_path(path: &Path) -> Result<Self, SinkError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("mp4") => Ok(Self::Mp4),
            Some("mov") => Ok(Self::Prores),
            Some("webm") => Ok(Self::WebmAlpha),
            None => Ok(Self::Png),
            Some(_) if path.is_dir() => Ok(Self::Png),
            Some(_) => Err(SinkError::UnsupportedFormat(path.to_path_buf())),
        }
    }

    /// Checks that `path` suits this format.
    pub fn check_path(self, path: &Path) -> Result<(), SinkError> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        let fits = match self.extension() {
            Some(want) => extension.as_deref() == Some(want),
            None => extension.is_none() || path.is_dir(),
        };
        if fits {
            return Ok(());
        }
        let (expected, suggested) = match self.extension() {
            Some(ext) => (ext, path.with_extension(ext)),
            None => ("a folder", path.with_extension("")),
        };
        let expected = match expected {
            "mp4" => "a .mp4 file",
            "mov" => "a .mov file",
            "webm" => "a .webm file",
            other => other,
        };
        Err(SinkError::FormatMismatch { format: self.name(), expected, suggested })
    }

    /// Where the source video goes beside a recording at `path`: `name.source.mp4`.
    pub fn source_path(path: &Path) -> PathBuf {
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        path.with_file_name(format!("{stem}.source.mp4"))
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Everything that decides which files a run writes.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSpec {
    pub path: PathBuf,
    pub format: Format,
    /// H.264 and VP9 quality.
    pub crf: u8,
    /// Also write the source video, frame-aligned, as `name.source.mp4`.
    pub with_source: bool,
    /// Whether the picture is mirrored (the source video beside it follows).
    pub mirror: bool,
    /// Replace an existing output (`--overwrite`); otherwise an existing one is refused.
    pub overwrite: bool,
}

impl Format {
    /// The background when the user named none: the cutout for the alpha formats, else the blurred room.
    pub fn default_background(self) -> Background {
        if self.has_alpha() { Background::Transparent { premultiplied: false } } else { Background::default() }
    }

    /// What the window records for the background it shows: the cutout for the alpha formats (the reason
    /// to pick one), the picture as shown otherwise, and for MP4, which has no alpha, a transparent
    /// background over black.
    pub fn recorded_background(self, shown: &Background) -> Background {
        match (self.has_alpha(), shown) {
            (true, Background::Transparent { premultiplied }) => {
                Background::Transparent { premultiplied: *premultiplied }
            }
            (true, _) => Background::Transparent { premultiplied: false },
            (false, shown) if shown.has_alpha() && self == Self::Mp4 => Background::Color([0, 0, 0]),
            (false, shown) => shown.clone(),
        }
    }
}

impl OutputSpec {
    /// Refuses, before any work starts, an output that exists (unless `overwrite`), or a folder that is
    /// not empty.
    pub fn check_free(&self) -> Result<(), SinkError> {
        self.check_free_with(None)
    }

    /// [`Self::check_free`], and `extra` too (a recording's sidecar).
    pub fn check_free_with(&self, extra: Option<PathBuf>) -> Result<(), SinkError> {
        let source = self.with_source.then(|| Format::source_path(&self.path));
        for path in [Some(self.path.clone()), source, extra].into_iter().flatten() {
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_dir() {
                if std::fs::read_dir(&path).is_ok_and(|mut entries| entries.next().is_some()) {
                    return Err(SinkError::FolderNotEmpty(path));
                }
            } else if !self.overwrite {
                return Err(SinkError::Exists(path));
            }
        }
        Ok(())
    }

    /// Refuses a background the format cannot hold (transparency in an MP4).
    pub fn check_background(&self, background: &Background) -> Result<(), SinkError> {
        if self.format == Format::Mp4 && background.has_alpha() {
            return Err(SinkError::NoAlpha(self.path.clone()));
        }
        Ok(())
    }

    /// Opens the sinks: the main output, and the source video when asked for.
    pub fn open(&self, width: u32, height: u32, fps: f64) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        self.open_with_audio(width, height, fps, None)
    }

    /// [`Self::open`], the video files muxing in the take's sound from `audio` when they are finished.
    pub fn open_with_audio(
        &self,
        width: u32,
        height: u32,
        fps: f64,
        audio: Option<&AudioTrack>,
    ) -> Result<Vec<Box<dyn Sink>>, SinkError> {
        self.format.check_path(&self.path)?;
        create_parent(&self.path)?;
        let (crf, overwrite) = (self.crf, self.overwrite);
        let video = |kind: VideoKind, path: &Path| -> Result<Box<dyn Sink>, SinkError> {
            let sink = VideoSink::create(kind, path, width, height, fps, overwrite)?;
            Ok(Box::new(sink.with_audio(audio.cloned())))
        };
        // The source video first: its name is checked before the main output's encoder starts.
        let source = self
            .with_source
            .then(|| video(VideoKind::SourceH264 { crf, mirror: self.mirror }, &Format::source_path(&self.path)))
            .transpose()?;
        let main: Box<dyn Sink> = match self.format.video_kind(crf) {
            Some(kind) => video(kind, &self.path)?,
            None => Box::new(png::PngSequenceSink::create(&self.path, png::Content::Composite)?),
        };
        Ok([Some(main), source].into_iter().flatten().collect())
    }
}

/// Creates the folder a file will be written in.
pub fn create_parent(path: &Path) -> Result<(), SinkError> {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        let not_writable = |reason: String| SinkError::NotWritable { path: path.to_path_buf(), reason };
        if parent.exists() && !parent.is_dir() {
            return Err(not_writable(format!("{} is not a folder", parent.display())));
        }
        std::fs::create_dir_all(parent).map_err(|err| not_writable(err.to_string()))?;
    }
    Ok(())
}

/// Whether `path` names a single PNG image (`process` on one image).
pub fn is_single_png(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("png"))
}

/// Takes every frame and keeps nothing: the pipeline's own cost, without an encoder's (`mattecam bench`).
#[derive(Debug, Default)]
pub struct DiscardSink {
    pub frames: u64,
}

impl Sink for DiscardSink {
    fn write(&mut self, _output: SinkFrame<'_>) -> Result<(), SinkError> {
        self.frames += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }

    fn path(&self) -> &Path {
        Path::new("(discarded)")
    }
}
