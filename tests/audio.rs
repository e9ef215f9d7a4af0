//! Sound in recordings, from a real microphone path: a private PipeWire session, `pw-loopback` as the
//! microphone, clicks played into it by `pw-cat` at instants the test's clock knows, and `mattecam record`
//! capturing through ALSA (pipewire-alsa), as on a desktop. A synthetic source that flashes white at the
//! same instants lets the recording say how far sound and picture are apart.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use common::pipewire::Session;
use common::sound::{Clicks, click_times, decode_audio, frame_brightness, streams};
use common::{mattecam, root};
use mattecam::record::RecordingReport;

/// The recordings' rate. One frame (40 ms) is the sync target; see the README's sync figures for 30 fps.
const FPS: f64 = 25.0;

/// One test at a time: each runs a sound server, a recorder and encoders, and on two cores several at once
/// stall the sound server's graph, which no microphone does.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A session with the microphone stand-in, held alone, or `None` (with a note) where PipeWire is missing
/// outside CI.
fn microphone() -> Option<(std::sync::MutexGuard<'static, ()>, Session)> {
    let alone = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    let mut session = Session::start()?;
    session.start_microphone().then_some((alone, session))
}

/// `mattecam record` in the session, with the test model and a synthetic source.
fn record(session: &Session, args: &[&str]) -> Command {
    let mut command = session.command(mattecam());
    command
        .current_dir(root())
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "5")
        .args(["record", "--source", &format!("synthetic:320x240@{FPS}"), "--model", "rvm"])
        .args(args);
    command
}

fn sidecar(path: &Path) -> RecordingReport {
    let text = std::fs::read_to_string(RecordingReport::sidecar_path(path)).expect("the sidecar");
    serde_json::from_str(&text).expect("the sidecar parses")
}

/// The length of the stream of that type, decoded (WebM keeps no per-stream duration).
fn duration_of(path: &Path, kind: &str) -> f64 {
    match kind {
        "audio" => decode_audio(path).len() as f64 / 48_000.0,
        _ => frame_brightness(path).len() as f64 / FPS,
    }
}

/// The mean of up to `n` values from the start (or the end).
fn mean_of(values: &[f64], n: usize, from_end: bool) -> f64 {
    let n = n.min(values.len());
    let part = if from_end { &values[values.len() - n..] } else { &values[..n] };
    part.iter().sum::<f64>() / n.max(1) as f64
}

/// One take of [`sound_and_picture_are_in_sync`]: the recording, its clicks and their offsets.
struct SyncTake {
    _dir: tempfile::TempDir,
    take: std::path::PathBuf,
    report: RecordingReport,
    heard: Vec<f64>,
    flashes: Vec<f64>,
    offsets: Vec<f64>,
}

impl SyncTake {
    fn record(session: &Session, seconds: f64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let take = dir.path().join("take.mp4");
        let clicks = Clicks::start(session);
        let out = record(session, &["--audio", "default", "--with-source", "--seconds", &seconds.to_string()])
            .arg("-o")
            .arg(&take)
            .env(mattecam::source::synthetic::FLASH_ENV, clicks.flash_env())
            .output()
            .unwrap();
        let (reference_worst, reference_last) = clicks.reference_error_s();
        drop(clicks);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(stdout.contains("sound from"), "{stdout}");
        // Clicks heard in the recording, and flashes seen in the source video beside it.
        let heard = click_times(&decode_audio(&take));
        let brightness = frame_brightness(&take.with_file_name("take.source.mp4"));
        let flashes: Vec<f64> =
            brightness.iter().enumerate().filter(|(_, b)| **b > 250.0).map(|(i, _)| i as f64 / FPS).collect();
        let offsets: Vec<f64> = heard
            .iter()
            .filter_map(|c| flashes.iter().map(|f| c - f).min_by(|a, b| a.abs().total_cmp(&b.abs())))
            .collect();
        let report = sidecar(&take);
        let sync = Self { _dir: dir, take, report, heard, flashes, offsets };
        let (mean, worst) = (sync.mean(), sync.offsets.iter().fold(0f64, |w, o| w.max(o.abs())));
        let (early, late) = (mean_of(&sync.offsets, 10, false), mean_of(&sync.offsets, 10, true));
        let h = &sync.heard;
        let spacing = (h.len() > 1).then(|| (h[h.len() - 1] - h[0]) / (h.len() - 1) as f64);
        eprintln!(
            "sync over {seconds} s: {} clicks, {} flashes; sound after picture by {:.1} ms on average, worst {:.1} ms; first 10 clicks {:.1} ms, last 10 {:.1} ms: drift {:.1} ms; clicks {:.6} s apart on average (played {:.6} s apart); one frame {:.1} ms",
            sync.offsets.len(),
            sync.flashes.len(),
            mean * 1000.0,
            worst * 1000.0,
            early * 1000.0,
            late * 1000.0,
            (late - early) * 1000.0,
            spacing.unwrap_or(f64::NAN),
            PERIOD_S,
            1000.0 / FPS
        );
        eprintln!(
            "pw-cat read the clicks up to {:.1} ms from their time, the last {:.1} ms; take {:.3} s, sound {:?}",
            reference_worst * 1000.0,
            reference_last * 1000.0,
            sync.report.duration_s,
            sync.report.audio
        );
        sync
    }

    fn mean(&self) -> f64 {
        self.offsets.iter().sum::<f64>() / self.offsets.len().max(1) as f64
    }

    /// Whether the played clicks themselves were disturbed: on two loaded cores the sound server's graph
    /// may stall, delaying what pw-cat plays (no microphone does that), and the clicks then arrive further
    /// apart than they were sent.
    fn harness_slipped(&self) -> bool {
        self.heard.windows(2).any(|pair| (pair[1] - pair[0] - PERIOD_S).abs() > 0.005)
    }
}

const PERIOD_S: f64 = common::sound::PERIOD as f64 / 48_000.0;

/// Clicks played at instants the test's clock knows (every 1.013 s: every phase of the video's frames), a
/// picture that flashes at the same instants: in the recording, each click must be where its flash is.
/// `MATTECAM_SYNC_SECONDS=600` measures the drift over a 10-minute take (the figures are printed before
/// anything is asserted).
#[test]
fn sound_and_picture_are_in_sync() {
    let Some((_alone, session)) = microphone() else { return };
    let seconds: f64 = std::env::var("MATTECAM_SYNC_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(8.0);
    let mut sync = SyncTake::record(&session, seconds);
    // A take whose reference slipped says less of the recorder: measured again (at most three times).
    for _ in 0..3 {
        if !sync.harness_slipped() || seconds > 60.0 {
            break;
        }
        eprintln!("the played clicks slipped (the machine stalled the sound server): measuring again");
        sync = SyncTake::record(&session, seconds);
    }
    for path in [&sync.take, &sync.take.with_file_name("take.source.mp4")] {
        let found = streams(path);
        assert!(found.iter().any(|(t, c, _)| t == "audio" && c == "aac"), "{}: {found:?}", path.display());
        let (video_s, audio_s) = (duration_of(path, "video"), duration_of(path, "audio"));
        assert!((video_s - audio_s).abs() <= 1.0 / FPS, "{}: video {video_s} s, sound {audio_s} s", path.display());
    }
    let report = &sync.report;
    let sound = report.audio.as_ref().expect("the sidecar describes the sound");
    assert_eq!((sound.codec.as_str(), sound.device_lost), ("aac", false), "{sound:?}");
    assert!((sound.duration_s - report.duration_s).abs() < 1e-3, "{sound:?} / {} s", report.duration_s);
    // Clicks where they were played.
    let heard = &sync.heard;
    assert!(heard.len() as f64 >= seconds / PERIOD_S - 3.0, "clicks heard at {heard:?}");
    assert_eq!(sync.offsets.len(), heard.len(), "flashes at {:?}, clicks at {heard:?}", sync.flashes);
    // In four takes running the machine stalled the sound server, delaying what was played by up to
    // seconds: the clicks no longer say where sound and picture were, so the offset is not asserted (the
    // rest is). This happens on a loaded machine only, and is said.
    if sync.harness_slipped() {
        eprintln!("NOT MEASURED: the sound server stalled in every take; the sync offset is not asserted");
        return;
    }
    let offsets = &sync.offsets;
    // A flash lands on the slot nearest its frame's capture, itself within half a frame of the click: one
    // click reads up to a frame off either way, at every phase of the frames. Their mean is the offset.
    let mean = offsets.iter().sum::<f64>() / offsets.len().max(1) as f64;
    let worst = offsets.iter().fold(0f64, |w, o| w.max(o.abs()));
    assert!(mean.abs() <= 1.0 / FPS, "sound {:.1} ms from the picture: {offsets:?}", mean * 1000.0);
    assert!(worst <= 2.0 / FPS, "a click {:.1} ms from its flash: {offsets:?}", worst * 1000.0);
}

#[test]
fn every_format_carries_its_sound() {
    let Some((_alone, session)) = microphone() else { return };
    let dir = tempfile::tempdir().unwrap();
    // (format, output, where the sound is, its codec)
    let cases = [
        ("prores", "alpha.mov", "alpha.mov", "pcm_s24le"),
        ("webm-alpha", "web.webm", "web.webm", "opus"),
        ("png", "frames", "frames.wav", "pcm_s24le"),
        ("matte", "matte.mp4", "matte.wav", "pcm_s24le"),
    ];
    let _clicks = Clicks::start(&session);
    for (format, output, sound_at, codec) in cases {
        let path = dir.path().join(output);
        let out = record(&session, &["--audio", "default", "--seconds", "2", "--format", format])
            .arg("-o")
            .arg(&path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}: {}", String::from_utf8_lossy(&out.stderr));
        let sound_path = dir.path().join(sound_at);
        let found = streams(&sound_path);
        assert!(found.iter().any(|(t, c, _)| t == "audio" && c == codec), "{format}: {found:?}");
        let report = sidecar(&path);
        let sound = report.audio.unwrap_or_else(|| panic!("{format}: no sound in the sidecar"));
        assert!((sound.duration_s - report.duration_s).abs() < 1e-3, "{format}: {sound:?}");
        let sound_s = duration_of(&sound_path, "audio");
        assert!(
            (sound_s - report.duration_s).abs() <= 1.0 / FPS,
            "{format}: sound {sound_s} s, take {} s",
            report.duration_s
        );
        match format {
            "png" | "matte" => assert_eq!(sound.path.as_deref(), Some(sound_path.as_path()), "{format}"),
            _ => assert_eq!(sound.path, None, "{format}"),
        }
        if format == "matte" {
            assert!(!streams(&path).iter().any(|(t, _, _)| t == "audio"), "the track matte stays silent");
        }
        // No working file is left.
        let names: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(!names.iter().any(|n| n.contains(".audio") || n.contains(".partial")), "{names:?}");
    }
}

/// `record` into `take` for up to two minutes (the test ends it), and its stderr's lines.
fn long_take(
    session: &Session,
    take: &Path,
) -> (std::process::Child, std::io::Lines<BufReader<std::process::ChildStderr>>) {
    let mut child = record(session, &["--audio", "default", "--seconds", "120"])
        .arg("-o")
        .arg(take)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

/// Reads `lines` into `log` until one satisfies `until`.
fn read_until(
    lines: &mut impl Iterator<Item = std::io::Result<String>>,
    log: &mut String,
    until: impl Fn(&str) -> bool,
) {
    for line in lines.by_ref() {
        let line = line.unwrap();
        log.push_str(&line);
        log.push('\n');
        if until(&line) {
            return;
        }
    }
    panic!("the take ended first: {log}");
}

#[test]
fn a_lost_microphone_leaves_silence_and_is_taken_back_when_it_returns() {
    let Some((_alone, mut session)) = microphone() else { return };
    let dir = tempfile::tempdir().unwrap();
    let take = dir.path().join("take.mp4");
    let clicks = Clicks::start(&session);
    // A long take, ended with Ctrl-C once everything has happened: nothing here waits on a clock.
    let (mut child, mut lines) = long_take(&session, &take);
    let mut log = String::new();
    let progress =
        |line: &str| line.trim_start().starts_with(|c: char| c.is_ascii_digit()) && line.contains(" s written");
    // Two seconds in (a click or two recorded), the sound server dies, taking the microphone with it.
    read_until(&mut lines, &mut log, |line| line.trim_start().starts_with("2.0 s"));
    drop(clicks);
    session.kill_daemon();
    read_until(&mut lines, &mut log, |line| line.contains("the microphone was lost"));
    // It comes back (as a replugged microphone would), and clicks again.
    session.start_daemon();
    assert!(session.start_microphone());
    let clicks = Clicks::start(&session);
    read_until(&mut lines, &mut log, |line| line.contains("the microphone is back"));
    for _ in 0..3 {
        read_until(&mut lines, &mut log, progress);
    }
    // SAFETY: signalling our own child.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    for line in lines {
        log += &line.unwrap();
        log.push('\n');
    }
    drop(clicks);
    let status = child.wait().unwrap();
    assert!(status.success(), "{log}");
    let report = sidecar(&take);
    let sound = report.audio.expect("sound in the sidecar");
    eprintln!("{sound:?}");
    assert!(sound.device_lost, "{sound:?}");
    let [lost, back] = &sound.events[..] else { panic!("a loss and a return: {sound:?}") };
    assert!(lost.what.contains("lost") && back.what.contains("back"), "{sound:?}");
    assert!(lost.at_s > 1.0 && back.at_s > lost.at_s + 0.5, "{sound:?}");
    assert!(sound.gaps >= 1 && sound.silence_s >= back.at_s - lost.at_s - 0.5, "the loss is silence: {sound:?}");
    let (video_s, audio_s) = (duration_of(&take, "video"), duration_of(&take, "audio"));
    assert!((video_s - report.duration_s).abs() <= 1.0 / FPS, "video {video_s} s, take {} s", report.duration_s);
    assert!((video_s - audio_s).abs() <= 1.0 / FPS, "video {video_s} s, sound {audio_s} s");
    // Clicks up to the loss, silence while it was gone, clicks again after.
    let samples = decode_audio(&take);
    let at = |s: f64| ((s * 48_000.0) as usize).min(samples.len());
    assert!(!click_times(&samples[..at(lost.at_s)]).is_empty(), "clicks before the loss");
    assert!(samples[at(lost.at_s + 0.05)..at(back.at_s - 0.05)].iter().all(|s| s.abs() < 0.01), "silence while lost");
    assert!(!click_times(&samples[at(back.at_s)..]).is_empty(), "clicks after the return");
}

#[test]
fn a_named_input_that_is_not_there_is_refused_and_none_records_silence_free_video() {
    let dir = tempfile::tempdir().unwrap();
    let take = dir.path().join("take.mp4");
    let out = Command::new(mattecam())
        .current_dir(root())
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "5")
        .args(["record", "--source", "synthetic:320x240@30", "--seconds", "1", "--audio", "No Such Microphone", "-o"])
        .arg(&take)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("no audio input is called \"No Such Microphone\""), "{stderr}");
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none(), "nothing written");

    let out = Command::new(mattecam())
        .current_dir(root())
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "5")
        .args(["record", "--source", "synthetic:320x240@30", "--seconds", "1", "--audio", "none", "-o"])
        .arg(&take)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(!streams(&take).iter().any(|(t, _, _)| t == "audio"), "{:?}", streams(&take));
    assert!(sidecar(&take).audio.is_none());
}

/// The processes `pid` started (its threads' children).
fn children_of(pid: u32) -> Vec<u32> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("children")).ok())
        .flat_map(|list| list.split_whitespace().filter_map(|p| p.parse().ok()).collect::<Vec<u32>>())
        .collect()
}

#[test]
fn a_killed_encoder_keeps_sound_and_picture_to_the_same_instant() {
    let Some((_alone, session)) = microphone() else { return };
    let dir = tempfile::tempdir().unwrap();
    let take = dir.path().join("take.mp4");
    let clicks = Clicks::start(&session);
    let (mut child, mut lines) = long_take(&session, &take);
    let mut log = String::new();
    read_until(&mut lines, &mut log, |line| line.trim_start().starts_with("3.0 s"));
    // The video encoder (the ffmpeg reading raw frames) dies, as a crash would.
    let encoder = children_of(child.id())
        .into_iter()
        .find(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("rawvideo"))
        })
        .expect("the encoder runs");
    // SAFETY: killing a process this test's child started.
    unsafe { libc::kill(encoder as i32, libc::SIGKILL) };
    for line in lines {
        log += &line.unwrap();
        log.push('\n');
    }
    drop(clicks);
    let status = child.wait().unwrap();
    assert!(!status.success(), "the take stopped early, and says so: {log}");
    let kept = dir.path().join("take.incomplete.mp4");
    assert!(kept.is_file(), "{log}");
    let found = streams(&kept);
    assert!(found.iter().any(|(t, c, _)| t == "audio" && c == "aac"), "{found:?}");
    let (video_s, audio_s) = (duration_of(&kept, "video"), duration_of(&kept, "audio"));
    assert!(video_s > 1.0, "what reached the disk is kept: {video_s} s");
    assert!((video_s - audio_s).abs() <= 1.0 / FPS, "video {video_s} s, sound {audio_s} s");
    assert!(!click_times(&decode_audio(&kept)).is_empty(), "the sound is the microphone's");
    let left: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(!left.iter().any(|name| name.contains(".audio")), "the working sound is muxed, not left: {left:?}");
}
