//! The side panel: source, model, temporal filter, background, edges, view and snapshot. Each widget
//! edits a copy of the setting and emits a command when the copy changed; nothing here touches the
//! engine.

use egui::{ComboBox, RichText, Slider, Ui};

use super::command::{Command, FileTarget};
use crate::composite::background::Background;
use crate::composite::edges::{EdgeControls, MAX_EDGE_PX};
use crate::composite::{CompositeSettings, Upsample, View};
use crate::engine::{
    CameraMode, EngineStatus, ModelChoice, ModelState, PlatePhase, PlateSettings, SourceChoice, SourceState,
};
use crate::filter::temporal::TemporalMode;
use crate::infer::{ModelKind, Precision, ProviderRequest};
use crate::paths::display;
use crate::record::RecorderStatus;
use crate::record::live::RecordingView;
use crate::settings::{AppSettings, RecordingSettings};
use crate::sink::Format;
use crate::source::camera::CameraDescription;

/// What the panel shows besides the settings.
pub struct PanelView<'a> {
    pub status: &'a EngineStatus,
    pub cameras: &'a [CameraDescription],
    /// A camera scan is running.
    pub scanning: bool,
    pub recording: &'a RecordingView,
    /// The virtual camera, when it is on.
    pub camera: Option<&'a crate::vcam::CameraReport>,
    /// The microphone.
    pub sound: super::sound_panel::SoundView<'a>,
}

pub fn controls_ui(ui: &mut Ui, settings: &AppSettings, view: &PanelView<'_>, commands: &mut Vec<Command>) {
    egui::ScrollArea::vertical().show(ui, |ui| {
        ui.heading("Source");
        source_ui(ui, settings, view, commands);
        ui.separator();
        ui.heading("Model");
        model_ui(ui, settings, view.status, commands);
        ui.separator();
        ui.heading("Clean plate");
        plate_ui(ui, &settings.plate, view.status, commands);
        ui.separator();
        ui.heading("Background");
        background_ui(ui, settings, commands);
        ui.separator();
        ui.heading("Virtual camera");
        super::camera_panel::camera_ui(ui, &settings.camera, view.camera, view.status, commands);
        ui.separator();
        ui.heading("Record");
        record_ui(ui, &settings.recording, view.recording, commands);
        ui.separator();
        ui.heading("Sound");
        super::sound_panel::sound_ui(ui, &settings.audio, &view.sound, commands);
        ui.separator();
        ui.heading("Snapshot");
        snapshot_ui(ui, settings, commands);
        ui.separator();
        ui.heading("Edges");
        edges_ui(ui, &settings.composite, commands);
        ui.separator();
        ui.heading("View");
        view_ui(ui, settings, commands);
    });
}

fn camera_label(camera: &CameraDescription) -> String {
    format!("Camera {}: {}", camera.index, camera.name)
}

pub fn source_ui(ui: &mut Ui, settings: &AppSettings, view: &PanelView<'_>, commands: &mut Vec<Command>) {
    let current = &settings.source;
    let selected = match current {
        SourceChoice::Camera { index, .. } => view
            .cameras
            .iter()
            .find(|c| c.index == *index)
            .map_or_else(|| format!("Camera {index} (not found)"), camera_label),
        SourceChoice::Demo => "Demo clip".into(),
        SourceChoice::Video { .. } => "Video file".into(),
        SourceChoice::Image { .. } => "Image".into(),
        SourceChoice::Synthetic { .. } => "Synthetic".into(),
    };
    ComboBox::from_label("Input").selected_text(selected).width(200.0).show_ui(ui, |ui| {
        for camera in view.cameras {
            let is_current = matches!(current, SourceChoice::Camera { index, .. } if *index == camera.index);
            if ui.selectable_label(is_current, camera_label(camera)).clicked() && !is_current {
                commands.push(Command::SetSource(SourceChoice::Camera { index: camera.index, mode: None }));
            }
        }
        if ui.selectable_label(*current == SourceChoice::Demo, "Demo clip").clicked() && *current != SourceChoice::Demo
        {
            commands.push(Command::SetSource(SourceChoice::Demo));
        }
        if ui.selectable_label(false, "Video or image file…").clicked() {
            commands.push(Command::PickFile(FileTarget::SourceFile));
        }
        let synthetic = SourceChoice::Synthetic { width: 1280, height: 720, fps: 30.0 };
        if ui.selectable_label(matches!(current, SourceChoice::Synthetic { .. }), "Synthetic").clicked()
            && !matches!(current, SourceChoice::Synthetic { .. })
        {
            commands.push(Command::SetSource(synthetic));
        }
    });
    if let SourceChoice::Camera { index, mode } = current
        && let Some(camera) = view.cameras.iter().find(|c| c.index == *index)
        && !camera.modes.is_empty()
    {
        let shown = mode.map_or_else(|| "Highest frame rate".to_string(), |m| m.to_string());
        ComboBox::from_label("Mode").selected_text(shown).show_ui(ui, |ui| {
            if ui.selectable_label(mode.is_none(), "Highest frame rate").clicked() && mode.is_some() {
                commands.push(Command::SetSource(SourceChoice::Camera { index: *index, mode: None }));
            }
            for &(width, height, fps) in &camera.modes {
                let choice = CameraMode { width, height, fps };
                if ui.selectable_label(*mode == Some(choice), choice.to_string()).clicked() && *mode != Some(choice) {
                    commands.push(Command::SetSource(SourceChoice::Camera { index: *index, mode: Some(choice) }));
                }
            }
        });
    }
    if let SourceChoice::Video { path } | SourceChoice::Image { path } = current {
        ui.label(RichText::new(display(path)).small());
    }
    ui.horizontal(|ui| {
        if view.cameras.is_empty() {
            ui.label("No camera found.");
        }
        let refresh = ui.add_enabled(!view.scanning, egui::Button::new("Refresh cameras"));
        if view.scanning {
            ui.spinner();
        }
        if refresh.clicked() {
            commands.push(Command::RefreshCameras);
        }
    });
    if let Some(info) = &view.status.source_info {
        ui.label(RichText::new(format!("{}: {}x{} @ {:.0} fps", info.name, info.width, info.height, info.fps)).small());
    }
}

pub fn model_ui(ui: &mut Ui, settings: &AppSettings, status: &EngineStatus, commands: &mut Vec<Command>) {
    let mut model = settings.model.clone();
    ui.horizontal(|ui| {
        for kind in [ModelKind::Modnet, ModelKind::Rvm] {
            ui.radio_value(&mut model.kind, kind, kind.title());
        }
        ui.radio_value(&mut model.kind, ModelKind::Bgmv2, ModelKind::Bgmv2.title())
            .on_hover_text("Needs a clean plate and weights you download (see `mattecam models`)");
    });
    match model.kind {
        ModelKind::Modnet => {
            ComboBox::from_label("Inference size").selected_text(format!("{} px", model.ref_size)).show_ui(ui, |ui| {
                for size in ModelChoice::REF_SIZES {
                    ui.selectable_value(&mut model.ref_size, size, format!("{size} px"));
                }
            });
        }
        ModelKind::Rvm => {
            let ratio_text = |r: f32| if r == 0.0 { "Auto (512 px)".to_string() } else { format!("{r}") };
            ComboBox::from_label("Downsample ratio").selected_text(ratio_text(model.downsample_ratio)).show_ui(
                ui,
                |ui| {
                    for ratio in ModelChoice::DOWNSAMPLE_RATIOS {
                        ui.selectable_value(&mut model.downsample_ratio, ratio, ratio_text(ratio));
                    }
                },
            );
        }
        // Not offered in the window yet (see the disabled button above).
        ModelKind::Bgmv2 => {}
    }
    ComboBox::from_label("Provider").selected_text(provider_text(model.provider)).show_ui(ui, |ui| {
        for provider in [ProviderRequest::Auto, ProviderRequest::Cpu, ProviderRequest::Cuda] {
            ui.selectable_value(&mut model.provider, provider, provider_text(provider));
        }
    });
    ComboBox::from_label("Precision").selected_text(precision_text(model.precision)).show_ui(ui, |ui| {
        for precision in [Precision::Auto, Precision::Fp32, Precision::Int8] {
            ui.selectable_value(&mut model.precision, precision, precision_text(precision));
        }
    });
    ui.horizontal(|ui| {
        ui.checkbox(&mut model.hold_rate.enabled, "Hold frame rate").on_hover_text(
            "Step the model's work down (RVM's ratio, MODNet's size, its INT8 file, then matting every second frame) while it cannot keep up, and back up when it can",
        );
        if model.hold_rate.enabled {
            let camera = model.hold_rate.target_fps <= 0.0;
            let text = if camera { "Source's rate".to_string() } else { format!("{} fps", model.hold_rate.target_fps) };
            ComboBox::from_label("target").selected_text(text).show_ui(ui, |ui| {
                ui.selectable_value(&mut model.hold_rate.target_fps, 0.0, "Source's rate");
                for fps in HOLD_RATES {
                    ui.selectable_value(&mut model.hold_rate.target_fps, fps, format!("{fps} fps"));
                }
            });
        }
    });
    if model != settings.model {
        commands.push(Command::SetModel(model));
    }
    match &status.model_state {
        ModelState::Loading => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label(format!("Loading {}…", status.model.kind.title()));
            });
        }
        ModelState::Failed(reason) => {
            ui.colored_label(ui.visuals().error_fg_color, format!("Model failed: {reason}"));
        }
        ModelState::Ready => {}
    }
    if let Some(provider) = &status.provider {
        let precision = status.precision.map_or_else(String::new, |p| format!(", {p}"));
        ui.label(format!("Running on: {provider}{precision}"));
    }
    let mut temporal = settings.temporal;
    ui.horizontal(|ui| {
        ui.label("Temporal filter");
        for (mode, label) in [
            (TemporalMode::Off, "Off"),
            (TemporalMode::Ofd, "OFD"),
            (TemporalMode::Ema, "EMA"),
            (TemporalMode::Adaptive, "Adaptive"),
        ] {
            ui.radio_value(&mut temporal, mode, label);
        }
    });
    if temporal != settings.temporal {
        commands.push(Command::SetTemporal(temporal));
    }
}

/// The set rates "Hold frame rate" offers besides the source's own.
const HOLD_RATES: [f32; 4] = [15.0, 24.0, 25.0, 30.0];

fn precision_text(precision: Precision) -> &'static str {
    match precision {
        Precision::Auto => "Auto (INT8 on a CPU)",
        Precision::Fp32 => "FP32",
        Precision::Int8 => "INT8",
    }
}

fn provider_text(provider: ProviderRequest) -> &'static str {
    match provider {
        ProviderRequest::Auto => "Auto (CUDA if available)",
        ProviderRequest::Cpu => "CPU",
        ProviderRequest::Cuda => "CUDA",
    }
}

/// The background modes the radio buttons offer.
#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Blur,
    Colour,
    Image,
    Video,
    Transparent,
}

pub fn background_ui(ui: &mut Ui, settings: &AppSettings, commands: &mut Vec<Command>) {
    let composite = &settings.composite;
    let remembered = &settings.remembered;
    let current = match composite.background {
        Background::Blur { .. } => Mode::Blur,
        Background::Color(_) => Mode::Colour,
        Background::Image(_) => Mode::Image,
        Background::Video(_) => Mode::Video,
        Background::Transparent { .. } => Mode::Transparent,
    };
    let mut mode = current;
    ui.horizontal_wrapped(|ui| {
        for (m, label) in [
            (Mode::Blur, "Blur"),
            (Mode::Colour, "Colour"),
            (Mode::Image, "Image"),
            (Mode::Video, "Video"),
            (Mode::Transparent, "Transparent"),
        ] {
            ui.radio_value(&mut mode, m, label);
        }
    });
    let set = Command::SetBackground;
    if mode != current {
        match mode {
            Mode::Blur => commands.push(set(Background::Blur { radius_px: remembered.blur_radius_px })),
            Mode::Colour => commands.push(set(Background::Color(remembered.colour))),
            Mode::Image => commands.push(match &remembered.image {
                Some(path) => set(Background::Image(path.clone())),
                None => Command::PickFile(FileTarget::BackgroundImage),
            }),
            Mode::Video => commands.push(match &remembered.video {
                Some(path) => set(Background::Video(path.clone())),
                None => Command::PickFile(FileTarget::BackgroundVideo),
            }),
            Mode::Transparent => {
                commands.push(set(Background::Transparent { premultiplied: remembered.premultiplied }))
            }
        }
        return;
    }
    match &composite.background {
        Background::Blur { radius_px } => {
            let mut radius = *radius_px;
            ui.add(Slider::new(&mut radius, 0..=64).text("Strength (px)"));
            if radius != *radius_px {
                commands.push(set(Background::Blur { radius_px: radius }));
            }
        }
        Background::Color(rgb) => {
            let mut colour = *rgb;
            ui.horizontal(|ui| {
                ui.label("Colour");
                ui.color_edit_button_srgb(&mut colour);
            });
            if colour != *rgb {
                commands.push(set(Background::Color(colour)));
            }
        }
        Background::Image(path) | Background::Video(path) => {
            ui.label(RichText::new(display(path)).small());
            let target = if current == Mode::Image { FileTarget::BackgroundImage } else { FileTarget::BackgroundVideo };
            if ui.button("Choose file…").clicked() {
                commands.push(Command::PickFile(target));
            }
        }
        Background::Transparent { premultiplied } => {
            let mut value = *premultiplied;
            ui.checkbox(&mut value, "Premultiplied cutout").on_hover_text("Colours of stills multiplied by alpha");
            if value != *premultiplied {
                commands.push(set(Background::Transparent { premultiplied: value }));
            }
        }
    }
}

pub fn edges_ui(ui: &mut Ui, composite: &CompositeSettings, commands: &mut Vec<Command>) {
    let mut edges: EdgeControls = composite.edges;
    let mut upsample = composite.upsample;
    let max_px = MAX_EDGE_PX as i32;
    ui.add(Slider::new(&mut edges.threshold, 0.0..=1.0).text("Threshold"));
    ui.add(Slider::new(&mut edges.contrast, 1.0..=8.0).text("Contrast"));
    ui.add(Slider::new(&mut edges.shrink_px, -max_px / 4..=max_px / 4).text("Shrink (px)"));
    ui.add(Slider::new(&mut edges.feather_px, 0..=MAX_EDGE_PX / 4).text("Feather (px)"));
    ComboBox::from_label("Alpha upsampling").selected_text(upsample_text(upsample)).show_ui(ui, |ui| {
        for u in [Upsample::Area, Upsample::Bilinear, Upsample::Guided] {
            ui.selectable_value(&mut upsample, u, upsample_text(u));
        }
    });
    if ui.button("Reset edges").clicked() {
        edges = EdgeControls::default();
    }
    if edges != composite.edges || upsample != composite.upsample {
        commands.push(Command::SetComposite(CompositeSettings { edges, upsample, ..composite.clone() }));
    }
}

fn upsample_text(upsample: Upsample) -> &'static str {
    match upsample {
        Upsample::Area => "Area",
        Upsample::Bilinear => "Bilinear",
        Upsample::Guided => "Edge-aware (guided)",
    }
}

pub fn view_ui(ui: &mut Ui, settings: &AppSettings, commands: &mut Vec<Command>) {
    let composite = &settings.composite;
    let mut mirror = composite.mirror;
    let mut split = composite.view == View::Split;
    ui.checkbox(&mut mirror, "Mirror (M)");
    ui.checkbox(&mut split, "Split view: original | alpha | composite (V)");
    if mirror != composite.mirror || split != (composite.view == View::Split) {
        let view = if split { View::Split } else { View::Composite };
        commands.push(Command::SetComposite(CompositeSettings { mirror, view, ..composite.clone() }));
    }
    let mut stats = settings.show_stats;
    ui.checkbox(&mut stats, "Stats overlay (I)");
    if stats != settings.show_stats {
        commands.push(Command::ToggleStats);
    }
    if ui.button("Shortcuts (H)").clicked() {
        commands.push(Command::ToggleHelp);
    }
}

pub fn snapshot_ui(ui: &mut Ui, settings: &AppSettings, commands: &mut Vec<Command>) {
    ui.label(RichText::new(display(&settings.snapshot_dir)).small());
    ui.horizontal(|ui| {
        if ui.button("Take snapshot (S)").clicked() {
            commands.push(Command::Snapshot);
        }
        if ui.button("Folder…").clicked() {
            commands.push(Command::PickFile(FileTarget::SnapshotFolder));
        }
    });
}

pub fn record_ui(ui: &mut Ui, recording: &RecordingSettings, view: &RecordingView, commands: &mut Vec<Command>) {
    let idle = *view == RecordingView::Idle;
    ui.add_enabled_ui(idle, |ui| {
        let mut edited = recording.clone();
        ComboBox::from_label("Format").selected_text(edited.format.label()).width(200.0).show_ui(ui, |ui| {
            for format in Format::ALL {
                ui.selectable_value(&mut edited.format, format, format.label());
            }
        });
        if matches!(edited.format, Format::Mp4 | Format::WebmAlpha | Format::Matte) {
            ui.add(Slider::new(&mut edited.crf, 0..=40).text("quality (CRF, lower is better)"));
        }
        ui.checkbox(&mut edited.with_source, "Also the camera video (NAME.source.mp4)");
        if edited != *recording {
            commands.push(Command::SetRecording(edited));
        }
        ui.horizontal(|ui| {
            ui.label(RichText::new(display(&recording.dir)).small());
            if ui.button("Folder…").clicked() {
                commands.push(Command::PickFile(FileTarget::RecordingFolder));
            }
        });
    });
    let error = ui.visuals().error_fg_color;
    match view {
        RecordingView::Idle => {
            if ui.button("Record (R)").clicked() {
                commands.push(Command::ToggleRecording);
            }
        }
        RecordingView::Running(status) => {
            if ui.button(RichText::new("Stop recording (R)").color(error)).clicked() {
                commands.push(Command::ToggleRecording);
            }
            let seconds = status.elapsed_s;
            ui.colored_label(
                error,
                format!(
                    "REC {:02}:{:04.1}  ·  {:.1} MB  ·  {} frames",
                    (seconds / 60.0).floor(),
                    seconds % 60.0,
                    status.bytes as f64 / 1e6,
                    status.frames_written
                ),
            );
            let behind = status.queue_depth * 2 > status.queue_capacity;
            // The take runs ahead of the file by the model's latency too: only a queue means the encoder lags.
            let lag = if status.queue_depth > 0 {
                format!(" ({:.1} s not yet written)", (status.elapsed_s - status.written_s).max(0.0))
            } else {
                String::new()
            };
            let queue = format!(
                "Encoder queue {}/{}{lag}  ·  dropped {}",
                status.queue_depth, status.queue_capacity, status.frames_dropped
            );
            if behind || status.frames_dropped > 0 {
                ui.colored_label(ui.visuals().warn_fg_color, format!("{queue}: the encoder is falling behind"));
            } else {
                ui.label(queue);
            }
            match (status.audio_s, status.audio_events.last()) {
                (Some(_), Some(event)) => {
                    let text = format!("Sound at {:.1} s: {}", event.at_s, event.what);
                    ui.colored_label(ui.visuals().warn_fg_color, text);
                }
                (Some(seconds), None) => {
                    ui.label(format!("Sound: {seconds:.1} s"));
                }
                (None, _) => {
                    ui.label("No sound");
                }
            }
        }
        RecordingView::Starting => {
            ui.horizontal(|ui| {
                ui.spinner();
                ui.label("Starting the recording…");
            });
        }
        RecordingView::Finishing(status) => {
            ui.horizontal(|ui| {
                ui.spinner();
                if status.queue_depth > 0 {
                    ui.label(format!(
                        "Finishing the recording: {} queued frames ({:.1} s) to encode…",
                        status.queue_depth,
                        (status.elapsed_s - status.written_s).max(0.0)
                    ));
                } else {
                    ui.label("Finishing the recording…");
                }
            });
        }
    }
}

/// Over the picture while recording, so the take is visible whatever the panel shows: a red dot and the
/// elapsed time.
pub fn recording_badge_ui(ui: &mut Ui, status: &RecorderStatus) {
    let red = egui::Color32::from_rgb(220, 40, 40);
    ui.horizontal(|ui| {
        let (dot, _) = ui.allocate_exact_size(egui::vec2(12.0, 12.0), egui::Sense::hover());
        ui.painter().circle_filled(dot.center(), 6.0, red);
        let seconds = status.elapsed_s;
        ui.label(
            RichText::new(format!("REC {:02}:{:02}", (seconds / 60.0).floor(), (seconds % 60.0).floor()))
                .color(red)
                .strong(),
        );
    });
}

/// Problems the user should see at once, over the picture: a lost camera, an unreadable file, a failed
/// model, and notices (each with a dismiss button).
/// Capture, show and clear the clean background plate; its options.
pub fn plate_ui(ui: &mut Ui, plate: &PlateSettings, status: &EngineStatus, commands: &mut Vec<Command>) {
    let state = &status.plate;
    match &state.phase {
        PlatePhase::Idle => {
            ui.horizontal(|ui| {
                let label = if state.plate.is_some() { "Recapture plate" } else { "Capture plate" };
                if ui
                    .button(label)
                    .on_hover_text("Counts down, then takes the median of the frames: step out of the picture")
                    .clicked()
                {
                    commands.push(Command::CapturePlate);
                }
                if state.plate.is_some() && ui.button("Clear").clicked() {
                    commands.push(Command::ClearPlate);
                }
            });
        }
        PlatePhase::Countdown { until } => {
            let secs = until.saturating_duration_since(std::time::Instant::now()).as_secs_f32().ceil();
            ui.horizontal(|ui| {
                ui.strong(format!("Step out of the picture: capturing in {secs:.0} s"));
                if ui.button("Cancel").clicked() {
                    commands.push(Command::CancelPlate);
                }
            });
        }
        PlatePhase::Capturing { taken, of } => {
            ui.add(
                egui::ProgressBar::new(*taken as f32 / (*of).max(1) as f32)
                    .text(format!("Capturing plate {taken}/{of}")),
            );
        }
    }
    match (&state.plate, &state.path) {
        (Some(p), Some(path)) => {
            ui.small(format!("{}x{} plate, {}", p.width, p.height, crate::paths::display(path)));
        }
        (Some(p), None) => {
            ui.small(format!("{}x{} plate (not saved)", p.width, p.height));
        }
        (None, _) => {
            ui.small("No plate for this source and resolution.");
        }
    }
    if let Some(error) = &state.error {
        ui.colored_label(ui.visuals().warn_fg_color, error);
    }
    let mut edited = *plate;
    ui.horizontal(|ui| {
        let countdown = ui.label("Countdown");
        ui.add(egui::DragValue::new(&mut edited.countdown_s).range(0..=10).suffix(" s")).labelled_by(countdown.id);
        let frames = ui.label("Frames");
        ui.add(egui::DragValue::new(&mut edited.frames).range(1..=120)).labelled_by(frames.id);
    });
    ui.checkbox(&mut edited.assist, "Plate assistance (MODNet, RVM)")
        .on_hover_text("Pushes alpha toward 0 where the frame shows the plate");
    ui.checkbox(&mut edited.auto_refresh, "Refresh when nobody is in view for 1 s");
    if edited != *plate {
        commands.push(Command::SetPlate(edited));
    }
}

/// Whether [`banner_ui`] has anything to say (the window gives it a panel only then).
pub fn has_banner(status: &EngineStatus, notices: &[String]) -> bool {
    let plate_idle = status.plate.phase == PlatePhase::Idle;
    !matches!(status.source_state, SourceState::Opening | SourceState::Running | SourceState::Ended)
        || matches!(status.model_state, ModelState::Failed(_))
        || (plate_idle && (status.needs_plate || status.plate.stale))
        || !notices.is_empty()
}

pub fn banner_ui(ui: &mut Ui, status: &EngineStatus, notices: &[String], commands: &mut Vec<Command>) {
    let warn = ui.visuals().warn_fg_color;
    let error = ui.visuals().error_fg_color;
    match &status.source_state {
        SourceState::Lost { reason, retry_at } => {
            let secs = retry_at.saturating_duration_since(std::time::Instant::now()).as_secs_f32().ceil();
            ui.colored_label(warn, format!("{} is not available: {reason}. Retrying in {secs:.0} s…", status.source));
        }
        SourceState::Failed(reason) => {
            ui.colored_label(error, format!("Cannot play {}: {reason}. Pick another source.", status.source));
        }
        SourceState::Opening | SourceState::Running | SourceState::Ended => {}
    }
    if status.needs_plate && status.plate.phase == PlatePhase::Idle {
        ui.horizontal(|ui| {
            ui.colored_label(warn, "BGMv2 needs a clean plate of this scene: the picture is unmatted until then.");
            if ui.button("Capture plate").clicked() {
                commands.push(Command::CapturePlate);
            }
        });
    }
    if status.plate.stale && status.plate.phase == PlatePhase::Idle {
        ui.horizontal(|ui| {
            let changed = status.plate.changed_fraction * 100.0;
            ui.colored_label(warn, format!("The background no longer matches the plate ({changed:.0}% changed: the camera moved or the light changed)."));
            if ui.button("Refresh plate").clicked() {
                commands.push(Command::CapturePlate);
            }
        });
    }
    if let ModelState::Failed(reason) = &status.model_state {
        ui.colored_label(error, format!("{} failed: {reason}", status.model.kind.title()));
    }
    for (i, notice) in notices.iter().enumerate() {
        ui.horizontal(|ui| {
            ui.label(notice);
            if ui.small_button("Dismiss").clicked() {
                commands.push(Command::DismissNotice(i));
            }
        });
    }
}
