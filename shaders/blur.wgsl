// Box blur of planar RGB (the blurred-original background, at reduced size): each output is the window's
// sum from its lowest index over the window size, edge pixels repeated, as `composite::cpu::box_blur_planes`.
// Uniforms: `gpu::uniforms::BlurParams`.

struct BlurParams {
    width: u32,
    height: u32,
    radius: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: BlurParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn clamped(i: i32, n: u32) -> u32 {
    return u32(clamp(i, 0, i32(n) - 1));
}

@compute @workgroup_size(16, 16)
fn box_h(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let r = i32(params.radius);
    let row = id.z * params.width * params.height + id.y * params.width;
    var sum = 0.0;
    for (var i = -r; i <= r; i++) {
        sum += src[row + clamped(i32(id.x) + i, params.width)];
    }
    dst[row + id.x] = sum / f32(2 * r + 1);
}

@compute @workgroup_size(16, 16)
fn box_v(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let r = i32(params.radius);
    let plane = id.z * params.width * params.height;
    var sum = 0.0;
    for (var i = -r; i <= r; i++) {
        sum += src[plane + clamped(i32(id.y) + i, params.height) * params.width + id.x];
    }
    dst[plane + id.y * params.width + id.x] = sum / f32(2 * r + 1);
}
