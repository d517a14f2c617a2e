//! Per-isolate watchdog: terminates JavaScript that runs past its deadline.
//!
//! The isolate thread's own event loop enforces the deadline while it waits for timers and
//! fetches; but synchronous JavaScript (`while(true){}`, an endless microtask chain) never
//! yields back to Rust, so only another thread can stop it, through
//! `IsolateHandle::terminate_execution`. Arm/disarm and the termination happen under one
//! lock, so a termination can never hit the *next* execution unnoticed: `disarm` tells the
//! isolate thread whether it fired, and the thread then cancels the termination.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

#[derive(Default)]
struct State {
    handle: Option<v8::IsolateHandle>,
    armed: Option<(u64, Instant)>,
    fired: Option<u64>,
    shutdown: bool,
}

pub(super) struct Watchdog {
    shared: Arc<(Mutex<State>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    // A panic while holding this lock cannot leave State inconsistent (plain fields).
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Watchdog {
    pub(super) fn spawn(name: String) -> std::io::Result<Self> {
        let shared: Arc<(Mutex<State>, Condvar)> = Arc::default();
        let s = shared.clone();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            let (m, cv) = &*s;
            let mut st = lock(m);
            loop {
                if st.shutdown {
                    return;
                }
                match st.armed {
                    None => st = cv.wait(st).unwrap_or_else(|p| p.into_inner()),
                    Some((seq, deadline)) => {
                        let now = Instant::now();
                        if now >= deadline {
                            if let Some(h) = &st.handle {
                                h.terminate_execution();
                            }
                            st.fired = Some(seq);
                            st.armed = None;
                        } else {
                            st = cv
                                .wait_timeout(st, deadline - now)
                                .unwrap_or_else(|p| p.into_inner())
                                .0;
                        }
                    }
                }
            }
        })?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Points the watchdog at a (new) isolate.
    pub(super) fn set_isolate(&self, handle: v8::IsolateHandle) {
        lock(&self.shared.0).handle = Some(handle);
    }

    pub(super) fn arm(&self, seq: u64, deadline: Instant) {
        let mut st = lock(&self.shared.0);
        st.armed = Some((seq, deadline));
        st.fired = None;
        self.shared.1.notify_one();
    }

    /// Stops watching; true when the watchdog terminated execution `seq`.
    pub(super) fn disarm(&self, seq: u64) -> bool {
        let mut st = lock(&self.shared.0);
        st.armed = None;
        st.fired.take() == Some(seq)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        {
            let mut st = lock(&self.shared.0);
            st.shutdown = true;
            st.handle = None;
            self.shared.1.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
