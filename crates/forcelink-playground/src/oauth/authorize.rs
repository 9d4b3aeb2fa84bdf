//! `/services/oauth2/authorize` (web-server and user-agent flows) and `/setup/connect` (the
//! device flow's verification page): real HTML forms for login and consent that a browser or a
//! test can submit. Parameters are kept server-side between pages under a random `pending` id.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{Html, IntoResponse, Response};
use axum_extra::extract::cookie::{Cookie, SameSite};
use bytes::Bytes;

use super::token::{Grant, issue};
use super::{Params, requested_scopes, secrets_equal};
use crate::host::Host;
use crate::seed::{Flow, PermittedUsers};
use crate::state::{
    AUTHORIZATION_CODE_TTL_MS, AuthorizationCode, DeviceStatus, MAX_APPROVALS_PER_USER_AND_APP, PendingAuthorization,
    Runtime, Shared, random_chars,
};

const SESSION_COOKIE: &str = "playground_sid";
/// Pending authorizations older than this are forgotten (the login page was abandoned).
const PENDING_TTL_MS: i64 = 30 * 60 * 1000;
/// Salesforce's login-failure text.
const LOGIN_FAILED: &str =
    "Please check your username and password. If you still can't log in, contact your Salesforce administrator.";

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    org_name: &'a str,
    action: &'a str,
    pending: &'a str,
    error: Option<&'a str>,
    user_code: Option<&'a str>,
    ask_credentials: bool,
    username: &'a str,
    submit_label: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
struct ConsentPage<'a> {
    org_name: &'a str,
    app_name: &'a str,
    username: &'a str,
    scopes: &'a [String],
    pending: &'a str,
    evicts: bool,
    approvals: usize,
}

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage<'a> {
    heading: &'a str,
    text: &'a str,
    is_error: bool,
}

fn html(status: StatusCode, page: &impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, format!("template error: {e}")).into_response(),
    }
}

fn error_page(status: StatusCode, heading: &str, text: &str) -> Response {
    html(status, &MessagePage { heading, text, is_error: true })
}

/// A 302 to `uri` with `params` in the query (code flow) or the fragment (user-agent flow).
fn redirect(uri: &str, params: &[(String, String)], fragment: bool) -> Response {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    let encoded = ser.finish();
    let location = if fragment {
        format!("{uri}#{encoded}")
    } else if uri.contains('?') {
        format!("{uri}&{encoded}")
    } else {
        format!("{uri}?{encoded}")
    };
    let mut response = StatusCode::FOUND.into_response();
    if let Ok(v) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, v);
    }
    response
}

fn error_redirect(p: &PendingAuthorization, error: &str, description: &str) -> Response {
    let mut params =
        vec![("error".to_owned(), error.to_owned()), ("error_description".to_owned(), description.to_owned())];
    if let Some(s) = &p.state {
        params.push(("state".to_owned(), s.clone()));
    }
    redirect(&p.redirect_uri, &params, p.response_type.starts_with("token"))
}

fn session_user(rt: &Runtime, headers: &HeaderMap) -> Option<usize> {
    // Every `playground_sid` the browser sent counts (playgrounds on other ports of the same host
    // share the cookie jar), so look at each rather than at one per name.
    let cookies = headers.get_all(header::COOKIE);
    for value in cookies.iter().filter_map(|v| v.to_str().ok()) {
        for cookie in Cookie::split_parse(value).filter_map(Result::ok) {
            if cookie.name() == SESSION_COOKIE
                && let Some(&user) = rt.browser_sessions.get(cookie.value())
                && rt.users[user].can_log_in()
            {
                return Some(user);
            }
        }
    }
    None
}

/// `GET`/`POST /services/oauth2/authorize`.
pub(crate) async fn authorize(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match Params::read(&headers, uri.query(), body).await {
        Ok(p) => p,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "Invalid request", "The request could not be read."),
    };
    // Without a valid client and redirect URI there is nowhere safe to send an error: show it.
    let Some(app) = params.get("client_id").and_then(|id| pg.app_by_client_id(id)) else {
        return error_page(StatusCode::BAD_REQUEST, "error=invalid_client_id", "client identifier invalid");
    };
    let redirect_uri = params.get("redirect_uri").unwrap_or("");
    if !pg.apps[app].callback_allowed(redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "error=redirect_uri_mismatch",
            "redirect_uri must match configuration",
        );
    }
    let response_type = params.get("response_type").unwrap_or("").to_owned();
    let mut pending = PendingAuthorization {
        app,
        response_type: response_type.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scopes: Vec::new(),
        state: params.get("state").map(str::to_owned),
        code_challenge: params.get("code_challenge").map(str::to_owned),
        nonce: params.get("nonce").map(str::to_owned),
        force_consent: false,
        user: None,
        device_code: None,
        created_ms: pg.now_ms(),
    };
    let flow = match response_type.as_str() {
        "code" | "code id_token" => Flow::AuthorizationCode,
        "token" | "token id_token" => Flow::UserAgent,
        _ => return error_redirect(&pending, "unsupported_response_type", "response type not supported"),
    };
    if !pg.apps[app].allows(flow) {
        // UNCONFIRMED wording; RFC 6749 §4.1.2.1 names this error.
        return error_redirect(&pending, "unauthorized_client", "this app does not allow this flow");
    }
    if flow == Flow::AuthorizationCode {
        match params.get("code_challenge_method") {
            // Salesforce advertises S256 only; jsforce omits the method, meaning S256.
            None | Some("S256") => {}
            Some(_) => return error_redirect(&pending, "invalid_request", "code_challenge_method must be S256"),
        }
        if pg.apps[app].seed.require_pkce && pending.code_challenge.is_none() {
            return error_redirect(&pending, "invalid_request", "missing required code challenge");
        }
    }
    pending.scopes = match requested_scopes(&pg.apps[app].seed.scopes, params.get("scope")) {
        Ok(s) => s,
        Err(e) => return error_redirect(&pending, e.error, e.description.as_deref().unwrap_or("")),
    };
    let prompt = params.get("prompt").unwrap_or("");
    pending.force_consent = prompt.split(' ').any(|p| p == "consent");
    let force_login = prompt.split(' ').any(|p| p == "login" || p == "select_account");
    let immediate = params.get("immediate") == Some("true");

    let mut rt = pg.rt();
    let now = pg.now_ms();
    rt.pending.retain(|_, p| now - p.created_ms < PENDING_TTL_MS);
    let user = if force_login { None } else { session_user(&rt, &headers) };
    if immediate {
        let approved = user.is_some_and(|u| rt.consents.contains(&(u, app)) || pg.apps[app].pre_approves(&rt.users[u]));
        if !approved || force_login || pending.force_consent {
            return error_redirect(&pending, "immediate_unsuccessful", "immediate authorization unsuccessful");
        }
    }
    pending.user = user;
    let id = random_chars(32);
    rt.pending.insert(id.clone(), pending.clone());
    match user {
        Some(u) => after_login(&pg, &host, &mut rt, &id, u),
        None => login_page(&pg, &id, None, None, ""),
    }
}

fn login_page(pg: &Shared, pending: &str, error: Option<&str>, user_code: Option<&str>, username: &str) -> Response {
    let device = user_code.is_some();
    html(
        if error.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK },
        &LoginPage {
            org_name: &pg.seed.org.name,
            action: if device { "/setup/connect" } else { "/services/oauth2/authorize/login" },
            pending,
            error,
            user_code,
            ask_credentials: true,
            username,
            submit_label: if device { "Connect" } else { "Log In" },
        },
    )
}

/// Checks a username and password typed on a login page (no security token: this is the UI).
fn check_login(rt: &Runtime, username: &str, password: &str) -> Result<usize, &'static str> {
    let user = rt.user_by_name(username).ok_or(LOGIN_FAILED)?;
    let u = &rt.users[user];
    if !secrets_equal(password, &u.password) {
        return Err(LOGIN_FAILED);
    }
    if u.frozen {
        return Err("Your account has been frozen. Contact your Salesforce administrator.");
    }
    if !u.active {
        return Err("Your account is inactive. Contact your Salesforce administrator.");
    }
    Ok(user)
}

/// `POST /services/oauth2/authorize/login`.
pub(crate) async fn login_submit(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::read(&headers, None, body).await.unwrap_or_default();
    let id = params.get("pending").unwrap_or("").to_owned();
    let mut rt = pg.rt();
    let now = pg.now_ms();
    rt.pending.retain(|_, p| now - p.created_ms < PENDING_TTL_MS);
    if !rt.pending.contains_key(&id) {
        return error_page(StatusCode::BAD_REQUEST, "Session expired", "Start the authorization again.");
    }
    let username = params.get("username").unwrap_or("");
    match check_login(&rt, username, params.get("password").unwrap_or("")) {
        Err(message) => {
            drop(rt);
            login_page(&pg, &id, Some(message), None, username)
        }
        Ok(user) => {
            let sid = random_chars(40);
            rt.browser_sessions.insert(sid.clone(), user);
            let mut response = after_login(&pg, &host, &mut rt, &id, user);
            let cookie = Cookie::build((SESSION_COOKIE, sid)).path("/").http_only(true).same_site(SameSite::Lax);
            if let Ok(v) = HeaderValue::from_str(&cookie.to_string()) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
            response
        }
    }
}

/// After login: refuse users the app does not admit, ask for consent when needed, else finish.
fn after_login(pg: &Shared, host: &Host, rt: &mut Runtime, id: &str, user: usize) -> Response {
    let Some(pending) = rt.pending.get_mut(id) else {
        return error_page(StatusCode::BAD_REQUEST, "Session expired", "Start the authorization again.");
    };
    pending.user = Some(user);
    let pending = pending.clone();
    let app = &pg.apps[pending.app];
    let pre_approved = app.pre_approves(&rt.users[user]);
    if app.seed.permitted_users == PermittedUsers::AdminApproved && !pre_approved {
        rt.pending.remove(id);
        return deny(pg, rt, &pending, "user is not admin approved to access this app");
    }
    let needs_consent = pending.force_consent
        || pending.device_code.is_some()
        || (!pre_approved && !rt.consents.contains(&(user, pending.app)));
    if needs_consent {
        let approvals = rt.live_approvals(user, pending.app);
        let evicts = app.grants_refresh(&pending.scopes) && approvals >= MAX_APPROVALS_PER_USER_AND_APP;
        return html(
            StatusCode::OK,
            &ConsentPage {
                org_name: &pg.seed.org.name,
                app_name: &app.seed.name,
                username: &rt.users[user].username,
                scopes: &pending.scopes,
                pending: id,
                evicts,
                approvals,
            },
        );
    }
    rt.pending.remove(id);
    finish(pg, host, rt, pending, user)
}

fn deny(pg: &Shared, rt: &mut Runtime, pending: &PendingAuthorization, description: &str) -> Response {
    if let Some(code) = &pending.device_code {
        if let Some(g) = rt.device_grants.get_mut(code) {
            g.status = DeviceStatus::Denied;
        }
        let _ = pg;
        return html(
            StatusCode::OK,
            &MessagePage { heading: "Access denied", text: "The device was not connected.", is_error: true },
        );
    }
    error_redirect(pending, "access_denied", description)
}

/// `POST /services/oauth2/authorize/consent`.
pub(crate) async fn consent_submit(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::read(&headers, None, body).await.unwrap_or_default();
    let mut rt = pg.rt();
    let now = pg.now_ms();
    rt.pending.retain(|_, p| now - p.created_ms < PENDING_TTL_MS);
    let Some(pending) = params.get("pending").and_then(|id| rt.pending.remove(id)) else {
        return error_page(StatusCode::BAD_REQUEST, "Session expired", "Start the authorization again.");
    };
    let Some(user) = pending.user else {
        return error_page(StatusCode::BAD_REQUEST, "Not logged in", "Start the authorization again.");
    };
    if params.get("decision") != Some("allow") {
        return deny(&pg, &mut rt, &pending, "end-user denied authorization");
    }
    finish(&pg, &host, &mut rt, pending, user)
}

/// Completes an approved authorization: a code, a token fragment, or an approved device.
fn finish(pg: &Shared, host: &Host, rt: &mut Runtime, pending: PendingAuthorization, user: usize) -> Response {
    rt.consents.insert((user, pending.app));
    let now = pg.now_ms();
    if let Some(code) = &pending.device_code {
        return match rt.device_grants.get_mut(code) {
            Some(g) if now < g.expires_ms => {
                g.status = DeviceStatus::Approved { user };
                html(
                    StatusCode::OK,
                    &MessagePage {
                        heading: "You're connected",
                        text: "Return to your device; it finishes signing in on its own.",
                        is_error: false,
                    },
                )
            }
            _ => error_page(StatusCode::BAD_REQUEST, "Code expired", "Start again on your device."),
        };
    }
    let mut out = Vec::new();
    if pending.response_type.starts_with("code") {
        let code = format!("aPrx{}==", random_chars(56));
        // Used and expired codes stay as tombstones for one more lifetime, so presenting one
        // again is answered "expired authorization code", not "invalid".
        rt.codes.retain(|_, c| now < c.expires_ms + AUTHORIZATION_CODE_TTL_MS);
        rt.codes.insert(
            code.clone(),
            AuthorizationCode {
                user,
                app: pending.app,
                scopes: pending.scopes.clone(),
                redirect_uri: pending.redirect_uri.clone(),
                code_challenge: pending.code_challenge.clone(),
                nonce: pending.nonce.clone(),
                expires_ms: now + AUTHORIZATION_CODE_TTL_MS,
                used: false,
            },
        );
        out.push(("code".to_owned(), code));
    } else {
        let (family, refresh_token) = if pg.apps[pending.app].grants_refresh(&pending.scopes) {
            let (f, r) = rt.new_family(now, user, pending.app, &pending.scopes);
            (Some(f), Some(r))
        } else {
            (None, None)
        };
        let grant = Grant {
            user,
            app: pending.app,
            scopes: pending.scopes.clone(),
            family,
            refresh_token,
            nonce: pending.nonce.clone(),
        };
        out = issue(pg, host, rt, grant, "user_agent");
    }
    if let Some(s) = &pending.state {
        out.push(("state".to_owned(), s.clone()));
    }
    redirect(&pending.redirect_uri, &out, !pending.response_type.starts_with("code"))
}

/// `GET /setup/connect`: the device flow's verification page.
pub(crate) async fn device_page(State(pg): State<Shared>, uri: Uri) -> Response {
    let params = Params::from_query(uri.query());
    let code = params.get("user_code").unwrap_or("");
    html(
        StatusCode::OK,
        &LoginPage {
            org_name: &pg.seed.org.name,
            action: "/setup/connect",
            pending: "",
            error: None,
            user_code: Some(code),
            ask_credentials: true,
            username: "",
            submit_label: "Connect",
        },
    )
}

/// `POST /setup/connect`: user code plus login, then the consent page.
pub(crate) async fn device_submit(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::read(&headers, None, body).await.unwrap_or_default();
    let user_code = params.get("user_code").unwrap_or("").trim().to_ascii_uppercase();
    let username = params.get("username").unwrap_or("");
    let mut rt = pg.rt();
    let now = pg.now_ms();
    let found = rt
        .device_grants
        .iter()
        .find(|(_, g)| g.user_code == user_code && g.status == DeviceStatus::Pending && now < g.expires_ms)
        .map(|(code, g)| (code.clone(), g.app, g.scopes.clone()));
    let Some((device_code, app, scopes)) = found else {
        drop(rt);
        return login_page(&pg, "", Some("That code is invalid or has expired."), Some(&user_code), username);
    };
    let user = match check_login(&rt, username, params.get("password").unwrap_or("")) {
        Ok(u) => u,
        Err(message) => {
            drop(rt);
            return login_page(&pg, "", Some(message), Some(&user_code), username);
        }
    };
    let id = random_chars(32);
    rt.pending.insert(
        id.clone(),
        PendingAuthorization {
            app,
            response_type: "device".to_owned(),
            redirect_uri: String::new(),
            scopes,
            state: None,
            code_challenge: None,
            nonce: None,
            force_consent: true,
            user: Some(user),
            device_code: Some(device_code),
            created_ms: now,
        },
    );
    after_login(&pg, &host, &mut rt, &id, user)
}

/// `GET|POST /services/auth/idp/oidc/logout`: OpenID Connect RP-initiated logout, the discovery
/// document's `end_session_endpoint`. Ends the browser session the `playground_sid` cookie names
/// (the next authorize shows the login page again), clears the cookie, then redirects to
/// `post_logout_redirect_uri` (with `state`) when it is one of an app's callback URLs, else shows
/// a "logged out" page. Access and refresh tokens stay valid, as on Salesforce: logging out of
/// the browser does not revoke API sessions.
/// UNCONFIRMED: Salesforce checks the redirect against the app's configured logout URL; the
/// playground, which has no such setting, uses the callback URLs.
pub(crate) async fn oidc_logout(State(pg): State<Shared>, uri: Uri, headers: HeaderMap) -> Response {
    let params = Params::from_query(uri.query());
    {
        let mut rt = pg.rt();
        for value in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            for cookie in Cookie::split_parse(value).filter_map(Result::ok) {
                if cookie.name() == SESSION_COOKIE {
                    rt.browser_sessions.remove(cookie.value());
                }
            }
        }
    }
    let target = params.get("post_logout_redirect_uri").filter(|u| pg.apps.iter().any(|a| a.callback_allowed(u)));
    let mut response = match target {
        Some(u) => {
            let state: Vec<(String, String)> =
                params.get("state").map(|s| vec![("state".to_owned(), s.to_owned())]).unwrap_or_default();
            redirect(u, &state, false)
        }
        None => {
            html(StatusCode::OK, &MessagePage { heading: "Logged out", text: "You have logged out.", is_error: false })
        }
    };
    if let Ok(v) = HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; Max-Age=0")) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}
