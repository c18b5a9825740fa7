//! `zanzi serve --http-tls-cert/--http-tls-key`: the HTTP API over TLS (rustls on ring), with
//! a self-signed certificate made for the test; a client trusting it checks over https,
//! plain http to the TLS port gets no answer, and a client trusting nothing is refused.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use crate::process::{serve_with, KEY, SCHEMA};

/// A ureq agent over rustls (ring) trusting `roots`.
fn agent(roots: RootCerts) -> ureq::Agent {
    let tls = TlsConfig::builder()
        .provider(TlsProvider::Rustls)
        .root_certs(roots)
        .unversioned_rustls_crypto_provider(Arc::new(
            tokio_rustls::rustls::crypto::ring::default_provider(),
        ))
        .build();
    ureq::Agent::config_builder()
        .tls_config(tls)
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

fn post(agent: &ureq::Agent, url: &str, body: &Value) -> Result<(u16, Value), ureq::Error> {
    let mut response = agent
        .post(url)
        .header("Authorization", &format!("Bearer {KEY}"))
        .send_json(body)?;
    let status = response.status().as_u16();
    let value = response.body_mut().read_json()?;
    Ok((status, value))
}

#[test]
fn the_http_api_is_served_over_tls_with_the_configured_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let cert_pem = certified.cert.pem();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &cert_pem).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let data = dir.path().join("data");
    let served = serve_with(&[
        "--data-dir",
        data.to_str().unwrap(),
        "--http-tls-cert",
        cert.to_str().unwrap(),
        "--http-tls-key",
        key.to_str().unwrap(),
    ]);
    let https = served.url.replacen("http://", "https://", 1);

    let trusting = agent(RootCerts::Specific(Arc::new(vec![Certificate::from_pem(
        cert_pem.as_bytes(),
    )
    .unwrap()])));
    let (status, body) = post(
        &trusting,
        &format!("{https}/v1/schema/write"),
        &json!({"schema": SCHEMA}),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &trusting,
        &format!("{https}/v1/relationships/write"),
        &crate::process::touch("doc:1#viewer@user:tom"),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let (status, body) = post(
        &trusting,
        &format!("{https}/v1/permissions/check"),
        &json!({
            "consistency": {"fullyConsistent": true},
            "resource": {"objectType": "doc", "objectId": "1"},
            "permission": "view",
            "subject": {"object": {"objectType": "user", "objectId": "tom"}},
        }),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["permissionship"], "PERMISSIONSHIP_HAS_PERMISSION");

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into();
    let answer = plain.get(&format!("{}/healthz", served.url)).call();
    assert!(answer.is_err(), "plain http was answered: {answer:?}");

    // A client that does not trust the certificate is refused.
    let untrusting = agent(RootCerts::Specific(Arc::new(Vec::new())));
    assert!(post(&untrusting, &format!("{https}/healthz"), &json!({})).is_err());

    // The server still serves after the failed handshakes.
    let mut health = trusting.get(&format!("{https}/healthz")).call().unwrap();
    assert_eq!(health.status().as_u16(), 200);
    assert_eq!(
        health.body_mut().read_json::<Value>().unwrap()["status"],
        "SERVING"
    );
}

#[test]
fn a_missing_or_unusable_certificate_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let (code, output) = crate::process::zanzi(&[
        "serve",
        "--data-dir",
        dir.path().to_str().unwrap(),
        "--http-addr",
        "127.0.0.1:0",
        "--grpc-addr",
        "127.0.0.1:0",
        "--http-tls-cert",
        missing.to_str().unwrap(),
        "--http-tls-key",
        missing.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        output.contains("HTTP TLS") && output.contains("missing.pem"),
        "{output}"
    );
}

#[test]
fn a_tls_server_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, certified.cert.pem()).unwrap();
    std::fs::write(&key, certified.key_pair.serialize_pem()).unwrap();
    let server = crate::server_support::TestServer::start_with(|config| {
        config.http_tls = Some(zanzi::api::grpc::TlsFiles { cert, key });
    });
    let trusting = agent(RootCerts::Specific(Arc::new(vec![Certificate::from_pem(
        certified.cert.pem().as_bytes(),
    )
    .unwrap()])));
    let answer = trusting
        .get(&format!("https://{}/healthz", server.addr))
        .call()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    // Dropping the server waits for `serve` to return: the TLS listener lets it stop.
    drop(server);
}
