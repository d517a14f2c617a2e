//! `[log]`: format and level of keel's own log lines.

use super::validate::Scope;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One JSON object a line (journald, log shippers).
    Json,
    /// Human-readable lines for a terminal.
    Text,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Json => "json",
            LogFormat::Text => "text",
        })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A tracing filter: a level (`info`) or directives (`info,keel::proxy=debug`).
    pub level: String,
    /// One access line per proxied request (`proxy::request::access`), written whatever
    /// `level` says: an operator who turns it on wants it.
    pub access: bool,
    /// Share of successful requests written to the access log, `0.0..=1.0`; errors are
    /// always written (a busy gateway can sample its successes away, never its failures).
    pub access_sample: f64,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: "info".into(),
            access: true,
            access_sample: 1.0,
        }
    }
}

impl LogConfig {
    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.level) {
            v.error("level", format!("invalid log filter {:?}: {e}", self.level));
        }
        if !(0.0..=1.0).contains(&self.access_sample) {
            v.error(
                "access_sample",
                format!("must be between 0.0 and 1.0 (it is {})", self.access_sample),
            );
        }
    }
}
