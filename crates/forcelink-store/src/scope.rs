//! What an API key may do ([`Scope`], [`Scopes`]) and what the audit log records
//! ([`AuditAction`]). Both are shared by the CLI and the broker, so the same act has one name
//! everywhere and a scope cannot be misspelled in a route.

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::fmt;

/// Lists of connections or capabilities containing this allow every one.
pub const ANY: &str = "*";

/// A capability an API key can hold for its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// `GET /v1/connections/{name}/token`: hand out access tokens.
    Token,
    /// `/v1/connections/{name}/sf/…`: send Salesforce requests through the broker.
    Proxy,
    /// `POST /v1/connections/{name}/actions/…`: run ready-made actions.
    Actions,
    /// Manage connections (and, for a key on every connection, API keys and metrics).
    Admin,
    /// `POST /mcp`: the MCP server's tools, resources and prompts on the key's connections.
    Mcp,
    /// Salesforce events: subscriptions relayed to a receiver (`/v1/subscriptions`) and the
    /// event stream (`GET /v1/connections/{name}/events`).
    Events,
}

impl Scope {
    /// Every scope.
    pub const ALL: [Scope; 6] = [Scope::Token, Scope::Proxy, Scope::Actions, Scope::Admin, Scope::Mcp, Scope::Events];

    /// The text form (`token`, `proxy`, `actions`, `admin`, `mcp`, `events`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Token => "token",
            Scope::Proxy => "proxy",
            Scope::Actions => "actions",
            Scope::Admin => "admin",
            Scope::Mcp => "mcp",
            Scope::Events => "events",
        }
    }

    /// The scope named `text`, if any.
    pub fn parse(text: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == text.trim())
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The scopes of a key: every one (`*`, including scopes added by later versions) or a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scopes {
    /// Every scope (`*`), including scopes later versions add.
    All,
    /// Exactly these scopes.
    Only(BTreeSet<Scope>),
}

impl Scopes {
    /// Whether `scope` is among them.
    pub fn contains(&self, scope: Scope) -> bool {
        match self {
            Scopes::All => true,
            Scopes::Only(set) => set.contains(&scope),
        }
    }

    /// From the text forms (`*` or scope names). An unknown name is an error that names it.
    pub fn parse<S: AsRef<str>>(items: &[S]) -> Result<Scopes, String> {
        let mut set = BTreeSet::new();
        for item in items {
            let item = item.as_ref().trim();
            if item == ANY {
                return Ok(Scopes::All);
            }
            match Scope::parse(item) {
                Some(s) => {
                    set.insert(s);
                }
                None => {
                    return Err(format!(
                        "unknown scope {item:?}; use any of {} (or '*')",
                        Scope::ALL.map(Scope::as_str).join(", ")
                    ));
                }
            }
        }
        Ok(Scopes::Only(set))
    }

    /// As stored: names a version that does not know them skips (granting less, never more).
    pub(crate) fn from_stored(items: &[String]) -> Scopes {
        if items.iter().any(|i| i == ANY) {
            return Scopes::All;
        }
        Scopes::Only(items.iter().filter_map(|i| Scope::parse(i)).collect())
    }

    /// The text forms, as stored and shown.
    pub fn to_strings(&self) -> Vec<String> {
        match self {
            Scopes::All => vec![ANY.to_owned()],
            Scopes::Only(set) => set.iter().map(|s| s.as_str().to_owned()).collect(),
        }
    }
}

impl From<Scope> for Scopes {
    fn from(s: Scope) -> Self {
        Scopes::Only(BTreeSet::from([s]))
    }
}

/// What an audit entry records. The text forms are what the store keeps and `store audit`
/// shows; entries written under another name by older versions read back as the same act.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuditAction {
    /// A token was handed out (`detail`: its fingerprint, and how often).
    TokenIssued,
    /// A caller reported a token as refused by Salesforce.
    TokenRejected,
    /// A person signed the connection in (web, device, password… flows).
    Login,
    /// The connection's tokens were revoked and forgotten.
    Logout,
    /// A connection was saved for the first time.
    ConnectionCreated,
    /// Settings changed (`detail`: the names of the changed fields, never values).
    ConnectionUpdated,
    /// A connection was removed.
    ConnectionDeleted,
    /// A connection's sign-in was tested.
    ConnectionTested,
    /// A ready-made action ran: `action.<name>`.
    Action(String),
    /// A request went through the proxy (`detail`: method, path without query values, status).
    ProxyRequest,
    /// Someone signed in to the broker's web page.
    WebSignIn,
    /// Someone signed out of the broker's web page.
    WebSignOut,
    /// A request presented a key that is unknown, malformed, revoked or not allowed.
    KeyRefused,
    /// An API key was created.
    ApiKeyCreated,
    /// An API key was revoked.
    ApiKeyRevoked,
    /// A webhook was added (`detail`: its id and URL's origin).
    WebhookCreated,
    /// A webhook was deleted.
    WebhookDeleted,
    /// A connect link was made (`detail`: its return URL's origin).
    ConnectLinkCreated,
    /// An event subscription was created (`detail`: its id, topic and receiver's origin).
    SubscriptionCreated,
    /// An event subscription was paused, resumed or deleted (`detail`: its id and what).
    SubscriptionChanged,
    /// An MCP tool was called: `mcp.<tool>` (`detail`: the outcome, never arguments or results).
    Mcp(String),
    /// Written by another version: kept as is.
    Other(String),
}

impl AuditAction {
    /// The text form, as stored and shown.
    pub fn as_str(&self) -> Cow<'static, str> {
        Cow::Borrowed(match self {
            AuditAction::TokenIssued => "token.issued",
            AuditAction::TokenRejected => "token.rejected",
            AuditAction::Login => "login",
            AuditAction::Logout => "logout",
            AuditAction::ConnectionCreated => "connection.created",
            AuditAction::ConnectionUpdated => "connection.updated",
            AuditAction::ConnectionDeleted => "connection.deleted",
            AuditAction::ConnectionTested => "connection.tested",
            AuditAction::ProxyRequest => "proxy.request",
            AuditAction::WebSignIn => "web.sign-in",
            AuditAction::WebSignOut => "web.sign-out",
            AuditAction::KeyRefused => "key.refused",
            AuditAction::ApiKeyCreated => "api-key.created",
            AuditAction::ApiKeyRevoked => "api-key.revoked",
            AuditAction::WebhookCreated => "webhook.created",
            AuditAction::WebhookDeleted => "webhook.deleted",
            AuditAction::ConnectLinkCreated => "connect-link.created",
            AuditAction::SubscriptionCreated => "subscription.created",
            AuditAction::SubscriptionChanged => "subscription.changed",
            AuditAction::Action(name) => return Cow::Owned(format!("action.{name}")),
            AuditAction::Mcp(tool) => return Cow::Owned(format!("mcp.{tool}")),
            AuditAction::Other(text) => return Cow::Owned(text.clone()),
        })
    }

    /// The stored text back as an action (older names included).
    pub fn parse(text: &str) -> AuditAction {
        match text {
            "token.issued" => AuditAction::TokenIssued,
            "token.rejected" => AuditAction::TokenRejected,
            "login" => AuditAction::Login,
            "logout" => AuditAction::Logout,
            "connection.created" => AuditAction::ConnectionCreated,
            // The CLI wrote `connection.replaced` / `connection.removed` before the names were shared.
            "connection.updated" | "connection.replaced" => AuditAction::ConnectionUpdated,
            "connection.deleted" | "connection.removed" => AuditAction::ConnectionDeleted,
            "connection.tested" => AuditAction::ConnectionTested,
            "proxy.request" => AuditAction::ProxyRequest,
            "web.sign-in" => AuditAction::WebSignIn,
            "web.sign-out" => AuditAction::WebSignOut,
            "key.refused" => AuditAction::KeyRefused,
            "api-key.created" => AuditAction::ApiKeyCreated,
            "api-key.revoked" => AuditAction::ApiKeyRevoked,
            "webhook.created" => AuditAction::WebhookCreated,
            "webhook.deleted" => AuditAction::WebhookDeleted,
            "connect-link.created" => AuditAction::ConnectLinkCreated,
            "subscription.created" => AuditAction::SubscriptionCreated,
            "subscription.changed" => AuditAction::SubscriptionChanged,
            other => match (other.strip_prefix("action."), other.strip_prefix("mcp.")) {
                (Some(name), _) if !name.is_empty() => AuditAction::Action(name.to_owned()),
                (_, Some(tool)) if !tool.is_empty() => AuditAction::Mcp(tool.to_owned()),
                _ => AuditAction::Other(other.to_owned()),
            },
        }
    }
}

impl fmt::Display for AuditAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_str())
    }
}

impl PartialEq<str> for AuditAction {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for AuditAction {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl serde::Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl serde::Serialize for Scopes {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_strings().serialize(s)
    }
}

impl serde::Serialize for AuditAction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.as_str())
    }
}

/// By the text form, so groups of audit events can be keyed by their action (equal actions have
/// equal text, which is all `Hash` needs).
impl std::hash::Hash for AuditAction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_their_names_and_star_and_refuse_others() {
        assert_eq!(Scopes::parse(&["token", "proxy"]).unwrap(), Scopes::Only([Scope::Token, Scope::Proxy].into()));
        assert_eq!(Scopes::parse(&["*"]).unwrap(), Scopes::All);
        let err = Scopes::parse(&["tokens"]).unwrap_err();
        assert!(err.contains("\"tokens\"") && err.contains("admin"), "{err}");
        // A stored name this version does not know grants nothing.
        let stored = Scopes::from_stored(&["token".into(), "future".into()]);
        assert!(stored.contains(Scope::Token) && !stored.contains(Scope::Admin));
        assert_eq!(stored.to_strings(), ["token"]);
        assert!(Scopes::All.contains(Scope::Admin));
        // A key with every scope has the MCP one, added after `*` keys existed.
        assert!(Scopes::All.contains(Scope::Mcp));
        assert_eq!(Scopes::parse(&["mcp"]).unwrap(), Scopes::from(Scope::Mcp));
    }

    #[test]
    fn audit_actions_round_trip_and_read_older_names() {
        for a in [
            AuditAction::TokenIssued,
            AuditAction::ConnectionUpdated,
            AuditAction::ProxyRequest,
            AuditAction::Action("freeze-user".into()),
            AuditAction::Mcp("soql_query".into()),
            AuditAction::KeyRefused,
            AuditAction::SubscriptionCreated,
            AuditAction::SubscriptionChanged,
        ] {
            assert_eq!(AuditAction::parse(&a.as_str()), a);
        }
        assert_eq!(AuditAction::parse("connection.removed"), AuditAction::ConnectionDeleted);
        assert_eq!(AuditAction::parse("connection.replaced"), AuditAction::ConnectionUpdated);
        assert_eq!(AuditAction::parse("something.new"), AuditAction::Other("something.new".into()));
        assert!(AuditAction::TokenIssued == "token.issued");
    }
}
