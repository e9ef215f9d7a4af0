//! The CPU compositor: the reference the GPU compositor (`crate::gpu`) is tested against. Every step
//! computes in `f32` in the order its shader does, and rounds only where the shader rounds.

use super::background::{BackgroundMedia, Picture};
use super::edges::apply_edges;
use super::{AlphaUpsampler, Background, CompositeError, CompositeSettings, View};
use crate::frame::{Frame, Matte};
use crate::resample::{ResampleKind, Resampler};

/// A composited frame: RGB, or RGBA for the transparent background.
#[derive(Clone, Debug, Default)]
pub struct Composite {
    pub width: u32,
    pub height: u32,
    /// 3 or 4.
    pub channels: u8,
    pub pixels: Vec<u8>,
}

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

/// The small image a blur background is blurred at, and the box radius there: the frame is shrunk so
/// the radius (given for a 720-line frame, scaled with the frame) is about three pixels, box-blurred
/// three times (close to a Gaussian) and enlarged back.
pub fn blur_geometry(radius_px: u32, width: u32, height: u32) -> (u32, u32, u32) {
    let radius = radius_px as f32 * height as f32 / 720.0;
    let factor = (radius / 3.0).max(1.0);
    let small = |side: u32| ((side as f32 / factor).round() as u32).max(1);
    (small(width), small(height), (radius / factor).round() as u32)
}

/// Box-blur passes a blur background makes.
pub const BLUR_PASSES: usize = 3;

/// Side of the checkerboard squares behind a transparent composite in the split view, in pixels.
pub const CHECKER_PX: u32 = 8;

/// Composites frames, keeping its resamplers, the fitted background and scratch buffers between frames.
pub struct CpuCompositor {
    settings: CompositeSettings,
    media: BackgroundMedia,
    upsampler: AlphaUpsampler,
    alpha: Vec<f32>,
    scratch: Vec<f32>,
    /// Image, video or blur background, planar RGB in [0, 1] at frame size; `fitted` is the size an
    /// image background was fitted to.
    planes: Vec<f32>,
    fitted: Option<(u32, u32)>,
    fit: Option<Resampler>,
    blur_down: Option<Resampler>,
    blur_up: Option<Resampler>,
    small: Vec<f32>,
    small_scratch: Vec<f32>,
}

impl CpuCompositor {
    /// Checks the background now (an unreadable image or video is an error here, not on the first frame).
    pub fn new(settings: CompositeSettings) -> Result<Self, CompositeError> {
        let media = BackgroundMedia::open(&settings.background)?;
        Ok(Self {
            upsampler: AlphaUpsampler::new(settings.upsample),
            settings,
            media,
            alpha: Vec::new(),
            scratch: Vec::new(),
            planes: Vec::new(),
            fitted: None,
            fit: None,
            blur_down: None,
            blur_up: None,
            small: Vec::new(),
            small_scratch: Vec::new(),
        })
    }

    pub fn settings(&self) -> &CompositeSettings {
        &self.settings
    }

    /// Composites `frame` with its model-size `matte`: the frame-size 8-bit alpha (mirrored with the
    /// picture) into `alpha`, the picture into `out`. A model's foreground colours (RVM) replace the
    /// frame's where given at frame size.
    pub fn composite(
        &mut self,
        frame: &Frame,
        matte: &Matte,
        alpha: &mut Vec<u8>,
        out: &mut Composite,
    ) -> Result<(), CompositeError> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let mut full = std::mem::take(&mut self.alpha);
        self.upsampler.upsample_f32(matte, frame.guide(), &mut full);
        apply_edges(&mut full, &mut self.scratch, w, h, &self.settings.edges);
        let mirror = self.settings.mirror;
        alpha.resize(w * h, 0);
        for (out_row, row) in alpha.chunks_exact_mut(w).zip(full.chunks_exact(w)) {
            if mirror {
                out_row.iter_mut().zip(row.iter().rev()).for_each(|(o, &a)| *o = alpha_u8(a));
            } else {
                out_row.iter_mut().zip(row).for_each(|(o, &a)| *o = alpha_u8(a));
            }
        }
        self.alpha = full;
        self.fill_background(frame)?;
        let fg = matte.foreground.as_deref().filter(|f| f.len() == frame.rgb.len()).unwrap_or(&frame.rgb);
        let composite = match self.settings.view {
            View::Composite => &mut *out,
            View::Split => &mut Composite::default(),
        };
        self.blend(frame, fg, alpha, composite);
        if self.settings.view == View::Split {
            let composite = std::mem::take(composite);
            let premultiplied = self.settings.background == Background::Transparent { premultiplied: true };
            split_view(frame, alpha, &composite, mirror, premultiplied, out);
        }
        Ok(())
    }

    /// Fills `planes` for image, video and blur backgrounds.
    fn fill_background(&mut self, frame: &Frame) -> Result<(), CompositeError> {
        let (w, h) = (frame.width, frame.height);
        let n = w as usize * h as usize;
        match self.settings.background {
            Background::Blur { radius_px } => {
                let (sw, sh, radius) = blur_geometry(radius_px, w, h);
                self.small.resize(3 * sw as usize * sh as usize, 0.0);
                Resampler::reuse(&mut self.blur_down, ResampleKind::Area, w, h, sw, sh).rgb8_to_planar(
                    &frame.rgb,
                    &mut self.small,
                    1.0 / 255.0,
                    0.0,
                );
                for _ in 0..BLUR_PASSES {
                    box_blur_planes(
                        &mut self.small,
                        &mut self.small_scratch,
                        sw as usize,
                        sh as usize,
                        radius as usize,
                    );
                }
                self.planes.resize(3 * n, 0.0);
                let up = Resampler::reuse(&mut self.blur_up, ResampleKind::Bilinear, sw, sh, w, h);
                let small_n = sw as usize * sh as usize;
                for c in 0..3 {
                    up.gray_f32(&self.small[c * small_n..(c + 1) * small_n], &mut self.planes[c * n..(c + 1) * n]);
                }
            }
            Background::Image(_) | Background::Video(_) => {
                let picture = self.media.next_picture()?.expect("image and video backgrounds have media");
                let Picture { width: pw, height: ph, rgb, fresh } = picture;
                if !fresh && self.fitted == Some((w, h)) {
                    return Ok(());
                }
                if !self.fit.as_ref().is_some_and(|r| r.src_size() == (pw, ph) && r.dst_size() == (w, h)) {
                    self.fit = Some(Resampler::cover(ResampleKind::Bilinear, pw, ph, w, h));
                }
                self.planes.resize(3 * n, 0.0);
                self.fit.as_mut().expect("set above").rgb8_to_planar(rgb, &mut self.planes, 1.0 / 255.0, 0.0);
                self.fitted = Some((w, h));
            }
            Background::Color(_) | Background::Transparent { .. } => {}
        }
        Ok(())
    }

    fn blend(&self, frame: &Frame, fg: &[u8], alpha: &[u8], out: &mut Composite) {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let n = w * h;
        let mirror = self.settings.mirror;
        let background = &self.settings.background;
        out.width = frame.width;
        out.height = frame.height;
        out.channels = if background.has_alpha() { 4 } else { 3 };
        let channels = out.channels as usize;
        out.pixels.resize(n * channels, 0);
        // The person (and a blur made from the frame) is mirrored; an image, video or colour is not. The
        // background mode is matched once per frame, not per pixel.
        let bg_mirror = mirror && background.follows_frame();
        let rows = out.pixels.chunks_exact_mut(w * channels).zip(fg.chunks_exact(w * 3)).zip(alpha.chunks_exact(w));
        for (y, ((out_row, fg_row), alpha_row)) in rows.enumerate() {
            let person = |x: usize, c: usize| fg_row[mirrored(x, w, mirror) * 3 + c];
            match background {
                // Whole numbers throughout: `blend` gives what `over` gives, in integers.
                Background::Color(colour) => {
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
                Background::Transparent { premultiplied } => {
                    for (x, (o, &a)) in out_row.chunks_exact_mut(4).zip(alpha_row).enumerate() {
                        for (c, o) in o[..3].iter_mut().enumerate() {
                            let f = person(x, c);
                            *o = if *premultiplied { (f as f32 * a as f32 / 255.0 + 0.5) as u8 } else { f };
                        }
                        o[3] = a;
                    }
                }
                _ => {
                    for (x, (o, &a)) in out_row.chunks_exact_mut(3).zip(alpha_row).enumerate() {
                        let b = y * w + mirrored(x, w, bg_mirror);
                        for (c, o) in o.iter_mut().enumerate() {
                            *o = over(person(x, c) as f32, self.planes[c * n + b] * 255.0, a as f32);
                        }
                    }
                }
            }
        }
    }
}

#[inline]
fn mirrored(x: usize, width: usize, mirror: bool) -> usize {
    if mirror { width - 1 - x } else { x }
}

/// Box blur of `radius` over planar RGB, horizontal then vertical, edge pixels repeated; each output is
/// the window's sum from its lowest index, divided by the window size.
pub fn box_blur_planes(planes: &mut [f32], scratch: &mut Vec<f32>, width: usize, height: usize, radius: usize) {
    if radius == 0 {
        return;
    }
    scratch.resize(planes.len(), 0.0);
    let r = radius as isize;
    let window = (2 * radius + 1) as f32;
    let n = width * height;
    for c in 0..3 {
        let plane = &mut planes[c * n..(c + 1) * n];
        let tmp = &mut scratch[c * n..(c + 1) * n];
        for y in 0..height {
            for x in 0..width {
                let sum = (-r..=r)
                    .fold(0.0f32, |s, i| s + plane[y * width + (x as isize + i).clamp(0, width as isize - 1) as usize]);
                tmp[y * width + x] = sum / window;
            }
        }
        for y in 0..height {
            for x in 0..width {
                let sum = (-r..=r)
                    .fold(0.0f32, |s, i| s + tmp[(y as isize + i).clamp(0, height as isize - 1) as usize * width + x]);
                plane[y * width + x] = sum / window;
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

/// What the window shows for a full-size composite (RGBA): opaque pictures as they are, a transparent one
/// over the checkerboard; alpha 255 everywhere. The CPU reference of the GPU compositor's display mode.
pub fn display_rgba(composite: &Composite, premultiplied: bool, out: &mut Vec<u8>) {
    let (w, h) = (composite.width as usize, composite.height as usize);
    out.clear();
    out.reserve(w * h * 4);
    let channels = composite.channels as usize;
    for (i, p) in composite.pixels.chunks_exact(channels).enumerate() {
        let checker = checker_grey((i % w) as u32, (i / w) as u32);
        for &v in &p[..3] {
            let shown =
                if channels == 3 { v as f32 } else { over_checker(v as f32, p[3] as f32, checker, premultiplied) };
            out.push((shown + 0.5) as u8);
        }
        out.push(255);
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
    out.width = (3 * pw) as u32;
    out.height = ph as u32;
    out.channels = 3;
    out.pixels.resize(3 * pw * ph * 3, 0);
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
