//! Matting metrics from their published definitions (Rhemann et al. 2009, DIM 2017, Erofeev et al. 2015),
//! scaled as the RVM paper's tables: SAD / 1000, MSE x 1e3, MAD x 1e3, Grad / 1000, Conn / 1000,
//! dtSSD x 100.
//!
//! Every function takes alpha in [0, 1] as `f64`, row-major, `width` wide, and an optional region mask.

/// A row-major single-channel image.
#[derive(Clone, Debug, PartialEq)]
pub struct Plane<'a> {
    pub width: usize,
    pub height: usize,
    pub data: &'a [f64],
}

impl<'a> Plane<'a> {
    pub fn new(width: usize, height: usize, data: &'a [f64]) -> Self {
        assert_eq!(data.len(), width * height, "plane size");
        Self { width, height, data }
    }
}

fn selected<'m>(mask: Option<&'m [bool]>, len: usize) -> impl Fn(usize) -> bool + 'm {
    if let Some(m) = mask {
        assert_eq!(m.len(), len, "mask size");
    }
    move |i| mask.is_none_or(|m| m[i])
}

fn count(mask: Option<&[bool]>, len: usize) -> usize {
    mask.map_or(len, |m| m.iter().filter(|v| **v).count())
}

/// Sum of absolute differences / 1000.
pub fn sad(pred: &[f64], gt: &[f64], mask: Option<&[bool]>) -> f64 {
    let keep = selected(mask, gt.len());
    pred.iter().zip(gt).enumerate().filter(|(i, _)| keep(*i)).map(|(_, (p, g))| (p - g).abs()).sum::<f64>() / 1000.0
}

/// Mean squared error (raw; tables show x 1e3).
pub fn mse(pred: &[f64], gt: &[f64], mask: Option<&[bool]>) -> f64 {
    let keep = selected(mask, gt.len());
    let sum: f64 = pred.iter().zip(gt).enumerate().filter(|(i, _)| keep(*i)).map(|(_, (p, g))| (p - g).powi(2)).sum();
    sum / count(mask, gt.len()).max(1) as f64
}

/// Mean absolute difference (raw; tables show x 1e3).
pub fn mad(pred: &[f64], gt: &[f64], mask: Option<&[bool]>) -> f64 {
    let keep = selected(mask, gt.len());
    let sum: f64 = pred.iter().zip(gt).enumerate().filter(|(i, _)| keep(*i)).map(|(_, (p, g))| (p - g).abs()).sum();
    sum / count(mask, gt.len()).max(1) as f64
}

/// The 1-D Gaussian and its derivative used by DIM's `gaussgradient.m` (sigma 1.4, truncated where the
/// Gaussian falls below 1% of its peak), each normalised so that their outer product has unit L2 norm.
fn gaussian_derivative_taps(sigma: f64) -> (Vec<f64>, Vec<f64>) {
    let eps: f64 = 1e-2;
    let half = (sigma * (-2.0 * ((2.0 * std::f64::consts::PI).sqrt() * sigma * eps).ln()).sqrt()).ceil() as i64;
    let g: Vec<f64> = (-half..=half)
        .map(|r| (-(r * r) as f64 / (2.0 * sigma * sigma)).exp() / (sigma * (2.0 * std::f64::consts::PI).sqrt()))
        .collect();
    let dg: Vec<f64> = (-half..=half).zip(&g).map(|(r, gv)| -(r as f64) * gv / (sigma * sigma)).collect();
    let norm = (g.iter().map(|v| v * v).sum::<f64>() * dg.iter().map(|v| v * v).sum::<f64>()).sqrt();
    (g.iter().map(|v| v / norm.sqrt()).collect(), dg.iter().map(|v| v / norm.sqrt()).collect())
}

/// Correlates rows with `along_x` and columns with `along_y`, edges clamped.
fn separable(plane: &Plane, along_x: &[f64], along_y: &[f64]) -> Vec<f64> {
    let (w, h) = (plane.width, plane.height);
    let half_x = (along_x.len() / 2) as isize;
    let half_y = (along_y.len() / 2) as isize;
    let mut tmp = vec![0.0; w * h];
    for y in 0..h {
        let row = &plane.data[y * w..(y + 1) * w];
        for x in 0..w {
            tmp[y * w + x] = along_x
                .iter()
                .enumerate()
                .map(|(k, t)| t * row[(x as isize + k as isize - half_x).clamp(0, w as isize - 1) as usize])
                .sum();
        }
    }
    let mut out = vec![0.0; w * h];
    for y in 0..h {
        for (k, t) in along_y.iter().enumerate() {
            let sy = (y as isize + k as isize - half_y).clamp(0, h as isize - 1) as usize;
            for x in 0..w {
                out[y * w + x] += t * tmp[sy * w + x];
            }
        }
    }
    out
}

fn gradient_magnitude(plane: &Plane) -> Vec<f64> {
    let (g, dg) = gaussian_derivative_taps(1.4);
    let (lo, hi) = plane.data.iter().fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let normalised: Vec<f64> = plane.data.iter().map(|v| if hi > lo { (v - lo) / (hi - lo) } else { 0.0 }).collect();
    let norm_plane = Plane::new(plane.width, plane.height, &normalised);
    let gx = separable(&norm_plane, &dg, &g);
    let gy = separable(&norm_plane, &g, &dg);
    gx.iter().zip(&gy).map(|(x, y)| (x * x + y * y).sqrt()).collect()
}

/// DIM gradient error / 1000: both alphas min-max normalised, Gaussian-derivative magnitudes (sigma 1.4),
/// squared difference summed over the region.
pub fn grad(pred: &Plane, gt: &Plane, mask: Option<&[bool]>) -> f64 {
    let (mp, mg) = (gradient_magnitude(pred), gradient_magnitude(gt));
    let keep = selected(mask, gt.data.len());
    mp.iter().zip(&mg).enumerate().filter(|(i, _)| keep(*i)).map(|(_, (p, g))| (p - g).powi(2)).sum::<f64>() / 1000.0
}

/// The largest 4-connected component of `on`.
fn largest_component(on: &[bool], width: usize, height: usize) -> Vec<bool> {
    let mut label = vec![0u32; on.len()];
    let mut sizes = vec![0usize];
    let mut stack = Vec::new();
    for start in 0..on.len() {
        if !on[start] || label[start] != 0 {
            continue;
        }
        let id = sizes.len() as u32;
        let mut size = 0;
        label[start] = id;
        stack.push(start);
        while let Some(i) = stack.pop() {
            size += 1;
            let (x, y) = (i % width, i / width);
            let neighbours = [
                (x > 0).then(|| i - 1),
                (x + 1 < width).then(|| i + 1),
                (y > 0).then(|| i - width),
                (y + 1 < height).then(|| i + width),
            ];
            for n in neighbours.into_iter().flatten() {
                if on[n] && label[n] == 0 {
                    label[n] = id;
                    stack.push(n);
                }
            }
        }
        sizes.push(size);
    }
    // Ties go to the lowest label, as numpy's argmax does.
    let best = (1..sizes.len()).max_by(|a, b| sizes[*a].cmp(&sizes[*b]).then(b.cmp(a)));
    match best {
        Some(best) => label.iter().map(|l| *l == best as u32).collect(),
        None => vec![false; on.len()],
    }
}

/// DIM connectivity error / 1000 (theta 0.15, threshold step 0.1, 4-connectivity).
pub fn conn(pred: &Plane, gt: &Plane, mask: Option<&[bool]>) -> f64 {
    let (w, h) = (gt.width, gt.height);
    let steps = 10;
    let threshold = |i: usize| i as f64 * 0.1;
    let mut l_map = vec![-1.0f64; w * h];
    let mut both = vec![false; w * h];
    for i in 1..=steps {
        let th = threshold(i);
        for (k, on) in both.iter_mut().enumerate() {
            *on = pred.data[k] >= th && gt.data[k] >= th;
        }
        let omega = largest_component(&both, w, h);
        for (l, in_omega) in l_map.iter_mut().zip(&omega) {
            if *l == -1.0 && !in_omega {
                *l = threshold(i - 1);
            }
        }
    }
    let keep = selected(mask, gt.data.len());
    let phi = |v: f64, l: f64| {
        let d = v - l;
        1.0 - if d >= 0.15 { d } else { 0.0 }
    };
    l_map
        .iter()
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(i, l)| {
            let l = if *l == -1.0 { 1.0 } else { *l };
            (phi(pred.data[i], l) - phi(gt.data[i], l)).abs()
        })
        .sum::<f64>()
        / 1000.0
}

/// Temporal coherence between frames t-1 and t (x 100): sqrt(mean(((p_t - p_t-1) - (g_t - g_t-1))^2)).
pub fn dtssd(pred_t: &[f64], pred_prev: &[f64], gt_t: &[f64], gt_prev: &[f64]) -> f64 {
    let n = gt_t.len();
    let sum: f64 = (0..n).map(|i| ((pred_t[i] - pred_prev[i]) - (gt_t[i] - gt_prev[i])).powi(2)).sum();
    (sum / n.max(1) as f64).sqrt() * 100.0
}

/// No-reference flicker (x 1e3): mean |alpha_t - alpha_t-1| over pixels whose grey level (8-bit luma)
/// changed by less than 2 between the frames. `None` when no pixel stayed still.
pub fn flicker(alpha_t: &[f64], alpha_prev: &[f64], grey_t: &[u8], grey_prev: &[u8]) -> Option<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for i in 0..alpha_t.len() {
        if (grey_t[i] as i32 - grey_prev[i] as i32).abs() < 2 {
            sum += (alpha_t[i] - alpha_prev[i]).abs();
            n += 1;
        }
    }
    (n > 0).then(|| sum / n as f64 * 1000.0)
}

/// 8-bit luma (BT.601) of packed RGB.
pub fn grey_from_rgb(rgb: &[u8], grey: &mut Vec<u8>) {
    grey.clear();
    grey.extend(
        rgb.chunks_exact(3).map(|p| ((299 * p[0] as u32 + 587 * p[1] as u32 + 114 * p[2] as u32 + 500) / 1000) as u8),
    );
}

/// The unknown band of a trimap made from ground truth: pixels within `radius` (4-connected steps) of any
/// non-zero alpha, minus those `radius` steps deep inside full alpha.
pub fn unknown_band(gt: &[u8], width: usize, height: usize, radius: usize) -> Vec<bool> {
    let dilated = grow(&gt.iter().map(|a| *a > 0).collect::<Vec<_>>(), width, height, radius, false);
    let not_full: Vec<bool> = gt.iter().map(|a| *a != 255).collect();
    // Erosion is the complement of the complement's dilation; outside the image counts as not full (as in
    // scipy's binary_erosion), so full alpha touching the border is eroded too.
    let eroded_complement = grow(&not_full, width, height, radius, true);
    dilated.iter().zip(&eroded_complement).map(|(d, e)| *d && *e).collect()
}

/// Binary dilation by `radius` steps of the 4-neighbourhood (a diamond), by distance transform;
/// `outside_on`: the pixels beyond the image border count as set.
fn grow(on: &[bool], width: usize, height: usize, radius: usize, outside_on: bool) -> Vec<bool> {
    let far = usize::MAX / 2;
    let mut dist: Vec<usize> = on
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (x, y) = (i % width, i / width);
            let to_outside = (x + 1).min(y + 1).min(width - x).min(height - y);
            if *v {
                0
            } else if outside_on {
                to_outside
            } else {
                far
            }
        })
        .collect();
    for y in 0..height {
        for x in 0..width {
            let i = y * width + x;
            if x > 0 {
                dist[i] = dist[i].min(dist[i - 1] + 1);
            }
            if y > 0 {
                dist[i] = dist[i].min(dist[i - width] + 1);
            }
        }
    }
    for y in (0..height).rev() {
        for x in (0..width).rev() {
            let i = y * width + x;
            if x + 1 < width {
                dist[i] = dist[i].min(dist[i + 1] + 1);
            }
            if y + 1 < height {
                dist[i] = dist[i].min(dist[i + width] + 1);
            }
        }
    }
    dist.iter().map(|d| *d <= radius).collect()
}
