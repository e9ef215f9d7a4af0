// The person over the background, one pixel per invocation, written to an Rgba8Unorm storage texture that
// the window shows and the engine reads back. Same arithmetic as `composite::output` (`over_colour`,
// `over_planes`, `cutout`): 8-bit alpha, one rounding. Alpha goes to the texture's A channel in every mode
// (the consumers need it; `display.wgsl` makes a transparent picture opaque for the window).
// Uniforms: `gpu::uniforms::CompositeParams`.

struct CompositeParams {
    width: u32,
    height: u32,
    // 0: colour, 1: background planes (image, video, blur), 2: transparent straight, 3: premultiplied.
    mode: u32,
    mirror: u32,
    // The background is made from the frame (blur), so it is mirrored with the person.
    background_mirror: u32,
    // 1: use `foreground` (a model's foreground colours) instead of the frame's.
    has_foreground: u32,
    _pad0: u32,
    _pad1: u32,
    // 0..=255.
    colour: vec4<f32>,
}

@group(0) @binding(0) var<uniform> params: CompositeParams;
@group(0) @binding(1) var<storage, read> frame: array<u32>;
@group(0) @binding(2) var<storage, read> foreground: array<u32>;
@group(0) @binding(3) var<storage, read> alpha: array<f32>;
// Planar RGB in [0, 1] at frame size.
@group(0) @binding(4) var<storage, read> background: array<f32>;
@group(0) @binding(5) var output: texture_storage_2d<rgba8unorm, write>;

fn unpack_rgb(p: u32) -> vec3<f32> {
    return vec3<f32>(f32(p & 0xffu), f32((p >> 8u) & 0xffu), f32((p >> 16u) & 0xffu));
}

fn over(f: f32, b: f32, a: f32) -> f32 {
    return floor((f * a + b * (255.0 - a)) / 255.0 + 0.5);
}

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let w = params.width;
    if id.x >= w || id.y >= params.height {
        return;
    }
    let n = w * params.height;
    let person_x = select(id.x, w - 1u - id.x, params.mirror == 1u);
    let person = id.y * w + person_x;
    let background_x = select(id.x, person_x, params.background_mirror == 1u);
    let b = id.y * w + background_x;
    let a = floor(clamp(alpha[person], 0.0, 1.0) * 255.0 + 0.5);
    var f = unpack_rgb(frame[person]);
    if params.has_foreground == 1u {
        f = unpack_rgb(foreground[person]);
    }
    var rgb: vec3<f32>;
    switch params.mode {
        case 0u: {
            rgb = vec3<f32>(over(f.x, params.colour.x, a), over(f.y, params.colour.y, a), over(f.z, params.colour.z, a));
        }
        case 1u: {
            rgb = vec3<f32>(
                over(f.x, background[b] * 255.0, a),
                over(f.y, background[n + b] * 255.0, a),
                over(f.z, background[2u * n + b] * 255.0, a),
            );
        }
        case 2u: {
            rgb = f;
        }
        default: {
            rgb = floor(f * a / 255.0 + 0.5);
        }
    }
    textureStore(output, vec2<u32>(id.x, id.y), vec4<f32>(rgb, a) / 255.0);
}
