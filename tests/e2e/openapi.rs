//! The control API's OpenAPI document, from the real binary: served without a token, it is
//! the reference document when every family is mounted, and every operation it lists is a
//! route keel answers (no 404 "no route", no 405).

use crate::harness::{client, Keel, Spec};
use serde_json::Value;

/// Every family mounted (the executor with a token, the dashboard by default), and room for
/// the probe's unauthenticated calls under the failed-authentication limit.
fn spec() -> Spec {
    Spec {
        control_extra: "auth_failures_per_minute = 1000".into(),
        extra: "[executor]\npool_size = 1\naccess_tokens = [\"probe-token\"]\n".into(),
        ..Default::default()
    }
}

/// A value for each path parameter of the documented routes.
fn fill(path: &str) -> String {
    path.replace("{lock_key}", "gpu_lock:0")
        .replace("{task_id}", "openapi-probe")
        .replace("{name}", "no-such-node")
        .replace("{id}", "no-such-token")
        .replace("{file}", "no-such-file.js")
}

#[tokio::test]
async fn every_documented_operation_is_served_and_the_document_is_complete() {
    let mut k = Keel::start(spec()).await;
    let http = client();
    let resp = http
        .get(k.url("/api/openapi.json"))
        .send()
        .await
        .expect("answered");
    assert_eq!(resp.status(), 200, "the document needs no token");
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "application/json"
    );
    let served: Value = resp.json().await.expect("JSON");
    assert_eq!(served["openapi"], "3.1.0");
    let reference = serde_json::to_value(keel::api::openapi::reference_document()).unwrap();
    assert_eq!(
        served, reference,
        "a keel with every family mounted serves the reference document (docs/api.md)"
    );

    let mut probed = 0;
    for (path, item) in served["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            let Ok(m) = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let url = k.url(&fill(path));
            let resp = http
                .request(m.clone(), &url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{m} {url}: {e}"));
            let status = resp.status().as_u16();
            let body = resp.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{m} {path}: {body}");
            assert!(
                !(status == 404 && body.contains("no route for")),
                "{m} {path} is documented but not routed: {body}"
            );
            probed += 1;
        }
    }
    assert!(probed >= 45, "only {probed} operations");
    // And the other way round: an undocumented path is the JSON 404.
    let resp = http
        .get(k.url("/api/v1/undocumented"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    k.stop().await;
}
