//! The source stage: reads frames and hands them to inference. A live source is played by
//! [`LiveFeed`] (paced, looped, retried) and can be switched while running; a file run reads every frame.

use std::time::{Duration, Instant};

use super::link::LinkOut;
use super::{EngineError, Shared, SourceInput, SourceState};
use crate::frame::Frame;
use crate::source::live::{FeedEvent, LiveFeed, sleep_unless};

/// How often a failed live source looks for a new choice.
const IDLE_POLL: Duration = Duration::from_millis(50);

pub fn run(
    shared: &Shared,
    input: SourceInput,
    out: LinkOut<Frame>,
    max_frames: Option<u64>,
) -> Result<(), EngineError> {
    match input {
        SourceInput::File(mut source) => {
            let live = source.info().live;
            let mut read = 0u64;
            while !shared.should_stop() && max_frames.is_none_or(|max| read < max) {
                let buffer = shared.spent_frames.1.try_recv().unwrap_or_default();
                let started = Instant::now();
                let Some(frame) = source.next_frame(buffer)? else { break };
                super::stage::test_panic("source", read);
                read += 1;
                shared.stats.record_read(started.elapsed().as_secs_f64() * 1000.0, live.then_some(frame.captured_at));
                if !hand_on(shared, &out, frame) {
                    break;
                }
            }
            shared.update_status(|status| status.source_state = SourceState::Ended);
            Ok(())
        }
        SourceInput::Live(choice) => {
            let mut feed = feed_for(&choice);
            let mut read = 0u64;
            while !shared.should_stop() && max_frames.is_none_or(|max| read < max) {
                if pause_while_unwatched(shared) {
                    continue;
                }
                if let Some(choice) = shared.source_choice.take_timeout(Duration::ZERO) {
                    feed = feed_for(&choice);
                }
                let stopping = || shared.should_stop() || shared.source_choice.is_full();
                let buffer = shared.spent_frames.1.try_recv().unwrap_or_default();
                let started = Instant::now();
                let mut events = |event: FeedEvent| report(shared, event);
                match feed.next(buffer, &stopping, &mut events) {
                    Some(frame) => {
                        super::stage::test_panic("source", read);
                        read += 1;
                        shared.stats.record_read(started.elapsed().as_secs_f64() * 1000.0, Some(frame.captured_at));
                        if !hand_on(shared, &out, frame) {
                            break;
                        }
                    }
                    // Stopping, a new choice waiting, or a file that failed: wait for another choice.
                    None => sleep_unless(IDLE_POLL, &stopping),
                }
            }
            Ok(())
        }
    }
}

/// While every consumer is idle (a virtual camera nobody has open, and no window or recording), nothing is
/// read or matted. True when it paused: the caller looks at its inputs again before reading.
fn pause_while_unwatched(shared: &Shared) -> bool {
    let epoch = shared.fanout.watch_epoch();
    if !shared.fanout.unwatched() {
        shared.stats.set_paused(false);
        return false;
    }
    shared.stats.set_paused(true);
    shared.fanout.wait_for_watchers(epoch, IDLE_POLL);
    true
}

fn feed_for(choice: &super::SourceChoice) -> LiveFeed {
    let opener = choice.clone();
    LiveFeed::new(Box::new(move || opener.open()), choice.is_live(), choice.is_still())
}

fn report(shared: &Shared, event: FeedEvent) {
    // A new choice is waiting: what the old source did no longer matters.
    if shared.source_choice.is_full() {
        return;
    }
    shared.update_status(|status| match event {
        FeedEvent::Opened(info) => {
            status.source_state = SourceState::Running;
            status.source_info = Some(info);
        }
        FeedEvent::Lost { reason, retry_at } => status.source_state = SourceState::Lost { reason, retry_at },
        FeedEvent::Failed(reason) => status.source_state = SourceState::Failed(reason),
    });
}

/// Hands a frame to inference; a stale frame it replaced gives its buffer back. False when inference has
/// gone.
fn hand_on(shared: &Shared, out: &LinkOut<Frame>, frame: Frame) -> bool {
    match out.send(frame) {
        Ok(Some(stale)) => {
            shared.stats.record_dropped_before_infer();
            shared.recycle_frame(stale.rgb);
            true
        }
        Ok(None) => true,
        Err(_) => false,
    }
}
