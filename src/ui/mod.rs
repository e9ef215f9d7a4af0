//! The desktop window (eframe with the wgpu renderer): a thin layer over [`crate::engine`]. Panels emit
//! [`command::Command`]s; [`app::MatteApp`] applies them.

pub mod app;
pub mod camera_panel;
pub mod command;
pub mod controls;
pub mod microphone;
pub mod sound_panel;
pub mod stats_ui;
pub mod viewport;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use eframe::egui_wgpu::{self, wgpu};

pub use app::{MatteApp, RunOutcome, RunRequest, Startup, recording_notice};

use crate::record::live::RecordingView;
pub use command::Command;

use crate::source::camera;

/// The app id: window class on Linux, and the name of the default settings folder.
pub const APP_ID: &str = "mattecam";

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error(
        "could not open the window ({0}); a desktop session (DISPLAY or WAYLAND_DISPLAY) and a Vulkan, Metal or DX12 driver are needed"
    )]
    Eframe(String),
}

/// Where the window keeps its settings unless told otherwise.
pub fn default_settings_file() -> Option<PathBuf> {
    eframe::storage_dir(APP_ID).map(|dir| dir.join("app.ron"))
}

/// Opens the window and runs until it is closed (or a scripted run ends).
pub fn run(
    settings_file: Option<PathBuf>,
    overrides: Vec<Command>,
    request: RunRequest,
) -> Result<RunOutcome, WindowError> {
    let settings_file = settings_file.or_else(default_settings_file);
    let settings_file_had_content =
        settings_file.as_ref().and_then(|f| std::fs::metadata(f).ok()).is_some_and(|m| m.len() > 0);
    let cameras = camera::list_cameras();
    let outcome = Arc::new(Mutex::new(RunOutcome::default()));
    let startup = Startup {
        notices: Vec::new(),
        saved_source: None,
        cameras,
        settings_file_had_content,
        overrides,
        request,
        outcome: Arc::clone(&outcome),
    };
    let mut wgpu_setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    // The compositor runs compute shaders: no GL fallback. It also needs the adapter's own limits.
    wgpu_setup.instance_descriptor.backends = wgpu::Backends::PRIMARY;
    wgpu_setup.device_descriptor = Arc::new(|adapter: &wgpu::Adapter| wgpu::DeviceDescriptor {
        label: Some("mattecam window"),
        // Timestamps give the stats the composite's GPU time.
        required_features: adapter.features() & wgpu::Features::TIMESTAMP_QUERY,
        required_limits: adapter.limits(),
        ..Default::default()
    });
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("mattecam")
            .with_app_id(APP_ID)
            .with_inner_size([1280.0, 760.0])
            .with_min_inner_size([640.0, 400.0]),
        renderer: eframe::Renderer::Wgpu,
        persistence_path: settings_file,
        // Dithering costs every drawn pixel a little arithmetic, and a software rasteriser pays it for the
        // whole window each frame; the picture is 8-bit video anyway.
        dithering: false,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: egui_wgpu::WgpuSetup::CreateNew(wgpu_setup),
            ..Default::default()
        },
        ..Default::default()
    };
    eframe::run_native(APP_ID, options, Box::new(move |cc| Ok(Box::new(MatteApp::new(cc, startup)))))
        .map_err(|err| WindowError::Eframe(err.to_string()))?;
    let mut outcome = std::mem::take(&mut *outcome.lock().expect("outcome lock"));
    // The window is gone; a take still running is finished now, and says so while it is.
    if let Some((engine, recordings)) = outcome.left_running.take() {
        outcome.recordings = recordings.finish_all(|view| {
            let queued = match view {
                RecordingView::Running(status) | RecordingView::Finishing(status) => status.queue_depth,
                _ => 0,
            };
            eprintln!("finishing the recording ({queued} queued frames to encode)...");
        });
        drop(engine);
    }
    Ok(outcome)
}
