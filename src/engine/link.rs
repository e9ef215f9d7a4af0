//! How one stage hands its results to the next: a bounded channel where nothing may be lost (a file
//! run: the stage before waits), or a latest-frame slot where the newest wins (live: a slower stage skips
//! stale frames instead of falling behind).

use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, bounded};

use crate::latest::LatestSlot;

/// Frames a channel holds between two stages of a file run.
const CHANNEL_FRAMES: usize = 2;

pub enum LinkOut<T> {
    Latest(Arc<LatestSlot<T>>),
    Channel(Sender<T>),
}

pub enum LinkIn<T> {
    Latest(Arc<LatestSlot<T>>),
    Channel(Receiver<T>),
}

/// What [`LinkIn::recv_timeout`] found.
#[derive(Debug)]
pub enum Recv<T> {
    Value(T),
    /// Nothing yet.
    Empty,
    /// The sending side ended and everything it sent was taken.
    Closed,
}

/// A link; `live` picks the latest-frame slot.
pub fn link<T>(live: bool) -> (LinkOut<T>, LinkIn<T>) {
    if live {
        let slot = Arc::new(LatestSlot::new());
        (LinkOut::Latest(Arc::clone(&slot)), LinkIn::Latest(slot))
    } else {
        let (tx, rx) = bounded(CHANNEL_FRAMES);
        (LinkOut::Channel(tx), LinkIn::Channel(rx))
    }
}

impl<T> LinkOut<T> {
    /// Hands `value` on (waiting for room on a channel). `Ok(Some(old))`: a newer value replaced one the
    /// next stage had not taken (its buffers can be reused); `Err(value)`: the next stage has gone.
    pub fn send(&self, value: T) -> Result<Option<T>, T> {
        match self {
            Self::Latest(slot) => Ok(slot.put(value)),
            Self::Channel(tx) => tx.send(value).map(|()| None).map_err(|err| err.0),
        }
    }

    /// Values sent and not yet taken by the next stage.
    pub fn waiting(&self) -> usize {
        match self {
            Self::Latest(slot) => slot.is_full() as usize,
            Self::Channel(tx) => tx.len(),
        }
    }
}

/// Dropping the sending end (a stage that ended, or panicked) tells the next stage: it finishes what it
/// has and ends.
impl<T> Drop for LinkOut<T> {
    fn drop(&mut self) {
        if let Self::Latest(slot) = self {
            slot.close();
        }
    }
}

impl<T> LinkIn<T> {
    /// Values sent and not yet taken.
    pub fn waiting(&self) -> usize {
        match self {
            Self::Latest(slot) => slot.is_full() as usize,
            Self::Channel(rx) => rx.len(),
        }
    }

    pub fn recv_timeout(&self, timeout: Duration) -> Recv<T> {
        match self {
            Self::Latest(slot) => match slot.take_timeout(timeout) {
                Some(value) => Recv::Value(value),
                None if slot.is_closed() => Recv::Closed,
                None => Recv::Empty,
            },
            Self::Channel(rx) => match rx.recv_timeout(timeout) {
                Ok(value) => Recv::Value(value),
                Err(RecvTimeoutError::Timeout) => Recv::Empty,
                Err(RecvTimeoutError::Disconnected) => Recv::Closed,
            },
        }
    }
}
