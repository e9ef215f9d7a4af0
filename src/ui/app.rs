//! The eframe app: takes the newest matted frame, composites it on the GPU, draws the panels and applies
//! the commands they emit, in that order, once per window frame.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crossbeam_channel::{Receiver, bounded};

use super::command::{Command, FileTarget, shortcut_commands};
use super::controls::{PanelView, RecordingView, banner_ui, controls_ui, has_banner, recording_badge_ui};
use super::stats_ui::{help_ui, stats_ui};
use super::viewport::{Presenter, viewport_ui};
use crate::composite::{CompositeSettings, CompositorKind};
use crate::live::snapshot::{SnapshotJob, SnapshotWriter};
use crate::live::{LiveConfig, LiveFrame, LiveSession, ModelState, SourceChoice, SourceState};
use crate::record::{Clock, DEFAULT_QUEUE_FRAMES, RecordOptions, Recorder, RecordingReport};
use crate::settings::{AppSettings, SETTINGS_KEY};
use crate::sink::{Format, OutputSpec};
use crate::source::camera::{self, CameraDescription};

/// What the command line asks of one window run.
#[derive(Clone, Debug, Default)]
pub struct RunRequest {
    /// Close after this many frames have been shown.
    pub frames: Option<u64>,
    /// Save a screenshot of the window there after `frames` frames, then close.
    pub screenshot: Option<PathBuf>,
    /// Start recording once the picture shows.
    pub record: bool,
}

/// How a run ended, for the command line's exit code.
#[derive(Clone, Debug, Default)]
pub struct RunOutcome {
    /// The session's figures when the run ended.
    pub stats: crate::live::StatsView,
    /// "RVM on CPU", when the model ran.
    pub model: String,
    pub screenshot: Option<PathBuf>,
    /// Why a `--frames` run could not finish.
    pub error: Option<String>,
    /// The recordings finished when the window closed.
    pub recordings: Vec<RecordingReport>,
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
    session: LiveSession,
    presenter: Option<Presenter>,
    cameras: Vec<CameraDescription>,
    camera_scan: Option<Receiver<Vec<CameraDescription>>>,
    file_dialog: Option<Receiver<(FileTarget, Option<PathBuf>)>>,
    snapshots: SnapshotWriter,
    /// A stopped recording whose files are still being finalised.
    finishing: Option<Recorder>,
    /// The format of the running recording.
    recording_format: Option<Format>,
    /// The frame on screen, for snapshots.
    shown: Option<LiveFrame>,
    notices: Vec<String>,
    help_open: bool,
    request: RunRequest,
    screenshot_requested: bool,
    /// `--record` was acted on.
    recording_requested: bool,
    screenshot_done: Arc<Mutex<Option<Result<PathBuf, String>>>>,
    outcome: Arc<Mutex<RunOutcome>>,
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

        let presenter = match cc.wgpu_render_state.as_ref() {
            Some(render_state) => match Presenter::new(render_state, settings.composite.clone()) {
                Ok(presenter) => Some(presenter),
                Err(err) => {
                    notices.push(format!("{err}; using the default background"));
                    Presenter::new(render_state, CompositeSettings::default())
                        .map_err(|e| notices.push(e.to_string()))
                        .ok()
                }
            },
            None => {
                notices.push("The window has no wgpu device; the picture cannot be shown".into());
                None
            }
        };
        let mut settings = settings;
        if let Some(presenter) = &presenter {
            settings.composite = presenter.settings().clone();
        }
        let ctx = cc.egui_ctx.clone();
        let session = LiveSession::start(LiveConfig {
            source: settings.source.clone(),
            model: settings.model.clone(),
            temporal: settings.temporal,
            plate: settings.plate,
            notify: Arc::new(move || ctx.request_repaint()),
        });
        Self {
            settings,
            saved_source,
            session,
            presenter,
            cameras,
            camera_scan: None,
            file_dialog: None,
            snapshots: SnapshotWriter::new(),
            finishing: None,
            recording_format: None,
            shown: None,
            notices,
            help_open: false,
            request,
            screenshot_requested: false,
            recording_requested: false,
            screenshot_done: Arc::default(),
            outcome,
        }
    }

    /// Composites the newest matted frame, if a new one came.
    fn present_latest(&mut self) {
        let Some(live) = self.session.take_latest() else {
            return;
        };
        let Some(presenter) = &mut self.presenter else {
            self.session.recycle(live);
            return;
        };
        match presenter.present(&live) {
            Ok(composite_ms) => {
                self.session.record_presented(&live.frame, composite_ms);
                if let Some(old) = self.shown.replace(live) {
                    self.session.recycle(old);
                }
            }
            Err(err) => {
                self.notice(format!("Compositing failed: {err}"));
                self.session.recycle(live);
            }
        }
    }

    fn notice(&mut self, text: String) {
        tracing::warn!("{text}");
        if !self.notices.contains(&text) {
            self.notices.push(text);
        }
    }

    /// Answers from the helper threads: camera scan, file dialog, snapshots.
    fn poll_helpers(&mut self, commands: &mut Vec<Command>) {
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
        if self.session.recording_status().is_some_and(|status| status.failure.is_some())
            && let Some(recorder) = self.session.stop_recording()
        {
            self.finishing = Some(recorder);
            self.recording_format = None;
        }
        if let Some(report) = self.finishing.as_mut().and_then(Recorder::try_report) {
            self.finishing = None;
            self.notice(recording_notice(&report));
        }
        while let Some(result) = self.snapshots.poll() {
            match result {
                Ok(files) => self.notice(format!(
                    "Saved {} and {}",
                    crate::paths::display(&files.composite),
                    crate::paths::display(&files.cutout)
                )),
                Err(err) => self.notice(format!("Snapshot failed: {err}")),
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match &command {
            Command::SetSource(source) => {
                self.session.set_source(source.clone());
                self.saved_source = None;
            }
            Command::SetModel(model) => self.session.set_model(model.clone()),
            Command::SetTemporal(mode) => self.session.set_temporal(*mode),
            Command::SetComposite(composite) => {
                if let Err(err) = self.set_composite(composite.clone()) {
                    self.notice(err);
                    return;
                }
            }
            Command::SetBackground(background) => {
                let composite = CompositeSettings { background: background.clone(), ..self.settings.composite.clone() };
                if let Err(err) = self.set_composite(composite) {
                    self.notice(err);
                    return;
                }
            }
            Command::RefreshCameras => self.scan_cameras(),
            Command::PickFile(target) => self.open_file_dialog(*target),
            Command::Snapshot => self.snapshot(),
            Command::ToggleRecording => self.toggle_recording(),
            Command::ToggleHelp => self.help_open = !self.help_open,
            Command::DismissNotice(i) => {
                if *i < self.notices.len() {
                    self.notices.remove(*i);
                }
            }
            Command::CapturePlate => self.session.capture_plate(),
            Command::CancelPlate => self.session.cancel_plate(),
            Command::ClearPlate => self.session.clear_plate(),
            Command::SetPlate(plate) => self.session.set_plate_settings(*plate),
            Command::ToggleStats
            | Command::SetSnapshotDir(_)
            | Command::SetRecordingDir(_)
            | Command::SetRecording(_)
            | Command::SetRecordingFormat(_) => {}
        }
        self.settings.apply(&command);
    }

    fn set_composite(&mut self, composite: CompositeSettings) -> Result<(), String> {
        if let Some(presenter) = &mut self.presenter {
            presenter.set_settings(composite.clone()).map_err(|err| err.to_string())?;
        }
        if let Some(format) = self.recording_format {
            self.session.set_recording_settings(CompositeSettings {
                background: format.recorded_background(&composite.background),
                ..composite
            });
        }
        Ok(())
    }

    /// The window's picture as `format` records it.
    fn recorded_settings(&self, format: Format) -> CompositeSettings {
        let shown = &self.settings.composite;
        CompositeSettings { background: format.recorded_background(&shown.background), ..shown.clone() }
    }

    /// Starts a recording of what is on screen into a new file named by the time, or stops the running one
    /// (its files are finalised in the background).
    fn toggle_recording(&mut self) {
        if let Some(recorder) = self.session.stop_recording() {
            self.finishing = Some(recorder);
            self.recording_format = None;
            return;
        }
        if self.finishing.is_some() {
            self.notice("The last recording is still being finished; try again in a moment".into());
            return;
        }
        let status = self.session.status();
        let (Some(info), ModelState::Ready) = (&status.source_info, &status.model_state) else {
            self.notice("Nothing to record yet: wait until the picture shows".into());
            return;
        };
        let recording = &self.settings.recording;
        let name = format!("mattecam-{}", crate::paths::utc_stamp());
        let path = match recording.format.extension() {
            Some(ext) => recording.dir.join(format!("{name}.{ext}")),
            None => recording.dir.join(name),
        };
        let options = RecordOptions {
            output: OutputSpec {
                path,
                format: recording.format,
                crf: recording.crf,
                with_source: recording.with_source,
                mirror: self.settings.composite.mirror,
            },
            width: info.width,
            height: info.height,
            fps: info.fps,
            clock: Clock::Capture,
            settings: self.recorded_settings(recording.format),
            compositor: CompositorKind::Auto,
            queue_frames: DEFAULT_QUEUE_FRAMES,
            model: status.model.kind.title().to_string(),
            provider: status.provider.as_ref().map(ToString::to_string).unwrap_or_default(),
            source: info.name.clone(),
            encode_delay: Duration::ZERO,
        };
        let format = recording.format;
        match self.session.start_recording(options) {
            Ok(()) => self.recording_format = Some(format),
            Err(err) => self.notice(format!("Could not start recording: {err}")),
        }
    }

    /// `--record`: once, as soon as the picture shows.
    fn start_requested_recording(&mut self, stats: &crate::live::StatsView) {
        if self.request.record && !self.recording_requested && stats.frames_presented > 0 {
            self.recording_requested = true;
            self.toggle_recording();
        }
    }

    /// What the record panel shows.
    fn recording_view(&self) -> RecordingView {
        match self.session.recording_status() {
            Some(status) => RecordingView::Running(status),
            None => match &self.finishing {
                Some(recorder) => RecordingView::Finishing(recorder.status()),
                None => RecordingView::Idle,
            },
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

    fn snapshot(&mut self) {
        let Some(shown) = &self.shown else {
            self.notice("Nothing to snapshot yet: no frame has been shown".into());
            return;
        };
        let job = SnapshotJob {
            frame: shown.frame.clone(),
            matte: shown.matte.clone(),
            settings: self.settings.composite.clone(),
            dir: self.settings.snapshot_dir.clone(),
        };
        if let Err(err) = self.snapshots.request(job) {
            self.notice(err.to_string());
        }
    }

    /// `--frames N [--screenshot PATH]`: after N frames, screenshot (if asked) and close.
    fn drive_scripted_run(&mut self, ctx: &egui::Context) {
        let Some(frames) = self.request.frames else {
            return;
        };
        let status = self.session.status();
        let failure = match (&status.source_state, &status.model_state) {
            (SourceState::Failed(reason), _) => Some(format!("source {}: {reason}", status.source)),
            (_, ModelState::Failed(reason)) => Some(format!("model {}: {reason}", status.model.kind.title())),
            _ => None,
        };
        let mut outcome = self.outcome.lock().expect("outcome lock");
        outcome.stats = self.session.stats_view();
        let presented = outcome.stats.frames_presented;
        outcome.model = match &status.provider {
            Some(provider) => format!("{} on {provider}", status.model.kind.title()),
            None => status.model.kind.title().to_string(),
        };
        if let Some(reason) = failure {
            outcome.error = Some(reason);
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        if presented < frames {
            return;
        }
        let Some(path) = self.request.screenshot.clone() else {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        };
        if !self.screenshot_requested {
            self.screenshot_requested = true;
            let done = Arc::clone(&self.screenshot_done);
            let repaint = ctx.clone();
            ctx.request_screenshot(move |image| {
                let rgba: Vec<u8> = image.pixels.iter().flat_map(|p| p.to_srgba_unmultiplied()).collect();
                let [w, h] = image.size;
                let saved = crate::sink::png::write_png(&path, w as u32, h as u32, 4, &rgba)
                    .map(|()| path.clone())
                    .map_err(|err| err.to_string());
                *done.lock().expect("screenshot lock") = Some(saved);
                repaint.request_repaint();
            });
        }
        if let Some(saved) = self.screenshot_done.lock().expect("screenshot lock").take() {
            match saved {
                Ok(path) => outcome.screenshot = Some(path),
                Err(err) => outcome.error = Some(format!("screenshot: {err}")),
            }
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
        }
    }
}

/// One line about a finished recording, for a notice.
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
    match &report.error {
        Some(error) => format!("Recording stopped: {error}. {what}{dropped}"),
        None => format!("Recorded {what}{dropped}"),
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
        let ctx = ui.ctx().clone();
        let mut commands = shortcut_commands(&ctx, &self.settings);
        self.poll_helpers(&mut commands);
        self.present_latest();
        let status = self.session.status();
        let stats = self.session.stats_view();
        let recording = self.recording_view();

        egui::Panel::right("controls").resizable(true).default_size(320.0).show(ui, |ui| {
            let view = PanelView {
                status: &status,
                cameras: &self.cameras,
                scanning: self.camera_scan.is_some(),
                recording: &recording,
            };
            controls_ui(ui, &self.settings, &view, &mut commands);
        });
        if has_banner(&status, &self.notices) {
            egui::Panel::top("banners").show(ui, |ui| {
                banner_ui(ui, &status, &self.notices, &mut commands);
            });
        }
        egui::CentralPanel::default().show(ui, |ui| {
            let texture = self.presenter.as_ref().and_then(Presenter::texture);
            let picture = viewport_ui(ui, texture, status.is_busy());
            if self.settings.show_stats {
                let provider = status.provider.as_ref().map_or_else(|| "loading".to_string(), |p| p.to_string());
                egui::Area::new(egui::Id::unique("stats-overlay"))
                    .fixed_pos(picture.left_top() + egui::vec2(8.0, 8.0))
                    .show(&ctx, |ui| {
                        egui::Frame::popup(ui.style()).show(ui, |ui| stats_ui(ui, &stats, &provider));
                    });
            }
            if let RecordingView::Running(recorder) = &recording {
                egui::Area::new(egui::Id::unique("recording-badge"))
                    .pivot(egui::Align2::RIGHT_TOP)
                    .fixed_pos(picture.right_top() + egui::vec2(-8.0, 8.0))
                    .show(&ctx, |ui| {
                        egui::Frame::popup(ui.style()).show(ui, |ui| recording_badge_ui(ui, recorder));
                    });
            }
        });
        let mut help_open = self.help_open;
        egui::Window::new("Shortcuts").open(&mut help_open).resizable(false).show(&ctx, help_ui);
        if help_open != self.help_open {
            commands.push(Command::ToggleHelp);
        }
        for command in commands {
            self.apply(command);
        }
        self.start_requested_recording(&stats);
        self.drive_scripted_run(&ctx);
        // Countdowns in the banners and the stats tick even when no frame arrives.
        ctx.request_repaint_after(Duration::from_millis(250));
    }

    /// Closing the window ends a recording normally: its files are finalised before the app exits.
    fn on_exit(&mut self) {
        let recorders = self.session.stop_recording().into_iter().chain(self.finishing.take());
        let reports: Vec<RecordingReport> = recorders.map(Recorder::stop).collect();
        self.outcome.lock().expect("outcome lock").recordings.extend(reports);
    }

    fn save(&mut self, storage: &mut dyn eframe::Storage) {
        let mut saved = self.settings.clone();
        if let Some(source) = &self.saved_source {
            saved.source = source.clone();
        }
        storage.set_string(SETTINGS_KEY, saved.to_json());
    }
}
