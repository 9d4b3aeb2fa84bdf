//! Entry points for the fuzz targets in `fuzz/` and for other crates' property tests: thin
//! wrappers over the playground's private parsers, which read input the playground does not
//! control (SOQL and SOSL, seed TOML, OAuth form and multipart bodies) and a whole org driven
//! in-process through its router (Bulk CSV ingest, multipart uploads). Built only with the
//! `fuzzing` feature; not part of the supported API.

use std::path::Path;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, header};
use tower::ServiceExt;

use crate::data::soql::{self, Cond, Lit};
use crate::host::{Host, HostKind};
use crate::oauth::{ClientCredentials, Params};
use crate::state::Shared;
use crate::{KeyMaterial, PlaygroundConfig, PlaygroundError, Seed, clock, router};

/// A literal as the playground's SOQL parser read it.
#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// A number as written, sign included.
    Num(String),
    /// A quoted string, decoded (`\%` and `\_` stay escaped: they matter to LIKE only).
    Str(String),
    /// `YYYY-MM-DD`.
    Date(String),
    /// A dateTime literal as written.
    DateTime(String),
    /// `TODAY`, `LAST_N_DAYS:n`, …
    DateFn(String, Option<i64>),
}

impl From<&Lit> for Literal {
    fn from(l: &Lit) -> Self {
        match l {
            Lit::Null => Literal::Null,
            Lit::Bool(b) => Literal::Bool(*b),
            Lit::Num(n) => Literal::Num(n.clone()),
            Lit::Str(s) => Literal::Str(s.clone()),
            Lit::Date(d) => Literal::Date(d.clone()),
            Lit::DateTime(d) => Literal::DateTime(d.clone()),
            Lit::DateFn(f, n) => Literal::DateFn(f.clone(), *n),
        }
    }
}

fn collect_literals(c: &Cond, out: &mut Vec<Literal>) {
    match c {
        Cond::And(parts) | Cond::Or(parts) => parts.iter().for_each(|p| collect_literals(p, out)),
        Cond::Not(inner) => collect_literals(inner, out),
        Cond::Cmp(_, _, l) | Cond::AggCmp(_, _, _, l) => out.push(l.into()),
        Cond::In(_, _, ls) => out.extend(ls.iter().map(Literal::from)),
        Cond::Includes(_, _, ss) => out.extend(ss.iter().map(|s| Literal::Str(s.clone()))),
        Cond::InQuery(..) => {}
    }
}

/// Parses a SOQL query; `Err` holds Salesforce's message.
pub fn parse_soql(text: &str) -> Result<(), String> {
    soql::parse(text).map(|_| ()).map_err(|e| e.message)
}

/// The literals of a SOQL query's WHERE clause, in the order written.
pub fn soql_where_literals(text: &str) -> Result<Vec<Literal>, String> {
    let q = soql::parse(text).map_err(|e| e.message)?;
    let mut out = Vec::new();
    if let Some(c) = &q.filter {
        collect_literals(c, &mut out);
    }
    Ok(out)
}

/// Parses a SOSL search; answers the decoded search term.
pub fn parse_sosl(text: &str) -> Result<String, String> {
    soql::parse_search(text).map(|s| s.term).map_err(|e| e.message)
}

/// Parses seed TOML and builds what a playground builds from it at start (schema, the org's
/// records in an in-memory store, event schemas). `[generate]` is ignored: its counts are the
/// operator's choice of work, not a parsing matter.
pub fn load_seed(text: &str) -> Result<(), String> {
    let mut seed = Seed::from_toml(text, Path::new("/nonexistent")).map_err(|e| e.to_string())?;
    seed.generate.clear();
    let config = PlaygroundConfig { seed: seed.clone(), ..PlaygroundConfig::new("/nonexistent") };
    let data = crate::open_data(&seed, &config).map_err(|e| e.to_string())?;
    crate::events::schemas::Catalog::build(&data.store.schema, &seed.platform_events_or_default())?;
    Ok(())
}

/// OAuth parameter names the grants read.
pub const OAUTH_PARAMS: [&str; 8] =
    ["grant_type", "client_id", "client_secret", "code", "redirect_uri", "username", "password", "assertion"];

/// Reads an OAuth request's parameters (query string, then a form-urlencoded or multipart body)
/// and client credentials (Basic or the body) as the token endpoint does. Answers the values
/// of [`OAUTH_PARAMS`] and the client id and secret, or the OAuth error code.
#[allow(clippy::type_complexity)]
pub fn oauth_params(
    content_type: Option<&str>,
    authorization: Option<&str>,
    query: Option<&str>,
    body: &[u8],
) -> Result<(Vec<Option<String>>, Option<String>, Option<String>), String> {
    let mut headers = HeaderMap::new();
    if let Some(ct) = content_type.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(header::CONTENT_TYPE, ct);
    }
    if let Some(a) = authorization.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(header::AUTHORIZATION, a);
    }
    let body = bytes::Bytes::copy_from_slice(body);
    // The body is one chunk already in memory: reading it never waits.
    let params = futures_util::FutureExt::now_or_never(Params::read(&headers, query, body))
        .ok_or_else(|| "reading the parameters waited".to_owned())?
        .map_err(|e| e.error.to_owned())?;
    let values = OAUTH_PARAMS.iter().map(|k| params.get(k).map(str::to_owned)).collect();
    let creds = ClientCredentials::from_request(&headers, &params);
    Ok((values, creds.client_id, creds.client_secret))
}

/// A playground org driven in-process through its router, signed in as the seed's first
/// (administrator) user. No port is bound; requests are `tower` calls on a current-thread
/// runtime.
pub struct Org {
    runtime: tokio::runtime::Runtime,
    router: axum::Router,
    token: String,
}

impl std::fmt::Debug for Org {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Org")
    }
}

/// An answer of [`Org::request`].
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The body, as sent.
    pub body: Vec<u8>,
}

const FUZZ_INSTANCE: &str = "http://127.0.0.1:9";

impl Org {
    /// The built-in seed without a daily API limit; keys are kept in (and reused from) `key_dir`.
    pub fn new(key_dir: &Path) -> Result<Self, PlaygroundError> {
        let mut config = PlaygroundConfig::new(key_dir);
        // A fuzzer makes more calls in seconds than an org allows in a day: no daily limit, so
        // a run tests the parsers rather than REQUEST_LIMIT_EXCEEDED.
        config.seed.org.daily_api_requests = 1_000_000_000;
        let keys = KeyMaterial::load_or_create(key_dir)?;
        let data = crate::open_data(&config.seed, &config)?;
        let pg = Shared::new(
            config.seed.clone(),
            keys,
            clock::ShiftedClock::new(Arc::clone(&config.clock)),
            FUZZ_INSTANCE.to_owned(),
            FUZZ_INSTANCE.to_owned(),
            "fuzz-control-key".to_owned(),
            data,
        )?;
        {
            let db = pg.data.store.lock();
            pg.sync_users_from_db(&db);
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PlaygroundError::Data { message: e.to_string() })?;
        let router = router(pg, Host { kind: HostKind::Instance, base_url: FUZZ_INSTANCE.to_owned() });
        let mut org = Self { runtime, router, token: String::new() };
        let user = &config.seed.users[0];
        let app = &config.seed.connected_apps[0];
        let form = form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "password")
            .append_pair("client_id", &app.client_id)
            .append_pair("client_secret", &app.client_secret)
            .append_pair("username", &user.username)
            .append_pair("password", &format!("{}{}", user.password, user.security_token))
            .finish();
        let answer =
            org.request("POST", "/services/oauth2/token", Some("application/x-www-form-urlencoded"), form.as_bytes());
        let token: serde_json::Value = serde_json::from_slice(&answer.body).unwrap_or_default();
        org.token = token["access_token"].as_str().unwrap_or_default().to_owned();
        if org.token.is_empty() {
            return Err(PlaygroundError::Data { message: "the fuzzing org gave no token".to_owned() });
        }
        Ok(org)
    }

    /// Sends one request (`path_and_query` from the root, e.g. `/services/data/v66.0/query?q=…`)
    /// with the administrator's token.
    pub fn request(&self, method: &str, path_and_query: &str, content_type: Option<&str>, body: &[u8]) -> Answer {
        let mut builder = Request::builder()
            .method(Method::from_bytes(method.as_bytes()).unwrap_or(Method::GET))
            .uri(path_and_query)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token));
        if let Some(ct) = content_type {
            builder = builder.header(header::CONTENT_TYPE, ct);
        }
        let Ok(request) = builder.body(Body::from(body.to_vec())) else {
            return Answer { status: 0, body: b"not a valid HTTP request".to_vec() };
        };
        self.runtime.block_on(async {
            let Ok(response) = self.router.clone().oneshot(request).await;
            let status = response.status().as_u16();
            let body = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap_or_default();
            Answer { status, body: body.to_vec() }
        })
    }
}
