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

fn window(i: u32, n: u32) -> vec2<u32> {
    return vec2<u32>(select(0u, i - params.radius, i >= params.radius), min(i + params.radius + 1u, n));
}

// Horizontal window means of the 13 statistics, planes in this order: I_r, I_g, I_b, p, I_c * p (3),
// I_x * I_y (rr rg rb gg gb bb). Each sum runs over the window from its lowest index, as on the CPU.
@compute @workgroup_size(16, 16)
fn stats_h(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    let n = params.width * params.height;
    let range = window(id.x, params.width);
    var mean_i = vec3<f32>(0.0);
    var mean_p = 0.0;
    var mean_ip = vec3<f32>(0.0);
    var diagonal = vec3<f32>(0.0);
    var off_diagonal = vec3<f32>(0.0);
    for (var x = range.x; x < range.y; x++) {
        let k = id.y * params.width + x;
        let i = vec3<f32>(guide[k], guide[n + k], guide[2u * n + k]);
        let p = alpha[k];
        mean_i += i;
        mean_p += p;
        mean_ip += i * p;
        diagonal += i * i;
        off_diagonal += vec3<f32>(i.x * i.y, i.x * i.z, i.y * i.z);
    }
    let count = f32(range.y - range.x);
    let k = id.y * params.width + id.x;
    mean_i /= count;
    mean_ip /= count;
    diagonal /= count;
    off_diagonal /= count;
    dst[k] = mean_i.x;
    dst[n + k] = mean_i.y;
    dst[2u * n + k] = mean_i.z;
    dst[3u * n + k] = mean_p / count;
    dst[4u * n + k] = mean_ip.x;
    dst[5u * n + k] = mean_ip.y;
    dst[6u * n + k] = mean_ip.z;
    dst[7u * n + k] = diagonal.x;
    dst[8u * n + k] = off_diagonal.x;
    dst[9u * n + k] = off_diagonal.y;
    dst[10u * n + k] = diagonal.y;
    dst[11u * n + k] = off_diagonal.z;
    dst[12u * n + k] = diagonal.z;
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
    let n = params.width * params.height;
    let range = window(id.y, params.height);
    // I_r I_g I_b p | I.p | rr rg rb | gg gb bb
    var s0 = vec4<f32>(0.0);
    var s1 = vec3<f32>(0.0);
    var s2 = vec3<f32>(0.0);
    var s3 = vec3<f32>(0.0);
    for (var yy = range.x; yy < range.y; yy++) {
        let k = yy * params.width + id.x;
        s0 += vec4<f32>(src[k], src[n + k], src[2u * n + k], src[3u * n + k]);
        s1 += vec3<f32>(src[4u * n + k], src[5u * n + k], src[6u * n + k]);
        s2 += vec3<f32>(src[7u * n + k], src[8u * n + k], src[9u * n + k]);
        s3 += vec3<f32>(src[10u * n + k], src[11u * n + k], src[12u * n + k]);
    }
    let count = f32(range.y - range.x);
    let mi = s0.xyz / count;
    let mp = s0.w / count;
    let mip = s1 / count;
    let m2 = s2 / count;
    let m3 = s3 / count;
    let eps = params.eps;
    let rr = m2.x - mi.x * mi.x + eps;
    let rg = m2.y - mi.x * mi.y;
    let rb = m2.z - mi.x * mi.z;
    let gg = m3.x - mi.y * mi.y + eps;
    let gb = m3.y - mi.y * mi.z;
    let bb = m3.z - mi.z * mi.z + eps;
    let cov = mip - mi * mp;
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
    let k = id.y * params.width + id.x;
    dst[k] = a0;
    dst[n + k] = a1;
    dst[2u * n + k] = a2;
    dst[3u * n + k] = mp - a0 * mi.x - a1 * mi.y - a2 * mi.z;
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
