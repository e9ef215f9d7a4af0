//! The "Virtual camera" section: on/off, output, size, mirroring, and what the camera is doing. Read-only:
//! it emits commands.

use egui::Ui;

use super::command::Command;
use crate::engine::EngineStatus;
use crate::settings::CameraSettings;
use crate::vcam::{CameraReport, CameraState};

/// Sizes offered besides the source's.
const SIZES: [(u32, u32); 3] = [(1920, 1080), (1280, 720), (640, 480)];

pub fn camera_ui(
    ui: &mut Ui,
    settings: &CameraSettings,
    report: Option<&CameraReport>,
    status: &EngineStatus,
    commands: &mut Vec<Command>,
) {
    let mut on = report.is_some();
    if ui.checkbox(&mut on, "On (C)").changed() {
        commands.push(Command::ToggleCamera);
    }
    let mut changed = settings.clone();
    let outputs = [("pipewire", "PipeWire camera"), ("v4l2", "v4l2loopback device")];
    let current =
        outputs.iter().find(|(o, _)| settings.output.starts_with(o)).map_or(settings.output.as_str(), |o| o.1);
    egui::ComboBox::from_label("Output").selected_text(current).show_ui(ui, |ui| {
        for (output, label) in outputs {
            ui.selectable_value(&mut changed.output, output.to_string(), label);
        }
    });
    let size_label = |size: Option<(u32, u32)>| size.map_or("As the source".to_string(), |(w, h)| format!("{w}x{h}"));
    egui::ComboBox::from_label("Size").selected_text(size_label(settings.size)).show_ui(ui, |ui| {
        ui.selectable_value(&mut changed.size, None, size_label(None));
        for size in SIZES {
            ui.selectable_value(&mut changed.size, Some(size), size_label(Some(size)));
        }
    });
    ui.checkbox(&mut changed.mirror, "Mirror what others see")
        .on_hover_text("Off: the other side sees you as your camera does, whatever the preview shows");
    if changed != *settings {
        commands.push(Command::SetCamera(changed));
    }
    let Some(report) = report else {
        ui.label("Off: other apps do not see the picture");
        return;
    };
    let line = match &report.state {
        CameraState::Streaming { .. } if report.width > 0 => format!(
            "{} ({}x{}, {:.0} fps, {} sent, {} repeated, {} dropped)",
            report.state, report.width, report.height, report.fps, report.sent, report.repeated, report.dropped
        ),
        state => state.to_string(),
    };
    let colour = match &report.state {
        CameraState::Unavailable { .. } | CameraState::Ended(_) => ui.visuals().warn_fg_color,
        _ => ui.visuals().text_color(),
    };
    ui.colored_label(colour, line);
    if !status.is_ready() {
        ui.label("Until the model runs, the camera shows the background alone, never the room");
    } else if status.needs_plate {
        ui.label("BGMv2 has no plate yet: the camera shows the background alone while an app watches");
    }
}
