//! `forcelink document upload`: a file as a ContentVersion (forcelink-client's upload action),
//! optionally shared with a record; a large file is read while it is sent, with a progress bar
//! on a terminal.

use std::path::PathBuf;

use forcelink_client::actions;
use forcelink_store::AuditAction;

use super::{ConnectionArg, api_client, audit};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::output;
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
    match std::fs::metadata(&file) {
        Ok(m) if m.is_file() => {}
        Ok(_) => return Err(Failure::usage(format!("cannot read {}: not a file", file.display()))),
        Err(e) => return Err(Failure::usage(format!("cannot read {}: {e}", file.display()))),
    }
    let mut input =
        actions::UploadFile::new(&file).map_err(|_| Failure::usage(format!("{} has no file name", file.display())))?;
    if let Some(t) = title {
        input.title = t;
    }
    input.link_to = link_to;
    input.share_type = share_type;
    input.description = description;
    let opened = conn.open(settings).await?;
    let client = api_client(settings, &opened)?;
    // The file is read while it is sent (not held in memory), with a bar on a terminal.
    let bar = output::ByteProgress::new();
    let input = match bar.hook() {
        Some(hook) => input.on_progress(hook),
        None => input,
    };
    let uploaded = client.actions().upload_document_file(input).await;
    bar.finish();
    let uploaded = uploaded?;
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
