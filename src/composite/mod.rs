//! Putting the person over a new background, on the CPU: the reference implementation. `crate::gpu` runs
//! the same steps as WGSL shaders, file for file: `alpha` (model size to frame size), `edges`,
//! `background`, `output`. `crate::compositor` puts either behind one trait.

pub mod alpha;
pub mod background;
pub mod cpu;
pub mod edges;
pub mod output;

pub use crate::frame::{Composite, Picture};
pub use alpha::{AlphaUpsampler, Upsample};
pub use background::{Background, Pacing};
pub use cpu::CpuCompositor;
pub use edges::EdgeControls;

#[derive(Debug, thiserror::Error)]
pub enum CompositeError {
    #[error("background image {}: {reason}", crate::paths::display(.path))]
    BackgroundImage { path: std::path::PathBuf, reason: String },
    #[error("background video {}: {reason}", crate::paths::display(.path))]
    BackgroundVideo { path: std::path::PathBuf, reason: String },
    #[error(
        "invalid background `{0}`; use `blur`, `blur:RADIUS_PX`, `color:#RRGGBB`, `image:PATH`, `video:PATH`, `transparent` or `transparent:premultiplied`"
    )]
    BadSpec(String),
}

/// What the compositor shows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum View {
    /// The person over the background, at frame size.
    #[default]
    Composite,
    /// Original | alpha | composite side by side at half size, for checking the matte.
    Split,
}

/// Everything that decides how a frame and its matte become a picture.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct CompositeSettings {
    pub background: Background,
    pub upsample: Upsample,
    pub edges: EdgeControls,
    /// Flip the picture left to right (what people expect of their own camera image); an image or video
    /// background stays unflipped.
    pub mirror: bool,
    pub view: View,
}

impl CompositeSettings {
    /// `Some(premultiplied)` when the background is transparent.
    pub fn transparent(&self) -> Option<bool> {
        match self.background {
            Background::Transparent { premultiplied } => Some(premultiplied),
            _ => None,
        }
    }
}

/// Where compositing runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CompositorKind {
    /// A hardware GPU when one is found, the CPU otherwise (a software rasteriser such as lavapipe is
    /// slower than the CPU compositor on the same cores, so only `gpu` uses it).
    #[default]
    Auto,
    Gpu,
    Cpu,
}
