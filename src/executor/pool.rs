//! The isolate pool, inside the executor process: `pool_size` isolate threads take jobs
//! from one queue. A queued call that waits longer than `queue_timeout` is refused by the
//! worker that finally picks it up. A worker whose isolate was terminated (timeout, heap
//! limit) builds a new one from the snapshot before taking the next job, so the pool never
//! shrinks. Admission (`max_concurrent`) and request validation happen in keel's main
//! process ([`super::front`]), before a call crosses to this one.

use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::error::StartError;
use super::fetch::Fetcher;
use super::snapshot::{self, Snapshot, WarmupReport};
#[cfg(test)]
use super::worker::ChannelJobs;
use super::worker::{self, IsolateRecycled, Job, JobSource, Shared, WorkerLimits};
use crate::config::ExecutorConfig;

/// What the pool reports about itself: the isolates' states and heap figures, the queue.
/// Sent to the main process a few times a second (see [`super::child`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PoolFigures {
    /// Isolates by state, indexed like [`super::metrics::STATES`].
    pub isolates: [usize; 3],
    /// Jobs waiting for an isolate.
    pub queued: usize,
    /// Isolates replaced so far.
    pub recycled: u64,
    /// Calls that ran in a warm context ([`super::warm`]) since this process started.
    pub reused: u64,
    /// V8 heap figures summed over the pool, as of each isolate's last execution.
    pub heap_used: u64,
    pub heap_total: u64,
    pub heap_limit: u64,
    /// Array-buffer bytes held now, summed over the pool.
    pub array_buffers: u64,
    /// Creation time of the slowest worker's last lean context and last context with
    /// modules.
    pub context_ns: [u64; 2],
    /// Executions that required each module since this executor process started, indexed
    /// like [`snapshot::MODULES`].
    pub requires: [u64; snapshot::MODULES.len()],
}

/// Called for every replaced isolate (the executor process forwards it to keel's event bus).
pub(crate) type RecycleSink = Arc<dyn Fn(&IsolateRecycled) + Send + Sync>;

/// The running pool. Dropping it stops the workers (after their current job).
pub(crate) struct IsolatePool {
    shared: Arc<Shared>,
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl IsolatePool {
    /// A pool fed through [`IsolatePool::submit`] (the executor's tests; keel itself runs
    /// [`IsolatePool::start_on`] in the executor process). Blocking — about a second for
    /// the snapshot the first time.
    #[cfg(test)]
    pub(crate) fn start(
        config: &ExecutorConfig,
        runtime: tokio::runtime::Handle,
        on_recycle: RecycleSink,
    ) -> Result<IsolatePool, StartError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let queued = Arc::new(AtomicUsize::new(0));
        let jobs = ChannelJobs {
            rx,
            queued: queued.clone(),
        };
        let mut pool = Self::start_with(config, runtime, on_recycle, Box::new(jobs), queued)?;
        pool.sender = Mutex::new(Some(tx));
        Ok(pool)
    }

    /// A pool whose idle workers take jobs from `source` themselves (the executor
    /// process's socket). Blocking: about a second for the snapshot the first time.
    pub(crate) fn start_on(
        config: &ExecutorConfig,
        runtime: tokio::runtime::Handle,
        on_recycle: RecycleSink,
        source: Box<dyn JobSource>,
    ) -> Result<IsolatePool, StartError> {
        Self::start_with(config, runtime, on_recycle, source, Arc::default())
    }

    fn start_with(
        config: &ExecutorConfig,
        runtime: tokio::runtime::Handle,
        on_recycle: RecycleSink,
        source: Box<dyn JobSource>,
        queued: Arc<AtomicUsize>,
    ) -> Result<IsolatePool, StartError> {
        let snapshot: &'static Snapshot = snapshot::get()?;
        let fetcher = Arc::new(Fetcher::new(&config.fetch)?);
        let n = config.pool_size.max(1);
        let shared = Arc::new(Shared {
            snapshot,
            limits: WorkerLimits {
                heap_limit: config.heap_limit_bytes(),
                array_buffer_limit: config.array_buffer_limit_bytes(),
                max_result_size: config.max_result_size,
                max_console_lines: config.max_console_lines,
                max_console_bytes: config.max_console_bytes,
                max_fetches: config.fetch.max_requests_per_execution,
                queue_timeout: config.queue_timeout,
                reuse_contexts: config.reuse_contexts,
            },
            fetcher,
            runtime,
            jobs: Mutex::new(source),
            queued,
            recycled: AtomicU64::new(0),
            reused: AtomicU64::new(0),
            states: (0..n).map(|_| AtomicU8::new(0)).collect(),
            heap_used: (0..n).map(|_| AtomicU64::new(0)).collect(),
            heap_total: (0..n).map(|_| AtomicU64::new(0)).collect(),
            heap_limit: (0..n).map(|_| AtomicU64::new(0)).collect(),
            array_buffers: (0..n).map(|_| AtomicU64::new(0)).collect(),
            deadlines: (0..n).map(|_| AtomicU64::new(0)).collect(),
            epoch: Instant::now(),
            last_context_ns: (0..n)
                .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
                .collect(),
            on_recycle,
            requires: Arc::default(),
        });
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("keel-v8-{i}"))
                    // Deep recursion in user code must hit V8's stack guard, not ours.
                    .stack_size(8 * 1024 * 1024)
                    .spawn(move || worker::run(s, i))?,
            );
        }
        Ok(IsolatePool {
            shared,
            sender: Mutex::new(None),
            threads: Mutex::new(threads),
        })
    }

    /// Blocks until every isolate has its first context ready (startup "warm").
    pub(crate) fn wait_warm(&self, limit: Duration) -> bool {
        let until = Instant::now() + limit;
        while Instant::now() < until {
            if self
                .shared
                .states
                .iter()
                .all(|s| s.load(Ordering::Relaxed) != 0)
            {
                return true;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        false
    }

    /// Queues one job; its `reply` is called once, from a worker thread (or here, when the
    /// pool is shutting down).
    #[cfg(test)]
    pub(crate) fn submit(&self, job: Job) {
        self.shared.queued.fetch_add(1, Ordering::Relaxed);
        let refused = {
            let guard = self.sender.lock().unwrap_or_else(|p| p.into_inner());
            match guard.as_ref() {
                Some(tx) => tx.send(job).err().map(|e| e.0),
                None => Some(job),
            }
        };
        if let Some(job) = refused {
            self.shared.queued.fetch_sub(1, Ordering::Relaxed);
            (job.reply)(Err(super::ExecError::new(
                super::ErrorKind::Unavailable,
                "the executor is shutting down",
            )));
        }
    }

    pub(crate) fn warmup(&self) -> &'static WarmupReport {
        &self.shared.snapshot.warmup
    }

    /// The pool's figures now.
    pub(crate) fn figures(&self) -> PoolFigures {
        let s = &self.shared;
        let mut isolates = [0usize; 3];
        for st in &s.states {
            let i = st.load(Ordering::Relaxed) as usize;
            if i < 3 {
                isolates[i] += 1;
            }
        }
        let sum = |v: &Vec<AtomicU64>| v.iter().map(|a| a.load(Ordering::Relaxed)).sum();
        let slowest = |kind: usize| {
            s.last_context_ns
                .iter()
                .map(|k| k[kind].load(Ordering::Relaxed))
                .max()
                .unwrap_or(0)
        };
        PoolFigures {
            isolates,
            queued: s.queued.load(Ordering::Relaxed),
            recycled: s.recycled.load(Ordering::Relaxed),
            reused: s.reused.load(Ordering::Relaxed),
            heap_used: sum(&s.heap_used),
            heap_total: sum(&s.heap_total),
            heap_limit: sum(&s.heap_limit),
            array_buffers: sum(&s.array_buffers),
            context_ns: [slowest(0), slowest(1)],
            requires: s.requires.snapshot(),
        }
    }

    /// A worker still running a block `grace` after its deadline: V8's termination did not
    /// take (a hang the watchdog cannot stop), so only ending the process frees it.
    pub(crate) fn overdue(&self, grace: Duration) -> Option<usize> {
        let now_ms = self.shared.epoch.elapsed().as_millis() as u64;
        let grace_ms = grace.as_millis() as u64;
        self.shared.deadlines.iter().position(|d| {
            let d = d.load(Ordering::Relaxed);
            d != 0 && now_ms > d.saturating_add(grace_ms)
        })
    }

    /// Stops taking jobs; workers finish their current one and exit. Blocking.
    pub(crate) fn shutdown(&self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
        let threads = std::mem::take(&mut *self.threads.lock().unwrap_or_else(|p| p.into_inner()));
        for t in threads {
            let _ = t.join();
        }
    }
}

impl Drop for IsolatePool {
    fn drop(&mut self) {
        self.sender.lock().unwrap_or_else(|p| p.into_inner()).take();
    }
}
