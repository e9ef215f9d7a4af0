//! `mattecam process`: a file (or any source) in, every frame matted and written.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mattecam::composite::{Background, CompositeSettings, CompositorKind, EdgeControls, View};
use mattecam::infer;
use mattecam::paths::display;
use mattecam::process::{self, ProcessOptions};
use mattecam::source::SourceSpec;

use super::{ModelArgs, RecordingArgs};

#[derive(Args)]
pub struct ProcessArgs {
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

pub fn run(args: ProcessArgs) -> anyhow::Result<ExitCode> {
    let options = ProcessOptions::try_from(&args)?;
    let started = process::start(&options)?;
    for notice in [&started.compositor_notice, &started.model_notice, &started.precision_note].into_iter().flatten() {
        eprintln!("{notice}");
    }
    let (engine, compositor, precision) = (started.engine, started.compositor, started.precision);
    if let Ok(library) = infer::runtime_library() {
        eprintln!("ONNX Runtime: {}", display(&library));
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)).context("installing the Ctrl-C handler")?;

    let source = engine.status().source_info.context("a file run knows its source")?;
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
    while !engine.is_finished() {
        // Ctrl-C ends the run and keeps what was done, finalised: the user decides what to do with it.
        if interrupted.load(Ordering::SeqCst) {
            engine.stop();
        }
        let stats = engine.snapshot();
        bar.set_position(stats.frames_written);
        bar.set_message(format!("model {:.0} ms/frame", stats.infer_ms_mean));
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    let summary = engine.wait()?;
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
        "wrote {}{}: {} frames of {} in {:.1} s ({:.1} fps), model {:.1} ms/frame ({}), composite {:.1} ms/frame ({}), provider {}",
        display(&args.output),
        args.alpha_dir.as_ref().map(|d| format!(" and alpha PNGs in {}", display(d))).unwrap_or_default(),
        s.frames_written,
        summary.source.name,
        summary.elapsed_s,
        summary.fps(),
        s.infer_ms_mean,
        precision,
        s.composite_ms_mean,
        compositor,
        summary.provider,
    );
    Ok(ExitCode::SUCCESS)
}

impl TryFrom<&ProcessArgs> for ProcessOptions {
    type Error = anyhow::Error;

    fn try_from(args: &ProcessArgs) -> anyhow::Result<Self> {
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
        Ok(ProcessOptions {
            input,
            output: args.output.clone(),
            model: args.model.model,
            model_file: args.model.model_file.clone(),
            precision: args.model.precision,
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
            overwrite: args.recording.overwrite,
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
        })
    }
}
