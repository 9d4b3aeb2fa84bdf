//! `--tls`: both hosts over HTTPS with a CA generated for the run.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn both_hosts_serve_https_trusted_through_the_generated_ca() {
    let pg = spawn_playground_with(|c| c.tls = true).await;
    assert!(pg.info.login_url.starts_with("https://"));
    assert!(pg.info.instance_url.starts_with("https://"));
    let ca = std::fs::read(pg.info.ca_path.as_ref().expect("ca_path with TLS")).unwrap();
    let client =
        reqwest::Client::builder().add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap()).build().unwrap();
    let resp = client
        .post(pg.instance_token_url())
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", pg.info.client.client_id.as_str()),
            ("client_secret", pg.info.client.client_secret.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    assert!(body["instance_url"].as_str().unwrap().starts_with("https://"));
    assert!(body["id"].as_str().unwrap().starts_with("https://"));
    let resp = client.get(format!("{}/.well-known/openid-configuration", pg.login_url())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    // The control client trusts the CA as well.
    assert_eq!(pg.control.stats().await["tokens_issued"]["total"], 1);
    // A client that does not trust the CA refuses the connection.
    assert!(reqwest::Client::new().get(pg.login_url()).send().await.is_err());
}
