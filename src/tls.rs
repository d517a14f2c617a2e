//! TLS termination for keel's listeners (`[proxy.tls]`, `[control.tls]`): the certificate a
//! listener serves, held so that it can be replaced while the listener runs.
//!
//! A [`TlsTerminator`] holds an OpenSSL acceptor (certificate chain, key, client CA, ALPN)
//! behind an [`ArcSwap`]. Each handshake starts from the acceptor current at that moment;
//! [`TlsTerminator::reload`] builds a new one from the files and swaps it in. Connections
//! already open keep the session they negotiated (an OpenSSL session holds its own reference
//! to the context it came from), so a reload drops nothing: only handshakes after it see the
//! new certificate. A reload whose files do not parse, or whose key does not match, changes
//! nothing and returns every problem.
//!
//! Why keel does the handshake itself instead of giving Pingora `TlsSettings`: Pingora's
//! listener handshakes before the application sees the connection — outside
//! `max_connections` and with a fixed 60 s limit. keel's admission
//! ([`crate::proxy::admission`]) takes the connection's place first and bounds the
//! handshake by `header_read_timeout`, like the first request head it precedes.
//!
//! ALPN: `http/1.1` only. keel's gateway is an HTTP/1 application throughout (Pingora's
//! HTTP/1 server session, per-connection keep-alive and pipelining, connection admission);
//! Pingora's server side would accept h2 on the same listener, but keel's request loop has
//! never served h2 streams, so it is not offered. A client that offers only `h2` gets no
//! ALPN answer and falls back to HTTP/1.1 (or gives up), as with nginx without `http2 on`.

use crate::config::{ConfigError, TlsConfig, TlsMaterial};
use arc_swap::ArcSwap;
use openssl::error::ErrorStack;
use openssl::ssl::{
    select_next_proto, AlpnError, Ssl, SslAcceptor, SslMethod, SslOptions, SslVerifyMode,
};
use openssl::x509::store::X509StoreBuilder;

/// ALPN protocols keel's listeners speak, in wire format.
const ALPN_HTTP11: &[u8] = b"\x08http/1.1";

/// Why a listener's TLS could not be (re)loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The files: every problem, each with its key path (`proxy.tls.key`, ...).
    #[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Files(Vec<ConfigError>),
    /// OpenSSL refused the parsed material (rare once the files parsed).
    #[error("{listener}.tls: cannot build the TLS acceptor: {source}")]
    Build {
        listener: &'static str,
        #[source]
        source: ErrorStack,
    },
    /// TLS was turned on or off: the listener's kind changes only with a restart.
    #[error("{listener}.tls was {}; turning TLS on or off needs a restart", if *.was_on { "set and is now removed" } else { "not set and is now added" })]
    NeedsRestart { listener: &'static str, was_on: bool },
}

impl TlsError {
    /// The problems as config errors with key paths (what `keel validate` prints).
    pub fn config_errors(&self) -> Vec<ConfigError> {
        match self {
            TlsError::Files(errors) => errors.clone(),
            other => vec![ConfigError {
                path: String::new(),
                message: other.to_string(),
            }],
        }
    }
}

/// The TLS side of one listener: the acceptor new handshakes use, replaceable at runtime.
pub struct TlsTerminator {
    /// `proxy` or `control`: the config section, for messages.
    listener: &'static str,
    acceptor: ArcSwap<SslAcceptor>,
}

impl TlsTerminator {
    /// Reads the files of `config` and builds the acceptor; `listener` is the section name
    /// (`proxy`, `control`) the errors' key paths start with.
    pub fn load(listener: &'static str, config: &TlsConfig) -> Result<Self, TlsError> {
        Ok(TlsTerminator {
            listener,
            acceptor: ArcSwap::from_pointee(build(listener, config)?),
        })
    }

    /// Re-reads the certificate, key and client CA from `config` (the paths may differ from
    /// the ones loaded before) and serves them to every handshake from now on. Connections
    /// already open are not touched. On error nothing changes: the old certificate stays.
    ///
    /// This is what a configuration reload (SIGHUP) calls for each listener with TLS; it
    /// is also safe to call on its own, e.g. after a certificate renewal replaced the files.
    pub fn reload(&self, config: &TlsConfig) -> Result<(), TlsError> {
        let fresh = build(self.listener, config)?;
        self.acceptor.store(std::sync::Arc::new(fresh));
        tracing::info!(
            listener = self.listener,
            cert = %config.cert.display(),
            key = %config.key.display(),
            client_ca = config.client_ca.as_ref().map(|p| p.display().to_string()),
            "TLS certificate loaded"
        );
        Ok(())
    }

    /// A server-side TLS session for one new connection, from the current acceptor.
    pub fn session(&self) -> Result<Ssl, ErrorStack> {
        Ssl::new(self.acceptor.load().context())
    }
}

/// The acceptor for `config`: the files parsed and checked ([`TlsConfig::load`]), Mozilla's
/// "intermediate" profile (TLS 1.2 and 1.3), ALPN `http/1.1`, and with `client_ca` a
/// required, verified client certificate.
fn build(listener: &'static str, config: &TlsConfig) -> Result<SslAcceptor, TlsError> {
    let material = config.load().map_err(|problems| {
        TlsError::Files(
            problems
                .into_iter()
                .map(|(key, problem)| ConfigError {
                    path: format!("{listener}.tls.{key}"),
                    message: problem.to_string(),
                })
                .collect(),
        )
    })?;
    acceptor(&material).map_err(|source| TlsError::Build { listener, source })
}

fn acceptor(m: &TlsMaterial) -> Result<SslAcceptor, ErrorStack> {
    let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls())?;
    let (leaf, chain) = m.chain.split_first().ok_or_else(ErrorStack::get)?;
    b.set_certificate(leaf)?;
    for cert in chain {
        b.add_extra_chain_cert(cert.clone())?;
    }
    b.set_private_key(&m.key)?;
    b.check_private_key()?;
    // No client-initiated TLS 1.2 renegotiation: a CPU sink no client of keel needs.
    b.set_options(SslOptions::NO_RENEGOTIATION);
    b.set_alpn_select_callback(|_, offered| {
        select_next_proto(ALPN_HTTP11, offered).ok_or(AlpnError::NOACK)
    });
    if let Some(cas) = &m.client_ca {
        let mut store = X509StoreBuilder::new()?;
        for ca in cas {
            store.add_cert(ca.clone())?;
            // Named in the CertificateRequest, so a client with several certificates picks
            // the right one.
            b.add_client_ca(ca)?;
        }
        b.set_verify_cert_store(store.build())?;
        b.set_verify(SslVerifyMode::PEER | SslVerifyMode::FAIL_IF_NO_PEER_CERT);
    }
    Ok(b.build())
}

/// The TLS terminators of both listeners, for a configuration reload: the proxy's and the
/// control listener's, each present when its section has `tls`.
#[derive(Clone, Default)]
pub struct ListenerTls {
    pub proxy: Option<std::sync::Arc<TlsTerminator>>,
    pub control: Option<std::sync::Arc<TlsTerminator>>,
}

impl ListenerTls {
    /// Reloads the certificates of both listeners from `config`, all or nothing: both new
    /// acceptors are built before either is swapped in, so an error in one leaves both as
    /// they were. Turning TLS on or off for a listener is refused (it needs a restart).
    pub fn reload(&self, config: &crate::config::Config) -> Result<(), TlsError> {
        let plan = [
            ("proxy", &self.proxy, &config.proxy.tls),
            ("control", &self.control, &config.control.tls),
        ];
        let mut fresh = Vec::new();
        for (listener, running, wanted) in plan {
            match (running, wanted) {
                (Some(t), Some(c)) => fresh.push((t, build(listener, c)?, c)),
                (None, None) => {}
                (running, _) => {
                    return Err(TlsError::NeedsRestart {
                        listener,
                        was_on: running.is_some(),
                    })
                }
            }
        }
        for (terminator, acceptor, c) in fresh {
            terminator.acceptor.store(std::sync::Arc::new(acceptor));
            tracing::info!(
                listener = terminator.listener,
                cert = %c.cert.display(),
                "TLS certificate loaded"
            );
        }
        Ok(())
    }
}
