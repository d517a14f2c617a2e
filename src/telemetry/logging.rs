//! Logging setup: JSON lines (one object a line) or human text, filtered by `[log] level`.
//! Logs go to stderr so stdout stays clean for `validate` / `print-config` output.
//!
//! The filter sits behind a `tracing_subscriber::reload` layer, so a config reload changes
//! the level ([`apply`]) without re-installing the subscriber; the format is fixed at start.

use crate::config::{LogConfig, LogFormat};
use std::sync::OnceLock;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// The installed filter's handle (absent until [`init`], and in tests that never call it).
static FILTER: OnceLock<reload::Handle<EnvFilter, Registry>> = OnceLock::new();

/// `[log] level` plus, with `[log] access` on, the access log's target at `info`: access
/// lines are written whatever the level says (`[log] access` decides).
fn filter(config: &LogConfig) -> EnvFilter {
    let mut filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    if config.access {
        if let Ok(directive) = format!("{}=info", crate::proxy::request::access::TARGET).parse() {
            filter = filter.add_directive(directive);
        }
    }
    filter
}

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(config: &LogConfig) {
    let (filter, handle) = reload::Layer::new(filter(config));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(true)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_ansi(false).with_writer(std::io::stderr))
            .try_init(),
    };
    if installed.is_ok() {
        let _ = FILTER.set(handle);
    }
}

/// Puts a reloaded `[log]` level (and access target) in force. `Err` says why it could not
/// (no subscriber of ours installed); the level was validated with the rest of the config.
pub fn apply(config: &LogConfig) -> Result<(), String> {
    let handle = FILTER
        .get()
        .ok_or("keel's log subscriber is not installed in this process")?;
    handle
        .reload(filter(config))
        .map_err(|e| format!("cannot change the log filter: {e}"))
}

/// The text of a caught panic's payload, for its log line: `panic!` carries a `&str` or a
/// `String`; anything else is named only by its kind.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "a panic without a message"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let of = |f: fn()| std::panic::catch_unwind(f).expect_err("panics");
        assert_eq!(super::panic_message(&*of(|| panic!("plain"))), "plain");
        assert_eq!(
            super::panic_message(&*of(|| panic!("with {}", "format"))),
            "with format"
        );
        assert_eq!(
            super::panic_message(&*of(|| std::panic::panic_any(7_u8))),
            "a panic without a message"
        );
    }
}
