//! The background on the GPU: `composite::background`'s blur of the frame and picture fitted to the frame,
//! as dispatches of `blur.wgsl`, `resample.wgsl` and `convert.wgsl`, into planes at frame size.

use super::GpuError;
use super::pipelines::{Builder, Dispatch, Input};
use super::uniforms::BlurParams;
use crate::composite::Background;
use crate::composite::background::{BLUR_PASSES, blur_geometry};
use crate::resample::{ResampleKind, Resampler};

/// The background planes (RGB in [0, 1] at frame size) and how they are made.
pub struct BackgroundPlan {
    pub planes: wgpu::Buffer,
    /// Image and video: where the picture's bytes go, and the dispatches that fit it (run only when a new
    /// picture came).
    pub picture_input: Option<wgpu::Buffer>,
    pub picture: Vec<Dispatch>,
}

/// Plans the background for `background`; blur passes are appended to `main` (every frame), a picture's
/// fitting goes to the plan's own list. `picture`: the size of an image or video background's picture.
pub fn plan_background(
    b: &Builder<'_>,
    background: &Background,
    picture: Option<(u32, u32)>,
    (w, h): (u32, u32),
    frame: &wgpu::Buffer,
    main: &mut Vec<Dispatch>,
) -> Result<BackgroundPlan, GpuError> {
    let p = b.pipelines;
    let n = w as u64 * h as u64;
    match (background, picture) {
        (Background::Blur { radius_px }, _) => {
            let planes = b.floats("background", 3 * n)?;
            let (sw, sh, radius) = blur_geometry(*radius_px, w, h);
            let small = b.floats("blur", 3 * sw as u64 * sh as u64)?;
            let small_scratch = b.floats("blur scratch", 3 * sw as u64 * sh as u64)?;
            let down = Resampler::new(ResampleKind::Area, w, h, sw, sh);
            main.extend(b.resample(&down, Input::Packed(frame), &small, 3, 1.0 / 255.0)?);
            if radius > 0 {
                let params = b.uniform(&BlurParams { width: sw, height: sh, radius, _pad: 0 });
                for _ in 0..BLUR_PASSES {
                    for (pipeline, src, dst) in [(&p.box_h, &small, &small_scratch), (&p.box_v, &small_scratch, &small)]
                    {
                        main.push(b.dispatch(
                            pipeline,
                            &[
                                (0, params.as_entire_binding()),
                                (1, src.as_entire_binding()),
                                (2, dst.as_entire_binding()),
                            ],
                            [sw, sh, 3],
                        ));
                    }
                }
            }
            let up = Resampler::new(ResampleKind::Bilinear, sw, sh, w, h);
            main.extend(b.resample(&up, Input::Planes(&small), &planes, 3, 1.0)?);
            Ok(BackgroundPlan { planes, picture_input: None, picture: Vec::new() })
        }
        (Background::Image(_) | Background::Video(_), Some((pw, ph))) => {
            let planes = b.floats("background", 3 * n)?;
            let bytes = b.storage("background picture input", pw as u64 * ph as u64 * 3)?;
            let packed = b.storage("background picture", pw as u64 * ph as u64 * 4)?;
            let mut fit_passes = vec![b.convert(&p.rgb8, &bytes, &packed, pw, ph)];
            let fit = Resampler::cover(ResampleKind::Bilinear, pw, ph, w, h);
            fit_passes.extend(b.resample(&fit, Input::Packed(&packed), &planes, 3, 1.0 / 255.0)?);
            Ok(BackgroundPlan { planes, picture_input: Some(bytes), picture: fit_passes })
        }
        _ => Ok(BackgroundPlan { planes: b.floats("no background", 4)?, picture_input: None, picture: Vec::new() }),
    }
}
