//! Group commit: one flush to disk made for every concurrent writer waiting on one.
//!
//! A writer first makes its change (in the backend's memory or log buffer), then calls
//! [`GroupCommit::commit`] with the flush that would make it durable. Writers are gathered in
//! *batches*: `commit` joins the batch that the next flush to start will serve, and a batch's flush
//! starts only after every writer of the batch has joined it, so it covers each of their changes.
//!
//! At most one flush runs at a time. While it runs, new writers gather in the next batch; when it
//! ends, the first of them to wake starts the next flush (with its own flush future) for all of them.
//! A lone writer on an idle store starts its flush at once, so nothing waits on a timer.
//!
//! Each writer gets the outcome of its own batch's flush: `Ok` only once a flush that started after
//! its change has completed, and a failed flush is the same error for every writer of its batch. The
//! flush runs in a task of its own: a writer whose future is dropped (a client gone) neither cancels
//! it nor leaves the rest of its batch waiting, and a flush that panics ends its batch with an error.

use super::{Result, StoreError};
use parking_lot::Mutex;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;

/// The writers served by one flush.
#[derive(Default)]
struct Batch {
    /// The flush's outcome, set once when it ends.
    outcome: OnceLock<Result<()>>,
    /// Wakes the batch's writers when its flush ends, or when the flush before it ends (then one of
    /// them starts this batch's flush).
    wake: Notify,
}

struct State {
    /// Whether a flush is running.
    flushing: bool,
    /// The batch the next flush will serve: the one new writers join.
    next: Arc<Batch>,
}

/// Gathers concurrent writers so that one flush serves all of them; see the module documentation.
pub struct GroupCommit {
    state: Arc<Mutex<State>>,
}

impl Default for GroupCommit {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit")
            .field("flushing", &self.state.lock().flushing)
            .finish()
    }
}

/// Ends a batch when its flush task ends, by completion or by panic: sets the outcome, wakes the
/// batch's writers, then lets the next batch start its flush and wakes its writers.
struct Finish {
    state: Arc<Mutex<State>>,
    batch: Arc<Batch>,
    outcome: Option<Result<()>>,
}

impl Finish {
    fn record(&mut self, outcome: Result<()>) {
        self.outcome = Some(outcome);
    }
}

impl Drop for Finish {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| {
            Err(StoreError::Unavailable(
                "the flush to disk stopped before it ended".into(),
            ))
        });
        // Set once only: this batch's flush is the only one that ends it.
        let _ = self.batch.outcome.set(outcome);
        self.batch.wake.notify_waiters();
        let next = {
            let mut s = self.state.lock();
            s.flushing = false;
            Arc::clone(&s.next)
        };
        next.wake.notify_waiters();
    }
}

impl GroupCommit {
    /// A committer with no flush running.
    pub fn new() -> Self {
        Self {
            state: Arc::new(Mutex::new(State {
                flushing: false,
                next: Arc::new(Batch::default()),
            })),
        }
    }

    /// Waits until a flush that started after this call has completed; `flush` is run only if this
    /// writer is the one to start its batch's flush. Call it once the change to make durable is
    /// made. The flush's error, if it fails, is this writer's (and its whole batch's) error.
    pub async fn commit<F>(&self, flush: F) -> Result<()>
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        // The batch joined here is swapped out (and so closed) only when its flush starts: that
        // flush starts after this writer's change.
        let batch = Arc::clone(&self.state.lock().next);
        let mut flush = Some(flush);
        loop {
            let woken = batch.wake.notified();
            tokio::pin!(woken);
            // Registered before the checks below, so that a wake-up between them is not lost.
            woken.as_mut().enable();
            if let Some(outcome) = batch.outcome.get() {
                return outcome.clone();
            }
            if let Some(f) = flush.take() {
                if let Err(f) = self.start(&batch, f) {
                    flush = Some(f);
                }
            }
            woken.await;
        }
    }

    /// Starts `batch`'s flush unless a flush is running or `batch`'s has started; hands the flush
    /// back when it is not started.
    fn start<F>(&self, batch: &Arc<Batch>, flush: F) -> std::result::Result<(), F>
    where
        F: Future<Output = Result<()>> + Send + 'static,
    {
        {
            let mut s = self.state.lock();
            if s.flushing || !Arc::ptr_eq(&s.next, batch) {
                return Err(flush);
            }
            s.flushing = true;
            s.next = Arc::new(Batch::default());
        }
        let mut finish = Finish {
            state: Arc::clone(&self.state),
            batch: Arc::clone(batch),
            outcome: None,
        };
        tokio::spawn(async move {
            let outcome = flush.await;
            finish.record(outcome);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::Duration;

    /// A pretend backend: `write` numbers the changes in order, a flush makes every change made
    /// before it started durable once it ends.
    #[derive(Default)]
    struct Disk {
        written: AtomicU64,
        durable: AtomicU64,
        flushes: AtomicU64,
    }

    impl Disk {
        fn flush(
            self: &Arc<Self>,
            fail: bool,
        ) -> impl Future<Output = Result<()>> + Send + 'static {
            let disk = Arc::clone(self);
            async move {
                disk.flushes.fetch_add(1, Ordering::SeqCst);
                let covered = disk.written.load(Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
                if fail {
                    return Err(StoreError::Unavailable("disk full".into()));
                }
                disk.durable.fetch_max(covered, Ordering::SeqCst);
                Ok(())
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_flushes_and_none_returns_before_its_change_is_durable() {
        let gc = Arc::new(GroupCommit::new());
        let disk = Arc::new(Disk::default());
        let writers = 200;
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let (gc, disk) = (Arc::clone(&gc), Arc::clone(&disk));
                tokio::spawn(async move {
                    let mine = disk.written.fetch_add(1, Ordering::SeqCst) + 1;
                    gc.commit(disk.flush(false)).await.expect("flush");
                    assert!(
                        disk.durable.load(Ordering::SeqCst) >= mine,
                        "change {mine} reported durable before a flush covered it"
                    );
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("writer");
        }
        let flushes = disk.flushes.load(Ordering::SeqCst);
        assert!(flushes >= 1);
        assert!(
            flushes <= writers / 4,
            "{flushes} flushes for {writers} concurrent writers: not shared"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_flush_is_an_error_for_every_writer_of_its_batch() {
        let gc = Arc::new(GroupCommit::new());
        let disk = Arc::new(Disk::default());
        // A first flush held open, so that the next writers gather in one batch behind it.
        let gate = Arc::new(tokio::sync::Notify::new());
        let held = {
            let (gc, gate) = (Arc::clone(&gc), Arc::clone(&gate));
            tokio::spawn(async move {
                gc.commit(async move {
                    gate.notified().await;
                    Ok(())
                })
                .await
            })
        };
        while !gc.state.lock().flushing {
            tokio::task::yield_now().await;
        }
        let batch = Arc::clone(&gc.state.lock().next);
        let writers = 50;
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let (gc, disk) = (Arc::clone(&gc), Arc::clone(&disk));
                tokio::spawn(async move { gc.commit(disk.flush(true)).await })
            })
            .collect();
        // Every writer has joined the batch behind the held flush (each holds a reference to it).
        while Arc::strong_count(&batch) < writers + 2 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        gate.notify_one();
        assert!(held.await.expect("held writer").is_ok());
        for t in tasks {
            assert!(
                matches!(t.await.expect("writer"), Err(StoreError::Unavailable(m)) if m == "disk full"),
                "a writer of the failed batch was not told"
            );
        }
        assert_eq!(
            disk.flushes.load(Ordering::SeqCst),
            1,
            "one flush for the batch"
        );
        // The committer is usable again: the next writer gets a flush of its own.
        gc.commit(disk.flush(false)).await.expect("next flush");
        assert_eq!(disk.flushes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_gone_mid_flush_neither_stops_it_nor_strands_the_next_batch() {
        let gc = Arc::new(GroupCommit::new());
        let disk = Arc::new(Disk::default());
        let gate = Arc::new(tokio::sync::Notify::new());
        let first_done = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let gone = {
            let (gc, gate, done) = (Arc::clone(&gc), Arc::clone(&gate), Arc::clone(&first_done));
            tokio::spawn(async move {
                gc.commit(async move {
                    gate.notified().await;
                    done.store(true, Ordering::SeqCst);
                    Ok(())
                })
                .await
            })
        };
        while !gc.state.lock().flushing {
            tokio::task::yield_now().await;
        }
        gone.abort();
        assert!(gone.await.expect_err("aborted").is_cancelled());
        // A writer that joins behind the gone one's flush waits for it, then gets a flush of its own.
        let next = {
            let (gc, disk) = (Arc::clone(&gc), Arc::clone(&disk));
            tokio::spawn(async move { gc.commit(disk.flush(false)).await })
        };
        gate.notify_one();
        next.await.expect("writer").expect("flush");
        assert!(
            first_done.load(Ordering::SeqCst),
            "the gone writer's flush ran to its end"
        );
        assert_eq!(disk.flushes.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_panicking_flush_ends_its_batch_with_an_error() {
        let gc = GroupCommit::new();
        let outcome = gc
            .commit(async {
                if true {
                    panic!("flush panicked");
                }
                Ok(())
            })
            .await;
        assert!(matches!(outcome, Err(StoreError::Unavailable(_))));
        gc.commit(async { Ok(()) })
            .await
            .expect("usable afterwards");
    }
}
