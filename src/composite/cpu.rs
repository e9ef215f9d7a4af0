//! The CPU compositor: the reference every other compositor is compared with.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::{Background, CompositeError};
use crate::frame::Frame;

/// A composited frame: RGB, or RGBA with straight alpha for the transparent background.
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
    ((f * a + b * (255 - a) + 127) / 255) as u8
}

/// Composites frames over one background, keeping the scaled background image and blur buffers between
/// frames.
pub struct CpuCompositor {
    background: Background,
    /// The background image as loaded, and its cover-fit copy for the current frame size.
    image: Option<(u32, u32, Vec<u8>)>,
    fitted: Option<(u32, u32, Vec<u8>)>,
    resizer: Resizer,
    blur_small: Vec<u8>,
    blur_scratch: Vec<u8>,
    blur_full: Vec<u8>,
}

impl CpuCompositor {
    /// Checks the background now (an unreadable image is an error here, not on the first frame).
    pub fn new(background: Background) -> Result<Self, CompositeError> {
        let image = match &background {
            Background::Image(path) => {
                let (w, h, rgb) = crate::source::image::load_rgb(path)
                    .map_err(|err| CompositeError::BackgroundImage { path: path.clone(), reason: err.to_string() })?;
                Some((w, h, rgb))
            }
            _ => None,
        };
        Ok(Self {
            background,
            image,
            fitted: None,
            resizer: Resizer::new(),
            blur_small: Vec::new(),
            blur_scratch: Vec::new(),
            blur_full: Vec::new(),
        })
    }

    pub fn background(&self) -> &Background {
        &self.background
    }

    /// Composites `frame` with its frame-size 8-bit `alpha`; `foreground` (frame-size RGB, e.g. RVM's
    /// prediction) replaces the frame's own colours where given.
    pub fn composite(&mut self, frame: &Frame, alpha: &[u8], foreground: Option<&[u8]>, out: &mut Composite) {
        let (w, h) = (frame.width, frame.height);
        assert_eq!(alpha.len(), frame.pixel_count(), "alpha must be at frame size");
        let fg = foreground.filter(|f| f.len() == frame.rgb.len()).unwrap_or(&frame.rgb);
        out.width = w;
        out.height = h;
        match self.background.clone() {
            Background::Transparent => {
                out.channels = 4;
                out.pixels.resize(frame.pixel_count() * 4, 0);
                for ((o, f), &a) in out.pixels.chunks_exact_mut(4).zip(fg.chunks_exact(3)).zip(alpha) {
                    o[..3].copy_from_slice(f);
                    o[3] = a;
                }
            }
            Background::Color(color) => {
                out.channels = 3;
                out.pixels.resize(frame.pixel_count() * 3, 0);
                for ((o, f), &a) in out.pixels.chunks_exact_mut(3).zip(fg.chunks_exact(3)).zip(alpha) {
                    for c in 0..3 {
                        o[c] = blend(f[c], color[c], a);
                    }
                }
            }
            Background::Image(_) => {
                self.fit_image(w, h);
                let bg = &self.fitted.as_ref().expect("fitted above").2;
                blend_over(fg, bg, alpha, out);
            }
            Background::Blur { radius_px } => {
                self.blur_frame(frame, radius_px);
                let bg = std::mem::take(&mut self.blur_full);
                blend_over(fg, &bg, alpha, out);
                self.blur_full = bg;
            }
        }
    }

    fn fit_image(&mut self, width: u32, height: u32) {
        if self.fitted.as_ref().is_some_and(|(w, h, _)| (*w, *h) == (width, height)) {
            return;
        }
        let (iw, ih, rgb) = self.image.as_ref().expect("image background has an image");
        let src = ImageRef::new(*iw, *ih, rgb, PixelType::U8x3).expect("image buffer matches its size");
        let mut dst = Image::new(width, height, PixelType::U8x3);
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(FilterType::CatmullRom))
            .fit_into_destination(Some((0.5, 0.5)));
        self.resizer.resize(&src, &mut dst, &options).expect("same pixel types");
        self.fitted = Some((width, height, dst.into_vec()));
    }

    /// Blurs the frame into `blur_full`: shrink so the radius is a few pixels, three box passes (close to
    /// a Gaussian), enlarge back.
    fn blur_frame(&mut self, frame: &Frame, radius_px: u32) {
        let (w, h) = (frame.width, frame.height);
        // The radius is given for a 720-line frame; scale it with the frame.
        let radius = (radius_px as f32 * h as f32 / 720.0).max(0.0);
        let factor = (radius / 3.0).max(1.0);
        let (sw, sh) = (((w as f32 / factor).round() as u32).max(1), ((h as f32 / factor).round() as u32).max(1));
        let small_radius = (radius / factor).round() as usize;
        let src = ImageRef::new(w, h, &frame.rgb, PixelType::U8x3).expect("frame buffer matches its size");
        self.blur_small.resize(sw as usize * sh as usize * 3, 0);
        let area = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Box));
        {
            let mut small = Image::from_slice_u8(sw, sh, &mut self.blur_small, PixelType::U8x3).expect("sized above");
            self.resizer.resize(&src, &mut small, &area).expect("same pixel types");
        }
        for _ in 0..3 {
            box_blur_rgb(&mut self.blur_small, &mut self.blur_scratch, sw as usize, sh as usize, small_radius);
        }
        self.blur_full.resize(frame.rgb.len(), 0);
        let small = ImageRef::new(sw, sh, &self.blur_small, PixelType::U8x3).expect("sized above");
        let mut full = Image::from_slice_u8(w, h, &mut self.blur_full, PixelType::U8x3).expect("sized above");
        let bilinear = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        self.resizer.resize(&small, &mut full, &bilinear).expect("same pixel types");
    }
}

fn blend_over(fg: &[u8], bg: &[u8], alpha: &[u8], out: &mut Composite) {
    out.channels = 3;
    out.pixels.resize(alpha.len() * 3, 0);
    for (((o, f), b), &a) in out.pixels.chunks_exact_mut(3).zip(fg.chunks_exact(3)).zip(bg.chunks_exact(3)).zip(alpha) {
        for c in 0..3 {
            o[c] = blend(f[c], b[c], a);
        }
    }
}

/// One box-blur pass of `radius` pixels, horizontally then vertically, edges clamped.
pub fn box_blur_rgb(image: &mut [u8], scratch: &mut Vec<u8>, width: usize, height: usize, radius: usize) {
    if radius == 0 {
        return;
    }
    scratch.resize(image.len(), 0);
    let window = (2 * radius + 1) as u32;
    let clamp = |i: isize, n: usize| i.clamp(0, n as isize - 1) as usize;
    for y in 0..height {
        let row = &image[y * width * 3..(y + 1) * width * 3];
        let out = &mut scratch[y * width * 3..(y + 1) * width * 3];
        for c in 0..3 {
            let mut sum: u32 =
                (-(radius as isize)..=radius as isize).map(|i| row[clamp(i, width) * 3 + c] as u32).sum();
            for x in 0..width {
                out[x * 3 + c] = ((sum + window / 2) / window) as u8;
                let add = row[clamp(x as isize + radius as isize + 1, width) * 3 + c] as u32;
                let sub = row[clamp(x as isize - radius as isize, width) * 3 + c] as u32;
                sum = sum + add - sub;
            }
        }
    }
    for x in 0..width {
        for c in 0..3 {
            let at = |y: usize| scratch[(y * width + x) * 3 + c] as u32;
            let mut sum: u32 = (-(radius as isize)..=radius as isize).map(|i| at(clamp(i, height))).sum();
            for y in 0..height {
                image[(y * width + x) * 3 + c] = ((sum + window / 2) / window) as u8;
                sum = sum + at(clamp(y as isize + radius as isize + 1, height))
                    - at(clamp(y as isize - radius as isize, height));
            }
        }
    }
}
