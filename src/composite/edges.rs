//! Edge controls on a frame-size alpha in [0, 1]: a contrast curve, shrink or grow, and feathering.
//! `shaders/edges.wgsl` computes the same steps, in the same order, on the GPU.

/// Largest shrink, grow or feather radius accepted, in pixels.
pub const MAX_EDGE_PX: u32 = 64;

/// How the matte's edge is shaped after upsampling. The default leaves alpha untouched.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct EdgeControls {
    /// Alpha that the curve maps to one half: raise it to drop faint fringes, lower it to keep them.
    pub threshold: f32,
    /// Slope of the curve around the threshold; 1 keeps soft edges as soft as the model made them.
    pub contrast: f32,
    /// Pixels the matte is eroded by (positive) or dilated by (negative).
    pub shrink_px: i32,
    /// Radius of the Gaussian that softens the edge, in pixels; 0 for none.
    pub feather_px: u32,
}

impl Default for EdgeControls {
    fn default() -> Self {
        Self { threshold: 0.5, contrast: 1.0, shrink_px: 0, feather_px: 0 }
    }
}

impl EdgeControls {
    pub fn has_curve(&self) -> bool {
        self.threshold != 0.5 || self.contrast != 1.0
    }

    /// The same controls with every value inside its range (a hand-edited settings file cannot break us).
    pub fn clamped(self) -> Self {
        let max = MAX_EDGE_PX as i32;
        Self {
            threshold: if self.threshold.is_finite() { self.threshold.clamp(0.0, 1.0) } else { 0.5 },
            contrast: if self.contrast.is_finite() { self.contrast.clamp(0.1, 50.0) } else { 1.0 },
            shrink_px: self.shrink_px.clamp(-max, max),
            feather_px: self.feather_px.min(MAX_EDGE_PX),
        }
    }

    /// Normalised Gaussian weights for offsets `-feather_px..=feather_px` (sigma = radius / 2).
    pub fn feather_weights(&self) -> Vec<f32> {
        let radius = self.feather_px as i32;
        let sigma = (radius as f32 / 2.0).max(0.5);
        let raw: Vec<f32> = (-radius..=radius).map(|i| (-(i * i) as f32 / (2.0 * sigma * sigma)).exp()).collect();
        let total: f32 = raw.iter().sum();
        raw.into_iter().map(|w| w / total).collect()
    }
}

/// `clamp((a - threshold) * contrast + 0.5, 0, 1)`.
#[inline]
pub fn curve(alpha: f32, threshold: f32, contrast: f32) -> f32 {
    ((alpha - threshold) * contrast + 0.5).clamp(0.0, 1.0)
}

/// Applies `controls` to `alpha` (`width * height`, in place), using `scratch` for the separable passes.
pub fn apply_edges(alpha: &mut [f32], scratch: &mut Vec<f32>, width: usize, height: usize, controls: &EdgeControls) {
    let controls = controls.clamped();
    if controls.has_curve() {
        for a in alpha.iter_mut() {
            *a = curve(*a, controls.threshold, controls.contrast);
        }
    }
    scratch.resize(alpha.len(), 0.0);
    if controls.shrink_px != 0 {
        let radius = controls.shrink_px.unsigned_abs() as usize;
        let erode = controls.shrink_px > 0;
        let pick = |a: f32, b: f32| if erode { a.min(b) } else { a.max(b) };
        separable(alpha, scratch, width, height, radius, |values| {
            values.fold(None, |m, v| Some(m.map_or(v, |m| pick(m, v)))).unwrap_or(0.0)
        });
    }
    if controls.feather_px > 0 {
        let weights = controls.feather_weights();
        let radius = controls.feather_px as usize;
        separable(alpha, scratch, width, height, radius, |values| {
            values.zip(&weights).fold(0.0, |sum, (v, w)| sum + w * v)
        });
    }
}

/// Horizontal then vertical pass of a `2 * radius + 1` window with edge pixels repeated; `reduce` sees the
/// window's values in order from the lowest index.
fn separable(
    image: &mut [f32],
    scratch: &mut [f32],
    width: usize,
    height: usize,
    radius: usize,
    reduce: impl Fn(&mut dyn Iterator<Item = f32>) -> f32,
) {
    let r = radius as isize;
    for y in 0..height {
        let row = &image[y * width..(y + 1) * width];
        for x in 0..width {
            let mut window = (-r..=r).map(|i| row[(x as isize + i).clamp(0, width as isize - 1) as usize]);
            scratch[y * width + x] = reduce(&mut window);
        }
    }
    for y in 0..height {
        for x in 0..width {
            let mut window =
                (-r..=r).map(|i| scratch[(y as isize + i).clamp(0, height as isize - 1) as usize * width + x]);
            image[y * width + x] = reduce(&mut window);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_controls_change_nothing() {
        let mut alpha: Vec<f32> = (0..64).map(|i| i as f32 / 63.0).collect();
        let before = alpha.clone();
        apply_edges(&mut alpha, &mut Vec::new(), 8, 8, &EdgeControls::default());
        assert_eq!(alpha, before);
    }

    #[test]
    fn shrink_erodes_and_negative_shrink_dilates() {
        // One opaque pixel in the middle of a 5x5 matte.
        let mut alpha = vec![0.0f32; 25];
        alpha[12] = 1.0;
        let mut grown = alpha.clone();
        apply_edges(&mut grown, &mut Vec::new(), 5, 5, &EdgeControls { shrink_px: -1, ..Default::default() });
        assert_eq!(grown.iter().filter(|&&a| a == 1.0).count(), 9, "a 3x3 square");
        apply_edges(&mut grown, &mut Vec::new(), 5, 5, &EdgeControls { shrink_px: 1, ..Default::default() });
        assert_eq!(grown, alpha, "eroding the square gives the pixel back");
    }

    #[test]
    fn feather_keeps_the_mean_and_softens_a_step() {
        let mut alpha: Vec<f32> = (0..16 * 16).map(|i| if i % 16 < 8 { 1.0 } else { 0.0 }).collect();
        apply_edges(&mut alpha, &mut Vec::new(), 16, 16, &EdgeControls { feather_px: 3, ..Default::default() });
        let mean: f32 = alpha.iter().sum::<f32>() / alpha.len() as f32;
        assert!((mean - 0.5).abs() < 1e-4, "mean {mean}");
        assert!(alpha[7] > 0.5 && alpha[7] < 1.0 && alpha[8] < 0.5 && alpha[8] > 0.0);
    }

    #[test]
    fn curve_sharpens_around_the_threshold() {
        assert!((curve(0.6, 0.5, 4.0) - 0.9).abs() < 1e-6);
        assert_eq!(curve(0.2, 0.5, 4.0), 0.0);
        assert_eq!(curve(0.4, 0.4, 10.0), 0.5);
        assert_eq!(curve(0.95, 0.5, 4.0), 1.0);
    }
}
