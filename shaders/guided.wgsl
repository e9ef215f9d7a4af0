// Edge-aware alpha upsampling: a colour guided filter (He et al.) fitted at model resolution with the
// downsampled frame as guide, its coefficients smoothed, upsampled (resample.wgsl) and applied to the
// full-resolution frame. Same sums, in the same order, as `composite::upsample::colour_guided_coefficients`.
// Uniforms: `gpu::uniforms::GuidedParams`.

struct GuidedParams {
    // Model resolution.
    width: u32,
    height: u32,
    radius: u32,
    // Planes `mean_h` / `mean_v` average.
    channels: u32,
    eps: f32,
    // Frame resolution (`apply`).
    full_w: u32,
    full_h: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: GuidedParams;
// Guide (3 planes) and alpha at model resolution.
@group(0) @binding(1) var<storage, read> guide: array<f32>;
@group(0) @binding(2) var<storage, read> alpha: array<f32>;
// A pass's input planes and output planes.
@group(0) @binding(3) var<storage, read> src: array<f32>;
@group(0) @binding(4) var<storage, read_write> dst: array<f32>;
// `apply`: the frame (packed RGBA8), the upsampled coefficients (a_r, a_g, a_b, b planes).
@group(0) @binding(5) var<storage, read> frame: array<u32>;

const STATS: u32 = 13u;

fn window(i: u32, n: u32) -> vec2<u32> {
    return vec2<u32>(select(0u, i - params.radius, i >= params.radius), min(i + params.radius + 1u, n));
}

// Statistic `s` of low-resolution pixel `k`: I_r, I_g, I_b, p, I_c * p (3), I_x * I_y (rr rg rb gg gb bb).
fn statistic(s: u32, k: u32) -> f32 {
    let n = params.width * params.height;
    if s < 3u {
        return guide[s * n + k];
    }
    if s == 3u {
        return alpha[k];
    }
    if s < 7u {
        return guide[(s - 4u) * n + k] * alpha[k];
    }
    var pairs = array<vec2<u32>, 6>(
        vec2<u32>(0u, 0u), vec2<u32>(0u, 1u), vec2<u32>(0u, 2u),
        vec2<u32>(1u, 1u), vec2<u32>(1u, 2u), vec2<u32>(2u, 2u),
    );
    let pair = pairs[s - 7u];
    return guide[pair.x * n + k] * guide[pair.y * n + k];
}

// Horizontal window means of the 13 statistics.
@compute @workgroup_size(16, 16)
fn stats_h(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let n = params.width * params.height;
    let range = window(id.x, params.width);
    let count = f32(range.y - range.x);
    for (var s = 0u; s < STATS; s++) {
        var sum = 0.0;
        for (var x = range.x; x < range.y; x++) {
            sum += statistic(s, id.y * params.width + x);
        }
        dst[s * n + id.y * params.width + id.x] = sum / count;
    }
}

fn vertical_mean(plane: u32, x: u32, y: u32) -> f32 {
    let n = params.width * params.height;
    let range = window(y, params.height);
    var sum = 0.0;
    for (var yy = range.x; yy < range.y; yy++) {
        sum += src[plane * n + yy * params.width + x];
    }
    return sum / f32(range.y - range.x);
}

// Vertical means of the statistics, then the window's linear model: a = (cov(I) + eps)^-1 cov(I, p),
// b = mean(p) - a . mean(I). Output planes a_r, a_g, a_b, b.
@compute @workgroup_size(16, 16)
fn coefficients_v(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    var m: array<f32, 13>;
    for (var s = 0u; s < STATS; s++) {
        m[s] = vertical_mean(s, id.x, id.y);
    }
    let eps = params.eps;
    let rr = m[7] - m[0] * m[0] + eps;
    let rg = m[8] - m[0] * m[1];
    let rb = m[9] - m[0] * m[2];
    let gg = m[10] - m[1] * m[1] + eps;
    let gb = m[11] - m[1] * m[2];
    let bb = m[12] - m[2] * m[2] + eps;
    let cov = vec3<f32>(m[4] - m[0] * m[3], m[5] - m[1] * m[3], m[6] - m[2] * m[3]);
    let c00 = gg * bb - gb * gb;
    let c01 = gb * rb - rg * bb;
    let c02 = rg * gb - gg * rb;
    let c11 = rr * bb - rb * rb;
    let c12 = rb * rg - rr * gb;
    let c22 = rr * gg - rg * rg;
    let det = rr * c00 + rg * c01 + rb * c02;
    let inv = 1.0 / det;
    let a0 = inv * (c00 * cov.x + c01 * cov.y + c02 * cov.z);
    let a1 = inv * (c01 * cov.x + c11 * cov.y + c12 * cov.z);
    let a2 = inv * (c02 * cov.x + c12 * cov.y + c22 * cov.z);
    let n = params.width * params.height;
    let k = id.y * params.width + id.x;
    dst[k] = a0;
    dst[n + k] = a1;
    dst[2u * n + k] = a2;
    dst[3u * n + k] = m[3] - a0 * m[0] - a1 * m[1] - a2 * m[2];
}

// Horizontal window means of `channels` planes.
@compute @workgroup_size(16, 16)
fn mean_h(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height || id.z >= params.channels {
        return;
    }
    let n = params.width * params.height;
    let range = window(id.x, params.width);
    var sum = 0.0;
    for (var x = range.x; x < range.y; x++) {
        sum += src[id.z * n + id.y * params.width + x];
    }
    dst[id.z * n + id.y * params.width + id.x] = sum / f32(range.y - range.x);
}

// Vertical window means of `channels` planes.
@compute @workgroup_size(16, 16)
fn mean_v(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height || id.z >= params.channels {
        return;
    }
    dst[id.z * params.width * params.height + id.y * params.width + id.x] = vertical_mean(id.z, id.x, id.y);
}

// alpha = clamp(b + a . I) at frame resolution, `src` holding the upsampled coefficient planes.
@compute @workgroup_size(16, 16)
fn apply(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.full_w || id.y >= params.full_h {
        return;
    }
    let n = params.full_w * params.full_h;
    let i = id.y * params.full_w + id.x;
    let pixel = frame[i];
    var q = src[3u * n + i];
    for (var c = 0u; c < 3u; c++) {
        q += src[c * n + i] * (f32((pixel >> (8u * c)) & 0xffu) / 255.0);
    }
    dst[i] = clamp(q, 0.0, 1.0);
}
