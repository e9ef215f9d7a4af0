//! Recording throughput for every format at 1280x720: `cargo bench --bench record`.
//!
//! "encode fps" is the sink alone (composites made beforehand) from the first frame to a finished file;
//! "record fps" is the recorder as the app uses it (queue, compositing on the CPU, encoder, sidecar), fed as
//! fast as it takes frames. The frames are the demo clip's (real camera noise matters to encoders),
//! scaled to the size; the synthetic source when the clip is absent. Under `cargo test` it records a few
//! small frames per format as a smoke test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mattecam::composite::{Background, Composite, CompositeSettings, CompositorKind, CpuCompositor};
use mattecam::frame::{Frame, Matte};
use mattecam::record::{Clock, DEFAULT_QUEUE_FRAMES, RecordOptions, Recorder};
use mattecam::sink::{Format, Output, OutputSpec};
use mattecam::source::synthetic::SyntheticSource;

const FPS: f64 = 30.0;

/// `count` frames of the demo clip at `width`x`height`, or synthetic ones without it.
fn frames(root: &Path, width: u32, height: u32, count: usize) -> (Vec<Vec<u8>>, &'static str) {
    let clip = root.join("assets/demovideo.mp4");
    let frame_bytes = (width * height * 3) as usize;
    if clip.is_file() {
        let output = Command::new("ffmpeg")
            .args(["-v", "error", "-i"])
            .arg(&clip)
            .args(["-frames:v", &count.to_string(), "-vf", &format!("scale={width}:{height}")])
            .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stderr(Stdio::inherit())
            .output()
            .expect("ffmpeg runs");
        if output.status.success() && output.stdout.len() == frame_bytes * count {
            return (output.stdout.chunks_exact(frame_bytes).map(<[u8]>::to_vec).collect(), "demo clip");
        }
    }
    let rendered = (0..count as u64)
        .map(|seq| {
            let mut rgb = Vec::new();
            SyntheticSource::render(width, height, seq, &mut rgb);
            rgb
        })
        .collect();
    (rendered, "synthetic source")
}

/// A soft ellipse at frame size (so nothing is resampled), moving a little each frame.
fn matte(width: u32, height: u32, seq: usize) -> Matte {
    let shift = (seq % 30) as f32 / 300.0;
    let alpha = (0..width * height)
        .map(|i| {
            let x = (i % width) as f32 / width as f32 - 0.45 - shift;
            let y = (i / width) as f32 / height as f32 - 0.6;
            ((1.0 - (x * x / 0.04 + y * y / 0.2).sqrt()) * 12.0).clamp(0.0, 1.0)
        })
        .collect();
    Matte { width, height, alpha, ..Default::default() }
}

fn frame(rgb: &[u8], width: u32, height: u32, seq: usize) -> Frame {
    let pts_ms = seq as f64 * 1000.0 / FPS;
    Frame { seq: seq as u64, captured_at: Instant::now(), pts_ms, width, height, rgb: rgb.to_vec() }
}

fn settings(format: Format) -> CompositeSettings {
    let background = match format {
        Format::Mp4 => Background::Blur { radius_px: 24 },
        other => other.default_background(),
    };
    CompositeSettings { background, ..Default::default() }
}

fn disk_size(path: &Path) -> u64 {
    if path.is_dir() {
        std::fs::read_dir(path).map(|d| d.flatten().map(|e| disk_size(&e.path())).sum()).unwrap_or(0)
    } else {
        std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
    }
}

fn file_name(format: Format) -> String {
    match format.extension() {
        None => "take-png".to_string(),
        Some(_) if format == Format::Matte => "take-matte.mp4".to_string(),
        Some(extension) => format!("take.{extension}"),
    }
}

/// The sink alone: frames per second from the first write to the finished file, and the size.
fn encode_fps(dir: &Path, format: Format, outputs: &[Output], count: usize) -> (f64, u64) {
    let (width, height) = (outputs[0].frame.width, outputs[0].frame.height);
    let spec = OutputSpec { path: dir.join(file_name(format)), format, crf: 18, with_source: false, mirror: false };
    let started = Instant::now();
    let mut sinks = spec.open(width, height, FPS).expect("sink opens");
    for output in outputs.iter().cycle().take(count) {
        for sink in &mut sinks {
            sink.write(output).expect("frame written");
        }
    }
    for sink in &mut sinks {
        sink.finish().expect("file finished");
    }
    let fps = count as f64 / started.elapsed().as_secs_f64();
    let bytes = disk_size(&spec.path);
    std::fs::remove_dir_all(&spec.path).or_else(|_| std::fs::remove_file(&spec.path)).expect("output removed");
    (fps, bytes)
}

/// The recorder as the app runs it; also how many frames it had to drop (none: it is fed blocking).
fn record_fps(dir: &Path, format: Format, rgb: &[Vec<u8>], size: (u32, u32), count: usize) -> f64 {
    let (width, height) = size;
    let path = dir.join(file_name(format));
    let options = RecordOptions {
        output: OutputSpec { path: path.clone(), format, crf: 18, with_source: false, mirror: false },
        width,
        height,
        fps: FPS,
        clock: Clock::Media,
        settings: settings(format),
        compositor: CompositorKind::Cpu,
        queue_frames: DEFAULT_QUEUE_FRAMES,
        model: "bench".into(),
        provider: "none".into(),
        source: "bench".into(),
        encode_delay: Duration::ZERO,
    };
    let mattes: Vec<Matte> = (0..rgb.len()).map(|seq| matte(width, height, seq)).collect();
    let started = Instant::now();
    let recorder = Recorder::start(options).expect("recorder starts");
    for seq in 0..count {
        let index = seq % rgb.len();
        assert!(recorder.push_blocking(frame(&rgb[index], width, height, seq), mattes[index].clone()));
    }
    let report = recorder.stop();
    let fps = count as f64 / started.elapsed().as_secs_f64();
    assert!(report.complete && report.frames_written == count as u64, "{:?}", report.error);
    std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path)).expect("output removed");
    fps
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let (width, height, count, distinct) = if full { (1280, 720, 150, 30) } else { (320, 180, 5, 5) };
    let (rgb, content) = frames(&root, width, height, distinct);
    let dir = tempfile::tempdir().expect("temporary folder");
    println!("| format | encode fps | record fps | MB per second of video |");
    println!("|---|---|---|---|");
    for format in Format::ALL {
        let mut compositor = CpuCompositor::new(settings(format)).expect("CPU compositor");
        let outputs: Vec<Output> = rgb
            .iter()
            .enumerate()
            .map(|(seq, pixels)| {
                let frame = frame(pixels, width, height, seq);
                let (mut alpha, mut composite) = (Vec::new(), Composite::default());
                compositor
                    .composite(&frame, &matte(width, height, seq), &mut alpha, &mut composite)
                    .expect("composite");
                Output { frame, alpha, composite }
            })
            .collect();
        let (encode, bytes) = encode_fps(dir.path(), format, &outputs, count);
        let record = record_fps(dir.path(), format, &rgb, (width, height), count);
        let mb_per_s = bytes as f64 / 1e6 / (count as f64 / FPS);
        println!("| {} | {encode:.1} | {record:.1} | {mb_per_s:.1} |", format.label());
    }
    println!(
        "\n{width}x{height} at {FPS} fps, {count} frames per run ({content}), CRF 18; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
