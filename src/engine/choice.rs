//! What the user picks in the window (and `record`): a source and a model, as persisted settings.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::infer::{MatterOptions, ModelKind, Precision, ProviderRequest, SessionOptions};
use crate::source::{self, FrameSource, SourceError, SourceSpec};

/// A camera resolution and frame rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CameraMode {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
}

impl std::fmt::Display for CameraMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{} @ {} fps", self.width, self.height, self.fps)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceChoice {
    /// The people clip fetched by setup, looped.
    Demo,
    /// `mode: None`: the camera's highest frame rate.
    Camera {
        index: u32,
        mode: Option<CameraMode>,
    },
    /// A video file, looped.
    Video {
        path: PathBuf,
    },
    /// A still image, shown as a stream.
    Image {
        path: PathBuf,
    },
    Synthetic {
        width: u32,
        height: u32,
        fps: f64,
    },
}

impl Default for SourceChoice {
    fn default() -> Self {
        Self::Camera { index: 0, mode: None }
    }
}

impl std::fmt::Display for SourceChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Demo => f.write_str("demo clip"),
            Self::Camera { index, mode: None } => write!(f, "camera {index}"),
            Self::Camera { index, mode: Some(mode) } => write!(f, "camera {index} ({mode})"),
            Self::Video { path } | Self::Image { path } => f.write_str(&crate::paths::display(path)),
            Self::Synthetic { width, height, fps } => write!(f, "synthetic {width}x{height} @ {fps} fps"),
        }
    }
}

impl SourceChoice {
    /// A camera: failures are retried, and it is never looped.
    pub fn is_live(&self) -> bool {
        matches!(self, Self::Camera { .. })
    }

    pub fn is_still(&self) -> bool {
        matches!(self, Self::Image { .. })
    }

    /// From a command-line source (`demo`, `camera:N`, a path, `synthetic:WxH@FPS`).
    pub fn from_spec(spec: &SourceSpec) -> Self {
        match spec {
            SourceSpec::Demo => Self::Demo,
            SourceSpec::Camera { index } => Self::Camera { index: *index, mode: None },
            SourceSpec::Synthetic { width, height, fps } => {
                Self::Synthetic { width: *width, height: *height, fps: *fps }
            }
            SourceSpec::Path(path) if source::is_image_path(path) => Self::Image { path: path.clone() },
            SourceSpec::Path(path) => Self::Video { path: path.clone() },
        }
    }

    /// A file the user picked: an image or a video, by its extension.
    pub fn from_file(path: PathBuf) -> Self {
        if source::is_image_path(&path) { Self::Image { path } } else { Self::Video { path } }
    }

    pub fn open(&self) -> Result<Box<dyn FrameSource>, SourceError> {
        match self {
            Self::Demo => source::open(&SourceSpec::Demo),
            Self::Camera { index, mode } => {
                Ok(Box::new(source::camera::CameraSource::open_mode(*index, mode.map(|m| (m.width, m.height, m.fps)))?))
            }
            Self::Video { path } | Self::Image { path } => source::open(&SourceSpec::Path(path.clone())),
            Self::Synthetic { width, height, fps } => {
                Ok(Box::new(source::synthetic::SyntheticSource::new(*width, *height, *fps, None)))
            }
        }
    }
}

/// A model and how it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelChoice {
    pub kind: ModelKind,
    /// MODNet: the shorter side is scaled to this (multiple of 32; the authors use 512).
    pub ref_size: u32,
    /// RVM: fraction of the frame the backbone sees; 0 chooses from the frame size.
    pub downsample_ratio: f32,
    pub provider: ProviderRequest,
    /// Float or INT8 weights; `auto`: INT8 on a CPU when setup made and verified it.
    pub precision: Precision,
    /// Intra-op threads; 0 lets ONNX Runtime choose.
    pub threads: usize,
    /// Steps the model's work down (and back up) until it keeps up with the frame rate.
    pub hold_rate: HoldRate,
}

/// "Hold frame rate": the rate the governor keeps the model to.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HoldRate {
    pub enabled: bool,
    /// Frames a second to hold; 0 holds the source's own rate.
    pub target_fps: f32,
}

impl Default for HoldRate {
    fn default() -> Self {
        Self { enabled: true, target_fps: 0.0 }
    }
}

impl Default for ModelChoice {
    fn default() -> Self {
        // RVM: the cheaper model and temporally stable, so the better live default on a CPU; ratio 0.25 (the
        // authors' advice for HD input) keeps it near real time there, where Auto (512 px) takes ~5x longer.
        Self {
            kind: ModelKind::Rvm,
            ref_size: 512,
            downsample_ratio: 0.25,
            provider: ProviderRequest::Auto,
            precision: Precision::Auto,
            threads: 0,
            hold_rate: HoldRate::default(),
        }
    }
}

impl ModelChoice {
    pub const REF_SIZES: [u32; 5] = [256, 320, 384, 448, 512];
    pub const DOWNSAMPLE_RATIOS: [f32; 5] = [0.0, 0.125, 0.25, 0.375, 0.5];

    /// Opens the model from the file `make setup` fetched (or the user put in `models/`) at the chosen
    /// precision, and says which precision that is; the error as a sentence for the window.
    pub fn open(&self) -> Result<(Box<dyn crate::infer::Matter>, Precision), String> {
        if let Some(stand_in) = crate::infer::synthetic::SyntheticMatter::from_env(self.kind) {
            // The stand-in's "INT8 file" takes half its time.
            return Ok(match self.precision {
                Precision::Int8 => (Box::new(stand_in.with_cost_factor(0.5)), Precision::Int8),
                _ => (Box::new(stand_in), Precision::Fp32),
            });
        }
        let resolved = crate::models::resolve_model_file(self.kind, None, self.precision, self.provider)
            .map_err(|err| err.to_string())?;
        if let Some(note) = &resolved.note {
            tracing::info!("{note}");
        }
        if let Some(notice) = crate::models::check_model_file(&resolved.path).map_err(|err| err.to_string())? {
            tracing::warn!("{notice}");
        }
        let matter =
            crate::infer::open_matter(self.kind, &resolved.path, &self.matter_options()).map_err(|e| e.to_string())?;
        Ok((matter, resolved.precision))
    }

    /// Whether this model has an INT8 file that would load here (the governor's precision step); the test
    /// stand-in has one.
    pub fn int8_available(&self) -> bool {
        if std::env::var_os(crate::infer::synthetic::DELAY_ENV).is_some() {
            return true;
        }
        crate::models::resolve_model_file(self.kind, None, Precision::Int8, self.provider)
            .is_ok_and(|resolved| crate::models::check_model_file(&resolved.path).is_ok())
    }

    pub fn matter_options(&self) -> MatterOptions {
        MatterOptions {
            session: SessionOptions { threads: self.threads, provider: self.provider, ..Default::default() },
            ref_size: Some(self.ref_size.clamp(64, 2048) / 32 * 32),
            downsample_ratio: (self.downsample_ratio > 0.0).then_some(self.downsample_ratio.clamp(0.05, 1.0)),
        }
    }
}
