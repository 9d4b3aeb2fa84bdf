//! `POST /services/oauth2/token`: every grant Salesforce offers, with its answers and errors
//! (wire reference §1 and §3).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{
    ClientCredentials, OAuthError, Params, SecretPolicy, authenticate_client, json_response, non_interactive_scopes,
    requested_scopes, secrets_equal,
};
use crate::host::{Host, HostKind};
use crate::jwt::{self, Compact};
use crate::seed::{DEFAULT_ASSET_TOKEN_VALIDITY_SECONDS, Flow, PermittedUsers};
use crate::state::{
    DEVICE_CODE_TTL_MS, DEVICE_POLL_INTERVAL_SECONDS, DeviceGrant, DeviceStatus, RefreshState, Runtime, Shared, bump,
    random_chars,
};

const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const TOKEN_TYPE_ACCESS: &str = "urn:ietf:params:oauth:token-type:access_token";
const TOKEN_TYPE_JWT: &str = "urn:ietf:params:oauth:token-type:jwt";
/// Lifetime of ID tokens. Salesforce's is UNCONFIRMED; 5 minutes is plausible.
const ID_TOKEN_TTL_S: i64 = 300;
/// Audiences Salesforce accepts besides the org's own login and My Domain URLs.
const SALESFORCE_AUDIENCES: [&str; 2] = ["https://login.salesforce.com", "https://test.salesforce.com"];

/// A success body, fields in Salesforce's order; never `expires_in`.
#[derive(Debug, Serialize)]
struct TokenResponse {
    access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<String>,
    signature: String,
    scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    id_token: Option<String>,
    instance_url: String,
    id: String,
    token_type: &'static str,
    issued_at: String,
}

/// What a successful grant hands out; turned into a response by [`issue`].
pub(crate) struct Grant {
    pub(crate) user: usize,
    pub(crate) app: usize,
    pub(crate) scopes: Vec<String>,
    pub(crate) family: Option<u64>,
    pub(crate) refresh_token: Option<String>,
    pub(crate) nonce: Option<String>,
}

/// The token-response fields, shared with the user-agent flow's redirect fragment.
pub(crate) fn issue(
    pg: &Shared,
    host: &Host,
    rt: &mut Runtime,
    grant: Grant,
    grant_name: &str,
) -> Vec<(String, String)> {
    let (access_token, issued_ms) = pg.mint_access(rt, grant.user, grant.app, &grant.scopes, grant.family);
    let user = &rt.users[grant.user];
    let app = &pg.apps[grant.app];
    let id = pg.identity_url(&host.base_url, &user.id);
    let issued_at = issued_ms.to_string();
    let signature = sign_identity(&app.seed.client_secret, &id, &issued_at);
    // ID tokens come with the interactive grants (and their refreshes) when `openid` is granted.
    let interactive = matches!(grant_name, "authorization_code" | "refresh_token" | "device" | "user_agent");
    let id_token = (interactive && grant.scopes.iter().any(|s| s == "openid")).then(|| {
        let now_s = issued_ms / 1000;
        let mut claims = serde_json::json!({
            "iss": host.base_url,
            "sub": user.id,
            "aud": app.seed.client_id,
            "exp": now_s + ID_TOKEN_TTL_S,
            "iat": now_s,
            "auth_time": now_s,
            "at_hash": at_hash(&access_token),
            "preferred_username": user.username,
            "email": user.email,
            "name": user.display_name(),
        });
        if let Some(n) = &grant.nonce {
            claims["nonce"] = n.clone().into();
        }
        jwt::sign_rs256(&pg.keys.signing_key, &pg.keys.signing_kid(), &claims)
    });
    bump(&mut rt.stats.tokens_issued, grant_name);
    bump(&mut rt.stats.tokens_issued_by_client, &app.seed.client_id);
    let username = rt.users[grant.user].username.clone();
    bump(&mut rt.stats.tokens_issued_by_user, &username);
    let mut fields = vec![("access_token".to_owned(), access_token)];
    if let Some(r) = grant.refresh_token {
        fields.push(("refresh_token".to_owned(), r));
    }
    fields.push(("signature".to_owned(), signature));
    fields.push(("scope".to_owned(), grant.scopes.join(" ")));
    if let Some(t) = id_token {
        fields.push(("id_token".to_owned(), t));
    }
    fields.push(("instance_url".to_owned(), pg.instance_url.clone()));
    fields.push(("id".to_owned(), id));
    fields.push(("token_type".to_owned(), "Bearer".to_owned()));
    fields.push(("issued_at".to_owned(), issued_at));
    fields
}

fn token_response(fields: Vec<(String, String)>) -> Response {
    let take = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let body = TokenResponse {
        access_token: take("access_token").unwrap_or_default(),
        refresh_token: take("refresh_token"),
        signature: take("signature").unwrap_or_default(),
        scope: take("scope").unwrap_or_default(),
        id_token: take("id_token"),
        instance_url: take("instance_url").unwrap_or_default(),
        id: take("id").unwrap_or_default(),
        token_type: "Bearer",
        issued_at: take("issued_at").unwrap_or_default(),
    };
    json_response(StatusCode::OK, &body)
}

/// base64(HMAC-SHA256(key = client secret, message = id ‖ issued_at)), standard alphabet.
pub(crate) fn sign_identity(client_secret: &str, id: &str, issued_at: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(client_secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(id.as_bytes());
    mac.update(issued_at.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

/// OIDC `at_hash`: left half of SHA-256 of the access token, base64url.
fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    jwt::b64url(&digest[..16])
}

/// The token endpoint.
pub(crate) async fn token_endpoint(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = Params::read(&headers, uri.query(), body).await;
    let grant_name = match &params {
        Ok(p) => match (p.get("grant_type"), p.get("response_type")) {
            (Some(g), _) => g.to_owned(),
            (None, Some("device_code")) => "device_code".to_owned(),
            _ => "(none)".to_owned(),
        },
        Err(_) => "(unreadable)".to_owned(),
    };
    bump(&mut pg.rt().stats.token_requests, &grant_name);
    let result = match params {
        Err(e) => Err(e),
        Ok(params) => {
            let creds = ClientCredentials::from_request(&headers, &params);
            match grant_name.as_str() {
                "client_credentials" => client_credentials(&pg, &host, &creds),
                JWT_BEARER => jwt_bearer(&pg, &host, &params),
                "authorization_code" => authorization_code(&pg, &host, &creds, &params),
                "refresh_token" => refresh_token(&pg, &host, &creds, &params).await,
                "password" => password(&pg, &host, &creds, &params),
                "device_code" => device_start(&pg, &creds, &params),
                "device" => device_poll(&pg, &host, &creds, &params),
                TOKEN_EXCHANGE => token_exchange(&pg, &host, &creds, &params),
                _ => Err(OAuthError::unsupported_grant()),
            }
        }
    };
    match result {
        Ok(response) => response,
        Err(e) => {
            bump(&mut pg.rt().stats.token_errors, e.error);
            e.into_response()
        }
    }
}

fn require_flow(pg: &Shared, app: usize, flow: Flow) -> Result<(), OAuthError> {
    // How Salesforce refuses a flow the app has not enabled is UNCONFIRMED (reports vary);
    // it refuses unknown grants with this body, so the playground uses it for both.
    if pg.apps[app].allows(flow) { Ok(()) } else { Err(OAuthError::unsupported_grant()) }
}

/// Inactive and frozen users cannot obtain tokens. The exact Salesforce body is UNCONFIRMED;
/// `inactive_user` appears in Salesforce's OAuth error table.
fn require_login_allowed(rt: &Runtime, user: usize) -> Result<(), OAuthError> {
    let u = &rt.users[user];
    if !u.active {
        return Err(OAuthError::new("inactive_user", "user is inactive"));
    }
    if u.frozen {
        return Err(OAuthError::new("inactive_user", "user is frozen"));
    }
    Ok(())
}

fn client_credentials(pg: &Shared, host: &Host, creds: &ClientCredentials) -> Result<Response, OAuthError> {
    let app = authenticate_client(pg, creds, SecretPolicy::Required)?;
    require_flow(pg, app, Flow::ClientCredentials)?;
    if host.kind != HostKind::Instance {
        return Err(OAuthError::new("invalid_grant", "request not supported on this domain"));
    }
    let mut rt = pg.rt();
    let run_as = pg.apps[app]
        .seed
        .run_as
        .as_deref()
        .and_then(|u| rt.user_by_name(u))
        .ok_or_else(|| OAuthError::new("invalid_grant", "no client credentials user enabled"))?;
    require_login_allowed(&rt, run_as)?;
    let scopes = non_interactive_scopes(&pg.apps[app].seed.scopes);
    let grant = Grant { user: run_as, app, scopes, family: None, refresh_token: None, nonce: None };
    Ok(token_response(issue(pg, host, &mut rt, grant, "client_credentials")))
}

fn jwt_bearer(pg: &Shared, host: &Host, params: &Params) -> Result<Response, OAuthError> {
    let invalid = || OAuthError::new("invalid_grant", "invalid assertion");
    let assertion = params.get("assertion").ok_or_else(invalid)?;
    let jws = Compact::parse(assertion).ok_or_else(invalid)?;
    let iss = jws.claims.get("iss").and_then(|v| v.as_str()).ok_or_else(invalid)?;
    let app = pg.app_by_client_id(iss).ok_or_else(OAuthError::invalid_client_id)?;
    require_flow(pg, app, Flow::JwtBearer)?;
    let key = pg.apps[app].public_key.as_ref().ok_or_else(invalid)?;
    if !jws.verify_rs256(key) {
        return Err(invalid());
    }
    let accepted = |aud: &str| {
        let aud = aud.trim_end_matches('/');
        aud == pg.login_url || aud == pg.instance_url || SALESFORCE_AUDIENCES.contains(&aud)
    };
    let aud_ok = match jws.claims.get("aud") {
        Some(serde_json::Value::String(a)) => accepted(a),
        Some(serde_json::Value::Array(list)) => list.iter().filter_map(|v| v.as_str()).any(accepted),
        _ => false,
    };
    if !aud_ok {
        return Err(OAuthError::new("invalid_grant", "Audience validation failed"));
    }
    // `exp` must not have passed. No upper bound: the sf CLI sends milliseconds and Salesforce
    // accepts it (wire reference §1.2, INFERRED).
    let exp = jwt::numeric_date(jws.claims.get("exp")).ok_or_else(invalid)?;
    if exp.saturating_mul(1000) <= pg.now_ms() {
        return Err(OAuthError::new("invalid_grant", "expired assertion"));
    }
    let sub = jws.claims.get("sub").and_then(|v| v.as_str()).unwrap_or("");
    let mut rt = pg.rt();
    // An unknown username gets the same answer as an unapproved one, as users report.
    let not_approved = || OAuthError::new("invalid_grant", "user hasn't approved this consumer");
    let user = rt.user_by_name(sub).ok_or_else(not_approved)?;
    require_login_allowed(&rt, user)?;
    let a = &pg.apps[app];
    let pre_approved = a.pre_approves(&rt.users[user]);
    match a.seed.permitted_users {
        PermittedUsers::AdminApproved if !pre_approved => {
            return Err(OAuthError::new("invalid_app_access", "user is not admin approved to access this app"));
        }
        PermittedUsers::All
            if !pre_approved && !rt.consents.contains(&(user, app)) && rt.live_approvals(user, app) == 0 =>
        {
            return Err(not_approved());
        }
        _ => {}
    }
    let scopes = non_interactive_scopes(&a.seed.scopes);
    let grant = Grant { user, app, scopes, family: None, refresh_token: None, nonce: None };
    Ok(token_response(issue(pg, host, &mut rt, grant, "jwt_bearer")))
}

fn authorization_code(
    pg: &Shared,
    host: &Host,
    creds: &ClientCredentials,
    params: &Params,
) -> Result<Response, OAuthError> {
    let id = creds.client_id.as_deref().ok_or_else(OAuthError::invalid_client_id)?;
    let app_idx = pg.app_by_client_id(id).ok_or_else(OAuthError::invalid_client_id)?;
    let policy = if pg.apps[app_idx].seed.require_secret { SecretPolicy::Required } else { SecretPolicy::Optional };
    let app = authenticate_client(pg, creds, policy)?;
    require_flow(pg, app, Flow::AuthorizationCode)?;
    let code = params.get("code").ok_or_else(|| OAuthError::new("invalid_grant", "invalid authorization code"))?;
    let now = pg.now_ms();
    let mut rt = pg.rt();
    let entry = rt
        .codes
        .get_mut(code)
        .filter(|c| c.app == app)
        .ok_or_else(|| OAuthError::new("invalid_grant", "invalid authorization code"))?;
    if entry.used || now >= entry.expires_ms {
        return Err(OAuthError::new("invalid_grant", "expired authorization code"));
    }
    if params.get("redirect_uri") != Some(entry.redirect_uri.as_str()) {
        return Err(OAuthError::new("redirect_uri_mismatch", "redirect_uri must match configuration"));
    }
    if let Some(challenge) = &entry.code_challenge {
        // Salesforce: challenge given but no verifier → invalid_grant; mismatch → invalid_request.
        let verifier =
            params.get("code_verifier").ok_or_else(|| OAuthError::new("invalid_grant", "invalid code verifier"))?;
        let computed = jwt::b64url(&Sha256::digest(verifier.as_bytes()));
        if !secrets_equal(&computed, challenge) {
            return Err(OAuthError::new("invalid_request", "invalid code verifier"));
        }
    }
    entry.used = true;
    let code = entry.clone();
    require_login_allowed(&rt, code.user)?;
    let (family, refresh_token) = if pg.apps[app].grants_refresh(&code.scopes) {
        let (f, r) = rt.new_family(now, code.user, app, &code.scopes);
        (Some(f), Some(r))
    } else {
        (None, None)
    };
    let grant = Grant { user: code.user, app, scopes: code.scopes, family, refresh_token, nonce: code.nonce };
    Ok(token_response(issue(pg, host, &mut rt, grant, "authorization_code")))
}

/// Removes a refresh token from the in-flight set when its grant ends, however it ends.
struct InFlight<'a> {
    pg: &'a Shared,
    token: String,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.pg.rt().refreshing.remove(&self.token);
    }
}

async fn refresh_token(
    pg: &Shared,
    host: &Host,
    creds: &ClientCredentials,
    params: &Params,
) -> Result<Response, OAuthError> {
    let id = creds.client_id.as_deref().ok_or_else(OAuthError::invalid_client_id)?;
    let app_idx = pg.app_by_client_id(id).ok_or_else(OAuthError::invalid_client_id)?;
    let policy = if pg.apps[app_idx].seed.require_secret { SecretPolicy::Required } else { SecretPolicy::Optional };
    let app = authenticate_client(pg, creds, policy)?;
    require_flow(pg, app, Flow::RefreshToken)?;
    let presented = params.get("refresh_token").ok_or_else(OAuthError::expired_token)?.to_owned();
    let _in_flight = {
        let mut rt = pg.rt();
        if rt.refreshing.contains(&presented) && rt.settings.reject_concurrent_refresh {
            return Err(OAuthError::new("invalid_grant", "Token request is already being processed"));
        }
        rt.refreshing.insert(presented.clone());
        InFlight { pg, token: presented.clone() }
    };
    let mut hold = pg.refresh_hold.subscribe();
    // Ends when the control API releases held refreshes (or at once when none are held).
    let _ = hold.wait_for(|held| !*held).await;

    let mut rt = pg.rt();
    let record = rt.refresh_tokens.get(&presented).cloned().ok_or_else(OAuthError::expired_token)?;
    let family = rt.families.get(&record.family).cloned().ok_or_else(OAuthError::expired_token)?;
    if family.app != app || family.revoked {
        return Err(OAuthError::expired_token());
    }
    if record.state == RefreshState::Rotated {
        // Reuse of a rotated refresh token: Salesforce revokes the whole token family.
        rt.revoke_family(record.family);
        return Err(OAuthError::expired_token());
    }
    require_login_allowed(&rt, family.user)?;
    let new_refresh = pg.apps[app].seed.refresh_token_rotation.then(|| rt.rotate(&presented, record.family));
    let grant = Grant {
        user: family.user,
        app,
        scopes: family.scopes,
        family: Some(record.family),
        refresh_token: new_refresh,
        nonce: None,
    };
    Ok(token_response(issue(pg, host, &mut rt, grant, "refresh_token")))
}

fn password(pg: &Shared, host: &Host, creds: &ClientCredentials, params: &Params) -> Result<Response, OAuthError> {
    let app = authenticate_client(pg, creds, SecretPolicy::Required)?;
    require_flow(pg, app, Flow::Password)?;
    let failure = || OAuthError::new("invalid_grant", "authentication failure");
    let username = params.get("username").ok_or_else(failure)?;
    let given = params.get("password").ok_or_else(failure)?;
    let mut rt = pg.rt();
    let user = rt.user_by_name(username).ok_or_else(failure)?;
    let u = &rt.users[user];
    // The password grant takes the password with the security token appended.
    if !secrets_equal(given, &format!("{}{}", u.password, u.security_token)) {
        return Err(failure());
    }
    require_login_allowed(&rt, user)?;
    let scopes = non_interactive_scopes(&pg.apps[app].seed.scopes);
    let grant = Grant { user, app, scopes, family: None, refresh_token: None, nonce: None };
    Ok(token_response(issue(pg, host, &mut rt, grant, "password")))
}

fn device_start(pg: &Shared, creds: &ClientCredentials, params: &Params) -> Result<Response, OAuthError> {
    let app = authenticate_client(pg, creds, SecretPolicy::Optional)?;
    require_flow(pg, app, Flow::Device)?;
    let scopes = requested_scopes(&pg.apps[app].seed.scopes, params.get("scope"))?;
    let device_code = random_chars(48);
    let user_code = random_chars(8).to_ascii_uppercase();
    let now = pg.now_ms();
    pg.rt().device_grants.insert(
        device_code.clone(),
        DeviceGrant {
            app,
            scopes,
            user_code: user_code.clone(),
            expires_ms: now + DEVICE_CODE_TTL_MS,
            interval_s: DEVICE_POLL_INTERVAL_SECONDS,
            last_poll_ms: None,
            status: DeviceStatus::Pending,
            redeemed: false,
        },
    );
    // Salesforce sends no `expires_in` here (sf CLI fixture); the code still expires.
    let body = serde_json::json!({
        "device_code": device_code,
        "interval": DEVICE_POLL_INTERVAL_SECONDS,
        "user_code": user_code,
        "verification_uri": format!("{}/setup/connect", pg.login_url),
    });
    Ok(json_response(StatusCode::OK, &body))
}

fn device_poll(pg: &Shared, host: &Host, creds: &ClientCredentials, params: &Params) -> Result<Response, OAuthError> {
    let app = authenticate_client(pg, creds, SecretPolicy::Optional)?;
    require_flow(pg, app, Flow::Device)?;
    let code = params.get("code").ok_or_else(|| OAuthError::new("invalid_grant", "invalid device code"))?;
    let now = pg.now_ms();
    let mut rt = pg.rt();
    let grant = rt
        .device_grants
        .get_mut(code)
        .filter(|g| g.app == app && !g.redeemed)
        .ok_or_else(|| OAuthError::new("invalid_grant", "invalid device code"))?;
    // Expiry and slow_down follow RFC 8628; Salesforce's wording is UNCONFIRMED.
    if now >= grant.expires_ms {
        return Err(OAuthError::new("expired_token", "device code expired"));
    }
    let too_fast = grant.last_poll_ms.is_some_and(|last| now - last < grant.interval_s * 1000);
    grant.last_poll_ms = Some(now);
    match grant.status.clone() {
        DeviceStatus::Denied => Err(OAuthError::new("access_denied", "end-user denied authorization")),
        DeviceStatus::Pending if too_fast => {
            grant.interval_s += 5;
            Err(OAuthError::bare("slow_down"))
        }
        DeviceStatus::Pending => Err(OAuthError::bare("authorization_pending")),
        DeviceStatus::Approved { user } => {
            grant.redeemed = true;
            let scopes = grant.scopes.clone();
            require_login_allowed(&rt, user)?;
            let (family, refresh_token) = if pg.apps[app].grants_refresh(&scopes) {
                let (f, r) = rt.new_family(now, user, app, &scopes);
                (Some(f), Some(r))
            } else {
                (None, None)
            };
            let g = Grant { user, app, scopes, family, refresh_token, nonce: None };
            Ok(token_response(issue(pg, host, &mut rt, g, "device")))
        }
    }
}

fn token_exchange(
    pg: &Shared,
    host: &Host,
    creds: &ClientCredentials,
    params: &Params,
) -> Result<Response, OAuthError> {
    let app = authenticate_client(pg, creds, SecretPolicy::Required)?;
    require_flow(pg, app, Flow::TokenExchange)?;
    if params.get("subject_token_type") != Some(TOKEN_TYPE_ACCESS) {
        return Err(OAuthError::new("invalid_request", "unsupported subject_token_type"));
    }
    if params.get("actor_token_type").is_some_and(|t| t != TOKEN_TYPE_JWT) {
        return Err(OAuthError::new("invalid_request", "unsupported actor_token_type"));
    }
    let now = pg.now_ms();
    let rt = pg.rt();
    let subject = params
        .get("subject_token")
        .and_then(|t| rt.live_access(t, now))
        .ok_or_else(|| OAuthError::new("invalid_grant", "invalid subject token"))?;
    // The actor token describes the asset (device). Its claim names are UNCONFIRMED; the
    // playground requires a well-formed JWT and copies its claims under `act`. A signature is
    // not required (proof of possession is optional on the app).
    let actor = match params.get("actor_token") {
        Some(t) => {
            Some(Compact::parse(t).ok_or_else(|| OAuthError::new("invalid_request", "invalid actor token"))?.claims)
        }
        None => None,
    };
    let a = &pg.apps[app];
    let user = &rt.users[subject.user];
    let validity = a.seed.asset_token_validity_seconds.unwrap_or(DEFAULT_ASSET_TOKEN_VALIDITY_SECONDS);
    let audiences = if a.seed.asset_token_audiences.is_empty() {
        vec![pg.instance_url.clone()]
    } else {
        a.seed.asset_token_audiences.clone()
    };
    let now_s = now / 1000;
    let mut claims = serde_json::json!({
        "iss": host.base_url,
        "sub": user.id,
        "aud": audiences,
        "iat": now_s,
        "nbf": now_s,
        "exp": now_s + i64::try_from(validity).unwrap_or(i64::MAX / 2),
        "jti": random_chars(24),
        "client_id": a.seed.client_id,
        "organization_id": pg.org_id,
    });
    if let Some(act) = actor {
        claims["act"] = act;
    }
    let token = jwt::sign_rs256(&pg.keys.signing_key, &pg.keys.signing_kid(), &claims);
    drop(rt);
    let mut rt = pg.rt();
    bump(&mut rt.stats.tokens_issued, "token_exchange");
    bump(&mut rt.stats.tokens_issued_by_client, &a.seed.client_id);
    let body = serde_json::json!({
        "access_token": token,
        "issued_token_type": TOKEN_TYPE_JWT,
        "token_type": "Bearer",
        "expires_in": validity,
    });
    Ok(json_response(StatusCode::OK, &body))
}
