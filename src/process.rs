//! `mattecam process`: a file (or any source) in, composited video or images out, with every input checked
//! before any work starts.

use std::path::PathBuf;

use crate::composite::{CompositeError, CompositeSettings, Compositor, CompositorKind};
use crate::filter::temporal::TemporalMode;
use crate::infer::{self, InferError, MatterOptions, ModelKind};
use crate::models::{self, ManifestError};
use crate::pipeline::{Pipeline, PipelineConfig};
use crate::sink::{self, SinkError, png};
use crate::source::{self, SourceError, SourceSpec};

#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error(transparent)]
    Source(#[from] SourceError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Sink(#[from] SinkError),
    #[error(transparent)]
    Composite(#[from] CompositeError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
}

#[derive(Clone, Debug)]
pub struct ProcessOptions {
    pub input: SourceSpec,
    pub output: PathBuf,
    pub model: ModelKind,
    /// A model file other than the manifest's.
    pub model_file: Option<PathBuf>,
    pub matter: MatterOptions,
    /// Background, upsampling, edge controls, mirror.
    pub composite: CompositeSettings,
    pub compositor: CompositorKind,
    pub temporal: TemporalMode,
    /// Also write each frame's alpha as an 8-bit PNG here.
    pub alpha_dir: Option<PathBuf>,
    pub max_frames: Option<u64>,
}

/// A started run, and what the user should be told about how it runs.
pub struct Started {
    pub pipeline: Pipeline,
    /// "cpu" or "gpu (adapter)".
    pub compositor: String,
    /// Why the GPU was not used when it was the default.
    pub compositor_notice: Option<String>,
}

/// Checks the inputs, opens everything and starts the pipeline.
pub fn start(options: &ProcessOptions) -> Result<Started, ProcessError> {
    let source = source::open(&options.input)?;
    let info = source.info().clone();
    let frames = info.frames_to_read(options.max_frames);
    let output_kind = sink::output_kind(&options.output)?;
    if output_kind == sink::OutputKind::SinglePng && frames != Some(1) {
        return Err(SinkError::SingleImageOverflow(options.output.clone()).into());
    }
    if output_kind == sink::OutputKind::Video && options.composite.background.has_alpha() {
        return Err(SinkError::NoAlpha(options.output.clone()).into());
    }
    let (compositor, compositor_notice) = Compositor::open(options.compositor, options.composite.clone())?;
    let compositor_name = compositor.describe();
    let model_file = match &options.model_file {
        Some(path) => path.clone(),
        None => models::default_model_file(options.model)?,
    };
    let matter = infer::open_matter(options.model, &model_file, &options.matter)?;

    let mut sinks = Vec::new();
    for path in std::iter::once(&options.output).chain(options.alpha_dir.as_ref()) {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let not_writable = |reason: String| SinkError::NotWritable { path: path.clone(), reason };
            if parent.exists() && !parent.is_dir() {
                return Err(not_writable(format!("{} is not a folder", parent.display())).into());
            }
            std::fs::create_dir_all(parent).map_err(|err| not_writable(err.to_string()))?;
        }
    }
    sinks.push(sink::open_composite_sink(
        &options.output,
        info.width,
        info.height,
        info.fps,
        options.composite.background.has_alpha(),
    )?);
    if let Some(dir) = &options.alpha_dir {
        sinks.push(Box::new(png::PngSequenceSink::create(dir, png::Content::Alpha)?));
    }
    let config =
        PipelineConfig { matter, temporal: options.temporal, compositor, sinks, max_frames: options.max_frames };
    Ok(Started { pipeline: Pipeline::start(source, config), compositor: compositor_name, compositor_notice })
}
