//! Uniform blocks, byte for byte as the WGSL structs they feed. Each names its shader: change both together.

use bytemuck::{Pod, Zeroable};

/// `shaders/convert.wgsl` `ConvertParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ConvertParams {
    pub width: u32,
    pub height: u32,
    pub _pad: [u32; 2],
}

/// `shaders/resample.wgsl` `ResampleParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct ResampleParams {
    pub src_w: u32,
    pub src_h: u32,
    pub dst_w: u32,
    pub dst_h: u32,
    pub scale: f32,
    pub offset: f32,
    pub _pad: [u32; 2],
}

/// `shaders/guided.wgsl` `GuidedParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct GuidedParams {
    pub width: u32,
    pub height: u32,
    pub radius: u32,
    pub channels: u32,
    pub eps: f32,
    pub full_w: u32,
    pub full_h: u32,
    pub _pad: u32,
}

/// `shaders/edges.wgsl` `EdgeParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct EdgeParams {
    pub width: u32,
    pub height: u32,
    pub radius: u32,
    pub erode: u32,
    pub threshold: f32,
    pub contrast: f32,
    pub _pad: [u32; 2],
}

/// `shaders/blur.wgsl` `BlurParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct BlurParams {
    pub width: u32,
    pub height: u32,
    pub radius: u32,
    pub _pad: u32,
}

/// `shaders/composite.wgsl` `CompositeParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct CompositeParams {
    pub width: u32,
    pub height: u32,
    pub mode: u32,
    pub mirror: u32,
    pub background_mirror: u32,
    pub has_foreground: u32,
    pub _pad: [u32; 2],
    pub colour: [f32; 4],
}

/// `shaders/split.wgsl` `SplitParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct SplitParams {
    pub width: u32,
    pub height: u32,
    pub panel_w: u32,
    pub panel_h: u32,
    pub mirror: u32,
    pub alpha_mode: u32,
    pub checker_px: u32,
    pub _pad: u32,
}

/// `shaders/display.wgsl` `DisplayParams`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct DisplayParams {
    pub width: u32,
    pub height: u32,
    /// 0: opaque, 1: straight alpha, 2: premultiplied.
    pub mode: u32,
    pub checker_px: u32,
}
