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
        frames: Subscription,
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
                Received::Empty if shared.failed() => return self.abandon(shared, frames, commit),
                Received::Empty => continue,
                Received::Closed => break,
            };
            if shared.failed() {
                return self.abandon(shared, frames, commit);
            }
            super::stage::test_panic("sink", output.frame.seq);
            let write_started = Instant::now();
            let repeat_previous = match pacer.as_mut().map(|p| p.place(since_start_ms(output.frame.captured_at))) {
                Some(Placement::Skip) => continue,
                Some(Placement::Write { repeat_previous }) => repeat_previous,
                None => 0,
            };
            let written = match &last {
                Some(previous) => self.write(previous, repeat_previous).and_then(|()| self.write(&output, 1)),
                None => self.write(&output, 1),
            };
            if let Err(err) = written {
                shared.fail(err);
                return self.abandon(shared, frames, commit);
            }
            shared.stats.record_written(write_started.elapsed().as_secs_f64() * 1000.0);
            last = Some(output);
        }
        // Only a run that every stage completed is committed.
        if !self.decision(shared, commit) {
            return self.abandon(shared, frames, commit);
        }
        // A live take lasts until it was stopped, whatever the model's rate.
        if let (Some(pacer), Some(previous)) = (pacer.as_mut(), &last) {
            let repeat = pacer.finish(since_start_ms(Instant::now()));
            if let Err(err) = self.write(previous, repeat) {
                shared.fail(err);
                return self.abandon(shared, frames, commit);
            }
        }
        let mut first_error = None;
        for sink in self.sinks.iter_mut() {
            if let Err(err) = sink.finish() {
                first_error.get_or_insert(err);
            }
        }
        first_error.map_or(Ok(()), |err| Err(err.into()))
    }

    fn write(&mut self, output: &Output, times: u64) -> Result<(), EngineError> {
        for index in 0..self.sinks.len() {
            for _ in 0..times {
                if let Err(err) = self.sinks[index].write(SinkFrame::of(output)) {
                    // That sink kept what it could and said so; the others keep theirs when the run ends.
                    self.sinks.remove(index);
                    return Err(err.into());
                }
            }
        }
        Ok(())
    }

    /// Waits until the engine has joined every stage before the sinks: whether the run completed.
    fn decision(&self, shared: &Shared, commit: &Receiver<bool>) -> bool {
        shared.writer_waiting.store(true, std::sync::atomic::Ordering::SeqCst);
        commit.recv().unwrap_or(false)
    }

    /// The run failed or was cancelled: nothing reaches a final name. After a failure, what was written is
    /// kept as `NAME.incomplete.EXT` (hours of work must not vanish with one bad frame); a cancelled run's
    /// files are removed.
    fn abandon(mut self, shared: &Shared, frames: Subscription, commit: &Receiver<bool>) -> Result<(), EngineError> {
        // Let go of the frames first: the compositor may be waiting for room in this queue.
        drop(frames);
        if !shared.writer_waiting.load(std::sync::atomic::Ordering::SeqCst) {
            self.decision(shared, commit);
        }
        if shared.cancelled() {
            return Ok(());
        }
        for sink in self.sinks.iter_mut() {
            if let Some(kept) = sink.keep_incomplete() {
                shared.kept.lock().expect("kept lock").push(kept);
            }
        }
        Ok(())
    }
}
