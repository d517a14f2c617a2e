//! TLS termination for keel's listeners (`[proxy.tls]`, `[control.tls]`): the certificate a
//! listener serves, held so that it can be replaced while the listener runs.
//!
//! A [`TlsTerminator`] holds an OpenSSL acceptor (certificate chain, key, client CA, ALPN)
//! behind an [`ArcSwap`]. Each handshake starts from the acceptor current at that moment;
//! a reload ([`ListenerTls::prepare`], then [`PreparedTls::commit`]) builds a new one from
//! the files and swaps it in. Connections
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
    /// Reads and checks the files `config` names (the paths may differ from the ones loaded
    /// before) for every listener that serves TLS now and still should, without swapping
    /// anything in yet: a configuration reload prepares the certificates first and commits
    /// them only once every other part was accepted, so an error anywhere leaves both
    /// listeners as they were. A listener whose TLS is turned on or off is left as it is
    /// (the reload names that key as needing a restart).
    pub fn prepare(&self, config: &crate::config::Config) -> Result<PreparedTls, TlsError> {
        let mut fresh = Vec::new();
        for (listener, running, wanted) in self.plan(config) {
            if let (Some(t), Some(c)) = (running, wanted) {
                fresh.push((t.clone(), build(listener, c)?, c.cert.clone()));
            }
        }
        Ok(PreparedTls(fresh))
    }

    /// Each listener's name, its running terminator and the TLS section `config` wants.
    fn plan<'a>(&'a self, config: &'a crate::config::Config) -> [ListenerPlan<'a>; 2] {
        [
            ("proxy", &self.proxy, &config.proxy.tls),
            ("control", &self.control, &config.control.tls),
        ]
    }
}

/// A listener's name, its running terminator (if it serves TLS) and what a config wants.
type ListenerPlan<'a> = (
    &'static str,
    &'a Option<std::sync::Arc<TlsTerminator>>,
    &'a Option<TlsConfig>,
);

/// Acceptors built from checked files, not yet serving (see [`ListenerTls::prepare`]).
pub struct PreparedTls(
    Vec<(
        std::sync::Arc<TlsTerminator>,
        SslAcceptor,
        std::path::PathBuf,
    )>,
);

impl PreparedTls {
    /// Swaps the new certificates in: new handshakes get them, open connections keep theirs.
    pub fn commit(self) {
        for (terminator, acceptor, cert) in self.0 {
            terminator.acceptor.store(std::sync::Arc::new(acceptor));
            tracing::info!(
                listener = terminator.listener,
                cert = %cert.display(),
                "TLS certificate loaded"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openssl::asn1::Asn1Time;
    use openssl::hash::MessageDigest;
    use openssl::ssl::{SslConnector, SslVerifyMode};
    use openssl::x509::{X509NameBuilder, X509};
    use std::path::Path;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A self-signed certificate named `cn` and its key, as PEM.
    fn self_signed(cn: &str) -> (Vec<u8>, Vec<u8>) {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        (
            b.build().to_pem().unwrap(),
            key.private_key_to_pem_pkcs8().unwrap(),
        )
    }

    fn install(dir: &Path, (cert, key): &(Vec<u8>, Vec<u8>)) -> TlsConfig {
        std::fs::write(dir.join("cert.pem"), cert).unwrap();
        std::fs::write(dir.join("key.pem"), key).unwrap();
        TlsConfig {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
            client_ca: None,
        }
    }

    /// Connects, completes a handshake and returns the stream and the server's CN.
    async fn connect(
        addr: std::net::SocketAddr,
    ) -> (tokio_openssl::SslStream<tokio::net::TcpStream>, String) {
        let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
        b.set_verify(SslVerifyMode::NONE);
        let ssl = b
            .build()
            .configure()
            .unwrap()
            .into_ssl("localhost")
            .unwrap();
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let mut s = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        std::pin::Pin::new(&mut s).connect().await.unwrap();
        let cn = s
            .ssl()
            .peer_certificate()
            .unwrap()
            .subject_name()
            .entries()
            .next()
            .unwrap()
            .data()
            .as_slice()
            .to_vec();
        let cn = String::from_utf8(cn).unwrap();
        (s, cn)
    }

    async fn echo(s: &mut tokio_openssl::SslStream<tokio::net::TcpStream>) -> Vec<u8> {
        s.write_all(b"ping").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        buf.to_vec()
    }

    #[tokio::test]
    async fn a_reload_serves_the_new_certificate_to_new_connections_and_keeps_open_ones() {
        let dir = tempfile::tempdir().unwrap();
        let config = install(dir.path(), &self_signed("one"));
        let tls = std::sync::Arc::new(TlsTerminator::load("proxy", &config).unwrap());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tls.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let mut s = tokio_openssl::SslStream::new(server.session().unwrap(), tcp).unwrap();
                tokio::spawn(async move {
                    if std::pin::Pin::new(&mut s).accept().await.is_ok() {
                        let mut buf = [0u8; 4];
                        while s.read_exact(&mut buf).await.is_ok() {
                            let _ = s.write_all(&buf).await;
                        }
                    }
                });
            }
        });

        let (mut before, cn) = connect(addr).await;
        assert_eq!(cn, "one");
        assert_eq!(echo(&mut before).await, b"ping");

        // What a configuration reload holds: the proxy's terminator, no control TLS.
        let listeners = ListenerTls {
            proxy: Some(tls.clone()),
            control: None,
        };
        let config_with = |proxy: &TlsConfig| {
            let mut c = crate::config::Config::default();
            c.proxy.tls = Some(proxy.clone());
            c
        };

        // A renewal replaces the files; the reload reads them.
        let renewed = install(dir.path(), &self_signed("two"));
        listeners.prepare(&config_with(&renewed)).unwrap().commit();
        let (mut after, cn) = connect(addr).await;
        assert_eq!(cn, "two", "a new connection gets the new certificate");
        assert_eq!(
            echo(&mut before).await,
            b"ping",
            "the open connection goes on"
        );
        assert_eq!(echo(&mut after).await, b"ping");

        // A key of another certificate: refused, every problem named, nothing changed.
        let (_, stray_key) = self_signed("three");
        std::fs::write(dir.path().join("key.pem"), stray_key).unwrap();
        let broken = TlsConfig {
            client_ca: Some(dir.path().join("missing-ca.pem")),
            ..renewed.clone()
        };
        let Err(err) = listeners.prepare(&config_with(&broken)) else {
            panic!("a broken key pair was accepted");
        };
        let paths: Vec<String> = err.config_errors().into_iter().map(|e| e.path).collect();
        assert_eq!(paths, ["proxy.tls.client_ca", "proxy.tls.key"], "{err}");
        assert_eq!(connect(addr).await.1, "two");

        // Turning TLS on for the control listener is left to a restart: only the listener
        // that already serves TLS is prepared.
        let renewed = install(dir.path(), &self_signed("four"));
        let mut c = config_with(&renewed);
        c.control.tls = Some(renewed);
        let prepared = listeners.prepare(&c).unwrap();
        assert_eq!(prepared.0.len(), 1, "only the proxy's acceptor is prepared");
        prepared.commit();
        assert_eq!(connect(addr).await.1, "four");
    }
}
