//! Parked clients: a logged-in client that has sat idle (no server, nothing to read) for a
//! sweep period gives up its actor, its future and its tokio registration, and waits here as
//! one small box plus one entry in an epoll set of its arbiter. It becomes an actor again
//! when it sends something or closes, is killed, times out or the pooler shuts down.
//!
//! This is what makes an idle client cost well under a KiB: a running client (actor
//! context, task, future, reactor registration) costs about 3 KB more.

use std::cell::{Cell, RefCell};
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use mio::net::TcpStream as MioStream;
use mio::{Events, Interest, Poll, Registry, Token};
use slab::Slab;
use slog::{debug, warn, Logger};
use tokio::io::unix::AsyncFd;
use tokio::net::TcpStream;

use crate::client::{ClientActor, ParkedClient};
use crate::client_stream::ClientStream;
use crate::error::ClientError;
use crate::signal::Signal;

/// How often idle clients are looked at. A client parks once it has been idle for at
/// least one whole period (so between one and two periods after its last message).
pub const SWEEP: Duration = Duration::from_millis(500);

/// Events taken from the parking epoll set per call.
const EVENTS: usize = 256;

/// One parked client.
struct Parked {
    client: Box<ParkedClient>,
    stream: MioStream,
}

/// The parked clients of one arbiter.
pub struct Parking {
    registry: Option<Registry>,
    poll: RefCell<Option<Poll>>,
    parked: RefCell<Slab<Parked>>,
    /// Counts sweeps; a client compares it with the value when its idle wait began.
    epoch: Cell<u64>,
    /// Parked clients with a client_idle_timeout (sweeps skip the scan when there are none).
    with_deadline: Cell<usize>,
    log: Logger,
}

impl Parking {
    /// A parking lot; without an epoll set (it could not be created) clients never park.
    pub fn new(log: Logger) -> Parking {
        let (registry, poll) = match Poll::new().and_then(|p| Ok((p.registry().try_clone()?, p))) {
            Ok((r, p)) => (Some(r), Some(p)),
            Err(e) => {
                warn!(log, "idle clients will not be parked"; "error" => %e);
                (None, None)
            }
        };
        Parking {
            registry,
            poll: RefCell::new(poll),
            parked: RefCell::new(Slab::new()),
            epoch: Cell::new(0),
            with_deadline: Cell::new(0),
            log,
        }
    }

    /// The sweep counter.
    pub fn epoch(&self) -> u64 {
        self.epoch.get()
    }

    /// Can clients park at all?
    pub fn enabled(&self) -> bool {
        self.registry.is_some()
    }

    /// Parks a client. If its socket cannot join the epoll set it goes on as an actor.
    pub fn park(&self, client: ParkedClient, stream: TcpStream) -> Result<(), ClientError> {
        let std_stream = stream.into_std()?;
        let mut stream = MioStream::from_std(std_stream);
        let Some(registry) = &self.registry else {
            return resume(Box::new(client), stream, None);
        };
        let mut parked = self.parked.borrow_mut();
        let entry = parked.vacant_entry();
        let key = entry.key();
        if let Err(e) = registry.register(&mut stream, Token(key), Interest::READABLE) {
            debug!(self.log, "cannot park a client"; "error" => %e);
            drop(parked);
            return resume(Box::new(client), stream, None);
        }
        client.info().parked.set(Some(key));
        if client.deadline.is_some() {
            self.with_deadline.set(self.with_deadline.get() + 1);
        }
        entry.insert(Parked {
            client: Box::new(client),
            stream,
        });
        Ok(())
    }

    /// Wakes the parked client `key` as an actor; `why`, when given, ends it.
    pub fn wake(&self, key: usize, why: Option<ClientError>) {
        let Some(mut p) = self.parked.borrow_mut().try_remove(key) else {
            return;
        };
        if p.client.deadline.is_some() {
            self.with_deadline
                .set(self.with_deadline.get().saturating_sub(1));
        }
        if let Some(registry) = &self.registry {
            let _ = registry.deregister(&mut p.stream);
        }
        p.client.info().parked.set(None);
        if let Err(e) = resume(p.client, p.stream, why) {
            debug!(self.log, "cannot wake a parked client"; "error" => %e);
        }
    }

    /// Wakes every parked client (shutdown: each is told and closed as an actor).
    pub fn wake_all(&self) {
        let keys: Vec<usize> = self.parked.borrow().iter().map(|(k, _)| k).collect();
        for k in keys {
            self.wake(k, None);
        }
    }

    /// One sweep: the epoch moves on and parked clients past their client_idle_timeout end.
    fn sweep(&self) {
        self.epoch.set(self.epoch.get() + 1);
        if self.with_deadline.get() == 0 {
            return;
        }
        let now = Instant::now();
        let expired: Vec<(usize, Duration)> = self
            .parked
            .borrow()
            .iter()
            .filter_map(|(k, p)| {
                let deadline = p.client.deadline?;
                (deadline <= now).then(|| (k, p.client.pool_idle_timeout().unwrap_or_default()))
            })
            .collect();
        for (k, t) in expired {
            self.wake(k, Some(ClientError::ClientIdleTimeout(t)));
        }
    }

    /// Runs this arbiter's parking lot: wakes clients whose sockets turn readable and sweeps.
    /// `attention` wakes the clients waiting idle so they can look at the new epoch.
    pub async fn run(self: Rc<Self>, attention: Rc<Signal>) {
        let Some(poll) = self.poll.borrow_mut().take() else {
            return;
        };
        // SAFETY: the epoll fd is owned by `poll`, which the AsyncFd owns and never closes
        // or replaces before dropping it.
        let registered =
            unsafe { AsyncFd::register_with_interest(poll, tokio::io::Interest::READABLE) };
        let mut fd = match registered {
            Ok(fd) => fd,
            Err(e) => {
                warn!(self.log, "idle clients will not be parked"; "error" => %e);
                return;
            }
        };
        let mut ticks = tokio::time::interval(SWEEP);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut events = Events::with_capacity(EVENTS);
        loop {
            tokio::select! {
                guard = fd.readable_mut() => {
                    let Ok(mut guard) = guard else { return };
                    loop {
                        match guard.get_inner_mut().poll(&mut events, Some(Duration::ZERO)) {
                            Ok(()) => {}
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                            Err(e) => {
                                warn!(self.log, "parking epoll failed"; "error" => %e);
                                break;
                            }
                        }
                        let mut n = 0;
                        for ev in events.iter() {
                            self.wake(ev.token().0, None);
                            n += 1;
                        }
                        if n < EVENTS {
                            break;
                        }
                    }
                    guard.clear_ready();
                }
                _ = ticks.tick() => {
                    self.sweep();
                    attention.notify_waiters();
                }
            }
        }
    }
}

/// Turns a parked client back into an actor on this arbiter.
fn resume(
    client: Box<ParkedClient>,
    stream: MioStream,
    why: Option<ClientError>,
) -> Result<(), ClientError> {
    let stream = TcpStream::from_std(std::net::TcpStream::from(stream))?;
    ClientActor::resume(client, ClientStream::Plain(stream), why);
    Ok(())
}
