//! `forcelink user …`: the user-administration actions of forcelink-client, with flags in and JSON (or a line for people) out. A user is named by id
//! (`005…`) or username. The actions need System Administrator rights; without them the error
//! says which.

use forcelink_store::AuditAction;

use forcelink_client::actions::{self, ActionName};
use serde_json::{Map, Value, json};

use super::sobject::{Values, read_data};
use super::{ConnectionArg, api_client, audit};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum UserCommand {
    /// Create a user (nothing changes when the username exists; its id is printed).
    Create(Box<CreateArgs>),
    /// Update fields of a user: FIELD=VALUE or FIELD:=JSON arguments, or --data.
    Update {
        /// User id (005…) or username.
        user: String,
        #[command(flatten)]
        values: Values,
        #[command(flatten)]
        conn: ConnectionArg,
    },
    /// Activate a user (IsActive = true).
    Activate(UserArg),
    /// Deactivate a user (IsActive = false); users cannot be deleted in Salesforce.
    Deactivate(UserArg),
    /// Freeze a user's login (UserLogin.IsFrozen = true).
    Freeze(UserArg),
    /// Unfreeze a user's login.
    Unfreeze(UserArg),
    /// Remove permission set assignments (except the profile's own), permission set licences
    /// and package licences.
    RemoveEntitlements(UserArg),
    /// Set a new password, or have Salesforce generate one (printed once).
    ResetPassword {
        /// User id (005…) or username.
        user: String,
        /// The new password: env:NAME, file:PATH or - (standard input). Generated when omitted.
        #[arg(long, value_name = "SECRET")]
        new_password: Option<String>,
        #[command(flatten)]
        conn: ConnectionArg,
    },
}

#[derive(Debug, clap::Args)]
pub struct UserArg {
    /// User id (005…) or username.
    pub user: String,
    #[command(flatten)]
    pub conn: ConnectionArg,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Email-shaped and unique across all Salesforce orgs.
    #[arg(long)]
    pub username: Option<String>,
    #[arg(long)]
    pub last_name: Option<String>,
    #[arg(long)]
    pub first_name: Option<String>,
    #[arg(long)]
    pub email: Option<String>,
    /// At most 8 characters (derived from the names when omitted).
    #[arg(long)]
    pub alias: Option<String>,
    /// The profile by id (00e…).
    #[arg(long, conflicts_with = "profile")]
    pub profile_id: Option<String>,
    /// The profile by name, e.g. "Standard User".
    #[arg(long)]
    pub profile: Option<String>,
    /// Further User fields (FIELD=VALUE, FIELD:=JSON); --data takes the whole action input as
    /// JSON (username, last_name, email, profile_name, fields…).
    #[command(flatten)]
    pub values: Values,
    #[command(flatten)]
    pub conn: ConnectionArg,
}

async fn act(settings: &Settings, conn: &ConnectionArg, action: ActionName, input: Value) -> Result<Value, Failure> {
    let opened = conn.open(settings).await?;
    let client = api_client(settings, &opened)?;
    let out = actions::run(&client, action, input).await?;
    // Who changed which user or file, for the store's audit log (never a password).
    let subject = out.get("user_id").or_else(|| out.get("content_version_id")).and_then(Value::as_str).unwrap_or("");
    let action = AuditAction::Action(action.as_str().to_owned());
    audit(settings, &*opened.store, &opened.connection.name, action, Some(subject.to_owned())).await;
    Ok(out)
}

fn field(out: &Value, key: &str) -> String {
    out.get(key).and_then(Value::as_str).unwrap_or_default().to_owned()
}

pub async fn run(settings: &Settings, command: UserCommand) -> Result<Outcome, Failure> {
    match command {
        UserCommand::Create(args) => create(settings, *args).await,
        UserCommand::Update { user, values, conn } => {
            let fields = values.to_object()?;
            let out = act(settings, &conn, ActionName::UpdateUser, json!({ "user": user, "fields": fields })).await?;
            let human = format!("updated user {}\n", field(&out, "user_id"));
            Ok(Outcome::new(out, human))
        }
        UserCommand::Activate(a) => state(settings, a, ActionName::ActivateUser, "activated", "already active").await,
        UserCommand::Deactivate(a) => {
            state(settings, a, ActionName::DeactivateUser, "deactivated", "already inactive").await
        }
        UserCommand::Freeze(a) => state(settings, a, ActionName::FreezeUser, "froze", "already frozen").await,
        UserCommand::Unfreeze(a) => state(settings, a, ActionName::UnfreezeUser, "unfroze", "not frozen").await,
        UserCommand::RemoveEntitlements(a) => {
            let out = act(settings, &a.conn, ActionName::RemoveEntitlements, json!({ "user": a.user })).await?;
            let count = |k: &str| out.get(k).and_then(Value::as_array).map_or(0, Vec::len);
            let failures = count("failures");
            let human = format!(
                "user {}: removed {} permission set assignment(s), {} permission set licence(s), {} package licence(s){}\n",
                field(&out, "user_id"),
                count("permission_set_assignments"),
                count("permission_set_licenses"),
                count("package_licenses"),
                if failures > 0 { format!("; {failures} could not be removed (see --json)") } else { String::new() }
            );
            let mut outcome = Outcome::new(out, human);
            if failures > 0 {
                outcome.exit = 1;
            }
            Ok(outcome)
        }
        UserCommand::ResetPassword { user, new_password, conn } => {
            let mut input = json!({ "user": user });
            if let Some(src) = new_password {
                input["new_password"] = json!(secret_value(settings, &src)?);
            }
            let out = act(settings, &conn, ActionName::ResetPassword, input).await?;
            let human = match out.get("generated_password").and_then(Value::as_str) {
                Some(p) => format!("{p}\n"),
                None => format!("password of {} set\n", field(&out, "user_id")),
            };
            Ok(Outcome::new(out, human))
        }
    }
}

async fn create(settings: &Settings, args: CreateArgs) -> Result<Outcome, Failure> {
    let mut input = match args.values.data.as_deref() {
        Some(src) => {
            let (text, origin) = read_data(src)?;
            match serde_json::from_str::<Value>(&text) {
                Ok(Value::Object(m)) => m,
                _ => return Err(Failure::usage(format!("{origin} is not a JSON object (the create-user input)"))),
            }
        }
        None => Map::new(),
    };
    let mut set = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            input.insert(k.to_owned(), json!(v));
        }
    };
    set("username", args.username);
    set("last_name", args.last_name);
    set("first_name", args.first_name);
    set("email", args.email);
    set("alias", args.alias);
    set("profile_id", args.profile_id);
    set("profile_name", args.profile);
    if !args.values.assignments.is_empty() {
        let extra = Values { assignments: args.values.assignments.clone(), data: None }.to_object()?;
        let fields = input.entry("fields").or_insert_with(|| json!({}));
        if let Value::Object(f) = fields {
            f.extend(extra);
        }
    }
    for required in ["username", "last_name", "email"] {
        if !input.contains_key(required) {
            return Err(Failure::usage(format!("a new user needs --{}", required.replace('_', "-")))
                .with_fix("e.g. forcelink user create --username ada@example.com --last-name Lovelace --email ada@example.com --profile \"Standard User\""));
        }
    }
    if !input.contains_key("profile_id") && !input.contains_key("profile_name") {
        return Err(Failure::usage("a new user needs a profile: --profile NAME or --profile-id ID"));
    }
    let out = act(settings, &args.conn, ActionName::CreateUser, Value::Object(input)).await?;
    let created = out.get("created").and_then(Value::as_bool).unwrap_or(false);
    let human = if created {
        format!("{}\n", field(&out, "user_id"))
    } else {
        format!("{} (the username existed already; nothing changed)\n", field(&out, "user_id"))
    };
    Ok(Outcome::new(out, human))
}

async fn state(
    settings: &Settings,
    a: UserArg,
    action: ActionName,
    done: &str,
    unchanged: &str,
) -> Result<Outcome, Failure> {
    let out = act(settings, &a.conn, action, json!({ "user": a.user })).await?;
    let changed = out.get("changed").and_then(Value::as_bool).unwrap_or(false);
    let id = field(&out, "user_id");
    let human =
        if changed { format!("{done} user {id}\n") } else { format!("user {id} was {unchanged}; nothing changed\n") };
    Ok(Outcome::new(out, human))
}

/// A secret given as env:NAME, file:PATH or - (standard input); a plain value is refused so it
/// never sits in shell history.
fn secret_value(settings: &Settings, src: &str) -> Result<String, Failure> {
    if src == "-" {
        let (text, _) = read_data("-")?;
        let t = text.trim_end_matches(['\r', '\n']).to_owned();
        if t.is_empty() {
            return Err(Failure::usage("standard input gave no password"));
        }
        return Ok(t);
    }
    if let Some(var) = src.strip_prefix("env:") {
        return settings
            .env
            .get(var)
            .map(str::to_owned)
            .ok_or_else(|| Failure::usage(format!("environment variable {var} is not set")));
    }
    if let Some(path) = src.strip_prefix("file:") {
        return std::fs::read_to_string(path)
            .map(|s| s.trim_end_matches(['\r', '\n']).to_owned())
            .map_err(|e| Failure::usage(format!("cannot read {path}: {e}")));
    }
    Err(Failure::usage(
        "--new-password takes env:NAME, file:PATH or - (a password on the command line would be visible to other users)",
    ))
}
