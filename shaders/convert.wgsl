// Camera pixel formats to packed RGBA8 (one u32 a pixel, alpha 255). Matches `color::rgb_from_ycbcr`
// (BT.601 limited range) and the RGB unpacking the CPU reference does.
// Uniforms: `gpu::uniforms::ConvertParams`.

struct ConvertParams {
    width: u32,
    height: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> params: ConvertParams;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;

fn byte_at(i: u32) -> u32 {
    return (src[i >> 2u] >> ((i & 3u) * 8u)) & 0xffu;
}

fn pack(r: u32, g: u32, b: u32) -> u32 {
    return r | (g << 8u) | (b << 16u) | (255u << 24u);
}

fn to_u8(x: f32) -> u32 {
    return u32(floor(clamp(x, 0.0, 255.0) + 0.5));
}

fn rgb_from_ycbcr(y: u32, u: u32, v: u32) -> u32 {
    let c = 1.1643836 * (f32(y) - 16.0);
    let d = f32(u) - 128.0;
    let e = f32(v) - 128.0;
    let r = c + 1.5960268 * e;
    let g = c - 0.3917623 * d - 0.8129676 * e;
    let b = c + 2.0172322 * d;
    return pack(to_u8(r), to_u8(g), to_u8(b));
}

@compute @workgroup_size(16, 16)
fn rgb8(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let i = id.y * params.width + id.x;
    dst[i] = pack(byte_at(3u * i), byte_at(3u * i + 1u), byte_at(3u * i + 2u));
}

// Y0 U Y1 V: one u32 holds a pair of pixels.
@compute @workgroup_size(16, 16)
fn yuyv(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let i = id.y * params.width + id.x;
    let word = src[i >> 1u];
    let y = select(word & 0xffu, (word >> 16u) & 0xffu, (i & 1u) == 1u);
    dst[i] = rgb_from_ycbcr(y, (word >> 8u) & 0xffu, word >> 24u);
}

// The Y plane, then U V interleaved at half resolution both ways.
@compute @workgroup_size(16, 16)
fn nv12(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let w = params.width;
    let i = id.y * w + id.x;
    let chroma = w * params.height + (id.y / 2u) * w + (id.x & ~1u);
    dst[i] = rgb_from_ycbcr(byte_at(i), byte_at(chroma), byte_at(chroma + 1u));
}
