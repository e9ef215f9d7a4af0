//! Alpha from model size to frame size on the GPU: `composite::alpha`'s area, bilinear and guided
//! upsampling as dispatches of `resample.wgsl` and `guided.wgsl`.

use super::GpuError;
use super::pipelines::{Builder, Dispatch, Input};
use super::uniforms::GuidedParams;
use crate::composite::Upsample;
use crate::composite::alpha::{GUIDED_EPS, GUIDED_RADIUS_PX};
use crate::resample::{ResampleKind, Resampler};

/// Statistics a guided pass keeps per model pixel.
const GUIDED_STATS: u32 = 13;

/// Dispatches that bring `alpha_low` (model size `lw` x `lh`) to frame size (`w` x `h`) into `out`;
/// `frame` (packed RGBA8 at frame size) guides the guided mode.
#[allow(clippy::too_many_arguments)]
pub fn plan_alpha(
    b: &Builder<'_>,
    upsample: Upsample,
    (lw, lh): (u32, u32),
    (w, h): (u32, u32),
    alpha_low: &wgpu::Buffer,
    frame: &wgpu::Buffer,
    out: &wgpu::Buffer,
    main: &mut Vec<Dispatch>,
) -> Result<(), GpuError> {
    let p = b.pipelines;
    let n = w as u64 * h as u64;
    let upsample = if (lw, lh) == (w, h) { Upsample::Area } else { upsample };
    match upsample {
        Upsample::Area | Upsample::Bilinear => {
            let kind = if upsample == Upsample::Area { ResampleKind::Area } else { ResampleKind::Bilinear };
            let resampler = Resampler::new(kind, lw, lh, w, h);
            main.extend(b.resample(&resampler, Input::Planes(alpha_low), out, 1, 1.0)?);
        }
        Upsample::Guided => {
            let n_low = lw as u64 * lh as u64;
            let guide = b.floats("guide", 3 * n_low)?;
            let down = Resampler::new(ResampleKind::Area, w, h, lw, lh);
            main.extend(b.resample(&down, Input::Packed(frame), &guide, 3, 1.0 / 255.0)?);
            let stats = b.floats("guided statistics", GUIDED_STATS as u64 * n_low)?;
            let coefficients = b.floats("guided coefficients", 4 * n_low)?;
            let smoothing = b.floats("guided smoothing", 4 * n_low)?;
            let params = b.uniform(&GuidedParams {
                width: lw,
                height: lh,
                radius: GUIDED_RADIUS_PX as u32,
                channels: 4,
                eps: GUIDED_EPS,
                full_w: w,
                full_h: h,
                _pad: 0,
            });
            let low = [lw, lh, 1];
            main.push(b.dispatch(
                &p.stats_h,
                &[
                    (0, params.as_entire_binding()),
                    (1, guide.as_entire_binding()),
                    (2, alpha_low.as_entire_binding()),
                    (4, stats.as_entire_binding()),
                ],
                low,
            ));
            let pass = |pipeline, src: &wgpu::Buffer, dst: &wgpu::Buffer, threads| {
                b.dispatch(
                    pipeline,
                    &[(0, params.as_entire_binding()), (3, src.as_entire_binding()), (4, dst.as_entire_binding())],
                    threads,
                )
            };
            main.push(pass(&p.coefficients_v, &stats, &coefficients, low));
            main.push(pass(&p.mean_h, &coefficients, &smoothing, [lw, lh, 4]));
            main.push(pass(&p.mean_v, &smoothing, &coefficients, [lw, lh, 4]));
            let full_coefficients = b.floats("guided coefficients at frame size", 4 * n)?;
            let up = Resampler::new(ResampleKind::Bilinear, lw, lh, w, h);
            main.extend(b.resample(&up, Input::Planes(&coefficients), &full_coefficients, 4, 1.0)?);
            main.push(b.dispatch(
                &p.guided_apply,
                &[
                    (0, params.as_entire_binding()),
                    (3, full_coefficients.as_entire_binding()),
                    (4, out.as_entire_binding()),
                    (5, frame.as_entire_binding()),
                ],
                [w, h, 1],
            ));
        }
    }
    Ok(())
}
