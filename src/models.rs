//! The models manifest (`models/models.toml`): which files the app expects, where setup gets them, and
//! whether the copies on disk are the verified ones.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::infer::ModelKind;
use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("models manifest {} cannot be read ({reason}); restore it from the repository", display(.path))]
    Unreadable { path: PathBuf, reason: String },
    #[error("the models manifest has no entry for {0}")]
    NoEntry(&'static str),
}

#[derive(Clone, Debug, serde::Deserialize)]
pub struct ModelEntry {
    pub name: String,
    pub kind: ModelKind,
    pub file: String,
    pub sha256: String,
    pub wheel: String,
    pub wheel_path: String,
    pub upstream: String,
    pub licence: String,
    pub io: String,
}

#[derive(Debug, serde::Deserialize)]
struct Manifest {
    model: Vec<ModelEntry>,
}

/// State of a model file on disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileStatus {
    Missing,
    Verified,
    /// Present, but not the file the manifest names.
    Mismatch {
        actual_sha256: String,
    },
}

pub fn manifest_path() -> PathBuf {
    crate::paths::models_dir().join("models.toml")
}

pub fn load_manifest() -> Result<Vec<ModelEntry>, ManifestError> {
    let path = manifest_path();
    let unreadable = |reason: String| ManifestError::Unreadable { path: path.clone(), reason };
    let text = std::fs::read_to_string(&path).map_err(|err| unreadable(err.to_string()))?;
    let manifest: Manifest = toml::from_str(&text).map_err(|err| unreadable(err.to_string()))?;
    Ok(manifest.model)
}

/// The file the app loads for `kind` unless the user names another.
pub fn default_model_file(kind: ModelKind) -> Result<PathBuf, ManifestError> {
    let entry = load_manifest()?.into_iter().find(|m| m.kind == kind).ok_or(ManifestError::NoEntry(kind.name()))?;
    Ok(crate::paths::models_dir().join(entry.file))
}

pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut block = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        hasher.update(&block[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

pub fn file_status(entry: &ModelEntry) -> FileStatus {
    let path = crate::paths::models_dir().join(&entry.file);
    match sha256_file(&path) {
        Err(_) => FileStatus::Missing,
        Ok(actual) if actual == entry.sha256 => FileStatus::Verified,
        Ok(actual_sha256) => FileStatus::Mismatch { actual_sha256 },
    }
}
