//! The GPU compositor: one compute pass of many dispatches per frame, planned once per frame size and
//! settings, with buffers and bind groups reused until either changes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use wgpu::util::DeviceExt;

use super::readback::{Readback, map_for_reading};
use super::uniforms::{
    BlurParams, CompositeParams, ConvertParams, EdgeParams, GuidedParams, ResampleParams, SplitParams,
};
use super::{GpuContext, GpuError};
use crate::color::PixelData;
use crate::composite::background::{BackgroundMedia, Picture};
use crate::composite::cpu::{BLUR_PASSES, CHECKER_PX, blur_geometry};
use crate::composite::upsample::{GUIDED_EPS, GUIDED_RADIUS_PX};
use crate::composite::{Background, Composite, CompositeError, CompositeSettings, Upsample, View};
use crate::frame::{Frame, Matte};
use crate::resample::{ResampleKind, Resampler};

const WORKGROUP: u32 = 16;
const GUIDED_STATS: u32 = 13;

/// Every compute pipeline, built once per compositor.
struct Pipelines {
    rgb8: wgpu::ComputePipeline,
    yuyv: wgpu::ComputePipeline,
    nv12: wgpu::ComputePipeline,
    resample_h: wgpu::ComputePipeline,
    resample_h_packed: wgpu::ComputePipeline,
    resample_v: wgpu::ComputePipeline,
    stats_h: wgpu::ComputePipeline,
    coefficients_v: wgpu::ComputePipeline,
    mean_h: wgpu::ComputePipeline,
    mean_v: wgpu::ComputePipeline,
    guided_apply: wgpu::ComputePipeline,
    curve: wgpu::ComputePipeline,
    morph_h: wgpu::ComputePipeline,
    morph_v: wgpu::ComputePipeline,
    feather_h: wgpu::ComputePipeline,
    feather_v: wgpu::ComputePipeline,
    box_h: wgpu::ComputePipeline,
    box_v: wgpu::ComputePipeline,
    composite: wgpu::ComputePipeline,
    split: wgpu::ComputePipeline,
}

impl Pipelines {
    fn new(device: &wgpu::Device) -> Self {
        let convert = device.create_shader_module(wgpu::include_wgsl!("../../shaders/convert.wgsl"));
        let resample = device.create_shader_module(wgpu::include_wgsl!("../../shaders/resample.wgsl"));
        let guided = device.create_shader_module(wgpu::include_wgsl!("../../shaders/guided.wgsl"));
        let edges = device.create_shader_module(wgpu::include_wgsl!("../../shaders/edges.wgsl"));
        let blur = device.create_shader_module(wgpu::include_wgsl!("../../shaders/blur.wgsl"));
        let composite = device.create_shader_module(wgpu::include_wgsl!("../../shaders/composite.wgsl"));
        let split = device.create_shader_module(wgpu::include_wgsl!("../../shaders/split.wgsl"));
        let make = |module: &wgpu::ShaderModule, entry: &str| {
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        Self {
            rgb8: make(&convert, "rgb8"),
            yuyv: make(&convert, "yuyv"),
            nv12: make(&convert, "nv12"),
            resample_h: make(&resample, "horizontal"),
            resample_h_packed: make(&resample, "horizontal_packed"),
            resample_v: make(&resample, "vertical"),
            stats_h: make(&guided, "stats_h"),
            coefficients_v: make(&guided, "coefficients_v"),
            mean_h: make(&guided, "mean_h"),
            mean_v: make(&guided, "mean_v"),
            guided_apply: make(&guided, "apply"),
            curve: make(&edges, "curve"),
            morph_h: make(&edges, "morph_h"),
            morph_v: make(&edges, "morph_v"),
            feather_h: make(&edges, "feather_h"),
            feather_v: make(&edges, "feather_v"),
            box_h: make(&blur, "box_h"),
            box_v: make(&blur, "box_v"),
            composite: make(&composite, "main"),
            split: make(&split, "main"),
        }
    }
}

/// One dispatch of a planned frame.
struct Dispatch {
    pipeline: wgpu::ComputePipeline,
    bind_group: wgpu::BindGroup,
    workgroups: [u32; 3],
}

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

/// Buffers, textures and dispatches for one `PlanKey` and one set of settings.
struct Plan {
    key: PlanKey,
    input: wgpu::Buffer,
    foreground_input: wgpu::Buffer,
    picture_input: Option<wgpu::Buffer>,
    alpha_low: wgpu::Buffer,
    composite_params: wgpu::Buffer,
    base_params: CompositeParams,
    composite_texture: wgpu::Texture,
    split_texture: Option<wgpu::Texture>,
    convert: Vec<Dispatch>,
    convert_foreground: Vec<Dispatch>,
    picture: Vec<Dispatch>,
    main: Vec<Dispatch>,
    picture_ready: bool,
}

/// GPU time of the last frame, from timestamp queries.
struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    /// Read after each frame, waiting for the GPU; otherwise the staging buffer is mapped in the
    /// background and read by a later frame (`STAGING_*`).
    blocking: bool,
    staging_state: Arc<AtomicU8>,
}

impl Timer {
    /// Milliseconds between the two timestamps in the mapped staging buffer.
    fn read_mapped_ms(&self, queue: &wgpu::Queue) -> Result<f64, GpuError> {
        let view = self.staging.get_mapped_range(..).map_err(|err| GpuError::Readback(err.to_string()))?;
        let ticks: &[u64] = bytemuck::cast_slice(&view);
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * queue.get_timestamp_period() as f64 / 1e6)
    }
}

const STAGING_FREE: u8 = 0;
const STAGING_MAPPING: u8 = 1;
const STAGING_MAPPED: u8 = 2;

/// Composites frames on the GPU; see the module docs.
pub struct GpuCompositor {
    ctx: GpuContext,
    settings: CompositeSettings,
    media: BackgroundMedia,
    pipelines: Pipelines,
    plan: Option<Plan>,
    readback: Readback,
    rgba: Vec<u8>,
    timer: Option<Timer>,
    last_gpu_ms: Option<f64>,
    /// Output for the window rather than for sinks (see [`Self::set_display`]).
    display: bool,
}

impl GpuCompositor {
    /// A compositor on a device of its own (command line, tests, benchmarks), software adapters included.
    pub fn headless(settings: CompositeSettings) -> Result<Self, CompositeError> {
        Self::new(GpuContext::headless()?, settings)
    }

    /// As [`Self::headless`], refusing a software rasteriser (see [`GpuContext::headless_with`]).
    pub fn headless_hardware(settings: CompositeSettings) -> Result<Self, CompositeError> {
        Self::new(GpuContext::headless_with(false)?, settings)
    }

    /// A compositor on `ctx`'s device (the window shares eframe's). Opens the background's file now.
    pub fn new(ctx: GpuContext, settings: CompositeSettings) -> Result<Self, CompositeError> {
        let media = BackgroundMedia::open(&settings.background)?;
        let pipelines = Pipelines::new(&ctx.device);
        ctx.take_error()?;
        Ok(Self {
            ctx,
            settings,
            media,
            pipelines,
            plan: None,
            readback: Readback::default(),
            rgba: Vec::new(),
            timer: None,
            last_gpu_ms: None,
            display: false,
        })
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

    /// Changes the settings; a new background file is opened first, and the old settings kept if it fails.
    pub fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), CompositeError> {
        if settings.background != self.settings.background {
            self.media = BackgroundMedia::open(&settings.background)?;
        }
        self.settings = settings;
        self.plan = None;
        Ok(())
    }

    /// For the window: the texture holds exactly what to show, alpha 255, with a transparent picture over
    /// a checkerboard (`composite::cpu::display_rgba`), since egui blends what it draws. The sinks need
    /// the alpha, so the command line leaves this off.
    pub fn set_display(&mut self, on: bool) {
        if self.display != on {
            self.display = on;
            self.plan = None;
        }
    }

    /// Measures each frame's GPU time with timestamp queries (when the adapter has them); the time is
    /// read after the frame completes, so this waits for the GPU.
    pub fn measure_gpu_time(&mut self, on: bool) -> bool {
        self.start_timer(on, true)
    }

    /// As [`Self::measure_gpu_time`] without waiting: [`Self::last_gpu_ms`] is the time of the latest
    /// frame whose time has come back (the window's case).
    pub fn measure_gpu_time_in_background(&mut self, on: bool) -> bool {
        self.start_timer(on, false)
    }

    fn start_timer(&mut self, on: bool, blocking: bool) -> bool {
        if !on || !self.ctx.timestamps {
            self.timer = None;
            return false;
        }
        let device = &self.ctx.device;
        self.timer = Some(Timer {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("frame time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("frame time resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            staging: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("frame time staging"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            blocking,
            staging_state: Arc::new(AtomicU8::new(STAGING_FREE)),
        });
        true
    }

    /// Takes a background-mapped time, if one has come back; says whether the staging buffer is free.
    fn harvest_background_time(&mut self) -> bool {
        let Some(timer) = &self.timer else {
            return false;
        };
        if timer.blocking {
            return true;
        }
        match timer.staging_state.load(Ordering::Acquire) {
            STAGING_MAPPED => {
                let read = timer.read_mapped_ms(&self.ctx.queue);
                timer.staging.unmap();
                self.last_gpu_ms = read.ok();
                timer.staging_state.store(STAGING_FREE, Ordering::Release);
                true
            }
            STAGING_FREE => true,
            _ => false,
        }
    }

    /// GPU time of the last frame in milliseconds, when measured.
    pub fn last_gpu_ms(&self) -> Option<f64> {
        self.last_gpu_ms
    }

    /// Composites and reads the result back: the frame-size 8-bit alpha (as the composite shows it) into
    /// `alpha`, the picture into `out` (RGB, or RGBA for a transparent background).
    pub fn composite_to_cpu(
        &mut self,
        frame: &Frame,
        matte: &Matte,
        alpha: &mut Vec<u8>,
        out: &mut Composite,
    ) -> Result<(), CompositeError> {
        self.composite_pixels_to_cpu(PixelData::Rgb(&frame.rgb), frame.width, frame.height, matte, alpha, out)
    }

    /// As [`Self::composite_to_cpu`] for a frame in any camera format.
    pub fn composite_pixels_to_cpu(
        &mut self,
        pixels: PixelData<'_>,
        width: u32,
        height: u32,
        matte: &Matte,
        alpha: &mut Vec<u8>,
        out: &mut Composite,
    ) -> Result<(), CompositeError> {
        self.render(pixels, width, height, matte)?;
        let plan = self.plan.as_ref().expect("planned by render");
        let mut rgba = std::mem::take(&mut self.rgba);
        let result = self.readback.read_rgba(&self.ctx, &plan.composite_texture, &mut rgba);
        if result.is_ok() {
            alpha.clear();
            alpha.extend(rgba.chunks_exact(4).map(|p| p[3]));
            if let Some(split) = &plan.split_texture {
                let result = self.readback.read_rgba(&self.ctx, split, &mut rgba);
                if result.is_ok() {
                    fill_composite(out, split.width(), split.height(), false, &rgba);
                }
                result?;
            } else {
                fill_composite(out, width, height, self.settings.background.has_alpha(), &rgba);
            }
        }
        self.rgba = rgba;
        result?;
        self.read_timer()?;
        Ok(())
    }

    /// Composites into the GPU texture the window shows (RGBA8, alpha in A), without reading it back.
    pub fn render(
        &mut self,
        pixels: PixelData<'_>,
        width: u32,
        height: u32,
        matte: &Matte,
    ) -> Result<&wgpu::Texture, CompositeError> {
        pixels.check(width, height).map_err(GpuError::from)?;
        if matte.width > width || matte.height > height || matte.width == 0 || matte.height == 0 {
            return Err(GpuError::MatteSize {
                matte_w: matte.width,
                matte_h: matte.height,
                frame_w: width,
                frame_h: height,
            }
            .into());
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
        let picture_due = match (&picture, &plan.picture_input) {
            (Some(Picture { rgb, fresh, .. }), Some(buffer)) if *fresh || !plan.picture_ready => {
                write_padded(queue, buffer, rgb);
                plan.picture_ready = true;
                true
            }
            _ => false,
        };
        let params = CompositeParams { has_foreground: foreground.is_some() as u32, ..plan.base_params };
        queue.write_buffer(&plan.composite_params, 0, bytemuck::bytes_of(&params));

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
            let picture_passes = if picture_due { &plan.picture[..] } else { &[] };
            for dispatch in plan.convert.iter().chain(foreground_passes).chain(picture_passes).chain(&plan.main) {
                pass.set_pipeline(&dispatch.pipeline);
                pass.set_bind_group(0, &dispatch.bind_group, &[]);
                let [x, y, z] = dispatch.workgroups;
                pass.dispatch_workgroups(x, y, z);
            }
        }
        let copy_time = self.harvest_background_time();
        if let Some(timer) = &self.timer
            && copy_time
        {
            encoder.resolve_query_set(&timer.queries, 0..2, &timer.resolve, 0);
            encoder.copy_buffer_to_buffer(&timer.resolve, 0, &timer.staging, 0, 16);
        }
        self.ctx.queue.submit([encoder.finish()]);
        if let Some(timer) = &self.timer
            && copy_time
            && !timer.blocking
        {
            timer.staging_state.store(STAGING_MAPPING, Ordering::Release);
            let state = Arc::clone(&timer.staging_state);
            timer.staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
                state.store(if result.is_ok() { STAGING_MAPPED } else { STAGING_FREE }, Ordering::Release);
            });
        }
        self.ctx.take_error()?;
        let plan = self.plan.as_ref().expect("planned above");
        Ok(plan.split_texture.as_ref().unwrap_or(&plan.composite_texture))
    }

    fn read_timer(&mut self) -> Result<(), GpuError> {
        let Some(timer) = self.timer.as_ref().filter(|timer| timer.blocking) else {
            return Ok(());
        };
        map_for_reading(&self.ctx, &timer.staging)?;
        let read = timer.read_mapped_ms(&self.ctx.queue);
        timer.staging.unmap();
        self.last_gpu_ms = Some(read?);
        Ok(())
    }
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

/// `queue.write_buffer` needs a multiple of four bytes: the tail goes in zero-padded.
fn write_padded(queue: &wgpu::Queue, buffer: &wgpu::Buffer, bytes: &[u8]) {
    let whole = bytes.len() / 4 * 4;
    if whole > 0 {
        queue.write_buffer(buffer, 0, &bytes[..whole]);
    }
    if whole < bytes.len() {
        let mut tail = [0u8; 4];
        tail[..bytes.len() - whole].copy_from_slice(&bytes[whole..]);
        queue.write_buffer(buffer, whole as u64, &tail);
    }
}

/// Makes buffers and dispatches while checking sizes against the device's limits.
struct Builder<'a> {
    device: &'a wgpu::Device,
    max_binding: u64,
}

enum Input<'a> {
    Planes(&'a wgpu::Buffer),
    Packed(&'a wgpu::Buffer),
}

impl Builder<'_> {
    fn storage(&self, what: &'static str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
        let bytes = bytes.max(4).div_ceil(4) * 4;
        if bytes > self.max_binding {
            return Err(GpuError::TooLarge { what, bytes, max: self.max_binding });
        }
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(what),
            size: bytes,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        }))
    }

    fn floats(&self, what: &'static str, count: u64) -> Result<wgpu::Buffer, GpuError> {
        self.storage(what, count * 4)
    }

    fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    fn data(&self, contents: &[u8]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("table"),
            contents,
            usage: wgpu::BufferUsages::STORAGE,
        })
    }

    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        entries: &[(u32, wgpu::BindingResource<'_>)],
        threads: [u32; 3],
    ) -> Dispatch {
        let entries: Vec<wgpu::BindGroupEntry<'_>> = entries
            .iter()
            .map(|(binding, resource)| wgpu::BindGroupEntry { binding: *binding, resource: resource.clone() })
            .collect();
        let bind_group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        Dispatch {
            pipeline: pipeline.clone(),
            bind_group,
            workgroups: [threads[0].div_ceil(WORKGROUP), threads[1].div_ceil(WORKGROUP), threads[2]],
        }
    }

    /// Horizontal then vertical pass of `resampler` from `input` into `output` (planes of f32), each value
    /// times `scale` at the end.
    fn resample(
        &self,
        pipelines: &Pipelines,
        resampler: &Resampler,
        input: Input<'_>,
        output: &wgpu::Buffer,
        channels: u32,
        scale: f32,
    ) -> Result<[Dispatch; 2], GpuError> {
        let ((src_w, src_h), (dst_w, dst_h)) = (resampler.src_size(), resampler.dst_size());
        let (horizontal, vertical) = resampler.packed_taps();
        let horizontal = self.data(bytemuck::cast_slice(&horizontal));
        let vertical = self.data(bytemuck::cast_slice(&vertical));
        let params = self.uniform(&ResampleParams { src_w, src_h, dst_w, dst_h, scale, offset: 0.0, _pad: [0; 2] });
        let middle = self.floats("resample rows", channels as u64 * dst_w as u64 * src_h as u64)?;
        // Planes and packed RGBA8 enter through their own entry point and binding.
        let (pipeline, (binding, src)) = match input {
            Input::Planes(src) => (&pipelines.resample_h, (2, src)),
            Input::Packed(src) => (&pipelines.resample_h_packed, (4, src)),
        };
        let first = self.dispatch(
            pipeline,
            &[
                (0, params.as_entire_binding()),
                (1, horizontal.as_entire_binding()),
                (binding, src.as_entire_binding()),
                (3, middle.as_entire_binding()),
            ],
            [dst_w, src_h, channels],
        );
        let second = self.dispatch(
            &pipelines.resample_v,
            &[
                (0, params.as_entire_binding()),
                (1, vertical.as_entire_binding()),
                (2, middle.as_entire_binding()),
                (3, output.as_entire_binding()),
            ],
            [dst_w, dst_h, channels],
        );
        Ok([first, second])
    }

    fn convert(
        &self,
        pipeline: &wgpu::ComputePipeline,
        input: &wgpu::Buffer,
        output: &wgpu::Buffer,
        width: u32,
        height: u32,
    ) -> Dispatch {
        let params = self.uniform(&ConvertParams { width, height, _pad: [0; 2] });
        self.dispatch(
            pipeline,
            &[(0, params.as_entire_binding()), (1, input.as_entire_binding()), (2, output.as_entire_binding())],
            [width, height, 1],
        )
    }
}

fn output_texture(device: &wgpu::Device, label: &str, width: u32, height: u32) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size: wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: wgpu::TextureUsages::STORAGE_BINDING
            | wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_SRC,
        view_formats: &[],
    })
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
    let limits = device.limits();
    let b = Builder { device, max_binding: limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) };
    let (w, h) = (key.width, key.height);
    let max_side = limits.max_texture_dimension_2d;
    if w > max_side || h > max_side {
        return Err(GpuError::TooLarge {
            what: "the frame texture",
            bytes: w as u64 * h as u64 * 4,
            max: max_side as u64,
        });
    }
    let n = w as u64 * h as u64;
    let (lw, lh) = (key.matte_w, key.matte_h);
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
    // Alpha to frame size, into `current`.
    let alpha_low = b.floats("matte", lw as u64 * lh as u64)?;
    let mut current = b.floats("alpha", n)?;
    let mut other = b.floats("alpha scratch", n)?;
    let upsample = if (lw, lh) == (w, h) { Upsample::Area } else { settings.upsample };
    match upsample {
        Upsample::Area | Upsample::Bilinear => {
            let kind = if upsample == Upsample::Area { ResampleKind::Area } else { ResampleKind::Bilinear };
            let resampler = Resampler::new(kind, lw, lh, w, h);
            main.extend(b.resample(pipelines, &resampler, Input::Planes(&alpha_low), &current, 1, 1.0)?);
        }
        Upsample::Guided => {
            let n_low = lw as u64 * lh as u64;
            let guide = b.floats("guide", 3 * n_low)?;
            let down = Resampler::new(ResampleKind::Area, w, h, lw, lh);
            main.extend(b.resample(pipelines, &down, Input::Packed(&frame), &guide, 3, 1.0 / 255.0)?);
            let stats = b.floats("guided statistics", GUIDED_STATS as u64 * n_low)?;
            let coefficients = b.floats("guided coefficients", 4 * n_low)?;
            let smoothing = b.floats("guided smoothing", 4 * n_low)?;
            let params = b.uniform(&GuidedParams {
                width: lw,
                height: lh,
                radius: GUIDED_RADIUS_PX as u32,
                channels: 4,
                eps: GUIDED_EPS,
                full_w: w,
                full_h: h,
                _pad: 0,
            });
            let low = [lw, lh, 1];
            main.push(b.dispatch(
                &pipelines.stats_h,
                &[
                    (0, params.as_entire_binding()),
                    (1, guide.as_entire_binding()),
                    (2, alpha_low.as_entire_binding()),
                    (4, stats.as_entire_binding()),
                ],
                low,
            ));
            let pass = |pipeline, src: &wgpu::Buffer, dst: &wgpu::Buffer, threads| {
                b.dispatch(
                    pipeline,
                    &[(0, params.as_entire_binding()), (3, src.as_entire_binding()), (4, dst.as_entire_binding())],
                    threads,
                )
            };
            main.push(pass(&pipelines.coefficients_v, &stats, &coefficients, low));
            main.push(pass(&pipelines.mean_h, &coefficients, &smoothing, [lw, lh, 4]));
            main.push(pass(&pipelines.mean_v, &smoothing, &coefficients, [lw, lh, 4]));
            let full_coefficients = b.floats("guided coefficients at frame size", 4 * n)?;
            let up = Resampler::new(ResampleKind::Bilinear, lw, lh, w, h);
            main.extend(b.resample(pipelines, &up, Input::Planes(&coefficients), &full_coefficients, 4, 1.0)?);
            main.push(b.dispatch(
                &pipelines.guided_apply,
                &[
                    (0, params.as_entire_binding()),
                    (3, full_coefficients.as_entire_binding()),
                    (4, current.as_entire_binding()),
                    (5, frame.as_entire_binding()),
                ],
                [w, h, 1],
            ));
        }
    }

    // Edge controls, ping-ponging so `current` always holds the latest alpha.
    let edges = settings.edges.clamped();
    let edge_params = |radius: u32| EdgeParams {
        width: w,
        height: h,
        radius,
        erode: (edges.shrink_px > 0) as u32,
        threshold: edges.threshold,
        contrast: edges.contrast,
        _pad: [0; 2],
    };
    // `weights`: the feather passes' Gaussian, bound only by them.
    let mut edge_pass = |pipeline: &wgpu::ComputePipeline,
                         radius: u32,
                         weights: Option<&wgpu::Buffer>,
                         current: &mut wgpu::Buffer,
                         other: &mut wgpu::Buffer| {
        let params = b.uniform(&edge_params(radius));
        let mut entries =
            vec![(0, params.as_entire_binding()), (1, current.as_entire_binding()), (2, other.as_entire_binding())];
        entries.extend(weights.map(|weights| (3, weights.as_entire_binding())));
        main.push(b.dispatch(pipeline, &entries, [w, h, 1]));
        std::mem::swap(current, other);
    };
    if edges.has_curve() {
        edge_pass(&pipelines.curve, 0, None, &mut current, &mut other);
    }
    if edges.shrink_px != 0 {
        let radius = edges.shrink_px.unsigned_abs();
        edge_pass(&pipelines.morph_h, radius, None, &mut current, &mut other);
        edge_pass(&pipelines.morph_v, radius, None, &mut current, &mut other);
    }
    if edges.feather_px > 0 {
        let weights = b.data(bytemuck::cast_slice(&edges.feather_weights()));
        edge_pass(&pipelines.feather_h, edges.feather_px, Some(&weights), &mut current, &mut other);
        edge_pass(&pipelines.feather_v, edges.feather_px, Some(&weights), &mut current, &mut other);
    }

    // Background planes.
    let mut picture = Vec::new();
    let mut picture_input = None;
    let background = match (&settings.background, key.picture) {
        (Background::Blur { radius_px }, _) => {
            let planes = b.floats("background", 3 * n)?;
            let (sw, sh, radius) = blur_geometry(*radius_px, w, h);
            let small = b.floats("blur", 3 * sw as u64 * sh as u64)?;
            let small_scratch = b.floats("blur scratch", 3 * sw as u64 * sh as u64)?;
            let down = Resampler::new(ResampleKind::Area, w, h, sw, sh);
            main.extend(b.resample(pipelines, &down, Input::Packed(&frame), &small, 3, 1.0 / 255.0)?);
            if radius > 0 {
                let params = b.uniform(&BlurParams { width: sw, height: sh, radius, _pad: 0 });
                for _ in 0..BLUR_PASSES {
                    for (pipeline, src, dst) in
                        [(&pipelines.box_h, &small, &small_scratch), (&pipelines.box_v, &small_scratch, &small)]
                    {
                        main.push(b.dispatch(
                            pipeline,
                            &[
                                (0, params.as_entire_binding()),
                                (1, src.as_entire_binding()),
                                (2, dst.as_entire_binding()),
                            ],
                            [sw, sh, 3],
                        ));
                    }
                }
            }
            let up = Resampler::new(ResampleKind::Bilinear, sw, sh, w, h);
            main.extend(b.resample(pipelines, &up, Input::Planes(&small), &planes, 3, 1.0)?);
            planes
        }
        (Background::Image(_) | Background::Video(_), Some((pw, ph))) => {
            let planes = b.floats("background", 3 * n)?;
            let bytes = b.storage("background picture input", pw as u64 * ph as u64 * 3)?;
            let packed = b.storage("background picture", pw as u64 * ph as u64 * 4)?;
            picture.push(b.convert(&pipelines.rgb8, &bytes, &packed, pw, ph));
            let fit = Resampler::cover(ResampleKind::Bilinear, pw, ph, w, h);
            picture.extend(b.resample(pipelines, &fit, Input::Packed(&packed), &planes, 3, 1.0 / 255.0)?);
            picture_input = Some(bytes);
            planes
        }
        _ => b.floats("no background", 4)?,
    };

    let composite_texture = output_texture(device, "composite", w, h);
    let composite_view = composite_texture.create_view(&Default::default());
    let (mode, colour) = match &settings.background {
        Background::Color(c) => (0, [c[0] as f32, c[1] as f32, c[2] as f32, 255.0]),
        Background::Transparent { premultiplied: false } => (2, [0.0; 4]),
        Background::Transparent { premultiplied: true } => (3, [0.0; 4]),
        _ => (1, [0.0; 4]),
    };
    let base_params = CompositeParams {
        width: w,
        height: h,
        mode,
        mirror: settings.mirror as u32,
        background_mirror: (settings.mirror && settings.background.follows_frame()) as u32,
        has_foreground: 0,
        // The split view draws its own checkerboard from the composite's alpha.
        display: (display && settings.view == View::Composite) as u32,
        _pad: 0,
        colour,
    };
    let composite_params = b.uniform(&base_params);
    main.push(b.dispatch(
        &pipelines.composite,
        &[
            (0, composite_params.as_entire_binding()),
            (1, frame.as_entire_binding()),
            (2, foreground.as_entire_binding()),
            (3, current.as_entire_binding()),
            (4, background.as_entire_binding()),
            (5, wgpu::BindingResource::TextureView(&composite_view)),
        ],
        [w, h, 1],
    ));

    let split_texture = if settings.view == View::Split {
        let (panel_w, panel_h) = ((w / 2).max(1), (h / 2).max(1));
        let texture = output_texture(device, "split view", 3 * panel_w, panel_h);
        let view = texture.create_view(&Default::default());
        let params = b.uniform(&SplitParams {
            width: w,
            height: h,
            panel_w,
            panel_h,
            mirror: settings.mirror as u32,
            alpha_mode: mode.saturating_sub(1),
            checker_px: CHECKER_PX,
            _pad: 0,
        });
        main.push(b.dispatch(
            &pipelines.split,
            &[
                (0, params.as_entire_binding()),
                (1, frame.as_entire_binding()),
                (2, current.as_entire_binding()),
                (3, wgpu::BindingResource::TextureView(&composite_view)),
                (4, wgpu::BindingResource::TextureView(&view)),
            ],
            [3 * panel_w, panel_h, 1],
        ));
        Some(texture)
    } else {
        None
    };
    ctx.take_error()?;
    Ok(Plan {
        key,
        input,
        foreground_input,
        picture_input,
        alpha_low,
        composite_params,
        base_params,
        composite_texture,
        split_texture,
        convert,
        convert_foreground,
        picture,
        main,
        picture_ready: false,
    })
}
