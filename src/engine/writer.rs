//! A file run's sinks, on their own thread ("sink"): every frame, in order (the compositor waits for
//! them); from a live source (a camera), placed on a constant-rate timeline by capture time. They are
//! committed only when every stage completed: the engine decides after it has joined the stages before.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use super::fanout::{Received, Subscription};
use super::{EngineError, Shared};
use crate::frame::Output;
use crate::sink::{FramePacer, Placement, Sink, SinkFrame};

const POLL: Duration = Duration::from_millis(50);

pub struct SinkWriter {
    sinks: Vec<Box<dyn Sink>>,
}

impl SinkWriter {
    pub fn new(sinks: Vec<Box<dyn Sink>>) -> Self {
        Self { sinks }
    }

    /// Writes until the stream ends, then commits or abandons as `commit` says. `pacer_fps`: a live
    /// source's rate, for the constant-rate timeline.
    pub(super) fn run(
        mut self,
        shared: &Shared,
        frames: &Subscription,
        pacer_fps: Option<f64>,
        commit: &Receiver<bool>,
    ) -> Result<(), EngineError> {
        let mut pacer = pacer_fps.map(|fps| FramePacer::new(fps.max(1.0)));
        let started = Instant::now();
        let since_start_ms = |at: Instant| at.saturating_duration_since(started).as_secs_f64() * 1000.0;
        // The frame before, kept for the repeats that fill a live source's gaps.
        let mut last: Option<Arc<Output>> = None;
        loop {
            let output = match frames.recv_timeout(POLL) {
                Received::Value(output) => output,
                Received::Empty if shared.failed() => return Ok(()),
                Received::Empty => continue,
                Received::Closed => break,
            };
            if shared.failed() {
                return Ok(());
            }
            let write_started = Instant::now();
            let repeat_previous = match pacer.as_mut().map(|p| p.place(since_start_ms(output.frame.captured_at))) {
                Some(Placement::Skip) => continue,
                Some(Placement::Write { repeat_previous }) => repeat_previous,
                None => 0,
            };
            if let Some(previous) = &last {
                self.write(previous, repeat_previous)?;
            }
            self.write(&output, 1)?;
            shared.stats.record_written(write_started.elapsed().as_secs_f64() * 1000.0);
            last = Some(output);
        }
        // Only a run that every stage completed is committed; otherwise the sinks drop and remove their files.
        shared.writer_waiting.store(true, std::sync::atomic::Ordering::SeqCst);
        if !commit.recv().unwrap_or(false) {
            return Ok(());
        }
        // A live take lasts until it was stopped, whatever the model's rate.
        if let (Some(pacer), Some(previous)) = (pacer.as_mut(), &last) {
            let repeat = pacer.finish(since_start_ms(Instant::now()));
            self.write(previous, repeat)?;
        }
        for sink in self.sinks.iter_mut() {
            sink.finish()?;
        }
        Ok(())
    }

    fn write(&mut self, output: &Output, times: u64) -> Result<(), EngineError> {
        for sink in self.sinks.iter_mut() {
            for _ in 0..times {
                sink.write(SinkFrame::of(output))?;
            }
        }
        Ok(())
    }
}
