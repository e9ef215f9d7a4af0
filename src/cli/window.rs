//! `mattecam` without a subcommand: the window.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mattecam::composite::{Background, CompositorKind};
use mattecam::engine::{ModelChoice, SourceChoice};
use mattecam::filter::temporal::TemporalMode;
use mattecam::infer::ModelKind;
use mattecam::paths::display;
use mattecam::source::SourceSpec;
use mattecam::ui::{self, Command as UiCommand, RunRequest};

/// The window (no subcommand). Options given here override the saved settings for this run.
#[derive(Args)]
pub struct WindowArgs {
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
    /// Where the picture is composited: `auto` on the window's GPU when it is a hardware one, else the
    /// CPU; `gpu` also on a software rasteriser.
    #[arg(long, value_enum, default_value_t = CompositorKind::Auto)]
    compositor: CompositorKind,
    /// Settings file (default: the platform's data folder, e.g. ~/.local/share/mattecam/app.ron).
    #[arg(long)]
    settings: Option<PathBuf>,
    /// Close after this many frames have been shown (for checking the window headless).
    #[arg(long)]
    frames: Option<u64>,
    /// With --frames: save a PNG screenshot of the window here before closing.
    #[arg(long, requires = "frames")]
    screenshot: Option<PathBuf>,
    /// With --screenshot: also a snapshot (S) of the same frame.
    #[arg(long, requires = "screenshot")]
    snapshot: bool,
    /// Start recording as soon as the picture shows (R, the Record button or closing the window stops it).
    #[arg(long)]
    record: bool,
    /// Where recordings go (kept in the settings).
    #[arg(long)]
    record_dir: Option<PathBuf>,
    /// The recording format (kept in the settings).
    #[arg(long, value_enum)]
    record_format: Option<mattecam::sink::Format>,
    /// Where snapshots go (kept in the settings).
    #[arg(long)]
    snapshot_dir: Option<PathBuf>,
    /// Where clean plates are kept (default: .cache/plates of the setup).
    #[arg(long)]
    plates_dir: Option<PathBuf>,
    /// Turn the virtual camera on at start, to this output (`pipewire`, `v4l2[:/dev/videoN]`; kept in the
    /// settings). C or the "Virtual camera" section turns it on and off.
    #[arg(long)]
    virtual_camera: Option<mattecam::vcam::CameraOutput>,
    /// Checking the window: every frame, move the edge threshold and the plate frame count as a dragged
    /// slider does.
    #[arg(long, hide = true)]
    drag_settings: bool,
}

pub fn run(args: WindowArgs) -> anyhow::Result<ExitCode> {
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
    if let Some(output) = &args.virtual_camera {
        anyhow::ensure!(
            !matches!(output, mattecam::vcam::CameraOutput::Raw(_)),
            "the window's camera is pipewire or v4l2; raw frames come from `mattecam camera`"
        );
        let camera = mattecam::settings::CameraSettings { output: output.to_string(), ..Default::default() };
        overrides.push(UiCommand::SetCamera(camera));
    }
    if let Some(dir) = &args.snapshot_dir {
        overrides.push(UiCommand::SetSnapshotDir(dir.clone()));
    }
    let request = RunRequest {
        frames: args.frames,
        screenshot: args.screenshot.clone(),
        record: args.record,
        snapshot: args.snapshot,
        drag_settings: args.drag_settings,
        compositor: args.compositor,
        plates_dir: args.plates_dir.clone(),
        virtual_camera: args.virtual_camera.is_some(),
    };
    let outcome = ui::run(args.settings, overrides, request)?;
    if let Some(error) = outcome.error {
        anyhow::bail!("the window stopped after {} frames: {error}", outcome.stats.frames_shown);
    }
    let stats = &outcome.stats;
    println!(
        "{}: shown {} frames at {:.1} fps (capture {:.1} fps, matted {} frames, composited on {}); inference {:.1} ms, composite {:.1} ms, latency median {:.0} ms (max {:.0}), dropped {} ({} before the model, {} before the screen); longest UI frame {:.0} ms",
        outcome.model,
        stats.frames_shown,
        stats.shown_fps,
        stats.capture_fps,
        stats.frames_inferred,
        outcome.compositor,
        stats.infer_ms,
        stats.composite_ms,
        stats.latency_ms_p50,
        stats.latency_ms_max,
        stats.dropped_frames(),
        stats.dropped_before_infer,
        stats.dropped_before_screen,
        outcome.longest_frame_ms,
    );
    for report in &outcome.recordings {
        println!("{}", ui::recording_notice(report));
    }
    if let Some(error) = outcome.recordings.iter().find_map(|report| report.error.as_ref()) {
        anyhow::bail!("the recording stopped early: {error}");
    }
    if let Some(path) = &outcome.snapshot {
        println!("snapshot of the frame on screen: {}", display(path));
    }
    if let Some(path) = outcome.screenshot {
        println!("screenshot of the window after {} frames: {}", outcome.stats.frames_shown, display(&path));
    } else if args.screenshot.is_some() {
        anyhow::bail!("the window closed before the screenshot was taken");
    }
    Ok(ExitCode::SUCCESS)
}
