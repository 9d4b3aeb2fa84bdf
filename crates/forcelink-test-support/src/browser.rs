//! What a person does in a browser on the playground's pages, done over plain HTTP: open an
//! authorize URL, sign in on the login page, answer the consent page, approve a device code.
//!
//! Every step reads the page's hidden `pending` field and posts the form the page would post,
//! so the tests go through the same pages (and the same checks) a person would.

use reqwest::StatusCode;

use crate::PlaygroundHandle;

/// An HTTP client that does not follow redirects, so a test sees each `302` and its `Location`.
pub fn no_redirect_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("an HTTP client")
}

/// The `value` of the form field `name="…"` in an HTML page (hidden inputs), with `&amp;`
/// unescaped; `None` when the page has no such field.
pub fn hidden_input(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].replace("&amp;", "&"))
}

/// What the user decides on the consent page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// "Allow": the app gets its code or token.
    Allow,
    /// "Deny": the app gets `access_denied`.
    Deny,
}

impl Decision {
    fn form_value(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Opens `authorize_url`, signs in on the playground's login page as `username`/`password`
/// and answers the consent page (when one is shown) with `decision`. Returns the final
/// redirect's `Location` (where the browser would go next), without following it.
///
/// Panics (it is a test helper) when a page is missing or the playground does not redirect.
pub async fn sign_in(
    pg: &PlaygroundHandle,
    authorize_url: &str,
    username: &str,
    password: &str,
    decision: Decision,
) -> String {
    let http = no_redirect_client();
    let page = http.get(authorize_url).send().await.expect("authorize page").text().await.expect("page text");
    let pending = hidden_input(&page, "pending").unwrap_or_else(|| panic!("no login page: {page}"));
    let resp = http
        .post(format!("{}/services/oauth2/authorize/login", pg.login_url()))
        .form(&[("pending", pending.as_str()), ("username", username), ("password", password)])
        .send()
        .await
        .expect("login form");
    let resp = if resp.status() == StatusCode::OK {
        let page = resp.text().await.expect("page text");
        let pending = hidden_input(&page, "pending").unwrap_or_else(|| panic!("no consent page: {page}"));
        http.post(format!("{}/services/oauth2/authorize/consent", pg.login_url()))
            .form(&[("pending", pending.as_str()), ("decision", decision.form_value())])
            .send()
            .await
            .expect("consent form")
    } else {
        resp
    };
    assert_eq!(resp.status(), StatusCode::FOUND, "the playground did not redirect");
    resp.headers()["location"].to_str().expect("an ASCII Location").to_owned()
}

/// Approves (or denies) `user_code` on the playground's device verification page, signing in
/// as `username`/`password`, and checks that the consent answer page is shown.
pub async fn approve_device(
    pg: &PlaygroundHandle,
    user_code: &str,
    username: &str,
    password: &str,
    decision: Decision,
) {
    let http = no_redirect_client();
    let resp = http
        .post(format!("{}/setup/connect", pg.login_url()))
        .form(&[("pending", ""), ("user_code", user_code), ("username", username), ("password", password)])
        .send()
        .await
        .expect("verification form");
    assert_eq!(resp.status(), StatusCode::OK);
    let consent = resp.text().await.expect("page text");
    let pending = hidden_input(&consent, "pending").unwrap_or_else(|| panic!("no consent page: {consent}"));
    let resp = http
        .post(format!("{}/services/oauth2/authorize/consent", pg.login_url()))
        .form(&[("pending", pending.as_str()), ("decision", decision.form_value())])
        .send()
        .await
        .expect("consent form");
    assert_eq!(resp.status(), StatusCode::OK);
}
