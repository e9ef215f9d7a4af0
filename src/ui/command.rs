//! What the panels and shortcuts ask for. The panels only emit these; `app.rs` applies them in one place,
//! to the settings (here, pure, so tests can check it) and to the running session.

use std::path::PathBuf;

use egui::Key;

use crate::audio::AudioSettings;
use crate::composite::background::Background;
use crate::composite::{CompositeSettings, View};
use crate::engine::{ModelChoice, PlateSettings, SourceChoice};
use crate::filter::temporal::TemporalMode;
use crate::settings::{AppSettings, CameraSettings, RecordingSettings};
use crate::sink::Format;

#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    SetSource(SourceChoice),
    /// Look for cameras again.
    RefreshCameras,
    /// Open a file dialog; its answer comes back as another command.
    PickFile(FileTarget),
    SetModel(ModelChoice),
    SetTemporal(TemporalMode),
    SetComposite(CompositeSettings),
    /// Only the background; the other composite settings stay.
    SetBackground(Background),
    SetSnapshotDir(PathBuf),
    SetRecordingDir(PathBuf),
    /// Save the composite and the RGBA cutout as PNGs.
    Snapshot,
    /// Start recording, or stop the recording that runs.
    ToggleRecording,
    SetRecording(RecordingSettings),
    SetRecordingFormat(Format),
    ToggleStats,
    ToggleHelp,
    DismissNotice(usize),
    /// Start the plate countdown (or stop a capture that runs).
    CapturePlate,
    CancelPlate,
    ClearPlate,
    SetPlate(PlateSettings),
    /// Turn the virtual camera on or off.
    ToggleCamera,
    /// The virtual camera's output, size and mirroring (a running camera starts again with them).
    SetCamera(CameraSettings),
    /// The microphone, its mute and gain.
    SetAudio(AudioSettings),
    /// Look for microphones again.
    RefreshAudioInputs,
}

/// What a file dialog is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileTarget {
    SourceFile,
    BackgroundImage,
    BackgroundVideo,
    SnapshotFolder,
    RecordingFolder,
}

impl FileTarget {
    /// The command a picked path becomes.
    pub fn command(self, path: PathBuf) -> Command {
        match self {
            Self::SourceFile => Command::SetSource(SourceChoice::from_file(path)),
            Self::BackgroundImage => Command::SetBackground(Background::Image(path)),
            Self::BackgroundVideo => Command::SetBackground(Background::Video(path)),
            Self::SnapshotFolder => Command::SetSnapshotDir(path),
            Self::RecordingFolder => Command::SetRecordingDir(path),
        }
    }
}

/// Keyboard shortcuts, as the help panel and the README list them.
pub const SHORTCUTS: [(Key, &str); 7] = [
    (Key::S, "Snapshot: composite and RGBA cutout PNGs"),
    (Key::R, "Start / stop recording"),
    (Key::M, "Mirror on/off"),
    (Key::C, "Virtual camera on/off"),
    (Key::V, "Split view: original | alpha | composite"),
    (Key::I, "Stats overlay on/off"),
    (Key::H, "This help"),
];

/// The command a shortcut key stands for.
pub fn shortcut_command(key: Key, settings: &AppSettings) -> Option<Command> {
    let composite = &settings.composite;
    Some(match key {
        Key::S => Command::Snapshot,
        Key::R => Command::ToggleRecording,
        Key::M => Command::SetComposite(CompositeSettings { mirror: !composite.mirror, ..composite.clone() }),
        Key::V => Command::SetComposite(CompositeSettings {
            view: if composite.view == View::Split { View::Composite } else { View::Split },
            ..composite.clone()
        }),
        Key::I => Command::ToggleStats,
        Key::C => Command::ToggleCamera,
        Key::H | Key::F1 => Command::ToggleHelp,
        _ => return None,
    })
}

/// Commands for the shortcut keys pressed this frame, unless a text field has the keyboard.
pub fn shortcut_commands(ctx: &egui::Context, settings: &AppSettings) -> Vec<Command> {
    if ctx.egui_wants_keyboard_input() {
        return Vec::new();
    }
    ctx.input(|input| {
        input
            .events
            .iter()
            .filter_map(|event| match event {
                egui::Event::Key { key, pressed: true, repeat: false, modifiers, .. } if modifiers.is_none() => {
                    shortcut_command(*key, settings)
                }
                _ => None,
            })
            .collect()
    })
}

impl AppSettings {
    /// Applies what a command changes in the settings; returns whether anything changed.
    pub fn apply(&mut self, command: &Command) -> bool {
        let before = self.clone();
        match command {
            Command::SetSource(source) => self.source = source.clone(),
            Command::SetModel(model) => self.model = model.clone(),
            Command::SetTemporal(mode) => self.temporal = *mode,
            Command::SetComposite(composite) => {
                self.remember(&composite.background);
                self.composite = composite.clone();
            }
            Command::SetBackground(background) => {
                self.remember(background);
                self.composite.background = background.clone();
            }
            Command::SetSnapshotDir(dir) => self.snapshot_dir = dir.clone(),
            Command::SetRecordingDir(dir) => self.recording.dir = dir.clone(),
            Command::SetRecording(recording) => self.recording = recording.clone(),
            Command::SetRecordingFormat(format) => self.recording.format = *format,
            Command::ToggleStats => self.show_stats = !self.show_stats,
            Command::SetPlate(plate) => self.plate = *plate,
            Command::SetCamera(camera) => self.camera = camera.clone(),
            Command::SetAudio(audio) => self.audio = audio.clone(),
            Command::CapturePlate | Command::CancelPlate | Command::ClearPlate => {}
            Command::RefreshCameras
            | Command::PickFile(_)
            | Command::Snapshot
            | Command::ToggleRecording
            | Command::ToggleHelp
            | Command::ToggleCamera
            | Command::RefreshAudioInputs
            | Command::DismissNotice(_) => {}
        }
        *self != before
    }

    fn remember(&mut self, background: &Background) {
        let r = &mut self.remembered;
        match background {
            Background::Blur { radius_px } => r.blur_radius_px = *radius_px,
            Background::Color(rgb) => r.colour = *rgb,
            Background::Image(path) => r.image = Some(path.clone()),
            Background::Video(path) => r.video = Some(path.clone()),
            Background::Transparent { premultiplied } => r.premultiplied = *premultiplied,
        }
    }
}
