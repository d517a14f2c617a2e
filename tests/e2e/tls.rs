//! TLS termination (issue 17) through the real binary: a test CA made here with the
//! `openssl` crate (no key material in the repository) signs keel's certificate and the
//! clients'; clients verify keel against that CA only.

use crate::fake_llm::FakeLlm;
use crate::harness::{run_cli, Keel, Spec};
use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
};
use openssl::x509::{X509NameBuilder, X509};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// A throwaway certificate authority.
pub struct TestCa {
    cert: X509,
    key: PKey<Private>,
}

/// A certificate and its key, as PEM.
pub struct Issued {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
}

fn new_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn serial() -> openssl::asn1::Asn1Integer {
    let mut n = BigNum::new().unwrap();
    n.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    n.to_asn1_integer().unwrap()
}

impl TestCa {
    pub fn new(name: &str) -> TestCa {
        let key = new_key();
        let mut subject = X509NameBuilder::new().unwrap();
        subject.append_entry_by_text("CN", name).unwrap();
        let subject = subject.build();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&subject).unwrap();
        b.set_issuer_name(&subject).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(2).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        TestCa {
            cert: b.build(),
            key,
        }
    }

    pub fn pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }

    /// A certificate for `localhost` and 127.0.0.1, usable by a server or a client.
    pub fn issue(&self, name: &str) -> Issued {
        let key = new_key();
        let mut subject = X509NameBuilder::new().unwrap();
        subject.append_entry_by_text("CN", name).unwrap();
        let mut b = X509::builder().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&subject.build()).unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.append_extension(
            ExtendedKeyUsage::new()
                .server_auth()
                .client_auth()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        Issued {
            cert_pem: b.build().to_pem().unwrap(),
            key_pem: key.private_key_to_pem_pkcs8().unwrap(),
        }
    }
}

/// Writes `issued` as `<name>.crt` / `<name>.key` into `dir`.
fn write(dir: &Path, name: &str, issued: &Issued) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.crt"));
    let key = dir.join(format!("{name}.key"));
    std::fs::write(&cert, &issued.cert_pem).unwrap();
    std::fs::write(&key, &issued.key_pem).unwrap();
    (cert, key)
}

/// A client that trusts only `ca`, optionally presenting `identity`.
fn tls_client(ca: &TestCa, identity: Option<&Issued>) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .no_gzip()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&ca.pem()).unwrap());
    if let Some(id) = identity {
        b = b.identity(reqwest::Identity::from_pkcs8_pem(&id.cert_pem, &id.key_pem).unwrap());
    }
    b.build().unwrap()
}

fn messages_body() -> Value {
    json!({"model": "m", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]})
}

/// keel with `[proxy.tls]` (`tls_extra` added to the section) and one fake LLM node.
async fn tls_keel(dir: &Path, ca: &TestCa, tls_extra: &str, node: &FakeLlm) -> Keel {
    let (cert, key) = write(dir, "keel", &ca.issue("keel"));
    Keel::start(Spec {
        extra: format!(
            "[proxy.tls]\ncert = {cert:?}\nkey = {key:?}\n{tls_extra}\n\n\
             [[proxy.nodes]]\nname = \"n\"\nbase_url = \"{}\"\n\n[executor]\nenabled = false\n",
            node.url()
        ),
        ..Spec::default()
    })
    .await
}

/// Waits until keel counted `n` proxy connections closed in the TLS handshake (it counts
/// once it read the client's alert, which may be after the client returned).
async fn closed_in_handshake(k: &Keel, n: u32, what: &str) {
    let line =
        format!("keel_connections_closed_total{{listener=\"proxy\",reason=\"tls_handshake\"}} {n}");
    let mut metrics = String::new();
    for _ in 0..100 {
        metrics = k.metrics().await;
        if metrics.lines().any(|l| l == line) {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let counted: Vec<&str> = metrics
        .lines()
        .filter(|l| l.contains("closed_total"))
        .collect();
    panic!("{what}: expected {line}; got {counted:#?}");
}

/// The `Via` id keel generated for itself, from its startup line.
fn via_id(k: &Keel) -> String {
    k.log()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find_map(|v| {
            v["fields"]["via"]
                .as_str()
                .or(v["via"].as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no via id in the startup log:\n{}", k.log()))
}

fn https(k: &Keel, path: &str) -> String {
    format!("https://localhost:{}{path}", k.proxy.port())
}

#[tokio::test]
async fn the_proxy_listener_terminates_tls_with_http11_and_proxies_both_routes() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("keel test CA");
    let node = FakeLlm::start("m").await;
    let k = tls_keel(dir.path(), &ca, "", &node).await;

    let c = tls_client(&ca, None);
    // The LLM route, through TLS, by name and by address (both are in the certificate).
    let r = c
        .post(https(&k, "/v1/messages"))
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.version(), reqwest::Version::HTTP_11);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["type"], "message", "{answer}");
    let r = c
        .get(format!("https://{}/v1/models", k.proxy))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the generic route");
    // keel's own answers go through TLS too (here a forwarding loop's 508).
    let r = c
        .get(https(&k, "/v1/models"))
        .header("via", format!("1.1 {}", via_id(&k)))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 508);
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["error"]["code"], "loop_detected", "{answer}");

    // A client that does not trust the test CA refuses keel's certificate.
    let untrusting = tls_client(&TestCa::new("another CA"), None);
    assert!(untrusting
        .get(https(&k, "/v1/models"))
        .send()
        .await
        .is_err());
    // Plain HTTP on the TLS port gets no HTTP answer (the handshake fails), and is counted.
    let plain = crate::harness::client()
        .get(format!("http://{}/v1/models", k.proxy))
        .send()
        .await;
    assert!(plain.is_err(), "{plain:?}");

    // ALPN: keel speaks http/1.1 and chooses it when a client offers h2 first.
    let alpn = {
        let addr = k.proxy;
        let ca_pem = ca.pem();
        tokio::task::spawn_blocking(move || {
            use openssl::ssl::{SslConnector, SslMethod};
            let mut b = SslConnector::builder(SslMethod::tls()).unwrap();
            b.cert_store_mut()
                .add_cert(X509::from_pem(&ca_pem).unwrap())
                .unwrap();
            b.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();
            let tcp = std::net::TcpStream::connect(addr).unwrap();
            let s = b.build().connect("localhost", tcp).unwrap();
            s.ssl().selected_alpn_protocol().map(<[u8]>::to_vec)
        })
        .await
        .unwrap()
    };
    assert_eq!(alpn.as_deref(), Some(&b"http/1.1"[..]));

    closed_in_handshake(&k, 2, "the untrusting client and the plain one").await;
}

#[tokio::test]
async fn mtls_refuses_clients_without_a_certificate_or_from_another_ca() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("keel test CA");
    let clients_ca = TestCa::new("clients CA");
    let ca_path = dir.path().join("clients-ca.pem");
    std::fs::write(&ca_path, clients_ca.pem()).unwrap();
    let node = FakeLlm::start("m").await;
    let k = tls_keel(dir.path(), &ca, &format!("client_ca = {ca_path:?}"), &node).await;

    let good = clients_ca.issue("team-a");
    let r = tls_client(&ca, Some(&good))
        .post(https(&k, "/v1/messages"))
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "a certificate the client CA signed");

    let no_cert = tls_client(&ca, None)
        .post(https(&k, "/v1/messages"))
        .json(&messages_body())
        .send()
        .await;
    assert!(no_cert.is_err(), "no client certificate: {no_cert:?}");
    let stranger = TestCa::new("another CA").issue("mallory");
    let wrong_ca = tls_client(&ca, Some(&stranger))
        .post(https(&k, "/v1/messages"))
        .json(&messages_body())
        .send()
        .await;
    assert!(
        wrong_ca.is_err(),
        "a certificate of another CA: {wrong_ca:?}"
    );
    assert_eq!(node.attempt_count(), 1, "only the good client got through");
    closed_in_handshake(&k, 2, "no certificate, another CA's").await;
}

#[tokio::test]
async fn the_control_listener_serves_tls_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("keel test CA");
    let (cert, key) = write(dir.path(), "control", &ca.issue("control"));
    let k = Keel::start(Spec {
        control_extra: format!("[control.tls]\ncert = {cert:?}\nkey = {key:?}\n"),
        extra: "[executor]\nenabled = false\n".into(),
        control_ca_pem: Some(ca.pem()),
        ..Spec::default()
    })
    .await;
    // `wait_ready` already went through TLS; the admin API works the same way.
    let r = k
        .admin(k.control_client().get(k.url("/admin/api/nodes")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let plain = crate::harness::client()
        .get(format!("http://{}/health/live", k.control))
        .send()
        .await;
    assert!(
        plain.is_err(),
        "plain HTTP on the TLS control port: {plain:?}"
    );
}

#[tokio::test]
async fn validate_names_a_mismatched_key_and_a_missing_file_by_key_path_without_contents() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new("keel test CA");
    let (cert, _) = write(dir.path(), "one", &ca.issue("one"));
    let (_, other_key) = write(dir.path(), "two", &ca.issue("two"));
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let missing = dir.path().join("missing.pem");
    let config = dir.path().join("keel.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\n[control.tls]\ncert = {not_pem:?}\nkey = {other_key:?}\n\n\
             [proxy.tls]\ncert = {cert:?}\nkey = {other_key:?}\nclient_ca = {missing:?}\n",
            data = dir.path().join("data"),
        ),
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &["validate", "--config", config.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 78, "EX_CONFIG; stdout:\n{out}\nstderr:\n{err}");
    let text = format!("{out}{err}");
    let has = |needle: &str| text.lines().any(|l| l.contains(needle));
    assert!(
        has(&format!(
            "proxy.tls.key: does not match the certificate in {}",
            cert.display()
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "proxy.tls.client_ca: cannot read {}",
            missing.display()
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "control.tls.cert: {} holds no PEM certificate",
            not_pem.display()
        )),
        "{text}"
    );
    // Paths only: nothing of a key (or certificate) is printed.
    assert!(!text.contains("-----BEGIN"), "{text}");
    let key_body = std::fs::read_to_string(&other_key).unwrap();
    let key_line = key_body.lines().nth(1).unwrap();
    assert!(!text.contains(key_line), "{text}");

    // `print-config` shows the paths of a valid TLS section, nothing of the files.
    let (good_cert, good_key) = write(dir.path(), "good", &ca.issue("good"));
    std::fs::write(
        &config,
        format!(
            "data_dir = {data:?}\n\n[proxy.tls]\ncert = {good_cert:?}\nkey = {good_key:?}\n",
            data = dir.path().join("data"),
        ),
    )
    .unwrap();
    let (code, out, err) = run_cli(
        &["print-config", "--config", config.to_str().unwrap()],
        &[],
        dir.path(),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&good_key.display().to_string()), "{out}");
    assert!(!out.contains("-----BEGIN"), "{out}");
}

/// A POST through a fresh client (a new connection, so a new handshake) trusting `ca`.
async fn status_with(k: &Keel, ca: &TestCa) -> Result<u16, reqwest::Error> {
    let r = tls_client(ca, None)
        .post(https(k, "/v1/messages"))
        .json(&messages_body())
        .send()
        .await?;
    Ok(r.status().as_u16())
}

#[tokio::test]
async fn a_reload_serves_a_renewed_certificate_and_a_broken_one_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = TestCa::new("keel test CA");
    let node = FakeLlm::start("m").await;
    let k = tls_keel(dir.path(), &old_ca, "", &node).await;
    assert_eq!(status_with(&k, &old_ca).await.unwrap(), 200);
    // The stream on this connection must survive every reload below.
    let kept = tls_client(&old_ca, None);
    assert_eq!(
        kept.post(https(&k, "/v1/messages"))
            .json(&messages_body())
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A broken renewal (the key of another pair): refused whole, the old one still served.
    let new_ca = TestCa::new("renewed CA");
    let renewed = new_ca.issue("keel");
    let other = new_ca.issue("other");
    std::fs::write(dir.path().join("keel.crt"), &renewed.cert_pem).unwrap();
    std::fs::write(dir.path().join("keel.key"), &other.key_pem).unwrap();
    let r = crate::reload::sighup(&k).await;
    assert_eq!(r.result, keel::reload::Outcome::Invalid, "{r:?}");
    assert!(
        r.errors.iter().any(|e| e.contains("proxy.tls.key")),
        "{r:?}"
    );
    assert_eq!(status_with(&k, &old_ca).await.unwrap(), 200);

    // The matching key: new handshakes get the renewed certificate (same paths).
    std::fs::write(dir.path().join("keel.key"), &renewed.key_pem).unwrap();
    let r = crate::reload::sighup(&k).await;
    assert_eq!(r.result, keel::reload::Outcome::Ok, "{r:?}");
    assert!(r.needs_restart.is_empty(), "{r:?}");
    assert_eq!(status_with(&k, &new_ca).await.unwrap(), 200);
    assert!(
        status_with(&k, &old_ca).await.is_err(),
        "a client trusting only the old CA must fail the new handshake"
    );
    // The connection opened before the renewal keeps its session and still serves.
    let r = kept
        .post(https(&k, "/v1/messages"))
        .json(&messages_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
