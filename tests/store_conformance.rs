//! The store conformance suite on every embedded backend, plus what only sled has: persistence across a
//! reopen and its one-process-per-directory lock, checked from a second process.

use rolegate::store::memory::MemoryStore;
use rolegate::store::sled::SledStore;
use rolegate::store::{conformance, Store, StoreError};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, Arc};
use std::time::Duration;

/// Set (to a store directory) only in the child process that holds the lock.
const HOLDER_DIR: &str = "ROLEGATE_STORE_LOCK_HOLDER_DIR";
const HOLDER_READY: &str = "store-lock-holder-ready";
/// Set (to a store directory) only in the child process that writes and exits without closing.
const EXITING_WRITER_DIR: &str = "ROLEGATE_STORE_EXITING_WRITER_DIR";

fn this_test_in_a_child(name: &str, env: &str, dir: &Path) -> Command {
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(env, dir);
    child
}

async fn spawned_first_uses_have_one_winner(store: Arc<dyn Store>) {
    let tasks: Vec<_> = (0..conformance::RACERS)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.first_use("spawned", "same", 1_000, 1).await })
        })
        .collect();
    let mut winners = 0;
    for task in tasks {
        if task.await.unwrap().unwrap() {
            winners += 1;
        }
    }
    assert_eq!(winners, 1, "{} spawned tasks, one key", conformance::RACERS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_passes_the_conformance_suite() {
    conformance::run(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    conformance::run(&SledStore::open(dir.path()).unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_keeps_everything_across_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("data");
    conformance::run_durable(move || Arc::new(SledStore::open(&path).unwrap()) as Arc<dyn Store>)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_accepts_one_of_many_spawned_first_uses() {
    spawned_first_uses_have_one_winner(Arc::new(MemoryStore::new())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_accepts_one_of_many_spawned_first_uses() {
    let dir = tempfile::tempdir().unwrap();
    spawned_first_uses_have_one_winner(Arc::new(SledStore::open(dir.path()).unwrap())).await;
}

/// The other process of the lock test below: does nothing unless [`HOLDER_DIR`] is set; then holds
/// the store open until its stdin closes. (libtest prints `test <name> ... ` before the test runs, so
/// the ready marker shares that line.)
#[test]
fn sled_lock_holder_process() {
    let Some(dir) = std::env::var_os(HOLDER_DIR) else {
        return;
    };
    let store = SledStore::open(Path::new(&dir)).unwrap();
    println!("{HOLDER_READY}");
    std::io::stdout().flush().unwrap();
    let mut rest = String::new();
    let _ = std::io::stdin().read_line(&mut rest);
    drop(store);
}

#[test]
fn opening_a_sled_store_that_another_process_holds_is_locked() {
    let dir = tempfile::tempdir().unwrap();
    let mut holder = this_test_in_a_child("sled_lock_holder_process", HOLDER_DIR, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = holder.stdout.take().unwrap();
    let (ready_tx, ready_rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(HOLDER_READY) {
                let _ = ready_tx.send(());
            }
        }
    });
    if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = holder.kill();
        let out = holder.wait_with_output().unwrap();
        panic!(
            "the holder process never opened the store: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    match SledStore::open(dir.path()) {
        Err(StoreError::Locked(msg)) => {
            assert!(msg.contains(&dir.path().display().to_string()), "{msg}");
            assert!(msg.contains("in use by another rolegate process"), "{msg}");
        }
        other => panic!("expected StoreError::Locked, got {other:?}"),
    }

    drop(holder.stdin.take());
    let status = holder.wait().unwrap();
    assert!(status.success(), "holder exited with {status}");
    reader.join().unwrap();
    SledStore::open(dir.path()).expect("the store opens once the holder has exited");
}

/// The other process of the exit test below: does nothing unless [`EXITING_WRITER_DIR`] is set; then
/// writes and exits at once, dropping nothing, so only what was flushed before each call returned
/// survives.
#[tokio::test]
async fn sled_exiting_writer_process() {
    let Some(dir) = std::env::var_os(EXITING_WRITER_DIR) else {
        return;
    };
    let store = SledStore::open(Path::new(&dir)).unwrap();
    conformance::write_durable(&store).await;
    std::process::exit(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sled_store_writes_survive_a_process_that_exits_without_closing() {
    let dir = tempfile::tempdir().unwrap();
    let out = this_test_in_a_child(
        "sled_exiting_writer_process",
        EXITING_WRITER_DIR,
        dir.path(),
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "writer exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    conformance::check_durable(&SledStore::open(dir.path()).unwrap()).await;
}
