//! keel ledger benchmark: keel's worker API against Redis doing the equivalent lock protocol,
//! side by side in one run, and a crash run with `kill -9` at random points.
//!
//! Lock protocol on Redis (what the reference workers did): `INCR fence:{key}` for a token,
//! `SET lock:{key} {holder}:{token} NX PX ttl` to take it, and a Lua compare-and-delete to
//! release it. Redis runs with `appendonly yes` and `appendfsync always` (every write fsynced
//! before the reply, as keel's lock operations are) and `appendfsync everysec` (fsync once a
//! second: faster, loses up to a second of acknowledged writes on power loss).
//!
//! Loopback only; every phase is bounded in time (`--seconds`). Usage:
//! `keel-ledger-bench --keel target/release/keel [--redis-server redis-server]
//!  [--seconds 5] [--crash-ops 10000] [--only keel|redis|crash]`

use rand::Rng;
use serde_json::{json, Value};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CLIENTS_MAX: usize = 16;
const RELEASE_LUA: &str =
    "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

struct Args {
    keel: PathBuf,
    redis_server: String,
    seconds: f64,
    crash_ops: u64,
    /// `keel`, `redis` or `crash`: run only that part (profiling); default all.
    only: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        keel: PathBuf::from("target/release/keel"),
        redis_server: "redis-server".into(),
        seconds: 5.0,
        crash_ops: 10_000,
        only: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i + 1 < argv.len() {
        let v = argv[i + 1].clone();
        match argv[i].as_str() {
            "--keel" => a.keel = PathBuf::from(v),
            "--redis-server" => a.redis_server = v,
            "--seconds" => a.seconds = v.parse().unwrap_or(a.seconds),
            "--crash-ops" => a.crash_ops = v.parse().unwrap_or(a.crash_ops),
            "--only" => a.only = Some(v),
            other => eprintln!("ignoring unknown argument {other}"),
        }
        i += 2;
    }
    a
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx].as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------- keel process

struct KeelProc {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl KeelProc {
    fn new(bin: &Path) -> KeelProc {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = free_port();
        let locks: Vec<String> = (0..CLIENTS_MAX)
            .map(|i| format!("\"gpu_lock:{i}\""))
            .collect();
        let config = format!(
            "data_dir = \"{d}/data\"\nshutdown_grace = \"5s\"\n[control]\nlisten = \"127.0.0.1:{port}\"\nadmin_token = \"bench-admin-token\"\n[proxy]\nlisten = \"127.0.0.1:{pp}\"\n[log]\nformat = \"json\"\nlevel = \"warn\"\n[ledger]\nlocks = [{locks}]\n",
            d = dir.path().display(),
            pp = free_port(),
            locks = locks.join(", ")
        );
        std::fs::write(dir.path().join("keel.toml"), config).expect("config");
        KeelProc {
            bin: bin.to_path_buf(),
            dir,
            port,
            child: None,
        }
    }

    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    async fn start(&mut self) -> Res<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("keel.log"))?;
        let child = Command::new(&self.bin)
            .arg("run")
            .arg("--config")
            .arg(self.dir.path().join("keel.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let client = reqwest::Client::new();
        let url = format!("{}/health/ready", self.base());
        for _ in 0..600 {
            if let Ok(r) = client.get(&url).send().await {
                if r.status() == 200 {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("keel did not become ready".into())
    }

    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a child we spawned.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGKILL);
            }
            let _ = c.wait();
        }
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: kill(2) on a child we spawned.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let _ = c.wait();
        }
    }
}

impl Drop for KeelProc {
    fn drop(&mut self) {
        self.kill9();
    }
}

// ---------------------------------------------------------------- redis process

struct RedisProc {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl RedisProc {
    async fn start(bin: &str, fsync: &str) -> Res<RedisProc> {
        let dir = tempfile::tempdir()?;
        let port = free_port();
        let child = Command::new(bin)
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "yes", "--appendfsync", fsync])
            .arg("--dir")
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        let r = RedisProc {
            child,
            port,
            _dir: dir,
        };
        for _ in 0..300 {
            if let Ok(mut c) = r.connect().await {
                if redis::cmd("PING")
                    .query_async::<String>(&mut c)
                    .await
                    .is_ok()
                {
                    return Ok(r);
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("redis-server did not start".into())
    }

    async fn connect(&self) -> Res<redis::aio::MultiplexedConnection> {
        let client = redis::Client::open(format!("redis://127.0.0.1:{}/", self.port))?;
        Ok(client.get_multiplexed_async_connection().await?)
    }
}

impl Drop for RedisProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------- the lock protocols

async fn keel_acquire(
    c: &reqwest::Client,
    base: &str,
    key: &str,
    holder: &str,
    ttl: f64,
) -> Res<(u16, Value)> {
    let r = c
        .post(format!("{base}/api/v1/locks/{key}/acquire"))
        .json(&json!({"holder": holder, "ttl_seconds": ttl}))
        .send()
        .await?;
    let s = r.status().as_u16();
    Ok((s, r.json().await?))
}

async fn keel_release(c: &reqwest::Client, base: &str, key: &str, token: u64) -> Res<(u16, Value)> {
    let r = c
        .post(format!("{base}/api/v1/locks/{key}/release"))
        .json(&json!({"fencing_token": token}))
        .send()
        .await?;
    let s = r.status().as_u16();
    Ok((s, r.json().await?))
}

async fn keel_cycle(c: &reqwest::Client, base: &str, key: &str, holder: &str) -> Res<()> {
    let (s, a) = keel_acquire(c, base, key, holder, 30.0).await?;
    if s != 200 {
        return Err(format!("acquire {s}: {a}").into());
    }
    let token = a["fencing_token"].as_u64().ok_or("no token")?;
    let (s, r) = keel_release(c, base, key, token).await?;
    if s != 200 {
        return Err(format!("release {s}: {r}").into());
    }
    Ok(())
}

async fn redis_cycle(
    conn: &mut redis::aio::MultiplexedConnection,
    release: &redis::Script,
    key: &str,
    holder: &str,
) -> Res<()> {
    let token: u64 = redis::cmd("INCR")
        .arg(format!("fence:{key}"))
        .query_async(conn)
        .await?;
    let value = format!("{holder}:{token}");
    let set: Option<String> = redis::cmd("SET")
        .arg(format!("lock:{key}"))
        .arg(&value)
        .arg("NX")
        .arg("PX")
        .arg(30_000)
        .query_async(conn)
        .await?;
    if set.is_none() {
        return Err("SET NX refused".into());
    }
    let deleted: i64 = release
        .key(format!("lock:{key}"))
        .arg(&value)
        .invoke_async(conn)
        .await?;
    if deleted != 1 {
        return Err("compare-and-delete refused".into());
    }
    Ok(())
}

// ---------------------------------------------------------------- measurements

#[derive(Clone, Copy)]
enum Target<'a> {
    Keel(&'a str),
    Redis(&'a RedisProc),
}

struct Throughput {
    cycles_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// `clients` workers, each cycling acquire+release on its own lock key for `seconds`.
async fn cycles(target: Target<'_>, clients: usize, seconds: f64) -> Res<Throughput> {
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut handles = Vec::new();
    let started = Instant::now();
    for i in 0..clients {
        let key = format!("gpu_lock:{i}");
        let holder = format!("bench-{i}");
        match target {
            Target::Keel(base) => {
                let base = base.to_string();
                let c = reqwest::Client::new();
                handles.push(tokio::spawn(async move {
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        keel_cycle(&c, &base, &key, &holder).await?;
                        lat.push(t.elapsed());
                    }
                    Ok::<_, Box<dyn std::error::Error + Send + Sync>>(lat)
                }));
            }
            Target::Redis(r) => {
                let mut conn = r.connect().await?;
                handles.push(tokio::spawn(async move {
                    let script = redis::Script::new(RELEASE_LUA);
                    let mut lat = Vec::new();
                    while Instant::now() < deadline {
                        let t = Instant::now();
                        redis_cycle(&mut conn, &script, &key, &holder).await?;
                        lat.push(t.elapsed());
                    }
                    Ok(lat)
                }));
            }
        }
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await??);
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_unstable();
    Ok(Throughput {
        cycles_per_second: all.len() as f64 / elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
    })
}

#[derive(Clone, Copy)]
enum Query {
    Status,
    Heartbeat,
}

/// One client, sequential requests for `seconds` (after 200 warm-up requests): p50/p99 ms.
async fn latency(target: Target<'_>, q: Query, seconds: f64) -> Res<(f64, f64, usize)> {
    let c = reqwest::Client::new();
    let mut conn = match target {
        Target::Redis(r) => Some(r.connect().await?),
        Target::Keel(_) => None,
    };
    let mut lat = Vec::new();
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut n: u64 = 0;
    while Instant::now() < deadline {
        n += 1;
        let progress = (n % 100) as f64 / 100.0;
        let t = Instant::now();
        match (target, q, conn.as_mut()) {
            (Target::Keel(base), Query::Status, _) => {
                let r = c
                    .get(format!(
                        "{base}/api/v1/monitoring/gpu-lock/status?lock_key=gpu_lock:0"
                    ))
                    .send()
                    .await?;
                let _: Value = r.json().await?;
            }
            (Target::Keel(base), Query::Heartbeat, _) => {
                let r = c
                    .post(format!("{base}/api/v1/heartbeats/bench-task"))
                    .json(&json!({"progress": progress}))
                    .send()
                    .await?;
                let _: Value = r.json().await?;
            }
            (Target::Redis(_), Query::Status, Some(conn)) => {
                let (_holder, _ttl): (Option<String>, i64) = redis::pipe()
                    .cmd("GET")
                    .arg("lock:gpu_lock:0")
                    .cmd("PTTL")
                    .arg("lock:gpu_lock:0")
                    .query_async(conn)
                    .await?;
            }
            (Target::Redis(_), Query::Heartbeat, Some(conn)) => {
                let _: i64 = redis::cmd("HSET")
                    .arg("heartbeat:bench-task")
                    .arg("last_update")
                    .arg(n)
                    .arg("progress")
                    .arg(progress)
                    .query_async(conn)
                    .await?;
            }
            _ => return Err("no connection".into()),
        }
        if n > 200 {
            lat.push(t.elapsed());
        }
    }
    lat.sort_unstable();
    Ok((percentile(&lat, 0.5), percentile(&lat, 0.99), lat.len()))
}

struct Row {
    name: String,
    one: Throughput,
    sixteen: Throughput,
    status: (f64, f64, usize),
    heartbeat: (f64, f64, usize),
}

async fn measure(name: &str, target: Target<'_>, seconds: f64) -> Res<Row> {
    eprintln!("measuring {name} ...");
    let one = cycles(target, 1, seconds).await?;
    let sixteen = cycles(target, CLIENTS_MAX, seconds).await?;
    // Status of a held lock, as operators' dashboards poll it.
    match target {
        Target::Keel(base) => {
            let c = reqwest::Client::new();
            keel_acquire(&c, base, "gpu_lock:0", "status-holder", 600.0).await?;
        }
        Target::Redis(r) => {
            let mut conn = r.connect().await?;
            let _: Option<String> = redis::cmd("SET")
                .arg("lock:gpu_lock:0")
                .arg("status-holder:1")
                .arg("NX")
                .arg("PX")
                .arg(600_000)
                .query_async(&mut conn)
                .await?;
        }
    }
    let status = latency(target, Query::Status, seconds).await?;
    let heartbeat = latency(target, Query::Heartbeat, seconds).await?;
    Ok(Row {
        name: name.to_string(),
        one,
        sixteen,
        status,
        heartbeat,
    })
}

// ---------------------------------------------------------------- crash run

#[derive(Clone, Copy, PartialEq, Debug)]
enum LockModel {
    Free,
    Held(u64),
}

#[derive(Clone, Copy, Debug)]
enum Pending {
    Acquire,
    Release,
}

struct KeyModel {
    state: LockModel,
    pending: Option<Pending>,
    max_token: u64,
}

#[derive(Default)]
struct CrashCounts {
    attempted: AtomicU64,
    acknowledged: AtomicU64,
    unacknowledged: AtomicU64,
    token_repeats: AtomicU64,
    unexpected: AtomicU64,
}

const CRASH_CLIENTS: usize = 4;

async fn crash_run(bin: &Path, total_ops: u64) -> Res<()> {
    eprintln!("crash run: {total_ops} lock operations with kill -9 at random points ...");
    let mut keel = KeelProc::new(bin);
    keel.start().await?;
    let base = keel.base();
    let counts = Arc::new(CrashCounts::default());
    let mut models: Vec<KeyModel> = (0..CRASH_CLIENTS)
        .map(|_| KeyModel {
            state: LockModel::Free,
            pending: None,
            max_token: 0,
        })
        .collect();
    let mut kills = 0u64;
    let mut lost = 0u64;
    let mut token_regressions = 0u64;
    let started = Instant::now();
    while counts.attempted.load(Ordering::SeqCst) < total_ops {
        // Clients run until the quota is reached or keel dies under them.
        let mut handles = Vec::new();
        for (i, m) in models.drain(..).enumerate() {
            let (base, counts) = (base.clone(), counts.clone());
            handles.push(tokio::spawn(async move {
                crash_client(&base, i, m, counts, total_ops).await
            }));
        }
        let sleep_ms = rand::rng().random_range(20..400);
        let all_done = async {
            let mut out = Vec::new();
            for h in handles.iter_mut() {
                out.push(h.await);
            }
            out
        };
        tokio::pin!(all_done);
        let finished = tokio::select! {
            out = &mut all_done => Some(out),
            _ = tokio::time::sleep(Duration::from_millis(sleep_ms)) => None,
        };
        let results = match finished {
            Some(out) => out,
            None => {
                keel.kill9();
                kills += 1;
                all_done.await
            }
        };
        for r in results {
            models.push(r?);
        }
        if keel.child.is_none() {
            keel.start().await?;
        }
        // Verify against what was acknowledged: the state after restart is the last
        // acknowledged state, or that state plus the one operation in flight at the crash.
        let c = reqwest::Client::new();
        let locks: Value = c
            .get(format!("{base}/api/v1/locks"))
            .send()
            .await?
            .json()
            .await?;
        for (i, m) in models.iter_mut().enumerate() {
            let key = format!("gpu_lock:{i}");
            let Some(l) = locks["locks"]
                .as_array()
                .and_then(|a| a.iter().find(|l| l["lock_key"] == key.as_str()))
            else {
                return Err(format!("{key} missing after restart").into());
            };
            let observed = match (l["is_locked"].as_bool(), l["fencing_token"].as_u64()) {
                (Some(true), Some(t)) => LockModel::Held(t),
                _ => LockModel::Free,
            };
            let ok = observed == m.state
                || match (m.pending, m.state, observed) {
                    (Some(Pending::Acquire), LockModel::Free, LockModel::Held(t)) => {
                        t > m.max_token
                    }
                    (Some(Pending::Release), LockModel::Held(_), LockModel::Free) => true,
                    _ => false,
                };
            if !ok {
                lost += 1;
                eprintln!(
                    "LOST on {key}: model {:?} pending {:?}, store {:?}",
                    m.state, m.pending, observed
                );
            }
            if let LockModel::Held(t) = observed {
                m.max_token = m.max_token.max(t);
            }
            if l["last_fencing_token"].as_u64().unwrap_or(0) < m.max_token {
                token_regressions += 1;
            }
            m.state = observed;
            m.pending = None;
        }
    }
    keel.stop();
    let c = &counts;
    println!("\n## Crash run (kill -9 at random points, {CRASH_CLIENTS} clients, one lock each)");
    println!(
        "lock operations attempted      {}",
        c.attempted.load(Ordering::SeqCst)
    );
    println!(
        "acknowledged (200)             {}",
        c.acknowledged.load(Ordering::SeqCst)
    );
    println!(
        "in flight at a kill (no reply) {}",
        c.unacknowledged.load(Ordering::SeqCst)
    );
    println!("kill -9 + restart              {kills}");
    println!("acknowledged but lost          {lost}");
    println!(
        "fencing tokens repeated        {}",
        c.token_repeats.load(Ordering::SeqCst) + token_regressions
    );
    println!(
        "unexpected answers             {}",
        c.unexpected.load(Ordering::SeqCst)
    );
    println!(
        "wall time                      {:.1}s",
        started.elapsed().as_secs_f64()
    );
    if lost > 0 || c.token_repeats.load(Ordering::SeqCst) + token_regressions > 0 {
        return Err("the crash run found lost acknowledged operations or repeated tokens".into());
    }
    Ok(())
}

/// Alternates acquire and release on its own key, keeping the model of what keel
/// acknowledged; stops at the quota or at the first transport error (keel was killed).
async fn crash_client(
    base: &str,
    i: usize,
    mut m: KeyModel,
    counts: Arc<CrashCounts>,
    total: u64,
) -> KeyModel {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let key = format!("gpu_lock:{i}");
    let holder = format!("crash-{i}");
    loop {
        if counts.attempted.fetch_add(1, Ordering::SeqCst) >= total {
            counts.attempted.fetch_sub(1, Ordering::SeqCst);
            return m;
        }
        let result = match m.state {
            LockModel::Free => {
                m.pending = Some(Pending::Acquire);
                keel_acquire(&c, base, &key, &holder, 3600.0).await
            }
            LockModel::Held(t) => {
                m.pending = Some(Pending::Release);
                keel_release(&c, base, &key, t).await
            }
        };
        match result {
            Ok((200, v)) => {
                counts.acknowledged.fetch_add(1, Ordering::SeqCst);
                m.pending = None;
                m.state = match v["fencing_token"].as_u64() {
                    Some(t) if v["acquired"] == true => {
                        if t <= m.max_token {
                            counts.token_repeats.fetch_add(1, Ordering::SeqCst);
                        }
                        m.max_token = m.max_token.max(t);
                        LockModel::Held(t)
                    }
                    _ => LockModel::Free,
                };
            }
            Ok((status, v)) => {
                counts.unexpected.fetch_add(1, Ordering::SeqCst);
                eprintln!("unexpected {status} on {key}: {v}");
                m.pending = None;
                return m;
            }
            Err(_) => {
                counts.unacknowledged.fetch_add(1, Ordering::SeqCst);
                return m;
            }
        }
    }
}

/// keel's own view of its group commit, from `/metrics`.
async fn journal_summary(base: &str) -> Res<()> {
    let text = reqwest::get(format!("{base}/metrics"))
        .await?
        .text()
        .await?;
    let value = |name: &str| {
        text.lines()
            .find_map(|l| {
                l.strip_prefix(name)
                    .and_then(|v| v.trim().parse::<f64>().ok())
            })
            .unwrap_or(0.0)
    };
    let commits = value("keel_ledger_journal_commit_seconds_count ");
    let seconds = value("keel_ledger_journal_commit_seconds_sum ");
    let ops = value("keel_ledger_journal_commit_ops_sum ");
    if commits > 0.0 {
        println!(
            "keel journal over the whole keel run: {commits:.0} commits, {:.1} changes per commit, {:.3} ms per commit (fsync included)",
            ops / commits,
            seconds * 1000.0 / commits
        );
    }
    Ok(())
}

// ---------------------------------------------------------------- main

#[tokio::main]
async fn main() -> Res<()> {
    let a = args();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "# keel ledger vs Redis — {cores} cores, loopback, {}s per phase",
        a.seconds
    );
    let mut rows = Vec::new();
    let run = |part: &str| a.only.as_deref().is_none_or(|o| o == part);
    if run("keel") {
        let mut keel = KeelProc::new(&a.keel);
        keel.start().await?;
        let base = keel.base();
        rows.push(measure("keel (redb, Immediate)", Target::Keel(&base), a.seconds).await?);
        journal_summary(&base).await?;
        keel.stop();
    }
    for fsync in ["always", "everysec"].into_iter().filter(|_| run("redis")) {
        let r = RedisProc::start(&a.redis_server, fsync).await?;
        rows.push(
            measure(
                &format!("redis appendfsync {fsync}"),
                Target::Redis(&r),
                a.seconds,
            )
            .await?,
        );
    }
    println!("\n## Durable acquire+release cycles (each client its own lock key)");
    println!("| system | 1 client cycles/s | 16 clients cycles/s | 16/1 | cycle p50 ms (1) | cycle p99 ms (1) | cycle p99 ms (16) |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:.0} | {:.1}x | {:.3} | {:.3} | {:.3} |",
            r.name,
            r.one.cycles_per_second,
            r.sixteen.cycles_per_second,
            r.sixteen.cycles_per_second / r.one.cycles_per_second,
            r.one.p50_ms,
            r.one.p99_ms,
            r.sixteen.p99_ms
        );
    }
    println!("\n## Query latency (one client, sequential)");
    println!("| system | status p50 ms | status p99 ms | heartbeat p50 ms | heartbeat p99 ms | samples |");
    println!("|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        println!(
            "| {} | {:.3} | {:.3} | {:.3} | {:.3} | {}/{} |",
            r.name, r.status.0, r.status.1, r.heartbeat.0, r.heartbeat.1, r.status.2, r.heartbeat.2
        );
    }
    if run("crash") {
        crash_run(&a.keel, a.crash_ops).await?;
    }
    Ok(())
}
