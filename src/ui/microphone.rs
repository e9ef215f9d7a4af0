//! The window's microphone: the capture the settings ask for (opened and closed off the UI thread), the
//! list of inputs (scanned on a thread), and the level the meter shows.

use std::sync::Arc;

use crossbeam_channel::{Receiver, bounded};

use crate::audio::{AudioChoice, AudioInput, AudioSettings, AudioStatus};

/// The meter falls by this factor each drawn frame (a peak meter's release).
const METER_RELEASE: f32 = 0.85;

#[derive(Default)]
pub struct Microphone {
    input: Option<Arc<AudioInput>>,
    /// The inputs' names, once scanned.
    pub inputs: Vec<String>,
    scan: Option<Receiver<Vec<String>>>,
    /// The meter's level (0..1).
    level: f32,
}

impl Microphone {
    /// Starts the capture `settings` ask for, and a scan of the inputs.
    pub fn start(settings: &AudioSettings) -> Self {
        let mut microphone = Self::default();
        microphone.open(settings);
        microphone.scan();
        microphone
    }

    /// The capture, when one is on (a take records from it).
    pub fn input(&self) -> Option<Arc<AudioInput>> {
        self.input.clone()
    }

    pub fn status(&self) -> Option<AudioStatus> {
        self.input.as_ref().map(|input| input.status())
    }

    pub fn scanning(&self) -> bool {
        self.scan.is_some()
    }

    /// Follows the settings: another input is opened (the old one closed in the background); mute and gain
    /// apply at once.
    pub fn apply(&mut self, settings: &AudioSettings) {
        if self.input.as_ref().map(|input| input.choice()) != Some(&settings.input) {
            self.open(settings);
        }
        if let Some(input) = &self.input {
            input.set_muted(settings.muted);
            input.set_gain_db(settings.gain_db);
        }
    }

    fn open(&mut self, settings: &AudioSettings) {
        if let Some(old) = self.input.take() {
            close_in_background(old);
        }
        if settings.input == AudioChoice::None {
            return;
        }
        match AudioInput::start(settings.input.clone()) {
            Ok(input) => {
                input.set_muted(settings.muted);
                input.set_gain_db(settings.gain_db);
                self.input = Some(Arc::new(input));
            }
            Err(err) => tracing::warn!("{err}"),
        }
    }

    /// Looks for inputs again (on a thread: ALSA's enumeration takes a moment).
    pub fn scan(&mut self) {
        if self.scan.is_some() {
            return;
        }
        let (tx, rx) = bounded(1);
        let spawned = std::thread::Builder::new().name("audio-scan".into()).spawn(move || {
            let _ = tx.send(crate::audio::input_devices());
        });
        if spawned.is_ok() {
            self.scan = Some(rx);
        }
    }

    /// Once a drawn frame: the scan's answer, and the meter's level.
    pub fn poll(&mut self) -> f32 {
        if let Some(scan) = &self.scan
            && let Ok(inputs) = scan.try_recv()
        {
            self.inputs = inputs;
            self.scan = None;
        }
        let peak = self.input.as_ref().map_or(0.0, |input| input.take_peak());
        self.level = peak.max(self.level * METER_RELEASE);
        self.level
    }
}

/// Closing a device can take a moment (its thread joins); the window does not wait.
fn close_in_background(input: Arc<AudioInput>) {
    let spawned = std::thread::Builder::new().name("audio-close".into()).spawn(move || drop(input));
    if let Err(err) = spawned {
        tracing::warn!("closing the microphone: {err}");
    }
}
