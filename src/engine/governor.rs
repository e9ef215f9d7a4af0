//! "Hold frame rate": steps the model's work down when inference cannot keep up with the target rate, and
//! back up when there is room. A pure state machine fed one cost per matted frame, so it is tested
//! without clocks; the infer stage applies the level it picks.
//!
//! Levels, best first: the model's own resolution steps (RVM's downsample ratio, MODNet's inference size),
//! then its INT8 file (when it runs float on a CPU and setup made one), then matting every second frame
//! (the composite reuses the latest matte). Down is quick (a few frames
//! over budget, straight to the first level predicted to fit); up is slow (seconds of room, predicted
//! with a margin) and waits longer after each step up that had to be undone, so a steady load settles.

use crate::infer::{ModelKind, Work};

/// The share of a frame's interval inference may take: the rest is left to the other stages.
const HEADROOM: f64 = 0.9;
/// A step up must be predicted to take at most this share of the budget.
const UP_MARGIN: f64 = 0.75;
/// Frames over budget in a row before stepping down.
const DOWN_FRAMES: u32 = 3;
/// Frames ignored after a change (a session reshaping its tensors, a recurrent state starting over).
const SETTLE_FRAMES: u32 = 2;
/// Seconds of room before the first step up; doubled by each step up that had to be undone.
const UP_AFTER_S: f64 = 3.0;
const UP_AFTER_MAX_S: f64 = 48.0;
/// Weight of a new cost in the running average.
const EMA_WEIGHT: f64 = 0.3;
/// What INT8 is assumed to cost relative to float (MODNet measured 0.57 here); only predictions use it.
const INT8_COST: f64 = 0.6;

/// RVM's downsample ratios and MODNet's inference sizes the governor steps through.
const RVM_RATIOS: [f32; 5] = [0.5, 0.375, 0.25, 0.1875, 0.125];
const MODNET_SIZES: [u32; 5] = [512, 448, 384, 320, 256];

/// One rung of the ladder.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Level {
    pub work: Work,
    /// Run the model's INT8 file.
    pub int8: bool,
    /// Matte every second frame.
    pub skip: bool,
}

impl Level {
    /// Cost of a shown frame relative to the first level.
    fn cost(&self) -> f64 {
        let precision = if self.int8 { INT8_COST } else { 1.0 };
        f64::from(self.work.cost_fraction) * precision * if self.skip { 0.5 } else { 1.0 }
    }

    pub fn label(&self, kind: ModelKind) -> String {
        let base = match (kind, self.work.ref_size, self.work.downsample_ratio) {
            (ModelKind::Modnet, Some(size), _) => format!("{size} px"),
            (ModelKind::Rvm, _, Some(ratio)) => format!("ratio {ratio}"),
            _ => "full".to_string(),
        };
        let base = if self.int8 { format!("{base}, int8") } else { base };
        if self.skip { format!("{base}, every 2nd frame") } else { base }
    }
}

/// The levels for `kind`, starting from what the user chose (`ref_size` for MODNet, `ratio` for RVM, the
/// ratio the model picks when `None`); `int8_step`: the model runs float and may switch to its INT8 file.
pub fn ladder(kind: ModelKind, ref_size: u32, ratio: Option<f32>, frame: (u32, u32), int8_step: bool) -> Vec<Level> {
    let mut levels: Vec<Work> = match kind {
        ModelKind::Modnet => {
            let first = ref_size.max(32);
            std::iter::once(first)
                .chain(MODNET_SIZES.into_iter().filter(|&s| s < first))
                .map(|s| {
                    let fraction = (f64::from(s) / f64::from(first)).powi(2) as f32;
                    Work { ref_size: Some(s), downsample_ratio: None, cost_fraction: fraction }
                })
                .collect()
        }
        ModelKind::Rvm => {
            let first = ratio.unwrap_or_else(|| crate::infer::rvm::auto_downsample_ratio(frame.0, frame.1));
            std::iter::once(first)
                .chain(RVM_RATIOS.into_iter().filter(|&r| r < first - 1e-4))
                .map(|r| Work { ref_size: None, downsample_ratio: Some(r), cost_fraction: (r / first).powi(2) })
                .collect()
        }
        ModelKind::Bgmv2 => vec![Work::default()],
    };
    if levels.is_empty() {
        levels.push(Work::default());
    }
    let last = *levels.last().expect("at least one level");
    let mut ladder: Vec<Level> = levels.into_iter().map(|work| Level { work, int8: false, skip: false }).collect();
    if int8_step {
        ladder.push(Level { work: last, int8: true, skip: false });
    }
    ladder.push(Level { work: last, int8: int8_step, skip: true });
    ladder
}

/// What the governor is doing, for the stats.
#[derive(Clone, Debug, PartialEq)]
pub struct GovernorStatus {
    pub target_fps: f64,
    /// Index into the ladder: 0 is the user's choice.
    pub level: usize,
    pub levels: usize,
    pub label: String,
    /// Times it stepped down and up since the model was loaded.
    pub steps_down: u64,
    pub steps_up: u64,
}

pub struct Governor {
    levels: Vec<Level>,
    current: usize,
    budget_ms: f64,
    fps: f64,
    ema_ms: Option<f64>,
    settle: u32,
    over: u32,
    room: u32,
    up_after_frames: u32,
    /// The frame count at the last step up: a step down soon after it means the step up was wrong.
    since_up: Option<u32>,
    pub steps_down: u64,
    pub steps_up: u64,
}

impl Governor {
    pub fn new(levels: Vec<Level>, target_fps: f64) -> Self {
        let fps = target_fps.clamp(crate::limits::MIN_FPS, crate::limits::MAX_FPS);
        Self {
            levels,
            current: 0,
            budget_ms: 1000.0 / fps * HEADROOM,
            fps,
            ema_ms: None,
            settle: SETTLE_FRAMES,
            over: 0,
            room: 0,
            up_after_frames: (UP_AFTER_S * fps).ceil() as u32,
            since_up: None,
            steps_down: 0,
            steps_up: 0,
        }
    }

    pub fn level(&self) -> &Level {
        &self.levels[self.current]
    }

    pub fn index(&self) -> usize {
        self.current
    }

    pub fn target_fps(&self) -> f64 {
        self.fps
    }

    /// Takes the cost of one matted frame (the infer stage's time for it); returns the new level when it
    /// changed.
    pub fn observe(&mut self, infer_ms: f64) -> Option<Level> {
        if self.settle > 0 {
            self.settle -= 1;
            return None;
        }
        if let Some(frames) = self.since_up.as_mut() {
            *frames += 1;
        }
        // A shown frame's cost: with skipping, one matting serves two frames.
        let cost = if self.level().skip { infer_ms * 0.5 } else { infer_ms };
        let ema = self.ema_ms.map_or(cost, |ema| ema + EMA_WEIGHT * (cost - ema));
        self.ema_ms = Some(ema);
        if ema > self.budget_ms {
            self.room = 0;
            self.over += 1;
            if self.over >= DOWN_FRAMES && self.current + 1 < self.levels.len() {
                return Some(self.step_down(ema));
            }
            return None;
        }
        self.over = 0;
        if self.current == 0 {
            return None;
        }
        let predicted = ema * self.levels[self.current - 1].cost() / self.level().cost();
        if predicted <= self.budget_ms * UP_MARGIN {
            self.room += 1;
            if self.room >= self.up_after_frames {
                return Some(self.change(self.current - 1, true));
            }
        } else {
            self.room = 0;
        }
        None
    }

    /// To the first level predicted to fit, at least one down.
    fn step_down(&mut self, ema: f64) -> Level {
        let now = self.level().cost();
        let fits = (self.current + 1..self.levels.len())
            .find(|&i| ema * self.levels[i].cost() / now <= self.budget_ms)
            .unwrap_or(self.levels.len() - 1);
        // Down soon after an up: that step up did not fit; wait longer before the next.
        if self.since_up.is_some_and(|frames| frames < self.up_after_frames.saturating_mul(2)) {
            let max = (UP_AFTER_MAX_S * self.fps).ceil() as u32;
            self.up_after_frames = self.up_after_frames.saturating_mul(2).min(max);
        }
        self.change(fits, false)
    }

    fn change(&mut self, to: usize, up: bool) -> Level {
        self.current = to;
        self.settle = SETTLE_FRAMES;
        self.over = 0;
        self.room = 0;
        self.ema_ms = None;
        if up {
            self.steps_up += 1;
            self.since_up = Some(0);
        } else {
            self.steps_down += 1;
            self.since_up = None;
        }
        *self.level()
    }

    pub fn status(&self, kind: ModelKind) -> GovernorStatus {
        GovernorStatus {
            target_fps: self.fps,
            level: self.current,
            levels: self.levels.len(),
            label: self.level().label(kind),
            steps_down: self.steps_down,
            steps_up: self.steps_up,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rvm() -> Governor {
        // 0.25, 0.1875, 0.125, then skipping: at 25 fps the budget is 36 ms.
        Governor::new(ladder(ModelKind::Rvm, 512, Some(0.25), (1280, 720), false), 25.0)
    }

    /// Feeds `frames` frames whose cost at the full level is `full_ms`, scaled by the current level's work.
    fn run(governor: &mut Governor, full_ms: f64, frames: usize) -> Vec<usize> {
        let mut seen = Vec::new();
        for _ in 0..frames {
            let level = *governor.level();
            governor.observe(full_ms * f64::from(level.work.cost_fraction));
            seen.push(governor.index());
        }
        seen
    }

    #[test]
    fn the_ladder_starts_at_the_users_choice_and_ends_skipping() {
        let levels = ladder(ModelKind::Rvm, 512, Some(0.25), (1280, 720), false);
        let ratios: Vec<_> = levels.iter().map(|l| (l.work.downsample_ratio, l.int8, l.skip)).collect();
        let r = |ratio: f32, skip: bool| (Some(ratio), false, skip);
        assert_eq!(ratios, [r(0.25, false), r(0.1875, false), r(0.125, false), r(0.125, true)]);
        let modnet = ladder(ModelKind::Modnet, 448, None, (1280, 720), true);
        let sizes: Vec<_> = modnet.iter().map(|l| (l.work.ref_size, l.int8, l.skip)).collect();
        let s = |size: u32, int8: bool, skip: bool| (Some(size), int8, skip);
        let expected = [
            s(448, false, false),
            s(384, false, false),
            s(320, false, false),
            s(256, false, false),
            s(256, true, false),
            s(256, true, true),
        ];
        assert_eq!(sizes, expected);
        assert_eq!(modnet[4].label(ModelKind::Modnet), "256 px, int8");
        assert_eq!(ladder(ModelKind::Bgmv2, 512, None, (1280, 720), false).len(), 2);
    }

    #[test]
    fn a_model_that_keeps_up_stays_at_the_first_level() {
        let mut g = rvm();
        assert!(run(&mut g, 20.0, 500).iter().all(|&l| l == 0));
        assert_eq!((g.steps_down, g.steps_up), (0, 0));
    }

    #[test]
    fn overload_steps_down_within_a_few_frames_to_a_level_that_fits() {
        let mut g = rvm();
        run(&mut g, 20.0, 50);
        // 60 ms at 0.25: 0.1875 takes 34 ms (fits 36 ms).
        let seen = run(&mut g, 60.0, 10);
        assert_eq!(g.index(), 1, "{seen:?}");
        assert!(seen.iter().position(|&l| l == 1).unwrap() <= DOWN_FRAMES as usize + 2);
        // 200 ms: even 0.125 (50 ms) does not fit; skipping (25 ms a shown frame) does.
        run(&mut g, 200.0, 20);
        assert_eq!(g.index(), 3);
    }

    #[test]
    fn when_the_load_goes_it_steps_back_up_slowly() {
        let mut g = rvm();
        run(&mut g, 200.0, 30);
        assert_eq!(g.index(), 3);
        let seen = run(&mut g, 20.0, 1000);
        assert_eq!(g.index(), 0, "{seen:?}");
        // Not before three seconds (75 frames) of room at each level.
        let first_up = seen.iter().position(|&l| l < 3).unwrap();
        assert!(first_up >= 75, "{first_up}");
    }

    #[test]
    fn a_steady_load_between_two_levels_settles_without_oscillating() {
        let mut g = rvm();
        // 45 ms at 0.25 does not fit (36 ms); at 0.1875 it takes 25 ms, and the prediction for 0.25 (45 ms)
        // is over the margin, so it never tries to go back.
        let seen = run(&mut g, 45.0, 3000);
        let changes = seen.windows(2).filter(|w| w[0] != w[1]).count();
        assert_eq!(changes, 1, "{:?}", &seen[..40]);
        assert_eq!(g.index(), 1);
    }

    #[test]
    fn a_wrong_prediction_backs_off_so_steps_up_grow_rarer() {
        let mut g = rvm();
        // The first level costs far more than its work predicts (50 ms there, 10 ms one level down, where
        // 0.25 is predicted to take 18 ms): every step up is undone, and each wait is twice the last.
        let mut ups_at = Vec::new();
        for frame in 0..6000 {
            let before = g.steps_up;
            g.observe(if g.index() == 0 { 50.0 } else { 10.0 });
            if g.steps_up > before {
                ups_at.push(frame);
            }
        }
        // 240 s at 25 fps: without backing off, one try every 3 s (80); with it, 3 + 6 + 12 + 24 + 48 + ...
        assert!(ups_at.len() <= 8, "{ups_at:?}");
        let gaps: Vec<_> = ups_at.windows(2).map(|w| w[1] - w[0]).collect();
        assert!(gaps.windows(2).all(|g| g[1] >= g[0]), "{gaps:?}");
    }
}
