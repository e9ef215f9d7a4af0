//! Separable resampling with precomputed taps, writing into caller buffers.
//!
//! `Area` is exact pixel-area averaging (each output pixel is the mean of the input over its footprint,
//! the input seen as piecewise constant), which is what OpenCV's `INTER_AREA` computes in both directions
//! and what the MODNet authors use; `Bilinear` is the usual triangle filter, widened when shrinking.

/// How output pixels are made from input pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ResampleKind {
    /// Exact area averaging (OpenCV `INTER_AREA`).
    #[default]
    Area,
    /// Triangle filter.
    Bilinear,
}

/// Input taps of every output index along one axis.
#[derive(Clone, Debug, Default)]
struct Taps {
    /// First input index of each output index.
    first: Vec<u32>,
    /// Where each output index's weights start in `weights`; one more entry than outputs.
    offsets: Vec<u32>,
    weights: Vec<f32>,
}

impl Taps {
    fn new(kind: ResampleKind, src_len: usize, dst_len: usize) -> Self {
        Self::over(kind, src_len, dst_len, 0.0, src_len as f64)
    }

    /// Taps that map `[start, start + extent)` of the input onto the whole output.
    fn over(kind: ResampleKind, src_len: usize, dst_len: usize, start: f64, extent: f64) -> Self {
        let mut taps = Taps { offsets: vec![0], ..Default::default() };
        let scale = extent / dst_len as f64;
        for i in 0..dst_len {
            let (first, weights) = match kind {
                ResampleKind::Area => area_weights(i, start, scale, src_len),
                ResampleKind::Bilinear => triangle_weights(i, start, scale, src_len),
            };
            taps.first.push(first as u32);
            taps.weights.extend(weights);
            taps.offsets.push(taps.weights.len() as u32);
        }
        taps
    }

    /// The table as one `u32` array for a shader: `[n, first[n], offsets[n + 1], weight bits...]`
    /// (`shaders/resample.wgsl` reads it in this layout).
    fn packed(&self) -> Vec<u32> {
        let mut out = Vec::with_capacity(1 + self.first.len() + self.offsets.len() + self.weights.len());
        out.push(self.first.len() as u32);
        out.extend(&self.first);
        out.extend(&self.offsets);
        out.extend(self.weights.iter().map(|w| w.to_bits()));
        out
    }

    fn of(&self, i: usize) -> (usize, &[f32]) {
        let (start, end) = (self.offsets[i] as usize, self.offsets[i + 1] as usize);
        (self.first[i] as usize, &self.weights[start..end])
    }
}

fn area_weights(i: usize, start: f64, scale: f64, src_len: usize) -> (usize, Vec<f32>) {
    let (lo, hi) = (start + i as f64 * scale, (start + (i + 1) as f64 * scale).min(src_len as f64));
    let first = (lo.floor() as usize).min(src_len - 1);
    let mut weights = Vec::new();
    let mut j = first;
    while j < src_len && (j as f64) < hi {
        let overlap = (hi.min(j as f64 + 1.0) - lo.max(j as f64)).max(0.0);
        weights.push((overlap / (hi - lo)) as f32);
        j += 1;
    }
    trim_zeros(first, weights)
}

fn triangle_weights(i: usize, start: f64, scale: f64, src_len: usize) -> (usize, Vec<f32>) {
    let support = scale.max(1.0);
    let center = start + (i as f64 + 0.5) * scale - 0.5;
    let lo = (center - support).floor().max(0.0) as usize;
    let hi = ((center + support).ceil() as usize).min(src_len - 1);
    let raw: Vec<f64> = (lo..=hi).map(|j| (1.0 - (j as f64 - center).abs() / support).max(0.0)).collect();
    let total: f64 = raw.iter().sum();
    let weights = if total > 0.0 {
        raw.iter().map(|w| (w / total) as f32).collect()
    } else {
        // Centre outside the input (edge of an enlargement): take the nearest pixel.
        let mut w = vec![0.0; raw.len()];
        let nearest = (center.round().clamp(lo as f64, hi as f64) as usize) - lo;
        w[nearest] = 1.0;
        w
    };
    trim_zeros(lo, weights)
}

fn trim_zeros(mut first: usize, mut weights: Vec<f32>) -> (usize, Vec<f32>) {
    while weights.len() > 1 && weights[0] == 0.0 {
        weights.remove(0);
        first += 1;
    }
    while weights.len() > 1 && weights.last() == Some(&0.0) {
        weights.pop();
    }
    (first, weights)
}

/// Resamples images of one size to another with one kind of filter, reusing its tables and scratch.
#[derive(Clone, Debug)]
pub struct Resampler {
    kind: ResampleKind,
    src: (usize, usize),
    dst: (usize, usize),
    horizontal: Taps,
    vertical: Taps,
    scratch: Vec<f32>,
}

impl Resampler {
    pub fn new(kind: ResampleKind, src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Self {
        let (sw, sh, dw, dh) = (src_w as usize, src_h as usize, dst_w as usize, dst_h as usize);
        assert!(sw > 0 && sh > 0 && dw > 0 && dh > 0, "empty image");
        Self {
            kind,
            src: (sw, sh),
            dst: (dw, dh),
            horizontal: Taps::new(kind, sw, dw),
            vertical: Taps::new(kind, sh, dh),
            scratch: Vec::new(),
        }
    }

    /// Scales the input to cover the output and crops the overflow evenly from both sides (the picture is
    /// centred and keeps its aspect ratio).
    pub fn cover(kind: ResampleKind, src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> Self {
        let (sw, sh, dw, dh) = (src_w as usize, src_h as usize, dst_w as usize, dst_h as usize);
        assert!(sw > 0 && sh > 0 && dw > 0 && dh > 0, "empty image");
        let scale = (dw as f64 / sw as f64).max(dh as f64 / sh as f64);
        let (extent_x, extent_y) = ((dw as f64 / scale).min(sw as f64), (dh as f64 / scale).min(sh as f64));
        Self {
            kind,
            src: (sw, sh),
            dst: (dw, dh),
            horizontal: Taps::over(kind, sw, dw, (sw as f64 - extent_x) / 2.0, extent_x),
            vertical: Taps::over(kind, sh, dh, (sh as f64 - extent_y) / 2.0, extent_y),
            scratch: Vec::new(),
        }
    }

    /// Horizontal and vertical tables packed for `shaders/resample.wgsl`.
    pub fn packed_taps(&self) -> (Vec<u32>, Vec<u32>) {
        (self.horizontal.packed(), self.vertical.packed())
    }

    pub fn src_size(&self) -> (u32, u32) {
        (self.src.0 as u32, self.src.1 as u32)
    }

    pub fn dst_size(&self) -> (u32, u32) {
        (self.dst.0 as u32, self.dst.1 as u32)
    }

    /// The resampler in `slot`, rebuilt only when the filter or sizes changed.
    pub fn reuse(
        slot: &mut Option<Resampler>,
        kind: ResampleKind,
        sw: u32,
        sh: u32,
        dw: u32,
        dh: u32,
    ) -> &mut Resampler {
        if !slot.as_ref().is_some_and(|r| r.fits(kind, sw, sh, dw, dh)) {
            *slot = Some(Resampler::new(kind, sw, sh, dw, dh));
        }
        slot.as_mut().expect("set above")
    }

    /// Whether this resampler maps these sizes with this filter (so it can be reused).
    pub fn fits(&self, kind: ResampleKind, src_w: u32, src_h: u32, dst_w: u32, dst_h: u32) -> bool {
        self.kind == kind
            && self.src == (src_w as usize, src_h as usize)
            && self.dst == (dst_w as usize, dst_h as usize)
    }

    /// Packed RGB8 in, planar float out (`3 * dst_w * dst_h`, channel-major), each value `v * scale + offset`,
    /// with no rounding in between.
    pub fn rgb8_to_planar(&mut self, src: &[u8], dst: &mut [f32], scale: f32, offset: f32) {
        let ((sw, sh), (dw, dh)) = (self.src, self.dst);
        assert_eq!(src.len(), sw * sh * 3, "source size");
        assert_eq!(dst.len(), dw * dh * 3, "destination size");
        // Horizontal pass into planar rows: scratch[c][sy][dx].
        self.scratch.resize(3 * sh * dw, 0.0);
        let plane = sh * dw;
        for sy in 0..sh {
            let row = &src[sy * sw * 3..(sy + 1) * sw * 3];
            for dx in 0..dw {
                let (first, weights) = self.horizontal.of(dx);
                let mut acc = [0.0f32; 3];
                for (k, &w) in weights.iter().enumerate() {
                    let p = &row[(first + k) * 3..(first + k) * 3 + 3];
                    acc[0] += w * p[0] as f32;
                    acc[1] += w * p[1] as f32;
                    acc[2] += w * p[2] as f32;
                }
                for (c, value) in acc.into_iter().enumerate() {
                    self.scratch[c * plane + sy * dw + dx] = value;
                }
            }
        }
        // Vertical pass, row by row so the inner loop runs over contiguous memory.
        for c in 0..3 {
            let scratch = &self.scratch[c * plane..(c + 1) * plane];
            let out_plane = &mut dst[c * dw * dh..(c + 1) * dw * dh];
            vertical_pass(&self.vertical, scratch, dw, out_plane, dh, scale, offset);
        }
    }

    /// One float channel in, one out.
    pub fn gray_f32(&mut self, src: &[f32], dst: &mut [f32]) {
        let ((sw, sh), (dw, dh)) = (self.src, self.dst);
        assert_eq!(src.len(), sw * sh, "source size");
        assert_eq!(dst.len(), dw * dh, "destination size");
        self.scratch.resize(sh * dw, 0.0);
        for sy in 0..sh {
            let row = &src[sy * sw..(sy + 1) * sw];
            let out = &mut self.scratch[sy * dw..(sy + 1) * dw];
            for (dx, value) in out.iter_mut().enumerate() {
                let (first, weights) = self.horizontal.of(dx);
                *value = weights.iter().zip(&row[first..]).map(|(w, p)| w * p).sum();
            }
        }
        vertical_pass(&self.vertical, &self.scratch, dw, dst, dh, 1.0, 0.0);
    }
}

fn vertical_pass(taps: &Taps, src: &[f32], width: usize, dst: &mut [f32], dst_h: usize, scale: f32, offset: f32) {
    for dy in 0..dst_h {
        let (first, weights) = taps.of(dy);
        let out = &mut dst[dy * width..(dy + 1) * width];
        out.fill(0.0);
        for (k, &w) in weights.iter().enumerate() {
            let row = &src[(first + k) * width..(first + k + 1) * width];
            for (o, &v) in out.iter_mut().zip(row) {
                *o += w * v;
            }
        }
        if scale != 1.0 || offset != 0.0 {
            for o in out.iter_mut() {
                *o = *o * scale + offset;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn area_weights_sum_to_one_and_cover_the_footprint() {
        for (src, dst) in [(1080, 768), (768, 1080), (720, 512), (7, 3), (3, 7), (5, 5)] {
            let taps = Taps::new(ResampleKind::Area, src, dst);
            for i in 0..dst {
                let (first, weights) = taps.of(i);
                let sum: f32 = weights.iter().sum();
                assert!((sum - 1.0).abs() < 1e-5, "{src}->{dst} index {i} sums to {sum}");
                assert!(first + weights.len() <= src);
            }
        }
    }

    #[test]
    fn area_downscale_by_two_is_the_mean_of_pairs() {
        let mut r = Resampler::new(ResampleKind::Area, 4, 1, 2, 1);
        let mut out = [0.0; 2];
        r.gray_f32(&[0.0, 1.0, 0.5, 0.25], &mut out);
        assert_eq!(out, [0.5, 0.375]);
    }

    #[test]
    fn area_upscale_is_piecewise_constant_with_area_weighted_seams() {
        // 2 -> 3: the middle output pixel straddles both inputs half and half.
        let mut r = Resampler::new(ResampleKind::Area, 2, 1, 3, 1);
        let mut out = [0.0; 3];
        r.gray_f32(&[0.0, 1.0], &mut out);
        assert_eq!(out, [0.0, 0.5, 1.0]);
    }

    #[test]
    fn bilinear_upscale_by_two_interpolates_between_centres() {
        let mut r = Resampler::new(ResampleKind::Bilinear, 2, 1, 4, 1);
        let mut out = [0.0; 4];
        r.gray_f32(&[0.0, 1.0], &mut out);
        assert_eq!(out, [0.0, 0.25, 0.75, 1.0]);
    }

    #[test]
    fn rgb_to_planar_normalises_without_rounding() {
        let src = [0u8, 128, 255, 255, 128, 0];
        let mut r = Resampler::new(ResampleKind::Area, 2, 1, 1, 1);
        let mut out = [0.0f32; 3];
        r.rgb8_to_planar(&src, &mut out, 1.0 / 127.5, -1.0);
        assert_eq!(out, [0.0, 128.0 / 127.5 - 1.0, 0.0]);
    }
}
