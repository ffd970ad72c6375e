//! Handoff: how a pool shard gives a waiting checkout its answer. A oneshot channel for one
//! arbiter thread: no atomics, and no allocation per wait, because answered slots are kept
//! and reused. While a channel is open only its two ends hold the slot, so either end knows
//! the other is gone when it holds the slot alone.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// How many answered slots a [`Slots`] keeps for reuse.
const KEEP: usize = 64;

/// Where one answer is left.
struct Slot<T> {
    value: Cell<Option<T>>,
    waker: Cell<Option<Waker>>,
}

impl<T> Slot<T> {
    fn new() -> Self {
        Slot {
            value: Cell::new(None),
            waker: Cell::new(None),
        }
    }
}

/// The other end of the channel is gone.
fn alone<T>(slot: &Rc<Slot<T>>) -> bool {
    Rc::strong_count(slot) == 1
}

/// The slots of one pool shard: new channels take a kept slot when there is one.
pub struct Slots<T> {
    free: RefCell<Vec<Rc<Slot<T>>>>,
}

impl<T> Default for Slots<T> {
    fn default() -> Self {
        Slots {
            free: RefCell::new(Vec::new()),
        }
    }
}

impl<T> Slots<T> {
    /// A new channel for one answer.
    pub fn channel(&self) -> (Sender<T>, Receiver<T>) {
        let slot = self
            .free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Rc::new(Slot::new()));
        (Sender(Some(slot.clone())), Receiver(Some(slot)))
    }

    /// Keeps the slot of a receiver whose wait is over, for the next channel.
    pub fn recycle(&self, mut rx: Receiver<T>) {
        // A slot still shared with its sender is given up as a dropped receiver would be.
        if let Some(slot) = rx.0.take().filter(alone) {
            slot.value.set(None);
            slot.waker.set(None);
            let mut free = self.free.borrow_mut();
            if free.len() < KEEP {
                free.push(slot);
            }
        }
    }

    #[cfg(test)]
    fn kept(&self) -> usize {
        self.free.borrow().len()
    }
}

/// The shard's end: sends the answer once.
pub struct Sender<T>(Option<Rc<Slot<T>>>);

impl<T> Sender<T> {
    /// Has the receiver gone away (the client stopped waiting)?
    pub fn is_closed(&self) -> bool {
        self.0.as_ref().is_none_or(alone)
    }

    /// Leaves `value` for the receiver and wakes it; gives `value` back if the receiver is gone.
    pub fn send(mut self, value: T) -> Result<(), T> {
        let Some(slot) = self.0.take().filter(|slot| !alone(slot)) else {
            return Err(value);
        };
        slot.value.set(Some(value));
        if let Some(waker) = slot.waker.take() {
            waker.wake();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    /// Unsent: wakes the receiver, which finds itself alone once this end is dropped.
    fn drop(&mut self) {
        if let Some(waker) = self.0.as_ref().and_then(|slot| slot.waker.take()) {
            waker.wake();
        }
    }
}

/// The sender was dropped without sending.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// The waiting end: a future of the answer (await it by `&mut` to recycle it afterwards).
pub struct Receiver<T>(Option<Rc<Slot<T>>>);

impl<T> Future for Receiver<T> {
    type Output = Result<T, Closed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let Some(slot) = self.0.as_ref() else {
            return Poll::Ready(Err(Closed));
        };
        if let Some(value) = slot.value.take() {
            return Poll::Ready(Ok(value));
        }
        if alone(slot) {
            return Poll::Ready(Err(Closed));
        }
        let waker = match slot.waker.take() {
            Some(w) if w.will_wake(cx.waker()) => w,
            _ => cx.waker().clone(),
        };
        slot.waker.set(Some(waker));
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::task::Waker;

    fn poll<T>(rx: &mut Receiver<T>) -> Poll<Result<T, Closed>> {
        let mut cx = Context::from_waker(Waker::noop());
        Pin::new(rx).poll(&mut cx)
    }

    #[test]
    fn the_answer_arrives_and_the_slot_is_reused() {
        let slots = Slots::default();
        let (tx, mut rx) = slots.channel();
        assert!(poll(&mut rx).is_pending());
        assert!(!tx.is_closed());
        assert_eq!(tx.send(7), Ok(()));
        assert_eq!(poll(&mut rx), Poll::Ready(Ok(7)));
        slots.recycle(rx);
        assert_eq!(slots.kept(), 1);
        let (tx, mut rx) = slots.channel();
        assert_eq!(slots.kept(), 0);
        assert!(poll(&mut rx).is_pending(), "a reused slot starts empty");
        assert_eq!(tx.send(8), Ok(()));
        assert_eq!(poll(&mut rx), Poll::Ready(Ok(8)));
    }

    #[test]
    fn a_sender_dropped_unsent_closes_the_receiver() {
        let slots = Slots::<u8>::default();
        let (tx, mut rx) = slots.channel();
        assert!(poll(&mut rx).is_pending());
        drop(tx);
        assert_eq!(poll(&mut rx), Poll::Ready(Err(Closed)));
        slots.recycle(rx);
        let (_tx, mut rx) = slots.channel();
        assert!(poll(&mut rx).is_pending(), "a reused slot is not closed");
    }

    #[test]
    fn a_receiver_dropped_gives_the_value_back_to_the_sender() {
        let slots = Slots::default();
        let (tx, rx) = slots.channel();
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send("conn"), Err("conn"));
        assert_eq!(slots.kept(), 0, "a slot given up mid-wait is not kept");
    }

    #[test]
    fn a_slot_still_held_by_its_sender_is_not_recycled() {
        let slots = Slots::<u8>::default();
        let (tx, rx) = slots.channel();
        slots.recycle(rx);
        assert_eq!(slots.kept(), 0);
        assert!(tx.is_closed(), "the recycled receiver counts as gone");
    }
}
