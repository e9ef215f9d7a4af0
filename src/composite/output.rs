//! The last step: alpha and the person's colours over the background, 8-bit, as `shaders/composite.wgsl`
//! computes it; and the pictures derived from a composite for showing it (checkerboard, split view).
//! The recorder derives a format's cutout from the same alpha with [`cutout`], so a recording's alpha is
//! the window's, bit for bit.

use crate::frame::{Composite, Frame};

/// `round((f * a + b * (255 - a)) / 255)` in integers: exact, since `a` and `255 - a` sum to 255.
#[inline]
pub fn blend(f: u8, b: u8, a: u8) -> u8 {
    let (f, b, a) = (f as u32, b as u32, a as u32);
    let x = f * a + b * (255 - a) + 127;
    // x / 255 without a division, exact for x < 65536 (here at most 65152).
    ((x + 1 + (x >> 8)) >> 8) as u8
}

/// Foreground `f` (0..=255) over background `b` (0..=255, fractional allowed) with 8-bit alpha `a`; for
/// whole-number inputs the same as [`blend`]. `shaders/composite.wgsl` has the same expression.
#[inline]
pub fn over(f: f32, b: f32, a: f32) -> u8 {
    // `as` truncates and saturates: for every f32, the same as `floor` first, without a libm call per
    // channel (x86-64's baseline has no SSE4.1 rounding instruction).
    ((f * a + b * (255.0 - a)) / 255.0 + 0.5) as u8
}

/// Alpha in [0, 1] to 8 bits, rounded.
#[inline]
pub fn alpha_u8(alpha: f32) -> u8 {
    (alpha.clamp(0.0, 1.0) * 255.0 + 0.5) as u8
}

/// Side of the checkerboard squares behind a transparent picture on screen, in pixels.
pub const CHECKER_PX: u32 = 8;

#[inline]
pub fn mirrored(x: usize, width: usize, mirror: bool) -> usize {
    if mirror { width - 1 - x } else { x }
}

/// Sizes `out` for a `width` x `height` picture of `channels`.
fn shape(out: &mut Composite, width: u32, height: u32, channels: u8) {
    out.width = width;
    out.height = height;
    out.channels = channels;
    out.pixels.resize(width as usize * height as usize * channels as usize, 0);
}

/// The person's colours `fg` (packed RGB, source orientation) over a flat colour with `alpha` (output
/// orientation, 8-bit), RGB out. Whole numbers throughout: [`blend`] gives what [`over`] gives.
pub fn over_colour(
    fg: &[u8],
    alpha: &[u8],
    width: u32,
    height: u32,
    colour: [u8; 3],
    mirror: bool,
    out: &mut Composite,
) {
    shape(out, width, height, 3);
    let w = width as usize;
    for ((out_row, fg_row), alpha_row) in
        out.pixels.chunks_exact_mut(w * 3).zip(fg.chunks_exact(w * 3)).zip(alpha.chunks_exact(w))
    {
        let pixels = out_row.chunks_exact_mut(3).zip(alpha_row);
        let blend_pixel = |(o, &a): (&mut [u8], &u8), f: &[u8]| {
            for c in 0..3 {
                o[c] = blend(f[c], colour[c], a);
            }
        };
        if mirror {
            pixels.zip(fg_row.chunks_exact(3).rev()).for_each(|(p, f)| blend_pixel(p, f));
        } else {
            pixels.zip(fg_row.chunks_exact(3)).for_each(|(p, f)| blend_pixel(p, f));
        }
    }
}

/// The person alone: RGBA with `alpha` in A, colours straight or premultiplied by alpha.
pub fn cutout(
    fg: &[u8],
    alpha: &[u8],
    width: u32,
    height: u32,
    mirror: bool,
    premultiplied: bool,
    out: &mut Composite,
) {
    shape(out, width, height, 4);
    let w = width as usize;
    for ((out_row, fg_row), alpha_row) in
        out.pixels.chunks_exact_mut(w * 4).zip(fg.chunks_exact(w * 3)).zip(alpha.chunks_exact(w))
    {
        for (x, (o, &a)) in out_row.chunks_exact_mut(4).zip(alpha_row).enumerate() {
            let f = &fg_row[mirrored(x, w, mirror) * 3..][..3];
            for c in 0..3 {
                o[c] = if premultiplied { (f[c] as f32 * a as f32 / 255.0 + 0.5) as u8 } else { f[c] };
            }
            o[3] = a;
        }
    }
}

/// The person over background planes (planar RGB in [0, 1] at frame size: a blur, an image or a video
/// frame), RGB out. `background_mirror`: the planes are mirrored too (a blur made from the frame).
#[allow(clippy::too_many_arguments)]
pub fn over_planes(
    fg: &[u8],
    alpha: &[u8],
    planes: &[f32],
    width: u32,
    height: u32,
    mirror: bool,
    background_mirror: bool,
    out: &mut Composite,
) {
    shape(out, width, height, 3);
    let (w, n) = (width as usize, width as usize * height as usize);
    for (y, ((out_row, fg_row), alpha_row)) in
        out.pixels.chunks_exact_mut(w * 3).zip(fg.chunks_exact(w * 3)).zip(alpha.chunks_exact(w)).enumerate()
    {
        for (x, (o, &a)) in out_row.chunks_exact_mut(3).zip(alpha_row).enumerate() {
            let f = &fg_row[mirrored(x, w, mirror) * 3..][..3];
            let b = y * w + mirrored(x, w, background_mirror);
            for (c, o) in o.iter_mut().enumerate() {
                *o = over(f[c] as f32, planes[c * n + b] * 255.0, a as f32);
            }
        }
    }
}

/// Grey level of the checkerboard square under pixel `(x, y)`.
pub fn checker_grey(x: u32, y: u32) -> f32 {
    if ((x / CHECKER_PX) + (y / CHECKER_PX)).is_multiple_of(2) { 153.0 } else { 102.0 }
}

/// A transparent composite's stored value `v` (straight or premultiplied) with alpha `a` (0..=255) seen over
/// a checkerboard grey, unrounded.
pub fn over_checker(v: f32, a: f32, checker: f32, premultiplied: bool) -> f32 {
    if premultiplied { v + checker * (255.0 - a) / 255.0 } else { (v * a + checker * (255.0 - a)) / 255.0 }
}

/// What the window shows for a picture (RGBA, alpha 255 everywhere): an opaque picture as it is, a
/// transparent one over the checkerboard. The CPU reference of `shaders/display.wgsl`.
pub fn display_rgba(picture: &Composite, premultiplied: bool, out: &mut Vec<u8>) {
    let w = picture.width as usize;
    out.resize(picture.pixels.len() / picture.channels.max(1) as usize * 4, 0);
    if picture.channels == 3 {
        for (o, p) in out.chunks_exact_mut(4).zip(picture.pixels.chunks_exact(3)) {
            o[..3].copy_from_slice(p);
            o[3] = 255;
        }
        return;
    }
    for (i, (o, p)) in out.chunks_exact_mut(4).zip(picture.pixels.chunks_exact(4)).enumerate() {
        let checker = checker_grey((i % w) as u32, (i / w) as u32);
        for c in 0..3 {
            o[c] = (over_checker(p[c] as f32, p[3] as f32, checker, premultiplied) + 0.5) as u8;
        }
        o[3] = 255;
    }
}

/// Original | alpha | composite side by side, each at half size (2x2 means), into `out` (RGB,
/// `3 * (width / 2)` by `height / 2`). A transparent composite is shown over a checkerboard.
pub fn split_view(
    frame: &Frame,
    alpha: &[u8],
    composite: &Composite,
    mirror: bool,
    premultiplied: bool,
    out: &mut Composite,
) {
    let (w, h) = (frame.width as usize, frame.height as usize);
    let (pw, ph) = (w / 2, h / 2);
    shape(out, (3 * pw) as u32, ph as u32, 3);
    let channels = composite.channels as usize;
    let mean4 = |value: &dyn Fn(usize, usize) -> f32, px: usize, py: usize| {
        let sum = value(2 * px, 2 * py)
            + value(2 * px + 1, 2 * py)
            + value(2 * px, 2 * py + 1)
            + value(2 * px + 1, 2 * py + 1);
        (sum / 4.0 + 0.5) as u8
    };
    for py in 0..ph {
        for px in 0..pw {
            let checker = checker_grey(px as u32, py as u32);
            for c in 0..3 {
                let original = |x: usize, y: usize| frame.rgb[(y * w + mirrored(x, w, mirror)) * 3 + c] as f32;
                let matte = |x: usize, y: usize| alpha[y * w + x] as f32;
                let shown = |x: usize, y: usize| {
                    let p = &composite.pixels[(y * w + x) * channels..(y * w + x + 1) * channels];
                    let v = p[c] as f32;
                    if channels == 3 {
                        return v;
                    }
                    over_checker(v, p[3] as f32, checker, premultiplied)
                };
                let row = &mut out.pixels[py * 3 * pw * 3..(py + 1) * 3 * pw * 3];
                row[px * 3 + c] = mean4(&original, px, py);
                row[(pw + px) * 3 + c] = mean4(&matte, px, py);
                row[(2 * pw + px) * 3 + c] = mean4(&shown, px, py);
            }
        }
    }
}
