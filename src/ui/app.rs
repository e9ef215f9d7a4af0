//! The eframe app: takes the newest picture from the engine, draws it and the panels, and applies the
//! commands they emit, in that order, once per window frame. Nothing here waits: settings go to the engine
//! latest-wins, recordings start and finish on their own threads, file dialogs and camera scans run on
//! helper threads.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, bounded};

use super::command::{Command, FileTarget, shortcut_commands};
use super::controls::{PanelView, banner_ui, controls_ui, has_banner, recording_badge_ui};
use super::stats_ui::{help_ui, stats_ui};
use super::viewport::{Presenter, viewport_ui};
use crate::composite::{CompositeSettings, CompositorKind};
use crate::engine::snapshot::{SnapshotJob, SnapshotWriter};
use crate::engine::{
    CompositorSetup, Engine, EngineConfig, ModelInput, PlateRequest, PlateSetup, SourceChoice, SourceInput, StatsView,
    Subscription,
};
use crate::frame::Output;
use crate::gpu::GpuContext;
use crate::record::live::{RecordingEvent, RecordingView, Recordings};
use crate::record::{Clock, DEFAULT_QUEUE_FRAMES, RecordOptions, RecordingReport};
use crate::settings::{AppSettings, SETTINGS_KEY};
use crate::sink::OutputSpec;
use crate::source::camera::{self, CameraDescription};
use crate::vcam::VirtualCamera;

/// What the command line asks of one window run.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// Close after this many frames have been shown.
    pub frames: Option<u64>,
    /// Save a screenshot of the window there after `frames` frames, then close.
    pub screenshot: Option<PathBuf>,
    /// Start recording once the picture shows.
    pub record: bool,
    /// With the screenshot, also a snapshot of the same frame.
    pub snapshot: bool,
    /// Every window frame, move the edge threshold and the plate frame count as a dragged slider would (a
    /// check that settings never make the window wait).
    pub drag_settings: bool,
    /// Where the picture is composited (`auto`: on the window's GPU when it is a hardware one).
    pub compositor: CompositorKind,
    /// Where plates are kept.
    pub plates_dir: Option<PathBuf>,
    /// Turn the virtual camera on at start.
    pub virtual_camera: bool,
}

/// How a run ended, for the command line's exit code and summary.
#[derive(Default)]
pub struct RunOutcome {
    /// The engine's figures when the window closed.
    pub stats: StatsView,
    /// "RVM on CPU", when the model ran.
    pub model: String,
    /// "cpu" or "gpu (adapter)".
    pub compositor: String,
    pub screenshot: Option<PathBuf>,
    pub snapshot: Option<PathBuf>,
    /// Why a `--frames` run could not finish.
    pub error: Option<String>,
    /// The longest time one window frame spent in the app's code (the UI thread's longest wait), after
    /// the first frame.
    pub longest_frame_ms: f64,
    /// The recordings finished after the window closed.
    pub recordings: Vec<RecordingReport>,
    /// What the window left running when it closed: finished (takes finalised, threads joined) after the
    /// window is gone.
    pub(super) left_running: Option<(Engine, Recordings)>,
}

/// Everything `MatteApp::new` needs besides eframe's creation context.
pub struct Startup {
    /// Shown once the window is up (e.g. "no camera: showing the demo clip").
    pub notices: Vec<String>,
    /// The saved source when this run uses another (a missing camera); saved back unless the user picks
    /// a source.
    pub saved_source: Option<SourceChoice>,
    pub cameras: Vec<CameraDescription>,
    /// Whether the settings file had content, to tell a corrupt file from a first run.
    pub settings_file_had_content: bool,
    /// Settings given on the command line, applied over the saved ones.
    pub overrides: Vec<Command>,
    pub request: RunRequest,
    pub outcome: Arc<Mutex<RunOutcome>>,
}

pub struct MatteApp {
    settings: AppSettings,
    saved_source: Option<SourceChoice>,
    engine: Option<Engine>,
    screen: Subscription,
    presenter: Option<Presenter>,
    /// The output on screen: what a snapshot saves.
    shown: Option<Arc<Output>>,
    recordings: Recordings,
    /// The virtual camera, while it is on.
    virtual_camera: Option<VirtualCamera>,
    /// The microphone recordings take their sound from, and its meter.
    microphone: super::microphone::Microphone,
    cameras: Vec<CameraDescription>,
    camera_scan: Option<Receiver<Vec<CameraDescription>>>,
    file_dialog: Option<Receiver<(FileTarget, Option<PathBuf>)>>,
    snapshots: SnapshotWriter,
    notices: Vec<String>,
    help_open: bool,
    request: RunRequest,
    screenshot_requested: bool,
    /// `--record` was acted on.
    recording_requested: bool,
    screenshot_done: Arc<Mutex<Option<Result<PathBuf, String>>>>,
    outcome: Arc<Mutex<RunOutcome>>,
    /// The composite error last shown, so each is said once.
    composite_error: Option<String>,
    /// Frames dropped for non-finite alpha, as last told.
    nonfinite_frames: u64,
    frames_drawn: u64,
    longest_frame_ms: f64,
}

impl MatteApp {
    pub fn new(cc: &eframe::CreationContext<'_>, startup: Startup) -> Self {
        let Startup { mut notices, saved_source, cameras, settings_file_had_content, overrides, request, outcome } =
            startup;
        let stored = cc.storage.and_then(|storage| storage.get_string(SETTINGS_KEY));
        let (mut settings, notice) = AppSettings::load(stored.as_deref(), settings_file_had_content);
        notices.extend(notice);
        for command in &overrides {
            settings.apply(command);
        }
        let (settings, saved_source, source_notice) = resolve_source(settings, saved_source, &cameras);
        notices.extend(source_notice);
        let presenter = cc.wgpu_render_state.as_ref().map(Presenter::new);
        if presenter.is_none() {
            notices.push("The window has no wgpu device; the picture cannot be shown".into());
        }
        let ctx = cc.egui_ctx.clone();
        let engine = Engine::start(EngineConfig {
            source: SourceInput::Live(settings.source.clone()),
            model: ModelInput::Load(settings.model.clone()),
            temporal: settings.temporal,
            composite: settings.composite.clone(),
            compositor: compositor_setup(cc, request.compositor),
            plate: Some(PlateSetup {
                settings: settings.plate,
                dir: request.plates_dir.clone().unwrap_or_else(crate::engine::plate::default_plates_dir),
            }),
            writer: None,
            max_frames: None,
            notify: Arc::new(move || ctx.request_repaint()),
            hold_rate: None,
        });
        let screen = engine.subscribe_screen();
        let microphone = super::microphone::Microphone::start(&settings.audio);
        let virtual_camera =
            request.virtual_camera.then(|| VirtualCamera::start(engine.tap(), settings.camera.options()));
        Self {
            settings,
            saved_source,
            engine: Some(engine),
            screen,
            presenter,
            shown: None,
            recordings: Recordings::default(),
            virtual_camera,
            microphone,
            cameras,
            camera_scan: None,
            file_dialog: None,
            snapshots: SnapshotWriter::new(),
            notices,
            help_open: false,
            request,
            screenshot_requested: false,
            recording_requested: false,
            screenshot_done: Arc::default(),
            outcome,
            composite_error: None,
            nonfinite_frames: 0,
            frames_drawn: 0,
            longest_frame_ms: 0.0,
        }
    }

    fn engine(&self) -> &Engine {
        self.engine.as_ref().expect("the engine runs until the window closes")
    }

    fn engine_mut(&mut self) -> &mut Engine {
        self.engine.as_mut().expect("the engine runs until the window closes")
    }

    /// Puts the newest picture on screen, if a new one came.
    fn present_latest(&mut self) {
        // A scripted run's screenshot shows the frame its snapshot saved: the picture holds until it is taken.
        if self.screenshot_requested {
            return;
        }
        let Some(output) = self.screen.take() else { return };
        let Some(presenter) = &mut self.presenter else { return };
        presenter.present(&output);
        self.engine().record_shown(&output);
        self.shown = Some(output);
    }

    fn notice(&mut self, text: String) {
        tracing::warn!("{text}");
        if !self.notices.contains(&text) {
            self.notices.push(text);
        }
    }

    /// Answers from the helper threads: camera scan, file dialog, snapshots, recordings; and a picture
    /// setting the engine refused.
    fn poll_helpers(&mut self, status: &crate::engine::EngineStatus, commands: &mut Vec<Command>) {
        if let Some(scan) = &self.camera_scan
            && let Ok(cameras) = scan.try_recv()
        {
            self.cameras = cameras;
            self.camera_scan = None;
        }
        if let Some(dialog) = &self.file_dialog
            && let Ok((target, picked)) = dialog.try_recv()
        {
            self.file_dialog = None;
            if let Some(path) = picked {
                commands.push(target.command(path));
            }
        }
        for event in self.recordings.poll() {
            match event {
                RecordingEvent::Started => {}
                RecordingEvent::NotStarted(err) => self.notice(format!("Could not start recording: {err}")),
                RecordingEvent::Finished(report) => self.notice(recording_notice(&report)),
            }
        }
        while let Some(result) = self.snapshots.poll() {
            match result {
                Ok(files) => {
                    if self.request.snapshot {
                        self.outcome.lock().expect("outcome lock").snapshot = Some(files.composite.clone());
                    }
                    self.notice(format!(
                        "Saved {} and {}",
                        crate::paths::display(&files.composite),
                        crate::paths::display(&files.cutout)
                    ))
                }
                Err(err) => self.notice(format!("Snapshot failed: {err}")),
            }
        }
        if status.nonfinite_frames != self.nonfinite_frames {
            self.nonfinite_frames = status.nonfinite_frames;
            if let Some(notice) = &status.nonfinite_notice {
                self.notice(notice.clone());
            }
        }
        if status.composite_error != self.composite_error {
            self.composite_error = status.composite_error.clone();
            if let Some(error) = &status.composite_error {
                // The engine kept the picture it had: so do the settings.
                self.settings.composite = status.composite.clone();
                self.notice(error.clone());
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match &command {
            Command::SetSource(source) => {
                self.engine().set_source(source.clone());
                self.saved_source = None;
            }
            Command::SetModel(model) => self.engine_mut().set_model(model.clone()),
            Command::SetTemporal(mode) => self.engine().set_temporal(*mode),
            Command::SetComposite(composite) => self.engine().set_composite(composite.clone()),
            Command::SetBackground(background) => {
                let composite = CompositeSettings { background: background.clone(), ..self.settings.composite.clone() };
                self.engine().set_composite(composite);
            }
            Command::RefreshCameras => self.scan_cameras(),
            Command::SetAudio(audio) => self.microphone.apply(audio),
            Command::RefreshAudioInputs => self.microphone.scan(),
            Command::PickFile(target) => self.open_file_dialog(*target),
            Command::Snapshot => self.snapshot(),
            Command::ToggleRecording => self.toggle_recording(),
            Command::ToggleHelp => self.help_open = !self.help_open,
            Command::DismissNotice(i) => {
                if *i < self.notices.len() {
                    self.notices.remove(*i);
                }
            }
            Command::CapturePlate => self.engine().request_plate(PlateRequest::Capture),
            Command::CancelPlate => self.engine().request_plate(PlateRequest::Cancel),
            Command::ClearPlate => self.engine().request_plate(PlateRequest::Clear),
            Command::SetPlate(plate) => self.engine().set_plate_settings(*plate),
            Command::ToggleCamera => match self.virtual_camera.take() {
                Some(camera) => stop_in_background(camera),
                None => {
                    self.virtual_camera =
                        Some(VirtualCamera::start(self.engine().tap(), self.settings.camera.options()))
                }
            },
            Command::SetCamera(camera) => {
                if let Some(running) = self.virtual_camera.take() {
                    stop_in_background(running);
                    self.virtual_camera = Some(VirtualCamera::start(self.engine().tap(), camera.options()));
                }
            }
            Command::ToggleStats
            | Command::SetSnapshotDir(_)
            | Command::SetRecordingDir(_)
            | Command::SetRecording(_)
            | Command::SetRecordingFormat(_) => {}
        }
        self.settings.apply(&command);
    }

    /// Starts a recording of what is on screen into a new file named by the time, or stops the running one
    /// (its files are finalised in the background). ffmpeg starts on a thread of its own.
    fn toggle_recording(&mut self) {
        if self.recordings.is_recording() {
            self.recordings.stop();
            return;
        }
        let status = self.engine().status();
        let (true, Some(info)) = (status.is_ready(), &status.source_info) else {
            self.notice("Nothing to record yet: wait until the picture shows".into());
            return;
        };
        let recording = &self.settings.recording;
        let path = crate::sink::partial::free_name(
            &recording.dir,
            &format!("mattecam-{}", crate::paths::utc_stamp()),
            recording.format.extension(),
        );
        let options = RecordOptions {
            output: OutputSpec {
                path,
                format: recording.format,
                crf: recording.crf,
                with_source: recording.with_source,
                mirror: self.settings.composite.mirror,
                overwrite: false,
            },
            width: info.width,
            height: info.height,
            fps: info.fps,
            clock: Clock::Capture,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            queue_bytes: u64::from(recording.queue_mib.clamp(1, 1 << 20)) << 20,
            model: status.model.kind.title().to_string(),
            provider: status.provider.as_ref().map(ToString::to_string).unwrap_or_default(),
            source: info.name.clone(),
            compositor: status.compositor.clone(),
            started_at: None,
            gate: None,
            audio: match self.settings.audio.input {
                crate::audio::AudioChoice::None => None,
                _ => self.microphone.input(),
            },
        };
        let engine = self.engine.as_ref().expect("the engine runs until the window closes");
        if let Err(err) = self.recordings.start(engine, options) {
            self.notice(format!("Could not start recording: {err}"));
        }
    }

    /// `--record`: once, as soon as the picture shows.
    fn start_requested_recording(&mut self, stats: &StatsView) {
        if self.request.record && !self.recording_requested && stats.frames_shown > 0 {
            self.recording_requested = true;
            self.toggle_recording();
        }
    }

    fn scan_cameras(&mut self) {
        if self.camera_scan.is_some() {
            return;
        }
        let (tx, rx) = bounded(1);
        let spawned = std::thread::Builder::new().name("camera-scan".into()).spawn(move || {
            let _ = tx.send(camera::list_cameras());
        });
        match spawned {
            Ok(_) => self.camera_scan = Some(rx),
            Err(err) => self.notice(format!("Could not look for cameras: {err}")),
        }
    }

    fn open_file_dialog(&mut self, target: FileTarget) {
        if self.file_dialog.is_some() {
            return;
        }
        let (tx, rx) = bounded(1);
        let spawned = std::thread::Builder::new().name("file-dialog".into()).spawn(move || {
            let dialog = rfd::FileDialog::new();
            let picked = match target {
                FileTarget::SourceFile => dialog
                    .add_filter("Video or image", &["mp4", "mov", "mkv", "webm", "avi", "png", "jpg", "jpeg"])
                    .pick_file(),
                FileTarget::BackgroundImage => dialog.add_filter("Image", &["png", "jpg", "jpeg"]).pick_file(),
                FileTarget::BackgroundVideo => {
                    dialog.add_filter("Video", &["mp4", "mov", "mkv", "webm", "avi"]).pick_file()
                }
                FileTarget::SnapshotFolder | FileTarget::RecordingFolder => dialog.pick_folder(),
            };
            let _ = tx.send((target, picked));
        });
        match spawned {
            Ok(_) => self.file_dialog = Some(rx),
            Err(err) => self.notice(format!("Could not open a file dialog: {err}")),
        }
    }

    /// Saves the output on screen, exactly: the same shared frame, on the snapshot thread.
    fn snapshot(&mut self) {
        let Some(shown) = &self.shown else {
            self.notice("Nothing to snapshot yet: no frame has been shown".into());
            return;
        };
        let job = SnapshotJob { output: Arc::clone(shown), dir: self.settings.snapshot_dir.clone() };
        if let Err(err) = self.snapshots.request(job) {
            self.notice(err.to_string());
        }
    }

    /// `--drag-settings`: what dragging the edge threshold and the plate frame count sends, every frame.
    fn drag_settings(&self, commands: &mut Vec<Command>) {
        if !self.request.drag_settings {
            return;
        }
        let step = (self.frames_drawn % 20) as f32 / 20.0;
        let mut composite = self.settings.composite.clone();
        composite.edges.threshold = 0.5 + 0.2 * step;
        commands.push(Command::SetComposite(composite));
        let mut plate = self.settings.plate;
        plate.frames = 10 + (self.frames_drawn % 50) as usize;
        commands.push(Command::SetPlate(plate));
    }

    /// `--frames N [--screenshot PATH]`: after N frames, screenshot (if asked) and close.
    fn drive_scripted_run(&mut self, ctx: &egui::Context) {
        let Some(frames) = self.request.frames else {
            return;
        };
        let status = self.engine().status();
        let failure = status.failure();
        let stats = self.engine().stats_view(Some(&self.screen));
        let shown = stats.frames_shown;
        {
            let mut outcome = self.outcome.lock().expect("outcome lock");
            outcome.stats = stats;
            outcome.compositor = status.compositor.clone();
            outcome.longest_frame_ms = self.longest_frame_ms;
            outcome.model = match &status.provider {
                Some(provider) => format!("{} on {provider}", status.model.kind.title()),
                None => status.model.kind.title().to_string(),
            };
            if let Some(reason) = failure {
                outcome.error = Some(reason);
                ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                return;
            }
        }
        if shown < frames {
            return;
        }
        let Some(path) = self.request.screenshot.clone() else {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        };
        if !self.screenshot_requested {
            self.screenshot_requested = true;
            if self.request.snapshot {
                self.snapshot();
            }
            let done = Arc::clone(&self.screenshot_done);
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let rgba: Vec<u8> = image.pixels.iter().flat_map(|p| p.to_srgba_unmultiplied()).collect();
                let [w, h] = image.size;
                let saved = crate::imageio::write_png(&path, w as u32, h as u32, 4, &rgba)
                    .map(|()| path.clone())
                    .map_err(|err| err.to_string());
                *done.lock().expect("screenshot lock") = Some(saved);
                repaint.request_repaint();
            });
        }
        let snapshot_pending = self.request.snapshot && self.outcome.lock().expect("outcome lock").snapshot.is_none();
        if snapshot_pending {
            return;
        }
        if let Some(saved) = self.screenshot_done.lock().expect("screenshot lock").take() {
            let mut outcome = self.outcome.lock().expect("outcome lock");
            match saved {
                Ok(path) => outcome.screenshot = Some(path),
                Err(err) => outcome.error = Some(format!("screenshot: {err}")),
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

/// Composites on the window's GPU when it is a hardware one (or when `gpu` is asked for), else on the CPU.
fn compositor_setup(cc: &eframe::CreationContext<'_>, kind: CompositorKind) -> CompositorSetup {
    let Some(render_state) = cc.wgpu_render_state.as_ref() else {
        return CompositorSetup::Kind(CompositorKind::Cpu);
    };
    let info = render_state.adapter.get_info();
    let hardware = info.device_type != eframe::egui_wgpu::wgpu::DeviceType::Cpu;
    match kind {
        CompositorKind::Gpu => {}
        CompositorKind::Auto if hardware => {}
        CompositorKind::Auto => {
            tracing::info!("compositing on the CPU: the window's adapter {} is a software rasteriser", info.name);
            return CompositorSetup::Kind(CompositorKind::Cpu);
        }
        CompositorKind::Cpu => return CompositorSetup::Kind(CompositorKind::Cpu),
    }
    let timestamps = render_state.device.features().contains(eframe::egui_wgpu::wgpu::Features::TIMESTAMP_QUERY);
    let ctx = GpuContext::with_device(render_state.device.clone(), render_state.queue.clone(), &info, timestamps);
    CompositorSetup::Device(ctx)
}

/// One line about a finished recording, for a notice.
/// Stops a virtual camera without making the window wait (its thread finishes its last frame first).
fn stop_in_background(camera: VirtualCamera) {
    let spawned = std::thread::Builder::new().name("virtual-camera-stop".into()).spawn(move || drop(camera));
    if let Err(err) = spawned {
        tracing::warn!("stopping the virtual camera: {err}");
    }
}

pub fn recording_notice(report: &RecordingReport) -> String {
    let what = format!(
        "{}: {:.1} s, {} frames, {:.1} MB",
        crate::paths::display(&report.path),
        report.duration_s,
        report.frames_written,
        report.bytes as f64 / 1e6
    );
    let dropped = if report.frames_dropped > 0 {
        format!(" ({} frames dropped: the encoder could not keep up)", report.frames_dropped)
    } else {
        String::new()
    };
    let sound = match &report.audio {
        None => ", no sound".to_string(),
        Some(sound) if sound.device_lost => {
            format!(", sound with {:.1} s of silence where the microphone was lost", sound.silence_s)
        }
        Some(sound) => match &sound.path {
            Some(wav) => format!(", sound in {}", crate::paths::display(wav)),
            None => format!(", sound ({})", sound.codec),
        },
    };
    match &report.error {
        Some(error) => format!("Recording stopped: {error}. {what}{sound}{dropped}"),
        None => format!("Recorded {what}{sound}{dropped}"),
    }
}

/// A saved camera that is not plugged in: this run shows the demo clip instead, and says so.
pub fn resolve_source(
    mut settings: AppSettings,
    saved_source: Option<SourceChoice>,
    cameras: &[CameraDescription],
) -> (AppSettings, Option<SourceChoice>, Option<String>) {
    let SourceChoice::Camera { index, .. } = settings.source else {
        return (settings, saved_source, None);
    };
    if cameras.iter().any(|c| c.index == index) {
        return (settings, saved_source, None);
    }
    let notice = if cameras.is_empty() {
        "No camera found: showing the demo clip. Plug a camera in and press Refresh cameras.".to_string()
    } else {
        format!("Camera {index} was not found: showing the demo clip. Pick a camera under Source.")
    };
    let saved = std::mem::replace(&mut settings.source, SourceChoice::Demo);
    (settings, saved_source.or(Some(saved)), Some(notice))
}

impl eframe::App for MatteApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let started = Instant::now();
        let ctx = ui.ctx().clone();
        let mut commands = shortcut_commands(&ctx, &self.settings);
        let status = self.engine().status();
        self.poll_helpers(&status, &mut commands);
        self.present_latest();
        let stats = self.engine().stats_view(Some(&self.screen));
        let recording = self.recordings.view();
        let camera_report = self.virtual_camera.as_ref().map(VirtualCamera::report);
        let level = self.microphone.poll();
        let audio_status = self.microphone.status();

        egui::Panel::right("controls").resizable(true).default_size(320.0).show(ui, |ui| {
            let view = PanelView {
                status: &status,
                cameras: &self.cameras,
                scanning: self.camera_scan.is_some(),
                recording: &recording,
                camera: camera_report.as_ref(),
                sound: super::sound_panel::SoundView {
                    inputs: &self.microphone.inputs,
                    scanning: self.microphone.scanning(),
                    status: audio_status.as_ref(),
                    level,
                },
            };
            controls_ui(ui, &self.settings, &view, &mut commands);
        });
        if has_banner(&status, &self.notices) {
            egui::Panel::top("banners").show(ui, |ui| {
                banner_ui(ui, &status, &self.notices, &mut commands);
            });
        }
        // No panel fill under the picture: the frame is cleared anyway, and on a software rasteriser every
        // filled pixel costs (the picture covers most of the panel).
        egui::CentralPanel::default().frame(egui::Frame::NONE).show(ui, |ui| {
            let texture = self.presenter.as_ref().and_then(Presenter::texture);
            let picture = viewport_ui(ui, texture, status.is_busy());
            if self.settings.show_stats {
                egui::Area::new(egui::Id::unique("stats-overlay"))
                    .fixed_pos(picture.left_top() + egui::vec2(8.0, 8.0))
                    .show(&ctx, |ui| {
                        overlay_frame(ui).show(ui, |ui| stats_ui(ui, &stats, &status));
                    });
            }
            if let RecordingView::Running(recorder) = &recording {
                egui::Area::new(egui::Id::unique("recording-badge"))
                    .pivot(egui::Align2::RIGHT_TOP)
                    .fixed_pos(picture.right_top() + egui::vec2(-8.0, 8.0))
                    .show(&ctx, |ui| {
                        overlay_frame(ui).show(ui, |ui| recording_badge_ui(ui, recorder));
                    });
            }
        });
        let mut help_open = self.help_open;
        egui::Window::new("Shortcuts").open(&mut help_open).resizable(false).show(&ctx, help_ui);
        if help_open != self.help_open {
            commands.push(Command::ToggleHelp);
        }
        self.drag_settings(&mut commands);
        for command in commands {
            self.apply(command);
        }
        self.start_requested_recording(&stats);
        // The first frame sets up fonts and the GPU's pipelines; after it, the app's own code must stay short.
        if self.frames_drawn > 0 {
            self.longest_frame_ms = self.longest_frame_ms.max(started.elapsed().as_secs_f64() * 1e3);
        }
        self.frames_drawn += 1;
        self.drive_scripted_run(&ctx);
        // Countdowns in the banners and the stats tick even when no frame arrives.
        ctx.request_repaint_after(Duration::from_millis(250));
    }

    /// Closing the window closes it at once: the engine and any recording are handed over, to be stopped
    /// and finalised after the window is gone.
    fn on_exit(&mut self) {
        if let Some(camera) = self.virtual_camera.take() {
            stop_in_background(camera);
        }
        let recordings = std::mem::take(&mut self.recordings);
        let mut outcome = self.outcome.lock().expect("outcome lock");
        if let Some(engine) = self.engine.take() {
            outcome.stats = engine.stats_view(Some(&self.screen));
            outcome.left_running = Some((engine, recordings));
        }
    }

    /// The panel's colour: the picture's panel draws no fill of its own.
    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        visuals.panel_fill.to_normalized_gamma_f32()
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let mut saved = self.settings.clone();
        if let Some(source) = &self.saved_source {
            saved.source = source.clone();
        }
        storage.set_string(SETTINGS_KEY, saved.to_json());
    }
}

/// The frame of what floats over the picture: a popup's, without its shadow (a wide soft shadow is many
/// filled pixels, every window frame, and a software rasteriser pays for each).
fn overlay_frame(ui: &egui::Ui) -> egui::Frame {
    egui::Frame::popup(ui.style()).shadow(egui::Shadow::NONE)
}
