//! `mattecam process`: a file (or any source) in, composited video or images out, with every input checked
//! before any work starts; then the engine runs it, every frame.

use std::path::PathBuf;

use crate::composite::CompositeSettings;
use crate::composite::background::Pacing;
use crate::compositor::{self, CompositorError, CompositorKind};
use crate::engine::{CompositorSetup, Engine, EngineConfig, ModelInput, SinkWriter, SourceInput};
use crate::filter::temporal::TemporalMode;
use crate::infer::{self, InferError, MatterOptions, ModelKind};
use crate::models::{self, ManifestError};
use crate::plate::{Plate, PlateError, PlateOptions, PlatedMatter};
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
    Composite(#[from] CompositorError),
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    #[error(transparent)]
    Plate(#[from] PlateError),
}

#[derive(Clone, Debug)]
pub struct ProcessOptions {
    pub input: SourceSpec,
    pub output: PathBuf,
    pub model: ModelKind,
    /// A model file other than the manifest's.
    pub model_file: Option<PathBuf>,
    /// Its float file or its INT8 version.
    pub precision: crate::infer::Precision,
    pub matter: MatterOptions,
    /// Upsampling, edge controls, mirror (the background comes from `background`).
    pub composite: CompositeSettings,
    /// `None`: the format's default (the cutout for the alpha formats, blur otherwise).
    pub background: Option<crate::composite::Background>,
    pub compositor: CompositorKind,
    pub temporal: TemporalMode,
    /// What to write; `None`: from the output's extension (a folder is a PNG sequence).
    pub format: Option<sink::Format>,
    /// H.264 / VP9 quality.
    pub crf: u8,
    /// Also write the source video beside the output, frame-aligned.
    pub with_source: bool,
    /// Also write each frame's alpha as an 8-bit PNG here.
    pub alpha_dir: Option<PathBuf>,
    pub max_frames: Option<u64>,
    /// A still clean background plate for the whole input (BGMv2 needs one; the others use it for plate
    /// assistance when `plate_options.assist` is on).
    pub plate: Option<PathBuf>,
    pub plate_options: PlateOptions,
    /// Replace existing outputs (otherwise one is refused before any work starts).
    pub overwrite: bool,
    /// Sessions matting frames at once (`infer::open_matters`); 1 for RVM, BGMv2 and a plate.
    pub sessions: usize,
}

/// A started run, and what the user should be told about how it runs.
pub struct Started {
    pub engine: Engine,
    /// "cpu" or "gpu (adapter)".
    pub compositor: String,
    /// Why the GPU was not used when it was the default.
    pub compositor_notice: Option<String>,
    /// About a user-supplied model file (its sha256 recorded, or changed).
    pub model_notice: Option<String>,
    /// Which of the model's files runs, and why `auto` did not pick INT8 where it could have.
    pub precision: crate::infer::Precision,
    pub precision_note: Option<String>,
}

/// Checks the inputs, opens everything and starts the pipeline.
pub fn start(options: &ProcessOptions) -> Result<Started, ProcessError> {
    let source = source::open(&options.input)?;
    let info = source.info().clone();
    let frames = info.frames_to_read(options.max_frames);
    let single_png = options.format.is_none() && sink::is_single_png(&options.output);
    if single_png && frames != Some(1) {
        return Err(SinkError::SingleImageOverflow(options.output.clone()).into());
    }
    let format = match options.format {
        Some(format) => format,
        None if single_png => sink::Format::Png,
        None => sink::Format::from_path(&options.output)?,
    };
    let spec = sink::OutputSpec {
        path: options.output.clone(),
        format,
        crf: options.crf,
        with_source: options.with_source,
        mirror: options.composite.mirror,
        overwrite: options.overwrite,
    };
    // A single image is the composite as set; a sequence or video follows its format.
    let default_background = if single_png { Default::default() } else { format.default_background() };
    let background = options.background.clone().unwrap_or(default_background);
    if !single_png {
        format.check_path(&options.output)?;
        spec.check_background(&background)?;
    }
    spec.check_free()?;
    if let Some(dir) = &options.alpha_dir {
        let alpha =
            sink::OutputSpec { path: dir.clone(), format: sink::Format::Png, with_source: false, ..spec.clone() };
        alpha.check_free()?;
    }
    let composite = CompositeSettings { background, ..options.composite.clone() };
    let (compositor, compositor_notice) = compositor::open(options.compositor, composite.clone(), Pacing::OnePerFrame)?;
    let compositor_name = compositor.describe();
    let resolved = models::resolve_model_file(
        options.model,
        options.model_file.as_deref(),
        options.precision,
        options.matter.session.provider,
    )?;
    let model_file = resolved.path.clone();
    let plate = match &options.plate {
        Some(path) => {
            let plate = Plate::load(path)?;
            plate.check_size(info.width, info.height)?;
            Some(plate)
        }
        None if options.model == ModelKind::Bgmv2 => return Err(InferError::NeedsPlate.into()),
        None => None,
    };
    if options.sessions > 1 && plate.is_some() {
        return Err(InferError::NotFrameParallel {
            model: options.model.title(),
            reason: "plate assistance fits each frame's exposure where the frame before was background",
        }
        .into());
    }
    let model_notice = models::check_model_file(&model_file)?;
    let models = infer::open_matters(options.model, &model_file, &options.matter, options.sessions)?;
    let matters = models
        .into_iter()
        .map(|model| Box::new(PlatedMatter::new(model, plate.clone(), options.plate_options)) as Box<dyn infer::Matter>)
        .collect();

    let mut sinks: Vec<Box<dyn sink::Sink>> = if single_png {
        sink::create_parent(&options.output)?;
        vec![Box::new(png::SinglePngSink::create(&options.output, options.overwrite)?)]
    } else {
        spec.open(info.width, info.height, info.fps)?
    };
    if let Some(dir) = &options.alpha_dir {
        sink::create_parent(dir)?;
        sinks.push(Box::new(png::PngSequenceSink::create(dir, png::Content::Alpha)?));
    }
    let config = EngineConfig {
        source: SourceInput::File(source),
        model: ModelInput::Opened(matters),
        temporal: options.temporal,
        composite,
        compositor: CompositorSetup::Opened(compositor),
        plate: None,
        writer: Some(SinkWriter::new(sinks)),
        max_frames: options.max_frames,
        notify: std::sync::Arc::new(|| {}),
        hold_rate: None,
    };
    Ok(Started {
        engine: Engine::start(config),
        compositor: compositor_name,
        compositor_notice,
        model_notice,
        precision: resolved.precision,
        precision_note: resolved.note,
    })
}
