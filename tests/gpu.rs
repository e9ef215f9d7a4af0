//! The GPU compositor against the CPU reference, on a real adapter (lavapipe in CI), and the shaders'
//! validity without one.

mod common;

use std::sync::OnceLock;

use common::*;
use mattecam::color::{PixelData, rgb_from_nv12, rgb_from_yuyv};
use mattecam::composite::output::{blend, display_rgba};
use mattecam::composite::{Background, CompositeSettings, CpuCompositor, EdgeControls, Upsample, View};
use mattecam::frame::{Frame, Matte, Picture};
use mattecam::gpu::{GpuCompositor, GpuError};
use mattecam::infer::{self, ModelKind};
use mattecam::resample::{ResampleKind, Resampler};

#[test]
fn every_shader_validates_with_naga() {
    let mut checked = 0;
    for entry in std::fs::read_dir(root().join("shaders")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|err| panic!("{}: {}", path.display(), err.emit_to_string(&source)));
        naga::valid::Validator::new(naga::valid::ValidationFlags::all(), naga::valid::Capabilities::default())
            .validate(&module)
            .unwrap_or_else(|err| panic!("{}: {}", path.display(), err.emit_to_string(&source)));
        checked += 1;
    }
    assert!(checked >= 7, "only {checked} shaders found");
}

/// A GPU compositor, or `None` (with a note) where no adapter exists outside CI; in CI a missing adapter
/// fails the test.
fn gpu(settings: CompositeSettings) -> Option<GpuCompositor> {
    match GpuCompositor::headless(settings) {
        Ok(gpu) => Some(gpu),
        Err(GpuError::NoAdapter) => {
            assert_ne!(
                std::env::var("CI").as_deref(),
                Ok("true"),
                "CI must have a GPU adapter (mesa-vulkan-drivers gives lavapipe)"
            );
            eprintln!("skipped: no GPU adapter (install mesa-vulkan-drivers for a software one)");
            None
        }
        Err(err) => panic!("GPU compositor: {err}"),
    }
}

/// A demo-clip frame enlarged to 1280x854, and MODNet's real alpha for it at model resolution.
fn sample() -> &'static (Frame, Matte) {
    static SAMPLE: OnceLock<(Frame, Matte)> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let small = demo_frames(&[120]).remove(0);
        let (w, h) = (1280, 854);
        let mut planes = vec![0.0; (w * h * 3) as usize];
        Resampler::new(ResampleKind::Bilinear, small.width, small.height, w, h).rgb8_to_planar(
            &small.rgb,
            &mut planes,
            1.0,
            0.0,
        );
        let n = (w * h) as usize;
        let rgb = (0..n).flat_map(|i| (0..3).map(move |c| (i, c))).map(|(i, c)| planes[c * n + i].round() as u8);
        let frame = Frame { rgb: rgb.collect(), width: w, height: h, ..small };
        let mut matter = infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Modnet), &cpu_options()).unwrap();
        let mut matte = Matte::default();
        matter.infer(&frame, &mut matte).unwrap();
        assert!(matte.width < w && matte.height < h, "the matte must need upsampling");
        (frame, matte)
    })
}

type Outputs = Picture;

fn run_cpu(settings: &CompositeSettings, frame: &Frame, matte: &Matte) -> Outputs {
    let mut cpu = CpuCompositor::new(settings.clone()).unwrap();
    let mut picture = Picture::default();
    cpu.composite(frame, matte, &mut picture).unwrap();
    picture
}

fn run_gpu(gpu: &mut GpuCompositor, frame: &Frame, matte: &Matte) -> Outputs {
    let mut picture = Picture::default();
    gpu.composite(frame, matte, &mut picture).unwrap();
    picture
}

/// Largest per-channel difference, and the share of values that differ at all.
fn difference(a: &[u8], b: &[u8]) -> (u8, f64) {
    assert_eq!(a.len(), b.len());
    let max = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
    let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
    (max, differing as f64 / a.len().max(1) as f64)
}

fn assert_matches(name: &str, gpu: &Outputs, cpu: &Outputs) {
    let (g, c) = (&gpu.composite, &cpu.composite);
    assert_eq!((g.width, g.height, g.channels), (c.width, c.height, c.channels), "{name}: shape");
    let (max, share) = difference(&g.pixels, &c.pixels);
    let (alpha_max, alpha_share) = difference(&gpu.alpha, &cpu.alpha);
    eprintln!(
        "{name}: composite max {max} ({:.4}% differ), alpha max {alpha_max} ({:.4}% differ)",
        share * 100.0,
        alpha_share * 100.0
    );
    assert!(max <= 1, "{name}: GPU and CPU composites differ by up to {max}/255");
    assert!(alpha_max <= 1, "{name}: GPU and CPU alphas differ by up to {alpha_max}/255");
    // The picture must not be trivial: a real matte has both background and person.
    let opaque = cpu.alpha.iter().filter(|&&a| a == 255).count();
    let clear = cpu.alpha.iter().filter(|&&a| a == 0).count();
    assert!(opaque > cpu.alpha.len() / 10 && clear > cpu.alpha.len() / 10, "{name}: alpha is not a real matte");
}

fn compare(name: &str, settings: CompositeSettings) {
    let Some(mut gpu_compositor) = gpu(settings.clone()) else { return };
    let (frame, matte) = sample();
    let cpu = run_cpu(&settings, frame, matte);
    let gpu = run_gpu(&mut gpu_compositor, frame, matte);
    assert_matches(name, &gpu, &cpu);
}

fn with(background: Background) -> CompositeSettings {
    CompositeSettings { background, upsample: Upsample::Bilinear, ..Default::default() }
}

#[test]
fn colour_background_for_every_upsampling() {
    for upsample in [Upsample::Area, Upsample::Bilinear, Upsample::Guided] {
        let settings = CompositeSettings { upsample, ..with(Background::Color([20, 200, 60])) };
        compare(&format!("colour, {upsample:?}"), settings);
    }
}

#[test]
fn blur_background_at_several_strengths_and_mirrored() {
    for radius_px in [0, 6, 24, 60] {
        compare(&format!("blur {radius_px}"), with(Background::Blur { radius_px }));
    }
    compare("blur mirrored", CompositeSettings { mirror: true, ..with(Background::Blur { radius_px: 24 }) });
}

#[test]
fn image_background_cover_fit_and_mirror() {
    let image = Background::Image(fetched("assets/hires.jpg"));
    compare("image", with(image.clone()));
    compare("image, mirrored person", CompositeSettings { mirror: true, ..with(image) });
}

#[test]
fn video_background_plays_frame_after_frame() {
    let settings = with(Background::Video(fetched("assets/demovideo.mp4")));
    let Some(mut gpu_compositor) = gpu(settings.clone()) else { return };
    let mut cpu = CpuCompositor::new(settings).unwrap();
    let (frame, matte) = sample();
    let mut previous: Option<Vec<u8>> = None;
    for i in 0..3 {
        let mut expected = Picture::default();
        cpu.composite(frame, matte, &mut expected).unwrap();
        let got = run_gpu(&mut gpu_compositor, frame, matte);
        assert_matches(&format!("video frame {i}"), &got, &expected);
        if let Some(previous) = &previous {
            assert_ne!(previous, &got.composite.pixels, "the background video must advance");
        }
        previous = Some(got.composite.pixels);
    }
}

#[test]
fn transparent_straight_and_premultiplied() {
    compare("transparent", with(Background::Transparent { premultiplied: false }));
    compare("premultiplied", with(Background::Transparent { premultiplied: true }));
}

#[test]
fn every_edge_control_alone_and_together() {
    let cases = [
        ("curve", EdgeControls { threshold: 0.4, contrast: 3.0, ..Default::default() }),
        ("erode 3", EdgeControls { shrink_px: 3, ..Default::default() }),
        ("dilate 4", EdgeControls { shrink_px: -4, ..Default::default() }),
        ("feather 5", EdgeControls { feather_px: 5, ..Default::default() }),
        ("all", EdgeControls { threshold: 0.6, contrast: 2.0, shrink_px: 2, feather_px: 3 }),
    ];
    for (name, edges) in cases {
        let settings = CompositeSettings { edges, upsample: Upsample::Guided, ..with(Background::Color([0, 0, 255])) };
        compare(name, settings);
    }
}

#[test]
fn split_view_for_opaque_and_transparent_composites() {
    for background in [Background::Color([255, 0, 255]), Background::Transparent { premultiplied: false }] {
        let settings = CompositeSettings { view: View::Split, mirror: true, ..with(background.clone()) };
        let Some(mut gpu_compositor) = gpu(settings.clone()) else { return };
        let (frame, matte) = sample();
        let cpu = run_cpu(&settings, frame, matte);
        let got = run_gpu(&mut gpu_compositor, frame, matte);
        let (got_split, cpu_split) = (got.split.as_ref().unwrap(), cpu.split.as_ref().unwrap());
        assert_eq!((got_split.width, got_split.height), (3 * 640, 427));
        let (max, _) = difference(&got_split.pixels, &cpu_split.pixels);
        assert!(max <= 1, "split view {background:?}: differs by {max}");
        assert_eq!(got.alpha, cpu.alpha);
        // The composite itself comes with the split view: the consumers record it.
        assert!(difference(&got.composite.pixels, &cpu.composite.pixels).0 <= 1);
    }
}

#[test]
fn model_foreground_replaces_the_frame_colours() {
    let settings = with(Background::Color([0, 0, 0]));
    let Some(mut gpu_compositor) = gpu(settings.clone()) else { return };
    let (frame, matte) = sample();
    let mut matte = matte.clone();
    // A foreground as RVM gives one: frame-size RGB, here the frame's negative.
    matte.foreground = Some(frame.rgb.iter().map(|v| 255 - v).collect());
    let cpu = run_cpu(&settings, frame, &matte);
    let got = run_gpu(&mut gpu_compositor, frame, &matte);
    assert_matches("foreground", &got, &cpu);
    let plain = run_cpu(&settings, frame, &Matte { foreground: None, ..matte.clone() });
    assert_ne!(plain.composite.pixels, got.composite.pixels);
}

#[test]
fn transparent_output_over_a_colour_equals_the_colour_mode() {
    let colour = [30, 200, 90];
    let Some(mut rgba_gpu) = gpu(with(Background::Transparent { premultiplied: false })) else { return };
    let mut colour_gpu = gpu(with(Background::Color(colour))).unwrap();
    let (frame, matte) = sample();
    let rgba = run_gpu(&mut rgba_gpu, frame, matte).composite;
    let direct = run_gpu(&mut colour_gpu, frame, matte).composite;
    assert_eq!(rgba.channels, 4);
    let over: Vec<u8> =
        rgba.pixels.chunks_exact(4).flat_map(|p| (0..3).map(move |c| blend(p[c], colour[c], p[3]))).collect();
    assert_eq!(over, direct.pixels);
}

/// What the window draws of a transparent composite (`display.wgsl`: opaque, over the checkerboard) equals
/// the CPU composite seen the same way (`output::display_rgba`); an opaque composite is drawn as it is.
#[test]
fn display_matches_the_cpu_composite_seen_by_the_window() {
    let (frame, matte) = sample();
    for (name, background) in [
        ("colour", Background::Color([32, 192, 64])),
        ("blur", Background::Blur { radius_px: 12 }),
        ("transparent", Background::Transparent { premultiplied: false }),
        ("premultiplied", Background::Transparent { premultiplied: true }),
    ] {
        let settings = CompositeSettings { mirror: true, ..with(background.clone()) };
        let Some(mut display) = gpu(settings.clone()) else { return };
        display.set_display(true);
        display.render(PixelData::Rgb(&frame.rgb), frame.width, frame.height, matte).unwrap();
        let ctx = display.context().clone();
        let (shown, composite) = display.output_textures().unwrap();
        let got = mattecam::gpu::readback::read_texture(&ctx.device, &ctx.queue, shown).unwrap();
        let with_alpha = mattecam::gpu::readback::read_texture(&ctx.device, &ctx.queue, composite).unwrap();
        let cpu = run_cpu(&settings, frame, matte);
        let premultiplied = background == Background::Transparent { premultiplied: true };
        let mut want = Vec::new();
        display_rgba(&cpu.composite, premultiplied, &mut want);
        assert!(got.chunks_exact(4).all(|p| p[3] == 255), "{name}: the window's texture must be opaque");
        let (max, share) = difference(&got, &want);
        eprintln!("display {name}: max {max} ({:.4}% differ)", share * 100.0);
        assert!(max <= 1, "display {name}: GPU and CPU differ by up to {max}/255");
        // The composite keeps its alpha for the consumers that read it back.
        let alpha: Vec<u8> = with_alpha.chunks_exact(4).map(|p| p[3]).collect();
        assert!(difference(&alpha, &cpu.alpha).0 <= 1, "{name}: the composite's alpha");
        if background.has_alpha() {
            // The checkerboard shows through where the person is not.
            let corner = &got[..3];
            assert!(corner == [153, 153, 153] || corner == [102, 102, 102], "{name}: corner {corner:?}");
        }
    }
}

/// The asynchronous readback (a ring of staging buffers, mapped in the background) gives what the
/// waiting one gives, frame for frame, with several frames in flight.
#[test]
fn ring_readback_matches_the_waiting_readback() {
    let settings = with(Background::Blur { radius_px: 12 });
    let Some(mut gpu_compositor) = gpu(settings.clone()) else { return };
    let (frame, matte) = sample();
    let mattes: Vec<Matte> = (0..3)
        .map(|k| Matte {
            alpha: matte.alpha.iter().map(|a| (a * (1.0 - 0.2 * k as f32)).clamp(0.0, 1.0)).collect(),
            ..matte.clone()
        })
        .collect();
    let mut slots = Vec::new();
    for m in &mattes {
        gpu_compositor.render(PixelData::Rgb(&frame.rgb), frame.width, frame.height, m).unwrap();
        slots.push(gpu_compositor.start_readback().unwrap());
    }
    assert_eq!(slots.len(), gpu_compositor.readback_slots());
    for (m, slot) in mattes.iter().zip(slots) {
        let mut got = Picture::default();
        gpu_compositor.finish_readback(slot, false, &mut got).unwrap();
        let want = run_cpu(&settings, frame, m);
        assert_matches_loosely(&got, &want);
    }
}

/// A value change (a colour, the edge threshold, mirroring) rewrites uniforms and keeps the plan; a
/// structural change (another upsampling) rebuilds it. Both give the CPU's picture.
#[test]
fn value_changes_keep_the_plan_and_structural_changes_rebuild_it() {
    let start = CompositeSettings {
        edges: EdgeControls { threshold: 0.5, contrast: 2.0, ..Default::default() },
        ..with(Background::Color([10, 20, 30]))
    };
    let Some(mut gpu_compositor) = gpu(start.clone()) else { return };
    let (frame, matte) = sample();
    run_gpu(&mut gpu_compositor, frame, matte);
    let moved = CompositeSettings {
        background: Background::Color([200, 40, 90]),
        edges: EdgeControls { threshold: 0.62, contrast: 3.5, ..Default::default() },
        mirror: true,
        ..start.clone()
    };
    gpu_compositor.set_settings(moved.clone()).unwrap();
    assert!(gpu_compositor.is_planned(), "a value change must not rebuild the plan");
    assert_matches("values rewritten", &run_gpu(&mut gpu_compositor, frame, matte), &run_cpu(&moved, frame, matte));
    let rebuilt = CompositeSettings { upsample: Upsample::Guided, ..moved };
    gpu_compositor.set_settings(rebuilt.clone()).unwrap();
    assert!(!gpu_compositor.is_planned(), "another upsampling needs other passes");
    assert_matches("rebuilt", &run_gpu(&mut gpu_compositor, frame, matte), &run_cpu(&rebuilt, frame, matte));
}

/// BT.601 limited-range encoding of a frame, for feeding the camera-format paths.
fn ycbcr(rgb: &[u8]) -> (f32, f32, f32) {
    let (r, g, b) = (rgb[0] as f32, rgb[1] as f32, rgb[2] as f32);
    let y = 16.0 + 0.256_788 * r + 0.504_129 * g + 0.097_906 * b;
    let u = 128.0 - 0.148_223 * r - 0.290_993 * g + 0.439_216 * b;
    let v = 128.0 + 0.439_216 * r - 0.367_788 * g - 0.071_427 * b;
    (y, u, v)
}

#[test]
fn yuyv_and_nv12_frames_convert_as_the_cpu_kernels_do() {
    let Some(mut gpu_compositor) = gpu(with(Background::Transparent { premultiplied: false })) else { return };
    let (frame, _) = sample();
    let (w, h) = (frame.width as usize, frame.height as usize);
    let px = |x: usize, y: usize| ycbcr(&frame.rgb[(y * w + x) * 3..(y * w + x) * 3 + 3]);
    let byte = |v: f32| v.round().clamp(0.0, 255.0) as u8;
    let mut yuyv = Vec::with_capacity(w * h * 2);
    for y in 0..h {
        for x in (0..w).step_by(2) {
            let (y0, u, v) = px(x, y);
            let (y1, _, _) = px(x + 1, y);
            yuyv.extend([byte(y0), byte(u), byte(y1), byte(v)]);
        }
    }
    let mut nv12: Vec<u8> = (0..w * h).map(|i| byte(px(i % w, i / w).0)).collect();
    for y in (0..h).step_by(2) {
        for x in (0..w).step_by(2) {
            let (_, u, v) = px(x, y);
            nv12.extend([byte(u), byte(v)]);
        }
    }
    // An opaque matte at frame size: the transparent composite's colours are the converted frame.
    let matte = Matte { width: w as u32, height: h as u32, alpha: vec![1.0; w * h], ..Default::default() };
    for (pixels, name) in [(PixelData::Yuyv(&yuyv), "YUYV"), (PixelData::Nv12(&nv12), "NV12")] {
        let mut expected = Vec::new();
        match pixels {
            PixelData::Yuyv(b) => rgb_from_yuyv(b, w as u32, h as u32, &mut expected).unwrap(),
            PixelData::Nv12(b) => rgb_from_nv12(b, w as u32, h as u32, &mut expected).unwrap(),
            PixelData::Rgb(_) => unreachable!(),
        }
        let mut out = Picture::default();
        gpu_compositor.composite_pixels(pixels, w as u32, h as u32, &matte, &mut out).unwrap();
        let rgb: Vec<u8> = out.composite.pixels.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
        let (max, share) = difference(&rgb, &expected);
        eprintln!("{name}: max {max}, {:.4}% differ", share * 100.0);
        assert!(max <= 1, "{name}: GPU conversion differs from the CPU kernel by {max}");
        // And the conversion is a faithful decode of what was encoded (chroma subsampling aside).
        let (close, _) = difference(&rgb[..w * 3], &frame.rgb[..w * 3]);
        assert!(close < 40, "{name}: decoded colours are far from the source ({close})");
    }
    // A buffer of the wrong length is refused with the sizes, not read out of bounds.
    let err = gpu_compositor.render(PixelData::Yuyv(&yuyv[1..]), w as u32, h as u32, &matte).err().unwrap();
    assert!(err.to_string().contains("YUYV"), "{err}");
}

#[test]
fn changing_frame_size_and_settings_rebuilds_the_plan() {
    let Some(mut gpu_compositor) = gpu(with(Background::Color([1, 2, 3]))) else { return };
    let (frame, matte) = sample();
    let first = run_gpu(&mut gpu_compositor, frame, matte);
    // A smaller frame (the top-left quarter) with a matte of its own size.
    let (w, h) = (frame.width / 2, frame.height / 2);
    let rgb: Vec<u8> =
        (0..h as usize).flat_map(|y| frame.rgb[y * frame.width as usize * 3..][..w as usize * 3].to_vec()).collect();
    let small = Frame { rgb, width: w, height: h, ..frame.clone() };
    let small_matte = Matte { width: w, height: h, alpha: vec![0.5; (w * h) as usize], ..Default::default() };
    let second = run_gpu(&mut gpu_compositor, &small, &small_matte);
    assert_eq!((second.composite.width, second.composite.height), (w, h));
    assert_matches_loosely(&second, &run_cpu(&with(Background::Color([1, 2, 3])), &small, &small_matte));
    gpu_compositor.set_settings(with(Background::Color([200, 100, 0]))).unwrap();
    let third = run_gpu(&mut gpu_compositor, frame, matte);
    assert_ne!(first.composite.pixels, third.composite.pixels);
    assert_matches("after settings change", &third, &run_cpu(&with(Background::Color([200, 100, 0])), frame, matte));
}

fn assert_matches_loosely(gpu: &Outputs, cpu: &Outputs) {
    assert!(difference(&gpu.composite.pixels, &cpu.composite.pixels).0 <= 1);
    assert!(difference(&gpu.alpha, &cpu.alpha).0 <= 1);
}
