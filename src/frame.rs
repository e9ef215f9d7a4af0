//! The data that flows through the engine: frames in, mattes out of the model, pictures out of the
//! compositor, and the [`Output`] every consumer receives. The bottom layer: it imports nothing of ours.

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

impl Default for Frame {
    fn default() -> Self {
        Self { seq: 0, captured_at: Instant::now(), pts_ms: 0.0, width: 0, height: 0, rgb: Vec::new() }
    }
}

impl Frame {
    /// The frame's description without its pixels (for a copy into another buffer).
    pub fn clone_header(&self) -> Frame {
        Frame { rgb: Vec::new(), ..*self }
    }

    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }

    pub fn guide(&self) -> Guide<'_> {
        Guide { rgb: &self.rgb, width: self.width, height: self.height }
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
    /// No model matted this frame and the alpha is all 1: the room as it is (BGMv2 before its plate, shown
    /// so the user can frame it). A consumer that sends the picture out never sends such a frame.
    pub unmatted: bool,
}

impl Matte {
    pub fn pixel_count(&self) -> usize {
        self.width as usize * self.height as usize
    }

    /// The foreground colours to composite for `frame`: the model's when it gave them at frame size, else
    /// the frame's own.
    pub fn foreground_for<'a>(&'a self, frame: &'a Frame) -> &'a [u8] {
        self.foreground.as_deref().filter(|f| f.len() == frame.rgb.len()).unwrap_or(&frame.rgb)
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

/// An 8-bit picture: RGB, or RGBA for a transparent background.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Composite {
    pub width: u32,
    pub height: u32,
    /// 3 or 4.
    pub channels: u8,
    pub pixels: Vec<u8>,
}

/// What compositing one frame gives, on the CPU (the GPU compositor reads its result back into one).
#[derive(Clone, Debug, Default)]
pub struct Picture {
    /// Alpha at frame size, 8-bit, mirrored with the picture: what the composite used.
    pub alpha: Vec<u8>,
    /// The person over the background at frame size (RGBA for a transparent background).
    pub composite: Composite,
    /// Original | alpha | composite at half size, when the split view is on: what the window shows then.
    pub split: Option<Composite>,
}

/// One frame's result, as every consumer receives it (shared, never copied): the window, the recorder, a
/// snapshot, a file run's sinks.
#[derive(Debug, Default)]
pub struct Output {
    pub frame: Frame,
    pub matte: Matte,
    pub picture: Picture,
    /// The picture is mirrored (the person and the alpha; an image or video background is not).
    pub mirror: bool,
    /// The composite's background is transparent: `Some(premultiplied)`.
    pub transparent: Option<bool>,
    /// When the composite was ready, and how long compositing took (for a GPU, the time the compositor's
    /// thread spent).
    pub composited_at: Option<Instant>,
    pub composite_ms: f64,
    /// The picture on the window's GPU, when the compositor runs there: the window draws it as it is.
    pub gpu: Option<GpuImage>,
}

impl Output {
    /// Bytes of memory this output holds alive (its pixels, alpha and matte), for queues bounded in bytes.
    pub fn heap_bytes(&self) -> u64 {
        let picture = &self.picture;
        let pixels = self.frame.rgb.len()
            + self.matte.alpha.len() * std::mem::size_of::<f32>()
            + self.matte.foreground.as_ref().map_or(0, Vec::len)
            + picture.alpha.len()
            + picture.composite.pixels.len()
            + picture.split.as_ref().map_or(0, |split| split.pixels.len());
        pixels as u64
    }
}

/// The picture as textures on the GPU it was composited on (kept for this frame alone: no later frame
/// draws over them while anyone holds them).
#[derive(Clone, Debug)]
pub struct GpuImage {
    /// What the window shows: the composite, the split view, or a transparent composite over the
    /// checkerboard.
    pub shown: std::sync::Arc<wgpu::Texture>,
    /// The composite with its alpha (the same texture as `shown` when the window shows it as it is).
    pub composite: std::sync::Arc<wgpu::Texture>,
    pub device: wgpu::Device,
    pub queue: wgpu::Queue,
}

impl Output {
    /// Whether the picture is in CPU memory (on the window's GPU it may be only a texture).
    pub fn has_pixels(&self) -> bool {
        !self.picture.alpha.is_empty()
    }

    /// What the window shows for this frame: the split view when it is on, else the composite.
    pub fn shown(&self) -> &Composite {
        self.picture.split.as_ref().unwrap_or(&self.picture.composite)
    }
}
