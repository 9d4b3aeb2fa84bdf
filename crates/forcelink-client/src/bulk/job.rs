//! What a job is: [`JobKind`], [`Operation`], [`JobState`], [`JobInfo`] as Salesforce describes
//! it, [`IngestJob`] (what an ingest job is created with) and [`ResultSet`].

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ClientError;

/// Ingest or query: the path segment under `jobs/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobKind {
    /// `jobs/ingest`: insert, update, upsert, delete, hardDelete.
    Ingest,
    /// `jobs/query`: query and queryAll.
    Query,
}

impl JobKind {
    pub(crate) fn segment(self) -> &'static str {
        match self {
            JobKind::Ingest => "ingest",
            JobKind::Query => "query",
        }
    }
}

impl fmt::Display for JobKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.segment())
    }
}

/// A job's operation, as Salesforce spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    /// `insert`: creates records.
    Insert,
    /// `update`: changes records named by `Id`.
    Update,
    /// `upsert`: creates or changes records matched by the external id field.
    Upsert,
    /// `delete`: moves records to the Recycle Bin.
    Delete,
    /// `hardDelete`: deletes records for good (needs the "Bulk API Hard Delete" permission).
    HardDelete,
    /// `query`: a query job.
    Query,
    /// `queryAll`: a query job that also returns deleted and archived records.
    QueryAll,
}

impl Operation {
    /// The operation as Salesforce spells it (`hardDelete`, `queryAll`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Insert => "insert",
            Operation::Update => "update",
            Operation::Upsert => "upsert",
            Operation::Delete => "delete",
            Operation::HardDelete => "hardDelete",
            Operation::Query => "query",
            Operation::QueryAll => "queryAll",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Operation {
    type Err = ClientError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "insert" => Operation::Insert,
            "update" => Operation::Update,
            "upsert" => Operation::Upsert,
            "delete" => Operation::Delete,
            "hardDelete" | "harddelete" => Operation::HardDelete,
            "query" => Operation::Query,
            "queryAll" | "queryall" => Operation::QueryAll,
            other => {
                return Err(ClientError::InvalidInput(format!(
                    "unknown bulk operation {other:?}: use insert, update, upsert, delete, hardDelete, query or queryAll"
                )));
            }
        })
    }
}

/// A job's state. States Salesforce may add later read as `Other`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// `Open`: an ingest job that accepts uploads.
    Open,
    /// `UploadComplete`: uploads closed; waiting to be processed.
    UploadComplete,
    /// `InProgress`: being processed.
    InProgress,
    /// `JobComplete`: processed; results can be read.
    JobComplete,
    /// `Failed`: the job failed as a whole (see [`JobInfo::error_message`]).
    Failed,
    /// `Aborted`: aborted by a caller.
    Aborted,
    /// A state this client does not know, as Salesforce spelled it.
    #[serde(untagged)]
    Other(String),
}

impl JobState {
    /// No further change will happen.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobState::JobComplete | JobState::Failed | JobState::Aborted)
    }
    /// The state as Salesforce spells it (`JobComplete`, …).
    pub fn as_str(&self) -> &str {
        match self {
            JobState::Open => "Open",
            JobState::UploadComplete => "UploadComplete",
            JobState::InProgress => "InProgress",
            JobState::JobComplete => "JobComplete",
            JobState::Failed => "Failed",
            JobState::Aborted => "Aborted",
            JobState::Other(s) => s,
        }
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A job as Salesforce describes it (`JobInfo`). Counters and timings appear once processing
/// started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInfo {
    /// `id`: the job id (`750…`).
    pub id: String,
    /// `operation`: what the job does.
    pub operation: Operation,
    /// `object`: the sObject type the job works on.
    #[serde(default)]
    pub object: Option<String>,
    /// `state`: where the job is (see [`JobState::is_terminal`]).
    pub state: JobState,
    /// `externalIdFieldName` of an upsert job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id_field_name: Option<String>,
    /// `contentUrl`: where uploads to an `Open` ingest job go.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_url: Option<String>,
    /// `jobType`: `V2Ingest` or `V2Query`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_type: Option<String>,
    /// `apiVersion` the job was created with (e.g. `62.0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<f64>,
    /// `columnDelimiter` of the CSV (`COMMA`, `TAB`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub column_delimiter: Option<String>,
    /// `lineEnding` of the CSV (`LF` or `CRLF`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line_ending: Option<String>,
    /// `createdById`: the user who created the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by_id: Option<String>,
    /// `createdDate`, as Salesforce wrote it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<String>,
    /// `numberRecordsProcessed`: records processed so far.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_records_processed: Option<u64>,
    /// `numberRecordsFailed`: records that failed so far (ingest jobs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_records_failed: Option<u64>,
    /// `retries`: how often Salesforce retried processing the job.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u64>,
    /// `totalProcessingTime`, in milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total_processing_time: Option<u64>,
    /// `errorMessage`: why a `Failed` job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

impl JobInfo {
    /// Ingest or query, from `jobType` or else the operation.
    pub fn kind(&self) -> JobKind {
        match (self.job_type.as_deref(), self.operation) {
            (Some("V2Query"), _) | (None, Operation::Query | Operation::QueryAll) => JobKind::Query,
            _ => JobKind::Ingest,
        }
    }
}

/// What an ingest job is created with (`POST jobs/ingest`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct IngestJob {
    /// `object`: the sObject type to load, by API name.
    pub object: String,
    /// `operation`: an ingest operation (not `query` or `queryAll`).
    pub operation: Operation,
    /// `externalIdFieldName`: required by an upsert, refused by the other operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id_field_name: Option<String>,
    /// `contentType`: always `CSV`.
    pub content_type: &'static str,
    /// `COMMA` (default), `TAB`, `PIPE`, `SEMICOLON`, `CARET`, `BACKQUOTE`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column_delimiter: Option<String>,
    /// `LF` (default) or `CRLF`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line_ending: Option<String>,
}

impl IngestJob {
    /// A CSV job on `object`; an upsert also needs `external_id_field_name` (see [`IngestJob::upsert`]).
    pub fn new(object: impl Into<String>, operation: Operation) -> Self {
        Self {
            object: object.into(),
            operation,
            external_id_field_name: None,
            content_type: "CSV",
            column_delimiter: None,
            line_ending: None,
        }
    }
    /// An `insert` job on `object`.
    pub fn insert(object: impl Into<String>) -> Self {
        Self::new(object, Operation::Insert)
    }
    /// An `upsert` job on `object` that matches rows by the `external_id` field (its API name).
    pub fn upsert(object: impl Into<String>, external_id: impl Into<String>) -> Self {
        let mut job = Self::new(object, Operation::Upsert);
        job.external_id_field_name = Some(external_id.into());
        job
    }
    /// Sets `columnDelimiter` (`COMMA`, `TAB`, `PIPE`, `SEMICOLON`, `CARET`, `BACKQUOTE`). Defaults to `COMMA`.
    pub fn column_delimiter(mut self, d: impl Into<String>) -> Self {
        self.column_delimiter = Some(d.into());
        self
    }
    /// Sets `lineEnding` (`LF` or `CRLF`). Defaults to `LF`.
    pub fn line_ending(mut self, l: impl Into<String>) -> Self {
        self.line_ending = Some(l.into());
        self
    }

    pub(crate) fn check(&self) -> Result<(), ClientError> {
        crate::types::SObjectType::new(&self.object)?;
        match (self.operation, &self.external_id_field_name) {
            (Operation::Query | Operation::QueryAll, _) => {
                Err(ClientError::InvalidInput(format!("{} is a query operation, not an ingest one", self.operation)))
            }
            (Operation::Upsert, None) => {
                Err(ClientError::InvalidInput("an upsert needs the external id field name".to_owned()))
            }
            (Operation::Upsert, Some(f)) => crate::types::FieldName::new(f).map(|_| ()),
            (_, Some(_)) => Err(ClientError::InvalidInput("an external id field is only used by upsert".to_owned())),
            _ => Ok(()),
        }
    }
}

/// Which results of an ingest job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum ResultSet {
    /// `successfulResults`: `sf__Id, sf__Created` + the input columns.
    Successful,
    /// `failedResults`: `sf__Id, sf__Error` + the input columns.
    Failed,
    /// `unprocessedrecords`: the input rows that were not processed.
    Unprocessed,
}

impl ResultSet {
    /// The three result sets, successful first.
    pub const ALL: [ResultSet; 3] = [ResultSet::Successful, ResultSet::Failed, ResultSet::Unprocessed];
    pub(crate) fn segment(self) -> &'static str {
        match self {
            ResultSet::Successful => "successfulResults",
            ResultSet::Failed => "failedResults",
            ResultSet::Unprocessed => "unprocessedrecords",
        }
    }
    /// A short name for files and messages: `successful`, `failed`, `unprocessed`.
    pub fn name(self) -> &'static str {
        match self {
            ResultSet::Successful => "successful",
            ResultSet::Failed => "failed",
            ResultSet::Unprocessed => "unprocessed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bulk::check_id;

    #[test]
    fn states_and_operations_read_as_salesforce_writes_them() {
        let s: JobState = serde_json::from_str("\"InProgress\"").unwrap();
        assert_eq!(s, JobState::InProgress);
        let other: JobState = serde_json::from_str("\"Queued\"").unwrap();
        assert_eq!(other, JobState::Other("Queued".to_owned()));
        assert!(!other.is_terminal());
        assert_eq!("hardDelete".parse::<Operation>().unwrap(), Operation::HardDelete);
        assert!("drop".parse::<Operation>().is_err());
        assert_eq!(serde_json::to_string(&Operation::QueryAll).unwrap(), "\"queryAll\"");
    }

    #[test]
    fn ingest_jobs_are_checked_before_sending() {
        assert!(IngestJob::new("Account", Operation::Upsert).check().is_err());
        assert!(IngestJob::upsert("Account", "Ext__c").check().is_ok());
        assert!(IngestJob::new("Account;", Operation::Insert).check().is_err());
        assert!(IngestJob::new("Account", Operation::Query).check().is_err());
        assert!(check_id("750x/../y").is_err());
    }
}
