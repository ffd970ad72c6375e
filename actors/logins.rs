//! Logins in progress on one arbiter, capped (`max_logins_in_progress`): at the cap a new
//! connection closes the oldest login still in progress, so a flood of connections that
//! never finish logging in cannot lock out a client that does.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use tokio::sync::Notify;

/// The logins in progress on one arbiter, oldest first.
#[derive(Default)]
pub struct Logins {
    queue: RefCell<VecDeque<(u64, Rc<Notify>)>>,
    next: Cell<u64>,
}

/// One login in progress; leaves the queue when dropped.
pub struct LoginTicket {
    logins: Rc<Logins>,
    id: u64,
    evicted: Rc<Notify>,
}

impl Logins {
    /// Starts a login, closing the oldest ones if `cap` are already in progress.
    pub fn admit(self: &Rc<Self>, cap: usize) -> LoginTicket {
        let id = self.next.get();
        self.next.set(id + 1);
        let evicted = Rc::new(Notify::new());
        let mut queue = self.queue.borrow_mut();
        while queue.len() >= cap.max(1) {
            if let Some((_, oldest)) = queue.pop_front() {
                // A stored permit: the login sees it even if it is not waiting right now.
                oldest.notify_one();
            }
        }
        queue.push_back((id, evicted.clone()));
        LoginTicket {
            logins: self.clone(),
            id,
            evicted,
        }
    }

    /// Logins in progress now.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.queue.borrow().len()
    }
}

impl LoginTicket {
    /// Resolves when a newer connection needed this login's place.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }
}

impl Drop for LoginTicket {
    fn drop(&mut self) {
        let mut queue = self.logins.queue.borrow_mut();
        // Logins mostly finish in the order they started: the search is short.
        if let Some(i) = queue.iter().position(|(id, _)| *id == self.id) {
            queue.remove(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_evicted(t: &LoginTicket) -> bool {
        let fut = std::pin::pin!(t.evicted());
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        fut.poll(&mut cx).is_ready()
    }

    use std::future::Future;

    #[test]
    fn the_oldest_login_makes_room_at_the_cap() {
        let logins = Rc::new(Logins::default());
        let a = logins.admit(2);
        let b = logins.admit(2);
        assert_eq!(logins.len(), 2);
        let c = logins.admit(2);
        assert!(is_evicted(&a));
        assert!(!is_evicted(&b));
        assert!(!is_evicted(&c));
        assert_eq!(logins.len(), 2);
        drop(b);
        assert_eq!(logins.len(), 1);
        let _d = logins.admit(2);
        assert!(!is_evicted(&c));
        drop(a);
        assert_eq!(logins.len(), 2);
    }
}
