//! The GPU compositor: one compute pass of many dispatches per frame, planned once per frame size and
//! settings structure (`alpha`, `edges`, `background`, `output`), with buffers and bind groups reused until
//! either changes. A change of value only (a colour, the edge threshold or contrast, mirroring) rewrites
//! uniforms; only a new background file is opened again.

use super::alpha::plan_alpha;
use super::background::{BackgroundPlan, plan_background};
use super::edges::{EdgeUniforms, plan_edges};
use super::output::{OutputInputs, OutputPlan, plan_output};
use super::pipelines::{Builder, Dispatch, Pipelines, write_padded};
use super::readback::{Readback, ReadbackRing};
use super::timer::Timer;
use super::uniforms::CompositeParams;
use super::{GpuContext, GpuError};
use crate::color::PixelData;
use crate::composite::background::{BackgroundMedia, BackgroundPicture, Pacing};
use crate::composite::{Background, CompositeSettings, EdgeControls, Upsample, View};
use crate::frame::{Composite, Frame, Matte, Picture};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum InputFormat {
    Rgb,
    Yuyv,
    Nv12,
}

/// What the plan depends on besides the settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct PlanKey {
    width: u32,
    height: u32,
    matte_w: u32,
    matte_h: u32,
    format: InputFormat,
    picture: Option<(u32, u32)>,
}

/// The part of the settings that decides which dispatches a frame needs and what size their buffers
/// are; what is left (colours, threshold and contrast, mirroring) only changes uniforms.
#[derive(Clone, Debug, PartialEq)]
struct Structure {
    background: std::mem::Discriminant<Background>,
    blur_radius_px: Option<u32>,
    transparent: Option<bool>,
    upsample: Upsample,
    curve: bool,
    shrink_px: i32,
    feather_px: u32,
    view: View,
}

impl Structure {
    fn of(settings: &CompositeSettings) -> Self {
        let edges: EdgeControls = settings.edges.clamped();
        Self {
            background: std::mem::discriminant(&settings.background),
            blur_radius_px: match settings.background {
                Background::Blur { radius_px } => Some(radius_px),
                _ => None,
            },
            transparent: settings.transparent(),
            upsample: settings.upsample,
            curve: edges.has_curve(),
            shrink_px: edges.shrink_px,
            feather_px: edges.feather_px,
            view: settings.view,
        }
    }
}

/// Buffers, textures and dispatches for one `PlanKey` and one settings structure.
struct Plan {
    key: PlanKey,
    input: wgpu::Buffer,
    foreground_input: wgpu::Buffer,
    alpha_low: wgpu::Buffer,
    background: BackgroundPlan,
    edges: EdgeUniforms,
    output: OutputPlan,
    convert: Vec<Dispatch>,
    convert_foreground: Vec<Dispatch>,
    main: Vec<Dispatch>,
    picture_ready: bool,
}

/// Composites frames on the GPU; see the module docs.
pub struct GpuCompositor {
    ctx: GpuContext,
    settings: CompositeSettings,
    pacing: Pacing,
    media: BackgroundMedia,
    pipelines: Pipelines,
    plan: Option<Plan>,
    readback: Readback,
    ring: ReadbackRing,
    rgba: Vec<u8>,
    timer: Option<Timer>,
    last_gpu_ms: Option<f64>,
    /// Output for the window (see [`Self::set_display`]).
    display: bool,
}

impl GpuCompositor {
    /// A compositor on a device of its own (command line, tests, benchmarks), software adapters included.
    pub fn headless(settings: CompositeSettings) -> Result<Self, GpuError> {
        Self::new(GpuContext::headless()?, settings, Pacing::OnePerFrame)
    }

    /// As [`Self::headless`], refusing a software rasteriser (see [`GpuContext::headless_with`]).
    pub fn headless_hardware(settings: CompositeSettings) -> Result<Self, GpuError> {
        Self::new(GpuContext::headless_with(false)?, settings, Pacing::OnePerFrame)
    }

    /// A compositor on `ctx`'s device (the window shares eframe's). Opens the background's file now.
    pub fn new(ctx: GpuContext, settings: CompositeSettings, pacing: Pacing) -> Result<Self, GpuError> {
        let media = BackgroundMedia::open(&settings.background, pacing)?;
        let pipelines = Pipelines::new(&ctx.device);
        ctx.take_error()?;
        Ok(Self {
            ctx,
            settings,
            pacing,
            media,
            pipelines,
            plan: None,
            readback: Readback::default(),
            ring: ReadbackRing::default(),
            rgba: Vec::new(),
            timer: None,
            last_gpu_ms: None,
            display: false,
        })
    }

    pub fn context(&self) -> &GpuContext {
        &self.ctx
    }

    pub fn adapter_name(&self) -> &str {
        &self.ctx.adapter_name
    }

    /// "gpu (adapter)", for summary lines.
    pub fn describe(&self) -> String {
        format!("gpu ({})", self.ctx.adapter_name)
    }

    pub fn settings(&self) -> &CompositeSettings {
        &self.settings
    }

    /// Changes the settings from the next frame on; a new background file is opened first, and the old
    /// settings kept if it fails. A change of values only rewrites uniforms.
    pub fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), GpuError> {
        if settings.background.file() != self.settings.background.file() {
            self.media = BackgroundMedia::open(&settings.background, self.pacing)?;
            self.plan = None;
        }
        let same_structure = Structure::of(&settings) == Structure::of(&self.settings);
        match &mut self.plan {
            Some(plan) if same_structure => {
                let size = (plan.key.width, plan.key.height);
                plan.edges.rewrite(&self.ctx.queue, &settings.edges.clamped(), size);
                plan.output.rewrite(&self.ctx.queue, &settings);
            }
            _ => self.plan = None,
        }
        self.settings = settings;
        Ok(())
    }

    /// Whether the last settings change rebuilt the plan (tests: a value change must not).
    pub fn is_planned(&self) -> bool {
        self.plan.is_some()
    }

    /// For the window: a transparent picture is also drawn opaque over the checkerboard
    /// ([`Self::shown_texture`]), since egui blends what it draws.
    pub fn set_display(&mut self, on: bool) {
        if self.display != on {
            self.display = on;
            self.plan = None;
        }
    }

    pub fn is_display(&self) -> bool {
        self.display
    }

    /// Measures each frame's GPU time with timestamp queries (when the adapter has them); the time is
    /// read after the frame completes, so this waits for the GPU.
    pub fn measure_gpu_time(&mut self, on: bool) -> bool {
        self.timer = if on { Timer::new(&self.ctx, true) } else { None };
        self.timer.is_some()
    }

    /// As [`Self::measure_gpu_time`] without waiting: [`Self::last_gpu_ms`] is the time of the latest
    /// frame whose time has come back.
    pub fn measure_gpu_time_in_background(&mut self, on: bool) -> bool {
        self.timer = if on { Timer::new(&self.ctx, false) } else { None };
        self.timer.is_some()
    }

    /// GPU time of the last frame in milliseconds, when measured.
    pub fn last_gpu_ms(&self) -> Option<f64> {
        self.last_gpu_ms
    }

    /// Composites and reads the result back, waiting for the GPU: the frame-size 8-bit alpha, the picture
    /// (RGB, or RGBA for a transparent background) and the split view when it is on.
    pub fn composite(&mut self, frame: &Frame, matte: &Matte, out: &mut Picture) -> Result<(), GpuError> {
        self.composite_pixels(PixelData::Rgb(&frame.rgb), frame.width, frame.height, matte, out)
    }

    /// As [`Self::composite`] for a frame in any camera format.
    pub fn composite_pixels(
        &mut self,
        pixels: PixelData<'_>,
        width: u32,
        height: u32,
        matte: &Matte,
        out: &mut Picture,
    ) -> Result<(), GpuError> {
        self.render(pixels, width, height, matte)?;
        let plan = self.plan.as_ref().expect("planned by render");
        let mut rgba = std::mem::take(&mut self.rgba);
        let result = self.readback.read_rgba(&self.ctx, &plan.output.composite_texture, &mut rgba).and_then(|()| {
            fill_picture(out, width, height, self.settings.background.has_alpha(), &rgba);
            match &plan.output.split_texture {
                Some(split) => {
                    self.readback.read_rgba(&self.ctx, split, &mut rgba)?;
                    fill_composite(
                        out.split.get_or_insert_with(Default::default),
                        split.width(),
                        split.height(),
                        false,
                        &rgba,
                    );
                }
                None => out.split = None,
            }
            Ok(())
        });
        self.rgba = rgba;
        result
    }

    /// The last frame's textures: what the window shows (the composite, the split view, or in display mode
    /// a transparent composite over the checkerboard), and the composite with its alpha.
    pub fn output_textures(&self) -> Option<(&wgpu::Texture, &wgpu::Texture)> {
        self.plan.as_ref().map(|plan| (plan.output.shown_texture(), &plan.output.composite_texture))
    }

    /// Starts reading the last frame's composite back without waiting: a copy into a free buffer of the
    /// ring, mapped in the background. Returns the ring slot to [`Self::finish_readback`]. With every slot
    /// in flight, the oldest must be finished first.
    pub fn start_readback(&mut self) -> Result<usize, GpuError> {
        let plan = self.plan.as_ref().ok_or_else(|| GpuError::Readback("nothing was composited yet".into()))?;
        self.ring.start(&self.ctx, &plan.output.composite_texture)
    }

    /// Whether slot `slot`'s copy has come back (polling the device, without waiting).
    pub fn readback_ready(&self, slot: usize) -> bool {
        self.ring.is_ready(&self.ctx, slot)
    }

    /// Fills `out` from slot `slot` (waiting for it if it has not come back) and frees the slot.
    pub fn finish_readback(&mut self, slot: usize, transparent: bool, out: &mut Picture) -> Result<(), GpuError> {
        let mut rgba = std::mem::take(&mut self.rgba);
        let result = self.ring.finish(&self.ctx, slot, &mut rgba).map(|(width, height)| {
            fill_picture(out, width, height, transparent, &rgba);
            out.split = None;
        });
        self.rgba = rgba;
        result
    }

    /// Slots the ring can have in flight at once.
    pub fn readback_slots(&self) -> usize {
        self.ring.capacity()
    }

    /// Composites into the GPU textures, without reading anything back.
    pub fn render(&mut self, pixels: PixelData<'_>, width: u32, height: u32, matte: &Matte) -> Result<(), GpuError> {
        pixels.check(width, height)?;
        if matte.width > width || matte.height > height || matte.width == 0 || matte.height == 0 {
            return Err(GpuError::MatteSize {
                matte_w: matte.width,
                matte_h: matte.height,
                frame_w: width,
                frame_h: height,
            });
        }
        let picture = self.media.next_picture()?;
        let key = PlanKey {
            width,
            height,
            matte_w: matte.width,
            matte_h: matte.height,
            format: match pixels {
                PixelData::Rgb(_) => InputFormat::Rgb,
                PixelData::Yuyv(_) => InputFormat::Yuyv,
                PixelData::Nv12(_) => InputFormat::Nv12,
            },
            picture: picture.as_ref().map(|p| (p.width, p.height)),
        };
        if self.plan.as_ref().is_none_or(|plan| plan.key != key) {
            self.plan = None;
            self.plan = Some(plan(&self.ctx, &self.pipelines, &self.settings, self.display, key)?);
        }
        let plan = self.plan.as_mut().expect("planned above");
        let queue = &self.ctx.queue;
        write_padded(queue, &plan.input, pixels.bytes());
        queue.write_buffer(&plan.alpha_low, 0, bytemuck::cast_slice(&matte.alpha));
        let foreground = matte.foreground.as_deref().filter(|f| f.len() == width as usize * height as usize * 3);
        if let Some(foreground) = foreground {
            write_padded(queue, &plan.foreground_input, foreground);
        }
        let picture_due = match (&picture, &plan.background.picture_input) {
            (Some(BackgroundPicture { rgb, fresh, .. }), Some(buffer)) if *fresh || !plan.picture_ready => {
                write_padded(queue, buffer, rgb);
                plan.picture_ready = true;
                true
            }
            _ => false,
        };
        let params = CompositeParams { has_foreground: foreground.is_some() as u32, ..plan.output.base_params };
        queue.write_buffer(&plan.output.composite_params, 0, bytemuck::bytes_of(&params));

        let mut encoder =
            self.ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("composite") });
        {
            let timestamp_writes = self.timer.as_ref().map(|timer| wgpu::ComputePassTimestampWrites {
                query_set: &timer.queries,
                beginning_of_pass_write_index: Some(0),
                end_of_pass_write_index: Some(1),
            });
            let mut pass =
                encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("composite"), timestamp_writes });
            let foreground_passes = if foreground.is_some() { &plan.convert_foreground[..] } else { &[] };
            let picture_passes = if picture_due { &plan.background.picture[..] } else { &[] };
            for dispatch in plan.convert.iter().chain(foreground_passes).chain(picture_passes).chain(&plan.main) {
                pass.set_pipeline(&dispatch.pipeline);
                pass.set_bind_group(0, &dispatch.bind_group, &[]);
                let [x, y, z] = dispatch.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
        let mut copy_time = false;
        if let Some(timer) = &self.timer {
            let (harvested, free) = timer.harvest(queue);
            if harvested.is_some() {
                self.last_gpu_ms = harvested;
            }
            if free {
                timer.copy(&mut encoder);
                copy_time = true;
            }
        }
        self.ctx.queue.submit([encoder.finish()]);
        if let Some(timer) = self.timer.as_ref().filter(|_| copy_time)
            && let Some(ms) = timer.after_submit(&self.ctx)?
        {
            self.last_gpu_ms = Some(ms);
        }
        self.ctx.take_error()
    }
}

/// The frame-size alpha (the texture's A) and the composite from a read-back RGBA texture.
fn fill_picture(out: &mut Picture, width: u32, height: u32, keep_alpha: bool, rgba: &[u8]) {
    out.alpha.clear();
    out.alpha.extend(rgba.chunks_exact(4).map(|p| p[3]));
    fill_composite(&mut out.composite, width, height, keep_alpha, rgba);
}

fn fill_composite(out: &mut Composite, width: u32, height: u32, keep_alpha: bool, rgba: &[u8]) {
    out.width = width;
    out.height = height;
    out.channels = if keep_alpha { 4 } else { 3 };
    out.pixels.clear();
    if keep_alpha {
        out.pixels.extend_from_slice(rgba);
    } else {
        out.pixels.extend(rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]));
    }
}

/// Builds the buffers and dispatches for one frame size, matte size, input format and settings.
fn plan(
    ctx: &GpuContext,
    pipelines: &Pipelines,
    settings: &CompositeSettings,
    display: bool,
    key: PlanKey,
) -> Result<Plan, GpuError> {
    let device = &ctx.device;
    let b = Builder::new(device, pipelines);
    let (w, h) = (key.width, key.height);
    let max_side = device.limits().max_texture_dimension_2d;
    if w > max_side || h > max_side {
        return Err(GpuError::TooLarge {
            what: "the frame texture",
            bytes: w as u64 * h as u64 * 4,
            max: max_side as u64,
        });
    }
    let n = w as u64 * h as u64;
    let input_bytes = match key.format {
        InputFormat::Rgb => n * 3,
        InputFormat::Yuyv => n * 2,
        InputFormat::Nv12 => n * 3 / 2,
    };
    let input = b.storage("frame input", input_bytes)?;
    let frame = b.storage("frame", n * 4)?;
    let convert_pipeline = match key.format {
        InputFormat::Rgb => &pipelines.rgb8,
        InputFormat::Yuyv => &pipelines.yuyv,
        InputFormat::Nv12 => &pipelines.nv12,
    };
    let convert = vec![b.convert(convert_pipeline, &input, &frame, w, h)];
    let foreground_input = b.storage("foreground input", n * 3)?;
    let foreground = b.storage("foreground", n * 4)?;
    let convert_foreground = vec![b.convert(&pipelines.rgb8, &foreground_input, &foreground, w, h)];

    let mut main = Vec::new();
    let alpha_low = b.floats("matte", key.matte_w as u64 * key.matte_h as u64)?;
    let mut current = b.floats("alpha", n)?;
    let mut other = b.floats("alpha scratch", n)?;
    plan_alpha(&b, settings.upsample, (key.matte_w, key.matte_h), (w, h), &alpha_low, &frame, &current, &mut main)?;
    let edges = plan_edges(&b, &settings.edges, (w, h), &mut current, &mut other, &mut main);
    let background = plan_background(&b, &settings.background, key.picture, (w, h), &frame, &mut main)?;
    let inputs =
        OutputInputs { frame: &frame, foreground: &foreground, alpha: &current, background: &background.planes };
    let output = plan_output(&b, settings, display, (w, h), inputs, &mut main);
    ctx.take_error()?;
    Ok(Plan {
        key,
        input,
        foreground_input,
        alpha_low,
        background,
        edges,
        output,
        convert,
        convert_foreground,
        main,
        picture_ready: false,
    })
}
