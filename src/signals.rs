//! The process signals keel acts on, as requests to the running process.
//!
//! SIGTERM and SIGINT stop keel (gracefully, see `Running::shutdown`). SIGHUP is what
//! `systemctl reload` sends (`ExecReload=/bin/kill -HUP $MAINPID`); it must never stop the
//! service, so it is a [`Request::Reload`] of its own. The handlers are installed before
//! startup begins: from then on a SIGHUP can no longer terminate the process (the default
//! action), not even while the executor is still warming up.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// What a signal asks of the running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// SIGTERM or SIGINT: drain and exit 0.
    Shutdown,
    /// SIGHUP: re-read the configuration.
    Reload,
}

pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
}

impl Signals {
    /// Installs the handlers (needs a tokio runtime).
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
        })
    }

    /// The next request.
    pub async fn next(&mut self) -> Request {
        tokio::select! {
            _ = self.term.recv() => Request::Shutdown,
            _ = self.int.recv() => Request::Shutdown,
            _ = self.hup.recv() => Request::Reload,
        }
    }
}
