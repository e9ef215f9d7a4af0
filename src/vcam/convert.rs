//! RGB pictures into the pixel formats cameras deliver, written into the caller's buffer: packed YUYV
//! (YUY2), NV12 and I420 (4:2:0), RGB24 and BGRx. The YUV formats use BT.601 limited range, what webcams
//! send and what readers assume when a stream does not say.

/// A pixel format the virtual camera can deliver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum PixelFormat {
    /// Packed 4:2:2, Y0 U Y1 V: what v4l2loopback consumers and Zoom take.
    Yuyv,
    /// 4:2:0, a Y plane then interleaved UV.
    Nv12,
    /// 4:2:0, Y, U and V planes (YU12, ffmpeg's yuv420p).
    I420,
    Rgb24,
    /// 4 bytes a pixel, the last unused.
    Bgrx,
}

impl PixelFormat {
    /// Bytes of one frame of `width` x `height` (even sizes: see [`even_size`]).
    pub fn frame_bytes(self, width: u32, height: u32) -> usize {
        let pixels = width as usize * height as usize;
        match self {
            Self::Yuyv => pixels * 2,
            Self::Nv12 | Self::I420 => pixels * 3 / 2,
            Self::Rgb24 => pixels * 3,
            Self::Bgrx => pixels * 4,
        }
    }

    /// Bytes of one row of the first plane.
    pub fn stride(self, width: u32) -> u32 {
        match self {
            Self::Yuyv => width * 2,
            Self::Nv12 | Self::I420 => width,
            Self::Rgb24 => width * 3,
            Self::Bgrx => width * 4,
        }
    }

    /// ffmpeg's name for it (`-pix_fmt`).
    pub fn ffmpeg_name(self) -> &'static str {
        match self {
            Self::Yuyv => "yuyv422",
            Self::Nv12 => "nv12",
            Self::I420 => "yuv420p",
            Self::Rgb24 => "rgb24",
            Self::Bgrx => "bgr0",
        }
    }
}

/// The size a camera delivers for a picture of `width` x `height`: both even (4:2:0 needs it, and Chrome
/// refuses odd widths), at least 2 x 2.
pub fn even_size(width: u32, height: u32) -> (u32, u32) {
    ((width & !1).max(2), (height & !1).max(2))
}

fn y_of(r: i32, g: i32, b: i32) -> u8 {
    (((66 * r + 129 * g + 25 * b + 128) >> 8) + 16) as u8
}

fn u_of(r: i32, g: i32, b: i32) -> u8 {
    (((-38 * r - 74 * g + 112 * b + 128) >> 8) + 128) as u8
}

fn v_of(r: i32, g: i32, b: i32) -> u8 {
    (((112 * r - 94 * g - 18 * b + 128) >> 8) + 128) as u8
}

fn pixel(rgb: &[u8], i: usize) -> (i32, i32, i32) {
    (rgb[3 * i] as i32, rgb[3 * i + 1] as i32, rgb[3 * i + 2] as i32)
}

/// Converts packed RGB (`width` x `height`, both even) into `format`, filling `out` (resized to the frame).
pub fn convert(rgb: &[u8], width: u32, height: u32, format: PixelFormat, out: &mut Vec<u8>) {
    let (w, h) = (width as usize, height as usize);
    assert!(w % 2 == 0 && h % 2 == 0, "camera frames have even sizes");
    assert_eq!(rgb.len(), w * h * 3, "RGB of {w}x{h}");
    out.resize(format.frame_bytes(width, height), 0);
    match format {
        PixelFormat::Yuyv => yuyv(rgb, w, h, out),
        PixelFormat::Nv12 | PixelFormat::I420 => yuv420(rgb, w, h, format == PixelFormat::Nv12, out),
        PixelFormat::Rgb24 => out.copy_from_slice(rgb),
        PixelFormat::Bgrx => {
            for (px, bgrx) in rgb.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
                bgrx.copy_from_slice(&[px[2], px[1], px[0], 255]);
            }
        }
    }
}

fn yuyv(rgb: &[u8], w: usize, h: usize, out: &mut [u8]) {
    for i in (0..w * h).step_by(2) {
        let (r0, g0, b0) = pixel(rgb, i);
        let (r1, g1, b1) = pixel(rgb, i + 1);
        let (r, g, b) = ((r0 + r1 + 1) >> 1, (g0 + g1 + 1) >> 1, (b0 + b1 + 1) >> 1);
        out[2 * i..2 * i + 4].copy_from_slice(&[y_of(r0, g0, b0), u_of(r, g, b), y_of(r1, g1, b1), v_of(r, g, b)]);
    }
}

fn yuv420(rgb: &[u8], w: usize, h: usize, interleaved: bool, out: &mut [u8]) {
    let (luma, chroma) = out.split_at_mut(w * h);
    for (i, y) in luma.iter_mut().enumerate() {
        let (r, g, b) = pixel(rgb, i);
        *y = y_of(r, g, b);
    }
    let (cw, ch) = (w / 2, h / 2);
    for cy in 0..ch {
        for cx in 0..cw {
            let mut sum = (0, 0, 0);
            for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                let (r, g, b) = pixel(rgb, (2 * cy + dy) * w + 2 * cx + dx);
                sum = (sum.0 + r, sum.1 + g, sum.2 + b);
            }
            let (r, g, b) = ((sum.0 + 2) >> 2, (sum.1 + 2) >> 2, (sum.2 + 2) >> 2);
            let k = cy * cw + cx;
            if interleaved {
                chroma[2 * k] = u_of(r, g, b);
                chroma[2 * k + 1] = v_of(r, g, b);
            } else {
                chroma[k] = u_of(r, g, b);
                chroma[cw * ch + k] = v_of(r, g, b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_and_colours_land_where_bt601_puts_them() {
        // Black, white, pure green, pure blue pairs.
        let rgb = [0, 0, 0, 0, 0, 0, 255, 255, 255, 255, 255, 255, 0, 255, 0, 0, 255, 0, 0, 0, 255, 0, 0, 255];
        let mut out = Vec::new();
        convert(&rgb, 4, 2, PixelFormat::Yuyv, &mut out);
        assert_eq!(&out[0..4], &[16, 128, 16, 128]);
        assert_eq!(&out[4..8], &[235, 128, 235, 128]);
        assert_eq!(&out[8..12], &[144, 54, 144, 34]);
        assert_eq!(&out[12..16], &[41, 240, 41, 110]);
    }

    #[test]
    fn planar_layouts_hold_the_same_samples() {
        let rgb: Vec<u8> = (0..4 * 2 * 3).map(|i| (i * 10) as u8).collect();
        let (mut nv12, mut i420) = (Vec::new(), Vec::new());
        convert(&rgb, 4, 2, PixelFormat::Nv12, &mut nv12);
        convert(&rgb, 4, 2, PixelFormat::I420, &mut i420);
        assert_eq!(nv12.len(), 12);
        assert_eq!(nv12[..8], i420[..8], "the Y planes");
        assert_eq!([nv12[8], nv12[10]], [i420[8], i420[9]], "U");
        assert_eq!([nv12[9], nv12[11]], [i420[10], i420[11]], "V");
        let mut bgrx = Vec::new();
        convert(&rgb, 4, 2, PixelFormat::Bgrx, &mut bgrx);
        assert_eq!(&bgrx[..4], &[20, 10, 0, 255]);
    }

    #[test]
    fn sizes_are_made_even() {
        assert_eq!(even_size(641, 481), (640, 480));
        assert_eq!(even_size(1, 1), (2, 2));
    }
}
