//! `forcelink connection add|list|show|remove|test`. `list` and `show` include each
//! connection's state as the broker recorded it in the store (`state`: its own module).

mod state;

use forcelink_store::AuditAction;
use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::SystemTime;

use forcelink_auth::Endpoints;
use forcelink_auth::identity::IdentityClient;
use forcelink_store::{Method, PutMode, PutOutcome};
use serde_json::json;

use super::flags::ConnectionFlags;
use super::{audit, client_over, open_connection, prompt_missing, token_cache, token_status};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::{Origin, Settings};

#[derive(Debug, clap::Subcommand)]
pub enum ConnectionCommand {
    /// Add a connection to the store (secrets encrypted). Sign in afterwards with `forcelink login`.
    Add(Box<AddArgs>),
    /// List every connection (store, config file, environment) with its sign-in state and its
    /// state as the broker's checks recorded it (healthy, unhealthy, reauthorization_required,
    /// unknown).
    List,
    /// Show a connection's settings (secrets hidden), token state, and its state with the
    /// reason, the fix and what the broker's checks read (token expiry, approvals, API usage).
    Show {
        /// Connection name.
        name: Option<String>,
    },
    /// Revoke the connection's tokens at Salesforce, then delete it from the store.
    Remove {
        name: String,
        /// Delete without revoking (e.g. the org no longer exists).
        #[arg(long)]
        no_revoke: bool,
        /// Do not ask for confirmation.
        #[arg(long, short)]
        yes: bool,
    },
    /// Get a token and ask Salesforce who it belongs to.
    Test { name: Option<String> },
}

#[derive(Debug, clap::Args)]
pub struct AddArgs {
    /// Connection name (letters, digits, '-', '_', '.').
    pub name: String,
    /// Auth method: access-token, client-credentials, jwt, web, device or password.
    #[arg(long, value_parser = ["access-token", "client-credentials", "jwt", "web", "device", "password"])]
    pub method: Option<String>,
    /// Replace an existing connection of that name.
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub flags: ConnectionFlags,
}

pub async fn run(settings: &Settings, command: ConnectionCommand) -> Result<Outcome, Failure> {
    match command {
        ConnectionCommand::Add(args) => add(settings, *args).await,
        ConnectionCommand::List => list(settings).await,
        ConnectionCommand::Show { name } => show(settings, name.as_deref()).await,
        ConnectionCommand::Remove { name, no_revoke, yes } => remove(settings, &name, no_revoke, yes).await,
        ConnectionCommand::Test { name } => test(settings, name.as_deref()).await,
    }
}

async fn add(settings: &Settings, args: AddArgs) -> Result<Outcome, Failure> {
    let name = settings.connection_name(Some(&args.name))?;
    let method = args.method.as_deref().and_then(Method::parse);
    let (mut spec, warnings) = args.flags.to_spec(method)?;
    if spec.method.is_none() {
        return Err(Failure::usage("no auth method given").with_fix(
            "add --method access-token|client-credentials|jwt|web|device|password (or method in --from-json)",
        ));
    }
    prompt_missing(&mut spec)?;
    let connection = spec.validate(name.as_str(), &settings.url_policy())?;
    let store = settings.open_store().await?;
    let mode = if args.replace { PutMode::Upsert } else { PutMode::Create };
    let before = if args.replace { store.connection(&name).await? } else { None };
    let outcome = store.put_connection(&name, &spec, mode).await?;
    if outcome == PutOutcome::AlreadyExists {
        return Err(Failure::usage(format!("a connection named {name} already exists"))
            .with_fix(format!("add --replace to overwrite it, or `forcelink connection remove {name}` first")));
    }
    let mut detail = format!("method {}", connection.method());
    if let Some(before) = before {
        let changed = before.spec.changed_fields(&spec);
        if !changed.is_empty() {
            detail = format!("{detail}; changed {}", changed.join(", "));
            // The new settings take effect at once: tokens of the old ones are revoked where they
            // came from (best effort) and forgotten.
            if let Some(tokens) = store.load(&name).await?
                && let Ok(old) = before.spec.resolve(name.as_str())
                && let Err(e) = old.revoke(&settings.transport()?, &settings.env.resolver(), &tokens.set).await
            {
                tracing::warn!(connection = %name, "the old tokens could not be revoked: {e}");
            }
            store.remove(&name).await?;
        }
    }
    let action =
        if outcome == PutOutcome::Created { AuditAction::ConnectionCreated } else { AuditAction::ConnectionUpdated };
    audit(settings, &*store, &name, action, Some(detail)).await;
    let next = match connection.method() {
        Method::Web | Method::Device => format!("sign in with `forcelink login {} {name}`", connection.method()),
        _ => format!("check it with `forcelink connection test {name}`"),
    };
    let mut out = Outcome::new(
        json!({ "name": name.as_str(), "created": outcome == PutOutcome::Created, "connection": spec.redacted() }),
        format!(
            "{} connection {name} ({}, {})\nnext: {next}\n",
            if outcome == PutOutcome::Created { "added" } else { "replaced" },
            connection.method(),
            connection.login_url.origin().ascii_serialization()
        ),
    );
    out.warnings = warnings;
    if connection.method() == Method::Password {
        out = out.warn("username-password is a legacy flow Salesforce is retiring; prefer jwt or client-credentials");
    }
    Ok(out)
}

async fn list(settings: &Settings) -> Result<Outcome, Failure> {
    let store = settings.open_store().await?;
    #[allow(clippy::disallowed_methods)] // the binary reads the wall clock
    let now = SystemTime::now();
    let mut rows = Vec::new();
    let mut table = vec![["NAME", "METHOD", "LOGIN URL", "SIGNED IN", "EXPIRES", "STATE", "SOURCE"].map(str::to_owned)];
    let healths: HashMap<String, forcelink_store::ConnectionHealth> =
        store.healths().await?.into_iter().map(|h| (h.connection.as_str().to_owned(), h)).collect();
    let mut attention = Vec::new();
    for (name, origins) in settings.all_names(&*store).await? {
        let id = forcelink_auth::ConnectionId::new(name.clone());
        let (spec, _) = settings.spec(&*store, &id).await?.unwrap_or_default();
        let resolved = spec.resolve(&name);
        let stored = store.load(&id).await?;
        let status = token_status(stored.as_ref().map(|s| &s.set), now);
        let problem = resolved.as_ref().err().map(|e| e.0.clone());
        let method = spec.method.map(|m| m.as_str().to_owned()).unwrap_or_else(|| "?".into());
        let login =
            resolved.as_ref().map(|c| c.login_url.origin().ascii_serialization()).unwrap_or_else(|_| "?".into());
        let health = healths.get(&name);
        let current = state::state_of(health);
        if state::needs_attention(current) {
            attention.push(name.clone());
        }
        table.push([
            name.clone(),
            method.clone(),
            login.clone(),
            if stored.is_some() { "yes" } else { "no" }.to_owned(),
            status["expires_at"].as_str().unwrap_or("-").to_owned(),
            current.as_str().to_owned(),
            origins.iter().map(|o| o.as_str()).collect::<Vec<_>>().join("+"),
        ]);
        let mut row = json!({
            "name": name,
            "method": spec.method,
            "login_url": login,
            "sources": origins,
            "token": status,
            "problem": problem,
        });
        if let Some(obj) = row.as_object_mut() {
            obj.extend(state::state_fields(health));
        }
        rows.push(row);
    }
    let human = if rows.is_empty() {
        "no connections yet: add one with `forcelink connection add NAME --method …` or `forcelink login …`\n"
            .to_owned()
    } else {
        let mut text = crate::output::table(&table);
        if let Some(first) = attention.first() {
            let verb = if attention.len() == 1 { "needs" } else { "need" };
            text.push_str(&format!(
                "\n{} {verb} attention: `forcelink connection show {first}` shows why and the fix\n",
                attention.join(", ")
            ));
        }
        text
    };
    Ok(Outcome::new(serde_json::Value::Array(rows), human))
}

async fn show(settings: &Settings, name: Option<&str>) -> Result<Outcome, Failure> {
    let name = settings.connection_name(name)?;
    let store = settings.open_store().await?;
    let Some((spec, origins)) = settings.spec(&*store, &name).await? else {
        return Err(settings.unknown(&*store, &name).await);
    };
    #[allow(clippy::disallowed_methods)] // the binary reads the wall clock
    let now = SystemTime::now();
    let stored = store.load(&name).await?;
    let status = token_status(stored.as_ref().map(|s| &s.set), now);
    let problem = spec.resolve(name.as_str()).err().map(|e| e.0);
    let mut approvals = Vec::new();
    if let (Some(set), Some(client_id)) = (stored.as_ref(), spec.client_id.as_deref())
        && let Some(user) = set.set.user_id()
    {
        for a in store.approvals(user, client_id).await? {
            approvals.push(a.connection.as_str().to_owned());
        }
    }
    let health = store.health(&name).await?;
    let mut human =
        format!("connection {name}   (from {})\n", origins.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(" + "));
    if let Some(obj) = spec.redacted().as_object() {
        for (k, v) in obj {
            human.push_str(&format!("  {k:<24}{}\n", v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())));
        }
    }
    if let Some(p) = &problem {
        human.push_str(&format!("  problem                 {p}\n"));
    }
    human.push_str(&format!(
        "  signed in               {}\n",
        if stored.is_some() {
            format!("yes, token expires {}", status["expires_at"].as_str().unwrap_or("(unknown)"))
        } else {
            "no".into()
        }
    ));
    human.push_str(&state::state_lines(health.as_ref()));
    let mut result = json!({ "name": name.as_str(), "sources": origins, "connection": spec.redacted(), "token": status, "problem": problem, "approvals": approvals });
    if let Some(obj) = result.as_object_mut() {
        obj.extend(state::state_fields(health.as_ref()));
        obj.insert("checks".into(), state::checks_json(health.as_ref()));
    }
    Ok(Outcome::new(result, human))
}

async fn remove(settings: &Settings, name: &str, no_revoke: bool, yes: bool) -> Result<Outcome, Failure> {
    let name = settings.connection_name(Some(name))?;
    let store = settings.open_store().await?;
    let Some((_, origins)) = settings.spec(&*store, &name).await? else {
        return Err(settings.unknown(&*store, &name).await);
    };
    if !origins.contains(&Origin::Store) {
        return Err(Failure::config(format!(
            "connection {name} is defined in the {}, not in the store",
            origins.iter().map(|o| o.as_str()).collect::<Vec<_>>().join(" and ")
        ))
        .with_fix(format!(
            "delete it there ({}); `forcelink logout {name}` signs it out",
            settings.config_path.display()
        )));
    }
    if !yes && std::io::stdin().is_terminal() && !crate::output::confirm(&format!("remove connection {name}?"))? {
        return Err(Failure::usage("cancelled; nothing was removed"));
    }
    let mut warnings = Vec::new();
    let revoked = if no_revoke {
        false
    } else {
        match super::token::revoke_stored(settings, &name).await {
            Ok(r) => r,
            // The definition may be broken; removing it must still be possible.
            Err(e) => {
                warnings.push(format!("tokens were not revoked at Salesforce: {}", e.message));
                false
            }
        }
    };
    store.remove_connection(&name).await?;
    audit(settings, &*store, &name, AuditAction::ConnectionDeleted, Some(format!("revoked {revoked}"))).await;
    let mut out = Outcome::new(
        json!({ "name": name.as_str(), "removed": true, "revoked": revoked }),
        format!("removed connection {name}{}\n", if revoked { " (its tokens were revoked)" } else { "" }),
    );
    out.warnings = warnings;
    Ok(out)
}

async fn test(settings: &Settings, name: Option<&str>) -> Result<Outcome, Failure> {
    let name = settings.connection_name(name)?;
    let opened = open_connection(settings, &name).await?;
    let cache = Arc::new(token_cache(settings, &opened)?);
    // A token first: a connection that cannot get one says why before any API call.
    cache.get_token().await?;
    // The API must accept the token; the client renews a refused one once (it may have just
    // expired), except a static access token, which cannot be renewed.
    let client = client_over(settings, &opened.connection, cache.clone())?;
    match super::api_check(&client).await {
        Ok(()) => {}
        Err(f) if f.kind == crate::failure::Kind::SignIn && opened.connection.method() != Method::AccessToken => {
            return Err(f);
        }
        Err(f) => {
            return Err(f.with_fix(format!("sign in again: `forcelink login {} {name}`", opened.connection.method())));
        }
    }
    // The token the API accepted (from the cache: no request).
    let token = cache.get_token().await?;
    // Who the token belongs to (userinfo needs the openid/id scopes; not every token has them).
    let transport = settings.transport()?;
    let identity = IdentityClient::new(
        transport,
        Endpoints::salesforce(&token.instance_url),
        forcelink_auth::AppCredentials::new("", None),
    )?;
    let info = identity.userinfo(&token).await.ok();
    audit(settings, &*opened.store, &name, AuditAction::ConnectionTested, None).await;
    let user = info.as_ref().map(|i| i.preferred_username.clone().unwrap_or_else(|| i.sub.clone()));
    let org = info.as_ref().and_then(|i| i.organization_id.clone());
    Ok(Outcome::new(
        json!({
            "name": name.as_str(),
            "ok": true,
            "username": user,
            "user_id": info.as_ref().and_then(|i| i.user_id.clone()),
            "organization_id": org,
            "instance_url": super::base_url(&token.instance_url),
            "expires_at": token.expires_at.map(super::rfc3339),
        }),
        format!(
            "ok: connection {name} works{} on {}\n",
            user.map(|u| format!(" as {u} (org {})", org.as_deref().unwrap_or("?"))).unwrap_or_default(),
            token.instance_url.origin().ascii_serialization()
        ),
    ))
}
