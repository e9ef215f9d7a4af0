//! Sound: the microphone captured on a thread of its own ("audio-capture"), timestamped on the clock the
//! video frames use, for the level meter and for recordings (`record::audio` places it in a take).

pub mod capture;
pub mod timeline;
pub mod wav;

use serde::{Deserialize, Serialize};

pub use capture::{AudioChunk, AudioInput, AudioState, AudioStatus, input_devices};
pub use timeline::AudioTimeline;

/// Which microphone: as `--audio default|none|NAME` and the window's picker.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AudioChoice {
    /// No sound.
    None,
    /// The system's default input (on PipeWire and PulseAudio desktops, the one chosen there).
    #[default]
    Default,
    /// An input by the name `mattecam sources` lists.
    Named(String),
}

impl std::str::FromStr for AudioChoice {
    type Err = std::convert::Infallible;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "none" => Self::None,
            "default" => Self::Default,
            name => Self::Named(name.to_string()),
        })
    }
}

impl std::fmt::Display for AudioChoice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::None => f.write_str("none"),
            Self::Default => f.write_str("default"),
            Self::Named(name) => f.write_str(name),
        }
    }
}

/// The window's sound settings, saved with the others.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AudioSettings {
    pub input: AudioChoice,
    pub muted: bool,
    /// Gain trim, in dB.
    pub gain_db: f32,
}

/// The gain trim's range, in dB.
pub const GAIN_RANGE_DB: std::ops::RangeInclusive<f32> = -24.0..=24.0;

impl Default for AudioSettings {
    fn default() -> Self {
        Self { input: AudioChoice::Default, muted: false, gain_db: 0.0 }
    }
}

impl AudioSettings {
    /// Out-of-range values (a hand-edited settings file) get their default; says what was reset.
    pub fn bound(&mut self) -> Vec<String> {
        if self.gain_db.is_finite() && GAIN_RANGE_DB.contains(&self.gain_db) {
            return Vec::new();
        }
        let was = self.gain_db;
        self.gain_db = 0.0;
        vec![format!("audio gain {was} dB (allowed {}..{} dB)", GAIN_RANGE_DB.start(), GAIN_RANGE_DB.end())]
    }
}

/// Which codec a format's sound is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AudioCodec {
    Aac,
    Pcm24,
    Opus,
}

impl AudioCodec {
    /// ffmpeg's output arguments for a track from a 24-bit WAV at `rate`.
    pub fn ffmpeg_args(self, rate: u32) -> Vec<String> {
        let args: &[&str] = match self {
            Self::Aac => &["-c:a", "aac", "-b:a", "192k"],
            Self::Pcm24 => &["-c:a", "pcm_s24le"],
            Self::Opus => &["-c:a", "libopus", "-b:a", "128k"],
        };
        let mut args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        // Opus codes 48 kHz (and a few lower rates); anything else is resampled.
        if self == Self::Opus && ![48_000, 24_000, 16_000, 12_000, 8_000].contains(&rate) {
            args.extend(["-ar".into(), "48000".into()]);
        }
        args
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Aac => "aac",
            Self::Pcm24 => "pcm_s24le",
            Self::Opus => "opus",
        }
    }
}

/// Decibels to a linear gain.
pub fn db_to_gain(db: f32) -> f32 {
    10f32.powf(db / 20.0)
}

/// A linear level to dBFS (silence: -inf).
pub fn level_dbfs(level: f32) -> f32 {
    20.0 * level.max(1e-10).log10()
}
