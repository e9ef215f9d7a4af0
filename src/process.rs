//! `mattecam process`: a file (or any source) in, composited video or images out, with every input checked
//! before any work starts.

use std::path::PathBuf;

use crate::composite::Upsample;
use crate::composite::{Background, CompositeError, CpuCompositor};
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
    pub background: Background,
    pub temporal: TemporalMode,
    pub upsample: Upsample,
    /// Also write each frame's alpha as an 8-bit PNG here.
    pub alpha_dir: Option<PathBuf>,
    pub max_frames: Option<u64>,
}

/// Checks the inputs, opens everything and starts the pipeline.
pub fn start(options: &ProcessOptions) -> Result<Pipeline, ProcessError> {
    let source = source::open(&options.input)?;
    let info = source.info().clone();
    let frames = info.frames_to_read(options.max_frames);
    let output_kind = sink::output_kind(&options.output)?;
    if output_kind == sink::OutputKind::SinglePng && frames != Some(1) {
        return Err(SinkError::SingleImageOverflow(options.output.clone()).into());
    }
    if output_kind == sink::OutputKind::Video && options.background.has_alpha() {
        return Err(SinkError::NoAlpha(options.output.clone()).into());
    }
    let compositor = CpuCompositor::new(options.background.clone())?;
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
        options.background.has_alpha(),
    )?);
    if let Some(dir) = &options.alpha_dir {
        sinks.push(Box::new(png::PngSequenceSink::create(dir, png::Content::Alpha)?));
    }
    let config = PipelineConfig {
        matter,
        temporal: options.temporal,
        upsample: options.upsample,
        compositor,
        sinks,
        max_frames: options.max_frames,
    };
    Ok(Pipeline::start(source, config))
}
