//! Every compute pipeline, built once per compositor, and the helpers that make a plan's buffers and
//! dispatches while checking sizes against the device's limits.

use wgpu::util::DeviceExt;

use super::GpuError;
use super::uniforms::{ConvertParams, ResampleParams};
use crate::resample::Resampler;

pub const WORKGROUP: u32 = 16;

pub struct Pipelines {
    pub rgb8: wgpu::ComputePipeline,
    pub yuyv: wgpu::ComputePipeline,
    pub nv12: wgpu::ComputePipeline,
    pub resample_h: wgpu::ComputePipeline,
    pub resample_h_packed: wgpu::ComputePipeline,
    pub resample_v: wgpu::ComputePipeline,
    pub stats_h: wgpu::ComputePipeline,
    pub coefficients_v: wgpu::ComputePipeline,
    pub mean_h: wgpu::ComputePipeline,
    pub mean_v: wgpu::ComputePipeline,
    pub guided_apply: wgpu::ComputePipeline,
    pub curve: wgpu::ComputePipeline,
    pub morph_h: wgpu::ComputePipeline,
    pub morph_v: wgpu::ComputePipeline,
    pub feather_h: wgpu::ComputePipeline,
    pub feather_v: wgpu::ComputePipeline,
    pub box_h: wgpu::ComputePipeline,
    pub box_v: wgpu::ComputePipeline,
    pub composite: wgpu::ComputePipeline,
    pub split: wgpu::ComputePipeline,
    pub display: wgpu::ComputePipeline,
}

impl Pipelines {
    pub fn new(device: &wgpu::Device) -> Self {
        let convert = device.create_shader_module(wgpu::include_wgsl!("../../shaders/convert.wgsl"));
        let resample = device.create_shader_module(wgpu::include_wgsl!("../../shaders/resample.wgsl"));
        let guided = device.create_shader_module(wgpu::include_wgsl!("../../shaders/guided.wgsl"));
        let edges = device.create_shader_module(wgpu::include_wgsl!("../../shaders/edges.wgsl"));
        let blur = device.create_shader_module(wgpu::include_wgsl!("../../shaders/blur.wgsl"));
        let composite = device.create_shader_module(wgpu::include_wgsl!("../../shaders/composite.wgsl"));
        let split = device.create_shader_module(wgpu::include_wgsl!("../../shaders/split.wgsl"));
        let display = device.create_shader_module(wgpu::include_wgsl!("../../shaders/display.wgsl"));
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
            display: make(&display, "main"),
        }
    }
}

/// One dispatch of a planned frame.
pub struct Dispatch {
    pub pipeline: wgpu::ComputePipeline,
    pub bind_group: wgpu::BindGroup,
    pub workgroups: [u32; 3],
}

/// Where a resampling pass reads from.
pub enum Input<'a> {
    /// Planes of f32.
    Planes(&'a wgpu::Buffer),
    /// Packed RGBA8.
    Packed(&'a wgpu::Buffer),
}

/// Makes buffers and dispatches while checking sizes against the device's limits.
pub struct Builder<'a> {
    pub device: &'a wgpu::Device,
    pub pipelines: &'a Pipelines,
    pub max_binding: u64,
}

impl<'a> Builder<'a> {
    pub fn new(device: &'a wgpu::Device, pipelines: &'a Pipelines) -> Self {
        let limits = device.limits();
        Self { device, pipelines, max_binding: limits.max_storage_buffer_binding_size.min(limits.max_buffer_size) }
    }

    pub fn storage(&self, what: &'static str, bytes: u64) -> Result<wgpu::Buffer, GpuError> {
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

    pub fn floats(&self, what: &'static str, count: u64) -> Result<wgpu::Buffer, GpuError> {
        self.storage(what, count * 4)
    }

    /// A uniform buffer that can be rewritten when only a value changes.
    pub fn uniform<T: bytemuck::Pod>(&self, value: &T) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("params"),
            contents: bytemuck::bytes_of(value),
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        })
    }

    pub fn data(&self, contents: &[u8]) -> wgpu::Buffer {
        self.device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("table"),
            contents,
            usage: wgpu::BufferUsages::STORAGE,
        })
    }

    pub fn dispatch(
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
    pub fn resample(
        &self,
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
            Input::Planes(src) => (&self.pipelines.resample_h, (2, src)),
            Input::Packed(src) => (&self.pipelines.resample_h_packed, (4, src)),
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
            &self.pipelines.resample_v,
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

    /// RGB8 (or a camera format) into packed RGBA8.
    pub fn convert(
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

    /// An RGBA8 texture shaders write, the window samples and the readback copies.
    pub fn output_texture(&self, label: &str, width: u32, height: u32) -> wgpu::Texture {
        let size = wgpu::Extent3d { width, height, depth_or_array_layers: 1 };
        rgba_texture(self.device, label, size, wgpu::TextureUsages::STORAGE_BINDING)
    }
}

/// A 2D RGBA8 texture the window can sample and copies can fill or read, plus `usage`.
pub fn rgba_texture(
    device: &wgpu::Device,
    label: &str,
    size: wgpu::Extent3d,
    usage: wgpu::TextureUsages,
) -> wgpu::Texture {
    device.create_texture(&wgpu::TextureDescriptor {
        label: Some(label),
        size,
        mip_level_count: 1,
        sample_count: 1,
        dimension: wgpu::TextureDimension::D2,
        format: wgpu::TextureFormat::Rgba8Unorm,
        usage: usage
            | wgpu::TextureUsages::TEXTURE_BINDING
            | wgpu::TextureUsages::COPY_SRC
            | wgpu::TextureUsages::COPY_DST,
        view_formats: &[],
    })
}

/// `queue.write_buffer` needs a multiple of four bytes: the tail goes in zero-padded.
pub fn write_padded(queue: &wgpu::Queue, buffer: &wgpu::Buffer, bytes: &[u8]) {
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
