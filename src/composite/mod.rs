//! Putting the person over a new background. `cpu` is the reference implementation; `crate::gpu` runs
//! the same steps as WGSL shaders.

pub mod background;
pub mod cpu;
pub mod edges;
pub mod upsample;

pub use background::Background;
pub use cpu::{Composite, CpuCompositor};
pub use edges::EdgeControls;
pub use upsample::{AlphaUpsampler, Upsample};

use crate::frame::{Frame, Matte};
use crate::gpu::GpuCompositor;

#[derive(Debug, thiserror::Error)]
pub enum CompositeError {
    #[error("background image {}: {reason}", crate::paths::display(.path))]
    BackgroundImage { path: std::path::PathBuf, reason: String },
    #[error("background video {}: {reason}", crate::paths::display(.path))]
    BackgroundVideo { path: std::path::PathBuf, reason: String },
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    #[error(
        "invalid background `{0}`; use `blur`, `blur:RADIUS_PX`, `color:#RRGGBB`, `image:PATH`, `video:PATH`, `transparent` or `transparent:premultiplied`"
    )]
    BadSpec(String),
}

/// What the compositor shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum View {
    /// The person over the background, at frame size.
    #[default]
    Composite,
    /// Original | alpha | composite side by side at half size, for checking the matte.
    Split,
}

/// Everything that decides how a frame and its matte become a picture.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CompositeSettings {
    pub background: Background,
    pub upsample: Upsample,
    pub edges: EdgeControls,
    /// Flip the picture left to right (what people expect of their own camera image); an image or video
    /// background stays unflipped.
    pub mirror: bool,
    pub view: View,
}

/// Where compositing runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CompositorKind {
    /// A hardware GPU when one is found, the CPU otherwise (a software rasteriser such as lavapipe is
    /// slower than the CPU compositor on the same cores, so only `gpu` uses it).
    #[default]
    Auto,
    Gpu,
    Cpu,
}

/// Either compositor behind one call.
pub enum Compositor {
    Cpu(Box<CpuCompositor>),
    Gpu(Box<GpuCompositor>),
}

impl Compositor {
    /// Opens the compositor asked for. `Auto` falls back to the CPU when no GPU adapter exists, and says
    /// why in the returned notice.
    pub fn open(kind: CompositorKind, settings: CompositeSettings) -> Result<(Self, Option<String>), CompositeError> {
        match kind {
            CompositorKind::Cpu => Ok((Self::Cpu(Box::new(CpuCompositor::new(settings)?)), None)),
            CompositorKind::Gpu => Ok((Self::Gpu(Box::new(GpuCompositor::headless(settings)?)), None)),
            CompositorKind::Auto => match GpuCompositor::headless_hardware(settings.clone()) {
                Ok(gpu) => Ok((Self::Gpu(Box::new(gpu)), None)),
                Err(CompositeError::Gpu(err)) => {
                    let notice = format!("compositing on the CPU: {err}");
                    Ok((Self::Cpu(Box::new(CpuCompositor::new(settings)?)), Some(notice)))
                }
                Err(err) => Err(err),
            },
        }
    }

    /// "gpu (adapter name)" or "cpu".
    pub fn describe(&self) -> String {
        match self {
            Self::Cpu(_) => "cpu".to_string(),
            Self::Gpu(gpu) => gpu.describe(),
        }
    }

    pub fn settings(&self) -> &CompositeSettings {
        match self {
            Self::Cpu(cpu) => cpu.settings(),
            Self::Gpu(gpu) => gpu.settings(),
        }
    }

    /// Changes background, edges or mirror between frames (opens a new background file if there is one).
    pub fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), CompositeError> {
        match self {
            Self::Cpu(cpu) => **cpu = CpuCompositor::new(settings)?,
            Self::Gpu(gpu) => gpu.set_settings(settings)?,
        }
        Ok(())
    }

    pub fn composite(
        &mut self,
        frame: &Frame,
        matte: &Matte,
        alpha: &mut Vec<u8>,
        out: &mut Composite,
    ) -> Result<(), CompositeError> {
        match self {
            Self::Cpu(cpu) => cpu.composite(frame, matte, alpha, out),
            Self::Gpu(gpu) => gpu.composite_to_cpu(frame, matte, alpha, out),
        }
    }
}

/// Alpha brought to frame size with no background, on the CPU or the GPU: what `eval` scores.
pub enum AlphaStage {
    Cpu(Box<AlphaUpsampler>),
    Gpu { gpu: Box<GpuCompositor>, scratch: Composite },
}

impl AlphaStage {
    /// As [`Compositor::open`]: `Auto` falls back to the CPU with a notice.
    pub fn open(upsample: Upsample, kind: CompositorKind) -> Result<(Self, Option<String>), CompositeError> {
        let settings = CompositeSettings {
            background: Background::Transparent { premultiplied: false },
            upsample,
            ..Default::default()
        };
        match Compositor::open(kind, settings)? {
            (Compositor::Gpu(gpu), notice) => Ok((Self::Gpu { gpu, scratch: Composite::default() }, notice)),
            (Compositor::Cpu(_), notice) => Ok((Self::Cpu(Box::new(AlphaUpsampler::new(upsample))), notice)),
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Cpu(_) => "cpu".to_string(),
            Self::Gpu { gpu, .. } => gpu.describe(),
        }
    }

    /// 8-bit alpha at the guide's size into `out`.
    pub fn upsample_u8(
        &mut self,
        matte: &Matte,
        guide: crate::frame::Guide<'_>,
        out: &mut Vec<u8>,
    ) -> Result<(), CompositeError> {
        match self {
            Self::Cpu(upsampler) => {
                upsampler.upsample_u8(matte, guide, out);
                Ok(())
            }
            Self::Gpu { gpu, scratch } => gpu.composite_pixels_to_cpu(
                crate::color::PixelData::Rgb(guide.rgb),
                guide.width,
                guide.height,
                matte,
                out,
                scratch,
            ),
        }
    }
}
