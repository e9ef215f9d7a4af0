//! Sound for the recording tests: clicks played into the private PipeWire session's microphone stand-in
//! at instants the test's clock knows, and what a recording's sound and picture say back.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::pipewire::Session;

pub const RATE: u32 = 48_000;
/// Samples between clicks: 1.013 s, which is no whole number of video frames at any usual rate, so the
/// clicks fall at every phase of the frames and their mean offset does not carry the frames' rounding.
pub const PERIOD: u64 = 48_624;
/// Samples in a click: 2 ms.
const CLICK_FRAMES: u64 = 96;
/// Samples handed to `pw-cat` at a time: 5 ms.
const BLOCK: u64 = 240;

/// CLOCK_MONOTONIC now, in nanoseconds (what `Instant` is on Linux, readable by another process).
pub fn monotonic_ns() -> i128 {
    let mut spec = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid timespec to fill.
    assert_eq!(unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut spec) }, 0);
    i128::from(spec.tv_sec) * 1_000_000_000 + i128::from(spec.tv_nsec)
}

/// A 2 ms click every 1.013 s, played into `loop_in` by `pw-cat` from a stream the test writes ahead of
/// it. The test watches the pipe to see when `pw-cat` takes each click (the graph takes one 5 ms quantum a
/// cycle, as it plays it): that instant, on the test's clock, is when the click was played.
pub struct Clicks {
    /// When the first click was taken, on CLOCK_MONOTONIC (the flashing source's
    /// [`mattecam::source::synthetic::FLASH_ENV`]); the others follow a second apart.
    pub epoch_ns: i128,
    /// When each click was taken, in seconds after the first (a check of the reference itself).
    pub taken_s: Arc<std::sync::Mutex<Vec<f64>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// Bytes waiting in a pipe (either end).
fn in_pipe(fd: std::os::fd::RawFd) -> usize {
    let mut bytes: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    if unsafe { libc::ioctl(fd, libc::FIONREAD, &mut bytes) } != 0 {
        return 0;
    }
    bytes.max(0) as usize
}

impl Clicks {
    /// Starts the clicks and returns once the first has been played.
    pub fn start(session: &Session) -> Self {
        use std::os::fd::AsRawFd;
        // Real-time priority where allowed (root, as in CI): on two cores busy with the recording, a
        // starved pw-cat would leave gaps in the clicks that no microphone has.
        let realtime = Command::new("chrt").args(["-f", "20", "true"]).status().is_ok_and(|s| s.success());
        let mut command = if realtime {
            let mut command = session.command("chrt");
            command.args(["-f", "20", "pw-cat"]);
            command
        } else {
            session.command("pw-cat")
        };
        let mut child = command
            .args(["--playback", "--target", "loop_in", "--latency", super::pipewire::QUANTUM])
            // Raw samples on stdin, as these say.
            .args(["--rate", "48000", "--channels", "1", "--format", "s16", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("pw-cat starts");
        let mut stdin = child.stdin.take().expect("pw-cat's stdin");
        // The first click comes after 0.5 s of silence: pw-cat is playing steadily by then.
        let lead_frames = u64::from(RATE) / 2;
        let stop = Arc::new(AtomicBool::new(false));
        let taken_s = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (first_tx, first_rx) = crossbeam_channel::bounded(1);
        let (stopping, taken) = (Arc::clone(&stop), Arc::clone(&taken_s));
        let thread = std::thread::Builder::new()
            .name("test-clicks".into())
            .spawn(move || {
                let fd = stdin.as_raw_fd();
                let (mut written, mut next_click, mut first) = (0u64, 0u64, None::<(Instant, i128)>);
                let mut block = Vec::with_capacity(BLOCK as usize * 2);
                while !stopping.load(Ordering::SeqCst) {
                    // Keep 200 ms queued: pw-cat never waits for this thread (the graph sets its pace).
                    let consumed = written.saturating_sub((in_pipe(fd) / 2) as u64);
                    if written < consumed + u64::from(RATE) / 5 {
                        block.clear();
                        for n in written..written + BLOCK {
                            let click = n >= lead_frames && (n - lead_frames) % PERIOD < CLICK_FRAMES;
                            block.extend_from_slice(&(if click { 26_000i16 } else { 0 }).to_le_bytes());
                        }
                        if stdin.write_all(&block).is_err() {
                            break;
                        }
                        written += BLOCK;
                        continue;
                    }
                    let click_at = lead_frames + next_click * PERIOD;
                    if consumed > click_at {
                        let now = (Instant::now(), monotonic_ns());
                        let (first_at, _) = *first.get_or_insert(now);
                        if next_click == 0 {
                            let _ = first_tx.send(now.1);
                        }
                        taken.lock().unwrap().push(now.0.duration_since(first_at).as_secs_f64());
                        next_click += 1;
                    }
                    std::thread::sleep(Duration::from_micros(500));
                }
                drop(stdin);
                let _ = child.kill();
                let _ = child.wait();
            })
            .unwrap();
        let epoch_ns = first_rx.recv_timeout(Duration::from_secs(20)).expect("pw-cat plays the first click");
        Self { epoch_ns, taken_s, stop, thread: Some(thread) }
    }

    /// The flashing source's [`mattecam::source::synthetic::FLASH_ENV`]: the first click and the period.
    pub fn flash_env(&self) -> String {
        format!("{}:{}", self.epoch_ns, PERIOD * 1_000_000_000 / u64::from(RATE))
    }

    /// How far the clicks were taken from their period after the first: the largest, and the last's.
    pub fn reference_error_s(&self) -> (f64, f64) {
        let taken = self.taken_s.lock().unwrap().clone();
        let period_s = PERIOD as f64 / f64::from(RATE);
        let errors: Vec<f64> = taken.iter().enumerate().map(|(k, t)| t - k as f64 * period_s).collect();
        (errors.iter().fold(0f64, |w, e| w.max(e.abs())), errors.last().copied().unwrap_or(0.0))
    }
}

impl Drop for Clicks {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A file's first audio stream as mono f32 at 48 kHz.
pub fn decode_audio(path: &Path) -> Vec<f32> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-vn", "-ac", "1", "-ar", "48000", "-f", "f32le", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "decoding {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Seconds at which a click starts: above half its height after at least 0.3 s below it.
pub fn click_times(samples: &[f32]) -> Vec<f64> {
    let mut times = Vec::new();
    let mut quiet_since = 0usize;
    for (i, &s) in samples.iter().enumerate() {
        if s.abs() > 0.2 {
            if i - quiet_since > (RATE as usize * 3) / 10 {
                times.push(i as f64 / f64::from(RATE));
            }
            quiet_since = i;
        }
    }
    times
}

/// Each frame's mean brightness (0..255) of a video file.
pub fn frame_brightness(path: &Path) -> Vec<f64> {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-an", "-vf", "scale=32:18,format=gray", "-f", "rawvideo", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "decoding {}: {}", path.display(), String::from_utf8_lossy(&out.stderr));
    out.stdout.chunks_exact(32 * 18).map(|f| f.iter().map(|&v| f64::from(v)).sum::<f64>() / f.len() as f64).collect()
}

/// Stream facts from ffprobe: (codec_type, codec_name, duration_s) per stream.
pub fn streams(path: &Path) -> Vec<(String, String, f64)> {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-show_entries", "stream=codec_type,codec_name,duration", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let parts: Vec<&str> = line.split(',').collect();
            let duration = parts.get(2).and_then(|d| d.trim().parse().ok()).unwrap_or(f64::NAN);
            (parts.get(1).unwrap_or(&"").to_string(), parts[0].to_string(), duration)
        })
        .collect()
}
