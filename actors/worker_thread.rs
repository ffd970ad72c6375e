//! Worker threads: one actix-rt runtime per thread, holding its share of the clients, their
//! pools and their sockets. It does what an actix `Arbiter` does (run futures sent from other
//! threads, stop on request) with a root future that costs nothing to poll.
//!
//! Why not an `Arbiter`: tokio polls the root future of a `LocalSet` every time any task on
//! it is woken, before it runs the task. An arbiter's root future is its command channel, so
//! every reactor turn paid for polling that channel (about 190 instructions; with one client
//! two turns per transaction, 3.5% of the transaction). Here the commands are read by a task
//! of their own, polled only when one is sent, and the root future only checks a flag.

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

/// A future sent to a worker thread to run there.
type Job = Pin<Box<dyn Future<Output = ()> + Send>>;

enum Command {
    Spawn(Job),
    Stop,
}

/// A running worker thread. It stops on [`WorkerThread::stop`] or when every handle to it
/// is gone, dropping the tasks still on it.
pub struct WorkerThread {
    handle: WorkerHandle,
}

/// Sends work to a worker thread; cheap to clone, usable from any thread.
#[derive(Clone)]
pub struct WorkerHandle {
    tx: UnboundedSender<Command>,
}

impl WorkerThread {
    /// Starts a thread named `name` with its own runtime, in the current actix `System`, and
    /// returns once the runtime is up (as `Arbiter::new` does) or could not be built.
    pub fn start(name: String) -> std::io::Result<WorkerThread> {
        let system = actix_rt::System::current();
        let (tx, rx) = unbounded_channel();
        let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new().name(name).spawn(move || {
            actix_rt::System::set_current(system);
            match actix_rt::Runtime::new() {
                Ok(rt) => {
                    let _ = ready_tx.send(Ok(()));
                    rt.block_on(run(rx));
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                }
            }
        })?;
        ready_rx.recv().map_err(std::io::Error::other)??;
        Ok(WorkerThread {
            handle: WorkerHandle { tx },
        })
    }

    /// A handle for sending work to this thread.
    pub fn handle(&self) -> WorkerHandle {
        self.handle.clone()
    }

    /// Runs `job` on this thread; false if the thread has stopped.
    pub fn spawn(&self, job: impl Future<Output = ()> + Send + 'static) -> bool {
        self.handle.spawn(job)
    }

    /// Asks the thread to stop: its runtime is dropped with every task still on it.
    pub fn stop(&self) {
        let _ = self.handle.tx.send(Command::Stop);
    }
}

impl WorkerHandle {
    /// Runs `job` on the handle's thread; false if the thread has stopped.
    pub fn spawn(&self, job: impl Future<Output = ()> + Send + 'static) -> bool {
        self.tx.send(Command::Spawn(Box::pin(job))).is_ok()
    }
}

/// Set when the thread is to stop, by the task reading its commands; read by the root future.
#[derive(Default)]
struct StopFlag {
    stopped: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// The root future: spawns the command reader and waits, at the cost of one flag check per
/// poll, until it says stop.
async fn run(rx: UnboundedReceiver<Command>) {
    let flag = Rc::new(StopFlag::default());
    actix_rt::spawn(read_commands(rx, flag.clone()));
    poll_fn(|cx| {
        if flag.stopped.get() {
            return Poll::Ready(());
        }
        let mut waker = flag.waker.borrow_mut();
        if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *waker = Some(cx.waker().clone());
        }
        Poll::Pending
    })
    .await
}

/// Runs what is sent until Stop, or until every handle is gone.
async fn read_commands(mut rx: UnboundedReceiver<Command>, flag: Rc<StopFlag>) {
    while let Some(command) = rx.recv().await {
        match command {
            Command::Spawn(job) => {
                actix_rt::spawn(job);
            }
            Command::Stop => break,
        }
    }
    flag.stopped.set(true);
    if let Some(waker) = flag.waker.borrow_mut().take() {
        waker.wake();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{self, RecvTimeoutError};
    use std::time::Duration;

    /// Leaves a task on `worker` that never ends; the returned receiver disconnects when the
    /// task is dropped, that is when the worker's runtime is gone.
    fn canary(worker: &WorkerHandle) -> mpsc::Receiver<()> {
        let (tx, rx) = mpsc::channel::<()>();
        assert!(worker.spawn(async move {
            let _tx = tx;
            std::future::pending::<()>().await
        }));
        rx
    }

    fn ended(canary: &mpsc::Receiver<()>) -> bool {
        canary.recv_timeout(Duration::from_secs(5)) == Err(RecvTimeoutError::Disconnected)
    }

    #[test]
    fn runs_what_it_is_sent_on_its_own_thread_and_stops_when_asked() {
        actix_rt::System::new().block_on(async {
            let worker = WorkerThread::start("test-worker".into()).expect("thread");
            let (tx, rx) = mpsc::channel();
            let here = std::thread::current().id();
            assert!(worker.spawn(async move {
                // Local tasks work there (actors are started with actix_rt::spawn).
                let seven = actix_rt::spawn(async { 7 }).await.unwrap_or(0);
                let name = std::thread::current().name().map(str::to_owned);
                let _ = tx.send((seven, name, std::thread::current().id() != here));
            }));
            let got = rx.recv_timeout(Duration::from_secs(5)).expect("job ran");
            assert_eq!(got, (7, Some("test-worker".to_owned()), true));
            let handle = worker.handle();
            let canary = canary(&handle);
            worker.stop();
            assert!(ended(&canary), "the runtime was not dropped");
            assert!(!handle.spawn(async {}), "a stopped thread takes no work");
        });
    }

    #[test]
    fn stops_when_every_handle_is_gone() {
        actix_rt::System::new().block_on(async {
            let worker = WorkerThread::start("test-worker".into()).expect("thread");
            let canary = canary(&worker.handle());
            drop(worker);
            assert!(ended(&canary), "the runtime was not dropped");
        });
    }
}
