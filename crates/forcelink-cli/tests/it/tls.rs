//! `forcelink playground --tls`: both hosts speak HTTPS with a CA made for the run, and the
//! info file says where that CA is.

use crate::process::{Forcelink, RunDir, Until, post_token, read_info, text};

#[tokio::test]
async fn tls_playground_is_reachable_by_a_client_that_trusts_its_ca() {
    let run = RunDir::new();
    let mut pg = Forcelink::spawn(run.playground_args(&["--tls"]), Until::Line("ready"));
    let stdout = pg.ready().join("\n");
    let info = read_info(&run.info_file());

    let ca_path = text(&info, "ca_path");
    assert!(stdout.contains(ca_path), "the summary names the CA: {stdout}");
    let instance_url = text(&info, "instance_url");
    assert!(instance_url.starts_with("https://"), "{instance_url}");
    assert!(text(&info, "login_url").starts_with("https://"));
    let ca_pem = std::fs::read(ca_path).unwrap_or_else(|e| panic!("read {ca_path}: {e}"));
    let ca = reqwest::Certificate::from_pem(&ca_pem).expect("the CA file is a PEM certificate");

    // Only the playground's CA is trusted, so success proves the chain leads to it.
    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .expect("HTTPS client");
    let token_url = format!("{instance_url}/services/oauth2/token");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", text(&info["client"], "client_id")),
        ("client_secret", text(&info["client"], "client_secret")),
    ];
    let (status, token) = post_token(&trusting, &token_url, &form).await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(token["instance_url"], instance_url);
    assert!(token.get("expires_in").is_none());

    // A client that does not trust the CA is refused during the handshake.
    let untrusting = reqwest::Client::builder().tls_built_in_root_certs(false).build().expect("HTTPS client");
    let refused = untrusting.post(&token_url).form(&form).send().await;
    assert!(refused.is_err(), "an untrusted certificate must fail: {refused:?}");

    pg.stop();
}
