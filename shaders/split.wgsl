// Split view for checking the matte: original | alpha | composite side by side, each at half size (2x2
// means), a transparent composite over a checkerboard. Same arithmetic as `composite::cpu::split_view`.
// Uniforms: `gpu::uniforms::SplitParams`.

struct SplitParams {
    // Frame size.
    width: u32,
    height: u32,
    // Panel size (half the frame, rounded down).
    panel_w: u32,
    panel_h: u32,
    mirror: u32,
    // 0: opaque composite, 1: straight alpha, 2: premultiplied.
    alpha_mode: u32,
    checker_px: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> params: SplitParams;
@group(0) @binding(1) var<storage, read> frame: array<u32>;
@group(0) @binding(2) var<storage, read> alpha: array<f32>;
@group(0) @binding(3) var composite: texture_2d<f32>;
@group(0) @binding(4) var output: texture_storage_2d<rgba8unorm, write>;

fn source_x(x: u32) -> u32 {
    return select(x, params.width - 1u - x, params.mirror == 1u);
}

fn original(x: u32, y: u32) -> vec3<f32> {
    let p = frame[y * params.width + source_x(x)];
    return vec3<f32>(f32(p & 0xffu), f32((p >> 8u) & 0xffu), f32((p >> 16u) & 0xffu));
}

fn matte(x: u32, y: u32) -> vec3<f32> {
    return vec3<f32>(floor(clamp(alpha[y * params.width + source_x(x)], 0.0, 1.0) * 255.0 + 0.5));
}

fn shown(x: u32, y: u32, checker: f32) -> vec3<f32> {
    let p = round(textureLoad(composite, vec2<u32>(x, y), 0) * 255.0);
    if params.alpha_mode == 0u {
        return p.rgb;
    }
    if params.alpha_mode == 2u {
        return p.rgb + checker * (255.0 - p.a) / 255.0;
    }
    return (p.rgb * p.a + checker * (255.0 - p.a)) / 255.0;
}

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let pw = params.panel_w;
    if id.x >= 3u * pw || id.y >= params.panel_h {
        return;
    }
    let panel = id.x / pw;
    let px = id.x % pw;
    let x = 2u * px;
    let y = 2u * id.y;
    var sum: vec3<f32>;
    if panel == 0u {
        sum = original(x, y) + original(x + 1u, y) + original(x, y + 1u) + original(x + 1u, y + 1u);
    } else if panel == 1u {
        sum = matte(x, y) + matte(x + 1u, y) + matte(x, y + 1u) + matte(x + 1u, y + 1u);
    } else {
        let checker = select(102.0, 153.0, ((px / params.checker_px) + (id.y / params.checker_px)) % 2u == 0u);
        sum = shown(x, y, checker) + shown(x + 1u, y, checker) + shown(x, y + 1u, checker) + shown(x + 1u, y + 1u, checker);
    }
    let rgb = floor(sum / 4.0 + 0.5);
    textureStore(output, vec2<u32>(id.x, id.y), vec4<f32>(rgb / 255.0, 1.0));
}
