//! `forcelink generate openapi`: an OpenAPI 3.1 document for chosen sObjects (CRUD + query),
//! built from their describes, whose server is the broker's proxy path for the connection.

use std::path::PathBuf;

use forcelink_client::openapi::{self, GeneratorOptions};
use serde_json::json;

use super::{ConnectionArg, api_client};
use crate::failure::Failure;
use crate::outcome::Outcome;
use crate::settings::Settings;

/// The broker's proxy path for a connection (its route `/v1/connections/{name}/sf/{path}`),
/// the server of the generated document.
const BROKER_PROXY_PATH: &str = "/v1/connections/{connection}/sf";

#[derive(Debug, clap::Subcommand)]
pub enum GenerateCommand {
    /// OpenAPI 3.1 for sObjects, served through the broker's proxy (`forcelink serve`).
    Openapi {
        #[command(flatten)]
        conn: ConnectionArg,
        /// An object to include (repeat for several), e.g. --sobject Account --sobject Contact.
        #[arg(long = "sobject", value_name = "NAME", required = true)]
        sobjects: Vec<String>,
        /// Write the document here (replaced whole, never half-written); stdout when omitted.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The broker's base URL put in front of the proxy path, e.g. http://127.0.0.1:7878.
        #[arg(long, value_name = "URL")]
        broker_url: Option<String>,
        /// The document's title.
        #[arg(long)]
        title: Option<String>,
    },
}

pub async fn run(settings: &Settings, command: GenerateCommand) -> Result<Outcome, Failure> {
    let GenerateCommand::Openapi { conn, sobjects, out, broker_url, title } = command;
    let opened = conn.open(settings).await?;
    let client = api_client(settings, &opened)?;
    let mut describes = Vec::with_capacity(sobjects.len());
    for s in &sobjects {
        let d = client.sobject(s)?.describe().send().await?;
        describes.push((*d).clone());
    }
    let proxy_base = match broker_url {
        Some(base) => {
            let base = url::Url::parse(&base)
                .map_err(|e| Failure::usage(format!("--broker-url {base:?} is not a URL: {e}")))?
                .as_str()
                .trim_end_matches('/')
                .to_owned();
            format!("{base}{BROKER_PROXY_PATH}")
        }
        None => BROKER_PROXY_PATH.to_owned(),
    };
    let mut options = GeneratorOptions::new(client.api_version().clone(), proxy_base);
    options.default_connection = opened.connection.name.as_str().to_owned();
    if let Some(t) = title {
        options.title = t;
    }
    let doc = openapi::generate(&describes, &options);
    let text = serde_json::to_string_pretty(&doc).map_err(|e| Failure::failed(e.to_string()))? + "\n";
    let paths = doc["paths"].as_object().map_or(0, |p| p.len());
    match out {
        Some(path) => {
            write_whole(&path, text.as_bytes())?;
            Ok(Outcome::new(
                json!({ "file": path.display().to_string(), "sobjects": sobjects, "paths": paths }),
                format!("wrote {} ({} paths for {})\n", path.display(), paths, sobjects.join(", ")),
            ))
        }
        None => Ok(Outcome::new(doc, text)),
    }
}

/// Writes through a temporary file in the same directory and renames it over `path`, so a
/// failure leaves the old file (or none), never half a document.
fn write_whole(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    let file_name = path.file_name().ok_or_else(|| Failure::usage(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(".{}.tmp", file_name.to_string_lossy()));
    let fail = |e: std::io::Error| Failure::failed(format!("cannot write {}: {e}", path.display()));
    std::fs::write(&tmp, bytes).map_err(fail)?;
    std::fs::rename(&tmp, path).map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        fail(e)
    })
}
