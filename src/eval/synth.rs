//! Exact-ground-truth matting data from straight-alpha RGBA cutouts placed over backgrounds, composited as
//! the RVM and BGMv2 evaluation sets are: `com = round(a * F + (1 - a) * B)` with `a = alpha / 255`, 8-bit.

use std::path::Path;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::EvalError;

/// A straight-alpha cutout: RGB and alpha, 8-bit.
pub struct Cutout {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    pub alpha: Vec<u8>,
}

impl Cutout {
    pub fn load(path: &Path) -> Result<Self, EvalError> {
        let image = image::open(path)
            .map_err(|err| EvalError::BadInput { path: path.to_path_buf(), reason: err.to_string() })?
            .into_rgba8();
        let (width, height) = image.dimensions();
        let mut rgb = Vec::with_capacity((width * height * 3) as usize);
        let mut alpha = Vec::with_capacity((width * height) as usize);
        for p in image.pixels() {
            rgb.extend_from_slice(&p.0[..3]);
            alpha.push(p.0[3]);
        }
        Ok(Self { width, height, rgb, alpha })
    }

    /// Bounding box of non-zero alpha and which image sides the person is cut by.
    fn bbox(&self) -> ([f64; 4], [bool; 4]) {
        let (w, h) = (self.width as usize, self.height as usize);
        let (mut x0, mut y0, mut x1, mut y1) = (w, h, 0, 0);
        for (i, a) in self.alpha.iter().enumerate() {
            if *a > 0 {
                let (x, y) = (i % w, i / w);
                x0 = x0.min(x);
                y0 = y0.min(y);
                x1 = x1.max(x + 1);
                y1 = y1.max(y + 1);
            }
        }
        let cut = [x0 <= 1, x1 >= w - 1, y0 <= 1, y1 >= h - 1];
        ([x0 as f64, y0 as f64, x1 as f64, y1 as f64], cut)
    }
}

/// Where a cutout goes on a `width x height` canvas: `canvas(x, y) = cutout((x - tx) / scale, (y - ty) / scale)`.
#[derive(Clone, Copy, Debug)]
pub struct Placement {
    pub scale: f64,
    pub tx: f64,
    pub ty: f64,
}

/// Scale and offset for a cutout whose person is `height_frac` of the canvas height, centred at
/// `centre_x_frac`; sides where the photo cut the person stay on the canvas border, so no straight edge
/// appears inside the frame (as the shared reference `make_synth.py` does).
pub fn placement(cutout: &Cutout, width: u32, height: u32, height_frac: f64, centre_x_frac: f64) -> Placement {
    let ([x0, y0, x1, y1], [left, right, top, bottom]) = cutout.bbox();
    let (w, h) = (width as f64, height as f64);
    let scale = if left && right { w / (x1 - x0) } else { (height_frac * h / (y1 - y0)).min(0.9 * w / (x1 - x0)) };
    let tx = match (left, right) {
        (true, false) => -scale * x0,
        (false, true) => w - scale * x1,
        _ => centre_x_frac * w - scale * (x0 + x1) / 2.0,
    };
    let ty = if bottom {
        h - scale * y1
    } else if top {
        -scale * y0
    } else {
        0.95 * h - scale * y1
    };
    Placement { scale, tx, ty }
}

/// One composited sample with its exact ground truth.
pub struct Sample {
    pub width: u32,
    pub height: u32,
    /// The composite (model input), RGB.
    pub com: Vec<u8>,
    /// Exact alpha of `com`.
    pub pha: Vec<u8>,
    /// Straight foreground (zero where alpha is zero).
    pub fgr: Vec<u8>,
    /// The clean background.
    pub bgr: Vec<u8>,
}

/// Places `cutout` on the canvas with bilinear sampling (transparent outside), then composites over `bgr`.
pub fn compose(cutout: &Cutout, bgr: &[u8], width: u32, height: u32, place: Placement) -> Sample {
    let (w, h) = (width as usize, height as usize);
    let (cw, ch) = (cutout.width as isize, cutout.height as isize);
    let mut com = vec![0u8; w * h * 3];
    let mut pha = vec![0u8; w * h];
    let mut fgr = vec![0u8; w * h * 3];
    for y in 0..h {
        let sy = (y as f64 + 0.5 - place.ty) / place.scale - 0.5;
        let (y0, fy) = (sy.floor() as isize, sy - sy.floor());
        for x in 0..w {
            let sx = (x as f64 + 0.5 - place.tx) / place.scale - 0.5;
            let (x0, fx) = (sx.floor() as isize, sx - sx.floor());
            let mut acc = [0.0f64; 4];
            for (dy, wy) in [(0, 1.0 - fy), (1, fy)] {
                for (dx, wx) in [(0, 1.0 - fx), (1, fx)] {
                    let (px, py) = (x0 + dx, y0 + dy);
                    if px < 0 || py < 0 || px >= cw || py >= ch {
                        continue;
                    }
                    let k = (py * cw + px) as usize;
                    let weight = wx * wy;
                    for (a, v) in acc.iter_mut().zip(&cutout.rgb[k * 3..k * 3 + 3]) {
                        *a += weight * *v as f64;
                    }
                    acc[3] += weight * cutout.alpha[k] as f64;
                }
            }
            let i = y * w + x;
            let a8 = acc[3].round().clamp(0.0, 255.0) as u8;
            pha[i] = a8;
            let a = a8 as f64 / 255.0;
            for c in 0..3 {
                let f = acc[c];
                let b = bgr[i * 3 + c] as f64;
                com[i * 3 + c] = (a * f + (1.0 - a) * b).round().clamp(0.0, 255.0) as u8;
                fgr[i * 3 + c] = if a8 > 0 { f.round().clamp(0.0, 255.0) as u8 } else { 0 };
            }
        }
    }
    Sample { width, height, com, pha, fgr, bgr: bgr.to_vec() }
}

/// A background image resized to cover `width x height` (Lanczos), cropped at `centre_x_frac` across and
/// centred down.
pub fn cover_background(path: &Path, width: u32, height: u32, centre_x_frac: f64) -> Result<Vec<u8>, EvalError> {
    let image = image::open(path)
        .map_err(|err| EvalError::BadInput { path: path.to_path_buf(), reason: err.to_string() })?
        .into_rgb8();
    let (iw, ih) = image.dimensions();
    let scale = (width as f64 / iw as f64).max(height as f64 / ih as f64);
    let (sw, sh) = (((iw as f64 * scale).round() as u32).max(width), ((ih as f64 * scale).round() as u32).max(height));
    let src = ImageRef::new(iw, ih, image.as_raw(), PixelType::U8x3).expect("image buffer matches its size");
    let mut scaled = Image::new(sw, sh, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Lanczos3));
    Resizer::new().resize(&src, &mut scaled, &options).expect("same pixel types");
    let x0 = ((sw - width) as f64 * centre_x_frac) as usize;
    let y0 = ((sh - height) / 2) as usize;
    let scaled = scaled.into_vec();
    let mut out = Vec::with_capacity((width * height * 3) as usize);
    for y in y0..y0 + height as usize {
        let row = (y * sw as usize + x0) * 3;
        out.extend_from_slice(&scaled[row..row + width as usize * 3]);
    }
    Ok(out)
}

/// A small deterministic random generator (SplitMix64), so generated data depends only on the seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform(f64::MIN_POSITIVE, 1.0);
        let u2 = self.uniform(0.0, 1.0);
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

/// Placement of frame `t` of an `n`-frame clip: the person sways across the frame and breathes in scale
/// (as the reference `make_synth.py video` does).
pub fn clip_placement(cutout: &Cutout, width: u32, height: u32, t: usize, n: usize) -> Placement {
    let base = placement(cutout, width, height, 0.85, 0.5);
    let phase = 2.0 * std::f64::consts::PI * t as f64 / n as f64;
    let scale = base.scale * (1.0 + 0.05 * phase.sin());
    let tx = base.tx + 0.15 * width as f64 * phase.sin() + (base.scale - scale) * 0.5 * cutout.width as f64;
    let ty = base.ty
        + 0.02 * height as f64 * (0.5 + 0.5 * (2.0 * phase).sin())
        + (base.scale - scale) * cutout.height as f64;
    Placement { scale, tx, ty }
}

/// Camera-like degradation of a composite: Gaussian sensor noise of `sigma` levels, then a JPEG round trip
/// at `quality`.
pub fn add_camera_noise(rgb: &mut [u8], width: u32, height: u32, sigma: f64, quality: u8, rng: &mut Rng) {
    for v in rgb.iter_mut() {
        *v = (*v as f64 + sigma * rng.normal()).round().clamp(0.0, 255.0) as u8;
    }
    let mut jpeg = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, quality);
    image::ImageEncoder::write_image(encoder, rgb, width, height, image::ExtendedColorType::Rgb8)
        .expect("encoding to memory cannot fail");
    let decoded =
        image::load_from_memory_with_format(&jpeg, image::ImageFormat::Jpeg).expect("own JPEG decodes").into_rgb8();
    rgb.copy_from_slice(decoded.as_raw());
}
