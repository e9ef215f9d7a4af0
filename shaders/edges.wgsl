// Edge controls on the frame-size alpha: contrast curve, erode / dilate, feather. The same steps as
// `composite::edges::apply_edges`, one dispatch per pass, ping-ponging between two buffers.
// Uniforms: `gpu::uniforms::EdgeParams`.

struct EdgeParams {
    width: u32,
    height: u32,
    radius: u32,
    // 1: erode (window minimum), 0: dilate (window maximum).
    erode: u32,
    threshold: f32,
    contrast: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: EdgeParams;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;
// Feather weights for offsets -radius..=radius.
@group(0) @binding(3) var<storage, read> weights: array<f32>;

fn inside(id: vec3<u32>) -> bool {
    return id.x < params.width && id.y < params.height;
}

fn clamped(i: i32, n: u32) -> u32 {
    return u32(clamp(i, 0, i32(n) - 1));
}

@compute @workgroup_size(16, 16)
fn curve(@builtin(global_invocation_id) id: vec3<u32>) {
    if !inside(id) {
        return;
    }
    let i = id.y * params.width + id.x;
    dst[i] = clamp((src[i] - params.threshold) * params.contrast + 0.5, 0.0, 1.0);
}

fn pick(a: f32, b: f32) -> f32 {
    return select(max(a, b), min(a, b), params.erode == 1u);
}

@compute @workgroup_size(16, 16)
fn morph_h(@builtin(global_invocation_id) id: vec3<u32>) {
    if !inside(id) {
        return;
    }
    let r = i32(params.radius);
    let row = id.y * params.width;
    var m = src[row + clamped(i32(id.x) - r, params.width)];
    for (var i = -r + 1; i <= r; i++) {
        m = pick(m, src[row + clamped(i32(id.x) + i, params.width)]);
    }
    dst[row + id.x] = m;
}

@compute @workgroup_size(16, 16)
fn morph_v(@builtin(global_invocation_id) id: vec3<u32>) {
    if !inside(id) {
        return;
    }
    let r = i32(params.radius);
    let w = params.width;
    var m = src[clamped(i32(id.y) - r, params.height) * w + id.x];
    for (var i = -r + 1; i <= r; i++) {
        m = pick(m, src[clamped(i32(id.y) + i, params.height) * w + id.x]);
    }
    dst[id.y * w + id.x] = m;
}

@compute @workgroup_size(16, 16)
fn feather_h(@builtin(global_invocation_id) id: vec3<u32>) {
    if !inside(id) {
        return;
    }
    let r = i32(params.radius);
    let row = id.y * params.width;
    var sum = 0.0;
    for (var i = -r; i <= r; i++) {
        sum += weights[u32(i + r)] * src[row + clamped(i32(id.x) + i, params.width)];
    }
    dst[row + id.x] = sum;
}

@compute @workgroup_size(16, 16)
fn feather_v(@builtin(global_invocation_id) id: vec3<u32>) {
    if !inside(id) {
        return;
    }
    let r = i32(params.radius);
    let w = params.width;
    var sum = 0.0;
    for (var i = -r; i <= r; i++) {
        sum += weights[u32(i + r)] * src[clamped(i32(id.y) + i, params.height) * w + id.x];
    }
    dst[id.y * w + id.x] = sum;
}
