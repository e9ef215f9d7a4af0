//! A one-place mailbox where a newer value replaces an unread older one, counting the replaced ones: how a
//! live source stays real-time when the consumer is slower than the camera.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

pub struct LatestSlot<T> {
    state: Mutex<SlotState<T>>,
    ready: Condvar,
    dropped: AtomicU64,
}

struct SlotState<T> {
    value: Option<T>,
    closed: bool,
}

impl<T> Default for LatestSlot<T> {
    fn default() -> Self {
        Self {
            state: Mutex::new(SlotState { value: None, closed: false }),
            ready: Condvar::new(),
            dropped: AtomicU64::new(0),
        }
    }
}

impl<T> LatestSlot<T> {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value`; returns the unread value it replaced (counted as dropped) so its buffers can be reused.
    pub fn put(&self, value: T) -> Option<T> {
        let mut state = self.state.lock().expect("slot lock poisoned");
        let replaced = state.value.replace(value);
        if replaced.is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        drop(state);
        self.ready.notify_one();
        replaced
    }

    /// Waits for a value; `None` once the slot is closed and empty.
    pub fn take(&self) -> Option<T> {
        let mut state = self.state.lock().expect("slot lock poisoned");
        loop {
            if let Some(value) = state.value.take() {
                return Some(value);
            }
            if state.closed {
                return None;
            }
            state = self.ready.wait(state).expect("slot lock poisoned");
        }
    }

    /// Like `take`, but gives up after `timeout` (returning `None` while the slot stays open).
    pub fn take_timeout(&self, timeout: Duration) -> Option<T> {
        let state = self.state.lock().expect("slot lock poisoned");
        let (mut state, _) = self
            .ready
            .wait_timeout_while(state, timeout, |s| s.value.is_none() && !s.closed)
            .expect("slot lock poisoned");
        state.value.take()
    }

    /// No more values will come; wakes the consumer.
    pub fn close(&self) {
        self.state.lock().expect("slot lock poisoned").closed = true;
        self.ready.notify_all();
    }

    /// Whether a value waits to be taken.
    pub fn is_full(&self) -> bool {
        self.state.lock().expect("slot lock poisoned").value.is_some()
    }

    pub fn is_closed(&self) -> bool {
        self.state.lock().expect("slot lock poisoned").closed
    }

    /// Values replaced before they were read.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newer_value_replaces_unread_one_and_is_counted() {
        let slot = LatestSlot::new();
        assert_eq!(slot.put(1), None);
        assert_eq!(slot.put(2), Some(1));
        assert_eq!(slot.dropped(), 1);
        assert_eq!(slot.take(), Some(2));
        slot.close();
        assert_eq!(slot.take(), None);
    }

    #[test]
    fn take_timeout_returns_none_while_empty() {
        let slot: LatestSlot<u8> = LatestSlot::new();
        assert_eq!(slot.take_timeout(Duration::from_millis(5)), None);
        assert!(!slot.is_closed());
    }
}
