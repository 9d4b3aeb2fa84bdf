//! SOAP `login()` / `logout()`: the envelope simple-salesforce and jsforce send, Salesforce's
//! answer and faults, and the session id working on the REST API.

use reqwest::StatusCode;
use serde_json::Value;

use crate::common::*;

fn envelope(username: &str, password: &str) -> String {
    // simple-salesforce's envelope (prefixed elements, CallOptions header).
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\" ?><env:Envelope xmlns:xsd=\"http://www.w3.org/2001/XMLSchema\" \
         xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\" xmlns:env=\"http://schemas.xmlsoap.org/soap/envelope/\" \
         xmlns:urn=\"urn:partner.soap.sforce.com\"><env:Header><urn:CallOptions><urn:client>test</urn:client>\
         <urn:defaultNamespace>sf</urn:defaultNamespace></urn:CallOptions></env:Header><env:Body>\
         <n1:login xmlns:n1=\"urn:partner.soap.sforce.com\"><n1:username>{username}</n1:username>\
         <n1:password>{password}</n1:password></n1:login></env:Body></env:Envelope>"
    )
}

async fn soap(url: &str, body: String) -> (StatusCode, String, String) {
    let resp = http()
        .post(url)
        .header("Content-Type", "text/xml")
        .header("SOAPAction", "login")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status();
    let ct = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, ct, resp.text().await.unwrap())
}

fn element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let open = format!("<{name}>");
    let start = xml.find(&open)? + open.len();
    let end = xml[start..].find('<')? + start;
    Some(&xml[start..end])
}

#[tokio::test]
async fn login_answers_a_session_that_works_on_the_rest_api() {
    let pg = spawn_playground().await;
    let url = format!("{}/services/Soap/u/59.0", pg.login_url());
    let (status, ct, body) = soap(
        &url,
        envelope(&pg.info.user.username, &format!("{}{}", pg.info.user.password, pg.info.user.security_token)),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(ct, "text/xml;charset=UTF-8");
    assert!(body.contains("<loginResponse><result>"), "{body}");
    assert_eq!(element(&body, "passwordExpired"), Some("false"));
    assert_eq!(element(&body, "sandbox"), Some("false"));
    assert_eq!(element(&body, "userName"), Some(pg.info.user.username.as_str()));
    assert_eq!(element(&body, "userId"), Some("0058d0000000001AAA"));
    assert_eq!(element(&body, "organizationId"), Some("00D8d0000000001EAA"));
    assert_eq!(element(&body, "sessionSecondsValid"), Some("7200"));
    assert!(element(&body, "profileId").is_some_and(|p| p.starts_with("00e")), "{body}");
    let server_url = element(&body, "serverUrl").unwrap();
    assert_eq!(server_url, format!("{}/services/Soap/u/59.0/00D8d0000000001", pg.instance_url()));
    assert_eq!(
        element(&body, "metadataServerUrl").unwrap(),
        format!("{}/services/Soap/m/59.0/00D8d0000000001", pg.instance_url())
    );
    let session = element(&body, "sessionId").unwrap().to_owned();
    assert!(session.starts_with("00D8d0000000001!"));

    // The session id is a bearer token on the REST API of the instance host.
    let q = get_json(
        &format!("{}/services/data/v59.0/query?q=SELECT+Username+FROM+User+LIMIT+1", pg.instance_url()),
        &session,
    )
    .await;
    assert_eq!(q["totalSize"], 1, "{q}");

    // logout() on serverUrl ends it.
    let logout = format!(
        "<se:Envelope xmlns:se=\"http://schemas.xmlsoap.org/soap/envelope/\"><se:Header><SessionHeader xmlns=\"urn:partner.soap.sforce.com\">\
         <sessionId>{session}</sessionId></SessionHeader></se:Header><se:Body><logout xmlns=\"urn:partner.soap.sforce.com\"/></se:Body></se:Envelope>"
    );
    let (status, _, body) = soap(server_url, logout.clone()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("<logoutResponse/>"), "{body}");
    let resp = http()
        .get(format!("{}/services/data/v59.0/limits", pg.instance_url()))
        .bearer_auth(&session)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    // A second logout: the session is gone.
    let (status, _, body) = soap(server_url, logout).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("<faultcode>sf:INVALID_SESSION_ID</faultcode>"), "{body}");
}

async fn get_json(url: &str, token: &str) -> Value {
    forcelink_test_support::get_json(url, token).await
}

#[tokio::test]
async fn login_faults_are_salesforce_shaped() {
    let pg = spawn_playground().await;
    let url = format!("{}/services/Soap/u/52.0", pg.login_url());
    // simple-salesforce's recorded INVALID_LOGIN fault.
    let (status, _, body) = soap(&url, envelope(&pg.info.user.username, "wrong")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("<faultcode>sf:INVALID_LOGIN</faultcode>"), "{body}");
    assert!(
        body.contains(
            "<faultstring>INVALID_LOGIN: Invalid username, password, security token; or user locked out.</faultstring>"
        ),
        "{body}"
    );
    assert!(body.contains("<sf:exceptionCode>INVALID_LOGIN</sf:exceptionCode>"), "{body}");
    assert!(body.contains("xmlns:sf=\"urn:fault.partner.soap.sforce.com\""), "{body}");
    // The right password without the security token.
    let (status, _, body) = soap(&url, envelope(STANDARD_USER, STANDARD_PASSWORD)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("<sf:exceptionCode>LOGIN_MUST_USE_SECURITY_TOKEN</sf:exceptionCode>"), "{body}");
    // Unknown and frozen users.
    let (_, _, body) = soap(&url, envelope("nobody@example.com", "x")).await;
    assert!(body.contains("sf:INVALID_LOGIN"), "{body}");
    let (_, _, body) = soap(&url, envelope(FROZEN_USER, "Frozen1!PLAYGROUNDTOKEN0004")).await;
    assert!(body.contains("sf:INVALID_LOGIN"), "{body}");
    // The enterprise endpoint answers with its own namespaces, on the instance host too.
    let (status, _, body) = soap(
        &format!("{}/services/Soap/c/52.0", pg.instance_url()),
        envelope(STANDARD_USER, &format!("{STANDARD_PASSWORD}{STANDARD_TOKEN}")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("xmlns=\"urn:enterprise.soap.sforce.com\""), "{body}");
    assert!(body.contains("/services/Soap/c/52.0/00D8d0000000001</serverUrl>"), "{body}");
    // login() is retired from API 65.0.
    let (status, _, body) = soap(
        &format!("{}/services/Soap/u/65.0", pg.login_url()),
        envelope(STANDARD_USER, &format!("{STANDARD_PASSWORD}{STANDARD_TOKEN}")),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("<faultcode>sf:UNSUPPORTED_API_VERSION</faultcode>"), "{body}");
    // Another SOAP call, and no envelope at all.
    let (status, _, body) = soap(&url, envelope("a", "b").replace("login", "query")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("No operation available for request {urn:partner.soap.sforce.com}query"), "{body}");
    let (status, _, body) = soap(&url, "nonsense".into()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("<faultcode>soapenv:Client</faultcode>"), "{body}");
}
