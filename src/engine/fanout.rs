//! One composite, many consumers: each frame's [`Output`] is shared (never copied) with every subscriber.
//! A subscriber declares how it takes frames: the newest only (the window), a bounded queue that drops and
//! counts when full (a recording), or a queue that waits (a file run, which never loses a frame). A slow
//! consumer that may drop never slows the others.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use crossbeam_channel::{Sender, TrySendError, bounded};

use super::link::LinkIn;
pub use super::link::Recv as Received;
use crate::frame::Output;
use crate::latest::LatestSlot;

/// How a subscriber takes frames.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// The newest frame replaces one not yet taken (counted as dropped): a display.
    Latest,
    /// Up to this many frames wait; beyond, frames are dropped and counted: a live recording.
    Queue(usize),
    /// As `Queue`, and frames are also dropped (and counted) while those waiting hold `bytes` of memory:
    /// a recording of large frames must not fill the machine's memory while its encoder falls behind.
    Bounded { frames: usize, bytes: u64 },
    /// Up to this many frames wait; beyond, the compositor waits: a file run.
    Wait(usize),
}

/// The publishing side of a subscriber's link; its consumer holds the receiving side (`inbox`).
enum Outbox {
    Latest(Arc<LatestSlot<Arc<Output>>>),
    /// Taken (dropped) when the stream ends, so that the receiver sees it end.
    Queue(Mutex<Option<Sender<Arc<Output>>>>),
}

pub struct Subscriber {
    name: &'static str,
    delivery: Delivery,
    outbox: Outbox,
    inbox: LinkIn<Arc<Output>>,
    delivered: AtomicU64,
    dropped: AtomicU64,
    /// The consumer let go of its end.
    gone: AtomicBool,
    /// It needs the picture's pixels (a screen on the compositor's GPU draws its texture instead).
    needs_pixels: bool,
    /// Nobody behind this consumer wants frames now (a virtual camera no app has open).
    idle: AtomicBool,
    /// It sends the picture out of the machine: it must never get the room unmatted.
    private: bool,
    /// Wakes a paused engine when this consumer stops being idle.
    wake: Arc<Wake>,
    /// Bytes the waiting frames hold ([`Delivery::Bounded`]).
    queued_bytes: AtomicU64,
}

impl Subscriber {
    fn close(&self) {
        match &self.outbox {
            Outbox::Latest(slot) => slot.close(),
            Outbox::Queue(tx) => drop(tx.lock().expect("mailbox lock").take()),
        }
    }

    /// Hands `output` over; false when a waiting subscriber's consumer is gone.
    fn deliver(&self, output: &Arc<Output>) -> bool {
        let waits = matches!(self.delivery, Delivery::Wait(_));
        match &self.outbox {
            Outbox::Latest(slot) => {
                if slot.put(Arc::clone(output)).is_some() {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            Outbox::Queue(tx) => {
                // A clone of the sender, so that a waiting send does not hold the lock `close` needs.
                let Some(tx) = tx.lock().expect("mailbox lock").clone() else { return !waits };
                if waits {
                    if tx.send(Arc::clone(output)).is_err() {
                        return false;
                    }
                } else if let Delivery::Bounded { bytes, .. } = self.delivery {
                    let size = output.heap_bytes();
                    let queued = self.queued_bytes.load(Ordering::SeqCst);
                    // One frame always fits, however large, so that an empty queue never drops.
                    if queued > 0 && queued + size > bytes {
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                    self.queued_bytes.fetch_add(size, Ordering::SeqCst);
                    if let Err(TrySendError::Full(_)) = tx.try_send(Arc::clone(output)) {
                        self.queued_bytes.fetch_sub(size, Ordering::SeqCst);
                        self.dropped.fetch_add(1, Ordering::Relaxed);
                        return true;
                    }
                } else if let Err(TrySendError::Full(_)) = tx.try_send(Arc::clone(output)) {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
            }
        }
        self.delivered.fetch_add(1, Ordering::Relaxed);
        true
    }
}

/// The consumer's end of a subscription. Dropping it unsubscribes.
pub struct Subscription {
    inner: Arc<Subscriber>,
}

impl Subscription {
    pub fn name(&self) -> &'static str {
        self.inner.name
    }

    /// The next frame (the newest, for [`Delivery::Latest`]) if one is waiting; never waits.
    pub fn take(&self) -> Option<Arc<Output>> {
        match self.recv_timeout(Duration::ZERO) {
            Received::Value(output) => Some(output),
            Received::Empty | Received::Closed => None,
        }
    }

    /// Waits up to `timeout` for the next frame; `Closed` once the stream ended and everything delivered
    /// was taken.
    pub fn recv_timeout(&self, timeout: Duration) -> Received<Arc<Output>> {
        let received = self.inner.inbox.recv_timeout(timeout);
        if let (Received::Value(output), Delivery::Bounded { .. }) = (&received, self.inner.delivery) {
            self.inner.queued_bytes.fetch_sub(output.heap_bytes(), Ordering::SeqCst);
        }
        received
    }

    /// Says whether anyone behind this consumer wants frames now. When every subscriber is idle, the
    /// live engine pauses (nothing is read or matted) until one is not.
    pub fn set_idle(&self, idle: bool) {
        if self.inner.idle.swap(idle, Ordering::SeqCst) && !idle {
            self.inner.wake.notify();
        }
    }

    /// The subscription's figures, for another thread.
    pub fn watch(&self) -> Watch {
        Watch(Arc::clone(&self.inner))
    }

    /// Frames handed to this subscriber.
    pub fn delivered(&self) -> u64 {
        self.watch().delivered()
    }

    /// Frames this subscriber lost: replaced before it took them, or refused by its full queue.
    pub fn dropped(&self) -> u64 {
        self.watch().dropped()
    }

    /// Frames waiting in the queue (0 or 1 for the newest-only delivery).
    pub fn queued(&self) -> usize {
        self.watch().queued()
    }

    pub fn capacity(&self) -> usize {
        self.watch().capacity()
    }
}

/// A subscription's figures, readable by someone other than its consumer.
#[derive(Clone)]
pub struct Watch(Arc<Subscriber>);

impl Watch {
    pub fn delivered(&self) -> u64 {
        self.0.delivered.load(Ordering::Relaxed)
    }

    pub fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }

    pub fn queued(&self) -> usize {
        self.0.inbox.waiting()
    }

    /// Bytes the waiting frames hold (counted for [`Delivery::Bounded`] only).
    pub fn queued_bytes(&self) -> u64 {
        self.0.queued_bytes.load(Ordering::SeqCst)
    }

    pub fn capacity(&self) -> usize {
        match self.0.delivery {
            Delivery::Latest => 1,
            Delivery::Queue(n) | Delivery::Wait(n) | Delivery::Bounded { frames: n, .. } => n,
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.inner.gone.store(true, Ordering::Relaxed);
        self.inner.close();
        self.inner.wake.notify();
        // A compositor waiting for room in this queue gets it, and then sees the subscriber gone.
        while let Received::Value(_) = self.inner.inbox.recv_timeout(Duration::ZERO) {}
    }
}

/// A change of who watches, for a paused engine to wake on.
#[derive(Default)]
struct Wake {
    changes: Mutex<u64>,
    changed: Condvar,
}

impl Wake {
    fn notify(&self) {
        *self.changes.lock().expect("wake lock") += 1;
        self.changed.notify_all();
    }
}

/// The subscribers of one engine.
#[derive(Default)]
pub struct Fanout {
    subscribers: Mutex<Vec<Arc<Subscriber>>>,
    ended: AtomicBool,
    wake: Arc<Wake>,
}

/// What kind of consumer a subscriber is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consumer {
    /// Needs the pixels (a recording, a file run's sinks).
    Pixels,
    /// The window: on the compositor's GPU, the texture alone.
    Screen,
    /// Sends the picture out (a virtual camera): pixels, never the unmatted room, and idle at first.
    Private,
}

impl Fanout {
    /// A new subscriber; it gets every frame composited from now on, with its pixels.
    pub fn subscribe(&self, name: &'static str, delivery: Delivery) -> Subscription {
        self.add(name, delivery, Consumer::Pixels)
    }

    /// A screen: the newest frame; on the compositor's GPU, the texture alone, read back for nobody.
    pub fn subscribe_screen(&self, name: &'static str) -> Subscription {
        self.add(name, Delivery::Latest, Consumer::Screen)
    }

    /// A consumer that sends the picture out of the machine: it starts idle (no app watching yet).
    pub fn subscribe_private(&self, name: &'static str) -> Subscription {
        self.add(name, Delivery::Latest, Consumer::Private)
    }

    fn add(&self, name: &'static str, delivery: Delivery, consumer: Consumer) -> Subscription {
        let (outbox, inbox) = match delivery {
            Delivery::Latest => {
                let slot = Arc::new(LatestSlot::new());
                (Outbox::Latest(Arc::clone(&slot)), LinkIn::Latest(slot))
            }
            Delivery::Queue(n) | Delivery::Wait(n) | Delivery::Bounded { frames: n, .. } => {
                let (tx, rx) = bounded(n.max(1));
                (Outbox::Queue(Mutex::new(Some(tx))), LinkIn::Channel(rx))
            }
        };
        let inner = Arc::new(Subscriber {
            name,
            delivery,
            outbox,
            inbox,
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            gone: AtomicBool::new(false),
            needs_pixels: consumer != Consumer::Screen,
            idle: AtomicBool::new(consumer == Consumer::Private),
            private: consumer == Consumer::Private,
            wake: Arc::clone(&self.wake),
            queued_bytes: AtomicU64::new(0),
        });
        if self.ended.load(Ordering::SeqCst) {
            inner.close();
        } else {
            self.subscribers.lock().expect("fanout lock").push(Arc::clone(&inner));
        }
        self.wake.notify();
        Subscription { inner }
    }

    /// Whether nobody wants frames now: there are subscribers and every one is idle. (With none at all,
    /// the engine runs: a run being set up subscribes after it starts.)
    pub fn unwatched(&self) -> bool {
        let subscribers = self.subscribers.lock().expect("fanout lock");
        let mut live = subscribers.iter().filter(|s| !s.gone.load(Ordering::Relaxed)).peekable();
        live.peek().is_some() && live.all(|s| s.idle.load(Ordering::SeqCst))
    }

    /// A count of the changes of who watches, taken before looking at [`Fanout::unwatched`].
    pub fn watch_epoch(&self) -> u64 {
        *self.wake.changes.lock().expect("wake lock")
    }

    /// Waits up to `timeout` for a subscriber to come, go or stop being idle since `epoch`.
    pub fn wait_for_watchers(&self, epoch: u64, timeout: Duration) {
        let changes = self.wake.changes.lock().expect("wake lock");
        let _ = self.wake.changed.wait_timeout_while(changes, timeout, |now| *now == epoch);
    }

    /// Whether a consumer that sends the picture out is watching (the room must not be shown unmatted).
    pub fn has_private(&self) -> bool {
        self.subscribers
            .lock()
            .expect("fanout lock")
            .iter()
            .any(|s| s.private && !s.gone.load(Ordering::Relaxed) && !s.idle.load(Ordering::SeqCst))
    }

    /// Whether anyone is subscribed (whether idle or not: see [`Fanout::unwatched`]).
    pub fn has_subscribers(&self) -> bool {
        self.subscribers.lock().expect("fanout lock").iter().any(|s| !s.gone.load(Ordering::Relaxed))
    }

    /// Whether a subscriber needs the picture's pixels.
    pub fn wants_pixels(&self) -> bool {
        self.subscribers.lock().expect("fanout lock").iter().any(|s| s.needs_pixels && !s.gone.load(Ordering::Relaxed))
    }

    /// Hands `output` to every subscriber; `scratch` is reused so a frame allocates nothing. Returns false
    /// when a subscriber that must not lose frames has gone (a file run's writer failed).
    pub fn publish(&self, output: &Arc<Output>, scratch: &mut Vec<Arc<Subscriber>>) -> bool {
        scratch.clear();
        {
            let mut subscribers = self.subscribers.lock().expect("fanout lock");
            subscribers.retain(|s| !s.gone.load(Ordering::Relaxed) || matches!(s.delivery, Delivery::Wait(_)));
            scratch.extend(subscribers.iter().cloned());
        }
        let mut all = true;
        for subscriber in scratch.iter() {
            // A frame composited before anyone needed its pixels stays on the GPU: those who need them
            // start with the next one.
            if subscriber.needs_pixels && !output.has_pixels() {
                continue;
            }
            if subscriber.gone.load(Ordering::Relaxed) || !subscriber.deliver(output) {
                all &= !matches!(subscriber.delivery, Delivery::Wait(_));
            }
        }
        scratch.clear();
        all
    }

    /// The stream ended: every subscriber sees the end once it has taken what was delivered.
    pub fn close(&self) {
        self.ended.store(true, Ordering::SeqCst);
        for subscriber in self.subscribers.lock().expect("fanout lock").drain(..) {
            subscriber.close();
        }
    }
}

/// The scratch list [`Fanout::publish`] reuses.
pub type PublishScratch = Vec<Arc<Subscriber>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn output(seq: u64) -> Arc<Output> {
        let mut output = Output::default();
        output.frame.seq = seq;
        output.picture.alpha = vec![255];
        Arc::new(output)
    }

    #[test]
    fn each_delivery_keeps_its_promise() {
        let fanout = Fanout::default();
        let newest = fanout.subscribe("newest", Delivery::Latest);
        let queue = fanout.subscribe("queue", Delivery::Queue(2));
        let mut scratch = Vec::new();
        for seq in 0..5 {
            assert!(fanout.publish(&output(seq), &mut scratch));
        }
        assert_eq!(newest.take().map(|o| o.frame.seq), Some(4));
        assert_eq!(newest.dropped(), 4);
        assert_eq!((queue.queued(), queue.dropped(), queue.delivered()), (2, 3, 2));
        assert_eq!(queue.take().map(|o| o.frame.seq), Some(0));
        fanout.close();
        assert_eq!(queue.take().map(|o| o.frame.seq), Some(1));
        assert!(matches!(queue.recv_timeout(Duration::ZERO), Received::Closed));
        assert!(matches!(newest.recv_timeout(Duration::ZERO), Received::Closed));
    }

    /// A recording's queue holds at most its bytes, whatever the frame count allows: 4K frames must not
    /// fill the machine's memory while the encoder falls behind.
    #[test]
    fn a_queue_bounded_in_bytes_drops_beyond_its_bytes() {
        let fanout = Fanout::default();
        let big = |seq: u64| {
            let mut output = Output::default();
            output.frame.seq = seq;
            output.picture.alpha = vec![255];
            output.frame.rgb = vec![0; 1000];
            Arc::new(output)
        };
        let size = big(0).heap_bytes();
        let queue = fanout.subscribe("recorder", Delivery::Bounded { frames: 100, bytes: 3 * size });
        let mut scratch = Vec::new();
        for seq in 0..10 {
            assert!(fanout.publish(&big(seq), &mut scratch));
        }
        let watch = queue.watch();
        assert_eq!((watch.queued(), watch.dropped(), watch.queued_bytes()), (3, 7, 3 * size));
        assert_eq!(queue.take().map(|o| o.frame.seq), Some(0));
        assert_eq!(watch.queued_bytes(), 2 * size, "taking a frame frees its bytes");
        assert!(fanout.publish(&big(10), &mut scratch));
        assert_eq!((watch.queued(), watch.dropped()), (3, 7));
        // One frame larger than the whole bound still goes through an empty queue.
        let lone = fanout.subscribe("lone", Delivery::Bounded { frames: 100, bytes: 1 });
        assert!(fanout.publish(&big(11), &mut scratch));
        assert_eq!((lone.queued(), lone.dropped()), (1, 0));
    }

    #[test]
    fn a_waiting_subscriber_that_leaves_ends_the_publishing() {
        let fanout = Fanout::default();
        let writer = fanout.subscribe("writer", Delivery::Wait(1));
        let mut scratch = Vec::new();
        assert!(fanout.publish(&output(0), &mut scratch));
        drop(writer);
        assert!(!fanout.publish(&output(1), &mut scratch), "a file run must not go on without its writer");
        // A dropping subscriber that leaves is simply forgotten.
        let fanout = Fanout::default();
        let shown = fanout.subscribe("window", Delivery::Latest);
        drop(shown);
        assert!(fanout.publish(&output(0), &mut scratch));
        assert!(!fanout.has_subscribers());
    }

    #[test]
    fn a_frame_without_pixels_goes_only_to_the_screen() {
        let fanout = Fanout::default();
        let screen = fanout.subscribe_screen("screen");
        let recorder = fanout.subscribe("recorder", Delivery::Queue(4));
        let mut scratch = Vec::new();
        assert!(fanout.wants_pixels());
        let texture_only = Arc::new(Output::default());
        assert!(fanout.publish(&texture_only, &mut scratch));
        assert!(screen.take().is_some());
        assert!(recorder.take().is_none(), "the recorder needs pixels");
        assert!(fanout.wants_pixels());
        drop(recorder);
        assert!(!fanout.wants_pixels());
    }
}
