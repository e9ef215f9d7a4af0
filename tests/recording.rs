//! Recording: every format written from a known picture and read back with ffprobe/ffmpeg, the constant
//! frame rate under jitter and gaps, the bounded queue, and what a killed encoder or a full disk leaves.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use std::sync::Arc;

use common::{mattecam, root};
use mattecam::composite::{Background, CompositeSettings, CpuCompositor, Upsample};
use mattecam::engine::fanout::{Fanout, PublishScratch};
use mattecam::engine::{Delivery, Subscription};
use mattecam::frame::{Frame, Matte, Output};
use mattecam::record::{Clock, EncoderGate, RecordOptions, Recorder, RecordingReport};
use mattecam::sink::{Format, OutputSpec};
use mattecam::source::synthetic::SyntheticSource;

const W: u32 = 640;
const H: u32 = 360;
const FPS: f64 = 30.0;
const GREEN: [u8; 3] = [0, 177, 64];

/// The synthetic scene's frame `seq`, optionally with strong per-pixel noise (which video codecs cannot
/// compress, to fill a disk quickly).
fn frame(seq: u64, noisy: bool) -> Frame {
    let mut rgb = Vec::new();
    SyntheticSource::render(W, H, seq, &mut rgb);
    if noisy {
        let mut state = seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        for value in rgb.iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *value = (state >> 56) as u8;
        }
    }
    Frame { seq, captured_at: Instant::now(), pts_ms: seq as f64 * 1000.0 / FPS, width: W, height: H, rgb }
}

/// A frame-size matte (so no resampling: the recorded alpha is exactly `expected_alpha`): a hard-edged
/// disc that moves, a soft ramp across the bottom, and clear elsewhere.
fn expected_alpha(seq: u64) -> Vec<u8> {
    let (cx, cy, r) = (160 + (seq as i64 * 2) % 320, 150i64, 80i64);
    (0..(W * H) as i64)
        .map(|i| {
            let (x, y) = (i % W as i64, i / W as i64);
            if (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                255
            } else if y >= 280 {
                (x * 255 / (W as i64 - 1)) as u8
            } else {
                0
            }
        })
        .collect()
}

fn matte(seq: u64) -> Matte {
    let alpha = expected_alpha(seq).iter().map(|&a| a as f32 / 255.0).collect();
    Matte { seq, width: W, height: H, alpha, ..Default::default() }
}

fn options(path: &Path, format: Format, clock: Clock) -> RecordOptions {
    RecordOptions {
        output: OutputSpec {
            path: path.to_path_buf(),
            format,
            crf: 18,
            with_source: false,
            mirror: false,
            overwrite: false,
        },
        width: W,
        height: H,
        fps: FPS,
        clock,
        queue_frames: 200,
        queue_bytes: mattecam::record::DEFAULT_QUEUE_BYTES,
        model: "test matte".into(),
        provider: "none".into(),
        source: "synthetic".into(),
        compositor: "cpu".into(),
        started_at: None,
        gate: None,
        audio: None,
    }
}

/// What the engine hands its consumers, made here: each frame composited once, as the window shows it (a
/// green background), and shared with the recorder, which takes the picture its format records.
struct Feed {
    fanout: Fanout,
    compositor: CpuCompositor,
    scratch: PublishScratch,
}

impl Feed {
    fn new() -> Self {
        let settings = CompositeSettings {
            background: Background::Color(GREEN),
            upsample: Upsample::Bilinear,
            ..Default::default()
        };
        Self { fanout: Fanout::default(), compositor: CpuCompositor::new(settings).unwrap(), scratch: Vec::new() }
    }

    /// The recorder's subscription: `delivery` as the caller chooses.
    fn subscriber(&self, delivery: Delivery) -> impl FnOnce() -> Subscription + '_ {
        move || self.fanout.subscribe("recorder", delivery)
    }

    fn publish(&mut self, frame: Frame, matte: Matte) {
        let mut output = Output { mirror: false, ..Default::default() };
        self.compositor.composite(&frame, &matte, &mut output.picture).unwrap();
        output.frame = frame;
        output.matte = matte;
        assert!(self.fanout.publish(&Arc::new(output), &mut self.scratch));
    }
}

/// Records frames `0..count` from the file-like clock, the feed waiting for room in the queue.
fn record(options: RecordOptions, count: u64, noisy: bool) -> RecordingReport {
    let mut feed = Feed::new();
    let recorder = Recorder::start(options, feed.subscriber(Delivery::Wait(8))).expect("recorder starts");
    for seq in 0..count {
        feed.publish(frame(seq, noisy), matte(seq));
    }
    feed.fanout.close();
    recorder.stop()
}

struct Probe {
    frames: u64,
    pix_fmt: String,
    duration_s: f64,
    alpha_tag: bool,
}

fn ffprobe(path: &Path) -> Probe {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries"])
        .args(["stream=nb_read_packets,pix_fmt:stream_tags=alpha_mode:format=duration", "-of", "json"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    assert!(output.status.success(), "ffprobe {}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &json["streams"][0];
    Probe {
        frames: stream["nb_read_packets"].as_str().and_then(|s| s.parse().ok()).unwrap_or(0),
        pix_fmt: stream["pix_fmt"].as_str().unwrap_or_default().to_string(),
        duration_s: json["format"]["duration"].as_str().and_then(|s| s.parse().ok()).unwrap_or(f64::NAN),
        alpha_tag: stream["tags"]["alpha_mode"].as_str() == Some("1"),
    }
}

/// Decodes every frame to raw `pix_fmt` (`rgba`, `rgb24`, `gray`); VP9 alpha needs libvpx as decoder.
/// Fails on any decoder complaint: the file must be clean.
fn decode(path: &Path, pix_fmt: &str, libvpx: bool) -> Vec<Vec<u8>> {
    decode_sized(path, pix_fmt, libvpx, (W, H))
}

fn decode_sized(path: &Path, pix_fmt: &str, libvpx: bool, (width, height): (u32, u32)) -> Vec<Vec<u8>> {
    let mut command = Command::new("ffmpeg");
    command.args(["-v", "error"]);
    if libvpx {
        command.args(["-c:v", "libvpx-vp9"]);
    }
    let output =
        command.arg("-i").arg(path).args(["-f", "rawvideo", "-pix_fmt", pix_fmt, "-"]).output().expect("ffmpeg runs");
    assert!(output.status.success(), "decoding {}: {}", path.display(), String::from_utf8_lossy(&output.stderr));
    assert!(output.stderr.is_empty(), "decoder complained: {}", String::from_utf8_lossy(&output.stderr));
    let bytes_per_pixel = match pix_fmt {
        "rgba" => 4,
        "rgb24" => 3,
        _ => 1,
    };
    output.stdout.chunks_exact((width * height) as usize * bytes_per_pixel).map(<[u8]>::to_vec).collect()
}

/// Largest and mean absolute difference between channel `channel` of `pixels` and `expected`.
fn channel_error(pixels: &[u8], stride: usize, channel: usize, expected: &[u8]) -> (u8, f64) {
    let mut max = 0u8;
    let mut sum = 0u64;
    for (pixel, &want) in pixels.chunks_exact(stride).zip(expected) {
        let diff = pixel[channel].abs_diff(want);
        max = max.max(diff);
        sum += u64::from(diff);
    }
    (max, sum as f64 / expected.len() as f64)
}

/// The largest and the mean difference between one channel of the decoded frames and the alpha sent.
fn alpha_error(decoded: &[Vec<u8>], stride: usize, channel: usize, sent: &[Vec<u8>]) -> (u8, f64) {
    assert_eq!(decoded.len(), sent.len());
    let per_frame: Vec<(u8, f64)> =
        decoded.iter().zip(sent).map(|(pixels, alpha)| channel_error(pixels, stride, channel, alpha)).collect();
    let max = per_frame.iter().map(|e| e.0).max().unwrap_or(0);
    (max, per_frame.iter().map(|e| e.1).sum::<f64>() / per_frame.len() as f64)
}

fn psnr(a: &[u8], b: &[u8]) -> f64 {
    let mse = a.iter().zip(b).map(|(&x, &y)| (f64::from(x) - f64::from(y)).powi(2)).sum::<f64>() / a.len() as f64;
    10.0 * (255.0f64 * 255.0 / mse.max(1e-9)).log10()
}

fn assert_duration(probe: &Probe, seconds: f64, what: &str) {
    assert!((probe.duration_s - seconds).abs() <= 1.0 / FPS + 1e-3, "{what}: {} s, want {seconds}", probe.duration_s);
}

fn assert_complete(report: &RecordingReport, frames: u64) {
    assert!(report.complete, "{:?}", report.error);
    assert_eq!(report.error, None);
    assert_eq!((report.frames_in, report.frames_written, report.frames_dropped), (frames, frames, 0));
    assert_eq!((report.frames_repeated, report.frames_skipped), (0, 0));
    assert!((report.duration_s - frames as f64 / FPS).abs() < 1e-9);
    // The sidecar says the same.
    let sidecar = std::fs::read_to_string(RecordingReport::sidecar_path(&report.path)).expect("sidecar written");
    let read: RecordingReport = serde_json::from_str(&sidecar).unwrap();
    assert_eq!((read.frames_written, read.frames_dropped, read.format.as_str()), (frames, 0, report.format.as_str()));
}

/// Nothing but the named files is left in `dir` (no partial or temporary file).
fn assert_only(dir: &Path, names: &[&str]) {
    let mut left: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    let mut want: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(left, want);
}

#[test]
fn every_format_records_150_frames_that_decode_to_what_was_sent() {
    let dir = tempfile::tempdir().unwrap();
    let frames = 150;
    let sent_alpha: Vec<Vec<u8>> = (0..frames).map(expected_alpha).collect();

    // PNG sequence: lossless, so exactly the alpha sent and the frame's own colours where opaque.
    let png_dir = dir.path().join("take-png");
    let report = record(options(&png_dir, Format::Png, Clock::Media), frames, false);
    assert_complete(&report, frames);
    let names: Vec<_> = std::fs::read_dir(&png_dir).unwrap().collect();
    assert_eq!(names.len(), frames as usize);
    for seq in [0u64, 77, 149] {
        let png = image::open(png_dir.join(format!("{seq:06}.png"))).unwrap();
        assert_eq!(png.color(), image::ColorType::Rgba8, "PNG is the RGBA cutout");
        let rgba = png.into_rgba8();
        let (max, _) = channel_error(rgba.as_raw(), 4, 3, &sent_alpha[seq as usize]);
        assert_eq!(max, 0, "PNG alpha of frame {seq}");
        let source = frame(seq, false);
        let (x, y) = (160 + (seq as usize * 2) % 320, 150);
        let i = y * W as usize + x;
        assert_eq!(&rgba.as_raw()[i * 4..i * 4 + 3], &source.rgb[i * 3..i * 3 + 3], "opaque pixel keeps its colour");
    }

    // ProRes 4444: 10-bit colour with a 16-bit alpha plane; alpha back within 2/255.
    // Each take its own stem: takes that shared one would share a sidecar (the second is refused).
    let mov = dir.path().join("take-mov.mov");
    let report = record(options(&mov, Format::Prores, Clock::Media), frames, false);
    assert_complete(&report, frames);
    let probe = ffprobe(&mov);
    assert_eq!(probe.frames, frames);
    assert!(probe.pix_fmt.starts_with("yuva444p"), "{}", probe.pix_fmt);
    assert_duration(&probe, 5.0, "ProRes");
    let decoded = decode(&mov, "rgba", false);
    assert_eq!(decoded.len(), frames as usize);
    let (prores_max, _) = alpha_error(&decoded, 4, 3, &sent_alpha);
    eprintln!("ProRes 4444 alpha: max difference {prores_max}/255");
    assert!(prores_max <= 2, "ProRes alpha differs by up to {prores_max}/255");

    // VP9 with alpha: lossy, alpha coded like luma at the chosen CRF.
    let webm = dir.path().join("take-webm.webm");
    let report = record(options(&webm, Format::WebmAlpha, Clock::Media), frames, false);
    assert_complete(&report, frames);
    let probe = ffprobe(&webm);
    assert_eq!(probe.frames, frames);
    assert!(probe.alpha_tag, "WebM stream is marked as carrying alpha");
    assert_duration(&probe, 5.0, "WebM");
    let decoded = decode(&webm, "rgba", true);
    assert_eq!(decoded.len(), frames as usize);
    let (vp9_max, vp9_mean) = alpha_error(&decoded, 4, 3, &sent_alpha);
    eprintln!("VP9 alpha at CRF 18: max difference {vp9_max}/255, mean {vp9_mean:.3}/255");
    assert!(vp9_mean < 1.0 && vp9_max <= 96, "VP9 alpha: max {vp9_max}, mean {vp9_mean:.3}");

    // The composite as H.264, and the matte beside the source video, frame-aligned.
    let mp4 = dir.path().join("take.mp4");
    let report = record(options(&mp4, Format::Mp4, Clock::Media), frames, false);
    assert_complete(&report, frames);
    let probe = ffprobe(&mp4);
    assert_eq!((probe.frames, probe.pix_fmt.as_str()), (frames, "yuv420p"));
    assert_duration(&probe, 5.0, "MP4");
    let decoded = decode(&mp4, "rgb24", false);
    let corner = &decoded[10][..3];
    assert!(corner.iter().zip(GREEN).all(|(c, g)| c.abs_diff(g) <= 6), "corner {corner:?} is the background colour");

    let matte_path = dir.path().join("matte.mp4");
    let mut matte_options = options(&matte_path, Format::Matte, Clock::Media);
    matte_options.output.with_source = true;
    let report = record(matte_options, frames, false);
    assert_complete(&report, frames);
    let source_path = dir.path().join("matte.source.mp4");
    assert_eq!(report.source_path.as_deref(), Some(source_path.as_path()));
    for path in [&matte_path, &source_path] {
        let probe = ffprobe(path);
        assert_eq!((probe.frames, probe.pix_fmt.as_str()), (frames, "yuv420p"), "{}", path.display());
        assert_duration(&probe, 5.0, "matte");
    }
    let mattes = decode(&matte_path, "gray", false);
    let (matte_max, matte_mean) = alpha_error(&mattes, 1, 0, &sent_alpha);
    eprintln!("gray H.264 matte at CRF 18: max difference {matte_max}/255, mean {matte_mean:.3}/255");
    assert!(matte_mean < 1.0 && matte_max <= 96, "matte: max {matte_max}, mean {matte_mean:.3}");
    let sources = decode(&source_path, "rgb24", false);
    // Aligned: decoded frame i is nearest to source frame i, not to its neighbours.
    for seq in [0u64, 100, 149] {
        let quality = psnr(&sources[seq as usize], &frame(seq, false).rgb);
        assert!(quality > 30.0, "source frame {seq} is the source's frame {seq} (PSNR {quality:.1} dB)");
        for other in [seq.saturating_sub(1), seq + 1].into_iter().filter(|&o| o != seq) {
            let other_quality = psnr(&sources[seq as usize], &frame(other, false).rgb);
            assert!(quality > other_quality, "frame {seq}: {quality:.1} dB, vs frame {other}: {other_quality:.1} dB");
        }
    }
    assert_only(
        dir.path(),
        &[
            "take-png",
            "take-png.json",
            "take-mov.mov",
            "take-mov.json",
            "take-webm.webm",
            "take-webm.json",
            "take.mp4",
            "take.json",
            "matte.mp4",
            "matte.source.mp4",
            "matte.json",
        ],
    );
}

/// Capture times with camera jitter and a stall: the file keeps a constant rate and lasts as long as the
/// take, within one frame. The take's start and end are given on the capture clock, so nothing here
/// depends on how fast the machine encodes.
#[test]
fn jittered_capture_times_give_a_constant_rate_of_the_right_length() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("take.mp4");
    let start = Instant::now();
    let mut opts = options(&path, Format::Mp4, Clock::Capture);
    opts.started_at = Some(start);
    let mut feed = Feed::new();
    let recorder = Recorder::start(opts, feed.subscriber(Delivery::Wait(8))).unwrap();
    let jitter_ms = [0.0, 9.0, -7.0, 4.0, -11.0, 13.0, -3.0];
    let mut pushed = 0;
    for seq in 0..300u64 {
        // 12 frames lost to a model stall.
        if (140..152).contains(&seq) {
            continue;
        }
        let offset_ms = seq as f64 * 1000.0 / 30.0 + 20.0 + jitter_ms[seq as usize % jitter_ms.len()];
        let mut f = frame(seq, false);
        f.captured_at = start + Duration::from_secs_f64(offset_ms / 1000.0);
        feed.publish(f, matte(seq));
        pushed += 1;
    }
    // Stopped 10 s after the start on the capture clock.
    let report = recorder.stop_at(start + Duration::from_secs(10));
    assert!(report.complete, "{:?}", report.error);
    assert_eq!(report.frames_written, pushed);
    // The stall's 12 slots are filled by repeats, and the first frame (20 ms in) also fills the slot before.
    assert_eq!(report.frames_repeated, 13, "{report:?}");
    let probe = ffprobe(&path);
    assert_eq!(probe.frames, report.frames_written + report.frames_repeated);
    assert!((probe.duration_s - 10.0).abs() <= 1.0 / 30.0 + 0.02, "duration {} s", probe.duration_s);
}

/// A slow encoder (held back by a gate, so the count does not depend on speed): under the queue's bound
/// nothing is lost; beyond it, drops are counted and reported.
#[test]
fn a_slow_encoder_fills_the_queue_before_anything_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("slow.mp4");
    let gate = EncoderGate::closed();
    let mut opts = options(&path, Format::Mp4, Clock::Media);
    opts.gate = Some(Arc::clone(&gate));
    let mut feed = Feed::new();
    let recorder = Recorder::start(opts, feed.subscriber(Delivery::Queue(40))).unwrap();
    for seq in 0..30 {
        feed.publish(frame(seq, false), matte(seq));
    }
    let status = recorder.status();
    // The encoder may have taken one frame off the queue before the gate stopped it.
    assert!((29..=30).contains(&status.queue_depth), "the queue holds the backlog: {status:?}");
    assert_eq!(status.frames_dropped, 0);
    gate.open();
    feed.fanout.close();
    let report = recorder.stop();
    assert_eq!((report.frames_in, report.frames_written, report.frames_dropped), (30, 30, 0));
    assert_eq!(ffprobe(&path).frames, 30);

    let path = dir.path().join("slower.mp4");
    let gate = EncoderGate::closed();
    let mut opts = options(&path, Format::Mp4, Clock::Media);
    opts.gate = Some(Arc::clone(&gate));
    let mut feed = Feed::new();
    let recorder = Recorder::start(opts, feed.subscriber(Delivery::Queue(10))).unwrap();
    for seq in 0..40 {
        feed.publish(frame(seq, false), matte(seq));
    }
    let status = recorder.status();
    assert_eq!(status.queue_capacity, 10);
    // Ten frames queued (and maybe one taken by the held encoder); the rest dropped and counted.
    assert!((29..=30).contains(&status.frames_dropped), "{status:?}");
    gate.open();
    feed.fanout.close();
    let report = recorder.stop();
    assert_eq!(report.frames_dropped, status.frames_dropped);
    assert_eq!(report.frames_written + report.frames_dropped, 40);
    let sidecar: RecordingReport =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("slower.json")).unwrap()).unwrap();
    assert_eq!(sidecar.frames_dropped, report.frames_dropped);
    // A dropped frame's time is held by the frame before it: the file runs to the last frame accepted.
    let probe = ffprobe(&path);
    assert_eq!(probe.frames, report.frames_written + report.frames_repeated);
    assert_eq!(probe.frames, report.frames_written, "media time: the accepted frames, back to back");
}

/// ffmpeg killed mid-recording: the recorder says so, stops by itself, and the file up to then plays.
#[test]
fn a_killed_encoder_leaves_a_playable_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("killed.mp4");
    let mut feed = Feed::new();
    let recorder =
        Recorder::start(options(&path, Format::Mp4, Clock::Media), feed.subscriber(Delivery::Queue(200))).unwrap();
    for seq in 0..120 {
        feed.publish(frame(seq, false), matte(seq));
    }
    // Wait (however long this machine takes) until ffmpeg has put whole fragments on disk, then kill it
    // as a crash would.
    let working = dir.path().join("killed.partial.mp4");
    let deadline = Instant::now() + Duration::from_secs(120);
    let on_disk = loop {
        let frames = if working.exists() { ffprobe_frames_lenient(&working) } else { 0 };
        if frames > 0 {
            break frames;
        }
        assert!(Instant::now() < deadline, "no fragment reached the disk");
        std::thread::sleep(Duration::from_millis(100));
    };
    let pids = recorder.encoder_pids();
    assert_eq!(pids.len(), 1);
    assert!(Command::new("kill").args(["-KILL", &pids[0].to_string()]).status().unwrap().success());
    let mut seq = 120;
    while recorder.status().failure.is_none() {
        assert!(Instant::now() < deadline, "the dead encoder went unnoticed");
        feed.publish(frame(seq, false), matte(seq));
        seq += 1;
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = recorder.stop();
    let error = report.error.clone().unwrap_or_default();
    assert!(!report.complete);
    assert!(error.contains("ffmpeg stopped") && error.contains("killed.incomplete.mp4"), "{error}");
    // Kept as incomplete: the final name only ever holds a complete recording.
    let kept = dir.path().join("killed.incomplete.mp4");
    let probe = ffprobe(&kept);
    assert!(probe.frames >= on_disk, "{} frames kept, {on_disk} were on disk", probe.frames);
    let decoded = decode(&kept, "rgb24", false);
    assert_eq!(decoded.len() as u64, probe.frames, "every kept frame decodes");
    assert_only(dir.path(), &["killed.incomplete.mp4", "killed.json"]);
}

/// Packets ffprobe reads from a file that may still be growing (0 when it cannot read it yet).
fn ffprobe_frames_lenient(path: &Path) -> u64 {
    let output = Command::new("ffprobe")
        .args(["-v", "quiet", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&output.stdout).trim().parse().unwrap_or(0)
}

/// Mounts a small tmpfs for a test; unmounted on drop. None (skipped) where that needs root we lack.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(dir).unwrap();
        let mounted =
            Command::new("mount").args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"]).arg(dir).status();
        if !mounted.is_ok_and(|s| s.success()) {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI runs as root and must be able to mount a tmpfs");
            eprintln!("skipped: mounting a small tmpfs needs root");
            return None;
        }
        Some(Self(dir.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// The disk fills mid-recording: the recorder says so, the file up to then plays, and no partial file
/// is left behind.
#[test]
fn a_full_disk_leaves_a_playable_file() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("small"), "6m") else {
        return;
    };
    let path = disk.0.join("full.mp4");
    let mut feed = Feed::new();
    let recorder =
        Recorder::start(options(&path, Format::Mp4, Clock::Media), feed.subscriber(Delivery::Queue(8))).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seq = 0;
    while recorder.status().failure.is_none() {
        assert!(Instant::now() < deadline, "6 MB never filled");
        // As fast as the encoder takes them (a full queue would only drop frames).
        while recorder.status().queue_depth >= 4 && recorder.status().failure.is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        feed.publish(frame(seq, true), matte(seq));
        seq += 1;
    }
    let report = recorder.stop();
    let error = report.error.clone().unwrap_or_default();
    assert!(error.contains("No space left") || error.contains("disk may be full"), "{error}");
    assert!(error.contains("are kept in") && error.contains("full.incomplete.mp4"), "{error}");
    let kept = disk.0.join("full.incomplete.mp4");
    let probe = ffprobe(&kept);
    assert!(probe.frames > 0, "{} frames kept", probe.frames);
    assert_eq!(decode(&kept, "rgb24", false).len() as u64, probe.frames);
    let left: Vec<String> =
        std::fs::read_dir(&disk.0).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(left.iter().all(|name| !name.contains("partial") && !name.contains("finishing")), "{left:?}");

    // A PNG sequence keeps its complete frames.
    std::fs::remove_file(&kept).unwrap();
    let _ = std::fs::remove_file(disk.0.join("full.json"));
    let png_dir = disk.0.join("frames");
    let mut feed = Feed::new();
    let recorder =
        Recorder::start(options(&png_dir, Format::Png, Clock::Media), feed.subscriber(Delivery::Queue(8))).unwrap();
    let mut seq = 0;
    while recorder.status().failure.is_none() {
        assert!(Instant::now() < deadline, "6 MB never filled");
        while recorder.status().queue_depth >= 4 && recorder.status().failure.is_none() {
            std::thread::sleep(Duration::from_millis(5));
        }
        feed.publish(frame(seq, true), matte(seq));
        seq += 1;
    }
    let report = recorder.stop();
    let png_kept = disk.0.join("frames.incomplete");
    let kept = std::fs::read_dir(&png_kept).unwrap().count();
    assert!(kept > 0 && !png_dir.exists(), "{:?}", report.error);
    for entry in std::fs::read_dir(&png_kept).unwrap() {
        image::open(entry.unwrap().path()).expect("every kept PNG is whole");
    }
}

fn run(args: &[&str]) -> std::process::Output {
    Command::new(mattecam()).args(args).current_dir(root()).output().expect("mattecam runs")
}

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// `process --format` writes each format from the command line, and refuses a name that does not fit.
#[test]
fn process_writes_prores_and_a_matte_with_its_source() {
    let dir = tempfile::tempdir().unwrap();
    let mov = dir.path().join("cut.mov");
    let output = run(&["process", "demo", "-o", mov.to_str().unwrap(), "--max-frames", "12", "--ref-size", "256"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let probe = ffprobe(&mov);
    assert_eq!(probe.frames, 12);
    assert!(probe.pix_fmt.starts_with("yuva444p"), "{}", probe.pix_fmt);

    let matte = dir.path().join("matte.mp4");
    let output = run(&[
        "process",
        "demo",
        "-o",
        matte.to_str().unwrap(),
        "--format",
        "matte",
        "--with-source",
        "--max-frames",
        "12",
        "--ref-size",
        "256",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(ffprobe(&matte).frames, 12);
    assert_eq!(ffprobe(&dir.path().join("matte.source.mp4")).frames, 12);

    let wrong = dir.path().join("x.mp4");
    let output = run(&["process", "demo", "-o", wrong.to_str().unwrap(), "--format", "prores"]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("x.mov"), "{}", stderr(&output));
}

/// `mattecam record` records a live source headless for the time asked, and Ctrl-C in the terminal (sent
/// to the whole process group, as a terminal does) ends the take early and keeps it playable.
#[test]
fn record_command_records_for_the_time_asked_and_ctrl_c_keeps_the_take() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.mp4");
    let output = run(&[
        "record",
        "--source",
        "synthetic:320x240@25",
        "--seconds",
        "4",
        "-o",
        path.to_str().unwrap(),
        "--model",
        "rvm",
        "--compositor",
        "cpu",
    ]);
    assert!(output.status.success(), "{}", stderr(&output));
    let probe = ffprobe(&path);
    assert!((probe.duration_s - 4.0).abs() <= 1.0 / 25.0 + 0.02, "{} s", probe.duration_s);
    let sidecar: RecordingReport =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("live.json")).unwrap()).unwrap();
    assert!(sidecar.complete && sidecar.frames_written > 0, "{sidecar:?}");
    assert_eq!(probe.frames, sidecar.frames_written + sidecar.frames_repeated);
    assert_eq!(sidecar.model, "rvm");

    let path = dir.path().join("interrupted.webm");
    let mut command = Command::new(mattecam());
    command
        .args(["record", "--source", "synthetic:320x240@25", "--seconds", "60", "-o", path.to_str().unwrap()])
        .args(["--model", "rvm", "--compositor", "cpu"])
        .current_dir(root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    let child = command.spawn().unwrap();
    // Interrupted once the take has frames on disk, however long that takes here.
    let deadline = Instant::now() + Duration::from_secs(120);
    let working = dir.path().join("interrupted.partial.webm");
    while std::fs::metadata(&working).map_or(0, |m| m.len()) < 20_000 {
        assert!(Instant::now() < deadline, "recording did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let group = format!("-{}", child.id());
    assert!(Command::new("kill").args(["-INT", "--", &group]).status().unwrap().success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let probe = ffprobe(&path);
    assert!(probe.frames > 0 && probe.alpha_tag);
    let sidecar: RecordingReport =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("interrupted.json")).unwrap()).unwrap();
    assert!(sidecar.complete, "{sidecar:?}");
    assert!((probe.duration_s - sidecar.duration_s).abs() <= 1.0 / 25.0 + 0.02, "{} s, {sidecar:?}", probe.duration_s);
    assert_eq!(decode_sized(&path, "rgba", true, (320, 240)).len() as u64, probe.frames);
    assert_only(dir.path(), &["live.mp4", "live.json", "interrupted.webm", "interrupted.json"]);
}

/// The live engine records every matted frame while it runs (a take started and stopped without the caller
/// waiting), a take whose ffmpeg dies says so while matting goes on, and a take still running when the
/// window closes is finalised. The model is the test stand-in, so nothing depends on this machine's speed.
#[test]
fn live_engine_records_and_finalises() {
    use mattecam::engine::{Engine, EngineConfig, ModelChoice, ModelInput, SourceChoice};
    use mattecam::filter::temporal::TemporalMode;
    use mattecam::infer::ModelKind;
    use mattecam::infer::synthetic::SyntheticMatter;
    use mattecam::record::live::{RecordingEvent, Recordings};

    let mut config = EngineConfig::live(
        SourceChoice::Synthetic { width: 320, height: 240, fps: 25.0 },
        ModelChoice::default(),
        TemporalMode::Ofd,
        CompositeSettings { background: Background::Color(GREEN), ..Default::default() },
    );
    let stand_in = SyntheticMatter::new(ModelKind::Rvm, Duration::from_millis(30));
    config.model = ModelInput::Opened(vec![Box::new(stand_in)]);
    config.compositor = mattecam::engine::CompositorSetup::Kind(mattecam::composite::CompositorKind::Cpu);
    let engine = Engine::start(config);
    let deadline = Instant::now() + Duration::from_secs(120);
    let info = engine.wait_until_ready(&|| Instant::now() > deadline).unwrap().expect("the engine runs");
    let dir = tempfile::tempdir().unwrap();
    let record_options = |path: PathBuf, format| RecordOptions {
        width: info.width,
        height: info.height,
        fps: info.fps,
        ..options(&path, format, Clock::Capture)
    };
    let mut takes = Recordings::default();
    let poll_until = |takes: &mut Recordings, what: &str, done: &dyn Fn(&RecordingEvent) -> bool| {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(event) = takes.poll().into_iter().find(|event| done(event)) {
                return event;
            }
            assert!(Instant::now() < deadline, "{what}");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    takes.start(&engine, record_options(dir.path().join("a.mp4"), Format::Mp4)).unwrap();
    let second = record_options(dir.path().join("b.mp4"), Format::Mp4);
    assert!(takes.start(&engine, second).is_err(), "one at a time");
    poll_until(&mut takes, "the take did not start", &|e| matches!(e, RecordingEvent::Started));
    while !matches!(takes.view(), mattecam::record::live::RecordingView::Running(ref s) if s.frames_written > 5) {
        assert!(Instant::now() < deadline, "no frames were recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    takes.stop();
    let RecordingEvent::Finished(report) =
        poll_until(&mut takes, "not finished", &|e| matches!(e, RecordingEvent::Finished(_)))
    else {
        unreachable!()
    };
    assert!(report.complete, "{:?}", report.error);
    assert!(report.frames_written > 5, "{report:?}");
    let probe = ffprobe(&dir.path().join("a.mp4"));
    assert_eq!(probe.frames, report.frames_written + report.frames_repeated);
    assert!((probe.duration_s - report.duration_s).abs() <= 1.0 / 25.0 + 0.02, "{} s, {report:?}", probe.duration_s);
    // The recording is the picture the engine composited: the green background where the disc is not.
    let first = &decode_sized(&dir.path().join("a.mp4"), "rgb24", false, (320, 240))[0];
    assert!(first[..3].iter().zip(GREEN).all(|(c, g)| c.abs_diff(g) <= 8), "corner {:?}", &first[..3]);

    // ffmpeg dies mid-take: the take says so and stops, the engine goes on matting, what was written plays.
    let crashed = dir.path().join("crashed.mp4");
    takes.start(&engine, record_options(crashed.clone(), Format::Mp4)).unwrap();
    poll_until(&mut takes, "the second take did not start", &|e| matches!(e, RecordingEvent::Started));
    let pids = takes.encoder_pids();
    assert!(Command::new("kill").args(["-KILL", &pids[0].to_string()]).status().unwrap().success());
    let RecordingEvent::Finished(report) =
        poll_until(&mut takes, "the failure was not noticed", &|e| matches!(e, RecordingEvent::Finished(_)))
    else {
        unreachable!()
    };
    assert!(!report.complete && report.error.as_deref().is_some_and(|e| e.contains("crashed.mp4")), "{report:?}");
    let matted = engine.snapshot().frames_inferred;
    while engine.snapshot().frames_inferred <= matted + 3 {
        assert!(Instant::now() < deadline, "the engine stopped matting");
        std::thread::sleep(Duration::from_millis(20));
    }
    if crashed.exists() {
        let probe = ffprobe(&crashed);
        assert_eq!(decode_sized(&crashed, "rgb24", false, (info.width, info.height)).len() as u64, probe.frames);
    }

    // A ProRes take with alpha still running when the window closes: finished after it, whole.
    let prores = dir.path().join("c.mov");
    takes.start(&engine, record_options(prores.clone(), Format::Prores)).unwrap();
    poll_until(&mut takes, "the third take did not start", &|e| matches!(e, RecordingEvent::Started));
    while !matches!(takes.view(), mattecam::record::live::RecordingView::Running(ref s) if s.frames_written > 2) {
        assert!(Instant::now() < deadline + Duration::from_secs(60), "no frames were recorded");
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut announced = false;
    let reports = takes.finish_all(|_| announced = true);
    drop(engine);
    assert!(announced, "closing with a take running says that it finishes it");
    assert_eq!(reports.len(), 1);
    assert!(reports[0].complete && reports[0].format == "prores", "{:?}", reports[0]);
    let probe = ffprobe(&prores);
    assert!(probe.frames > 0 && probe.pix_fmt.starts_with("yuva444p"), "{} {}", probe.frames, probe.pix_fmt);
    let mut expected = vec!["a.mp4", "a.json", "crashed.json", "c.mov", "c.json"];
    if crashed.exists() {
        expected.push("crashed.mp4");
    }
    assert_only(dir.path(), &expected);
}
