//! The last step on the GPU: `composite::output` as dispatches of `composite.wgsl` (the person over the
//! background, alpha kept), `split.wgsl` (original | alpha | composite) and, for the window, `display.wgsl`
//! (the composite made opaque, a transparent one over the checkerboard).

use super::pipelines::{Builder, Dispatch};
use super::uniforms::{CompositeParams, DisplayParams, SplitParams};
use crate::composite::output::CHECKER_PX;
use crate::composite::{Background, CompositeSettings, View};

/// The output textures and the uniforms a value-only settings change rewrites.
pub struct OutputPlan {
    /// The composite with its alpha: what CPU consumers read back.
    pub composite_texture: wgpu::Texture,
    pub split_texture: Option<wgpu::Texture>,
    /// For the window: the composite made opaque (a transparent one over the checkerboard).
    pub display_texture: Option<wgpu::Texture>,
    pub composite_params: wgpu::Buffer,
    pub base_params: CompositeParams,
    split_params: Option<(wgpu::Buffer, SplitParams)>,
}

/// The buffers the output dispatches read.
pub struct OutputInputs<'a> {
    pub frame: &'a wgpu::Buffer,
    pub foreground: &'a wgpu::Buffer,
    pub alpha: &'a wgpu::Buffer,
    pub background: &'a wgpu::Buffer,
}

/// `composite.wgsl`'s mode number and colour for a background.
fn mode(background: &Background) -> (u32, [f32; 4]) {
    match background {
        Background::Color(c) => (0, [c[0] as f32, c[1] as f32, c[2] as f32, 255.0]),
        Background::Transparent { premultiplied: false } => (2, [0.0; 4]),
        Background::Transparent { premultiplied: true } => (3, [0.0; 4]),
        _ => (1, [0.0; 4]),
    }
}

fn composite_params(settings: &CompositeSettings, (w, h): (u32, u32)) -> CompositeParams {
    let (mode, colour) = mode(&settings.background);
    CompositeParams {
        width: w,
        height: h,
        mode,
        mirror: settings.mirror as u32,
        background_mirror: (settings.mirror && settings.background.follows_frame()) as u32,
        has_foreground: 0,
        _pad: [0; 2],
        colour,
    }
}

fn split_params(settings: &CompositeSettings, (w, h): (u32, u32)) -> SplitParams {
    SplitParams {
        width: w,
        height: h,
        panel_w: (w / 2).max(1),
        panel_h: (h / 2).max(1),
        mirror: settings.mirror as u32,
        alpha_mode: mode(&settings.background).0.saturating_sub(1),
        checker_px: CHECKER_PX,
        _pad: 0,
    }
}

impl OutputPlan {
    /// The texture the window shows.
    pub fn shown_texture(&self) -> &wgpu::Texture {
        self.split_texture.as_ref().or(self.display_texture.as_ref()).unwrap_or(&self.composite_texture)
    }

    /// A colour or mirror change: the uniforms are rewritten, nothing is rebuilt.
    pub fn rewrite(&mut self, queue: &wgpu::Queue, settings: &CompositeSettings) {
        let size = (self.base_params.width, self.base_params.height);
        self.base_params = composite_params(settings, size);
        if let Some((buffer, params)) = &mut self.split_params {
            *params = split_params(settings, size);
            queue.write_buffer(buffer, 0, bytemuck::bytes_of(params));
        }
    }
}

/// Plans the composite (and the split view or the window's display of it) at frame size `w` x `h`.
pub fn plan_output(
    b: &Builder<'_>,
    settings: &CompositeSettings,
    display: bool,
    (w, h): (u32, u32),
    inputs: OutputInputs<'_>,
    main: &mut Vec<Dispatch>,
) -> OutputPlan {
    let p = b.pipelines;
    let composite_texture = b.output_texture("composite", w, h);
    let composite_view = composite_texture.create_view(&Default::default());
    let base_params = composite_params(settings, (w, h));
    let params = b.uniform(&base_params);
    main.push(b.dispatch(
        &p.composite,
        &[
            (0, params.as_entire_binding()),
            (1, inputs.frame.as_entire_binding()),
            (2, inputs.foreground.as_entire_binding()),
            (3, inputs.alpha.as_entire_binding()),
            (4, inputs.background.as_entire_binding()),
            (5, wgpu::BindingResource::TextureView(&composite_view)),
        ],
        [w, h, 1],
    ));
    let mut split = None;
    if settings.view == View::Split {
        let split_values = split_params(settings, (w, h));
        let (panel_w, panel_h) = (split_values.panel_w, split_values.panel_h);
        let texture = b.output_texture("split view", 3 * panel_w, panel_h);
        let view = texture.create_view(&Default::default());
        let buffer = b.uniform(&split_values);
        main.push(b.dispatch(
            &p.split,
            &[
                (0, buffer.as_entire_binding()),
                (1, inputs.frame.as_entire_binding()),
                (2, inputs.alpha.as_entire_binding()),
                (3, wgpu::BindingResource::TextureView(&composite_view)),
                (4, wgpu::BindingResource::TextureView(&view)),
            ],
            [3 * panel_w, panel_h, 1],
        ));
        split = Some((texture, (buffer, split_values)));
    }
    let display_texture = match (display, split.is_some()) {
        (true, false) => {
            let texture = b.output_texture("display", w, h);
            let view = texture.create_view(&Default::default());
            let buffer = b.uniform(&DisplayParams {
                width: w,
                height: h,
                mode: match settings.transparent() {
                    None => 0,
                    Some(false) => 1,
                    Some(true) => 2,
                },
                checker_px: CHECKER_PX,
            });
            main.push(b.dispatch(
                &p.display,
                &[
                    (0, buffer.as_entire_binding()),
                    (1, wgpu::BindingResource::TextureView(&composite_view)),
                    (2, wgpu::BindingResource::TextureView(&view)),
                ],
                [w, h, 1],
            ));
            Some(texture)
        }
        _ => None,
    };
    let (split_texture, split_params) = split.unzip();
    OutputPlan {
        composite_texture,
        split_texture,
        display_texture,
        composite_params: params,
        base_params,
        split_params,
    }
}
