//! What an engine is started with: where frames come from, what mattes them, where compositing runs, and
//! a file run's sinks.

use std::path::PathBuf;
use std::sync::Arc;

use super::choice::{HoldRate, ModelChoice, SourceChoice};
use super::plate::PlateSettings;
use super::writer::SinkWriter;
use crate::composite::CompositeSettings;
use crate::compositor::{Compositor, CompositorKind};
use crate::filter::temporal::TemporalMode;
use crate::gpu::GpuContext;
use crate::infer::Matter;
use crate::source::FrameSource;

/// Called from the stages when a new picture is ready and when the status changes (the window asks egui
/// to repaint).
pub type Notify = Arc<dyn Fn() + Send + Sync>;

/// Where frames come from.
pub enum SourceInput {
    /// The live engine: paced, looped, retried, and switchable while running ([`Engine::set_source`]).
    Live(SourceChoice),
    /// A file run: every frame, as fast as the stages take them (a live source such as a camera still
    /// goes through latest-frame slots); the run ends with the source.
    File(Box<dyn FrameSource>),
}

/// What mattes the frames.
pub enum ModelInput {
    /// Loaded on a loader thread; switchable while running ([`Engine::set_model`]).
    Load(ModelChoice),
    /// Opened by the caller: one session, or several of a frame-independent model that take frames in
    /// turn (`infer::open_matters`), the mattes put back in order.
    Opened(Vec<Box<dyn Matter>>),
}

/// Where compositing runs.
pub enum CompositorSetup {
    /// Opened on the composite thread (a picture setting that fails to open falls back to the defaults,
    /// reported in the status).
    Kind(CompositorKind),
    /// The GPU compositor on this device (the window's own): the window draws its texture as it is.
    Device(GpuContext),
    /// Opened by the caller, so that a bad background is an error before any work.
    Opened(Box<dyn Compositor>),
}

/// The live engine's plate keeping: capture, save, reload, staleness.
#[derive(Clone, Debug)]
pub struct PlateSetup {
    pub settings: PlateSettings,
    /// Where plates are saved and looked for (per source and resolution).
    pub dir: PathBuf,
}

pub struct EngineConfig {
    pub source: SourceInput,
    pub model: ModelInput,
    pub temporal: TemporalMode,
    pub composite: CompositeSettings,
    pub compositor: CompositorSetup,
    /// Plate capture and reuse (the live engine); a file run gives its models a plate itself.
    pub plate: Option<PlateSetup>,
    /// A file run's sinks: they take every frame (the compositor waits for them), and are committed only
    /// when every stage completed.
    pub writer: Option<SinkWriter>,
    /// Stop after this many frames.
    pub max_frames: Option<u64>,
    pub notify: Notify,
    /// "Hold frame rate" for a model the caller opened (`ModelInput::Opened`) on a live source; a model
    /// the engine loads brings its own ([`ModelChoice::hold_rate`]). Off when `None`.
    pub hold_rate: Option<HoldRate>,
}

impl EngineConfig {
    /// A live engine on `source` with `model`, compositing on the CPU or a hardware GPU; no plate keeping,
    /// no notification (`record`, `bench`, tests).
    pub fn live(
        source: SourceChoice,
        model: ModelChoice,
        temporal: TemporalMode,
        composite: CompositeSettings,
    ) -> Self {
        Self {
            source: SourceInput::Live(source),
            model: ModelInput::Load(model),
            temporal,
            composite,
            compositor: CompositorSetup::Kind(CompositorKind::Auto),
            plate: None,
            writer: None,
            max_frames: None,
            notify: Arc::new(|| {}),
            hold_rate: None,
        }
    }
}
