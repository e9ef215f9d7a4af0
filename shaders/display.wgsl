// What the window shows of a composite: opaque, since egui blends what it draws and the composite carries
// its alpha; a transparent picture over a checkerboard. Same arithmetic as
// `composite::output::display_rgba`.
// Uniforms: `gpu::uniforms::DisplayParams`.

struct DisplayParams {
    width: u32,
    height: u32,
    // 0: an opaque picture (its colours as they are), 1: straight alpha, 2: premultiplied.
    mode: u32,
    // `composite::output::CHECKER_PX`.
    checker_px: u32,
}

@group(0) @binding(0) var<uniform> params: DisplayParams;
@group(0) @binding(1) var composite: texture_2d<f32>;
@group(0) @binding(2) var output: texture_storage_2d<rgba8unorm, write>;

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x >= params.width || id.y >= params.height {
        return;
    }
    // Back to the stored 8-bit values.
    let v = floor(textureLoad(composite, vec2<i32>(i32(id.x), i32(id.y)), 0) * 255.0 + 0.5);
    if params.mode == 0u {
        textureStore(output, vec2<u32>(id.x, id.y), vec4<f32>(v.xyz / 255.0, 1.0));
        return;
    }
    let a = v.w;
    let checker = select(102.0, 153.0, ((id.x / params.checker_px) + (id.y / params.checker_px)) % 2u == 0u);
    var rgb: vec3<f32>;
    if params.mode == 2u {
        rgb = floor(v.xyz + checker * (255.0 - a) / 255.0 + 0.5);
    } else {
        rgb = floor((v.xyz * a + checker * (255.0 - a)) / 255.0 + 0.5);
    }
    textureStore(output, vec2<u32>(id.x, id.y), vec4<f32>(rgb / 255.0, 1.0));
}
