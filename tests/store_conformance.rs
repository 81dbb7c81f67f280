//! The store conformance suite on every backend (memory, sled, PostgreSQL), plus what only some have:
//! persistence across a reopen and across a process that exits without closing; sled's
//! one-process-per-directory lock, checked from a second process; for PostgreSQL, two stores on one
//! database as two replicas, concurrent migrations, timeouts and values it cannot hold.
//!
//! The PostgreSQL tests need `ROLEGATE_TEST_POSTGRES_URL` (scripts/test starts a throwaway server);
//! without it they fail when `CI=true` and otherwise skip with a loud message.

use rolegate::store::memory::MemoryStore;
use rolegate::store::postgres::{PgOptions, PgStore, MIGRATIONS};
use rolegate::store::sled::SledStore;
use rolegate::store::{
    conformance, DirWrite, DirectoryStore, KeyBytes, KeyStore, ReplayCache, SealingKey, Store,
    StoreError,
};
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

// ---------------------------------------------------------------------------------------------------
// PostgreSQL

/// An admin URL of a PostgreSQL server for these tests (each test creates a database of its own).
const PG_URL_ENV: &str = "ROLEGATE_TEST_POSTGRES_URL";
/// Set (to a database URL) only in the child process that writes and exits without closing.
const PG_EXITING_WRITER_URL: &str = "ROLEGATE_TEST_PG_EXITING_WRITER_URL";

/// A fresh database on the test server, dropped by [`PgDatabase::drop_now`].
struct PgDatabase {
    admin: String,
    name: String,
    url: String,
}

async fn pg_admin(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {PG_URL_ENV}: {e}"));
    tokio::spawn(conn);
    client
}

/// A new empty database, or `None` when no server is given and this is not CI (the PostgreSQL
/// tests then skip, saying so). With CI=true a missing server fails the test.
async fn pg_database(test: &str) -> Option<PgDatabase> {
    let Ok(admin) = std::env::var(PG_URL_ENV) else {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{PG_URL_ENV} is not set: with CI=true the PostgreSQL store tests must run (scripts/test starts a server)");
        }
        eprintln!(
            "\n!!! SKIPPING {test}: {PG_URL_ENV} is not set; run scripts/test, or point it at a \
             PostgreSQL server (postgresql://postgres@127.0.0.1:PORT/postgres) !!!\n"
        );
        return None;
    };
    let name = format!(
        "rg_{}_{}_{}",
        test.chars().take(30).collect::<String>(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    pg_admin(&admin)
        .await
        .batch_execute(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    Some(PgDatabase {
        admin,
        name,
        url: url.to_string(),
    })
}

impl PgDatabase {
    async fn open(&self) -> PgStore {
        PgStore::connect(&self.url, &PgOptions::default())
            .await
            .unwrap()
    }

    async fn client(&self) -> tokio_postgres::Client {
        pg_admin(&self.url).await
    }

    async fn drop_now(self) {
        pg_admin(&self.admin)
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_passes_the_conformance_suite() {
    let Some(db) = pg_database("conformance").await else {
        return;
    };
    let store = db.open().await;
    assert_eq!(store.kind(), "postgres");
    conformance::run(&store).await;
    drop(store);
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_keeps_everything_across_a_reopen() {
    let Some(db) = pg_database("durable").await else {
        return;
    };
    let url = db.url.clone();
    conformance::run_durable(move || {
        let url = url.clone();
        tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(async move {
                Arc::new(PgStore::connect(&url, &PgOptions::default()).await.unwrap())
                    as Arc<dyn Store>
            })
        })
    })
    .await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_store_accepts_one_of_many_spawned_first_uses() {
    let Some(db) = pg_database("spawned").await else {
        return;
    };
    spawned_first_uses_have_one_winner(Arc::new(db.open().await)).await;
    db.drop_now().await;
}

/// Two pools on one database behave as two replicas: a record used through one is refused
/// through the other, and racing both at once still gives one winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_postgres_stores_on_one_database_share_single_use_and_directory_records() {
    let Some(db) = pg_database("replicas").await else {
        return;
    };
    let a = Arc::new(db.open().await);
    let b = Arc::new(db.open().await);
    assert!(a.first_use("saml", "assertion-1", 1_000, 1).await.unwrap());
    assert!(
        !b.first_use("saml", "assertion-1", 1_000, 2).await.unwrap(),
        "an ID used through one store is refused through the other"
    );
    for round in 0..8 {
        let key = format!("race-{round}");
        let tasks: Vec<_> = (0..conformance::RACERS)
            .map(|i| {
                let s: Arc<dyn Store> = if i % 2 == 0 { a.clone() } else { b.clone() };
                let key = key.clone();
                tokio::spawn(async move { s.first_use("race", &key, 1_000, 1).await })
            })
            .collect();
        let mut winners = 0;
        for t in tasks {
            winners += usize::from(t.await.unwrap().unwrap());
        }
        assert_eq!(winners, 1, "round {round}: one winner over two stores");
    }
    // Absence guards hold until commit: of batches "insert x if y is absent" and "insert y if x is
    // absent" racing on two stores, never both apply.
    for round in 0..16 {
        let (x, y) = (format!("x{round}"), format!("y{round}"));
        let (a2, b2) = (a.clone(), b.clone());
        let (x1, y1, x2, y2) = (x.clone(), y.clone(), x.clone(), y.clone());
        let first = tokio::spawn(async move {
            a2.dir_write(&[
                DirWrite::insert("guard", &x1, "1".into()),
                DirWrite::absent("guard", &y1),
            ])
            .await
        });
        let second = tokio::spawn(async move {
            b2.dir_write(&[
                DirWrite::insert("guard", &y2, "1".into()),
                DirWrite::absent("guard", &x2),
            ])
            .await
        });
        let (p, q) = (
            first.await.unwrap().unwrap(),
            second.await.unwrap().unwrap(),
        );
        assert!(!(p && q), "round {round}: both guarded inserts applied");
        assert!(p || q, "round {round}: neither guarded insert applied");
    }
    // A sealing key inserted through one is seen and retired through the other.
    let key = SealingKey {
        id: "k-shared".into(),
        secret: KeyBytes::from([3; KeyBytes::LEN]),
        created_at: 10,
        retired_at: None,
    };
    assert!(a.insert_sealing_key(&key).await.unwrap());
    assert!(!b.insert_sealing_key(&key).await.unwrap());
    b.retire_sealing_key("k-shared", 20).await.unwrap();
    assert_eq!(a.sealing_keys().await.unwrap()[0].retired_at, Some(20));
    drop((a, b));
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_starting_together_migrate_once() {
    let Some(db) = pg_database("migrate").await else {
        return;
    };
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let url = db.url.clone();
            tokio::spawn(async move { PgStore::connect(&url, &PgOptions::default()).await })
        })
        .collect();
    for o in opens {
        o.await.unwrap().expect("every replica starts");
    }
    let c = db.client().await;
    let versions: Vec<i32> = c
        .query("SELECT version FROM rolegate_schema ORDER BY version", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let want: Vec<i32> = (1..=i32::try_from(MIGRATIONS.len()).unwrap()).collect();
    assert_eq!(versions, want, "each migration applied exactly once");

    // A schema from a newer build is refused, by a new connection and by health().
    let store = db.open().await;
    c.execute("INSERT INTO rolegate_schema (version) VALUES (9999)", &[])
        .await
        .unwrap();
    match PgStore::connect(&db.url, &PgOptions::default()).await {
        Err(StoreError::Corrupt(m)) => assert!(m.contains("9999"), "{m}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(matches!(store.health().await, Err(StoreError::Corrupt(_))));
    drop((store, c));
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_locked_table_gives_unavailable_within_the_statement_timeout() {
    let Some(db) = pg_database("timeout").await else {
        return;
    };
    let opts = PgOptions {
        statement_timeout: Duration::from_millis(300),
        connect_timeout: Duration::from_millis(1_000),
        ..PgOptions::default()
    };
    let store = PgStore::connect(&db.url, &opts).await.unwrap();
    let mut holder = db.client().await;
    let tx = holder.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE replays IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    match store.first_use("ns", "k", 100, 1).await {
        Err(StoreError::Unavailable(_)) => {}
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    tx.rollback().await.unwrap();
    assert!(
        store.first_use("ns", "k", 100, 1).await.unwrap(),
        "nothing was recorded by the call that timed out, and the store works again"
    );
    drop((store, holder));
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_postgres_cannot_hold_is_invalid() {
    let Some(db) = pg_database("nul").await else {
        return;
    };
    let store = db.open().await;
    assert!(matches!(
        store.first_use("ns", "a\0b", 100, 1).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(matches!(
        store
            .dir_write(&[DirWrite::insert("user", "x", "nul\0inside".into())])
            .await,
        Err(StoreError::Invalid(_))
    ));
    assert_eq!(store.dir_get("user", "x").await.unwrap(), None);
    drop(store);
    db.drop_now().await;
}

/// The other process of the exit test below: does nothing unless [`PG_EXITING_WRITER_URL`] is set.
#[tokio::test]
async fn postgres_exiting_writer_process() {
    let Ok(url) = std::env::var(PG_EXITING_WRITER_URL) else {
        return;
    };
    let store = PgStore::connect(&url, &PgOptions::default()).await.unwrap();
    conformance::write_durable(&store).await;
    std::process::exit(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_writes_survive_a_process_that_exits_without_closing() {
    let Some(db) = pg_database("exit").await else {
        return;
    };
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "postgres_exiting_writer_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(PG_EXITING_WRITER_URL, &db.url)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "writer exited with {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    conformance::check_durable(&db.open().await).await;
    db.drop_now().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_audit_batch_is_one_transaction_over_several_statements() {
    use rolegate::store::postgres::AUDIT_ROWS_PER_STATEMENT;
    use rolegate::store::{AuditLog, AuditQuery, AuditRecord};
    let Some(db) = pg_database("audit_batch").await else {
        return;
    };
    let store = db.open().await;
    let n = AUDIT_ROWS_PER_STATEMENT * 3 + 7;
    let record = |i: usize, json: &str| AuditRecord {
        time_ms: i64::try_from(i).unwrap(),
        id: format!("e{i}"),
        action: "sts:AssumeRole".into(),
        principal: None,
        decision: "allow".into(),
        json: json.into(),
    };
    let all = AuditQuery {
        limit: usize::MAX,
        newest_first: false,
        ..AuditQuery::default()
    };
    // A value PostgreSQL refuses in the last statement rolls back the earlier ones.
    let mut bad: Vec<AuditRecord> = (0..n).map(|i| record(i, "{}")).collect();
    bad[n - 1].json = "nul\0".into();
    assert!(matches!(
        store.append_audit(&bad).await,
        Err(StoreError::Invalid(_))
    ));
    assert!(store.query_audit(&all).await.unwrap().is_empty());
    // A repeat in a later statement of the batch keeps the first record.
    let mut good: Vec<AuditRecord> = (0..n).map(|i| record(i, "{}")).collect();
    good.push(record(3, "{\"later\":true}"));
    store.append_audit(&good).await.unwrap();
    let stored = store.query_audit(&all).await.unwrap();
    assert_eq!(stored.len(), n);
    assert_eq!(stored[3].json, "{}");
    drop(store);
    db.drop_now().await;
}
