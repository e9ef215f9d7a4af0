//! The data that flows through the pipeline: frames in, mattes out.

use std::time::Instant;

/// One RGB frame from a source, 8 bits per channel, rows packed without padding.
#[derive(Clone, Debug)]
pub struct Frame {
    /// Position in the source's stream, starting at 0, without gaps for file sources.
    pub seq: u64,
    /// When the frame was read from its source: the start of end-to-end latency.
    pub captured_at: Instant,
    /// Media time of the frame (position in a file, or time since a live source started).
    pub pts_ms: f64,
    pub width: u32,
    pub height: u32,
    /// `width * height * 3` bytes, RGB.
    pub rgb: Vec<u8>,
}

impl Frame {
    /// The frame's description without its pixels (for a copy into another buffer).
    pub fn clone_header(&self) -> Frame {
        Frame { rgb: Vec::new(), ..*self }
    }

    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// A model's answer for one frame, at the model's own resolution.
#[derive(Clone, Debug, Default)]
pub struct Matte {
    /// Frame the matte belongs to.
    pub seq: u64,
    pub width: u32,
    pub height: u32,
    /// Alpha in [0, 1], `width * height` values.
    pub alpha: Vec<f32>,
    /// Predicted foreground colour (RGB, 8 bits, same size as `alpha`), for models that give one (RVM, BGMv2).
    pub foreground: Option<Vec<u8>>,
    /// Time spent in the model for this frame, pre- and post-processing included.
    pub infer_ms: f64,
    /// Of `infer_ms`, the time inside the ONNX Runtime session alone.
    pub model_ms: f64,
    /// What the plate stage saw, when a plate was in use.
    pub plate_check: Option<crate::plate::PlateCheck>,
}

impl Matte {
    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }
}

/// The full-resolution picture a matte was made from, for steps that look at it (edge-aware upsampling,
/// motion-gated filtering).
#[derive(Clone, Copy)]
pub struct Guide<'a> {
    /// Packed RGB, `width * height * 3` bytes.
    pub rgb: &'a [u8],
    pub width: u32,
    pub height: u32,
}

impl Frame {
    pub fn guide(&self) -> Guide<'_> {
        Guide { rgb: &self.rgb, width: self.width, height: self.height }
    }
}
