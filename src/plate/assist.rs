//! Plate-assisted matting for any model: where the frame shows the (gain-compensated) plate, there is no
//! person, so alpha is pushed toward 0; where the frame differs from the plate, the model's alpha stands.
//! This removes what plate-free models keep by mistake (a chair, a poster, the halo of a soft edge) and
//! never adds foreground: a stale plate can only make it do less.
//!
//! It works at frame resolution: a model's soft edge spreads over a few frame pixels on each side, and
//! only a per-pixel comparison can tell which of them show the room.

/// A pixel's difference is the largest of its three channel differences between frame and plate (absolute,
/// so that texture differences never cancel), averaged over a 3x3 window against sensor noise.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AssistSettings {
    /// At or below this difference the pixel is the plate: alpha becomes 0.
    pub match_levels: f32,
    /// At or above this difference the model's alpha is kept; in between it is scaled down smoothly.
    pub differ_levels: f32,
}

impl Default for AssistSettings {
    fn default() -> Self {
        Self { match_levels: 4.0, differ_levels: 14.0 }
    }
}

/// Radius of the window each pixel's difference is averaged over (noise).
const FINE_RADIUS_PX: usize = 1;
/// Radius of the window that tells a person's inside from a stretch of room: where the model is sure
/// (alpha above [`SURE_ALPHA`]) and less than [`SPARSE_MATCHES`] of this window matches the plate, the
/// pixel is inside a person whose colour happens to match the room there, and keeps its alpha. The halo a
/// model leaves around an edge is half room, so it is cleared.
const COARSE_RADIUS_PX: usize = 8;
const SURE_ALPHA: f32 = 0.95;
const SPARSE_MATCHES: f32 = 0.25;

/// Buffers [`assist_alpha`] reuses between calls.
#[derive(Default)]
pub struct AssistScratch {
    difference: Vec<f32>,
    fine: Vec<f32>,
    coarse: Vec<f32>,
    line: Vec<f32>,
}

/// Mean of `src` over a (2r+1)^2 window (clamped at the borders) into `out`; running sums, O(1) a pixel.
fn box_mean(src: &[f32], width: usize, height: usize, radius: usize, line: &mut Vec<f32>, out: &mut Vec<f32>) {
    out.clear();
    out.resize(src.len(), 0.0);
    for y in 0..height {
        let row = &src[y * width..(y + 1) * width];
        let mut sum: f32 = row[..radius.min(width)].iter().sum();
        for x in 0..width {
            if x + radius < width {
                sum += row[x + radius];
            }
            if x > radius {
                sum -= row[x - radius - 1];
            }
            let count = (x + radius + 1).min(width) - x.saturating_sub(radius);
            out[y * width + x] = sum / count as f32;
        }
    }
    line.clear();
    line.resize(height, 0.0);
    for x in 0..width {
        let mut sum: f32 = (0..radius.min(height)).map(|y| out[y * width + x]).sum();
        for y in 0..height {
            if y + radius < height {
                sum += out[(y + radius) * width + x];
            }
            if y > radius {
                sum -= out[(y - radius - 1) * width + x];
            }
            let count = (y + radius + 1).min(height) - y.saturating_sub(radius);
            line[y] = sum / count as f32;
        }
        for y in 0..height {
            out[y * width + x] = line[y];
        }
    }
}

/// Scales `alpha` (frame size) by how much `frame` differs from `plate` (the compensated plate, frame
/// size, packed RGB).
pub fn assist_alpha(
    alpha: &mut [f32],
    frame: &[u8],
    plate: &[u8],
    width: u32,
    height: u32,
    settings: &AssistSettings,
    scratch: &mut AssistScratch,
) {
    let (w, h) = (width as usize, height as usize);
    scratch.difference.clear();
    scratch.difference.extend(
        frame
            .chunks_exact(3)
            .zip(plate.chunks_exact(3))
            .map(|(f, p)| f32::from(f[0].abs_diff(p[0]).max(f[1].abs_diff(p[1])).max(f[2].abs_diff(p[2])))),
    );
    box_mean(&scratch.difference, w, h, FINE_RADIUS_PX, &mut scratch.line, &mut scratch.fine);
    // Which pixels match the plate, then their share around each pixel.
    let near = 0.5 * (settings.match_levels + settings.differ_levels);
    scratch.difference.clear();
    scratch.difference.extend(scratch.fine.iter().map(|&fine| if fine < near { 1.0 } else { 0.0 }));
    box_mean(&scratch.difference, w, h, COARSE_RADIUS_PX, &mut scratch.line, &mut scratch.coarse);
    let span = (settings.differ_levels - settings.match_levels).max(1e-3);
    for ((a, &fine), &matches) in alpha.iter_mut().zip(&scratch.fine).zip(&scratch.coarse) {
        if *a > SURE_ALPHA && matches < SPARSE_MATCHES {
            continue;
        }
        let t = ((fine - settings.match_levels) / span).clamp(0.0, 1.0);
        *a *= t * t * (3.0 - 2.0 * t);
    }
}
