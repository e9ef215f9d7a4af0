//! Plate-assisted matting for any model. Where the frame shows the (gain-compensated) plate there is no
//! person, so alpha is pushed toward 0. Along the person's outline, where plate-free models are least sure
//! (hair, soft edges), the plate also says how much of each pixel is room: with the background colour B
//! known and the person's colour F taken from nearby opaque pixels, alpha is |I - B| / |F - B| (difference
//! matting), which is blended with the model's alpha by how far F stands from B.
//!
//! The plate is only trusted as far as it is seen to match: the residual between frame and plate on the
//! background the model is sure of, measured around each pixel, widens the match thresholds and turns the
//! difference estimate off where the plate has drifted (camera moved, noise). Where the plate matches none of
//! the background around a pixel, it changes nothing there.
//!
//! It works at frame resolution: a model's soft edge spreads over a few frame pixels on each side, and
//! only a per-pixel comparison can tell which of them show the room.

/// A pixel's difference is the largest of its three channel differences between frame and plate (absolute,
/// so that texture differences never cancel), averaged over a 3x3 window against sensor noise.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct AssistSettings {
    /// At or below this difference (plus the local residual's share) the pixel is the plate: alpha becomes 0.
    /// Tuned with `mattecam eval`: 0.5/3 beat 1/6 by 2% of MAD (RVM) and lose nothing with a drifted plate,
    /// whose residual raises both anyway.
    pub match_levels: f32,
    /// At or above this difference (plus the same share) alpha is kept; in between it is scaled down smoothly.
    pub differ_levels: f32,
}

impl Default for AssistSettings {
    fn default() -> Self {
        Self { match_levels: 0.5, differ_levels: 3.0 }
    }
}

/// Radius of the window that tells a person's inside from a stretch of room: where the model is sure
/// (alpha above [`SURE_ALPHA`]) and less than [`SPARSE_MATCHES`] of this window matches the plate, the
/// pixel is inside a person whose colour happens to match the room there, and keeps its alpha. The halo a
/// model leaves around an edge is half room, so it is cleared.
const COARSE_RADIUS_BLOCKS: usize = 2;
const SURE_ALPHA: f32 = 0.95;
const SPARSE_MATCHES: f32 = 0.25;

/// Below this alpha the model calls a pixel background: where the plate's fit is checked.
const BACKGROUND_ALPHA: f32 = 0.02;
/// The smooth maps (residual, person colour) are made on a grid of blocks this many pixels wide.
const BLOCK_PX: usize = 4;
/// Radius (blocks) of the window the plate's residual is measured over around each pixel.
const RESIDUAL_RADIUS: usize = 4;
/// Share of that window that must be background for a local residual; elsewhere the frame's is used.
const RESIDUAL_MIN_SHARE: f32 = 0.02;
/// The match thresholds rise by this multiple of the local residual, up to the cap: differences the plate
/// shows on sure background are sensor noise, not a person. A residual past the cap is drift (texture
/// shifted), which the trust below handles; raising the thresholds further would cut into the person.
const RESIDUAL_MARGIN: f32 = 1.2;
const RESIDUAL_MARGIN_CAP_LEVELS: f32 = 4.0;
/// Past this local residual the plate says nothing there (another room, a camera moved far): assistance
/// fades out between the two.
const PLATE_RESIDUAL_LEVELS: (f32, f32) = (20.0, 40.0);
/// The difference estimate is trusted fully up to this local residual and not at all from the second...
const ESTIMATE_RESIDUAL_LEVELS: (f32, f32) = (3.0, 8.0);
/// ...and in proportion to the separation |F - B| (levels, RGB distance) up to the second.
const ESTIMATE_SEPARATION_LEVELS: (f32, f32) = (0.0, 20.0);
/// The person's colour F near a pixel is a weighted mean of the colours solved from the model's alpha,
/// over pixels above this alpha (weight alpha squared, times how clearly they differ from the plate).
const FOREGROUND_ALPHA: f32 = 0.5;
/// Candidate F maps, blurred by two box passes of these radii in blocks (Gaussians of sigma about 5, 8,
/// 11 and 24 frame pixels): a strand's colour may be that of the hair right beside it or of
/// the head further in. Each pixel takes the candidate that explains it best, I = aF + (1 - a)B.
const FOREGROUND_RADII: [usize; 4] = [1, 2, 3, 7];
/// Where too little opaque person is near, a candidate is unknown.
const FOREGROUND_MIN_WEIGHT: f32 = 0.01;
/// The estimate replaces alpha in the model's unsure band and within this radius of its background
/// (strands the model called opaque at the outline).
const UNSURE_ALPHA: f32 = 0.98;
const OUTLINE_RADIUS_BLOCKS: usize = 1;

/// Buffers for [`box_mean`].
#[derive(Default)]
struct BoxScratch {
    rows: Vec<f32>,
    sums: Vec<f32>,
    /// The first of [`soft_blur`]'s two passes.
    once: Vec<f32>,
}

/// Buffers [`assist_alpha`] reuses between calls.
#[derive(Default)]
pub struct AssistScratch {
    difference: Vec<f32>,
    fine: Vec<f32>,
    /// In blocks: how many pixels around match the plate, and how many the model calls background.
    coarse: Vec<f32>,
    outline: Vec<f32>,
    block_sums: Vec<f32>,
    /// In blocks: residual sum and background share, then the residual itself.
    block_residual: Vec<f32>,
    block_background: Vec<f32>,
    /// In blocks: weighted R, G, B sums and weight, and one blurred candidate per radius.
    block_foreground: [Vec<f32>; 4],
    candidates: Vec<[Vec<f32>; 4]>,
    boxes: BoxScratch,
}

/// Mean of `src` over a (2r+1)^2 window (clamped at the borders) into `out`: a running sum along each
/// row, then running column sums a row at a time (contiguous, so it vectorises), O(1) a pixel.
fn box_mean(src: &[f32], width: usize, height: usize, radius: usize, scratch: &mut BoxScratch, out: &mut Vec<f32>) {
    let BoxScratch { rows, sums, .. } = scratch;
    rows.clear();
    rows.resize(src.len(), 0.0);
    for (row, across) in src.chunks_exact(width).zip(rows.chunks_exact_mut(width)) {
        let mut sum: f32 = row[..radius.min(width)].iter().sum();
        for x in 0..width {
            if x + radius < width {
                sum += row[x + radius];
            }
            if x > radius {
                sum -= row[x - radius - 1];
            }
            across[x] = sum;
        }
        // Divided by how many samples each window held (fewer at the borders).
        let full = 1.0 / (2 * radius + 1) as f32;
        for (x, v) in across.iter_mut().enumerate() {
            let count = (x + radius + 1).min(width) - x.saturating_sub(radius);
            *v *= if count == 2 * radius + 1 { full } else { 1.0 / count as f32 };
        }
    }
    out.clear();
    out.resize(src.len(), 0.0);
    sums.clear();
    sums.resize(width, 0.0);
    for y in 0..radius.min(height) {
        for (s, v) in sums.iter_mut().zip(&rows[y * width..(y + 1) * width]) {
            *s += v;
        }
    }
    for y in 0..height {
        if y + radius < height {
            for (s, v) in sums.iter_mut().zip(&rows[(y + radius) * width..(y + radius + 1) * width]) {
                *s += v;
            }
        }
        if y > radius {
            for (s, v) in sums.iter_mut().zip(&rows[(y - radius - 1) * width..(y - radius) * width]) {
                *s -= v;
            }
        }
        let count = ((y + radius + 1).min(height) - y.saturating_sub(radius)) as f32;
        for (o, s) in out[y * width..(y + 1) * width].iter_mut().zip(sums.iter()) {
            *o = s / count;
        }
    }
}

/// Mean over each pixel's 3x3 neighbourhood (clamped at the borders): three-tap sums along rows, then
/// along columns a row at a time, which vectorises.
fn mean_3x3(src: &[f32], width: usize, height: usize, rows: &mut Vec<f32>, out: &mut Vec<f32>) {
    rows.clear();
    rows.resize(src.len(), 0.0);
    let edge_scale = |n: usize, i: usize| if i == 0 || i + 1 == n { if n == 1 { 1.0 } else { 0.5 } } else { 1.0 / 3.0 };
    for (row, across) in src.chunks_exact(width).zip(rows.chunks_exact_mut(width)) {
        for (x, value) in across.iter_mut().enumerate() {
            let (lo, hi) = (x.saturating_sub(1), (x + 1).min(width - 1));
            *value = row[lo..=hi].iter().sum::<f32>() * edge_scale(width, x);
        }
    }
    out.clear();
    out.resize(src.len(), 0.0);
    for y in 0..height {
        let (lo, hi) = (y.saturating_sub(1), (y + 1).min(height - 1));
        let scale = edge_scale(height, y);
        let target = &mut out[y * width..(y + 1) * width];
        for k in lo..=hi {
            for (o, v) in target.iter_mut().zip(&rows[k * width..(k + 1) * width]) {
                *o += v;
            }
        }
        for o in target.iter_mut() {
            *o *= scale;
        }
    }
}

/// Two box passes: close to a Gaussian, still O(1) a pixel.
fn soft_blur(values: &[f32], width: usize, height: usize, radius: usize, scratch: &mut BoxScratch, out: &mut Vec<f32>) {
    let mut once = std::mem::take(&mut scratch.once);
    box_mean(values, width, height, radius, scratch, &mut once);
    box_mean(&once, width, height, radius, scratch, out);
    scratch.once = once;
}

/// The sum of each block (edge blocks hold fewer pixels) into `out`, of size `block_grid(width, height)`.
fn block_sum(src: &[f32], width: usize, height: usize, out: &mut Vec<f32>) {
    let (bw, bh) = block_grid(width, height);
    out.clear();
    out.resize(bw * bh, 0.0);
    for y in 0..height {
        let row = &src[y * width..(y + 1) * width];
        let block_row = &mut out[(y / BLOCK_PX) * bw..(y / BLOCK_PX + 1) * bw];
        for (x, v) in row.iter().enumerate() {
            block_row[x / BLOCK_PX] += v;
        }
    }
}

fn block_grid(width: usize, height: usize) -> (usize, usize) {
    (width.div_ceil(BLOCK_PX), height.div_ceil(BLOCK_PX))
}

fn smoothstep(edge0: f32, edge1: f32, x: f32) -> f32 {
    let t = ((x - edge0) / (edge1 - edge0).max(1e-3)).clamp(0.0, 1.0);
    t * t * (3.0 - 2.0 * t)
}

/// 0 below `edges.0`, 1 above `edges.1`, linear between.
fn ramp(edges: (f32, f32), x: f32) -> f32 {
    ((x - edges.0) / (edges.1 - edges.0)).clamp(0.0, 1.0)
}

/// Corrects `alpha` (frame size) with `plate` (the compensated plate, frame size, packed RGB): see the
/// module's documentation.
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
    let (hw, hh) = block_grid(w, h);
    // Pixel index and block index, row by row: a division by the width per pixel would cost more than
    // the rest of the per-pixel work.
    let pixels_and_blocks =
        move || (0..h).flat_map(move |y| (0..w).map(move |x| (y * w + x, (y / BLOCK_PX) * hw + x / BLOCK_PX)));
    let AssistScratch {
        difference,
        fine,
        coarse,
        block_sums,
        outline,
        block_residual,
        block_background,
        block_foreground,
        candidates,
        boxes,
    } = scratch;
    difference.clear();
    difference.extend(
        frame
            .chunks_exact(3)
            .zip(plate.chunks_exact(3))
            .map(|(f, p)| f32::from(f[0].abs_diff(p[0]).max(f[1].abs_diff(p[1])).max(f[2].abs_diff(p[2])))),
    );
    mean_3x3(difference, w, h, &mut boxes.rows, fine);

    // The plate's residual on the model's background, around each pixel (in blocks) and over the frame.
    let (mut residual_sum, mut background_pixels) = (0.0f32, 0.0f32);
    difference.clear();
    // `coarse` holds the full-size background mask until it gets its own contents further down.
    coarse.clear();
    for (&a, &d) in alpha.iter().zip(fine.iter()) {
        let background = if a < BACKGROUND_ALPHA { 1.0 } else { 0.0 };
        difference.push(d * background);
        coarse.push(background);
        residual_sum += d * background;
        background_pixels += background;
    }
    // With no background to check the plate on, it is trusted nowhere.
    let frame_residual = if background_pixels >= 1.0 { residual_sum / background_pixels } else { f32::INFINITY };
    block_sum(difference, w, h, block_sums);
    box_mean(block_sums, hw, hh, RESIDUAL_RADIUS, boxes, block_residual);
    block_sum(coarse, w, h, block_sums);
    box_mean(block_sums, hw, hh, RESIDUAL_RADIUS, boxes, block_background);
    for (r, &share) in block_residual.iter_mut().zip(block_background.iter()) {
        // Shares are of blocks.
        *r = if share > (BLOCK_PX * BLOCK_PX) as f32 * RESIDUAL_MIN_SHARE { *r / share } else { frame_residual };
    }
    let differs = |i: usize, j: usize| {
        let extra = RESIDUAL_MARGIN * block_residual[j].min(RESIDUAL_MARGIN_CAP_LEVELS);
        smoothstep(settings.match_levels + extra, settings.differ_levels + extra, fine[i])
    };

    // The person's colour: colours solved from the model's alpha (I = aF + (1 - a)B), weighted, summed
    // into blocks, blurred at each candidate radius.
    let [red, green, blue, weight] = block_foreground;
    for channel in [&mut *red, &mut *green, &mut *blue, &mut *weight] {
        channel.clear();
        channel.resize(hw * hh, 0.0);
    }
    for (i, j) in pixels_and_blocks() {
        let a = alpha[i];
        if a <= FOREGROUND_ALPHA {
            continue;
        }
        // A pixel that shows the plate tells nothing of the person's colour (a model's halo).
        let k = a * a * differs(i, j);
        weight[j] += k;
        for (c, out) in [&mut *red, &mut *green, &mut *blue].into_iter().enumerate() {
            let (f, b) = (f32::from(frame[i * 3 + c]), f32::from(plate[i * 3 + c]));
            out[j] += k * ((f - (1.0 - a) * b) / a).clamp(0.0, 255.0);
        }
    }
    candidates.resize_with(FOREGROUND_RADII.len(), Default::default);
    for (candidate, &radius) in candidates.iter_mut().zip(&FOREGROUND_RADII) {
        for (blurred, sums) in candidate.iter_mut().zip([&*red, &*green, &*blue, &*weight]) {
            soft_blur(sums, hw, hh, radius, boxes, blurred);
        }
    }

    // Which pixels match the plate, then their share around each pixel.
    let near = 0.5 * (settings.match_levels + settings.differ_levels);
    difference.clear();
    difference.extend(fine.iter().map(|&fine| if fine < near { 1.0 } else { 0.0 }));
    block_sum(difference, w, h, block_sums);
    box_mean(block_sums, hw, hh, COARSE_RADIUS_BLOCKS, boxes, coarse);
    // Near the model's background (the outline band).
    difference.clear();
    difference.extend(alpha.iter().map(|&a| if a < 0.5 { 1.0 } else { 0.0 }));
    block_sum(difference, w, h, block_sums);
    box_mean(block_sums, hw, hh, OUTLINE_RADIUS_BLOCKS, boxes, outline);
    let block_pixels = (BLOCK_PX * BLOCK_PX) as f32;

    for (i, j) in pixels_and_blocks() {
        let model = alpha[i];
        let mut a = model;
        let local_residual = block_residual[j];
        let shows_person = differs(i, j);
        // A pixel that matches the plate ends at 0 whatever the estimate says.
        if shows_person > 0.0 && (model < UNSURE_ALPHA || outline[j] > 1e-4) {
            let pixel: [f32; 3] = std::array::from_fn(|c| f32::from(frame[i * 3 + c]));
            let room: [f32; 3] = std::array::from_fn(|c| f32::from(plate[i * 3 + c]));
            let distance = (0..3).map(|c| (pixel[c] - room[c]).powi(2)).sum::<f32>().sqrt();
            // The candidate F whose line through B passes closest to the pixel.
            let mut best: Option<(f32, f32)> = None;
            for [r, g, b, k] in candidates.iter() {
                if k[j] <= FOREGROUND_MIN_WEIGHT {
                    continue;
                }
                let person = [r[j] / k[j], g[j] / k[j], b[j] / k[j]];
                let apart: [f32; 3] = std::array::from_fn(|c| person[c] - room[c]);
                let separation_sq = apart.iter().map(|v| v * v).sum::<f32>();
                let along = (0..3).map(|c| (pixel[c] - room[c]) * apart[c]).sum::<f32>();
                let t = (along / separation_sq.max(1.0)).clamp(0.0, 1.0);
                let distortion = (0..3).map(|c| (pixel[c] - room[c] - t * apart[c]).powi(2)).sum::<f32>();
                if best.is_none_or(|(d, _)| distortion < d) {
                    best = Some((distortion, separation_sq.sqrt()));
                }
            }
            if let Some((_, separation)) = best {
                let estimate = (distance / separation.max(1.0)).min(1.0);
                let trust = ramp(ESTIMATE_SEPARATION_LEVELS, separation)
                    * (1.0 - ramp(ESTIMATE_RESIDUAL_LEVELS, local_residual));
                a = trust * estimate + (1.0 - trust) * model;
            }
        }
        let protected = model > SURE_ALPHA && coarse[j] < SPARSE_MATCHES * block_pixels;
        if !protected {
            a *= shows_person;
        }
        let plate_trust = 1.0 - ramp(PLATE_RESIDUAL_LEVELS, local_residual);
        alpha[i] = plate_trust * a + (1.0 - plate_trust) * model;
    }
}
