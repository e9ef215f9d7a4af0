//! The virtual camera with real consumers: raw frames piped into ffmpeg, a PipeWire node read by
//! GStreamer in a private PipeWire session, and the v4l2loopback output against a fake sysfs tree and a
//! file standing in for the device. The model is the test stand-in, so nothing depends on speed.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::mattecam;
use common::pipewire::Session;
use mattecam::composite::{Background, CompositeSettings};
use mattecam::engine::{CompositorSetup, Engine, EngineConfig, ModelChoice, SourceChoice};
use mattecam::filter::temporal::TemporalMode;
use mattecam::source::SourceSpec;
use mattecam::vcam::v4l2::{LoopbackDevice, V4l2Error, V4l2Writer, find_loopback_devices};
use mattecam::vcam::{CameraOptions, CameraOutput, CameraState, VirtualCamera};

const GREEN: [u8; 3] = [0, 255, 0];
/// The synthetic scene's "person", as the stand-in model mattes it.
const PERSON: [u8; 3] = [240, 200, 160];

fn near(p: &[u8], colour: [u8; 3], tolerance: u8) -> bool {
    p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= tolerance)
}

/// How much of an RGB frame is the background colour, the person, and neither (the room, or edges).
fn shares(rgb: &[u8]) -> (f64, f64, f64) {
    let n = (rgb.len() / 3) as f64;
    let green = rgb.chunks_exact(3).filter(|p| near(p, GREEN, 40)).count() as f64;
    let person = rgb.chunks_exact(3).filter(|p| near(p, PERSON, 40)).count() as f64;
    (green / n, person / n, 1.0 - (green + person) / n)
}

/// The width and height of the person's pixels' bounding box.
fn person_extent(rgb: &[u8], width: usize) -> (usize, usize) {
    let person =
        rgb.chunks_exact(3).enumerate().filter(|(_, p)| near(p, PERSON, 40)).map(|(i, _)| (i % width, i / width));
    let (mut x0, mut x1, mut y0, mut y1) = (usize::MAX, 0, usize::MAX, 0);
    for (x, y) in person {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    (x1.saturating_sub(x0) + 1, y1.saturating_sub(y0) + 1)
}

/// Frames as `ffmpeg` decodes a raw YUYV stream of `w` x `h` into RGB.
fn yuyv_to_rgb(yuyv: &[u8], w: u32, h: u32) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.yuyv");
    std::fs::write(&input, yuyv).unwrap();
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "rawvideo", "-pix_fmt", "yuyv422", "-video_size", &format!("{w}x{h}")])
        .args(["-framerate", "15", "-i"])
        .arg(&input)
        .args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .expect("ffmpeg runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

fn camera_command(args: &[&str]) -> Command {
    let mut command = Command::new(mattecam());
    command
        .arg("camera")
        .args(["--source", "synthetic:320x240@15", "--background", "color:#00ff00", "--temporal", "off"])
        .args(args)
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "5");
    command
}

/// `camera --output raw:-` into ffmpeg: exactly the frames asked for, at the camera's size, each the
/// person over the colour (or, before the first matte, the colour alone), never the room.
#[test]
fn raw_frames_on_stdout_are_read_by_ffmpeg() {
    let out = camera_command(&["--output", "raw:-", "--frames", "45"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("-pix_fmt yuyv422 -video_size 320x240 -framerate 15"),
        "the parameters go to stderr: {stderr}"
    );
    let frame_bytes = 320 * 240 * 2;
    assert_eq!(out.stdout.len(), 45 * frame_bytes, "45 whole YUYV frames");
    let rgb = yuyv_to_rgb(&out.stdout, 320, 240);
    assert_eq!(rgb.len(), 45 * 320 * 240 * 3);
    let frames: Vec<_> = rgb.chunks_exact(320 * 240 * 3).collect();
    for (i, frame) in frames.iter().enumerate() {
        let (green, _, other) = shares(frame);
        assert!(other < 0.03, "frame {i} shows something besides the background and the person ({other:.3})");
        assert!(green > 0.5, "frame {i}: the background is the colour ({green:.3})");
    }
    let (_, person_last, _) = shares(frames[44]);
    assert!(person_last > 0.01, "once matted, the person is there ({person_last:.4})");
    assert!(stderr.contains("sent 45"), "{stderr}");
}

/// Fail closed: while the model loads (until the test lets it), every frame is the background alone; once
/// it runs, the person is there; at no point the room.
#[test]
fn until_the_model_runs_the_camera_sends_the_background_alone() {
    let dir = tempfile::tempdir().unwrap();
    let gate = dir.path().join("loaded");
    let mut camera = camera_command(&["--output", "raw:-"])
        .env("MATTECAM_TEST_MATTER_LOAD_GATE", &gate)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = camera.stdout.take().unwrap();
    let mut read_frame = || {
        let mut yuyv = vec![0u8; 320 * 240 * 2];
        stdout.read_exact(&mut yuyv).unwrap();
        let mut rgb = Vec::new();
        mattecam::color::rgb_from_yuyv(&yuyv, 320, 240, &mut rgb).unwrap();
        rgb
    };
    for i in 0..20 {
        let (green, person, other) = shares(&read_frame());
        assert!(green > 0.97 && person < 0.001 && other < 0.03, "frame {i} while loading: {green:.3} {person:.4}");
    }
    std::fs::write(&gate, b"").unwrap();
    let mut matted = None;
    for i in 20..2000 {
        let (green, person, other) = shares(&read_frame());
        assert!(green > 0.5 && other < 0.03, "frame {i}: the colour and the person only ({green:.3} {other:.3})");
        if person > 0.01 {
            matted = Some(i);
            break;
        }
    }
    let _ = camera.kill();
    let _ = camera.wait();
    assert!(matted.is_some(), "the person appears once the model runs");
}

/// Closing the reader (EPIPE) ends `camera` cleanly.
#[test]
fn a_reader_that_closes_the_pipe_ends_the_camera_cleanly() {
    let mut camera =
        camera_command(&["--output", "raw:-"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut stdout = camera.stdout.take().unwrap();
    let mut frames = vec![0u8; 3 * 320 * 240 * 2];
    stdout.read_exact(&mut frames).unwrap();
    drop(stdout);
    let out = camera.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("the reader closed the pipe"), "{stderr}");
}

/// A raw path that is a file already is never written over.
#[test]
fn a_raw_path_that_is_a_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keep.txt");
    std::fs::write(&path, "mine").unwrap();
    let out = camera_command(&["--output", &format!("raw:{}", path.display())]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("not a FIFO") && stderr.contains("mkfifo"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
}

// ---------------------------------------------------------------------------------------------------
// v4l2loopback, without the kernel module.

#[test]
fn loopback_devices_are_found_by_their_driver_in_sysfs() {
    let sysfs = tempfile::tempdir().unwrap();
    let dev = tempfile::tempdir().unwrap();
    let class = sysfs.path().join("class/video4linux");
    for (node, name, driver) in [("video0", "Integrated Camera", "uvcvideo"), ("video10", "mattecam", "v4l2loopback")] {
        let entry = class.join(node);
        std::fs::create_dir_all(entry.join("device")).unwrap();
        std::fs::write(entry.join("name"), format!("{name}\n")).unwrap();
        let drivers = sysfs.path().join("bus/platform/drivers").join(driver);
        std::fs::create_dir_all(&drivers).unwrap();
        std::os::unix::fs::symlink(&drivers, entry.join("device/driver")).unwrap();
    }
    let found = find_loopback_devices(sysfs.path(), dev.path());
    assert_eq!(found, vec![LoopbackDevice { path: dev.path().join("video10"), name: "mattecam".into() }]);
    assert!(find_loopback_devices(&sysfs.path().join("nothing"), dev.path()).is_empty());
}

#[test]
fn with_no_loopback_device_the_error_gives_the_line_to_run() {
    let message = V4l2Error::NoDevice.to_string();
    assert!(message.contains("sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=mattecam exclusive_caps=1"));
    // On this machine (no kernel module), `camera --output v4l2` says the same and fails.
    if mattecam::vcam::v4l2::choose_device(None).is_err() {
        let out = camera_command(&["--output", "v4l2"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success());
        assert!(stderr.contains("modprobe v4l2loopback") && stderr.contains("exclusive_caps=1"), "{stderr}");
    }
}

/// The exact bytes of a frame written to a file standing in for the device: YUYV, BT.601 limited range.
#[test]
fn a_frame_is_written_as_yuyv_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("video10");
    std::fs::write(&path, b"").unwrap();
    let mut writer = V4l2Writer::open(&path, 4, 2).unwrap();
    // Row 0: black, white, green, green; row 1: blue, blue, grey 128, grey 128.
    let rgb = [
        0, 0, 0, 255, 255, 255, 0, 255, 0, 0, 255, 0, //
        0, 0, 255, 0, 0, 255, 128, 128, 128, 128, 128, 128,
    ];
    writer.write_frame(&rgb).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(bytes, vec![16, 128, 235, 128, 144, 54, 144, 34, 41, 240, 41, 110, 126, 128, 126, 128]);
}

#[test]
fn camera_sizes_are_even() {
    assert_eq!(mattecam::vcam::convert::even_size(641, 361), (640, 360));
    let out = camera_command(&["--output", "raw:-", "--frames", "2", "--size", "161x121"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.stdout.len(), 2 * 160 * 120 * 2, "161x121 is sent as 160x120");
}

// ---------------------------------------------------------------------------------------------------
// PipeWire, in a private session.

/// Reads `buffers` frames from the node with GStreamer, asking for `format`, converted to RGB; the caps it
/// negotiated come back too.
fn read_node(session: &Session, buffers: u32, format: &str, dir: &std::path::Path) -> (Vec<u8>, String) {
    read_node_caps(session, buffers, &format!("video/x-raw,format={format}"), dir)
}

/// As [`read_node`], with the consumer's caps as given.
fn read_node_caps(session: &Session, buffers: u32, caps: &str, dir: &std::path::Path) -> (Vec<u8>, String) {
    let file = dir.join(format!("frames-{}-{buffers}.rgb", caps.replace([',', '=', '/'], "_")));
    let _ = std::fs::remove_file(&file);
    let out = session
        .command("gst-launch-1.0")
        .args(["-v", "pipewiresrc", "target-object=mattecam", &format!("num-buffers={buffers}"), "!"])
        .args([caps, "!", "videoconvert", "!", "video/x-raw,format=RGB", "!", "filesink"])
        .arg(format!("location={}", file.display()))
        .output()
        .expect("gst-launch-1.0 runs");
    let log = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "reading {buffers} frames as {caps}: {log}");
    (std::fs::read(&file).unwrap_or_default(), log)
}

fn wait_until(limit: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "{what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn live_engine(model: ModelChoice) -> Engine {
    let spec: SourceSpec = "synthetic:320x240@15".parse().unwrap();
    let mut config = EngineConfig::live(
        SourceChoice::from_spec(&spec),
        model,
        TemporalMode::Off,
        CompositeSettings { background: Background::Color(GREEN), mirror: false, ..Default::default() },
    );
    config.compositor = CompositorSetup::Kind(mattecam::composite::CompositorKind::Cpu);
    Engine::start(config)
}

/// The whole life of the PipeWire camera in one session: published, idle (inference paused) with no
/// consumer, streaming the matted picture to GStreamer at the source's rate, paused again when it leaves,
/// and back after the daemon is killed and started again, while the engine runs on.
#[test]
fn the_pipewire_camera_streams_pauses_and_survives_a_daemon_restart() {
    let Some(mut session) = Session::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    // The library connects through these (this test binary's only PipeWire user).
    for (key, value) in session.env() {
        // SAFETY: set before any thread of this test reads the environment for PipeWire.
        unsafe { std::env::set_var(key, value) };
    }
    // SAFETY: as above.
    unsafe { std::env::set_var("MATTECAM_TEST_MATTER_DELAY_MS", "5") };
    let engine = live_engine(ModelChoice::default());
    let camera =
        VirtualCamera::start(engine.tap(), CameraOptions { output: CameraOutput::PipeWire, ..Default::default() });
    assert!(
        session.wait_node("mattecam", true, Duration::from_secs(30)),
        "the node is published: {:?}",
        camera.report()
    );
    wait_until(Duration::from_secs(30), "inference pauses with no consumer", || engine.stats().is_paused());
    assert_eq!(camera.report().state, CameraState::Waiting);
    // The source stage marks the pause after its last read, so from then on nothing is read (and so
    // nothing new is matted) while the engine stays paused; the wait only gives it a chance to break that.
    let (read, pauses) = (engine.snapshot().frames_read, engine.stats().pauses().0);
    let inferred = engine.stats().frames_inferred();
    std::thread::sleep(Duration::from_millis(500));
    assert!(engine.stats().is_paused() && engine.stats().pauses().0 == pauses, "paused throughout");
    assert_eq!(engine.snapshot().frames_read, read, "nothing is read while nobody watches");
    assert!(
        engine.stats().frames_inferred() <= inferred + 2,
        "at most the frames already handed on (one in the model, one waiting) are matted"
    );

    let (rgb, caps) = read_node(&session, 30, "YUY2", dir.path());
    assert_eq!(rgb.len(), 30 * 320 * 240 * 3, "30 frames of 320x240");
    assert!(caps.contains("framerate=(fraction)15/1"), "the source's rate: {caps}");
    assert!(caps.contains("format=(string)YUY2"), "the consumer's choice: {caps}");
    let last = &rgb[29 * 320 * 240 * 3..];
    let (green, person, other) = shares(last);
    assert!(
        green > 0.5 && person > 0.01 && other < 0.03,
        "the person over the colour: {green:.3} {person:.3} {other:.3}"
    );
    assert!(engine.stats().pauses().1 >= 1, "inference resumed for the consumer");
    assert!(engine.stats().frames_inferred() > inferred);
    let report = camera.report();
    assert!(report.sent >= 30 && report.latency_p50_ms.is_some(), "{report:?}");
    wait_until(Duration::from_secs(30), "inference pauses again once the consumer left", || engine.stats().is_paused());

    session.kill_daemon();
    wait_until(Duration::from_secs(30), "the camera says PipeWire is gone", || {
        matches!(camera.report().state, CameraState::Unavailable { .. })
    });
    assert!(!engine.stats().is_paused() || engine.status().failure().is_none(), "the engine runs on");
    session.start_daemon();
    assert!(session.wait_node("mattecam", true, Duration::from_secs(30)), "the node comes back with the daemon");
    // A consumer that names no format (and converts nothing) gets the preferred one.
    let out = session
        .command("gst-launch-1.0")
        .args(["-v", "pipewiresrc", "target-object=mattecam", "num-buffers=3", "!", "video/x-raw", "!", "fakesink"])
        .output()
        .unwrap();
    let caps = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && caps.contains("caps = video/x-raw, format=(string)YUY2, width=(int)320"), "{caps}");
    // A consumer that asks for another size gets it, the picture scaled to cover it: a still image of a
    // centred disc, switched to mid-stream, stays a disc.
    let still = dir.path().join("disc.png");
    image::RgbImage::from_fn(320, 240, |x, y| {
        let inside = (x as i32 - 160).pow(2) + (y as i32 - 120).pow(2) <= 50 * 50;
        image::Rgb(if inside { PERSON } else { [90, 90, 90] })
    })
    .save(&still)
    .unwrap();
    // A paused engine opens the new source once someone watches again (no camera light for nobody).
    engine.set_source(SourceChoice::from_file(still));
    let (mut extents, mut opened) = (Vec::new(), false);
    for _ in 0..20 {
        let (rgb, caps) = read_node_caps(&session, 5, "video/x-raw,format=YUY2,width=640,height=360", dir.path());
        assert_eq!(rgb.len(), 5 * 640 * 360 * 3, "{caps}");
        let last = &rgb[4 * 640 * 360 * 3..];
        let (green, person, other) = shares(last);
        assert!(green > 0.5 && person > 0.01 && other < 0.03, "scaled: {green:.3} {person:.3} {other:.3}");
        extents.push(person_extent(last, 640));
        // The batch read after the image was seen open holds only its frames.
        if opened {
            break;
        }
        opened = engine.status().source_info.is_some_and(|info| info.name.ends_with("disc.png"));
    }
    let (w, h) = *extents.last().unwrap();
    assert!(w.abs_diff(200) <= 6 && h.abs_diff(200) <= 6, "the disc, twice as big and round: {extents:?}");
    // Every format offered, as the consumer picks it, gives the same picture.
    for format in ["NV12", "I420", "RGB", "BGRx"] {
        let (rgb, caps) = read_node(&session, 5, format, dir.path());
        assert_eq!(rgb.len(), 5 * 320 * 240 * 3, "{format}: {caps}");
        let (green, person, other) = shares(&rgb[4 * 320 * 240 * 3..]);
        assert!(green > 0.5 && person > 0.01 && other < 0.03, "{format}: {green:.3} {person:.3} {other:.3}");
    }
    assert!(engine.status().failure().is_none());
    drop(camera);
    assert!(session.wait_node("mattecam", false, Duration::from_secs(30)), "the node goes with the camera");
}

/// With no model running (BGMv2 without its weights fails to load; with them, it waits for a plate), the
/// camera sends the background alone (fail closed), never the room; `camera` ends cleanly on Ctrl-C.
#[test]
fn a_failed_model_sends_the_background_alone_from_the_cli() {
    let Some(session) = Session::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut camera = session
        .command(mattecam())
        .arg("camera")
        .args(["--source", "synthetic:320x240@15", "--background", "color:#00ff00", "--output", "pipewire"])
        .args(["--model", "bgmv2", "--temporal", "off"])
        // The real model loader: BGMv2 fails without its weights, or waits for a plate without them.
        .env_remove("MATTECAM_TEST_MATTER_DELAY_MS")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(session.wait_node("mattecam", true, Duration::from_secs(30)), "the node is published");
    let (rgb, _) = read_node(&session, 10, "YUY2", dir.path());
    assert_eq!(rgb.len(), 10 * 320 * 240 * 3);
    for frame in rgb.chunks_exact(320 * 240 * 3) {
        let (green, person, _) = shares(frame);
        assert!(green > 0.97 && person < 0.001, "the background alone: {green:.3} {person:.4}");
    }
    // SAFETY: a plain signal to the child this test started.
    unsafe { libc::kill(camera.id() as i32, libc::SIGINT) };
    let status = camera.wait().unwrap();
    let mut stderr = String::new();
    camera.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("sending the background alone") || stderr.contains("sent"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------------
// Mirroring.

/// A still scene: the person (a disc) on the left of a grey room.
fn left_disc_scene(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("left-disc.png");
    image::RgbImage::from_fn(320, 240, |x, y| {
        let inside = (x as i32 - 80).pow(2) + (y as i32 - 120).pow(2) <= 40 * 40;
        image::Rgb(if inside { PERSON } else { [90, 90, 90] })
    })
    .save(&path)
    .unwrap();
    path
}

/// The camera's frames when the preview is mirrored, over an image that is red on the left and blue on
/// the right: the last of 5 frames written to a new file by the raw output.
fn camera_over_mirrored_preview(dir: &std::path::Path, camera_mirror: bool) -> (Vec<u8>, Vec<u8>) {
    use mattecam::engine::{ModelInput, SourceInput};
    use mattecam::infer::synthetic::SyntheticMatter;
    let backdrop = dir.join("red-blue.png");
    image::RgbImage::from_fn(320, 240, |x, _| image::Rgb(if x < 160 { [255, 0, 0] } else { [0, 0, 255] }))
        .save(&backdrop)
        .unwrap();
    let mut config = EngineConfig::live(
        SourceChoice::from_file(left_disc_scene(dir)),
        ModelChoice::default(),
        TemporalMode::Off,
        CompositeSettings { background: Background::Image(backdrop), mirror: true, ..Default::default() },
    );
    config.model = ModelInput::Opened(vec![Box::new(SyntheticMatter::new(Default::default(), Duration::ZERO))]);
    config.compositor = CompositorSetup::Kind(mattecam::composite::CompositorKind::Cpu);
    assert!(matches!(config.source, SourceInput::Live(_)));
    let engine = Engine::start(config);
    let preview = engine.subscribe("preview", mattecam::engine::Delivery::Latest);
    let frames = dir.join(format!("camera-{camera_mirror}.yuyv"));
    let options = CameraOptions {
        output: CameraOutput::Raw(Some(frames.clone())),
        mirror: camera_mirror,
        max_frames: Some(5),
        ..Default::default()
    };
    let camera = VirtualCamera::start(engine.tap(), options);
    wait_until(Duration::from_secs(60), "the camera sends 5 frames", || camera.is_finished());
    let shown = preview.recv_timeout(Duration::from_secs(30));
    let mattecam::engine::Received::Value(shown) = shown else { panic!("the preview has a picture") };
    let bytes = std::fs::read(&frames).unwrap();
    assert_eq!(bytes.len(), 5 * 320 * 240 * 2);
    let mut rgb = Vec::new();
    mattecam::color::rgb_from_yuyv(&bytes[4 * 320 * 240 * 2..], 320, 240, &mut rgb).unwrap();
    (rgb, shown.picture.composite.pixels.clone())
}

fn centre_x(rgb: &[u8], width: usize) -> f64 {
    let xs: Vec<usize> =
        rgb.chunks_exact(3).enumerate().filter(|(_, p)| near(p, PERSON, 40)).map(|(i, _)| i % width).collect();
    assert!(!xs.is_empty(), "the person is in the picture");
    xs.iter().sum::<usize>() as f64 / xs.len() as f64
}

/// The other side sees you as your camera does even when the preview is mirrored, and the image behind
/// you never reads backwards; the "mirror what others see" option mirrors the person only.
#[test]
fn the_camera_is_not_mirrored_with_the_preview_and_its_background_never_is() {
    let dir = tempfile::tempdir().unwrap();
    let (camera, preview) = camera_over_mirrored_preview(dir.path(), false);
    assert!(centre_x(&preview, 320) > 200.0, "the preview is mirrored: the person on the right");
    assert!(centre_x(&camera, 320) < 120.0, "the camera is not: the person on the left, as the camera sees");
    let at = |rgb: &[u8], x: usize| rgb[(10 * 320 + x) * 3..][..3].to_vec();
    assert!(near(&at(&camera, 10), [255, 0, 0], 40) && near(&at(&camera, 310), [0, 0, 255], 40), "the image as it is");
    let (mirrored, _) = camera_over_mirrored_preview(dir.path(), true);
    assert!(centre_x(&mirrored, 320) > 200.0, "mirrored on request");
    assert!(near(&at(&mirrored, 10), [255, 0, 0], 40) && near(&at(&mirrored, 310), [0, 0, 255], 40));
}
