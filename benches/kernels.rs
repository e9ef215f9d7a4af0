//! The CPU kernels of a frame's way through the pipeline, each against the naive loop a first version
//! would write: `cargo bench --bench kernels` (criterion). Under `cargo test` each runs once.
//!
//! - preprocess: 1280x720 RGB8 area-resized to MODNet's 896x512 input and normalised to planar [-1, 1];
//! - alpha upsample: 896x512 alpha bilinearly to 1280x720;
//! - composite: 1280x720 frame over a colour with its alpha (the CPU compositor, upsampling included);
//! - colour conversion: 1280x720 YUYV (a webcam's format) to RGB8.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use mattecam::color::rgb_from_yuyv;
use mattecam::composite::{Background, CompositeSettings, CpuCompositor, Picture, Upsample};
use mattecam::frame::{Frame, Matte};
use mattecam::resample::{ResampleKind, Resampler};
use mattecam::source::synthetic::SyntheticSource;

const FRAME: (u32, u32) = (1280, 720);
const MODEL: (u32, u32) = (896, 512);

fn frame() -> Frame {
    let mut rgb = Vec::new();
    SyntheticSource::render(FRAME.0, FRAME.1, 7, &mut rgb);
    Frame { seq: 0, captured_at: std::time::Instant::now(), pts_ms: 0.0, width: FRAME.0, height: FRAME.1, rgb }
}

fn matte() -> Matte {
    let (w, h) = MODEL;
    let alpha = (0..w * h)
        .map(|i| {
            let (x, y) = ((i % w) as f32 / w as f32 - 0.5, (i / w) as f32 / h as f32 - 0.55);
            ((1.0 - (x * x / 0.06 + y * y / 0.2).sqrt()) * 8.0).clamp(0.0, 1.0)
        })
        .collect();
    Matte { width: w, height: h, alpha, ..Default::default() }
}

/// Area resize by averaging each output pixel's source box, straight from the definition (integer box
/// edges, as a first version would have it), then normalise.
fn naive_area_normalise(src: &[u8], (sw, sh): (u32, u32), (dw, dh): (u32, u32), dst: &mut [f32]) {
    let (sw, sh, dw, dh) = (sw as usize, sh as usize, dw as usize, dh as usize);
    let plane = dw * dh;
    for y in 0..dh {
        let (y0, y1) = (y * sh / dh, ((y + 1) * sh).div_ceil(dh));
        for x in 0..dw {
            let (x0, x1) = (x * sw / dw, ((x + 1) * sw).div_ceil(dw));
            let mut sum = [0.0f32; 3];
            for yy in y0..y1 {
                for xx in x0..x1 {
                    for (c, s) in sum.iter_mut().enumerate() {
                        *s += src[(yy * sw + xx) * 3 + c] as f32;
                    }
                }
            }
            let n = ((y1 - y0) * (x1 - x0)) as f32;
            for (c, s) in sum.iter().enumerate() {
                dst[c * plane + y * dw + x] = s / n / 127.5 - 1.0;
            }
        }
    }
}

/// Bilinear upsampling computing both source coordinates and weights for every pixel.
fn naive_bilinear(src: &[f32], (sw, sh): (u32, u32), (dw, dh): (u32, u32), dst: &mut [f32]) {
    for y in 0..dh {
        let fy = ((y as f32 + 0.5) * sh as f32 / dh as f32 - 0.5).clamp(0.0, (sh - 1) as f32);
        for x in 0..dw {
            let fx = ((x as f32 + 0.5) * sw as f32 / dw as f32 - 0.5).clamp(0.0, (sw - 1) as f32);
            let (x0, y0) = (fx.floor() as u32, fy.floor() as u32);
            let (x1, y1) = ((x0 + 1).min(sw - 1), (y0 + 1).min(sh - 1));
            let (tx, ty) = (fx - x0 as f32, fy - y0 as f32);
            let at = |x: u32, y: u32| src[(y * sw + x) as usize];
            let top = at(x0, y0) * (1.0 - tx) + at(x1, y0) * tx;
            let bottom = at(x0, y1) * (1.0 - tx) + at(x1, y1) * tx;
            dst[(y * dw + x) as usize] = top * (1.0 - ty) + bottom * ty;
        }
    }
}

/// Per-pixel float compositing over a colour, alpha already at frame size.
fn naive_over(rgb: &[u8], alpha: &[f32], colour: [u8; 3], out: &mut [u8]) {
    for (i, a) in alpha.iter().enumerate() {
        for c in 0..3 {
            let v = rgb[i * 3 + c] as f32 * a + colour[c] as f32 * (1.0 - a);
            out[i * 3 + c] = v.round().clamp(0.0, 255.0) as u8;
        }
    }
}

/// YUYV to RGB with the BT.601 matrix in double precision per pixel.
fn naive_yuyv(src: &[u8], dst: &mut [u8]) {
    for (quad, out) in src.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
        for (k, y) in [quad[0], quad[2]].into_iter().enumerate() {
            let (c, d, e) = (y as f64 - 16.0, quad[1] as f64 - 128.0, quad[3] as f64 - 128.0);
            let rgb = [
                1.164_383_6 * c + 1.596_026_8 * e,
                1.164_383_6 * c - 0.391_762_3 * d - 0.812_967_6 * e,
                1.164_383_6 * c + 2.017_232_2 * d,
            ];
            for (o, v) in out[k * 3..k * 3 + 3].iter_mut().zip(rgb) {
                *o = v.round().clamp(0.0, 255.0) as u8;
            }
        }
    }
}

fn preprocess(c: &mut Criterion) {
    let frame = frame();
    let mut group = c.benchmark_group("preprocess 1280x720 -> 896x512 planar [-1, 1]");
    let mut planar = vec![0.0f32; (MODEL.0 * MODEL.1 * 3) as usize];
    let mut resampler = Resampler::new(ResampleKind::Area, FRAME.0, FRAME.1, MODEL.0, MODEL.1);
    group.bench_function("mattecam", |b| {
        b.iter(|| resampler.rgb8_to_planar(black_box(&frame.rgb), &mut planar, 1.0 / 127.5, -1.0))
    });
    group
        .bench_function("naive", |b| b.iter(|| naive_area_normalise(black_box(&frame.rgb), FRAME, MODEL, &mut planar)));
    group.finish();
}

fn upsample(c: &mut Criterion) {
    let matte = matte();
    let mut group = c.benchmark_group("alpha upsample 896x512 -> 1280x720 bilinear");
    let mut out = vec![0.0f32; (FRAME.0 * FRAME.1) as usize];
    let mut resampler = Resampler::new(ResampleKind::Bilinear, MODEL.0, MODEL.1, FRAME.0, FRAME.1);
    group.bench_function("mattecam", |b| b.iter(|| resampler.gray_f32(black_box(&matte.alpha), &mut out)));
    group.bench_function("naive", |b| b.iter(|| naive_bilinear(black_box(&matte.alpha), MODEL, FRAME, &mut out)));
    group.finish();
}

fn composite(c: &mut Criterion) {
    let (frame, matte) = (frame(), matte());
    let colour = [120, 255, 155];
    let mut group = c.benchmark_group("composite 1280x720 over a colour, upsampling included");
    let settings =
        CompositeSettings { background: Background::Color(colour), upsample: Upsample::Bilinear, ..Default::default() };
    let mut compositor = CpuCompositor::new(settings).expect("colour background");
    let mut out = Picture::default();
    group.bench_function("mattecam", |b| {
        b.iter(|| compositor.composite(black_box(&frame), &matte, &mut out).expect("composites"))
    });
    let mut full = vec![0.0f32; (FRAME.0 * FRAME.1) as usize];
    let mut pixels = vec![0u8; frame.rgb.len()];
    group.bench_function("naive", |b| {
        b.iter(|| {
            naive_bilinear(&matte.alpha, MODEL, FRAME, &mut full);
            naive_over(black_box(&frame.rgb), &full, colour, &mut pixels);
        })
    });
    group.finish();
}

fn colour_conversion(c: &mut Criterion) {
    let yuyv: Vec<u8> = (0..FRAME.0 * FRAME.1 * 2).map(|i| (i * 37 % 251) as u8).collect();
    let mut group = c.benchmark_group("colour conversion YUYV 1280x720 -> RGB8");
    let mut rgb = Vec::new();
    group.bench_function("mattecam", |b| {
        b.iter(|| rgb_from_yuyv(black_box(&yuyv), FRAME.0, FRAME.1, &mut rgb).expect("size"))
    });
    let mut out = vec![0u8; (FRAME.0 * FRAME.1 * 3) as usize];
    group.bench_function("naive", |b| b.iter(|| naive_yuyv(black_box(&yuyv), &mut out)));
    group.finish();
    // Both are the same conversion.
    naive_yuyv(&yuyv, &mut out);
    let differs = rgb.iter().zip(&out).filter(|(a, b)| a.abs_diff(**b) > 1).count();
    assert_eq!(differs, 0, "the naive YUYV conversion disagrees with rgb_from_yuyv");
}

criterion_group! {
    name = kernels;
    config = Criterion::default().sample_size(20).warm_up_time(std::time::Duration::from_millis(500));
    targets = preprocess, upsample, composite, colour_conversion
}
criterion_main!(kernels);
