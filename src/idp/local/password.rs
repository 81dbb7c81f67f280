//! Password hashing with argon2id, off the async runtime: every hash and verification runs on the
//! blocking pool behind a semaphore, so a burst of logins queues instead of stalling request
//! handling, and memory stays bounded (one `PARAMS.m_cost` buffer per permit).

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

/// Memory cost in KiB (32 MiB): about 80 ms per hash on one core of the reference machine
/// (`cargo bench --bench password`), above OWASP's argon2id floor (19 MiB, 2 passes).
pub const MEMORY_KIB: u32 = 32 * 1024;
/// Passes over memory.
pub const ITERATIONS: u32 = 2;
/// Lanes.
pub const LANES: u32 = 1;

/// A password as typed. `Debug` prints `***`.
pub type Password = crate::secret::Secret;

/// Errors of hashing (never of a wrong password, which is `false`).
#[derive(Debug, thiserror::Error)]
pub enum HashError {
    /// The hasher failed (parameters, randomness, a stored hash that is not a PHC string).
    #[error("password hashing failed: {0}")]
    Failed(String),
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

/// Hashes and verifies passwords on the blocking pool, a bounded number at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    decoy: Arc<OnceLock<String>>,
}

impl Default for Hasher {
    fn default() -> Self {
        Self::new(std::thread::available_parallelism().map_or(2, |n| n.get()))
    }
}

impl Hasher {
    /// A hasher running at most `concurrent` hashes at once.
    pub fn new(concurrent: usize) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(concurrent.max(1))),
            decoy: Arc::new(OnceLock::new()),
        }
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Failed("hasher closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| HashError::Failed(e.to_string()))?
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
