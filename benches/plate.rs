//! What a plate costs per frame: the exposure fit, the staleness check and plate assistance (all on the
//! inference thread), and BGMv2 on the architecture fixtures, at 1280x720 and 1920x1080:
//! `cargo bench --bench plate`. Under `cargo test` it runs one small frame of each as a smoke test.
//!
//! The BGMv2 fixtures carry random weights: their times are the architecture's (same layers, same sizes),
//! except that the thresholding refiner's patch count depends on the error map, which random weights
//! make arbitrary.

use std::time::Instant;

use mattecam::frame::{Frame, Matte};
use mattecam::infer::{self, MatterOptions, ModelKind, ProviderRequest, SessionOptions};
use mattecam::plate::assist::AssistScratch;
use mattecam::plate::{AlphaGrid, AssistSettings, GainOffset, Plate, Staleness, assist_alpha};
use mattecam::source::synthetic::SyntheticSource;

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

fn time_ms(runs: usize, mut work: impl FnMut()) -> f64 {
    work();
    let mut ms: Vec<f64> = (0..runs)
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    median(&mut ms)
}

/// A person-shaped soft ellipse at frame size, and the frame with that person painted over the plate.
fn scene(width: u32, height: u32) -> (Frame, Plate, Vec<f32>) {
    let mut plate_rgb = Vec::new();
    SyntheticSource::render(width, height, 0, &mut plate_rgb);
    let alpha: Vec<f32> = (0..width * height)
        .map(|i| {
            let x = (i % width) as f32 / width as f32 - 0.5;
            let y = (i / width) as f32 / height as f32 - 0.6;
            ((1.0 - (x * x / 0.04 + y * y / 0.2).sqrt()) * 20.0).clamp(0.0, 1.0)
        })
        .collect();
    let rgb = plate_rgb
        .chunks_exact(3)
        .zip(&alpha)
        .flat_map(|(b, &a)| {
            let person = [190.0, 120.0, 90.0];
            std::array::from_fn::<u8, 3, _>(|c| (a * person[c] + (1.0 - a) * f32::from(b[c])).round() as u8)
        })
        .collect();
    let frame = Frame { seq: 0, captured_at: Instant::now(), pts_ms: 0.0, width, height, rgb };
    (frame, Plate { width, height, rgb: plate_rgb }, alpha)
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes: &[(u32, u32)] = if full {
        &[(1280, 720), (1920, 1080)]
    } else {
        // The sampling refiner needs at least 80,000 pixels.
        &[(480, 270)]
    };
    let runs = if full { 15 } else { 1 };
    println!("| size | exposure fit ms | staleness ms | assistance ms |");
    println!("|---|---|---|---|");
    for &(w, h) in sizes {
        let (frame, plate, alpha) = scene(w, h);
        let grid = AlphaGrid { alpha: &alpha, width: w, height: h };
        let fit_ms = time_ms(runs, || {
            GainOffset::fit(&frame.rgb, &plate, grid).expect("enough background to fit");
        });
        let fit = GainOffset::default();
        let staleness_ms = time_ms(runs, || {
            Staleness::measure(&frame.rgb, &plate, &fit, grid);
        });
        let (mut assisted, mut scratch) = (Vec::new(), AssistScratch::default());
        let settings = AssistSettings::default();
        let assist_ms = time_ms(runs, || {
            assisted.clear();
            assisted.extend_from_slice(&alpha);
            assist_alpha(&mut assisted, &frame.rgb, &plate.rgb, w, h, &settings, &mut scratch);
        });
        println!("| {w}x{h} | {fit_ms:.2} | {staleness_ms:.2} | {assist_ms:.2} |");
    }

    let fixtures = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures/bgmv2");
    if !fixtures.is_dir() {
        println!("\nBGMv2: skipped, ../shared/fixtures/bgmv2 is absent");
        return;
    }
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let options = MatterOptions {
        session: SessionOptions { threads, provider: ProviderRequest::Cpu, ..Default::default() },
        ..Default::default()
    };
    println!("\n| BGMv2 fixture (random weights) | size | ms per frame | fps |");
    println!("|---|---|---|---|");
    let bgmv2_runs = if full { 5 } else { 1 };
    for mode in ["base", "sampling", "thresholding"] {
        let path = fixtures.join(format!("bgmv2_mobilenetv2_{mode}_random.onnx"));
        let mut matter = infer::open_matter(ModelKind::Bgmv2, &path, &options).expect("fixture opens");
        for &(w, h) in sizes {
            let (frame, plate, _) = scene(w, h);
            matter.set_plate(Some((w, h, &plate.rgb)));
            let mut matte = Matte::default();
            let ms = time_ms(bgmv2_runs, || matter.infer(&frame, &mut matte).expect("BGMv2 runs"));
            assert_eq!((matte.width, matte.height), (w, h));
            println!("| {mode} | {w}x{h} | {ms:.1} | {:.1} |", 1e3 / ms);
        }
    }
    println!("\nCPU provider, {threads} threads; medians of {bgmv2_runs} frames after one warm-up");
}
