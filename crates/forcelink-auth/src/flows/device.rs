//! Salesforce's device flow. Both steps go to the token endpoint: start with
//! `response_type=device_code`, then poll with `grant_type=device&code=<device_code>` every
//! `interval` seconds, slowing down when told, until the user approves, denies, or the code
//! expires.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use url::Url;

use crate::endpoint::Endpoints;
use crate::error::{AuthError, OAuthErrorKind};
use crate::flows::token_request;
use crate::secret::DeviceCode;
use crate::source::AppCredentials;
use crate::token::TokenSet;
use crate::wire::Transport;

/// Polling interval when the server names none.
pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How long a device code lives when the server says nothing (UNCONFIRMED for Salesforce: no
/// `expires_in` is documented; RFC 8628 servers commonly use 10 minutes).
pub const DEFAULT_DEVICE_CODE_LIFETIME: Duration = Duration::from_secs(600);
/// Added to the interval on `slow_down` (RFC 8628 §3.5).
pub const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);

/// What the user must see to approve the device.
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    /// The code the user types at `verification_uri` (`user_code`).
    pub user_code: String,
    /// Where the user goes to approve (`verification_uri`).
    pub verification_uri: String,
    /// The same page with the code filled in (`verification_uri_complete`), when sent.
    pub verification_uri_complete: Option<String>,
    /// Time between polls (`interval`). Defaults to [`DEFAULT_POLL_INTERVAL`], 5 seconds.
    pub interval: Duration,
    /// When the device code expires: from `expires_in`, else [`DEFAULT_DEVICE_CODE_LIFETIME`].
    pub expires_at: SystemTime,
    /// The code the flow polls with (`device_code`); never shown to the user.
    pub device_code: DeviceCode,
}

/// Shows the code to the user (a CLI prints it; a web page renders it).
pub trait DeviceCodeDisplay: Send + Sync {
    /// Shows `authorization`'s user code and verification URI; called once, before polling.
    fn show(&self, authorization: &DeviceAuthorization);
}

#[derive(Deserialize)]
struct StartResponse {
    device_code: String,
    user_code: String,
    verification_uri: String,
    #[serde(default)]
    verification_uri_complete: Option<String>,
    #[serde(default)]
    interval: Option<u64>,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Salesforce's device flow for one app: [`DeviceFlow::authorize`] does it all, or call
/// [`DeviceFlow::start`] and [`DeviceFlow::poll`] separately.
#[derive(Debug, Clone)]
pub struct DeviceFlow {
    transport: Transport,
    endpoints: Endpoints,
    app: AppCredentials,
    scope: Option<String>,
}

impl DeviceFlow {
    /// A device flow at `endpoints` as `app` (no secret needed). Fails when an endpoint breaks
    /// the transport's URL policy.
    pub fn new(transport: Transport, endpoints: Endpoints, app: AppCredentials) -> Result<Self, AuthError> {
        endpoints.check(&transport.policy)?;
        Ok(Self { transport, endpoints, app, scope: None })
    }
    /// Requests specific scopes (space-separated); without, the app's configured scopes.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Step 1: asks for a device code and user code.
    pub async fn start(&self) -> Result<DeviceAuthorization, AuthError> {
        let mut form = vec![("response_type", "device_code"), ("client_id", self.app.client_id.as_str())];
        if let Some(s) = &self.scope {
            form.push(("scope", s));
        }
        let raw = self.transport.post_form(&self.endpoints.token, &form, None).await?;
        let r: StartResponse = raw.parse("device_code")?;
        let now = self.transport.clock.now();
        Ok(DeviceAuthorization {
            user_code: r.user_code,
            verification_uri: r.verification_uri,
            verification_uri_complete: r.verification_uri_complete,
            interval: r.interval.map_or(DEFAULT_POLL_INTERVAL, Duration::from_secs),
            expires_at: now + r.expires_in.map_or(DEFAULT_DEVICE_CODE_LIFETIME, Duration::from_secs),
            device_code: DeviceCode::new(r.device_code),
        })
    }

    /// One poll: `Ok(None)` while the user has not decided yet.
    pub async fn poll_once(&self, authorization: &DeviceAuthorization) -> Result<Option<TokenSet>, AuthError> {
        let form = vec![
            ("grant_type", "device"),
            ("client_id", self.app.client_id.as_str()),
            ("code", authorization.device_code.secret()),
        ];
        let origin = self.endpoints.token_origin();
        match token_request(&self.transport, &self.endpoints, None, form, &origin).await {
            Ok(set) => Ok(Some(set)),
            Err(e) if e.oauth_kind() == Some(OAuthErrorKind::AuthorizationPending) => Ok(None),
            Err(e) if e.oauth_kind() == Some(OAuthErrorKind::ExpiredDeviceCode) => Err(AuthError::DeviceCodeExpired),
            Err(e) => Err(e),
        }
    }

    /// Step 2: shows the code, then polls at `interval` (longer after `slow_down`) until done.
    pub async fn authorize(&self, display: &dyn DeviceCodeDisplay) -> Result<TokenSet, AuthError> {
        let authorization = self.start().await?;
        display.show(&authorization);
        self.poll(&authorization).await
    }

    /// Polls at `authorization`'s interval (longer after `slow_down`) until the user approves,
    /// denies, or the code expires ([`AuthError::DeviceCodeExpired`]).
    pub async fn poll(&self, authorization: &DeviceAuthorization) -> Result<TokenSet, AuthError> {
        let clock = &self.transport.clock;
        let mut interval = authorization.interval;
        loop {
            if clock.now() >= authorization.expires_at {
                return Err(AuthError::DeviceCodeExpired);
            }
            clock.sleep(interval).await;
            match self.poll_once(authorization).await {
                Ok(Some(set)) => return Ok(set),
                Ok(None) => {}
                Err(e) if e.oauth_kind() == Some(OAuthErrorKind::SlowDown) => interval += SLOW_DOWN_STEP,
                Err(e) => return Err(e),
            }
        }
    }

    /// Where the user approves, if the server gave a complete URL with the code.
    pub fn complete_uri(authorization: &DeviceAuthorization) -> Option<Url> {
        authorization.verification_uri_complete.as_deref().and_then(|u| Url::parse(u).ok())
    }
}
