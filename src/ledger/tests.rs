//! The ledger facade end to end on a real store: persistence, fencing, bounds.

use super::*;

fn config(history_limit: usize) -> LedgerConfig {
    LedgerConfig {
        locks: vec!["gpu_lock:0".into(), "gpu_lock:1".into()],
        history_limit,
        ..LedgerConfig::default()
    }
}

async fn open(dir: &std::path::Path, history_limit: usize) -> Ledger {
    let store = Store::open(dir).unwrap();
    Ledger::open(&config(history_limit), &[], store, Telemetry::new())
        .await
        .unwrap()
}

fn request(holder: &str, ttl: f64) -> AcquireRequest {
    AcquireRequest {
        lock_key: "gpu_lock:0".into(),
        holder: holder.into(),
        task_id: None,
        ttl_seconds: Some(ttl),
        wait_seconds: None,
    }
}

async fn take(l: &Ledger, holder: &str) -> Held {
    match l.acquire(request(holder, 60.0)).await.unwrap() {
        Acquired::Held(h) => h,
        Acquired::Busy(b) => panic!("busy: {b:?}"),
    }
}

#[tokio::test]
async fn history_is_bounded_and_survives_reopen_with_counters_and_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let last_token;
    {
        let l = open(dir.path(), 10).await;
        for i in 0..8 {
            let h = take(&l, &format!("w{i}")).await;
            assert!(matches!(
                l.release("gpu_lock:0", h.fencing_token).await.unwrap(),
                TokenResult::Done(_)
            ));
        }
        last_token = take(&l, "final").await.fencing_token;
        assert_eq!(last_token, 9);
        l.close().await;
    }
    let l = open(dir.path(), 10).await;
    let status = serde_json::to_value(l.lock_status("gpu_lock:0").unwrap()).unwrap();
    assert_eq!(status["lock_holder"], "final");
    assert_eq!(status["fencing_token"], last_token);
    assert_eq!(status["statistics"]["success_count"], 9);
    let history = l.inner.lock_state().history.newest(100);
    assert_eq!(history.len(), 10, "bounded by history_limit");
    assert_eq!(history[0].task_name, "final");
    assert_eq!(history[0].action, LockAction::Acquire);
    // Reopened with a smaller limit: trimmed, newest kept.
    l.close().await;
    drop(l);
    let l = open(dir.path(), 5).await;
    let history = l.inner.lock_state().history.newest(100);
    assert_eq!(history.len(), 5);
    assert_eq!(history[0].task_name, "final");
    let next = {
        let h = l.force_release("gpu_lock:0", "ops").await.unwrap();
        assert!(h.success);
        take(&l, "after").await.fencing_token
    };
    assert_eq!(next, last_token + 1);
}

/// Takes and releases `n` tokens on gpu_lock:0; returns the last one.
async fn cycle(l: &Ledger, n: usize) -> u64 {
    let mut last = 0;
    for i in 0..n {
        let h = take(l, &format!("w{i}")).await;
        last = h.fencing_token;
        assert!(matches!(
            l.release("gpu_lock:0", last).await.unwrap(),
            TokenResult::Done(_)
        ));
    }
    last
}

#[tokio::test]
async fn tokens_never_go_back_when_the_store_is_lost_or_restored() {
    let dir = tempfile::tempdir().unwrap();
    let store_file = dir.path().join(crate::store::FILE_NAME);
    let backup = dir.path().join("backup.redb");
    let l = open(dir.path(), 10).await;
    cycle(&l, 3).await;
    l.close().await;
    drop(l);
    std::fs::copy(&store_file, &backup).unwrap();
    let l = open(dir.path(), 10).await;
    let before_loss = cycle(&l, 4).await;
    assert_eq!(before_loss, 7, "a clean restart continues without a gap");
    l.close().await;
    drop(l);
    // The store moved away: a new, empty one; tokens continue above the mark.
    std::fs::remove_file(&store_file).unwrap();
    let l = open(dir.path(), 10).await;
    assert_eq!(cycle(&l, 1).await, before_loss + 1);
    let before_restore = cycle(&l, 2).await;
    l.close().await;
    drop(l);
    // An older backup restored: its counter (3) is below what was handed out since.
    std::fs::copy(&backup, &store_file).unwrap();
    let l = open(dir.path(), 10).await;
    assert!(take(&l, "after-restore").await.fencing_token > before_restore);
}

#[tokio::test]
async fn tracked_tasks_are_bounded_until_a_cleanup() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), 100).await;
    for i in 0..heartbeat::TRACKED_TASK_LIMIT {
        l.heartbeat(&format!("t{i}"), HeartbeatUpdate::default())
            .unwrap();
    }
    assert!(matches!(
        l.heartbeat("one-more", HeartbeatUpdate::default()),
        Err(LedgerError::TooManyTasks { .. })
    ));
    // Known tasks keep working; a stopped task is cleaned and makes room.
    l.heartbeat("t0", HeartbeatUpdate::default()).unwrap();
    assert!(l.heartbeat_stop("t1").unwrap());
    assert_eq!(l.heartbeat_cleanup(), (1, 0));
    l.heartbeat_start("one-more", HeartbeatUpdate::default())
        .unwrap();
}

#[tokio::test]
async fn renew_and_release_need_the_current_token() {
    let dir = tempfile::tempdir().unwrap();
    let l = open(dir.path(), 100).await;
    let h = take(&l, "a").await;
    assert!(matches!(
        l.renew("gpu_lock:0", h.fencing_token + 1, Some(5.0))
            .await
            .unwrap(),
        TokenResult::Stale(_)
    ));
    match l
        .renew("gpu_lock:0", h.fencing_token, Some(5.0))
        .await
        .unwrap()
    {
        TokenResult::Done(r) => assert!(r.expires_at <= h.expires_at),
        TokenResult::Stale(v) => panic!("stale: {v:?}"),
    }
    assert!(matches!(
        l.acquire(request("b", 1.0)).await.unwrap(),
        Acquired::Busy(Busy {
            reason: BusyReason::Held,
            ..
        })
    ));
    assert!(matches!(
        l.release("gpu_lock:1", h.fencing_token).await.unwrap(),
        TokenResult::Stale(_)
    ));
    assert!(matches!(
        l.release("gpu_lock:0", h.fencing_token).await.unwrap(),
        TokenResult::Done(_)
    ));
    assert!(matches!(
        l.release("gpu_lock:0", h.fencing_token).await.unwrap(),
        TokenResult::Stale(_)
    ));
    assert!(matches!(
        l.acquire(request("c", 0.0)).await,
        Err(LedgerError::InvalidRequest(_))
    ));
    assert!(matches!(
        l.acquire(AcquireRequest {
            lock_key: "gpu_lock:7".into(),
            ..request("c", 1.0)
        })
        .await,
        Err(LedgerError::UnknownLock(_))
    ));
}
