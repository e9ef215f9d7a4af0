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
    /// The microphone recordings take their sound from, its mute and gain.
    pub audio: crate::audio::AudioSettings,
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
    /// Memory the recorder's queue may hold, in MiB (`record --queue-mib`).
    pub queue_mib: u32,
}

impl Default for RecordingSettings {
    fn default() -> Self {
        Self {
            format: Format::Mp4,
            dir: default_recording_dir(),
            crf: DEFAULT_CRF,
            with_source: false,
            queue_mib: (crate::record::DEFAULT_QUEUE_BYTES >> 20) as u32,
        }
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
            audio: crate::audio::AudioSettings::default(),
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

    /// Puts every value a settings file could hold out of bounds back to its default; says which.
    pub fn bound(&mut self) -> Vec<String> {
        use crate::limits::{self, MAX_PLATE_FRAMES};
        let defaults = Self::default();
        let mut fixed = Vec::new();
        let mut check = |ok: Result<(), String>, reset: &mut dyn FnMut()| {
            if let Err(reason) = ok {
                fixed.push(reason);
                reset();
            }
        };
        if let SourceChoice::Synthetic { width, height, fps } = self.source {
            let ok = limits::check_size("the synthetic source's size", width, height)
                .and(limits::check_fps("the synthetic source's rate", fps))
                .map(drop)
                .map_err(|e| e.to_string());
            check(ok, &mut || self.source = defaults.source.clone());
        }
        if let SourceChoice::Camera { mode: Some(mode), .. } = &self.source {
            let ok = limits::check_size("the camera mode", mode.width, mode.height)
                .and(limits::check_fps("the camera mode's rate", f64::from(mode.fps)))
                .map(drop)
                .map_err(|e| e.to_string());
            check(ok, &mut || self.source = defaults.source.clone());
        }
        if let Some((w, h)) = self.camera.size {
            let ok = limits::check_size("the virtual camera's size", w, h).map(drop).map_err(|e| e.to_string());
            check(ok, &mut || self.camera.size = None);
        }
        let frames = self.plate.frames;
        let ok = limits::check_count("plate frames", frames, MAX_PLATE_FRAMES).map(drop).map_err(|e| e.to_string());
        check(ok, &mut || self.plate.frames = defaults.plate.frames);
        let countdown = self.plate.countdown_s;
        let ok =
            (countdown <= 60).then_some(()).ok_or(format!("the plate countdown must be 0 to 60 s, not {countdown}"));
        check(ok, &mut || self.plate.countdown_s = defaults.plate.countdown_s);
        let mib = self.recording.queue_mib;
        let ok = (1..=1 << 20)
            .contains(&mib)
            .then_some(())
            .ok_or(format!("the recording queue must be 1 to 1048576 MiB, not {mib}"));
        check(ok, &mut || self.recording.queue_mib = defaults.recording.queue_mib);
        let crf = self.recording.crf;
        let ok = (crf <= 51).then_some(()).ok_or(format!("the recording quality (CRF) must be 0 to 51, not {crf}"));
        check(ok, &mut || self.recording.crf = defaults.recording.crf);
        let (ref_size, ratio) = (self.model.ref_size, self.model.downsample_ratio);
        let ok = (64..=2048)
            .contains(&ref_size)
            .then_some(())
            .ok_or(format!("MODNet's size must be 64 to 2048, not {ref_size}"));
        check(ok, &mut || self.model.ref_size = defaults.model.ref_size);
        let ok = (ratio.is_finite() && (0.0..=1.0).contains(&ratio))
            .then_some(())
            .ok_or(format!("RVM's downsample ratio must be 0 to 1, not {ratio}"));
        check(ok, &mut || self.model.downsample_ratio = defaults.model.downsample_ratio);
        let threads = self.model.threads;
        let ok = (threads <= 1024).then_some(()).ok_or(format!("model threads must be 0 to 1024, not {threads}"));
        check(ok, &mut || self.model.threads = defaults.model.threads);
        let edges = self.composite.edges;
        let ok = (edges.clamped() == edges).then_some(()).ok_or("the edge controls were out of range".to_string());
        check(ok, &mut || self.composite.edges = edges.clamped());
        fixed.extend(self.audio.bound());
        fixed
    }

    /// Settings from what the storage held. Unreadable settings fall back to the defaults, with a notice
    /// for the user; `file_had_content` tells a first run (no notice) from a settings file eframe could
    /// not parse at all.
    pub fn load(stored: Option<&str>, file_had_content: bool) -> (Self, Option<String>) {
        match stored {
            Some(text) => match serde_json::from_str::<Self>(text) {
                Ok(mut settings) => {
                    let fixed = settings.bound();
                    for reason in &fixed {
                        tracing::warn!("saved settings: {reason}; using the default");
                    }
                    // One line in the window: what was reset (the bounds are in the log).
                    let what: Vec<&str> =
                        fixed.iter().map(|reason| reason.split(" must be").next().unwrap_or(reason)).collect();
                    let notice = (!what.is_empty()).then(|| {
                        format!("Saved settings out of range were reset to the defaults: {}.", what.join(", "))
                    });
                    (settings, notice)
                }
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
