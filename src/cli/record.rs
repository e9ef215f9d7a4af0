//! `mattecam record`: a live source matted and recorded for a while, without a window.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use mattecam::audio::{AudioChoice, AudioInput};
use mattecam::composite::{Background, CompositeSettings, CompositorKind, EdgeControls, Upsample, View};
use mattecam::filter::temporal::TemporalMode;
use mattecam::paths::display;
use mattecam::record::take::{TakeEnd, TakeProgress, TakeSpec, record_take};
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
    #[command(flatten)]
    model: super::LiveModelArgs,
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
    /// Memory, in MiB, the recorder's queue may hold (whatever the frame size); beyond it frames are
    /// dropped and counted too.
    #[arg(long, default_value_t = mattecam::record::DEFAULT_QUEUE_BYTES >> 20)]
    queue_mib: u64,
    /// Split the recording into takes of this many seconds, each a complete file of its own
    /// (NAME-001.EXT, NAME-002.EXT, ...), for long sessions.
    #[arg(long)]
    split_s: Option<f64>,
    /// Sound: `default` (the system's default microphone), `none`, or an input's name as `mattecam
    /// sources` lists it. Without it: the default microphone when one opens, else no sound (said once).
    #[arg(long, value_name = "default|none|NAME")]
    audio: Option<mattecam::audio::AudioChoice>,
    /// Also send the picture to a virtual camera while recording: `pipewire`, `v4l2[:DEVICE]` or
    /// `raw:PATH` (see `mattecam camera`).
    #[arg(long)]
    virtual_camera: Option<mattecam::vcam::CameraOutput>,
}

/// The takes' names: the output itself, or with `--split-s` one numbered name per take.
fn take_paths(output: &std::path::Path, seconds: f64, split_s: Option<f64>) -> anyhow::Result<Vec<PathBuf>> {
    let Some(split_s) = split_s else { return Ok(vec![output.to_path_buf()]) };
    mattecam::limits::check_seconds("--split-s", split_s, 1.0)?;
    let takes = (seconds / split_s).ceil().max(1.0) as usize;
    anyhow::ensure!(takes <= 10_000, "--split-s {split_s} makes {takes} takes of --seconds {seconds}; at most 10000");
    let stem = output.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = output.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    Ok((1..=takes).map(|n| output.with_file_name(format!("{stem}-{n:03}{ext}"))).collect())
}

pub fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    mattecam::limits::check_seconds("--seconds", args.seconds, 0.001)?;
    anyhow::ensure!(args.queue_frames >= 1, "--queue-frames must be at least 1");
    anyhow::ensure!((1..=1 << 20).contains(&args.queue_mib), "--queue-mib must be from 1 to 1048576");
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
        overwrite: args.recording.overwrite,
    };
    format.check_path(&output.path)?;
    let takes = take_paths(&args.output, args.seconds, args.split_s)?;
    let sound_beside = args.audio != Some(AudioChoice::None) && mattecam::record::audio::wav_beside(format);
    for path in &takes {
        let take = OutputSpec { path: path.clone(), ..output.clone() };
        take.check_free_with(Some(mattecam::record::RecordingReport::sidecar_path(path)))?;
        // The WAV beside PNG frames or a track matte, before anything starts.
        if sound_beside {
            take.check_free_with(Some(mattecam::record::audio::wav_path(path)))?;
        }
    }
    output.check_background(&background)?;
    let settings = CompositeSettings {
        background,
        upsample: args.upsample,
        edges: EdgeControls::default(),
        mirror: args.mirror,
        view: View::Composite,
    };
    let audio = open_audio(args.audio.clone())?;
    let interrupted = super::ctrl_c_flag()?;
    let engine = super::start_live_engine(&spec, args.model.choice()?, args.temporal, settings, args.compositor);
    let camera = args.virtual_camera.clone().map(|output| {
        let options = mattecam::vcam::CameraOptions { output, ..Default::default() };
        mattecam::vcam::VirtualCamera::start(engine.tap(), options)
    });
    let mut progress = |event: TakeProgress<'_>| match event {
        TakeProgress::Started(info) => {
            eprintln!("recording from {} ({}x{} @ {:.2} fps)", info.name, info.width, info.height, info.fps)
        }
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
        TakeProgress::Notice(what) => eprintln!("  sound {what}"),
    };
    let mut left_s = args.seconds;
    let mut failure = None;
    for path in takes {
        if left_s <= 0.0 || interrupted.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        let take_s = args.split_s.map_or(left_s, |split| split.min(left_s));
        let spec = OutputSpec { path, ..output.clone() };
        let take = TakeSpec {
            output: spec,
            seconds: take_s,
            queue_frames: args.queue_frames,
            queue_bytes: args.queue_mib << 20,
            audio: audio.clone(),
        };
        let ended = record_take(&engine, take, &interrupted, &mut progress)?;
        left_s -= take_s;
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
        if let Some(sound) = &report.audio {
            println!("{}", sound_line(sound));
        }
        let status = engine.status();
        // Written frames are the distinct pictures; repeats fill the constant-rate slots between them.
        let distinct = report.frames_written;
        let distinct_fps = if report.duration_s > 0.0 { distinct as f64 / report.duration_s } else { 0.0 };
        let precision = status.precision.map_or_else(String::new, |p| format!(" {p}"));
        match &status.governor {
            Some(g) => println!(
                "{}{precision}: {distinct} distinct frames ({distinct_fps:.1} fps); hold frame rate {:.0} fps, ended at {} (step {} of {}), {} steps down, {} up",
                status.model.kind.title(),
                g.target_fps,
                g.label,
                g.level,
                g.levels - 1,
                g.steps_down,
                g.steps_up
            ),
            None => {
                println!("{}{precision}: {distinct} distinct frames ({distinct_fps:.1} fps)", status.model.kind.title())
            }
        }
        if let Some(error) = &report.error {
            failure = Some(error.clone());
            break;
        }
    }
    if let Some(camera) = camera {
        let report = camera.report();
        eprintln!("virtual camera: {} sent, {} repeated, {} dropped", report.sent, report.repeated, report.dropped);
    }
    drop(engine);
    if let Some(error) = failure {
        anyhow::bail!("the recording stopped early: {error}");
    }
    // Ctrl-C is how a take is ended early: the recording is kept, so it is a success.
    Ok(ExitCode::SUCCESS)
}

/// The microphone `--audio` asks for: an error when a named (or `default`) one cannot be opened; without
/// `--audio`, the default one when it opens, else no sound.
fn open_audio(choice: Option<AudioChoice>) -> anyhow::Result<Option<std::sync::Arc<AudioInput>>> {
    match choice {
        Some(AudioChoice::None) => Ok(None),
        Some(choice) => Ok(Some(std::sync::Arc::new(AudioInput::open(choice)?))),
        None => match AudioInput::open(AudioChoice::Default) {
            Ok(input) => Ok(Some(std::sync::Arc::new(input))),
            Err(err) => {
                eprintln!("recording without sound: {err}");
                Ok(None)
            }
        },
    }
}

/// The sidecar's sound, in one line.
fn sound_line(sound: &mattecam::record::AudioReport) -> String {
    let place = match &sound.path {
        Some(path) => format!("in {}", display(path)),
        None => format!("{} in the file", sound.codec),
    };
    let mut line = format!(
        "sound from {}: {:.2} s, {} Hz x{}, {place}",
        sound.device, sound.duration_s, sound.rate, sound.channels
    );
    if sound.gaps > 0 || sound.device_lost {
        line += &format!("; {:.2} s of silence filled {} gap(s)", sound.silence_s, sound.gaps);
    }
    if sound.device_lost {
        line += "; the microphone was lost during the take (see the sidecar)";
    }
    line
}
