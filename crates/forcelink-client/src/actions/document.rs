//! `upload-document`: a file as a new ContentVersion, optionally linked to a record. Small files
//! go as base64 in JSON; larger ones as `multipart/form-data`, read from the file while they are
//! sent when they come from one ([`Actions::upload_document_file`]), so memory stays flat up to
//! Salesforce's 2 GB multipart limit.

use std::fmt;
use std::path::PathBuf;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use rand::Rng;
use reqwest::Method;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Value, json};

use super::Actions;
use crate::client::{RawResponse, Req};
use crate::error::{ApiError, ClientError};
use crate::types::RecordId;
use crate::upload::FileBody;
pub use crate::upload::UploadProgress;

/// Largest file Salesforce takes in a multipart ContentVersion insert: 2 GB (2,147,483,648 bytes).
pub const MAX_MULTIPART_FILE_BYTES: u64 = 2 * 1024 * 1024 * 1024;

fn b64_in<'de, D: Deserializer<'de>>(d: D) -> Result<Bytes, D::Error> {
    let s = String::deserialize(d)?;
    STANDARD.decode(s.trim()).map(Bytes::from).map_err(serde::de::Error::custom)
}
fn b64_out<S: Serializer>(b: &Bytes, s: S) -> Result<S::Ok, S::Error> {
    STANDARD.encode(b).serialize(s)
}

/// `upload-document` input: a new file (ContentVersion), optionally linked to a record.
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UploadDocument {
    /// The file's `Title`.
    pub title: String,
    /// The file name, with its extension (`PathOnClient`).
    pub file_name: String,
    /// The content, base64 in JSON.
    #[serde(rename = "content_base64", deserialize_with = "b64_in", serialize_with = "b64_out")]
    pub content: Bytes,
    /// A record to share the file with (ContentDocumentLink).
    #[serde(default)]
    pub link_to: Option<String>,
    /// `V` (viewer, the default), `C` (collaborator) or `I` (inferred).
    #[serde(default)]
    pub share_type: Option<String>,
    /// The file's `Description`.
    #[serde(default)]
    pub description: Option<String>,
}

impl fmt::Debug for UploadDocument {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadDocument")
            .field("title", &self.title)
            .field("file_name", &self.file_name)
            .field("bytes", &self.content.len())
            .field("link_to", &self.link_to)
            .finish()
    }
}

impl UploadDocument {
    /// A document with no link, share type or description (set those fields when needed).
    pub fn new(title: impl Into<String>, file_name: impl Into<String>, content: impl Into<Bytes>) -> Self {
        Self {
            title: title.into(),
            file_name: file_name.into(),
            content: content.into(),
            link_to: None,
            share_type: None,
            description: None,
        }
    }
}

/// What upload-document created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentUploaded {
    /// The new ContentVersion's id (`068…`).
    pub content_version_id: String,
    /// Its ContentDocument's id (`069…`).
    pub content_document_id: String,
    /// The ContentDocumentLink's id when `link_to` was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_document_link_id: Option<String>,
    /// How the file went: `json` (base64) or `multipart`.
    pub transfer: String,
}

/// `upload-document` input for a file on disk ([`Actions::upload_document_file`]): the file is
/// read while it is sent, never held whole in memory (unless it is small enough to go as JSON).
#[derive(Clone)]
pub struct UploadFile {
    /// The file's `Title`.
    pub title: String,
    /// The file to send.
    pub path: PathBuf,
    /// The file name, with its extension (`PathOnClient`); defaults to the path's file name.
    pub file_name: String,
    /// A record to share the file with (ContentDocumentLink).
    pub link_to: Option<String>,
    /// `V` (viewer, the default), `C` (collaborator) or `I` (inferred).
    pub share_type: Option<String>,
    /// The file's `Description`.
    pub description: Option<String>,
    progress: Option<UploadProgress>,
}

impl fmt::Debug for UploadFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UploadFile")
            .field("title", &self.title)
            .field("path", &self.path)
            .field("file_name", &self.file_name)
            .field("link_to", &self.link_to)
            .finish()
    }
}

impl UploadFile {
    /// The file at `path`, named by its file name, titled by it without its extension.
    pub fn new(path: impl Into<PathBuf>) -> Result<Self, ClientError> {
        let path = path.into();
        let file_name = path
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| ClientError::InvalidInput(format!("{} has no file name", path.display())))?
            .to_owned();
        let title = path.file_stem().and_then(|s| s.to_str()).unwrap_or(&file_name).to_owned();
        Ok(Self { title, path, file_name, link_to: None, share_type: None, description: None, progress: None })
    }

    /// Hears how far the file is sent (bytes of the request body so far, and its total).
    pub fn on_progress(mut self, progress: UploadProgress) -> Self {
        self.progress = Some(progress);
        self
    }
}

/// The title, file name and description as the `entity_content` of a ContentVersion insert.
fn entity(title: &str, file_name: &str, description: Option<&str>) -> Result<Value, ClientError> {
    if title.trim().is_empty() || file_name.trim().is_empty() {
        return Err(ClientError::InvalidInput("upload-document needs a title and a file name".into()));
    }
    let mut entity = json!({"Title": title, "PathOnClient": file_name});
    if let Some(d) = description {
        entity["Description"] = json!(d);
    }
    Ok(entity)
}

fn content_version() -> Req {
    Req::data(Method::POST, ["sobjects", "ContentVersion"])
}

impl Actions<'_> {
    /// Uploads a file as a new ContentVersion (base64 JSON up to the multipart threshold,
    /// multipart/form-data above), then links its document to `link_to` when given.
    pub async fn upload_document(&self, input: UploadDocument) -> Result<DocumentUploaded, ClientError> {
        let mut entity = entity(&input.title, &input.file_name, input.description.as_deref())?;
        let link_to = input.link_to.as_deref().map(RecordId::new).transpose()?;
        let (req, transfer) = if input.content.len() <= self.multipart_threshold {
            entity["VersionData"] = json!(STANDARD.encode(&input.content));
            (content_version().json(&entity)?, "json")
        } else {
            let (prefix, suffix, content_type) = multipart_frame(&entity, &input.file_name);
            let mut body = Vec::with_capacity(prefix.len() + input.content.len() + suffix.len());
            body.extend_from_slice(&prefix);
            body.extend_from_slice(&input.content);
            body.extend_from_slice(&suffix);
            let mut req = content_version();
            req.body = Some((Bytes::from(body), content_type));
            (req, "multipart")
        };
        let resp = self.client.execute(req).await?;
        self.created(&resp, link_to, input.share_type.as_deref(), transfer).await
    }

    /// Uploads the file at `input.path` as a new ContentVersion, then links its document to
    /// `link_to` when given. Above the multipart threshold the file is read while it is sent
    /// (memory stays flat up to [`MAX_MULTIPART_FILE_BYTES`]); a retried request opens it again.
    pub async fn upload_document_file(&self, input: UploadFile) -> Result<DocumentUploaded, ClientError> {
        let mut entity = entity(&input.title, &input.file_name, input.description.as_deref())?;
        let link_to = input.link_to.as_deref().map(RecordId::new).transpose()?;
        let unreadable =
            |e: std::io::Error| ClientError::InvalidInput(format!("cannot read {}: {e}", input.path.display()));
        let len = tokio::fs::metadata(&input.path).await.map_err(unreadable)?.len();
        if len > MAX_MULTIPART_FILE_BYTES {
            return Err(ClientError::InvalidInput(format!(
                "{} has {len} bytes; Salesforce takes files up to 2 GB ({MAX_MULTIPART_FILE_BYTES} bytes)",
                input.path.display()
            )));
        }
        let (req, transfer) = if len <= self.multipart_threshold as u64 {
            let content = tokio::fs::read(&input.path).await.map_err(unreadable)?;
            entity["VersionData"] = json!(STANDARD.encode(&content));
            if let Some(p) = &input.progress {
                p(content.len() as u64, content.len() as u64);
            }
            (content_version().json(&entity)?, "json")
        } else {
            let (prefix, suffix, content_type) = multipart_frame(&entity, &input.file_name);
            let body = FileBody::new(input.path.clone(), len, prefix, suffix, input.progress.clone());
            let mut req = content_version();
            req.file_body = Some((body, content_type));
            (req, "multipart")
        };
        let resp = self.client.execute(req).await?;
        self.created(&resp, link_to, input.share_type.as_deref(), transfer).await
    }

    /// After the insert: the new version's document, and its link to a record when asked.
    async fn created(
        &self,
        resp: &RawResponse,
        link_to: Option<RecordId>,
        share_type: Option<&str>,
        transfer: &str,
    ) -> Result<DocumentUploaded, ClientError> {
        let c = self.client;
        let saved: crate::sobjects::SaveResult = resp.json()?;
        let version_id = saved.id.filter(|_| saved.success).ok_or_else(|| ClientError::Api {
            endpoint: resp.endpoint.clone(),
            error: saved.errors.first().cloned().unwrap_or(ApiError {
                status: resp.status,
                error_code: "UNKNOWN".into(),
                message: "the upload reported no id".into(),
                fields: Vec::new(),
            }),
            others: Vec::new(),
        })?;
        let doc = c.sobject("ContentVersion")?.retrieve(&version_id)?.fields(["ContentDocumentId"])?.send().await?;
        let document_id = doc["ContentDocumentId"].as_str().unwrap_or_default().to_owned();
        let link_id = match link_to {
            Some(record) => {
                let link = json!({
                    "ContentDocumentId": document_id,
                    "LinkedEntityId": record.as_str(),
                    "ShareType": share_type.unwrap_or("V"),
                });
                Some(c.sobject("ContentDocumentLink")?.create(&link).send().await?.id.to_string())
            }
            None => None,
        };
        Ok(DocumentUploaded {
            content_version_id: version_id,
            content_document_id: document_id,
            content_document_link_id: link_id,
            transfer: transfer.to_owned(),
        })
    }
}

/// A `multipart/form-data` body around a file: the `entity_content` JSON part and the head of
/// the `VersionData` file part (Salesforce's blob insert format, wire reference §9), then the
/// closing boundary; and the content type naming the boundary.
fn multipart_frame(entity: &Value, file_name: &str) -> (Bytes, Bytes, String) {
    let boundary: String = {
        let mut rng = rand::thread_rng();
        (0..32).map(|_| char::from(rng.sample(rand::distributions::Alphanumeric))).collect()
    };
    let safe_name: String =
        file_name.chars().map(|c| if matches!(c, '"' | '\r' | '\n' | '\\') { '_' } else { c }).collect();
    let prefix = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"entity_content\"\r\nContent-Type: application/json\r\n\r\n{entity}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"VersionData\"; filename=\"{safe_name}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
    );
    let suffix = format!("\r\n--{boundary}--\r\n");
    (Bytes::from(prefix), Bytes::from(suffix), format!("multipart/form-data; boundary={boundary}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_contents_stay_out_of_debug() {
        let up = UploadDocument::new("t", "f.txt", Bytes::from_static(b"secret file body"));
        assert!(!format!("{up:?}").contains("secret file"));
    }

    #[test]
    fn a_file_upload_is_named_and_titled_by_its_path() {
        let up = UploadFile::new("/tmp/report.q3.pdf").unwrap();
        assert_eq!((up.title.as_str(), up.file_name.as_str()), ("report.q3", "report.q3.pdf"));
        assert!(UploadFile::new("/").is_err());
    }

    #[test]
    fn the_multipart_frame_names_the_file_safely() {
        let (prefix, suffix, ct) = multipart_frame(&json!({"Title": "t"}), "a\"b.txt");
        let boundary = ct.strip_prefix("multipart/form-data; boundary=").unwrap();
        let prefix = String::from_utf8(prefix.to_vec()).unwrap();
        assert!(prefix.starts_with(&format!("--{boundary}\r\n")) && prefix.contains("filename=\"a_b.txt\""));
        assert_eq!(suffix, format!("\r\n--{boundary}--\r\n"));
    }
}
