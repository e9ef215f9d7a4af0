//! Recording throughput for every format at 1280x720: `cargo bench --bench record`.
//!
//! "encode fps" is the sink alone (composites made beforehand) from the first frame to a finished file;
//! "record fps" is the recorder as the app uses it (the engine's shared outputs queued, the picture the
//! format records taken from them, encoder, sidecar), fed as fast as it takes frames. The compositing is
//! the engine's, once per frame for every consumer, and not part of either figure. The frames are the demo clip's (real camera noise matters to encoders),
//! scaled to the size; the synthetic source when the clip is absent. Under `cargo test` it records a few
//! small frames per format as a smoke test.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Instant;

use mattecam::composite::{Background, CompositeSettings, CpuCompositor};
use mattecam::engine::Delivery;
use mattecam::engine::fanout::Fanout;
use mattecam::frame::{Frame, Matte, Output};
use mattecam::record::{Clock, RecordOptions, Recorder, recorded_picture};
use mattecam::sink::{Format, OutputSpec, SinkFrame};
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

/// The window's picture: the blurred room (the alpha formats record the cutout from its alpha).
fn settings() -> CompositeSettings {
    CompositeSettings { background: Background::Blur { radius_px: 24 }, ..Default::default() }
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
fn encode_fps(dir: &Path, format: Format, outputs: &[Arc<Output>], count: usize) -> (f64, u64) {
    let (width, height) = (outputs[0].frame.width, outputs[0].frame.height);
    let spec = OutputSpec {
        path: dir.join(file_name(format)),
        format,
        crf: 18,
        with_source: false,
        mirror: false,
        overwrite: false,
    };
    let pictures: Vec<_> = outputs
        .iter()
        .map(|output| {
            let mut scratch = Default::default();
            recorded_picture(format, output, &mut scratch).clone()
        })
        .collect();
    let started = Instant::now();
    let mut sinks = spec.open(width, height, FPS).expect("sink opens");
    for (output, picture) in outputs.iter().zip(&pictures).cycle().take(count) {
        for sink in &mut sinks {
            let frame = SinkFrame { frame: &output.frame, alpha: &output.picture.alpha, picture };
            sink.write(frame).expect("frame written");
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

/// The recorder as the app runs it, fed the engine's outputs without dropping any.
fn record_fps(dir: &Path, format: Format, outputs: &[Arc<Output>], count: usize) -> f64 {
    let (width, height) = (outputs[0].frame.width, outputs[0].frame.height);
    let path = dir.join(file_name(format));
    let options = RecordOptions {
        output: OutputSpec { path: path.clone(), format, crf: 18, with_source: false, mirror: false, overwrite: false },
        width,
        height,
        fps: FPS,
        clock: Clock::Media,
        queue_frames: 8,
        queue_bytes: mattecam::record::DEFAULT_QUEUE_BYTES,
        model: "bench".into(),
        provider: "none".into(),
        source: "bench".into(),
        compositor: "cpu".into(),
        started_at: None,
        gate: None,
        audio: None,
    };
    let fanout = Fanout::default();
    let mut scratch = Vec::new();
    let started = Instant::now();
    let recorder =
        Recorder::start(options, || fanout.subscribe("recorder", Delivery::Wait(8))).expect("recorder starts");
    for seq in 0..count {
        // Each frame its own media time, as a file run's frames have.
        let source = &outputs[seq % outputs.len()];
        let output = Output {
            frame: Frame { seq: seq as u64, pts_ms: seq as f64 * 1000.0 / FPS, ..source.frame.clone() },
            matte: source.matte.clone(),
            picture: source.picture.clone(),
            ..Default::default()
        };
        assert!(fanout.publish(&Arc::new(output), &mut scratch));
    }
    fanout.close();
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
    let mut compositor = CpuCompositor::new(settings()).expect("CPU compositor");
    let outputs: Vec<Arc<Output>> = rgb
        .iter()
        .enumerate()
        .map(|(seq, pixels)| {
            let mut output = Output {
                frame: frame(pixels, width, height, seq),
                matte: matte(width, height, seq),
                ..Default::default()
            };
            compositor.composite(&output.frame, &output.matte, &mut output.picture).expect("composite");
            Arc::new(output)
        })
        .collect();
    for format in Format::ALL {
        let (encode, bytes) = encode_fps(dir.path(), format, &outputs, count);
        let record = record_fps(dir.path(), format, &outputs, count);
        let mb_per_s = bytes as f64 / 1e6 / (count as f64 / FPS);
        println!("| {} | {encode:.1} | {record:.1} | {mb_per_s:.1} |", format.label());
    }
    println!(
        "\n{width}x{height} at {FPS} fps, {count} frames per run ({content}), CRF 18; {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
}
