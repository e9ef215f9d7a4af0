//! Per-frame compositing time, GPU against the CPU reference, for every background mode and the edge
//! controls at 1280x720 and 1920x1080: `cargo bench --bench composite`.
//!
//! GPU time comes from timestamp queries around the frame's compute pass where the adapter has them;
//! "wall" is the whole call as the pipeline makes it (upload, dispatch, wait, readback). Under
//! `cargo test` it runs one small frame per mode as a smoke test.

use std::time::Instant;

use mattecam::color::PixelData;
use mattecam::composite::{Background, CompositeSettings, CpuCompositor, EdgeControls, Picture, Upsample, View};
use mattecam::frame::{Frame, Matte};
use mattecam::gpu::GpuCompositor;
use mattecam::source::synthetic::SyntheticSource;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// A soft ellipse at MODNet's input size for a 16:9 frame at reference size 512.
fn matte() -> Matte {
    let (w, h) = (896u32, 512u32);
    let alpha = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32 / w as f32 - 0.5, (i / w) as f32 / h as f32 - 0.55);
            let d = (x * x / 0.06 + y * y / 0.2).sqrt();
            ((1.0 - d) * 8.0).clamp(0.0, 1.0)
        })
        .collect();
    Matte { width: w, height: h, alpha, ..Default::default() }
}

struct Case {
    name: &'static str,
    settings: CompositeSettings,
    yuyv: bool,
}

fn cases(root: &std::path::Path) -> Vec<Case> {
    // Bilinear upsampling unless a case says otherwise.
    let over = |background| CompositeSettings { background, upsample: Upsample::Bilinear, ..Default::default() };
    let case = |name, settings| Case { name, settings, yuyv: false };
    let colour = over(Background::Color([0, 177, 64]));
    let mut cases = vec![
        case("colour, bilinear", colour.clone()),
        case("colour, area", CompositeSettings { upsample: Upsample::Area, ..colour.clone() }),
        case("colour, guided", CompositeSettings { upsample: Upsample::Guided, ..colour.clone() }),
        case("blur 24", over(Background::Blur { radius_px: 24 })),
        case("transparent", over(Background::Transparent { premultiplied: false })),
        case(
            "edges (curve, erode 2, feather 3)",
            CompositeSettings {
                edges: EdgeControls { threshold: 0.5, contrast: 2.0, shrink_px: 2, feather_px: 3 },
                ..colour.clone()
            },
        ),
        case("split view, mirrored", CompositeSettings { view: View::Split, mirror: true, ..colour.clone() }),
        Case { name: "YUYV input, colour", settings: colour, yuyv: true },
    ];
    let image = root.join("assets/hires.jpg");
    if image.is_file() {
        cases.push(case("image (hires.jpg)", over(Background::Image(image))));
    }
    let video = root.join("assets/demovideo.mp4");
    if video.is_file() {
        cases.push(case("video (demo clip)", over(Background::Video(video))));
    }
    cases
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let sizes: &[(u32, u32)] = if full { &[(1280, 720), (1920, 1080)] } else { &[(320, 180)] };
    let (gpu_frames, cpu_frames) = if full { (30, 5) } else { (1, 1) };
    let matte = matte();
    let mut adapter = String::new();
    println!("| size | mode | GPU ms (timestamps) | GPU wall ms | CPU reference ms |");
    println!("|---|---|---|---|---|");
    for &(w, h) in sizes {
        let mut rgb = Vec::new();
        SyntheticSource::render(w, h, 1, &mut rgb);
        let frame = Frame { seq: 0, captured_at: Instant::now(), pts_ms: 0.0, width: w, height: h, rgb };
        let yuyv: Vec<u8> = frame.rgb.chunks_exact(6).flat_map(|p| [p[1], 128, p[4], 128]).collect();
        let small_matte;
        let matte = if full {
            &matte
        } else {
            small_matte = Matte { width: 160, height: 90, alpha: vec![0.5; 160 * 90], ..Default::default() };
            &small_matte
        };
        for case in cases(&root) {
            let mut gpu = match GpuCompositor::headless(case.settings.clone()) {
                Ok(gpu) => gpu,
                Err(err) => {
                    println!("| {w}x{h} | {} | no GPU: {err} | | |", case.name);
                    continue;
                }
            };
            adapter = gpu.adapter_name().to_string();
            let timed = gpu.measure_gpu_time(true);
            let mut out = Picture::default();
            let pixels = if case.yuyv { PixelData::Yuyv(&yuyv) } else { PixelData::Rgb(&frame.rgb) };
            // Warm-up: plans, pipelines, first uploads.
            for _ in 0..if full { 3 } else { 1 } {
                gpu.composite_pixels(pixels, w, h, matte, &mut out).expect("GPU composite");
            }
            let (mut gpu_ms, mut wall_ms) = (Vec::new(), Vec::new());
            for _ in 0..gpu_frames {
                let started = Instant::now();
                gpu.composite_pixels(pixels, w, h, matte, &mut out).expect("GPU composite");
                wall_ms.push(started.elapsed().as_secs_f64() * 1e3);
                gpu_ms.extend(gpu.last_gpu_ms());
            }
            let mut cpu = CpuCompositor::new(case.settings.clone()).expect("CPU compositor");
            let mut cpu_ms = Vec::new();
            for _ in 0..cpu_frames {
                let started = Instant::now();
                cpu.composite(&frame, matte, &mut out).expect("CPU composite");
                cpu_ms.push(started.elapsed().as_secs_f64() * 1e3);
            }
            let gpu_time = if timed { format!("{:.2}", median(&mut gpu_ms)) } else { "n/a".to_string() };
            println!(
                "| {w}x{h} | {} | {gpu_time} | {:.2} | {:.1} |",
                case.name,
                median(&mut wall_ms),
                median(&mut cpu_ms)
            );
        }
    }
    println!("\nadapter: {adapter}; medians of {gpu_frames} GPU and {cpu_frames} CPU frames; matte 896x512");
}
