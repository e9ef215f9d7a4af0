//! Matting models on ONNX Runtime: the only module that imports `ort`.

pub mod bgmv2;
pub mod modnet;
pub mod rvm;
mod session;
pub mod synthetic;

use std::path::{Path, PathBuf};

pub use session::{Optimization, RuntimeTuning, SessionOptions, library_candidates, runtime_library};

use crate::frame::{Frame, Matte};
use crate::paths::display;

#[derive(Clone, Debug, thiserror::Error)]
pub enum InferError {
    #[error(
        "the ONNX Runtime library (libonnxruntime.so) was not found (looked at {}); run `make setup`, or set ORT_DYLIB_PATH to the library",
        .tried.iter().map(|p| display(p)).collect::<Vec<_>>().join(", ")
    )]
    RuntimeMissing { tried: Vec<PathBuf> },
    #[error("could not load ONNX Runtime from {} ({reason}); run `make setup` to fetch a working copy, or point ORT_DYLIB_PATH at one", display(.path))]
    RuntimeLoad { path: PathBuf, reason: String },
    #[error("model file {} is missing; run `make setup` to fetch it, or pass --model-file", display(.0))]
    ModelMissing(PathBuf),
    #[error(
        "{model} gave non-finite alpha (NaN or infinity) on frame {seq}; the model file may be damaged or unsuited to this input: run `make setup` to restore a verified copy, or try another model"
    )]
    NonFinite { model: &'static str, seq: u64 },
    #[error("refusing to load ONNX Runtime from {}: it is not the library `make setup` verified ({actual}); run `make setup` to restore it, or set ORT_DYLIB_PATH to a library you trust", display(.path))]
    RuntimeUnverified { path: PathBuf, actual: String },
    #[error("{} is not a loadable ONNX model ({reason}); run `make setup` to fetch a verified copy, or pass a valid model file", display(.path))]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("{} is not a {kind} model: it takes {found} but {kind} takes {expected}; choose the matching --model", display(.path))]
    WrongModel { path: PathBuf, kind: &'static str, expected: &'static str, found: String },
    #[error(
        "BGMv2 needs a clean background plate: capture one (Capture plate in the window, or `mattecam plate`) or pass --plate"
    )]
    NeedsPlate,
    #[error(
        "the plate is {plate_width}x{plate_height} but the frames are {width}x{height}; capture a plate at this resolution"
    )]
    PlateSize { plate_width: u32, plate_height: u32, width: u32, height: u32 },
    #[error("{0} has not seen a frame yet: run it on one before timing the model alone")]
    NotPrepared(&'static str),
    #[error("{model} failed on a {width}x{height} frame: {reason}")]
    Run { model: &'static str, width: u32, height: u32, reason: String },
    #[error("{model} cannot matte frames in parallel sessions: {reason}; use --sessions 1")]
    NotFrameParallel { model: &'static str, reason: &'static str },
}

/// Which execution provider the user asks for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ProviderRequest {
    /// CUDA when compiled in and usable, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
}

/// The provider a session really runs on, and why it is not the one asked for, if it is not.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct ProviderInUse {
    pub name: &'static str,
    pub note: Option<String>,
}

impl ProviderInUse {
    pub fn cpu(note: Option<String>) -> Self {
        Self { name: "CPU", note }
    }

    pub fn cuda() -> Self {
        Self { name: "CUDA", note: None }
    }
}

impl std::fmt::Display for ProviderInUse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.note {
            Some(note) => write!(f, "{} ({note})", self.name),
            None => f.write_str(self.name),
        }
    }
}

/// Which of a model's files runs: the float original or its INT8 quantisation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    /// INT8 on a CPU when its file is present and verified, float on CUDA (ONNX Runtime's CUDA provider
    /// runs quantised convolutions slower than float ones).
    #[default]
    Auto,
    Fp32,
    Int8,
}

impl Precision {
    pub fn name(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Fp32 => "fp32",
            Self::Int8 => "int8",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Whether a session asked for with `provider` may run on CUDA (compiled in and not refused).
pub fn cuda_possible(provider: ProviderRequest) -> bool {
    cfg!(feature = "cuda") && provider != ProviderRequest::Cpu
}

/// The matting models the app knows how to drive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// MODNet: one frame in, alpha out.
    #[default]
    Modnet,
    /// Robust Video Matting: recurrent, temporally stable, predicts foreground colour too.
    Rvm,
    /// Background Matting V2: the frame and a clean background plate in, alpha and foreground out.
    Bgmv2,
}

impl ModelKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Modnet => "modnet",
            Self::Rvm => "rvm",
            Self::Bgmv2 => "bgmv2",
        }
    }

    /// Why frames cannot be matted by several sessions at once, if they cannot: a frame's matte must depend
    /// on nothing but the frame.
    pub fn frame_dependency(self) -> Option<&'static str> {
        match self {
            Self::Modnet => None,
            Self::Rvm => Some("each frame needs the recurrent state the frame before left"),
            Self::Bgmv2 => Some("the background plate is held by one session"),
        }
    }

    /// As the window names it.
    pub fn title(self) -> &'static str {
        match self {
            Self::Modnet => "MODNet",
            Self::Rvm => "RVM",
            Self::Bgmv2 => "BGMv2",
        }
    }
}

/// How a model is set up, beyond its file.
#[derive(Clone, Debug, Default)]
pub struct MatterOptions {
    pub session: SessionOptions,
    /// MODNet: length the shorter side is scaled to (the authors use 512). `None`: the model's default.
    pub ref_size: Option<u32>,
    /// RVM: fraction of the frame size the backbone sees. `None`: chosen from the frame size.
    pub downsample_ratio: Option<f32>,
}

/// How much work a model does on a frame, as the frame-rate governor sets it; `None` keeps the setting.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Work {
    /// MODNet: the shorter side of the model input.
    pub ref_size: Option<u32>,
    /// RVM: the downsample ratio.
    pub downsample_ratio: Option<f32>,
    /// The work relative to the user's setting (1 at the governor's first level): what the test stand-in
    /// scales its delay by.
    pub cost_fraction: f32,
}

impl Default for Work {
    fn default() -> Self {
        Self { ref_size: None, downsample_ratio: None, cost_fraction: 1.0 }
    }
}

/// One frame in, alpha (and maybe foreground) out.
pub trait Matter: Send {
    /// Mattes `frame` into `out`, reusing `out`'s buffers.
    fn infer(&mut self, frame: &Frame, out: &mut Matte) -> Result<(), InferError>;
    /// The clean background plate (packed RGB at frame size, already matched to the camera's exposure) for
    /// the next frames; `None` removes it. Only models that take a plate (BGMv2) use it.
    fn set_plate(&mut self, _plate: Option<(u32, u32, &[u8])>) {}
    /// Runs the session once more on the input tensors of the last frame, without pre- or post-processing:
    /// the model's own speed, the ceiling a pipeline can reach. Needs one `infer` before it.
    fn run_model_only(&mut self) -> Result<(), InferError>;
    /// Forgets temporal state (recurrent models), e.g. after a cut or a source change.
    fn reset(&mut self);
    /// Does more or less work a frame from the next frame on (the frame-rate governor); a model without
    /// such a setting ignores it.
    fn set_work(&mut self, _work: Work) {}
    fn kind(&self) -> ModelKind;
    fn provider(&self) -> &ProviderInUse;
}

/// Opens `kind` from `model_file`, refusing a file whose inputs do not match the kind. (With
/// [`synthetic::DELAY_ENV`] set, a test's stand-in instead.)
pub fn open_matter(kind: ModelKind, model_file: &Path, options: &MatterOptions) -> Result<Box<dyn Matter>, InferError> {
    if let Some(stand_in) = synthetic::SyntheticMatter::from_env(kind) {
        return Ok(Box::new(stand_in));
    }
    Ok(match kind {
        ModelKind::Modnet => Box::new(modnet::Modnet::open(model_file, options)?),
        ModelKind::Rvm => Box::new(rvm::Rvm::open(model_file, options)?),
        ModelKind::Bgmv2 => Box::new(bgmv2::Bgmv2::open(model_file, options)?),
    })
}

/// The intra-op thread count `threads` stands for: 0 is one per core, as ONNX Runtime would pick.
pub fn resolve_threads(threads: usize) -> usize {
    match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
}

/// Refuses more than one session for a model whose frames depend on each other.
pub fn check_sessions(kind: ModelKind, sessions: usize) -> Result<(), InferError> {
    match kind.frame_dependency() {
        Some(reason) if sessions > 1 => Err(InferError::NotFrameParallel { model: kind.title(), reason }),
        _ => Ok(()),
    }
}

/// How many sessions `open_matters` should run for a file-to-file pipeline: two single-threaded MODNet
/// sessions on a CPU with two threads or more (the model alone does 15% more frames a second that way on
/// a 2-core machine: `mattecam bench --sessions 1` vs the default), else one. A GPU runs one frame at a
/// time best; RVM and BGMv2 cannot be split.
pub fn default_sessions(kind: ModelKind, provider: ProviderRequest, threads: usize) -> usize {
    let threads = resolve_threads(threads);
    if kind.frame_dependency().is_none() && !cuda_possible(provider) && threads >= 2 { 2 } else { 1 }
}

/// `sessions` sessions of `kind` sharing `options.session.threads` intra-op threads between them (at least
/// one each), for a pipeline that mattes `sessions` frames at once. On a few cores two single-threaded
/// sessions on alternate frames do more frames a second than one two-threaded session: an operator's work
/// never splits perfectly between threads, and the sessions' idle moments overlap each other's work.
pub fn open_matters(
    kind: ModelKind,
    model_file: &Path,
    options: &MatterOptions,
    sessions: usize,
) -> Result<Vec<Box<dyn Matter>>, InferError> {
    let sessions = sessions.max(1);
    check_sessions(kind, sessions)?;
    let mut options = options.clone();
    if sessions > 1 {
        options.session.threads = (resolve_threads(options.session.threads) / sessions).max(1);
    }
    (0..sessions).map(|_| open_matter(kind, model_file, &options)).collect()
}

/// A one-line description of a session's inputs, for error messages.
fn describe_inputs(session: &ort::session::Session) -> String {
    let names: Vec<String> = session
        .inputs()
        .iter()
        .map(|input| match input.dtype().tensor_shape() {
            Some(shape) => format!("`{}` (rank {})", input.name(), shape.len()),
            None => format!("`{}`", input.name()),
        })
        .collect();
    if names.is_empty() { "no inputs".to_string() } else { format!("inputs {}", names.join(", ")) }
}
