//! Alpha from model resolution to frame resolution.

use crate::frame::{Guide, Matte};
use crate::resample::{ResampleKind, Resampler};

/// How alpha is brought to frame size.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Upsample {
    /// Exact pixel-area averaging (OpenCV `INTER_AREA`, as the MODNet authors resize alpha back).
    #[default]
    Area,
    /// Triangle filter.
    Bilinear,
    /// Edge-aware: a colour guided filter (He et al.) fitted at model resolution with the frame as guide,
    /// its coefficients upsampled and applied to the full-resolution frame, so edges and hair follow the
    /// picture's own edges.
    Guided,
}

/// Guided upsampling: box radius at model resolution, and regularisation (alpha and colour in [0, 1]).
/// Chosen on the shared bgmv1 stills (`mattecam eval ... --upsample guided`): radius 1 or 3 and eps 1e-4 or
/// 1e-6 scored worse there.
pub const GUIDED_RADIUS_PX: usize = 2;
pub const GUIDED_EPS: f32 = 1e-5;

/// Resizes mattes to frame size, reusing its tables and buffers while sizes stay the same.
pub struct AlphaUpsampler {
    kind: Upsample,
    resampler: Option<Resampler>,
    /// Guided mode: frame grey to model size, and coefficients to frame size.
    down: Option<Resampler>,
    up: Option<Resampler>,
    scratch: Vec<f32>,
    /// Guided mode: the frame at model resolution (planar, [0, 1]) and one upsampled coefficient plane.
    colour: Vec<f32>,
    plane: Vec<f32>,
}

impl AlphaUpsampler {
    pub fn new(kind: Upsample) -> Self {
        Self { kind, resampler: None, down: None, up: None, scratch: Vec::new(), colour: Vec::new(), plane: Vec::new() }
    }

    /// Alpha in [0, 1] at the guide's size into `out`.
    pub fn upsample_f32(&mut self, matte: &Matte, guide: Guide, out: &mut Vec<f32>) {
        let (width, height) = (guide.width, guide.height);
        out.resize(width as usize * height as usize, 0.0);
        if (matte.width, matte.height) == (width, height) {
            out.copy_from_slice(&matte.alpha);
            return;
        }
        match self.kind {
            Upsample::Area | Upsample::Bilinear => {
                let kind = if self.kind == Upsample::Area { ResampleKind::Area } else { ResampleKind::Bilinear };
                Resampler::reuse(&mut self.resampler, kind, matte.width, matte.height, width, height)
                    .gray_f32(&matte.alpha, out);
            }
            Upsample::Guided => self.guided(matte, guide, out),
        }
    }

    /// Alpha as 8-bit (0..=255, rounded) at the guide's size into `out`.
    pub fn upsample_u8(&mut self, matte: &Matte, guide: Guide, out: &mut Vec<u8>) {
        let mut scratch = std::mem::take(&mut self.scratch);
        self.upsample_f32(matte, guide, &mut scratch);
        out.clear();
        out.extend(scratch.iter().map(|a| (a.clamp(0.0, 1.0) * 255.0 + 0.5) as u8));
        self.scratch = scratch;
    }

    fn guided(&mut self, matte: &Matte, guide: Guide, out: &mut [f32]) {
        let (lw, lh) = (matte.width, matte.height);
        let n_full = out.len();
        // The guide at model resolution, planar, in [0, 1].
        let low = &mut self.colour;
        low.resize(3 * matte.pixel_count(), 0.0);
        Resampler::reuse(&mut self.down, ResampleKind::Area, guide.width, guide.height, lw, lh).rgb8_to_planar(
            guide.rgb,
            low,
            1.0 / 255.0,
            0.0,
        );
        let coefficients =
            colour_guided_coefficients(low, &matte.alpha, lw as usize, lh as usize, GUIDED_RADIUS_PX, GUIDED_EPS);
        let up = Resampler::reuse(&mut self.up, ResampleKind::Bilinear, lw, lh, guide.width, guide.height);
        let plane = &mut self.plane;
        plane.resize(n_full, 0.0);
        up.gray_f32(&coefficients[3], out);
        for c in 0..3 {
            up.gray_f32(&coefficients[c], plane);
            for ((o, a), p) in out.iter_mut().zip(plane.iter()).zip(guide.rgb.chunks_exact(3)) {
                *o += a * (p[c] as f32 / 255.0);
            }
        }
        for o in out.iter_mut() {
            *o = o.clamp(0.0, 1.0);
        }
    }
}

/// Mean over a `(2r+1)^2` window, edges clamped to the image (the window shrinks).
fn box_mean(src: &[f32], w: usize, h: usize, r: usize) -> Vec<f32> {
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        let row = &src[y * w..(y + 1) * w];
        for x in 0..w {
            let (lo, hi) = (x.saturating_sub(r), (x + r + 1).min(w));
            tmp[y * w + x] = row[lo..hi].iter().sum::<f32>() / (hi - lo) as f32;
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        let (lo, hi) = (y.saturating_sub(r), (y + r + 1).min(h));
        for yy in lo..hi {
            for x in 0..w {
                out[y * w + x] += tmp[yy * w + x];
            }
        }
        let n = (hi - lo) as f32;
        for v in &mut out[y * w..(y + 1) * w] {
            *v /= n;
        }
    }
    out
}

/// The colour guided filter's smoothed coefficients: alpha ~ a . rgb + b in each window, with
/// `a = (cov(rgb) + eps I)^-1 cov(rgb, alpha)`. Returns `[a_r, a_g, a_b, b]`.
pub fn colour_guided_coefficients(rgb: &[f32], alpha: &[f32], w: usize, h: usize, r: usize, eps: f32) -> [Vec<f32>; 4] {
    let n = w * h;
    let ch = |c: usize| &rgb[c * n..(c + 1) * n];
    let mean_i: Vec<Vec<f32>> = (0..3).map(|c| box_mean(ch(c), w, h, r)).collect();
    let mean_p = box_mean(alpha, w, h, r);
    let mean_ip: Vec<Vec<f32>> =
        (0..3).map(|c| box_mean(&ch(c).iter().zip(alpha).map(|(i, p)| i * p).collect::<Vec<_>>(), w, h, r)).collect();
    // Covariance entries rr, rg, rb, gg, gb, bb.
    let pairs = [(0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2)];
    let var: Vec<Vec<f32>> = pairs
        .iter()
        .map(|&(x, y)| {
            let prod: Vec<f32> = ch(x).iter().zip(ch(y)).map(|(a, b)| a * b).collect();
            let m = box_mean(&prod, w, h, r);
            m.iter().enumerate().map(|(k, v)| v - mean_i[x][k] * mean_i[y][k]).collect()
        })
        .collect();
    let mut a = [vec![0.0; n], vec![0.0; n], vec![0.0; n]];
    let mut b = vec![0.0; n];
    for k in 0..n {
        let (rr, rg, rb, gg, gb, bb) =
            (var[0][k] + eps, var[1][k], var[2][k], var[3][k] + eps, var[4][k], var[5][k] + eps);
        let cov = [
            mean_ip[0][k] - mean_i[0][k] * mean_p[k],
            mean_ip[1][k] - mean_i[1][k] * mean_p[k],
            mean_ip[2][k] - mean_i[2][k] * mean_p[k],
        ];
        // Inverse of the symmetric 3x3 matrix by cofactors.
        let c00 = gg * bb - gb * gb;
        let c01 = gb * rb - rg * bb;
        let c02 = rg * gb - gg * rb;
        let c11 = rr * bb - rb * rb;
        let c12 = rb * rg - rr * gb;
        let c22 = rr * gg - rg * rg;
        let det = rr * c00 + rg * c01 + rb * c02;
        let inv = 1.0 / det;
        let ak = [
            inv * (c00 * cov[0] + c01 * cov[1] + c02 * cov[2]),
            inv * (c01 * cov[0] + c11 * cov[1] + c12 * cov[2]),
            inv * (c02 * cov[0] + c12 * cov[1] + c22 * cov[2]),
        ];
        for c in 0..3 {
            a[c][k] = ak[c];
        }
        b[k] = mean_p[k] - ak[0] * mean_i[0][k] - ak[1] * mean_i[1][k] - ak[2] * mean_i[2][k];
    }
    let [a0, a1, a2] = a;
    [box_mean(&a0, w, h, r), box_mean(&a1, w, h, r), box_mean(&a2, w, h, r), box_mean(&b, w, h, r)]
}
