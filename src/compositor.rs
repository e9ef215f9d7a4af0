//! Either compositor behind one trait: the CPU reference (`composite`) or the GPU (`gpu`). It sits above
//! both, so neither imports the other's front.

use crate::composite::background::Pacing;
use crate::composite::{Background, CompositeError, CompositeSettings, CpuCompositor, Upsample};
use crate::frame::{Frame, Guide, Matte, Picture};
use crate::gpu::{GpuCompositor, GpuError};

pub use crate::composite::CompositorKind;

#[derive(Debug, thiserror::Error)]
pub enum CompositorError {
    #[error(transparent)]
    Composite(#[from] CompositeError),
    #[error(transparent)]
    Gpu(#[from] GpuError),
}

/// Composites a frame with its matte into a picture, as its settings say.
pub trait Compositor: Send {
    /// The frame-size alpha, the composite and (in the split view) the split picture into `out`.
    fn composite(&mut self, frame: &Frame, matte: &Matte, out: &mut Picture) -> Result<(), CompositorError>;
    fn settings(&self) -> &CompositeSettings;
    /// New settings from the next frame on; a background file that cannot be opened is an error and the
    /// old settings stay.
    fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), CompositorError>;
    /// "cpu" or "gpu (adapter)", for summary lines.
    fn describe(&self) -> String;
    /// The GPU compositor, for the engine's texture and asynchronous readback path.
    fn as_gpu(&mut self) -> Option<&mut GpuCompositor> {
        None
    }
}

impl Compositor for CpuCompositor {
    fn composite(&mut self, frame: &Frame, matte: &Matte, out: &mut Picture) -> Result<(), CompositorError> {
        Ok(CpuCompositor::composite(self, frame, matte, out)?)
    }

    fn settings(&self) -> &CompositeSettings {
        CpuCompositor::settings(self)
    }

    fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), CompositorError> {
        Ok(CpuCompositor::set_settings(self, settings)?)
    }

    fn describe(&self) -> String {
        "cpu".to_string()
    }
}

impl Compositor for GpuCompositor {
    fn composite(&mut self, frame: &Frame, matte: &Matte, out: &mut Picture) -> Result<(), CompositorError> {
        Ok(GpuCompositor::composite(self, frame, matte, out)?)
    }

    fn settings(&self) -> &CompositeSettings {
        GpuCompositor::settings(self)
    }

    fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), CompositorError> {
        Ok(GpuCompositor::set_settings(self, settings)?)
    }

    fn describe(&self) -> String {
        GpuCompositor::describe(self)
    }

    fn as_gpu(&mut self) -> Option<&mut GpuCompositor> {
        Some(self)
    }
}

/// Opens the compositor asked for. `Auto` falls back to the CPU when no hardware GPU exists, and says why
/// in the returned notice.
pub fn open(
    kind: CompositorKind,
    settings: CompositeSettings,
    pacing: Pacing,
) -> Result<(Box<dyn Compositor>, Option<String>), CompositorError> {
    let cpu = |settings| -> Result<Box<dyn Compositor>, CompositorError> {
        Ok(Box::new(CpuCompositor::with_pacing(settings, pacing)?))
    };
    match kind {
        CompositorKind::Cpu => Ok((cpu(settings)?, None)),
        CompositorKind::Gpu => {
            let ctx = crate::gpu::GpuContext::headless()?;
            Ok((Box::new(GpuCompositor::new(ctx, settings, pacing)?), None))
        }
        CompositorKind::Auto => match crate::gpu::GpuContext::headless_with(false) {
            Ok(ctx) => Ok((Box::new(GpuCompositor::new(ctx, settings, pacing)?), None)),
            Err(err) => Ok((cpu(settings)?, Some(format!("compositing on the CPU: {err}")))),
        },
    }
}

/// Alpha brought to frame size with no background, on the CPU or the GPU: what `eval` scores.
pub enum AlphaStage {
    Cpu(Box<crate::composite::AlphaUpsampler>),
    Gpu { gpu: Box<GpuCompositor>, scratch: Picture },
}

impl AlphaStage {
    /// As [`open`]: `Auto` falls back to the CPU with a notice.
    pub fn open(upsample: Upsample, kind: CompositorKind) -> Result<(Self, Option<String>), CompositorError> {
        let settings = CompositeSettings {
            background: Background::Transparent { premultiplied: false },
            upsample,
            ..Default::default()
        };
        let gpu = match kind {
            CompositorKind::Cpu => None,
            CompositorKind::Gpu => Some(GpuCompositor::headless(settings)?),
            CompositorKind::Auto => match GpuCompositor::headless_hardware(settings) {
                Ok(gpu) => Some(gpu),
                Err(err) => {
                    let notice = Some(format!("compositing on the CPU: {err}"));
                    return Ok((Self::Cpu(Box::new(crate::composite::AlphaUpsampler::new(upsample))), notice));
                }
            },
        };
        Ok(match gpu {
            Some(gpu) => (Self::Gpu { gpu: Box::new(gpu), scratch: Picture::default() }, None),
            None => (Self::Cpu(Box::new(crate::composite::AlphaUpsampler::new(upsample))), None),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Cpu(_) => "cpu".to_string(),
            Self::Gpu { gpu, .. } => gpu.describe(),
        }
    }

    /// 8-bit alpha at the guide's size into `out`.
    pub fn upsample_u8(&mut self, matte: &Matte, guide: Guide<'_>, out: &mut Vec<u8>) -> Result<(), CompositorError> {
        match self {
            Self::Cpu(upsampler) => {
                upsampler.upsample_u8(matte, guide, out);
                Ok(())
            }
            Self::Gpu { gpu, scratch } => {
                let pixels = crate::color::PixelData::Rgb(guide.rgb);
                gpu.composite_pixels(pixels, guide.width, guide.height, matte, scratch)?;
                std::mem::swap(out, &mut scratch.alpha);
                Ok(())
            }
        }
    }
}
