//! The `mattecam` command line: the edge where library errors become messages and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use mattecam::composite::{AlphaStage, Background, CompositeSettings, CompositorKind, EdgeControls, Upsample, View};
use mattecam::eval::{self, Region, dataset};
use mattecam::filter::temporal::TemporalMode;
use mattecam::infer::{self, MatterOptions, ModelKind, Optimization, ProviderRequest, RuntimeTuning, SessionOptions};
use mattecam::models::{self, FileStatus};
use mattecam::paths::display;
use mattecam::plate::{Perturbation, Plate, PlateAverager, PlateOptions, PlatedMatter};
use mattecam::process::{self, ProcessOptions};
use mattecam::source::{SourceSpec, camera};

#[derive(Parser)]
#[command(
    name = "mattecam",
    version,
    about = "Real-time matting: cut people out of video and put them over a new background."
)]
struct Cli {
    /// Without a subcommand: open the window.
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    window: WindowArgs,
}

/// The window (no subcommand). Options given here override the saved settings for this run.
#[derive(Args)]
struct WindowArgs {
    /// `camera[:N]`, `demo`, a video file (looped), an image or `synthetic[:WxH[@FPS]]`.
    #[arg(long)]
    source: Option<String>,
    #[arg(long, value_enum)]
    model: Option<ModelKind>,
    /// As for `process`: `blur[:RADIUS_PX]`, `color:#RRGGBB`, `image:PATH`, `video:PATH`, `transparent`.
    #[arg(long)]
    background: Option<String>,
    #[arg(long, value_enum)]
    temporal: Option<TemporalMode>,
    /// Settings file (default: the platform's data folder, e.g. ~/.local/share/mattecam/app.ron).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Close after this many frames have been shown (for checking the window headless).
    #[arg(long)]
    frames: Option<u64>,
    /// With --frames: save a PNG screenshot of the window here before closing.
    #[arg(long, requires = "frames")]
    screenshot: Option<PathBuf>,
    /// Start recording as soon as the picture shows (R, the Record button or closing the window stops it).
    #[arg(long)]
    record: bool,
    /// Where recordings go (kept in the settings).
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// The recording format (kept in the settings).
    #[arg(long, value_enum)]
    record_format: Option<mattecam::sink::Format>,
}

#[derive(Subcommand)]
enum Command {
    /// Matte a video, image, folder of images, camera or synthetic source and write the composite.
    Process(ProcessArgs),
    /// Record a live source (camera, or a file played in real time) for a while, without a window.
    Record(RecordArgs),
    /// Measure matte quality (SAD, MSE, MAD, Grad, Conn, dtSSD, flicker) on exact-ground-truth data.
    Eval(EvalArgs),
    /// Capture a clean background plate: the median of N frames of a source (step out of the picture).
    Plate(PlateArgs),
    /// List the models, their licences and whether each is present and verified.
    Models,
    /// List the cameras found and the demo media.
    Sources,
    /// Measure speed: the model alone, the whole pipeline, recording, live latency, and optionally the
    /// Python reference pipeline, on the same frames.
    Bench(BenchArgs),
}

#[derive(Args)]
struct BenchArgs {
    #[arg(long, value_enum, default_value_t = ModelKind::Modnet)]
    model: ModelKind,
    /// Load the model from this file instead of the one `make setup` fetched.
    #[arg(long)]
    model_file: Option<PathBuf>,
    /// `demo`, `synthetic` or a video or image file; rendered once to an H.264 clip of --size.
    #[arg(long, default_value = "demo")]
    source: String,
    /// Frame size, WxH.
    #[arg(long, default_value = "1280x720")]
    size: String,
    /// Frames per phase (the first few of each are not timed).
    #[arg(long, default_value_t = 100)]
    frames: u64,
    #[arg(long, value_enum, default_value_t = ProviderRequest::Auto)]
    provider: ProviderRequest,
    /// `cpu`, `gpu` (a software Vulkan device counts) or `auto` (a hardware GPU when found).
    #[arg(long, value_enum, default_value_t = CompositorKind::Cpu)]
    compositor: CompositorKind,
    #[arg(long, value_enum, default_value_t = TemporalMode::Ofd)]
    temporal: TemporalMode,
    /// What the person is composited over (default: a colour, as the reference does).
    #[arg(long)]
    background: Option<String>,
    /// Intra-op threads for the model (0: one per core); the reference gets the same number.
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// MODNet: shorter side of the model input.
    #[arg(long)]
    ref_size: Option<u32>,
    /// RVM: downsample ratio (default: chosen from the frame size).
    #[arg(long)]
    downsample_ratio: Option<f32>,
    /// ONNX Runtime: let worker threads spin between operators (default off).
    #[arg(long)]
    ort_spinning: bool,
    /// ONNX Runtime: graph optimisation level.
    #[arg(long, value_enum, default_value_t = Optimization::All)]
    ort_optimization: Optimization,
    /// ONNX Runtime: no CPU memory arena.
    #[arg(long)]
    ort_no_arena: bool,
    /// Also run scripts/reference_pipeline.py (Python, OpenCV, NumPy) on the same clip and threads.
    #[arg(long)]
    reference: bool,
    /// Leave out the live phase (paced like a camera).
    #[arg(long)]
    no_live: bool,
    /// Model sessions matting frames at once, sharing the threads (MODNet only; the model-only phase runs
    /// as many at once). Default: 2 for MODNet on the CPU with 2 threads or more, else 1.
    #[arg(long)]
    sessions: Option<usize>,
    /// Write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Args)]
struct ProcessArgs {
    /// A video file, an image, a folder of images, `demo`, `synthetic[:WxH[@FPS]]` or `camera[:N]`.
    input: String,
    /// A .mp4, .mov or .webm file, a .png file (single image) or a folder (PNG sequence).
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    recording: RecordingArgs,
    /// `blur`, `blur:RADIUS_PX`, `color:#RRGGBB`, `image:PATH`, `video:PATH` (looped), or `transparent` /
    /// `transparent:premultiplied` (not in MP4). Default: the cutout (transparent) for the alpha formats
    /// (prores, webm-alpha, png sequences), `blur` otherwise.
    #[arg(long)]
    background: Option<String>,
    /// Where compositing runs: `auto` uses a hardware GPU when one is found, else the CPU, and says so;
    /// `gpu` also accepts a software Vulkan device (lavapipe).
    #[arg(long, value_enum, default_value_t = CompositorKind::Auto)]
    compositor: CompositorKind,
    /// Edge: alpha that maps to one half (raise to drop faint fringes).
    #[arg(long, default_value_t = 0.5)]
    threshold: f32,
    /// Edge: slope of the alpha curve around the threshold (1 keeps the model's soft edges).
    #[arg(long, default_value_t = 1.0)]
    contrast: f32,
    /// Edge: erode the matte by this many pixels (negative: dilate).
    #[arg(long, default_value_t = 0, allow_hyphen_values = true)]
    shrink_px: i32,
    /// Edge: soften the matte with a Gaussian of this radius in pixels.
    #[arg(long, default_value_t = 0)]
    feather_px: u32,
    /// Flip the picture left to right (the background image or video stays as it is).
    #[arg(long)]
    mirror: bool,
    /// Also write each frame's alpha as an 8-bit PNG (named by frame index) into this folder.
    #[arg(long)]
    alpha_dir: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
    /// Model sessions matting frames at once, sharing the threads (MODNet only). Default: as
    /// `infer::default_sessions` picks (2 for MODNet on the CPU with 2 threads or more, else 1).
    #[arg(long)]
    sessions: Option<usize>,
    #[command(flatten)]
    model: ModelArgs,
}

/// What a recording or a `process` run writes.
#[derive(Args)]
struct RecordingArgs {
    /// `mp4` (composite, H.264), `prores` (cutout with alpha, ProRes 4444 .mov), `webm-alpha` (cutout with
    /// alpha, VP9 .webm), `png` (a folder of PNGs) or `matte` (the alpha as a gray H.264 .mp4). Default:
    /// from the output's extension.
    #[arg(long, value_enum)]
    format: Option<mattecam::sink::Format>,
    /// H.264 / VP9 quality (constant rate factor: lower is better and bigger).
    #[arg(long, default_value_t = mattecam::sink::DEFAULT_CRF, value_parser = clap::value_parser!(u8).range(0..=51))]
    crf: u8,
    /// Also write the source video, frame-aligned, as NAME.source.mp4 (e.g. beside a matte).
    #[arg(long)]
    with_source: bool,
}

#[derive(Args)]
struct RecordArgs {
    /// `camera[:N]`, `demo`, a video file (played in real time, looped) or `synthetic[:WxH[@FPS]]`.
    #[arg(long, default_value = "camera")]
    source: String,
    /// How long to record; Ctrl-C ends the take earlier and keeps it.
    #[arg(long)]
    seconds: f64,
    /// The file (or folder, for `--format png`) to write.
    #[arg(short, long)]
    output: PathBuf,
    #[command(flatten)]
    recording: RecordingArgs,
    /// As for `process` (default: the cutout for the alpha formats, `blur` otherwise).
    #[arg(long)]
    background: Option<String>,
    /// Flip the picture left to right, as a webcam preview does (and the source video beside it).
    #[arg(long)]
    mirror: bool,
    #[arg(long, value_enum, default_value_t = ModelKind::Rvm)]
    model: ModelKind,
    #[arg(long, value_enum, default_value_t = TemporalMode::Ofd)]
    temporal: TemporalMode,
    #[arg(long, value_enum, default_value_t = Upsample::Area)]
    upsample: Upsample,
    /// Where the recording is composited (`auto`: a hardware GPU when found, else the CPU).
    #[arg(long, value_enum, default_value_t = CompositorKind::Auto)]
    compositor: CompositorKind,
    /// Frames the recorder may queue while the encoder catches up; beyond this, frames are dropped
    /// and counted.
    #[arg(long, default_value_t = mattecam::record::DEFAULT_QUEUE_FRAMES)]
    queue_frames: usize,
}

/// How alpha is predicted: shared by `process` and `eval`.
#[derive(Args)]
struct ModelArgs {
    #[arg(long, value_enum, default_value_t = ModelKind::Modnet)]
    model: ModelKind,
    /// Load the model from this file instead of the one `make setup` fetched (BGMv2: the weights you
    /// downloaded; see `mattecam models`).
    #[arg(long)]
    model_file: Option<PathBuf>,
    /// A clean background plate (the scene without the person, at the input's size; `mattecam plate`
    /// captures one): BGMv2 needs it; MODNet and RVM use it for plate assistance.
    #[arg(long)]
    plate: Option<PathBuf>,
    /// Do not use the plate to push alpha toward 0 where the frame shows it (MODNet, RVM).
    #[arg(long)]
    no_plate_assist: bool,
    #[arg(long, value_enum, default_value_t = TemporalMode::Off)]
    temporal: TemporalMode,
    /// How alpha is resized from model to frame resolution.
    #[arg(long, value_enum, default_value_t = Upsample::Area)]
    upsample: Upsample,
    /// Inference threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    #[arg(long, value_enum, default_value_t = ProviderRequest::Auto)]
    provider: ProviderRequest,
    /// MODNet: shorter side of the model input, in pixels.
    #[arg(long)]
    ref_size: Option<u32>,
    /// RVM: downsample ratio (default: chosen from the frame size).
    #[arg(long)]
    downsample_ratio: Option<f32>,
}

impl ModelArgs {
    fn matter_options(&self) -> MatterOptions {
        MatterOptions {
            session: SessionOptions { threads: self.threads, provider: self.provider, ..Default::default() },
            ref_size: self.ref_size,
            downsample_ratio: self.downsample_ratio,
        }
    }

    fn plate_options(&self) -> PlateOptions {
        PlateOptions { assist: !self.no_plate_assist, ..PlateOptions::default() }
    }

    fn model_file(&self) -> anyhow::Result<PathBuf> {
        Ok(match &self.model_file {
            Some(path) => path.clone(),
            None => models::default_model_file(self.model)?,
        })
    }

    fn describe(&self) -> String {
        let size = match self.model {
            ModelKind::Modnet => format!("ref size {}", self.ref_size.unwrap_or(infer::modnet::DEFAULT_REF_SIZE)),
            ModelKind::Rvm => match self.downsample_ratio {
                Some(r) => format!("downsample ratio {r}"),
                None => "downsample ratio auto".to_string(),
            },
            ModelKind::Bgmv2 => "full resolution, with the plate".to_string(),
        };
        let plate = match (&self.plate, self.model) {
            (None, _) => String::new(),
            (Some(_), ModelKind::Bgmv2) => ", with plate".to_string(),
            (Some(_), _) if self.no_plate_assist => ", plate unused".to_string(),
            (Some(_), _) => ", plate assistance".to_string(),
        };
        format!("{} ({size}{plate})", self.model.name())
    }
}

#[derive(Args)]
struct EvalArgs {
    /// A folder in the RVM/BGMv2 evaluation layout: `com/`, `pha/`, optional `bgr/`.
    #[arg(long, conflicts_with_all = ["cutouts", "video"])]
    dataset: Option<PathBuf>,
    /// Treat the dataset folder as stills even if its files are named by frame index.
    #[arg(long, requires = "dataset")]
    stills: bool,
    /// Straight-alpha RGBA cutouts (files or folders) to composite over `--backgrounds`.
    #[arg(long, num_args = 1.., requires = "backgrounds", conflicts_with = "video")]
    cutouts: Vec<PathBuf>,
    /// Background images (files or folders).
    #[arg(long, num_args = 1..)]
    backgrounds: Vec<PathBuf>,
    /// Generate clips of this many frames (one per cutout, the person moving) instead of stills.
    #[arg(long)]
    clip_frames: Option<usize>,
    /// Size of generated samples (default 1920x1080 for stills, 1280x720 for clips).
    #[arg(long)]
    size: Option<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Camera-like noise on generated composites: `SIGMA:JPEG_QUALITY`, e.g. `3:80`.
    #[arg(long)]
    noise: Option<String>,
    /// A real video: no-reference flicker only.
    #[arg(long)]
    video: Option<PathBuf>,
    /// With --video: frames to read.
    #[arg(long)]
    max_frames: Option<u64>,
    #[arg(long, value_enum, default_value_t = Region::Whole)]
    region: Region,
    /// Where alpha is upsampled: the GPU runs the app's compositor shaders (`auto`: a hardware GPU when
    /// found; `gpu` also accepts a software one).
    #[arg(long, value_enum, default_value_t = CompositorKind::Auto)]
    compositor: CompositorKind,
    /// Write per-item and mean figures as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write predicted alphas (`pha/`) and prediction | truth | error images (`compare/`) here.
    #[arg(long)]
    save_dir: Option<PathBuf>,
    /// Give the model each sample's own clean background (generated samples, or a dataset's `bgr/`) as
    /// its plate: `exact`, or `perturbed` as a real capture drifts (2 px shift, gain 1.03, noise sigma 2).
    #[arg(long, value_enum, conflicts_with_all = ["plate", "video"])]
    sample_plate: Option<SamplePlate>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SamplePlate {
    Exact,
    Perturbed,
}

#[derive(Args)]
struct PlateArgs {
    /// `camera[:N]`, `demo`, a video file, an image or `synthetic[:WxH[@FPS]]`.
    #[arg(long, default_value = "camera")]
    source: String,
    /// The plate to write (PNG).
    #[arg(short, long)]
    output: PathBuf,
    /// Frames to take the per-pixel median of (someone crossing during the capture is left out).
    #[arg(long, default_value_t = mattecam::plate::DEFAULT_PLATE_FRAMES)]
    frames: usize,
    /// Seconds to wait before the capture, to step out of the picture (a camera's frames meanwhile are
    /// read and dropped).
    #[arg(long, default_value_t = 0.0)]
    delay_s: f64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The Vulkan loader's messages while wgpu looks for adapters are not ours to report: a
                // missing GPU gets one line of its own.
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,wgpu_hal=off,wgpu_core=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        None => run_window(cli.window),
        Some(Command::Process(args)) => run_process(args),
        Some(Command::Record(args)) => run_record(args),
        Some(Command::Eval(args)) => run_eval(args),
        Some(Command::Plate(args)) => run_plate(args),
        Some(Command::Models) => list_models(),
        Some(Command::Sources) => list_sources(),
        Some(Command::Bench(args)) => run_bench(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_window(args: WindowArgs) -> anyhow::Result<ExitCode> {
    use mattecam::live::{ModelChoice, SourceChoice};
    use mattecam::ui::{self, Command as UiCommand, RunRequest};

    let mut overrides = Vec::new();
    if let Some(source) = &args.source {
        let spec: SourceSpec = source.parse()?;
        overrides.push(UiCommand::SetSource(SourceChoice::from_spec(&spec)));
    }
    if let Some(kind) = args.model {
        overrides.push(UiCommand::SetModel(ModelChoice { kind, ..ModelChoice::default() }));
    }
    if let Some(mode) = args.temporal {
        overrides.push(UiCommand::SetTemporal(mode));
    }
    if let Some(background) = &args.background {
        let background: Background = background.parse()?;
        overrides.push(UiCommand::SetBackground(background));
    }
    if let Some(dir) = &args.record_dir {
        overrides.push(UiCommand::SetRecordingDir(dir.clone()));
    }
    if let Some(format) = args.record_format {
        overrides.push(UiCommand::SetRecordingFormat(format));
    }
    let request = RunRequest { frames: args.frames, screenshot: args.screenshot.clone(), record: args.record };
    let outcome = ui::run(args.settings, overrides, request)?;
    if let Some(error) = outcome.error {
        anyhow::bail!("the window stopped after {} frames: {error}", outcome.stats.frames_presented);
    }
    let stats = &outcome.stats;
    println!(
        "{}: shown {} frames at {:.1} fps (capture {:.1} fps); inference {:.1} ms, composite {:.1} ms, latency median {:.0} ms (max {:.0}), dropped {} ({} before the model, {} before the screen)",
        outcome.model,
        stats.frames_presented,
        stats.presented_fps,
        stats.capture_fps,
        stats.infer_ms,
        stats.composite_ms,
        stats.latency_ms_p50,
        stats.latency_ms_max,
        stats.dropped_frames(),
        stats.dropped_before_infer,
        stats.dropped_before_present
    );
    for report in &outcome.recordings {
        println!("{}", ui::recording_notice(report));
    }
    if let Some(error) = outcome.recordings.iter().find_map(|report| report.error.as_ref()) {
        anyhow::bail!("the recording stopped early: {error}");
    }
    if let Some(path) = outcome.screenshot {
        println!("screenshot of the window after {} frames: {}", outcome.stats.frames_presented, display(&path));
    } else if args.screenshot.is_some() {
        anyhow::bail!("the window closed before the screenshot was taken");
    }
    Ok(ExitCode::SUCCESS)
}

fn run_process(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let background: Option<Background> = args.background.as_deref().map(str::parse).transpose()?;
    let input: SourceSpec = args.input.parse()?;
    let edges = EdgeControls {
        threshold: args.threshold,
        contrast: args.contrast,
        shrink_px: args.shrink_px,
        feather_px: args.feather_px,
    };
    if edges.clamped() != edges {
        anyhow::bail!(
            "edge controls out of range: threshold 0..=1, contrast 0.1..=50, shrink and feather up to {} px",
            mattecam::composite::edges::MAX_EDGE_PX
        );
    }
    let options = ProcessOptions {
        input,
        output: args.output.clone(),
        model: args.model.model,
        model_file: args.model.model_file.clone(),
        matter: args.model.matter_options(),
        background,
        composite: CompositeSettings {
            background: Background::default(),
            upsample: args.model.upsample,
            edges,
            mirror: args.mirror,
            view: View::Composite,
        },
        compositor: args.compositor,
        temporal: args.model.temporal,
        format: args.recording.format,
        crf: args.recording.crf,
        with_source: args.recording.with_source,
        alpha_dir: args.alpha_dir.clone(),
        max_frames: args.max_frames,
        plate: args.model.plate.clone(),
        plate_options: args.model.plate_options(),
        sessions: args.sessions.unwrap_or_else(|| {
            // Plate assistance carries a fit from frame to frame: one session.
            if args.model.plate.is_some() {
                1
            } else {
                infer::default_sessions(args.model.model, args.model.provider, args.model.threads)
            }
        }),
    };
    let started = process::start(&options)?;
    for notice in [&started.compositor_notice, &started.model_notice].into_iter().flatten() {
        eprintln!("{notice}");
    }
    let (pipeline, compositor) = (started.pipeline, started.compositor);
    if let Ok(library) = infer::runtime_library() {
        eprintln!("ONNX Runtime: {}", display(&library));
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

    let source = pipeline.source().clone();
    let bar = match source.frames_to_read(args.max_frames) {
        Some(n) => indicatif::ProgressBar::new(n),
        None => indicatif::ProgressBar::new_spinner(),
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {wide_bar} {pos}/{len} frames ({per_sec}) {msg}",
        )
        .expect("valid template"),
    );
    while !pipeline.is_finished() {
        // Ctrl-C ends the run and keeps what was done, finalised: the user decides what to do with it.
        if interrupted.load(Ordering::SeqCst) {
            pipeline.stop();
        }
        let stats = pipeline.stats();
        bar.set_position(stats.frames_written);
        bar.set_message(format!("model {:.0} ms/frame", stats.infer_ms_mean));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    let summary = pipeline.wait()?;
    let s = &summary.stats;
    if interrupted.load(Ordering::SeqCst) && !source.live {
        eprintln!(
            "interrupted: {} holds the first {} frames of {}",
            display(&args.output),
            s.frames_written,
            summary.source.name
        );
        return Ok(ExitCode::from(130));
    }
    println!(
        "wrote {}{}: {} frames of {} in {:.1} s ({:.1} fps), model {:.1} ms/frame, composite {:.1} ms/frame ({}), provider {}",
        display(&args.output),
        args.alpha_dir.as_ref().map(|d| format!(" and alpha PNGs in {}", display(d))).unwrap_or_default(),
        s.frames_written,
        summary.source.name,
        summary.elapsed_s,
        summary.fps(),
        s.infer_ms_mean,
        s.composite_ms_mean,
        compositor,
        summary.provider,
    );
    Ok(ExitCode::SUCCESS)
}

fn run_record(args: RecordArgs) -> anyhow::Result<ExitCode> {
    use mattecam::live::{LiveConfig, LiveSession, ModelChoice, ModelState, SourceChoice, SourceState};
    use mattecam::record::{Clock, RecordOptions};
    use mattecam::sink::{Format, OutputSpec};

    anyhow::ensure!(args.seconds > 0.0, "--seconds must be more than 0");
    let spec: SourceSpec = args.source.parse()?;
    let format = match args.recording.format {
        Some(format) => format,
        None => Format::from_path(&args.output)?,
    };
    let background: Background = match &args.background {
        Some(text) => text.parse()?,
        None => format.default_background(),
    };
    let output = OutputSpec {
        path: args.output.clone(),
        format,
        crf: args.recording.crf,
        with_source: args.recording.with_source,
        mirror: args.mirror,
    };
    format.check_path(&output.path)?;
    output.check_background(&background)?;
    let settings = CompositeSettings {
        background,
        upsample: args.upsample,
        edges: EdgeControls::default(),
        mirror: args.mirror,
        view: View::Composite,
    };
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

    let session = LiveSession::start(LiveConfig {
        source: SourceChoice::from_spec(&spec),
        model: ModelChoice { kind: args.model, ..ModelChoice::default() },
        temporal: args.temporal,
        plate: Default::default(),
        notify: Arc::new(|| {}),
    });
    // Wait for the source and the model, so the take starts with frames.
    let info = loop {
        let status = session.status();
        match (&status.source_state, &status.model_state, &status.source_info) {
            (SourceState::Failed(reason), _, _) | (SourceState::Lost { reason, .. }, _, _) => {
                anyhow::bail!("source {}: {reason}", status.source)
            }
            (_, ModelState::Failed(reason), _) => anyhow::bail!("model {}: {reason}", status.model.kind.name()),
            (SourceState::Running, ModelState::Ready, Some(info)) => break info.clone(),
            _ => {}
        }
        if interrupted.load(Ordering::SeqCst) {
            eprintln!("interrupted before recording started: nothing was written");
            return Ok(ExitCode::from(130));
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let status = session.status();
    let provider = status.provider.as_ref().map(|p| p.to_string()).unwrap_or_default();
    session.start_recording(RecordOptions {
        output,
        width: info.width,
        height: info.height,
        fps: info.fps,
        clock: Clock::Capture,
        settings,
        compositor: args.compositor,
        queue_frames: args.queue_frames,
        model: status.model.kind.name().to_string(),
        provider,
        source: info.name.clone(),
        encode_delay: Duration::ZERO,
    })?;
    eprintln!(
        "recording {} from {} ({}x{} @ {:.2} fps)",
        display(&args.output),
        info.name,
        info.width,
        info.height,
        info.fps
    );
    let started = std::time::Instant::now();
    let mut last_print = started;
    while started.elapsed().as_secs_f64() < args.seconds && !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(50));
        let Some(status) = session.recording_status() else { break };
        if status.failure.is_some() {
            break;
        }
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = std::time::Instant::now();
            eprintln!(
                "  {:.1} s, {:.1} s written ({} frames), queue {}/{}, dropped {}, {:.1} MB",
                status.elapsed_s,
                status.written_s,
                status.frames_written,
                status.queue_depth,
                status.queue_capacity,
                status.frames_dropped,
                status.bytes as f64 / 1e6
            );
        }
    }
    let recorder = session.stop_recording().context("the recording was not running")?;
    let status = recorder.status();
    if status.queue_depth > 0 {
        eprintln!(
            "finishing: {} queued frames ({:.1} s of the take) still to encode",
            status.queue_depth,
            status.elapsed_s - status.written_s
        );
    }
    let report = recorder.stop();
    drop(session);
    println!(
        "recorded {}: {:.2} s at {:.2} fps ({} frames written, {} repeated to keep the rate, {} dropped, {} skipped), {:.1} MB, model {} on {}; details in {}",
        display(&report.path),
        report.duration_s,
        report.fps,
        report.frames_written,
        report.frames_repeated,
        report.frames_dropped,
        report.frames_skipped,
        report.bytes as f64 / 1e6,
        report.model,
        report.provider,
        display(&mattecam::record::RecordingReport::sidecar_path(&report.path)),
    );
    if let Some(error) = &report.error {
        anyhow::bail!("the recording stopped early: {error}");
    }
    // Ctrl-C is how a take is ended early: the recording is kept, so it is a success.
    Ok(ExitCode::SUCCESS)
}

fn run_bench(args: BenchArgs) -> anyhow::Result<ExitCode> {
    use mattecam::bench::{self, BenchOptions};
    let (width, height) = parse_size(&args.size)?;
    let background = match &args.background {
        Some(text) => text.parse()?,
        None => Background::Color(bench::DEFAULT_BACKGROUND),
    };
    let options = BenchOptions {
        model: args.model,
        model_file: args.model_file,
        matter: MatterOptions {
            session: SessionOptions {
                threads: args.threads,
                provider: args.provider,
                tuning: RuntimeTuning {
                    spinning: args.ort_spinning,
                    optimization: args.ort_optimization,
                    cpu_arena: !args.ort_no_arena,
                },
            },
            ref_size: args.ref_size,
            downsample_ratio: args.downsample_ratio,
        },
        source: args.source.parse()?,
        width,
        height,
        frames: args.frames,
        compositor: args.compositor,
        temporal: args.temporal,
        background,
        reference: args.reference,
        skip_live: args.no_live,
        sessions: args.sessions.unwrap_or_else(|| infer::default_sessions(args.model, args.provider, args.threads)),
    };
    let report = bench::run(&options, &mut |phase| eprintln!("bench: {phase}"))?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&report).context("encoding the figures")?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", display(path)))?;
        println!("figures written to {}", display(path));
    }
    Ok(ExitCode::SUCCESS)
}

fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = text.split_once('x').context("--size is WIDTHxHEIGHT, e.g. 1280x720")?;
    Ok((w.parse().context("--size width")?, h.parse().context("--size height")?))
}

fn run_eval(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let region = args.region;
    let save = eval::SaveTo(args.save_dir.as_deref());
    let model_file = args.model.model_file()?;
    let model = infer::open_matter(args.model.model, &model_file, &args.model.matter_options())?;
    if let Some(notice) = models::note_user_model(&model_file) {
        eprintln!("{notice}");
    }
    let plate = args.model.plate.as_deref().map(Plate::load).transpose()?;
    if args.model.model == ModelKind::Bgmv2 && plate.is_none() && args.sample_plate.is_none() {
        anyhow::bail!("{} (or --sample-plate exact|perturbed)", infer::InferError::NeedsPlate);
    }
    let provider = model.provider().to_string();
    let matter = Box::new(PlatedMatter::new(model, plate, args.model.plate_options()));
    let (alpha, notice) = AlphaStage::open(args.model.upsample, args.compositor)?;
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    let upsampled_on = alpha.describe();
    let sample_plate = args.sample_plate.map(|kind| match kind {
        SamplePlate::Exact => Perturbation::default(),
        SamplePlate::Perturbed => Perturbation::drifted(args.seed),
    });
    let mut predictor = eval::Predictor { matter, temporal: args.model.temporal, alpha, sample_plate };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} items {msg}")
            .expect("valid template"),
    );
    let progress = |s: &eval::ItemScores| {
        bar.inc(1);
        bar.set_message(s.name.clone());
    };
    let items = if let Some(dir) = &args.dataset {
        let set = dataset::read_folder(dir, args.stills)?;
        eval::eval_set(&mut predictor, &set, region, &save, progress)?
    } else if !args.cutouts.is_empty() {
        let default_size = if args.clip_frames.is_some() { (1280, 720) } else { (1920, 1080) };
        let (width, height) = args.size.as_deref().map(parse_size).transpose()?.unwrap_or(default_size);
        let noise = args
            .noise
            .as_deref()
            .map(|text| -> anyhow::Result<(f64, u8)> {
                let (sigma, quality) = text.split_once(':').context("--noise is SIGMA:JPEG_QUALITY, e.g. 3:80")?;
                Ok((sigma.parse()?, quality.parse()?))
            })
            .transpose()?;
        let spec = dataset::SynthSpec {
            cutouts: dataset::expand_paths(&args.cutouts)?,
            backgrounds: dataset::expand_paths(&args.backgrounds)?,
            width,
            height,
            seed: args.seed,
            noise,
        };
        anyhow::ensure!(
            !spec.cutouts.is_empty() && !spec.backgrounds.is_empty(),
            "no cutout or background images found"
        );
        match args.clip_frames {
            Some(frames) => {
                let mut all = Vec::new();
                for (name, clip) in dataset::generated_clips(&spec, frames) {
                    all.extend(eval::eval_clip(&mut predictor, &name, &clip, region, &save, progress)?);
                }
                all
            }
            None => eval::eval_stills(&mut predictor, &dataset::generated_stills(&spec), region, &save, progress)?,
        }
    } else if let Some(video) = &args.video {
        let mut source = mattecam::source::video::VideoSource::open(video)?;
        eval::eval_flicker(&mut predictor, &mut source, args.max_frames, progress)?
    } else {
        anyhow::bail!("say what to evaluate: --dataset DIR, --cutouts ... --backgrounds ..., or --video FILE");
    };
    bar.finish_and_clear();
    let report = eval::Report {
        mean: eval::report::MeanScores::of(&items),
        resolution: eval::report::resolution_of(&items),
        items,
        region,
        model: match args.sample_plate {
            Some(SamplePlate::Exact) => format!("{}, each sample's exact plate", args.model.describe()),
            Some(SamplePlate::Perturbed) => format!("{}, each sample's plate perturbed", args.model.describe()),
            None => args.model.describe(),
        },
        settings: format!(
            "temporal {}, upsample {} on {}",
            format!("{:?}", args.model.temporal).to_lowercase(),
            format!("{:?}", args.model.upsample).to_lowercase(),
            upsampled_on
        ),
        provider,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        report.write_json(path)?;
        println!("wrote {}", display(path));
    }
    if let Some(dir) = &args.save_dir {
        println!("predicted alphas in {}, comparisons in {}", display(&dir.join("pha")), display(&dir.join("compare")));
    }
    Ok(ExitCode::SUCCESS)
}

fn run_plate(args: PlateArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(args.frames >= 1, "--frames must be at least 1");
    let spec: SourceSpec = args.source.parse()?;
    let mut source = mattecam::source::open(&spec)?;
    let info = source.info().clone();
    let wait_until = std::time::Instant::now() + Duration::from_secs_f64(args.delay_s.max(0.0));
    let mut averager = PlateAverager::new(args.frames);
    let mut announced = None;
    while !averager.is_complete() {
        let Some(frame) = source.next_frame(Vec::new())? else { break };
        let left = wait_until.saturating_duration_since(std::time::Instant::now());
        if !left.is_zero() {
            let seconds = left.as_secs() + 1;
            if announced != Some(seconds) {
                eprintln!("capturing in {seconds} s: step out of the picture");
                announced = Some(seconds);
            }
            continue;
        }
        averager.push(&frame);
    }
    let taken = averager.frames_taken();
    let plate = averager.finish().with_context(|| format!("{} gave no frames", info.name))?;
    if taken < args.frames {
        eprintln!("{} ended after {taken} of {} frames; the plate is their median", info.name, args.frames);
    }
    plate.save(&args.output)?;
    println!(
        "wrote {}: a {}x{} plate, the median of {taken} frames of {}",
        display(&args.output),
        plate.width,
        plate.height,
        info.name
    );
    Ok(ExitCode::SUCCESS)
}

fn list_models() -> anyhow::Result<ExitCode> {
    let entries = models::load_manifest()?;
    println!("{:<8} {:<10} {:<12} {:<30} source", "model", "licence", "status", "file");
    for entry in &entries {
        let status = match models::file_status(entry) {
            FileStatus::Verified => "verified".to_string(),
            FileStatus::Missing => "missing".to_string(),
            FileStatus::Mismatch { .. } => "WRONG FILE".to_string(),
        };
        let file = display(&mattecam::paths::models_dir().join(&entry.file));
        println!(
            "{:<8} {:<10} {:<12} {:<30} {} ({})",
            entry.name, entry.licence, status, file, entry.wheel, entry.upstream
        );
    }
    match infer::runtime_library() {
        Ok(path) => println!("ONNX Runtime: {}", display(&path)),
        Err(err) => println!("ONNX Runtime: {err}"),
    }
    let dir = mattecam::paths::models_dir();
    let recorded = models::recorded_models();
    println!();
    println!("BGMv2 needs a model file you download yourself (its weights are on no package registry):");
    println!("  get one of the authors' ONNX exports from github.com/PeterL1n/BackgroundMattingV2 (README,");
    println!("  \"Download\": Google Drive), then put it into {} or pass --model-file PATH.", display(&dir));
    println!(
        "  Its sha256 is recorded on first use ({}) and a later change is reported.",
        display(&models::records_path())
    );
    println!("  {:<22} {:<10} {:<7} {:<26} {:<30} status", "export", "backbone", "scale", "refine", "suits");
    for entry in models::load_user_models()? {
        let path = dir.join(&entry.file);
        let status = match recorded.iter().find(|r| std::fs::canonicalize(&path).ok().as_ref() == Some(&r.path)) {
            Some(r) => format!("present, sha256 {} recorded {}", &r.sha256[..12], r.first_used),
            None if path.is_file() => "present, not used yet".to_string(),
            None => "not present".to_string(),
        };
        println!(
            "  {:<22} {:<10} {:<7} {:<26} {:<30} {status}",
            entry.file, entry.backbone, entry.backbone_scale, entry.refine, entry.suits
        );
    }
    for r in recorded.iter().filter(|r| !r.path.starts_with(&dir)) {
        println!("  also used: {} (sha256 {}, first used {})", display(&r.path), &r.sha256[..12], r.first_used);
    }
    let all_ok = entries.iter().all(|e| models::file_status(e) == FileStatus::Verified);
    if !all_ok {
        println!("run `make setup` to fetch and verify the missing or wrong files");
    }
    Ok(ExitCode::SUCCESS)
}

fn list_sources() -> anyhow::Result<ExitCode> {
    let cameras = camera::list_cameras();
    if cameras.is_empty() {
        println!("cameras: none found");
    }
    for cam in cameras {
        let modes: Vec<String> = cam.modes.iter().take(8).map(|(w, h, fps)| format!("{w}x{h}@{fps}")).collect();
        println!("camera:{}  {}  {}", cam.index, cam.name, modes.join(" "));
    }
    let clip = mattecam::paths::demo_clip();
    let state = if clip.is_file() { "present" } else { "missing: run `make setup`" };
    println!("demo      {} ({state})", display(&clip));
    println!("synthetic moving shapes, any size: synthetic:WxH@FPS");
    Ok(ExitCode::SUCCESS)
}
