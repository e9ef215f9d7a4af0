//! The one engine behind every output: file runs that lose nothing, live runs that skip stale frames and
//! count them, one composite shared by every consumer, settings that never make the caller wait, model and
//! source changes while running, the live plate. The model is the test stand-in (deterministic, as slow
//! as asked) wherever the real one is not the point, so these hold on a slow or loaded machine.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use mattecam::composite::{Background, CompositeSettings, CompositorKind, CpuCompositor, Picture};
use mattecam::engine::{
    CompositorSetup, Delivery, Engine, EngineConfig, ModelChoice, ModelInput, ModelState, PlateRequest, PlateSettings,
    PlateSetup, Received, SourceChoice, SourceInput, SourceState, Subscription,
};
use mattecam::filter::temporal::TemporalMode;
use mattecam::frame::{Frame, Matte};
use mattecam::infer::synthetic::SyntheticMatter;
use mattecam::infer::{InferError, Matter, ModelKind, ProviderInUse, ProviderRequest};
use mattecam::sink::png::{Content, PngSequenceSink};
use mattecam::source::live::RETRY_INTERVAL;
use mattecam::source::synthetic::SyntheticSource;

/// Waits for a condition, with a guard against hanging (not a bound on speed).
const PATIENCE: Duration = Duration::from_secs(120);

fn stand_in(delay_ms: u64) -> Vec<Box<dyn Matter>> {
    vec![Box::new(SyntheticMatter::new(ModelKind::Rvm, Duration::from_millis(delay_ms)))]
}

fn colour() -> CompositeSettings {
    CompositeSettings { background: Background::Color([0, 200, 0]), ..Default::default() }
}

/// A live engine on `source` with the stand-in model taking `delay_ms` a frame, compositing on the CPU.
fn live(source: SourceChoice, delay_ms: u64, temporal: TemporalMode) -> Engine {
    let mut config = EngineConfig::live(source, ModelChoice::default(), temporal, colour());
    config.model = ModelInput::Opened(stand_in(delay_ms));
    config.compositor = CompositorSetup::Kind(CompositorKind::Cpu);
    Engine::start(config)
}

fn next_frame(subscription: &Subscription) -> Arc<mattecam::frame::Output> {
    let started = Instant::now();
    loop {
        match subscription.recv_timeout(Duration::from_millis(100)) {
            Received::Value(output) => return output,
            Received::Closed => panic!("the engine ended"),
            Received::Empty => assert!(started.elapsed() < PATIENCE, "no frame came"),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// File runs.

/// Every frame of a file, matted in order and written; the stand-in's alpha is exactly the synthetic
/// person (at half resolution, brought back to frame size).
#[test]
fn a_file_run_writes_every_frame_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("alpha");
    let sinks: Vec<Box<dyn mattecam::sink::Sink>> =
        vec![Box::new(PngSequenceSink::create(&out, Content::Alpha).unwrap())];
    let source = Box::new(SyntheticSource::new(64, 48, 30.0, Some(12)));
    let summary = file_engine(source, stand_in(0), TemporalMode::Ofd, colour(), sinks, None).wait().unwrap();
    assert_eq!((summary.stats.frames_read, summary.stats.frames_written, summary.stats.frames_dropped), (12, 12, 0));
    assert_eq!(summary.compositor, "cpu");
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, (0..12).map(|i| format!("{i:06}.png")).collect::<Vec<_>>());
    // Frame 3's disc centre is person, the top-left corner is not.
    let alpha = image::open(out.join("000003.png")).unwrap().into_luma8();
    assert_eq!((alpha.get_pixel(37, 20).0[0], alpha.get_pixel(0, 0).0[0]), (255, 0));
}

/// Stopping a file run keeps what was done, committed; dropping it unfinished (cancelling) leaves nothing.
#[test]
fn a_stopped_run_commits_and_a_cancelled_one_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    // An endless source into a PNG sequence, once `frames` frames are written.
    let running = |out: &std::path::Path, frames: u64| {
        let sinks: Vec<Box<dyn mattecam::sink::Sink>> =
            vec![Box::new(PngSequenceSink::create(out, Content::Alpha).unwrap())];
        let source = Box::new(SyntheticSource::new(64, 48, 30.0, None));
        let engine = file_engine(source, stand_in(5), TemporalMode::Off, colour(), sinks, None);
        let started = Instant::now();
        while engine.snapshot().frames_written < frames {
            assert!(started.elapsed() < PATIENCE, "frames were not written");
            std::thread::sleep(Duration::from_millis(10));
        }
        engine
    };
    let kept = dir.path().join("kept");
    let engine = running(&kept, 5);
    engine.stop();
    let summary = engine.wait().unwrap();
    let written = std::fs::read_dir(&kept).unwrap().count() as u64;
    assert!(written >= 5 && written == summary.stats.frames_written, "{written} files, {:?}", summary.stats);

    let engine = running(&dir.path().join("gone"), 3);
    drop(engine);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["kept"], "an abandoned run leaves no output: {left:?}");
}

/// A model that panics mid-run: the run fails with an error naming the stage, and commits nothing.
#[test]
fn a_panicking_stage_fails_the_run_and_commits_nothing() {
    struct Panics(u64);
    impl Matter for Panics {
        fn infer(&mut self, frame: &Frame, out: &mut Matte) -> Result<(), InferError> {
            self.0 += 1;
            assert!(self.0 < 4, "the model broke");
            (out.width, out.height) = (frame.width, frame.height);
            out.alpha.clear();
            out.alpha.resize(frame.pixel_count(), 0.5);
            Ok(())
        }
        fn run_model_only(&mut self) -> Result<(), InferError> {
            Ok(())
        }
        fn reset(&mut self) {}
        fn kind(&self) -> ModelKind {
            ModelKind::Modnet
        }
        fn provider(&self) -> &ProviderInUse {
            static CPU: std::sync::OnceLock<ProviderInUse> = std::sync::OnceLock::new();
            CPU.get_or_init(|| ProviderInUse::cpu(None))
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frames");
    let sinks: Vec<Box<dyn mattecam::sink::Sink>> =
        vec![Box::new(PngSequenceSink::create(&out, Content::Composite).unwrap())];
    let source = Box::new(SyntheticSource::new(64, 48, 30.0, Some(20)));
    let err = file_engine(source, vec![Box::new(Panics(0))], TemporalMode::Off, colour(), sinks, None)
        .wait()
        .expect_err("a panic must fail the run");
    assert!(err.to_string().contains("infer"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(!out.exists(), "nothing is committed: {left:?}");
    // What was written before the panic may be kept, never under the final name.
    assert!(left.iter().all(|name| name == "frames.incomplete"), "{left:?}");
}

// ---------------------------------------------------------------------------------------------------
// The live engine.

/// A source faster than the model: stale frames are replaced at the slot (counted), never queued; every
/// frame read is matted or counted as dropped; every composite reaches the screen or is counted; the
/// latency is at least one inference.
#[test]
fn the_live_engine_skips_stale_frames_and_counts_them() {
    let engine = live(SourceChoice::Synthetic { width: 64, height: 48, fps: 30.0 }, 300, TemporalMode::Off);
    let screen = engine.subscribe_screen();
    let mut shown = 0;
    while shown < 5 {
        let output = next_frame(&screen);
        engine.record_shown(&output);
        shown += 1;
    }
    engine.stop();
    let view = engine.stats_view(Some(&screen));
    drop(screen);
    engine.wait().unwrap();
    eprintln!("{view:?}");
    assert!(view.dropped_before_infer > 0, "30 fps into a 300 ms model must skip frames");
    // Every frame read was matted, dropped, or is in flight (one in the slot, one in the model).
    let accounted = view.frames_inferred + view.dropped_before_infer;
    assert!(view.frames_captured.abs_diff(accounted) <= 2, "read {} vs {accounted}", view.frames_captured);
    let reached = view.frames_shown + view.dropped_before_screen;
    assert!(view.frames_composited.abs_diff(reached) <= 1, "composited {} vs {reached}", view.frames_composited);
    assert!(view.latency_ms_p50 >= 300.0, "latency {} below one inference", view.latency_ms_p50);
    // Pacing: never faster than the source's rate.
    assert!(view.capture_fps <= 33.0, "captured at {:.1} fps", view.capture_fps);
}

/// Each frame is composited once: the screen, a recording and any other consumer get the very same
/// output (one allocation), so what the window shows is what is recorded and what a snapshot saves.
#[test]
fn one_composite_reaches_every_consumer() {
    let engine = live(SourceChoice::Synthetic { width: 64, height: 48, fps: 30.0 }, 20, TemporalMode::Off);
    let screen = engine.subscribe_screen();
    let recorder = engine.subscribe("recorder", Delivery::Queue(64));
    let mut seen = Vec::new();
    while seen.len() < 5 {
        seen.push(next_frame(&screen));
    }
    engine.stop();
    let composited = engine.wait().unwrap().stats.frames_composited;
    let mut recorded = Vec::new();
    while let Some(output) = recorder.take() {
        recorded.push(output);
    }
    assert_eq!(recorded.len() as u64, composited, "the recorder got every composite");
    for shown in &seen {
        let same = recorded.iter().find(|r| r.frame.seq == shown.frame.seq).expect("recorded too");
        assert!(Arc::ptr_eq(shown, same), "frame {} was composited twice", shown.frame.seq);
    }
    // And it is the CPU reference's picture of that frame and matte.
    let output = &seen[4];
    let mut want = Picture::default();
    CpuCompositor::new(colour()).unwrap().composite(&output.frame, &output.matte, &mut want).unwrap();
    assert_eq!(output.picture.composite, want.composite);
    assert_eq!(output.picture.alpha, want.alpha);
}

/// Settings go to the engine latest-wins: with a model taking 2 s a frame, a thousand changes (a slider
/// dragged) take no time from the caller, and the last one wins.
#[test]
fn settings_never_make_the_caller_wait() {
    let engine = live(SourceChoice::Synthetic { width: 64, height: 48, fps: 30.0 }, 2000, TemporalMode::Off);
    wait_for(&engine, "the source", |s| s.source_state == SourceState::Running);
    let started = Instant::now();
    for i in 0..1000 {
        let mut settings = colour();
        settings.edges.threshold = 0.3 + (i % 40) as f32 / 100.0;
        engine.set_composite(settings);
        engine.set_plate_settings(PlateSettings { frames: 10 + i % 50, ..Default::default() });
        engine.set_temporal(if i % 2 == 0 { TemporalMode::Ema } else { TemporalMode::Off });
    }
    let spent = started.elapsed();
    // A blocking hand-over would wait for the 2 s model at least once.
    assert!(spent < Duration::from_secs(1), "1000 settings changes took {spent:?}");
    let mut last = colour();
    last.edges.threshold = 0.3 + (999 % 40) as f32 / 100.0;
    wait_for(&engine, "the last settings", |s| s.composite == last);
    assert_eq!(engine.status().temporal, TemporalMode::Off);
}

/// A background file that does not open is refused with its name, and the picture keeps the background it
/// had.
#[test]
fn a_bad_background_is_refused_and_the_picture_stays() {
    let engine = live(SourceChoice::Synthetic { width: 64, height: 48, fps: 30.0 }, 10, TemporalMode::Off);
    wait_for(&engine, "the compositor", |s| !s.compositor.is_empty());
    engine.set_composite(CompositeSettings { background: Background::Image("/nonexistent/bg.png".into()), ..colour() });
    let status = wait_for(&engine, "the refusal", |s| s.composite_error.is_some());
    assert!(status.composite_error.unwrap().contains("/nonexistent/bg.png"));
    assert_eq!(status.composite, colour());
}

/// Model and source change while the engine runs; a missing camera is reported and retried, an unreadable
/// file is reported and not retried, and the engine recovers on a good source.
#[test]
fn the_live_engine_switches_model_and_source_and_reports_lost_sources() {
    let small_rvm = ModelChoice {
        kind: ModelKind::Rvm,
        downsample_ratio: 0.25,
        provider: ProviderRequest::Cpu,
        threads: 2,
        ..Default::default()
    };
    let mut config = EngineConfig::live(
        SourceChoice::Synthetic { width: 320, height: 180, fps: 30.0 },
        small_rvm.clone(),
        TemporalMode::Off,
        colour(),
    );
    config.compositor = CompositorSetup::Kind(CompositorKind::Cpu);
    let mut engine = Engine::start(config);
    let screen = engine.subscribe_screen();
    wait_for(&engine, "RVM", |s| s.model_state == ModelState::Ready);
    // RVM predicts the foreground colours too.
    let started = Instant::now();
    while next_frame(&screen).matte.foreground.is_none() {
        assert!(started.elapsed() < PATIENCE, "no RVM frame");
    }
    engine.set_model(ModelChoice { kind: ModelKind::Modnet, ref_size: 256, ..small_rvm });
    assert_eq!(engine.status().model_state, ModelState::Loading);
    assert!(engine.status().is_busy());
    let status = wait_for(&engine, "MODNet", |s| s.model_state == ModelState::Ready);
    assert_eq!(status.model.kind, ModelKind::Modnet);
    let started = Instant::now();
    while next_frame(&screen).matte.foreground.is_some() {
        assert!(started.elapsed() < PATIENCE, "no MODNet frame after the change");
    }

    // No camera 7 here: "lost", retried on a schedule, the engine alive.
    engine.set_source(SourceChoice::Camera { index: 7, mode: None });
    let status = wait_for(&engine, "the camera reported lost", |s| matches!(s.source_state, SourceState::Lost { .. }));
    let SourceState::Lost { reason, retry_at } = status.source_state else { unreachable!() };
    assert!(reason.contains("camera"), "{reason}");
    assert!(retry_at <= Instant::now() + RETRY_INTERVAL);
    wait_for(
        &engine,
        "a retry",
        |s| matches!(&s.source_state, SourceState::Lost { retry_at: later, .. } if *later > retry_at),
    );

    engine.set_source(SourceChoice::Video { path: PathBuf::from("/nonexistent/clip.mp4") });
    let status = wait_for(&engine, "the file to fail", |s| matches!(s.source_state, SourceState::Failed(_)));
    assert!(status.failure().is_some_and(|f| f.contains("clip.mp4")));
    let SourceState::Failed(reason) = status.source_state else { unreachable!() };
    assert!(reason.contains("/nonexistent/clip.mp4"), "{reason}");

    engine.set_source(SourceChoice::Image { path: fetched("assets/hires.jpg") });
    let status = wait_for(&engine, "the image", |s| s.source_state == SourceState::Running);
    let info = status.source_info.expect("info once running");
    let started = Instant::now();
    while (next_frame(&screen).frame.width, 0) != (info.width, 0) {
        assert!(started.elapsed() < PATIENCE, "no frame of the image");
    }
    next_frame(&screen);
}

/// A video file is looped: more frames come out than the file holds.
#[test]
fn the_live_engine_loops_a_video_file() {
    let dir = tempfile::tempdir().unwrap();
    cut_demo_clip(dir.path(), 1);
    let engine = live(SourceChoice::Video { path: dir.path().join("fast.mp4") }, 5, TemporalMode::Off);
    let status = wait_for(&engine, "the clip", |s| s.source_state == SourceState::Running);
    let frames_in_file = status.source_info.unwrap().frame_count.expect("a file has a frame count");
    let started = Instant::now();
    while engine.stats_view(None).frames_captured <= frames_in_file + 5 {
        assert!(started.elapsed() < PATIENCE, "the clip did not loop: {:?}", engine.status());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(engine.status().source_state, SourceState::Running);
}

/// The plate in the live engine: captured after its countdown, saved for the source and resolution (in the
/// folder given, never the user's), used by the model at once, found again by a new engine on the same
/// source, and cleared with its file.
#[test]
fn the_live_plate_is_captured_saved_reloaded_and_cleared() {
    use mattecam::engine::PlatePhase;
    let plates = tempfile::tempdir().unwrap();
    let start = || {
        let mut config = EngineConfig::live(
            SourceChoice::Synthetic { width: 320, height: 192, fps: 30.0 },
            ModelChoice::default(),
            TemporalMode::Off,
            colour(),
        );
        config.source = SourceInput::Live(SourceChoice::Synthetic { width: 320, height: 192, fps: 30.0 });
        config.model = ModelInput::Opened(stand_in(10));
        config.compositor = CompositorSetup::Kind(CompositorKind::Cpu);
        config.plate = Some(PlateSetup {
            settings: PlateSettings { countdown_s: 1, frames: 5, ..Default::default() },
            dir: plates.path().to_path_buf(),
        });
        Engine::start(config)
    };
    let engine = start();
    wait_for(&engine, "frames", |s| s.source_state == SourceState::Running);
    engine.request_plate(PlateRequest::Capture);
    wait_for(&engine, "the countdown", |s| matches!(s.plate.phase, PlatePhase::Countdown { .. }));
    let status = wait_for(&engine, "the plate", |s| s.plate.plate.is_some());
    assert_eq!(status.plate.phase, PlatePhase::Idle);
    let path = status.plate.path.clone().expect("the plate is saved");
    assert!(path.starts_with(plates.path()) && path.to_string_lossy().contains("320x192"), "{}", path.display());
    let plate = status.plate.plate.clone().unwrap();
    assert_eq!((plate.width, plate.height), (320, 192));
    wait_for(&engine, "the model to use the plate", |s| s.plate.in_use);
    drop(engine);
    let again = start();
    let status = wait_for(&again, "the saved plate", |s| s.plate.plate.is_some());
    assert_eq!(status.plate.path.as_deref(), Some(path.as_path()));
    again.request_plate(PlateRequest::Clear);
    wait_for(&again, "the plate cleared", |s| s.plate.plate.is_none());
    assert!(!path.exists(), "clearing deletes the saved plate");
}

/// On the window's GPU (lavapipe here; a hardware GPU in use): the window gets the texture and nothing is
/// read back while only the screen watches; once a consumer needs pixels (a recording), they come back
/// through the readback ring and equal the CPU reference; a snapshot of a texture-only frame reads that
/// very frame's textures back.
#[test]
fn on_the_windows_gpu_the_picture_stays_a_texture_until_pixels_are_needed() {
    let ctx = match mattecam::gpu::GpuContext::headless() {
        Ok(ctx) => ctx,
        Err(err) => {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must have a GPU adapter (lavapipe): {err}");
            eprintln!("skipped: no GPU adapter ({err})");
            return;
        }
    };
    let settings = CompositeSettings { background: Background::Blur { radius_px: 8 }, ..Default::default() };
    let mut config = EngineConfig::live(
        SourceChoice::Synthetic { width: 160, height: 96, fps: 30.0 },
        ModelChoice::default(),
        TemporalMode::Off,
        settings.clone(),
    );
    config.model = ModelInput::Opened(stand_in(20));
    config.compositor = CompositorSetup::Device(ctx);
    let engine = Engine::start(config);
    let screen = engine.subscribe_screen();
    let shown = next_frame(&screen);
    assert!(engine.status().compositor.starts_with("gpu"), "{}", engine.status().compositor);
    let gpu = shown.gpu.as_ref().expect("the window's frame is a texture");
    assert!(shown.picture.alpha.is_empty(), "nothing is read back while only the screen watches");
    assert_eq!((gpu.shown.width(), gpu.shown.height()), (160, 96));

    // A snapshot of that frame reads its textures back: the CPU reference's picture of the same frame.
    let shots = tempfile::tempdir().unwrap();
    let job = mattecam::engine::snapshot::SnapshotJob { output: Arc::clone(&shown), dir: shots.path().to_path_buf() };
    let files = mattecam::engine::snapshot::write_snapshot(&job).unwrap();
    let mut want = Picture::default();
    CpuCompositor::new(settings.clone()).unwrap().composite(&shown.frame, &shown.matte, &mut want).unwrap();
    let saved = image::open(&files.composite).unwrap().to_rgb8();
    let worst = saved.as_raw().iter().zip(&want.composite.pixels).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
    assert!(worst <= 1, "snapshot differs from the CPU reference by {worst}");

    // A consumer that needs the pixels: they come back, equal to the CPU reference.
    let recorder = engine.subscribe("recorder", Delivery::Queue(16));
    let output = next_frame(&recorder);
    assert!(output.gpu.is_some());
    let mut want = Picture::default();
    CpuCompositor::new(settings).unwrap().composite(&output.frame, &output.matte, &mut want).unwrap();
    let worst = output.picture.composite.pixels.iter().zip(&want.composite.pixels).map(|(a, b)| a.abs_diff(*b)).max();
    assert_eq!(output.picture.composite.pixels.len(), want.composite.pixels.len());
    assert!(worst.unwrap() <= 1, "read back {worst:?} from the CPU reference");
    assert!(output.picture.alpha.iter().zip(&want.alpha).all(|(a, b)| a.abs_diff(*b) <= 1));
}
