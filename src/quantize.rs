//! `mattecam models quantize FILE`: a user's model (BGMv2's downloaded exports) made INT8 by the same
//! recipe setup uses for MODNet and RVM (`scripts/quantize.py`, in the Python environment setup installed),
//! written beside it as `NAME_int8.onnx`.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::infer::ModelKind;
use crate::models::{self, ManifestError};
use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum QuantizeError {
    #[error("the quantiser is not installed ({} is missing); run `make setup` first", display(.0))]
    NotInstalled(PathBuf),
    #[error("{} exists; move it away first (it is never replaced)", display(.0))]
    Exists(PathBuf),
    #[error("{} is not a file", display(.0))]
    NoModel(PathBuf),
    #[error("the calibration clip {} is missing; run `make setup`, or pass --video", display(.0))]
    NoClip(PathBuf),
    #[error(transparent)]
    Model(#[from] ManifestError),
    #[error("quantising {} failed: {reason}", display(.model))]
    Failed { model: PathBuf, reason: String },
}

/// Quantises `model` (a `kind` model) calibrated on `video`; returns the INT8 file, recorded as the user's.
pub fn quantize(kind: ModelKind, model: &Path, video: &Path) -> Result<PathBuf, QuantizeError> {
    let root = crate::paths::project_root();
    let python = root.join(".cache/venv/bin/python");
    let script = root.join("scripts/quantize.py");
    for needed in [&python, &script] {
        if !needed.is_file() {
            return Err(QuantizeError::NotInstalled(needed.clone()));
        }
    }
    if !model.is_file() {
        return Err(QuantizeError::NoModel(model.to_path_buf()));
    }
    if !video.is_file() {
        return Err(QuantizeError::NoClip(video.to_path_buf()));
    }
    let output = models::int8_sibling(model);
    if output.exists() {
        return Err(QuantizeError::Exists(output));
    }
    // The input must be what it was when first used (or is recorded now).
    models::check_model_file(model)?;
    let failed = |reason: String| QuantizeError::Failed { model: model.to_path_buf(), reason };
    let result = Command::new(&python)
        .arg(&script)
        .args(["--kind", kind.name(), "--video"])
        .arg(video)
        .arg(model)
        .arg(&output)
        .output()
        .map_err(|err| failed(err.to_string()))?;
    if !result.status.success() {
        let text = String::from_utf8_lossy(&result.stderr);
        let last: Vec<&str> = text.lines().filter(|l| !l.starts_with("WARNING")).rev().take(3).collect();
        return Err(failed(last.into_iter().rev().collect::<Vec<_>>().join(" / ")));
    }
    models::check_model_file(&output)?;
    Ok(output)
}
