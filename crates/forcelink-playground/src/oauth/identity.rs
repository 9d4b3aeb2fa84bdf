//! Revoke, introspect, userinfo, the identity URL, OpenID discovery and the key set
//! (wire reference §4).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use super::{ClientCredentials, OAuthError, Params, SecretPolicy, authenticate_client, json_response};
use crate::host::{Host, bearer_token};
use crate::state::{RefreshState, Shared, User};

/// `POST /services/oauth2/revoke` (form `token=`) and `GET ?token=`. Revoking a refresh
/// token revokes the access tokens issued from it.
pub(crate) async fn revoke(State(pg): State<Shared>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let params = match Params::read(&headers, uri.query(), body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    // Salesforce's revoke error body is UNCONFIRMED (jsforce parses it as a form); the
    // documented codes are `unsupported_token_type` and `invalid_token`, sent here as JSON.
    let Some(token) = params.get("token") else {
        return OAuthError::new("unsupported_token_type", "missing token").into_response();
    };
    let mut rt = pg.rt();
    if rt.access_tokens.remove(token).is_some() {
        return StatusCode::OK.into_response();
    }
    if let Some(r) = rt.refresh_tokens.get(token).cloned() {
        let live = rt.families.get(&r.family).is_some_and(|f| !f.revoked);
        if live && r.state == RefreshState::Current {
            rt.revoke_family(r.family);
            return StatusCode::OK.into_response();
        }
    }
    OAuthError::new("invalid_token", "invalid token").into_response()
}

/// `POST /services/oauth2/introspect` with client authentication.
pub(crate) async fn introspect(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let params = match Params::read(&headers, uri.query(), body).await {
        Ok(p) => p,
        Err(e) => return e.into_response(),
    };
    let creds = ClientCredentials::from_request(&headers, &params);
    let caller = match authenticate_client(&pg, &creds, SecretPolicy::Required) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let inactive = || json_response(StatusCode::OK, &json!({"active": false}));
    let Some(token) = params.get("token") else { return inactive() };
    let now = pg.now_ms();
    let rt = pg.rt();
    let may_see = |app: usize| app == caller || pg.apps[caller].seed.introspect_all;
    if params.get("token_type_hint") != Some("refresh_token")
        && let Some(t) = rt.live_access(token, now)
        && may_see(t.app)
    {
        let user = &rt.users[t.user];
        return json_response(
            StatusCode::OK,
            &json!({
                "active": true,
                "scope": t.scopes.join(" "),
                "client_id": pg.apps[t.app].seed.client_id,
                "username": user.username,
                "sub": pg.identity_url(&host.base_url, &user.id),
                "token_type": "access_token",
                "exp": t.expires_ms / 1000,
                "iat": t.issued_ms / 1000,
                "nbf": t.issued_ms / 1000,
            }),
        );
    }
    if let Some(r) = rt.refresh_tokens.get(token)
        && r.state == RefreshState::Current
        && let Some(f) = rt.families.get(&r.family)
        && !f.revoked
        && may_see(f.app)
        && rt.users[f.user].can_log_in()
    {
        // Refresh tokens have no fixed expiry here (the app policy "valid until revoked").
        let user = &rt.users[f.user];
        return json_response(
            StatusCode::OK,
            &json!({
                "active": true,
                "scope": f.scopes.join(" "),
                "client_id": pg.apps[f.app].seed.client_id,
                "username": user.username,
                "sub": pg.identity_url(&host.base_url, &user.id),
                "token_type": "refresh_token",
                "iat": f.created_ms / 1000,
                "nbf": f.created_ms / 1000,
            }),
        );
    }
    inactive()
}

/// Salesforce answers identity requests with a bad token with 403 and this plain-text body.
fn bad_oauth_token() -> Response {
    (StatusCode::FORBIDDEN, [(header::CONTENT_TYPE, "text/plain;charset=UTF-8")], "Bad_OAuth_Token").into_response()
}

fn urls(pg: &Shared, user: &User, version: &str) -> Value {
    let base = &pg.instance_url;
    let org = &pg.org_id;
    json!({
        "enterprise": format!("{base}/services/Soap/c/{version}/{org}"),
        "metadata": format!("{base}/services/Soap/m/{version}/{org}"),
        "partner": format!("{base}/services/Soap/u/{version}/{org}"),
        "rest": format!("{base}/services/data/v{version}/"),
        "sobjects": format!("{base}/services/data/v{version}/sobjects/"),
        "search": format!("{base}/services/data/v{version}/search/"),
        "query": format!("{base}/services/data/v{version}/query/"),
        "recent": format!("{base}/services/data/v{version}/recent/"),
        "tooling_soap": format!("{base}/services/Soap/T/{version}/{org}"),
        "tooling_rest": format!("{base}/services/data/v{version}/tooling/"),
        "profile": format!("{base}/{}", user.id),
        "feeds": format!("{base}/services/data/v{version}/chatter/feeds"),
        "groups": format!("{base}/services/data/v{version}/chatter/groups"),
        "users": format!("{base}/services/data/v{version}/chatter/users"),
        "feed_items": format!("{base}/services/data/v{version}/chatter/feed-items"),
        "feed_elements": format!("{base}/services/data/v{version}/chatter/feed-elements"),
        "custom_domain": base,
    })
}

/// `GET|POST /services/oauth2/userinfo` (OpenID Connect).
pub(crate) async fn userinfo(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    headers: HeaderMap,
) -> Response {
    let now = pg.now_ms();
    let rt = pg.rt();
    let Some(t) = bearer_token(&headers).and_then(|t| rt.live_access(t, now)) else { return bad_oauth_token() };
    let u = &rt.users[t.user];
    let body = json!({
        "sub": pg.identity_url(&host.base_url, &u.id),
        "user_id": u.id,
        "organization_id": pg.org_id,
        "preferred_username": u.username,
        "nickname": u.username.split('@').next().unwrap_or(""),
        "name": u.display_name(),
        "email": u.email,
        "email_verified": true,
        "given_name": u.first_name,
        "family_name": u.last_name,
        "zoneinfo": u.time_zone,
        "photos": {
            "picture": format!("{}/profilephoto/005/F", pg.instance_url),
            "thumbnail": format!("{}/profilephoto/005/T", pg.instance_url),
        },
        "profile": format!("{}/{}", pg.instance_url, u.id),
        "picture": format!("{}/profilephoto/005/F", pg.instance_url),
        "address": {},
        "is_salesforce_integration_user": false,
        "urls": urls(&pg, u, "{version}"),
        "active": u.active,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": u.locale,
        "utcOffset": 0,
        "updated_at": "2026-01-01T00:00:00Z",
        "is_app_installed": true,
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /id/{orgId}/{userId}` with a bearer token or `?oauth_token=`; `version` fills the
/// `{version}` placeholder in `urls` (`latest` = the newest API version).
pub(crate) async fn identity(
    State(pg): State<Shared>,
    Extension(host): Extension<Host>,
    Path((org, user_id)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let query = Params::from_query(uri.query());
    let now = pg.now_ms();
    let rt = pg.rt();
    let token = bearer_token(&headers).or_else(|| query.get("oauth_token"));
    let Some(t) = token.and_then(|t| rt.live_access(t, now)) else { return bad_oauth_token() };
    // 15- and 18-character forms name the same record; compare bytes (ids from the URL may
    // hold anything, even multi-byte characters).
    let matches_id =
        |a: &str, b: &str| matches!((a.as_bytes().get(..15), b.as_bytes().get(..15)), (Some(x), Some(y)) if x == y);
    let Some(target) = rt.users.iter().find(|u| matches_id(&u.id, &user_id)) else {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    };
    if !matches_id(&org, &pg.org_id) {
        return (StatusCode::NOT_FOUND, "Not Found").into_response();
    }
    // Another user's identity needs the `api` or `full` scope.
    let own = target.id == rt.users[t.user].id;
    if !own && !t.scopes.iter().any(|s| s == "api" || s == "full") {
        return bad_oauth_token();
    }
    let version = match query.get("version") {
        Some("latest") => crate::call::LATEST_API_VERSION.to_owned(),
        Some(v) => v.to_owned(),
        None => "{version}".to_owned(),
    };
    let u = target;
    let body = json!({
        "id": pg.identity_url(&host.base_url, &u.id),
        "asserted_user": own,
        "user_id": u.id,
        "organization_id": pg.org_id,
        "username": u.username,
        "nick_name": u.username.split('@').next().unwrap_or(""),
        "display_name": u.display_name(),
        "email": u.email,
        "email_verified": true,
        "first_name": u.first_name,
        "last_name": u.last_name,
        "timezone": u.time_zone,
        "photos": {
            "picture": format!("{}/profilephoto/005/F", pg.instance_url),
            "thumbnail": format!("{}/profilephoto/005/T", pg.instance_url),
        },
        "addr_street": null,
        "addr_city": null,
        "addr_state": null,
        "addr_country": "US",
        "addr_zip": null,
        "mobile_phone": null,
        "mobile_phone_verified": false,
        "is_lightning_login_user": false,
        "status": {"created_date": null, "body": null},
        "urls": urls(&pg, u, &version),
        "active": u.active,
        "user_type": "STANDARD",
        "language": "en_US",
        "locale": u.locale,
        "utcOffset": 0,
        "last_modified_date": "2026-01-01T00:00:00.000Z",
        "is_app_installed": true,
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /.well-known/openid-configuration`, with this host as issuer.
pub(crate) async fn openid_configuration(Extension(host): Extension<Host>) -> Response {
    let b = &host.base_url;
    let body = json!({
        "issuer": b,
        "authorization_endpoint": format!("{b}/services/oauth2/authorize"),
        "token_endpoint": format!("{b}/services/oauth2/token"),
        "revocation_endpoint": format!("{b}/services/oauth2/revoke"),
        "userinfo_endpoint": format!("{b}/services/oauth2/userinfo"),
        "jwks_uri": format!("{b}/id/keys"),
        "registration_endpoint": format!("{b}/services/oauth2/register"),
        "introspection_endpoint": format!("{b}/services/oauth2/introspect"),
        // The recorded login.salesforce.com document's list, in its order.
        "scopes_supported": ["cdp_ingest_api", "custom_permissions", "cdp_segment_api", "content", "cdp_api",
            "chatbot_api", "cdp_identityresolution_api", "interaction_api", "wave_api", "web",
            "cdp_calculated_insight_api", "einstein_gpt_api", "offline_access", "id", "api", "data_cloud_user_claims",
            "eclair_api", "email", "pardot_api", "lightning", "visualforce", "cdp_query_api", "sfap_api", "address",
            "openid", "profile", "scrt_api", "cdp_profile_api", "refresh_token", "phone", "user_registration_api",
            "pwdless_login_api", "chatter_api", "mcp_api", "full", "forgot_password"],
        "response_types_supported": ["code", "token", "token id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "display_values_supported": ["page", "popup", "touch"],
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic", "private_key_jwt"],
        "claims_supported": ["active", "address", "email", "email_verified", "family_name", "given_name",
            "is_app_installed", "language", "locale", "name", "nickname", "organization_id", "phone_number",
            "phone_number_verified", "photos", "picture", "preferred_username", "profile", "sub", "updated_at",
            "urls", "user_id", "user_type", "zoneinfo"],
        // Current discovery documents also name the single-logout endpoint (UNCONFIRMED: where
        // in the document; recorded My Domain documents carry both keys).
        "end_session_endpoint": format!("{b}/services/auth/idp/oidc/logout"),
        "frontchannel_logout_supported": true,
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /.well-known/auth-configuration` (My Domain login configuration).
pub(crate) async fn auth_configuration(State(pg): State<Shared>) -> Response {
    let body = json!({
        "OrgId": &pg.org_id[..15],
        "Url": pg.instance_url,
        "MobileSDK": {
            "UseiOSNativeBrowserForAuthentication": false,
            "UseAndroidNativeBrowserForAuthentication": false,
            "shareBrowserSessionIOS": false,
            "shareBrowserSessionAndroid": false,
        },
        "LoginPage": null,
        "SamlProviders": [],
        "AuthProviders": [],
        "CertificateLogin": null,
        "LoginPageType": "standard",
        "LoginPageTypeConfigs": {},
    });
    json_response(StatusCode::OK, &body)
}

/// `GET /id/keys`: the public keys that sign ID tokens and asset tokens.
pub(crate) async fn keys(State(pg): State<Shared>) -> Response {
    json_response(StatusCode::OK, &json!({"keys": [pg.keys.signing_jwk()]}))
}
