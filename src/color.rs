//! Camera pixel formats to packed RGB8, writing into the caller's buffer. BT.601 limited range, the
//! usual encoding of webcam YUYV and NV12. `shaders/convert.wgsl` computes the same on the GPU.

#[derive(Debug, thiserror::Error)]
pub enum ColorError {
    #[error("{format} needs {expected} bytes for {width}x{height}, got {actual}")]
    Size { format: &'static str, width: u32, height: u32, expected: usize, actual: usize },
    #[error("{format} needs an even {what}, got {width}x{height}")]
    Odd { format: &'static str, what: &'static str, width: u32, height: u32 },
}

/// A frame as a camera or decoder delivers it.
#[derive(Clone, Copy, Debug)]
pub enum PixelData<'a> {
    /// Packed RGB, 3 bytes a pixel.
    Rgb(&'a [u8]),
    /// 4:2:2 packed `Y0 U Y1 V`, 2 bytes a pixel.
    Yuyv(&'a [u8]),
    /// 4:2:0: the Y plane, then interleaved `U V` at half resolution both ways.
    Nv12(&'a [u8]),
}

impl PixelData<'_> {
    pub fn format_name(&self) -> &'static str {
        match self {
            Self::Rgb(_) => "RGB",
            Self::Yuyv(_) => "YUYV",
            Self::Nv12(_) => "NV12",
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Rgb(b) | Self::Yuyv(b) | Self::Nv12(b) => b,
        }
    }

    /// Checks the buffer's length and the size's parity for this format.
    pub fn check(&self, width: u32, height: u32) -> Result<(), ColorError> {
        let pixels = width as usize * height as usize;
        let format = self.format_name();
        let odd = |what| ColorError::Odd { format, what, width, height };
        let expected = match self {
            Self::Rgb(_) => pixels * 3,
            Self::Yuyv(_) => {
                if !width.is_multiple_of(2) {
                    return Err(odd("width"));
                }
                pixels * 2
            }
            Self::Nv12(_) => {
                if !width.is_multiple_of(2) || !height.is_multiple_of(2) {
                    return Err(odd("width and height"));
                }
                pixels * 3 / 2
            }
        };
        let actual = self.bytes().len();
        if actual != expected {
            return Err(ColorError::Size { format, width, height, expected, actual });
        }
        Ok(())
    }
}

/// One pixel from BT.601 limited-range Y, U, V.
#[inline]
pub fn rgb_from_ycbcr(y: u8, u: u8, v: u8) -> [u8; 3] {
    rgb_from_luma_chroma(y, Chroma::new(u, v))
}

/// A chroma pair's contributions to R, G and B, computed once for the pixels that share it.
#[derive(Clone, Copy)]
struct Chroma {
    r: f32,
    g: f32,
    b: f32,
}

impl Chroma {
    #[inline]
    fn new(u: u8, v: u8) -> Self {
        let d = u as f32 - 128.0;
        let e = v as f32 - 128.0;
        Self { r: 1.596_026_8 * e, g: -0.391_762_3 * d - 0.812_967_6 * e, b: 2.017_232_2 * d }
    }
}

#[inline]
fn rgb_from_luma_chroma(y: u8, chroma: Chroma) -> [u8; 3] {
    let c = 1.164_383_6 * (y as f32 - 16.0);
    // `as` truncates and saturates: `floor` without a libm call (no SSE4.1 in x86-64's baseline).
    let to_u8 = |x: f32| (x.clamp(0.0, 255.0) + 0.5) as u8;
    [to_u8(c + chroma.r), to_u8(c + chroma.g), to_u8(c + chroma.b)]
}

/// YUYV (`Y0 U Y1 V`) into packed RGB; `dst` is resized to `width * height * 3`.
pub fn rgb_from_yuyv(src: &[u8], width: u32, height: u32, dst: &mut Vec<u8>) -> Result<(), ColorError> {
    PixelData::Yuyv(src).check(width, height)?;
    dst.resize(width as usize * height as usize * 3, 0);
    for (quad, out) in src.chunks_exact(4).zip(dst.chunks_exact_mut(6)) {
        let chroma = Chroma::new(quad[1], quad[3]);
        out[..3].copy_from_slice(&rgb_from_luma_chroma(quad[0], chroma));
        out[3..].copy_from_slice(&rgb_from_luma_chroma(quad[2], chroma));
    }
    Ok(())
}

/// NV12 into packed RGB; `dst` is resized to `width * height * 3`.
pub fn rgb_from_nv12(src: &[u8], width: u32, height: u32, dst: &mut Vec<u8>) -> Result<(), ColorError> {
    PixelData::Nv12(src).check(width, height)?;
    let (w, h) = (width as usize, height as usize);
    dst.resize(w * h * 3, 0);
    let (luma, chroma) = src.split_at(w * h);
    for y in 0..h {
        let chroma_row = &chroma[(y / 2) * w..(y / 2 + 1) * w];
        let luma_row = &luma[y * w..(y + 1) * w];
        let out_row = &mut dst[y * w * 3..(y + 1) * w * 3];
        for ((pair, uv), out) in luma_row.chunks(2).zip(chroma_row.chunks_exact(2)).zip(out_row.chunks_mut(6)) {
            let chroma = Chroma::new(uv[0], uv[1]);
            for (&luma, out) in pair.iter().zip(out.chunks_exact_mut(3)) {
                out.copy_from_slice(&rgb_from_luma_chroma(luma, chroma));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limited_range_extremes_and_primaries() {
        assert_eq!(rgb_from_ycbcr(16, 128, 128), [0, 0, 0]);
        assert_eq!(rgb_from_ycbcr(235, 128, 128), [255, 255, 255]);
        // BT.601 red: Y 81, Cb 90, Cr 240.
        let red = rgb_from_ycbcr(81, 90, 240);
        assert!(red[0] >= 253 && red[1] <= 2 && red[2] <= 2, "{red:?}");
    }

    #[test]
    fn yuyv_and_nv12_agree_on_a_frame_with_shared_chroma() {
        let (w, h) = (4u32, 2u32);
        let ys: Vec<u8> = (0..8).map(|i| 30 + i * 25).collect();
        // Same U, V for each 2x2 block so both layouts carry the same picture.
        let (u, v) = ([60u8, 200], [170u8, 90]);
        let mut yuyv = Vec::new();
        for y in 0..2 {
            for pair in 0..2 {
                yuyv.extend([ys[y * 4 + pair * 2], u[pair], ys[y * 4 + pair * 2 + 1], v[pair]]);
            }
        }
        let mut nv12 = ys.clone();
        nv12.extend([u[0], v[0], u[1], v[1]]);
        let (mut a, mut b) = (Vec::new(), Vec::new());
        rgb_from_yuyv(&yuyv, w, h, &mut a).unwrap();
        rgb_from_nv12(&nv12, w, h, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(&a[..3], &rgb_from_ycbcr(30, 60, 170));
    }

    #[test]
    fn wrong_sizes_are_refused() {
        let mut out = Vec::new();
        assert!(matches!(rgb_from_yuyv(&[0; 6], 3, 1, &mut out), Err(ColorError::Odd { .. })));
        assert!(matches!(rgb_from_nv12(&[0; 5], 2, 2, &mut out), Err(ColorError::Size { expected: 6, .. })));
    }
}
