//! Group commit: one flush (to disk, or one transaction) made for every concurrent writer waiting on one.
//!
//! A writer calls [`GroupCommit::commit`] with its *item*: what the flush is to make durable for it
//! (nothing, for a backend whose flush covers every change made before it started; a row, for one
//! that writes the rows of a batch in one transaction). Writers are gathered in *batches*: `commit`
//! joins the newest batch that has not started (a new one if it holds the most items a batch may),
//! and a batch's flush starts only once it is the oldest waiting batch, so it covers each of its
//! writers' changes. The committer's flush function is given the batch's items in the order they
//! joined and returns one answer per item.
//!
//! At most `max_flushes` flushes run at a time. While they run, new writers gather in waiting
//! batches; when one ends, a writer woken by it starts the oldest waiting batch's flush for all of its
//! writers. A lone writer on an idle committer starts its flush at once, so nothing waits on a timer.
//!
//! Each writer gets its own answer from its own batch's flush: `Ok` only once a flush that started
//! after it joined has completed, and a failed flush is the same error for every writer of its
//! batch. The flush runs in a task of its own: a writer whose future is dropped (a client gone)
//! neither cancels it nor leaves the rest of its batch waiting (any waiting writer starts the oldest
//! batch), and a flush that panics ends its batch with an error.

use super::{Result, StoreError};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use tokio::sync::Notify;

/// A batch's flush: given the items of the batch's writers, one answer per item, in order.
type FlushFn<I, O> =
    dyn Fn(Vec<I>) -> Pin<Box<dyn Future<Output = Result<Vec<O>>> + Send>> + Send + Sync;

/// The writers served by one flush.
struct Batch<I, O> {
    /// The writers' items, taken when the flush starts.
    items: Mutex<Vec<I>>,
    /// The flush's answers, set once when it ends.
    outcome: OnceLock<Result<Vec<O>>>,
}

struct State<I, O> {
    /// How many flushes are running.
    flushing: usize,
    /// The batches waiting for a flush, oldest first; new writers join the newest.
    waiting: VecDeque<Arc<Batch<I, O>>>,
}

struct Shared<I, O> {
    state: Mutex<State<I, O>>,
    /// Wakes every waiting writer when a flush starts or ends.
    changed: Notify,
    flush: Box<FlushFn<I, O>>,
    /// The most items one batch holds.
    max_items: usize,
    /// The most flushes that run at a time.
    max_flushes: usize,
}

/// Gathers concurrent writers so that one flush serves many of them; see the module documentation.
pub struct GroupCommit<I = (), O = ()> {
    shared: Arc<Shared<I, O>>,
}

impl<I, O> std::fmt::Debug for GroupCommit<I, O> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.shared.state.lock();
        f.debug_struct("GroupCommit")
            .field("flushing", &s.flushing)
            .field("waiting", &s.waiting.len())
            .finish()
    }
}

/// Ends a batch when its flush task ends, by completion or by panic: sets the outcome, frees the
/// flush's place and wakes the waiting writers (those of the batch, and those that may start the next).
struct Finish<I, O> {
    shared: Arc<Shared<I, O>>,
    batch: Arc<Batch<I, O>>,
    outcome: Option<Result<Vec<O>>>,
}

impl<I, O> Finish<I, O> {
    fn record(&mut self, outcome: Result<Vec<O>>) {
        self.outcome = Some(outcome);
    }
}

impl<I, O> Drop for Finish<I, O> {
    fn drop(&mut self) {
        let outcome = self.outcome.take().unwrap_or_else(|| {
            Err(StoreError::Unavailable(
                "the flush stopped before it ended".into(),
            ))
        });
        // Set once only: this batch's flush is the only one that ends it.
        let _ = self.batch.outcome.set(outcome);
        self.shared.state.lock().flushing -= 1;
        self.shared.changed.notify_waiters();
    }
}

impl<I, O> GroupCommit<I, O>
where
    I: Send + 'static,
    O: Clone + Send + Sync + 'static,
{
    /// A committer whose batches hold at most `max_items` items (at least 1), with at most
    /// `max_flushes` flushes (at least 1) running at a time, each made by `flush`.
    pub fn new<F, Fut>(max_items: usize, max_flushes: usize, flush: F) -> Self
    where
        F: Fn(Vec<I>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Vec<O>>> + Send + 'static,
    {
        Self {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    flushing: 0,
                    waiting: VecDeque::new(),
                }),
                changed: Notify::new(),
                flush: Box::new(move |items| Box::pin(flush(items))),
                max_items: max_items.max(1),
                max_flushes: max_flushes.max(1),
            }),
        }
    }

    /// Joins a batch with `item` and waits until the batch's flush, started after this call, has
    /// completed; returns this writer's answer from it. Call it once the change to make durable (if
    /// the flush does not make it itself) is made. The flush's error, if it fails, is this writer's
    /// (and its whole batch's) error.
    pub async fn commit(&self, item: I) -> Result<O> {
        let (batch, index) = self.join(item);
        loop {
            let woken = self.shared.changed.notified();
            tokio::pin!(woken);
            // Registered before the checks below, so that a wake-up between them is not lost.
            woken.as_mut().enable();
            if let Some(outcome) = batch.outcome.get() {
                return match outcome {
                    Ok(answers) => answers.get(index).cloned().ok_or_else(|| {
                        StoreError::Unavailable(format!(
                            "the flush gave {} answers, not one for each writer",
                            answers.len()
                        ))
                    }),
                    Err(e) => Err(e.clone()),
                };
            }
            self.start_oldest();
            woken.await;
        }
    }

    /// Adds `item` to the newest waiting batch that has room (a new batch otherwise); returns the
    /// batch and the item's place in it.
    fn join(&self, item: I) -> (Arc<Batch<I, O>>, usize) {
        let mut s = self.shared.state.lock();
        if let Some(newest) = s.waiting.back() {
            let mut items = newest.items.lock();
            if items.len() < self.shared.max_items {
                items.push(item);
                let index = items.len() - 1;
                drop(items);
                return (Arc::clone(newest), index);
            }
        }
        let batch = Arc::new(Batch {
            items: Mutex::new(vec![item]),
            outcome: OnceLock::new(),
        });
        s.waiting.push_back(Arc::clone(&batch));
        (batch, 0)
    }

    /// Starts the oldest waiting batch's flush if fewer than `max_flushes` run.
    fn start_oldest(&self) {
        let (batch, items) = {
            let mut s = self.shared.state.lock();
            if s.flushing >= self.shared.max_flushes {
                return;
            }
            let Some(batch) = s.waiting.pop_front() else {
                return;
            };
            s.flushing += 1;
            let items = std::mem::take(&mut *batch.items.lock());
            (batch, items)
        };
        // The writers of the next batch may start it if a place is still free.
        self.shared.changed.notify_waiters();
        // Made before the flush, so that even a flush function that panics frees its place.
        let mut finish = Finish {
            shared: Arc::clone(&self.shared),
            batch,
            outcome: None,
        };
        let flush = (self.shared.flush)(items);
        tokio::spawn(async move {
            finish.record(flush.await);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
    use std::time::Duration;

    /// What a writer asks of a pretend flush.
    #[derive(Clone, Copy, PartialEq)]
    enum Op {
        Ok,
        /// The flush fails.
        Fail,
        /// The flush waits for the gate to open.
        Hold,
    }

    /// A pretend backend: `write` numbers the changes in order, a flush makes every change made
    /// before it started durable once it ends.
    #[derive(Default)]
    struct Disk {
        written: AtomicU64,
        durable: AtomicU64,
        flushes: AtomicU64,
        largest_batch: AtomicUsize,
        gate: tokio::sync::Notify,
        held_done: AtomicBool,
    }

    fn committer(disk: &Arc<Disk>, max_items: usize) -> Arc<GroupCommit<Op, usize>> {
        let disk = Arc::clone(disk);
        Arc::new(GroupCommit::new(max_items, 1, move |ops: Vec<Op>| {
            let disk = Arc::clone(&disk);
            async move {
                disk.flushes.fetch_add(1, Ordering::SeqCst);
                disk.largest_batch.fetch_max(ops.len(), Ordering::SeqCst);
                let covered = disk.written.load(Ordering::SeqCst);
                if ops.contains(&Op::Hold) {
                    disk.gate.notified().await;
                    disk.held_done.store(true, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                if ops.contains(&Op::Fail) {
                    return Err(StoreError::Unavailable("disk full".into()));
                }
                disk.durable.fetch_max(covered, Ordering::SeqCst);
                // Each writer's answer: its place in the batch.
                Ok((0..ops.len()).collect())
            }
        }))
    }

    async fn until_flushing(gc: &GroupCommit<Op, usize>) {
        while gc.shared.state.lock().flushing == 0 {
            tokio::task::yield_now().await;
        }
    }

    async fn until_waiting(gc: &GroupCommit<Op, usize>, writers: usize) {
        while gc
            .shared
            .state
            .lock()
            .waiting
            .iter()
            .map(|b| b.items.lock().len())
            .sum::<usize>()
            < writers
        {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_writers_share_flushes_and_none_returns_before_its_change_is_durable() {
        let disk = Arc::new(Disk::default());
        let gc = committer(&disk, usize::MAX);
        let writers = 200;
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let (gc, disk) = (Arc::clone(&gc), Arc::clone(&disk));
                tokio::spawn(async move {
                    let mine = disk.written.fetch_add(1, Ordering::SeqCst) + 1;
                    gc.commit(Op::Ok).await.expect("flush");
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
    async fn each_writer_gets_its_own_answer_and_batches_keep_to_their_size() {
        let disk = Arc::new(Disk::default());
        let gc = committer(&disk, 4);
        let held = {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move { gc.commit(Op::Hold).await })
        };
        until_flushing(&gc).await;
        let writers = 10;
        let tasks: Vec<_> = (0..writers)
            .map(|_| {
                let gc = Arc::clone(&gc);
                tokio::spawn(async move { gc.commit(Op::Ok).await })
            })
            .collect();
        until_waiting(&gc, writers).await;
        disk.gate.notify_one();
        assert_eq!(held.await.expect("held writer").expect("flush"), 0);
        let mut answers: Vec<usize> = Vec::new();
        for t in tasks {
            answers.push(t.await.expect("writer").expect("flush"));
        }
        answers.sort_unstable();
        // Three batches behind the held flush (4, 4 and 2 writers), each writer told its own place.
        assert_eq!(answers, [0, 0, 0, 1, 1, 1, 2, 2, 3, 3]);
        assert_eq!(disk.largest_batch.load(Ordering::SeqCst), 4);
        assert_eq!(disk.flushes.load(Ordering::SeqCst), 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_failed_flush_is_an_error_for_every_writer_of_its_batch() {
        let disk = Arc::new(Disk::default());
        let gc = committer(&disk, usize::MAX);
        // A first flush held open, so that the next writers gather in one batch behind it.
        let held = {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move { gc.commit(Op::Hold).await })
        };
        until_flushing(&gc).await;
        let writers = 50;
        let tasks: Vec<_> = (0..writers)
            .map(|i| {
                let gc = Arc::clone(&gc);
                let op = if i == 7 { Op::Fail } else { Op::Ok };
                tokio::spawn(async move { gc.commit(op).await })
            })
            .collect();
        until_waiting(&gc, writers).await;
        disk.gate.notify_one();
        assert!(held.await.expect("held writer").is_ok());
        for t in tasks {
            assert!(
                matches!(t.await.expect("writer"), Err(StoreError::Unavailable(m)) if m == "disk full"),
                "a writer of the failed batch was not told"
            );
        }
        assert_eq!(
            disk.flushes.load(Ordering::SeqCst),
            2,
            "one flush for the batch"
        );
        // The committer is usable again: the next writer gets a flush of its own.
        gc.commit(Op::Ok).await.expect("next flush");
        assert_eq!(disk.flushes.load(Ordering::SeqCst), 3);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_writer_gone_mid_flush_neither_stops_it_nor_strands_the_next_batch() {
        let disk = Arc::new(Disk::default());
        let gc = committer(&disk, usize::MAX);
        let gone = {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move { gc.commit(Op::Hold).await })
        };
        until_flushing(&gc).await;
        gone.abort();
        assert!(gone.await.expect_err("aborted").is_cancelled());
        // A writer that joins behind the gone one's flush waits for it, then gets a flush of its own.
        let next = {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move { gc.commit(Op::Ok).await })
        };
        until_waiting(&gc, 1).await;
        disk.gate.notify_one();
        next.await.expect("writer").expect("flush");
        assert!(
            disk.held_done.load(Ordering::SeqCst),
            "the gone writer's flush ran to its end"
        );
        assert_eq!(disk.flushes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_waiting_batch_whose_writers_are_all_gone_does_not_strand_the_batches_behind_it() {
        let disk = Arc::new(Disk::default());
        let gc = committer(&disk, 1);
        let held = {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move { gc.commit(Op::Hold).await })
        };
        until_flushing(&gc).await;
        let gone = {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move { gc.commit(Op::Ok).await })
        };
        until_waiting(&gc, 1).await;
        gone.abort();
        assert!(gone.await.expect_err("aborted").is_cancelled());
        let behind = {
            let gc = Arc::clone(&gc);
            tokio::spawn(async move { gc.commit(Op::Ok).await })
        };
        until_waiting(&gc, 2).await;
        disk.gate.notify_one();
        held.await.expect("held writer").expect("flush");
        tokio::time::timeout(Duration::from_secs(5), behind)
            .await
            .expect("the batch behind a deserted one is flushed")
            .expect("writer")
            .expect("flush");
        assert_eq!(
            disk.flushes.load(Ordering::SeqCst),
            3,
            "the deserted batch too"
        );
    }

    #[tokio::test]
    async fn a_panicking_flush_ends_its_batch_with_an_error() {
        let gc = GroupCommit::new(usize::MAX, 1, |items: Vec<bool>| async move {
            if items.contains(&true) {
                panic!("flush panicked");
            }
            Ok(vec![(); items.len()])
        });
        assert!(matches!(
            gc.commit(true).await,
            Err(StoreError::Unavailable(_))
        ));
        gc.commit(false).await.expect("usable afterwards");
    }

    #[tokio::test]
    async fn a_flush_with_too_few_answers_is_an_error_not_a_wrong_answer() {
        let gc = GroupCommit::new(usize::MAX, 1, |_: Vec<()>| async { Ok(Vec::<bool>::new()) });
        assert!(matches!(
            gc.commit(()).await,
            Err(StoreError::Unavailable(_))
        ));
    }
}
