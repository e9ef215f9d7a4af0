//! What the engine is doing besides the picture, as the window and the commands show it. The stages write
//! it; anyone reads a copy.

use std::time::Instant;

use super::choice::{ModelChoice, SourceChoice};
pub use super::governor::GovernorStatus;
use super::plate::PlateStatus;
use crate::composite::CompositeSettings;
use crate::filter::temporal::TemporalMode;
use crate::infer::{Precision, ProviderInUse};
use crate::source::SourceInfo;

/// What the capture side is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum SourceState {
    Opening,
    Running,
    /// A camera that went away or would not open; tried again at `retry_at`.
    Lost {
        reason: String,
        retry_at: Instant,
    },
    /// A file that cannot be read; not retried: the user picks another source.
    Failed(String),
    /// A file run's source reached its end.
    Ended,
}

/// What the inference side is doing.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelState {
    Loading,
    Ready,
    /// Loading or running failed; the previous model, if any, keeps running.
    Failed(String),
}

/// Everything the window shows about the engine besides the picture.
#[derive(Clone, Debug)]
pub struct EngineStatus {
    pub source: SourceChoice,
    pub source_state: SourceState,
    /// Known once the source opened.
    pub source_info: Option<SourceInfo>,
    pub model: ModelChoice,
    pub model_state: ModelState,
    /// The provider the running model is on, with why it is not the requested one.
    pub provider: Option<ProviderInUse>,
    /// The precision the running model's file has (`None` before one runs, or for a model the caller
    /// opened).
    pub precision: Option<Precision>,
    /// "Hold frame rate": the level the governor runs the model at, while it is on.
    pub governor: Option<GovernorStatus>,
    pub temporal: TemporalMode,
    pub plate: PlateStatus,
    /// BGMv2 is loaded but has no plate yet: frames are shown unmatted.
    pub needs_plate: bool,
    /// The picture settings the compositor uses now (a background that failed to open is not among them).
    pub composite: CompositeSettings,
    /// Why the last picture settings were refused (a background file that does not open).
    pub composite_error: Option<String>,
    /// "cpu" or "gpu (adapter)".
    pub compositor: String,
    /// Frames the live engine dropped because the model gave non-finite alpha (NaN or infinity), and why
    /// the last one was dropped.
    pub nonfinite_frames: u64,
    pub nonfinite_notice: Option<String>,
}

impl EngineStatus {
    /// True while a stage is being rebuilt (the window shows a spinner).
    pub fn is_busy(&self) -> bool {
        self.model_state == ModelState::Loading || self.source_state == SourceState::Opening
    }

    /// Source and model are running: the picture is live.
    pub fn is_ready(&self) -> bool {
        self.source_state == SourceState::Running && self.model_state == ModelState::Ready
    }

    /// A source that failed for good (a camera that went away is retried, so it is not one).
    pub fn source_failure(&self) -> Option<String> {
        match &self.source_state {
            SourceState::Failed(reason) => Some(format!("source {}: {reason}", self.source)),
            _ => None,
        }
    }

    /// Why nothing will come: a source or model that failed.
    pub fn failure(&self) -> Option<String> {
        match (&self.source_state, &self.model_state) {
            (SourceState::Failed(reason), _) => Some(format!("source {}: {reason}", self.source)),
            (_, ModelState::Failed(reason)) => Some(format!("model {}: {reason}", self.model.kind.title())),
            _ => None,
        }
    }
}
