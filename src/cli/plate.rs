//! `mattecam plate`: a clean background plate, the median of a source's frames.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use mattecam::paths::display;
use mattecam::plate::PlateAverager;
use mattecam::source::SourceSpec;

#[derive(Args)]
pub struct PlateArgs {
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
    /// Replace the output if it exists (without this, an existing file is refused).
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: PlateArgs) -> anyhow::Result<ExitCode> {
    mattecam::limits::check_count("--frames", args.frames, mattecam::limits::MAX_PLATE_FRAMES)?;
    mattecam::limits::check_seconds("--delay-s", args.delay_s, 0.0)?;
    if !args.overwrite && args.output.exists() {
        anyhow::bail!("{}", mattecam::sink::SinkError::Exists(args.output.clone()));
    }
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
    mattecam::sink::partial::write_new(&args.output, args.overwrite, |working| {
        plate.save(working).map_err(|err| err.to_string())
    })?;
    println!(
        "wrote {}: a {}x{} plate, the median of {taken} frames of {}",
        display(&args.output),
        plate.width,
        plate.height,
        info.name
    );
    Ok(ExitCode::SUCCESS)
}
