//! The "Sound" section: which microphone recordings take their sound from, its live level, mute and gain
//! trim. Read-only: it emits commands.

use egui::{ComboBox, RichText, Slider, Ui};

use super::command::Command;
use crate::audio::{AudioChoice, AudioSettings, AudioState, AudioStatus, GAIN_RANGE_DB, level_dbfs};

/// The meter's range, in dBFS.
pub const METER_FLOOR_DB: f32 = -60.0;
/// Above this the meter warns: the sound is about to clip.
const HOT_DB: f32 = -3.0;

/// What the section shows besides the settings.
pub struct SoundView<'a> {
    pub inputs: &'a [String],
    pub scanning: bool,
    /// The capture's state; `None` when it is off.
    pub status: Option<&'a AudioStatus>,
    /// Peak level, 0..1 (after gain; 0 when muted).
    pub level: f32,
}

fn choice_label(choice: &AudioChoice) -> String {
    match choice {
        AudioChoice::None => "No sound".into(),
        AudioChoice::Default => "System default".into(),
        AudioChoice::Named(name) => name.clone(),
    }
}

/// The level as the meter labels it.
pub fn meter_text(level: f32) -> String {
    let db = level_dbfs(level);
    if db <= METER_FLOOR_DB { "Level: silent".into() } else { format!("Level: {db:.0} dB") }
}

pub fn sound_ui(ui: &mut Ui, settings: &AudioSettings, view: &SoundView<'_>, commands: &mut Vec<Command>) {
    let mut edited = settings.clone();
    ComboBox::from_label("Microphone").selected_text(choice_label(&settings.input)).width(180.0).show_ui(ui, |ui| {
        for choice in [AudioChoice::None, AudioChoice::Default]
            .into_iter()
            .chain(view.inputs.iter().map(|name| AudioChoice::Named(name.clone())))
        {
            let label = choice_label(&choice);
            ui.selectable_value(&mut edited.input, choice, label);
        }
    });
    if settings.input != AudioChoice::None {
        meter_ui(ui, view.level, settings.muted);
        ui.horizontal(|ui| {
            ui.checkbox(&mut edited.muted, "Mute");
            ui.add(Slider::new(&mut edited.gain_db, GAIN_RANGE_DB).step_by(0.5).suffix(" dB").text("gain"));
        });
    }
    if edited != *settings {
        commands.push(Command::SetAudio(edited));
    }
    if view.scanning {
        ui.spinner();
    } else if ui.button("Refresh microphones").clicked() {
        commands.push(Command::RefreshAudioInputs);
    }
    // Below, not beside: a long reason wraps instead of widening the panel.
    state_ui(ui, view.status);
}

/// What the microphone is doing, and what recordings get meanwhile.
fn state_ui(ui: &mut Ui, status: Option<&AudioStatus>) {
    let warn = ui.visuals().warn_fg_color;
    match status.map(|status| (&status.state, status)) {
        None => {
            ui.label("Recordings have no sound");
        }
        Some((AudioState::Running, status)) => {
            ui.label(RichText::new(format!("{}, {} Hz x{}", status.device, status.rate, status.channels)).small());
        }
        Some((AudioState::Opening, _)) => {
            ui.label("Opening the microphone…");
        }
        Some((AudioState::Stalled, _)) => {
            ui.colored_label(warn, "The microphone sends nothing: recordings get silence until it does");
        }
        Some((AudioState::Lost(reason), _)) => {
            ui.colored_label(
                warn,
                format!("No microphone ({reason}); retrying. Recordings get silence until it is back"),
            );
        }
        Some((AudioState::Off, _)) => {
            ui.label("Recordings have no sound");
        }
    }
}

/// A horizontal peak meter from -60 to 0 dBFS.
fn meter_ui(ui: &mut Ui, level: f32, muted: bool) {
    let db = level_dbfs(level).max(METER_FLOOR_DB);
    let fraction = (db - METER_FLOOR_DB) / -METER_FLOOR_DB;
    let colour = if db > HOT_DB {
        ui.visuals().error_fg_color
    } else if muted {
        ui.visuals().weak_text_color()
    } else {
        egui::Color32::from_rgb(60, 180, 90)
    };
    let text = if muted { "Muted".to_string() } else { meter_text(level) };
    ui.add(egui::ProgressBar::new(fraction).fill(colour).text(text).desired_height(12.0));
}
