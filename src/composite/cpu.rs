//! The CPU compositor: the reference the GPU compositor (`crate::gpu`) is tested against. Every step
//! computes in `f32` in the order its shader does, and rounds only where the shader rounds.

use super::background::{BackgroundMedia, BackgroundPlanes, Pacing};
use super::edges::apply_edges;
use super::output::{alpha_u8, cutout, over_colour, over_planes, split_view};
use super::{AlphaUpsampler, Background, CompositeError, CompositeSettings, View};
use crate::frame::{Frame, Matte, Picture};

/// Composites frames, keeping its resamplers, the fitted background and scratch buffers between frames.
pub struct CpuCompositor {
    settings: CompositeSettings,
    pacing: Pacing,
    media: BackgroundMedia,
    upsampler: AlphaUpsampler,
    alpha: Vec<f32>,
    scratch: Vec<f32>,
    background: BackgroundPlanes,
}

impl CpuCompositor {
    /// For file runs and tests: a video background advances one frame per frame. The background's file is
    /// opened now (an unreadable image or video is an error here, not on the first frame).
    pub fn new(settings: CompositeSettings) -> Result<Self, CompositeError> {
        Self::with_pacing(settings, Pacing::OnePerFrame)
    }

    pub fn with_pacing(settings: CompositeSettings, pacing: Pacing) -> Result<Self, CompositeError> {
        let media = BackgroundMedia::open(&settings.background, pacing)?;
        Ok(Self {
            upsampler: AlphaUpsampler::new(settings.upsample),
            settings,
            pacing,
            media,
            alpha: Vec::new(),
            scratch: Vec::new(),
            background: BackgroundPlanes::default(),
        })
    }

    pub fn settings(&self) -> &CompositeSettings {
        &self.settings
    }

    /// New settings from the next frame on. Only a new background file is opened (the old settings stay
    /// if it fails); everything else, a moving slider included, keeps the media, tables and buffers.
    pub fn set_settings(&mut self, settings: CompositeSettings) -> Result<(), CompositeError> {
        if settings.background.file() != self.settings.background.file() {
            self.media = BackgroundMedia::open(&settings.background, self.pacing)?;
            self.background.forget_fit();
        }
        if settings.upsample != self.settings.upsample {
            self.upsampler = AlphaUpsampler::new(settings.upsample);
        }
        self.settings = settings;
        Ok(())
    }

    /// Composites `frame` with its model-size `matte` into `out`: the frame-size 8-bit alpha (mirrored with
    /// the picture), the composite, and the split view when it is on. A model's foreground colours (RVM)
    /// replace the frame's where given at frame size.
    pub fn composite(&mut self, frame: &Frame, matte: &Matte, out: &mut Picture) -> Result<(), CompositeError> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        let mut full = std::mem::take(&mut self.alpha);
        self.upsampler.upsample_f32(matte, frame.guide(), &mut full);
        apply_edges(&mut full, &mut self.scratch, w, h, &self.settings.edges);
        let mirror = self.settings.mirror;
        let alpha = &mut out.alpha;
        alpha.resize(w * h, 0);
        for (out_row, row) in alpha.chunks_exact_mut(w).zip(full.chunks_exact(w)) {
            if mirror {
                out_row.iter_mut().zip(row.iter().rev()).for_each(|(o, &a)| *o = alpha_u8(a));
            } else {
                out_row.iter_mut().zip(row).for_each(|(o, &a)| *o = alpha_u8(a));
            }
        }
        self.alpha = full;
        self.background.fill(&self.settings.background, &mut self.media, frame)?;
        let fg = matte.foreground_for(frame);
        let (width, height) = (frame.width, frame.height);
        let composite = &mut out.composite;
        // The background mode is matched once per frame, not per pixel.
        match &self.settings.background {
            Background::Color(colour) => over_colour(fg, alpha, width, height, *colour, mirror, composite),
            Background::Transparent { premultiplied } => {
                cutout(fg, alpha, width, height, mirror, *premultiplied, composite)
            }
            background => {
                // The person (and a blur made from the frame) is mirrored; an image or video is not.
                let background_mirror = mirror && background.follows_frame();
                over_planes(fg, alpha, &self.background.planes, width, height, mirror, background_mirror, composite)
            }
        }
        match self.settings.view {
            View::Composite => out.split = None,
            View::Split => {
                let premultiplied = self.settings.background == Background::Transparent { premultiplied: true };
                let split = out.split.get_or_insert_with(Default::default);
                split_view(frame, &out.alpha, &out.composite, mirror, premultiplied, split);
            }
        }
        Ok(())
    }
}
