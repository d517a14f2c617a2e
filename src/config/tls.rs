//! `[proxy.tls]` and `[control.tls]`: TLS termination on a listener — a certificate chain and
//! its private key (PEM files), optionally a CA whose client certificates are required (mTLS).
//!
//! Validation reads and parses the files, so `keel validate` catches a missing file, a file
//! that is not PEM, a key that does not belong to the certificate and an expired
//! certificate before keel binds anything. What it reads is never printed: the messages
//! name paths and what is wrong, not contents (the key is a secret; its path is not).

use super::validate::Scope;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM file: the server certificate first, then any intermediates.
    pub cert: PathBuf,
    /// PEM file: the certificate's private key (PKCS#8 or traditional, unencrypted).
    pub key: PathBuf,
    /// PEM file of CA certificates: when set, every client must present a certificate that
    /// one of them signed (mutual TLS); a client without one is refused in the handshake.
    #[serde(default)]
    pub client_ca: Option<PathBuf>,
}

/// The parsed files of a [`TlsConfig`]: what a listener's TLS acceptor is built from.
pub struct TlsMaterial {
    /// Leaf first, then the chain.
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    pub client_ca: Option<Vec<X509>>,
}

/// Why a TLS file cannot be used; the message names the file, never its content.
#[derive(Debug, thiserror::Error)]
pub enum TlsFileProblem {
    #[error("cannot read {}: {source}", .path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate ({reason})", .path.display())]
    NoCertificate { path: PathBuf, reason: String },
    #[error("{} holds no PEM private key ({reason})", .path.display())]
    NoKey { path: PathBuf, reason: String },
    #[error("does not match the certificate in {}", .cert.display())]
    Mismatch { cert: PathBuf },
    #[error("the certificate in {} expired ({not_after})", .path.display())]
    Expired { path: PathBuf, not_after: String },
}

/// The problems of one [`TlsConfig`], each with the key (`cert`, `key`, `client_ca`) it
/// belongs to.
pub type TlsProblems = Vec<(&'static str, TlsFileProblem)>;

impl TlsConfig {
    /// Reads and parses every file, checks that the key belongs to the certificate and that
    /// the certificate has not expired. All problems at once, each with its key.
    pub fn load(&self) -> Result<TlsMaterial, TlsProblems> {
        let mut problems = TlsProblems::new();
        let chain = read(&self.cert)
            .and_then(|pem| certificates(&self.cert, &pem))
            .map_err(|p| problems.push(("cert", p)))
            .ok();
        let key = read(&self.key)
            .and_then(|pem| {
                // openssl's reason names the parser's complaint, never the bytes it read.
                PKey::private_key_from_pem(&pem).map_err(|e| TlsFileProblem::NoKey {
                    path: self.key.clone(),
                    reason: first_reason(&e),
                })
            })
            .map_err(|p| problems.push(("key", p)))
            .ok();
        let client_ca = match &self.client_ca {
            Some(path) => read(path)
                .and_then(|pem| certificates(path, &pem))
                .map(Some)
                .map_err(|p| problems.push(("client_ca", p)))
                .ok(),
            None => Some(None),
        };
        if let Some(leaf) = chain.as_ref().and_then(|c| c.first()) {
            if let Some(not_after) = expired(leaf) {
                problems.push((
                    "cert",
                    TlsFileProblem::Expired {
                        path: self.cert.clone(),
                        not_after,
                    },
                ));
            }
            if let Some(key) = &key {
                let matches = leaf
                    .public_key()
                    .map(|public| public.public_eq(key))
                    .unwrap_or(false);
                if !matches {
                    problems.push((
                        "key",
                        TlsFileProblem::Mismatch {
                            cert: self.cert.clone(),
                        },
                    ));
                }
            }
        }
        match (chain, key, client_ca) {
            (Some(chain), Some(key), Some(client_ca)) if problems.is_empty() => Ok(TlsMaterial {
                chain,
                key,
                client_ca,
            }),
            _ => Err(problems),
        }
    }

    pub(super) fn validate(&self, v: &mut Scope<'_>) {
        if let Err(problems) = self.load() {
            for (key, problem) in problems {
                v.error(key, problem.to_string());
            }
        }
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsFileProblem> {
    std::fs::read(path).map_err(|source| TlsFileProblem::Read {
        path: path.to_path_buf(),
        source,
    })
}

/// Every certificate of a PEM file; at least one.
fn certificates(path: &Path, pem: &[u8]) -> Result<Vec<X509>, TlsFileProblem> {
    let no_certificate = |reason: String| TlsFileProblem::NoCertificate {
        path: path.to_path_buf(),
        reason,
    };
    match X509::stack_from_pem(pem) {
        Ok(certs) if !certs.is_empty() => Ok(certs),
        Ok(_) => Err(no_certificate("no BEGIN CERTIFICATE block".into())),
        Err(e) => Err(no_certificate(first_reason(&e))),
    }
}

/// `not_after` of a certificate that is no longer valid, in openssl's text form.
fn expired(cert: &X509) -> Option<String> {
    let now = openssl::asn1::Asn1Time::days_from_now(0).ok()?;
    (cert.not_after() < now).then(|| cert.not_after().to_string())
}

/// The first reason of an openssl error stack ("bad base64 decode"), enough to act on.
fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .first()
        .and_then(|e| e.reason().map(str::to_string))
        .unwrap_or_else(|| "not PEM".to_string())
}
