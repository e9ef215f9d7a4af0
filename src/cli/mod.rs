//! The `mattecam` command line: one file per subcommand, each with its arguments and the conversion into
//! the library's options. The edge where library errors become messages and exit codes.

mod bench;
mod camera;
mod eval;
mod list;
mod plate;
mod process;
mod record;
mod window;

use std::path::PathBuf;
use std::process::ExitCode;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use mattecam::composite::{CompositeSettings, CompositorKind, Upsample};
use mattecam::engine::{CompositorSetup, Engine, EngineConfig, ModelChoice, SourceChoice};
use mattecam::filter::temporal::TemporalMode;
use mattecam::infer::{self, MatterOptions, ModelKind, Precision, ProviderRequest, SessionOptions};
use mattecam::models;
use mattecam::plate::PlateOptions;
use mattecam::source::SourceSpec;

#[derive(Parser)]
#[command(
    name = "mattecam",
    version,
    about = "Real-time matting: cut people out of video and put them over a new background."
)]
pub struct Cli {
    /// Without a subcommand: open the window.
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    window: window::WindowArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Matte a video, image, folder of images, camera or synthetic source and write the composite.
    Process(process::ProcessArgs),
    /// Record a live source (camera, or a file played in real time) for a while, without a window.
    Record(record::RecordArgs),
    /// Publish the matted picture as a virtual camera (PipeWire, v4l2loopback or raw frames), without a
    /// window, until Ctrl-C or --seconds.
    Camera(camera::CameraArgs),
    /// Measure matte quality (SAD, MSE, MAD, Grad, Conn, dtSSD, flicker) on exact-ground-truth data.
    Eval(eval::EvalArgs),
    /// Capture a clean background plate: the median of N frames of a source (step out of the picture).
    Plate(plate::PlateArgs),
    /// List the models, their licences and whether each is present and verified.
    Models(list::ModelsArgs),
    /// List the cameras and microphones found, and the demo media.
    Sources,
    /// Measure speed: the model alone, the whole pipeline, recording, live latency, and optionally the
    /// Python reference pipeline, on the same frames.
    Bench(bench::BenchArgs),
}

/// Runs what the command line asks.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        None => window::run(cli.window),
        Some(Command::Process(args)) => process::run(args),
        Some(Command::Record(args)) => record::run(args),
        Some(Command::Camera(args)) => camera::run(args),
        Some(Command::Eval(args)) => eval::run(args),
        Some(Command::Plate(args)) => plate::run(args),
        Some(Command::Models(args)) => list::models(args),
        Some(Command::Sources) => list::sources(),
        Some(Command::Bench(args)) => bench::run(args),
    }
}

/// What a recording or a `process` run writes.
#[derive(Args)]
pub struct RecordingArgs {
    /// `mp4` (composite, H.264), `prores` (cutout with alpha, ProRes 4444 .mov), `webm-alpha` (cutout with
    /// alpha, VP9 .webm), `png` (a folder of PNGs) or `matte` (the alpha as a gray H.264 .mp4). Default:
    /// from the output's extension.
    #[arg(long, value_enum)]
    pub format: Option<mattecam::sink::Format>,
    /// H.264 / VP9 quality (constant rate factor: lower is better and bigger).
    #[arg(long, default_value_t = mattecam::sink::DEFAULT_CRF, value_parser = clap::value_parser!(u8).range(0..=51))]
    pub crf: u8,
    /// Also write the source video, frame-aligned, as NAME.source.mp4 (e.g. beside a matte).
    #[arg(long)]
    pub with_source: bool,
    /// Replace the output if it exists (without this, an existing output is refused).
    #[arg(long)]
    pub overwrite: bool,
}

/// How alpha is predicted: shared by `process` and `eval`.
#[derive(Args)]
pub struct ModelArgs {
    #[arg(long, value_enum, default_value_t = ModelKind::Modnet)]
    pub model: ModelKind,
    /// Load the model from this file instead of the one `make setup` fetched (BGMv2: the weights you
    /// downloaded; see `mattecam models`).
    #[arg(long)]
    pub model_file: Option<PathBuf>,
    /// A clean background plate (the scene without the person, at the input's size; `mattecam plate`
    /// captures one): BGMv2 needs it; MODNet and RVM use it for plate assistance.
    #[arg(long)]
    pub plate: Option<PathBuf>,
    /// Do not use the plate to push alpha toward 0 where the frame shows it (MODNet, RVM).
    #[arg(long)]
    pub no_plate_assist: bool,
    #[arg(long, value_enum, default_value_t = TemporalMode::Off)]
    pub temporal: TemporalMode,
    /// How alpha is resized from model to frame resolution.
    #[arg(long, value_enum, default_value_t = Upsample::Area)]
    pub upsample: Upsample,
    /// Inference threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    #[arg(long, value_enum, default_value_t = ProviderRequest::Auto)]
    pub provider: ProviderRequest,
    /// MODNet: shorter side of the model input, in pixels.
    #[arg(long)]
    pub ref_size: Option<u32>,
    /// RVM: downsample ratio (default: chosen from the frame size).
    #[arg(long)]
    pub downsample_ratio: Option<f32>,
    /// The model's float file or its INT8 version (`make setup` makes MODNet's and RVM's; `mattecam models
    /// quantize FILE` yours). `auto`: INT8 on a CPU when present and verified, float on CUDA.
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    pub precision: Precision,
}

impl ModelArgs {
    pub fn matter_options(&self) -> MatterOptions {
        MatterOptions {
            session: SessionOptions { threads: self.threads, provider: self.provider, ..Default::default() },
            ref_size: self.ref_size,
            downsample_ratio: self.downsample_ratio,
        }
    }

    pub fn plate_options(&self) -> PlateOptions {
        PlateOptions { assist: !self.no_plate_assist, ..PlateOptions::default() }
    }

    /// The file to load at the chosen precision (a note on stderr when `auto` had to run float).
    pub fn resolve(&self) -> anyhow::Result<models::ResolvedModel> {
        let resolved =
            models::resolve_model_file(self.model, self.model_file.as_deref(), self.precision, self.provider)?;
        if let Some(note) = &resolved.note {
            eprintln!("{note}");
        }
        Ok(resolved)
    }

    pub fn describe(&self, precision: Precision) -> String {
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
        format!("{} {precision} ({size}{plate})", self.model.name())
    }
}

impl From<&ModelArgs> for MatterOptions {
    fn from(args: &ModelArgs) -> Self {
        args.matter_options()
    }
}

/// A flag Ctrl-C sets: `record` and `camera` end their run on it and keep what was done.
pub fn ctrl_c_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;
    Ok(interrupted)
}

/// The live engine `record` and `camera` run: `source` matted by `model` and composited with `settings`.
pub fn start_live_engine(
    source: &SourceSpec,
    model: ModelChoice,
    temporal: TemporalMode,
    settings: CompositeSettings,
    compositor: CompositorKind,
) -> Engine {
    let mut config = EngineConfig::live(SourceChoice::from_spec(source), model, temporal, settings);
    config.compositor = CompositorSetup::Kind(compositor);
    Engine::start(config)
}

/// The model of a live run (`record`, `camera`): which, at what precision, and whether its work is stepped
/// to hold the frame rate.
#[derive(Args)]
pub struct LiveModelArgs {
    #[arg(long, value_enum, default_value_t = ModelKind::Rvm)]
    pub model: ModelKind,
    /// The model's float file or its INT8 version; `auto`: INT8 on a CPU when `make setup` made and
    /// verified it, float on CUDA.
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    pub precision: Precision,
    /// Do not step the model's work (RVM's ratio, MODNet's size, its INT8 file, then matting every second frame) to
    /// hold the frame rate.
    #[arg(long)]
    pub no_hold_rate: bool,
    /// Frames a second to hold (default: the source's rate).
    #[arg(long, value_name = "FPS")]
    pub target_fps: Option<f32>,
}

impl LiveModelArgs {
    pub fn choice(&self) -> anyhow::Result<ModelChoice> {
        if let Some(fps) = self.target_fps {
            mattecam::limits::check_fps("--target-fps", f64::from(fps))?;
        }
        let hold_rate =
            mattecam::engine::HoldRate { enabled: !self.no_hold_rate, target_fps: self.target_fps.unwrap_or(0.0) };
        Ok(ModelChoice { kind: self.model, precision: self.precision, hold_rate, ..ModelChoice::default() })
    }
}

/// `WIDTHxHEIGHT`, within [`mattecam::limits`].
pub fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    mattecam::limits::parse_size("--size", text).map_err(anyhow::Error::msg)
}
