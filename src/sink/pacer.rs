//! Constant frame rate from timestamps: where each frame goes on a fixed-rate timeline.
//!
//! A camera's frames arrive with jitter, and a model slower than the camera leaves gaps. Editors and
//! players want a constant rate, and a 10-second take must play 10 seconds: each frame is placed at the
//! slot its timestamp falls in, a gap is filled by repeating the frame before it, and a frame that would
//! push the file more than one frame ahead of real time is left out (counted).

/// Where one frame goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// Write the previous frame `repeat_previous` more times, then this one. For the first frame of a
    /// take that started before it, `repeat_previous` counts the slots before it, which this frame fills.
    Write { repeat_previous: u64 },
    /// The file is already a frame ahead of this frame's time, or the frame is from before the take
    /// started: leave it out.
    Skip,
}

#[derive(Clone, Debug)]
pub struct FramePacer {
    fps: f64,
    start_ms: Option<f64>,
    /// Frames on the timeline so far (written and repeated).
    slots_filled: u64,
    pub frames_repeated: u64,
    pub frames_skipped: u64,
}

impl FramePacer {
    /// A timeline that starts with its first frame (a file: the first frame is the start).
    pub fn new(fps: f64) -> Self {
        assert!(fps > 0.0, "frame rate must be positive");
        Self { fps, start_ms: None, slots_filled: 0, frames_repeated: 0, frames_skipped: 0 }
    }

    /// A timeline that starts at `start_ms` (a live take: when the user pressed record); frames from before
    /// are left out, and the first frame also fills the time between the start and itself.
    pub fn starting_at(fps: f64, start_ms: f64) -> Self {
        Self { start_ms: Some(start_ms), ..Self::new(fps) }
    }

    pub fn fps(&self) -> f64 {
        self.fps
    }

    /// Places a frame taken at `time_ms` (any clock, as long as it only moves forward).
    pub fn place(&mut self, time_ms: f64) -> Placement {
        let start_ms = *self.start_ms.get_or_insert(time_ms);
        let slot = ((time_ms - start_ms) * self.fps / 1000.0).round();
        if slot < 0.0 || (slot as u64) + 1 < self.slots_filled {
            self.frames_skipped += 1;
            return Placement::Skip;
        }
        let repeat_previous = (slot as u64).saturating_sub(self.slots_filled);
        self.frames_repeated += repeat_previous;
        self.slots_filled += repeat_previous + 1;
        Placement::Write { repeat_previous }
    }

    /// At the end of the take (`end_ms` on the same clock): how many times to repeat the last frame so the
    /// file lasts as long as the take.
    pub fn finish(&mut self, end_ms: f64) -> u64 {
        let Some(start_ms) = self.start_ms else {
            return 0;
        };
        let slots = ((end_ms - start_ms) * self.fps / 1000.0).round().max(0.0) as u64;
        let repeat = slots.saturating_sub(self.slots_filled);
        self.frames_repeated += repeat;
        self.slots_filled += repeat;
        repeat
    }

    /// Frames on the timeline so far.
    pub fn slots_filled(&self) -> u64 {
        self.slots_filled
    }

    /// Length of the file so far, in seconds.
    pub fn duration_s(&self) -> f64 {
        self.slots_filled as f64 / self.fps
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regular_frames_are_written_once() {
        let mut pacer = FramePacer::new(30.0);
        for i in 0..90 {
            assert_eq!(pacer.place(1000.0 + i as f64 * 1000.0 / 30.0), Placement::Write { repeat_previous: 0 });
        }
        assert_eq!(pacer.finish(1000.0 + 3000.0), 0);
        assert_eq!(pacer.slots_filled(), 90);
    }

    #[test]
    fn jitter_keeps_the_count_and_gaps_are_filled() {
        let mut pacer = FramePacer::new(30.0);
        let jitter = [0.0, 9.0, -8.0, 5.0, -12.0, 14.0];
        let mut written = 0;
        for i in 0..300u64 {
            // A gap of 15 frames: a model stall.
            if (100..115).contains(&i) {
                continue;
            }
            let t = i as f64 * 1000.0 / 30.0 + jitter[i as usize % jitter.len()];
            assert!(matches!(pacer.place(t), Placement::Write { .. }));
            written += 1;
        }
        pacer.finish(10_000.0);
        assert_eq!(written, 285);
        assert_eq!(pacer.frames_repeated, 15);
        assert_eq!(pacer.slots_filled(), 300);
        assert!((pacer.duration_s() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_live_take_lasts_from_start_to_stop() {
        let mut pacer = FramePacer::starting_at(30.0, 5_000.0);
        // Captured before the user pressed record: not part of the take.
        assert_eq!(pacer.place(4_900.0), Placement::Skip);
        // The first frame came 100 ms in: it also fills the three slots before it.
        assert_eq!(pacer.place(5_100.0), Placement::Write { repeat_previous: 3 });
        // 20 frames a second on a 30 fps timeline: every other frame is held for two slots.
        for i in 1..=50 {
            assert!(matches!(pacer.place(5_100.0 + i as f64 * 50.0), Placement::Write { repeat_previous: 0 | 1 }));
        }
        pacer.finish(8_000.0);
        assert!((pacer.duration_s() - 3.0).abs() <= 1.0 / 30.0 + 1e-9, "{}", pacer.duration_s());
        assert_eq!(pacer.frames_skipped, 1);
    }

    #[test]
    fn a_source_faster_than_the_rate_stays_within_a_frame_of_real_time() {
        let mut pacer = FramePacer::new(30.0);
        // 33 frames a second on a 30 fps timeline for 10 s.
        for i in 0..330u64 {
            let t = i as f64 * 1000.0 / 33.0;
            if let Placement::Write { .. } = pacer.place(t) {
                // Where the frame lands in the file: at most one slot after the slot of its time.
                let position = pacer.slots_filled() - 1;
                let slot = (t * 30.0 / 1000.0).round() as u64;
                assert!(position <= slot + 1, "frame {i} (slot {slot}) written at {position}");
            }
        }
        pacer.finish(10_000.0);
        assert!((pacer.duration_s() - 10.0).abs() <= 1.0 / 30.0 + 1e-9, "{}", pacer.duration_s());
        assert!(pacer.frames_skipped > 0 && pacer.frames_skipped <= 31, "{}", pacer.frames_skipped);
    }
}
