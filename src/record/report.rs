//! What a recording did: the sidecar JSON written beside every take.

use std::path::{Path, PathBuf};

/// What a recording did, written beside it as JSON.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RecordingReport {
    pub path: PathBuf,
    /// The source video written beside it, if asked for.
    pub source_path: Option<PathBuf>,
    pub format: String,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Frames the engine handed to the recorder.
    pub frames_in: u64,
    /// Distinct frames in the file.
    pub frames_written: u64,
    /// Copies of the previous frame that fill gaps so the rate stays constant.
    pub frames_repeated: u64,
    /// Frames dropped because the queue was full (the encoder could not keep up).
    pub frames_dropped: u64,
    /// Frames left out because the source ran ahead of the file's rate.
    pub frames_skipped: u64,
    pub duration_s: f64,
    pub bytes: u64,
    pub model: String,
    pub provider: String,
    pub source: String,
    pub compositor: String,
    /// Seconds since the Unix epoch when the recording started.
    pub started_unix_s: f64,
    /// True when the recording was stopped by the user and every file finished normally.
    pub complete: bool,
    pub error: Option<String>,
    /// The take's sound (`None`: recorded without).
    #[serde(default)]
    pub audio: Option<super::AudioReport>,
}

impl RecordingReport {
    /// Where the sidecar goes: `take.mp4` -> `take.json`, a folder `take` -> `take.json`.
    pub fn sidecar_path(path: &Path) -> PathBuf {
        path.with_extension("json")
    }

    /// A recording that ended before it could say more.
    pub(super) fn failed(path: &Path, error: String) -> Self {
        Self {
            path: path.to_path_buf(),
            source_path: None,
            format: String::new(),
            width: 0,
            height: 0,
            fps: 0.0,
            frames_in: 0,
            frames_written: 0,
            frames_repeated: 0,
            frames_dropped: 0,
            frames_skipped: 0,
            duration_s: 0.0,
            bytes: 0,
            model: String::new(),
            provider: String::new(),
            source: String::new(),
            compositor: String::new(),
            started_unix_s: 0.0,
            complete: false,
            error: Some(error),
            audio: None,
        }
    }

    /// Writes `NAME.json` whole or not at all; an existing one is replaced only when `overwrite`.
    pub(super) fn write_sidecar(&self, overwrite: bool) -> Result<PathBuf, String> {
        let path = Self::sidecar_path(&self.path);
        let json = serde_json::to_string_pretty(self).map_err(|e| e.to_string())? + "\n";
        crate::sink::partial::write_new(&path, overwrite, |working| {
            std::fs::write(working, json).map_err(|e| e.to_string())
        })
        .map_err(|e| e.to_string())?;
        Ok(path)
    }
}
