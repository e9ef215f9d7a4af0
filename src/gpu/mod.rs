//! Compositing on the GPU with wgpu compute shaders (`shaders/*.wgsl`): the same steps as `composite`,
//! file for file (`alpha`, `edges`, `background`, `output`), which is its reference in the tests.

pub mod alpha;
pub mod background;
pub mod compositor;
pub mod context;
pub mod edges;
pub mod output;
pub mod pipelines;
pub mod readback;
pub mod timer;
pub mod uniforms;

pub use compositor::GpuCompositor;
pub use context::GpuContext;

#[derive(Debug, thiserror::Error)]
pub enum GpuError {
    #[error(
        "no GPU adapter found; install a Vulkan driver (on Debian `mesa-vulkan-drivers` gives a software one) or use `--compositor cpu`"
    )]
    NoAdapter,
    #[error(
        "the only GPU adapter is {adapter}, a software rasteriser slower than the CPU compositor; `--compositor gpu` uses it anyway"
    )]
    SoftwareOnly { adapter: String },
    #[error("GPU {adapter}: {reason}")]
    Device { adapter: String, reason: String },
    #[error("reading the composite back from the GPU failed: {0}")]
    Readback(String),
    #[error(
        "{what} needs a {bytes}-byte GPU buffer; this GPU allows {max} (use a smaller frame or `--compositor cpu`)"
    )]
    TooLarge { what: &'static str, bytes: u64, max: u64 },
    #[error(
        "the matte is {matte_w}x{matte_h} but the frame is {frame_w}x{frame_h}; a matte cannot be larger than its frame"
    )]
    MatteSize { matte_w: u32, matte_h: u32, frame_w: u32, frame_h: u32 },
    #[error(transparent)]
    Pixels(#[from] crate::color::ColorError),
    /// The background's file (shared with the CPU compositor).
    #[error(transparent)]
    Background(#[from] crate::composite::CompositeError),
}
