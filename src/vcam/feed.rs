//! What the virtual camera sends: the newest composite, unmirrored when the preview is mirrored, flattened
//! to RGB and fitted to the camera's size. A frame that shows the room unmatted is never taken; until
//! the first composite, the camera has nothing and sends black.

use std::sync::Arc;
use std::time::Instant;

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use super::CameraShared;
use crate::composite::background::Pacing;
use crate::composite::{Background, CompositeSettings, CpuCompositor};
use crate::engine::{Subscription, Tap};
use crate::frame::{Output, Picture};

/// A picture ready to convert: packed RGB at the camera's size.
pub struct CameraPicture<'a> {
    pub rgb: &'a [u8],
    pub width: u32,
    pub height: u32,
    /// When the frame behind a new picture was captured; `None` for a repeat of the last one.
    pub captured_at: Option<Instant>,
}

pub struct Feed {
    subscription: Subscription,
    tap: Tap,
    /// Mirror the camera's picture (the other side then sees you as in a mirror).
    mirror: bool,
    width: u32,
    height: u32,
    /// The picture last made, at the camera's size.
    picture: Vec<u8>,
    /// The composite flattened to RGB at frame size (and unmirrored when needed).
    flat: Vec<u8>,
    /// For an image or video background when the preview is mirrored and the camera is not: the same
    /// settings composited again with the camera's mirroring (a flip would mirror the background too).
    again: Option<(CpuCompositor, Picture)>,
    resizer: Resizer,
    /// A composite has come: until then there is nothing to send.
    started: bool,
    shared: Arc<CameraShared>,
}

impl Feed {
    pub fn new(
        subscription: Subscription,
        tap: Tap,
        mirror: bool,
        (width, height): (u32, u32),
        shared: Arc<CameraShared>,
    ) -> Self {
        let picture = vec![0; width as usize * height as usize * 3];
        Self {
            subscription,
            tap,
            mirror,
            width,
            height,
            picture,
            flat: Vec::new(),
            again: None,
            resizer: Resizer::new(),
            started: false,
            shared,
        }
    }

    pub fn subscription(&self) -> &Subscription {
        &self.subscription
    }

    /// The camera's size.
    pub fn size(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// The picture to send now: the newest composite when one came since the last call, else the last one
    /// again; `None` before the first (the engine composites the background alone from the first frame
    /// on, so this is short).
    pub fn picture(&mut self) -> Option<CameraPicture<'_>> {
        let mut captured_at = None;
        while let Some(output) = self.subscription.take() {
            // Never the room unmatted (a frame made before the engine knew the camera watches).
            if output.matte.unmatted || !output.has_pixels() {
                continue;
            }
            match self.make(&output) {
                Ok(()) => {
                    captured_at = Some(output.frame.captured_at);
                    self.started = true;
                }
                Err(reason) => tracing::warn!("virtual camera: {reason}"),
            }
        }
        self.shared.engine_dropped.store(self.subscription.dropped(), std::sync::atomic::Ordering::Relaxed);
        self.started.then_some(CameraPicture {
            rgb: &self.picture,
            width: self.width,
            height: self.height,
            captured_at,
        })
    }

    fn make(&mut self, output: &Output) -> Result<(), String> {
        let frame = &output.frame;
        let flip = output.mirror != self.mirror;
        // The settings are read only when flipping cannot stand in for compositing again.
        let recomposite = flip.then(|| self.tap.status().composite).filter(|s| !follows_flip(&s.background));
        if let Some(settings) = recomposite {
            let settings = CompositeSettings { mirror: self.mirror, ..settings };
            let (compositor, picture) = match &mut self.again {
                Some((compositor, picture)) => {
                    if compositor.settings() != &settings {
                        compositor.set_settings(settings).map_err(|e| e.to_string())?;
                    }
                    (compositor, picture)
                }
                None => {
                    let compositor =
                        CpuCompositor::with_pacing(settings, Pacing::RealTime).map_err(|e| e.to_string())?;
                    let again = self.again.insert((compositor, Picture::default()));
                    (&mut again.0, &mut again.1)
                }
            };
            compositor.composite(frame, &output.matte, picture).map_err(|e| e.to_string())?;
            flatten(&picture.composite, output.transparent, false, &mut self.flat);
        } else {
            flatten(&output.picture.composite, output.transparent, flip, &mut self.flat);
        }
        let size = (frame.width, frame.height);
        fit(&mut self.resizer, &self.flat, size, (self.width, self.height), &mut self.picture);
        Ok(())
    }
}

/// Whether flipping the composite gives the picture composited with the other mirroring: true unless the
/// background is an image or a video (which stay unflipped either way).
fn follows_flip(background: &Background) -> bool {
    !matches!(background, Background::Image(_) | Background::Video(_))
}

/// The composite as RGB (a transparent one over black), flipped left to right with `flip`.
fn flatten(composite: &crate::frame::Composite, transparent: Option<bool>, flip: bool, out: &mut Vec<u8>) {
    let (w, h) = (composite.width as usize, composite.height as usize);
    out.resize(w * h * 3, 0);
    let channels = composite.channels as usize;
    let premultiplied = transparent.unwrap_or(true);
    for (src, dst) in composite.pixels.chunks_exact(w * channels).zip(out.chunks_exact_mut(w * 3)) {
        for x in 0..w {
            let sx = if flip { w - 1 - x } else { x };
            let px = &src[sx * channels..sx * channels + channels];
            let rgb = &mut dst[x * 3..x * 3 + 3];
            if channels == 4 && !premultiplied {
                let a = px[3] as u32;
                for c in 0..3 {
                    rgb[c] = ((px[c] as u32 * a + 127) / 255) as u8;
                }
            } else {
                rgb.copy_from_slice(&px[..3]);
            }
        }
    }
}

/// `src` (`size`) scaled to cover `target` and centred, into `out`; copied (cropped to even) when the sizes
/// already agree.
pub(crate) fn fit(resizer: &mut Resizer, src: &[u8], (sw, sh): (u32, u32), (tw, th): (u32, u32), out: &mut Vec<u8>) {
    out.resize(tw as usize * th as usize * 3, 0);
    if sw == 0 || sh == 0 {
        return;
    }
    if sw >= tw && sh >= th && (sw - tw) <= 1 && (sh - th) <= 1 {
        for (y, row) in out.chunks_exact_mut(tw as usize * 3).enumerate() {
            let start = y * sw as usize * 3;
            row.copy_from_slice(&src[start..start + tw as usize * 3]);
        }
        return;
    }
    let Ok(src) = ImageRef::new(sw, sh, src, PixelType::U8x3) else { return };
    let Ok(mut dst) = Image::from_slice_u8(tw, th, out, PixelType::U8x3) else { return };
    let scale = (tw as f64 / sw as f64).max(th as f64 / sh as f64);
    let (cw, ch) = (tw as f64 / scale, th as f64 / scale);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)).crop(
        (sw as f64 - cw) / 2.0,
        (sh as f64 - ch) / 2.0,
        cw,
        ch,
    );
    let _ = resizer.resize(&src, &mut dst, &options);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Composite;

    #[test]
    fn a_transparent_composite_is_flattened_over_black_and_flipped() {
        let composite = Composite { width: 2, height: 1, channels: 4, pixels: vec![200, 100, 50, 255, 10, 20, 30, 0] };
        let mut out = Vec::new();
        flatten(&composite, Some(false), true, &mut out);
        assert_eq!(out, vec![0, 0, 0, 200, 100, 50]);
    }

    #[test]
    fn fitting_covers_the_target_and_crops_odd_sizes() {
        let mut resizer = Resizer::new();
        let src: Vec<u8> = (0..3 * 3 * 3).map(|i| i as u8).collect();
        let mut out = Vec::new();
        fit(&mut resizer, &src, (3, 3), (2, 2), &mut out);
        assert_eq!(out, vec![0, 1, 2, 3, 4, 5, 9, 10, 11, 12, 13, 14], "odd sizes lose their last column and row");
        let red = [255u8, 0, 0].repeat(8 * 4);
        fit(&mut resizer, &red, (8, 4), (4, 4), &mut out);
        assert!(out.chunks_exact(3).all(|p| p == [255, 0, 0]), "scaled to cover");
    }
}
