//! The window: its panels driven with egui_kittest, settings persistence, snapshots, and the real window
//! under Xvfb (the engine behind it has its own tests in `engine.rs`).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use egui::Key;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;
use mattecam::composite::background::Background;
use mattecam::composite::{CompositeSettings, CpuCompositor, View};
use mattecam::engine::snapshot::{SnapshotJob, write_snapshot};
use mattecam::engine::status::GovernorStatus;
use mattecam::engine::{EngineStatus, ModelChoice, ModelState, SourceChoice, SourceState, StatsView};
use mattecam::filter::temporal::TemporalMode;
use mattecam::frame::Frame;
use mattecam::frame::Output;
use mattecam::infer::{ModelKind, Precision};
use mattecam::record::live::RecordingView;
use mattecam::settings::AppSettings;
use mattecam::source::camera::CameraDescription;
use mattecam::ui::app::resolve_source;
use mattecam::ui::command::{Command, FileTarget, shortcut_commands};
use mattecam::ui::controls::{PanelView, banner_ui, controls_ui};

// ---------------------------------------------------------------------------------------------------
// Snapshots.

fn demo_live_frame() -> (Frame, mattecam::frame::Matte) {
    let frame = demo_frames(&[60]).remove(0);
    let mut matter =
        mattecam::infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Modnet), &cpu_options()).unwrap();
    let mut matte = mattecam::frame::Matte::default();
    matter.infer(&frame, &mut matte).unwrap();
    (frame, matte)
}

/// The engine's output for a frame and matte: composited once with `settings`, as the window gets it.
fn output_of(frame: Frame, matte: mattecam::frame::Matte, settings: &CompositeSettings) -> Arc<Output> {
    let mut output = Output { mirror: settings.mirror, transparent: settings.transparent(), ..Default::default() };
    CpuCompositor::new(settings.clone()).unwrap().composite(&frame, &matte, &mut output.picture).unwrap();
    output.frame = frame;
    output.matte = matte;
    Arc::new(output)
}

#[test]
fn snapshot_writes_the_composite_and_the_cutout() {
    let dir = tempfile::tempdir().unwrap();
    let (frame, matte) = demo_live_frame();
    let settings = CompositeSettings {
        background: Background::Color([10, 20, 250]),
        view: View::Split,
        mirror: true,
        ..Default::default()
    };
    let output = output_of(frame.clone(), matte, &settings);
    let job = SnapshotJob { output: Arc::clone(&output), dir: dir.path().join("shots") };
    let files = write_snapshot(&job).unwrap();
    let shown = image::open(&files.composite).unwrap();
    let cutout = image::open(&files.cutout).unwrap();
    // What the window shows (here the split view), and the full-size RGBA cutout.
    let split = output.picture.split.as_ref().unwrap();
    assert_eq!((shown.width(), shown.height()), (split.width, split.height));
    assert_eq!(shown.to_rgb8().as_raw(), &split.pixels, "the snapshot is the picture on screen, exactly");
    assert_eq!(cutout.color(), image::ColorType::Rgba8);
    assert_eq!((cutout.width(), cutout.height()), (frame.width, frame.height));
    let (composite, cutout) = (output.picture.composite.clone(), cutout.to_rgba8());
    let composite = image::RgbImage::from_raw(composite.width, composite.height, composite.pixels).unwrap();
    // Where the cutout is clear, the composite shows the colour; where opaque, the same (mirrored) person.
    let clear: Vec<_> = cutout.enumerate_pixels().filter(|(_, _, p)| p[3] == 0).map(|(x, y, _)| (x, y)).collect();
    let opaque: Vec<_> = cutout.enumerate_pixels().filter(|(_, _, p)| p[3] == 255).map(|(x, y, _)| (x, y)).collect();
    assert!(clear.len() > 10_000 && opaque.len() > 10_000);
    assert!(clear.iter().all(|&(x, y)| composite.get_pixel(x, y).0 == [10, 20, 250]));
    assert!(opaque.iter().all(|&(x, y)| composite.get_pixel(x, y).0[..] == cutout.get_pixel(x, y).0[..3]));
    let (x, y) = opaque[opaque.len() / 2];
    let source = (y * frame.width + (frame.width - 1 - x)) as usize * 3;
    assert_eq!(composite.get_pixel(x, y).0[..], frame.rgb[source..source + 3]);
    assert_eq!(std::fs::read_dir(dir.path().join("shots")).unwrap().count(), 2, "no partial files");
    // Two snapshots in the same instant get names of their own.
    let again = write_snapshot(&job).unwrap();
    assert_ne!(again.composite, files.composite);
    assert_eq!(std::fs::read_dir(dir.path().join("shots")).unwrap().count(), 4);
}

#[test]
fn snapshot_into_an_unwritable_place_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("not-a-folder");
    std::fs::write(&blocker, b"x").unwrap();
    let (frame, matte) = demo_live_frame();
    let job =
        SnapshotJob { output: output_of(frame, matte, &CompositeSettings::default()), dir: blocker.join("shots") };
    let err = write_snapshot(&job).unwrap_err().to_string();
    assert!(err.contains("not-a-folder"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing left behind");
}

// ---------------------------------------------------------------------------------------------------
// Panels, driven with egui_kittest: they emit commands; `AppSettings::apply` changes the settings.

struct PanelState {
    settings: AppSettings,
    status: EngineStatus,
    cameras: Vec<CameraDescription>,
    recording: RecordingView,
    commands: Vec<Command>,
    /// The microphone as the sound section sees it.
    inputs: Vec<String>,
    audio: Option<mattecam::audio::AudioStatus>,
    level: f32,
}

fn status_for(settings: &AppSettings) -> EngineStatus {
    EngineStatus {
        source: settings.source.clone(),
        source_state: SourceState::Running,
        source_info: None,
        model: settings.model.clone(),
        model_state: ModelState::Ready,
        provider: None,
        precision: None,
        governor: None,
        temporal: settings.temporal,
        plate: Default::default(),
        needs_plate: false,
        composite: settings.composite.clone(),
        composite_error: None,
        compositor: "cpu".into(),
        nonfinite_frames: 0,
        nonfinite_notice: None,
    }
}

fn panel_harness(settings: AppSettings) -> Harness<'static, PanelState> {
    let status = status_for(&settings);
    let state = PanelState {
        settings,
        status,
        cameras: Vec::new(),
        recording: RecordingView::Idle,
        commands: Vec::new(),
        inputs: Vec::new(),
        audio: None,
        level: 0.0,
    };
    let mut harness = Harness::builder().with_size(egui::vec2(420.0, 1700.0)).build_ui_state(
        |ui, state: &mut PanelState| {
            let view = PanelView {
                status: &state.status,
                cameras: &state.cameras,
                scanning: false,
                recording: &state.recording,
                camera: None,
                sound: mattecam::ui::sound_panel::SoundView {
                    inputs: &state.inputs,
                    scanning: false,
                    status: state.audio.as_ref(),
                    level: state.level,
                },
            };
            controls_ui(ui, &state.settings, &view, &mut state.commands);
        },
        state,
    );
    harness.run();
    harness
}

/// Applies and clears what the panel emitted.
fn apply_commands(harness: &mut Harness<'_, PanelState>) -> Vec<Command> {
    let state = harness.state_mut();
    let commands = std::mem::take(&mut state.commands);
    for command in &commands {
        state.settings.apply(command);
    }
    // Redraw with the applied settings, as the app does, so the next query sees the new layout.
    harness.run();
    commands
}

#[test]
fn model_panel_emits_model_and_filter_changes() {
    let mut harness = panel_harness(AppSettings::default());
    assert!(harness.state().commands.is_empty(), "drawing alone changes nothing");
    harness.get_by_label("MODNet").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert_eq!(commands.len(), 1, "{commands:?}");
    let Command::SetModel(model) = &commands[0] else { panic!("{commands:?}") };
    assert_eq!(model.kind, ModelKind::Modnet);
    assert_eq!(harness.state().settings.model.kind, ModelKind::Modnet);
    harness.run();
    // MODNet shows its inference size, RVM its downsample ratio.
    assert!(harness.query_by_label("Inference size").is_some());
    assert!(harness.query_by_label("Downsample ratio").is_none());

    harness.get_by_label("EMA").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::SetTemporal(TemporalMode::Ema)]);
    assert_eq!(harness.state().settings.temporal, TemporalMode::Ema);

    // BGMv2 can be picked (its file and plate are asked for by the session, not by the panel).
    harness.get_by_label("BGMv2").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(matches!(&commands[..], [Command::SetModel(m)] if m.kind == ModelKind::Bgmv2), "{commands:?}");
}

#[test]
fn model_panel_sets_precision_and_hold_rate() {
    let mut harness = panel_harness(AppSettings::default());
    assert_eq!(harness.state().settings.model.precision, Precision::Auto);
    assert!(harness.state().settings.model.hold_rate.enabled, "on by default");
    harness.get_by_label("Precision").click();
    harness.run();
    harness.get_by_label("INT8").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(matches!(&commands[..], [Command::SetModel(m)] if m.precision == Precision::Int8), "{commands:?}");

    harness.get_by_label("Hold frame rate").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(
        matches!(&commands[..], [Command::SetModel(m)] if !m.hold_rate.enabled && m.precision == Precision::Int8),
        "{commands:?}"
    );
    assert!(!harness.state().settings.model.hold_rate.enabled);
}

#[test]
fn stats_show_the_precision_and_the_governors_level() {
    let settings = AppSettings::default();
    let mut status = status_for(&settings);
    status.precision = Some(Precision::Int8);
    status.governor = Some(GovernorStatus {
        target_fps: 25.0,
        level: 2,
        levels: 4,
        label: "ratio 0.125".into(),
        steps_down: 1,
        steps_up: 0,
    });
    let stats = StatsView::default();
    let harness = Harness::builder().with_size(egui::vec2(420.0, 400.0)).build_ui(move |ui| {
        mattecam::ui::stats_ui::stats_ui(ui, &stats, &status);
    });
    assert!(harness.query_by_label("RVM int8").is_some());
    assert!(harness.query_by_label("25 fps: ratio 0.125 (step 2 of 3)").is_some());
}

#[test]
fn background_panel_switches_modes_and_remembers_their_values() {
    let mut settings = AppSettings::default();
    settings.remembered.colour = [1, 2, 3];
    let mut harness = panel_harness(settings);
    harness.get_by_label("Colour").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::SetBackground(Background::Color([1, 2, 3]))]);
    assert_eq!(harness.state().settings.composite.background, Background::Color([1, 2, 3]));

    // No image chosen yet: the image mode asks for a file first.
    harness.run();
    harness.get_by_label("Image").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::PickFile(FileTarget::BackgroundImage)]);
    let picked = FileTarget::BackgroundImage.command(PathBuf::from("/photos/beach.jpg"));
    harness.state_mut().settings.apply(&picked);
    assert_eq!(harness.state().settings.composite.background, Background::Image("/photos/beach.jpg".into()));

    // Back to blur and to the image again: the image is remembered.
    harness.run();
    harness.get_by_label("Blur").click();
    harness.run();
    apply_commands(&mut harness);
    harness.run();
    harness.get_by_label("Image").click();
    harness.run();
    assert_eq!(
        apply_commands(&mut harness),
        vec![Command::SetBackground(Background::Image("/photos/beach.jpg".into()))]
    );

    harness.run();
    harness.get_by_label("Transparent").click();
    harness.run();
    apply_commands(&mut harness);
    assert!(harness.state().settings.composite.background.has_alpha());
    harness.run();
    harness.get_by_label("Split view: original | alpha | composite (V)").click();
    harness.run();
    apply_commands(&mut harness);
    assert_eq!(harness.state().settings.composite.view, View::Split);
    // Other composite settings survive a background change.
    assert!(harness.state().settings.composite.mirror);
}

#[test]
fn source_panel_offers_cameras_and_files() {
    let mut harness = panel_harness(AppSettings { source: SourceChoice::Demo, ..Default::default() });
    assert!(harness.query_by_label_contains("No camera found").is_some());
    harness.get_by_label("Refresh cameras").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::RefreshCameras]);

    harness.state_mut().cameras =
        vec![CameraDescription { index: 3, name: "Test Cam".into(), modes: vec![(1920, 1080, 30), (1280, 720, 60)] }];
    harness.run();
    assert!(harness.query_by_label_contains("No camera found").is_none());
    harness.get_by_label("Input").click();
    harness.run();
    harness.get_by_label("Camera 3: Test Cam").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::SetSource(SourceChoice::Camera { index: 3, mode: None })]);
    harness.run();
    harness.get_by_label("Mode").click();
    harness.run();
    harness.get_by_label("1280x720 @ 60 fps").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    let Command::SetSource(SourceChoice::Camera { mode: Some(mode), .. }) = &commands[0] else {
        panic!("{commands:?}")
    };
    assert_eq!((mode.width, mode.height, mode.fps), (1280, 720, 60));
}

#[test]
fn banner_shows_a_lost_camera_and_notices() {
    let settings = AppSettings::default();
    let mut status = status_for(&settings);
    status.source_state =
        SourceState::Lost { reason: "no camera was found".into(), retry_at: Instant::now() + Duration::from_secs(2) };
    let state = (status, vec!["Saved a.png and b.png".to_string()], Vec::<Command>::new());
    let mut harness = Harness::builder().with_size(egui::vec2(900.0, 200.0)).build_ui_state(
        |ui, (status, notices, commands): &mut (EngineStatus, Vec<String>, Vec<Command>)| {
            banner_ui(ui, status, notices, commands);
        },
        state,
    );
    harness.run();
    let banner = harness.get_by_label_contains("camera 0 is not available");
    let text = format!("{banner:?}");
    assert!(text.contains("Retrying in 2 s"), "{text}");
    assert!(harness.query_by_label("Saved a.png and b.png").is_some());
    harness.get_by_label("Dismiss").click();
    harness.run();
    assert_eq!(harness.state().2, vec![Command::DismissNotice(0)]);
}

#[test]
fn missing_camera_falls_back_to_the_demo_and_keeps_the_saved_choice() {
    let settings = AppSettings { source: SourceChoice::Camera { index: 0, mode: None }, ..Default::default() };
    let (run, saved, notice) = resolve_source(settings.clone(), None, &[]);
    assert_eq!(run.source, SourceChoice::Demo);
    assert_eq!(saved, Some(settings.source.clone()));
    assert!(notice.unwrap().contains("No camera found"));
    let camera = CameraDescription { index: 0, name: "cam".into(), modes: Vec::new() };
    let (run, saved, notice) = resolve_source(settings.clone(), None, &[camera]);
    assert_eq!((run.source, saved, notice), (settings.source, None, None));
}

/// The record panel: format and quality become a `SetRecording`, the button a `ToggleRecording`; while
/// recording it shows the elapsed time, size and a queue that falls behind, and locks the format.
#[test]
fn record_panel_emits_recording_commands_and_shows_progress() {
    let mut harness = panel_harness(AppSettings::default());
    harness.get_by_label("Format").click();
    harness.run();
    harness.get_by_label("ProRes 4444 with alpha (MOV)").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(
        matches!(&commands[..], [Command::SetRecording(r)] if r.format == mattecam::sink::Format::Prores),
        "{commands:?}"
    );
    assert_eq!(harness.state().settings.recording.format, mattecam::sink::Format::Prores);
    harness.get_by_label("Also the camera video (NAME.source.mp4)").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(matches!(&commands[..], [Command::SetRecording(r)] if r.with_source), "{commands:?}");
    harness.get_by_label("Record (R)").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::ToggleRecording]);

    harness.state_mut().recording = RecordingView::Running(mattecam::record::RecorderStatus {
        elapsed_s: 72.5,
        written_s: 70.5,
        frames_written: 2175,
        frames_dropped: 0,
        queue_depth: 60,
        queue_capacity: 90,
        bytes: 48_200_000,
        failure: None,
        audio_s: None,
        audio_events: Vec::new(),
    });
    harness.run();
    harness.get_by_label_contains("01:12.5");
    harness.get_by_label_contains("48.2 MB");
    harness.get_by_label_contains("2.0 s not yet written");
    harness.get_by_label_contains("the encoder is falling behind");
    harness.get_by_label("Stop recording (R)").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::ToggleRecording]);
    harness.get_by_label("Format").click();
    harness.run();
    assert!(harness.query_by_label("VP9 with alpha (WebM)").is_none(), "the format is locked while recording");
}

/// The "Virtual camera" section: on/off and mirroring emit commands; the status line says what the camera
/// does, and that it shows the background alone until the model runs.
#[test]
fn virtual_camera_section_emits_commands_and_shows_the_status() {
    use mattecam::settings::CameraSettings;
    use mattecam::ui::camera_panel::camera_ui;
    use mattecam::vcam::{CameraReport, CameraState};
    type State = (CameraSettings, Option<CameraReport>, mattecam::engine::EngineStatus, Vec<Command>);
    let mut status = status_for(&AppSettings::default());
    status.model_state = ModelState::Loading;
    let mut harness = Harness::builder().with_size(egui::vec2(420.0, 400.0)).build_ui_state(
        |ui, (settings, report, status, commands): &mut State| {
            camera_ui(ui, settings, report.as_ref(), status, commands)
        },
        (CameraSettings::default(), None, status, Vec::new()),
    );
    harness.run();
    assert!(harness.query_by_label_contains("other apps do not see the picture").is_some());
    harness.get_by_label("On (C)").click();
    harness.run();
    assert_eq!(std::mem::take(&mut harness.state_mut().3), vec![Command::ToggleCamera]);
    harness.get_by_label("Mirror what others see").click();
    harness.run();
    let commands = std::mem::take(&mut harness.state_mut().3);
    assert!(matches!(&commands[..], [Command::SetCamera(c)] if c.mirror), "{commands:?}");
    harness.state_mut().1 = Some(CameraReport {
        state: CameraState::Streaming { consumers: 2 },
        target: "PipeWire node mattecam".into(),
        width: 1280,
        height: 720,
        fps: 30.0,
        format: None,
        sent: 10,
        repeated: 1,
        dropped: 0,
        latency_p50_ms: None,
        latency_p99_ms: None,
    });
    harness.run();
    assert!(harness.query_by_label_contains("streaming to 2 apps (1280x720").is_some());
    assert!(harness.query_by_label_contains("background alone").is_some(), "the model is still loading");
    harness.state_mut().1.as_mut().unwrap().state = CameraState::Unavailable {
        reason: "no v4l2loopback device found".into(),
        fix: Some("sudo modprobe v4l2loopback".into()),
    };
    harness.run();
    assert!(harness.query_by_label_contains("not available: no v4l2loopback device found. sudo modprobe").is_some());
}

#[test]
fn shortcuts_emit_commands_unless_typing() {
    let settings = AppSettings::default();
    let mut harness = Harness::builder().with_accessibility_check(false).build_ui_state(
        |ui, (settings, commands, text): &mut (AppSettings, Vec<Command>, String)| {
            commands.extend(shortcut_commands(ui.ctx(), settings));
            ui.text_edit_singleline(text);
        },
        (settings.clone(), Vec::new(), String::new()),
    );
    for key in [Key::M, Key::V, Key::S, Key::R, Key::I, Key::H, Key::C] {
        harness.key_press(key);
        harness.run();
    }
    let mirror = CompositeSettings { mirror: !settings.composite.mirror, ..settings.composite.clone() };
    let split = CompositeSettings { view: View::Split, ..settings.composite.clone() };
    assert_eq!(
        harness.state().1,
        vec![
            Command::SetComposite(mirror),
            Command::SetComposite(split),
            Command::Snapshot,
            Command::ToggleRecording,
            Command::ToggleStats,
            Command::ToggleHelp,
            Command::ToggleCamera
        ]
    );
    harness.state_mut().1.clear();
    harness.get_by_role(egui::accesskit::Role::TextInput).click();
    harness.run();
    harness.key_press(Key::M);
    harness.run();
    assert!(harness.state().1.is_empty(), "typing M in a text field is not a shortcut");
}

#[test]
fn settings_round_trip_and_corrupt_settings_fall_back() {
    let mut settings = AppSettings::default();
    for command in [
        Command::SetSource(SourceChoice::Video { path: "/videos/talk.mp4".into() }),
        Command::SetModel(ModelChoice { kind: ModelKind::Modnet, ref_size: 384, ..Default::default() }),
        Command::SetTemporal(TemporalMode::Adaptive),
        Command::SetBackground(Background::Video("/videos/beach.mp4".into())),
        Command::SetSnapshotDir("/shots".into()),
        Command::ToggleStats,
    ] {
        assert!(settings.apply(&command), "{command:?} changes the settings");
    }
    let (loaded, notice) = AppSettings::load(Some(&settings.to_json()), true);
    assert_eq!((loaded, notice), (settings.clone(), None));

    let (loaded, notice) = AppSettings::load(Some("{\"model\": 17"), true);
    assert_eq!(loaded, AppSettings::default());
    assert!(notice.unwrap().contains("could not be read"));
    let (loaded, notice) = AppSettings::load(None, true);
    assert_eq!(loaded, AppSettings::default());
    assert!(notice.is_some(), "a settings file eframe could not parse is reported");
    assert_eq!(AppSettings::load(None, false), (AppSettings::default(), None), "first run: no notice");
    // Older files without newer fields load with defaults for them.
    let (partial, notice) = AppSettings::load(Some("{\"show_stats\": false}"), true);
    assert!(notice.is_none() && !partial.show_stats && partial.model == ModelChoice::default());
}

// ---------------------------------------------------------------------------------------------------
// The real window, under Xvfb.

struct Display {
    name: String,
    server: Option<Child>,
}

impl Drop for Display {
    fn drop(&mut self) {
        if let Some(server) = &mut self.server {
            let _ = server.kill();
            let _ = server.wait();
        }
    }
}

/// A private Xvfb display; `None` (with a note) where Xvfb is missing outside CI.
fn xvfb() -> Option<Display> {
    let in_ci = std::env::var("CI").as_deref() == Ok("true");
    let number = (90..200).find(|n| {
        !Path::new(&format!("/tmp/.X11-unix/X{n}")).exists() && !Path::new(&format!("/tmp/.X{n}-lock")).exists()
    })?;
    let name = format!(":{number}");
    let server = Process::new("Xvfb")
        .args([&name, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let server = match server {
        Ok(server) => server,
        Err(err) => {
            assert!(!in_ci, "CI must have Xvfb (apt package xvfb): {err}");
            eprintln!("skipped: Xvfb is not installed ({err})");
            return None;
        }
    };
    let socket = PathBuf::from(format!("/tmp/.X11-unix/X{number}"));
    let started = Instant::now();
    while !socket.exists() {
        assert!(started.elapsed() < Duration::from_secs(10), "Xvfb did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(Display { name, server: Some(server) })
}

fn run_window(display: &Display, args: &[&str]) -> std::process::Output {
    run_window_with(display, args, &[])
}

/// The window on `display`, its plates kept in a folder of its own (never the checkout's).
fn run_window_with(display: &Display, args: &[&str], envs: &[(&str, &str)]) -> std::process::Output {
    let runtime_dir = tempfile::tempdir().unwrap();
    let plates = tempfile::tempdir().unwrap();
    Process::new(mattecam())
        .args(args)
        .arg("--plates-dir")
        .arg(plates.path())
        .envs(envs.iter().copied())
        .env("DISPLAY", &display.name)
        .env_remove("WAYLAND_DISPLAY")
        .env("XDG_RUNTIME_DIR", runtime_dir.path())
        .output()
        .unwrap()
}

/// The figure the summary line gives after `label`, e.g. `longest UI frame 12 ms`.
fn summary_figure(stdout: &str, label: &str) -> f64 {
    let rest = stdout.split(label).nth(1).unwrap_or_else(|| panic!("{label:?} not in {stdout}"));
    rest.trim_start().split(|c: char| !c.is_ascii_digit() && c != '.').next().unwrap().parse().unwrap()
}

fn is_colour(p: &[u8], colour: [u8; 3]) -> bool {
    p.iter().zip(colour).all(|(a, b)| a.abs_diff(b) <= 6)
}

/// `mattecam --frames 30 --screenshot` on the demo clip, with saved settings (colour background, stats
/// hidden, no mirror): the window shows the person cut out over the colour, where the source frame shows
/// the room.
#[test]
fn window_shows_the_composited_demo_clip_and_saves_a_screenshot() {
    let Some(display) = xvfb() else { return };
    let dir = tempfile::tempdir().unwrap();
    let colour = [32u8, 192, 64];
    let saved = AppSettings {
        source: SourceChoice::Demo,
        composite: CompositeSettings { background: Background::Color(colour), mirror: false, ..Default::default() },
        show_stats: false,
        temporal: TemporalMode::Off,
        ..Default::default()
    };
    let settings_file = dir.path().join("app.ron");
    let ron = format!("{{\"mattecam.settings\": {}}}", serde_json::to_string(&saved.to_json()).unwrap());
    std::fs::write(&settings_file, ron).unwrap();
    let shot = dir.path().join("window.png");
    let takes = dir.path().join("takes");
    let output = run_window(
        &display,
        &[
            "--frames",
            "30",
            "--screenshot",
            shot.to_str().unwrap(),
            "--settings",
            settings_file.to_str().unwrap(),
            "--record",
            "--record-format",
            "mp4",
            "--record-dir",
            takes.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "window run failed: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("screenshot of the window after"), "{stdout}");
    assert!(stdout.contains("Recorded "), "{stdout}{stderr}");
    // The window's takes have sound: silence here, where no microphone opens, and it says so.
    assert!(stdout.contains("sound with") || stdout.contains("sound (aac)"), "{stdout}");
    assert!(stdout.contains("composited on cpu"), "lavapipe is a software rasteriser: the CPU composites. {stdout}");

    let image = image::open(&shot).unwrap().to_rgb8();
    assert_eq!((image.width(), image.height()), (1280, 760), "the window's size");
    // The picture: the columns and rows with much background colour (the panel's colour swatch is small).
    let (mut columns, mut rows) = (vec![0u32; image.width() as usize], vec![0u32; image.height() as usize]);
    for (x, y, p) in image.enumerate_pixels() {
        if is_colour(&p.0, colour) {
            columns[x as usize] += 1;
            rows[y as usize] += 1;
        }
    }
    let total: u32 = columns.iter().sum();
    assert!(total > 100_000, "too little background colour on screen: {total} pixels");
    let span = |counts: &[u32]| {
        let mut many = (0..counts.len() as u32).filter(|&i| counts[i as usize] > 100);
        let first = many.next().unwrap();
        (first, many.next_back().unwrap_or(first))
    };
    let ((x0, x1), (y0, y1)) = (span(&columns), span(&rows));
    let (w, h) = (x1 - x0 + 1, y1 - y0 + 1);
    // The demo clip is 1080x720 (3:2), shown whole.
    assert!(((w as f32 / h as f32) - 1.5).abs() < 0.03, "picture {w}x{h}");
    let share_in = |x: u32, y: u32, side: u32| {
        let n = (0..side).flat_map(|dy| (0..side).map(move |dx| (x + dx, y + dy)));
        n.filter(|&(x, y)| is_colour(&image.get_pixel(x, y).0, colour)).count() as f32 / (side * side) as f32
    };
    let side = w / 12;
    // Kept for a look when an assertion below fails.
    let kept = std::env::temp_dir().join("mattecam-window-test.png");
    std::fs::copy(&shot, &kept).unwrap();
    // The demo clip plays in real time, so which of its frames is on screen depends on the machine's speed:
    // only what holds over the whole clip is checked. Its top-left corner is background throughout.
    let top_left = share_in(x0, y0, side);
    assert!(top_left > 0.9, "top-left corner: {top_left} ({})", kept.display());
    // The badge: a red dot and "REC" over the picture's top-right corner while recording.
    let red = (x1.saturating_sub(160)..=x1)
        .flat_map(|x| (y0..y0 + 60).map(move |y| (x, y)))
        .filter(|&(x, y)| {
            let [r, g, b] = image.get_pixel(x, y).0;
            r > 180 && g < 90 && b < 90
        })
        .count();
    assert!(red > 60, "no recording badge ({red} red pixels)");
    // The people are there: in every frame of the clip they cover 39-61% of the picture.
    let in_picture = (y0..=y1).flat_map(|y| (x0..=x1).map(move |x| (x, y)));
    let coloured = in_picture.filter(|&(x, y)| is_colour(&image.get_pixel(x, y).0, colour)).count();
    let colour_share = coloured as f32 / (w * h) as f32;
    assert!((0.25..0.8).contains(&colour_share), "background colour on {colour_share} of the picture");
    // The source frame is not that colour in the corners.
    let frame = demo_frames(&[0]).remove(0);
    let corner = &frame.rgb[..3];
    assert!(!is_colour(corner, colour), "source corner {corner:?}");

    // Closing the window finished the take: one MP4 at the source's constant rate, and its sidecar.
    let mut names: Vec<String> =
        std::fs::read_dir(&takes).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(
        names.len() == 2
            && names[0].ends_with(".json")
            && names[1].ends_with(".mp4")
            && names[0].starts_with("mattecam-"),
        "{names:?}"
    );
    let report: mattecam::record::RecordingReport =
        serde_json::from_str(&std::fs::read_to_string(takes.join(&names[0])).unwrap()).unwrap();
    assert!(report.complete && report.error.is_none() && report.frames_written > 0, "{report:?}");
    let probe = Process::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets"])
        .args(["-show_entries", "stream=nb_read_packets:format=duration"])
        .args(["-of", "default=noprint_wrappers=1:nokey=1"])
        .arg(takes.join(&names[1]))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let values: Vec<f64> = text.split_whitespace().filter_map(|v| v.parse().ok()).collect();
    let [packets, duration_s] = values[..] else { panic!("ffprobe: {text}") };
    assert_eq!(packets as u64, report.frames_written + report.frames_repeated, "{report:?}");
    assert!((duration_s - packets / 25.0).abs() < 0.05 && duration_s > 1.0, "{packets} frames, {duration_s} s");
    assert!((duration_s - report.duration_s).abs() < 0.05, "{duration_s} s, sidecar {} s", report.duration_s);

    // eframe saved the settings on exit, and they still read back.
    let stored = std::fs::read_to_string(&settings_file).unwrap();
    assert!(stored.contains("mattecam.settings"), "{stored}");
}

#[test]
fn window_reports_an_unreadable_source_and_exits_nonzero() {
    let Some(display) = xvfb() else { return };
    let dir = tempfile::tempdir().unwrap();
    let settings_file = dir.path().join("app.ron");
    let broken = dir.path().join("broken.mp4");
    std::fs::write(&broken, b"not a video").unwrap();
    let output = run_window(
        &display,
        &["--source", broken.to_str().unwrap(), "--frames", "5", "--settings", settings_file.to_str().unwrap()],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("broken.mp4"), "{stderr}");
}

/// One composite reaches the window, the recorder and a snapshot, and the window never waits: with a model
/// taking 1.5 s a frame (the test stand-in), a recording started from the window, a looping video
/// background and a threshold slider dragged every frame, the UI thread's longest frame stays far under
/// what one blocking call on the model would take; and the snapshot (taken as the screenshot is) is the
/// picture on screen and a frame of the recording, exactly.
#[test]
fn window_recording_and_snapshot_show_the_same_picture_and_the_window_never_waits() {
    let Some(display) = xvfb() else { return };
    // On the CPU (what a software rasteriser gets), and on the window's GPU (lavapipe standing in for a
    // hardware one: the texture drawn as it is, pixels read back for the recording and the snapshot).
    for compositor in ["cpu", "gpu"] {
        same_picture_everywhere(&display, compositor);
    }
}

fn same_picture_everywhere(display: &Display, compositor: &str) {
    let dir = tempfile::tempdir().unwrap();
    // A 12-frame background video: it loops every half second.
    let clip = dir.path().join("bg.mp4");
    let made = Process::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(fetched("assets/demovideo.mp4"))
        .args(["-frames:v", "12", "-vf", "scale=320:-2,hflip", "-an"])
        .arg(&clip)
        .status()
        .unwrap();
    assert!(made.success());
    let (shots, takes, settings_file) =
        (dir.path().join("shots"), dir.path().join("takes"), dir.path().join("app.ron"));
    let saved = AppSettings {
        composite: CompositeSettings { mirror: false, ..Default::default() },
        show_stats: false,
        temporal: TemporalMode::Off,
        ..Default::default()
    };
    let ron = format!("{{\"mattecam.settings\": {}}}", serde_json::to_string(&saved.to_json()).unwrap());
    std::fs::write(&settings_file, ron).unwrap();
    let shot = dir.path().join("window.png");
    let background = format!("video:{}", clip.display());
    let args = [
        "--source",
        "synthetic:320x240@30",
        "--background",
        &background,
        "--frames",
        "4",
        "--screenshot",
        shot.to_str().unwrap(),
        "--snapshot",
        "--snapshot-dir",
        shots.to_str().unwrap(),
        "--record",
        "--record-format",
        "png",
        "--record-dir",
        takes.to_str().unwrap(),
        "--settings",
        settings_file.to_str().unwrap(),
        "--drag-settings",
        "--compositor",
        compositor,
    ];
    let output = run_window_with(display, &args, &[("MATTECAM_TEST_MATTER_DELAY_MS", "1500")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "window run failed: {stderr}{stdout}");
    assert!(stdout.contains(&format!("composited on {compositor}")), "{stdout}");
    let longest_ms = summary_figure(&stdout, "longest UI frame");
    eprintln!("{compositor}: longest UI frame {longest_ms} ms");
    assert!(longest_ms < 1000.0, "the UI thread waited {longest_ms} ms: {stdout}");

    // The snapshot's cutout is a frame of the recording, byte for byte.
    let snapshot: Vec<PathBuf> = std::fs::read_dir(&shots).unwrap().map(|e| e.unwrap().path()).collect();
    let cutout_path = snapshot.iter().find(|p| p.to_string_lossy().ends_with("-cutout.png")).expect("a cutout");
    let composite_path =
        snapshot.iter().find(|p| p.to_string_lossy().ends_with("-composite.png")).expect("a composite");
    let cutout = image::open(cutout_path).unwrap().to_rgba8();
    // (The dragged threshold moves the curve: the person is not fully opaque.)
    let (low, high) = cutout.pixels().fold((255u8, 0u8), |(l, h), p| (l.min(p[3]), h.max(p[3])));
    assert!(high >= 200 && low == 0, "a real matte: alpha {low}..={high}");
    let take = std::fs::read_dir(&takes).unwrap().map(|e| e.unwrap().path()).find(|p| p.is_dir()).expect("a PNG take");
    let recorded: Vec<PathBuf> = std::fs::read_dir(&take).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(!recorded.is_empty());
    let same = recorded.iter().filter(|p| image::open(p).unwrap().to_rgba8() == cutout).count();
    assert!(same > 0, "the snapshot is none of the {} recorded frames", recorded.len());

    // The window shows the snapshot's picture (scaled to fit).
    let composite = image::open(composite_path).unwrap().to_rgb8();
    assert_eq!((composite.width(), composite.height()), (320, 240));
    let screen = image::open(&shot).unwrap().to_rgb8();
    // Where the picture is: fitted and centred in the space left of the panel and below any banner, whose
    // exact sizes are egui's to decide; the best of the layouts they can take.
    let difference = |area_w: f32, top: f32| {
        let area_h = screen.height() as f32 - top;
        let scale = (area_w / 320.0).min(area_h / 240.0);
        let (x0, y0) = ((area_w - 320.0 * scale) / 2.0, top + (area_h - 240.0 * scale) / 2.0);
        let (mut error, mut n) = (0.0, 0.0);
        for y in (8..232).step_by(8) {
            for x in (8..312).step_by(8) {
                let sx = ((x0 + (x as f32 + 0.5) * scale) as u32).min(screen.width() - 1);
                let sy = ((y0 + (y as f32 + 0.5) * scale) as u32).min(screen.height() - 1);
                let (a, b) = (composite.get_pixel(x, y).0, screen.get_pixel(sx, sy).0);
                error += a.iter().zip(b).map(|(p, q)| p.abs_diff(q) as f64).sum::<f64>() / 3.0;
                n += 1.0;
            }
        }
        error / n
    };
    let panel_left = screen.width() - 300;
    let shifts = (panel_left - 60..=panel_left).flat_map(|w| (0..=40).map(move |top| (w as f32, top as f32)));
    let mean = shifts.map(|(dx, dy)| difference(dx, dy)).fold(f64::MAX, f64::min);
    eprintln!("{compositor}: window vs snapshot: mean difference {mean:.2} levels");
    let kept = std::env::temp_dir().join(format!("mattecam-same-picture-window-{compositor}.png"));
    std::fs::copy(&shot, &kept).unwrap();
    assert!(mean < 6.0, "the window does not show the snapshot's picture: {mean:.2} ({})", kept.display());
}

/// The window with its virtual camera on (`--virtual-camera pipewire`): a GStreamer client in a private
/// PipeWire session receives the matted picture from it.
#[test]
fn window_publishes_its_picture_as_a_pipewire_camera() {
    let Some(display) = xvfb() else { return };
    let Some(session) = common::pipewire::Session::start() else { return };
    let dir = tempfile::tempdir().unwrap();
    let plates = tempfile::tempdir().unwrap();
    let settings_file = dir.path().join("app.ron");
    let mut window = session
        .command(mattecam())
        .args(["--source", "synthetic:320x240@15", "--background", "color:#00ff00", "--temporal", "off"])
        .args(["--virtual-camera", "pipewire", "--frames", "100000", "--compositor", "cpu"])
        .arg("--settings")
        .arg(&settings_file)
        .arg("--plates-dir")
        .arg(plates.path())
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "5")
        .env("DISPLAY", &display.name)
        .env_remove("WAYLAND_DISPLAY")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let published = session.wait_node("mattecam", true, Duration::from_secs(60));
    let frames = dir.path().join("frames.rgb");
    let read = published.then(|| {
        session
            .command("gst-launch-1.0")
            .args(["pipewiresrc", "target-object=mattecam", "num-buffers=10", "!", "videoconvert", "!"])
            .args(["video/x-raw,format=RGB", "!", "filesink"])
            .arg(format!("location={}", frames.display()))
            .output()
            .unwrap()
    });
    let _ = window.kill();
    let _ = window.wait();
    assert!(published, "the window's camera is published");
    let read = read.unwrap();
    assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stdout));
    let rgb = std::fs::read(&frames).unwrap();
    assert_eq!(rgb.len(), 10 * 320 * 240 * 3, "10 frames of 320x240");
    let last = &rgb[9 * 320 * 240 * 3..];
    let green = last.chunks_exact(3).filter(|p| is_colour(p, [0, 255, 0]) || p[1] > 230 && p[0] < 40).count();
    assert!(green * 2 > last.len() / 3, "the colour background fills most of the picture");
}

#[test]
fn the_sound_panel_picks_a_microphone_mutes_trims_and_meters() {
    use mattecam::audio::{AudioChoice, AudioSettings, AudioState, AudioStatus};
    let mut harness = panel_harness(AppSettings::default());
    assert_eq!(harness.state().settings.audio, AudioSettings::default(), "the system's default, unmuted, 0 dB");
    let running = AudioStatus {
        choice: AudioChoice::Default,
        device: "Default Audio Device".into(),
        rate: 48_000,
        channels: 1,
        state: AudioState::Running,
        losses: 0,
        chunks_dropped: 0,
    };
    let state = harness.state_mut();
    state.inputs = vec!["USB Microphone".into()];
    state.audio = Some(running.clone());
    // A quarter of full scale: -12 dBFS.
    state.level = 0.25;
    harness.run();
    harness.get_by_label_contains("Level: -12 dB");
    harness.get_by_label_contains("Default Audio Device, 48000 Hz x1");
    harness.state_mut().level = 0.0;
    harness.run();
    harness.get_by_label_contains("Level: silent");

    harness.get_by_label("Microphone").click();
    harness.run();
    harness.get_by_label("USB Microphone").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    let usb = AudioChoice::Named("USB Microphone".into());
    assert!(matches!(&commands[..], [Command::SetAudio(a)] if a.input == usb && !a.muted), "{commands:?}");

    harness.get_by_label("Mute").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(matches!(&commands[..], [Command::SetAudio(a)] if a.muted && a.input == usb), "{commands:?}");
    harness.get_by_label_contains("Muted");

    // The gain trim, by keyboard on its slider: each step is 0.5 dB.
    harness.get_by_role_and_label(egui::accesskit::Role::Slider, "gain").focus();
    harness.run();
    harness.key_press(egui::Key::ArrowRight);
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(matches!(&commands[..], [Command::SetAudio(a)] if a.gain_db == 0.5), "{commands:?}");

    harness.get_by_label("Refresh microphones").click();
    harness.run();
    assert_eq!(apply_commands(&mut harness), vec![Command::RefreshAudioInputs]);

    // A lost microphone is said, with what recordings get meanwhile.
    harness.state_mut().audio = Some(AudioStatus { state: AudioState::Lost("unplugged".into()), ..running });
    harness.run();
    harness.get_by_label_contains("No microphone (unplugged); retrying");

    harness.get_by_label("Microphone").click();
    harness.run();
    harness.get_by_label("No sound").click();
    harness.run();
    let commands = apply_commands(&mut harness);
    assert!(matches!(&commands[..], [Command::SetAudio(a)] if a.input == AudioChoice::None), "{commands:?}");
    harness.state_mut().audio = None;
    harness.run();
    harness.get_by_label_contains("Recordings have no sound");
    assert!(harness.query_by_label("Mute").is_none(), "no mute or meter without a microphone");
}

#[test]
fn a_running_take_shows_its_sound_and_what_happened_to_the_microphone() {
    let mut harness = panel_harness(AppSettings::default());
    let status = mattecam::record::RecorderStatus {
        elapsed_s: 12.0,
        written_s: 11.5,
        frames_written: 345,
        queue_capacity: 90,
        audio_s: Some(11.9),
        ..Default::default()
    };
    harness.state_mut().recording = RecordingView::Running(status.clone());
    harness.run();
    harness.get_by_label_contains("Sound: 11.9 s");
    let lost = mattecam::record::AudioEvent { at_s: 4.2, what: "the microphone was lost (gone)".into() };
    harness.state_mut().recording =
        RecordingView::Running(mattecam::record::RecorderStatus { audio_events: vec![lost], ..status });
    harness.run();
    harness.get_by_label_contains("Sound at 4.2 s: the microphone was lost (gone)");
}
