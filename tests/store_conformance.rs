//! The store conformance suite on every embedded backend.

use rolegate::store::memory::MemoryStore;
use rolegate::store::sled::SledStore;
use rolegate::store::{conformance, Store, StoreError};
use std::sync::Arc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms() {
    conformance::run(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run(Arc::new(SledStore::open(dir.path()).unwrap())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    conformance::run_durable(move || Arc::new(SledStore::open(&path).unwrap()) as Arc<dyn Store>)
        .await;
}

#[test]
fn a_second_opener_of_a_sled_store_is_told_it_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let _first = SledStore::open(dir.path()).unwrap();
    match SledStore::open(dir.path()) {
        Err(StoreError::Locked(msg)) => assert!(msg.contains("in use"), "{msg}"),
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("a second open succeeded"),
    }
}

#[cfg(unix)]
#[test]
fn the_sled_data_directory_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    let _s = SledStore::open(&path).unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o700
    );
}
