//! The models manifest (`models/models.toml`): which files the app expects, where setup gets them, and
//! whether the copies on disk are the verified ones.

use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::infer::{ModelKind, Precision, ProviderRequest};
use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("models manifest {} cannot be read ({reason}); restore it from the repository", display(.path))]
    Unreadable { path: PathBuf, reason: String },
    #[error("the models manifest has no entry for {0}")]
    NoEntry(&'static str),
    #[error(
        "no {kind} model file: its weights are not on a package registry, so setup cannot fetch them. Download one of the authors' ONNX exports ({files}) as `mattecam models` explains, put it into {}, or pass --model-file PATH",
        display(.dir)
    )]
    UserModelMissing { kind: &'static str, files: String, dir: PathBuf },
    #[error("could not record the sha256 of {} in {}: {reason}", display(.model), display(.record))]
    Record { model: PathBuf, record: PathBuf, reason: String },
    #[error("{} cannot be read ({reason}); fix or delete it (the models it lists are then recorded again on their next use)", display(.path))]
    RecordsUnreadable { path: PathBuf, reason: String },
    #[error("refusing {}: it is not the file `make setup` verified (sha256 {actual}, expected {expected}); run `make setup` to fetch it again", display(.path))]
    FetchedChanged { path: PathBuf, expected: String, actual: String },
    #[error("no INT8 {kind} model: {} is missing; {fix}", display(.path))]
    Int8Missing { kind: &'static str, path: PathBuf, fix: String },
    #[error("refusing {}: it changed since its first use (sha256 was {was}, now {now}); if you replaced it on purpose, accept the new file with `mattecam models --accept {}`", display(.path), display(.path))]
    UserModelChanged { path: PathBuf, was: String, now: String },
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
    /// The INT8 file setup makes from this one, if any.
    #[serde(default)]
    pub int8: Option<Int8Entry>,
}

/// How setup quantises a fetched model (`scripts/quantize.py`), and the sha256 the result must have.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct Int8Entry {
    pub file: String,
    pub sha256: String,
    /// Node-name prefixes or operator types kept in float.
    #[serde(default)]
    pub exclude: Vec<String>,
    /// Whether `--precision auto` runs it on a CPU: only where it met the quality targets (README, INT8
    /// models); otherwise it runs when asked for by name.
    #[serde(default = "yes")]
    pub auto: bool,
    /// Why `auto` does not run it, when it does not.
    #[serde(default)]
    pub not_auto: Option<String>,
}

fn yes() -> bool {
    true
}

/// The file a model runs from, and which precision that is.
#[derive(Clone, Debug, PartialEq)]
pub struct ResolvedModel {
    pub path: PathBuf,
    /// `Fp32` or `Int8`, never `Auto`.
    pub precision: Precision,
    /// Why `auto` did not pick INT8 where it could have, for the log.
    pub note: Option<String>,
}

/// A model the user supplies (its weights cannot be fetched here), as the manifest documents it.
#[derive(Clone, Debug, serde::Deserialize)]
pub struct UserModelEntry {
    pub name: String,
    pub kind: ModelKind,
    pub file: String,
    pub backbone: String,
    pub backbone_scale: f32,
    pub refine: String,
    pub suits: String,
}

#[derive(Debug, serde::Deserialize)]
struct Manifest {
    model: Vec<ModelEntry>,
    #[serde(default)]
    user_model: Vec<UserModelEntry>,
}

/// A user-supplied model file's sha256 as first seen.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RecordedModel {
    pub path: PathBuf,
    pub sha256: String,
    pub first_used: String,
}

#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
struct Records {
    #[serde(default)]
    model: Vec<RecordedModel>,
}

/// What recording a user model file found.
#[derive(Clone, Debug, PartialEq)]
pub enum RecordOutcome {
    /// First use: recorded now.
    Recorded(String),
    Unchanged,
    /// The file is not what it was on first use (recorded again, so this is said once).
    Changed {
        was: String,
        now: String,
    },
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

fn read_manifest() -> Result<Manifest, ManifestError> {
    let path = manifest_path();
    let unreadable = |reason: String| ManifestError::Unreadable { path: path.clone(), reason };
    let text = std::fs::read_to_string(&path).map_err(|err| unreadable(err.to_string()))?;
    toml::from_str(&text).map_err(|err| unreadable(err.to_string()))
}

pub fn load_manifest() -> Result<Vec<ModelEntry>, ManifestError> {
    Ok(read_manifest()?.model)
}

pub fn load_user_models() -> Result<Vec<UserModelEntry>, ManifestError> {
    Ok(read_manifest()?.user_model)
}

/// The file the app loads for `kind` unless the user names another: the fetched one, or for a user-supplied
/// kind (BGMv2) the first documented export present in the models folder.
pub fn default_model_file(kind: ModelKind) -> Result<PathBuf, ManifestError> {
    let manifest = read_manifest()?;
    let dir = crate::paths::models_dir();
    if let Some(entry) = manifest.model.into_iter().find(|m| m.kind == kind) {
        return Ok(dir.join(entry.file));
    }
    let documented: Vec<UserModelEntry> = manifest.user_model.into_iter().filter(|m| m.kind == kind).collect();
    if documented.is_empty() {
        return Err(ManifestError::NoEntry(kind.name()));
    }
    if let Some(entry) = documented.iter().find(|m| dir.join(&m.file).is_file()) {
        return Ok(dir.join(&entry.file));
    }
    let files = documented.iter().map(|m| m.file.as_str()).collect::<Vec<_>>().join(", ");
    Err(ManifestError::UserModelMissing { kind: kind.title(), files, dir })
}

/// The INT8 file made from `model` by `mattecam models quantize`: `NAME_int8.onnx` beside it.
pub fn int8_sibling(model: &Path) -> PathBuf {
    let stem = model.file_stem().map_or_else(Default::default, |s| s.to_string_lossy().into_owned());
    model.with_file_name(format!("{stem}_int8.onnx"))
}

fn is_int8_name(path: &Path) -> bool {
    path.file_stem().is_some_and(|s| s.to_string_lossy().ends_with("_int8"))
}

/// The file to load for `kind` at `precision`: `explicit` (`--model-file`) or the manifest's file, or the
/// INT8 file beside it. `auto` takes INT8 on a CPU when its file is there and (for a fetched model) is the
/// verified one; CUDA runs float.
pub fn resolve_model_file(
    kind: ModelKind,
    explicit: Option<&Path>,
    precision: Precision,
    provider: ProviderRequest,
) -> Result<ResolvedModel, ManifestError> {
    let resolved = |path: PathBuf, precision: Precision| ResolvedModel { path, precision, note: None };
    let fetched = if explicit.is_none() { load_manifest()?.into_iter().find(|m| m.kind == kind) } else { None };
    let base = match explicit {
        Some(path) => path.to_path_buf(),
        None => default_model_file(kind)?,
    };
    if is_int8_name(&base) {
        return Ok(resolved(base, Precision::Int8));
    }
    let not_auto = fetched.as_ref().and_then(|e| e.int8.as_ref()).filter(|i| !i.auto).map(|i| i.not_auto.clone());
    let (int8, fix, expected) = match &fetched {
        Some(entry) => match &entry.int8 {
            Some(int8) => (
                crate::paths::models_dir().join(&int8.file),
                "run `make setup` to make it".to_string(),
                Some(int8.sha256.clone()),
            ),
            None => (int8_sibling(&base), format!("{} has no INT8 version", entry.name), None),
        },
        None => {
            let sibling = int8_sibling(&base);
            let fix = format!("make it with `mattecam models quantize {}`", display(&base));
            (sibling, fix, None)
        }
    };
    match precision {
        Precision::Fp32 => Ok(resolved(base, Precision::Fp32)),
        Precision::Int8 if int8.is_file() => Ok(resolved(int8, Precision::Int8)),
        Precision::Int8 => Err(ManifestError::Int8Missing { kind: kind.title(), path: int8, fix }),
        Precision::Auto if crate::infer::cuda_possible(provider) => Ok(resolved(base, Precision::Fp32)),
        // A file the user named runs as it is.
        Precision::Auto if explicit.is_some() => Ok(resolved(base, Precision::Fp32)),
        Precision::Auto if let Some(why) = not_auto => {
            let why = why.unwrap_or_else(|| "it did not meet the quality targets".into());
            let note = format!("running float {}: {why}; `--precision int8` runs INT8", kind.title());
            Ok(ResolvedModel { path: base, precision: Precision::Fp32, note: Some(note) })
        }
        Precision::Auto => {
            let verified = match &expected {
                Some(sha256) => status_of(&int8, sha256) == FileStatus::Verified,
                None => int8.is_file(),
            };
            if verified {
                return Ok(resolved(int8, Precision::Int8));
            }
            let note = if int8.is_file() {
                Some(format!("{} is not the verified INT8 file; running float", display(&int8)))
            } else {
                expected.as_ref().map(|_| format!("no INT8 {} ({fix}); running float", kind.title()))
            };
            Ok(ResolvedModel { path: base, precision: Precision::Fp32, note })
        }
    }
}

pub fn records_path() -> PathBuf {
    crate::paths::models_dir().join("user-models.toml")
}

/// The user models recorded so far (none when the record does not exist yet); a record that cannot be
/// read is an error, never taken for an empty one (that would accept any changed file as new).
pub fn recorded_models() -> Result<Vec<RecordedModel>, ManifestError> {
    let path = records_path();
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(ManifestError::RecordsUnreadable { path, reason: err.to_string() }),
    };
    toml::from_str::<Records>(&text)
        .map(|records| records.model)
        .map_err(|err| ManifestError::RecordsUnreadable { path, reason: err.to_string() })
}

/// Records `model`'s sha256 on first use (trust on first use: the weights come from outside any registry),
/// and says whether it changed since; `accept`: a changed file is recorded anew (the user said so).
pub fn record_user_model(model: &Path, accept: bool) -> Result<RecordOutcome, ManifestError> {
    let record = records_path();
    let fail = |reason: String| ManifestError::Record { model: model.to_path_buf(), record: record.clone(), reason };
    let path = std::fs::canonicalize(model).map_err(|err| fail(err.to_string()))?;
    let sha256 = sha256_file(&path).map_err(|err| fail(err.to_string()))?;
    let mut records = Records { model: recorded_models()? };
    let outcome = match records.model.iter_mut().find(|r| r.path == path) {
        Some(known) if known.sha256 == sha256 => return Ok(RecordOutcome::Unchanged),
        Some(known) if !accept => return Ok(RecordOutcome::Changed { was: known.sha256.clone(), now: sha256 }),
        Some(known) => {
            let was = std::mem::replace(&mut known.sha256, sha256.clone());
            known.first_used = crate::paths::utc_stamp();
            RecordOutcome::Changed { was, now: sha256 }
        }
        None => {
            records.model.push(RecordedModel { path, sha256: sha256.clone(), first_used: crate::paths::utc_stamp() });
            RecordOutcome::Recorded(sha256)
        }
    };
    let text = toml::to_string(&records).map_err(|err| fail(err.to_string()))?;
    // Whole or not at all, and on the disk before it counts (a crash must not lose what was trusted).
    crate::sink::partial::write_new(&record, true, |working| {
        let mut file = std::fs::OpenOptions::new().write(true).open(working).map_err(|e| e.to_string())?;
        std::io::Write::write_all(&mut file, text.as_bytes()).and_then(|()| file.sync_all()).map_err(|e| e.to_string())
    })
    .map_err(|err| fail(err.to_string()))?;
    Ok(outcome)
}

/// The sha256 `path` must have when it is a file setup makes: a fetched model or its INT8 version.
fn fetched_sha256(path: &Path) -> Option<String> {
    let entries = load_manifest().ok()?;
    let dir = crate::paths::models_dir();
    let wanted = std::fs::canonicalize(path).ok()?;
    let is = |file: &str| std::fs::canonicalize(dir.join(file)).ok().as_ref() == Some(&wanted);
    entries.into_iter().find_map(|e| {
        if is(&e.file) {
            return Some(e.sha256);
        }
        e.int8.filter(|int8| is(&int8.file)).map(|int8| int8.sha256)
    })
}

/// State of a setup-made file, checked against `expected`.
fn status_of(path: &Path, expected: &str) -> FileStatus {
    match sha256_file(path) {
        Err(_) => FileStatus::Missing,
        Ok(actual) if actual == expected => FileStatus::Verified,
        Ok(actual_sha256) => FileStatus::Mismatch { actual_sha256 },
    }
}

/// Checks a model file before it is loaded. A file setup fetched must still be the verified one; any other
/// file is the user's: recorded on first use (the notice returned says so), refused once it changed.
pub fn check_model_file(path: &Path) -> Result<Option<String>, ManifestError> {
    if !path.is_file() {
        // Loading it reports the missing file.
        return Ok(None);
    }
    if let Some(expected) = fetched_sha256(path) {
        return match status_of(path, &expected) {
            FileStatus::Mismatch { actual_sha256 } => {
                Err(ManifestError::FetchedChanged { path: path.to_path_buf(), expected, actual: actual_sha256 })
            }
            FileStatus::Verified | FileStatus::Missing => Ok(None),
        };
    }
    match record_user_model(path, false)? {
        RecordOutcome::Recorded(sha) => {
            Ok(Some(format!("{}: sha256 {sha} recorded on first use in {}", display(path), display(&records_path()))))
        }
        RecordOutcome::Unchanged => Ok(None),
        RecordOutcome::Changed { was, now } => {
            Err(ManifestError::UserModelChanged { path: path.to_path_buf(), was, now })
        }
    }
}

/// `mattecam models --accept PATH`: the user replaced a model file on purpose; its new sha256 is recorded.
pub fn accept_user_model(path: &Path) -> Result<RecordOutcome, ManifestError> {
    if let Some(expected) = fetched_sha256(path) {
        if let FileStatus::Mismatch { actual_sha256 } = status_of(path, &expected) {
            return Err(ManifestError::FetchedChanged { path: path.to_path_buf(), expected, actual: actual_sha256 });
        }
        return Ok(RecordOutcome::Unchanged);
    }
    record_user_model(path, true)
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
    status_of(&crate::paths::models_dir().join(&entry.file), &entry.sha256)
}

/// State of the INT8 file setup makes from `entry`; `None` when it makes none.
pub fn int8_status(entry: &ModelEntry) -> Option<FileStatus> {
    let int8 = entry.int8.as_ref()?;
    Some(status_of(&crate::paths::models_dir().join(&int8.file), &int8.sha256))
}
