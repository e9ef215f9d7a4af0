//! `mattecam bench`: how close the whole pipeline comes to the model's own speed, and how it compares
//! with the Python pipeline users would otherwise run. Every phase reads the same clip, one after the
//! other in one process:
//!
//! 1. model only: the ONNX Runtime session on its prepared input tensors (the ceiling);
//! 2. pipeline: the app's stage threads (decode, preprocess, inference, temporal filter, composite) into
//!    a sink that discards, every frame of the clip, as fast as it goes;
//! 3. recording: the same into an H.264 file;
//! 4. live: the engine exactly as the window runs it, minus the drawing: the clip played at its frame rate
//!    and looped like a camera, latest-frame slots, one model session, and a screen that takes the newest
//!    picture: the latency a viewer sees and the frames the model had to skip;
//! 5. with `--reference`, `scripts/reference_pipeline.py` on the same clip, model and thread count.

pub mod clip;
pub mod process_stats;
pub mod reference;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::composite::background::Pacing;
use crate::composite::{Background, CompositeSettings, CompositorKind};
use crate::compositor;
use crate::engine::{
    CompositorSetup, Engine, EngineConfig, EngineError, ModelInput, Received, SinkWriter, SourceChoice, SourceInput,
    Stage, StageTime, Summary,
};
use crate::filter::temporal::TemporalMode;
use crate::frame::Matte;
use crate::infer::{self, InferError, MatterOptions, ModelKind};
use crate::sink::{self, DiscardSink, Sink};
use crate::source::video::VideoSource;
use crate::source::{FrameSource, SourceSpec};
use process_stats::CpuTime;
pub use reference::ReferenceResult;

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error(
        "`mattecam bench` measures MODNet and RVM; BGMv2's cost is printed by `cargo bench --bench plate` on the architecture fixtures"
    )]
    UnsupportedModel,
    #[error("the benchmark needs repeatable frames: use `demo`, `synthetic` or a video or image file, not a camera")]
    Camera,
    #[error("--size {0}x{1}: both sides must be even and at least 32 px")]
    BadSize(u32, u32),
    #[error("--frames {0}: at least {min} frames are needed to time past the start-up", min = MIN_FRAMES)]
    TooFewFrames(u64),
    #[error("could not render the benchmark clip: {0}")]
    Clip(String),
    #[error("could not create a working folder under {}: {reason}", .path.display())]
    WorkDir { path: PathBuf, reason: String },
    #[error(
        "the reference pipeline needs {}: run `make setup-test` (it builds .cache/venv with onnxruntime, numpy and opencv-python-headless), or set MATTECAM_PYTHON to an interpreter that has them",
        .0.display()
    )]
    ReferenceMissing(PathBuf),
    #[error("the reference pipeline failed: {0}")]
    Reference(String),
    #[error("the {phase} phase wrote {written} frames; the pipeline stopped early")]
    Incomplete { phase: &'static str, written: u64 },
    #[error(transparent)]
    Source(#[from] crate::source::SourceError),
    #[error(transparent)]
    Ffmpeg(#[from] crate::ffmpeg::FfmpegError),
    #[error(transparent)]
    Infer(#[from] InferError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Composite(#[from] crate::compositor::CompositorError),
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    #[error(transparent)]
    Manifest(#[from] crate::models::ManifestError),
}

/// Fewest frames a run may ask for: the warm-up frames plus a few timed ones.
pub const MIN_FRAMES: u64 = crate::engine::stats::WARMUP_FRAMES + 3;

/// The background both the app's pipeline and the reference composite over by default: the green of the
/// RVM authors' demo. A colour costs the same in both; a blur would measure the blur.
pub const DEFAULT_BACKGROUND: [u8; 3] = [120, 255, 155];

#[derive(Clone, Debug)]
pub struct BenchOptions {
    pub model: ModelKind,
    pub model_file: Option<PathBuf>,
    pub precision: crate::infer::Precision,
    pub matter: MatterOptions,
    pub source: SourceSpec,
    pub width: u32,
    pub height: u32,
    pub frames: u64,
    pub compositor: CompositorKind,
    pub temporal: TemporalMode,
    pub background: Background,
    pub reference: bool,
    /// Skip the live phase (a smoke test's time).
    pub skip_live: bool,
    /// Sessions matting frames at once, the threads shared between them (`infer::open_matters`).
    pub sessions: usize,
}

/// One phase's throughput and CPU use.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Phase {
    pub fps: f64,
    pub frames: u64,
    /// CPU time of every thread and child process (ffmpeg), per frame.
    pub cpu_ms_per_frame: f64,
}

#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchReport {
    pub model: &'static str,
    /// "fp32" or "int8": which of the model's files ran.
    pub precision: crate::infer::Precision,
    pub source: String,
    pub size: String,
    pub frames: u64,
    pub provider: String,
    /// Intra-op threads in all, shared by the sessions.
    pub intra_threads: usize,
    /// Sessions matting frames at once (frame-independent models); the model-only phase runs as many.
    pub sessions: usize,
    /// ONNX Runtime settings (the reference gets the same).
    pub tuning: crate::infer::RuntimeTuning,
    pub compositor: String,
    pub temporal: TemporalMode,
    pub model_only_fps: f64,
    pub pipeline_fps: f64,
    pub recording_fps: f64,
    pub reference_fps: Option<f64>,
    /// From the live phase (capture to composite), or from the pipeline phase when it was skipped.
    pub latency_ms_p50: f64,
    pub latency_ms_p99: f64,
    /// Frames the live phase's model skipped (the camera delivered faster than it could take them).
    pub dropped_frames: u64,
    pub peak_rss_mb: Option<f64>,
    pub stages: BTreeMap<&'static str, StageTime>,
    /// The ratios the targets are stated in.
    pub pipeline_over_model_only: f64,
    pub recording_over_model_only: f64,
    pub pipeline_over_reference: Option<f64>,
    /// CPU ms a frame costs outside the ONNX Runtime session: the pipeline's CPU per frame less the
    /// model's own (measured in the model-only phase).
    pub outside_model_cpu_ms_per_frame: f64,
    /// One inference (median) plus one camera frame interval, plus one model frame when OFD holds a frame
    /// back: what the live latency median should stay under.
    pub latency_budget_ms: Option<f64>,
    pub model_only: Phase,
    pub model_only_ms: StageTime,
    pub pipeline: Phase,
    pub recording: Phase,
    pub live: Option<Phase>,
    pub live_stages: Option<BTreeMap<&'static str, StageTime>>,
    pub reference: Option<ReferenceResult>,
}

/// A folder removed with everything in it when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> Result<Self, BenchError> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let path = std::env::temp_dir().join(format!("mattecam-bench-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path)
            .map_err(|err| BenchError::WorkDir { path: path.clone(), reason: err.to_string() })?;
        Ok(Self(path))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn run(options: &BenchOptions, progress: &mut dyn FnMut(&str)) -> Result<BenchReport, BenchError> {
    if options.model == ModelKind::Bgmv2 {
        return Err(BenchError::UnsupportedModel);
    }
    if options.width < 32 || options.height < 32 || options.width % 2 == 1 || options.height % 2 == 1 {
        return Err(BenchError::BadSize(options.width, options.height));
    }
    if options.frames < MIN_FRAMES {
        return Err(BenchError::TooFewFrames(options.frames));
    }
    if matches!(options.source, SourceSpec::Camera { .. }) {
        return Err(BenchError::Camera);
    }
    infer::check_sessions(options.model, options.sessions)?;
    // The same number of threads for every phase and for the reference, whatever ONNX Runtime would pick.
    let threads = infer::resolve_threads(options.matter.session.threads);
    let mut matter_options = options.matter.clone();
    matter_options.session.threads = threads;
    if options.reference {
        reference::check_available()?;
    }
    let resolved = crate::models::resolve_model_file(
        options.model,
        options.model_file.as_deref(),
        options.precision,
        options.matter.session.provider,
    )?;
    if let Some(note) = &resolved.note {
        progress(note);
    }
    let model_file = resolved.path.clone();
    let work = WorkDir::create()?;
    progress(&format!(
        "rendering {} frames of {} at {}x{}",
        options.frames,
        describe_source(&options.source),
        options.width,
        options.height
    ));
    let clip = clip::render(&options.source, options.width, options.height, options.frames, &work.0.join("clip.mp4"))?;
    let clip_spec = SourceSpec::Path(clip.clone());

    progress("model only");
    let (model_only, model_only_ms, provider) = model_only_phase(options, &model_file, &matter_options, &clip)?;

    let settings = CompositeSettings { background: options.background.clone(), ..Default::default() };
    let open_compositor =
        || compositor::open(options.compositor, settings.clone(), Pacing::OnePerFrame).map(|(c, _)| c);
    let compositor_name = open_compositor()?.describe();
    let file_run = |source: Box<dyn FrameSource>, sinks: Vec<Box<dyn Sink>>| -> Result<EngineConfig, BenchError> {
        Ok(EngineConfig {
            source: SourceInput::File(source),
            model: ModelInput::Opened(infer::open_matters(
                options.model,
                &model_file,
                &matter_options,
                options.sessions,
            )?),
            temporal: options.temporal,
            composite: settings.clone(),
            compositor: CompositorSetup::Opened(open_compositor()?),
            plate: None,
            writer: Some(SinkWriter::new(sinks)),
            max_frames: None,
            notify: std::sync::Arc::new(|| {}),
            hold_rate: None,
        })
    };

    progress("pipeline");
    let discard: Vec<Box<dyn Sink>> = vec![Box::new(DiscardSink::default())];
    let (pipeline, pipeline_summary) = file_phase("pipeline", file_run(crate::source::open(&clip_spec)?, discard)?)?;
    progress("recording (H.264)");
    let recording_path = work.0.join("recording.mp4");
    let recorder = sink::VideoSink::create(
        sink::VideoKind::H264 { crf: sink::DEFAULT_CRF },
        &recording_path,
        options.width,
        options.height,
        clip::CLIP_FPS,
        true,
    )?;
    let (recording, _) =
        file_phase("recording", file_run(crate::source::open(&clip_spec)?, vec![Box::new(recorder)])?)?;
    let live = if options.skip_live {
        None
    } else {
        progress("live (the window's engine, paced like a camera)");
        // One session, as the window runs: what a viewer sees is a frame's latency, not the throughput.
        let config = EngineConfig {
            source: SourceInput::Live(SourceChoice::Video { path: clip.clone() }),
            model: ModelInput::Opened(infer::open_matters(options.model, &model_file, &matter_options, 1)?),
            temporal: options.temporal,
            composite: settings.clone(),
            compositor: CompositorSetup::Kind(options.compositor),
            plate: None,
            writer: None,
            max_frames: None,
            notify: std::sync::Arc::new(|| {}),
            hold_rate: None,
        };
        Some(live_phase(config, options.frames)?)
    };
    let reference = if options.reference {
        progress("reference pipeline (Python)");
        // The reference is the float model, whatever precision ours ran at.
        let float = crate::models::resolve_model_file(
            options.model,
            options.model_file.as_deref(),
            infer::Precision::Fp32,
            options.matter.session.provider,
        )?;
        Some(reference::run(&reference::ReferenceRun {
            model: options.model,
            model_file: &float.path,
            clip: &clip,
            frames: options.frames,
            threads,
            ref_size: options.matter.ref_size.unwrap_or(infer::modnet::DEFAULT_REF_SIZE),
            downsample_ratio: options
                .matter
                .downsample_ratio
                .unwrap_or_else(|| infer::rvm::auto_downsample_ratio(options.width, options.height)),
            background: match &options.background {
                Background::Color(rgb) => *rgb,
                _ => DEFAULT_BACKGROUND,
            },
            tuning: options.matter.session.tuning,
        })?)
    } else {
        None
    };

    let stage_map = |summary: &Summary| -> BTreeMap<&'static str, StageTime> {
        summary.stages.iter().map(|(stage, time)| (stage.name(), *time)).collect()
    };
    let stage_of = |summary: &Summary, wanted: Stage| {
        summary.stages.iter().find(|(stage, _)| *stage == wanted).map(|(_, time)| *time).unwrap_or_default()
    };
    let latency_source = live.as_ref().map_or(&pipeline_summary, |(_, summary)| summary);
    let latency = stage_of(latency_source, Stage::Latency);
    let latency_budget_ms = live.as_ref().map(|(phase, summary)| {
        let held_back_ms = if options.temporal == TemporalMode::Ofd { 1000.0 / phase.fps.max(1e-3) } else { 0.0 };
        stage_of(summary, Stage::Infer).p50_ms + 1000.0 / clip::CLIP_FPS + held_back_ms
    });
    let model_cpu_ms = model_only.cpu_ms_per_frame;
    Ok(BenchReport {
        model: options.model.name(),
        precision: resolved.precision,
        source: describe_source(&options.source),
        size: format!("{}x{}", options.width, options.height),
        frames: options.frames,
        provider: provider.to_string(),
        intra_threads: threads,
        sessions: options.sessions.max(1),
        tuning: options.matter.session.tuning,
        compositor: compositor_name,
        temporal: options.temporal,
        model_only_fps: model_only.fps,
        pipeline_fps: pipeline.fps,
        recording_fps: recording.fps,
        reference_fps: reference.as_ref().map(|r| r.fps),
        latency_ms_p50: latency.p50_ms,
        latency_ms_p99: latency.p99_ms,
        dropped_frames: live.as_ref().map_or(0, |(_, summary)| summary.stats.frames_dropped),
        peak_rss_mb: process_stats::peak_rss_mb(),
        stages: stage_map(&pipeline_summary),
        pipeline_over_model_only: pipeline.fps / model_only.fps,
        recording_over_model_only: recording.fps / model_only.fps,
        pipeline_over_reference: reference.as_ref().map(|r| pipeline.fps / r.fps),
        outside_model_cpu_ms_per_frame: pipeline.cpu_ms_per_frame - model_cpu_ms,
        latency_budget_ms,
        model_only,
        model_only_ms,
        pipeline,
        recording,
        live_stages: live.as_ref().map(|(_, summary)| stage_map(summary)),
        live: live.map(|(phase, _)| phase),
        reference,
    })
}

fn describe_source(source: &SourceSpec) -> String {
    match source {
        SourceSpec::Demo => "demo".to_string(),
        SourceSpec::Synthetic { .. } => "synthetic".to_string(),
        SourceSpec::Camera { index } => format!("camera:{index}"),
        SourceSpec::Path(path) => crate::paths::display(path),
    }
}

/// The sessions alone, on the tensors the first frame of the clip left prepared; several sessions run at
/// once, each on its own thread, as the pipeline runs them.
fn model_only_phase(
    options: &BenchOptions,
    model_file: &Path,
    matter_options: &MatterOptions,
    clip: &Path,
) -> Result<(Phase, StageTime, crate::infer::ProviderInUse), BenchError> {
    let mut matters = infer::open_matters(options.model, model_file, matter_options, options.sessions)?;
    let provider = matters[0].provider().clone();
    let mut source = VideoSource::open(clip)?;
    let frame = source.next_frame(Vec::new())?.ok_or_else(|| BenchError::Clip("the clip holds no frame".into()))?;
    drop(source);
    let mut matte = Matte::default();
    // As many untimed runs as the pipeline phases leave out.
    for matter in matters.iter_mut() {
        for _ in 0..crate::engine::stats::WARMUP_FRAMES {
            matter.infer(&frame, &mut matte)?;
        }
    }
    let sessions = matters.len() as u64;
    let per_session = (options.frames - crate::engine::stats::WARMUP_FRAMES).div_ceil(sessions);
    let cpu_before = CpuTime::now();
    let started = Instant::now();
    let runs: Vec<Result<Vec<f32>, InferError>> = std::thread::scope(|scope| {
        let handles: Vec<_> = matters
            .iter_mut()
            .enumerate()
            .map(|(k, matter)| {
                std::thread::Builder::new()
                    .name(format!("model-only-{}", k + 1))
                    .spawn_scoped(scope, move || {
                        let mut times_ms = Vec::with_capacity(per_session as usize);
                        for _ in 0..per_session {
                            let run_started = Instant::now();
                            matter.run_model_only()?;
                            times_ms.push(run_started.elapsed().as_secs_f64() as f32 * 1000.0);
                        }
                        Ok(times_ms)
                    })
                    .expect("failed to spawn a benchmark thread")
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a model-only thread panicked")).collect()
    });
    let elapsed_s = started.elapsed().as_secs_f64();
    let mut times_ms = Vec::new();
    for run in runs {
        times_ms.extend(run?);
    }
    let timed = times_ms.len() as u64;
    let cpu = cpu_per_frame(cpu_before, timed);
    let phase = Phase { fps: timed as f64 / elapsed_s, frames: timed, cpu_ms_per_frame: cpu };
    Ok((phase, StageTime::of(&mut times_ms), provider))
}

fn cpu_per_frame(before: Option<CpuTime>, frames: u64) -> f64 {
    match (before, CpuTime::now()) {
        (Some(before), Some(after)) => after.since(&before).total_ms() / frames.max(1) as f64,
        _ => f64::NAN,
    }
}

/// Runs a file run to the end of its source.
fn file_phase(name: &'static str, config: EngineConfig) -> Result<(Phase, Summary), BenchError> {
    let SourceInput::File(source) = &config.source else { unreachable!("a file phase reads a file") };
    let expected = source.info().frame_count;
    let cpu_before = CpuTime::now();
    let summary = Engine::start(config).wait()?;
    let written = summary.stats.frames_written;
    let wanted = expected.unwrap_or(written);
    if written < wanted.min(MIN_FRAMES) || summary.stats.steady_fps.is_none() {
        return Err(BenchError::Incomplete { phase: name, written });
    }
    let phase = Phase {
        fps: summary.stats.steady_fps.unwrap_or_default(),
        frames: written,
        cpu_ms_per_frame: cpu_per_frame(cpu_before, written),
    };
    Ok((phase, summary))
}

/// The live engine until `frames` frames were composited, with a screen that takes the newest picture as
/// the window does.
fn live_phase(config: EngineConfig, frames: u64) -> Result<(Phase, Summary), BenchError> {
    let cpu_before = CpuTime::now();
    let engine = Engine::start(config);
    let screen = engine.subscribe_screen();
    while engine.snapshot().frames_composited < frames && !engine.is_finished() {
        if let Received::Value(output) = screen.recv_timeout(std::time::Duration::from_millis(50)) {
            engine.record_shown(&output);
        }
        if let Some(failure) = engine.status().failure() {
            return Err(BenchError::Clip(failure));
        }
    }
    engine.stop();
    let summary = engine.wait()?;
    let composited = summary.stats.frames_composited;
    if composited < MIN_FRAMES || summary.stats.steady_fps.is_none() {
        return Err(BenchError::Incomplete { phase: "live", written: composited });
    }
    let phase = Phase {
        fps: summary.stats.steady_fps.unwrap_or_default(),
        frames: composited,
        cpu_ms_per_frame: cpu_per_frame(cpu_before, composited),
    };
    Ok((phase, summary))
}

impl BenchReport {
    /// The table `mattecam bench` prints.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, text: String| {
            out.push_str(&text);
            out.push('\n');
        };
        line(
            &mut out,
            format!(
                "{} {} on {} at {}, {} frames; {} with {} intra-op threads in {} session(s) ({:?}); compositor {}; temporal {:?}",
                self.model,
                self.precision,
                self.source,
                self.size,
                self.frames,
                self.provider,
                self.intra_threads,
                self.sessions,
                self.tuning,
                self.compositor,
                self.temporal
            ),
        );
        line(&mut out, "| phase | fps | x model only | CPU ms/frame |".to_string());
        line(&mut out, "|---|---|---|---|".to_string());
        let row = |out: &mut String, name: &str, phase: &Phase| {
            line(
                out,
                format!(
                    "| {name} | {:.2} | {:.3} | {:.1} |",
                    phase.fps,
                    phase.fps / self.model_only_fps,
                    phase.cpu_ms_per_frame
                ),
            )
        };
        row(&mut out, "model only", &self.model_only);
        row(&mut out, "pipeline", &self.pipeline);
        row(&mut out, "recording (H.264)", &self.recording);
        if let Some(live) = &self.live {
            row(&mut out, "live (the window's engine, paced 30 fps)", live);
        }
        if let Some(reference) = &self.reference {
            line(
                &mut out,
                format!(
                    "| reference (Python) | {:.2} | {:.3} | - |",
                    reference.fps,
                    reference.fps / self.model_only_fps
                ),
            );
        }
        line(&mut out, String::new());
        line(&mut out, "| stage (pipeline phase) | p50 ms | p99 ms | mean ms |".to_string());
        line(&mut out, "|---|---|---|---|".to_string());
        line(
            &mut out,
            format!(
                "| model only | {:.2} | {:.2} | {:.2} |",
                self.model_only_ms.p50_ms, self.model_only_ms.p99_ms, self.model_only_ms.mean_ms
            ),
        );
        for stage in Stage::ALL {
            if let Some(time) = self.stages.get(stage.name()) {
                line(
                    &mut out,
                    format!("| {} | {:.2} | {:.2} | {:.2} |", stage.name(), time.p50_ms, time.p99_ms, time.mean_ms),
                );
            }
        }
        line(&mut out, String::new());
        line(
            &mut out,
            format!(
                "pipeline / model only {:.3}; recording / model only {:.3}{}",
                self.pipeline_over_model_only,
                self.recording_over_model_only,
                self.pipeline_over_reference.map(|r| format!("; pipeline / reference {r:.3}")).unwrap_or_default()
            ),
        );
        line(
            &mut out,
            format!(
                "CPU outside the model: {:.1} ms/frame (pipeline {:.1}, model alone {:.1})",
                self.outside_model_cpu_ms_per_frame, self.pipeline.cpu_ms_per_frame, self.model_only.cpu_ms_per_frame
            ),
        );
        line(
            &mut out,
            format!(
                "latency capture -> composite: median {:.0} ms, p99 {:.0} ms{}; dropped {} frames",
                self.latency_ms_p50,
                self.latency_ms_p99,
                self.latency_budget_ms.map(|b| format!(" (budget {b:.0} ms)")).unwrap_or_default(),
                self.dropped_frames
            ),
        );
        if let Some(peak) = self.peak_rss_mb {
            line(&mut out, format!("peak RSS {peak:.0} MB"));
        }
        out
    }
}
