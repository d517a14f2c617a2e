//! The executor process: `keel executor-child`, started by keel's main process
//! ([`super::supervisor`]) with its socket on fd 3. It reads its configuration from the
//! socket, locks itself down ([`super::sandbox`]) while it still has one thread, starts the
//! isolate pool and then serves calls until the main process closes the socket.
//!
//! Threads: one reads calls and hands them to the pool; the isolate threads write each
//! outcome straight back to the socket (one lock around the writer), so a call crosses no
//! async runtime in this process. The small Tokio runtime here only drives `fetch`.

use std::io::{self, Write};
use std::os::fd::FromRawFd;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::StartError;
use super::ipc::{self, FromChild, ToChild};
use super::pool::IsolatePool;
use super::worker::{Job, JobSource};

/// How often the monitor thread looks at the pool; its figures are sent when they changed.
const FIGURES_INTERVAL: Duration = Duration::from_millis(250);
/// Figures are sent at least this often even when unchanged: the main process treats a
/// silent executor process as hung (see `supervisor::SILENCE_LIMIT`).
const HEARTBEAT: Duration = Duration::from_secs(1);
/// A block still running this long after its deadline ends the process (exit code
/// [`EXIT_HUNG`]); the main process restarts it.
const HANG_GRACE: Duration = Duration::from_secs(5);
/// Exit code of a process that ended itself over a hung block.
pub const EXIT_HUNG: i32 = 3;

/// The shared writer half: frames from the isolate threads and the figures thread.
#[derive(Clone)]
struct Writer(Arc<Mutex<UnixStream>>);

impl Writer {
    /// Encodes first and locks only for the write (not [`ipc::write_msg`], which encodes
    /// into the writer): a large result being serialized must not hold up the other
    /// isolates' frames.
    fn send(&self, msg: &FromChild) -> io::Result<()> {
        let frame = ipc::encode(msg)?;
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(&frame)
    }
}

/// Entry point of `keel executor-child`. Exit codes: 0 when the main process closed the
/// socket, 1 when startup failed (after a [`FromChild::Fatal`]), 2 without a usable socket.
pub fn main() -> ExitCode {
    // First, while this process has one thread and nothing open but fd 3: seccomp and
    // Landlock bind only the calling thread and the threads it creates afterwards.
    let sandbox = super::sandbox::apply();
    // SAFETY: fd 3 is the socket the main process placed there for this process (the
    // supervisor's pre-exec step); nothing else in this fresh process owns it.
    let sock = unsafe { UnixStream::from_raw_fd(ipc::CHILD_FD) };
    let mut reader = match sock.try_clone() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("keel executor: no socket on fd {}: {e}", ipc::CHILD_FD);
            return ExitCode::from(2);
        }
    };
    let writer = Writer(Arc::new(Mutex::new(sock)));
    let init = match ipc::read_frame(&mut reader).and_then(|f| {
        f.ok_or_else(|| io::Error::from(io::ErrorKind::UnexpectedEof))
            .and_then(|body| ipc::decode::<ToChild>(&body))
    }) {
        Ok(ToChild::Init {
            executor,
            log,
            v8_flags,
        }) => (executor, log, v8_flags),
        Ok(_) | Err(_) => {
            eprintln!("keel executor: the first message was not the configuration");
            return ExitCode::from(2);
        }
    };
    let (config, log, v8_flags) = init;
    crate::telemetry::logging::init(&log);
    let wasm_pages = config.array_buffer_limit_bytes() / (64 * 1024);
    super::platform::set_extra_flags(format!(
        "--wasm-max-mem-pages={} {}",
        wasm_pages.max(1),
        v8_flags.unwrap_or_default()
    ));
    let started = Instant::now();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("keel-exec-io")
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fatal(&writer, &StartError::Thread(e)),
    };
    let events = writer.clone();
    let source = SocketJobs {
        reader: std::io::BufReader::with_capacity(64 * 1024, reader),
        writer: writer.clone(),
    };
    let pool = match IsolatePool::start_on(
        &config,
        runtime.handle().clone(),
        Arc::new(move |e| {
            let _ = events.send(&FromChild::Recycled(e.clone()));
        }),
        Box::new(source),
    ) {
        Ok(p) => Arc::new(p),
        Err(e) => return fatal(&writer, &e),
    };
    pool.wait_warm(Duration::from_secs(120));
    tracing::info!(
        pool_size = config.pool_size,
        sandbox = %sandbox.summary(),
        startup_ms = started.elapsed().as_millis() as u64,
        "executor process ready"
    );
    if writer
        .send(&FromChild::Ready {
            warmup: pool.warmup().clone(),
            sandbox,
            pid: std::process::id(),
        })
        .is_err()
    {
        return ExitCode::SUCCESS;
    }
    spawn_monitor(pool.clone(), writer.clone());
    // The workers serve calls until the main process closes the socket (it went away or is
    // stopping); they finish their running blocks, then this returns.
    pool.shutdown();
    drop(runtime);
    ExitCode::SUCCESS
}

/// The executor process's socket as the pool's job source: an idle worker reads the next
/// call itself and its outcome goes straight back from that worker.
struct SocketJobs {
    /// Buffered: a frame's length prefix and body usually arrive in one read.
    reader: std::io::BufReader<UnixStream>,
    writer: Writer,
}

impl JobSource for SocketJobs {
    fn next_job(&mut self) -> Option<Job> {
        loop {
            let body = match ipc::read_frame(&mut self.reader) {
                Ok(Some(b)) => b,
                Ok(None) => return None,
                Err(e) => {
                    tracing::error!(error = %e, "executor socket failed");
                    return None;
                }
            };
            match ipc::decode::<ToChild>(&body) {
                Ok(ToChild::Exec {
                    id,
                    code,
                    input,
                    timeout,
                    tenant,
                    sent_ns,
                }) => {
                    let waited = Duration::from_nanos(ipc::monotonic_ns().saturating_sub(sent_ns));
                    let now = Instant::now();
                    let w = self.writer.clone();
                    return Some(Job {
                        code,
                        tenant,
                        input_json: input.get().to_string(),
                        timeout,
                        enqueued: now.checked_sub(waited).unwrap_or(now),
                        reply: Box::new(move |outcome| {
                            let _ = w.send(&FromChild::Done { id, outcome });
                        }),
                    });
                }
                Ok(ToChild::Init { .. }) => {
                    tracing::warn!("executor process got a second configuration; ignored")
                }
                Err(e) => {
                    tracing::error!(error = %e, "executor process got a malformed message");
                    return None;
                }
            }
        }
    }
}

/// The monitor thread: sends the pool's figures when they changed (and at least every
/// [`HEARTBEAT`]), and ends the process when a block hangs past its deadline.
fn spawn_monitor(pool: Arc<IsolatePool>, writer: Writer) {
    let spawned = std::thread::Builder::new()
        .name("keel-exec-monitor".into())
        .spawn(move || {
            let mut last = None;
            let mut sent = Instant::now();
            loop {
                if let Some(worker) = pool.overdue(HANG_GRACE) {
                    tracing::error!(
                        worker,
                        "a code block runs {HANG_GRACE:?} past its deadline and cannot be stopped; the executor process exits and is restarted"
                    );
                    // SAFETY: ends the process at once, without running the exit handlers
                    // of a process whose isolate thread is stuck.
                    unsafe { libc::_exit(EXIT_HUNG) };
                }
                let now = pool.figures();
                if last != Some(now) || sent.elapsed() >= HEARTBEAT {
                    if writer.send(&FromChild::Figures(now)).is_err() {
                        return;
                    }
                    last = Some(now);
                    sent = Instant::now();
                }
                std::thread::sleep(FIGURES_INTERVAL);
            }
        });
    if let Err(e) = spawned {
        tracing::error!(error = %e, "no monitor thread; the executor process cannot report");
    }
}

fn fatal(writer: &Writer, e: &StartError) -> ExitCode {
    let module = match e {
        StartError::Module { module, .. } => Some(module.clone()),
        _ => None,
    };
    let _ = writer.send(&FromChild::Fatal {
        error: e.to_string(),
        module,
    });
    eprintln!("keel executor: {e}");
    ExitCode::FAILURE
}
