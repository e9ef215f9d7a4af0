//! What the window remembers between runs: plain serde data, kept apart from the running session.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::composite::CompositeSettings;
use crate::composite::background::DEFAULT_BLUR_RADIUS_PX;
use crate::engine::{ModelChoice, SourceChoice};
use crate::filter::temporal::TemporalMode;
use crate::sink::{DEFAULT_CRF, Format};

/// Key of the settings in eframe's storage.
pub const SETTINGS_KEY: &str = "mattecam.settings";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppSettings {
    pub source: SourceChoice,
    pub model: ModelChoice,
    pub temporal: TemporalMode,
    pub composite: CompositeSettings,
    /// The values of the background modes not in use, so switching back restores them.
    pub remembered: RememberedBackgrounds,
    pub show_stats: bool,
    pub snapshot_dir: PathBuf,
    pub recording: RecordingSettings,
    pub plate: crate::engine::PlateSettings,
    pub camera: CameraSettings,
}

/// How the virtual camera runs when it is turned on (it is always off when the window opens).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CameraSettings {
    /// `pipewire`, `v4l2` or `v4l2:/dev/videoN`.
    pub output: String,
    /// The camera's size; `None`: the source's.
    pub size: Option<(u32, u32)>,
    /// Mirror what the other side sees.
    pub mirror: bool,
}

impl Default for CameraSettings {
    fn default() -> Self {
        Self { output: crate::vcam::CameraOutput::default_for_build().to_string(), size: None, mirror: false }
    }
}

impl CameraSettings {
    /// The camera's options; an output that does not parse is PipeWire's default.
    pub fn options(&self) -> crate::vcam::CameraOptions {
        crate::vcam::CameraOptions {
            output: self.output.parse().unwrap_or_else(|_| crate::vcam::CameraOutput::default_for_build()),
            size: self.size,
            mirror: self.mirror,
            ..Default::default()
        }
    }
}

/// How the record button records.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingSettings {
    pub format: Format,
    pub dir: PathBuf,
    /// H.264 / VP9 quality.
    pub crf: u8,
    /// Also the source video, frame-aligned (e.g. beside a matte).
    pub with_source: bool,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self { format: Format::Mp4, dir: default_recording_dir(), crf: DEFAULT_CRF, with_source: false }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RememberedBackgrounds {
    pub blur_radius_px: u32,
    pub colour: [u8; 3],
    pub image: Option<PathBuf>,
    pub video: Option<PathBuf>,
    pub premultiplied: bool,
}

impl Default for RememberedBackgrounds {
    fn default() -> Self {
        Self {
            blur_radius_px: DEFAULT_BLUR_RADIUS_PX,
            colour: [0, 177, 64],
            image: None,
            video: None,
            premultiplied: false,
        }
    }
}

impl Default for AppSettings {
    fn default() -> Self {
        Self {
            source: SourceChoice::default(),
            model: ModelChoice::default(),
            temporal: TemporalMode::Ofd,
            composite: CompositeSettings { mirror: true, ..CompositeSettings::default() },
            remembered: RememberedBackgrounds::default(),
            show_stats: true,
            snapshot_dir: default_snapshot_dir(),
            recording: RecordingSettings::default(),
            plate: Default::default(),
            camera: CameraSettings::default(),
        }
    }
}

/// `~/Pictures/mattecam`, or `snapshots` beside the working folder when there is no home.
pub fn default_snapshot_dir() -> PathBuf {
    home_folder("Pictures", "snapshots")
}

/// `~/Videos/mattecam`, or `recordings` beside the working folder when there is no home.
pub fn default_recording_dir() -> PathBuf {
    home_folder("Videos", "recordings")
}

fn home_folder(kind: &str, fallback: &str) -> PathBuf {
    std::env::var_os("HOME")
        .filter(|home| !home.is_empty())
        .map_or_else(|| PathBuf::from(fallback), |home| PathBuf::from(home).join(kind).join("mattecam"))
}

impl AppSettings {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("settings serialise")
    }

    /// Settings from what the storage held. Unreadable settings fall back to the defaults, with a notice
    /// for the user; `file_had_content` tells a first run (no notice) from a settings file eframe could
    /// not parse at all.
    pub fn load(stored: Option<&str>, file_had_content: bool) -> (Self, Option<String>) {
        match stored {
            Some(text) => match serde_json::from_str::<Self>(text) {
                Ok(settings) => (settings, None),
                Err(err) => {
                    (Self::default(), Some(format!("Saved settings could not be read ({err}); using the defaults.")))
                }
            },
            None if file_had_content => {
                (Self::default(), Some("The settings file could not be read; using the defaults.".to_string()))
            }
            None => (Self::default(), None),
        }
    }
}
