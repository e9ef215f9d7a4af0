//! `mattecam bench`: the engine's speed against the model alone and the Python reference.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mattecam::bench::{self, BenchOptions};
use mattecam::composite::{Background, CompositorKind};
use mattecam::filter::temporal::TemporalMode;
use mattecam::infer::{
    self, MatterOptions, ModelKind, Optimization, Precision, ProviderRequest, RuntimeTuning, SessionOptions,
};
use mattecam::paths::display;

use super::parse_size;

#[derive(Args)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value_t = ModelKind::Modnet)]
    model: ModelKind,
    /// Load the model from this file instead of the one `make setup` fetched.
    #[arg(long)]
    model_file: Option<PathBuf>,
    /// The model's float file or its INT8 version; `auto`: INT8 on a CPU when `make setup` made and
    /// verified it, float on CUDA.
    #[arg(long, value_enum, default_value_t = Precision::Auto)]
    precision: Precision,
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
    /// Replace the JSON file if it exists (without this, an existing file is refused).
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: BenchArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = args.json.as_ref().filter(|path| !args.overwrite && path.exists()) {
        anyhow::bail!("{}", mattecam::sink::SinkError::Exists(path.clone()));
    }
    let (width, height) = parse_size(&args.size)?;
    let background = match &args.background {
        Some(text) => text.parse()?,
        None => Background::Color(bench::DEFAULT_BACKGROUND),
    };
    let options = BenchOptions {
        model: args.model,
        model_file: args.model_file,
        precision: args.precision,
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
        mattecam::sink::partial::write_new(path, args.overwrite, |working| {
            std::fs::write(working, text + "\n").map_err(|err| err.to_string())
        })?;
        println!("figures written to {}", display(path));
    }
    Ok(ExitCode::SUCCESS)
}
