//! Where captured audio goes in a take, and the take's clock.
//!
//! The microphone's samples are the take's master clock: they are written one after another, and the
//! video's constant-rate slots are placed on the time those samples define (`take_time_s`), so video cannot
//! drift from sound however long the take. Each buffer's capture time (on the monotonic clock the video
//! frames use) only steers two things: where the take's sample 0 is (the start: samples captured before
//! the take are left out, and a first buffer that arrives later is preceded by silence), and where a gap
//! is (a device that stalled or came back after it was lost): a buffer that arrives later than the samples
//! before it account for is preceded by silence, one that overlaps what was written loses its overlap.
//! Smaller differences are capture jitter, and only nudge the mapping.

use std::time::Instant;

/// A buffer later or earlier than the samples before it account for by more than this is a gap (or an
/// overlap); less is jitter. Two ALSA periods at 48 kHz are ~43 ms.
pub const GAP_S: f64 = 0.06;

/// After an overrun, a buffer later than this is preceded by silence for the lost samples.
const LOSS_S: f64 = 0.001;

/// How much of each buffer's timing error moves the mapping (a slow average: jitter cancels, and a device
/// clock that runs fast or slow is followed).
const FOLLOW: f64 = 0.02;

/// What to write for one buffer: `silence_frames` of silence, then the buffer from `skip_frames` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Placement {
    pub silence_frames: u64,
    pub skip_frames: usize,
}

/// The take's audio timeline.
#[derive(Clone, Debug)]
pub struct AudioTimeline {
    rate: f64,
    started: Instant,
    /// Sample frames placed so far (written and silence).
    placed: u64,
    /// Where sample 0 is, in seconds after `started` on the monotonic clock (0 at the start; follows the
    /// device's clock).
    origin_s: f64,
    /// Whether a buffer has reached the take yet.
    begun: bool,
    /// Frames of silence written to fill the start and gaps.
    pub silence_frames: u64,
    /// Gaps filled after the start.
    pub gaps: u64,
    /// Frames left out: captured before the take, or overlapping what was written.
    pub skipped_frames: u64,
}

impl AudioTimeline {
    pub fn new(rate: u32, started: Instant) -> Self {
        Self {
            rate: f64::from(rate),
            started,
            placed: 0,
            origin_s: 0.0,
            begun: false,
            silence_frames: 0,
            gaps: 0,
            skipped_frames: 0,
        }
    }

    /// Seconds of `at` after the take started (negative before).
    fn since_start_s(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.started).as_secs_f64()
            - self.started.saturating_duration_since(at).as_secs_f64()
    }

    /// Places a buffer of `frames` sample frames whose first was captured at `first_at`; `after_loss`:
    /// the device said samples were lost before it (an overrun), so its time is trusted to the millisecond.
    pub fn place(&mut self, first_at: Instant, frames: usize, after_loss: bool) -> Placement {
        let due_s = self.since_start_s(first_at) - self.origin_s;
        let error_s = due_s - self.placed as f64 / self.rate;
        let at_frames = |seconds: f64| (seconds * self.rate).round().max(0.0) as u64;
        let lost = after_loss && error_s > LOSS_S;
        let placement = if !self.begun || error_s.abs() > GAP_S || lost {
            if self.begun && error_s > 0.0 {
                self.gaps += 1;
            }
            if error_s >= 0.0 {
                Placement { silence_frames: at_frames(error_s), skip_frames: 0 }
            } else {
                Placement { silence_frames: 0, skip_frames: at_frames(-error_s).min(frames as u64) as usize }
            }
        } else {
            self.origin_s += error_s * FOLLOW;
            Placement { silence_frames: 0, skip_frames: 0 }
        };
        self.silence_frames += placement.silence_frames;
        self.skipped_frames += placement.skip_frames as u64;
        let written = (frames - placement.skip_frames) as u64;
        self.placed += placement.silence_frames + written;
        // A buffer wholly from before the take leaves the start where it is.
        self.begun |= written > 0;
        placement
    }

    /// Seconds into the take (on the audio's clock) of an instant on the monotonic clock: where a video
    /// frame captured at `at` belongs.
    pub fn take_time_s(&self, at: Instant) -> f64 {
        self.since_start_s(at) - self.origin_s
    }

    /// The mapping's offset, for the video's thread ([`Self::take_time_s`] = seconds since start - this).
    pub fn origin_s(&self) -> f64 {
        self.origin_s
    }

    /// Frames placed so far.
    pub fn placed(&self) -> u64 {
        self.placed
    }

    /// The take ends after `frames` frames: silence to add (positive), or frames to cut (negative).
    pub fn finish(&mut self, frames: u64) -> i64 {
        let change = frames as i64 - self.placed as i64;
        if change > 0 {
            self.silence_frames += change as u64;
            // Silence at the end: the device went quiet (or away) before the take was stopped.
            if self.begun && change as f64 / self.rate > GAP_S {
                self.gaps += 1;
            }
        }
        self.placed = frames;
        change
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const RATE: u32 = 48_000;

    fn at(start: Instant, seconds: f64) -> Instant {
        if seconds >= 0.0 {
            start + Duration::from_secs_f64(seconds)
        } else {
            start - Duration::from_secs_f64(-seconds)
        }
    }

    #[test]
    fn steady_buffers_are_written_back_to_back_despite_jitter() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut timeline = AudioTimeline::new(RATE, start);
        let jitter = [0.0, 0.004, -0.003, 0.006, -0.005];
        for i in 0..1000 {
            let t = i as f64 * 480.0 / 48_000.0 + jitter[i % jitter.len()];
            assert_eq!(
                timeline.place(at(start, t.max(0.0)), 480, false),
                Placement { silence_frames: 0, skip_frames: 0 }
            );
        }
        assert_eq!(timeline.placed(), 480_000);
        assert_eq!((timeline.gaps, timeline.silence_frames), (0, 0));
        // Jitter averages out: a frame captured at 5 s goes at 5 s.
        assert!((timeline.take_time_s(at(start, 5.0)) - 5.0).abs() < 0.002, "{}", timeline.take_time_s(at(start, 5.0)));
    }

    #[test]
    fn the_start_is_where_the_take_started() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut timeline = AudioTimeline::new(RATE, start);
        // Captured 5 ms before the take: those 240 frames are left out.
        assert_eq!(timeline.place(at(start, -0.005), 480, false), Placement { silence_frames: 0, skip_frames: 240 });
        assert_eq!(timeline.placed(), 240);
        let mut late = AudioTimeline::new(RATE, start);
        // The device's first buffer was captured 100 ms into the take: 100 ms of silence before it.
        assert_eq!(late.place(at(start, 0.1), 480, false), Placement { silence_frames: 4800, skip_frames: 0 });
        assert_eq!(late.gaps, 0);
        // A buffer wholly before the take changes nothing.
        let mut early = AudioTimeline::new(RATE, start);
        assert_eq!(early.place(at(start, -1.0), 480, false), Placement { silence_frames: 0, skip_frames: 480 });
        assert_eq!(early.place(at(start, 0.0), 480, false), Placement { silence_frames: 0, skip_frames: 0 });
    }

    #[test]
    fn a_stall_is_filled_with_silence_and_an_overlap_cut() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut timeline = AudioTimeline::new(RATE, start);
        for i in 0..100 {
            timeline.place(at(start, i as f64 * 0.01), 480, false);
        }
        // Nothing for 2 s, then buffers again at their real time.
        assert_eq!(timeline.place(at(start, 3.0), 480, false), Placement { silence_frames: 96_000, skip_frames: 0 });
        assert_eq!(timeline.gaps, 1);
        // A buffer that claims a time already written (the device's clock jumped back) loses the overlap.
        assert_eq!(timeline.place(at(start, 2.91), 480, false), Placement { silence_frames: 0, skip_frames: 480 });
        assert_eq!(timeline.placed(), 48_000 * 3 + 480);
    }

    #[test]
    fn a_device_clock_that_runs_slow_leads_the_video() {
        // 47 990 samples a second of real time: over 10 minutes the device is 125 ms behind the system
        // clock. The samples are all written back to back (no silence, no cuts), and a frame captured at
        // 600 s goes where the samples captured then are.
        let start = Instant::now() + Duration::from_secs(1);
        let mut timeline = AudioTimeline::new(RATE, start);
        let real_rate = 47_990.0;
        let mut frames = 0u64;
        while (frames as f64) < real_rate * 600.0 {
            let placement = timeline.place(at(start, frames as f64 / real_rate), 480, false);
            assert_eq!(placement, Placement { silence_frames: 0, skip_frames: 0 }, "at {frames}");
            frames += 480;
        }
        let video_at_s = timeline.take_time_s(at(start, 600.0));
        let audio_at_s = real_rate * 600.0 / f64::from(RATE);
        assert!((video_at_s - audio_at_s).abs() < 0.005, "video at {video_at_s} s, its sound at {audio_at_s} s");
    }

    #[test]
    fn samples_lost_in_an_overrun_become_silence() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut timeline = AudioTimeline::new(RATE, start);
        for i in 0..100 {
            timeline.place(at(start, i as f64 * 0.01), 480, false);
        }
        // 20 ms lost: within the jitter allowed, but the device said so.
        assert_eq!(timeline.place(at(start, 1.02), 480, true), Placement { silence_frames: 960, skip_frames: 0 });
        let mut unsaid = timeline.clone();
        assert_eq!(unsaid.place(at(start, 1.045), 480, false), Placement { silence_frames: 0, skip_frames: 0 });
    }

    #[test]
    fn finish_pads_or_cuts_to_the_video() {
        let start = Instant::now() + Duration::from_secs(1);
        let mut timeline = AudioTimeline::new(RATE, start);
        timeline.place(at(start, 0.0), 48_000, false);
        assert_eq!(timeline.finish(96_000), 48_000);
        assert_eq!(timeline.gaps, 1);
        assert_eq!(timeline.finish(95_000), -1000);
        assert_eq!(timeline.placed(), 95_000);
    }
}
