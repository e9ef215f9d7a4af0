//! The stats overlay (rates, stage times, latency, drops, provider, a frame-time plot) and the shortcut
//! help.

use egui::{Color32, Pos2, Rect, Sense, Stroke, Ui, Vec2};

use super::command::SHORTCUTS;
use crate::engine::{EngineStatus, StatsView};

pub fn stats_ui(ui: &mut Ui, stats: &StatsView, status: &EngineStatus) {
    let provider = status.provider.as_ref().map_or_else(|| "loading".to_string(), |p| p.to_string());
    egui::Grid::new("stats").num_columns(2).spacing([12.0, 2.0]).show(ui, |ui| {
        let mut row = |name: &str, value: String| {
            ui.label(name);
            ui.monospace(value);
            ui.end_row();
        };
        row("Capture", format!("{:.1} fps", stats.capture_fps));
        row("Shown", format!("{:.1} fps", stats.shown_fps));
        row("Inference", format!("{:.1} ms", stats.infer_ms));
        row("Composite", format!("{:.1} ms", stats.composite_ms));
        row("Latency", format!("{:.0} ms (max {:.0})", stats.latency_ms_p50, stats.latency_ms_max));
        row(
            "Dropped",
            format!(
                "{} ({} before model, {} before screen)",
                stats.dropped_frames(),
                stats.dropped_before_infer,
                stats.dropped_before_screen
            ),
        );
        row("Provider", provider);
        let precision = status.precision.map_or_else(String::new, |p| format!(" {p}"));
        row("Model", format!("{}{precision}", status.model.kind.title()));
        if let Some(governor) = &status.governor {
            let step = if governor.level == 0 {
                "as set".to_string()
            } else {
                format!("step {} of {}", governor.level, governor.levels - 1)
            };
            row("Hold rate", format!("{:.0} fps: {} ({step})", governor.target_fps, governor.label));
        }
    });
    frame_time_plot(ui, stats);
}

const INTERVAL_COLOUR: Color32 = Color32::from_rgb(90, 170, 255);
const LATENCY_COLOUR: Color32 = Color32::from_rgb(255, 170, 60);

/// Frame interval and end-to-end latency of the recent frames, newest on the right.
fn frame_time_plot(ui: &mut Ui, stats: &StatsView) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(260.0, 70.0), Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::from_black_alpha(120));
    let top_ms = stats.history.iter().map(|t| t.interval_ms.max(t.latency_ms)).fold(50.0f64, f64::max).min(5_000.0);
    let n = crate::engine::stats::HISTORY_FRAMES;
    let point = |i: usize, ms: f64| {
        let x = rect.left() + rect.width() * (n - stats.history.len() + i) as f32 / (n - 1) as f32;
        let y = rect.bottom() - rect.height() * (ms / top_ms).min(1.0) as f32;
        Pos2::new(x, y)
    };
    for (colour, value) in [
        (INTERVAL_COLOUR, (|t: &crate::engine::stats::FrameTimes| t.interval_ms) as fn(&_) -> f64),
        (LATENCY_COLOUR, |t| t.latency_ms),
    ] {
        let points: Vec<Pos2> = stats.history.iter().enumerate().map(|(i, t)| point(i, value(t))).collect();
        painter.add(egui::Shape::line(points, Stroke::new(1.5, colour)));
    }
    painter.text(
        rect.left_top() + Vec2::new(4.0, 2.0),
        egui::Align2::LEFT_TOP,
        format!("{top_ms:.0} ms"),
        egui::FontId::monospace(10.0),
        Color32::GRAY,
    );
    let legend = Rect::from_min_size(rect.left_bottom() + Vec2::new(0.0, 2.0), Vec2::new(rect.width(), 12.0));
    ui.allocate_rect(legend, Sense::hover());
    for (x, colour, text) in [(4.0, INTERVAL_COLOUR, "frame interval"), (120.0, LATENCY_COLOUR, "latency")] {
        ui.painter().text(
            legend.left_top() + Vec2::new(x, 0.0),
            egui::Align2::LEFT_TOP,
            text,
            egui::FontId::proportional(10.0),
            colour,
        );
    }
}

pub fn help_ui(ui: &mut Ui) {
    egui::Grid::new("shortcuts").num_columns(2).spacing([16.0, 4.0]).show(ui, |ui| {
        for (key, action) in SHORTCUTS {
            ui.monospace(key.name());
            ui.label(action);
            ui.end_row();
        }
    });
}
