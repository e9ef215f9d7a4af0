//! The `mattecam` command line: the edge where library errors become messages and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use mattecam::composite::Background;
use mattecam::filter::temporal::TemporalMode;
use mattecam::infer::{self, MatterOptions, ModelKind, ProviderRequest, SessionOptions};
use mattecam::models::{self, FileStatus};
use mattecam::paths::display;
use mattecam::process::{self, ProcessOptions};
use mattecam::resample::ResampleKind;
use mattecam::source::{SourceSpec, camera};

#[derive(Parser)]
#[command(
    name = "mattecam",
    version,
    about = "Real-time matting: cut people out of video and put them over a new background."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Matte a video, image, folder of images, camera or synthetic source and write the composite.
    Process(ProcessArgs),
    /// List the models, their licences and whether each is present and verified.
    Models,
    /// List the cameras found and the demo media.
    Sources,
}

#[derive(Args)]
struct ProcessArgs {
    /// A video file, an image, a folder of images, `demo`, `synthetic[:WxH[@FPS]]` or `camera[:N]`.
    input: String,
    /// A .mp4 file, a .png file (single image) or a folder (PNG sequence).
    #[arg(short, long)]
    output: PathBuf,
    #[arg(long, value_enum, default_value_t = ModelKind::Modnet)]
    model: ModelKind,
    /// Load the model from this file instead of the one `make setup` fetched.
    #[arg(long)]
    model_file: Option<PathBuf>,
    /// `blur`, `blur:RADIUS_PX`, `color:#RRGGBB`, `image:PATH` or `transparent` (PNG output only).
    #[arg(long, default_value = "blur")]
    background: String,
    #[arg(long, value_enum, default_value_t = TemporalMode::Off)]
    temporal: TemporalMode,
    /// How alpha is resized from model to frame resolution.
    #[arg(long, value_enum, default_value_t = ResampleKind::Area)]
    upsample: ResampleKind,
    /// Also write each frame's alpha as an 8-bit PNG (named by frame index) into this folder.
    #[arg(long)]
    alpha_dir: Option<PathBuf>,
    /// Stop after this many frames.
    #[arg(long)]
    max_frames: Option<u64>,
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

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Process(args) => run_process(args),
        Command::Models => list_models(),
        Command::Sources => list_sources(),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_process(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let background: Background = args.background.parse()?;
    let input: SourceSpec = args.input.parse()?;
    let options = ProcessOptions {
        input,
        output: args.output.clone(),
        model: args.model,
        model_file: args.model_file,
        matter: MatterOptions {
            session: SessionOptions { threads: args.threads, provider: args.provider },
            ref_size: args.ref_size,
            downsample_ratio: args.downsample_ratio,
        },
        background,
        temporal: args.temporal,
        upsample: args.upsample,
        alpha_dir: args.alpha_dir.clone(),
        max_frames: args.max_frames,
    };
    let pipeline = process::start(&options)?;
    if let Ok(library) = infer::runtime_library() {
        eprintln!("ONNX Runtime: {}", display(&library));
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

    let source = pipeline.source().clone();
    let total = match (source.frame_count, args.max_frames) {
        (Some(n), Some(max)) => Some(n.min(max)),
        (n, max) => n.or(max),
    };
    let bar = match total {
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
        // Ctrl-C keeps what a live source produced (the user ends the take), and abandons a file, whose
        // output would be incomplete.
        if interrupted.load(Ordering::SeqCst) {
            if source.live { pipeline.stop() } else { pipeline.cancel() }
        }
        let stats = pipeline.stats();
        bar.set_position(stats.frames_written);
        bar.set_message(format!("model {:.0} ms/frame", stats.infer_ms_mean));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    let summary = pipeline.wait()?;
    if interrupted.load(Ordering::SeqCst) && !source.live {
        eprintln!("interrupted: nothing was written to {}", display(&args.output));
        return Ok(ExitCode::from(130));
    }
    let s = &summary.stats;
    println!(
        "wrote {}{}: {} frames of {} in {:.1} s ({:.1} fps), model {:.1} ms/frame, composite {:.1} ms/frame, provider {}",
        display(&args.output),
        args.alpha_dir.as_ref().map(|d| format!(" and alpha PNGs in {}", display(d))).unwrap_or_default(),
        s.frames_written,
        summary.source.name,
        summary.elapsed_s,
        summary.fps(),
        s.infer_ms_mean,
        s.composite_ms_mean,
        summary.provider,
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
