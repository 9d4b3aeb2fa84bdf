//! `forcelink document upload`: a file as a ContentVersion (forcelink-client's upload action),
//! optionally shared with a record.

use std::path::PathBuf;

use forcelink_client::actions;
use forcelink_store::AuditAction;

use super::{ConnectionArg, api_client, audit};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

#[derive(Debug, clap::Subcommand)]
pub enum DocumentCommand {
    /// Upload a file as a ContentVersion, optionally shared with a record.
    Upload {
        /// The file.
        file: PathBuf,
        /// Title (default: the file name without its extension).
        #[arg(long)]
        title: Option<String>,
        /// A record to share the file with (ContentDocumentLink).
        #[arg(long, value_name = "RECORD_ID")]
        link_to: Option<String>,
        /// V (viewer, default), C (collaborator) or I (inferred).
        #[arg(long, value_parser = ["V", "C", "I"])]
        share_type: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[command(flatten)]
        conn: ConnectionArg,
    },
}

pub async fn run(settings: &Settings, command: DocumentCommand) -> Result<Outcome, Failure> {
    let DocumentCommand::Upload { file, title, link_to, share_type, description, conn } = command;
    let content = std::fs::read(&file).map_err(|e| Failure::usage(format!("cannot read {}: {e}", file.display())))?;
    let file_name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| Failure::usage(format!("{} has no file name", file.display())))?
        .to_owned();
    let title = title.unwrap_or_else(|| {
        file.file_stem().and_then(|s| s.to_str()).map(str::to_owned).unwrap_or_else(|| file_name.clone())
    });
    let mut input = actions::UploadDocument::new(title, file_name, content);
    input.link_to = link_to;
    input.share_type = share_type;
    input.description = description;
    let opened = conn.open(settings).await?;
    let client = api_client(settings, &opened)?;
    // Called directly, not through the JSON dispatcher: the file is not base64-encoded twice.
    let uploaded = client.actions().upload_document(input).await?;
    let out = serde_json::to_value(&uploaded).map_err(|e| Failure::failed(e.to_string()))?;
    let subject = uploaded.content_version_id.clone();
    let action = AuditAction::Action("upload-document".to_owned());
    audit(settings, &*opened.store, &opened.connection.name, action, Some(subject)).await;
    let human = format!(
        "{} (ContentDocument {}{})\n",
        uploaded.content_version_id,
        uploaded.content_document_id,
        match &uploaded.content_document_link_id {
            Some(l) => format!(", link {l}"),
            None => String::new(),
        }
    );
    Ok(Outcome::new(out, human))
}
