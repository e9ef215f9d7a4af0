//! ONNX Runtime: finding and loading the library once, and building sessions on the best provider.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use super::{InferError, ProviderInUse, ProviderRequest};

/// Where `libonnxruntime.so` may be, in the order tried: `ORT_DYLIB_PATH`, the setup's cache (the GPU
/// build first when compiled with CUDA), then the usual system folders (and after them the loader's own
/// search by name).
pub fn library_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        candidates.push(PathBuf::from(path));
        return candidates;
    }
    let cache = crate::paths::cache_dir().join("onnxruntime");
    if cfg!(feature = "cuda") {
        candidates.push(cache.join("gpu/libonnxruntime.so"));
    }
    candidates.push(cache.join("cpu/libonnxruntime.so"));
    for dir in ["/usr/local/lib", "/usr/lib", "/usr/lib/x86_64-linux-gnu"] {
        candidates.push(Path::new(dir).join("libonnxruntime.so"));
    }
    candidates
}

/// `scripts/pins.toml`, compiled in: what the setup's files must hash to, whatever is on disk.
const PINS: &str = include_str!("../../scripts/pins.toml");

#[derive(serde::Deserialize)]
struct Pins {
    library: Vec<PinnedLibrary>,
}

#[derive(serde::Deserialize)]
struct PinnedLibrary {
    file: String,
    sha256: String,
}

/// The sha256s a library of the setup's cache may have (either flavour's build of `file`).
fn pinned_sha256(file: &str) -> Vec<String> {
    let pins: Pins = toml::from_str(PINS).expect("scripts/pins.toml parses (checked by a unit test)");
    pins.library.into_iter().filter(|lib| lib.file == file).map(|lib| lib.sha256).collect()
}

/// A library from the setup's cache is loaded only when it is the file the setup verified: the cache is a
/// folder that anything running as the user can write to, and loading a library runs its code.
fn check_cached_library(library: &Path) -> Result<(), InferError> {
    let cache = crate::paths::cache_dir().join("onnxruntime");
    if !library.starts_with(&cache) {
        return Ok(());
    }
    let tampered = |actual: String| InferError::RuntimeUnverified { path: library.to_path_buf(), actual };
    // The setup writes `libonnxruntime.so` as a link to the versioned file it verified.
    let resolved = std::fs::canonicalize(library).map_err(|err| tampered(err.to_string()))?;
    let name = resolved.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let actual = crate::models::sha256_file(&resolved).map_err(|err| tampered(err.to_string()))?;
    if pinned_sha256(&name).contains(&actual) { Ok(()) } else { Err(tampered(format!("sha256 {actual}"))) }
}

struct Runtime {
    library: PathBuf,
    environment: Environment,
}

static RUNTIME: OnceLock<Result<Runtime, InferError>> = OnceLock::new();

fn runtime() -> Result<&'static Runtime, InferError> {
    RUNTIME.get_or_init(load_runtime).as_ref().map_err(Clone::clone)
}

fn load_runtime() -> Result<Runtime, InferError> {
    let candidates = library_candidates();
    let library = match candidates.iter().find(|p| p.is_file()) {
        Some(found) => found.clone(),
        // Last, whatever the system's loader finds by name (LD_LIBRARY_PATH, ldconfig), unless the user
        // named a file.
        None if std::env::var_os("ORT_DYLIB_PATH").is_none() => PathBuf::from("libonnxruntime.so"),
        None => return Err(InferError::RuntimeMissing { tried: candidates }),
    };
    let load_error = |reason: String| InferError::RuntimeLoad { path: library.clone(), reason };
    check_cached_library(&library)?;
    let builder = match ort::init_from(&library) {
        Ok(builder) => builder,
        Err(_) if !library.is_file() => {
            let mut tried = candidates;
            tried.push(library.clone());
            return Err(InferError::RuntimeMissing { tried });
        }
        Err(err) => return Err(load_error(err.to_string())),
    };
    let environment = builder.with_name("mattecam").build().map_err(|err| load_error(err.to_string()))?;
    tracing::info!("ONNX Runtime loaded from {}", library.display());
    Ok(Runtime { library, environment })
}

/// The ONNX Runtime library in use, loading it if needed.
pub fn runtime_library() -> Result<PathBuf, InferError> {
    runtime().map(|rt| rt.library.clone())
}

/// Session settings shared by every model.
#[derive(Clone, Debug)]
pub struct SessionOptions {
    /// Intra-op threads; 0 lets ONNX Runtime choose (one per core).
    pub threads: usize,
    pub provider: ProviderRequest,
    pub tuning: RuntimeTuning,
}

impl Default for SessionOptions {
    fn default() -> Self {
        Self { threads: 0, provider: ProviderRequest::Auto, tuning: RuntimeTuning::default() }
    }
}

/// ONNX Runtime's knobs that change speed and not results; the defaults are what `mattecam bench`
/// measured best on a 2-core machine (README, "Speed").
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeTuning {
    /// Worker threads spin between operators instead of sleeping. Off: spinning threads take the cores that
    /// decoding and compositing need between frames.
    pub spinning: bool,
    pub optimization: Optimization,
    /// ONNX Runtime's CPU memory arena (its buffers kept between runs).
    pub cpu_arena: bool,
}

impl Default for RuntimeTuning {
    fn default() -> Self {
        Self { spinning: false, optimization: Optimization::All, cpu_arena: true }
    }
}

/// Graph optimisation level, as ONNX Runtime names them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Optimization {
    Disable,
    Basic,
    Extended,
    #[default]
    All,
}

impl Optimization {
    /// The name `scripts/reference_pipeline.py` takes.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Basic => "basic",
            Self::Extended => "extended",
            Self::All => "all",
        }
    }

    fn level(self) -> GraphOptimizationLevel {
        match self {
            Self::Disable => GraphOptimizationLevel::Disable,
            Self::Basic => GraphOptimizationLevel::Level1,
            Self::Extended => GraphOptimizationLevel::Level2,
            Self::All => GraphOptimizationLevel::All,
        }
    }
}

/// Loads `model` on the requested provider, falling back to the CPU with the reason when CUDA cannot be used.
pub fn build_session(model: &Path, options: &SessionOptions) -> Result<(Session, ProviderInUse), InferError> {
    if !model.is_file() {
        return Err(InferError::ModelMissing(model.to_path_buf()));
    }
    let runtime = runtime()?;
    let invalid = |reason: String| InferError::ModelInvalid { path: model.to_path_buf(), reason };
    let (mut builder, provider) = configured_builder(&runtime.environment, options).map_err(invalid)?;
    let session = builder.commit_from_file(model).map_err(|err| invalid(err.to_string()))?;
    Ok((session, provider))
}

fn configured_builder(
    environment: &Environment,
    options: &SessionOptions,
) -> Result<(ort::session::builder::SessionBuilder, ProviderInUse), String> {
    let tuning = options.tuning;
    let mut builder = Session::builder(environment)
        .map_err(|e| e.to_string())?
        .with_optimization_level(tuning.optimization.level())
        .map_err(|e| e.to_string())?
        .with_intra_threads(options.threads)
        .map_err(|e| e.to_string())?
        .with_inter_threads(1)
        .map_err(|e| e.to_string())?
        .with_intra_op_spinning(tuning.spinning)
        .map_err(|e| e.to_string())?
        .with_inter_op_spinning(tuning.spinning)
        .map_err(|e| e.to_string())?;
    {
        use ort::ep::ExecutionProvider;
        ort::ep::CPU::default()
            .with_arena_allocator(tuning.cpu_arena)
            .register(&mut builder)
            .map_err(|e| e.to_string())?;
    }
    register_provider(builder, options.provider)
}

#[cfg(feature = "cuda")]
fn register_provider(
    mut builder: ort::session::builder::SessionBuilder,
    request: ProviderRequest,
) -> Result<(ort::session::builder::SessionBuilder, ProviderInUse), String> {
    use ort::ep::ExecutionProvider;
    if request == ProviderRequest::Cpu {
        return Ok((builder, ProviderInUse::cpu(None)));
    }
    match ort::ep::CUDA::default().register(&mut builder) {
        Ok(()) => Ok((builder, ProviderInUse::cuda())),
        Err(err) => Ok((builder, ProviderInUse::cpu(Some(format!("CUDA could not be used: {err}"))))),
    }
}

#[cfg(not(feature = "cuda"))]
fn register_provider(
    builder: ort::session::builder::SessionBuilder,
    request: ProviderRequest,
) -> Result<(ort::session::builder::SessionBuilder, ProviderInUse), String> {
    let note = (request == ProviderRequest::Cuda).then(|| {
        "CUDA was requested but this build has no CUDA support; rebuild with `--features cuda` after `make setup GPU=1`"
            .to_string()
    });
    Ok((builder, ProviderInUse::cpu(note)))
}

/// Runs `session` on what `binding` holds, the outputs written into the tensors bound to it.
/// `Session::run_binding` also wraps every output in new reference-counted values, a few small allocations
/// a frame; our outputs are preallocated tensors we already hold, so that step is skipped and a frame
/// allocates nothing on our side.
pub(super) fn run_bound(session: &Session, binding: &ort::session::IoBinding) -> Result<(), ort::Error> {
    use ort::AsPointer;
    let api = ort::api();
    // SAFETY: both pointers come from live wrappers borrowed for the whole call; `RunWithBinding` neither
    // keeps nor frees them (the same call `Session::run_binding` makes).
    let status = unsafe { (api.RunWithBinding)(session.ptr().cast_mut(), std::ptr::null(), binding.ptr()) };
    if status.0.is_null() {
        return Ok(());
    }
    // SAFETY: a non-null status holds a NUL-terminated message until it is released, which we do once.
    let message = unsafe { std::ffi::CStr::from_ptr((api.GetErrorMessage)(status.0)) }.to_string_lossy().into_owned();
    unsafe { (api.ReleaseStatus)(status.0) };
    Err(ort::Error::new(message))
}

/// Whether inputs must be bound again before every run: on the CPU a bound tensor is read in place, so
/// binding once is enough (binding allocates); on a device, binding is when the input is copied over.
pub(super) fn rebinds_inputs(provider: &ProviderInUse) -> bool {
    provider.name != "CPU"
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_pinned_library_has_a_sha256() {
        for file in ["libonnxruntime.so.1.31.1", "libonnxruntime_providers_shared.so"] {
            let pins = super::pinned_sha256(file);
            assert!(!pins.is_empty() && pins.iter().all(|sha| sha.len() == 64), "{file}: {pins:?}");
        }
    }
}
