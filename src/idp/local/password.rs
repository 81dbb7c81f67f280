//! Password hashing with argon2id, off the async runtime: every hash and verification runs on a
//! [`CpuPool`] of one thread per core, the others waiting their turn in arrival order, so that a
//! burst of logins neither stalls request handling nor runs every hash at once, and memory stays
//! bounded (one [`MEMORY_KIB`] buffer per running hash). The wait is bounded too: past
//! [`QUEUE_PER_THREAD`] waiting hashes per thread, a new one is refused at once
//! ([`HashError::Busy`]) rather than queued behind seconds of work. A hash whose caller stops
//! waiting (a client gone) still runs to its end and keeps its place meanwhile.

use crate::cpu_pool::{CpuPool, PoolError};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, OnceLock};

/// Memory cost in KiB (32 MiB): about 80 ms per hash on one core of the reference machine
/// (`cargo bench --bench password`), above OWASP's argon2id floor (19 MiB, 2 passes).
pub const MEMORY_KIB: u32 = 32 * 1024;
/// Passes over memory.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const LANES: u32 = 1;
/// Hashes that may wait for each thread; beyond that a new one is refused. With about 75 ms a
/// hash, the last one admitted starts within about `QUEUE_PER_THREAD` × 75 ms (under 5 s): a
/// burst of sign-ins is served late rather than refused, and only a backlog no person would wait
/// for is shed. Waiting hashes hold no argon2 memory.
pub const QUEUE_PER_THREAD: usize = 64;

/// A password as typed. `Debug` prints `***`.
pub type Password = crate::secret::Secret;

/// Errors of hashing (never of a wrong password, which is `false`).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hasher failed (parameters, randomness, a stored hash that is not a PHC string).
    #[error("password hashing failed: {0}")]
    Failed(String),
    /// Every thread is hashing and the queue is full: refused without waiting.
    #[error("password hashing is at capacity ({waiting} waiting for a thread); try again shortly")]
    Busy {
        /// Hashes waiting for a thread.
        waiting: usize,
    },
}

impl From<HashError> for super::DirectoryError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Busy { .. } => Self::Busy(e.to_string()),
            HashError::Failed(_) => Self::Internal(e.to_string()),
        }
    }
}

fn argon() -> Result<Argon2<'static>, HashError> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, LANES, None)
        .map_err(|e| HashError::Failed(e.to_string()))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` now, on the calling thread (for the blocking pool and for tools).
pub fn hash_blocking(password: &Password) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    crate::credentials::fill_random(&mut salt).map_err(|e| HashError::Failed(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| HashError::Failed(e.to_string()))?;
    argon()?
        .hash_password(password.expose().as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Failed(e.to_string()))
}

/// Whether `password` matches the PHC string `hash`, on the calling thread. Parameters come from the
/// stored hash, so hashes made with earlier parameters still verify.
pub fn verify_blocking(hash: &str, password: &Password) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(hash).map_err(|e| HashError::Failed(e.to_string()))?;
    if parsed.algorithm.as_str() != "argon2id" {
        return Err(HashError::Failed(format!(
            "stored hash uses {}, not argon2id",
            parsed.algorithm
        )));
    }
    Ok(Argon2::default()
        .verify_password(password.expose().as_bytes(), &parsed)
        .is_ok())
}

/// Hashes and verifies passwords on a pool of threads: at most `concurrent` at once, the others
/// served in arrival order, at most `queue` of them waiting.
#[derive(Clone)]
pub struct Hasher {
    pool: CpuPool,
    #[cfg(test)]
    queue: usize,
    decoy: Arc<OnceLock<String>>,
    /// Set by tests of what a refusal does at the edge: every place taken.
    #[cfg(test)]
    full: Arc<std::sync::atomic::AtomicBool>,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

impl Hasher {
    /// A hasher running at most `concurrent` hashes at once, with [`QUEUE_PER_THREAD`] waiting
    /// for each.
    pub fn new(concurrent: usize) -> Self {
        Self::with_queue(concurrent, concurrent.max(1) * QUEUE_PER_THREAD)
    }

    /// A hasher running at most `concurrent` hashes at once, with at most `queue` waiting.
    pub fn with_queue(concurrent: usize, queue: usize) -> Self {
        Self {
            pool: CpuPool::new("password-hash", concurrent, queue),
            #[cfg(test)]
            queue,
            decoy: Arc::new(OnceLock::new()),
            #[cfg(test)]
            full: Arc::default(),
        }
    }

    /// Takes every place, running and waiting (as a burst of sign-ins would), or gives them back:
    /// for tests of what a refusal does at the edge.
    #[cfg(test)]
    pub(crate) fn test_fill(&self, full: bool) {
        self.full.store(full, std::sync::atomic::Ordering::Release);
    }

    /// Runs `work` on the pool, in arrival order; a full queue refuses it at once.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        #[cfg(test)]
        if self.full.load(std::sync::atomic::Ordering::Acquire) {
            return Err(HashError::Busy {
                waiting: self.queue,
            });
        }
        match self.pool.run(work).await {
            Ok(r) => r,
            Err(PoolError::Busy { queued, .. }) => Err(HashError::Busy { waiting: queued }),
            Err(e) => Err(HashError::Failed(e.to_string())),
        }
    }

    /// A new argon2id PHC string for `password`.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.run(move || hash_blocking(&password)).await
    }

    /// Whether `password` matches `hash`. With no hash (unknown user, no password set) the same work
    /// is done against a decoy and the answer is `false`, so timing does not tell which it was.
    pub async fn verify(
        &self,
        hash: Option<String>,
        password: Password,
    ) -> Result<bool, HashError> {
        let decoy = Arc::clone(&self.decoy);
        self.run(move || match hash {
            Some(h) => verify_blocking(&h, &password),
            None => {
                let d = match decoy.get() {
                    Some(d) => d.clone(),
                    None => {
                        let d = hash_blocking(&Password::new("decoy password never matches"))?;
                        decoy.get_or_init(|| d).clone()
                    }
                };
                verify_blocking(&d, &password).map(|_| false)
            }
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    /// Work that blocks its thread until released, telling `started` when it begins.
    fn gated(
        i: usize,
        started: mpsc::Sender<usize>,
    ) -> (
        mpsc::Sender<()>,
        impl FnOnce() -> Result<usize, HashError> + Send + 'static,
    ) {
        let (release, gate) = mpsc::channel::<()>();
        (release, move || {
            let _ = started.send(i);
            let _ = gate.recv();
            Ok(i)
        })
    }

    #[tokio::test]
    async fn never_runs_more_than_its_threads_at_once() {
        let h = Hasher::with_queue(2, 64);
        let running = Arc::new(AtomicUsize::new(0));
        let most = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let (h, running, most) = (h.clone(), running.clone(), most.clone());
                tokio::spawn(async move {
                    h.run(move || {
                        let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::thread::sleep(Duration::from_millis(30));
                        running.fetch_sub(1, Ordering::SeqCst);
                        Ok(())
                    })
                    .await
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        assert_eq!(most.load(Ordering::SeqCst), 2, "two threads, both used");
    }

    /// The next job to start, polling so that the runtime keeps serving the waiting tasks.
    async fn next_started(started: &mpsc::Receiver<usize>) -> usize {
        for _ in 0..5000 {
            if let Ok(i) = started.try_recv() {
                return i;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        panic!("no job started");
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once_and_admits_again_once_drained() {
        let h = Hasher::with_queue(1, 2);
        let (started_tx, started) = mpsc::channel();
        let mut releases = Vec::new();
        let mut tasks = Vec::new();
        for i in 0..3 {
            let (release, work) = gated(i, started_tx.clone());
            releases.push(release);
            let h2 = h.clone();
            tasks.push(tokio::spawn(async move { h2.run(work).await }));
            if i == 0 {
                assert_eq!(next_started(&started).await, 0);
            } else {
                // Queued once its task has run.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // One running, two waiting: the fourth is refused without waiting and runs nothing.
        let refused = tokio::time::timeout(
            Duration::from_secs(1),
            h.run(|| -> Result<usize, HashError> { panic!("a refused hash ran") }),
        )
        .await;
        match refused {
            Ok(Err(e @ HashError::Busy { .. })) => {
                assert!(matches!(e, HashError::Busy { waiting: 2 }));
                assert_eq!(
                    e.to_string(),
                    "password hashing is at capacity (2 waiting for a thread); try again shortly"
                );
            }
            other => panic!("not refused: {other:?}"),
        }
        for (i, release) in releases.into_iter().enumerate() {
            if i > 0 {
                assert_eq!(next_started(&started).await, i);
            }
            release.send(()).unwrap();
        }
        for (i, t) in tasks.into_iter().enumerate() {
            assert_eq!(t.await.unwrap().unwrap(), i);
        }
        assert_eq!(h.run(|| Ok(7)).await.unwrap(), 7, "admitted again");
    }

    #[tokio::test]
    async fn a_caller_that_stops_waiting_keeps_its_hash_counted_until_it_ends() {
        let h = Hasher::with_queue(1, 4);
        let (started_tx, started) = mpsc::channel();
        let (release_a, a) = gated(0, started_tx.clone());
        let h2 = h.clone();
        let caller = tokio::spawn(async move { h2.run(a).await });
        assert_eq!(next_started(&started).await, 0);
        // The client goes away while its hash runs on a thread.
        caller.abort();
        let _ = caller.await;
        let (release_b, b) = gated(1, started_tx.clone());
        let h2 = h.clone();
        let second = tokio::spawn(async move { h2.run(b).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(
            started.try_recv().is_err(),
            "a second hash started while the first still ran"
        );
        release_a.send(()).unwrap();
        assert_eq!(next_started(&started).await, 1);
        release_b.send(()).unwrap();
        assert_eq!(second.await.unwrap().unwrap(), 1);
    }

    #[tokio::test]
    async fn hashes_verify_only_the_same_password() {
        let h = Hasher::new(2);
        let hash = h
            .hash(Password::new("correct horse battery"))
            .await
            .unwrap();
        let params = format!("$argon2id$v=19$m={MEMORY_KIB},t={ITERATIONS},p={LANES}$");
        assert!(hash.starts_with(&params), "{hash}");
        assert_eq!(params, "$argon2id$v=19$m=32768,t=2,p=1$");
        assert!(h
            .verify(Some(hash.clone()), Password::new("correct horse battery"))
            .await
            .unwrap());
        assert!(!h
            .verify(Some(hash.clone()), Password::new("correct horse batterY"))
            .await
            .unwrap());
        let again = h
            .hash(Password::new("correct horse battery"))
            .await
            .unwrap();
        assert_ne!(hash, again, "each hash has its own salt");
        assert!(!h
            .verify(None, Password::new("decoy password never matches"))
            .await
            .unwrap());
    }

    #[test]
    fn foreign_or_broken_hashes_are_errors_not_matches() {
        let p = Password::new("x");
        assert!(verify_blocking("not a phc string", &p).is_err());
        // An argon2i hash (not argon2id) is refused even if it would verify.
        let i = Argon2::new(
            Algorithm::Argon2i,
            Version::V0x13,
            Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"x", &SaltString::encode_b64(&[1; 16]).unwrap())
        .unwrap()
        .to_string();
        assert!(verify_blocking(&i, &p).is_err());
        assert_eq!(format!("{p:?}"), "***");
    }
}
