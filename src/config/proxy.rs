//! `[proxy]`: the Pingora listener of the LLM gateway.

use super::validate::Scope;
use super::SocketAddrString;
use serde::{Deserialize, Serialize};
use std::net::{Ipv4Addr, SocketAddr};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Where LLM clients connect.
    pub listen: SocketAddrString,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            listen: SocketAddrString(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 8080))),
        }
    }
}

impl ProxyConfig {
    pub(super) fn validate(&self, _v: &mut Scope<'_>) {}

    /// Number of configured upstream nodes (for the startup summary).
    pub fn node_count(&self) -> usize {
        0
    }
}
