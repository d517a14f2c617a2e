//! Logging setup: JSON lines (one object a line) or human text, filtered by `[log] level`.
//! Logs go to stderr so stdout stays clean for `validate` / `print-config` output.

use crate::config::{LogConfig, LogFormat};
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; a second call (tests) is a no-op.
pub fn init(config: &LogConfig) {
    let mut filter = EnvFilter::try_new(&config.level).unwrap_or_else(|_| EnvFilter::new("info"));
    // Access lines are written whatever the level says (`[log] access` decides).
    if config.access {
        if let Ok(directive) = format!("{}=info", crate::proxy::request::access::TARGET).parse() {
            filter = filter.add_directive(directive);
        }
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
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
