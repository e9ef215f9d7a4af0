//! `mattecam record`: a live source matted and recorded for a while, without a window.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mattecam::composite::{Background, CompositeSettings, CompositorKind, EdgeControls, Upsample, View};
use mattecam::filter::temporal::TemporalMode;
use mattecam::infer::ModelKind;
use mattecam::paths::display;
use mattecam::record::take::{TakeEnd, TakeProgress, record_take};
use mattecam::sink::{Format, OutputSpec};
use mattecam::source::SourceSpec;

use super::RecordingArgs;

#[derive(Args)]
pub struct RecordArgs {
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

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
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
    let interrupted = super::ctrl_c_flag()?;
    let engine = super::start_live_engine(&spec, args.model, args.temporal, settings, args.compositor);
    let mut progress = |event: TakeProgress<'_>| match event {
        TakeProgress::Started(info) => eprintln!(
            "recording {} from {} ({}x{} @ {:.2} fps)",
            display(&args.output),
            info.name,
            info.width,
            info.height,
            info.fps
        ),
        TakeProgress::Running(status) => eprintln!(
            "  {:.1} s, {:.1} s written ({} frames), queue {}/{}, dropped {}, {:.1} MB",
            status.elapsed_s,
            status.written_s,
            status.frames_written,
            status.queue_depth,
            status.queue_capacity,
            status.frames_dropped,
            status.bytes as f64 / 1e6
        ),
        TakeProgress::Finishing(status) => eprintln!(
            "finishing: {} queued frames ({:.1} s of the take) still to encode",
            status.queue_depth,
            status.elapsed_s - status.written_s
        ),
    };
    let ended = record_take(&engine, output, args.seconds, args.queue_frames, &interrupted, &mut progress)?;
    drop(engine);
    let report = match ended {
        TakeEnd::Recorded(report) => report,
        TakeEnd::NotStarted => {
            eprintln!("interrupted before recording started: nothing was written");
            return Ok(ExitCode::from(130));
        }
    };
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
