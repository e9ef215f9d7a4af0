//! The picture on screen: the engine's output drawn as an egui texture. When the engine composites on the
//! window's GPU, the texture it made is drawn as it is (nothing is read back); otherwise the CPU's picture
//! is uploaded into a texture of the window's device. Either way the UI thread only hands work to the GPU
//! queue: it never waits for the GPU.

use std::sync::Arc;

use eframe::egui_wgpu::{self, wgpu};
use egui::{Rect, TextureId, Ui, Vec2};

use crate::composite::output::display_rgba;
use crate::frame::Output;
use crate::gpu::pipelines::rgba_texture;

/// The egui texture the picture is drawn from.
pub struct Presenter {
    device: wgpu::Device,
    queue: wgpu::Queue,
    renderer: Arc<egui::mutex::RwLock<egui_wgpu::Renderer>>,
    /// The texture egui draws and its size in pixels.
    texture: Option<(TextureId, Vec2)>,
    /// The CPU path's upload target, and the RGBA bytes made for it.
    upload: Option<wgpu::Texture>,
    rgba: Vec<u8>,
}

impl Presenter {
    pub fn new(render_state: &egui_wgpu::RenderState) -> Self {
        Self {
            device: render_state.device.clone(),
            queue: render_state.queue.clone(),
            renderer: Arc::clone(&render_state.renderer),
            texture: None,
            upload: None,
            rgba: Vec::new(),
        }
    }

    /// Makes `output` the picture on screen.
    pub fn present(&mut self, output: &Output) {
        match &output.gpu {
            Some(gpu) => {
                let view = gpu.shown.create_view(&wgpu::TextureViewDescriptor::default());
                self.show(&view, gpu.shown.width(), gpu.shown.height());
            }
            None => self.upload(output),
        }
    }

    /// The CPU's picture, as the window shows it (a transparent one over the checkerboard), into the
    /// upload texture: `write_texture` stages the bytes for the next submit and returns.
    fn upload(&mut self, output: &Output) {
        let shown = output.shown();
        if shown.pixels.is_empty() {
            return;
        }
        let premultiplied = output.transparent == Some(true) && output.picture.split.is_none();
        display_rgba(shown, premultiplied, &mut self.rgba);
        let (width, height) = (shown.width, shown.height);
        let size = wgpu::Extent3d { width, height, depth_or_array_layers: 1 };
        let fresh = self.upload.as_ref().is_none_or(|texture| texture.size() != size);
        if fresh {
            self.upload = Some(rgba_texture(&self.device, "picture", size, wgpu::TextureUsages::empty()));
        }
        let texture = self.upload.as_ref().expect("made above");
        self.queue.write_texture(
            texture.as_image_copy(),
            &self.rgba,
            wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(width * 4), rows_per_image: Some(height) },
            size,
        );
        if fresh {
            let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
            self.show(&view, width, height);
        }
    }

    /// Points the egui texture at `view`.
    fn show(&mut self, view: &wgpu::TextureView, width: u32, height: u32) {
        let size = Vec2::new(width as f32, height as f32);
        let mut renderer = self.renderer.write();
        match &mut self.texture {
            Some((id, shown)) => {
                renderer.update_egui_texture_from_wgpu_texture(&self.device, view, wgpu::FilterMode::Linear, *id);
                *shown = size;
            }
            None => {
                let id = renderer.register_native_texture(&self.device, view, wgpu::FilterMode::Linear);
                self.texture = Some((id, size));
            }
        }
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
