//! The org's identity state: users and connected apps from the seed, and everything OAuth
//! creates at run time (access tokens, refresh-token families = approvals, authorization codes,
//! device grants, browser sessions), plus the counters the control API reports.
//!
//! One `Mutex<Runtime>` guards all mutable state; handlers hold it briefly and never across an
//! `.await`.

mod logins;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};

use rand::Rng;
use rand::distributions::Alphanumeric;
use rsa::RsaPublicKey;
use serde::Serialize;

use crate::clock::ShiftedClock;
use crate::error::PlaygroundError;
use crate::faults::Fault;
use crate::ids;
use crate::keys::KeyMaterial;
use crate::seed::{AppSeed, CertificateSource, Flow, Seed};

/// Salesforce: "Each connected app allows five unique approvals per user. After a fifth
/// approval is made, the oldest approval is revoked."
pub(crate) const MAX_APPROVALS_PER_USER_AND_APP: usize = 5;
/// Lifetime of an authorization code. Salesforce's is UNCONFIRMED; 15 minutes is plausible.
pub(crate) const AUTHORIZATION_CODE_TTL_MS: i64 = 15 * 60 * 1000;
/// Lifetime of a device code. Salesforce's is UNCONFIRMED; 10 minutes (RFC 8628 examples).
pub(crate) const DEVICE_CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Minimum seconds between device-flow polls before `slow_down`.
pub(crate) const DEVICE_POLL_INTERVAL_SECONDS: i64 = 5;

#[derive(Debug, Clone)]
pub(crate) struct User {
    pub(crate) id: String,
    pub(crate) username: String,
    pub(crate) password: String,
    pub(crate) security_token: String,
    pub(crate) profile: String,
    pub(crate) first_name: String,
    pub(crate) last_name: String,
    pub(crate) email: String,
    pub(crate) time_zone: String,
    pub(crate) locale: String,
    pub(crate) active: bool,
    pub(crate) frozen: bool,
}

impl User {
    pub(crate) fn display_name(&self) -> String {
        format!("{} {}", self.first_name, self.last_name).trim().to_owned()
    }
    pub(crate) fn can_log_in(&self) -> bool {
        self.active && !self.frozen
    }
}

#[derive(Debug)]
pub(crate) struct App {
    pub(crate) seed: AppSeed,
    pub(crate) flows: HashSet<Flow>,
    pub(crate) public_key: Option<RsaPublicKey>,
}

impl App {
    pub(crate) fn allows(&self, flow: Flow) -> bool {
        self.flows.contains(&flow)
    }
    pub(crate) fn session_timeout_ms(&self, org_default_s: u64) -> i64 {
        let s = self.seed.session_timeout_seconds.unwrap_or(org_default_s);
        i64::try_from(s.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
    pub(crate) fn grants_refresh(&self, scopes: &[String]) -> bool {
        self.allows(Flow::RefreshToken) && scopes.iter().any(|s| s == "refresh_token" || s == "offline_access")
    }
    pub(crate) fn callback_allowed(&self, uri: &str) -> bool {
        self.seed.callback_urls.iter().any(|pattern| glob_match(pattern, uri))
    }
    pub(crate) fn pre_approves(&self, user: &User) -> bool {
        self.seed.pre_approved_profiles.iter().any(|p| p.eq_ignore_ascii_case(&user.profile))
    }
}

/// `*` matches any run of characters; everything else literally.
fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for middle in &parts[1..parts.len() - 1] {
        match rest.find(middle) {
            Some(i) => rest = &rest[i + middle.len()..],
            None => return false,
        }
    }
    true
}

#[derive(Debug, Clone)]
pub(crate) struct AccessToken {
    pub(crate) user: usize,
    pub(crate) app: usize,
    pub(crate) scopes: Vec<String>,
    pub(crate) issued_ms: i64,
    pub(crate) expires_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RefreshState {
    /// The family's current refresh token.
    Current,
    /// Replaced by rotation; presenting it again revokes the whole family.
    Rotated,
}

#[derive(Debug, Clone)]
pub(crate) struct RefreshToken {
    pub(crate) family: u64,
    pub(crate) state: RefreshState,
}

/// One approval: a refresh token and everything renewed from it.
#[derive(Debug, Clone)]
pub(crate) struct Family {
    pub(crate) user: usize,
    pub(crate) app: usize,
    pub(crate) scopes: Vec<String>,
    pub(crate) created_ms: i64,
    pub(crate) revoked: bool,
    pub(crate) tokens: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthorizationCode {
    pub(crate) user: usize,
    pub(crate) app: usize,
    pub(crate) scopes: Vec<String>,
    pub(crate) redirect_uri: String,
    pub(crate) code_challenge: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) expires_ms: i64,
    pub(crate) used: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceStatus {
    Pending,
    Approved { user: usize },
    Denied,
}

#[derive(Debug, Clone)]
pub(crate) struct DeviceGrant {
    pub(crate) app: usize,
    pub(crate) scopes: Vec<String>,
    pub(crate) user_code: String,
    pub(crate) expires_ms: i64,
    pub(crate) interval_s: i64,
    pub(crate) last_poll_ms: Option<i64>,
    pub(crate) status: DeviceStatus,
    pub(crate) redeemed: bool,
}

/// Authorize-endpoint parameters kept between the login and consent pages.
#[derive(Debug, Clone)]
pub(crate) struct PendingAuthorization {
    pub(crate) app: usize,
    pub(crate) response_type: String,
    pub(crate) redirect_uri: String,
    pub(crate) scopes: Vec<String>,
    pub(crate) state: Option<String>,
    pub(crate) code_challenge: Option<String>,
    pub(crate) nonce: Option<String>,
    pub(crate) force_consent: bool,
    pub(crate) user: Option<usize>,
    /// Set when this authorization approves a device grant (the device flow's page).
    pub(crate) device_code: Option<String>,
    pub(crate) created_ms: i64,
}

/// Switches the control API flips at run time.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub(crate) struct Settings {
    /// Reject a refresh while another refresh of the same token is in flight, as Salesforce
    /// does since Summer '24 ("Token request is already being processed").
    pub(crate) reject_concurrent_refresh: bool,
    /// Hold refresh-token grants until released, so tests can overlap two refreshes without
    /// relying on timing.
    pub(crate) hold_refreshes: bool,
    /// The `DailyApiRequests` limit; the seed's `org.daily_api_requests` at start.
    pub(crate) daily_api_requests: u64,
    /// Rows per second of playground time that Bulk API 2.0 jobs created from now on process
    /// at (0, the default: as fast as they can), so `InProgress` can be seen.
    #[serde(default)]
    pub(crate) bulk_rows_per_second: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            reject_concurrent_refresh: true,
            hold_refreshes: false,
            daily_api_requests: 15_000,
            bulk_rows_per_second: 0,
        }
    }
}

/// Counters for the control API's `stats`, so tests can count renewals.
#[derive(Debug, Default, Clone, Serialize)]
pub(crate) struct Stats {
    /// Every token-endpoint request by `grant_type` (`device_code` for a device-flow start).
    pub(crate) token_requests: BTreeMap<String, u64>,
    /// Successful grants by grant type, by client id and by username.
    pub(crate) tokens_issued: BTreeMap<String, u64>,
    pub(crate) tokens_issued_by_client: BTreeMap<String, u64>,
    pub(crate) tokens_issued_by_user: BTreeMap<String, u64>,
    /// Token-endpoint failures by OAuth `error`.
    pub(crate) token_errors: BTreeMap<String, u64>,
    /// API requests answered on the instance host.
    pub(crate) api_requests: u64,
}

pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    // Look up before inserting: the key is allocated once, not on every request.
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// Expired access tokens are forgotten at most this many per mint, oldest first, so memory
/// stays bounded by the live sessions without ever scanning the whole table.
const PRUNE_PER_MINT: usize = 4;

#[derive(Debug, Default)]
pub(crate) struct Runtime {
    pub(crate) users: Vec<User>,
    pub(crate) access_tokens: HashMap<String, AccessToken>,
    pub(crate) refresh_tokens: HashMap<String, RefreshToken>,
    pub(crate) families: HashMap<u64, Family>,
    pub(crate) next_family: u64,
    /// (user, app) pairs the user approved on a consent page.
    pub(crate) consents: HashSet<(usize, usize)>,
    pub(crate) codes: HashMap<String, AuthorizationCode>,
    pub(crate) device_grants: HashMap<String, DeviceGrant>,
    pub(crate) pending: HashMap<String, PendingAuthorization>,
    /// Browser session cookie → user.
    pub(crate) browser_sessions: HashMap<String, usize>,
    /// Refresh tokens whose grant is being processed right now.
    pub(crate) refreshing: HashSet<String>,
    pub(crate) settings: Settings,
    pub(crate) faults: Vec<Fault>,
    pub(crate) stats: Stats,
    /// Access tokens in the order they were minted, with their expiry at minting.
    mint_order: std::collections::VecDeque<(i64, String)>,
}

impl Runtime {
    fn from_seed(seed: &Seed) -> Self {
        let users = seed
            .users
            .iter()
            .enumerate()
            .map(|(i, u)| User {
                id: ids::mint("005", i as u64 + 1),
                username: u.username.clone(),
                password: u.password.clone(),
                security_token: u.security_token.clone(),
                profile: u.profile.clone(),
                first_name: u.first_name.clone(),
                last_name: u.last_name.clone(),
                email: u.email.clone(),
                time_zone: u.time_zone.clone(),
                locale: u.locale.clone(),
                active: u.active,
                frozen: u.frozen,
            })
            .collect();
        let settings = Settings { daily_api_requests: seed.org.daily_api_requests, ..Settings::default() };
        Self { users, next_family: 1, settings, ..Self::default() }
    }

    pub(crate) fn user_by_name(&self, username: &str) -> Option<usize> {
        self.users.iter().position(|u| u.username.eq_ignore_ascii_case(username))
    }

    /// The access token if it is live: known, not expired, and its user may still log in.
    pub(crate) fn live_access(&self, token: &str, now_ms: i64) -> Option<&AccessToken> {
        let t = self.access_tokens.get(token)?;
        (now_ms < t.expires_ms && self.users[t.user].can_log_in()).then_some(t)
    }

    pub(crate) fn live_approvals(&self, user: usize, app: usize) -> usize {
        self.families.values().filter(|f| !f.revoked && f.user == user && f.app == app).count()
    }

    pub(crate) fn revoke_family(&mut self, id: u64) {
        if let Some(f) = self.families.get_mut(&id) {
            f.revoked = true;
            for t in std::mem::take(&mut f.tokens) {
                self.access_tokens.remove(&t);
            }
        }
    }

    /// Starts a new approval (refresh-token family), revoking the oldest when the user already
    /// has five for this app.
    pub(crate) fn new_family(&mut self, now_ms: i64, user: usize, app: usize, scopes: &[String]) -> (u64, String) {
        let mut live: Vec<(i64, u64)> = self
            .families
            .iter()
            .filter(|(_, f)| !f.revoked && f.user == user && f.app == app)
            .map(|(id, f)| (f.created_ms, *id))
            .collect();
        live.sort();
        while live.len() >= MAX_APPROVALS_PER_USER_AND_APP {
            let (_, oldest) = live.remove(0);
            self.revoke_family(oldest);
        }
        let id = self.next_family;
        self.next_family += 1;
        self.families.insert(
            id,
            Family { user, app, scopes: scopes.to_vec(), created_ms: now_ms, revoked: false, tokens: Vec::new() },
        );
        let refresh = random_refresh_token();
        self.refresh_tokens.insert(refresh.clone(), RefreshToken { family: id, state: RefreshState::Current });
        (id, refresh)
    }

    /// Replaces the family's current refresh token (rotation).
    pub(crate) fn rotate(&mut self, old: &str, family: u64) -> String {
        if let Some(t) = self.refresh_tokens.get_mut(old) {
            t.state = RefreshState::Rotated;
        }
        let new = random_refresh_token();
        self.refresh_tokens.insert(new.clone(), RefreshToken { family, state: RefreshState::Current });
        new
    }

    pub(crate) fn revoke_user(&mut self, user: usize) {
        let families: Vec<u64> = self.families.iter().filter(|(_, f)| f.user == user).map(|(id, _)| *id).collect();
        for f in families {
            self.revoke_family(f);
        }
        self.access_tokens.retain(|_, t| t.user != user);
        self.consents.retain(|(u, _)| *u != user);
        self.browser_sessions.retain(|_, u| *u != user);
    }
}

/// Random characters of the kinds Salesforce uses in opaque tokens.
pub(crate) fn random_chars(n: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(n).map(char::from).collect()
}

fn random_refresh_token() -> String {
    format!("5Aep861{}", random_chars(80))
}

/// Shared playground state; a cheap-clone handle.
#[derive(Clone, Debug)]
pub(crate) struct Shared(Arc<Inner>);

#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) seed: Seed,
    pub(crate) org_id: String,
    pub(crate) apps: Vec<App>,
    pub(crate) keys: KeyMaterial,
    pub(crate) clock: ShiftedClock,
    pub(crate) login_url: String,
    pub(crate) instance_url: String,
    pub(crate) control_key: String,
    /// Guards all mutable identity state, settings, faults and counters.
    runtime: Mutex<Runtime>,
    /// `true` while refresh grants are held (see `Settings::hold_refreshes`).
    pub(crate) refresh_hold: tokio::sync::watch::Sender<bool>,
    /// Records, query locators, API usage and bulk jobs.
    pub(crate) data: crate::store::DataState,
    /// Pub/Sub API events (change events and platform events).
    pub(crate) events: crate::events::EventBus,
}

impl std::ops::Deref for Shared {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Shared {
    pub(crate) fn new(
        seed: Seed,
        keys: KeyMaterial,
        clock: ShiftedClock,
        login_url: String,
        instance_url: String,
        control_key: String,
        data: crate::store::DataState,
    ) -> Result<Self, PlaygroundError> {
        let mut apps = Vec::with_capacity(seed.connected_apps.len());
        for a in &seed.connected_apps {
            let public_key = match seed.certificate_source(a)? {
                None => None,
                Some(CertificateSource::Generated) => Some(keys.client_public_key.clone()),
                Some(CertificateSource::Pem(pem)) => Some(
                    crate::keys::public_key_from_certificate(&pem)
                        .map_err(|e| PlaygroundError::Seed { message: format!("connected app {:?}: {e}", a.name) })?,
                ),
            };
            apps.push(App { seed: a.clone(), flows: a.flows.iter().copied().collect(), public_key });
        }
        let org_id = seed.org.id.clone().unwrap_or_else(|| ids::mint("00D", 1));
        let runtime = Mutex::new(Runtime::from_seed(&seed));
        let (refresh_hold, _) = tokio::sync::watch::channel(false);
        let catalog = crate::events::schemas::Catalog::build(&data.store.schema, &seed.platform_events_or_default())
            .map_err(|message| PlaygroundError::Seed { message })?;
        let events = crate::events::EventBus::new(catalog);
        Ok(Self(Arc::new(Inner {
            seed,
            org_id,
            apps,
            keys,
            clock,
            login_url,
            instance_url,
            control_key,
            runtime,
            refresh_hold,
            data,
            events,
        })))
    }

    pub(crate) fn rt(&self) -> MutexGuard<'_, Runtime> {
        // parking_lot does not poison: a panic while holding the lock leaves plain data behind.
        self.0.runtime.lock()
    }

    pub(crate) fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub(crate) fn app_by_client_id(&self, client_id: &str) -> Option<usize> {
        self.apps.iter().position(|a| a.seed.client_id == client_id)
    }

    /// The 15-character org id, as it prefixes access tokens.
    pub(crate) fn org_id15(&self) -> &str {
        &self.org_id[..15]
    }

    pub(crate) fn identity_url(&self, host_base: &str, user_id: &str) -> String {
        format!("{host_base}/id/{}/{user_id}", self.org_id)
    }

    pub(crate) fn reset(&self) {
        *self.rt() = Runtime::from_seed(&self.seed);
        self.clock.reset();
        self.refresh_hold.send_replace(false);
        self.data.reset_usage();
        self.push_users_to_db();
        self.events.reset();
    }

    /// Mints an access token for `user` through `app`.
    pub(crate) fn mint_access(
        &self,
        rt: &mut Runtime,
        user: usize,
        app: usize,
        scopes: &[String],
        family: Option<u64>,
    ) -> (String, i64) {
        let now = self.now_ms();
        // Expiry only moves earlier (control API), so a token whose minted expiry passed is dead.
        // Apps with different timeouts interleave; a long-lived token at the front only delays
        // pruning of the ones behind it.
        for _ in 0..PRUNE_PER_MINT {
            match rt.mint_order.front() {
                Some((expires, _)) if *expires <= now => {
                    if let Some((_, old)) = rt.mint_order.pop_front() {
                        rt.access_tokens.remove(&old);
                    }
                }
                _ => break,
            }
        }
        let token = format!("{}!{}", self.org_id15(), random_chars(96));
        let timeout = self.apps[app].session_timeout_ms(self.seed.org.session_timeout_seconds);
        rt.mint_order.push_back((now.saturating_add(timeout), token.clone()));
        rt.access_tokens.insert(
            token.clone(),
            AccessToken { user, app, scopes: scopes.to_vec(), issued_ms: now, expires_ms: now.saturating_add(timeout) },
        );
        if let Some(f) = family.and_then(|f| rt.families.get_mut(&f)) {
            f.tokens.push(token.clone());
        }
        (token, now)
    }
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn callback_globs() {
        assert!(glob_match("http://127.0.0.1:*/callback", "http://127.0.0.1:53124/callback"));
        assert!(!glob_match("http://127.0.0.1:*/callback", "http://127.0.0.1:53124/callback/x"));
        assert!(!glob_match("http://127.0.0.1:*/callback", "https://evil.example/callback"));
        assert!(glob_match("https://app/cb", "https://app/cb"));
        assert!(!glob_match("https://app/cb", "https://app/cb2"));
    }
}
