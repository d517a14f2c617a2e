//! Network policy for the `fetch` global: which hosts may be named and which addresses may
//! be connected to.
//!
//! Host names are checked before DNS; addresses are checked *after* DNS resolution (in the
//! resolver that reqwest connects through, see `fetch.rs`) so that a name pointing at
//! 127.0.0.1 or 169.254.169.254 is refused, and the connection is made only to the
//! addresses that passed (no second lookup that could be rebound). Redirects are followed
//! by hand so every hop goes through the same checks.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::config::FetchConfig;

/// Why a URL or address was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub(crate) enum PolicyError {
    #[error("fetch is disabled by the executor configuration")]
    Disabled,
    #[error("unsupported URL scheme {0:?} (only http and https)")]
    Scheme(String),
    #[error("host {0:?} is not in executor.fetch.allowed_hosts")]
    HostNotAllowed(String),
    #[error("address {addr} of {host:?} is in denied range {range}")]
    AddressDenied {
        host: String,
        addr: IpAddr,
        range: IpNet,
    },
    #[error("URL has no host")]
    NoHost,
}

/// The compiled policy (cheap to clone behind an `Arc`).
#[derive(Debug, Clone)]
pub(crate) struct NetworkPolicy {
    enabled: bool,
    allowed_hosts: Vec<HostPattern>,
    denied: Vec<IpNet>,
    allowed: Vec<IpNet>,
}

#[derive(Debug, Clone)]
enum HostPattern {
    Exact(String),
    /// `*.example.com`: any subdomain, not the apex.
    Suffix(String),
}

impl NetworkPolicy {
    pub(crate) fn from_config(cfg: &FetchConfig) -> Self {
        let allowed_hosts = cfg
            .allowed_hosts
            .iter()
            .map(|h| {
                let h = h.trim().trim_end_matches('.').to_ascii_lowercase();
                match h.strip_prefix("*.") {
                    Some(rest) => HostPattern::Suffix(format!(".{rest}")),
                    None => HostPattern::Exact(h),
                }
            })
            .collect();
        Self {
            enabled: cfg.enabled,
            allowed_hosts,
            denied: cfg.denied_cidrs.clone(),
            allowed: cfg.allowed_cidrs.clone(),
        }
    }

    /// Checks scheme and host name of a URL (before any DNS), and its address when the host
    /// is an IP literal (reqwest does not call the resolver for those).
    pub(crate) fn check_url(&self, url: &url::Url) -> Result<(), PolicyError> {
        if !self.enabled {
            return Err(PolicyError::Disabled);
        }
        match url.scheme() {
            "http" | "https" => {}
            other => return Err(PolicyError::Scheme(other.to_string())),
        }
        let host = url.host().ok_or(PolicyError::NoHost)?;
        let name = match &host {
            url::Host::Domain(d) => d.trim_end_matches('.').to_ascii_lowercase(),
            url::Host::Ipv4(a) => a.to_string(),
            url::Host::Ipv6(a) => a.to_string(),
        };
        if !self.host_allowed(&name) {
            return Err(PolicyError::HostNotAllowed(name));
        }
        match host {
            url::Host::Ipv4(a) => self.check_addr(&name, IpAddr::V4(a)),
            url::Host::Ipv6(a) => self.check_addr(&name, IpAddr::V6(a)),
            url::Host::Domain(_) => Ok(()),
        }
    }

    fn host_allowed(&self, host: &str) -> bool {
        self.allowed_hosts.is_empty()
            || self.allowed_hosts.iter().any(|p| match p {
                HostPattern::Exact(h) => h == host,
                HostPattern::Suffix(s) => host.ends_with(s.as_str()),
            })
    }

    /// Checks one resolved address. IPv4-mapped IPv6 addresses are checked as IPv4 too, so
    /// `::ffff:127.0.0.1` cannot sneak past a 127.0.0.0/8 rule.
    pub(crate) fn check_addr(&self, host: &str, addr: IpAddr) -> Result<(), PolicyError> {
        let candidates: Vec<IpAddr> = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => vec![addr, IpAddr::V4(v4)],
                None => vec![addr],
            },
            IpAddr::V4(_) => vec![addr],
        };
        if candidates
            .iter()
            .any(|a| self.allowed.iter().any(|n| n.contains(a)))
        {
            return Ok(());
        }
        for a in &candidates {
            if let Some(range) = self.denied.iter().find(|n| n.contains(a)) {
                return Err(PolicyError::AddressDenied {
                    host: host.to_string(),
                    addr,
                    range: *range,
                });
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(f: impl FnOnce(&mut FetchConfig)) -> NetworkPolicy {
        let mut c = FetchConfig::default();
        f(&mut c);
        NetworkPolicy::from_config(&c)
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("url")
    }

    #[test]
    fn default_denies_internal_addresses() {
        let p = policy(|_| {});
        for a in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            let addr: IpAddr = a.parse().expect("ip");
            assert!(p.check_addr("h", addr).is_err(), "{a} must be denied");
        }
        assert!(p
            .check_addr("h", "93.184.216.34".parse().expect("ip"))
            .is_ok());
        assert!(p
            .check_url(&url("http://169.254.169.254/latest/meta-data"))
            .is_err());
        assert!(p.check_url(&url("http://[::1]:8080/")).is_err());
        assert!(p.check_url(&url("file:///etc/passwd")).is_err());
    }

    /// The default range that refuses `addr`, or `None` when it may be connected to.
    fn denied_by(addr: &str) -> Option<String> {
        let addr: IpAddr = addr.parse().expect("ip");
        match policy(|_| {}).check_addr("h", addr) {
            Ok(()) => None,
            Err(PolicyError::AddressDenied { range, .. }) => Some(range.to_string()),
            Err(e) => panic!("unexpected refusal {e}"),
        }
    }

    #[test]
    fn every_default_range_parses_and_denies_its_own_network_address() {
        let p = policy(|_| {});
        assert_eq!(
            crate::config::default_denied_cidrs().len(),
            crate::config::DEFAULT_DENIED_CIDRS.len(),
            "every entry of the table parses"
        );
        for (net, what) in crate::config::DEFAULT_DENIED_CIDRS {
            let net: IpNet = net.parse().expect("net");
            assert!(
                p.check_addr("h", net.network()).is_err(),
                "{net} ({what}) must be denied"
            );
        }
    }

    #[test]
    fn ipv4_compatible_ipv6_is_denied() {
        // ::a.b.c.d, deprecated: some stacks route it to a.b.c.d.
        assert_eq!(denied_by("::127.0.0.1").as_deref(), Some("::/96"));
        assert_eq!(denied_by("::10.0.0.1").as_deref(), Some("::/96"));
        // Loopback and unspecified keep their own, more telling, names.
        assert_eq!(denied_by("::1").as_deref(), Some("::1/128"));
        assert_eq!(denied_by("::").as_deref(), Some("::/128"));
    }

    #[test]
    fn ipv4_mapped_ipv6_is_denied() {
        assert_eq!(
            denied_by("::ffff:169.254.169.254").as_deref(),
            Some("::ffff:0.0.0.0/96")
        );
        assert_eq!(
            denied_by("::ffff:127.0.0.1").as_deref(),
            Some("::ffff:0.0.0.0/96")
        );
    }

    #[test]
    fn six_to_four_is_denied() {
        // 2002:AABB:CCDD:: tunnels to AA.BB.CC.DD (here 127.0.0.1 and 192.168.1.1).
        assert_eq!(denied_by("2002:7f00:1::1").as_deref(), Some("2002::/16"));
        assert_eq!(denied_by("2002:c0a8:101::").as_deref(), Some("2002::/16"));
    }

    #[test]
    fn teredo_is_denied() {
        // 2001:0000:<server v4>:<flags>:<port>:<client v4 xor ffff...>
        assert_eq!(
            denied_by("2001:0:4136:e378:8000:63bf:3fff:fdd2").as_deref(),
            Some("2001::/32")
        );
    }

    #[test]
    fn nat64_well_known_and_local_use_prefixes_are_denied() {
        // 64:ff9b::a.b.c.d is translated to a.b.c.d by a NAT64 gateway.
        assert_eq!(
            denied_by("64:ff9b::7f00:1").as_deref(),
            Some("64:ff9b::/96")
        );
        assert_eq!(
            denied_by("64:ff9b::169.254.169.254").as_deref(),
            Some("64:ff9b::/96")
        );
        assert_eq!(
            denied_by("64:ff9b:1::a00:1").as_deref(),
            Some("64:ff9b:1::/48")
        );
    }

    #[test]
    fn unique_local_is_denied() {
        assert_eq!(denied_by("fd12:3456:789a::1").as_deref(), Some("fc00::/7"));
        assert_eq!(denied_by("fc00::1").as_deref(), Some("fc00::/7"));
    }

    #[test]
    fn site_local_is_denied() {
        assert_eq!(denied_by("fec0::1").as_deref(), Some("fec0::/10"));
        assert_eq!(denied_by("feff:ffff::1").as_deref(), Some("fec0::/10"));
    }

    #[test]
    fn translation_prefixes_are_denied_whole_even_around_a_public_ipv4_address() {
        // 93.184.216.34 is public, and allowed as itself; wrapped in a tunnel or translation
        // prefix it is still refused by the prefix (documented: name the IPv4 address).
        assert_eq!(denied_by("93.184.216.34"), None);
        assert_eq!(
            denied_by("64:ff9b::5db8:d822").as_deref(),
            Some("64:ff9b::/96")
        );
        assert_eq!(denied_by("2002:5db8:d822::1").as_deref(), Some("2002::/16"));
        assert_eq!(denied_by("::93.184.216.34").as_deref(), Some("::/96"));
        // A global unicast IPv6 address is not affected.
        assert_eq!(denied_by("2606:2800:220:1:248:1893:25c8:1946"), None);
    }

    #[test]
    fn allowed_cidrs_punch_holes_and_hosts_restrict() {
        let p = policy(|c| {
            c.allowed_cidrs = vec!["127.0.0.0/8".parse().expect("net")];
            c.allowed_hosts = vec!["127.0.0.1".into(), "*.example.com".into()];
        });
        assert!(p.check_url(&url("http://127.0.0.1:9/x")).is_ok());
        assert!(p.check_url(&url("https://api.example.com/")).is_ok());
        assert_eq!(
            p.check_url(&url("https://example.com/")),
            Err(PolicyError::HostNotAllowed("example.com".into()))
        );
        assert!(p.check_url(&url("http://localhost/")).is_err());
    }

    #[test]
    fn disabled_refuses_everything() {
        let p = policy(|c| c.enabled = false);
        assert_eq!(
            p.check_url(&url("https://example.com/")),
            Err(PolicyError::Disabled)
        );
    }
}
