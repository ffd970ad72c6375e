//! Signal: wakes every task of one arbiter that waits on it (KILL, shutdown, the parking
//! sweep). Nearly every transaction starts such a wait and abandons it, so it is built for
//! that: a waiter is a slot in a slab on the arbiter's own thread, no lock and no intrusive
//! list as in tokio's `Notify` (which measured about 250 instructions per wait).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use slab::Slab;

/// Slots kept after a notify has emptied the slab.
const KEEP_SLOTS: usize = 1024;

/// A wake-everyone signal for the tasks of one thread.
#[derive(Default)]
pub struct Signal {
    /// Bumped by every notify: a waiter created before it is done.
    epoch: Cell<u64>,
    waiters: RefCell<Slab<Waker>>,
}

impl Signal {
    pub fn new() -> Signal {
        Signal::default()
    }

    /// Wakes every task waiting now, and completes every [`Notified`] made before this call
    /// (polled yet or not), as `tokio::sync::Notify::notify_waiters` does.
    pub fn notify_waiters(&self) {
        self.epoch.set(self.epoch.get().wrapping_add(1));
        let wakers: Vec<Waker> = {
            let mut waiters = self.waiters.borrow_mut();
            let wakers = waiters.drain().collect();
            // Thousands of idle clients waited here before they parked: give their slots
            // back (the waiters that come again regrow it).
            if waiters.capacity() > KEEP_SLOTS {
                *waiters = Slab::new();
            }
            wakers
        };
        for w in wakers {
            w.wake();
        }
    }

    /// A future that completes at the next [`notify_waiters`](Self::notify_waiters).
    pub fn notified(&self) -> Notified<'_> {
        Notified {
            signal: self,
            epoch: self.epoch.get(),
            slot: None,
        }
    }

    /// Tasks registered now (tests).
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiters.borrow().len()
    }
}

/// Waits for the next notify of a [`Signal`].
pub struct Notified<'a> {
    signal: &'a Signal,
    epoch: u64,
    /// Its waker's slot while registered (valid only while the epoch is unchanged: a notify
    /// empties the slab).
    slot: Option<usize>,
}

impl Future for Notified<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        if this.signal.epoch.get() != this.epoch {
            this.slot = None;
            return Poll::Ready(());
        }
        let mut waiters = this.signal.waiters.borrow_mut();
        match this.slot.and_then(|k| waiters.get_mut(k)) {
            Some(w) if w.will_wake(cx.waker()) => {}
            Some(w) => *w = cx.waker().clone(),
            None => this.slot = Some(waiters.insert(cx.waker().clone())),
        }
        Poll::Pending
    }
}

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        if let Some(k) = self.slot {
            if self.signal.epoch.get() == self.epoch {
                self.signal.waiters.borrow_mut().try_remove(k);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// A waker that counts its wakes, and the count.
    fn counting_waker() -> (Arc<Count>, Waker) {
        let count = Arc::new(Count(AtomicUsize::new(0)));
        (count.clone(), Waker::from(count))
    }

    fn poll(f: &mut Notified<'_>, waker: &Waker) -> Poll<()> {
        Pin::new(f).poll(&mut Context::from_waker(waker))
    }

    #[test]
    fn a_notify_wakes_every_waiter_once_and_completes_them() {
        let signal = Signal::new();
        let (count, waker) = counting_waker();
        let mut a = signal.notified();
        let mut b = signal.notified();
        assert!(poll(&mut a, &waker).is_pending());
        assert!(poll(&mut b, &waker).is_pending());
        assert!(
            poll(&mut a, &waker).is_pending(),
            "polled again: still one slot"
        );
        assert_eq!(signal.waiting(), 2);
        signal.notify_waiters();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert!(poll(&mut a, &waker).is_ready());
        assert!(poll(&mut b, &waker).is_ready());
        assert_eq!(signal.waiting(), 0);
    }

    #[test]
    fn a_waiter_made_before_a_notify_completes_even_if_never_polled_before() {
        let signal = Signal::new();
        let (_, waker) = counting_waker();
        let mut early = signal.notified();
        signal.notify_waiters();
        let mut late = signal.notified();
        assert!(poll(&mut early, &waker).is_ready());
        assert!(
            poll(&mut late, &waker).is_pending(),
            "made after: waits for the next"
        );
    }

    #[test]
    fn a_dropped_waiter_gives_its_slot_back_and_never_frees_another() {
        let signal = Signal::new();
        let (count, waker) = counting_waker();
        let mut gone = signal.notified();
        assert!(poll(&mut gone, &waker).is_pending());
        drop(gone);
        assert_eq!(signal.waiting(), 0);

        // A notify empties the slab; a waiter dropped after it must not remove the slot a
        // newer waiter took since.
        let mut old = signal.notified();
        assert!(poll(&mut old, &waker).is_pending());
        signal.notify_waiters();
        let mut new = signal.notified();
        assert!(poll(&mut new, &waker).is_pending());
        drop(old);
        assert_eq!(signal.waiting(), 1, "the newer waiter is still registered");
        signal.notify_waiters();
        assert!(poll(&mut new, &waker).is_ready());
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
    }
}
