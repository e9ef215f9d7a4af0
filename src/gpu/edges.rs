//! Edge controls on the GPU: `composite::edges`' contrast curve, erode / dilate and feather as dispatches
//! of `edges.wgsl`, ping-ponging between two frame-size alpha buffers.

use super::pipelines::{Builder, Dispatch};
use super::uniforms::EdgeParams;
use crate::composite::EdgeControls;

/// The edge passes' uniform buffers, so that a threshold or contrast change rewrites them in place.
#[derive(Default)]
pub struct EdgeUniforms {
    /// Each pass's buffer and radius.
    passes: Vec<(wgpu::Buffer, u32)>,
}

impl EdgeUniforms {
    /// Writes `edges`' threshold and contrast into every pass (the passes themselves are unchanged).
    pub fn rewrite(&self, queue: &wgpu::Queue, edges: &EdgeControls, (w, h): (u32, u32)) {
        for (buffer, radius) in &self.passes {
            queue.write_buffer(buffer, 0, bytemuck::bytes_of(&params(edges, w, h, *radius)));
        }
    }
}

fn params(edges: &EdgeControls, width: u32, height: u32, radius: u32) -> EdgeParams {
    EdgeParams {
        width,
        height,
        radius,
        erode: (edges.shrink_px > 0) as u32,
        threshold: edges.threshold,
        contrast: edges.contrast,
        _pad: [0; 2],
    }
}

/// The passes `edges` asks for. `current` holds the alpha before and after (the buffers are swapped as
/// the passes ping-pong).
pub fn plan_edges(
    b: &Builder<'_>,
    edges: &EdgeControls,
    (w, h): (u32, u32),
    current: &mut wgpu::Buffer,
    other: &mut wgpu::Buffer,
    main: &mut Vec<Dispatch>,
) -> EdgeUniforms {
    let p = b.pipelines;
    let edges = edges.clamped();
    let mut uniforms = EdgeUniforms::default();
    // `weights`: the feather passes' Gaussian, bound only by them.
    let mut pass = |pipeline: &wgpu::ComputePipeline,
                    radius: u32,
                    weights: Option<&wgpu::Buffer>,
                    current: &mut wgpu::Buffer,
                    other: &mut wgpu::Buffer| {
        let buffer = b.uniform(&params(&edges, w, h, radius));
        let mut entries =
            vec![(0, buffer.as_entire_binding()), (1, current.as_entire_binding()), (2, other.as_entire_binding())];
        entries.extend(weights.map(|weights| (3, weights.as_entire_binding())));
        main.push(b.dispatch(pipeline, &entries, [w, h, 1]));
        uniforms.passes.push((buffer, radius));
        std::mem::swap(current, other);
    };
    if edges.has_curve() {
        pass(&p.curve, 0, None, current, other);
    }
    if edges.shrink_px != 0 {
        let radius = edges.shrink_px.unsigned_abs();
        pass(&p.morph_h, radius, None, current, other);
        pass(&p.morph_v, radius, None, current, other);
    }
    if edges.feather_px > 0 {
        let weights = b.data(bytemuck::cast_slice(&edges.feather_weights()));
        pass(&p.feather_h, edges.feather_px, Some(&weights), current, other);
        pass(&p.feather_v, edges.feather_px, Some(&weights), current, other);
    }
    uniforms
}
