//! `mattecam camera`: the matted picture as a virtual camera, without a window, until Ctrl-C or
//! `--seconds`, like backscrub. A status line every few seconds; the figures at the end.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::Args;
use mattecam::bench::process_stats::CpuTime;
use mattecam::composite::{Background, CompositeSettings, CompositorKind, EdgeControls, Upsample, View};
use mattecam::filter::temporal::TemporalMode;
use mattecam::source::SourceSpec;
use mattecam::vcam::{CameraOptions, CameraOutput, CameraReport, CameraState, PixelFormat, VirtualCamera};

/// How often the status line is printed.
const STATUS_EVERY: Duration = Duration::from_secs(3);

#[derive(Args)]
pub struct CameraArgs {
    /// `camera[:N]`, `demo`, a video file (played in real time, looped) or `synthetic[:WxH[@FPS]]`.
    #[arg(long, default_value = "camera")]
    source: String,
    /// `pipewire` (a PipeWire camera node), `v4l2[:/dev/videoN]` (a v4l2loopback device), `raw:-` (frames
    /// on stdout) or `raw:PATH` (into a FIFO).
    #[arg(long, default_value_t = CameraOutput::default_for_build())]
    output: CameraOutput,
    /// The camera's size, WIDTHxHEIGHT (made even; the picture is scaled to cover it). Default: the source's.
    #[arg(long, value_parser = parse_size)]
    size: Option<(u32, u32)>,
    /// Frames a second the camera delivers (the newest picture is repeated when the model is slower).
    /// Default: the source's.
    #[arg(long)]
    fps: Option<f64>,
    /// Stop after this many seconds (default: run until Ctrl-C).
    #[arg(long)]
    seconds: Option<f64>,
    /// Stop after sending this many frames.
    #[arg(long)]
    frames: Option<u64>,
    /// `blur`, `blur:RADIUS`, `color:#RRGGBB`, an image or a video file.
    #[arg(long, default_value = "blur")]
    background: String,
    /// Mirror the picture the other side sees (by default they see you as your camera does).
    #[arg(long)]
    mirror: bool,
    /// The raw output's pixel format.
    #[arg(long, value_enum, default_value_t = PixelFormat::Yuyv)]
    pixel_format: PixelFormat,
    #[command(flatten)]
    model: super::LiveModelArgs,
    #[arg(long, value_enum, default_value_t = TemporalMode::Ofd)]
    temporal: TemporalMode,
    #[arg(long, value_enum, default_value_t = Upsample::Area)]
    upsample: Upsample,
    #[arg(long, value_enum, default_value_t = CompositorKind::Auto)]
    compositor: CompositorKind,
}

fn parse_size(text: &str) -> anyhow::Result<(u32, u32)> {
    let (w, h) = super::parse_size(text)?;
    anyhow::ensure!(w >= 2 && h >= 2, "--size must be at least 2x2");
    Ok((w, h))
}

pub fn run(args: CameraArgs) -> anyhow::Result<ExitCode> {
    if let Some(seconds) = args.seconds {
        mattecam::limits::check_seconds("--seconds", seconds, 0.001)?;
    }
    if let Some(fps) = args.fps {
        anyhow::ensure!((1.0..=240.0).contains(&fps), "--fps must be between 1 and 240");
    }
    let spec: SourceSpec = args.source.parse()?;
    let background: Background = args.background.parse()?;
    anyhow::ensure!(!background.has_alpha(), "a camera has no alpha: pick blur, a colour, an image or a video");
    let settings = CompositeSettings {
        background,
        upsample: args.upsample,
        edges: EdgeControls::default(),
        mirror: false,
        view: View::Composite,
    };
    let interrupted = super::ctrl_c_flag()?;
    let engine = super::start_live_engine(&spec, args.model.choice()?, args.temporal, settings, args.compositor);
    let options = CameraOptions {
        output: args.output.clone(),
        size: args.size,
        fps: args.fps,
        mirror: args.mirror,
        raw_format: args.pixel_format,
        max_frames: args.frames,
    };
    let camera = VirtualCamera::start(engine.tap(), options);
    let started = Instant::now();
    let cpu_at_start = CpuTime::now();
    let mut last_line = Instant::now();
    let mut told_parameters = false;
    let ended = loop {
        std::thread::sleep(Duration::from_millis(50));
        let report = camera.report();
        if !told_parameters && report.width > 0 {
            told_parameters = true;
            eprintln!("{}", parameters(&args.output, &report));
        }
        match &report.state {
            CameraState::Ended(reason) => break Some(reason.clone()),
            // PipeWire comes back by itself; the other outputs cannot.
            CameraState::Unavailable { .. } if !matches!(args.output, CameraOutput::PipeWire) => {
                drop(camera);
                anyhow::bail!("the virtual camera is {}", report.state);
            }
            _ => {}
        }
        let status = engine.status();
        if let Some(reason) = status.source_failure() {
            anyhow::bail!("{reason}");
        }
        if interrupted.load(Ordering::SeqCst) || args.seconds.is_some_and(|s| started.elapsed().as_secs_f64() >= s) {
            break None;
        }
        if last_line.elapsed() >= STATUS_EVERY {
            last_line = Instant::now();
            let notice = status.failure().map(|f| format!(", {f}: sending the background alone")).unwrap_or_default();
            let paused = if engine.stats().is_paused() { ", inference paused" } else { "" };
            eprintln!("camera: {}{paused}{notice}", figures(&report));
        }
    };
    let report = camera.report();
    drop(camera);
    drop(engine);
    let elapsed_s = started.elapsed().as_secs_f64();
    // After the engine has gone: its ffmpeg decoder has been waited for, and counts.
    let cpu_s = CpuTime::now().zip(cpu_at_start).map_or(f64::NAN, |(now, then)| now.since(&then).total_ms() / 1000.0);
    if let Some(reason) = ended {
        eprintln!("camera stopped: {reason}");
    }
    eprintln!(
        "camera: {} over {elapsed_s:.1} s; cpu {cpu_s:.1} s ({:.1} s per minute)",
        figures(&report),
        cpu_s * 60.0 / elapsed_s.max(1e-3)
    );
    Ok(ExitCode::SUCCESS)
}

/// The stream's parameters, once known (for a raw reader: the ffmpeg input options).
fn parameters(output: &CameraOutput, report: &CameraReport) -> String {
    let (w, h, fps) = (report.width, report.height, report.fps);
    match (output, report.format) {
        (CameraOutput::Raw(_), Some(format)) => format!(
            "raw video to {}: {w}x{h}, {} at {fps:.3} fps (read it with: ffmpeg -f rawvideo -pix_fmt {} -video_size {w}x{h} -framerate {fps} -i ...)",
            report.target,
            format.ffmpeg_name(),
            format.ffmpeg_name()
        ),
        _ => format!("virtual camera {}: {w}x{h} at {fps:.3} fps", report.target),
    }
}

fn figures(report: &CameraReport) -> String {
    let latency = match (report.latency_p50_ms, report.latency_p99_ms) {
        (Some(p50), Some(p99)) => format!(", latency p50 {p50:.0} ms p99 {p99:.0} ms"),
        _ => String::new(),
    };
    let format = report.format.map(|f| format!(" {}", f.ffmpeg_name())).unwrap_or_default();
    format!(
        "{}{format}; sent {} ({} repeated), dropped {}{latency}",
        report.state, report.sent, report.repeated, report.dropped
    )
}
