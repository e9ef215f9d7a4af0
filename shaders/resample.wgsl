// Separable resampling with tables made on the CPU (`resample::Resampler::packed_taps`), so area,
// bilinear and cover-fit resizing compute exactly the CPU reference's sums. Planar f32 data, one plane
// per channel; `global_invocation_id.z` is the channel.
// Uniforms: `gpu::uniforms::ResampleParams`.

struct ResampleParams {
    src_w: u32,
    src_h: u32,
    dst_w: u32,
    dst_h: u32,
    // Applied after the vertical pass (v * scale + offset), as the CPU reference does.
    scale: f32,
    offset: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: ResampleParams;
// [n, first[n], offsets[n + 1], weight bits...]
@group(0) @binding(1) var<storage, read> taps: array<u32>;
@group(0) @binding(2) var<storage, read> src: array<f32>;
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;
@group(0) @binding(4) var<storage, read> src_packed: array<u32>;

fn tap_first(i: u32) -> u32 {
    return taps[1u + i];
}

fn tap_range(i: u32) -> vec2<u32> {
    let n = taps[0];
    let start = 2u + 2u * n + taps[1u + n + i];
    let end = 2u + 2u * n + taps[2u + n + i];
    return vec2<u32>(start, end);
}

// Input (src_w x src_h) to (dst_w x src_h), f32 planes.
@compute @workgroup_size(16, 16)
fn horizontal(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.dst_w || id.y >= params.src_h {
        return;
    }
    let first = tap_first(id.x);
    let range = tap_range(id.x);
    let row = id.z * params.src_w * params.src_h + id.y * params.src_w + first;
    var acc = 0.0;
    for (var k = range.x; k < range.y; k++) {
        acc += bitcast<f32>(taps[k]) * src[row + (k - range.x)];
    }
    dst[id.z * params.dst_w * params.src_h + id.y * params.dst_w + id.x] = acc;
}

// The same from packed RGBA8 (channel = byte), into f32 planes of byte values.
@compute @workgroup_size(16, 16)
fn horizontal_packed(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.dst_w || id.y >= params.src_h {
        return;
    }
    let first = tap_first(id.x);
    let range = tap_range(id.x);
    let row = id.y * params.src_w + first;
    let shift = id.z * 8u;
    var acc = 0.0;
    for (var k = range.x; k < range.y; k++) {
        acc += bitcast<f32>(taps[k]) * f32((src_packed[row + (k - range.x)] >> shift) & 0xffu);
    }
    dst[id.z * params.dst_w * params.src_h + id.y * params.dst_w + id.x] = acc;
}

// (dst_w x src_h) to (dst_w x dst_h), then scale and offset.
@compute @workgroup_size(16, 16)
fn vertical(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.dst_w || id.y >= params.dst_h {
        return;
    }
    let first = tap_first(id.y);
    let range = tap_range(id.y);
    let plane = id.z * params.dst_w * params.src_h;
    var acc = 0.0;
    for (var k = range.x; k < range.y; k++) {
        acc += bitcast<f32>(taps[k]) * src[plane + (first + k - range.x) * params.dst_w + id.x];
    }
    if params.scale != 1.0 || params.offset != 0.0 {
        acc = acc * params.scale + params.offset;
    }
    dst[id.z * params.dst_w * params.dst_h + id.y * params.dst_w + id.x] = acc;
}
