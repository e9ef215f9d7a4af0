//! The Python reference pipeline (`scripts/reference_pipeline.py`), run on the benchmark's clip.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::BenchError;
use crate::infer::ModelKind;

/// What the reference measured.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ReferenceResult {
    pub fps: f64,
    pub frames: u64,
    pub model_ms_p50: f64,
    pub frame_ms_p50: f64,
    pub onnxruntime: String,
    pub opencv: String,
}

/// The interpreter that has the reference's packages: `MATTECAM_PYTHON`, else the virtual environment
/// `make setup-test` builds.
pub fn python() -> PathBuf {
    match std::env::var_os("MATTECAM_PYTHON") {
        Some(path) => PathBuf::from(path),
        None => crate::paths::cache_dir().join("venv/bin/python"),
    }
}

pub fn script() -> PathBuf {
    crate::paths::project_root().join("scripts/reference_pipeline.py")
}

pub struct ReferenceRun<'a> {
    pub model: ModelKind,
    pub model_file: &'a Path,
    pub clip: &'a Path,
    pub frames: u64,
    pub threads: usize,
    pub ref_size: u32,
    pub downsample_ratio: f32,
    pub background: [u8; 3],
    pub tuning: crate::infer::RuntimeTuning,
}

/// Checked before any phase runs, so that a missing interpreter does not cost the user the whole run.
pub fn check_available() -> Result<(), BenchError> {
    for path in [python(), script()] {
        if !path.is_file() {
            return Err(BenchError::ReferenceMissing(path));
        }
    }
    Ok(())
}

pub fn run(job: &ReferenceRun) -> Result<ReferenceResult, BenchError> {
    let (python, script) = (python(), script());
    check_available()?;
    let [r, g, b] = job.background;
    let output = Command::new(&python)
        .arg(&script)
        .args(["--model", job.model.name(), "--model-file"])
        .arg(job.model_file)
        .arg("--input")
        .arg(job.clip)
        .args(["--frames", &job.frames.to_string(), "--threads", &job.threads.to_string()])
        .args(["--ref-size", &job.ref_size.to_string(), "--downsample-ratio", &job.downsample_ratio.to_string()])
        .args(["--background", &format!("{r},{g},{b}")])
        .args(["--optimization", job.tuning.optimization.name()])
        .args(job.tuning.spinning.then_some("--spinning"))
        .args((!job.tuning.cpu_arena).then_some("--no-arena"))
        .stdin(Stdio::null())
        .output()
        .map_err(|err| BenchError::Reference(format!("could not start {}: {err}", python.display())))?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        return Err(BenchError::Reference(crate::ffmpeg::last_line(&stderr)));
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
    serde_json::from_str(line).map_err(|err| BenchError::Reference(format!("unreadable result `{line}`: {err}")))
}
