//! The picture: composited on eframe's own wgpu device into a texture that egui draws as it is, never
//! read back to the CPU.

use std::sync::Arc;
use std::time::Instant;

use eframe::egui_wgpu::{self, wgpu};
use egui::{Rect, TextureId, Ui, Vec2};

use crate::color::PixelData;
use crate::composite::{CompositeError, CompositeSettings};
use crate::gpu::{GpuCompositor, GpuContext};
use crate::live::LiveFrame;

/// The GPU compositor in display mode, and the egui texture it fills.
pub struct Presenter {
    compositor: GpuCompositor,
    device: wgpu::Device,
    renderer: Arc<egui::mutex::RwLock<egui_wgpu::Renderer>>,
    texture: Option<(TextureId, Vec2)>,
    /// GPU time is measured with timestamp queries read back in the background.
    gpu_timed: bool,
}

impl Presenter {
    pub fn new(render_state: &egui_wgpu::RenderState, settings: CompositeSettings) -> Result<Self, CompositeError> {
        let info = render_state.adapter.get_info();
        let timestamps = render_state.device.features().contains(wgpu::Features::TIMESTAMP_QUERY);
        let ctx = GpuContext::with_device(render_state.device.clone(), render_state.queue.clone(), &info, timestamps);
        let mut compositor = GpuCompositor::new(ctx, settings)?;
        compositor.set_display(true);
        let gpu_timed = compositor.measure_gpu_time_in_background(true);
        Ok(Self {
            compositor,
            device: render_state.device.clone(),
            renderer: Arc::clone(&render_state.renderer),
            texture: None,
            gpu_timed,
        })
    }

    /// The adapter's name, for the stats.
    pub fn adapter_name(&self) -> &str {
        self.compositor.adapter_name()
    }

    pub fn settings(&self) -> &CompositeSettings {
        self.compositor.settings()
    }

    /// Changes the settings; a background file that cannot be opened is an error and the old settings stay.
    pub fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), CompositeError> {
        self.compositor.set_settings(settings)
    }

    /// Composites `live` into the window's texture. Returns the composite time in milliseconds: the GPU
    /// time of the latest frame whose timestamps came back (nothing waits for them), or, on a device
    /// without timestamp queries, the time this thread spent.
    pub fn present(&mut self, live: &LiveFrame) -> Result<f64, CompositeError> {
        let started = Instant::now();
        let frame = &live.frame;
        let texture = self.compositor.render(PixelData::Rgb(&frame.rgb), frame.width, frame.height, &live.matte)?;
        let size = Vec2::new(texture.width() as f32, texture.height() as f32);
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        let mut renderer = self.renderer.write();
        match self.texture {
            Some((id, _)) => {
                renderer.update_egui_texture_from_wgpu_texture(&self.device, &view, wgpu::FilterMode::Linear, id)
            }
            None => {
                let id = renderer.register_native_texture(&self.device, &view, wgpu::FilterMode::Linear);
                self.texture = Some((id, size));
            }
        }
        if let Some((_, shown)) = &mut self.texture {
            *shown = size;
        }
        let cpu_ms = started.elapsed().as_secs_f64() * 1e3;
        drop(renderer);
        Ok(if self.gpu_timed { self.compositor.last_gpu_ms().unwrap_or(0.0) } else { cpu_ms })
    }

    pub fn texture(&self) -> Option<(TextureId, Vec2)> {
        self.texture
    }
}

impl Drop for Presenter {
    fn drop(&mut self) {
        if let Some((id, _)) = self.texture.take() {
            self.renderer.write().free_texture(&id);
        }
    }
}

/// Draws the picture fitted to the space left, centred; a spinner while a stage is rebuilding.
pub fn viewport_ui(ui: &mut Ui, texture: Option<(TextureId, Vec2)>, busy: bool) -> Rect {
    let space = ui.available_rect_before_wrap();
    ui.allocate_rect(space, egui::Sense::hover());
    let Some((id, size)) = texture else {
        ui.put(space, egui::Spinner::new().size(48.0));
        return space;
    };
    let scale = (space.width() / size.x).min(space.height() / size.y);
    let shown = Rect::from_center_size(space.center(), size * scale);
    ui.painter().image(id, shown, Rect::from_min_max(egui::pos2(0.0, 0.0), egui::pos2(1.0, 1.0)), egui::Color32::WHITE);
    if busy {
        ui.put(Rect::from_center_size(shown.center(), Vec2::splat(48.0)), egui::Spinner::new().size(48.0));
    }
    shown
}
