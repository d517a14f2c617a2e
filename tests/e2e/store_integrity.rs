//! The store never silently starts over: an empty, truncated or damaged `keel.redb` stops
//! keel at startup with a message naming the file (exit 65, so systemd does not restart into
//! it), and fencing tokens stay above every token handed out before, also when the store is
//! deleted or an older copy is restored (the high-water mark in `keel.fence`).

use crate::harness::{client, Keel, Spec};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::Duration;

/// sysexits.h EX_DATAERR, keel's exit code for a store an operator must repair.
const EX_DATAERR: i32 = 65;

fn spec() -> Spec {
    Spec {
        extra: "[ledger]\nlocks = [\"gpu_lock:0\"]\n\n[executor]\nenabled = false\n".into(),
        ..Spec::default()
    }
}

fn store_file(k: &Keel) -> PathBuf {
    k.dir.path().join("data/keel.redb")
}

/// Starts keel on a data dir that is expected to be refused; returns (exit code, what this
/// start logged).
async fn refused_start(k: &mut Keel) -> (i32, String) {
    let before = k.log().len();
    k.spawn();
    let code = k.wait_exit(Duration::from_secs(60)).await;
    (code.unwrap_or(-1), k.log()[before..].to_string())
}

fn assert_refusal(code: i32, log: &str, store: &std::path::Path) {
    assert_eq!(code, EX_DATAERR, "{log}");
    let line = log
        .lines()
        .find(|l| l.starts_with("keel: "))
        .unwrap_or_else(|| panic!("no error line on stderr:\n{log}"));
    assert!(line.contains(&store.display().to_string()), "{line}");
    assert!(
        line.contains("Restore keel.redb from a backup") && line.contains("move it away"),
        "says what to do: {line}"
    );
    assert!(!log.contains("keel ready"), "{log}");
}

#[tokio::test]
async fn a_zero_length_store_refuses_to_start_and_is_left_alone() {
    let mut k = Keel::prepare(spec(), tempfile::tempdir().unwrap());
    let store = store_file(&k);
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    std::fs::write(&store, b"").unwrap();
    let (code, log) = refused_start(&mut k).await;
    assert_refusal(code, &log, &store);
    assert!(log.contains("empty (0 bytes)"), "{log}");
    assert_eq!(std::fs::metadata(&store).unwrap().len(), 0, "not rewritten");
}

#[tokio::test]
async fn a_store_of_random_bytes_refuses_to_start() {
    let mut k = Keel::prepare(spec(), tempfile::tempdir().unwrap());
    let store = store_file(&k);
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    let garbage: Vec<u8> = (0..64 * 1024).map(|_| rand::random::<u8>()).collect();
    std::fs::write(&store, &garbage).unwrap();
    let (code, log) = refused_start(&mut k).await;
    assert_refusal(code, &log, &store);
    assert!(log.contains("damaged"), "{log}");
    assert_eq!(std::fs::read(&store).unwrap(), garbage, "not rewritten");
}

#[tokio::test]
async fn a_truncated_real_store_refuses_to_start_and_opens_again_once_restored() {
    let mut k = Keel::start(spec()).await;
    let token = take(&k).await;
    k.stop().await;
    let store = store_file(&k);
    let intact = std::fs::read(&store).unwrap();
    std::fs::write(&store, &intact[..intact.len() / 2]).unwrap();
    let (code, log) = refused_start(&mut k).await;
    assert_refusal(code, &log, &store);
    // The operator restores the file: keel starts with its data.
    std::fs::write(&store, &intact).unwrap();
    k.spawn();
    k.wait_ready().await;
    let (_, locks) = get(&k, "/api/v1/locks").await;
    assert_eq!(locks["locks"][0]["fencing_token"], token, "{locks}");
    k.stop().await;
}

#[tokio::test]
async fn fencing_tokens_stay_above_every_earlier_one_when_the_store_is_deleted_or_restored() {
    let mut k = Keel::start(spec()).await;
    let mut highest = 0;
    for _ in 0..3 {
        let t = take(&k).await;
        assert!(t > highest);
        highest = t;
        release(&k, t).await;
    }
    k.stop().await;
    let store = store_file(&k);
    let backup = k.dir.path().join("backup.redb");
    std::fs::copy(&store, &backup).unwrap();

    // The store moved away after a clean stop: keel starts a new one, tokens go on.
    std::fs::remove_file(&store).unwrap();
    k.spawn();
    k.wait_ready().await;
    let t = take(&k).await;
    assert!(
        t > highest,
        "token {t} after the store was deleted, had {highest}"
    );
    highest = t;
    release(&k, t).await;
    // A crash right after an answered acquire, then the older backup restored.
    let held = take(&k).await;
    assert!(held > highest);
    highest = held;
    k.kill9().await;
    std::fs::copy(&backup, &store).unwrap();
    k.spawn();
    k.wait_ready().await;
    force_release(&k).await;
    let t = take(&k).await;
    assert!(
        t > highest,
        "token {t} after an old backup came back, had {highest}"
    );
    k.stop().await;
}

async fn get(k: &Keel, path: &str) -> (u16, Value) {
    let r = client().get(k.url(path)).send().await.expect("GET");
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Acquires gpu_lock:0; returns the fencing token.
async fn take(k: &Keel) -> u64 {
    let r = client()
        .post(k.url("/api/v1/locks/gpu_lock:0/acquire"))
        .json(&json!({"holder": "writer", "ttl_seconds": 600}))
        .send()
        .await
        .expect("acquire");
    let body: Value = r.json().await.expect("acquire body");
    assert_eq!(body["acquired"], true, "{body}");
    body["fencing_token"].as_u64().expect("token")
}

async fn release(k: &Keel, token: u64) {
    let r = client()
        .post(k.url("/api/v1/locks/gpu_lock:0/release"))
        .json(&json!({"fencing_token": token}))
        .send()
        .await
        .expect("release");
    assert_eq!(r.status(), 200);
}

/// The restored backup may hold an old lease; the operator clears it.
async fn force_release(k: &Keel) {
    let r = k
        .admin(client().post(k.url("/api/v1/monitoring/lock/release")))
        .json(&json!({"lock_key": "gpu_lock:0"}))
        .send()
        .await
        .expect("force release");
    assert_eq!(r.status(), 200);
}
