//! The executor process, seen from keel's main process: starts `keel executor-child` (the
//! same binary), talks to it over a socketpair, watches its memory and liveness, and
//! restarts it with backoff when it dies — so an abort, an OOM or a V8 fatal error in user
//! code costs the calls running at that moment, never the gateway, the ledger or the
//! control API.
//!
//! One dedicated thread owns the child: it spawns it (`PR_SET_PDEATHSIG` is tied to the
//! spawning *thread*, so it must be one that lives as long as keel), performs the
//! handshake, and waits for it to exit. The socket's reading half and the memory watchdog
//! run as tasks on keel's runtime. While no child is ready, calls are answered at once with
//! `ServiceUnavailable` and the reason.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tokio::sync::oneshot;

use super::error::{ErrorKind, ExecError, StartError};
use super::ipc::{self, FromChild, ToChild};
use super::metrics::{ExecutorMetrics, STATES};
use super::pool::PoolFigures;
use super::sandbox::SandboxReport;
use super::snapshot::WarmupReport;
use super::worker::{ExecOutput, IsolateRecycled};
use crate::config::{ExecutorConfig, LogConfig};
use crate::telemetry::{ComponentStatus, Event, Level, Telemetry};

/// The hidden subcommand the executor process runs.
pub(crate) const CHILD_COMMAND: &str = "executor-child";
/// First and largest wait before a restart.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(10);
/// A child that served this long resets the backoff.
const STABLE_AFTER: Duration = Duration::from_secs(60);
/// How long the executor process may take to start (snapshot, warm isolates).
const START_LIMIT: Duration = Duration::from_secs(120);
/// The memory and liveness check period.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);
/// The executor process reports at least every second; silent this long, it is killed.
const SILENCE_LIMIT: Duration = Duration::from_secs(10);

/// Why the executor process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Death {
    /// Killed by the memory watchdog: its RSS (bytes) passed the ceiling.
    MemoryLimit(u64),
    /// Killed because it stopped reporting.
    Unresponsive,
    /// It ended itself over a block that ran past its deadline and could not be stopped.
    Hung,
    /// A signal it did not expect (abort, segfault, V8 fatal error, an outside kill).
    Signal(i32),
    /// It exited on its own.
    Exited(i32),
}

impl Death {
    fn of(status: ExitStatus, killed_for: Option<Death>) -> Death {
        if let Some(d) = killed_for {
            return d;
        }
        match (status.code(), status.signal()) {
            (Some(c), _) if c == super::child::EXIT_HUNG => Death::Hung,
            (Some(c), _) => Death::Exited(c),
            (None, Some(s)) => Death::Signal(s),
            (None, None) => Death::Exited(-1),
        }
    }

    /// The `reason` label of `keel_executor_restarts_total`.
    fn label(&self) -> &'static str {
        match self {
            Death::MemoryLimit(_) => "memory_limit",
            Death::Unresponsive => "unresponsive",
            Death::Hung => "hung",
            Death::Signal(_) => "crashed",
            Death::Exited(_) => "exited",
        }
    }

    fn describe(&self, ceiling: u64) -> String {
        match self {
            Death::MemoryLimit(rss) => format!(
                "the executor process used {} MiB, more than its ceiling of {} MiB (executor.memory_limit_mb)",
                rss >> 20,
                ceiling >> 20
            ),
            Death::Unresponsive => format!(
                "the executor process stopped answering for {SILENCE_LIMIT:?} and was killed"
            ),
            Death::Hung => "a code block ran past its deadline and could not be stopped; the executor process ended itself".into(),
            Death::Signal(s) => format!("the executor process crashed (signal {s})"),
            Death::Exited(c) => format!("the executor process exited with status {c}"),
        }
    }

    /// The error every call that was running in the process gets.
    fn call_error(&self, ceiling: u64) -> ExecError {
        let kind = match self {
            Death::MemoryLimit(_) => ErrorKind::MemoryLimit,
            _ => ErrorKind::Crashed,
        };
        ExecError::new(
            kind,
            format!("{}; it is restarting", self.describe(ceiling)),
        )
    }
}

/// `executor.restarted`: the executor process died and keel starts a new one.
#[derive(Debug, serde::Serialize)]
pub(crate) struct ExecutorRestarted {
    /// `memory_limit`, `unresponsive`, `hung`, `crashed` or `exited`.
    pub reason: &'static str,
    pub detail: String,
    /// Calls that were running and got an error.
    pub calls_failed: usize,
    /// Restarts so far, this one included.
    pub restarts: u64,
    /// Wait before the new process starts.
    pub backoff_ms: u64,
}

impl Event for ExecutorRestarted {
    fn kind(&self) -> &'static str {
        "executor.restarted"
    }
    fn component(&self) -> &'static str {
        "executor"
    }
    fn message(&self) -> String {
        format!(
            "{}; {} running call(s) failed, restart #{} in {} ms",
            self.detail, self.calls_failed, self.restarts, self.backoff_ms
        )
    }
    fn level(&self) -> Level {
        Level::Error
    }
}

/// A live executor process: the socket's writing half and the calls awaiting an answer.
struct Conn {
    pid: u32,
    writer: tokio::net::unix::OwnedWriteHalf,
    /// Bytes the socket did not take at once, in order; its lock orders every write. A call
    /// writes its frame itself when this is empty (no task hop on the way to the executor
    /// process) and leaves what does not fit here for the flusher task, so a caller that
    /// goes away never leaves half a frame behind.
    backlog: Mutex<Vec<u8>>,
    flush: tokio::sync::Notify,
    pending: Mutex<HashMap<u64, oneshot::Sender<Result<ExecOutput, ExecError>>>>,
    /// Set by a watchdog before it kills the process, so the death gets its reason. Its
    /// lock also orders a kill against the reaping of the process (see [`Conn::kill`]).
    killed_for: Mutex<Option<Death>>,
    /// The last message from the process (ms since `born`).
    last_heard_ms: AtomicU64,
    born: Instant,
    closed: AtomicBool,
}

impl Conn {
    fn kill(&self, why: Death) {
        let mut k = self.killed_for.lock().unwrap_or_else(|p| p.into_inner());
        if self.closed.load(Ordering::SeqCst) {
            return;
        }
        if k.is_none() {
            *k = Some(why);
        }
        // SAFETY: kill(2) on our own child. It is not reaped yet: the supervisor thread sets
        // `closed` under this lock before it reaps, so the pid cannot have been reused.
        unsafe { libc::kill(self.pid as i32, libc::SIGKILL) };
    }

    /// Queues one whole frame for the executor process.
    fn send(&self, frame: &[u8]) -> io::Result<()> {
        let mut backlog = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if !backlog.is_empty() {
            backlog.extend_from_slice(frame);
            return Ok(());
        }
        let written = match self.writer.try_write(frame) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
            Err(e) => return Err(e),
        };
        if written < frame.len() {
            backlog.extend_from_slice(&frame[written..]);
            self.flush.notify_one();
        }
        Ok(())
    }

    /// Closes our writing half: the executor process's signal to finish its blocks and exit.
    fn close_writes(&self) {
        use std::os::fd::AsRawFd;
        let fd = self.writer.as_ref().as_raw_fd();
        // SAFETY: shutdown(2) on a socket this Conn owns; it stays open for reading.
        unsafe { libc::shutdown(fd, libc::SHUT_WR) };
    }

    fn heard(&self) {
        self.last_heard_ms
            .store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }
}

/// What the API reads about the executor process.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChildView {
    pub figures: PoolFigures,
    /// Executions that required each module (indexed like `snapshot::MODULES`) since keel
    /// started: the counts of executor processes that ended plus the current one's.
    pub module_requires: [u64; super::snapshot::MODULES.len()],
    /// The counts of the executor processes that ended, and the pid whose figures
    /// `figures` holds (a new pid means the last process's counts are final).
    requires_base: [u64; super::snapshot::MODULES.len()],
    figures_pid: Option<u32>,
    pub warmup: Option<WarmupReport>,
    pub sandbox: Option<SandboxReport>,
    pub pid: Option<u32>,
    pub restarts: u64,
    /// Why no process serves now (None while one does).
    pub down: Option<String>,
}

struct Inner {
    config: ExecutorConfig,
    log: LogConfig,
    runtime: tokio::runtime::Handle,
    telemetry: Option<Telemetry>,
    metrics: ExecutorMetrics,
    ceiling: u64,
    conn: Mutex<Option<Arc<Conn>>>,
    view: Mutex<ChildView>,
    next_id: AtomicU64,
    stopping: AtomicBool,
    /// Wakes the supervisor thread out of a backoff wait at shutdown.
    wake: (Mutex<()>, Condvar),
}

/// The main process's handle on the executor process.
pub(crate) struct Supervisor {
    inner: Arc<Inner>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Supervisor {
    /// Starts the executor process and waits until it is warm (or failed: a library that
    /// does not load stops keel's startup, as the reference's fail-fast did). Blocking.
    pub(crate) fn start(
        config: &ExecutorConfig,
        log: &LogConfig,
        runtime: tokio::runtime::Handle,
        metrics: ExecutorMetrics,
        telemetry: Option<Telemetry>,
    ) -> Result<Supervisor, StartError> {
        let mut config = config.clone();
        // Tokens are checked here; the executor process never sees them.
        config.access_tokens.clear();
        let ceiling = (config.memory_limit_bytes()) as u64;
        let inner = Arc::new(Inner {
            config,
            log: log.clone(),
            runtime,
            telemetry,
            metrics,
            ceiling,
            conn: Mutex::new(None),
            view: Mutex::new(ChildView {
                down: Some("the executor process is starting".into()),
                ..Default::default()
            }),
            next_id: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            wake: (Mutex::new(()), Condvar::new()),
        });
        let (first_tx, first_rx) = mpsc::channel();
        let i = inner.clone();
        let thread = std::thread::Builder::new()
            .name("keel-exec-supervisor".into())
            .spawn(move || supervise(i, first_tx))?;
        match first_rx.recv() {
            Ok(Ok(())) => Ok(Supervisor {
                inner,
                thread: Mutex::new(Some(thread)),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StartError::Runtime(
                    "the executor supervisor ended before the first start".into(),
                ))
            }
        }
    }

    /// Sends one call to the executor process and waits for its outcome.
    pub(crate) async fn call(
        &self,
        code: String,
        input: Box<RawValue>,
        timeout: Duration,
        tenant: String,
    ) -> Result<ExecOutput, ExecError> {
        let conn = self
            .inner
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let Some(conn) = conn else {
            let why = self.view().down.unwrap_or_default();
            return Err(ExecError::new(
                ErrorKind::Unavailable,
                format!("the executor is unavailable: {why}"),
            ));
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let frame = ipc::encode(&ToChild::Exec {
            id,
            code,
            input,
            timeout,
            tenant,
            sent_ns: ipc::monotonic_ns(),
        })
        .map_err(|e| ExecError::validation(format!("the call cannot be encoded: {e}")))?;
        let (tx, rx) = oneshot::channel();
        conn.pending
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, tx);
        if let Err(e) = conn.send(&frame) {
            conn.pending
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&id);
            tracing::error!(error = %e, "cannot write to the executor process; killing it");
            conn.kill(Death::Unresponsive);
            return Err(ExecError::new(
                ErrorKind::Unavailable,
                "the executor process cannot be reached; it is restarting",
            ));
        }
        rx.await.unwrap_or_else(|_| {
            Err(ExecError::new(
                ErrorKind::Crashed,
                "the executor process went away while the block ran; it is restarting",
            ))
        })
    }

    /// What the API and the dashboard show about the process.
    pub(crate) fn view(&self) -> ChildView {
        self.inner
            .view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The memory ceiling of the executor process, in bytes.
    pub(crate) fn ceiling(&self) -> u64 {
        self.inner.ceiling
    }

    /// Stops the executor process: running blocks finish (up to its shutdown), then it
    /// exits; no restart follows. Blocking.
    pub(crate) fn shutdown(&self) {
        if let Some(conn) = self.stop() {
            conn.close_writes();
        }
        if let Some(t) = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = t.join();
        }
    }

    /// Tells the supervisor thread to stop restarting and takes the live connection, which
    /// the caller ends gently ([`Supervisor::shutdown`]) or at once (drop).
    fn stop(&self) -> Option<Arc<Conn>> {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.wake.1.notify_all();
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        if let Some(conn) = self.stop() {
            conn.kill(Death::Exited(0));
        }
    }
}

/// The supervisor thread: start, wait, restart with backoff until keel stops.
fn supervise(inner: Arc<Inner>, first: mpsc::Sender<Result<(), StartError>>) {
    let mut first = Some(first);
    let mut backoff = BACKOFF_MIN;
    let mut restarts = 0u64;
    while !inner.stopping.load(Ordering::SeqCst) {
        let started = Instant::now();
        match launch(&inner) {
            Ok((mut child, conn)) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                wait_exited(conn.pid);
                {
                    let _no_kill = conn.killed_for.lock().unwrap_or_else(|p| p.into_inner());
                    conn.closed.store(true, Ordering::SeqCst);
                }
                conn.flush.notify_one();
                let status = child.wait();
                inner.conn.lock().unwrap_or_else(|p| p.into_inner()).take();
                let killed_for = conn
                    .killed_for
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .take();
                let death = match status {
                    Ok(s) => Death::of(s, killed_for),
                    Err(_) => killed_for.unwrap_or(Death::Exited(-1)),
                };
                let failed = fail_pending(&conn, &death.call_error(inner.ceiling));
                if inner.stopping.load(Ordering::SeqCst) {
                    break;
                }
                if started.elapsed() > STABLE_AFTER {
                    backoff = BACKOFF_MIN;
                }
                restarts += 1;
                record_death(&inner, &death, failed, restarts, backoff);
            }
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
                let why = format!("the executor process did not start: {e}");
                tracing::error!(error = %e, "executor process did not start; trying again");
                set_down(&inner, ComponentStatus::Down, why);
            }
        }
        let (lock, cv) = &inner.wake;
        let guard = lock.lock().unwrap_or_else(|p| p.into_inner());
        let _ = cv.wait_timeout_while(guard, backoff, |_| !inner.stopping.load(Ordering::SeqCst));
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// Waits until the process has exited without reaping it, so its pid stays ours until
/// `closed` is set (see [`Conn::kill`]).
fn wait_exited(pid: u32) {
    loop {
        // SAFETY: waitid with WNOWAIT on our own child; `info` is plain data.
        let rc = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if rc == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

fn fail_pending(conn: &Conn, err: &ExecError) -> usize {
    let pending = std::mem::take(&mut *conn.pending.lock().unwrap_or_else(|p| p.into_inner()));
    let n = pending.len();
    for (_, tx) in pending {
        let _ = tx.send(Err(err.clone()));
    }
    n
}

fn record_death(inner: &Inner, death: &Death, failed: usize, restarts: u64, backoff: Duration) {
    let detail = death.describe(inner.ceiling);
    inner
        .metrics
        .restarts
        .with_label_values(&[death.label()])
        .inc();
    {
        let mut v = inner.view.lock().unwrap_or_else(|p| p.into_inner());
        v.restarts = restarts;
        v.pid = None;
    }
    set_down(
        inner,
        ComponentStatus::Degraded,
        format!("restarting: {detail}"),
    );
    let event = ExecutorRestarted {
        reason: death.label(),
        detail,
        calls_failed: failed,
        restarts,
        backoff_ms: backoff.as_millis() as u64,
    };
    match &inner.telemetry {
        Some(t) => {
            t.events.emit(&event);
        }
        None => tracing::error!("{}", event.message()),
    }
}

fn set_down(inner: &Inner, status: ComponentStatus, why: String) {
    if let Some(t) = &inner.telemetry {
        t.health.set("executor", status, why.clone());
    }
    inner.view.lock().unwrap_or_else(|p| p.into_inner()).down = Some(why);
}

/// Spawns the executor process, hands it its configuration and waits for it to be warm.
fn launch(inner: &Arc<Inner>) -> Result<(Child, Arc<Conn>), StartError> {
    let (ours, theirs) = UnixStream::pair()?;
    let child = spawn(theirs)?;
    let mut guard = KillOnDrop(Some(child));
    let mut stream = ours;
    ipc::write_msg(
        &mut stream,
        &ToChild::Init {
            executor: Box::new(inner.config.clone()),
            log: inner.log.clone(),
            v8_flags: std::env::var("EXECUTOR_V8_FLAGS").ok(),
        },
    )?;
    stream.set_read_timeout(Some(START_LIMIT))?;
    let ready = loop {
        let body = ipc::read_frame(&mut stream)?.ok_or_else(|| {
            StartError::Runtime("the executor process exited during startup".into())
        })?;
        match ipc::decode::<FromChild>(&body)? {
            FromChild::Ready {
                warmup,
                sandbox,
                pid,
            } => break (warmup, sandbox, pid),
            FromChild::Fatal {
                error,
                module: Some(module),
            } => {
                return Err(StartError::Module {
                    module,
                    error: error
                        .split_once(": ")
                        .map_or(error.clone(), |(_, e)| e.to_string()),
                })
            }
            FromChild::Fatal {
                error,
                module: None,
            } => return Err(StartError::Runtime(error)),
            _ => {}
        }
    };
    stream.set_read_timeout(None)?;
    stream.set_nonblocking(true)?;
    let (read, write) = {
        let _enter = inner.runtime.enter();
        tokio::net::UnixStream::from_std(stream)?.into_split()
    };
    let (warmup, sandbox, _) = ready;
    let pid = guard.0.as_ref().map_or(0, Child::id);
    let conn = Arc::new(Conn {
        pid,
        writer: write,
        backlog: Mutex::new(Vec::new()),
        flush: tokio::sync::Notify::new(),
        pending: Mutex::new(HashMap::new()),
        killed_for: Mutex::new(None),
        last_heard_ms: AtomicU64::new(0),
        born: Instant::now(),
        closed: AtomicBool::new(false),
    });
    inner
        .runtime
        .spawn(read_loop(inner.clone(), conn.clone(), read));
    inner.runtime.spawn(watch(inner.clone(), conn.clone()));
    inner.runtime.spawn(flush_loop(conn.clone()));
    if !sandbox.complete() {
        tracing::warn!(sandbox = %sandbox.summary(), "the executor process runs without its full sandbox on this kernel");
    }
    let health = format!(
        "{} isolates in process {pid}; warmup {} ({}/{} modules, {} ms); sandbox: {}",
        inner.config.pool_size,
        warmup.status,
        warmup.modules.len(),
        warmup.total_modules,
        warmup.elapsed.as_millis(),
        sandbox.summary()
    );
    {
        let mut v = inner.view.lock().unwrap_or_else(|p| p.into_inner());
        v.warmup = Some(warmup);
        v.sandbox = Some(sandbox);
        v.pid = Some(pid);
        v.down = None;
    }
    if let Some(t) = &inner.telemetry {
        t.health.set("executor", ComponentStatus::Healthy, health);
    }
    *inner.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(conn.clone());
    let child = guard.0.take().ok_or(StartError::Snapshot)?;
    Ok((child, conn))
}

/// Kills a half-started executor process when the handshake fails.
struct KillOnDrop(Option<Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `keel executor-child` with `theirs` on fd 3, an empty environment and no stdin.
fn spawn(theirs: UnixStream) -> io::Result<Child> {
    let fd = theirs.as_raw_fd();
    let parent = std::process::id() as libc::pid_t;
    let mut cmd = Command::new("/proc/self/exe");
    cmd.arg(CHILD_COMMAND)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    // SAFETY: only async-signal-safe calls (dup2, fcntl, prctl, getppid, _exit) between
    // fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if fd == ipc::CHILD_FD {
                // dup2 onto itself keeps close-on-exec: clear it instead.
                if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                    return Err(io::Error::last_os_error());
                }
            } else if libc::dup2(fd, ipc::CHILD_FD) < 0 {
                return Err(io::Error::last_os_error());
            }
            // Never outlive keel, even when it is killed with SIGKILL.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            if libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
    let child = cmd.spawn();
    drop(theirs);
    child
}

/// Writes what [`Conn::send`] could not, whenever the socket takes more.
async fn flush_loop(conn: Arc<Conn>) {
    while !conn.closed.load(Ordering::SeqCst) {
        conn.flush.notified().await;
        loop {
            if conn.writer.writable().await.is_err() {
                return;
            }
            let mut backlog = conn.backlog.lock().unwrap_or_else(|p| p.into_inner());
            if backlog.is_empty() {
                break;
            }
            match conn.writer.try_write(&backlog) {
                Ok(n) => {
                    backlog.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

/// Reads the executor process's messages until its socket closes.
async fn read_loop(inner: Arc<Inner>, conn: Arc<Conn>, read: tokio::net::unix::OwnedReadHalf) {
    // Buffered: a frame's length prefix and body usually arrive in one read.
    let mut read = tokio::io::BufReader::with_capacity(64 * 1024, read);
    loop {
        let body = match ipc::read_frame_async(&mut read).await {
            Ok(Some(b)) => b,
            Ok(None) => return,
            Err(e) => {
                tracing::error!(error = %e, "executor socket failed; killing the process");
                conn.kill(Death::Unresponsive);
                return;
            }
        };
        conn.heard();
        match ipc::decode::<FromChild>(&body) {
            Ok(FromChild::Done { id, outcome }) => {
                let tx = conn
                    .pending
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&id);
                if let Some(tx) = tx {
                    let _ = tx.send(outcome);
                }
            }
            Ok(FromChild::Figures(f)) => apply_figures(&inner, &conn, f),
            Ok(FromChild::Recycled(r)) => recycled(&inner, &r),
            Ok(FromChild::Ready { .. } | FromChild::Fatal { .. }) => {}
            Err(e) => {
                tracing::error!(error = %e, "malformed message from the executor process; killing it");
                conn.kill(Death::Unresponsive);
                return;
            }
        }
    }
}

fn apply_figures(inner: &Inner, conn: &Conn, mut f: PoolFigures) {
    // Calls wait in the socket, not in a queue the executor process can count: the queue is
    // what was sent and is not running yet.
    let sent = conn.pending.lock().unwrap_or_else(|p| p.into_inner()).len();
    f.queued = sent.saturating_sub(f.isolates[2]);
    let m = &inner.metrics;
    for (state, n) in STATES.iter().zip(f.isolates) {
        m.isolates.with_label_values(&[state]).set(n as i64);
    }
    m.queue_depth.set(f.queued as i64);
    m.heap_used.set(f.heap_used as i64);
    m.array_buffers.set(f.array_buffers as i64);
    let mut view = inner.view.lock().unwrap_or_else(|p| p.into_inner());
    // The process's own count starts at 0 with each process; the counter goes on.
    let before = if view.figures_pid == Some(conn.pid) {
        view.figures.reused
    } else {
        0
    };
    m.reused.inc_by(f.reused.saturating_sub(before));
    if view.figures_pid != Some(conn.pid) {
        let ended = view.figures.requires;
        for (base, n) in view.requires_base.iter_mut().zip(ended) {
            *base += n;
        }
        view.figures_pid = Some(conn.pid);
    }
    let base = view.requires_base;
    for ((total, base), now) in view.module_requires.iter_mut().zip(base).zip(f.requires) {
        *total = base + now;
    }
    view.figures = f;
}

fn recycled(inner: &Inner, r: &IsolateRecycled) {
    inner
        .metrics
        .recycles
        .with_label_values(&[r.reason.as_str()])
        .inc();
    match &inner.telemetry {
        Some(t) => {
            t.events.emit(r);
        }
        None => tracing::info!("{}", r.message()),
    }
}

/// Every [`WATCH_INTERVAL`]: the process's RSS against the ceiling, and its silence.
async fn watch(inner: Arc<Inner>, conn: Arc<Conn>) {
    let pid = conn.pid.to_string();
    let mut tick = tokio::time::interval(WATCH_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    while !conn.closed.load(Ordering::SeqCst) {
        tick.tick().await;
        let Some(rss) = crate::telemetry::process::rss_bytes_of(&pid) else {
            continue;
        };
        inner.metrics.process_rss.set(rss as i64);
        if rss > inner.ceiling {
            tracing::error!(
                pid = conn.pid,
                rss_mib = rss >> 20,
                ceiling_mib = inner.ceiling >> 20,
                "executor process passed its memory ceiling; killing it"
            );
            conn.kill(Death::MemoryLimit(rss));
            return;
        }
        let heard = conn.last_heard_ms.load(Ordering::Relaxed);
        let now = conn.born.elapsed().as_millis() as u64;
        if now.saturating_sub(heard) > SILENCE_LIMIT.as_millis() as u64 {
            tracing::error!(
                pid = conn.pid,
                "executor process silent for {SILENCE_LIMIT:?}; killing it"
            );
            conn.kill(Death::Unresponsive);
            return;
        }
    }
}
