//! `[control]`: the axum listener for APIs, health, metrics and the dashboard.

use super::validate::Scope;
use super::{Secret, SocketAddrString};
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ControlConfig {
    /// Loopback by default: the control port carries admin APIs.
    pub listen: SocketAddrString,
    /// Bearer token for admin APIs. Exactly one of this and `admin_token_file` is required.
    pub admin_token: Option<Secret>,
    /// File holding the admin token (trailing whitespace trimmed).
    pub admin_token_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes (default 1 MiB).
    pub max_body_bytes: usize,
}

impl Default for ControlConfig {
    fn default() -> Self {
        ControlConfig {
            listen: SocketAddrString(SocketAddr::from((Ipv4Addr::LOCALHOST, 8081))),
            admin_token: None,
            admin_token_file: None,
            max_body_bytes: 1024 * 1024,
        }
    }
}

impl ControlConfig {
    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        match (&self.admin_token, &self.admin_token_file) {
            (Some(_), Some(_)) => v.error(
                "admin_token",
                "set either admin_token or admin_token_file, not both",
            ),
            (None, None) => v.error(
                "admin_token",
                "an admin token is required (admin_token or admin_token_file)",
            ),
            (Some(t), None) if t.expose().trim().is_empty() => {
                v.error("admin_token", "must not be empty")
            }
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(t) if t.trim().is_empty() => {
                    v.error("admin_token_file", format!("{} is empty", path.display()))
                }
                Ok(_) => {}
                Err(e) => v.error(
                    "admin_token_file",
                    format!("cannot read {}: {e}", path.display()),
                ),
            },
            _ => {}
        }
        v.range("max_body_bytes", self.max_body_bytes, 1024, 1 << 30);
    }

    /// The admin token, read from the file when configured that way. Validation has already
    /// checked that exactly one source exists and is readable.
    pub fn resolve_admin_token(&self) -> std::io::Result<Secret> {
        match (&self.admin_token, &self.admin_token_file) {
            (Some(t), _) => Ok(t.clone()),
            (None, Some(path)) => Ok(Secret::new(std::fs::read_to_string(path)?.trim())),
            (None, None) => Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no admin token configured",
            )),
        }
    }
}
