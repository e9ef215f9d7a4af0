//! The live engine's plate: captured on request after a countdown (or automatically when nobody has been
//! in view for a second), saved per source and resolution and reloaded next time, and watched for
//! staleness. Runs on the inference thread, which sees every frame and matte.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::frame::{Frame, Matte};
use crate::plate::{DEFAULT_PLATE_FRAMES, Plate, PlateAverager, PlateCheck};

/// Below this mean alpha nobody is in view (a hand at the frame's edge is more).
pub const EMPTY_COVERAGE: f32 = 0.01;
/// How long the view must stay empty before an automatic refresh, and a plate stay stale before the
/// warning.
pub const SETTLE: Duration = Duration::from_secs(1);
/// An automatic refresh at most this often (a plate of an empty room does not go stale in seconds).
const AUTO_REFRESH_INTERVAL: Duration = Duration::from_secs(30);

/// How the window captures plates (persisted).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct PlateSettings {
    /// Seconds to step out of the picture.
    pub countdown_s: u32,
    pub frames: usize,
    /// Plate assistance for MODNet and RVM.
    pub assist: bool,
    /// Refresh the plate when the model sees nobody for a second.
    pub auto_refresh: bool,
}

impl Default for PlateSettings {
    fn default() -> Self {
        Self { countdown_s: 3, frames: DEFAULT_PLATE_FRAMES, assist: true, auto_refresh: false }
    }
}

/// What the window shows about the plate.
#[derive(Clone, Debug, Default)]
pub struct PlateStatus {
    pub phase: PlatePhase,
    /// The plate in use (shown in the panel).
    pub plate: Option<Arc<Plate>>,
    /// Where it is saved.
    pub path: Option<PathBuf>,
    /// The live background has not matched the plate for a while: offer a refresh.
    pub stale: bool,
    /// The model used the plate on the last frame (a plate of this source's size exists and was applied).
    pub in_use: bool,
    /// Share of the background that changed, last frame.
    pub changed_fraction: f32,
    /// Why the last capture or save failed.
    pub error: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq)]
pub enum PlatePhase {
    #[default]
    Idle,
    Countdown {
        until: Instant,
    },
    Capturing {
        taken: usize,
        of: usize,
    },
}

/// Where the app keeps plates unless told otherwise.
pub fn default_plates_dir() -> PathBuf {
    crate::paths::cache_dir().join("plates")
}

/// The inference thread's plate state.
pub struct PlateKeeper {
    /// Where plates are saved and looked for.
    dir: PathBuf,
    /// When the capture starts, its frames, and whether it was automatic.
    capture: Option<(Instant, PlateAverager, bool)>,
    /// (source name, width, height) the current plate belongs to.
    belongs_to: Option<(String, u32, u32)>,
    empty_since: Option<Instant>,
    stale_since: Option<Instant>,
    last_capture: Option<Instant>,
}

/// What the inference thread should do after a frame.
pub enum PlateEvent {
    /// A new plate (captured, or loaded for a new source or size); `None`: there is none for this source.
    Replace(Option<Plate>),
    Nothing,
}

impl PlateKeeper {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir, capture: None, belongs_to: None, empty_since: None, stale_since: None, last_capture: None }
    }

    /// The plate file of a source at a resolution.
    pub fn plate_path(&self, source: &str, width: u32, height: u32) -> PathBuf {
        self.dir.join(Plate::file_name(source, width, height))
    }

    pub fn start_capture(&mut self, countdown: Duration, frames: usize, status: &mut PlateStatus) {
        self.start(countdown, frames, false, status);
    }

    fn start(&mut self, countdown: Duration, frames: usize, automatic: bool, status: &mut PlateStatus) {
        let until = Instant::now() + countdown;
        self.capture = Some((until, PlateAverager::new(frames), automatic));
        status.phase = if countdown.is_zero() {
            PlatePhase::Capturing { taken: 0, of: frames }
        } else {
            PlatePhase::Countdown { until }
        };
        status.error = None;
    }

    pub fn cancel_capture(&mut self, status: &mut PlateStatus) {
        self.capture = None;
        status.phase = PlatePhase::Idle;
    }

    /// Before inference: loads the saved plate when the source or size changed, and feeds a capture.
    pub fn before(&mut self, source: &str, frame: &Frame, status: &mut PlateStatus) -> PlateEvent {
        let key = (source.to_string(), frame.width, frame.height);
        let mut event = PlateEvent::Nothing;
        if self.belongs_to.as_ref() != Some(&key) {
            let path = self.plate_path(source, frame.width, frame.height);
            let plate = Plate::load(&path).ok().filter(|p| p.check_size(frame.width, frame.height).is_ok());
            status.path = plate.as_ref().map(|_| path);
            status.plate = plate.clone().map(Arc::new);
            status.stale = false;
            self.belongs_to = Some(key);
            self.stale_since = None;
            event = PlateEvent::Replace(plate);
        }
        let Some((starts, averager, _)) = &mut self.capture else { return event };
        if Instant::now() < *starts {
            return event;
        }
        averager.push(frame);
        status.phase = PlatePhase::Capturing { taken: averager.frames_taken(), of: averager.frames_wanted() };
        if !averager.is_complete() {
            return event;
        }
        let plate = averager.finish().expect("a complete capture has frames");
        self.capture = None;
        self.last_capture = Some(Instant::now());
        status.phase = PlatePhase::Idle;
        let path = self.plate_path(source, plate.width, plate.height);
        let saved = std::fs::create_dir_all(&self.dir)
            .map_err(|e| e.to_string())
            .and_then(|_| plate.save(&path).map_err(|e| e.to_string()));
        match saved {
            Ok(()) => status.path = Some(path),
            Err(err) => {
                // The plate is used all the same; only keeping it for next time failed.
                status.error = Some(format!("the plate is in use but could not be saved: {err}"));
                status.path = None;
            }
        }
        status.plate = Some(Arc::new(plate.clone()));
        status.stale = false;
        self.stale_since = None;
        PlateEvent::Replace(Some(plate))
    }

    /// After inference: staleness (from what the plate stage saw, `check`), and the automatic refresh when
    /// nobody is in view.
    pub fn after(
        &mut self,
        matte: &Matte,
        check: Option<PlateCheck>,
        settings: &PlateSettings,
        status: &mut PlateStatus,
    ) {
        let now = Instant::now();
        status.in_use = check.is_some();
        let coverage = match &check {
            Some(check) => check.coverage,
            None => matte.alpha.iter().sum::<f32>() / matte.alpha.len().max(1) as f32,
        };
        if let Some(check) = &check {
            status.changed_fraction = check.staleness.changed_fraction;
            if check.staleness.is_stale() {
                let since = *self.stale_since.get_or_insert(now);
                status.stale = now.duration_since(since) >= SETTLE;
            } else {
                self.stale_since = None;
                status.stale = false;
            }
        }
        if coverage < EMPTY_COVERAGE {
            let since = *self.empty_since.get_or_insert(now);
            let due = self.last_capture.is_none_or(|at| now.duration_since(at) >= AUTO_REFRESH_INTERVAL);
            if settings.auto_refresh && self.capture.is_none() && due && now.duration_since(since) >= SETTLE {
                self.start(Duration::ZERO, settings.frames, true, status);
            }
        } else {
            self.empty_since = None;
            // Someone walked in during an automatic capture: it would catch them, so it stops.
            if self.capture.as_ref().is_some_and(|(_, _, automatic)| *automatic) && coverage > 4.0 * EMPTY_COVERAGE {
                self.cancel_capture(status);
            }
        }
    }
}
