//! A fixed pool of threads for CPU-bound work that must not run on the async runtime (XML signature
//! checks): at most `threads` jobs at once, taken in the order they came, from a bounded queue.
//!
//! Against `tokio::task::spawn_blocking` under a semaphore, the pool's threads stay busy while work
//! is queued: a job is picked up by a running thread, not handed to a parked one woken for it (a
//! futex wake and a context switch per job), and no more threads exist than may run. A full queue
//! refuses at once ([`PoolError::Busy`]) instead of growing without bound. Work once queued runs to
//! its end even when its caller stops waiting (a client gone), so it keeps its place meanwhile.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, OnceLock};
use tokio::sync::oneshot;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// Why a job was not run to its end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PoolError {
    /// The queue is full: the work was not started.
    #[error("the {pool} pool is busy: {queued} jobs are already waiting")]
    Busy {
        /// The pool's name.
        pool: &'static str,
        /// The queue's bound, all taken.
        queued: usize,
    },
    /// The job panicked (or the pool is gone): it has no result.
    #[error("a job of the {0} pool ended without a result")]
    Lost(&'static str),
    /// The pool's threads could not be started.
    #[error("the {pool} pool's threads could not be started: {reason}")]
    Unstarted {
        /// The pool's name.
        pool: &'static str,
        /// The operating system's error.
        reason: String,
    },
}

/// The pool; cloning shares it. Its threads start with the first job and end when the last clone
/// is dropped.
#[derive(Clone)]
pub struct CpuPool {
    name: &'static str,
    threads: usize,
    queue: usize,
    tx: Arc<OnceLock<SyncSender<Job>>>,
    /// Held while the threads are being started, so that they start once.
    starting: Arc<Mutex<()>>,
}

impl CpuPool {
    /// `threads` threads (at least one) named after `name`, and room for `queue` waiting jobs.
    pub fn new(name: &'static str, threads: usize, queue: usize) -> Self {
        Self {
            name,
            threads: threads.max(1),
            queue,
            tx: Arc::new(OnceLock::new()),
            starting: Arc::default(),
        }
    }

    /// The queue's sending side, the threads started on the first call. A failure to start them
    /// is not kept: the next call tries again (threads already started end with the failed queue).
    fn sender(&self) -> Result<&SyncSender<Job>, PoolError> {
        if let Some(tx) = self.tx.get() {
            return Ok(tx);
        }
        let _starting = self
            .starting
            .lock()
            .map_err(|_| PoolError::Lost(self.name))?;
        if let Some(tx) = self.tx.get() {
            return Ok(tx);
        }
        let (tx, rx) = sync_channel::<Job>(self.queue);
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..self.threads {
            let rx = rx.clone();
            std::thread::Builder::new()
                .name(format!("{}-{i}", self.name))
                .spawn(move || worker(&rx))
                .map_err(|e| PoolError::Unstarted {
                    pool: self.name,
                    reason: e.to_string(),
                })?;
        }
        Ok(self.tx.get_or_init(|| tx))
    }

    /// Runs `work` on one of the pool's threads and waits (without blocking the runtime) for its
    /// result. Once queued, the work runs to its end even if the caller stops waiting.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PoolError> {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(work());
        });
        match self.sender()?.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                return Err(PoolError::Busy {
                    pool: self.name,
                    queued: self.queue,
                })
            }
            Err(TrySendError::Disconnected(_)) => return Err(PoolError::Lost(self.name)),
        }
        result.await.map_err(|_| PoolError::Lost(self.name))
    }
}

/// Takes jobs until every sender is gone; a job that panics loses its result, not the thread.
fn worker(rx: &Mutex<Receiver<Job>>) {
    loop {
        let job = {
            let Ok(rx) = rx.lock() else { return };
            match rx.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Waker};
    use std::time::Duration;

    type Pending<T> = Pin<Box<dyn Future<Output = Result<T, PoolError>> + Send>>;

    /// Starts `work` on `pool`: polled once, so it is queued (or refused) now, in call order.
    fn submit<T: Send + 'static>(
        pool: &CpuPool,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<Pending<T>, PoolError> {
        let pool = pool.clone();
        let mut fut: Pending<T> = Box::pin(async move { pool.run(work).await });
        match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
            Poll::Ready(Err(e)) => Err(e),
            Poll::Ready(Ok(v)) => Ok(Box::pin(async move { Ok(v) })),
            Poll::Pending => Ok(fut),
        }
    }

    #[tokio::test]
    async fn never_more_than_its_threads_at_once() {
        let pool = CpuPool::new("test", 2, 64);
        let (now, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let jobs: Vec<_> = (0..12)
            .map(|i| {
                let (now, most) = (now.clone(), most.clone());
                submit(&pool, move || {
                    let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                    most.fetch_max(n, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(5));
                    now.fetch_sub(1, Ordering::SeqCst);
                    i * 10
                })
                .unwrap()
            })
            .collect();
        for (i, job) in jobs.into_iter().enumerate() {
            assert_eq!(job.await, Ok(i * 10));
        }
        assert_eq!(most.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn one_thread_takes_jobs_in_the_order_they_came() {
        let pool = CpuPool::new("test", 1, 64);
        let order = Arc::new(Mutex::new(Vec::new()));
        let jobs: Vec<_> = (0..20)
            .map(|i| {
                let order = order.clone();
                submit(&pool, move || order.lock().unwrap().push(i)).unwrap()
            })
            .collect();
        for job in jobs {
            job.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), (0..20).collect::<Vec<_>>());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_runs_nothing_more() {
        let pool = CpuPool::new("test", 1, 1);
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let (started_tx, started) = std::sync::mpsc::channel::<()>();
        let ran = Arc::new(AtomicUsize::new(0));
        // The thread holds the first job until released; the second waits in the queue.
        let first = submit(&pool, move || {
            started_tx.send(()).unwrap();
            hold.recv().unwrap();
        })
        .unwrap();
        started.recv_timeout(Duration::from_secs(5)).unwrap();
        let r = ran.clone();
        let second = submit(&pool, move || r.fetch_add(1, Ordering::SeqCst)).unwrap();
        let r = ran.clone();
        let refused = submit(&pool, move || r.fetch_add(100, Ordering::SeqCst)).err();
        assert_eq!(
            refused,
            Some(PoolError::Busy {
                pool: "test",
                queued: 1
            })
        );
        release.send(()).unwrap();
        first.await.unwrap();
        assert_eq!(second.await, Ok(0));
        assert_eq!(ran.load(Ordering::SeqCst), 1, "the refused job never ran");
    }

    #[tokio::test]
    async fn a_job_that_panics_loses_its_result_and_not_the_thread() {
        let pool = CpuPool::new("test", 1, 4);
        let lost = pool.run(|| -> u8 { panic!("boom") }).await;
        assert_eq!(lost, Err(PoolError::Lost("test")));
        assert_eq!(pool.run(|| 7).await, Ok(7));
    }
}
