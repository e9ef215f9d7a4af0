//! Putting the person over a new background. `cpu` is the reference implementation.

pub mod background;
pub mod cpu;
pub mod upsample;

pub use background::Background;
pub use cpu::{Composite, CpuCompositor};
pub use upsample::{AlphaUpsampler, Upsample};

#[derive(Debug, thiserror::Error)]
pub enum CompositeError {
    #[error("background image {}: {reason}", crate::paths::display(.path))]
    BackgroundImage { path: std::path::PathBuf, reason: String },
    #[error("invalid background `{0}`; use `blur`, `blur:RADIUS_PX`, `color:#RRGGBB`, `image:PATH` or `transparent`")]
    BadSpec(String),
}
