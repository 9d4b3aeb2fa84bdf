//! `forcelink token get` and `forcelink logout`.

use forcelink_auth::approvals::ApprovalBudget;
use forcelink_auth::{AuthError, ConnectionId};
use forcelink_store::AuditAction;
use serde_json::json;

use super::{audit, open_connection, token_cache};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Print a valid access token (renewing it first when needed; one renewal across processes).
    /// Human output is the bare token, for `$(forcelink token get prod)`; --json adds the
    /// instance URL and expiry.
    Get {
        /// Connection name.
        name: Option<String>,
        /// Renew the token now, whatever its expiry.
        #[arg(long, conflicts_with = "refused")]
        renew: bool,
        /// This token was refused (HTTP 401): renew it, unless another process already did, in
        /// which case the newer token is printed. Takes the token's fingerprint (`fingerprint` in
        /// the --json output) or the token itself. Processes doing this at once renew once.
        #[arg(long, value_name = "FINGERPRINT")]
        refused: Option<String>,
    },
}

/// A stored token this far from its expiry is handed out without the cache: beyond the cache's
/// renewal window (5 minutes plus up to 1 minute of jitter), so the cache would do the same.
const FAST_PATH_MARGIN: std::time::Duration = std::time::Duration::from_secs(7 * 60);

pub async fn run(settings: &Settings, command: TokenCommand) -> Result<Outcome, Failure> {
    match command {
        TokenCommand::Get { name, renew, refused } => get(settings, name.as_deref(), renew, refused.as_deref()).await,
    }
}

async fn get(settings: &Settings, name: Option<&str>, renew: bool, refused: Option<&str>) -> Result<Outcome, Failure> {
    let name = settings.connection_name(name)?;
    let opened = open_connection(settings, &name).await?;
    let stored = opened.store.load(&name).await?;
    // Fast path: a stored token well before its renewal window is handed out as is, without
    // building an HTTP client (what most calls of a short-lived process need).
    #[allow(clippy::disallowed_methods)] // the binary reads the wall clock
    let now = std::time::SystemTime::now();
    let fresh = stored.as_ref().filter(|s| {
        let t = &s.set.access_token;
        let is_refused = refused.is_some_and(|r| r == t.fingerprint() || r == t.secret());
        !renew && !is_refused && s.set.expires_at.is_some_and(|e| e > now + FAST_PATH_MARGIN)
    });
    let token = match fresh {
        Some(s) => s.set.token(),
        None => {
            let cache = token_cache(settings, &opened)?;
            if let Some(current) = &stored {
                let t = &current.set.access_token;
                let is_refused = refused.is_some_and(|r| r == t.fingerprint() || r == t.secret());
                if renew || is_refused {
                    cache.invalidate(t);
                }
            }
            cache.get_token().await.map_err(|e| match e {
                AuthError::NoRefreshToken => Failure::sign_in(format!("connection {name} is not signed in"))
                    .with_fix(format!("run `forcelink login {} {name}`", opened.connection.method())),
                other => Failure::from_auth(other),
            })?
        }
    };
    audit(
        settings,
        &*opened.store,
        &name,
        AuditAction::TokenIssued,
        Some(format!("token {}", token.access_token.fingerprint())),
    )
    .await;
    Ok(Outcome::new(
        json!({
            "access_token": token.access_token.secret(),
            "instance_url": super::base_url(&token.instance_url),
            "expires_at": token.expires_at.map(super::rfc3339),
            "api_version": opened.connection.api_version,
            "fingerprint": token.access_token.fingerprint(),
        }),
        format!("{}\n", token.access_token.secret()),
    ))
}

/// `forcelink logout NAME`: revoke at Salesforce, then forget the tokens (the connection stays).
pub async fn logout(settings: &Settings, name: Option<&str>, no_revoke: bool) -> Result<Outcome, Failure> {
    let name = settings.connection_name(name)?;
    let store = settings.open_store().await?;
    if settings.spec(&*store, &name).await?.is_none() {
        return Err(settings.unknown(&*store, &name).await);
    }
    let revoked = if no_revoke { false } else { revoke_stored(settings, &name).await? };
    let had = store.load(&name).await?.is_some();
    forget(settings, &name).await?;
    audit(settings, &*store, &name, AuditAction::Logout, Some(format!("revoked {revoked}"))).await;
    let human = match (had, revoked) {
        (false, _) => format!("connection {name} was not signed in\n"),
        (true, true) => format!("signed out of {name}: its tokens were revoked at Salesforce and forgotten\n"),
        (true, false) => format!("signed out of {name}: its tokens were forgotten (not revoked)\n"),
    };
    Ok(Outcome::new(json!({ "name": name.as_str(), "revoked": revoked, "was_signed_in": had }), human))
}

/// Revokes the stored refresh token (which ends every access token of that grant) or else the
/// access token. `Ok(false)` when nothing was stored. A token Salesforce no longer knows counts
/// as revoked.
pub async fn revoke_stored(settings: &Settings, name: &ConnectionId) -> Result<bool, Failure> {
    let opened = open_connection(settings, name).await?;
    let Some(stored) = opened.store.load(name).await? else { return Ok(false) };
    let transport = settings.transport()?;
    opened.connection.revoke(&transport, &settings.env.resolver(), &stored.set).await.map_err(|e| {
        Failure::from_auth(e)
            .with_fix(format!("retry, or pass --no-revoke to forget the tokens of {name} without revoking them"))
    })
}

/// Removes the token set and the connection's approvals from the ledger.
async fn forget(settings: &Settings, name: &ConnectionId) -> Result<(), Failure> {
    let store = settings.open_store().await?;
    if let Some(stored) = store.load(name).await?
        && let (Some(user), Some(spec)) = (stored.set.user_id(), settings.spec(&*store, name).await?)
        && let Some(client_id) = spec.0.client_id.as_deref()
    {
        let budget = ApprovalBudget::new(store.clone());
        budget.forget(user, client_id, name).await?;
    }
    store.remove(name).await?;
    Ok(())
}
